"""The complete policy language: allow and default deny, limits and budgets, audit and warn modes,
exceptions, layers, tagging rules, approved transforms and data at rest (issue 11)."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest
import yaml

import placer
from placer.errors import PolicyError
from placer.models import Dataset, Inventory, Job, Location
from placer.policy import evaluate, load_policies, policy_hash
from tests.policy.policy_builders import (
    ALL,
    SITES,
    ds,
    job,
    pipeline,
    write,
)

TODAY = date(2026, 12, 6)


def load(tmp_path: Path, *docs: dict, names: tuple[str, ...] = ()) -> placer.PolicySet:
    paths = []
    for i, doc in enumerate(docs):
        name = names[i] if i < len(names) else f"p{i}.yaml"
        body = {"apiVersion": "placer/v1", "kind": "PolicySet", "name": f"p{i}", **doc}
        paths.append(write(tmp_path, name, yaml.safe_dump(body, sort_keys=False)))
    return load_policies(*paths)


def r(rid: str, effect: str, sites: object = "provider:aws", match: dict | None = None,
      **kw: object) -> dict:
    out = {"id": rid, "effect": effect, "match": match or {}, "sites": sites,
           "message": f"message of {rid}", **kw}
    if effect == "prefer":
        out.setdefault("penalty", 10)
    return out


EU = {"tags": {"residency": "EU"}}
EU_PIPE = pipeline([ds("d", residency="EU")], job("train", "d"))


def decide(ps: placer.PolicySet, pipe: placer.Pipeline = EU_PIPE, job_name: str = "train",
           today: date = TODAY, **kw: object) -> placer.policy.JobEligibility:
    return evaluate(pipe, SITES, ps, today=today, **kw)[job_name]  # type: ignore[arg-type]


# -- allow and defaults --------------------------------------------------------------------------

def test_default_deny_admits_only_what_an_allow_names(tmp_path: Path) -> None:
    ps = load(tmp_path, {"defaults": {"decision": "deny"},
                         "rules": [r("eu-ok", "allow", "jurisdiction:EEA", EU)]})
    e = decide(ps)
    assert e.allowed == ("fra-dc", "aws-fra", "gcp-nl", "az-no")
    assert {h.rule for h in e.rejected["aws-va"]} == {"default-deny"}
    assert e.allowed_by == dict.fromkeys(e.allowed, ("eu-ok",))


def test_an_allow_never_overrides_a_forbid(tmp_path: Path) -> None:
    ps = load(tmp_path, {"defaults": {"decision": "deny"},
                         "rules": [r("all-ok", "allow", "provider:*"),
                                   r("no-aws", "forbid", "provider:aws", EU)]})
    e = decide(ps)
    assert "aws-fra" not in e.allowed and "fra-dc" in e.allowed
    assert [h.rule for h in e.rejected["aws-fra"]] == ["no-aws"]


def test_an_allow_does_not_match_through_a_look_alike(tmp_path: Path) -> None:
    """Allows widen: a Cyrillic 'ЕU' is caught by forbids but never allowed as EU."""
    ps = load(tmp_path, {"defaults": {"decision": "deny"},
                         "rules": [r("eu-ok", "allow", "jurisdiction:EEA", EU)]})
    look_alike = pipeline([ds("d", residency="ЕU")], job("train", "d"))
    assert decide(ps, look_alike).allowed == ()


def test_under_default_allow_an_allow_changes_nothing(tmp_path: Path) -> None:
    ps = load(tmp_path, {"rules": [r("eu-ok", "allow", "jurisdiction:EEA", EU)]})
    assert decide(ps).allowed == ALL


# -- modes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["audit", "warn"])
def test_audit_and_warn_never_block_and_always_record(tmp_path: Path, mode: str) -> None:
    ps = load(tmp_path, {"rules": [r("no-us", "forbid", "country:US", EU, mode=mode)]})
    e = decide(ps)
    assert e.allowed == ALL
    assert {s: [h.rule for h in hits] for s, hits in e.audit.items()} == {
        "nyc-dc": ["no-us"], "gcp-iowa": ["no-us"], "aws-va": ["no-us"]}
    assert {h.mode for hits in e.audit.values() for h in hits} == {mode}
    inv = Inventory.model_validate({"sites": {
        "fra": {"location": "onprem:fra-dc1", "country": "DE",
                "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 3}]},
        "nyc": {"location": "onprem:nyc-dc1", "country": "US",
                "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}]}}})
    p = pipeline([Dataset(name="d", location="onprem:fra-dc1", tags={"residency": "EU"})],
                 Job(name="train", command="x", gpu_types={"A100-80GB": 1}, inputs=("d",)))
    plan = placer.plan(p, inv, ps, today=TODAY)
    assert plan.jobs["train"].site == "nyc"  # not blocked
    assert plan.verdicts["train"]["nyc"].audit == (f"no-us ({mode})",)
    assert bool(plan.warnings) == (mode == "warn")


# -- exceptions ----------------------------------------------------------------------------------

def _waiver(**kw: object) -> dict:
    return {"id": "exc-1", "waives": ["no-us"], "match": {"jobs": "train"},
            "expires": "2026-12-31", "ticket": "SEC-42", "approved_by": "dpo@example.org",
            "reason": "one-off migration", **kw}


def test_an_exception_waives_a_rule_for_matching_jobs_until_it_expires(tmp_path: Path) -> None:
    ps = load(tmp_path, {"rules": [r("no-us", "forbid", "country:US", EU)],
                         "exceptions": [_waiver(sites=["site:aws-va"])]})
    e = decide(ps)
    assert "aws-va" in e.allowed and "nyc-dc" not in e.allowed
    [w] = e.waived["aws-va"]
    assert (w.rule, w.exception, w.ticket, w.approved_by) == ("no-us", "exc-1", "SEC-42",
                                                               "dpo@example.org")
    after = decide(ps, today=date(2027, 1, 1))
    assert "aws-va" not in after.allowed and not after.waived
    assert after.expired == ("exception 'exc-1' (ticket SEC-42) expired on 2026-12-31 and is "
                             "ignored",)


def test_an_exception_matches_strictly(tmp_path: Path) -> None:
    ps = load(tmp_path, {"rules": [r("no-us", "forbid", "country:US", EU)],
                         "exceptions": [_waiver(match={"tags": {"residency": "EU"}})]})
    assert "aws-va" in decide(ps).allowed
    look_alike = pipeline([ds("d", residency="ЕU")], job("train", "d"))
    assert "aws-va" not in decide(ps, look_alike).allowed


def test_a_rule_marked_not_waivable_cannot_be_waived(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load(tmp_path, {"rules": [r("no-us", "forbid", "country:US", EU, waivable=False)],
                        "exceptions": [_waiver()]})
    [d] = info.value.details
    assert d.msg == "rule 'no-us' is marked waivable: false; no exception may waive it " \
                    "('exc-1' tries)"
    assert (d.line, d.field) == (16, "exceptions[0].waives[0]")


def test_an_exception_must_name_known_rules_and_carry_its_approval(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="waives unknown rule 'nope'"):
        load(tmp_path, {"rules": [r("no-us", "forbid", "country:US", EU)],
                        "exceptions": [_waiver(waives=["nope"])]})
    for missing in ("expires", "ticket", "approved_by"):
        w = _waiver()
        del w[missing]
        with pytest.raises(PolicyError, match=f"exceptions\\[0\\].{missing}: Field required"):
            load(tmp_path, {"rules": [r("no-us", "forbid", "country:US", EU)],
                            "exceptions": [w]})


# -- layers --------------------------------------------------------------------------------------

def test_a_team_set_narrows_and_never_widens(tmp_path: Path) -> None:
    org = {"defaults": {"decision": "deny"},
           "rules": [r("org-eea", "allow", "jurisdiction:EEA"),
                     r("org-no-gcp", "forbid", "provider:gcp", EU)]}
    team = {"layer": "team", "defaults": {"decision": "deny"},
            "rules": [r("team-all", "allow", "provider:*"),
                      r("team-onprem", "require", "provider:onprem", EU)]}
    ps = load(tmp_path, org, team)
    e = decide(ps)
    assert e.allowed == ("fra-dc",)  # EEA (org) ∩ on-prem (team); team-all adds nothing
    assert "default-deny" in {h.rule for h in e.rejected["aws-va"]}


def test_a_team_exception_cannot_waive_the_organisations_rule(tmp_path: Path) -> None:
    org = {"rules": [r("no-us", "forbid", "country:US", EU)]}
    team = {"layer": "team", "exceptions": [_waiver()]}
    with pytest.raises(PolicyError, match="a team's exception may waive only team rules"):
        load(tmp_path, org, team)


_DEID_TRANSFORM = {"id": "deid-v3", "match": {"images": "registry.example/deid@sha256:*"},
                   "removes": {"classification": "pii"}, "message": "reviewed"}
_PII_ONPREM = r("pii-onprem", "require", "provider:onprem", {"tags": {"classification": "pii"}})


def test_a_team_transform_never_removes_a_tag_the_organisation_matches(tmp_path: Path) -> None:
    org = {"rules": [_PII_ONPREM]}
    team = {"layer": "team", "transforms": [_DEID_TRANSFORM],
            "rules": [r("team-no-gcp", "forbid", "provider:gcp")]}
    p = _deid_pipeline("registry.example/deid@sha256:ab12")
    e = evaluate(p, SITES, load(tmp_path, org, team), today=TODAY)["finetune"]
    assert e.allowed == ("fra-dc", "nyc-dc")  # the organisation still sees pii
    assert e.removed == ("classification=pii removed by job 'deid', approved by transform "
                         "'deid-v3' (for the team layer's rules only)",)
    # The same transform in the organisation's file does remove it.
    e = evaluate(p, SITES, load(tmp_path, {**org, "transforms": [_DEID_TRANSFORM]}),
                 today=TODAY)["finetune"]
    assert e.allowed == ALL


def test_a_team_tagging_rule_never_lifts_an_organisation_hold(tmp_path: Path) -> None:
    tagging = [{"id": "clinical-public", "match": {"uri": "s3://clinical-*/**"},
                "tags": {"classification": "public"}}]
    org = {"required_tags": ["classification"]}
    p = pipeline([_clinical()], job("train", "notes"))
    e = decide(load(tmp_path, org, {"layer": "team", "tagging": tagging,
                                    "rules": [r("t", "prefer", "provider:onprem")]}), p)
    assert e.allowed == () and e.held[0].startswith("missing-required-tag: dataset 'notes'")
    # A team's own required tag is met by the team's own tagging rule.
    e = decide(load(tmp_path, {}, {"layer": "team", "tagging": tagging,
                                   "required_tags": ["classification"]}), p)
    assert e.held == () and e.allowed == ALL
    assert e.derived == ("dataset 'notes': classification=public derived by tagging rule "
                         "'clinical-public' (for the team layer's rules only)",)


def test_a_team_tagging_rule_never_satisfies_an_organisation_allow(tmp_path: Path) -> None:
    org = {"defaults": {"decision": "deny"},
           "rules": [r("eu-in-eea", "allow", "jurisdiction:EEA", EU),
                     r("onprem", "allow", "provider:onprem")]}
    team = {"layer": "team", "tagging": [{"id": "clinical-eu", "tags": {"residency": "EU"},
                                          "match": {"uri": "s3://clinical-*/**"}}]}
    e = decide(load(tmp_path, org, team), pipeline([_clinical()], job("train", "notes")))
    assert e.allowed == ("fra-dc", "nyc-dc")


def test_a_lookalike_key_is_its_own_tag_for_what_widens_whatever_the_input_order(
        tmp_path: Path) -> None:
    ps = load(tmp_path, {"defaults": {"decision": "deny"},
                         "rules": [r("eu-allow", "allow", "jurisdiction:EEA", EU),
                                   r("us-allow", "allow", "provider:onprem",
                                     {"tags": {"residency": "US"}}),
                                   r("no-eu-in-us", "forbid", "country:US", EU)]})
    a = ds("a", "onprem:fra-dc1", residency="US")
    b = Dataset(name="b", location="onprem:fra-dc1", tags={"r\u0435sidency": "EU"}, size=1)
    for inputs in (("a", "b"), ("b", "a")):
        e = decide(ps, pipeline([a, b], job("train", *inputs)))
        # us-allow matches strictly; eu-allow does not (a look-alike key); the forbid catches
        # the look-alike (nyc-dc is in the US).
        assert e.allowed == ("fra-dc",), inputs
        assert e.allowed_by == {"fra-dc": ("us-allow",)}


def test_the_hash_sorts_every_list_inside_exceptions_tagging_and_transforms(
        tmp_path: Path) -> None:
    def doc(order: int) -> dict:
        pick = (lambda xs: list(xs)) if order == 0 else (lambda xs: list(reversed(xs)))
        return {
            "rules": [r("no-us", "forbid", "country:US", EU), r("no-ch", "forbid", "country:CH",
                                                                 EU)],
            "exceptions": [_waiver(waives=pick(["no-us", "no-ch"]),
                                   sites=pick(["site:aws-va", "site:nyc-dc"]))],
            "tagging": [{"id": "t", "tags": {"region": "eea"},
                         "match": {"locations": pick(["jurisdiction:EEA", "country:CH"])}}],
            "transforms": [{**_DEID_TRANSFORM, "removes": {"classification": pick(["pii",
                                                                                   "phi"])}}],
        }
    assert policy_hash(load(tmp_path, doc(0), names=("a.yaml",))) == policy_hash(
        load(tmp_path, doc(1), names=("b.yaml",)))


def test_two_files_of_one_layer_may_not_disagree_on_defaults(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="defaults differ from those of the same layer"):
        load(tmp_path, {"defaults": {"decision": "deny"}}, {"defaults": {"decision": "allow"}})


# -- tagging rules -------------------------------------------------------------------------------

def _clinical(**kw: object) -> Dataset:
    spec = {"name": "notes", "uri": "s3://clinical-eu/notes/2026/", "location": "onprem:fra-dc1",
            **kw}
    return Dataset.model_validate(spec)


def test_tagging_rules_derive_tags_that_rules_then_match(tmp_path: Path) -> None:
    ps = load(tmp_path, {
        "tagging": [
            {"id": "clinical-is-phi", "match": {"uri": "s3://clinical-*/**"},
             "tags": {"class": "phi"}},
            {"id": "store-says-eu", "match": {"storage_tags": {"residency": "eu"}},
             "tags": {"residency": "EU"}},
            {"id": "in-the-eea", "match": {"locations": "jurisdiction:EEA"},
             "tags": {"region": "eea"}}],
        "rules": [r("phi-onprem", "require", "provider:onprem", {"tags": {"class": "phi"}})]})
    p = pipeline([_clinical(storage_tags={"Residency": "EU"})], job("train", "notes"))
    e = decide(ps, p)
    assert e.allowed == ("fra-dc", "nyc-dc")
    assert e.tags == {"class": frozenset({"phi"}), "residency": frozenset({"EU"}),
                      "region": frozenset({"eea"})}
    assert e.derived == (
        "dataset 'notes': class=phi derived by tagging rule 'clinical-is-phi'",
        "dataset 'notes': region=eea derived by tagging rule 'in-the-eea'",
        "dataset 'notes': residency=EU derived by tagging rule 'store-says-eu'",
    )
    # '*' stays within a segment: s3://clinical-eu alone is not under clinical-*/**
    other = pipeline([_clinical(uri="s3://other/clinical-eu/x")], job("train", "notes"))
    assert "class" not in decide(ps, other).tags


def test_a_location_tag_needs_every_copy_there(tmp_path: Path) -> None:
    ps = load(tmp_path, {"tagging": [{"id": "eea", "match": {"locations": "jurisdiction:EEA"},
                                      "tags": {"region": "eea"}}]})
    copies = pipeline([_clinical(replicas=["aws:us-east-1"])], job("train", "notes"))
    us = {"aws:us-east-1": Location(provider="aws", region="us-east-1", country="US")}
    assert "region" not in decide(ps, copies, locations=us).tags


def test_written_and_derived_tags_unite_a_pipeline_cannot_weaken(tmp_path: Path) -> None:
    ps = load(tmp_path, {
        "tagging": [{"id": "clinical-is-phi", "match": {"uri": "s3://clinical-*/**"},
                     "tags": {"class": "phi"}}],
        "rules": [r("phi-onprem", "require", "provider:onprem", {"tags": {"class": "phi"}})]})
    p = pipeline([_clinical(tags={"class": "public"})], job("train", "notes"))
    e = decide(ps, p)
    assert e.tags["class"] == frozenset({"public", "phi"})
    assert e.allowed == ("fra-dc", "nyc-dc")


# -- approved transforms (declassification) ------------------------------------------------------

def _deid_pipeline(image: str) -> placer.Pipeline:
    return pipeline(
        [ds("notes", "onprem:fra-dc1", classification="pii", residency="EU")],
        Job(name="deid", command="python deid.py", image=image, gpu_types={"A100": 1},
            inputs=("notes",), outputs={"clean": 1}, removes_tags={"classification": ["pii"]}),
        job("finetune", "deid.clean"))


def test_a_removal_counts_only_where_a_transform_approves_it(tmp_path: Path) -> None:
    ps = load(tmp_path, {
        "transforms": [{"id": "deid-v3", "match": {"images": "registry.example/deid@sha256:*"},
                        "removes": {"classification": "pii"},
                        "message": "reviewed by the DPO, 2026-10"}],
        "rules": [r("pii-onprem", "require", "provider:onprem",
                    {"tags": {"classification": "pii"}})]})
    approved = evaluate(_deid_pipeline("registry.example/deid@sha256:ab12"), SITES, ps,
                        today=TODAY)
    assert approved["deid"].allowed == ("fra-dc", "nyc-dc")  # it reads pii itself
    assert approved["finetune"].tags == {"residency": frozenset({"EU"})}
    assert approved["finetune"].allowed == ALL
    why = ("classification=pii removed by job 'deid', approved by transform 'deid-v3'",)
    assert approved["deid"].removed == approved["finetune"].removed == why
    other = evaluate(_deid_pipeline("docker.io/someone/deid:latest"), SITES, ps, today=TODAY)
    assert other["finetune"].tags["classification"] == frozenset({"pii"})
    assert other["finetune"].allowed == ("fra-dc", "nyc-dc")
    assert "no transform of the policies approves it" in other["deid"].ignored[0]


def test_a_transform_must_name_images_or_commands(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="a job name alone is not an approval"):
        load(tmp_path, {"transforms": [{"id": "t", "match": {"jobs": "deid"},
                                        "removes": {"classification": "pii"},
                                        "message": "m"}]})


# -- data at rest --------------------------------------------------------------------------------

def test_a_copy_where_the_data_may_not_be_holds_every_reader(tmp_path: Path) -> None:
    ps = load(tmp_path, {"rules": [r("eu-in-eea", "require", "jurisdiction:EEA", EU)]})
    p = pipeline([ds("d", "aws:eu-central-1", residency="EU").model_copy(
        update={"replicas": ("aws:us-east-1",)})], job("train", "d"), job("eval", "train.out"))
    us = {"aws:us-east-1": Location(provider="aws", region="us-east-1", country="US")}
    out = evaluate(p, SITES, ps, today=TODAY, locations=us)
    for name in ("train", "eval"):
        assert out[name].allowed == ()
        assert out[name].held[0].startswith("data-at-rest: dataset 'd' has a copy at "
                                            "aws:us-east-1, where rule 'eu-in-eea'")


# -- limits and budgets --------------------------------------------------------------------------

INV = Inventory.model_validate({"sites": {
    "fra": {"location": "onprem:fra-dc1", "country": "DE",
            "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 9}]},
    "aws-va": {"location": "aws:us-east-1"}}})
PUBLIC = pipeline([Dataset(name="d", location="onprem:fra-dc1", tags={"residency": "none"})],
                  Job(name="train", command="x", gpu_types={"A100-80GB": 10},
                      resources={"gpus": 8}, inputs=("d",), labels={"team": "nlp"}))


def test_a_per_job_cap_removes_options_and_says_so(tmp_path: Path) -> None:
    ps = load(tmp_path, {"rules": [r("cap", "limit", "provider:aws", max_usd_per_job=50)]})
    plan = placer.plan(PUBLIC, INV, ps, today=TODAY)
    assert plan.status == "placed" and plan.jobs["train"].site == "fra"
    assert plan.evidence["train"].limits[0].startswith("limit 'cap': ")


def test_a_hold_cap_with_no_option_left_holds_the_job(tmp_path: Path) -> None:
    ps = load(tmp_path, {"rules": [r("cap", "limit", "provider:*", max_usd_per_hour=1,
                                     on_excess="hold")]})
    plan = placer.plan(PUBLIC, INV, ps, today=TODAY)
    assert plan.status == "held"
    assert plan.reasons[0].startswith("train: held by limit 'cap': every option left costs "
                                      "more than its cap")


@pytest.mark.parametrize(("on_excess", "status"), [("hold", "held"), ("deny", "infeasible")])
def test_a_budget_counts_what_the_period_already_spent(tmp_path: Path, on_excess: str,
                                                       status: str) -> None:
    ps = load(tmp_path, {"rules": [r("team-budget", "limit", "provider:*", on_excess=on_excess,
                                     budget={"usd": 1000, "period": "month",
                                             "per_label": "team"})]})
    first = placer.plan(PUBLIC, INV, ps, today=TODAY)
    assert first.status == "placed"
    key = "team-budget[team=nlp]@2026-12-01"
    assert first.budget_charges == {key: pytest.approx(first.cost_usd)}
    second = placer.plan(PUBLIC, INV, ps, today=TODAY, spent={key: 920.0})
    assert second.status == status
    assert second.reasons[0].startswith(f"budget {key}: $920.00 of $1,000.00 used this month "
                                        "(92%), and this plan needs")
    # A new month, a new budget.
    assert placer.plan(PUBLIC, INV, ps, today=date(2027, 1, 2),
                       spent={key: 920.0}).status == "placed"


def test_limit_fields_belong_to_limit_rules(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="max_usd_per_job applies to limit rules only"):
        load(tmp_path, {"rules": [r("f", "forbid", "provider:aws", max_usd_per_job=5)]})
    with pytest.raises(PolicyError, match="a limit rule needs max_usd_per_job"):
        load(tmp_path, {"rules": [r("l", "limit", "provider:aws")]})


# -- order, files, hash --------------------------------------------------------------------------

def test_order_and_files_never_change_a_decision_or_the_hash(tmp_path: Path) -> None:
    rules = [r("no-us", "forbid", "country:US", EU),
             r("eea", "allow", "jurisdiction:EEA", EU),
             r("onprem", "prefer", "provider:onprem", penalty=5),
             r("cap", "limit", "provider:aws", max_usd_per_job=50),
             r("watch", "require", "provider:onprem", EU, mode="audit")]
    extra = {"defaults": {"decision": "deny"},
             "tagging": [{"id": "tg", "match": {"uri": "s3://x/**"}, "tags": {"k": "v"}}],
             "exceptions": [_waiver(waives=["no-us"])]}
    rng = random.Random(7)
    seen = set()
    for n in range(6):
        shuffled = rules[:]
        rng.shuffle(shuffled)
        cut = rng.randrange(1, len(shuffled))
        d = tmp_path / f"try{n}"
        d.mkdir()
        ps = load(d, {**extra, "rules": shuffled[:cut]}, {"rules": shuffled[cut:]})
        e = decide(ps)
        seen.add((policy_hash(ps), e.allowed, tuple(sorted(e.audit)), tuple(sorted(e.waived))))
    assert len(seen) == 1


LEGACY = """\
apiVersion: placer/v1
kind: PolicySet
name: legacy
required_tags: [residency]
locations:
  eea: {include: ["jurisdiction:EEA"], exclude: ["country:GB"]}
rules:
  - id: eu-in-eea
    effect: require
    match: {tags: {residency: EU}}
    sites: eea
    message: EU data stays in the EEA.
  - id: prefer-onprem
    effect: prefer
    match: {}
    sites: ["onprem:*"]
    penalty: $25
    message: Our GPUs are paid for.
"""


def test_a_policy_written_before_the_new_fields_keeps_its_hash(tmp_path: Path) -> None:
    """Recorded plans stay attributable: the hash placer 0.1 (before issue 11) gave this file."""
    ps = load_policies(write(tmp_path, "legacy.yaml", LEGACY))
    assert policy_hash(ps) == \
        "sha256:399cbfb6faf671e73ab4dc815b0caf76dd1ec26497e0ad23161f00728bb4b003"
    explicit = LEGACY.replace("    message: EU data", "    mode: enforce\n    waivable: true\n"
                              "    message: EU data")
    assert policy_hash(load_policies(write(tmp_path, "explicit.yaml", explicit))) == \
        policy_hash(ps)
