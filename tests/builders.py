"""Builders for test data: small valid objects, varied one field at a time."""

from __future__ import annotations

from typing import Any

from placer.models import Dataset, Job, Pipeline


def job(name: str, **kw: Any) -> Job:
    spec: dict[str, Any] = {"name": name, "command": f"run {name}", "gpu_types": {"A100-80GB": 1.0}}
    spec.update(kw)
    return Job.model_validate(spec)


def pipeline(*jobs: Job, datasets: tuple[Dataset, ...] = (), name: str = "p") -> Pipeline:
    return Pipeline(name=name, jobs=jobs, datasets=datasets)
