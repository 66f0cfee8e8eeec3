"""Shared base model and the unit-carrying field types.

Every user-facing model is frozen (spec is never mutated by the scheduler, as in Kueue) and
forbids unknown fields (a misspelt YAML key is an error, not a silently ignored setting).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from placer.units import (
    BANDWIDTH_PATTERN,
    DURATION_PATTERN,
    MAX_GBPS,
    MAX_HOURS,
    MAX_SIZE_GB,
    MAX_USD,
    PRICE_PATTERN,
    SIZE_PATTERN,
    parse_bandwidth,
    parse_duration,
    parse_price,
    parse_size,
)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _schema(example: str, unit: str, pattern: str, limit: float) -> WithJsonSchema:
    """The JSON Schema of a quantity: a number in the unit, or text the parser reads
    (``pattern``, from :mod:`placer.units`), so an editor refuses what the loader refuses."""
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": limit},
                {"type": "string", "pattern": pattern, "examples": [example]},
            ],
            "description": f"{unit}; a bare number is in {unit.split(' ')[0]}",
        }
    )


SizeGB = Annotated[float, BeforeValidator(parse_size),
                   _schema("800GB", "GB (decimal)", SIZE_PATTERN, MAX_SIZE_GB)]
Hours = Annotated[float, BeforeValidator(parse_duration),
                  _schema("6h", "hours", DURATION_PATTERN, MAX_HOURS)]
USD = Annotated[float, BeforeValidator(parse_price),
                _schema("$2.50/h", "USD", PRICE_PATTERN, MAX_USD)]
Gbps = Annotated[float, BeforeValidator(parse_bandwidth),
                 _schema("10Gbps", "Gbit/s", BANDWIDTH_PATTERN, MAX_GBPS)]

MAX_GPUS = 100_000
"""GPUs one job may ask for: above the largest training runs (tens of thousands of GPUs)."""
MAX_CPUS = 10_000_000
"""CPU cores one job may ask for (a hundred per GPU at :data:`MAX_GPUS`)."""
# Sizes, durations, prices and bandwidths are bounded where they are parsed (placer.units).

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
Name = Annotated[str, Field(pattern=NAME_RE, min_length=1, max_length=128)]

PROVIDERS = ("onprem", "aws", "gcp", "azure")
LOCATION_RE = re.compile(r"^(onprem|aws|gcp|azure):([a-z0-9][a-z0-9._-]*)$")
LocationKey = Annotated[
    str,
    Field(
        pattern=LOCATION_RE.pattern,
        description="provider:region, e.g. aws:eu-central-1, gcp:europe-west4, onprem:fra-dc1",
    ),
]


def keyed_to_list(value: Any, what: str) -> Any:
    """Accept ``{name: spec}`` (the YAML form) as well as ``[spec, ...]`` (the Python form).

    The mapping form makes duplicate names impossible to write by accident in YAML; the list
    form keeps declaration order explicit in Python. Order is preserved either way.
    """
    if not isinstance(value, dict):
        return value
    out = []
    for name, spec in value.items():
        if spec is None:
            spec = {}
        if isinstance(spec, dict):
            if "name" in spec and spec["name"] != name:
                raise ValueError(f"{what} {name!r} also says name: {spec['name']!r}")
            spec = {"name": name, **spec}
        out.append(spec)
    return out
