"""The MILP's reductions (location classes, folding, dominance, the LP-first path) are exact.

Small random DAGs whose locations sit in "clouds": links between clouds are priced by the
source cloud, links inside a cloud are free (regions interchangeable), or almost free (a
tiny price, a non-zero time, or one odd pair: regions *not* interchangeable). The MILP must
agree with brute force on all of them, with and without a contended pool, deadlines and
budgets, and every plan must obey the model.
"""

from __future__ import annotations

import numpy as np
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
    random_problem,
    solve,
    violations,
)
from placer.optimizer._classes import reduce_problem, row_classes
from placer.optimizer._compile import compile_problem, risky_jobs

REGIONS = ("a:1", "a:2", "a:3", "b:1", "b:2", "c:1")
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def cloud_links(draw: st.DrawFn) -> dict[tuple[str, str], Link]:
    """Source-cloud egress between clouds; inside a cloud free, or almost (the variants)."""
    egress = {c: draw(st.sampled_from([0.0, 0.02, 0.09, 0.12])) for c in "abc"}
    speed = draw(st.sampled_from([0.0, 0.001, 0.01]))
    inside = draw(st.sampled_from(["free", "free", "price", "time", "one pair"]))
    odd = (draw(st.sampled_from(REGIONS)), draw(st.sampled_from(REGIONS)))
    links = {}
    for a in REGIONS:
        for b in REGIONS:
            if a == b:
                continue
            if a[0] != b[0]:
                links[a, b] = Link(egress[a[0]], speed)
            elif inside == "price":
                links[a, b] = Link(0.01, 0.0)
            elif inside == "time":
                links[a, b] = Link(0.0, 0.002)
            elif inside == "one pair" and (a, b) == odd:
                links[a, b] = Link(0.001, 0.0)
            else:
                links[a, b] = Link(0.0, 0.0)
    return links


@st.composite
def cloud_problems(draw: st.DrawFn) -> Problem:
    """Up to 7 jobs with up to 4 options each (<= 1,500 plans), in 3 clouds / 6 regions."""
    n = draw(st.integers(1, 7))
    names = [f"j{i}" for i in range(n)]
    pool = draw(st.sampled_from([0, 0, 50]))  # % of options on a contended pool
    options: dict[str, tuple[Option, ...]] = {}
    plans = 1
    for i, name in enumerate(names):
        room = max(1, 1_500 // plans // 2 ** (n - i - 1))
        k = min(draw(st.integers(1, 4)), room)
        plans *= k
        opts = []
        base = draw(st.integers(1, 8)) / 2
        for _ in range(k):
            on_pool = draw(st.integers(0, 99)) < pool
            region = draw(st.sampled_from(REGIONS))
            opts.append(Option(
                site=region, location=region, gpu="g", spot=False,
                duration_h=base * draw(st.sampled_from([1.0, 1.0, 1.5, 2.0])),
                compute_usd=float(draw(st.sampled_from([10, 10, 12, 20, 30]))),
                start_delay_h=draw(st.sampled_from([0.0, 0.0, 0.25])),
                penalty_usd=draw(st.sampled_from([0.0, 0.0, 2.0])),
                pool="P" if on_pool else None, pool_gpus=draw(st.integers(1, 4)) if on_pool else 0,
            ))
        options[name] = tuple(opts)
    edges = []
    for k in range(1, n):
        for i in range(k):
            if draw(st.integers(0, 99)) < 45:
                edges.append(Edge(names[i], names[k], draw(st.sampled_from([0.0, 10.0, 300.0]))))
    links = cloud_links(draw)
    # A dataset in a store whose links to the regions differ: reads tell regions apart.
    for r in REGIONS:
        links["store", r] = Link(draw(st.sampled_from([0.0, 0.01])),
                                 draw(st.sampled_from([0.0, 0.002, 0.01])))
    reads = tuple(Read(name, "store", 100.0) for name in names if draw(st.integers(0, 2)) == 0)
    return Problem(jobs=tuple(names), options=options, edges=tuple(edges), reads=reads,
                   links=links, capacity={"P": draw(st.integers(2, 6))})


def check(p: Problem, s: Solution, brute: Solution) -> None:
    assert s.status == brute.status, (s.message, brute.message)
    assert violations(p, s) == []
    if s.status != "infeasible":
        assert s.objective_value == pytest.approx(brute.objective_value, rel=1e-6, abs=1e-6)
        assert s.optimal


FACTORS = st.sampled_from([None, None, 0.8, 1.0, 1.3])


@SETTINGS
@given(cloud_problems(), FACTORS)
def test_milp_equals_brute_force_on_clouds_for_cost(p: Problem, factor: float | None) -> None:
    deadline = None
    if factor is not None:
        fastest = solve(p, "time", method="brute")
        deadline = factor * fastest.makespan_h
    brute = solve(p, "cost", deadline_h=deadline, method="brute")
    milp = solve(p, "cost", deadline_h=deadline, method="milp")
    check(p, milp, brute)
    if deadline is not None and milp.status != "infeasible":
        assert milp.makespan_h <= deadline + 1e-6


@SETTINGS
@given(cloud_problems(), FACTORS)
def test_milp_equals_brute_force_on_clouds_for_time(p: Problem, factor: float | None) -> None:
    budget = None
    if factor is not None:
        budget = factor * solve(p, "cost", method="brute").cost_usd
    brute = solve(p, "time", budget_usd=budget, method="brute")
    milp = solve(p, "time", budget_usd=budget, method="milp")
    check(p, milp, brute)
    if milp.status == "optimal":
        assert milp.cost_usd == pytest.approx(brute.cost_usd, rel=1e-6, abs=1e-6)
    if budget is not None and milp.status != "infeasible":
        assert milp.cost_usd <= budget + 1e-6


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(0, 10_000), st.booleans(),
       st.sampled_from([None, 0.9, 1.3]))
