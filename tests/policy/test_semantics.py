"""The contract of docs/policies.md, one bullet at a time: forbid, require, prefer, no match."""

from __future__ import annotations

import pytest

from placer.policy import PolicySet, RuleHit, evaluate
from tests.policy.policy_builders import (
    ALL,
    AWS_FRA,
    AWS_LON,
    AWS_VA,
    FRA_DC,
    GCP_IOWA,
    NYC_DC,
    SITES,
    ds,
    job,
    pipeline,
    policies,
    rule,
    site,
)

EU = ds("eu", residency="EU", classification="pii")
ANY = ds("any", location="aws:us-east-1", residency="US", classification="public")
P = pipeline([EU, ANY], job("eu-job", "eu"), job("any-job", "any"))


def allowed(ps: PolicySet, name: str = "eu-job") -> tuple[str, ...]:
    return evaluate(P, SITES, ps)[name].allowed


def test_no_rules_every_site_is_allowed() -> None:
    out = evaluate(P, SITES, PolicySet())
    assert out["eu-job"].allowed == ALL
    assert out["eu-job"].rejected == {}
    assert out["eu-job"].matched_rules == ()
    assert out["eu-job"].penalties == {}


def test_a_job_no_rule_matches_may_run_anywhere() -> None:
    ps = policies(rule("r", "require", ["onprem:*"], {"tags": {"residency": "EU"}}))
    assert allowed(ps, "any-job") == ALL
    assert evaluate(P, SITES, ps)["any-job"].matched_rules == ()


def test_forbid_removes_the_sites_it_names() -> None:
    ps = policies(rule("no-us", "forbid", ["country:US"], {"tags": {"residency": "EU"}}))
    out = evaluate(P, SITES, ps)["eu-job"]
    assert out.allowed == ("fra-dc", "aws-fra", "aws-lon", "aws-zrh", "gcp-nl", "az-no")
    assert set(out.rejected) == {"nyc-dc", "gcp-iowa", "aws-va"}
    hit = out.rejected["aws-va"][0]
    assert (hit.rule, hit.effect, hit.message) == ("no-us", "forbid", "message of no-us")
    assert "country:US" in hit.hint
    assert "residency=EU (from dataset 'eu')" in hit.hint
    assert out.matched_rules == ("no-us",)


def test_require_keeps_only_its_sites() -> None:
    ps = policies(rule("eu", "require", ["jurisdiction:EU"], {"tags": {"residency": "EU"}}))
    out = evaluate(P, SITES, ps)["eu-job"]
    assert out.allowed == ("fra-dc", "aws-fra", "gcp-nl")
    assert out.rejected["az-no"] == (
        RuleHit(
            rule="eu",
            effect="require",
            message="message of eu",
            hint="run it on a site in jurisdiction:EU (of the given sites: fra-dc, aws-fra, "
            "gcp-nl); the rule applies because it carries residency=EU (from dataset 'eu')",
        ),
    )


def test_several_requires_intersect() -> None:
    ps = policies(
        rule("eu", "require", ["jurisdiction:EU"], {"tags": {"residency": "EU"}}),
        rule("pii", "require", ["onprem:*"], {"tags": {"classification": "pii"}}),
    )
    out = evaluate(P, SITES, ps)["eu-job"]
    assert out.allowed == ("fra-dc",)
    # A site outside both sets names both rules, hard effects first, then by id.
    assert [h.rule for h in out.rejected["aws-va"]] == ["eu", "pii"]
    assert [h.rule for h in out.rejected["nyc-dc"]] == ["eu"]
    assert [h.rule for h in out.rejected["aws-fra"]] == ["pii"]


def test_disjoint_requires_leave_nothing_and_say_why() -> None:
    ps = policies(
        rule("a", "require", ["country:DE"], {}),
        rule("b", "require", ["country:US"], {}),
    )
    out = evaluate(P, SITES, ps)["any-job"]
    assert out.allowed == ()
    assert out.held == ()
    assert set(out.rejected) == set(ALL)


def test_forbid_wins_over_require() -> None:
    ps = policies(
        rule("onprem", "require", ["onprem:*"], {}),
        rule("not-frankfurt", "forbid", ["site:fra-*"], {"tags": {"residency": "EU"}}),
    )
    out = evaluate(P, SITES, ps)
    assert out["eu-job"].allowed == ("nyc-dc",)
    assert [h.rule for h in out["eu-job"].rejected["fra-dc"]] == ["not-frankfurt"]
    assert out["any-job"].allowed == ("fra-dc", "nyc-dc")


def test_forbid_wins_over_prefer() -> None:
    ps = policies(
        rule("like-lon", "prefer", ["site:aws-lon"], {}, penalty=100),
        rule("no-gb", "forbid", ["country:GB"], {}),
    )
    out = evaluate(P, SITES, ps)["any-job"]
    assert "aws-lon" not in out.allowed
    assert "aws-lon" not in out.penalties


def test_prefer_is_soft_and_penalties_add_up() -> None:
    ps = policies(
        rule("onprem-first", "prefer", ["onprem:*"], {}, penalty="$25"),
        rule("eu-first", "prefer", ["jurisdiction:EU"], {"tags": {"residency": "EU"}}, penalty=10),
    )
    out = evaluate(P, SITES, ps)
    eu = out["eu-job"]
    assert eu.allowed == ALL
    assert eu.rejected == {}
    assert eu.penalties == {
        "nyc-dc": 10.0,
        "aws-fra": 25.0,
        "aws-lon": 35.0,
        "aws-zrh": 35.0,
        "gcp-nl": 25.0,
        "gcp-iowa": 35.0,
        "az-no": 35.0,
        "aws-va": 35.0,
    }
    assert "fra-dc" not in eu.penalties  # only > 0
    assert out["any-job"].penalties["aws-va"] == 25.0
    assert eu.matched_rules == ("eu-first", "onprem-first")


