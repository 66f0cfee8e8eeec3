"""``placer policy lint``: what loads but cannot do what it says, judged against an inventory."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from placer.catalog import resolve_inventory
from placer.models import Inventory, ResolvedSite
from placer.policy import Finding, data_classes, lint_policies, load_policies
from tests.policy.policy_builders import write

TODAY = date(2026, 12, 6)
HEADER = "apiVersion: placer/v1\nkind: PolicySet\nname: p\n"
SITES: list[ResolvedSite] = resolve_inventory(Inventory.model_validate({"name": "inv", "sites": {
    "fra": {"location": "onprem:fra-dc1", "country": "DE", "labels": {"class": "self-hosted"},
            "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}]},
    "nyc": {"location": "onprem:nyc-dc1", "country": "US",
            "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}]},
    "aws-fra": {"location": "aws:eu-central-1"},
    "aws-va": {"location": "aws:us-east-1"}}}))


def lint(tmp_path: Path, body: str, sites: list[ResolvedSite] = SITES) -> list[Finding]:
    path = write(tmp_path, "p.yaml", HEADER + body)
    return lint_policies(load_policies(path), sites, today=TODAY, inventory_name="inv")


def codes(found: list[Finding]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(f.level, f.code, f.rules) for f in found]


def test_a_clean_policy_has_no_findings(tmp_path: Path) -> None:
    assert lint(tmp_path, """
rules:
  - {id: eu, effect: require, match: {tags: {residency: EU}}, sites: ["jurisdiction:EEA"],
     message: m}
  - {id: pii, effect: require, match: {tags: {class: pii}}, sites: ["class:self-hosted"],
     message: m}
""") == []


def test_a_place_no_site_has_is_an_error_as_plan_would_say(tmp_path: Path) -> None:
    stranded, f = lint(tmp_path, """
rules:
  - {id: gpu, effect: require, match: {tags: {class: x}}, sites: ["class:gpu-farm"],
     message: m}
""")
    assert stranded.code == "stranded-data"  # and so data tagged class=x has nowhere to go
    assert (f.level, f.code, f.line, f.field) == ("error", "unknown-reference", 6,
                                                  "rules[0].sites[0]")
    assert f.message.startswith("no site of the inventory is in class 'gpu-farm' (classes: "
                                "self-hosted)")


def test_rules_that_match_no_site_anywhere_warn(tmp_path: Path) -> None:
    found = lint(tmp_path, """
declared_locations: ["aws:eu-south-9", "class:gpu-farm"]
rules:
  - {id: f, effect: forbid, match: {}, sites: ["aws:eu-south-9"], message: m}
  - {id: p, effect: prefer, match: {}, sites: ["class:gpu-farm"], penalty: 5, message: m}
  - {id: l, effect: limit, match: {}, sites: ["aws:eu-south-9"], max_usd_per_job: 5,
     message: m}
""")
    assert codes(found) == [("warning", "matches-no-site", ("f",)),
                            ("warning", "matches-no-site", ("p",)),
                            ("warning", "matches-no-site", ("l",))]
    assert found[0].message == (
        "forbid rule 'f' names no site of the inventory and no catalog region (aws:eu-south-9): "
        "it forbids nothing")
    assert str(found[0]).startswith(f"{tmp_path / 'p.yaml'}:7: rules[0]: warning: "
                                    "[matches-no-site] ")


def test_a_prefer_for_every_site_and_an_allow_under_default_allow_do_nothing(
        tmp_path: Path) -> None:
    found = lint(tmp_path, """
rules:
  - {id: p, effect: prefer, match: {}, sites: ["provider:*"], penalty: 5, message: m}
  - {id: a, effect: allow, match: {}, sites: ["provider:aws"], message: m}
""")
    assert codes(found) == [("warning", "prefer-everywhere", ("p",)),
                            ("warning", "allow-no-effect", ("a",))]
    deny = lint(tmp_path, """
defaults: {decision: deny}
rules:
  - {id: a, effect: allow, match: {}, sites: ["provider:*"], message: m}
""")
    assert deny == []


def test_a_forbid_another_rule_already_covers_is_shadowed(tmp_path: Path) -> None:
    body = """
rules:
  - {id: eu-in-eea, effect: require, match: {tags: {residency: EU}},
     sites: ["jurisdiction:EEA"], message: m}
  - {id: eu-not-us, effect: forbid, match: {tags: {residency: EU, class: pii}},
     sites: ["country:US"], message: m}
"""
    [f] = lint(tmp_path, body)
    assert (f.level, f.code, f.rules) == ("warning", "shadowed", ("eu-not-us", "eu-in-eea"))
    assert f.message.startswith("forbid rule 'eu-not-us' is shadowed by require rule "
                                "'eu-in-eea': every job")
    # Not when the require can be waived, nor when it applies to fewer jobs.
    waived = body + """exceptions:
  - {id: e, waives: [eu-in-eea], match: {jobs: [x]}, expires: 2027-01-01, ticket: T,
     approved_by: a, reason: r}
"""
    assert lint(tmp_path, waived) == []
    narrower = body.replace("match: {tags: {residency: EU}}",
                            "match: {tags: {residency: EU}, labels: {team: a}}")
    assert lint(tmp_path, narrower) == []


def test_shadowing_is_judged_on_every_site_there_could_be_not_only_the_inventory(
        tmp_path: Path) -> None:
    """No self-hosted site of this inventory is outside the EEA, but one could be."""
    assert lint(tmp_path, """
