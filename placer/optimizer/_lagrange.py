r"""Lagrangian relaxation for min cost under a deadline and contended pools, with a certificate.

The exact MILP needs an ordering binary per pair of jobs that may share a pool, and even
without capacity a deadline makes its LP relaxation slow to close (a 1,000-job DAG leaves a
2 % gap after 40 s). This method never solves a MILP: it maximises a Lagrangian dual with
vectorised numpy, builds plans from the dual's choices with list scheduling, and reports the
best dual value as a proven lower bound, so ``gap = (UB - LB) / UB`` is a certificate.

Relaxed rows (multipliers in brackets), with start times :math:`S_j` and option :math:`o_j`:

* precedence :math:`S_s + d_s + h_e + \delta_d \le S_d` [:math:`\mu_e \ge 0`], release
  :math:`\rho_j + \delta_j \le S_j` [:math:`\nu_j`] and deadline :math:`S_j + d_j \le D`
  [:math:`\pi_j`]. Choosing :math:`\nu_j = (\text{out}_j - \text{in}_j)^+` and
  :math:`\pi_j = (\text{in}_j - \text{out}_j)^+` (in/out: sums of :math:`\mu` on the job's
  edges) makes the multipliers a source-to-sink flow, so every :math:`S_j` cancels. A job then
  pays :math:`F_j (\delta_j + d_j) + \nu_j \rho_j` (:math:`F_j = \max(\text{in}_j,
  \text{out}_j)`, the flow through it), an edge pays :math:`\mu_e h_e`, and the constant is
  :math:`-D \sum_j \pi_j`: "time is money along the critical paths".
* pool capacity, through its energy: a schedule meeting the deadline uses at most
  :math:`C_p D` GPU-hours of pool :math:`p`, so :math:`\sum_j g_j d_j \le C_p D`
  [:math:`\kappa_p`] is implied by the capacity rows and the deadline.
* agreement between an edge's location pair and its endpoints' options (Lagrangian
  decomposition) [:math:`\phi`]: each edge picks its own pair :math:`(a, b)` and pays
  :math:`u_e(a,b) + \mu_e h_e(a,b) + \phi_{es}(a) + \phi_{ed}(b)`; each job subtracts the
  :math:`\phi` of its location.

For *any* multipliers the dual value — the sum of the independent job and edge minima minus
:math:`D \sum_j \pi_j + \sum_p \kappa_p C_p D` — is at most the cost of every plan that meets
the deadline and capacity (weak duality: every relaxed row is valid for such a plan), so the
best value seen is a proven lower bound whatever the ascent does. The ascent: :math:`\phi` by
MPLP block-coordinate steps (closed form, on node-disjoint edge classes, vectorised), which
never decrease the dual; :math:`\mu` as a non-negative flow on late paths (each step adds the
longest paths of the sub-problem's answer that end after the deadline, and moves every known
path's weight by its lateness — a supergradient in path space, where a single edge's own
supergradient is negative until a whole path carries flow); :math:`\kappa` by the pool's energy
excess; both with Polyak steps towards ``min(UB, LB + 2 %)``, halved on stalls. The best value
is at most the MILP's LP bound (both sub-problems are integral), so the certificate is as
strong as that LP at best: it does not see how badly a pool packs, only its energy.

Plans (upper bounds) come from the dual's job choices (the Lagrangian heuristic): time priced
1-3x the multipliers (plus a flat $/h if needed) until the choice meets the deadline without
capacity, late jobs crashed to faster options otherwise, then a deadline-exact local search
(best-saving-first single moves and topological sweeps; a move is taken only if the job fits
between its predecessors' ends and its successors' latest finishes, so it never breaks the
deadline). With a contended pool, a multi-mode serial schedule generation scheme then picks
each job's option while placing it (the cheapest that still finishes in time, waiting for the
pool if that is cheaper than the cloud), the schedule's resource-flow arcs (who hands GPUs to
whom) turn capacity into precedence for a second local search that cannot overcommit a pool,
and on small problems cloud jobs are moved onto holes in the pool. Every plan is scheduled by
the same earliest-start rule as :func:`placer.optimizer._solution.ssgs` (with a step-function
profile per pool instead of re-summing every run) and priced from the compiled problem.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from placer.optimizer._compile import BoolArray, Compiled, FloatArray, IntArray, risky_jobs
from placer.optimizer._solution import Profile, Solution, build, tol

_INF = math.inf
_TARGET = 0.02
#: Deadline margins of the extra plans the heuristic hands to capacity-aware scheduling.
_MARGINS = (0.05, 0.15)
#: Rounds of the final ruin-and-recreate polish (a quarter of them above
#: ``_BEST_FIRST_MAX_JOBS`` jobs).
_POLISH_ROUNDS = 16
#: Stop after this many ascent steps without a relative improvement of 1e-6.
_FLAT_STEPS = 40
#: Up to this many jobs, the heuristic tries moving each cloud job onto its pool (one SSGS each).
_INSERT_MAX_JOBS = 400
#: Late paths added to the flow's support per ascent step, and the support size beyond which
#: paths without flow are dropped.
_PATHS_PER_STEP = 4
_MAX_PATHS = 400
#: Up to this many jobs, local search also tries best-saving-first moves (they propagate
#: times after every move, which a deep DAG makes costly).
_BEST_FIRST_MAX_JOBS = 400
#: Extra $/GPU-hour on pool options tried in turn by the primal heuristic: the energy bound's
#: multiplier underprices a pool that cannot be packed as densely as its energy allows.
_POOL_USD = (0.0, 0.02, 0.05, 0.1, 0.2)
#: (scale of the time multipliers, extra price per hour) tried in turn to reach the deadline.
_PRICES = ((1.0, 0.0), (1.1, 0.0), (1.25, 0.0), (1.5, 0.0), (2.0, 0.0), (3.0, 0.0),
           (2.0, 1.0), (2.0, 4.0), (2.0, 16.0), (2.0, 64.0))


@dataclass(frozen=True)
class _Arrays:
    """The compiled problem flattened over (job, option) pairs and edges, with global locations."""

    n: int
    nloc: int
    job_of: IntArray  # (M,) job of each flat option
    first: IntArray  # (n + 1,) start of each job's options
    loc_of: IntArray  # (M,) global location index
    cost: FloatArray  # (M,) compute + reads [+ penalty]; inf when not allowed
    real: FloatArray  # (M,) compute + reads
    read_h: FloatArray
    delay: FloatArray
    dur: FloatArray
    pool_of: IntArray  # (M,) pool index or -1
    energy: FloatArray  # (M,) GPU-hours taken from the pool
    caps: FloatArray  # (P,) pool capacities
    nl_perm: IntArray  # options sorted by (job, location)
    nl_starts: IntArray  # reduceat starts of each present (job, location)
    nl_keys: IntArray  # job * nloc + location of each group
    src: IntArray  # (E,)
    dst: IntArray
    usd: FloatArray  # (E, L, L), inf where an endpoint never uses the location
    hours: FloatArray  # (E, L, L), 0 where unavailable
    classes: tuple[IntArray, ...]  # node-disjoint edge classes (an edge colouring)
    topo: tuple[int, ...]
    preds: tuple[tuple[tuple[int, int], ...], ...]  # per job: (edge, src)
    succs: tuple[tuple[tuple[int, int], ...], ...]  # per job: (edge, dst)


def _flatten(c: Compiled) -> _Arrays:
    locs = sorted({o.location for opts in c.options for o in opts})
    li = {loc: i for i, loc in enumerate(locs)}
    pools = sorted(c.problem.capacity)
    pi = {p: i for i, p in enumerate(pools)}
    sizes = np.asarray([len(o) for o in c.options], dtype=np.int64)
    first = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    job_of = np.repeat(np.arange(c.n, dtype=np.int64), sizes)
    flat = [o for opts in c.options for o in opts]
    loc_of = np.asarray([li[o.location] for o in flat], dtype=np.int64)
    allowed: BoolArray = np.concatenate(c.allowed)
    real = np.concatenate(c.compute) + np.concatenate(c.read_usd)
    cost = real + np.concatenate(c.penalty)
    cost = np.where(allowed, cost, _INF)
    dur = np.concatenate(c.dur)
    pool_of = np.asarray(
        [pi[o.pool] if o.pool is not None and o.pool_gpus > 0 else -1 for o in flat],
        dtype=np.int64,
    )
    gpus = np.asarray([float(o.pool_gpus) for o in flat])
    nloc = len(locs)
    keys = job_of * nloc + loc_of
    perm = np.argsort(keys, kind="stable")
    sk = keys[perm]
    starts = np.flatnonzero(np.concatenate(([True], sk[1:] != sk[:-1])))
    ne = len(c.edges)
    usd = np.full((ne, nloc, nloc), _INF)
    hours = np.zeros((ne, nloc, nloc))
    for e, ce in enumerate(c.edges):
        a = np.asarray([li[x] for x in ce.src_locs])
        b = np.asarray([li[x] for x in ce.dst_locs])
        usd[e][np.ix_(a, b)] = ce.loc_usd
        hours[e][np.ix_(a, b)] = ce.loc_hours
    src = np.asarray([ce.src for ce in c.edges], dtype=np.int64)
    dst = np.asarray([ce.dst for ce in c.edges], dtype=np.int64)
    # Greedy edge colouring: edges of one class share no job, so MPLP can update them at once.
    used: list[set[int]] = [set() for _ in range(c.n)]
    colour = np.zeros(ne, dtype=np.int64)
    for e in range(ne):
        s, d = int(src[e]), int(dst[e])
        k = 0
        while k in used[s] or k in used[d]:
            k += 1
        colour[e] = k
        used[s].add(k)
        used[d].add(k)
    classes = tuple(np.flatnonzero(colour == k) for k in range(int(colour.max(initial=-1)) + 1))
    return _Arrays(
        n=c.n, nloc=nloc, job_of=job_of, first=first, loc_of=loc_of, cost=cost, real=real,
        read_h=np.concatenate(c.read_h), delay=np.concatenate(c.delay), dur=dur,
        pool_of=pool_of, energy=gpus * dur,
        caps=np.asarray([float(c.problem.capacity[p]) for p in pools]),
        nl_perm=perm, nl_starts=starts, nl_keys=sk[starts], src=src, dst=dst, usd=usd,
        hours=hours, classes=classes, topo=c.topo,
        preds=tuple(tuple((e, c.edges[e].src) for e in c.in_edges[j]) for j in range(c.n)),
        succs=tuple(tuple((e, c.edges[e].dst) for e in c.out_edges[j]) for j in range(c.n)),
    )


class _Dual:
    """The dual function and its MPLP / subgradient ascent (see the module docstring)."""

    def __init__(self, a: _Arrays, deadline: float | None) -> None:
        self.a = a
        self.deadline = deadline
        ne = a.src.size
        self.mu = np.zeros(ne)
        self.kappa = np.zeros(a.caps.size)
        self.phi_s = np.zeros((ne, a.nloc))
        self.phi_d = np.zeros((ne, a.nloc))
        self.nl = np.zeros((a.n, a.nloc))
        self.theta = np.zeros((ne, a.nloc, a.nloc))
        self.unary = np.zeros(a.cost.size)
        self.const = 0.0
        self.refresh()

    def refresh(self) -> None:
        """Recompute job and edge terms after a change of ``mu`` or ``kappa``."""
        a = self.a
        inflow = np.bincount(a.dst, weights=self.mu, minlength=a.n)
        outflow = np.bincount(a.src, weights=self.mu, minlength=a.n)
        nu = np.maximum(outflow - inflow, 0.0)
        pi = np.maximum(inflow - outflow, 0.0)
        flow = np.maximum(inflow, outflow)
        u = a.cost + nu[a.job_of] * a.read_h + flow[a.job_of] * (a.delay + a.dur)
        if self.kappa.size:
            pooled = a.pool_of >= 0
            u = u + np.where(pooled, self.kappa[np.maximum(a.pool_of, 0)] * a.energy, 0.0)
        self.unary = u
        d = self.deadline or 0.0
        self.const = -d * float(pi.sum()) - d * float(self.kappa @ a.caps)
        self.theta = a.usd + self.mu[:, None, None] * a.hours
        mins = np.full(a.n * a.nloc, _INF)
        mins[a.nl_keys] = np.minimum.reduceat(u[a.nl_perm], a.nl_starts)
        phi = np.zeros((a.n, a.nloc))
        np.add.at(phi, a.src, self.phi_s)
        np.add.at(phi, a.dst, self.phi_d)
        self.nl = mins.reshape(a.n, a.nloc) - phi

    def mplp(self) -> None:
        """One sweep of MPLP edge updates (never decreases the dual)."""
        a = self.a
        for cls in a.classes:
            s, d = a.src[cls], a.dst[cls]
            ms = self.nl[s] + self.phi_s[cls]
            md = self.nl[d] + self.phi_d[cls]
            th = self.theta[cls]
            with np.errstate(invalid="ignore"):
                to_s = np.min(th + md[:, None, :], axis=2)
                to_d = np.min(th + ms[:, :, None], axis=1)
                new_s = np.where(np.isfinite(ms) & np.isfinite(to_s), 0.5 * (ms - to_s), 0.0)
                new_d = np.where(np.isfinite(md) & np.isfinite(to_d), 0.5 * (md - to_d), 0.0)
            self.phi_s[cls] = new_s
            self.phi_d[cls] = new_d
            self.nl[s] = ms - new_s
            self.nl[d] = md - new_d

    def value(self) -> float:
        """The dual function at the current multipliers: a lower bound on every plan's cost."""
        edge = self.theta + self.phi_s[:, :, None] + self.phi_d[:, None, :]
        total = float(self.nl.min(axis=1).sum()) + self.const
        if edge.size:
            total += float(edge.reshape(edge.shape[0], -1).min(axis=1).sum())
        return total

    def choice(self) -> IntArray:
        """Each job's cheapest option under the current multipliers (a flat index per job)."""
        a = self.a
        v = self.unary - (self.nl_phi())[a.job_of, a.loc_of]
        mins = np.minimum.reduceat(v, a.first[:-1])
        hit = np.flatnonzero(v <= mins[a.job_of] + 1e-9 * np.maximum(1.0, np.abs(mins[a.job_of])))
        jobs, idx = np.unique(a.job_of[hit], return_index=True)
        out = a.first[:-1].copy()
        out[jobs] = hit[idx]
        return out

    def priced(self, scale: float, theta: float, pool_usd: float = 0.0) -> IntArray:
        """Job choices with time priced ``scale`` times the multipliers plus ``theta``/hour.

        The Lagrangian heuristic: raising the price of time on the critical paths (and, with
        ``theta``, everywhere) moves the choices towards plans that meet the deadline.
        """
        a = self.a
        inflow = np.bincount(a.dst, weights=self.mu, minlength=a.n) * scale
        outflow = np.bincount(a.src, weights=self.mu, minlength=a.n) * scale
        nu = np.maximum(outflow - inflow, 0.0)
        flow = np.maximum(inflow, outflow) + theta
        u = a.cost + nu[a.job_of] * a.read_h + flow[a.job_of] * (a.delay + a.dur) + theta * a.read_h
        if self.kappa.size:
            price = self.kappa[np.maximum(a.pool_of, 0)] + pool_usd
            u = u + np.where(a.pool_of >= 0, price * a.energy, 0.0)
        v = u - self.nl_phi()[a.job_of, a.loc_of]
        mins = np.minimum.reduceat(v, a.first[:-1])
        hit = np.flatnonzero(v <= mins[a.job_of] + 1e-9 * np.maximum(1.0, np.abs(mins[a.job_of])))
        jobs, idx = np.unique(a.job_of[hit], return_index=True)
        out = a.first[:-1].copy()
        out[jobs] = hit[idx]
        return out

    def edge_hours(self) -> FloatArray:
        """Transfer hours of each edge's own cheapest location pair (its sub-problem's answer)."""
        if self.theta.shape[0] == 0:
            return np.zeros(0)
        edge = self.theta + self.phi_s[:, :, None] + self.phi_d[:, None, :]
        flat = edge.reshape(edge.shape[0], -1).argmin(axis=1)
        return np.asarray(self.a.hours.reshape(edge.shape[0], -1)[np.arange(flat.size), flat])

    def nl_phi(self) -> FloatArray:
        a = self.a
        phi = np.zeros((a.n, a.nloc))
        np.add.at(phi, a.src, self.phi_s)
        np.add.at(phi, a.dst, self.phi_d)
        return phi


