"""The optimizer's input: jobs, their options, the data that moves between them, and capacity.

These are plain frozen dataclasses (with ``__slots__`` for the per-option records) rather than
pydantic models because they sit on the solver's hot path: a 1,000-job problem holds thousands
of :class:`Option` objects and is read many times per solve. User-facing validation happens in
``placer.models``; the builder that turns a pipeline into a :class:`Problem` guarantees the
basic shape, and :func:`placer.optimizer.solve` re-checks what would otherwise give a wrong
answer silently (unknown jobs, cycles, missing links, unknown pools).

Cost model (implemented identically by every method):

* a job's compute cost is its chosen option's ``compute_usd``;
* an :class:`Edge` moving ``gb`` from location ``a`` (where ``src`` runs) to ``b`` (where
  ``dst`` runs) costs ``gb * usd_per_gb(a→b)`` and takes ``gb * hours_per_gb(a→b)``; a
  :class:`Read` moves its dataset from its location to the job's the same way; moving data
  within one location is free and instant;
* ``start_j = max(0, max_edges(end_src + transfer_h), max_reads(transfer_h)) + start_delay_h``
  and ``end_j = start_j + duration_h``; a job starts later only when pool capacity forces it;
* jobs on the same ``pool`` whose run intervals ``[start, end)`` overlap never use more than
  ``capacity[pool]`` GPUs at any instant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Option:
    """One way to run one job: a site, a GPU type, on-demand or spot.

    Attributes:
        site: Site name, only reported back.
        location: Location key (``"aws:eu-west-1"``); prices and times transfers.
        gpu: GPU type, only reported back.
        spot: Whether this is a spot offer, only reported back.
        duration_h: Run time on this option in hours (> 0).
        compute_usd: Cost of running the job here (>= 0).
        start_delay_h: Provisioning latency: the job starts this long after its inputs arrive.
        penalty_usd: Soft-preference penalty; counts in the cost objective, never in the
            reported cost, so a preference can steer a choice without lying about the bill.
        pool: Capacity pool key (an on-prem GPU pool); ``None`` means unbounded cloud capacity.
        pool_gpus: GPUs taken from ``pool`` while the job runs.
    """

    site: str
    location: str
    gpu: str
    spot: bool
    duration_h: float
    compute_usd: float
    start_delay_h: float = 0.0
    penalty_usd: float = 0.0
    pool: str | None = None
    pool_gpus: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    """Price and speed of moving data from one location to another (per GB).

    A transfer of ``gb`` costs ``gb * usd_per_gb`` unless the link has a free allowance or
    volume tiers (SkyPilot's affine egress: AWS and Azure charge nothing for the first GB;
    cheaper tiers past 10 TB): then the first ``free_gb`` are free, ``usd_per_gb`` applies
    up to the first tier, and each ``(from_gb, usd_per_gb)`` of ``tiers`` from its threshold
    on, marginally. Each transfer is priced on its own (a monthly allowance shared by every
    transfer of an account is not modelled).

    >>> Link(0.09, 0.0, free_gb=1.0, tiers=((10240.0, 0.085),)).usd(11264.0)
    1008.55
    """

    usd_per_gb: float
    hours_per_gb: float
    free_gb: float = 0.0
    tiers: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        last = self.free_gb
        if not self.free_gb >= 0:
            raise ValueError(f"free_gb must be >= 0, got {self.free_gb}")
        for lo, rate in self.tiers:
            if not lo > last or not rate >= 0:
                raise ValueError(f"tiers must start above free_gb in increasing order with "
                                 f"prices >= 0, got {self.tiers} (free_gb {self.free_gb})")
            last = lo

    def __repr__(self) -> str:
        # Without an allowance or tiers, as before those fields existed (stable digests).
        extra = "" if self.linear else f", free_gb={self.free_gb!r}, tiers={self.tiers!r}"
        return f"Link(usd_per_gb={self.usd_per_gb!r}, hours_per_gb={self.hours_per_gb!r}{extra})"

    @property
    def linear(self) -> bool:
        """Whether every GB costs ``usd_per_gb`` (no allowance, no tiers)."""
        return not self.free_gb and not self.tiers

    def usd(self, gb: float) -> float:
        """What moving ``gb`` over this link costs."""
        if self.linear:
            return gb * self.usd_per_gb
        steps = ((self.free_gb, self.usd_per_gb), *self.tiers)
        total = 0.0
        for k, (lo, rate) in enumerate(steps):
            hi = steps[k + 1][0] if k + 1 < len(steps) else float("inf")
            if gb > lo:
                total += (min(gb, hi) - lo) * rate
        return total


@dataclass(frozen=True, slots=True)
class Edge:
    """Job ``dst`` consumes ``gb`` produced by job ``src`` (``gb == 0``: ordering only)."""

    src: str
    dst: str
    gb: float


@dataclass(frozen=True, slots=True)
class Read:
    """Job ``job`` reads a stored dataset of ``gb`` that lives at ``location``."""

    job: str
    location: str
    gb: float


@dataclass(frozen=True)
class Problem:
    """A placement problem: which option for each job, and when it runs.

    Attributes:
        jobs: Job names, in any order (the DAG is given by ``edges``). The order is the
            tie-break order: among equally good plans, solvers prefer lower option indices
            for earlier jobs.
        options: Per job, a non-empty tuple of options; a plan picks one index per job.
        edges: Data dependencies between jobs.
        reads: Stored datasets read by jobs.
        links: ``(from_location, to_location) -> Link``. Moving data within one location is
            always free and instant; a pair of distinct locations that a plan could need but
            that is missing here is a ``ValueError`` naming the pair.
        capacity: Pool key -> GPUs in that pool.
    """

    jobs: tuple[str, ...]
    options: Mapping[str, tuple[Option, ...]]
    edges: tuple[Edge, ...] = ()
    reads: tuple[Read, ...] = ()
    links: Mapping[tuple[str, str], Link] = field(default_factory=dict)
    capacity: Mapping[str, int] = field(default_factory=dict)
