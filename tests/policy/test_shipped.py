"""The policies shipped in policies/: they load cleanly and say what their descriptions say."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import pytest

from placer.models import ResolvedSite
from placer.policy import HELD_MISSING_TAG, evaluate, held_code, load_policies, policy_hash
from tests.policy.policy_builders import SITES, ds, job, pipeline, site

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
EU_RESIDENCY = POLICIES / "eu-residency.yaml"
PII_ONPREM = POLICIES / "pii-onprem.yaml"


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


def test_both_load_with_no_errors() -> None:
    ps = load_policies(POLICIES)
    assert ps.name == "eu-residency+pii-onprem"
    assert [r.id for r in ps.rules] == ["eu-data-stays-in-eea", "pii-onprem-only"]
    assert ps.required_tags == ("classification", "residency")
    assert "GDPR Chapter V" in ps.rule("eu-data-stays-in-eea").message
    assert load_policies(EU_RESIDENCY).description.count("UK and Swiss") == 1


def _eu_allowed(sites: Sequence[ResolvedSite]) -> set[str]:
    ps = load_policies(EU_RESIDENCY)
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


def test_pii_runs_only_onprem_and_combines_with_residency() -> None:
    ps = load_policies(POLICIES)
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
    out = evaluate(p, SITES, ps)
    assert out["a"].allowed == ("fra-dc",)
    assert out["b"].allowed == ("fra-dc", "nyc-dc")
    assert out["c"].allowed == ("fra-dc", "aws-fra", "gcp-nl", "az-no")
    assert out["d"].allowed == tuple(s.name for s in SITES)
    assert out["e"].allowed == ("fra-dc",)  # EU (from c) and PII (from b)


def test_unclassified_data_is_held_not_sent_to_the_cloud() -> None:
    ps = load_policies(PII_ONPREM)
    p = pipeline([ds("mystery")], job("a", "mystery"))
    out = evaluate(p, SITES, ps)["a"]
    assert out.allowed == ()
    assert [held_code(r) for r in out.held] == [HELD_MISSING_TAG]
    assert "'mystery'" in out.held[0]
    assert "'classification'" in out.held[0]


def test_hash_ignores_file_order_and_directory_form() -> None:
    h = policy_hash(load_policies(POLICIES))
    assert h.startswith("sha256:")
    assert len(h) == len("sha256:") + 64
    assert policy_hash(load_policies(PII_ONPREM, EU_RESIDENCY)) == h
    assert policy_hash(load_policies(EU_RESIDENCY, PII_ONPREM, POLICIES)) == h
    assert policy_hash(load_policies(EU_RESIDENCY)) != h
