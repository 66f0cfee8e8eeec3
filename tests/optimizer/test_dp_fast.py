"""The fast DP (min-plus for cost, option-vectorised labels otherwise) against references.

Small problems use dyadic numbers (halves, 1/64 dollars per GB, powers of two of GB) so
every sum is exact in floating point: then "equally good" means exactly equal for brute
force and the DP alike, and the DP's tie-break can be checked plan for plan.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placer.optimizer import (
    Edge,
    Link,
    Option,
    Problem,
    Read,
    pareto_frontier,
    random_problem,
    solve,
)
from placer.optimizer._compile import compile_problem, risky_jobs
from placer.optimizer._dp import dp_method, forest_risky
from placer.optimizer._solution import build

LOCATIONS = ("A", "B", "C")
SMALL = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def forests(draw: st.DrawFn, ties: bool = False) -> Problem:
    """Chains, in-trees, out-trees and forests of them, jobs listed in any order.

    ``ties=True`` draws from so few prices that many plans cost the same.
    """
    n = draw(st.integers(1, 7))
    names = [f"j{i}" for i in range(n)]
    shape = draw(st.sampled_from(["chain", "in", "out", "forest"]))
    opts: dict[str, tuple[Option, ...]] = {}
    product = 1
    for i, name in enumerate(names):
        room = 1_500 // product // 2 ** (n - i - 1)
        k = min(draw(st.integers(1, 4)), max(1, room))
        opts[name] = tuple(
            Option(
                site="s",
                location=draw(st.sampled_from(LOCATIONS)),
                gpu="g",
                spot=False,
                duration_h=draw(st.integers(1, 8)) / 2,
                compute_usd=float(draw(st.integers(0, 1 if ties else 12))),
                start_delay_h=draw(st.sampled_from([0.0, 0.25, 1.0])),
                penalty_usd=draw(st.sampled_from([0.0, 0.0, 2.0])),
            )
            for _ in range(k)
        )
        product *= k
    gbs = st.sampled_from([0.0, 1.0] if ties else [0.0, 1.0, 8.0, 64.0, 512.0])
    edges = []
    for k in range(1, n):
        if shape == "forest" and draw(st.booleans()):
            continue  # a new component
        i = k - 1 if shape == "chain" else draw(st.integers(0, k - 1))
        a, b = (names[k], names[i]) if shape == "in" else (names[i], names[k])
        edges.append(Edge(a, b, draw(gbs)))
    reads = [
        Read(name, draw(st.sampled_from(LOCATIONS)), draw(st.sampled_from([8.0, 256.0])))
        for name in names
        if draw(st.integers(0, 99)) < 30
    ]
    links = {
        (a, b): Link(draw(st.integers(0, 1)) if ties else draw(st.integers(0, 8)) / 64,
                     draw(st.integers(0, 16)) / 1024)
        for a in LOCATIONS
        for b in LOCATIONS
        if a != b
    }
    return Problem(
        jobs=tuple(draw(st.permutations(names))),
        options=opts,
        edges=tuple(edges),
        reads=tuple(reads),
        links=links,
    )


FACTORS = st.sampled_from([None, 0.8, 1.0, 1.25, 2.0])


@SMALL
@given(st.booleans().flatmap(forests))
def test_min_cost_is_brute_force_plan_for_plan(p: Problem) -> None:
    brute = solve(p, "cost", method="brute")
    dp = solve(p, "cost", method="dp")
    assert dp.method.startswith("dp")
    assert dp.objective_value == brute.objective_value
    # Ties: the lexicographically smallest plan in problem.jobs order, as brute force.
    assert dp.choice == brute.choice


@SMALL
@given(forests(), FACTORS, st.sampled_from(["cost", "time"]))
def test_labels_equal_brute_force_with_deadline_budget_and_time(
    p: Problem, factor: float | None, objective: str
) -> None:
    limit = None
    if factor is not None:
        ref = solve(p, "time" if objective == "cost" else "cost", method="brute")
        limit = factor * (ref.makespan_h if objective == "cost" else ref.cost_usd)
    kw = {"deadline_h": limit} if objective == "cost" else {"budget_usd": limit}
    brute = solve(p, objective, method="brute", **kw)  # type: ignore[arg-type]
    dp = solve(p, objective, method="dp", **kw)  # type: ignore[arg-type]
    assert dp.status == brute.status
    if brute.status == "optimal":
        assert dp.objective_value == pytest.approx(brute.objective_value, abs=1e-9)
        if objective == "time":  # among the fastest plans, the cheapest
            assert dp.cost_usd == pytest.approx(brute.cost_usd, abs=1e-9)
        if limit is not None and objective == "cost":
            assert dp.makespan_h <= limit + 1e-9
        if limit is not None and objective == "time":
            assert dp.cost_usd <= limit + 1e-9


def _brute_pareto(p: Problem) -> list[tuple[float, float]]:
    """Every plan's (cost objective, makespan), reduced to the non-dominated ones."""
    c = compile_problem(p)
    points = set()
    for choice in itertools.product(*(range(len(o)) for o in c.options)):
        s = build(c, choice, status="feasible", method="brute", objective="cost",
                  solve_time_s=0.0)
        points.add((s.objective_value, s.makespan_h))
    return sorted(
        (cost, t) for cost, t in points
        if not any(c2 <= cost and t2 <= t and (c2, t2) != (cost, t) for c2, t2 in points)
    )


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(forests())
def test_frontier_is_brute_force_pareto_set(p: Problem) -> None:
    frontier = pareto_frontier(p, method="dp", max_points=10_000)
    assert {s.method[:2] for s in frontier} == {"dp"}
    assert [(s.objective_value, s.makespan_h) for s in frontier] == _brute_pareto(p)


