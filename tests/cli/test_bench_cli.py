"""`placer bench hybrid` end to end: flags or a scenario file in, table and files out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from placer.cli import app

runner = CliRunner()


def test_flag_only_run_writes_every_file(tmp_path: Path) -> None:
    out = tmp_path / "results"
    res = runner.invoke(
        app,
        [
            "bench",
            "hybrid",
            "--trace",
            "synthetic:rate=10,hours=6,seed=2",
            "--onprem-gpus",
            "16",
            "--strategies",
            "no-wait,compute-wait+oo",
            "--sweep",
            "wait=0,0.5",
            "--seed",
            "7",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.csv",
        "metrics.json",
        "pareto.png",
        "timeline.png",
    ]
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["seed"] == 7
    assert [(r["strategy"], r["budget"]) for r in doc["rows"]] == [
        ("no-wait", None),
        ("compute-wait+oo", 0.0),
        ("compute-wait+oo", 0.5),
    ]
    assert "compute-wait+oo" in res.stdout and "% No-Wait" in res.stdout


def test_scenario_file_run_and_results_md(tmp_path: Path) -> None:
    sc = tmp_path / "s.yaml"
    sc.write_text(
        "kind: Scenario\nname: t\nworkload: {trace: 'itp:cluster04', limit: 100}\n"
        "onprem: {nodes: 2}\nstrategies: [no-wait, placer]\nsweep: {wait: [0.5]}\n"
    )
    md = tmp_path / "RESULTS.md"
    res = runner.invoke(
        app,
        [
            "bench",
            "hybrid",
            "--scenario",
            str(sc),
            "--out",
            str(tmp_path / "o"),
            "--results-md",
            str(md),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "## t — " in md.read_text() and "| placer | 0.5 |" in md.read_text()


def test_bad_input_exits_2_naming_file_line_field(tmp_path: Path) -> None:
    sc = tmp_path / "s.yaml"
    sc.write_text(
        "kind: Scenario\nname: t\nworkload: {trace: 'itp:cluster04'}\nonprem: {nodes: 0}\n"
    )
    res = runner.invoke(app, ["bench", "hybrid", "--scenario", str(sc), "--quiet"])
    assert res.exit_code == 2
    assert f"{sc}:4: onprem.nodes:" in res.stderr
    res = runner.invoke(
        app,
        [
            "bench",
            "hybrid",
            "--trace",
            "itp:cluster04",
            "--onprem-gpus",
            "64",
            "--sweep",
            "budget=1",
        ],
    )
    assert res.exit_code == 2 and "--sweep: expected wait=" in res.stderr
    res = runner.invoke(app, ["bench", "hybrid", "--trace", "itp:cluster04"])
    assert res.exit_code == 2 and "--onprem-gpus" in res.stderr


def test_ray_local_runs_the_sweep_as_ray_tasks_with_the_same_numbers(tmp_path: Path) -> None:
    """``--ray local`` takes the ray backend's task runner through its entry point, starts Ray
    on loopback for the sweep and stops it; the rows are the in-process run's."""
    pytest.importorskip("ray")
    import ray

    args = ["bench", "hybrid", "--trace", "synthetic:rate=10,hours=4,seed=3", "--onprem-gpus",
            "16", "--strategies", "no-wait,compute-wait+oo", "--sweep", "wait=0.5", "--quiet"]
    rows = {}
    for where in ("here", "ray"):
        out = tmp_path / where
        extra = ["--ray", "local"] if where == "ray" else []
        res = runner.invoke(app, [*args, *extra, "--out", str(out)])
        assert res.exit_code == 0, res.output
        doc = json.loads((out / "metrics.json").read_text())
        rows[where] = [{k: v for k, v in r.items() if "decision" not in k and k != "wall_s"}
                       for r in doc["rows"]]
    assert not ray.is_initialized()
    assert rows["ray"] == rows["here"] and len(rows["here"]) == 2