rules:
  - {id: own, effect: require, match: {tags: {s: eu}}, sites: ["class:self-hosted"],
     message: m}
  - {id: eea, effect: require, match: {tags: {s: eu}}, sites: ["jurisdiction:EEA"],
     message: m}
""") == []


def test_requires_no_site_satisfies_together_are_an_error(tmp_path: Path) -> None:
    found = lint(tmp_path, """
rules:
  - {id: eu, effect: require, match: {tags: {residency: EU}}, sites: ["jurisdiction:EEA"],
     message: m}
  - {id: pii-us, effect: require, match: {tags: {class: pii}}, sites: ["country:US"],
     message: m}
""")
    assert codes(found) == [("error", "empty-intersection", ("eu", "pii-us"))]
    assert found[0].message == (
        "requires 'eu' (jurisdiction:EEA) and 'pii-us' (country:US) can all apply to one job "
        "(carrying class=pii, residency=EU), and no site of inventory 'inv' is in all of them: "
        "such a job can run nowhere")


def test_requires_only_a_mix_of_values_meets_are_a_warning(tmp_path: Path) -> None:
    found = lint(tmp_path, """
rules:
  - {id: eu, effect: require, match: {tags: {residency: EU}}, sites: ["jurisdiction:EEA"],
     message: m}
  - {id: us, effect: require, match: {tags: {residency: US}}, sites: ["country:US"],
     message: m}
""")
    assert codes(found) == [("warning", "empty-intersection", ("eu", "us"))]
    assert "only a job that mixes these values" in found[0].message


@pytest.mark.parametrize(("a", "b"), [
    ("labels: {team: a}", "labels: {team: b}"),  # a job has one value per label
    ("jobs: [train]", "jobs: [eval-*]"),
    ("jobs: [train-*]", "jobs: [eval-*]"),
])
def test_requires_no_one_job_can_meet_together_are_not_reported(tmp_path: Path, a: str,
                                                                 b: str) -> None:
    body = f"""
rules:
  - {{id: a, effect: require, match: {{{a}}}, sites: ["jurisdiction:EEA"], message: m}}
  - {{id: b, effect: require, match: {{{b}}}, sites: ["country:US"], message: m}}
"""
    assert lint(tmp_path, body) == []
    both = body.replace(b, a)
    assert codes(lint(tmp_path, both)) == [("error", "empty-intersection", ("a", "b"))]


def test_a_data_class_no_site_may_run_is_an_error_with_its_rules(tmp_path: Path) -> None:
    found = lint(tmp_path, """
rules:
  - {id: no-cloud, effect: forbid, match: {tags: {class: secret}}, sites: ["provider:aws"],
     message: m}
  - {id: not-here, effect: forbid, match: {tags: {class: secret}},
     sites: ["provider:onprem"], message: m}
  - {id: eu, effect: require, match: {tags: {residency: EU}}, sites: ["jurisdiction:EEA"],
     message: m}
""")
    assert codes(found) == [("error", "stranded-data", ("no-cloud", "not-here"))]
    assert found[0].message == (
        "data tagged class=secret may run on no site of inventory 'inv': no-cloud rejects "
        "aws-fra, aws-va; not-here rejects fra, nyc")
    assert (found[0].line, found[0].field) == (6, "rules[0]")


def test_data_classes_are_the_tag_combinations_the_rules_tell_apart(tmp_path: Path) -> None:
    ps = load_policies(write(tmp_path, "p.yaml", HEADER + """
rules:
  - {id: a, effect: require, match: {tags: {r: [EU, eu]}}, sites: ["provider:*"], message: m}
  - {id: b, effect: forbid, match: {tags: {c: [pii, phi], r: "*"}}, sites: ["provider:aws"],
     message: m}
  - {id: p, effect: prefer, match: {tags: {x: y}}, sites: ["provider:*"], penalty: 1,
     message: m}
"""))
    assert data_classes(ps) == [{"c": "phi"}, {"c": "pii"}, {"r": "EU"}, {"c": "phi", "r": "EU"},
                                {"c": "pii", "r": "EU"}]


def test_an_expired_exception_warns(tmp_path: Path) -> None:
    [f] = lint(tmp_path, """
rules:
  - {id: r, effect: forbid, match: {}, sites: ["country:US"], message: m}
exceptions:
  - {id: old, waives: [r], match: {jobs: [x]}, expires: 2026-01-31, ticket: SEC-1,
     approved_by: a, reason: r}
""")
    assert (f.level, f.code, f.line) == ("warning", "expired-exception", 8)
    assert f.message.startswith("exception 'old' (ticket SEC-1) expired on 2026-01-31")


@pytest.mark.parametrize("mode", ["audit", "warn"])
def test_rules_that_decide_nothing_are_left_out_of_the_hard_checks(tmp_path: Path,
                                                                   mode: str) -> None:
    assert lint(tmp_path, f"""
rules:
  - {{id: eu, effect: require, match: {{tags: {{residency: EU}}}}, sites: ["jurisdiction:EEA"],
     message: m}}
  - {{id: us, effect: require, match: {{tags: {{class: pii}}}}, sites: ["country:US"],
     message: m, mode: {mode}}}
""") == []