def test_match_keys_all_must_match() -> None:
    m = {"tags": {"residency": "EU"}, "labels": {"team": "ml"}, "jobs": ["eu-*"]}
    ps = policies(rule("r", "require", ["onprem:*"], m))
    p = pipeline(
        [EU],
        job("eu-a", "eu", labels={"team": "ml"}),
        job("eu-b", "eu", labels={"team": "web"}),
        job("other", "eu", labels={"team": "ml"}),
    )
    out = evaluate(p, SITES, ps)
    assert out["eu-a"].matched_rules == ("r",)
    assert out["eu-b"].matched_rules == ()
    assert out["other"].matched_rules == ()


@pytest.mark.parametrize(
    ("wanted", "matches"),
    [
        ("EU", True),
        ("eu", True),  # case-insensitive: a tag spelt differently cannot slip past
        (["US", "EU"], True),  # a list is any-of
        (["US", "CH"], False),
        ("*", True),  # key present
        ("US", False),
    ],
)
def test_tag_values(wanted: object, matches: bool) -> None:
    ps = policies(rule("r", "forbid", ["site:aws-va"], {"tags": {"residency": wanted}}))
    assert evaluate(P, SITES, ps)["eu-job"].matched_rules == (("r",) if matches else ())


def test_star_needs_the_key() -> None:
    ps = policies(rule("r", "forbid", ["site:aws-va"], {"tags": {"project": "*"}}))
    assert evaluate(P, SITES, ps)["eu-job"].matched_rules == ()


def test_site_patterns() -> None:
    def members(*patterns: str) -> tuple[str, ...]:
        ps = policies(rule("r", "require", list(patterns), {}))
        return evaluate(P, SITES, ps)["any-job"].allowed

    assert members("aws:eu-*") == ("aws-fra", "aws-lon", "aws-zrh")
    assert members("onprem:*") == ("fra-dc", "nyc-dc")
    assert members("jurisdiction:EEA") == ("fra-dc", "aws-fra", "gcp-nl", "az-no")
    assert members("jurisdiction:EU") == ("fra-dc", "aws-fra", "gcp-nl")
    assert members("country:US") == ("nyc-dc", "gcp-iowa", "aws-va")
    assert members("site:*-dc") == ("fra-dc", "nyc-dc")
    assert members("provider:gcp") == ("gcp-nl", "gcp-iowa")
    assert members("gcp:*", "site:nyc-dc") == ("nyc-dc", "gcp-nl", "gcp-iowa")


def test_location_set_include_minus_exclude_and_mixing_with_patterns() -> None:
    ps = policies(
        rule("r", "require", ["europe", "site:nyc-dc"], {}),
        locations={
            "europe": {
                "include": ["aws:eu-*", "onprem:*"],
                "exclude": ["country:US", "aws:eu-central-2"],
            }
        },
    )
    assert evaluate(P, SITES, ps)["any-job"].allowed == ("fra-dc", "nyc-dc", "aws-fra", "aws-lon")


def test_declared_extra_jurisdiction_counts() -> None:
    # An inventory may declare jurisdictions beyond the country's (e.g. a sovereign-cloud zone).
    special = site("special", "onprem:lab", "US", jurisdictions={"EEA"})
    ps = policies(rule("r", "require", ["jurisdiction:EEA"], {}))
    assert evaluate(P, (special, GCP_IOWA), ps)["any-job"].allowed == ("special",)


def test_allowed_keeps_the_given_site_order() -> None:
    order = (AWS_VA, FRA_DC, GCP_IOWA, AWS_LON, NYC_DC, AWS_FRA)
    ps = policies(rule("r", "forbid", ["country:GB"], {}))
    assert evaluate(P, order, ps)["any-job"].allowed == (
        "aws-va",
        "fra-dc",
        "gcp-iowa",
        "nyc-dc",
        "aws-fra",
    )


def test_duplicate_site_names_are_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="site names must be unique, got duplicates: fra-dc"):
        evaluate(P, (FRA_DC, FRA_DC), PolicySet())


def test_no_sites_means_nothing_allowed_and_no_error() -> None:
    out = evaluate(P, (), policies(rule("r", "require", ["onprem:*"], {})))
    assert out["any-job"].allowed == ()
    assert out["any-job"].rejected == {}


def test_evaluate_does_not_mutate_its_inputs() -> None:
    ps = policies(rule("r", "require", ["onprem:*"], {}))
    before = (P.model_dump(), ps.model_dump(), [s.model_dump() for s in SITES])
    evaluate(P, SITES, ps)
    assert before == (P.model_dump(), ps.model_dump(), [s.model_dump() for s in SITES])


def test_python_built_policy_set_checks_references() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown location set 'eea'"):
        policies(rule("r", "require", "eea", {}))
    with pytest.raises(ValidationError, match="duplicate rule id 'r'"):
        policies(rule("r", "require", "onprem:*", {}), rule("r", "forbid", "aws:*", {}))



def test_unresolved_sites_are_refused_with_the_fix() -> None:
    """The policies.md snippet once passed ``inventory.sites`` and got an AttributeError deep
    inside; the error now says what to pass (issue 14)."""
    from placer import load_inventory, load_pipeline

    inv = load_inventory("examples/quickstart/inventory.yaml")
    pipe = load_pipeline("examples/quickstart/pipeline.yaml")
    with pytest.raises(TypeError, match=r"resolve_inventory\(inventory\)"):
        evaluate(pipe, list(inv.sites), PolicySet())  # type: ignore[arg-type]
