"""Property tests: every method agrees with brute force, and every schedule obeys the model."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from placer.optimizer import (
    Edge,
    Link,
    Option,
    Problem,
    Read,
    Solution,
    random_problem,
    solve,
    violations,
)
from placer.optimizer._compile import compile_problem, risky_jobs

LOCATIONS = ("A", "B", "C")
MAX_ASSIGNMENTS = 2_000  # keeps brute force (and the whole module) fast on 2 cores
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def options(draw: st.DrawFn, pool_prob: int) -> Option:
    on_pool = draw(st.integers(0, 99)) < pool_prob
    return Option(
        site="s",
        location=draw(st.sampled_from(LOCATIONS)),
        gpu="g",
        spot=draw(st.booleans()),
        duration_h=draw(st.integers(1, 24)) / 2,
        compute_usd=float(draw(st.integers(0, 100))),
        start_delay_h=draw(st.sampled_from([0.0, 0.0, 0.25, 1.0])),
        penalty_usd=draw(st.sampled_from([0.0, 0.0, 3.0])),
        pool="P" if on_pool else None,
        pool_gpus=draw(st.integers(1, 8)) if on_pool else 0,
    )


@st.composite
def problems(draw: st.DrawFn, shape: str = "dag") -> Problem:
    """Random DAGs: up to 8 jobs x 4 options, 3 locations, random links and capacity.

    ``shape="tree"`` draws an out-tree (every job but the first has one parent) or an
    in-tree (the same, edges reversed), the structures the DP solves.
    """
    n = draw(st.integers(1, 8))
    names = [f"j{i}" for i in range(n)]
    pool_prob = draw(st.sampled_from([0, 40, 80]))
    opts: dict[str, tuple[Option, ...]] = {}
    product = 1
    for i, name in enumerate(names):
        room = MAX_ASSIGNMENTS // product // 2 ** (n - i - 1)  # leave >= 2 for the rest
        k = min(draw(st.integers(1, 4)), max(1, room))
        opts[name] = tuple(draw(options(pool_prob)) for _ in range(k))
        product *= k
    gbs = st.sampled_from([0.0, 1.0, 10.0, 100.0, 500.0])
    edges = []
    if shape == "tree":
        reverse = draw(st.booleans())
        for k in range(1, n):
            i = draw(st.integers(0, k - 1))
            a, b = (names[k], names[i]) if reverse else (names[i], names[k])
            edges.append(Edge(a, b, draw(gbs)))
    else:
        for k in range(n):
            for i in range(k):
                if draw(st.integers(0, 99)) < 35:
                    edges.append(Edge(names[i], names[k], draw(gbs)))
    reads = [
        Read(name, draw(st.sampled_from(LOCATIONS)), draw(st.sampled_from([10.0, 200.0])))
        for name in names
        if draw(st.integers(0, 99)) < 30
    ]
    links = {
        (a, b): Link(draw(st.integers(0, 12)) / 100, draw(st.integers(0, 20)) / 1000)
        for a in LOCATIONS
        for b in LOCATIONS
        if a != b
    }
    order = draw(st.permutations(names))  # problem.jobs need not be topological
    return Problem(
        jobs=tuple(order),
        options=opts,
        edges=tuple(edges),
        reads=tuple(reads),
        links=links,
        capacity={"P": draw(st.integers(1, 12))},
    )


def assert_consistent(p: Problem, s: Solution) -> None:
    assert violations(p, s) == []
    if s.status != "infeasible":
        assert set(s.jobs) == set(p.jobs)
        assert s.lower_bound is not None
        assert s.lower_bound <= s.objective_value + 1e-9


def describe(p: Problem, s: Solution) -> None:
    """Hypothesis statistics (``--hypothesis-show-statistics``): what the examples covered."""
    event(f"jobs={len(p.jobs)}")
    event(f"status={s.status}")
    event("pool contended" if risky_jobs(compile_problem(p)) else "no contended pool")


def assert_same(a: Solution, b: Solution) -> None:
    assert a.status == b.status, (a.message, b.message)
    if a.status == "infeasible":
        assert a.message == b.message
    else:
        assert a.objective_value == pytest.approx(b.objective_value, rel=1e-6, abs=1e-6)


FACTORS = st.sampled_from([None, 0.7, 0.95, 1.0, 1.2, 2.0])


@SETTINGS
@given(problems(), FACTORS)
def test_milp_equals_brute_force_for_cost_with_deadline(p: Problem, factor: float | None) -> None:
    deadline = None
    if factor is not None:
        fastest = solve(p, "time", method="brute")
        if fastest.status == "optimal":
            deadline = factor * fastest.makespan_h
    brute = solve(p, "cost", deadline_h=deadline, method="brute")
    milp = solve(p, "cost", deadline_h=deadline, method="milp")
    auto = solve(p, "cost", deadline_h=deadline)  # the DP wherever the DAG is a tree
    describe(p, brute)
    event(f"auto={auto.method}")
    assert_same(brute, milp)
    assert_same(brute, auto)
    for s in (brute, milp, auto):
        assert_consistent(p, s)
        if deadline is not None and s.status != "infeasible":
            assert s.makespan_h <= deadline + 1e-6


@SETTINGS
@given(problems(), FACTORS)
def test_milp_equals_brute_force_for_time_with_budget(p: Problem, factor: float | None) -> None:
    budget = None
    if factor is not None:
        cheapest = solve(p, "cost", method="brute")
        if cheapest.status == "optimal":
            budget = factor * cheapest.cost_usd
    brute = solve(p, "time", budget_usd=budget, method="brute")
    milp = solve(p, "time", budget_usd=budget, method="milp")
    auto = solve(p, "time", budget_usd=budget)
    describe(p, brute)
    event(f"auto={auto.method}")
    assert_same(brute, milp)
    assert_same(brute, auto)
    if brute.status == "optimal":
        # Lexicographic tie-break: among the fastest plans, all return the cheapest.
        assert milp.cost_usd == pytest.approx(brute.cost_usd, rel=1e-6, abs=1e-6)
        assert auto.cost_usd == pytest.approx(brute.cost_usd, rel=1e-6, abs=1e-6)
    for s in (brute, milp, auto):
        assert_consistent(p, s)
        if budget is not None and s.status != "infeasible":
            assert s.cost_usd <= budget + 1e-6


@settings(max_examples=120, deadline=None, derandomize=True)
@given(
    st.integers(1, 14),
    st.integers(1, 4),
    st.sampled_from(["chain", "tree", "out-tree"]),
    st.integers(0, 10_000),
    st.sampled_from(["cost", "time"]),
    st.sampled_from([None, 0.9, 1.0, 1.3]),
)
def test_dp_equals_milp_on_chains_and_trees(
    n: int, k: int, shape: str, seed: int, objective: str, factor: float | None
) -> None:
    p = random_problem(n, k, "tree" if shape == "out-tree" else shape, seed, pool_gpus=64)  # type: ignore[arg-type]
    if shape == "out-tree":  # forks: the in-tree with every edge reversed
        p = replace(p, edges=tuple(Edge(e.dst, e.src, e.gb) for e in p.edges))
    limit = None
    if factor is not None:
        ref = solve(p, "cost" if objective == "time" else "time", method="milp")
        limit = factor * (ref.cost_usd if objective == "time" else ref.makespan_h)
    kw = {"budget_usd": limit} if objective == "time" else {"deadline_h": limit}
    dp = solve(p, objective, method="dp", **kw)  # type: ignore[arg-type]
    milp = solve(p, objective, method="milp", **kw)  # type: ignore[arg-type]
    assert dp.method == ("dp-chain" if shape == "chain" or n <= 2 else dp.method)
    assert dp.method.startswith("dp")
    assert_same(dp, milp)
    assert_consistent(p, dp)
    assert_consistent(p, milp)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(3, 30), st.integers(0, 10_000))
def test_milp_schedules_on_larger_random_dags_are_consistent(n: int, seed: int) -> None:
    p = random_problem(n, 3, "dag", seed, pool_gpus=12)
    fastest = solve(p, "time", method="milp", time_limit_s=20)
    assert_consistent(p, fastest)
    s = solve(p, "cost", deadline_h=1.2 * fastest.makespan_h, method="milp", time_limit_s=20)
    assert_consistent(p, s)
    assert s.makespan_h <= 1.2 * fastest.makespan_h + 1e-6
    assert math.isfinite(s.cost_usd)


@SETTINGS
@given(problems("tree"), FACTORS, st.sampled_from(["cost", "time"]))
def test_dp_equals_brute_force_on_random_trees(
    p: Problem, factor: float | None, objective: str
) -> None:
    limit = None
    if factor is not None:
        ref = solve(p, "time" if objective == "cost" else "cost", method="brute")
        if ref.status == "optimal":
            limit = factor * (ref.makespan_h if objective == "cost" else ref.cost_usd)
    kw = {"deadline_h": limit} if objective == "cost" else {"budget_usd": limit}
    brute = solve(p, objective, method="brute", **kw)  # type: ignore[arg-type]
    dp = solve(p, objective, method="dp", **kw)  # type: ignore[arg-type]
    event(f"method={dp.method}")
    event(f"status={brute.status}")
    assert_same(brute, dp)
    assert_consistent(p, dp)
    if objective == "time" and brute.status == "optimal":
        assert dp.cost_usd == pytest.approx(brute.cost_usd, rel=1e-6, abs=1e-6)
