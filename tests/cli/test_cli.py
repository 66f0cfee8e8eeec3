"""The command line as a user meets it: exit codes, JSON, and errors that name file and line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from placer.cli import app

ROOT = Path(__file__).resolve().parents[2]
QS = ROOT / "examples" / "quickstart"
runner = CliRunner()


def run(*args: str | Path):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


def test_demo_runs_in_a_fresh_process_with_no_network_or_account() -> None:
    res = subprocess.run([sys.executable, "-m", "placer", "demo"], capture_output=True,
                         text=True, check=False, cwd="/")
    assert res.returncode == 0, res.stderr
    assert "PLACED" in res.stdout and "proven optimal" in res.stdout
    assert "Traceback" not in res.stderr


def test_plan_json_then_explain(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    res = run("plan", QS / "pipeline.yaml", "--inventory", QS / "inventory.yaml",
              "--policies", ROOT / "policies", "--deadline", "12h", "--json", "--output-file", out)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data == json.loads(out.read_text())
    assert data["status"] == "placed" and data["objective"] == "cost" and data["optimal"]
    res = run("explain", out, "--job", "finetune")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("finetune → ")


def test_infeasible_plan_exits_1_and_says_why() -> None:
    res = run("plan", QS / "pipeline.yaml", "--deadline", "30m", "--json")
    assert res.exit_code == 1
    assert json.loads(res.stdout)["status"] == "infeasible"


def test_validate_accepts_the_shipped_files() -> None:
    res = run("validate", QS / "pipeline.yaml", QS / "inventory.yaml", ROOT / "policies")
    assert res.exit_code == 0, res.output
    assert res.stdout.count("ok") >= 4


def _write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD_JOB = "    command: x\n    gpu_types: {A100-80GB: 1h}\n"

BAD_INPUTS = {
    "malformed": ("jobs:\n  a: [unclosed\n", 3, None, "invalid YAML"),
    "cycle": (
        "jobs:\n  a:\n" + GOOD_JOB + "    after: [b]\n  b:\n" + GOOD_JOB + "    after: [a]\n",
        6, "jobs.b", "jobs form a cycle: a → b → a",
    ),
    "unknown_dataset": (
        "jobs:\n  a:\n" + GOOD_JOB + "    inputs: [nope]\n", 5, "jobs.a.inputs[0]",
        "job 'a' reads 'nope', which is neither a dataset nor a job output",
    ),
    "negative_size": (
        "datasets:\n  d:\n    size: -5GB\n    location: aws:us-east-1\njobs:\n  a:\n" + GOOD_JOB,
        3, "datasets.d.size", "size must not be negative, got '-5GB'",
    ),
    "unknown_region": (
        "datasets:\n  d:\n    size: 5GB\n    location: aws:eu-centrl-1\njobs:\n  a:\n" + GOOD_JOB,
        4, "datasets.d.location", "unknown region aws:eu-centrl-1",
    ),
    "unknown_field": (
        "jobs:\n  a:\n" + GOOD_JOB + "    gpus: 4\n", 5, "jobs.a.gpus", "unknown field",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_message_with_file_and_line(tmp_path: Path, case: str) -> None:
    text, line, field, msg = BAD_INPUTS[case]
    path = _write(tmp_path, text)
    res = run("plan", path)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    [first, *_] = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    prefix = f"error: {path}:{line}:" + (f" {field}:" if field else "")
    assert first.startswith(prefix), first
    assert msg in first


def test_unknown_on_prem_dataset_location_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "datasets:\n  d:\n    location: onprem:atlantis\njobs:\n  a:\n"
                  + GOOD_JOB + "    inputs: [d]\n")
    res = run("plan", path)
    assert res.exit_code == 2
    assert f"error: {path}:3: datasets.d.location: dataset 'd' is at onprem:atlantis" in res.stderr


def test_explain_of_a_file_that_is_not_a_plan(tmp_path: Path) -> None:
    res = run("explain", _write(tmp_path, "{}", "x.json"))
    assert res.exit_code == 2
    assert "not a placer plan" in res.stderr


@pytest.mark.parametrize("kind", ["pipeline", "inventory", "policy", "plan"])
def test_schema_is_json_schema(kind: str) -> None:
    res = run("schema", kind)
    assert res.exit_code == 0, res.output
    schema = json.loads(res.stdout)
    assert schema["$schema"].endswith("2020-12/schema") and schema["type"] == "object"


def test_schema_accepts_the_yaml_form_of_the_quickstart() -> None:
    import jsonschema  # type: ignore[import-untyped]
    import yaml

    schema = json.loads(run("schema", "pipeline").stdout)
    jsonschema.validate(yaml.safe_load((QS / "pipeline.yaml").read_text()), schema)


def test_catalog_lists_offers() -> None:
    res = run("catalog", "--gpu", "H100", "--jurisdiction", "EU")
    assert res.exit_code == 0, res.output
    assert "H100" in res.stdout and "us-east-1" not in res.stdout


def test_bad_inventory_and_bad_policy_exit_2_with_their_lines(tmp_path: Path) -> None:
    inv = _write(tmp_path, "sites:\n  dc:\n    location: onprem:x\n    country: DE\n"
                 "    pools: [{gpu: A100-80GB, count: -1, cost_per_gpu_hour: 1}]\n", "inv.yaml")
    res = run("plan", QS / "pipeline.yaml", "--inventory", inv)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: {inv}:5: sites.dc.pools[0].count:")
    pol = _write(tmp_path, "rules:\n  - id: x\n    efect: forbid\n", "pol.yaml")
    res = run("plan", QS / "pipeline.yaml", "--policies", pol)
    assert res.exit_code == 2
    assert f"error: {pol}:3: rules[0].efect: unknown field" in res.stderr


@pytest.mark.parametrize(("option", "value"), [("--deadline", "soon"), ("--budget", "lots"),
                                               ("--objective", "vibes")])
def test_bad_options_are_bad_input(option: str, value: str) -> None:
    res = run("plan", QS / "pipeline.yaml", option, value)
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ")
    assert value in res.stderr


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    res = run("plan", tmp_path / "nope.yaml")
    assert res.exit_code == 2
    assert res.stderr == f"error: {tmp_path / 'nope.yaml'}: file not found\n"


def test_validate_reports_every_bad_file_and_exits_2(tmp_path: Path) -> None:
    bad = _write(tmp_path, "jobs:\n  a:\n    command: x\n    gpu_types: {T4: -1h}\n")
    odd = _write(tmp_path, "hello: world\n", "odd.yaml")
    res = run("validate", QS / "pipeline.yaml", bad, odd)
    assert res.exit_code == 2
    assert f"ok    {QS / 'pipeline.yaml'} (Pipeline)" in res.stdout
    errors = res.stderr.splitlines()
    assert errors[0] == (f"error: {bad}:4: jobs.a.gpu_types.T4: duration must not be "
                         "negative, got '-1h'")
    assert errors[1] == (f"error: {odd}: cannot tell what this is; add kind: Pipeline, "
                         "Inventory, PolicySet or Scenario")


def test_solver_time_out_is_exit_3_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import placer
    from placer.errors import SolverError

    def no_plan(*args: object, **kwargs: object) -> None:
        raise SolverError("HiGHS stopped (Time limit reached) before finding any feasible plan")

    monkeypatch.setattr(placer, "plan", no_plan)
    res = run("plan", QS / "pipeline.yaml", "--time-limit", "1")
    assert res.exit_code == 3
    assert res.stderr.startswith("error: HiGHS stopped (Time limit reached)")


def test_catalog_marks_gpu_only_prices() -> None:
    res = run("catalog", "--provider", "gcp", "--gpu", "T4")
    assert res.exit_code == 0
    assert "* GPU only: the host VM is billed on top" in res.stdout


def test_runs_and_status_read_the_journal(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    res = run("runs", "--journal", db)
    assert res.exit_code == 0, res.output
    assert res.stdout == f"no runs recorded yet (journal {db})\n"
    res = run("status", "run-20261128-000000", "--journal", db)
    assert res.exit_code == 2
    assert res.stderr == f"error: no journal at {db}\n"


def test_submit_refuses_sites_without_a_cluster(tmp_path: Path) -> None:
    res = run("submit", QS / "pipeline.yaml", "--inventory", QS / "inventory.yaml",
              "--policies", ROOT / "policies", "--journal", tmp_path / "j.db")
    assert res.exit_code == 2
    assert "no compute backend for site(s): " in res.stderr
