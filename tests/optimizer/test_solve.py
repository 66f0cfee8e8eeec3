"""Hand-computed cases: each number below is worked out in the comment next to it."""

from __future__ import annotations

import pytest

from placer.optimizer import (
    Edge,
    Link,
    Option,
    Problem,
    Read,
    evaluate,
    pareto_frontier,
    random_problem,
    solve,
    violations,
)

METHODS = ["auto", "milp", "brute"]


def opt(
    loc: str = "X",
    hours: float = 1.0,
    usd: float = 1.0,
    *,
    delay: float = 0.0,
    penalty: float = 0.0,
    pool: str | None = None,
    gpus: int = 0,
) -> Option:
    return Option(
        site=loc.lower(),
        location=loc,
        gpu="A100",
        spot=False,
        duration_h=hours,
        compute_usd=usd,
        start_delay_h=delay,
        penalty_usd=penalty,
        pool=pool,
        pool_gpus=gpus,
    )


def one_job(*options: Option) -> Problem:
    return Problem(jobs=("train",), options={"train": options})


# slow & cheap (4 h, $8) vs fast & dear (2 h, $20)
SLOW_FAST = one_job(opt(hours=4, usd=8), opt(hours=2, usd=20))


@pytest.mark.parametrize("method", METHODS)
def test_moving_data_makes_the_cheap_site_expensive(method: str) -> None:
    # a@X -> b -> c@X, 100 GB on each edge. b at Y is $5 cheaper to run but moving 100 GB
    # X->Y and back costs 2 * 100 * $0.05 = $10, so b stays at X: 1 + 10 + 1 = $12.
    link = Link(usd_per_gb=0.05, hours_per_gb=0.001)
    p = Problem(
        jobs=("a", "b", "c"),
        options={
            "a": (opt("X", usd=1),),
            "b": (opt("Y", usd=5), opt("X", usd=10)),
            "c": (opt("X", usd=1),),
        },
        edges=(Edge("a", "b", 100), Edge("b", "c", 100)),
        links={("X", "Y"): link, ("Y", "X"): link},
    )
    s = solve(p, method=method)  # type: ignore[arg-type]
    assert s.status == "optimal"
    assert s.jobs["b"].option == 1
    assert s.cost_usd == pytest.approx(12.0)
    # Forcing b to Y shows the $10 of transfer: 1 + 5 + 1 + 10 = $17.
    forced = evaluate(p, {"a": 0, "b": 0, "c": 0})
    assert forced.cost_usd == pytest.approx(17.0)
    assert forced.jobs["b"].transfer_usd == pytest.approx(5.0)
    assert forced.jobs["c"].transfer_h == pytest.approx(0.1)


@pytest.mark.parametrize("method", METHODS)
def test_deadline_forces_the_pricier_fast_option(method: str) -> None:
    assert solve(SLOW_FAST, method=method).jobs["train"].option == 0  # type: ignore[arg-type]
    s = solve(SLOW_FAST, deadline_h=3.0, method=method)  # type: ignore[arg-type]
    assert (s.status, s.jobs["train"].option, s.cost_usd, s.makespan_h) == (
        "optimal", 1, 20.0, 2.0)


@pytest.mark.parametrize("method", METHODS)
def test_budget_forces_the_slower_option(method: str) -> None:
    assert solve(SLOW_FAST, "time", method=method).jobs["train"].option == 1  # type: ignore[arg-type]
    s = solve(SLOW_FAST, "time", budget_usd=10.0, method=method)  # type: ignore[arg-type]
    assert (s.status, s.jobs["train"].option, s.objective_value) == ("optimal", 0, 4.0)


@pytest.mark.parametrize("method", METHODS)
def test_infeasible_deadline_and_budget_are_values_with_reasons(method: str) -> None:
    s = solve(SLOW_FAST, deadline_h=1.0, method=method)  # type: ignore[arg-type]
    assert (s.status, s.optimal, dict(s.jobs)) == ("infeasible", False, {})
    assert s.message == "deadline 1h is below the shortest possible makespan 2h"
    s = solve(SLOW_FAST, "time", budget_usd=5.0, method=method)  # type: ignore[arg-type]
    assert s.status == "infeasible"
    assert s.message == "budget $5.00 is below the cheapest plan $8.00"


