"""The benchmark runner: order, determinism, the report files, plots, and a sweep on real Ray
(through the ray backend's task runner, as ``placer bench hybrid --ray`` runs it)."""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from rich.console import Console

from placer.backends import load_backend
from placer.report import markdown_table, write_report
from placer.sim.bench import BenchResult, run_benchmark
from placer.sim.metrics import Metrics
from placer.sim.scenario import Scenario

TIMING = {"decision_p50_ms", "decision_p99_ms", "wall_s"}


def tiny(**kw: object) -> Scenario:
    data: dict[str, object] = {
        "name": "tiny",
        "workload": {"trace": "itp:cluster04", "limit": 300},
        "onprem": {"nodes": 4},
        "strategies": ["no-wait", "compute-wait+oo", "placer"],
        "sweep": {"wait": [0.25, 1.0]},
        "seed": 3,
    }
    data.update(kw)
    return Scenario.model_validate(data)


def numbers(m: Metrics) -> dict[str, object]:
    """Every metric but the wall-clock ones; NaN as None so that equal runs compare equal."""
    return {
        k: None if isinstance(v, float) and math.isnan(v) else v
        for k, v in asdict(m).items()
        if k not in TIMING
    }


@pytest.fixture(scope="module")
def result() -> BenchResult:
    return run_benchmark(tiny())


def test_rows_in_scenario_order_and_no_wait_runs_once(result: BenchResult) -> None:
    assert [(r.strategy, r.budget) for r in result.rows] == [
        ("no-wait", None),
        ("compute-wait+oo", 0.25),
        ("compute-wait+oo", 1.0),
        ("placer", 0.25),
        ("placer", 1.0),
    ]
    nw = result.rows[0]
    assert nw.share_of_no_wait == 1.0 and nw.metrics.cloud_usd > 0
    for r in result.rows:
        assert r.metrics.jobs == 300
        assert r.share_of_no_wait == pytest.approx(r.metrics.cloud_usd / nw.metrics.cloud_usd)
        # the timeline's last cumulative spend is the run's cloud $
        assert r.timeline.spend[-1][1] == pytest.approx(r.metrics.cloud_usd)
    # a bigger waiting budget does not spend more in the cloud for Compute-Wait here
    assert result.rows[2].metrics.cloud_usd <= result.rows[1].metrics.cloud_usd


def test_same_seed_same_numbers_and_the_seed_matters(result: BenchResult) -> None:
    again = run_benchmark(tiny())
    assert [numbers(r.metrics) for r in again.rows] == [numbers(r.metrics) for r in result.rows]
    other = run_benchmark(
        tiny(workload={"trace": "synthetic:rate=20,hours=10", "estimate_error": 0.5}, seed=4),
    )
    same = run_benchmark(
        tiny(workload={"trace": "synthetic:rate=20,hours=10", "estimate_error": 0.5}, seed=4),
    )
    moved = run_benchmark(
        tiny(workload={"trace": "synthetic:rate=20,hours=10", "estimate_error": 0.5}, seed=5),
    )
    assert [numbers(r.metrics) for r in other.rows] == [numbers(r.metrics) for r in same.rows]
    assert [numbers(r.metrics) for r in other.rows] != [numbers(r.metrics) for r in moved.rows]


def test_report_files(result: BenchResult, tmp_path: Path) -> None:
    md = tmp_path / "RESULTS.md"
    md.write_text("# Results\n")
    files = write_report(
        result, tmp_path / "out", command=["placer", "bench", "hybrid", "--x"], results_md=md
    )
    names = sorted(p.name for p in files)
    assert names == ["RESULTS.md", "metrics.csv", "metrics.json", "pareto.png", "timeline.png"]
    for png in ("pareto.png", "timeline.png"):
        assert (tmp_path / "out" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (tmp_path / "out" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["strategy"], r["budget"]) for r in rows] == [
        ("no-wait", ""),
        ("compute-wait+oo", "0.25"),
        ("compute-wait+oo", "1.0"),
        ("placer", "0.25"),
        ("placer", "1.0"),
    ]
    assert float(rows[1]["cloud_usd"]) == pytest.approx(result.rows[1].metrics.cloud_usd)
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert doc["seed"] == 3 and doc["command"] == "placer bench hybrid --x"
    assert doc["placer_version"] and Scenario.model_validate(doc["scenario"]) == tiny()
    assert doc["rows"][0]["dag_makespan_avg_h"] is None  # NaN (no pipelines) as null
    text = md.read_text()
    assert text.startswith("# Results\n\n## tiny — ")
    assert "```\nplacer bench hybrid --x\n```" in text
    assert markdown_table(result) in text
    assert "![pareto](out/pareto.png)" in text and "![timeline](out/timeline.png)" in text


def test_without_matplotlib_plots_are_skipped_with_a_note(
    result: BenchResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    note = Console(record=True, width=200)
    files = write_report(result, tmp_path, console=note)
    assert sorted(p.name for p in files) == ["metrics.csv", "metrics.json"]
    assert "pip install 'placer[bench]'" in note.export_text()


def test_a_sweep_as_ray_tasks_gives_the_same_rows(result: BenchResult) -> None:
    pytest.importorskip("ray")
    import ray

    sc = tiny(strategies=["compute-wait+oo"])
    got = run_benchmark(sc, runner=load_backend("ray").task_runner("local"))
    assert not ray.is_initialized()  # started for the sweep, shut down after
    assert [(r.strategy, r.budget) for r in got.rows] == [
        ("compute-wait+oo", 0.25),
        ("compute-wait+oo", 1.0),
    ]
    assert [numbers(r.metrics) for r in got.rows] == [numbers(r.metrics) for r in result.rows[1:3]]
