"""Numbers no real job, site or plan has are refused with the field and line (issue 9).

``gpus: 1e30`` and ``size: 1e308`` used to be accepted and placed; NaN and infinity anywhere
are refused too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from placer import load_inventory, load_pipeline
from placer.errors import ConfigError
from placer.models import MAX_CPUS, MAX_GPUS, Inventory, Pipeline
from placer.units import MAX_HOURS, MAX_SIZE_GB

PIPELINE = """\
kind: Pipeline
datasets:
  corpus:
    size: {size}
    location: aws:us-east-1
jobs:
  train:
    command: python train.py
    resources: {{gpus: {gpus}, cpus: {cpus}, memory: {memory}}}
    gpu_types: {{T4: {hours}}}
    inputs: [corpus]
    outputs: {{model: {out}}}
"""
GOOD = {"size": "500GB", "gpus": "8", "cpus": "32", "memory": "256GB", "hours": "6h",
        "out": "30GB"}


def _load(tmp_path: Path, **fields: str) -> Pipeline:
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE.format(**{**GOOD, **fields}))
    return load_pipeline(path)


@pytest.mark.parametrize(
    ("fields", "line", "field", "msg"),
    [
        # YAML 1.1 reads 1e30 as a string (a float needs a dot); both are refused.
        ({"gpus": "1e30"}, 9, "jobs.train.resources.gpus",
         "Input should be a valid integer, unable to parse string as an integer"),
        ({"gpus": "1.0e+30"}, 9, "jobs.train.resources.gpus",
         "gpus must be a whole number from 1 to 100,000, got 1e+30"),
        ({"gpus": str(10**30)}, 9, "jobs.train.resources.gpus",
         f"Input should be less than or equal to {MAX_GPUS}"),
        ({"gpus": str(MAX_GPUS + 1)}, 9, "jobs.train.resources.gpus",
         f"Input should be less than or equal to {MAX_GPUS}"),
        ({"gpus": ".nan"}, 9, "jobs.train.resources.gpus",
         "gpus must be a whole number from 1 to 100,000, got nan"),
        ({"gpus": "-.inf"}, 9, "jobs.train.resources.gpus",
         "gpus must be a whole number from 1 to 100,000, got -inf"),
        ({"cpus": ".inf"}, 9, "jobs.train.resources.cpus", "Input should be a finite number"),
        ({"cpus": "1e30"}, 9, "jobs.train.resources.cpus",
         f"Input should be less than or equal to {MAX_CPUS}"),
        ({"memory": "2e9TB"}, 9, "jobs.train.resources.memory",
         "size must be at most 1,000,000,000 GB (1 EB), got '2e9TB'"),
        ({"size": "1e308"}, 4, "datasets.corpus.size",
         "size must be at most 1,000,000,000 GB (1 EB), got '1e308'"),
        ({"size": "1.0e+308"}, 4, "datasets.corpus.size",
         "size must be at most 1,000,000,000 GB (1 EB), got 1e+308"),
        ({"size": ".nan"}, 4, "datasets.corpus.size", "size must be finite, got nan"),
        ({"size": "-.inf"}, 4, "datasets.corpus.size", "size must be finite, got -inf"),
        ({"hours": ".inf"}, 10, "jobs.train.gpu_types.T4", "duration must be finite, got inf"),
        ({"hours": "1e6h"}, 10, "jobs.train.gpu_types.T4",
         "duration must be at most 87,600 h (ten years), got '1e6h'"),
        ({"out": "1.0e+300"}, 12, "jobs.train.outputs.model",
         "size must be at most 1,000,000,000 GB (1 EB), got 1e+300"),
    ],
)
def test_impossible_numbers_name_the_field_and_line(
    tmp_path: Path, fields: dict[str, str], line: int, field: str, msg: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, **fields)
    [d] = info.value.details
    assert (Path(d.file or "").name, d.line, d.field, d.msg) == ("p.yaml", line, field, msg)


def test_the_bounds_themselves_are_accepted(tmp_path: Path) -> None:
    p = _load(tmp_path, gpus=str(MAX_GPUS), cpus=str(MAX_CPUS), size="1000PB",
              memory=str(MAX_SIZE_GB), hours=f"{MAX_HOURS:g}", out="1000000TB")
    [job] = p.jobs
    assert (job.resources.gpus, job.resources.cpus) == (MAX_GPUS, MAX_CPUS)
    assert p.datasets[0].size == job.resources.memory == job.outputs["model"] == MAX_SIZE_GB
    assert job.gpu_types["T4"] == MAX_HOURS


@pytest.mark.parametrize(
    ("pool", "field", "msg"),
    [
        ("{gpu: A100-80GB, count: 16, cost_per_gpu_hour: .nan}", "cost_per_gpu_hour",
         "price must be finite, got nan"),
        ("{gpu: A100-80GB, count: 16, cost_per_gpu_hour: 1.0e+300}", "cost_per_gpu_hour",
         "price must be at most $1,000,000,000, got 1e+300"),
        ("{gpu: A100-80GB, count: 16, cost_per_gpu_hour: $1e300/h}", "cost_per_gpu_hour",
         "price must be at most $1,000,000,000, got '$1e300/h'"),
    ],
)
def test_site_prices_are_bounded_too(tmp_path: Path, pool: str, field: str, msg: str) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text("kind: Inventory\nsites:\n  dc:\n    location: onprem:fra-dc1\n"
                    f"    country: DE\n    pools:\n      - {pool}\n")
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    [d] = info.value.details
    assert (d.line, d.msg) == (7, msg)
    assert d.field is not None and d.field.endswith(field)


@pytest.mark.parametrize(
    ("site", "field"),
    [
        ({"pools": [{"gpu": "T4", "count": 10**12, "cost_per_gpu_hour": 1}]}, "count"),
        ({"spot_overhead": float("inf")}, "spot_overhead"),
        ({"spot_overhead": float("nan")}, "spot_overhead"),
    ],
)
def test_site_figures_past_what_a_site_can_be_are_refused(site: dict, field: str) -> None:
    spec = {"location": "onprem:x", "country": "DE",
            "pools": [{"gpu": "T4", "count": 1, "cost_per_gpu_hour": 1}], **site}
    with pytest.raises(ValueError, match=field):
        Inventory.model_validate({"sites": {"x": spec}})