class _PathFlows:
    """The deadline multipliers as a non-negative flow on late paths (each path's weight)."""

    def __init__(self, a: _Arrays) -> None:
        self.a = a
        self.known: set[bytes] = set()
        self.keys: list[bytes] = []  # each path's edges as bytes (its identity)
        self.first: list[int] = []  # first job of each path
        self.edges = np.zeros(0, dtype=np.int64)  # all paths' edges, concatenated
        self.owner = np.zeros(0, dtype=np.int64)  # path of each of those edges
        self.weight = np.zeros(0)

    def add(self, paths: list[IntArray]) -> None:
        """Add late paths not seen before (with zero weight); drop paths whose weight fell
        back to zero when the support has grown large (they are found again if late)."""
        new = [p for p in paths if p.tobytes() not in self.known]
        if not new:
            return
        if len(self.first) > _MAX_PATHS:
            keep = np.flatnonzero(self.weight > 0)
            mask = np.isin(self.owner, keep)
            remap = np.full(len(self.first), -1, dtype=np.int64)
            remap[keep] = np.arange(keep.size)
            self.edges, self.owner = self.edges[mask], remap[self.owner[mask]]
            self.first = [self.first[i] for i in keep.tolist()]
            self.keys = [self.keys[i] for i in keep.tolist()]
            self.known = set(self.keys)
            self.weight = self.weight[keep]
        k = len(self.first)
        for p in new:
            self.known.add(p.tobytes())
            self.keys.append(p.tobytes())
            self.first.append(int(self.a.src[p[0]]))
        self.edges = np.concatenate([self.edges, *new])
        self.owner = np.concatenate(
            [self.owner, *(np.full(p.size, k + i, dtype=np.int64) for i, p in enumerate(new))])
        self.weight = np.concatenate((self.weight, np.zeros(len(new))))

    def lateness(self, pick: IntArray, h_edge: FloatArray, deadline: float) -> FloatArray:
        """Per path: its length under the sub-problem's answer minus the deadline, projected
        (a path without flow that is early gets no step)."""
        a = self.a
        if not self.first:
            return np.zeros(0)
        dd = a.delay[pick] + a.dur[pick]
        first = np.asarray(self.first, dtype=np.int64)
        length = a.read_h[pick[first]] + dd[first] + np.bincount(
            self.owner, weights=h_edge[self.edges] + dd[a.dst[self.edges]],
            minlength=first.size)
        g = length - deadline
        return np.asarray(np.where((g < 0) & (self.weight <= 0), 0.0, g), dtype=np.float64)

    def step(self, t: float, g: FloatArray) -> FloatArray:
        """Move the weights by ``t * g`` (kept >= 0) and return the edge multipliers."""
        if g.size:
            self.weight = np.maximum(self.weight + t * g, 0.0)
        return np.bincount(self.edges, weights=self.weight[self.owner],
                           minlength=self.a.src.size).astype(np.float64)


