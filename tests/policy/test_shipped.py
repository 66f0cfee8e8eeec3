"""The policies shipped in policies/: they load, their inline tests pass and exercise every rule,
lint finds nothing against the example inventories, and they say what their descriptions say."""

from __future__ import annotations

import csv
import filecmp
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pytest

import placer
from placer.catalog import default_inventory, resolve_inventory
from placer.models import Dataset, Inventory, Job, Pipeline, ResolvedSite
from placer.policy import (
    HELD_MISSING_TAG,
    evaluate,
    held_code,
    lint_policies,
    load_policies,
    policy_hash,
    run_policy_tests,
    site_classes,
)
from tests.policy.policy_builders import SITES, ds, job, pipeline, site

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
LOCATIONS = POLICIES / "locations.yaml"
EEA_RESIDENCY = POLICIES / "eea-residency.yaml"
PII = POLICIES / "pii-self-hosted.yaml"
SHIPPED = ("eea-residency", "pii-self-hosted", "hipaa-baa", "sovereign-providers", "cost-caps",
           "prefer-onprem")
TODAY = date(2026, 12, 6)


def _facts() -> Path:
    for candidate in (
        ROOT / "placer" / "catalog" / "data" / "region_jurisdictions.csv",
        ROOT.parent / "shared" / "data" / "facts" / "region_jurisdictions.csv",
    ):
        if candidate.is_file():
            return candidate
    pytest.skip("region_jurisdictions.csv not found")


def _regions() -> list[dict[str, str]]:
    with _facts().open(encoding="utf-8", newline="") as f:
        return [row for row in csv.DictReader(f) if row["cloud"] in {"aws", "gcp", "azure"}]


def _self_hosted(s: ResolvedSite) -> ResolvedSite:
    return s.model_copy(update={"labels": {"class": "self-hosted"}})


# -- the set as shipped ------------------------------------------------------------------------


def test_the_six_policies_and_their_shared_locations_load() -> None:
    ps = load_policies(POLICIES)
    assert sorted(ps.name.split("+")) == sorted([*SHIPPED, "locations"])
    assert sorted(p.stem for p in POLICIES.glob("*.yaml")) == sorted([*SHIPPED, "locations"])
    assert set(ps.locations) == {"eea", "us", "cloud"}
    assert ps.required_tags == ("classification", "residency")
    assert [r.id for r in ps.rules] == [
        "cloud-cost-per-job", "eu-data-stays-in-eea", "phi-needs-a-baa", "phi-outside-us",
        "pii-self-hosted-only", "prefer-onprem-gpus", "sovereign-in-eea",
        "sovereign-not-on-us-providers", "team-monthly-cloud-budget"]
    assert "GDPR Chapter V" in ps.rule("eu-data-stays-in-eea").message
    assert "18 U.S.C. 2713" in ps.rule("sovereign-not-on-us-providers").message
    assert "164.502(e)" in ps.rule("phi-needs-a-baa").message
    assert not ps.rule("phi-needs-a-baa").waivable
    assert ps.rule("phi-outside-us").mode == "warn"
    assert load_policies(LOCATIONS, EEA_RESIDENCY).description.count("UK and Swiss") == 1


def test_every_shipped_policy_has_tests_that_pass_and_exercise_every_rule() -> None:
    ps = load_policies(POLICIES)
    report = run_policy_tests(ps)
    assert report.ok, "\n".join(r.title + "\n" + r.diff() for r in report.results
                                if not r.passed)
    assert report.unexercised == ()
    by_policy = {r.test.policy for r in report.results}
    assert by_policy == set(SHIPPED)


def test_the_bundled_policies_are_the_shipped_ones() -> None:
    """``placer demo`` and an installed placer read placer/bundled/policies."""
    bundled = ROOT / "placer" / "bundled" / "policies"
    names = sorted(p.name for p in POLICIES.glob("*.yaml"))
    assert sorted(p.name for p in bundled.glob("*.yaml")) == names
    _, mismatch, errors = filecmp.cmpfiles(POLICIES, bundled, names, shallow=False)
    assert (mismatch, errors) == ([], [])


@pytest.mark.parametrize("inventory", ["default", "quickstart"])
def test_lint_finds_nothing_against_the_example_inventories(inventory: str) -> None:
    inv = (default_inventory() if inventory == "default"
           else placer.load_inventory(ROOT / "examples" / "quickstart" / "inventory.yaml"))
    sites = resolve_inventory(inv)
    assert lint_policies(load_policies(POLICIES), sites, today=TODAY) == []
    classes = {s.name: site_classes(s) for s in sites}
    assert classes["fra-dc"] == {"self-hosted"}
    assert classes["aws-us-east-1"] == classes["aws-eu-central-1"] == {"baa-covered"}


