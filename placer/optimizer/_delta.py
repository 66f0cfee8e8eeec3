"""What one job's move would do to a plan, every other job held where it is; exact, no re-solve.

A plan's explanation says, for each job and each option it did not take, how the plan's cost
and makespan would change if that job alone moved there. Re-evaluating the whole plan per
option costs O(N) each, O(N² · options) in all. Both answers are local instead:

* **cost** is a sum over jobs, reads and edges, so a move changes only the job's own compute,
  penalty and reads and the transfers on its own in- and out-edges;
* **makespan** (uncapacitated: the earliest-start schedule of :func:`evaluate`, which ignores
  pools) is the longest path of the DAG, jobs weighted by ``start_delay_h + duration_h``,
  edges by their transfer time, a job's reads by theirs. A move of job ``v`` changes only the
  weights of ``v`` and of its edges, so the new makespan is the larger of the longest path
  *through* ``v`` (the longest path into ``v`` from the earliest-finish times of its
  predecessors, which do not change, plus its longest tail after it) and the longest path
  *avoiding* ``v``, which does not change either.

The longest path avoiding ``v``, for every ``v`` at once, comes from one topological order: a
path that avoids ``v`` lies wholly before ``v``, wholly after it, or jumps over it on an edge
``a -> b`` with ``a`` before and ``b`` after; a sweep with a heap keeps the best such edge.
Everything is O((N + E) log E + Σ options · degree), never a re-compile.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from placer.optimizer._problem import Link, Option, Problem

FloatArray = npt.NDArray[np.float64]

#: Makespan deltas closer to zero than this (relative to the makespan) are float rounding of
#: two sums of the same path taken in another order, and are reported as exactly zero.
REL_ZERO = 1e-9


@dataclass(frozen=True, slots=True)
class MoveDeltas:
    """One job's moves: per option index, the change if the job alone took that option.

    Attributes:
        cost_usd: Change of the real cost (compute + data moved), as :func:`evaluate` prices.
        penalty_usd: Change of the soft-preference penalties (objective only).
        makespan_h: Change of the uncapacitated makespan (on-prem pools ignored, as in
            :func:`evaluate`).
    """

    cost_usd: tuple[float, ...]
    penalty_usd: tuple[float, ...]
    makespan_h: tuple[float, ...]


def move_deltas(
    problem: Problem, choice: Mapping[str, int], jobs: Collection[str] | None = None
) -> dict[str, MoveDeltas]:
    """For every job (or only ``jobs``) and each of its options, what moving there would do.

    Equal to ``evaluate(problem, {**choice, job: i})`` minus ``evaluate(problem, choice)``
    for cost and makespan (up to float rounding), in one pass over the problem.

    Raises:
        ValueError: ``choice`` misses a job or names an option out of range, the edges form a
            cycle, or a link that some move needs is missing.
    """
    return _Deltas(problem, choice).moves(problem.jobs if jobs is None else jobs)


class _Deltas:
    """The current plan's longest paths, and every option of every job in flat arrays.

    Options are numbered job after job (``off[j]`` is job ``j``'s first); an edge's moves are
    the options of one end against the chosen option of the other, so each edge is expanded
    once over its moving end's options and reduced with ``ufunc.at``: no per-job numpy calls.
    """

    def __init__(self, problem: Problem, choice: Mapping[str, int]) -> None:
        names = tuple(problem.jobs)
        self.names = names
        self.index = index = {name: j for j, name in enumerate(names)}
        n = len(names)
        locs: dict[str, int] = {}
        counts: list[int] = []
        cur: list[int] = []
        flat: list[Option] = []
        for name in names:
            opts = problem.options.get(name, ())
            o = choice.get(name)
            if o is None:
                raise ValueError(f"choice has no option for job {name!r}")
            if not 0 <= o < len(opts):
                raise ValueError(f"job {name!r}: option {o} out of range 0..{len(opts) - 1}")
            cur.append(o)
            counts.append(len(opts))
            flat.extend(opts)
        loc_l = [locs.setdefault(x.location, len(locs)) for x in flat]
        for r in problem.reads:
            locs.setdefault(r.location, len(locs))
        self.keys = keys = list(locs)
        # Per-GB price and time between every pair of locations; NaN where no link is given
        # (a move that needs one raises, as compile_problem would have).
        usd = np.full((len(keys), len(keys)), np.nan)
        hours = np.full((len(keys), len(keys)), np.nan)
        np.fill_diagonal(usd, 0.0)
        np.fill_diagonal(hours, 0.0)
        # Links with a free allowance or tiers price a transfer by its size (Link.usd).
        self.nonlinear: dict[tuple[int, int], Link] = {}
        for (a, b), link in problem.links.items():
            ia, ib = locs.get(a), locs.get(b)
            if ia is not None and ib is not None and ia != ib:
                usd[ia, ib] = link.usd_per_gb
                hours[ia, ib] = link.hours_per_gb
                if not link.linear:
                    self.nonlinear[ia, ib] = link
        self.usd_table, self.hours_table = usd, hours

        self.counts = np.asarray(counts, dtype=np.intp)
        self.off = off = np.concatenate(([0], np.cumsum(self.counts))).astype(np.intp)
        self.job_of = np.repeat(np.arange(n, dtype=np.intp), self.counts)
        self.loc = np.asarray(loc_l, dtype=np.intp)
        self.dur = np.asarray([x.duration_h for x in flat], dtype=np.float64)
        self.delay = np.asarray([x.start_delay_h for x in flat], dtype=np.float64)
        self.compute = np.asarray([x.compute_usd for x in flat], dtype=np.float64)
        self.penalty = np.asarray([x.penalty_usd for x in flat], dtype=np.float64)
        self.cur = cur
        self.chosen = off[:-1] + np.asarray(cur, dtype=np.intp)  # flat index of each choice

        # Reads: cost adds, time is the longest (they run concurrently from time 0).
        self.read_usd = np.zeros(len(loc_l))
        self.read_h = np.zeros(len(loc_l))
        for r in problem.reads:
            j = index.get(r.job)
            if j is None:
                raise ValueError(f"read of {r.location!r} by unknown job {r.job!r}")
            if r.gb == 0:
                continue
            ks = np.arange(off[j], off[j + 1])
            per_gb = self._pair(usd, locs[r.location], self.loc[ks], f"a read by {r.job!r}")
            self.read_usd[ks] += self._priced(r.gb * per_gb, np.full(len(ks), r.gb),
                                              np.full(len(ks), locs[r.location]), self.loc[ks])
            np.maximum.at(self.read_h, ks, r.gb * hours[locs[r.location], self.loc[ks]])

        # Edges as (src, dst, gb); parallel edges stay separate (costs add, times take the max).
        src, dst, gbs = [], [], []
        for e in problem.edges:
            s, d = index.get(e.src), index.get(e.dst)
            if s is None or d is None:
                raise ValueError(f"edge {e.src!r} -> {e.dst!r} names an unknown job")
            src.append(s)
            dst.append(d)
            gbs.append(e.gb)
        self.src = np.asarray(src, dtype=np.intp)
        self.dst = np.asarray(dst, dtype=np.intp)
        self.gb = np.asarray(gbs, dtype=np.float64)
        out_e: list[list[int]] = [[] for _ in names]
        for i, s in enumerate(src):
            out_e[s].append(i)
        topo = _topological(n, src, dst, out_e, names)

        # The plan as it is: each edge's transfer time, earliest finishes, longest tails.
        cloc = self.loc[self.chosen]
        moving = self.gb > 0
        bad = moving & np.isnan(usd[cloc[self.src], cloc[self.dst]])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"no link from {keys[cloc[src[i]]]!r} to {keys[cloc[dst[i]]]!r} "
                             f"(needed by edge {names[src[i]]!r} -> {names[dst[i]]!r})")
        edge_h = np.where(moving, self.gb * np.nan_to_num(hours[cloc[self.src], cloc[self.dst]]),
                          0.0).tolist()
        delay_c = self.delay[self.chosen].tolist()
        dur_c = self.dur[self.chosen].tolist()
        read_c = self.read_h[self.chosen].tolist()
        in_e: list[list[int]] = [[] for _ in names]
        for i, d in enumerate(dst):
            in_e[d].append(i)
        end = [0.0] * n
        for j in topo:  # earliest finish, as evaluate() schedules it
            ready = read_c[j]
            for i in in_e[j]:
                ready = max(ready, end[src[i]] + edge_h[i])
            end[j] = ready + delay_c[j] + dur_c[j]
        w = [delay_c[j] + dur_c[j] for j in range(n)]
        after = [0.0] * n  # longest time from j's end to the makespan, through its successors
        for j in reversed(topo):
            best = 0.0
            for i in out_e[j]:
                d = dst[i]
                best = max(best, edge_h[i] + w[d] + after[d])
            after[j] = best
        self.end = np.asarray(end)
        self.rest = np.asarray(w) + np.asarray(after)  # from a job's ready time to the end
        self.makespan = max(end, default=0.0)
        self.avoid = np.asarray(_longest_avoiding(topo, end, after, w, read_c, src, dst, edge_h))

    def _pair(self, table: FloatArray, a: npt.NDArray[np.intp] | int,
              b: npt.NDArray[np.intp] | int, why: str) -> FloatArray:
        """Per-GB figures from ``a`` to ``b`` (element-wise); a missing link raises."""
        got = np.asarray(table[a, b], dtype=np.float64)
        if np.isnan(got).any():
            i = int(np.flatnonzero(np.isnan(got).ravel())[0])
            ia = int(np.broadcast_to(a, got.shape).ravel()[i])
            ib = int(np.broadcast_to(b, got.shape).ravel()[i])
            raise ValueError(f"no link from {self.keys[ia]!r} to {self.keys[ib]!r} (needed by "
                             f"{why})")
        return got

    def _expand(self, moving_end: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.intp],
                                                                   npt.NDArray[np.intp]]:
        """(edge, flat option) for every option of each edge's ``moving_end`` job."""
        per = self.counts[moving_end]
        edge = np.repeat(np.arange(len(moving_end), dtype=np.intp), per)
        first = np.repeat(self.off[moving_end] - (np.cumsum(per) - per), per)
        return edge, first + np.arange(len(edge), dtype=np.intp)

    def _edge_figures(self, edge: npt.NDArray[np.intp], a: npt.NDArray[np.intp],
                      b: npt.NDArray[np.intp]) -> tuple[FloatArray, FloatArray]:
        """USD and hours of moving each ``edge``'s data from location ``a`` to ``b``."""
        gb = self.gb[edge]
        moving = gb > 0
        usd = np.zeros(len(edge))
        hours = np.zeros(len(edge))
        if moving.any():
            e, la, lb = edge[moving], a[moving], b[moving]
            bad = np.isnan(self.usd_table[la, lb])
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"no link from {self.keys[la[i]]!r} to {self.keys[lb[i]]!r} (needed by "
                    f"edge {self.names[self.src[e[i]]]!r} -> {self.names[self.dst[e[i]]]!r})")
            usd[moving] = self._priced(gb[moving] * self.usd_table[la, lb], gb[moving], la, lb)
            hours[moving] = gb[moving] * self.hours_table[la, lb]
        return usd, hours

    def _priced(self, linear: FloatArray, gb: FloatArray, a: npt.NDArray[np.intp],
                b: npt.NDArray[np.intp]) -> FloatArray:
        """``linear`` (GB x per-GB price) with the transfers over a link with an allowance or
        tiers priced by that link instead."""
        if not self.nonlinear:
            return linear
        out = linear.copy()
        for i, (ia, ib) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
            link = self.nonlinear.get((ia, ib))
            if link is not None:
                out[i] = link.usd(float(gb[i]))
        return out

    def moves(self, jobs: Collection[str]) -> dict[str, MoveDeltas]:
        cloc = self.loc[self.chosen]
        usd = self.compute + self.read_usd
        ready = self.read_h.copy()
        # In-edges: the destination moves, the source stays where the plan put it.
        edge, k = self._expand(self.dst)
        e_usd, e_h = self._edge_figures(edge, cloc[self.src[edge]], self.loc[k])
        np.add.at(usd, k, e_usd)
        np.maximum.at(ready, k, self.end[self.src[edge]] + e_h)
        # Out-edges: the source moves; after it, the transfer and the destination's longest run.
        edge, k = self._expand(self.src)
        e_usd, e_h = self._edge_figures(edge, self.loc[k], cloc[self.dst[edge]])
        np.add.at(usd, k, e_usd)
        tail = np.zeros(len(usd))
        np.maximum.at(tail, k, e_h + self.rest[self.dst[edge]])
        through = ready + self.delay + self.dur + tail
        dh = np.maximum(through, self.avoid[self.job_of]) - self.makespan
        dh[np.abs(dh) <= REL_ZERO * max(1.0, self.makespan)] = 0.0
        dh[self.chosen] = 0.0
        dc = usd - usd[self.chosen][self.job_of]
        dc[self.chosen] = 0.0
        dp = self.penalty - self.penalty[self.chosen][self.job_of]
        cost_l, pen_l, h_l = dc.tolist(), dp.tolist(), dh.tolist()
        off = self.off.tolist()
        out: dict[str, MoveDeltas] = {}
        for name in jobs:
            j = self.index[name]
            a, b = off[j], off[j + 1]
            out[name] = MoveDeltas(cost_usd=tuple(cost_l[a:b]), penalty_usd=tuple(pen_l[a:b]),
                                   makespan_h=tuple(h_l[a:b]))
        return out


