"""`placer plan --objective pareto`: the cost-makespan frontier as plans, a table and a plot."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import placer
from placer.cli import app

ROOT = Path(__file__).resolve().parents[2]
PIPE = ROOT / "examples/quickstart/pipeline.yaml"
INV = ROOT / "examples/quickstart/inventory.yaml"
POL = ROOT / "policies"


@pytest.fixture(scope="module")
def frontier() -> list[placer.Plan]:
    return placer.plan_frontier(placer.load_pipeline(PIPE), placer.load_inventory(INV),
                                placer.load_policies(POL), max_points=8)


def test_the_frontier_runs_from_the_cheapest_plan_to_the_fastest(
        frontier: list[placer.Plan]) -> None:
    pipe, inv, pol = placer.load_pipeline(PIPE), placer.load_inventory(INV), \
        placer.load_policies(POL)
    assert 2 <= len(frontier) <= 8
    assert all(p.status == "placed" for p in frontier)
    costs = [p.cost_usd for p in frontier]
    spans = [p.makespan_h for p in frontier]
    assert costs == sorted(costs) and spans == sorted(spans, reverse=True)
    assert all(a > b for a, b in itertools.pairwise(spans))  # no dominated point
    cheapest = placer.plan(pipe, inv, pol, objective="cost")
    fastest = placer.plan(pipe, inv, pol, objective="time")
    assert frontier[0].cost_usd == pytest.approx(cheapest.cost_usd)
    assert frontier[-1].makespan_h == pytest.approx(fastest.makespan_h)
    for p in frontier:  # each point is a whole plan, as if planned with its own deadline
        assert p.deadline_h == pytest.approx(p.makespan_h)
        again = placer.plan(pipe, inv, pol, objective="cost", deadline=p.makespan_h + 1e-6)
        assert again.cost_usd == pytest.approx(p.cost_usd, abs=1e-6)
        # and every point keeps personal data where the policies say
        for job in ("deidentify", "finetune", "evaluate"):
            assert p.jobs[job].location.startswith("onprem:"), (job, p.jobs[job])


def test_cli_prints_the_frontier_writes_json_and_a_plot(tmp_path: Path) -> None:
    png, out = tmp_path / "front.png", tmp_path / "front.json"
    res = CliRunner().invoke(app, ["plan", str(PIPE), "--inventory", str(INV), "--policies",
                                   str(POL), "--objective", "pareto", "--points", "5",
                                   "--plot", str(png), "--output-file", str(out)],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "cost-makespan frontier, cheapest first" in res.output
    assert "A frontier is not logged" in res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plans = [placer.Plan.model_validate(p) for p in json.loads(out.read_text())]
    assert 2 <= len(plans) <= 5 and plans[0].cost_usd <= plans[-1].cost_usd
    bad = CliRunner().invoke(app, ["plan", str(PIPE), "--objective", "pareto", "--deadline",
                                   "12h"])
    assert bad.exit_code == 2 and "takes no --deadline or --budget" in bad.output