def test_an_inventory_without_self_hosted_sites_is_refused_when_planned() -> None:
    """A forgotten label must not quietly strand, or leak, personal data."""
    inv = Inventory.model_validate({"sites": {
        "dc": {"location": "onprem:fra-dc1", "country": "DE",
               "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}]}}})
    p = Pipeline(datasets=(Dataset(name="d", location="onprem:fra-dc1",
                                   tags={"residency": "none", "classification": "public"}),),
                 jobs=(Job(name="j", command="x", gpu_types={"A100-80GB": 1}, inputs=("d",)),))
    with pytest.raises(placer.PolicyError, match="no site of the inventory is in class "
                                                 "'self-hosted'"):
        placer.plan(p, inv, load_policies(POLICIES), today=TODAY)


# -- EEA residency -------------------------------------------------------------------------------


def _eu_allowed(sites: Sequence[ResolvedSite]) -> set[str]:
    ps = load_policies(LOCATIONS, EEA_RESIDENCY)
    p = pipeline([ds("d", residency="EU")], job("j", "d"))
    return set(evaluate(p, sites, ps)["j"].allowed)


@pytest.mark.parametrize("trust_country", [True, False])
def test_eea_is_exactly_the_eea_regions_of_the_facts(trust_country: bool) -> None:
    """Exactly the EEA rows, whether the country is right (jurisdiction) or wrong (patterns)."""
    rows = _regions()
    sites = [
        site(
            f"{r['cloud']}-{r['region']}",
            f"{r['cloud']}:{r['region']}",
            r["country_iso2"] if trust_country else "US",
        )
        for r in rows
    ]
    expected = {f"{r['cloud']}-{r['region']}" for r in rows if r["eea_member"] == "1"}
    assert len(expected) == 29  # 27 EU + Azure's two Norwegian regions
    assert _eu_allowed(sites) == expected


def test_the_us_set_is_exactly_the_us_regions_of_the_facts() -> None:
    ps = load_policies(POLICIES)
    rows = _regions()
    sites = [site(f"{r['cloud']}-{r['region']}", f"{r['cloud']}:{r['region']}",
                  r["country_iso2"]) for r in rows]
    us = {s.name for s in sites if ps.locations["us"].contains(s)}
    assert us == {f"{r['cloud']}-{r['region']}" for r in rows if r["country_iso2"] == "US"}
    assert us and all("eu" not in name for name in us)


def test_new_region_is_admitted_by_its_country_only() -> None:
    new_eea = site("new-eea", "aws:eu-east-9", "AT")
    new_gb = site("new-gb", "aws:eu-west-9", "GB")
    new_tr = site("new-tr", "aws:eu-south-9", "TR")
    assert _eu_allowed([new_eea, new_gb, new_tr]) == {"new-eea"}


def test_onprem_counts_by_country_uk_and_switzerland_do_not() -> None:
    sites = [
        site("de", "onprem:fra", "DE"),
        site("no", "onprem:osl", "NO"),
        site("gb", "onprem:lon", "GB"),
        site("ch", "onprem:zrh", "CH"),
        site("us", "onprem:nyc", "US"),
        site("gb-claims-eea", "onprem:lon2", "GB", jurisdictions={"EEA"}),
    ]
    assert _eu_allowed(sites) == {"de", "no"}


# -- PII, PHI, sovereignty -----------------------------------------------------------------------


def test_pii_runs_only_self_hosted_and_combines_with_residency() -> None:
    ps = load_policies(POLICIES)
    sites = [_self_hosted(s) if s.kind == "onprem" else s for s in SITES]
    p = pipeline(
        [
            ds("eu-pii", residency="EU", classification="pii"),
            ds("us-pii", location="aws:us-east-1", residency="US", classification="pii"),
            ds("eu-public", residency="EU", classification="public"),
            ds("us-public", location="aws:us-east-1", residency="US", classification="public"),
        ],
        job("a", "eu-pii"),
        job("b", "us-pii"),
        job("c", "eu-public"),
        job("d", "us-public"),
        job("e", "c.out", "b.out"),
    )
    out = evaluate(p, sites, ps, today=TODAY)
    assert out["a"].allowed == ("fra-dc",)
    assert out["b"].allowed == ("fra-dc", "nyc-dc")
    assert out["c"].allowed == ("fra-dc", "aws-fra", "gcp-nl", "az-no")
    assert out["d"].allowed == tuple(s.name for s in SITES)
    assert out["e"].allowed == ("fra-dc",)  # EU (from c) and PII (from b)
    # An on-prem site that is not ours (a rented colo) is no place for PII.
    colo = [s for s in SITES if s.kind == "onprem"]
    assert evaluate(p, colo, ps, today=TODAY)["a"].allowed == ()


def test_unclassified_data_is_held_not_sent_to_the_cloud() -> None:
    ps = load_policies(PII)
    p = pipeline([ds("mystery")], job("a", "mystery"))
    out = evaluate(p, SITES, ps)["a"]
    assert out.allowed == ()
    assert [held_code(r) for r in out.held] == [HELD_MISSING_TAG]
    assert "'mystery'" in out.held[0]
    assert "'classification'" in out.held[0]


def test_phi_needs_a_baa_or_our_own_site_and_warns_outside_the_us() -> None:
    """End to end on the example inventory: the AWS sites are BAA-covered, the others not."""
    inv = placer.load_inventory(ROOT / "examples" / "quickstart" / "inventory.yaml")
    p = Pipeline(datasets=(Dataset(name="claims", location="aws:us-east-1", size=1,
                                   tags={"classification": "phi", "residency": "none"}),),
                 jobs=(Job(name="train", command="x", gpu_types={"A100-80GB": 1},
                           inputs=("claims",)),))
    plan = placer.plan(p, inv, load_policies(POLICIES), today=TODAY)
    assert plan.status == "placed"
    assert plan.jobs["train"].site in ("fra-dc", "aws-us-east-1", "aws-eu-central-1")
    assert set(plan.rejected["train"]) == {"gcp-europe-west4", "gcp-us-central1", "azure-eastus"}
    assert plan.verdicts["train"]["aws-eu-central-1"].audit == ("phi-outside-us (warn)",)
    if plan.jobs["train"].site != "aws-us-east-1":
        assert any("phi-outside-us" in w for w in plan.warnings)


def test_sovereign_data_never_runs_on_a_us_provider() -> None:
    ps = load_policies(POLICIES)
    sites = [_self_hosted(s) if s.kind == "onprem" else s for s in SITES]
    p = pipeline([ds("reg", residency="EU", classification="internal", sovereignty="eu")],
                 job("a", "reg"))
    assert evaluate(p, sites, ps, today=TODAY)["a"].allowed == ("fra-dc",)


# -- cost caps and the on-prem preference, end to end --------------------------------------------

INV = Inventory.model_validate({"sites": {
    "fra": {"location": "onprem:fra-dc1", "country": "DE", "labels": {"class": "self-hosted"},
            "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 5}]},
    "aws-va": {"location": "aws:us-east-1"}}})


def _public(hours: float, team: str | None = None) -> Pipeline:
    labels = {"team": team} if team else {}
    return Pipeline(datasets=(Dataset(name="d", location="aws:us-east-1", size=1,
                                      tags={"residency": "none", "classification": "public"}),),
                    jobs=(Job(name="train", command="x", gpu_types={"A100-80GB": hours},
                              resources={"gpus": 8}, inputs=("d",), labels=labels),))


def test_a_cloud_option_over_the_per_job_cap_is_removed() -> None:
    ps = load_policies(POLICIES)
    small = placer.plan(_public(1), INV, ps, today=TODAY)
    assert small.status == "placed" and small.jobs["train"].site == "aws-va"
    big = placer.plan(_public(40), INV, ps, today=TODAY)  # > $500 in the cloud
    assert big.status == "placed" and big.jobs["train"].site == "fra"
    assert big.evidence["train"].limits[0].startswith("limit 'cloud-cost-per-job': ")


def test_a_team_over_its_monthly_budget_waits() -> None:
    ps = load_policies(POLICIES)
    first = placer.plan(_public(1, "nlp"), INV, ps, today=TODAY)
    key = "team-monthly-cloud-budget[team=nlp]@2026-12-01"
    assert first.status == "placed" and set(first.budget_charges) == {key}
    late = placer.plan(_public(1, "nlp"), INV, ps, today=TODAY, spent={key: 4990.0})
    assert late.status == "held"
    assert late.reasons[0].startswith(f"budget {key}: $4,990.00 of $5,000.00 used this month")


def test_prefer_onprem_keeps_a_job_home_unless_the_cloud_saves_more_than_5_usd() -> None:
    ps = load_policies(POLICIES)
    plan = placer.plan(_public(1), INV, ps, today=TODAY)
    free = placer.plan(_public(1), INV, load_policies(LOCATIONS, EEA_RESIDENCY, PII),
                       today=TODAY)
    cloud = free.jobs["train"].cost_usd
    onprem = 8 * 5.0
    # The cloud wins by more than $5 here, so the preference does not change the choice...
    assert onprem - cloud > 5 and plan.jobs["train"].site == "aws-va"
    assert plan.jobs["train"].penalty_usd == pytest.approx(5.0)
    # ...but a cheaper on-prem pool (within $5 of the cloud) keeps the job home.
    near = Inventory.model_validate({"sites": {
        **{s.name: s.model_dump(mode="json", exclude_none=True) for s in INV.sites},
        "fra": {"location": "onprem:fra-dc1", "country": "DE", "labels": {"class": "self-hosted"},
                "pools": [{"gpu": "A100-80GB", "count": 8,
                           "cost_per_gpu_hour": (cloud + 3) / 8}]}}})
    assert placer.plan(_public(1), near, ps, today=TODAY).jobs["train"].site == "fra"
    assert placer.plan(_public(1), near, load_policies(LOCATIONS, EEA_RESIDENCY, PII),
                       today=TODAY).jobs["train"].site == "aws-va"


def test_hash_ignores_file_order_and_directory_form() -> None:
    h = policy_hash(load_policies(POLICIES))
    assert h.startswith("sha256:")
    assert len(h) == len("sha256:") + 64
    files = sorted(POLICIES.glob("*.yaml"))
    assert policy_hash(load_policies(*reversed(files))) == h
    assert policy_hash(load_policies(EEA_RESIDENCY, *files, POLICIES)) == h
    assert policy_hash(load_policies(LOCATIONS, EEA_RESIDENCY)) != h