def _topological(n: int, src: list[int], dst: list[int], out_e: list[list[int]],
                 names: tuple[str, ...]) -> list[int]:
    indeg = [0] * n
    for d in dst:
        indeg[d] += 1
    ready = [j for j in range(n) if indeg[j] == 0]
    order: list[int] = []
    while ready:
        j = ready.pop()
        order.append(j)
        for i in out_e[j]:
            d = dst[i]
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    if len(order) != n:
        stuck = sorted(names[j] for j in range(n) if indeg[j] > 0)
        raise ValueError(f"edges form a cycle through jobs {stuck}")
    return order


def _longest_avoiding(topo: list[int], end: list[float], after: list[float], w: list[float],
                      read_h: list[float], src: list[int], dst: list[int],
                      edge_h: list[float]) -> list[float]:
    """Per job ``v``, the longest path of the current plan that does not pass through ``v``.

    With ``pos`` a topological order, such a path lies wholly before ``v`` (its length is some
    earlier job's finish), wholly after ``v`` (some later job's reads, run and tail), or it
    takes an edge ``a -> b`` with ``pos[a] < pos[v] < pos[b]`` (``end[a]`` + the transfer +
    ``b``'s run and tail). A max-heap of such edges, swept along the order, gives the third.
    """
    n = len(topo)
    pos = [0] * n
    for p, j in enumerate(topo):
        pos[j] = p
    before = [0.0] * (n + 1)
    for p, j in enumerate(topo):
        before[p + 1] = max(before[p], end[j])
    later = [0.0] * (n + 1)
    for p in range(n - 1, -1, -1):
        j = topo[p]
        later[p] = max(later[p + 1], read_h[j] + w[j] + after[j])
    jumps = sorted(
        (pos[a] + 1, pos[b], end[a] + edge_h[i] + w[b] + after[b])
        for i, (a, b) in enumerate(zip(src, dst, strict=True)) if pos[b] - pos[a] > 1
    )
    heap: list[tuple[float, int]] = []
    k = 0
    out = [0.0] * n
    for p, v in enumerate(topo):
        while k < len(jumps) and jumps[k][0] <= p:
            heapq.heappush(heap, (-jumps[k][2], jumps[k][1]))
            k += 1
        while heap and heap[0][1] <= p:
            heapq.heappop(heap)
        over = -heap[0][0] if heap else 0.0
        out[v] = max(before[p], later[p + 1], over)
    return out
