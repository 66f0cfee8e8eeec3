"""Argument checks shared by the workload rooms: each failure is a ConfigError naming the
parameter (``field``) or the file."""

from __future__ import annotations

from collections.abc import Sequence

from placer.errors import ConfigError, ErrorDetail
from placer.sim.jobs import SimDataset


def fail(msg: str, *, field: str | None = None, file: str | None = None) -> ConfigError:
    return ConfigError(ErrorDetail(msg, file=file, line=None, field=field))


def require(ok: bool, msg: str, field: str) -> None:
    if not ok:
        raise fail(msg, field=field)


def check_choice(value: str, choices: tuple[str, ...], field: str) -> None:
    require(value in choices, f"{value!r} is not one of {', '.join(choices)}", field)


def datasets_by_name(datasets: Sequence[SimDataset], field: str) -> dict[str, SimDataset]:
    out: dict[str, SimDataset] = {}
    for d in datasets:
        require(out.get(d.name, d) == d, f"two different datasets are named {d.name!r}", field)
        out[d.name] = d
    return out
