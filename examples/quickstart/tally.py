"""Two plain Python functions as placer jobs (docs/python-api.md, "A Python function as a job").

Each runs on the site its plan picks, as a Ray job; this file goes with it (the job's
runtime_env working_dir), and what each returns is written to its output as JSON.
"""

import placer


@placer.job(gpus=1, gpu_types={"A100-80GB": "10m"})
def make_numbers() -> list[int]:
    return [1, 2, 3, 4]


@placer.job(gpu_types={"A100-80GB": "5m"}, output="summary")
def summarise(numbers: list[int]) -> dict[str, int]:
    return {"total": sum(numbers), "n": len(numbers)}
