"""The habits users bring from kubectl, Ray and SkyPilot (issue 14): ``--version``, shell
completion, ``-o FORMAT`` apart from ``--output-file``, ``--json`` on every listing and detail
command, tables that never cut a value at 80 columns, and ``NO_COLOR``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from placer import cli
from placer.cli import app
from tests.cli import fakecluster

ROOT = Path(__file__).resolve().parents[2]
QS = ROOT / "examples" / "quickstart"
runner = CliRunner()
LONG_JOB = "deidentify-clinical-notes-presidio"


def run(*args: str | Path, **kw: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args], **kw)


@pytest.fixture(autouse=True)
def _places(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Journal and decision log in the test's folder; the working folder too (a file called
    ``json`` would land here)."""
    monkeypatch.setenv("PLACER_JOURNAL", str(tmp_path / "journal.db"))
    monkeypatch.setenv("PLACER_DECISIONS", str(tmp_path / "decisions.jsonl"))
    monkeypatch.chdir(tmp_path)


def _plan_args(pipeline: Path = QS / "pipeline.yaml") -> list[str | Path]:
    return ["plan", pipeline, "--inventory", QS / "inventory.yaml", "--policies",
            ROOT / "policies", "--deadline", "12h"]


def _width(monkeypatch: pytest.MonkeyPatch, columns: int, terminal: bool) -> None:
    """The command's stdout as a terminal (or a pipe) this many columns wide."""
    monkeypatch.setattr(cli, "out", Console(soft_wrap=True, width=columns,
                                            force_terminal=terminal, color_system=None))


# -- --version and completion ------------------------------------------------------------------

def test_version_flag_and_command_print_the_installed_version() -> None:
    for args in (["--version"], ["version"]):
        res = run(*args)
        assert res.exit_code == 0, res.output
        assert res.stdout == f"placer {version('placer')}\n"