@pytest.mark.parametrize("method", METHODS)
def test_capacity_serialises_the_third_job(method: str) -> None:
    # Three independent 2 h jobs need 4 GPUs each from an 8-GPU pool: two run at 0, one at 2.
    p = Problem(
        jobs=("a", "b", "c"),
        options={j: (opt(hours=2, pool="fra", gpus=4),) for j in "abc"},
        capacity={"fra": 8},
    )
    s = solve(p, "time", method=method)  # type: ignore[arg-type]
    assert sorted(x.start_h for x in s.jobs.values()) == pytest.approx([0.0, 0.0, 2.0])
    assert s.makespan_h == pytest.approx(4.0)
    assert s.method == ("brute" if method == "brute" else "milp")  # a pool can overflow: no DP
    assert violations(p, s) == []
    # evaluate() ignores capacity on purpose: all three start at 0.
    assert evaluate(p, {"a": 0, "b": 0, "c": 0}).makespan_h == 2.0


@pytest.mark.parametrize("method", METHODS)
def test_capacity_makes_a_cloud_option_worth_it(method: str) -> None:
    # Same pool, but c may also run in the cloud for $9 (2 h): under a 3 h deadline only
    # that fits, cost 3 + 3 + 9 = $15; without a deadline c waits on-prem for $9 total.
    p = Problem(
        jobs=("a", "b", "c"),
        options={
            "a": (opt(hours=2, usd=3, pool="fra", gpus=4),),
            "b": (opt(hours=2, usd=3, pool="fra", gpus=4),),
            "c": (opt(hours=2, usd=3, pool="fra", gpus=4), opt("X", hours=2, usd=9)),
        },
        capacity={"fra": 8},
    )
    assert solve(p, method=method).cost_usd == pytest.approx(9.0)  # type: ignore[arg-type]
    s = solve(p, deadline_h=3.0, method=method)  # type: ignore[arg-type]
    assert (s.jobs["c"].option, s.cost_usd, s.makespan_h) == (1, 15.0, 2.0)


@pytest.mark.parametrize("method", METHODS)
def test_penalty_changes_the_choice_but_not_the_reported_cost(method: str) -> None:
    p = one_job(opt(usd=10, penalty=5), opt(usd=12))
    s = solve(p, method=method)  # type: ignore[arg-type]
    assert (s.jobs["train"].option, s.cost_usd, s.objective_value) == (1, 12.0, 12.0)
    p = one_job(opt(usd=10, penalty=1), opt(usd=12))
    s = solve(p, method=method)  # type: ignore[arg-type]
    assert (s.jobs["train"].option, s.cost_usd, s.objective_value) == (0, 10.0, 11.0)
    assert s.jobs["train"].penalty_usd == 1.0


def test_reads_delays_and_transfers_set_the_start() -> None:
    # 100 GB read from L into M at 0.01 h/GB = 1 h, then 0.5 h provisioning: start 1.5 h.
    # 'b' consumes 10 GB from 'a' across M->L (0.02 h/GB = 0.2 h): 1.5 + 2 + 0.2 = 3.7.
    p = Problem(
        jobs=("a", "b"),
        options={"a": (opt("M", hours=2, delay=0.5),), "b": (opt("L", hours=1),)},
        edges=(Edge("a", "b", 10),),
        reads=(Read("a", "L", 100),),
        links={("L", "M"): Link(0.1, 0.01), ("M", "L"): Link(0.1, 0.02)},
    )
    s = solve(p)
    a, b = s.jobs["a"], s.jobs["b"]
    assert (a.start_h, a.end_h, a.transfer_usd, a.transfer_h) == pytest.approx((1.5, 3.5, 10, 1))
    assert (b.start_h, b.end_h, b.transfer_usd) == pytest.approx((3.7, 4.7, 1.0))
    assert s.cost_usd == pytest.approx(2 + 10 + 1)


@pytest.mark.parametrize("method", METHODS)
def test_time_ties_break_by_lower_cost(method: str) -> None:
    p = one_job(opt(hours=2, usd=9), opt(hours=2, usd=7), opt(hours=3, usd=1))
    s = solve(p, "time", method=method)  # type: ignore[arg-type]
    assert (s.jobs["train"].option, s.objective_value, s.cost_usd) == (1, 2.0, 7.0)