def test_milp_equals_brute_force_on_random_problems(
    n: int, k: int, seed: int, onprem: bool, factor: float | None
) -> None:
    p = random_problem(n, k, "dag", seed, onprem=onprem, pool_gpus=8)
    deadline = None
    if factor is not None:
        deadline = factor * solve(p, "time", method="brute").makespan_h
    brute = solve(p, "cost", deadline_h=deadline, method="brute")
    check(p, solve(p, "cost", deadline_h=deadline, method="milp"), brute)


def test_row_classes_group_identical_rows_by_first_occurrence() -> None:
    m = np.asarray([[1.0, 2.0], [0.0, 0.0], [1.0, 2.0], [0.0, 0.0], [1.0, 2.5]])
    cls, rep = row_classes(m)
    assert cls.tolist() == [0, 1, 0, 1, 2]
    assert rep.tolist() == [0, 1, 4]


def two_cloud_chainless(inside: Link) -> Problem:
    """Two jobs, each with one option in each of 3 regions of clouds a and b."""
    regions = ("a:1", "a:2", "a:3", "b:1", "b:2", "b:3")
    links = {(x, y): (inside if x[0] == y[0] else Link(0.1, 0.0))
             for x in regions for y in regions if x != y}
    opts = tuple(Option(site=r, location=r, gpu="g", spot=False, duration_h=1.0,
                        compute_usd=10.0 + i) for i, r in enumerate(regions))
    return Problem(jobs=("s", "d"), options={"s": opts, "d": opts[::-1]},
                   edges=(Edge("s", "d", 100.0),), links=links)


def test_free_regions_of_a_cloud_merge_and_priced_ones_do_not() -> None:
    free = compile_problem(two_cloud_chainless(Link(0.0, 0.0)))
    red = reduce_problem(free, timed=False, risky={}, use_penalty=True)
    # One class per cloud, the cheapest option of each kept: 2 x 2 transportation.
    assert red.xcount.tolist() == [2, 2]
    assert (red.yk.tolist(), red.ym.tolist()) == ([2], [2])
    priced = compile_problem(two_cloud_chainless(Link(0.02, 0.0)))
    red = reduce_problem(priced, timed=False, risky={}, use_penalty=True)
    # a:1 -> a:1 is free but a:1 -> a:2 is not: no two regions are interchangeable.
    assert red.xcount.tolist() == [6, 6]
    assert (red.yk.tolist(), red.ym.tolist()) == ([6], [6])
    for p in (two_cloud_chainless(Link(0.0, 0.0)), two_cloud_chainless(Link(0.02, 0.0))):
        assert solve(p, method="milp").objective_value == solve(p, method="brute").objective_value


def test_time_keeps_faster_options_that_cost_more() -> None:
    p = two_cloud_chainless(Link(0.0, 0.0))
    fast = Option(site="x", location="a:2", gpu="g", spot=False, duration_h=0.5, compute_usd=50)
    p = Problem(jobs=p.jobs, options={**p.options, "s": (*p.options["s"], fast)},
                edges=p.edges, links=p.links)
    c = compile_problem(p)
    untimed = reduce_problem(c, timed=False, risky={}, use_penalty=True)
    timed = reduce_problem(c, timed=True, risky=risky_jobs(c), use_penalty=True)
    assert 6 not in untimed.xopt[: untimed.xcount[0]].tolist()
    assert 6 in timed.xopt[: timed.xcount[0]].tolist()
    s = solve(p, "time", method="milp")
    assert s.jobs["s"].option == 6
    assert s.makespan_h == solve(p, "time", method="brute").makespan_h


def test_lp_first_path_is_certified_on_a_larger_dag() -> None:
    """60 SkyPilot-like jobs: proven optimal, and no plan found by local moves is cheaper."""
    p = random_problem(60, 8, "dag", 3, n_locations=5, onprem=False)
    s = solve(p, method="milp")
    assert s.optimal and s.gap == 0.0 and violations(p, s) == []
    c = compile_problem(p)
    from placer.optimizer import evaluate

    choice = dict(s.choice)
    for name in p.jobs[:20]:  # no single-job move improves a proven optimum
        for o in range(len(p.options[name])):
            moved = evaluate(p, {**choice, name: o})
            assert moved.cost_usd + moved.penalty_usd >= s.objective_value - 1e-6
    assert c.n == 60


def test_a_fractional_lp_falls_back_to_the_milp() -> None:
    """A frustrated triangle: every edge is free only where its ends disagree, which no
    assignment of two values to three jobs achieves on all edges. The LP relaxation takes
    every option by half at cost 0; the MILP must find the integer optimum, 10."""
    side = {"a": ("a0", "a1"), "b": ("b0", "b1"), "c": ("c0", "c1")}
    links = {}
    for x, y in (("a", "b"), ("b", "c"), ("a", "c")):
        for i, lx in enumerate(side[x]):
            for k, ly in enumerate(side[y]):
                links[lx, ly] = Link(10.0 if i == k else 0.0, 0.0)
    options = {j: tuple(Option(site=loc, location=loc, gpu="g", spot=False, duration_h=1.0,
                               compute_usd=0.0) for loc in locs) for j, locs in side.items()}
    p = Problem(jobs=("a", "b", "c"), options=options, links=links,
                edges=(Edge("a", "b", 1.0), Edge("b", "c", 1.0), Edge("a", "c", 1.0)))
    s = solve(p, method="milp")
    assert (s.status, s.objective_value) == ("optimal", 10.0)
    assert s.objective_value == solve(p, method="brute").objective_value
