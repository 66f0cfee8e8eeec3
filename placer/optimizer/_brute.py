"""Brute force: the slow, obviously-correct reference the tests hold the other methods to.

Every assignment of options to jobs is enumerated (at most :data:`MAX_ASSIGNMENTS`), costed
and given its earliest-start schedule with numpy, all assignments at once. An assignment whose
earliest-start schedule overcommits a pool gets its true minimum makespan by enumerating
activity lists through the serial schedule generation scheme (SSGS): for a regular objective
such as makespan, with non-negative minimal time lags (transfers and provisioning delays),
the schedules SSGS can generate include an optimal one. Only the relative order of pool jobs
matters (a job without a pool is placed at its earliest time whatever the list says), so the
search branches on pool jobs only and prunes partial schedules already no better than the
best complete one.

Enumeration is in lexicographic order of option indices (first job slowest), and stable
sorts keep that order among equal objective values, which is the documented tie-break.
"""

from __future__ import annotations

import math
import time

import numpy as np

from placer.optimizer._compile import Compiled, FloatArray
from placer.optimizer._solution import (
    Objective,
    Placed,
    Profile,
    Solution,
    build,
    earliest_start,
    infeasible,
    tol,
)

#: Refuse problems with more assignments than this.
MAX_ASSIGNMENTS = 200_000


def solve_brute(
    c: Compiled,
    objective: Objective,
    *,
    deadline: float | None,
    budget: float | None,
    use_penalty: bool = True,
) -> Solution:
    """Enumerate every assignment; see the module docstring.

    Raises:
        ValueError: the problem has more than :data:`MAX_ASSIGNMENTS` assignments.
    """
    t0 = time.perf_counter()
    sizes = [len(o) for o in c.options]
    total = math.prod(sizes)
    if total > MAX_ASSIGNMENTS:
        raise ValueError(
            f"brute force refuses {total:,} assignments (limit {MAX_ASSIGNMENTS:,})"
        )
    if objective == "time":
        deadline = None
    else:
        budget = None
    grid = np.indices(sizes).reshape(c.n, -1)
    count = grid.shape[1]
    ok = np.ones(count, dtype=np.bool_)
    cost = np.zeros(count)
    pen = np.zeros(count)
    end = np.zeros((c.n, count))
    start = np.zeros((c.n, count))
    for j in c.topo:
        g = grid[j]
        ok &= c.allowed[j][g]
        cost += c.compute[j][g] + c.read_usd[j][g]
        pen += c.penalty[j][g]
        ready = c.read_h[j][g].copy()
        for e in c.in_edges[j]:
            ce = c.edges[e]
            cost += ce.usd[grid[ce.src], g]
            ready = np.maximum(ready, end[ce.src] + ce.hours[grid[ce.src], g])
        start[j] = ready + c.delay[j][g]
        end[j] = start[j] + c.dur[j][g]
    lower = end.max(axis=0)
    conflict = _conflicts(c, grid, start, end)

    def exact(a: int) -> tuple[float, list[int] | None]:
        if not conflict[a]:
            return float(lower[a]), None
        return _min_makespan(c, [int(x) for x in grid[:, a]])

    found: tuple[int, list[int] | None] | None = None
    if objective == "cost":
        value = cost + pen if use_penalty else cost
        cand = np.flatnonzero(ok)
        if deadline is not None:
            cand = cand[lower[cand] <= deadline + tol(deadline)]
        for a in cand[np.argsort(value[cand], kind="stable")]:
            ms, order = exact(int(a))
            if deadline is None or ms <= deadline + tol(deadline):
                found = (int(a), order)
                break
    else:
        cand = np.flatnonzero(ok)
        if budget is not None:
            cand = cand[cost[cand] <= budget + tol(budget)]
        best = math.inf
        seen: list[tuple[float, int, list[int] | None]] = []
        for a in cand[np.argsort(lower[cand], kind="stable")]:
            if lower[a] > best + 1e-6:
                break
            ms, order = exact(int(a))
            seen.append((ms, int(a), order))
            best = min(best, ms)
        near = [(float(cost[a]), a, order) for ms, a, order in seen if ms <= best + 1e-6]
        if near:
            _, a_best, order_best = min(near, key=lambda x: (x[0], x[1]))
            found = (a_best, order_best)
    if found is None:
        return infeasible("brute", objective, "", time.perf_counter() - t0)
    a, order = found
    return build(
        c,
        [int(x) for x in grid[:, a]],
        status="optimal",
        method="brute",
        objective=objective,
        solve_time_s=time.perf_counter() - t0,
        order=order,
    )


def _conflicts(
    c: Compiled, grid: np.ndarray, start: FloatArray, end: FloatArray
) -> np.ndarray:
    """Per assignment: does its earliest-start schedule overcommit some pool?"""
    count = grid.shape[1]
    conflict = np.zeros(count, dtype=np.bool_)
    for pool, cap in c.problem.capacity.items():
        gpus = np.zeros((c.n, count))
        for j, opts in enumerate(c.options):
            per_opt = np.asarray([o.pool_gpus if o.pool == pool else 0 for o in opts], float)
            gpus[j] = per_opt[grid[j]]
        if not gpus.any():
            continue
        for i in range(c.n):
            running = (start <= start[i]) & (start[i] < end)
            used = (gpus * running).sum(axis=0)
            conflict |= (gpus[i] > 0) & (used > cap)
    return conflict


def _min_makespan(c: Compiled, choice: list[int]) -> tuple[float, list[int]]:
    """Minimum makespan of a fixed assignment under capacity, and an activity list reaching it."""
    n = c.n
    preds = [[c.edges[e].src for e in c.in_edges[j]] for j in range(n)]
    opts = [c.options[j][choice[j]] for j in range(n)]
    pooled = [o.pool is not None and o.pool_gpus > 0 for o in opts]
    start = [0.0] * n
    endt = [0.0] * n
    placed: Placed = {}
    done = [False] * n
    order: list[int] = []
    best_ms = math.inf
    best_order: list[int] = []

    def rec(cur: float) -> None:
        nonlocal best_ms, best_order
        if cur >= best_ms:
            return
        if len(order) == n:
            best_ms, best_order = cur, list(order)
            return
        eligible = [j for j in range(n) if not done[j] and all(done[p] for p in preds[j])]
        free = [j for j in eligible if not pooled[j]]
        for j in free[:1] or eligible:
            t = earliest_start(c, choice, j, endt, placed)
            d = float(c.dur[j][choice[j]])
            start[j], endt[j], done[j] = t, t + d, True
            order.append(j)
            pool = opts[j].pool or ""
            if pooled[j]:
                placed.setdefault(pool, Profile(c.problem.capacity[pool])).add(
                    t, d, opts[j].pool_gpus)
            rec(max(cur, t + d))
            if pooled[j]:
                placed[pool].add(t, d, -opts[j].pool_gpus)  # back off, as before placing it
            order.pop()
            done[j] = False

    rec(0.0)
    return best_ms, best_order

