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
from tests.hunter.harness import hunt
from tests.hunter.oracle import judge, lineage
from tests.hunter.strategies import LOOKALIKE, cases, fullwidth, spelled

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


def test_star_matches_a_present_value_only() -> None:
    star = {"id": "s", "effect": "forbid", "match": {"tags": {"residency": ["*"]}},
            "sites": ["site:aws-*"]}
    t = truth(rules=[star])
    t["datasets"]["web"]["tags"]["residency"] = None
    assert judge(t).allowed["report"] == set(SITES)
    assert judge(t).allowed["prep"] == {"fra", "lon"}


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