def _late_paths(a: _Arrays, pick: IntArray, h_edge: FloatArray, deadline: float,
                limit: int) -> list[IntArray]:
    """Up to ``limit`` longest paths (edge indices) ending at distinct jobs, each later than
    ``deadline`` under job picks and edge hours: the ascent directions of the flow."""
    if a.src.size == 0:
        return []
    rel = (a.read_h[pick] + a.delay[pick] + a.dur[pick]).tolist()
    dd = (a.delay[pick] + a.dur[pick]).tolist()
    h = h_edge.tolist()
    end = [0.0] * a.n
    via = [-1] * a.n
    for j in a.topo:
        t, v = rel[j], -1
        for e, s in a.preds[j]:
            x = end[s] + h[e] + dd[j]
            if x > t:
                t, v = x, e
        end[j], via[j] = t, v
    sinks = [j for j in range(a.n) if not a.succs[j] and end[j] > deadline + tol(deadline)]
    sinks.sort(key=lambda k: -end[k])
    out: list[IntArray] = []
    for j in sinks[:limit]:
        path: list[int] = []
        while via[j] >= 0:
            path.append(via[j])
            j = int(a.src[via[j]])
        if path:
            out.append(np.asarray(path[::-1], dtype=np.int64))
    return out


def _times(a: _Arrays, pick: IntArray, deadline: float) -> tuple[list[float], list[float]]:
    """Earliest end and latest finish (meeting ``deadline``) of each job, ignoring capacity."""
    loc = a.loc_of[pick].tolist()
    rel = (a.read_h[pick] + a.delay[pick]).tolist()
    dl = a.delay[pick].tolist()
    du = a.dur[pick].tolist()
    hours = a.hours
    end = [0.0] * a.n
    for j in a.topo:
        t = rel[j]
        lj = loc[j]
        for e, s in a.preds[j]:
            t = max(t, end[s] + float(hours[e, loc[s], lj]) + dl[j])
        end[j] = t + du[j]
    late = [0.0] * a.n
    for j in reversed(a.topo):
        t = deadline
        lj = loc[j]
        for e, k in a.succs[j]:
            t = min(t, late[k] - du[k] - dl[k] - float(hours[e, lj, loc[k]]))
        late[j] = t
    return end, late