def test_show_completion_prints_a_bash_completion_script(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    # Typer takes the shell as an argument when shell detection is off (as in its own tests).
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    res = run("--show-completion", "bash", prog_name="placer")
    assert res.exit_code == 0, res.output
    assert "_PLACER_COMPLETE=complete_bash" in res.stdout
    assert "complete -o default -F _placer_completion placer" in res.stdout


def _complete(words: str) -> list[str]:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    res = runner.invoke(app, [], prog_name="placer", env={
        "_PLACER_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)})
    assert res.exit_code == 0, res.output
    return res.stdout.split()


def test_completion_completes_commands_and_output_formats() -> None:
    assert _complete("placer pl") == ["plan"]
    assert "--output-file" in _complete("placer plan --output-")
    assert _complete("placer runs -o ") == ["json", "yaml", "wide", "name"]
    assert _complete("placer catalog --output y") == ["yaml"]


def test_help_paragraphs_wrap_to_80_columns_without_stubs() -> None:
    res = _placer("runs", "--help", COLUMNS="80")
    assert res.returncode == 0, res.stderr
    prose = res.stdout.split("Usage:")[1].split("╭")[0]
    paragraphs = [p.splitlines() for p in prose.split("\n \n") if p.strip()]
    assert any(len(p) > 2 for p in paragraphs)
    for lines in paragraphs[1:]:
        # every line of a paragraph but its last is filled (typer alone leaves stubs)
        assert all(len(x.strip()) > 60 for x in lines[:-1]), lines


# -- -o is a format; files are --output-file ---------------------------------------------------

def test_o_json_prints_json_and_writes_no_file_called_json(tmp_path: Path) -> None:
    res = run(*_plan_args(), "-o", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)  # nothing else on stdout ("decision logged" is not)
    assert data["status"] == "placed" and data["pipeline"] == "clinical-nlp"
    assert not (tmp_path / "json").exists()
    assert (tmp_path / "decisions.jsonl").exists()  # the decision was logged all the same
    same = run(*_plan_args(), "--json")
    assert same.exit_code == 0
    assert json.loads(same.stdout)["jobs"] == data["jobs"]


def test_o_with_a_file_name_is_refused_naming_output_file(tmp_path: Path) -> None:
    res = run(*_plan_args(), "-o", "plan.json")
    assert res.exit_code == 2
    assert res.stdout == ""
    assert res.stderr == (
        "error: -o/--output takes an output format (json, yaml, wide, name): 'plan.json' is "
        "not one; to write a file use --output-file plan.json (-o FILE was its old spelling)\n")
    assert list(tmp_path.iterdir()) == []  # nothing planned, logged or written

    res = run("runs", "--output", "runs.txt")
    assert res.exit_code == 2
    assert "redirect it: -o json > runs.txt" in res.stderr
    res = run("catalog", "--json", "-o", "yaml")
    assert res.exit_code == 2
    assert res.stderr == "error: --json and -o yaml ask for two formats: give one\n"
    res = run("explain", QS / "pipeline.yaml", "-o", "wide")
    assert res.exit_code == 2
    assert "this command prints json, yaml, name, not wide" in res.stderr


def test_output_file_writes_the_plan_and_o_yaml_prints_it(tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    res = run(*_plan_args(), "-o", "yaml", "--output-file", saved)
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.stdout) == json.loads(saved.read_text())
    res = run(*_plan_args(), "-o", "name", "--no-log")
    assert res.stdout.split() == ["tokenize", "pretrain", "deidentify", "finetune", "evaluate"]
    res = run(*_plan_args(), "-o", "wide", "--no-log")
    assert res.exit_code == 0
    assert "location" in res.stdout and "onprem:fra-dc1" in res.stdout


def test_cluster_spec_takes_output_file_and_refuses_o_file(tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    assert run(*_plan_args(), "--no-log", "--json", "--output-file", saved).exit_code == 0
    spec: list[str | Path] = ["cluster-spec", saved, "--site", "aws-us-east-1", "--inventory",
            QS / "inventory.yaml"]
    res = run(*spec, "-o", "cluster.yaml")
    assert res.exit_code == 2 and "--output-file cluster.yaml" in res.stderr
    assert not (tmp_path / "cluster.yaml").exists()
    res = run(*spec, "--output-file", tmp_path / "cluster.yaml")
    assert res.exit_code == 0, res.output
    as_yaml = yaml.safe_load((tmp_path / "cluster.yaml").read_text())
    res = run(*spec, "-o", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == as_yaml


# -- --json on every listing and detail command ------------------------------------------------

def test_catalog_validate_explain_json_have_their_documented_keys(tmp_path: Path) -> None:
    res = run("catalog", "--gpu", "H100", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert set(data) == {"schema", "offers"} and data["schema"] == "placer/catalog/v1"
    assert data["offers"] and {tuple(sorted(o)) for o in data["offers"]} == {tuple(sorted((
        "provider", "region", "country", "continent", "jurisdictions", "gpu", "instance_type",
        "gpus_per_node", "ondemand_usd_per_hour", "spot_usd_per_hour",
        "ondemand_usd_per_gpu_hour", "spot_usd_per_gpu_hour", "gpu_only", "source")))}
    assert yaml.safe_load(run("catalog", "--gpu", "H100", "-o", "yaml").stdout) == data
    names = run("catalog", "--gpu", "H100", "-o", "name").stdout.split()
    assert names == [f"{o['provider']}:{o['region']}/{o['instance_type']}"
                     for o in data["offers"]]

    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: placer/v1\nkind: Pipeline\nname: p\njobs:\n  a:\n"
                   "    command: x\n    gpu_types: {V100: 2h}\n    bogus: 1\n")
    res = run("validate", QS / "pipeline.yaml", bad, "--json")
    assert res.exit_code == 2
    data = json.loads(res.stdout)
    assert set(data) == {"schema", "ok", "files", "problems", "skipped"}
    assert data["schema"] == "placer/validation/v1" and data["ok"] is False
    assert data["files"] == [
        {"path": str(QS / "pipeline.yaml"), "kind": "Pipeline", "ok": True},
        {"path": str(bad), "kind": None, "ok": False}]
    [problem] = data["problems"]
    assert set(problem) == {"file", "line", "field", "message"}
    assert (problem["file"], problem["line"]) == (str(bad), 8)
    assert "bogus" in problem["field"]
    assert run("validate", QS / "pipeline.yaml", bad, "-o", "name").stdout == \
        f"{QS / 'pipeline.yaml'}\n"

    saved = tmp_path / "plan.json"
    assert run(*_plan_args(), "--no-log", "--output-file", saved).exit_code == 0
    res = run("explain", saved, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["schema"] == "placer/explanation/v1"
    assert yaml.safe_load(run("explain", saved, "-o", "yaml").stdout) == data
    assert run("explain", saved, "-o", "name", "--job", "finetune").stdout == "finetune\n"


def test_runs_and_status_json_have_their_documented_keys(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    assert json.loads(run("runs", "--json").stdout) == {
        "schema": "placer/runs/v1", "journal": str(tmp_path / "journal.db"), "runs": []}
    fakecluster.activate(monkeypatch, tmp_path / "cluster")
    inv = {"apiVersion": "placer/v1", "kind": "Inventory", "name": "munich", "sites": {
        "muc-dc": {"location": "onprem:muc-dc1", "country": "DE",
                   "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": "$2"}],
                   "cluster": {"backend": "fake", "token_env": "MUNICH_RAY",
                               "options": {"root": "mem://muc/placer"}}}}}
    pipe = {"apiVersion": "placer/v1", "kind": "Pipeline", "name": "p", "jobs": {
        "train": {"command": "python train.py", "gpu_types": {"A100-80GB": "1h"}}}}
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inv))
    (tmp_path / "pipe.yaml").write_text(yaml.safe_dump(pipe))
    res = run("submit", tmp_path / "pipe.yaml", "--inventory", tmp_path / "inv.yaml", "--wait")
    assert res.exit_code == 0, res.output
    [rid] = re.findall(r"run (\S+) submitted", res.stdout)

    res = run("runs", "--json")
    assert res.exit_code == 0, res.output
    [one] = json.loads(res.stdout)["runs"]
    assert set(one) == {"id", "pipeline", "state", "created", "updated", "cost_usd", "sites",
                        "reason", "policy_hash", "transfers"}
    assert (one["id"], one["pipeline"], one["state"], one["sites"]) == (
        rid, "p", "SUCCEEDED", ["muc-dc"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", one["created"])
    assert run("runs", "-o", "name").stdout == f"{rid}\n"

    res = run("status", rid, "--json")
    assert res.exit_code == 0, res.output
    st = json.loads(res.stdout)
    assert set(st) == {"schema", "run_id", "state", "done", "reason", "cost_usd", "jobs",
                       "controller", "strategy_decisions", "lost_attempts", "transfers",
                       "transfer_totals"}
    assert (st["schema"], st["run_id"], st["state"], st["done"]) == (
        "placer/status/v1", rid, "SUCCEEDED", True)
    [job] = st["jobs"]
    assert set(job) == {"job", "state", "site", "attempt", "submission_id", "reason",
                        "cost_usd", "started", "finished"}
    assert (job["job"], job["state"], job["site"]) == ("train", "SUCCEEDED", "muc-dc")
    assert yaml.safe_load(run("status", rid, "-o", "yaml").stdout) == st
    assert run("status", rid, "-o", "name").stdout == "train\n"
    assert fakecluster.TOKEN not in res.stdout
    res = run("status", rid, "--watch", "--json")
    assert res.exit_code == 2 and "--watch refreshes a table" in res.stderr


# -- tables at 80 columns: wrapped or widened, never cut -----------------------------------------

def _long_pipeline(tmp_path: Path) -> Path:
    """The quickstart with its de-identifier renamed to a 34-character job name."""
    text = (QS / "pipeline.yaml").read_text()
    path = tmp_path / "pipeline.yaml"
    path.write_text(re.sub(r"(?<![.\w])deidentify(?=[:.])", LONG_JOB, text))
    return path


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_plan_table_at_80_columns_keeps_every_amount_and_name(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, terminal: bool) -> None:
    args = [*_plan_args(_long_pipeline(tmp_path)), "--no-log"]
    plan = json.loads(run(*args, "--json").stdout)
    _width(monkeypatch, 80, terminal)
    res = run(*args)
    assert res.exit_code == 0, res.output
    table = res.stdout.split("Plan for pipeline")[0]
    assert "…" not in table
    for job in plan["jobs"].values():
        assert f"${job['cost_usd']:,.2f}" in table
    if terminal:  # wrapped to 80 columns: numbers whole, a long name folded
        assert max(len(line) for line in table.splitlines()) <= 80
        assert LONG_JOB not in table and "deidentify-c" in table
    else:  # piped: one line a row, as wide as it needs, so a script can grep it
        assert LONG_JOB in table


def test_catalog_table_at_80_columns_keeps_every_price(monkeypatch: pytest.MonkeyPatch) -> None:
    offers = json.loads(run("catalog", "--provider", "azure", "--json").stdout)["offers"]
    for terminal in (True, False):
        _width(monkeypatch, 80, terminal)
        res = run("catalog", "--provider", "azure")
        assert res.exit_code == 0, res.output
        assert "…" not in res.stdout
        for o in offers:
            assert f"{o['ondemand_usd_per_gpu_hour']:.3f}" in res.stdout
            assert terminal or o["instance_type"] in res.stdout


def test_bench_table_at_80_columns_shows_every_value(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    _width(monkeypatch, 80, True)
    md = tmp_path / "RESULTS.md"
    res = run("bench", "hybrid", "--trace", "synthetic:rate=10,hours=6,seed=2",
              "--onprem-gpus", "16", "--strategies", "no-wait,compute-wait+oo", "--sweep",
              "wait=0,0.5", "--seed", "7", "--out", tmp_path / "results", "--quiet",
              "--results-md", md)
    assert res.exit_code == 0, res.output
    assert "…" not in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()[:-1]) <= 80
    rows = [line.strip("|").split("|") for line in md.read_text().splitlines()
            if line.startswith("| ") and "strategy" not in line and "---" not in line]
    assert len(rows) == 3
    for row in rows:  # every cell of the markdown table is in the terminal's
        strategy, *values = (c.strip() for c in row)
        lines = [ln for ln in res.stdout.splitlines() if ln.startswith(strategy + " ")]
        shown = " ".join(lines).split()
        for v in values:
            assert not v or v in shown, (strategy, v, lines)


# -- NO_COLOR --------------------------------------------------------------------------------

def _placer(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-m", "placer", *args], capture_output=True,
                          text=True, check=False, cwd=ROOT,
                          env={**clean, "PYTHONPATH": f"{ROOT}:{ROOT / 'backends'}", **env})


def test_no_color_is_respected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pipeline\nname: p\njobs: 3\n")
    args = ("validate", str(QS / "pipeline.yaml"), str(bad))
    colour = re.compile(r"\x1b\[[0-9;]*3[0-9]m")  # an SGR sequence that sets a colour
    coloured = _placer(*args, FORCE_COLOR="1")
    assert colour.search(coloured.stdout) and colour.search(coloured.stderr)
    plain = _placer(*args, FORCE_COLOR="1", NO_COLOR="1")
    assert plain.returncode == coloured.returncode == 2
    assert not colour.search(plain.stdout) and not colour.search(plain.stderr)
    assert "ok" in plain.stdout and "error" in plain.stderr
