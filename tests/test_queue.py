"""Several pipelines planned together against shared on-prem capacity (placer.queue)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import placer
from placer.catalog import default_catalog, resolve_inventory
from placer.cli import app
from placer.errors import ConfigError
from placer.models import Dataset, Inventory, Job, Pipeline
from placer.queue import combine, queue_lines

INVENTORY = """\
sites:
  fra:
    location: onprem:fra-dc1
    country: DE
    pools: [{gpu: A100-80GB, count: 1, cost_per_gpu_hour: $1}]
  aws-fra:
    location: aws:eu-central-1
  aws-va:
    location: aws:us-east-1
"""


def _train(pipeline: str, **kw: object) -> Pipeline:
    job = Job(name="train", command="x", gpu_types={"A100-80GB": 2.0, "A100-40GB": 2.0},
              **kw)  # type: ignore[arg-type]
    return Pipeline(name=pipeline, jobs=(job,))


def _inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "inv.yaml"
    path.write_text(INVENTORY, encoding="utf-8")
    return placer.load_inventory(path)


def _lines(plan: placer.Plan, members: list[Pipeline], inv: Inventory) -> dict[str, tuple]:
    onprem = [s.name for s in resolve_inventory(inv, default_catalog()) if s.kind == "onprem"]
    return {f"{x.pipeline}/{x.job}": (x.site, x.verdict, x.why)
            for x in queue_lines(plan, combine(members), members, onprem)}


def test_combine_prefixes_names_and_rewrites_every_reference() -> None:
    eu = Dataset(name="notes", location="onprem:fra-dc1", tags={"residency": "EU"}, size=3)
    nlp = Pipeline(name="nlp", datasets=(eu,), jobs=(
        Job(name="prep", command="p", gpu_types={"T4": 1.0}, inputs=("notes",),
            outputs={"features": 1.0}),
        Job(name="train", command="t", gpu_types={"T4": 1.0}, inputs=("prep.features",)),
        Job(name="report", command="r", gpu_types={"T4": 1.0}, after=("train",)),
    ))
    q = combine([nlp, _train("vision")])
    assert [j.name for j in q.jobs] == ["nlp__prep", "nlp__train", "nlp__report",
                                        "vision__train"]
    assert q.job("nlp__train").inputs == ("nlp__prep.features",)
    assert q.job("nlp__report").after == ("nlp__train",)
    assert q.dataset("nlp__notes").tags == {"residency": "EU"}
    # Lineage survives the renaming: what train reads is still EU data.
    assert placer.policy.lineage_tags(q)["nlp__train"] == {"residency": frozenset({"EU"})}


def test_combine_refuses_two_pipelines_of_one_name_and_colliding_names() -> None:
    with pytest.raises(ConfigError, match="pipelines 1 and 2 are both named 'nlp' and 'NLP'"):
        combine([_train("nlp"), _train("NLP")])
    a = Pipeline(name="a", jobs=(Job(name="b__c", command="x", gpu_types={"T4": 1.0}),))
    ab = Pipeline(name="a__b", jobs=(Job(name="c", command="x", gpu_types={"T4": 1.0}),))
    with pytest.raises(ConfigError, match="a__b__c would name two things"):
        combine([a, ab])


def test_a_queue_shares_the_pool_one_waits_then_with_a_deadline_one_bursts(
        tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    members = [_train("nlp"), _train("vision")]
    plan = placer.plan(combine(members), inv)
    assert plan.status == "placed" and plan.cost_usd == pytest.approx(4.0)
    lines = _lines(plan, members, inv)
    assert sorted(v for _, v, _ in lines.values()) == ["on-prem", "waits"]
    waiting = next(w for _, v, w in lines.values() if v == "waits")
    assert waiting == "waits at least 2.00h for on-prem GPUs (starts at 2.00h)"

    plan = placer.plan(combine(members), inv, deadline="3h")
    assert plan.status == "placed" and plan.makespan_h <= 3.0
    lines = _lines(plan, members, inv)
    verdicts = {k: v for k, (_, v, _) in lines.items()}
    assert sorted(verdicts.values()) == ["burst", "on-prem"]
    burst = next(k for k, v in verdicts.items() if v == "burst")
    other = next(k for k, v in verdicts.items() if v == "on-prem").replace("/", "__")
    assert lines[burst][2].startswith("on fra it would cost $")
    assert lines[burst][2].endswith(f"fra is busy then with {other} (0.00h-2.00h)")


def test_policies_apply_in_a_queue_as_to_each_pipeline_alone(tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    eu = Dataset(name="notes", location="onprem:fra-dc1", tags={"residency": "EU"}, size=1)
    nlp = Pipeline(name="nlp", datasets=(eu,), jobs=(
        Job(name="train", command="x", gpu_types={"A100-80GB": 2.0, "A100-40GB": 2.0},
            inputs=("notes",)),))
    pol = tmp_path / "p.yaml"
    pol.write_text("""\
apiVersion: placer/v1
kind: PolicySet
name: queue
rules:
  - id: eu-stays
    effect: require
    match: {tags: {residency: EU}}
    sites: ["jurisdiction:EEA"]
    message: EU data stays in the EEA.
  - id: no-onprem-for-vision
    effect: forbid
    match: {jobs: ["vision__*"]}
    sites: ["provider:onprem"]
    message: vision runs in the cloud.
""", encoding="utf-8")
    members = [nlp, _train("vision")]
    plan = placer.plan(combine(members), inv, placer.load_policies(pol), deadline="3h")
    assert plan.status == "placed"
    assert plan.jobs["nlp__train"].location in ("onprem:fra-dc1", "aws:eu-central-1")
    lines = _lines(plan, members, inv)
    assert lines["vision/train"][1:] == (
        "burst", "the policies do not allow it on-prem (fra); it runs in the cloud")


def test_cli_plans_several_pipelines_as_one_queue(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(INVENTORY, encoding="utf-8")
    for name in ("nlp", "vision"):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\njobs:\n  train: {{command: x, gpu_types: "
            "{A100-80GB: 2h, A100-40GB: 2h}}\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["plan", str(tmp_path / "nlp.yaml"),
                                   str(tmp_path / "vision.yaml"), "--inventory",
                                   str(tmp_path / "inv.yaml"), "--deadline", "3h", "--no-log"],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "queue: who waits for on-prem, who bursts" in res.output
    assert "burst" in res.output and "is busy then with" in res.output
    same = CliRunner().invoke(app, ["plan", str(tmp_path / "nlp.yaml"),
                                    str(tmp_path / "nlp.yaml"), "--no-log"])
    assert same.exit_code == 2
    assert "both named 'nlp'" in same.output