class _Local:
    """Exact-feasibility local search on a plan's options, ignoring capacity.

    ``end[j]`` is job ``j``'s earliest finish and ``late[j]`` its latest finish that still
    lets every descendant meet the deadline with its current option. An option for ``j`` fits
    when its earliest finish (from its predecessors' ends) is at most its latest finish (from
    its successors' latest starts), so every accepted move keeps the whole plan on time; after
    a move, only descendants' ends and ancestors' latest finishes change and are propagated.
    """

    def __init__(self, a: _Arrays, deadline: float,
                 arcs: Sequence[tuple[int, int]] = (), order: Sequence[int] | None = None,
                 base: _Local | None = None) -> None:
        """``arcs``: extra "ends before starts" pairs (resource-flow arcs of a pool), with a
        topological ``order`` of the graph they make with the DAG; ``base``: a search on the
        same problem whose per-option lists are shared (they are built once per solve)."""
        self.a = a
        self.deadline = deadline
        if base is None:
            self.cost = a.cost.tolist()
            self.read = a.read_h.tolist()
            self.dd = (a.delay + a.dur).tolist()
            self.loc = a.loc_of.tolist()
            self.pool = a.pool_of.tolist()
            self.gpus = np.rint(a.energy / a.dur).astype(np.int64).tolist()
            self.hours = a.hours.tolist()
            self.usd = a.usd.tolist()
        else:
            self.cost, self.read, self.dd = base.cost, base.read, base.dd
            self.loc, self.pool, self.gpus = base.loc, base.pool, base.gpus
            self.hours, self.usd = base.hours, base.usd
        self.topo = tuple(a.topo if order is None else order)
        if arcs:
            preds = [list(p) for p in a.preds]
            succs = [list(s) for s in a.succs]
            zero = [[0.0] * a.nloc for _ in range(a.nloc)]
            self.hours = self.hours + [zero] * len(arcs)
            self.usd = self.usd + [zero] * len(arcs)
            e = len(self.hours) - len(arcs)
            for i, k in arcs:
                preds[k].append((e, i))
                succs[i].append((e, k))
                e += 1
            self.preds: Sequence[tuple[tuple[int, int], ...]] = [tuple(p) for p in preds]
            self.succs: Sequence[tuple[tuple[int, int], ...]] = [tuple(x) for x in succs]
        else:
            self.preds, self.succs = a.preds, a.succs
        self.rank = [0] * a.n
        for i, j in enumerate(self.topo):
            self.rank[j] = i

    def times(self, pick: list[int]) -> tuple[list[float], list[float]]:
        """Earliest finish and latest finish (meeting the deadline) of every job."""
        a, loc, hours, dd = self.a, self.loc, self.hours, self.dd
        end = [0.0] * a.n
        for j in self.topo:
            o = pick[j]
            t = self.read[o]
            lj = loc[o]
            for e, s in self.preds[j]:
                x = end[s] + hours[e][loc[pick[s]]][lj]
                if x > t:
                    t = x
            end[j] = t + dd[o]
        late = [0.0] * a.n
        for j in reversed(self.topo):
            t = self.deadline
            lj = loc[pick[j]]
            for e, k in self.succs[j]:
                x = late[k] - dd[pick[k]] - hours[e][lj][loc[pick[k]]]
                if x < t:
                    t = x
            late[j] = t
        return end, late

    def _eval(self, j: int, o: int, pick: list[int], end: list[float], late: list[float]
              ) -> tuple[float, float, float]:
        """(earliest finish, latest finish, cost with edges) of job ``j`` on option ``o``."""
        loc, hours, usd = self.loc, self.hours, self.usd
        lo = loc[o]
        t = self.read[o]
        cost = self.cost[o]
        for e, s in self.preds[j]:
            ls = loc[pick[s]]
            x = end[s] + hours[e][ls][lo]
            if x > t:
                t = x
            cost += usd[e][ls][lo]
        lim = self.deadline
        for e, k in self.succs[j]:
            ok = pick[k]
            x = late[k] - self.dd[ok] - hours[e][lo][loc[ok]]
            if x < lim:
                lim = x
            cost += usd[e][lo][loc[ok]]
        return t + self.dd[o], lim, cost

    def _allowed(self, cur: int, o: int, keep_pool: bool) -> bool:
        """Whether ``o`` may replace ``cur``; with ``keep_pool`` no job takes more of a pool
        (the resource-flow arcs stay valid)."""
        if not math.isfinite(self.cost[o]):
            return False
        if keep_pool and self.pool[o] >= 0:
            return bool(self.pool[o] == self.pool[cur] and self.gpus[o] <= self.gpus[cur])
        return True

    def _apply(self, j: int, o: int, pick: list[int], end: list[float], late: list[float]
               ) -> None:
        pick[j] = o
        fin, lim, _ = self._eval(j, o, pick, end, late)
        end[j], late[j] = fin, lim
        self._propagate(j, pick, end, late, forward=True)
        self._propagate(j, pick, end, late, forward=False)

    def _propagate(self, j: int, pick: list[int], end: list[float], late: list[float],
                   forward: bool) -> None:
        """After ``j`` moved: re-time its descendants' earliest finishes (``forward``) or its
        ancestors' latest finishes, nearest first, stopping where nothing changes."""
        nbrs = self.succs if forward else self.preds
        times = end if forward else late
        sign = 1 if forward else -1
        heap = [(sign * self.rank[k], k) for _, k in nbrs[j]]
        heapq.heapify(heap)
        done: set[int] = set()
        while heap:
            _, k = heapq.heappop(heap)
            if k in done:
                continue
            done.add(k)
            f, lm, _ = self._eval(k, pick[k], pick, end, late)
            t = f if forward else lm
            if abs(t - times[k]) > 1e-12:
                times[k] = t
                for _, m in nbrs[k]:
                    heapq.heappush(heap, (sign * self.rank[m], m))

    def improve(self, pick_arr: IntArray, keep_pool: bool, rounds: int = 4) -> IntArray:
        """Alternate forward and backward sweeps moving each job to its cheapest fitting option.

        Forward (topological order): a job's predecessors are final, so their ends are exact,
        and its successors are unchanged, so their latest finishes are exact; backward is the
        mirror image. Each sweep is one pass with no propagation, and never breaks the deadline.
        """
        pick = pick_arr.tolist()
        if self.a.n <= _BEST_FIRST_MAX_JOBS:
            self._best_first(pick, keep_pool, rounds)
        before = self._total(pick)
        for r in range(rounds):
            self._sweep(pick, keep_pool, forward=r % 2 == 1)
            cost = self._total(pick)
            if cost >= before - 1e-9 * max(1.0, abs(before)):
                break
            before = cost
        return np.asarray(pick, dtype=np.int64)

    def _best_first(self, pick: list[int], keep_pool: bool, rounds: int) -> None:
        """Best-saving-first single moves, propagating times after each (small plans only)."""
        a = self.a
        end, late = self.times(pick)
        slack = tol(self.deadline)
        for _ in range(rounds):
            moves: list[tuple[float, int, int]] = []
            for j in range(a.n):
                cur = pick[j]
                _, _, base = self._eval(j, cur, pick, end, late)
                best, best_o = 1e-9 * max(1.0, base), -1
                for o in range(int(a.first[j]), int(a.first[j + 1])):
                    if o == cur or self.cost[o] >= base - best \
                            or not self._allowed(cur, o, keep_pool):
                        continue
                    f, lim, cost = self._eval(j, o, pick, end, late)
                    if f <= lim + slack and base - cost > best:
                        best, best_o = base - cost, o
                if best_o >= 0:
                    moves.append((-best, j, best_o))
            if not moves:
                return
            moves.sort()
            for _, j, o in moves:
                _, _, base = self._eval(j, pick[j], pick, end, late)
                f, lim, cost = self._eval(j, o, pick, end, late)
                if f <= lim + slack and cost < base - 1e-9 * max(1.0, base):
                    self._apply(j, o, pick, end, late)

    def _total(self, pick: list[int]) -> float:
        """The plan's cost (resource-flow arcs cost nothing, so the DAG's edges suffice)."""
        total: float = sum(self.cost[o] for o in pick)
        loc, usd = self.loc, self.usd
        for j in range(self.a.n):
            lj = loc[pick[j]]
            for e, k in self.a.succs[j]:
                total += usd[e][lj][loc[pick[k]]]
        return total

    def _sweep(self, pick: list[int], keep_pool: bool, forward: bool) -> None:
        a = self.a
        end, late = self.times(pick)
        slack = tol(self.deadline)
        for j in (self.topo if forward else reversed(self.topo)):
            cur = pick[j]
            f, lim, base = self._eval(j, cur, pick, end, late)
            best, best_o, best_f, best_l = base, cur, f, lim
            for o in range(int(a.first[j]), int(a.first[j + 1])):
                if o == cur or self.cost[o] >= best - 1e-9 or not self._allowed(cur, o, keep_pool):
                    continue
                fo, lo, co = self._eval(j, o, pick, end, late)
                if fo <= lo + slack and co < best - 1e-9 * max(1.0, best):
                    best, best_o, best_f, best_l = co, o, fo, lo
            pick[j] = best_o
            if forward:
                end[j] = best_f
            else:
                late[j] = best_l

    def crash(self, pick_arr: IntArray, keep_pool: bool = False, rounds: int = 64
              ) -> IntArray | None:
        """Speed up jobs on late paths (cost + theta * time, theta growing) until on time."""
        pick = pick_arr.tolist()
        theta = 1.0
        for _ in range(rounds):
            if not self.crash_round(pick, theta, keep_pool):
                return np.asarray(pick, dtype=np.int64)
            theta *= 4.0
        return None

    def crash_fine(self, pick_arr: IntArray, max_steps: int) -> IntArray | None:
        """Speed up one late job at a time, the cheapest per hour gained first.

        Finer than :meth:`crash` (which moves every late job at once) and so cheaper plans,
        at one full time pass per step: used on small problems.
        """
        a = self.a
        pick = pick_arr.tolist()
        eps = tol(self.deadline)
        for _ in range(max_steps):
            end, late = self.times(pick)
            if max(end, default=0.0) <= self.deadline + eps:
                return np.asarray(pick, dtype=np.int64)
            best, best_j, best_o = _INF, -1, -1
            for j in range(a.n):
                if late[j] >= end[j] - eps:
                    continue
                cur = pick[j]
                f0, _, c0 = self._eval(j, cur, pick, end, late)
                for o in range(int(a.first[j]), int(a.first[j + 1])):
                    if o == cur or not math.isfinite(self.cost[o]):
                        continue
                    f, _, cst = self._eval(j, o, pick, end, late)
                    gain = f0 - f
                    if gain > 1e-9:
                        ratio = max(cst - c0, 0.0) / min(gain, end[j] - late[j])
                        if ratio < best:
                            best, best_j, best_o = ratio, j, o
            if best_j < 0:
                return None
            pick[best_j] = best_o
        return None

    def crash_round(self, pick: list[int], theta: float, keep_pool: bool) -> bool:
        """One round of :meth:`crash`; False when the plan is already on time.

        A late pool job may also leave its pool for any cloud option: on the resource-flow
        graph, what delays it is the pool, not its own duration.
        """
        a = self.a
        span = self.dd
        end, late = self.times(pick)
        if max(end, default=0.0) <= self.deadline + tol(self.deadline):
            return False
        for j in range(a.n):
            if late[j] < end[j] - tol(self.deadline):
                lo, hi = int(a.first[j]), int(a.first[j + 1])
                cur = pick[j]
                leave = keep_pool and self.pool[cur] >= 0
                faster = [o for o in range(lo, hi) if self._allowed(cur, o, keep_pool) and (
                    span[o] + self.read[o] < span[cur] + self.read[cur] - 1e-12
                    or (leave and self.pool[o] < 0))]
                if faster:
                    pick[j] = min(faster, key=lambda o: (
                        self.cost[o] + theta * (span[o] + self.read[o]), span[o]))
        return True


