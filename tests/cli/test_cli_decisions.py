"""The decision log from the command line: `plan` and `submit` append to it, `explain --json`,
and `placer policy diff` (exit 0 nothing changes, 1 something does, 2 bad input)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from placer import decisions
from placer.cli import app
from tests.cli import fakecluster

runner = CliRunner()

INVENTORY = {"apiVersion": "placer/v1", "kind": "Inventory", "name": "two", "sites": {
    "fra": {"location": "onprem:fra-dc1", "country": "DE",
            "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 9}],
            "cluster": {"backend": "fake", "token_env": "FRA_RAY",
                        "options": {"root": "mem://fra/placer"}}},
    "nyc": {"location": "onprem:nyc-dc1", "country": "US",
            "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}],
            "cluster": {"backend": "fake", "token_env": "NYC_RAY",
                        "options": {"root": "mem://nyc/placer"}}}}}
PIPELINE = {"apiVersion": "placer/v1", "kind": "Pipeline", "name": "eu", "datasets": {
    "notes": {"location": "onprem:fra-dc1", "size": "10GB", "tags": {"residency": "EU"}}},
    "jobs": {"train": {"command": "python train.py", "gpu_types": {"A100-80GB": "1h"},
                       "inputs": ["notes"]}}}


def _policy(folder: Path, *rules: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "p.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "placer/v1", "kind": "PolicySet", "name": "p", "rules": list(rules)}))
    return folder


def _forbid(rid: str, sites: str) -> dict[str, Any]:
    return {"id": rid, "effect": "forbid", "match": {"tags": {"residency": "EU"}},
            "sites": sites, "message": f"[bold]{rid}[/] says no"}


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    (tmp_path / "pipe.yaml").write_text(yaml.safe_dump(PIPELINE))
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(INVENTORY))
    log = tmp_path / "log" / "decisions.jsonl"
    monkeypatch.setenv("PLACER_DECISIONS", str(log))
    return {"pipe": tmp_path / "pipe.yaml", "inv": tmp_path / "inv.yaml", "log": log,
            "old": _policy(tmp_path / "old", _forbid("no-cloud", "provider:aws")),
            "new": _policy(tmp_path / "new", _forbid("no-cloud", "provider:aws"),
                           _forbid("no-us", "country:US"))}


def run(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def _plan(files: dict[str, Path], *extra: str | Path) -> Any:
    return run("plan", files["pipe"], "--inventory", files["inv"], "--policies", files["old"],
               *extra)


def test_plan_appends_its_decision_unless_no_log(files: dict[str, Path]) -> None:
    res = _plan(files)
    assert res.exit_code == 0, res.output
    assert f"decision logged to {files['log']}" in res.stdout
    res = _plan(files, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["status"] == "placed"  # JSON only
    [(n1, first), (n2, second)] = list(decisions.read(files["log"]))
    placement = first.jobs["train"].placement
    assert (n1, n2, first.kind, first.run) == (1, 2, "plan", None)
    assert placement is not None and placement.site == "nyc"
    assert second.prev != decisions.GENESIS and decisions.verify(files["log"]).ok
    assert _plan(files, "--no-log").exit_code == 0
    assert len(list(decisions.read(files["log"]))) == 2


def test_plan_warns_when_it_cannot_log_and_keeps_its_exit_code(files: dict[str, Path]) -> None:
    files["log"].parent.mkdir()
    files["log"].write_text("not a decision log\n")
    res = _plan(files)
    assert res.exit_code == 0, res.output
    assert "train → nyc" in res.stdout
    assert "warning: decision not logged: decision log" in res.stderr
    assert "not a placer/decision/v1 record" in res.stderr


def test_explain_json_is_the_machine_form(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert _plan(files, "--output-file", out, "--json").exit_code == 0
    res = run("explain", out, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["schema"] == "placer/explanation/v1"
    assert {"pipeline", "status", "policy_hash", "decided_on", "reasons", "warnings",
            "budget_charges", "budgets", "rules", "jobs"} <= set(data)
    train = data["jobs"]["train"]
    assert {"status", "placement", "eligible", "reasons", "hints", "tags", "sites", "evidence",
            "warnings"} == set(train)
    assert train["placement"]["site"] == "nyc" and train["eligible"] == ["fra", "nyc"]
    assert set(train["evidence"]) == {"derived", "removed", "ignored", "expired", "limits"}
    one = json.loads(run("explain", out, "--json", "--job", "train").stdout)
    assert list(one["jobs"]) == ["train"]
    assert run("explain", out, "--json", "--job", "nope").exit_code == 2

    # A record of the decision log explains the same.
    record = tmp_path / "record.json"
    record.write_text(files["log"].read_text().splitlines()[0])
    res = run("explain", record)
    assert res.exit_code == 0 and res.stdout.startswith("Plan for pipeline 'eu': PLACED")


def test_policy_diff_lists_the_changed_job_with_its_rule(files: dict[str, Path]) -> None:
    assert _plan(files).exit_code == 0
    res = run("policy", "diff", files["old"], files["new"], "--plans", files["log"].parent)
    assert res.exit_code == 1, res.output
    assert "rule 'no-us' added (forbid)" in res.stdout
    assert "1 decision(s) recorded, 1 decided again: 1 job decision(s) would change" in res.stdout
    row = next(line for line in res.stdout.splitlines() if "decisions.jsonl:1" in line)
    assert "train" in row and "nyc → fra" in row and "no-us" in row

    res = run("policy", "diff", files["old"], files["new"], "--plans", files["log"], "--json")
    assert res.exit_code == 1
    [change] = json.loads(res.stdout)["changes"]
    assert (change["job"], change["rules"], change["old"]["site"], change["new"]["site"]) == (
        "train", ["no-us"], "nyc", "fra")

    res = run("policy", "diff", files["old"], files["old"], "--plans", files["log"].parent)
    assert res.exit_code == 0, res.output
    assert "0 job decision(s) would change" in res.stdout


def test_policy_diff_cannot_decide_a_bare_plan_again(files: dict[str, Path],
                                                     tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    assert _plan(files, "--no-log", "--output-file", plans / "plan.json", "--json").exit_code == 0
    res = run("policy", "diff", files["old"], files["new"], "--plans", plans)
    assert res.exit_code == 2
    assert "cannot be decided again" in res.stderr and "cannot be re-decided" in res.stderr
    res = run("policy", "diff", files["old"], files["new"], "--plans", tmp_path / "nope")
    assert res.exit_code == 2 and "no such file or folder" in res.stderr


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv(fakecluster.STATE_ENV, str(tmp_path / "cluster"))
    monkeypatch.setenv("NYC_RAY", "nyc-5ecr3t-t0ken-do-not-leak-42")
    fakecluster.install(monkeypatch.setattr)
    return tmp_path / "cluster"


def test_submit_logs_its_decision_with_the_run(files: dict[str, Path], fake: Path,
                                               tmp_path: Path) -> None:
    res = run("submit", files["pipe"], "--inventory", files["inv"], "--policies", files["old"],
              "--journal", tmp_path / "j.db")
    assert res.exit_code == 0, res.output
    [(_, rec)] = list(decisions.read(files["log"]))
    assert rec.kind == "submit" and rec.run is not None and f"run {rec.run} submitted" in res.stdout
    assert "nyc-5ecr3t" not in files["log"].read_text()


def test_submit_refuses_to_run_what_it_cannot_log(files: dict[str, Path], fake: Path,
                                                  tmp_path: Path) -> None:
    files["log"].parent.mkdir()
    files["log"].write_text('{"schema": "placer/decision/v1"')  # a torn line
    res = run("submit", files["pipe"], "--inventory", files["inv"], "--policies", files["old"],
              "--journal", tmp_path / "j.db")
    assert res.exit_code == 2, res.output
    assert "last line is incomplete" in res.stderr
    assert "submitted" not in res.stdout
    assert "no runs recorded yet" in run("runs", "--journal", tmp_path / "j.db").stdout
