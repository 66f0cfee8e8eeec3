"""Evaluate a policy set against a pipeline and the sites it may run on.

The filter step of placement: for every job, which sites are eligible, why each other site is
not (the rules that rejected it, each with a hint), the soft-preference penalty of each eligible
site, and whether the job is held. Pure: no I/O, and the same inputs give the same result
whatever the order of the rules.

Semantics (hard before soft, as in ``docs/policies.md``):

* held: a job depending on a dataset of unknown location or lacking a required tag has no
  eligible site, whatever the rules say;
* forbid: a matching forbid rejects the sites it names; nothing overrides it;
* require: a matching require rejects every site outside its sites; several matching requires
  leave the intersection;
* prefer: never rejects; adds its penalty (USD) to each eligible site outside its sites, summed
  over matching prefer rules;
* a job no rule matches may run on any site.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from placer.models import Job, Pipeline, ResolvedSite
from placer.policy._lineage import JobLineage, pipeline_lineage
from placer.policy._model import EFFECTS, LocationSet, Match, PolicySet, Rule, pattern_matches
from placer.tags import canonical

_EFFECT_RANK = {e: i for i, e in enumerate(EFFECTS)}


@dataclass(frozen=True)
class RuleHit:
    """One rule rejecting one site for one job."""

    rule: str
    effect: str
    message: str
    hint: str
    """What would make the site eligible."""


@dataclass(frozen=True)
class JobEligibility:
    """Where one job may run, and why not elsewhere.

    ``allowed`` keeps the order of the sites given to :func:`evaluate`. ``held`` non-empty means
    nothing is allowed; ``rejected`` and ``penalties`` then still show what the rules would say
    once the hold is lifted (from the tags known so far). ``tag_sources`` says, per tag key and
    value, which datasets it was inherited from (evidence for explanations).
    """

    job: str
    allowed: tuple[str, ...]
    rejected: Mapping[str, tuple[RuleHit, ...]] = field(default_factory=dict)
    penalties: Mapping[str, float] = field(default_factory=dict)
    held: tuple[str, ...] = ()
    tags: Mapping[str, frozenset[str]] = field(default_factory=dict)
    matched_rules: tuple[str, ...] = ()
    tag_sources: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)

    @property
    def is_held(self) -> bool:
        return bool(self.held)


def _fold(values: Mapping[str, frozenset[str] | str]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for k, v in values.items():
        vals = {v} if isinstance(v, str) else set(v)
        out.setdefault(canonical(k), set()).update(canonical(x) for x in vals)
    return {k: frozenset(v) for k, v in out.items()}


def _values_match(wanted: Sequence[str], have: frozenset[str] | None) -> bool:
    if have is None:
        return False
    return any(w == "*" or canonical(w) in have for w in wanted)


def _why(match: Match, job: Job, lineage: JobLineage) -> str:
    """Why a rule's match applies to a job, in words (used in hints)."""
    parts = []
    for key, wanted in sorted(match.tags.items()):
        for tkey, values in sorted(lineage.sources.items()):
            if canonical(tkey) != canonical(key):
                continue
            for value, origin in sorted(values.items()):
                if _values_match(wanted, frozenset({canonical(value)})):
                    names = ", ".join(repr(d) for d in sorted(origin))
                    parts.append(f"it carries {tkey}={value} (from dataset {names})")
    for key, wanted in sorted(match.labels.items()):
        for lkey, value in sorted(job.labels.items()):
            if canonical(lkey) == canonical(key) and _values_match(
                wanted, frozenset({canonical(value)})
            ):
                parts.append(f"it has label {lkey}={value}")
    if match.jobs:
        parts.append(f"its name matches {', '.join(repr(g) for g in match.jobs)}")
    return "; ".join(parts) if parts else "the rule applies to every job"


def _describe(rule: Rule) -> str:
    return ", ".join(f"location set {s!r}" if ":" not in s else s for s in rule.sites)