def _ssgs(a: _Arrays, pick: IntArray, order: Sequence[int]) -> list[float]:
    """Serial schedule generation (the rule of :func:`placer.optimizer._solution.ssgs`)."""
    pools = a.pool_of[pick].tolist()
    gpus = np.rint(a.energy[pick] / a.dur[pick]).astype(np.int64).tolist()
    loc = a.loc_of[pick].tolist()
    rel = a.read_h[pick].tolist()
    dl = a.delay[pick].tolist()
    du = a.dur[pick].tolist()
    hours = a.hours
    prof = [Profile(int(x)) for x in a.caps.tolist()]
    start = [0.0] * a.n
    end = [0.0] * a.n
    for j in order:
        t = rel[j]
        for e, s in a.preds[j]:
            t = max(t, end[s] + float(hours[e, loc[s], loc[j]]))
        t += dl[j]
        p = pools[j]
        if p >= 0 and gpus[j] > 0:
            t = prof[p].fit(t, du[j], gpus[j])
            prof[p].add(t, du[j], gpus[j])
        start[j] = t
        end[j] = t + du[j]
    return start


def _resource_arcs(a: _Arrays, pick: IntArray, start: Sequence[float]) -> list[tuple[int, int]]:
    """Resource-flow arcs of a capacity-feasible schedule: who hands GPUs to whom.

    Jobs are taken by start time; each takes its GPUs from the units freed earliest (or never
    used), recording an arc from every job it takes units from. Any schedule respecting the
    DAG plus these arcs respects capacity as long as no pool job takes more GPUs (the cut
    argument of the MILP's resource-flow model), whatever the durations become.
    """
    arcs: list[tuple[int, int]] = []
    units: dict[int, list[tuple[float, int, int]]] = {}  # pool -> (free at, job, count)
    dur = a.dur[pick].tolist()
    pools = a.pool_of[pick].tolist()
    gpus = np.rint(a.energy[pick] / a.dur[pick]).astype(np.int64).tolist()
    for j in sorted(range(a.n), key=lambda k: (start[k], k)):
        p = pools[j]
        if p < 0 or gpus[j] == 0:
            continue
        free = units.setdefault(p, [(-_INF, -1, int(a.caps[p]))])
        free.sort()
        need = gpus[j]
        taken: list[tuple[float, int, int]] = []
        rest: list[tuple[float, int, int]] = []
        for t, holder, cnt in free:
            if need > 0 and t <= start[j] + 1e-9:
                use = min(need, cnt)
                need -= use
                if holder >= 0:
                    arcs.append((holder, j))
                if cnt > use:
                    rest.append((t, holder, cnt - use))
                taken.append((t, holder, use))
            else:
                rest.append((t, holder, cnt))
        rest.append((start[j] + dur[j], j, gpus[j]))
        units[p] = rest
    return arcs


