"""Reading a scenario file."""

from __future__ import annotations

from pathlib import Path

from placer.sim.scenario._schema import KIND, Scenario
from placer.yamlio import SourceMap, read_yaml, strip_header, validate


def read_scenario(path: str | Path) -> tuple[Scenario, SourceMap]:
    """Read and validate a scenario file; the source map lets :func:`build` name lines too.

    Raises:
        ConfigError: every problem, each with file, line and field.
    """
    data, sm = read_yaml(path)
    body = strip_header(data, sm, KIND)
    return validate(Scenario, body, sm), sm


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (see :func:`read_scenario`)."""
    return read_scenario(path)[0]
