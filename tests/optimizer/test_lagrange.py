"""The Lagrangian method: every plan is feasible and its bound is a true lower bound.

Held against brute force on small random DAGs (capacity, deadlines, budgets) and against the
exact MILP on medium ones where it proves optimality: ``lower bound <= optimum <= plan``, equal
when the method claims optimality, and the plan within its claimed gap of the optimum.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placer.optimizer import (
    Edge,
    Link,
    Option,
    Problem,
    Read,
    Solution,
    evaluate,
    pareto_frontier,
    random_problem,
    solve,
    violations,
)
from placer.optimizer._compile import compile_problem
from placer.optimizer._lagrange import _flatten, _ssgs
from placer.optimizer._solution import Profile as _Profile
from placer.optimizer._solution import ssgs

LOCATIONS = ("A", "B", "C")
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EPS = 1e-6


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    """Random DAGs: up to 7 jobs x 3 options, 3 locations, one pool that often binds."""
    n = draw(st.integers(1, 7))
    names = [f"j{i}" for i in range(n)]
    opts: dict[str, tuple[Option, ...]] = {}
    for name in names:
        k = draw(st.integers(1, 3))
        row = []
        for _ in range(k):
            on_pool = draw(st.integers(0, 99)) < 50
            row.append(Option(
                site="s", location=draw(st.sampled_from(LOCATIONS)), gpu="g", spot=False,
                duration_h=draw(st.integers(1, 16)) / 2,
                compute_usd=float(draw(st.integers(0, 60))),
                start_delay_h=draw(st.sampled_from([0.0, 0.0, 0.5])),
                penalty_usd=draw(st.sampled_from([0.0, 0.0, 2.0])),
                pool="P" if on_pool else None,
                pool_gpus=draw(st.integers(1, 6)) if on_pool else 0,
            ))
        opts[name] = tuple(row)
    edges = []
    for i in range(1, n):
        for s in range(i):
            if draw(st.integers(0, 99)) < 35:
                edges.append(Edge(names[s], names[i], float(draw(st.integers(0, 50)))))
    reads = tuple(
        Read(name, draw(st.sampled_from(LOCATIONS)), float(draw(st.integers(1, 30))))
        for name in names if draw(st.booleans())
    )
    links = {
        (a, b): Link(draw(st.integers(1, 10)) / 100, draw(st.integers(0, 20)) / 100)
        for a in LOCATIONS for b in LOCATIONS if a != b
    }
    return Problem(jobs=tuple(names), options=opts, edges=tuple(edges), reads=reads,
                   links=links, capacity={"P": draw(st.integers(2, 8))})


def _check_bracket(p: Problem, sol: Solution, optimum: Solution) -> None:
    """``sol`` is feasible and ``lower_bound <= optimum <= sol`` (equal when optimal)."""
    assert violations(p, sol) == []
    assert sol.lower_bound is not None and sol.gap is not None
    opt = optimum.objective_value
    assert sol.objective_value >= opt - EPS * max(1.0, opt)
    assert sol.lower_bound <= opt + EPS * max(1.0, opt)
    assert sol.lower_bound <= sol.objective_value + EPS
    if sol.optimal:
        assert abs(sol.objective_value - opt) <= EPS * max(1.0, opt)
    else:
        assert sol.gap >= (sol.objective_value - opt) / sol.objective_value - EPS


@SETTINGS
@given(problems(), st.sampled_from([1.0, 1.05, 1.3, 2.0]))
def test_deadline_plans_lie_between_bound_and_brute_force(p: Problem, factor: float) -> None:
    fastest = solve(p, "time", method="brute")
    if fastest.status == "infeasible":
        return
    deadline = fastest.makespan_h * factor
    exact = solve(p, "cost", deadline_h=deadline, method="brute")
    lag = solve(p, "cost", deadline_h=deadline, method="lagrange", time_limit_s=10)
    assert lag.status != "infeasible" or exact.status == "infeasible"
    if exact.status == "infeasible":
        assert lag.status == "infeasible"
        return
    assert lag.makespan_h <= deadline + 1e-6 * max(1.0, deadline)
    _check_bracket(p, lag, exact)


@SETTINGS
@given(problems())
def test_without_deadline_and_with_budget(p: Problem) -> None:
    cheapest = solve(p, "cost", method="brute")
    if cheapest.status == "infeasible":
        return
    lag = solve(p, "cost", method="lagrange")
    _check_bracket(p, lag, cheapest)
    # The time objective under a budget takes auto's exact route: same optimum as brute force.
    budget = cheapest.cost_usd * 1.2
    exact = solve(p, "time", budget_usd=budget, method="brute")
    fast = solve(p, "time", budget_usd=budget, method="lagrange")
    assert violations(p, fast) == []
    assert abs(fast.makespan_h - exact.makespan_h) <= 1e-6 * max(1.0, exact.makespan_h)


def test_infeasible_deadline_is_proven() -> None:
    p = random_problem(12, 3, "dag", seed=3, pool_gpus=8)
    sol = solve(p, "cost", deadline_h=0.1, method="lagrange")
    assert sol.status == "infeasible"
    assert "deadline" in sol.message


def test_medium_dags_within_claimed_gap_of_the_milp() -> None:
    proven = 0
    for seed in range(6):
        p = random_problem(14, 3, "dag", seed=seed, pool_gpus=8)
        fast = solve(p, "time", method="milp", time_limit_s=10)
        if fast.status != "optimal":
            continue
        deadline = 1.2 * fast.makespan_h
        exact = solve(p, "cost", deadline_h=deadline, method="milp", time_limit_s=10)
        if exact.status != "optimal":
            continue
        proven += 1
        lag = solve(p, "cost", deadline_h=deadline, method="lagrange")
        _check_bracket(p, lag, exact)
    assert proven >= 3  # the comparison must actually have happened


def test_auto_on_contended_dags_is_never_worse_than_the_lagrangian_plan() -> None:
    p = random_problem(60, 6, "dag", seed=1, pool_gpus=16)
    choice = {j: min(range(len(p.options[j])), key=lambda o: p.options[j][o].duration_h)
              for j in p.jobs}
    deadline = 1.3 * evaluate(p, choice).makespan_h
    lag = solve(p, "cost", deadline_h=deadline, method="lagrange")
    assert lag.method == "lagrange"
    assert violations(p, lag) == []
    assert lag.makespan_h <= deadline + 1e-6 * deadline
    assert lag.lower_bound is not None and lag.lower_bound <= lag.objective_value
    assert lag.gap is not None and 0.0 <= lag.gap < 0.2
    assert lag.status == ("optimal" if lag.gap == 0.0 else "feasible")
    again = solve(p, "cost", deadline_h=deadline, method="lagrange")
    assert again.choice == lag.choice  # deterministic
    auto = solve(p, "cost", deadline_h=deadline, time_limit_s=3)
    assert violations(p, auto) == []
    assert auto.objective_value <= lag.objective_value + 1e-6
    assert auto.lower_bound is not None
    assert auto.lower_bound >= lag.lower_bound - 1e-6 * lag.objective_value


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, 10_000))
def test_fast_ssgs_equals_the_reference_rule(seed: int) -> None:
    """The profile-based SSGS places every job where :func:`ssgs` does."""
    rng = random.Random(seed)
    p = random_problem(rng.randint(2, 25), 4, "dag", seed=seed, pool_gpus=rng.choice((4, 8, 16)))
    c = compile_problem(p)
    a = _flatten(c)
    choice = [rng.choice([o for o in range(len(c.options[j])) if c.allowed[j][o]])
              for j in range(c.n)]
    pick = a.first[:-1] + choice
    order = list(c.topo)
    fast = _ssgs(a, pick, order)
    ref = ssgs(c, choice, order)
    assert all(abs(x - y) <= 1e-9 * max(1.0, abs(y)) for x, y in zip(fast, ref, strict=True))


def earliest_fit(
    busy: list[tuple[float, float, int]], t0: float, d: float, g: int, cap: int
) -> float:
    """The definition, by brute force: the earliest ``t >= t0`` (``t0`` or some run's end,
    since usage only drops at run ends) such that ``g`` more GPUs fit at every instant of
    ``[t, t + d)`` (usage there peaks at ``t`` or at a start inside the window)."""
    for t in sorted({t0} | {e for _, e, _ in busy if e > t0}):
        points = [t] + [s for s, _, _ in busy if t < s < t + d]
        if all(g + sum(u for s, e, u in busy if s <= p < e) <= cap for p in points):
            return t
    raise AssertionError("unreachable: a job that fits its pool fits after every run ends")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 6), st.integers(1, 4)),
                max_size=8), st.integers(0, 25), st.integers(1, 6), st.integers(1, 4))
def test_profile_fit_equals_earliest_fit(
    runs: list[tuple[int, int, int]], t0: int, d: int, g: int
) -> None:
    cap = 4
    prof = _Profile(cap)
    busy: list[tuple[float, float, int]] = []
    for s, dur, gpus in runs:
        t = prof.fit(float(s), float(dur), gpus)
        assert t == earliest_fit(busy, float(s), float(dur), gpus, cap)
        prof.add(t, float(dur), gpus)
        busy.append((t, t + dur, gpus))
    assert prof.fit(float(t0), float(d), g) == earliest_fit(busy, float(t0), float(d), g, cap)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("fastest_in_time", [True, False])
def test_spaced_frontier_brackets_brute_force_at_every_point(
    seed: int, fastest_in_time: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The large-DAG frontier (evenly spaced deadlines, Lagrangian points), forced on small
    DAGs: every point's proven bound is at most brute force's optimum at its makespan, its
    value at least that, and the points form a staircase from the cheapest plan. Also when
    the fastest plan is not found in its share of time (every job on its quickest option)."""
    from placer.errors import SolverError
    from placer.optimizer import _solve

    monkeypatch.setattr(_solve, "SPACED_FRONTIER_JOBS", 1)
    if not fastest_in_time:
        dispatch = _solve._dispatch

        def slow_time(c: object, objective: str, *args: object, **kw: object) -> Solution:
            if objective == "time":
                raise SolverError("HiGHS stopped (Time limit reached) before any plan")
            return dispatch(c, objective, *args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(_solve, "_dispatch", slow_time)
    p = random_problem(7, 3, "dag", seed, pool_gpus=10**6)
    points = pareto_frontier(p, max_points=5, time_limit_s=10)
    assert points[0].objective_value == pytest.approx(solve(p).objective_value)
    assert 1 <= len(points) <= 5
    for a, b in itertools.pairwise(points):
        assert a.objective_value < b.objective_value and a.makespan_h > b.makespan_h
    if fastest_in_time:
        assert points[-1].makespan_h == pytest.approx(solve(p, "time").makespan_h, rel=1e-6)
    for q in points:
        assert violations(p, q) == []
        assert q.lower_bound is not None and q.gap is not None and 0 <= q.gap < 1
        best = solve(p, deadline_h=q.makespan_h + 1e-9, method="brute")
        assert q.lower_bound <= best.objective_value + 1e-6 <= q.objective_value + 2e-6
