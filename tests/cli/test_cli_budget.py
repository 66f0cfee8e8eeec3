"""Budgets across runs: `placer plan` counts what the journal's runs charged this period."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

import placer
from placer.cli import app
from placer.journal import Journal
from placer.limits import budget_key, period_start

runner = CliRunner()

POLICY = """\
apiVersion: placer/v1
kind: PolicySet
name: budgets
rules:
  - id: team-budget
    effect: limit
    match: {}
    budget: {usd: $1000, period: month, per_label: team}
    on_excess: hold
    message: Each team has $1,000 a month.
"""
INVENTORY = """\
sites:
  fra:
    location: onprem:fra-dc1
    country: DE
    pools: [{gpu: A100-80GB, count: 8, cost_per_gpu_hour: $10}]
"""
PIPELINE = """\
jobs:
  train: {command: x, gpu_types: {A100-80GB: 1h}, resources: {gpus: 8}, labels: {team: nlp}}
"""


def test_plan_counts_the_periods_earlier_charges_from_the_journal(tmp_path: Path) -> None:
    pol = tmp_path / "budget.yaml"
    pol.write_text(POLICY)
    inv = tmp_path / "inv.yaml"
    inv.write_text(INVENTORY)
    pipe = tmp_path / "p.yaml"
    pipe.write_text(PIPELINE)
    journal = tmp_path / "journal.db"
    args = ["plan", str(pipe), "--inventory", str(inv), "--policies", str(pol), "--journal",
            str(journal), "--no-log"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output  # no journal yet: $80 of $1,000
    # An earlier run this month was charged $950 to the same budget.
    today = datetime.now(UTC).date()
    key = budget_key("team-budget", "team=nlp", period_start("month", today))
    plan = placer.plan(placer.load_pipeline(pipe), placer.load_inventory(inv),
                       placer.load_policies(pol))
    assert plan.budget_charges == {key: 80.0}
    with Journal(journal) as j:
        j.create_run(pipeline=placer.load_pipeline(pipe),
                     plan=plan.model_copy(update={"budget_charges": {key: 950.0}}),
                     inventory=placer.load_inventory(inv), policies=placer.load_policies(pol),
                     policy_hash=plan.policy_hash, pipeline_name="p")
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output
    assert f"budget {key}: $950.00 of $1,000.00 used this month (95%)" in " ".join(
        res.stdout.split())
