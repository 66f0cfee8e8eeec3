"""`placer validate` as issue 14 measured it: each problem below was a test that failed.

GPU-name typos validated ``ok`` and surfaced only as an infeasible plan; an unknown field had
no "did you mean" and named the job by index; ``aws:us-east1`` suggested ``gcp:us-east1``;
``placer validate examples/`` did not look in sub-folders; ``kind: Scenario`` was unknown.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from placer.cli import app

ROOT = Path(__file__).resolve().parents[2]
QS = ROOT / "examples" / "quickstart"
runner = CliRunner()


def run(*args: str | Path):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _pipeline(gpu_types: str, extra: str = "") -> str:
    return f"kind: Pipeline\njobs:\n  train:\n    command: x\n    gpu_types: {gpu_types}\n{extra}"


INVENTORY = """\
kind: Inventory
sites:
  dc:
    location: onprem:dc1
    country: DE
    pools: [{gpu: MI300X, count: 8, cost_per_gpu_hour: 2}]
"""


def test_a_gpu_typo_is_refused_with_did_you_mean(tmp_path: Path) -> None:
    p = _write(tmp_path / "p.yaml", _pipeline("{V10: 2h}"))
    res = run("validate", p)
    assert res.exit_code == 2
    assert res.stderr.splitlines()[0] == (
        f"error: {p}:5: jobs.train.gpu_types.V10: unknown GPU type 'V10': no catalog offer or "
        "inventory pool has it; did you mean 'V100'? (`placer catalog` lists the cloud's; an "
        "on-prem type is known from the inventory: validate the pipeline with it)")
    assert res.stdout == f"bad   {p} (1 problem)\n"


def test_gpu_names_match_as_the_planner_matches_them(tmp_path: Path) -> None:
    # The planner matches case-insensitively and by family; validate accepts what it places.
    p = _write(tmp_path / "p.yaml", _pipeline("{v100: 2h, a100: 1h}"))
    res = run("validate", p)
    assert res.exit_code == 0, res.output
    res = run("plan", p, "--inventory", QS / "inventory.yaml", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["status"] == "placed"


def test_an_on_prem_gpu_type_is_known_from_the_inventory_given(tmp_path: Path) -> None:
    p = _write(tmp_path / "p.yaml", _pipeline("{MI300X: 2h}"))
    inv = _write(tmp_path / "inv.yaml", INVENTORY)
    res = run("validate", p, inv)  # the pipeline first: the inventory is read first anyway
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [f"ok    {p} (Pipeline)", f"ok    {inv} (Inventory)"]
    res = run("validate", p)
    assert res.exit_code == 2
    assert "unknown GPU type 'MI300X'" in res.stderr


def test_an_unknown_field_names_the_job_by_name_and_the_field_meant(tmp_path: Path) -> None:
    p = _write(tmp_path / "p.yaml", _pipeline("{T4: 1h}", "    gpu_type: {T4: 1h}\n"))
    res = run("validate", p)
    assert res.exit_code == 2
    assert res.stderr == (f"error: {p}:6: jobs.train.gpu_type: unknown field; did you mean "
                          "'gpu_types'? (see `placer schema`)\n")
    # Alone, it is the required field spelt wrong: one error, not two.
    p = _write(tmp_path / "q.yaml", "jobs:\n  train:\n    command: x\n    gpu_type: {T4: 1h}\n")
    res = run("validate", p)
    assert res.stderr == (f"error: {p}:4: jobs.train.gpu_type: unknown field; did you mean "
                          "'gpu_types'? (gpu_types is required and missing; see `placer "
                          "schema`)\n")


def test_a_field_one_level_too_high_is_pointed_down(tmp_path: Path) -> None:
    p = _write(tmp_path / "p.yaml", _pipeline("{T4: 1h}", "    gpus: 4\n"))
    res = run("validate", p)
    assert res.stderr == (f"error: {p}:6: jobs.train.gpus: unknown field; did you mean "
                          "'resources.gpus'? (see `placer schema`)\n")


def test_a_job_of_the_list_form_is_named_by_its_name(tmp_path: Path) -> None:
    p = _write(tmp_path / "p.yaml", "jobs:\n  - name: prep\n    command: x\n"
               "    gpu_types: {T4: 1h}\n  - name: train\n    command: y\n"
               "    gpu_types: {T4: -1h}\n")
    res = run("validate", p)
    assert res.stderr == (f"error: {p}:7: jobs.train.gpu_types.T4: duration must not be "
                          "negative, got '-1h'\n")


def test_a_region_typo_keeps_its_provider(tmp_path: Path) -> None:
    p = _write(tmp_path / "p.yaml", "datasets:\n  d: {location: 'aws:us-east1'}\n"
               + _pipeline("{T4: 1h}").removeprefix("kind: Pipeline\n"))
    res = run("validate", p)
    assert res.stderr == (f"error: {p}:2: datasets.d.location: unknown region aws:us-east1; "
                          "did you mean aws:us-east-1?\n")


SCENARIO = "kind: Scenario\nname: s\nworkload: {trace: 'itp:cluster04'}\nonprem: {nodes: 2}\n"


def test_a_folder_is_walked_to_any_depth_one_line_per_file(tmp_path: Path) -> None:
    good = _write(tmp_path / "a" / "b" / "c" / "p.yaml", _pipeline("{T4: 1h}"))
    scenario = _write(tmp_path / "a" / "s.yml", SCENARIO)
    bad = _write(tmp_path / "z" / "bad.yaml", SCENARIO + "strategy: [placer]\n")
    _write(tmp_path / "a" / "notes.txt", "not YAML")
    res = run("validate", tmp_path)
    assert res.exit_code == 2
    assert res.stdout.splitlines() == [f"ok    {scenario} (Scenario)",
                                       f"ok    {good} (Pipeline)",
                                       f"bad   {bad} (1 problem)"]
    assert f"error: {bad}:5: strategy: unknown field; did you mean 'strategies'?" in res.stderr
    assert f"note: not a YAML file, not checked: {tmp_path / 'a' / 'notes.txt'}" in res.stderr


def test_the_shipped_folders_validate(tmp_path: Path) -> None:
    res = run("validate", ROOT / "examples", ROOT / "policies", ROOT / "benchmarks" / "scenarios")
    assert res.exit_code == 0, res.output
    assert "(Scenario)" in res.stdout and "(Inventory)" in res.stdout
    assert len(res.stdout.splitlines()) == len(
        [p for d in ("examples", "policies", "benchmarks/scenarios")
         for p in (ROOT / d).rglob("*.y*ml")])


def test_a_folder_with_no_yaml_says_so_and_exits_2(tmp_path: Path) -> None:
    _write(tmp_path / "sub" / "readme.md", "# nothing here\n")
    res = run("validate", tmp_path)
    assert res.exit_code == 2
    assert f"error: {tmp_path}: no YAML files (*.yaml, *.yml) in this folder or below it" \
        in res.stderr
    res = run("validate", tmp_path / "missing")
    assert res.exit_code == 2
    assert "file or folder not found" in res.stderr


def test_schema_scenario_is_printed() -> None:
    res = run("schema", "scenario")
    assert res.exit_code == 0, res.output
    schema = json.loads(res.stdout)
    assert schema["properties"]["kind"] == {"const": "Scenario"}
    assert set(schema["required"]) == {"name", "workload", "onprem"}


def test_a_gpu_typo_in_another_case_suggests_the_catalog_spelling(tmp_path: Path) -> None:
    p = _write(tmp_path / "p.yaml", _pipeline("{a100-80g: 2h}"))
    res = run("validate", p)
    assert res.exit_code == 2
    assert "unknown GPU type 'a100-80g': no catalog offer or inventory pool has it; did you " \
        "mean 'A100-80GB'?" in res.stderr