def test_missing_link_raises_value_error_naming_the_pair() -> None:
    p = Problem(
        jobs=("a", "b"),
        options={"a": (opt("aws:x"),), "b": (opt("gcp:y"),)},
        edges=(Edge("a", "b", 1),),
    )
    with pytest.raises(ValueError, match="no link from 'aws:x' to 'gcp:y'"):
        solve(p)


def test_malformed_problems_raise_value_error() -> None:
    with pytest.raises(ValueError, match="cycle"):
        solve(Problem(jobs=("a", "b"), options={"a": (opt(),), "b": (opt(),)},
                      edges=(Edge("a", "b", 0), Edge("b", "a", 0))))
    with pytest.raises(ValueError, match="has no options"):
        solve(Problem(jobs=("a",), options={"a": ()}))
    with pytest.raises(ValueError, match="unknown pool"):
        solve(one_job(opt(pool="nope", gpus=1)))
    with pytest.raises(ValueError, match="refuses"):
        solve(random_problem(10, 4, "chain", 0), method="brute")


def test_a_job_too_big_for_its_pool_is_infeasible_not_an_error() -> None:
    p = Problem(jobs=("a",), options={"a": (opt(pool="fra", gpus=16),)}, capacity={"fra": 8})
    s = solve(p)
    assert s.status == "infeasible"
    assert s.message == (
        "job 'a' fits none of its options (option 0 needs 16 GPUs but pool 'fra' has 8)"
    )


def test_same_input_same_answer_and_input_untouched() -> None:
    p = random_problem(12, 4, "dag", 7)
    before = repr(p)
    a, b = solve(p, deadline_h=40.0), solve(p, deadline_h=40.0)
    assert a.choice == b.choice
    assert [x.start_h for x in a.jobs.values()] == [x.start_h for x in b.jobs.values()]
    assert repr(p) == before
    assert random_problem(12, 4, "dag", 7) == p


def test_pareto_frontier_dp_equals_milp_on_a_chain() -> None:
    p = random_problem(6, 3, "chain", 3)
    dp = pareto_frontier(p, max_points=100)
    milp = pareto_frontier(p, method="milp", max_points=100)
    assert {s.method for s in dp} == {"dp-chain"}
    costs = [s.objective_value for s in dp]
    times = [s.makespan_h for s in dp]
    assert costs == sorted(costs)
    assert times == sorted(times, reverse=True)
    assert [round(s.objective_value, 6) for s in milp] == [round(c, 6) for c in costs]
    assert [round(s.makespan_h, 6) for s in milp] == [round(t, 6) for t in times]
    assert len(pareto_frontier(p, max_points=3)) == min(3, len(dp))


def test_dp_falls_back_to_milp_where_it_is_not_exact() -> None:
    fork = Problem(
        jobs=("a", "b", "c"),
        options={j: (opt(usd=1), opt("Y", usd=2)) for j in "abc"},
        edges=(Edge("a", "b", 0), Edge("a", "c", 0)),
    )
    assert solve(fork, method="dp").method == "dp-tree"  # an out-tree (fork)
    both = Problem(jobs=(*fork.jobs, "d"), options={**fork.options, "d": fork.options["a"]},
                   edges=(*fork.edges, Edge("b", "d", 0), Edge("c", "d", 0)))
    assert solve(both, method="dp").method == "milp"  # fork then join: not a tree
    join = Problem(jobs=fork.jobs, options=fork.options,
                   edges=(Edge("b", "a", 0), Edge("c", "a", 0)))
    assert solve(join, method="dp").method == "dp-tree"
    chain = Problem(jobs=fork.jobs, options=fork.options,
                    edges=(Edge("a", "b", 0), Edge("b", "c", 0)))
    assert solve(chain).method == "dp-chain"


def test_time_limit_without_any_plan_is_a_solver_error() -> None:
    from placer.errors import SolverError

    p = random_problem(300, 4, "dag", 0)  # a contended pool: a hard MILP
    with pytest.raises(SolverError, match="before finding any feasible plan"):
        solve(p, "time", method="milp", time_limit_s=0.05)
