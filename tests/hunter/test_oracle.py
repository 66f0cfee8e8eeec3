"""The hunter's own checks: the oracle says what the policy language means, the generator's
spellings mean what it thinks, the harness sees a violation when there is one, and the hunter
finds a planted hole."""

from __future__ import annotations

import tempfile
import unicodedata
from pathlib import Path
from typing import Any

from hypothesis import find, given, settings
from hypothesis import strategies as st

from tests.hunter.budget import CI
from tests.hunter.harness import dated, hunt
from tests.hunter.language import hunt_audit, hunt_expiry
from tests.hunter.oracle import judge, lineage, uri_glob
from tests.hunter.strategies import (
    LOOKALIKE,
    audit_cases,
    cases,
    disguised,
    expiry_cases,
    fullwidth,
    spelled,
)

SITES = {
    "fra": {"location": "onprem:fra-dc1", "country": "DE", "jurisdictions": []},
    "lon": {"location": "onprem:lon-dc1", "country": "GB", "jurisdictions": []},
    "aws-de": {"location": "aws:eu-central-1", "jurisdictions": []},
    "aws-us": {"location": "aws:us-east-1", "jurisdictions": []},
}


def truth(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sites": SITES,
        "datasets": {"eu-raw": {"location": "onprem:fra-dc1",
                                "tags": {"residency": "EU", "classification": "pii"}},
                     "web": {"location": "aws:us-east-1",
                             "tags": {"residency": "US", "classification": "public"}}},
        "jobs": {"prep": {"inputs": ["eu-raw"], "outputs": ["features"], "after": [],
                          "labels": {}},
                 "train": {"inputs": ["prep.features", "web"], "outputs": ["model"],
                           "after": [], "labels": {}},
                 "report": {"inputs": ["web"], "outputs": [], "after": ["train"],
                            "labels": {"team": "ml"}}},
        "required_tags": [], "locations": {}, "rules": []}
    base.update(kw)
    return base


EU_ONLY = {"id": "eu", "effect": "require", "match": {"tags": {"residency": ["EU"]}},
           "sites": ["jurisdiction:EEA"]}


def test_lineage_flows_through_outputs_but_not_after() -> None:
    lin = lineage(truth())
    assert lin == {"prep": {"eu-raw"}, "train": {"eu-raw", "web"}, "report": {"web"}}


def test_require_and_forbid() -> None:
    no_aws = {"id": "no-aws", "effect": "forbid", "match": {}, "sites": ["provider:aws"]}
    v = judge(truth(rules=[EU_ONLY, no_aws]))
    assert v.allowed == {"prep": {"fra"}, "train": {"fra"}, "report": {"fra", "lon"}}
    assert v.locations["train"] == {"onprem:fra-dc1"}


def test_several_requires_intersect_and_prefer_removes_nothing() -> None:
    de = {"id": "de", "effect": "require", "match": {}, "sites": ["country:DE"]}
    aws = {"id": "aws", "effect": "require", "match": {"jobs": ["tr*"]}, "sites": ["aws:eu-*"]}
    pref = {"id": "p", "effect": "prefer", "match": {}, "sites": ["site:lon"]}
    v = judge(truth(rules=[de, aws, pref]))
    assert v.allowed["train"] == {"aws-de"} and v.allowed["prep"] == {"fra", "aws-de"}
    # Data at rest is judged by the rules on tags only: the job-name rule is about train.
    assert v.data_locations["train"] == {"onprem:fra-dc1", "aws:eu-central-1"}


def test_location_sets_include_and_exclude() -> None:
    sets = {"eea": {"include": ["jurisdiction:EEA", "onprem:*"], "exclude": ["country:GB"]}}
    rule = {"id": "r", "effect": "require", "match": {"tags": {"classification": ["pii"]}},
            "sites": ["eea"]}
    v = judge(truth(locations=sets, rules=[rule]))
    assert v.allowed["prep"] == {"fra", "aws-de"}


