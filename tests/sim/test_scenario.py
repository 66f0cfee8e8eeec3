"""Scenario files: validation with file, line and field; what build() makes of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from placer.errors import ConfigError, ErrorDetail
from placer.sim.registry import ALL, make_strategy
from placer.sim.scenario import Scenario, build, load_scenario, read_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "benchmarks" / "scenarios"

TINY = """\
apiVersion: placer/v1
kind: Scenario
name: tiny
workload:
  trace: itp:cluster04
  limit: 50
onprem:
  nodes: 2
strategies: [no-wait, compute-wait+oo]
sweep:
  wait: [0.5, 1]
"""


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _details(
    exc: pytest.ExceptionInfo[ConfigError],
) -> list[tuple[str | None, int | None, str | None]]:
    return [(Path(d.file).name if d.file else None, d.line, d.field) for d in exc.value.details]


def test_tiny_scenario_builds_what_it_says(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, TINY))
    assert s.runs() == [("no-wait", None), ("compute-wait+oo", 0.5), ("compute-wait+oo", 1.0)]
    p = build(s, tmp_path)
    assert len(p.workload.jobs) == 50
    assert (p.onprem.site, p.onprem.location, p.onprem.gpus) == ("fra-dc", "onprem:fra-dc1", 16)
    assert p.cloud.sites == ("cloud",) and p.truth is None
    # the simulated inventory holds the chosen on-prem site with the scenario's pool only
    onprem = [x for x in p.sites if x.kind == "onprem"]
    assert [(x.name, sum(pl.count for pl in x.pools)) for x in onprem] == [("fra-dc", 16)]


def test_unknown_field_and_bad_values_name_file_line_and_field(tmp_path: Path) -> None:
    text = (
        TINY.replace("  limit: 50\n", "  limt: 50\n")
        .replace("strategies: [no-wait, compute-wait+oo]", "strategies: [no-wait, compute-wiat]")
        .replace("wait: [0.5, 1]", "wait: [0.5, -1]")
    )
    with pytest.raises(ConfigError) as exc:
        load_scenario(_write(tmp_path, text))
    assert _details(exc) == [
        ("s.yaml", 6, "workload.limt"),
        ("s.yaml", 9, "strategies"),
        ("s.yaml", 11, "sweep.wait[1]"),
    ]
    msgs = [d.msg for d in exc.value.details]
    assert msgs[0].startswith("unknown field")
    assert "unknown strategy 'compute-wiat'" in msgs[1] and "compute-wait+oo" in msgs[1]


def test_prepared_runs_with_the_scenarios_model_settings(tmp_path: Path) -> None:
    text = TINY + "seed: 7\nstorage_usd_per_gb_month: 0.5\n"
    p = build(load_scenario(_write(tmp_path, text)), tmp_path)
    result = p.simulate(make_strategy("no-wait"))
    assert (result.seed, result.storage_usd_per_gb_month) == (7, 0.5)
    assert len(result.records) == 50


def test_a_negative_storage_price_names_its_line(tmp_path: Path) -> None:
    text = TINY + "storage_usd_per_gb_month: -0.1\n"
    with pytest.raises(ConfigError) as exc:
        load_scenario(_write(tmp_path, text))
    assert _details(exc) == [("s.yaml", 12, "storage_usd_per_gb_month")]
    assert load_scenario(_write(tmp_path, TINY)).storage_usd_per_gb_month == 0.023


def test_cross_field_rules_point_at_the_field(tmp_path: Path) -> None:
    text = TINY.replace("onprem:\n", "cloud:\n  model: catalog\npolicies: [p.yaml]\nonprem:\n")
    with pytest.raises(ConfigError) as exc:
        load_scenario(_write(tmp_path, text))
    assert exc.value.details == [
        ErrorDetail(
            "the catalog model needs a reference GPU type, e.g. V100",
            str(tmp_path / "s.yaml"),
            7,
            "cloud.gpu",
            ("cloud", "gpu"),
        )
    ]
    text = TINY.replace("onprem:\n", "policies: [p.yaml]\nonprem:\n")
    with pytest.raises(ConfigError) as exc:
        load_scenario(_write(tmp_path, text))
    assert _details(exc) == [("s.yaml", 7, "policies")]


def test_wrong_kind_and_workload_without_jobs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_scenario(_write(tmp_path, TINY.replace("kind: Scenario", "kind: Inventory")))
    assert _details(exc) == [("s.yaml", 2, "kind")]
    text = TINY.replace("  trace: itp:cluster04\n  limit: 50\n", "  estimate_error: 0.1\n")
    with pytest.raises(ConfigError) as exc:
        load_scenario(_write(tmp_path, text))
    assert _details(exc) == [("s.yaml", 4, "workload")]
    assert "needs a trace, pipelines, or both" in exc.value.details[0].msg


def test_build_errors_name_the_scenario_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        TINY.replace("  nodes: 2\n", "  site: nowhere\n  nodes: 2\n").replace(
            "itp:cluster04", "itp:cluster44"
        ),
    )
    s, sm = read_scenario(path)
    with pytest.raises(ConfigError) as exc:
        build(s, tmp_path, source=sm)
    assert _details(exc) == [("s.yaml", 8, "onprem.site")]
    assert "no on-prem site 'nowhere'" in exc.value.details[0].msg
    s, sm = read_scenario(_write(tmp_path, TINY.replace("itp:cluster04", "itp:cluster44")))
    with pytest.raises(ConfigError) as exc:
        build(s, tmp_path, source=sm)
    assert _details(exc) == [("s.yaml", 5, "workload.trace")]
    assert exc.value.details[0].msg.startswith("cluster: unknown ITP cluster 'cluster44'")


def test_from_cli_is_the_flag_only_form() -> None:
    s = Scenario.from_cli(trace="itp:cluster04", onprem_gpus=256, sweep=[0, 0.5])
    assert (s.onprem.nodes, s.onprem.gpus_per_node, s.cloud.model) == (32, 8, "uniform")
    assert s.strategies == ALL and s.budgets == (0.0, 0.5)
    with pytest.raises(ConfigError) as exc:
        Scenario.from_cli(trace="itp:cluster04", onprem_gpus=100)
    assert exc.value.details[0].field == "--onprem-gpus"
    with pytest.raises(ConfigError) as exc:
        Scenario.from_cli(trace="itp:cluster04", onprem_gpus=64, strategies=["nope"])
    assert exc.value.details[0].field == "strategies"


def test_trace_and_pipelines_merge_in_arrival_order(tmp_path: Path) -> None:
    text = TINY.replace(
        "  limit: 50\n", "  limit: 30\n  pipelines: {count: 5, rate_per_h: 2, shape: chain}\n"
    )
    p = build(load_scenario(_write(tmp_path, text)), tmp_path)
    jobs = p.workload.jobs
    assert len(jobs) == 30 + 5 * 3
    assert sorted({j.pipeline for j in jobs}) == [-1, 0, 1, 2, 3, 4]
    firsts = {}
    for j in jobs:
        firsts.setdefault((j.pipeline, j.id if j.pipeline < 0 else 0), j.arrival_h)
        assert all(d < j.id and jobs[d].pipeline == j.pipeline for d in j.deps)
    arrivals = list(firsts.values())
    assert arrivals == sorted(arrivals)


def test_shipped_starburst_scenario() -> None:
    s = load_scenario(SCENARIOS / "starburst-itp.yaml")
    assert s.strategies == ("no-wait", "compute-wait+oo", "star-wait", "constant-wait", "placer")
    assert (s.onprem.nodes * s.onprem.gpus_per_node, s.cloud.model) == (512, "uniform")
    assert len(s.runs()) == 1 + 4 * 5


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_loads_and_names_known_strategies(path: Path) -> None:
    s = load_scenario(path)
    assert s.runs()
    for name, budget in s.runs():
        make_strategy(name, budget if budget is not None else 0.0)


def test_shipped_second_starburst_trace_is_cluster07_on_264_gpus() -> None:
    s = load_scenario(SCENARIOS / "starburst-itp-cluster07.yaml")
    assert s.workload.trace == "itp:cluster07"
    assert (s.onprem.nodes * s.onprem.gpus_per_node, s.cloud.model) == (264, "uniform")


def test_shipped_eu_scenario_keeps_eu_work_in_the_eea() -> None:
    path = SCENARIOS / "eu-pipelines.yaml"
    s, sm = read_scenario(path)
    p = build(s, path.parent, source=sm)
    assert p.onprem.location == "onprem:fra-dc1" and p.truth == {"EU": frozenset({"EEA"})}
    eu_sites = {"aws-eu-central-1", "gcp-europe-west4"}
    restricted = [
        j
        for j in p.workload.jobs
        if any(p.workload.datasets[d].tags.get("residency") == "EU" for d in j.reads)
    ]
    units = {j.pipeline if j.pipeline >= 0 else ("job", j.id) for j in p.workload.jobs}
    runits = {j.pipeline if j.pipeline >= 0 else ("job", j.id) for j in restricted}
    assert 0.30 <= len(runits) / len(units) <= 0.40
    for j in restricted:
        onprem_ok, cloud = p.eligibility.allowed(j.id, "policy")
        assert onprem_ok and set(cloud) == eu_sites
    assert p.jurisdictions["aws:us-east-1"] == frozenset({"US"})
