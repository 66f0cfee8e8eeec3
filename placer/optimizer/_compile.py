"""Validate a :class:`Problem` once and turn it into index-based arrays every method shares.

Every solver works on job *indices* in a deterministic topological order (Kahn's algorithm
that always takes the ready job that comes first in ``problem.jobs``), so the same problem
always gives the same model, the same label order and the same tie-breaks.

Parallel edges between the same pair of jobs are merged: their transfer costs add and their
transfer times take the maximum (the transfers run concurrently), which is exactly what the
cost model says for two edges into the same job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from placer.optimizer._problem import Link, Option, Problem

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class CEdge:
    """A merged data dependency ``src -> dst`` between two job indices.

    ``usd[a, b]`` and ``hours[a, b]`` are indexed by the *option* indices of ``src`` and
    ``dst``; ``loc_usd`` / ``loc_hours`` by the indices into ``src_locs`` / ``dst_locs``
    (what the MILP's transportation variables use).
    """

    src: int
    dst: int
    usd: FloatArray
    hours: FloatArray
    src_locs: tuple[str, ...]
    dst_locs: tuple[str, ...]
    loc_usd: FloatArray
    loc_hours: FloatArray

    @property
    def moves_data(self) -> bool:
        """Whether any placement makes this edge cost money or take time."""
        return bool(np.any(self.loc_usd > 0) or np.any(self.loc_hours > 0))


@dataclass(frozen=True, slots=True)
class Compiled:
    """A validated problem in index form.

    Per-job arrays are indexed by option. ``allowed[j][o]`` is False when the option needs
    more GPUs than its pool has (such an option can never run). ``read_usd`` sums the job's
    reads for each option; ``read_h`` is the longest of them (reads run concurrently from
    time 0).
    """

    problem: Problem
    names: tuple[str, ...]
    index: Mapping[str, int]
    topo: tuple[int, ...]
    options: tuple[tuple[Option, ...], ...]
    dur: tuple[FloatArray, ...]
    delay: tuple[FloatArray, ...]
    compute: tuple[FloatArray, ...]
    penalty: tuple[FloatArray, ...]
    read_usd: tuple[FloatArray, ...]
    read_h: tuple[FloatArray, ...]
    allowed: tuple[BoolArray, ...]
    edges: tuple[CEdge, ...]
    in_edges: tuple[tuple[int, ...], ...]
    out_edges: tuple[tuple[int, ...], ...]

    @property
    def n(self) -> int:
        """Number of jobs."""
        return len(self.names)

    def reach(self) -> BoolArray:
        """``R[i, k]`` is True when job ``i`` is a (transitive) predecessor of job ``k``."""
        n = self.n
        reach = np.zeros((n, n), dtype=np.bool_)
        for k in self.topo:
            for e in self.in_edges[k]:
                i = self.edges[e].src
                reach[:, k] |= reach[:, i]
                reach[i, k] = True
        return reach


def _link(links: Mapping[tuple[str, str], Link], a: str, b: str, why: str) -> tuple[float, float]:
    if a == b:
        return 0.0, 0.0
    link = links.get((a, b))
    if link is None:
        raise ValueError(f"no link from {a!r} to {b!r} (needed by {why})")
    return link.usd_per_gb, link.hours_per_gb


def _topological(names: tuple[str, ...], pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    import heapq

    n = len(names)
    indeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    for s, d in pairs:
        succ[s].append(d)
        indeg[d] += 1
    ready = [j for j in range(n) if indeg[j] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        j = heapq.heappop(ready)
        order.append(j)
        for k in succ[j]:
            indeg[k] -= 1
            if indeg[k] == 0:
                heapq.heappush(ready, k)
    if len(order) != n:
        stuck = sorted(names[j] for j in range(n) if indeg[j] > 0)
        raise ValueError(f"edges form a cycle through jobs {stuck}")
    return tuple(order)


def _check_option(job: str, i: int, o: Option, capacity: Mapping[str, int]) -> None:
    where = f"job {job!r} option {i}"
    if not o.duration_h > 0:
        raise ValueError(f"{where}: duration_h must be > 0, got {o.duration_h}")
    for name in ("compute_usd", "start_delay_h", "penalty_usd"):
        if not getattr(o, name) >= 0:
            raise ValueError(f"{where}: {name} must be >= 0, got {getattr(o, name)}")
    if o.pool is not None and o.pool not in capacity:
        raise ValueError(f"{where}: unknown pool {o.pool!r} (not in capacity)")
    if o.pool_gpus < 0:
        raise ValueError(f"{where}: pool_gpus must be >= 0, got {o.pool_gpus}")


def compile_problem(problem: Problem) -> Compiled:
    """Validate ``problem`` and build its index form.

    Raises:
        ValueError: duplicate or unknown jobs, a job without options, a cycle, a negative
            size or price, an unknown pool, or a missing link between two distinct
            locations that some plan would need (the message names the pair).
    """
    names = tuple(problem.jobs)
    index = {name: j for j, name in enumerate(names)}
    if len(index) != len(names):
        raise ValueError("duplicate job names in problem.jobs")
    unknown = sorted(set(problem.options) - set(index))
    if unknown:
        raise ValueError(f"options given for unknown jobs {unknown}")
    capacity = problem.capacity
    for pool, gpus in capacity.items():
        if gpus < 0:
            raise ValueError(f"pool {pool!r}: capacity must be >= 0, got {gpus}")
    options: list[tuple[Option, ...]] = []
    for name in names:
        opts = tuple(problem.options.get(name, ()))
        if not opts:
            raise ValueError(f"job {name!r} has no options")
        for i, o in enumerate(opts):
            _check_option(name, i, o, capacity)
        options.append(opts)

    def arr(values: list[float]) -> FloatArray:
        return np.asarray(values, dtype=np.float64)

    dur = tuple(arr([o.duration_h for o in opts]) for opts in options)
    delay = tuple(arr([o.start_delay_h for o in opts]) for opts in options)
    compute = tuple(arr([o.compute_usd for o in opts]) for opts in options)
    penalty = tuple(arr([o.penalty_usd for o in opts]) for opts in options)
    allowed = tuple(
        np.asarray(
            [o.pool is None or o.pool_gpus <= capacity[o.pool] for o in opts], dtype=np.bool_
        )
        for opts in options
    )

    read_usd = [np.zeros(len(opts)) for opts in options]
    read_h = [np.zeros(len(opts)) for opts in options]
    for r in problem.reads:
        if r.job not in index:
            raise ValueError(f"read of {r.location!r} by unknown job {r.job!r}")
        if not r.gb >= 0:
            raise ValueError(f"read by {r.job!r}: gb must be >= 0, got {r.gb}")
        j = index[r.job]
        if r.gb == 0:
            continue
        for i, o in enumerate(options[j]):
            usd, hours = _link(problem.links, r.location, o.location, f"a read by {r.job!r}")
            read_usd[j][i] += r.gb * usd
            read_h[j][i] = max(read_h[j][i], r.gb * hours)

    merged: dict[tuple[int, int], list[float]] = {}
    for e in problem.edges:
        for end in (e.src, e.dst):
            if end not in index:
                raise ValueError(f"edge {e.src!r} -> {e.dst!r} names unknown job {end!r}")
        if e.src == e.dst:
            raise ValueError(f"edge {e.src!r} -> {e.dst!r} is a self-loop")
        if not e.gb >= 0:
            raise ValueError(f"edge {e.src!r} -> {e.dst!r}: gb must be >= 0, got {e.gb}")
        merged.setdefault((index[e.src], index[e.dst]), []).append(e.gb)

    topo = _topological(names, list(merged))
    cedges: list[CEdge] = []
    in_edges: list[list[int]] = [[] for _ in names]
    out_edges: list[list[int]] = [[] for _ in names]
    for (s, d), gbs in merged.items():
        src_locs = tuple(dict.fromkeys(o.location for o in options[s]))
        dst_locs = tuple(dict.fromkeys(o.location for o in options[d]))
        loc_usd = np.zeros((len(src_locs), len(dst_locs)))
        loc_hours = np.zeros((len(src_locs), len(dst_locs)))
        why = f"edge {names[s]!r} -> {names[d]!r}"
        for a, la in enumerate(src_locs):
            for b, lb in enumerate(dst_locs):
                for gb in gbs:
                    if gb == 0:
                        continue
                    usd, hours = _link(problem.links, la, lb, why)
                    loc_usd[a, b] += gb * usd
                    loc_hours[a, b] = max(loc_hours[a, b], gb * hours)
        si = np.asarray([src_locs.index(o.location) for o in options[s]])
        di = np.asarray([dst_locs.index(o.location) for o in options[d]])
        e_idx = len(cedges)
        cedges.append(
            CEdge(
                src=s,
                dst=d,
                usd=loc_usd[np.ix_(si, di)],
                hours=loc_hours[np.ix_(si, di)],
                src_locs=src_locs,
                dst_locs=dst_locs,
                loc_usd=loc_usd,
                loc_hours=loc_hours,
            )
        )
        in_edges[d].append(e_idx)
        out_edges[s].append(e_idx)

    return Compiled(
        problem=problem,
        names=names,
        index=index,
        topo=topo,
        options=tuple(options),
        dur=dur,
        delay=delay,
        compute=compute,
        penalty=penalty,
        read_usd=tuple(read_usd),
        read_h=tuple(read_h),
        allowed=allowed,
        edges=tuple(cedges),
        in_edges=tuple(tuple(x) for x in in_edges),
        out_edges=tuple(tuple(x) for x in out_edges),
    )


def risky_jobs(c: Compiled, reach: BoolArray | None = None) -> dict[str, list[int]]:
    """Per pool, the jobs that could take part in overcommitting it (sorted job indices).

    A set of jobs can overcommit a pool only if they can all run at once, i.e. they are
    pairwise incomparable in the DAG (a successor always starts after its predecessor ends).
    If job ``j``'s largest demand on the pool plus the largest demands of *all* jobs
    incomparable with ``j`` fits, no overcommitting set contains ``j``. Any overcommitting
    set consists only of jobs failing this test, so constraining those jobs alone is exact.
    Pools with no such jobs get no capacity constraints at all.
    """
    demand: dict[str, FloatArray] = {}
    for j, opts in enumerate(c.options):
        for o, opt in enumerate(opts):
            if opt.pool is None or opt.pool_gpus == 0 or not c.allowed[j][o]:
                continue
            vec = demand.setdefault(opt.pool, np.zeros(c.n))
            vec[j] = max(vec[j], opt.pool_gpus)
    if not demand:
        return {}
    if reach is None:
        reach = c.reach()
    incomparable = ~(reach | reach.T)
    result: dict[str, list[int]] = {}
    for pool in sorted(demand):
        g = demand[pool]
        # incomparable includes the diagonal (a job is not its own predecessor): j counts itself.
        worst = incomparable.astype(np.float64) @ g
        risky = [int(j) for j in np.flatnonzero((g > 0) & (worst > c.problem.capacity[pool]))]
        if risky:
            result[pool] = risky
    return result