def test_unknown_location_and_missing_required_tag_hold_everything_downstream() -> None:
    t = truth(required_tags=["residency"])
    t["datasets"]["eu-raw"]["tags"]["residency"] = None  # written as ""
    v = judge(t)
    assert v.allowed["prep"] == v.allowed["train"] == frozenset()
    assert v.allowed["report"] == set(SITES)
    t = truth()
    t["datasets"]["web"]["location"] = None
    assert judge(t).allowed["report"] == frozenset()


def test_an_ambiguous_input_name_means_both() -> None:
    t = truth()
    t["datasets"]["prep.features"] = {"location": "aws:us-east-1",
                                      "tags": {"residency": "US", "classification": "public"}}
    assert lineage(t)["train"] == {"eu-raw", "web", "prep.features"}
    assert judge(truth(datasets=t["datasets"], rules=[EU_ONLY])).allowed["train"] == {
        "fra", "aws-de"}


def test_star_matches_a_key_whatever_its_value() -> None:
    """``"*"``: the key is present, whatever its value (docs/policies.md), an empty one too;
    a key left out is not present."""
    star = {"id": "s", "effect": "forbid", "match": {"tags": {"residency": ["*"]}},
            "sites": ["site:aws-*"]}
    t = truth(rules=[star])
    t["datasets"]["web"]["tags"]["residency"] = None  # written as ""
    assert judge(t).allowed["report"] == {"fra", "lon"}
    assert judge(t).allowed["prep"] == {"fra", "lon"}
    del t["datasets"]["web"]["tags"]["residency"]
    assert judge(t).allowed["report"] == set(SITES)


@given(st.sampled_from(("EU", "US", "pii", "public", "true", "GB", "internal")), st.data())
@settings(CI, max_examples=200)
def test_every_spelling_means_the_truth(value: str, data: st.DataObject) -> None:
    """What placer should see through: NFKC, trimming, case folding, look-alike letters."""
    text = data.draw(spelled(value))
    invisible = any(unicodedata.category(c) in ("Cf", "Cc") for c in text)
    if invisible:  # must be refused, never compared
        return
    folded = unicodedata.normalize("NFKC", text).strip()
    back = {v: k for k, v in LOOKALIKE.items()}
    assert "".join(back.get(c, c) for c in folded).casefold() == value.casefold()
    assert fullwidth("EU") == "ＥＵ"