class _Compiled:
    """A policy set prepared for one list of sites: each rule's site set as names."""

    def __init__(self, policies: PolicySet, sites: Sequence[ResolvedSite]) -> None:
        self.policies = policies
        self.sites = sites
        self.members: dict[str, frozenset[str]] = {
            r.id: frozenset(s.name for s in sites if self._in(r, s, policies.locations))
            for r in policies.rules
        }
        # Evaluation order is fixed by (effect, id), never by file or rule order.
        self.rules = sorted(policies.rules, key=lambda r: (_EFFECT_RANK[r.effect], r.id))

    @staticmethod
    def _in(rule: Rule, site: ResolvedSite, sets: Mapping[str, LocationSet]) -> bool:
        for ref in rule.sites:
            if ":" in ref:
                if pattern_matches(ref, site):
                    return True
            elif sets[ref].contains(site):
                return True
        return False


def _matches(match: Match, job: Job, tags: dict[str, frozenset[str]]) -> bool:
    labels = _fold(job.labels)
    return (
        all(_values_match(v, tags.get(canonical(k))) for k, v in match.tags.items())
        and all(_values_match(v, labels.get(canonical(k))) for k, v in match.labels.items())
        and (not match.jobs or any(fnmatchcase(job.name, g) for g in match.jobs))
    )


def _hit(rule: Rule, site: str, compiled: _Compiled, why: str) -> RuleHit:
    where = _describe(rule)
    if rule.effect == "forbid":
        hint = (
            f"{site} is among the sites this rule forbids ({where}) and a forbid cannot be "
            f"overridden; it applies because {why}. Run the job on a site outside {where}"
            + (", or remove the input that brings the tag." if rule.match.tags else ".")
        )
    else:
        inside = [s.name for s in compiled.sites if s.name in compiled.members[rule.id]]
        examples = f" (of the given sites: {', '.join(inside)})" if inside else " (none given)"
        hint = f"run it on a site in {where}{examples}; the rule applies because {why}"
    return RuleHit(rule=rule.id, effect=rule.effect, message=rule.message, hint=hint)


def evaluate(
    pipeline: Pipeline, sites: Sequence[ResolvedSite], policies: PolicySet
) -> dict[str, JobEligibility]:
    """Eligibility of every job of ``pipeline`` (declaration order) on ``sites``.

    Raises:
        ValueError: if two of ``sites`` share a name (a caller's bug, not a user's input).
    """
    names = [s.name for s in sites]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"site names must be unique, got duplicates: {', '.join(dupes)}")
    compiled = _Compiled(policies, sites)
    lineage = pipeline_lineage(pipeline, policies.required_tags)
    out: dict[str, JobEligibility] = {}
    for job in pipeline.jobs:
        info = lineage[job.name]
        folded = _fold(info.tags)
        matched = [r for r in compiled.rules if _matches(r.match, job, folded)]
        why = {r.id: _why(r.match, job, info) for r in matched}
        rejected: dict[str, tuple[RuleHit, ...]] = {}
        penalties: dict[str, float] = {}
        for site in sites:
            hits = []
            for rule in matched:
                inside = site.name in compiled.members[rule.id]
                if (rule.effect == "forbid" and inside) or (
                    rule.effect == "require" and not inside
                ):
                    hits.append(_hit(rule, site.name, compiled, why[rule.id]))
            if hits:
                rejected[site.name] = tuple(hits)
                continue
            penalty = sum(
                r.penalty or 0.0
                for r in matched
                if r.effect == "prefer" and site.name not in compiled.members[r.id]
            )
            if penalty > 0:
                penalties[site.name] = penalty
        allowed = () if info.held else tuple(n for n in names if n not in rejected)
        out[job.name] = JobEligibility(
            job=job.name,
            allowed=allowed,
            rejected=rejected,
            penalties=penalties if allowed else {},
            held=info.held,
            tags=info.tags,
            matched_rules=tuple(sorted(r.id for r in matched)),
            tag_sources=info.sources,
        )
    return out
