"""Entry points: :func:`solve` and :func:`pareto_frontier`, which pick a method and explain.

On-prem capacity is what makes the exact MILP expensive (one ordering binary per pair of jobs
that could share a contended pool), yet it rarely decides a plan's *cost*: cost does not depend
on start times, only feasibility under a deadline does. So with ``method="auto"`` and a pool
that could be overcommitted, :func:`solve` first solves the relaxation without capacity (by DP
where the DAG allows, else a MILP with no ordering variables) and schedules its choice with
capacity by the serial schedule generation scheme, trying two priority rules. For the cost
objective, if that schedule meets the deadline it is *proven optimal*: its cost equals the
relaxation's optimum, a lower bound on every capacity-respecting plan. Otherwise the full
MILP runs; if it finds no plan in time, the repaired relaxation is still returned when it
satisfies the constraints (``status="feasible"`` with the relaxation as the lower bound).

For "min cost under a deadline" on DAGs the DP cannot take, ``auto`` uses the Lagrangian
method (:mod:`placer.optimizer._lagrange`: a plan with a proven lower bound, never a MILP) from
:data:`LAGRANGE_CONTENDED_JOBS` jobs when a pool can be overcommitted and from
:data:`LAGRANGE_JOBS` jobs otherwise: there the exact MILP finds no plan, or closes its gap
too slowly, within a usable time. Below :data:`EXACT_TOO_BELOW_JOBS` jobs, if its gap is above
:data:`LAGRANGE_GAP`, the exact route runs too with the time left and the better plan wins
(so ``auto`` is never worse than before, and has a plan and a bound where the MILP has none).
``method="lagrange"`` asks for the Lagrangian method alone, at any size (for the time objective
it takes auto's route). Its ``status`` is ``optimal`` only when the bound meets the plan's
value.

``method="auto"`` otherwise uses the exact DP when the DAG is a chain or a tree (all joins or all
forks) and no pool can be overcommitted, and the MILP otherwise; ``method="dp"`` asks for
the DP but falls back to the MILP when the structure does not allow it (``Solution.method``
says which ran). Infeasibility is a value: the returned solution has
``status="infeasible"`` and a message computed by re-solving without the offending
constraint (the shortest possible makespan for a deadline, the cheapest plan for a budget).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Literal

import numpy as np

from placer.errors import SolverError
from placer.optimizer._brute import solve_brute
from placer.optimizer._compile import Compiled, compile_problem, risky_jobs
from placer.optimizer._dp import dp_method, forest_risky, solve_dp
from placer.optimizer._lagrange import min_makespan_bound, solve_lagrange
from placer.optimizer._milp import solve_milp
from placer.optimizer._problem import Problem
from placer.optimizer._solution import (
    Objective,
    Solution,
    build,
    infeasible,
    ssgs,
    tol,
    without_capacity,
)

Method = Literal["auto", "milp", "dp", "brute", "lagrange"]

#: ``auto`` hands "min cost under a deadline" to the Lagrangian method from this many jobs when
#: a pool can be overcommitted (the exact MILP then rarely finds a plan in time) ...
LAGRANGE_CONTENDED_JOBS = 40
#: ... and from this many jobs otherwise (measured at 1,000 jobs x 30 options: the MILP alone
#: reached a 0.4 % gap in 30 s on a quiet machine but 50 % in 60 s on a loaded one; the
#: Lagrangian method 2.5 % in about 2 s, predictably).
LAGRANGE_JOBS = 1000
#: Below this many jobs, when the Lagrangian gap exceeds :data:`LAGRANGE_GAP`, the exact route
#: also runs with the time left, and the better plan is returned with the better bound.
EXACT_TOO_BELOW_JOBS = 500
LAGRANGE_GAP = 0.005
#: From this many jobs (DAGs the DP cannot take), ``auto`` traces the frontier at evenly spaced
#: deadlines with a share of the time each, not point by point from the cheap end (which
#: visits every breakpoint and proves each: 9 s at 100 jobs, over a minute at 1,000).
SPACED_FRONTIER_JOBS = 500


def check_args(objective: str, method: str, time_limit_s: float) -> None:
    if objective not in ("cost", "time"):
        raise ValueError(f"objective must be 'cost' or 'time', got {objective!r}")
    if method not in ("auto", "milp", "dp", "brute", "lagrange"):
        raise ValueError(f"method must be auto, milp, dp, brute or lagrange, got {method!r}")
    if not time_limit_s > 0:
        raise ValueError(f"time_limit_s must be > 0, got {time_limit_s}")


def _unfit_jobs(c: Compiled) -> str:
    """Message naming jobs none of whose options fit their pool ('' when all can run)."""
    parts = []
    for j, name in enumerate(c.names):
        if not c.allowed[j].any():
            needs = "; ".join(
                f"option {o} needs {opt.pool_gpus} GPUs but pool {opt.pool!r} has "
                f"{c.problem.capacity[opt.pool or '']}"
                for o, opt in enumerate(c.options[j])
            )
            parts.append(f"job {name!r} fits none of its options ({needs})")
    return "; ".join(parts)


def _dispatch(
    c: Compiled,
    objective: Objective,
    deadline: float | None,
    budget: float | None,
    method: Method,
    time_limit_s: float,
    use_penalty: bool = True,
) -> Solution:
    if method == "brute":
        return solve_brute(
            c, objective, deadline=deadline, budget=budget, use_penalty=use_penalty
        )
    if method == "lagrange":
        t0 = time.perf_counter()
        if objective == "cost" and use_penalty:
            sol = _lagrange(c, deadline, time_limit_s, t0)
            if sol is not None:
                return sol
        # The time objective (and what _explain needs) is not Lagrangian's: use auto's route.
        remaining = max(0.1, time_limit_s - (time.perf_counter() - t0))
        if risky_jobs(c):
            return _relax_then_repair(c, objective, deadline, budget, remaining,
                                      time.perf_counter())
        return _dispatch(c, objective, deadline, budget, "auto", remaining, use_penalty)
    if method in ("auto", "dp") and dp_method(c) is not None:
        return solve_dp(
            c, objective, deadline=deadline, budget=budget, use_penalty=use_penalty
        )[0]
    return solve_milp(
        c,
        objective,
        deadline=deadline,
        budget=budget,
        time_limit_s=time_limit_s,
        use_penalty=use_penalty,
    )


def _lagrange(
    c: Compiled, deadline: float | None, time_limit_s: float, t0: float
) -> Solution | None:
    """The Lagrangian method, or an infeasible result when a makespan bound proves it;
    ``None`` when it found no plan and proved nothing (the caller falls back)."""
    if deadline is not None and min_makespan_bound(c) > deadline + tol(deadline):
        return infeasible("lagrange", "cost", "", time.perf_counter() - t0)
    sol = solve_lagrange(c, deadline=deadline, time_limit_s=time_limit_s)
    if sol is None:
        return None
    return replace(sol, solve_time_s=time.perf_counter() - t0)


def _use_lagrange(c: Compiled, objective: Objective, deadline: float | None,
                  risky: bool) -> bool:
    """Whether ``auto`` should take the Lagrangian route (see the module docstring)."""
    if objective != "cost" or deadline is None or dp_method(c) is not None:
        return False
    return c.n >= (LAGRANGE_CONTENDED_JOBS if risky else LAGRANGE_JOBS)


def _also_exact(
    c: Compiled, lag: Solution, deadline: float | None, time_limit_s: float, t0: float
) -> Solution:
    """Below :data:`EXACT_TOO_BELOW_JOBS` jobs and above :data:`LAGRANGE_GAP`, also run the
    exact route with the time left; return the better plan with the better of the two bounds."""
    remaining = time_limit_s - (time.perf_counter() - t0)
    if remaining < 0.5:
        return lag
    try:
        if risky_jobs(c):
            exact = _relax_then_repair(c, "cost", deadline, None, remaining,
                                       time.perf_counter())
        else:
            exact = _dispatch(c, "cost", deadline, None, "milp", remaining)
    except SolverError:
        return replace(lag, solve_time_s=time.perf_counter() - t0)
    if exact.status in ("optimal", "infeasible"):
        return replace(exact, solve_time_s=time.perf_counter() - t0)
    best = lag if lag.objective_value <= exact.objective_value else exact
    lb = max(lag.lower_bound or 0.0, exact.lower_bound or 0.0)
    lb = min(lb, best.objective_value)
    value = best.objective_value
    gap = (value - lb) / value if value > 0 else 0.0
    if gap <= 1e-9:
        return replace(best, status="optimal", optimal=True, lower_bound=value, gap=0.0,
                       solve_time_s=time.perf_counter() - t0)
    return replace(best, lower_bound=lb, gap=gap, solve_time_s=time.perf_counter() - t0)


def _critical_order(c: Compiled, choice: list[int]) -> list[int]:
    """A precedence-feasible job list, longest remaining path first (critical-path priority)."""
    tail = [0.0] * c.n
    for j in reversed(c.topo):
        o = choice[j]
        best = 0.0
        for e in c.out_edges[j]:
            ce = c.edges[e]
            k = ce.dst
            best = max(best, float(ce.hours[o, choice[k]] + c.delay[k][choice[k]]) + tail[k])
        tail[j] = float(c.dur[j][o]) + best
    waiting = [len(c.in_edges[j]) for j in range(c.n)]
    ready = [j for j in range(c.n) if waiting[j] == 0]
    order: list[int] = []
    while ready:
        ready.sort(key=lambda j: (-tail[j], j))
        j = ready.pop(0)
        order.append(j)
        for e in c.out_edges[j]:
            k = c.edges[e].dst
            waiting[k] -= 1
            if waiting[k] == 0:
                ready.append(k)
    return order


def _relax_then_repair(
    c: Compiled,
    objective: Objective,
    deadline: float | None,
    budget: float | None,
    time_limit_s: float,
    t0: float,
) -> Solution:
    """Solve without capacity, schedule the choice with capacity; MILP only if that fails."""
    relaxed = _dispatch(without_capacity(c), objective, deadline, budget, "auto", time_limit_s)
    if relaxed.status == "infeasible":
        # A relaxation with no plan proves the real problem has none either.
        return relaxed
    choice = [relaxed.jobs[name].option for name in c.names]
    best: Solution | None = None
    for order in (list(c.topo), _critical_order(c, choice)):
        start = ssgs(c, choice, order)
        end = max(start[j] + float(c.dur[j][choice[j]]) for j in range(c.n))
        if best is None or end < best.makespan_h - 1e-9:
            best = build(c, choice, status="feasible", method=relaxed.method + "+ssgs",
                         objective=objective, solve_time_s=0.0, order=order,
                         lower_bound=relaxed.lower_bound)
    assert best is not None
    meets_deadline = deadline is None or best.makespan_h <= deadline + 1e-9
    if objective == "cost" and relaxed.optimal and meets_deadline:
        # Same choice, same cost: the relaxation's optimum is reached, so this is optimal.
        return replace(best, status="optimal", optimal=True, lower_bound=best.objective_value,
                       gap=0.0, solve_time_s=time.perf_counter() - t0)
    remaining = max(0.1, time_limit_s - (time.perf_counter() - t0))
    try:
        full = _dispatch(c, objective, deadline, budget, "milp", remaining)
    except SolverError:
        if meets_deadline:
            return replace(best, solve_time_s=time.perf_counter() - t0,
                           message="no plan found by the exact MILP in time; this is the "
                                   "capacity-repaired optimum of the relaxation")
        raise
    if full.status == "feasible" and meets_deadline \
            and best.objective_value < full.objective_value - 1e-9:
        # The MILP stopped at a worse incumbent: keep the repaired relaxation, best bound.
        lb = max(full.lower_bound or 0.0, relaxed.lower_bound or 0.0)
        gap = (best.objective_value - lb) / best.objective_value if best.objective_value else 0.0
        return replace(best, lower_bound=min(lb, best.objective_value), gap=max(gap, 0.0),
                       solve_time_s=time.perf_counter() - t0)
    return full


def _explain(
    c: Compiled,
    objective: Objective,
    deadline: float | None,
    budget: float | None,
    method: Method,
    time_limit_s: float,
) -> str:
    unfit = _unfit_jobs(c)
    if unfit:
        return unfit
    try:
        if objective == "cost" and deadline is not None:
            fastest = _dispatch(c, "time", None, None, method, time_limit_s)
            if fastest.status == "optimal":
                return (
                    f"deadline {deadline:g}h is below the shortest possible makespan "
                    f"{fastest.makespan_h:.4g}h"
                )
            if fastest.status == "feasible":
                return (
                    f"no plan meets deadline {deadline:g}h (fastest plan found "
                    f"{fastest.makespan_h:.4g}h, proven lower bound {fastest.lower_bound:.4g}h)"
                )
        if objective == "time" and budget is not None:
            cheapest = _dispatch(c, "cost", None, None, method, time_limit_s, use_penalty=False)
            if cheapest.status == "optimal":
                return (
                    f"budget ${budget:,.2f} is below the cheapest plan "
                    f"${cheapest.cost_usd:,.2f}"
                )
            if cheapest.status == "feasible":
                return (
                    f"no plan fits budget ${budget:,.2f} (cheapest plan found "
                    f"${cheapest.cost_usd:,.2f})"
                )
    except SolverError as exc:
        return f"no feasible plan (the explanation solve failed: {exc})"
    return "no feasible plan"


def any_risky(c: Compiled) -> bool:
    """Whether some pool could be overcommitted: on a forest in O(jobs), else by
    :func:`risky_jobs` (its reachability matrix is O(jobs²): 10,000 jobs, 100 MB)."""
    in_forest = all(len(out) <= 1 for out in c.out_edges)
    if in_forest or all(len(ins) <= 1 for ins in c.in_edges):
        return forest_risky(c, in_forest)
    return bool(risky_jobs(c))


def solve(
    problem: Problem,
    objective: Objective = "cost",
    *,
    deadline_h: float | None = None,
    budget_usd: float | None = None,
    method: Method = "auto",
    time_limit_s: float = 60.0,
) -> Solution:
    """Choose an option and a start time for every job.

    Args:
        problem: The placement problem (never modified).
        objective: ``"cost"``: minimise compute + transfer + penalties, subject to
            makespan <= ``deadline_h`` if given. ``"time"``: minimise makespan, subject to
            real cost (no penalties) <= ``budget_usd`` if given; among plans within 1e-6 h
            of the best makespan, the cheapest in real cost is returned (lexicographic; on
            large DAGs the MILP's tie-break is time-boxed, see :mod:`placer.optimizer._milp`).
        deadline_h: Makespan bound; only used with ``objective="cost"``.
        budget_usd: Real-cost bound; only used with ``objective="time"``.
        method: ``"auto"`` (DP where exact, Lagrangian for large deadline problems, else
            MILP), ``"dp"`` (falls back to the MILP when the DAG is not a chain/tree or a
            pool could be overcommitted), ``"milp"``, ``"lagrange"`` (min cost with a proven
            bound and gap at any size; other objectives take auto's route), or ``"brute"``
            (tests only; refuses > 200,000 assignments).
        time_limit_s: Wall-clock limit for the MILP; on timeout the best plan found is
            returned with ``status="feasible"``, its lower bound and gap.

    Returns:
        A :class:`Solution`. Infeasibility is a value (``status="infeasible"``) whose
        ``message`` says why, e.g. ``"deadline 2h is below the shortest possible makespan
        3.5h"``.

    Raises:
        ValueError: the problem is malformed (unknown jobs, cycles, missing links naming the
            pair, unknown pools) or an argument is out of range.
        SolverError: HiGHS failed, or hit the time limit before finding any plan.
    """
    check_args(objective, method, time_limit_s)
    t0 = time.perf_counter()
    return solve_compiled(compile_problem(problem), objective, deadline_h=deadline_h,
                          budget_usd=budget_usd, method=method, time_limit_s=time_limit_s,
                          t0=t0)


def solve_compiled(
    c: Compiled,
    objective: Objective,
    *,
    deadline_h: float | None,
    budget_usd: float | None,
    method: Method,
    time_limit_s: float,
    t0: float,
) -> Solution:
    """:func:`solve` on a compiled problem (the :class:`~placer.optimizer.Replanner` narrows
    ``allowed`` and solves again without compiling); ``t0`` is when the clock started."""
    unfit = _unfit_jobs(c)
    if unfit:
        return infeasible(
            method if method != "auto" else "milp", objective, unfit, time.perf_counter() - t0
        )
    deadline = deadline_h if objective == "cost" else None
    budget = budget_usd if objective == "time" else None
    risky = any_risky(c) if method == "auto" else False
    lag = None
    if method == "auto" and _use_lagrange(c, objective, deadline, risky):
        lag = _lagrange(c, deadline, time_limit_s, t0)
    if lag is not None and (lag.status != "feasible" or c.n >= EXACT_TOO_BELOW_JOBS
                            or (lag.gap or 0.0) <= LAGRANGE_GAP):
        sol = lag
    elif lag is not None:
        sol = _also_exact(c, lag, deadline, time_limit_s, t0)
    elif method == "auto" and risky:
        sol = _relax_then_repair(c, objective, deadline, budget, time_limit_s, t0)
    else:
        sol = _dispatch(c, objective, deadline, budget, method, time_limit_s)
    if sol.status == "infeasible":
        msg = _explain(c, objective, deadline, budget, method, time_limit_s)
        sol = replace(sol, message=msg, solve_time_s=time.perf_counter() - t0)
    return sol


def pareto_frontier(
    problem: Problem,
    method: Method = "auto",
    *,
    max_points: int = 20,
    time_limit_s: float = 60.0,
) -> list[Solution]:
    """The cost–makespan Pareto frontier, cheapest plan first, fastest plan last.

    With the DP (chains and trees) this is the exact frontier, read off the root's label
    set. Otherwise it is traced by the epsilon-constraint method on the MILP: solve min cost,
    then repeatedly min cost with a deadline just below the last makespan, until no plan is
    faster or ``max_points`` is reached (then the fastest plan closes the list). From
    :data:`SPACED_FRONTIER_JOBS` jobs, ``auto`` instead solves min cost at deadlines evenly
    spaced between the two ends, each with a share of ``time_limit_s`` and its own proven gap
    (``Solution.gap``; the points there are not all proven optimal). Cost here is the cost
    objective (real cost + penalties); makespan as scheduled. Dominated points (no cheaper,
    slower) are dropped. When there are more points than ``max_points``, an evenly spaced
    subset keeping both ends is returned.
    """
    check_args("cost", method, time_limit_s)
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    c = compile_problem(problem)
    if _unfit_jobs(c):
        return []
    if method in ("auto", "dp") and dp_method(c) is not None:
        points = solve_dp(
            c, "cost", deadline=None, budget=None, frontier=True, max_points=max_points
        )
    elif method == "auto" and c.n >= SPACED_FRONTIER_JOBS:
        points = _spaced_frontier(c, max_points, time_limit_s)
    else:
        points = []
        sol = _dispatch(c, "cost", None, None, method, time_limit_s)
        while sol.status != "infeasible" and len(points) < max_points - 1:
            points.append(sol)
            eps = 1e-6 * max(1.0, sol.makespan_h)
            sol = _dispatch(c, "cost", sol.makespan_h - eps, None, method, time_limit_s)
        if sol.status != "infeasible":
            # Jump to the fast end: the cheapest plan among the fastest ones.
            fastest = _dispatch(c, "time", None, None, method, time_limit_s)
            deadline = fastest.makespan_h + 1e-6 * max(1.0, fastest.makespan_h)
            points.append(_dispatch(c, "cost", deadline, None, method, time_limit_s))
    if not (method in ("auto", "dp") and dp_method(c) is not None):
        points = _undominated(points)
    if len(points) > max_points:
        step = (len(points) - 1) / (max_points - 1)
        points = [points[round(i * step)] for i in range(max_points)]
    return points


def _undominated(points: list[Solution]) -> list[Solution]:
    """Cheapest first, each point strictly faster than every cheaper (or as cheap) one."""
    kept: list[Solution] = []
    for p in sorted(points, key=lambda p: (p.objective_value, p.makespan_h)):
        if not kept or p.makespan_h < kept[-1].makespan_h - 1e-9:
            kept.append(p)
    return kept


def _spaced_frontier(c: Compiled, max_points: int, time_limit_s: float) -> list[Solution]:
    """The frontier at evenly spaced deadlines between its two ends, each point with its gap.

    Both ends first: the cheapest plan (no deadline) and the fastest (least makespan, then
    cheapest among the fastest within its share of time). Then min cost at ``max_points - 2``
    deadlines evenly spaced between their makespans, and at the fastest makespan itself, each
    by the Lagrangian method (a plan and a proven bound) with an equal share of
    ``time_limit_s``. The cheapest plan's cost bounds every point from below, so a point's gap
    is never worse than against it. Dominated points are dropped by the caller.
    """
    share = time_limit_s / (max_points + 1)  # the two ends, the points, the fast end priced
    cheapest = _dispatch(c, "cost", None, None, "auto", share)
    if cheapest.status == "infeasible":
        return []
    try:
        fastest = _dispatch(c, "time", None, None, "auto", share)
    except SolverError:  # no plan in its share: every job on its quickest option instead
        fastest = _quickest(c)
    floor = cheapest.lower_bound or 0.0
    lo, hi = fastest.makespan_h, cheapest.makespan_h
    points = [cheapest]
    for i in range(1, max_points - 1):
        deadline = hi - i * (hi - lo) / (max_points - 1)
        sol = _point(c, deadline, share)
        if sol is not None:
            points.append(_floored(sol, floor))
    end = build(c, [fastest.jobs[name].option for name in c.names], status="feasible",
                method=fastest.method, objective="cost", solve_time_s=fastest.solve_time_s)
    # The fast end priced: min cost at the fastest makespan, for a cheaper plan and a bound.
    tight = _point(c, lo + 1e-6 * max(1.0, lo), share)
    if tight is not None:
        # Its bound holds for every plan as fast as the fastest one, so for ``end`` too.
        floor = max(floor, tight.lower_bound or 0.0)
        if tight.objective_value < end.objective_value:
            end = tight
    points.append(_floored(end, floor))
    return points


def _quickest(c: Compiled) -> Solution:
    """Every job on its quickest allowed option (provisioning + run; the cheaper on a tie),
    scheduled: a fast plan, not proven the fastest (transfers are not weighed)."""
    choice = []
    for j in range(c.n):
        ok = np.flatnonzero(c.allowed[j])
        span = (c.delay[j] + c.dur[j])[ok]
        choice.append(int(ok[np.lexsort((c.compute[j][ok], span))[0]]))
    return build(c, choice, status="feasible", method="quickest", objective="time",
                 solve_time_s=0.0)


def _point(c: Compiled, deadline: float, time_limit_s: float) -> Solution | None:
    """Min cost under ``deadline`` by the Lagrangian method (a plan and a bound at any size);
    ``None`` when there is no plan or none was found in time."""
    try:
        sol = solve_compiled(c, "cost", deadline_h=deadline, budget_usd=None,
                             method="lagrange", time_limit_s=time_limit_s,
                             t0=time.perf_counter())
    except SolverError:
        return None
    return None if sol.status == "infeasible" else sol


def _floored(sol: Solution, floor: float) -> Solution:
    """``sol`` with its lower bound raised to ``floor`` (a bound valid for every plan)."""
    lb = min(max(sol.lower_bound or 0.0, floor), sol.objective_value)
    value = sol.objective_value
    gap = (value - lb) / value if value > 0 else 0.0
    if gap <= 1e-9:
        return replace(sol, status="optimal", optimal=True, lower_bound=value, gap=0.0)
    return replace(sol, lower_bound=lb, gap=gap)
