"""The benchmark plots read at a glance: one fixed colour per strategy, labels that do not
collide, coinciding points both visible, an outlier drawn as an arrow instead of squeezing the
rest, residency violations marked. Each test failed on the plots before issue 14."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from pathlib import Path

import pytest

from placer.report._plots import binned, colours, outliers, pareto_figure, timeline
from placer.sim.bench import BenchResult, Row, Timeline
from placer.sim.metrics import Metrics
from placer.sim.scenario import Scenario

pytest.importorskip("matplotlib")

BASE = Metrics(
    strategy="", jobs=100, cloud_usd=0.0, compute_usd=0.0, spot_usd=0.0, egress_usd=0.0,
    storage_usd=0.0, replicas=0, cloud_gpu_h=0.0, cloud_jobs=0, jct_avg_h=1.0, jct_p50_h=1.0,
    jct_p90_h=1.0, jct_p99_h=1.0, wait_avg_h=0.0, wait_p50_h=0.0, wait_p90_h=0.0,
    wait_p99_h=0.0, makespan_h=10.0, dag_makespan_avg_h=float("nan"), onprem_util=0.9,
    deadline_jobs=0, deadline_misses=0, violations=0, preemptions=0, decision_p50_ms=0.0,
    decision_p99_ms=0.0, wall_s=0.0,
)


def row(strategy: str, budget: float | None, usd: float, jct: float, violations: int = 0,
        end: float = 100.0) -> Row:
    m = replace(BASE, strategy=strategy, cloud_usd=usd, jct_avg_h=jct, violations=violations)
    tl = Timeline(busy=((0.0, 8), (end / 2, 4), (end, 0)),
                  spend=((0.0, 0.0), (end, usd)), onprem_gpus=8)
    return Row(strategy=strategy, budget=budget, metrics=m, share_of_no_wait=None, timeline=tl)


def result(rows: list[Row]) -> BenchResult:
    scenario = Scenario.model_validate({
        "name": "plot", "workload": {"trace": "itp:cluster04", "limit": 10},
        "onprem": {"nodes": 1}, "strategies": sorted({r.strategy for r in rows}),
        "sweep": {"wait": sorted({r.budget for r in rows if r.budget is not None})},
    })
    return BenchResult(scenario=scenario, rows=tuple(rows), workload="w", source="s")


def cluster04_like() -> BenchResult:
    """The shape of the cluster04 run the issue measured: no-wait and skypilot at one point,
    on-prem only a hundred times slower at $0, the waiting strategies bunched together."""
    rows = [
        row("onprem-only", None, 0.0, 622.0),
        row("no-wait", None, 395_857.0, 5.55),
        row("skypilot", None, 395_857.0, 5.55),
        row("no-wait+mask-literal", None, 300_000.0, 5.6, violations=259),
    ]
    for name, pts in {
        "constant-wait": [(0.25, 385_428.0, 6.31), (1.0, 380_000.0, 7.0)],
        "constant-wait-nosj": [(0.25, 386_594.0, 6.16), (1.0, 381_000.0, 6.9)],
        "compute-wait+oo": [(0.25, 346_999.0, 6.49), (1.0, 340_000.0, 7.2)],
        "placer": [(0.25, 350_106.0, 6.11), (1.0, 341_000.0, 6.95)],
    }.items():
        rows += [row(name, b, usd, jct) for b, usd, jct in pts]
    return result(rows)


def test_each_strategy_has_one_colour_and_placer_is_always_the_same() -> None:
    a = colours(["no-wait", "placer", "skypilot", "mystery"])
    b = colours(["placer", "mystery", "compute-wait+oo+mask", "compute-wait+oo-literal+mask"])
    assert a["placer"] == b["placer"]
    assert len(set(a.values())) == 4 and len(set(b.values())) == 4  # distinct within a plot
    # a variant takes its family's colour when the family is absent, never a duplicate
    assert b["compute-wait+oo+mask"] == colours(["compute-wait+oo"])["compute-wait+oo"]


def test_the_outlier_is_an_arrow_and_the_rest_fill_the_axis() -> None:
    res = cluster04_like()
    assert outliers(res.rows) == {"onprem-only"}
    fig = pareto_figure(res)
    ax = fig.axes[0]
    _, hi = ax.get_xlim()
    assert ax.get_xscale() == "linear" and hi < 20, "the waiting strategies get the axis"
    texts = [t.get_text() for t in ax.texts]
    assert any(t.startswith("onprem-only") and "622 h" in t for t in texts)


def test_coinciding_points_are_both_visible_and_named() -> None:
    fig = pareto_figure(cluster04_like())
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "no-wait" in legend
    assert "skypilot (at no-wait's point)" in legend


def test_labels_do_not_collide() -> None:
    fig = pareto_figure(cluster04_like())
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    assert len(boxes) >= 8
    clashes = [(a, b) for a, b in combinations(boxes, 2) if a.overlaps(b)]
    assert not clashes


def test_residency_violations_are_marked() -> None:
    fig = pareto_figure(cluster04_like())
    ax = fig.axes[0]
    assert "residency violations" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "259 violations" in [t.get_text() for t in ax.texts]


def test_timeline_is_one_panel_per_strategy(tmp_path: Path) -> None:
    res = cluster04_like()
    path = timeline(res, tmp_path / "t.png", budget=0.25)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_binned_is_the_time_weighted_mean() -> None:
    edges, means = binned([(0.0, 8), (5.0, 4), (10.0, 0)], 10.0, bins=4)
    assert edges == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert means[:4] == [8.0, 8.0, 4.0, 4.0]
    _, mixed = binned([(0.0, 8), (3.75, 0)], 10.0, bins=4)
    assert mixed[:2] == [8.0, 4.0]
