"""Tags flow along the DAG through data (not through `after`); unknown facts hold jobs."""

from __future__ import annotations

from placer.policy import (
    HELD_MISSING_TAG,
    HELD_UNKNOWN_LOCATION,
    PolicySet,
    evaluate,
    held_code,
    lineage_tags,
)
from tests.policy.policy_builders import ALL, SITES, ds, job, pipeline, policies, rule

EU = ds("eu", residency="EU")
US = ds("us", location="aws:us-east-1", residency="US", classification="public")
PII = ds("pii", classification="pii")


def test_chain_of_three_inherits_transitively() -> None:
    p = pipeline(
        [EU],
        job("a", "eu"),
        job("b", "a.out"),
        job("c", "b.out"),
    )
    tags = lineage_tags(p)
    assert tags == {
        "a": {"residency": frozenset({"EU"})},
        "b": {"residency": frozenset({"EU"})},
        "c": {"residency": frozenset({"EU"})},
    }
    ps = policies(rule("eu", "require", ["jurisdiction:EU"], {"tags": {"residency": "EU"}}))
    out = evaluate(p, SITES, ps)
    assert out["c"].allowed == ("fra-dc", "aws-fra", "gcp-nl")
    assert out["c"].tag_sources == {"residency": {"EU": frozenset({"eu"})}}
    assert "from dataset 'eu'" in out["c"].rejected["aws-va"][0].hint


def test_diamond_unions_values_per_key() -> None:
    p = pipeline(
        [EU, US, PII],
        job("src-eu", "eu"),
        job("src-us", "us"),
        job("left", "src-eu.out", "pii"),
        job("right", "src-us.out"),
        job("join", "left.out", "right.out"),
    )
    tags = lineage_tags(p)
    assert tags["join"] == {
        "classification": frozenset({"pii", "public"}),
        "residency": frozenset({"EU", "US"}),
    }
    assert tags["right"] == {
        "classification": frozenset({"public"}),
        "residency": frozenset({"US"}),
    }
    assert tags["left"] == {
        "classification": frozenset({"pii"}),
        "residency": frozenset({"EU"}),
    }
    out = evaluate(p, SITES, PolicySet())
    assert out["join"].tag_sources == {
        "classification": {"pii": frozenset({"pii"}), "public": frozenset({"us"})},
        "residency": {"EU": frozenset({"eu"}), "US": frozenset({"us"})},
    }


def test_after_edges_carry_no_tags() -> None:
    p = pipeline([EU], job("a", "eu"), job("b", after=["a"]), job("c", "b.out"))
    assert lineage_tags(p) == {"a": {"residency": frozenset({"EU"})}, "b": {}, "c": {}}
    ps = policies(rule("eu", "require", ["jurisdiction:EU"], {"tags": {"residency": "EU"}}))
    assert evaluate(p, SITES, ps)["b"].allowed == ALL


def test_a_job_reading_several_outputs_of_one_job() -> None:
    p = pipeline([EU], job("a", "eu", outputs=("x", "y")), job("b", "a.x", "a.y"))
    assert lineage_tags(p)["b"] == {"residency": frozenset({"EU"})}


def test_unknown_location_holds_the_job_and_everything_downstream() -> None:
    lost = ds("lost", location=None, residency="EU")
    p = pipeline(
        [lost, US],
        job("a", "lost"),
        job("b", "a.out", "us"),
        job("c", "us"),
        job("d", after=["a"]),
    )
    out = evaluate(p, SITES, PolicySet())  # unknown is held even with no policy at all
    reason = (
        f"{HELD_UNKNOWN_LOCATION}: dataset 'lost' (read by job 'a') has no known location; "
        "resolve where it is stored (location: provider:region) before it can be placed"
    )
    assert out["a"].held == (reason,)
    assert out["a"].allowed == ()
    assert out["b"].held == (reason,)
    assert out["b"].allowed == ()
    assert out["c"].held == ()
    assert out["c"].allowed == ALL
    assert out["d"].held == ()  # after carries no data


def test_missing_required_tag_holds_and_names_dataset_and_key() -> None:
    untagged = ds("raw")
    p = pipeline([untagged, EU], job("a", "raw"), job("b", "eu"), job("c", "a.out"))
    ps = policies(required_tags=["residency", "classification"])
    out = evaluate(p, SITES, ps)
    assert out["a"].held == (
        f"{HELD_MISSING_TAG}: dataset 'raw' (read by job 'a') lacks the required tags "
        "'classification', 'residency'; its classification is unknown, so nothing that reads "
        "it may be placed until it is tagged",
    )
    assert out["c"].held == out["a"].held
    assert [held_code(r) for r in out["b"].held] == [HELD_MISSING_TAG]
    assert "lacks the required tag 'classification';" in out["b"].held[0]
    assert all(e.allowed == () for e in out.values())


def test_both_reasons_are_reported_sorted() -> None:
    bad = ds("bad", location=None)
    p = pipeline([bad], job("a", "bad"))
    out = evaluate(p, SITES, policies(required_tags=["residency"]))["a"]
    assert [held_code(r) for r in out.held] == [HELD_MISSING_TAG, HELD_UNKNOWN_LOCATION]


def test_held_job_still_shows_what_the_rules_say() -> None:
    lost = ds("lost", location=None, residency="EU")
    p = pipeline([lost], job("a", "lost"))
    ps = policies(
        rule("eu", "require", ["jurisdiction:EU"], {"tags": {"residency": "EU"}}),
        rule("pref", "prefer", ["onprem:*"], {}),
    )
    out = evaluate(p, SITES, ps)["a"]
    assert out.allowed == ()
    assert out.is_held
    assert out.matched_rules == ("eu", "pref")
    assert "aws-va" in out.rejected
    assert out.penalties == {}


def test_a_job_with_no_inputs_has_no_tags_and_is_not_held() -> None:
    p = pipeline([], job("a"))
    out = evaluate(p, SITES, policies(required_tags=["residency"]))["a"]
    assert out.tags == {}
    assert out.held == ()
    assert out.allowed == ALL
