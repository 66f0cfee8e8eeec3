"""Links with a free allowance or volume tiers (SkyPilot's affine egress): every method prices a
transfer by the link's own function of its size, and agrees with brute force."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placer.optimizer import (
    Edge,
    Link,
    Option,
    Problem,
    evaluate,
    move_deltas,
    random_problem,
    solve,
)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-6)


def test_a_link_prices_the_free_allowance_and_each_tier() -> None:
    aws = Link(0.09, 0.0, free_gb=1.0, tiers=((10 * 1024.0, 0.085), (50 * 1024.0, 0.07)))
    assert aws.usd(0.5) == 0.0
    assert aws.usd(101.0) == pytest.approx(100 * 0.09)
    assert aws.usd(60 * 1024.0) == pytest.approx(
        (10 * 1024 - 1) * 0.09 + 40 * 1024 * 0.085 + 10 * 1024 * 0.07)
    assert Link(0.02, 0.0).usd(10.0) == pytest.approx(0.2) and Link(0.02, 0.0).linear
    with pytest.raises(ValueError, match="tiers must start above free_gb"):
        Link(0.09, 0.0, free_gb=5.0, tiers=((1.0, 0.05),))


def test_a_small_transfer_inside_the_allowance_is_free_and_changes_the_choice() -> None:
    def problem(free_gb: float) -> Problem:
        opts = (Option("a", "A", "T4", False, 1.0, 1.0), Option("b", "B", "T4", False, 1.0, 0.5))
        return Problem(
            jobs=("x", "y"), options={"x": opts[:1], "y": opts},
            edges=(Edge("x", "y", 0.9),),
            links={("A", "B"): Link(1.0, 0.0, free_gb=free_gb), ("B", "A"): Link(1.0, 0.0)})
    # Moving 0.9 GB to B costs $0.90 with no allowance (stay at A: $2.00 vs $2.40) ...
    assert solve(problem(0.0)).jobs["y"].option == 0
    # ... and nothing within a 1 GB allowance (B: $1.50).
    free = solve(problem(1.0))
    assert free.jobs["y"].option == 1 and free.cost_usd == pytest.approx(1.5)


@st.composite
def affine_problems(draw: st.DrawFn) -> Problem:
    shape = draw(st.sampled_from(("dag", "chain", "tree")))
    n = draw(st.integers(2, 6))
    p = random_problem(n, draw(st.integers(1, 3)), shape, draw(st.integers(0, 10**6)),
                       n_locations=3, pool_gpus=draw(st.sampled_from((4, 10**6))))
    links = {}
    for key, link in sorted(p.links.items()):
        free = draw(st.sampled_from((0.0, 1.0, 50.0, 400.0)))
        tiers = ((free + draw(st.sampled_from((20.0, 200.0))), link.usd_per_gb / 2),) \
            if draw(st.booleans()) else ()
        links[key] = replace(link, free_gb=free, tiers=tiers)
    return replace(p, links=links)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(affine_problems(), st.sampled_from((None, 1.0, 1.5)))
def test_every_method_equals_brute_force_with_affine_links(p: Problem,
                                                           slack: float | None) -> None:
    deadline = None
    if slack is not None:
        fastest = solve(p, "time", method="brute")
        if fastest.status == "infeasible":
            return
        deadline = fastest.makespan_h * slack
    ref = solve(p, "cost", deadline_h=deadline, method="brute")
    for method in ("milp", "auto", "lagrange"):
        got = solve(p, "cost", deadline_h=deadline, method=method)  # type: ignore[arg-type]
        assert got.status == ref.status or (ref.status == "optimal" and got.status == "feasible")
        if ref.status == "infeasible":
            continue
        again = evaluate(p, {j: s.option for j, s in got.jobs.items()})
        assert close(again.cost_usd, got.cost_usd), method
        if got.optimal:
            assert close(got.objective_value, ref.objective_value), method
        else:
            assert got.objective_value >= ref.objective_value - 1e-6
            assert got.lower_bound is not None
            assert got.lower_bound <= ref.objective_value + 1e-6


@settings(max_examples=40, deadline=None)
@given(affine_problems(), st.data())
def test_explanations_price_moves_over_affine_links(p: Problem, data: st.DataObject) -> None:
    choice = {j: data.draw(st.integers(0, len(p.options[j]) - 1)) for j in p.jobs}
    base = evaluate(p, choice)
    moves = move_deltas(p, choice)
    for j in p.jobs:
        for i in range(len(p.options[j])):
            moved = evaluate(p, {**choice, j: i})
            assert close(moves[j].cost_usd[i], moved.cost_usd - base.cost_usd), (j, i)


def test_a_skypilot_instance_maps_onto_placer_with_its_egress_schedule() -> None:
    from placer.optimizer import skypilot_problem
    from placer.optimizer._generate import sky_links

    links = sky_links(exact_egress=True)
    aws_to_gcp = next(v for (a, b), v in links.items()
                      if a.startswith("aws:") and b.startswith("gcp:"))
    gcp_to_aws = next(v for (a, b), v in links.items()
                      if a.startswith("gcp:") and b.startswith("aws:"))
    assert aws_to_gcp.usd(0.5) == 0.0 and aws_to_gcp.usd(11.0) == pytest.approx(0.9)
    assert gcp_to_aws.usd(2048.0) == pytest.approx(1024 * 0.12 + 1024 * 0.11)
    exact = solve(skypilot_problem(12, 1, exact_egress=True))
    plain = solve(skypilot_problem(12, 1))
    assert exact.optimal and plain.optimal and exact.cost_usd <= plain.cost_usd


def test_an_inventory_network_entry_gives_a_free_allowance_and_tiers(tmp_path: Path) -> None:
    import placer
    from placer.errors import ConfigError

    inv = tmp_path / "inv.yaml"
    inv.write_text("""\
sites:
  fra:
    location: onprem:fra-dc1
    country: DE
    pools: [{gpu: A100-80GB, count: 8, cost_per_gpu_hour: $1}]
  aws-fra:
    location: aws:eu-central-1
network:
  - {from: "aws:*", to: "onprem:*", usd_per_gb: 0.09, free: 100GB,
     tiers: [{from: 10TB, usd_per_gb: 0.085}], symmetric: false}
""", encoding="utf-8")
    inventory = placer.load_inventory(inv)
    from placer.catalog import default_catalog
    from placer.pricing import link

    cat = default_catalog()
    aws, fra = cat.location("aws:eu-central-1"), next(
        s.location for s in placer.catalog.resolve_inventory(inventory, cat) if s.name == "fra")
    ln = link(inventory.network, cat, aws, fra)
    assert (ln.free_gb, ln.tiers) == (100.0, ((10000.0, 0.085),))
    assert ln.usd(50.0) == 0.0 and ln.usd(200.0) == pytest.approx(9.0)
    assert link(inventory.network, cat, fra, aws).linear  # not symmetric
    bad = tmp_path / "bad.yaml"
    bad.write_text(inv.read_text().replace("from: 10TB", "from: 10GB"), encoding="utf-8")
    with pytest.raises(ConfigError, match="tiers start above `free` in increasing order"):
        placer.load_inventory(bad)
