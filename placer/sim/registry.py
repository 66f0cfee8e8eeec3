"""Strategies by name, for scenarios and the command line.

A name is a base strategy with optional suffixes: ``compute-wait+oo``, ``no-wait+mask``.
``+mask`` adds the naive residency filter (the regions a job's own inputs forbid are masked);
placer's own strategy always applies the full policy evaluation. Every strategy takes one
parameter, the waiting budget (see :mod:`placer.sim.baselines`); strategies that do not wait
ignore it.
"""

from __future__ import annotations

from collections.abc import Callable

from placer.errors import ConfigError
from placer.online import Residency, Strategy
from placer.sim.baselines import (
    ComputeWait,
    ConstantWait,
    NoWait,
    OnPremOnly,
    SkyPilotCheapest,
    StarWait,
)
from placer.sim.placer_strategy import PlacerStrategy

_BASES: dict[str, Callable[[float, Residency], Strategy]] = {
    "onprem-only": lambda b, r: OnPremOnly(residency=r),
    "no-wait": lambda b, r: NoWait(residency=r),
    "constant-wait": lambda b, r: ConstantWait(b, residency=r),
    "constant-wait-nosj": lambda b, r: ConstantWait(b, no_sj=True, residency=r),
    "compute-wait": lambda b, r: ComputeWait(b, ooo=False, residency=r),
    "compute-wait+oo": lambda b, r: ComputeWait(b, ooo=True, residency=r),
    "star-wait": lambda b, r: StarWait(b, residency=r),
    "skypilot": lambda b, r: SkyPilotCheapest(residency=r),
    "placer": lambda b, r: PlacerStrategy(b),
    # placer without its data placement: every job reads from where its data lives
    "placer-noreplicas": lambda b, r: PlacerStrategy(b, replicate=False),
}

WAITING = frozenset(
    {
        "constant-wait",
        "constant-wait-nosj",
        "compute-wait",
        "compute-wait+oo",
        "star-wait",
        "placer",
        "placer-noreplicas",
    }
)
"""Base strategies whose behaviour depends on the waiting budget."""

ALL = (
    "onprem-only",
    "no-wait",
    "constant-wait",
    "constant-wait-nosj",
    "compute-wait+oo",
    "star-wait",
    "skypilot",
    "placer",
)
"""What ``--strategies all`` runs: one of each family (8 strategies)."""


def strategy_names() -> tuple[str, ...]:
    """Every valid name: each base, and each base but placer's with ``+mask``."""
    return tuple(_BASES) + tuple(f"{b}+mask" for b in _BASES if not b.startswith("placer"))


def base_name(name: str) -> str:
    return name.removesuffix("+mask")


def make_strategy(name: str, budget: float = 0.25) -> Strategy:
    """A fresh strategy (strategies keep per-run state: never share one between runs).

    Raises:
        ConfigError: for an unknown name (the message lists the valid ones) or a negative budget.
    """
    base = base_name(name)
    mask = name.endswith("+mask")
    if base not in _BASES or (mask and base.startswith("placer")):
        raise ConfigError(f"unknown strategy {name!r}; valid: {', '.join(strategy_names())}")
    if budget < 0:
        raise ConfigError(f"the waiting budget must be >= 0, got {budget}")
    return _BASES[base](budget, "naive" if mask else "none")