@settings(max_examples=16, deadline=None, derandomize=True)
@given(
    st.integers(10, 40),
    st.sampled_from(["chain", "tree", "out-tree"]),
    st.integers(0, 10_000),
    st.sampled_from(["cost", "time"]),
    st.sampled_from([None, 0.95, 1.2]),
)
def test_dp_equals_milp_on_medium_chains_and_trees(
    n: int, shape: str, seed: int, objective: str, factor: float | None
) -> None:
    p = random_problem(n, 4, "tree" if shape == "out-tree" else shape, seed, pool_gpus=10_000)  # type: ignore[arg-type]
    if shape == "out-tree":
        p = replace(p, edges=tuple(Edge(e.dst, e.src, e.gb) for e in p.edges))
    limit = None
    if factor is not None:
        ref = solve(p, "cost" if objective == "time" else "time", method="dp")
        limit = factor * (ref.cost_usd if objective == "time" else ref.makespan_h)
    kw = {"budget_usd": limit} if objective == "time" else {"deadline_h": limit}
    dp = solve(p, objective, method="dp", **kw)  # type: ignore[arg-type]
    milp = solve(p, objective, method="milp", **kw)  # type: ignore[arg-type]
    assert dp.method.startswith("dp")
    assert dp.status == milp.status
    if dp.status == "optimal":
        assert dp.objective_value == pytest.approx(milp.objective_value, rel=1e-6, abs=1e-6)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.integers(1, 25),
    st.sampled_from(["chain", "tree", "out-tree"]),
    st.integers(0, 10_000),
    st.sampled_from([2, 4, 8, 16, 32]),
)
def test_forest_overcommit_test_equals_risky_jobs(
    n: int, shape: str, seed: int, pool: int
) -> None:
    p = random_problem(n, 3, "tree" if shape == "out-tree" else shape, seed, pool_gpus=pool)  # type: ignore[arg-type]
    if shape == "out-tree":
        p = replace(p, edges=tuple(Edge(e.dst, e.src, e.gb) for e in p.edges))
    c = compile_problem(p)
    in_forest = all(len(out) <= 1 for out in c.out_edges)
    assert forest_risky(c, in_forest) == bool(risky_jobs(c))
    assert (dp_method(c) is None) == bool(risky_jobs(c))


def _opt(location: str, usd: float) -> Option:
    return Option(site="s", location=location, gpu="g", spot=False, duration_h=1.0,
                  compute_usd=usd)


def test_ties_go_to_earlier_jobs_even_against_the_tree_order() -> None:
    # j0 -> j1 -> j2 -> j3 and j0 -> j4, listed (j2, j4, j1, j3, j0): rooted at j2 (the
    # first job), j0 lies below j1 although it comes after it; 8 plans cost the minimum.
    options = {
        "j0": (_opt("C", 1), _opt("B", 1), _opt("C", 0)),
        "j1": (_opt("A", 1),),
        "j2": (_opt("B", 1), _opt("A", 0)),
        "j3": (_opt("C", 0), _opt("A", 0)),
        "j4": (_opt("C", 1), _opt("C", 1), _opt("A", 1)),
    }
    usd = {("A", "B"): 1, ("A", "C"): 0, ("B", "A"): 0, ("B", "C"): 1, ("C", "A"): 1,
           ("C", "B"): 0}
    p = Problem(
        jobs=("j2", "j4", "j1", "j3", "j0"),
        options=options,
        edges=(Edge("j0", "j1", 1), Edge("j1", "j2", 1), Edge("j2", "j3", 1),
               Edge("j0", "j4", 1)),
        links={k: Link(v, 0.0) for k, v in usd.items()},
    )
    brute = solve(p, method="brute")
    assert solve(p, method="dp").choice == brute.choice
    assert brute.choice == {"j2": 1, "j4": 0, "j1": 0, "j3": 0, "j0": 2}


def test_large_chain_without_deadline_is_fast_and_matches_the_label_dp() -> None:
    p = random_problem(400, 8, "chain", 3, pool_gpus=64)
    fast = solve(p, "cost", method="dp")
    # The label DP with a deadline no plan can miss reaches the same optimum.
    labelled = solve(p, "cost", deadline_h=1e9, method="dp")
    assert fast.objective_value == pytest.approx(labelled.objective_value, rel=1e-12)
    assert fast.solve_time_s < 5.0
