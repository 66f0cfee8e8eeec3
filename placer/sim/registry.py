"""Strategies by name, for scenarios and the command line.

A name is a base strategy with optional suffixes, in this order:

* ``-literal`` (on a baseline that bursts): the paper's own placement, the cheapest on-demand
  offer blind to data. Without it a baseline bursts to the offer of least expected cost,
  spot and its inputs' egress included, as SkyPilot's optimizer does (the fair configuration:
  :mod:`placer.sim.baselines`);
* ``+mask``: placer's residency policy evaluation with lineage, so data derived from restricted
  data is masked too (the fair mask); ``+mask-literal``: only the datasets a job reads
  directly (the region filter bolted onto a baseline, which misses derived data).

``compute-wait+oo-literal+mask-literal`` is therefore Compute-Wait+OO as its paper runs it with a
direct-read mask; ``compute-wait+oo+mask`` is the fair configuration. placer's own strategy
always applies the full policy evaluation. Every strategy takes one parameter, the waiting
budget (see :mod:`placer.sim.baselines`); strategies that do not wait ignore it.
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
    Placement,
    SkyPilotCheapest,
    StarWait,
)
from placer.sim.placer_strategy import PlacerStrategy

_BASES: dict[str, Callable[[float, Residency, Placement], Strategy]] = {
    "onprem-only": lambda b, r, p: OnPremOnly(residency=r),
    "no-wait": lambda b, r, p: NoWait(residency=r, placement=p),
    "constant-wait": lambda b, r, p: ConstantWait(b, residency=r, placement=p),
    "constant-wait-nosj": lambda b, r, p: ConstantWait(b, no_sj=True, residency=r, placement=p),
    "compute-wait": lambda b, r, p: ComputeWait(b, ooo=False, residency=r, placement=p),
    "compute-wait+oo": lambda b, r, p: ComputeWait(b, ooo=True, residency=r, placement=p),
    "star-wait": lambda b, r, p: StarWait(b, residency=r, placement=p),
    "skypilot": lambda b, r, p: SkyPilotCheapest(residency=r),
    "placer": lambda b, r, p: PlacerStrategy(b),
    # placer without its data placement: every job reads from where its data lives
    "placer-noreplicas": lambda b, r, p: PlacerStrategy(b, replicate=False),
}

LITERAL = frozenset(
    {
        "no-wait",
        "constant-wait",
        "constant-wait-nosj",
        "compute-wait",
        "compute-wait+oo",
        "star-wait",
    }
)
"""Bases with a ``-literal`` variant: the baselines whose burst placement was their papers'
cheapest on-demand offer (SkyPilot's is its own; on-prem only never bursts)."""

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
"""What ``--strategies all`` runs: one of each family (8 strategies), each baseline in its fair
configuration."""

_MASKS: tuple[tuple[str, Residency], ...] = (("+mask-literal", "naive"), ("+mask", "policy"))


def strategy_names() -> tuple[str, ...]:
    """Every valid name: each base, its ``-literal`` form where it has one, and each of those
    but placer's with ``+mask`` and ``+mask-literal``."""
    plain = tuple(_BASES) + tuple(f"{b}-literal" for b in _BASES if b in LITERAL)
    masked = tuple(
        f"{b}{suffix}"
        for suffix, _ in reversed(_MASKS)
        for b in plain
        if not b.startswith("placer")
    )
    return plain + masked


def _parse(name: str) -> tuple[str, Residency, Placement]:
    rest = name
    residency: Residency = "none"
    for suffix, mode in _MASKS:
        if rest.endswith(suffix):
            rest, residency = rest.removesuffix(suffix), mode
            break
    placement: Placement = "fair"
    if rest.endswith("-literal") and rest.removesuffix("-literal") in LITERAL:
        rest, placement = rest.removesuffix("-literal"), "literal"
    return rest, residency, placement


def base_name(name: str) -> str:
    """The base strategy of a name: ``compute-wait+oo-literal+mask`` → ``compute-wait+oo``."""
    return _parse(name)[0]


def make_strategy(name: str, budget: float = 0.25) -> Strategy:
    """A fresh strategy (strategies keep per-run state: never share one between runs).

    Raises:
        ConfigError: for an unknown name (the message lists the valid ones) or a negative budget.
    """
    if name not in strategy_names():
        raise ConfigError(f"unknown strategy {name!r}; valid: {', '.join(strategy_names())}")
    if budget < 0:
        raise ConfigError(f"the waiting budget must be >= 0, got {budget}")
    base, residency, placement = _parse(name)
    return _BASES[base](budget, residency, placement)