def _mode_sgs(c: Compiled, a: _Arrays, local: _Local, pick: IntArray, deadline: float
              ) -> tuple[IntArray, list[int]] | None:
    """Serial schedule generation that also chooses each job's option (multi-mode SGS).

    Jobs are taken by least latest finish of the tentative plan ``pick`` (on time without
    capacity); each gets the cheapest option (with its edges to final predecessors and to
    tentative successors) that, started as early as its inputs and its pool allow, still
    finishes by the latest finish its tentative successors need. A full pool thus sends a
    job to the cloud only when waiting for the pool would make it late. ``None`` when some
    job cannot finish in time. Replaying the returned order with SSGS gives the same schedule.
    """
    cur = pick.tolist()
    _, late = local.times(cur)
    order = _priority(c, a, pick)
    prof = [Profile(int(x)) for x in a.caps.tolist()]
    loc, hours, usd, dd = local.loc, local.hours, local.usd, local.dd
    gpus = local.gpus
    end = [0.0] * a.n
    eps = tol(deadline)
    late_ok = True
    for j in order:
        opts = []
        for o in range(int(a.first[j]), int(a.first[j + 1])):
            if not math.isfinite(local.cost[o]):
                continue
            lo = loc[o]
            cost = local.cost[o]
            ready = local.read[o]
            for e, s in a.preds[j]:
                ls = loc[cur[s]]
                ready = max(ready, end[s] + hours[e][ls][lo])
                cost += usd[e][ls][lo]
            lim = deadline
            for e, k in a.succs[j]:
                ok = cur[k]
                lim = min(lim, late[k] - dd[ok] - hours[e][lo][loc[ok]])
                cost += usd[e][lo][loc[ok]]
            opts.append((cost, o, ready + float(a.delay[o]), lim))
        opts.sort()
        chosen, fin, first = -1, _INF, -1
        for _, o, t, lim in opts:
            d = float(a.dur[o])
            p = int(a.pool_of[o])
            if p >= 0:
                t = prof[p].fit(t, d, gpus[o])
            if t + d <= lim + eps:
                chosen, first = o, o
                break
            if t + d < fin:  # none fits yet: remember the earliest finish
                chosen, fin = o, t + d
        if chosen < 0:
            return None
        late_ok = late_ok and first >= 0
        p = int(a.pool_of[chosen])
        cur[j] = chosen
        ready = local.read[chosen]
        for e, s in a.preds[j]:
            ready = max(ready, end[s] + hours[e][loc[cur[s]]][loc[chosen]])
        t = ready + float(a.delay[chosen])
        d = float(a.dur[chosen])
        if p >= 0:
            t = prof[p].fit(t, d, gpus[chosen])
            prof[p].add(t, d, gpus[chosen])
        end[j] = t + d
    if not late_ok and max(end, default=0.0) > deadline + eps:
        return None
    return np.asarray(cur, dtype=np.int64), order


