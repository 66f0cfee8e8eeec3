"""End to end through the Python API: pipeline + inventory + policies → Plan."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import placer
from placer.catalog import default_catalog, resolve_inventory
from placer.models import Dataset, Inventory, Pipeline
from placer.policy import evaluate
from tests.builders import job, pipeline

ROOT = Path(__file__).resolve().parents[1]
PII_JOBS = ("deidentify", "finetune", "evaluate")


@pytest.fixture(scope="module")
def quick() -> Pipeline:
    return placer.load_pipeline(ROOT / "examples/quickstart/pipeline.yaml")


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return placer.load_inventory(ROOT / "examples/quickstart/inventory.yaml")


@pytest.fixture(scope="module")
def policies() -> placer.PolicySet:
    return placer.load_policies(ROOT / "policies")


def test_quickstart_keeps_personal_data_on_prem_and_bursts_the_rest(quick, inventory, policies):
    plan = placer.plan(quick, inventory, policies, objective="cost", deadline="12h")
    assert plan.status == "placed" and plan.optimal
    sites = {s.name: s for s in inventory.sites}
    for name in PII_JOBS:
        assert sites[plan.jobs[name].site].kind == "onprem", name
    # The public part has no reason to stay: tokenize runs in the cloud next to its corpus.
    assert sites[plan.jobs["tokenize"].site].kind == "cloud"
    assert plan.makespan_h <= 12.0 + 1e-9
    # Spot would pretrain for less, but with its expected preemptions (from the region's spot
    # trace) it would miss 12h: on-prem then; with 16h to spare it bursts to spot.
    assert sites[plan.jobs["pretrain"].site].kind == "onprem"
    spot = plan.verdicts["pretrain"]["aws-us-east-1"]
    assert spot.best_option is not None and "spot (expected" in spot.best_option
    assert spot.delta_cost_usd is not None and spot.delta_cost_usd < 0
    later = placer.plan(quick, inventory, policies, objective="cost", deadline="16h")
    assert later.jobs["pretrain"].site == "aws-us-east-1" and later.jobs["pretrain"].spot
    assert later.cost_usd < plan.cost_usd
    assert plan.cost_usd == pytest.approx(sum(p.cost_usd for p in plan.jobs.values()))
    assert plan.policy_hash.startswith("sha256:")
    # Tags flowed: finetune reads de-identified notes (derived from PII) and carries the tag.
    assert "pii" in plan.tags["finetune"]["classification"]
    # Every cloud site was rejected for finetune by a rule the plan names.
    for site, rules in plan.rejected["finetune"].items():
        assert sites[site].kind == "cloud" and rules


def test_an_approved_de_identifier_opens_the_eea_clouds_to_finetune_not_the_us(
        quick, inventory, policies):
    approved = placer.load_policies(ROOT / "policies",
                                    ROOT / "examples/quickstart/deid-approval.yaml")
    plan = placer.plan(quick, inventory, approved, deadline="12h")
    assert plan.status == "placed"
    eligible = {s for s, v in plan.verdicts["finetune"].items() if v.eligible}
    assert eligible == {"fra-dc", "aws-eu-central-1", "gcp-europe-west4"}
    assert plan.evidence["finetune"].removed == (
        "classification=pii removed by job 'deidentify', approved by transform "
        "'acme-deidentify-2026-11'",)
    assert "pii" not in plan.tags["finetune"].get("classification", [])
    # The de-identifier itself still reads PII: self-hosted only.
    assert {s for s, v in plan.verdicts["deidentify"].items() if v.eligible} == {"fra-dc"}
    # Without the approval the declaration counts for nothing, and says so.
    plain = placer.plan(quick, inventory, policies, deadline="12h")
    assert {s for s, v in plain.verdicts["finetune"].items() if v.eligible} == {"fra-dc"}
    assert "no transform of the policies approves it" in plain.evidence["deidentify"].ignored[0]


def test_policies_only_ever_restrict(quick, inventory, policies):
    free = placer.plan(quick, inventory, None, deadline="12h")
    bound = placer.plan(quick, inventory, policies, deadline="12h")
    assert free.status == bound.status == "placed"
    assert free.cost_usd <= bound.cost_usd + 1e-6


def test_json_has_the_documented_fields(quick, inventory, policies):
    plan = placer.plan(quick, inventory, policies, deadline="12h")
    data = plan.model_dump(mode="json")
    for key in ("status", "objective", "optimal", "cost_usd", "makespan_h", "policy_hash",
                "jobs", "rejected", "reasons"):
        assert key in data
    for key in ("site", "gpu", "spot", "start_h", "end_h", "cost_usd"):
        assert key in data["jobs"]["train" if "train" in data["jobs"] else "pretrain"]
    assert placer.Plan.model_validate_json(plan.model_dump_json()) == plan


def test_deadline_below_the_shortest_makespan_is_infeasible_with_a_reason(quick, inventory):
    plan = placer.plan(quick, inventory, None, deadline="1h")
    assert plan.status == "infeasible"
    assert plan.jobs == {}
    assert any("deadline" in r for r in plan.reasons)


def test_time_objective_is_faster_and_costs_more(quick, inventory, policies):
    cheap = placer.plan(quick, inventory, policies, objective="cost")
    fast = placer.plan(quick, inventory, policies, objective="time")
    assert fast.makespan_h <= cheap.makespan_h + 1e-9
    assert fast.cost_usd >= cheap.cost_usd - 1e-6


def test_unknown_location_holds_every_job_downstream(inventory, policies):
    p = pipeline(
        job("a", inputs=["mystery"], outputs={"o": 1}),
        job("b", inputs=["a.o"]),
        datasets=(Dataset(name="mystery", size=10, tags={"classification": "public",
                                                         "residency": "none"}),),
    )
    plan = placer.plan(p, inventory, policies)
    assert plan.status == "held"
    assert plan.jobs == {}
    assert any(r.startswith("a: ") and "mystery" in r for r in plan.reasons)
    assert any(r.startswith("b: ") for r in plan.reasons)


def test_gpu_type_nobody_offers_is_infeasible_naming_the_job(inventory):
    plan = placer.plan(pipeline(job("x", gpu_types={"TPU-v9": 1})), inventory)
    assert plan.status == "infeasible"
    assert plan.reasons == [
        "x: none of the allowed sites ("
        + ", ".join(s.name for s in inventory.sites)
        + ") offers 1× any of its GPU types (TPU-v9)"
    ]


def test_on_prem_capacity_serialises_jobs_that_do_not_fit_together(inventory, policies):
    onprem = next(s for s in inventory.sites if s.kind == "onprem")
    pool = max(onprem.pools, key=lambda p: p.count)
    g = pool.count // 2 + 1  # two of these never fit at once
    pii = Dataset(name="pii", size=1, location=onprem.location,
                  tags={"classification": "pii", "residency": "EU"})
    p = pipeline(*(job(f"j{i}", inputs=["pii"], gpu_types={pool.gpu: 2.0},
                       resources={"gpus": g}) for i in range(3)), datasets=(pii,))
    plan = placer.plan(p, inventory, policies)
    assert plan.status == "placed" and plan.optimal
    spans = sorted((pl.start_h, pl.end_h) for pl in plan.jobs.values())
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 1e-6
    assert plan.makespan_h == pytest.approx(6.0)


def test_explain_names_the_rule_that_rejected_each_site(quick, inventory, policies):
    plan = placer.plan(quick, inventory, policies, deadline="12h")
    text = plan.explain("finetune")
    assert text.startswith("finetune → ")
    lines = {ln.split(": ", 1)[0].strip(): ln.split(": ", 1)[1].split(", ")
             for ln in text.splitlines() if ln.startswith("  rejected by ")}
    for site, rules in plan.rejected["finetune"].items():
        for rule in rules:
            assert site in lines[f"rejected by {rule}"]
    with pytest.raises(KeyError):
        plan.explain("nope")


TAGS = st.fixed_dictionaries({
    "residency": st.sampled_from(["EU", "none", "US"]),
    "classification": st.sampled_from(["pii", "public", "internal"]),
})


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notes=TAGS, corpus=TAGS)
def test_no_plan_ever_violates_a_policy(quick, inventory, policies, notes, corpus):
    datasets = tuple(
        d.model_copy(update={"tags": notes if d.name == "clinical-notes" else corpus})
        for d in quick.datasets
    )
    p = quick.model_copy(update={"datasets": datasets})
    plan = placer.plan(p, inventory, policies)
    sites = resolve_inventory(inventory, default_catalog())
    elig = evaluate(p, sites, policies)
    by_name = {s.name: s for s in sites}
    for name, placed in plan.jobs.items():
        assert placed.site in elig[name].allowed
        loc = by_name[placed.site].location
        tags = elig[name].tags
        if "EU" in tags.get("residency", ()):
            assert "EEA" in loc.jurisdictions
        if "pii" in tags.get("classification", ()):
            assert loc.provider == "onprem"


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_forbids_and_requires_are_never_violated(quick, inventory, data):
    """End to end: whatever forbid/require rules apply, the plan never uses an excluded site."""
    import tempfile

    from placer.policy import pattern_matches

    names = [s.name for s in inventory.sites]
    forbid = data.draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
    require = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=6, unique=True))
    label = data.draw(st.sampled_from(["nlp", "vision"]))
    text = "apiVersion: placer/v1\nkind: PolicySet\nname: random\nrules:\n"
    if forbid:
        text += ("  - {id: f, effect: forbid, match: {}, message: m, sites: ["
                 + ", ".join(f"'site:{n}'" for n in forbid) + "]}\n")
    text += ("  - {id: r, effect: require, match: {labels: {team: " + label + "}}, message: m, "
             "sites: [" + ", ".join(f"'site:{n}'" for n in require) + "]}\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_text(text)
        pols = placer.load_policies(path)
    plan = placer.plan(quick, inventory, pols)
    sites = {s.name: s for s in resolve_inventory(inventory, default_catalog())}
    for name, placed in plan.jobs.items():
        site = sites[placed.site]
        assert not any(pattern_matches(f"site:{n}", site) for n in forbid)
        if quick.job(name).labels.get("team") == label:
            assert placed.site in require
    if plan.status != "placed":
        assert plan.reasons
