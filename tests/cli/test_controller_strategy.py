"""``placer controller --strategy``: each ready job decided live, and ``placer status`` says
what was decided and why (issue 13, item 1)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from placer.cli import app
from placer.journal import Journal
from tests.cli import fakecluster

runner = CliRunner()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return fakecluster.activate(monkeypatch, tmp_path / "cluster")


def run(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def _files(tmp: Path, held: int) -> tuple[Path, Path]:
    """On-prem muc-dc (8 GPUs, ``held`` of them busy with work placer does not know the end
    of) and the cloud site aws-fra; the job reads EU data (never aws-va)."""
    def cluster(root: str, **options: str) -> dict[str, Any]:
        return {"backend": "fake", "token_env": "MUNICH_RAY",
                "options": {"root": root, **options}}

    inventory = {"apiVersion": "placer/v1", "kind": "Inventory", "name": "hybrid", "sites": {
        "muc-dc": {"location": "onprem:muc-dc1", "country": "DE",
                   "pools": [{"gpu": "A100-40GB", "count": 8, "cost_per_gpu_hour": "$1"}],
                   "cluster": cluster("mem://muc/placer", gpus="8", held=str(held))},
        "aws-fra": {"kind": "cloud", "location": "aws:eu-central-1",
                    "cluster": cluster("mem://fra/placer")},
        "aws-va": {"kind": "cloud", "location": "aws:us-east-1",
                   "cluster": cluster("mem://va/placer")}}}
    pipe = {"apiVersion": "placer/v1", "kind": "Pipeline", "name": "p",
            "datasets": {"notes": {"location": "onprem:muc-dc1", "size": "1GB",
                                   "tags": {"residency": "EU"}}},
            "jobs": {"prep": {"command": "python prep.py", "inputs": ["notes"],
                              "outputs": {"features": "1GB"},
                              "gpu_types": {"A100-40GB": "0.1h"}},
                     "train": {"command": "python train.py", "inputs": ["prep.features"],
                               "gpu_types": {"A100-40GB": "2h"}, "resources": {"gpus": 8}}}}
    (tmp / "inv.yaml").write_text(yaml.safe_dump(inventory))
    (tmp / "pipe.yaml").write_text(yaml.safe_dump(pipe))
    return tmp / "pipe.yaml", tmp / "inv.yaml"


ROOT = Path(__file__).resolve().parents[2]
POLICIES = ("--policies", ROOT / "policies" / "locations.yaml",
            "--policies", ROOT / "policies" / "eea-residency.yaml")


def _submit(tmp: Path, held: int) -> tuple[Path, str]:
    pipe, inv = _files(tmp, held)
    db = tmp / "j.db"
    res = run("submit", pipe, "--inventory", inv, "--journal", db, "--no-controller",
              "--offline", *POLICIES)
    assert res.exit_code == 0, res.output
    [rid] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", res.stdout)
    return db, str(rid)


@pytest.mark.parametrize(("held", "site", "kind"), [(8, "aws-fra", "burst"),
                                                     (0, "muc-dc", "onprem")])
def test_the_controller_decides_each_ready_job_and_status_says_why(
        fake: Path, tmp_path: Path, held: int, site: str, kind: str) -> None:
    db, rid = _submit(tmp_path, held)
    # `placer submit` ran the run's first tick itself, as planned (prep on muc-dc); from
    # there the controller drives it, and decides train when prep is done.
    res = run("controller", "--journal", db, "--poll", "0.01", "--idle-exit", "0",
              "--strategy", "placer", "--budget", "0.5")
    assert res.exit_code == 0, res.output
    with Journal(db) as j:
        events = j.events(rid, "strategy_decision")
    assert [(e.job, e.data["decision"], e.data["site"]) for e in events] == [
        ("train", kind, site)]
    subs = fakecluster.submissions(fake)
    assert subs.pop("muc-dc")[0] == f"placer-{rid}-prep-1"
    assert [s for ids in subs.values() for s in ids] == (
        [] if site == "muc-dc" else [f"placer-{rid}-train-1"])
    assert fakecluster.submissions(fake).get(site, [])[-1] == f"placer-{rid}-train-1"
    res = run("status", rid, "--journal", db)
    assert res.exit_code == 0, res.output
    assert "strategy decisions:" in res.stdout
    assert re.search(rf"train: {kind} on {site}: ", res.stdout), res.stdout
    # the reason's figures, as fields: the strategy's predicted wait, the burst's price with
    # its egress, and the policy verdicts with the rules behind them
    assert "predict" in res.stdout and "deny aws-va (rule " in res.stdout
    res = run("status", rid, "--journal", db, "--json")
    assert res.exit_code == 0, res.output
    [shown] = json.loads(res.stdout)["strategy_decisions"]
    assert shown["burst"]["site"] == "aws-fra" and shown["burst"]["usd"] > 0
    assert shown["burst"]["usd"] == pytest.approx(
        shown["burst"]["compute_usd"] + shown["burst"]["egress_usd"], abs=1e-3)
    assert shown["policy"]["allowed"] == ["muc-dc", "aws-fra"]
    assert list(shown["policy"]["denied"]) == ["aws-va"]
    if kind == "burst":  # 8 GPUs held by work of unknown end: no release is predicted
        assert shown["predicted_wait_h"] is None
    else:
        assert shown["predicted_wait_h"] == 0.0
    # and in the audit decision log, after the submit's record, under the same policy hash
    from placer import decisions

    records = [r for _, r in decisions.read() if r.run == rid]
    assert [(r.kind, r.strategy and (r.strategy.job, r.strategy.decision, r.strategy.site))
            for r in records][:2] == [("submit", None), ("strategy", ("train", kind, site))]
    assert records[1].policy.hash == records[0].policy.hash
    assert records[1].plan_sha256 == records[0].plan_sha256  # the plan that placed train
    assert records[1].strategy is not None and records[1].strategy.burst == shown["burst"]


def test_an_unknown_strategy_is_refused_before_anything_is_driven(fake: Path,
                                                                  tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    res = run("controller", "--journal", db, "--once", "--strategy", "nonesuch")
    assert res.exit_code != 0
    assert "nonesuch" in res.output


@pytest.mark.parametrize(("held", "site", "kind"), [(8, "aws-fra", "burst"),
                                                     (0, "muc-dc", "onprem")])
def test_a_run_submitted_with_a_strategy_keeps_it_under_any_controller(
        fake: Path, tmp_path: Path, held: int, site: str, kind: str) -> None:
    """`submit --strategy` decides the first ready jobs itself, records the strategy with the
    run, and a controller started without --strategy (as submit starts one) still uses it."""
    pipe, inv = _files(tmp_path, held)
    db = tmp_path / "j.db"
    res = run("submit", pipe, "--inventory", inv, "--journal", db, "--no-controller",
              "--offline", "--strategy", "placer", "--strategy-budget", "0.5", *POLICIES)
    assert res.exit_code == 0, res.output
    [rid] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", res.stdout)
    with Journal(db) as j:
        [own] = j.events(rid, "strategy")
        first = [(e.job, e.data["decision"]) for e in j.events(rid, "strategy_decision")]
    assert own.data == {"name": "placer", "budget": 0.5}
    assert first == [("prep", "onprem" if held == 0 else "burst")]  # decided, not planned
    res = run("controller", "--journal", db, "--poll", "0.01", "--idle-exit", "0")
    assert res.exit_code == 0, res.output
    with Journal(db) as j:
        train = [(e.data["decision"], e.data["site"])
                 for e in j.events(rid, "strategy_decision") if e.job == "train"]
    assert train == [(kind, site)]


def test_a_controller_that_cannot_make_a_runs_strategy_refuses_to_drive_it(
        fake: Path, tmp_path: Path) -> None:
    """A run's own strategy is never silently dropped: without a way to make it, the run is
    not driven and its events say why."""
    from placer.controller import Controller

    pipe, inv = _files(tmp_path, 0)
    db = tmp_path / "j.db"
    res = run("submit", pipe, "--inventory", inv, "--journal", db, "--no-controller",
              "--offline", "--strategy", "placer", *POLICIES)
    assert res.exit_code == 0, res.output
    [rid] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", res.stdout)
    with Journal(db) as j:
        before = len(fakecluster.submissions(fake).get("muc-dc", []))
        with Controller(j, poll_s=0.01, idle_exit_s=0, strategies=None) as ctl:
            ctl.tick()
        errors = j.events(rid, "controller_error")
    assert errors and "strategy placer" in str(errors[-1].data)
    assert len(fakecluster.submissions(fake).get("muc-dc", [])) == before


@pytest.mark.parametrize("net", [False, True])
def test_the_spot_safety_net_is_the_controllers_opt_in(fake: Path, tmp_path: Path,
                                                       net: bool) -> None:
    """``train`` tolerates preemption and the pool is full: placer bursts it to aws-fra on
    spot only under ``--spot-safety-net`` (the run has no deadline: nothing can be late)."""
    pipe, inv = _files(tmp_path, 8)
    spec = yaml.safe_load(pipe.read_text())
    spec["jobs"]["train"]["spot"] = True
    pipe.write_text(yaml.safe_dump(spec))
    db = tmp_path / "j.db"
    res = run("submit", pipe, "--inventory", inv, "--journal", db, "--no-controller",
              "--offline", *POLICIES)
    assert res.exit_code == 0, res.output
    [rid] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", res.stdout)
    res = run("controller", "--journal", db, "--poll", "0.01", "--idle-exit", "0",
              "--strategy", "placer", *(["--spot-safety-net"] if net else []))
    assert res.exit_code == 0, res.output
    with Journal(db) as j:
        [train] = [e.data for e in j.events(rid, "strategy_decision") if e.job == "train"]
        placed = j.plans(rid)[-1].plan.jobs["train"]
    assert (train["decision"], train["site"], train["spot"]) == ("burst", "aws-fra", net)
    assert placed.site == "aws-fra" and placed.spot is net