def test_the_harness_sees_a_violation(tmp_path: Path) -> None:
    """Planning as if no policy were loaded must show up as violations, from the journal,
    the cluster and the stored bytes."""
    case = {
        "pipeline": {"name": "p", "datasets": {"eu-raw": {
            "location": "onprem:fra-dc1", "tags": {"residency": "EU"}}},
            "jobs": {"prep": {"command": "x", "gpu_types": {"A100-80GB": 1},
                              "inputs": ["eu-raw"], "outputs": {"features": 1}}}},
        "inventory": {"name": "i", "sites": {
            "fra": {"location": "onprem:fra-dc1", "country": "DE",
                    "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 9}]},
            "aws-us": {"location": "aws:us-east-1",
                       "offers": [{"gpu": "A100-80GB", "gpus_per_node": 1, "on_demand": 1}]}}},
        "policies": {"eu.yaml": {"apiVersion": "placer/v1", "kind": "PolicySet", "name": "eu",
                                 "rules": [{"id": "eu", "effect": "require",
                                            "match": {"tags": {"residency": "EU"}},
                                            "sites": ["jurisdiction:EEA"], "message": "GDPR"}]}},
        "truth": {"sites": {"fra": SITES["fra"], "aws-us": SITES["aws-us"]},
                  "datasets": {"eu-raw": {"location": "onprem:fra-dc1",
                                          "tags": {"residency": "EU"}}},
                  "jobs": {"prep": {"inputs": ["eu-raw"], "outputs": ["features"],
                                    "after": [], "labels": {}}},
                  "required_tags": [], "locations": {}, "rules": [EU_ONLY]},
        "faults": {},
    }
    honest = hunt(case, tmp_path / "honest")
    assert honest.stage == "ran" and not honest.counterexample, honest.report()
    broken = hunt(case, tmp_path / "broken", sabotage="ignore-policies")
    assert any(v.startswith("stored object") for v in broken.violations), broken.report()
    assert any(v.startswith("journal step") for v in broken.violations), broken.report()


def test_the_hunter_finds_a_planted_hole() -> None:
    """With planning blind to the policies, random search finds a violation quickly: the
    generators reach the places where holes would be."""

    def broken(case: dict[str, Any]) -> bool:
        with tempfile.TemporaryDirectory() as d:
            return hunt(case, Path(d), sabotage="ignore-policies").counterexample

    found = find(cases(max_jobs=4), broken,
                 settings=settings(CI, max_examples=300, phases=["generate"]))
    assert found["truth"]["rules"]


# -- the whole language (issue 11) ---------------------------------------------------------------
PII_ONPREM = {"id": "pii", "effect": "require", "match": {"tags": {"classification": ["pii"]}},
              "sites": ["provider:onprem"]}
NO_GB = {"id": "no-gb", "effect": "forbid", "match": {}, "sites": ["country:GB"]}


def waiver(**kw: Any) -> dict[str, Any]:
    return {"id": "x", "waives": ["pii"], "match": {}, "sites": [], "expires_in": 0,
            "layer": "organisation", **kw}


def test_an_exception_waives_until_it_expires_on_its_sites_and_strictly() -> None:
    t = truth(rules=[PII_ONPREM], exceptions=[waiver(sites=["aws:eu-*"])])
    assert judge(t).allowed["prep"] == {"fra", "lon", "aws-de"}
    assert judge(t, day=0).waived_locations["prep"] == {"aws:eu-central-1"}
    assert judge(t, day=1).allowed["prep"] == {"fra", "lon"}  # expired the day before
    assert judge(t, day=1).expired["prep"] == {"x"}
    t["exceptions"] = [waiver(match={"tags": {"classification": ["pii"]}})]
    assert judge(t).allowed["train"] == set(SITES)
    t["datasets"]["eu-raw"]["disguised"] = {"values": ["classification"]}  # "ріі"
    assert judge(t).allowed["train"] == {"fra", "lon"}  # caught by the require, not waived
    t["exceptions"] = []
    assert judge(t).allowed["train"] == {"fra", "lon"}
    not_waivable = dict(PII_ONPREM, waivable=False)
    assert judge(truth(rules=[not_waivable], exceptions=[waiver()])).allowed["prep"] == {
        "fra", "lon"}


def test_default_deny_admits_what_allows_name_and_allows_match_strictly() -> None:
    allow = {"id": "a", "effect": "allow", "match": {"tags": {"residency": ["EU"]}},
             "sites": ["jurisdiction:EEA", "country:GB"]}
    t = truth(rules=[allow, NO_GB], defaults={"organisation": "deny"})
    v = judge(t)
    assert v.allowed["prep"] == {"fra", "aws-de"} and v.allowed["report"] == frozenset()
    assert v.allows["prep"] == {"a"}
    t["datasets"]["eu-raw"]["disguised"] = {"keys": ["residency"]}  # "rеsidency"
    assert judge(t).allowed["prep"] == frozenset()
    assert judge(truth(rules=[allow])).allowed["report"] == set(SITES)  # default allow


def test_layers_intersect_and_modes_decide_nothing() -> None:
    team_only_aws = {"id": "t", "effect": "require", "match": {}, "sites": ["provider:aws"],
                     "layer": "team"}
    v = judge(truth(rules=[NO_GB, team_only_aws]))
    assert v.allowed["report"] == {"aws-de", "aws-us"}
    allow = {"id": "a", "effect": "allow", "match": {}, "sites": ["site:fra"], "layer": "team"}
    v = judge(truth(rules=[allow], defaults={"team": "deny"}))
    assert v.allowed["report"] == {"fra"}
    audit = dict(NO_GB, mode="audit")
    assert judge(truth(rules=[audit])).allowed["report"] == set(SITES)


def test_tagging_rules_derive_tags_by_uri_store_tags_and_every_copy() -> None:
    assert uri_glob("s3://clinical-*/**").match("s3://clinical-eu/a/b.parquet")
    assert not uri_glob("s3://clinical-*").match("s3://clinical-eu/a")
    assert uri_glob("**/raw").match("file:///mnt/data/raw")
    tag = {"id": "g", "match": {"uri": ["s3://clinical-*/**"]}, "tags": {"classification": "pii"},
           "layer": "organisation"}
    t = truth(rules=[PII_ONPREM], tagging=[tag])
    t["datasets"]["web"]["uri"] = "s3://clinical-us/x.csv"
    assert judge(t).allowed["report"] == {"fra", "lon"}
    tag = {"id": "g", "match": {"locations": ["country:US"]}, "tags": {"classification": "pii"}}
    t = truth(rules=[PII_ONPREM], tagging=[tag])
    assert judge(t).allowed["report"] == {"fra", "lon"}  # web's only copy is in the US
    t["datasets"]["web"]["replicas"] = ["aws:eu-central-1"]
    assert judge(t).allowed["report"] == set(SITES)  # not every copy is
    tag = {"id": "g", "match": {"storage_tags": {"region": ["*"]}}, "tags": {"residency": "EU"}}
    t = truth(rules=[EU_ONLY], tagging=[tag])
    t["datasets"]["web"]["storage_tags"] = {"region": "US"}
    assert judge(t).allowed["report"] == {"fra", "aws-de"}


def test_a_removal_counts_where_a_transform_approves_and_the_job_keeps_what_it_reads() -> None:
    t = truth(rules=[PII_ONPREM])
    t["jobs"]["prep"].update(image="registry.example/deid:1.4",
                             removes_tags={"classification": ["pii"]})
    assert judge(t).allowed["train"] == {"fra", "lon"}  # no transform approves the removal
    deid = {"id": "d", "match": {"images": ["registry.example/deid:*"]},
            "removes": {"classification": ["pii"]}}
    t["transforms"] = [deid]
    v = judge(t)
    assert v.allowed["prep"] == {"fra", "lon"} and v.allowed["train"] == set(SITES)
    assert "aws:us-east-1" in v.data_locations["prep"]  # what prep passes on may rest there
    t["transforms"] = [dict(deid, match={"jobs": ["prep"]})]  # a name alone approves nothing
    assert judge(t).allowed["train"] == {"fra", "lon"}


def test_a_replica_where_the_data_may_not_be_holds_every_reader() -> None:
    t = truth(rules=[EU_ONLY])
    t["datasets"]["eu-raw"]["replicas"] = ["aws:us-east-1"]
    v = judge(t)
    assert v.allowed["prep"] == v.allowed["train"] == frozenset()
    assert v.allowed["report"] == set(SITES)
    t["datasets"]["eu-raw"]["replicas"] = ["aws:eu-west-1"]
    assert judge(t).allowed["prep"] == {"fra", "aws-de"}
    t["datasets"]["eu-raw"]["replicas"] = ["onprem:ghost-dc1"]  # nothing knows where that is
    assert judge(t).allowed["prep"] == frozenset()


def test_a_policy_day_placeholder_becomes_a_date() -> None:
    import datetime

    day = datetime.date(2026, 12, 6)
    assert dated({"expires": "{day-1}", "x": ["{day+30}", "{day}"]}, day) == {
        "expires": datetime.date(2026, 12, 5),
        "x": [datetime.date(2027, 1, 5), day]}
    assert disguised("\u0415U") and not disguised("ＥＵ")


def test_the_language_properties_find_planted_holes() -> None:
    """Shown an exception that expires later than written, or a rule still enforced where it
    should be in audit mode, the properties find it quickly."""
    def expiry(case: dict[str, Any]) -> bool:
        with tempfile.TemporaryDirectory() as d:
            return hunt_expiry(case, Path(d), sabotage="expires-late").counterexample

    def audit(case: dict[str, Any]) -> bool:
        with tempfile.TemporaryDirectory() as d:
            return hunt_audit(case, Path(d), sabotage="enforced").counterexample

    quick = settings(CI, max_examples=300, phases=["generate"])
    assert find(expiry_cases(max_jobs=3), expiry, settings=quick)["judge"]["exception"]
    assert find(audit_cases(max_jobs=3), audit, settings=quick)["judge"]["rule"]