def _capacity_repair(c: Compiled, a: _Arrays, base: _Local | None, pick: IntArray,
                     deadline: float | None) -> tuple[IntArray, list[int]] | None:
    """Make a plan respect capacity and the deadline, then make it cheaper.

    SSGS schedules the plan with capacity; its resource-flow arcs turn capacity into extra
    precedence, on which the deadline-exact crash and local search run without ever
    overcommitting a pool. While SSGS is late, one crash round runs on the current arcs and
    SSGS re-derives them (a job that left its pool loses its arcs).
    """
    order = _priority(c, a, pick)
    if deadline is None or base is None:
        return pick, order
    start = _ssgs(a, pick, order)
    if max(start[j] + float(a.dur[pick[j]]) for j in range(a.n)) > deadline + tol(deadline):
        # Late with capacity: re-choose options while scheduling. (A plan SSGS already puts
        # on time keeps its options: capacity then costs nothing.)
        sgs = _mode_sgs(c, a, base, pick, deadline)
        if sgs is not None:
            pick, order = sgs
    work = pick.tolist()
    theta = 1.0
    for _ in range(64):
        pick = np.asarray(work, dtype=np.int64)
        start = _ssgs(a, pick, order)
        topo = sorted(range(a.n), key=lambda k: (start[k], k))
        local = _Local(a, deadline, _resource_arcs(a, pick, start), topo, base)
        if max(start[j] + float(a.dur[pick[j]]) for j in range(a.n)) <= deadline + tol(deadline):
            better = local.improve(pick, keep_pool=True)
            end, _ = local.times(better.tolist())
            starts = [end[j] - float(a.dur[better[j]]) for j in range(a.n)]
            order2 = sorted(range(a.n), key=lambda k: (starts[k], k))
            s2 = _ssgs(a, better, order2)
            if max(s2[j] + float(a.dur[better[j]]) for j in range(a.n)) \
                    <= deadline + tol(deadline):
                pick, order = better, order2
            if a.n <= _INSERT_MAX_JOBS:
                pick, order = _insert_pool_jobs(a, pick, order, deadline)
            return pick, order
        if not local.crash_round(work, theta, keep_pool=True):
            # On time on the arcs but SSGS is late: order by the arc schedule's starts.
            end, _ = local.times(work)
            starts = [end[j] - float(a.dur[work[j]]) for j in range(a.n)]
            order = sorted(range(a.n), key=lambda k: (starts[k], k))
            continue
        theta *= 2.0
        order = _priority(c, a, np.asarray(work, dtype=np.int64))
    return None


def _insert_pool_jobs(a: _Arrays, pick: IntArray, order: list[int], deadline: float
                      ) -> tuple[IntArray, list[int]]:
    """Move cloud jobs onto a pool, biggest saving first, wherever SSGS stays on time.

    The resource-flow local search never adds pool work (that could overcommit the pool), so
    holes the packing left are filled here, each move checked by a full SSGS.
    """
    cand: list[tuple[float, int, int]] = []
    for j in range(a.n):
        cur = int(pick[j])
        if a.pool_of[cur] >= 0:
            continue
        lo, hi = int(a.first[j]), int(a.first[j + 1])
        pooled = [o for o in range(lo, hi) if a.pool_of[o] >= 0 and math.isfinite(a.cost[o])]
        if pooled:
            o = min(pooled, key=lambda x: (a.cost[x], a.dur[x]))
            if a.cost[o] < a.cost[cur] - 1e-9:
                cand.append((float(a.cost[o] - a.cost[cur]), j, o))
    cand.sort()
    base = _plan_cost(a, pick)
    for _, j, o in cand:
        trial = pick.copy()
        trial[j] = o
        cost = _plan_cost(a, trial)
        if cost >= base - 1e-9:
            continue
        start = _ssgs(a, trial, order)
        if max(start[k] + float(a.dur[trial[k]]) for k in range(a.n)) <= deadline + tol(deadline):
            pick, base = trial, cost
    return pick, order


def _priority(c: Compiled, a: _Arrays, pick: IntArray) -> list[int]:
    """Activity list: ready jobs by latest finish (least slack first), ties by topological rank."""
    _, late = _times(a, pick, 0.0)
    rank = {j: i for i, j in enumerate(a.topo)}
    waiting = [len(p) for p in a.preds]
    heap = [(late[j], rank[j], j) for j in range(a.n) if waiting[j] == 0]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        _, _, j = heapq.heappop(heap)
        order.append(j)
        for _, k in a.succs[j]:
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(heap, (late[k], rank[k], k))
    return order


def _solution(c: Compiled, a: _Arrays, pick: IntArray, order: Sequence[int], *,
              lower_bound: float, solve_time_s: float) -> Solution:
    """The plan priced and scheduled by :func:`placer.optimizer._solution.build`, the tail of
    every method; ``optimal`` when the proven bound meets the value (relative 1e-9)."""
    choice = (pick - a.first[:-1]).tolist()
    sol = build(c, choice, status="feasible", method="lagrange", objective="cost",
                solve_time_s=solve_time_s, order=order, lower_bound=lower_bound)
    if sol.gap is not None and sol.gap <= 1e-9:
        return replace(sol, status="optimal", optimal=True, lower_bound=sol.objective_value,
                       gap=0.0)
    return sol


def _plan_cost(a: _Arrays, pick: IntArray) -> float:
    s, d = a.src, a.dst
    edge = a.usd[np.arange(s.size), a.loc_of[pick[s]], a.loc_of[pick[d]]].sum() if s.size else 0.0
    return float(a.cost[pick].sum() + edge)


def min_makespan_bound(c: Compiled) -> float:
    """A lower bound on any plan's makespan: fastest options, cheapest-in-time transfers."""
    a = _flatten(c)
    span = np.where(np.isfinite(a.cost), a.delay + a.dur, _INF)
    rel = np.where(np.isfinite(a.cost), a.read_h + a.delay + a.dur, _INF)
    node = np.minimum.reduceat(span, a.first[:-1]).tolist()
    start = np.minimum.reduceat(rel, a.first[:-1]).tolist()
    hm: list[float] = []
    if a.src.size:
        flat_h = a.hours.reshape(a.src.size, -1)
        usable = np.isfinite(a.usd.reshape(a.src.size, -1))
        hm = np.where(usable, flat_h, _INF).min(axis=1).tolist()
    end = [0.0] * a.n
    for j in a.topo:
        t = start[j]
        for e, s in a.preds[j]:
            t = max(t, end[s] + hm[e] + node[j])
        end[j] = t
    return max(end, default=0.0)


