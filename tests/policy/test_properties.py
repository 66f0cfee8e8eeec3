"""Properties on random pipelines, sites and rules (hypothesis).

* Order never matters: shuffling rules and splitting them across files gives the same
  eligibility and the same hash.
* Soundness and completeness against a brute-force reference written independently of the
  evaluator: an allowed site is hit by no matching forbid and lies in every matching require;
  every other site is rejected by one of them; held jobs get nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placer.models import Dataset, Job, Pipeline, ResolvedSite
from placer.policy import PolicyFile, PolicySet, evaluate, merge, pattern_matches, policy_hash
from placer.yamlio import SourceMap
from tests.policy.policy_builders import SITES, site

POOL = (*SITES, site("gpu-a", "onprem:muc", "DE"), site("gpu-b", "azure:westeurope", "NL"))
LOCATIONS: dict[str, Any] = {
    "eea": {"include": ["jurisdiction:EEA", "aws:eu-*"], "exclude": ["country:GB", "country:CH"]},
    "us": ["country:US"],
}
PATTERNS = (
    "aws:eu-*",
    "aws:*",
    "onprem:*",
    "gcp:europe-*",
    "jurisdiction:EU",
    "jurisdiction:EEA",
    "country:US",
    "country:DE",
    "site:gpu-*",
    "site:aws-*",
    "provider:azure",
    "eea",
    "us",
)
TAGS = {"residency": ("EU", "US", "eu"), "classification": ("pii", "public")}
KEYS = st.sampled_from(sorted(TAGS))

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def pipelines(draw: st.DrawFn) -> Pipeline:
    datasets = []
    for i in range(draw(st.integers(0, 4))):
        tags = {k: draw(st.sampled_from(TAGS[k])) for k in draw(st.sets(KEYS))}
        location = draw(st.sampled_from(["aws:eu-central-1", "gcp:us-central1", None]))
        datasets.append(Dataset(name=f"d{i}", location=location, tags=tags))
    jobs: list[Job] = []
    for i in range(draw(st.integers(1, 6))):
        names = [d.name for d in datasets] + [f"j{k}.out" for k in range(i)]
        inputs = draw(st.lists(st.sampled_from(names), unique=True, max_size=3)) if names else []
        earlier = [f"j{k}" for k in range(i)]
        after = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2)) if earlier else []
        labels = draw(st.sampled_from([{}, {"team": "ml"}, {"team": "web"}]))
        jobs.append(
            Job(
                name=f"j{i}",
                command="x",
                gpu_types={"A100": 1},
                inputs=tuple(inputs),
                after=tuple(after),
                labels=labels,
                outputs={"out": 1.0},
            )
        )
    return Pipeline(name="p", datasets=tuple(datasets), jobs=tuple(jobs))


@st.composite
def rules(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(0, 8))):
        effect = draw(st.sampled_from(["forbid", "require", "prefer"]))
        match: dict[str, Any] = {}
        if draw(st.integers(0, 2)) == 0:
            key = draw(KEYS)
            match["tags"] = {
                key: draw(
                    st.one_of(
                        st.sampled_from([*TAGS[key], "*"]),
                        st.lists(st.sampled_from(TAGS[key]), min_size=1, max_size=2),
                    )
                )
            }
        if draw(st.integers(0, 4)) == 0:
            match["labels"] = {"team": draw(st.sampled_from(["ml", "web", "*"]))}
        if draw(st.integers(0, 4)) == 0:
            match["jobs"] = [draw(st.sampled_from(["j0", "j1*", "j[2-4]", "*"]))]
        r: dict[str, Any] = {
            "id": f"r{i}",
            "effect": effect,
            "match": match,
            "sites": draw(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3, unique=True)),
            "message": f"rule {i}",
        }
        if effect == "prefer":
            r["penalty"] = draw(st.sampled_from([1, 2.5, 10, 0.1]))
        out.append(r)
    return out


def site_lists() -> st.SearchStrategy[list[ResolvedSite]]:
    return st.lists(st.sampled_from(POOL), unique_by=lambda s: s.name, max_size=len(POOL))


def _policy(rule_dicts: Sequence[Mapping[str, Any]], required: Sequence[str]) -> PolicySet:
    return PolicySet.model_validate(
        {"rules": list(rule_dicts), "locations": LOCATIONS, "required_tags": list(required)}
    )


def _files(
    rule_dicts: Sequence[Mapping[str, Any]], required: Sequence[str], cuts: Sequence[int]
) -> PolicySet:
    """Split the rules into files at ``cuts``, as :func:`load_policies` would merge them."""
    bounds = [0, *sorted(c % (len(rule_dicts) + 1) for c in cuts), len(rule_dicts)]
    docs = []
    for n, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        doc = {
            "apiVersion": "placer/v1",
            "kind": "PolicySet",
            "name": f"f{n}",
            "rules": list(rule_dicts[lo:hi]),
            "locations": LOCATIONS if n == len(bounds) - 2 else {},
            "required_tags": list(required) if n == 0 else [],
        }
        docs.append((PolicyFile.model_validate(doc), SourceMap(f"f{(7 * n) % 11}.yaml")))
    return merge(docs)


@SETTINGS
@given(
    p=pipelines(),
    sites=site_lists(),
    rule_dicts=rules(),
    required=st.lists(KEYS, unique=True),
    data=st.data(),
)
def test_rule_order_and_file_split_never_change_a_decision(
    p: Pipeline,
    sites: list[ResolvedSite],
    rule_dicts: list[dict[str, Any]],
    required: list[str],
    data: st.DataObject,
) -> None:
    reference = evaluate(p, sites, _policy(rule_dicts, required))
    shuffled = data.draw(st.permutations(rule_dicts))
    cuts = data.draw(st.lists(st.integers(0, 10), max_size=3))
    split = _files(shuffled, required, cuts)
    assert evaluate(p, sites, _policy(shuffled, required)) == reference
    assert evaluate(p, sites, split) == reference
    assert policy_hash(split) == policy_hash(_policy(rule_dicts, required))


# -- an independent reference ------------------------------------------------------------------


def _ref_tags(p: Pipeline, name: str) -> tuple[dict[str, set[str]], bool]:
    """(tags, held) of a job by plain recursion over its data inputs."""
    datasets = {d.name: d for d in p.datasets}
    tags: dict[str, set[str]] = {}
    held = False
    for ref in p.job(name).inputs:
        if ref in datasets:
            d = datasets[ref]
            for k, v in d.tags.items():
                tags.setdefault(k, set()).add(v)
            held |= d.location is None or any(k not in d.tags for k in _REQUIRED)
        else:
            up, up_held = _ref_tags(p, ref.split(".")[0])
            for k, vs in up.items():
                tags.setdefault(k, set()).update(vs)
            held |= up_held
    return tags, held


_REQUIRED: list[str] = []


def _ref_values(wanted: Sequence[str], have: set[str]) -> bool:
    return bool(have) and (
        "*" in wanted or bool({w.lower() for w in wanted} & {h.lower() for h in have})
    )


def _ref_match(r: Mapping[str, Any], job: Job, tags: dict[str, set[str]]) -> bool:
    m = r["match"]
    for key, wanted in m.get("tags", {}).items():
        if not _ref_values([wanted] if isinstance(wanted, str) else wanted, tags.get(key, set())):
            return False
    for key, wanted in m.get("labels", {}).items():
        have = {job.labels[key]} if key in job.labels else set()
        if not _ref_values([wanted] if isinstance(wanted, str) else wanted, have):
            return False
    return not m.get("jobs") or any(fnmatchcase(job.name, g) for g in m["jobs"])


def _ref_in(r: Mapping[str, Any], s: ResolvedSite, ps: PolicySet) -> bool:
    return any(
        ps.locations[x].contains(s) if ":" not in x else pattern_matches(x, s) for x in r["sites"]
    )


@SETTINGS
@given(p=pipelines(), sites=site_lists(), rule_dicts=rules(), required=st.lists(KEYS, unique=True))
def test_allowed_sites_break_no_matching_hard_rule_and_others_say_why(
    p: Pipeline, sites: list[ResolvedSite], rule_dicts: list[dict[str, Any]], required: list[str]
) -> None:
    ps = _policy(rule_dicts, required)
    _REQUIRED[:] = required
    out = evaluate(p, sites, ps)
    assert list(out) == [j.name for j in p.jobs]
    for job in p.jobs:
        e = out[job.name]
        tags, held = _ref_tags(p, job.name)
        assert e.tags == {k: frozenset(v) for k, v in tags.items()}
        assert bool(e.held) == held
        matched = [r for r in rule_dicts if _ref_match(r, job, tags)]
        assert e.matched_rules == tuple(sorted(r["id"] for r in matched))
        ok = [
            s.name
            for s in sites
            if not any(r["effect"] == "forbid" and _ref_in(r, s, ps) for r in matched)
            and all(_ref_in(r, s, ps) for r in matched if r["effect"] == "require")
        ]
        assert e.allowed == (() if held else tuple(ok))
        assert set(e.rejected) == {s.name for s in sites} - set(ok)
        for _name, hits in e.rejected.items():
            assert hits
            assert all(h.effect in ("forbid", "require") for h in hits)
        if not held:
            for s in sites:
                if s.name not in ok:
                    continue
                penalty = sum(
                    float(r["penalty"])
                    for r in matched
                    if r["effect"] == "prefer" and not _ref_in(r, s, ps)
                )
                assert abs(e.penalties.get(s.name, 0.0) - penalty) < 1e-9
