"""Validate a :class:`Problem` once and turn it into index-based arrays every method shares.

Every solver works on job *indices* in a deterministic topological order (Kahn's algorithm
that always takes the ready job that comes first in ``problem.jobs``), so the same problem
always gives the same model, the same label order and the same tie-breaks.

Parallel edges between the same pair of jobs are merged: their transfer costs add and their
transfer times take the maximum (the transfers run concurrently), which is exactly what the
cost model says for two edges into the same job.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from placer.optimizer._problem import Link, Option, Problem

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
_T = TypeVar("_T", bound=np.generic)


@dataclass(frozen=True, slots=True)
class CEdge:
    """A merged data dependency ``src -> dst`` between two job indices.

    ``usd[a, b]`` and ``hours[a, b]`` are indexed by the *option* indices of ``src`` and
    ``dst``; ``loc_usd`` / ``loc_hours`` by the indices into ``src_locs`` / ``dst_locs``
    (what the MILP's transportation variables use). ``src_loc_idx`` / ``dst_loc_idx`` are
    those locations' indices into :attr:`Compiled.locations`, and ``gbs`` the merged edges'
    non-zero sizes in input order, so that ``loc_usd == sum(gb * link_usd[A, B])`` and
    ``loc_hours == max(gbs) * link_hours[A, B]`` (the MILP's location classes use this).
    """

    src: int
    dst: int
    usd: FloatArray
    hours: FloatArray
    src_locs: tuple[str, ...]
    dst_locs: tuple[str, ...]
    loc_usd: FloatArray
    loc_hours: FloatArray
    src_loc_idx: IntArray
    dst_loc_idx: IntArray
    gbs: tuple[float, ...]

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

    ``locations`` lists every location an option or a read names (first occurrence first);
    ``opt_loc[j][o]`` is option ``o``'s index into it. ``link_usd[a, b]`` /
    ``link_hours[a, b]`` are the per-GB link price and time (0 on the diagonal, NaN where
    ``problem.links`` has no such link). ``loc_sets`` are the distinct per-job location
    lists (first occurrence first; an edge's ``src_loc_idx`` is one of them) and
    ``job_loc_set[j]`` is job ``j``'s.
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
    locations: tuple[str, ...]
    opt_loc: tuple[IntArray, ...]
    link_usd: FloatArray
    link_hours: FloatArray
    loc_sets: tuple[IntArray, ...]
    job_loc_set: IntArray
    link_kind: IntArray | None = None
    """Where some links have a free allowance or tiers (:attr:`Link.linear` False): per
    location pair the index of its link in :attr:`kinds` (0: priced per GB by ``link_usd``).
    Prices in ``read_usd`` and the edges' ``usd``/``loc_usd`` already include them; location
    classes must not merge pairs of different kinds. None when every link is linear."""
    kinds: tuple[Link | None, ...] = (None,)

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
    options = tuple(tuple(problem.options.get(name, ())) for name in names)
    flat = [o for opts in options for o in opts]
    counts = [len(opts) for opts in options]
    # One pass over all options into one array; the per-option checks run only when the
    # array says something is wrong, to report the first offence in job order.
    num = np.asarray(
        [(o.duration_h, o.compute_usd, o.start_delay_h, o.penalty_usd, o.pool_gpus)
         for o in flat],
        dtype=np.float64,
    ).reshape(len(flat), 5)
    inf = float("inf")
    cap = np.asarray([inf if o.pool is None else capacity.get(o.pool, -1.0) for o in flat])
    ok = (num[:, 0] > 0) & np.all(num[:, 1:4] >= 0, axis=1) & (num[:, 4] >= 0) & (cap >= 0)
    if not (all(counts) and bool(ok.all())):
        for name, opts in zip(names, options, strict=True):
            if not opts:
                raise ValueError(f"job {name!r} has no options")
            for i, o in enumerate(opts):
                _check_option(name, i, o, capacity)
    bounds = np.cumsum([0, *counts]).tolist()
    spans = list(itertools.pairwise(bounds))

    def per_job(values: npt.NDArray[_T]) -> tuple[npt.NDArray[_T], ...]:
        values = np.ascontiguousarray(values)
        return tuple(values[a:b] for a, b in spans)

    dur = per_job(num[:, 0])
    compute = per_job(num[:, 1])
    delay = per_job(num[:, 2])
    penalty = per_job(num[:, 3])
    allowed = per_job(num[:, 4] <= cap)

    # Every location once, as an index, with dense link matrices: the per-edge and per-read
    # prices below are then array slices rather than one dictionary lookup per pair.
    loc_index: dict[str, int] = {}
    flat_loc = [loc_index.setdefault(o.location, len(loc_index)) for o in flat]
    opt_loc = per_job(np.asarray(flat_loc, dtype=np.int64))
    for r in problem.reads:
        loc_index.setdefault(r.location, len(loc_index))
    locations = tuple(loc_index)
    n_loc = len(locations)
    link_usd = np.full((n_loc, n_loc), np.nan)
    link_hours = np.full((n_loc, n_loc), np.nan)
    nonlinear: dict[tuple[int, int], Link] = {}
    for (a, b), link in problem.links.items():
        ia, ib = loc_index.get(a), loc_index.get(b)
        if ia is not None and ib is not None:
            link_usd[ia, ib] = link.usd_per_gb
            link_hours[ia, ib] = link.hours_per_gb
            if not link.linear and ia != ib:
                nonlinear[ia, ib] = link
    np.fill_diagonal(link_usd, 0.0)  # moving data within one location is free and instant
    np.fill_diagonal(link_hours, 0.0)
    # Links with a free allowance or tiers: their pairs are marked, and every price below that
    # crosses one is the link's own function of the GB moved, not GB x usd_per_gb.
    link_kind: IntArray | None = None
    kinds: list[Link | None] = [None]
    if nonlinear:
        link_kind = np.zeros((n_loc, n_loc), dtype=np.int64)
        kind_of: dict[Link, int] = {}
        for (ia, ib), link in nonlinear.items():
            key = Link(link.usd_per_gb, 0.0, free_gb=link.free_gb, tiers=link.tiers)
            if key not in kind_of:
                kind_of[key] = len(kinds)
                kinds.append(key)
            link_kind[ia, ib] = kind_of[key]

    def missing(a: int, b: int, why: str) -> ValueError:
        return ValueError(f"no link from {locations[a]!r} to {locations[b]!r} (needed by {why})")

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
        src_loc = loc_index[r.location]
        usd_row, hours_row = link_usd[src_loc, opt_loc[j]], link_hours[src_loc, opt_loc[j]]
        bad = np.flatnonzero(np.isnan(usd_row))
        if bad.size:
            raise missing(src_loc, int(opt_loc[j][bad[0]]), f"a read by {r.job!r}")
        read_usd[j] += r.gb * usd_row
        if link_kind is not None:
            for oi in np.flatnonzero(link_kind[src_loc, opt_loc[j]]).tolist():
                kind = kinds[int(link_kind[src_loc, opt_loc[j][oi]])]
                assert kind is not None
                read_usd[j][oi] += kind.usd(r.gb) - r.gb * float(usd_row[oi])
        read_h[j] = np.maximum(read_h[j], r.gb * hours_row)

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
    # Per job: its distinct locations (first occurrence first), as an interned set id, and
    # each option's position among them.
    set_id: dict[tuple[int, ...], int] = {}
    job_set: list[int] = []
    job_pos: list[IntArray] = []
    at = 0
    for k in counts:
        locs = flat_loc[at : at + k]
        at += k
        distinct = tuple(dict.fromkeys(locs))
        pos = {loc: i for i, loc in enumerate(distinct)}
        job_set.append(set_id.setdefault(distinct, len(set_id)))
        job_pos.append(np.asarray([pos[loc] for loc in locs], dtype=np.int64))
    sets = [np.asarray(s, dtype=np.int64) for s in set_id]
    set_names = [tuple(locations[i] for i in s) for s in set_id]
    # Per pair of location sets: the link price and time matrices, and the first missing link.
    pair_links: dict[tuple[int, int], tuple[FloatArray, FloatArray, IntArray]] = {}
    cedges: list[CEdge] = []
    in_edges: list[list[int]] = [[] for _ in names]
    out_edges: list[list[int]] = [[] for _ in names]
    for (s, d), gbs in merged.items():
        a_set, b_set = job_set[s], job_set[d]
        a_idx, b_idx = sets[a_set], sets[b_set]
        si, di = job_pos[s], job_pos[d]
        nonzero = tuple(gb for gb in gbs if gb != 0)
        if nonzero:
            found = pair_links.get((a_set, b_set))
            if found is None:
                usd = link_usd[a_idx[:, None], b_idx]
                found = (usd, link_hours[a_idx[:, None], b_idx], np.argwhere(np.isnan(usd)))
                pair_links[a_set, b_set] = found
            usd, hours, bad = found
            if bad.size:
                a, b = bad[0]
                raise missing(int(a_idx[a]), int(b_idx[b]),
                              f"edge {names[s]!r} -> {names[d]!r}")
            # The arithmetic (and its order) of summing each edge's gb x price from zero.
            loc_usd = nonzero[0] * usd
            loc_hours = np.maximum(nonzero[0] * hours, 0.0)
            for gb in nonzero[1:]:
                loc_usd = loc_usd + gb * usd
                loc_hours = np.maximum(loc_hours, gb * hours)
            if link_kind is not None:
                sub = link_kind[a_idx[:, None], b_idx]
                for ai, bi in np.argwhere(sub):
                    kind = kinds[int(sub[ai, bi])]
                    assert kind is not None
                    loc_usd[ai, bi] = sum(kind.usd(gb) for gb in nonzero)
            opt_usd = loc_usd.take(si, 0).take(di, 1)
            opt_hours = loc_hours.take(si, 0).take(di, 1)
        else:
            loc_usd = loc_hours = np.zeros((a_idx.size, b_idx.size))
            opt_usd = opt_hours = np.zeros((si.size, di.size))
        e_idx = len(cedges)
        cedges.append(
            CEdge(
                src=s,
                dst=d,
                usd=opt_usd,
                hours=opt_hours,
                src_locs=set_names[a_set],
                dst_locs=set_names[b_set],
                loc_usd=loc_usd,
                loc_hours=loc_hours,
                src_loc_idx=a_idx,
                dst_loc_idx=b_idx,
                gbs=nonzero,
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
        locations=locations,
        opt_loc=opt_loc,
        link_usd=link_usd,
        link_hours=link_hours,
        loc_sets=tuple(sets),
        job_loc_set=np.asarray(job_set, dtype=np.int64),
        link_kind=link_kind,
        kinds=tuple(kinds),
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
        # In row blocks: a float copy of the whole n x n matrix is 800 MB at 10,000 jobs.
        worst = np.empty(c.n)
        for lo in range(0, c.n, 1024):
            worst[lo:lo + 1024] = incomparable[lo:lo + 1024].astype(np.float64) @ g
        risky = [int(j) for j in np.flatnonzero((g > 0) & (worst > c.problem.capacity[pool]))]
        if risky:
            result[pool] = risky
    return result