def _crash(local: _Local, pick: IntArray) -> IntArray | None:
    """Make ``pick`` meet the deadline: finely on small problems, else round by round."""
    if local.a.n <= _BEST_FIRST_MAX_JOBS:
        fine = local.crash_fine(pick, max_steps=2 * local.a.n)
        if fine is not None:
            return fine
    return local.crash(pick)


def solve_lagrange(
    c: Compiled,
    *,
    deadline: float | None,
    time_limit_s: float = 10.0,
    max_iter: int = 300,
    target_gap: float = 1e-9,
) -> Solution | None:
    """Min cost under ``deadline`` and pool capacity; ``None`` when no plan was found.

    The returned plan is feasible (deadline, capacity), ``lower_bound`` is the best dual
    value (proven), and ``status`` is ``optimal`` only when the gap is closed.
    """
    t0 = time.perf_counter()
    a = _flatten(c)
    dual = _Dual(a, deadline)
    best_lb = -_INF
    best_ub = _INF
    best_pick: IntArray | None = None
    best_order: list[int] | None = None
    seen: set[bytes] = set()

    local = _Local(a, deadline) if deadline is not None else None
    risky = bool(risky_jobs(c))

    def consider(pick: IntArray, pool_usd: float = 0.0) -> None:
        nonlocal best_ub, best_pick, best_order
        cand = pick
        if local is not None:
            for scale, theta in _PRICES:
                if scale != 1.0 or theta != 0.0 or pool_usd != 0.0:
                    pick = dual.priced(scale, theta, pool_usd)
                end, _ = local.times(pick.tolist())
                if max(end, default=0.0) <= local.deadline + tol(local.deadline):
                    break
            key = pick.tobytes()
            if key in seen:
                return
            seen.add(key)
            crashed = _crash(local, pick)
            if crashed is None:
                return
            tight = local.improve(crashed, keep_pool=False)
            # With a contended pool, also try the plan with its float left in place: the
            # capacity-aware schedule can use float to wait for the pool instead of paying
            # for a fast cloud option.
            cands = [tight, crashed] if risky else [tight]
            if risky:
                # And plans made for a shorter deadline: the float they keep lets the
                # capacity-aware schedule wait for the pool (or take a slower spot offer).
                for margin in _MARGINS:
                    tighter = _Local(a, local.deadline * (1.0 - margin), base=local)
                    early = _crash(tighter, pick)
                    if early is not None:
                        cands.append(tighter.improve(early, keep_pool=False))
        else:
            cands = [cand]
        for cand in cands:
            if best_pick is not None and time.perf_counter() - t0 > time_limit_s:
                break  # out of time with a plan in hand (one repair of 10,000 jobs: ~5 s)
            if not risky:
                fixed: tuple[IntArray, list[int]] | None = (cand, list(c.topo))
            else:
                fixed = _capacity_repair(c, a, local, cand, deadline)
            if fixed is None:
                continue
            plan, order = fixed
            cost = _plan_cost(a, plan)
            if cost < best_ub - 1e-9:
                best_ub, best_pick, best_order = cost, plan, order

    flows = _PathFlows(a)
    step, flat, tried = 1.0, 0, 0
    for it in range(max_iter):
        dual.mplp()
        lb = dual.value()
        scale = max(1.0, abs(lb))
        flat = 0 if lb > best_lb + 1e-6 * scale else flat + 1
        if lb > best_lb:
            best_lb = lb
        if flat and flat % 4 == 0:
            step *= 0.6
        pick = dual.choice()
        if it < 3 or it & (it - 1) == 0:  # steps 0, 1, 2, 4, 8, ...: deterministic
            consider(pick, _POOL_USD[tried % len(_POOL_USD)] if risky else 0.0)
            tried += 1
        if best_ub - best_lb <= target_gap * max(1.0, abs(best_ub)):
            break  # proven optimal (within target_gap)
        if time.perf_counter() - t0 > time_limit_s or flat >= _FLAT_STEPS or step < 1e-4:
            break
        if deadline is None:
            continue  # only the MPLP part: capacity cannot raise a cost without a deadline
        # Supergradients: a path's lateness under the sub-problem's choices, a pool's excess.
        pooled = a.pool_of[pick] >= 0
        g_kappa = np.bincount(a.pool_of[pick][pooled], weights=a.energy[pick][pooled],
                              minlength=a.caps.size) - a.caps * deadline
        g_kappa = np.where((g_kappa < 0) & (dual.kappa <= 0), 0.0, g_kappa)
        h_pick = dual.edge_hours()
        flows.add(_late_paths(a, pick, h_pick, deadline, _PATHS_PER_STEP))
        g_w = flows.lateness(pick, h_pick, deadline)
        norm = float(g_w @ g_w + g_kappa @ g_kappa)
        if norm <= 1e-12:
            continue
        target = min(best_ub, best_lb + _TARGET * scale)
        t = step * max(target - lb, 1e-6 * scale) / norm
        dual.mu = flows.step(t, g_w)
        dual.kappa = np.maximum(dual.kappa + t * g_kappa, 0.0)
        dual.refresh()
    if best_pick is None:
        consider(dual.choice())
    if best_pick is None or best_order is None:
        return None
    if local is not None and best_ub - best_lb > target_gap * max(1.0, abs(best_ub)):
        # Ruin and recreate: re-choose a window of consecutive jobs from the dual's prices,
        # make the plan meet the deadline again and re-run the local search; keep what is
        # cheaper. Seeded, so the same problem gives the same plan.
        rng = random.Random(0)
        prices = dual.priced(1.25, 0.0)
        width = max(2, a.n // 10)
        for _ in range(_POLISH_ROUNDS if a.n <= _BEST_FIRST_MAX_JOBS else _POLISH_ROUNDS // 4):
            if time.perf_counter() - t0 > time_limit_s:
                break
            lo = rng.randrange(max(1, a.n - width + 1))
            window = np.asarray(a.topo[lo:lo + width], dtype=np.int64)
            trial = best_pick.copy()
            trial[window] = prices[window]
            crashed = _crash(local, trial)
            if crashed is None:
                continue
            cand = local.improve(crashed, keep_pool=False)
            fixed = _capacity_repair(c, a, local, cand, deadline) if risky \
                else (cand, list(c.topo))
            if fixed is not None and _plan_cost(a, fixed[0]) < best_ub - 1e-9:
                best_pick, best_order = fixed
                best_ub = _plan_cost(a, best_pick)
    return _solution(c, a, best_pick, best_order, lower_bound=best_lb,
                     solve_time_s=time.perf_counter() - t0)
