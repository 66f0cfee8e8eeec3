"""Evaluate a policy set against a pipeline and the sites it may run on.

The filter step of placement: for every job, which sites are eligible, why each other site is
not (the rules that rejected it, each with a hint), the soft-preference penalty of each eligible
site, the limits that will cap its cost, and whether the job is held. Pure: no I/O, and the same
inputs (the day ``today`` included) give the same result whatever the order of rules and files.

Semantics (hard before soft, as in ``docs/policies.md``), per layer (organisation, team):

* held: a job depending on a dataset of unknown location, lacking a required tag, or with a
  copy where its own tags may not be (data at rest) has no eligible site, whatever the rules say;
* forbid: a matching forbid rejects the sites it names; nothing but an unexpired exception for
  that job waives it, and a rule marked ``waivable: false`` cannot be waived;
* require: a matching require rejects every site outside its sites; several matching requires
  leave the intersection;
* allow: where the layer's ``defaults.decision`` is ``deny``, a site is eligible only if a
  matching allow names it; an allow never overrides a forbid or a require;
* limit: never rejects here; matching limits are listed per site for the scheduler, which caps
  cost (it alone knows prices);
* prefer: adds its penalty (USD) to each eligible site outside its sites;
* rules in ``audit`` or ``warn`` mode decide nothing: what they would have rejected is recorded;
* a site is eligible when every layer admits it: a team set narrows, never widens.

Matching: forbid, require, limit and prefer compare tags in :func:`placer.tags.canonical` form
(look-alike letters folded, so a look-alike is caught); what widens (allow, exceptions) compares
in :func:`placer.tags.strict` form, so a look-alike is never waived through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase

from placer.models import Dataset, Job, Location, Pipeline, ResolvedSite
from placer.policy._lineage import JobLineage, dataset_tags, pipeline_lineage
from placer.policy._model import (
    EFFECTS,
    Layer,
    LocationSet,
    Match,
    PolicySet,
    Rule,
    Waiver,
    pattern_matches,
)
from placer.tags import canonical, strict

_EFFECT_RANK = {e: i for i, e in enumerate(EFFECTS)}

HELD_DATA_AT_REST = "data-at-rest"
"""A dataset the job depends on has a copy where its own tags may not be."""
DEFAULT_DENY = "default-deny"
"""Pseudo rule id: a layer whose default is deny admits a site only through an allow."""


@dataclass(frozen=True)
class RuleHit:
    """One rule rejecting (or, in audit/warn mode, would-reject) one site for one job."""

    rule: str
    effect: str
    message: str
    hint: str
    """What would make the site eligible."""
    mode: str = "enforce"


@dataclass(frozen=True)
class WaivedHit:
    """A rule that would reject a site, waived for this job by an unexpired exception."""

    rule: str
    exception: str
    ticket: str
    approved_by: str
    expires: date


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
    audit: Mapping[str, tuple[RuleHit, ...]] = field(default_factory=dict)
    """Site → what audit- and warn-mode rules would have rejected it for."""
    waived: Mapping[str, tuple[WaivedHit, ...]] = field(default_factory=dict)
    """Site → rules that would reject it, waived by an exception."""
    allowed_by: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Site → the allow rules that admit it (where a layer's default is deny)."""
    limits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Site → the limit rules that cap the job's cost there (applied by the scheduler)."""
    derived: tuple[str, ...] = ()
    """Tags derived by tagging rules for datasets in the job's lineage."""
    removed: tuple[str, ...] = ()
    """Tags the job removed, with the transform that approved each."""
    ignored: tuple[str, ...] = ()
    """Tag removals the job declared that no transform approves."""
    expired: tuple[str, ...] = ()
    """Exceptions that would match the job but have expired (ignored)."""

    @property
    def is_held(self) -> bool:
        return bool(self.held)


# -- matching ----------------------------------------------------------------------------------

Fold = Callable[[str], str]


def _fold(values: Mapping[str, frozenset[str] | str], fold: Fold = canonical
          ) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for k, v in values.items():
        vals = {v} if isinstance(v, str) else set(v)
        out.setdefault(fold(k), set()).update(fold(x) for x in vals)
    return {k: frozenset(v) for k, v in out.items()}


def _values_match(wanted: Sequence[str], have: frozenset[str] | None,
                  fold: Fold = canonical) -> bool:
    if have is None:
        return False
    return any(w == "*" or fold(w) in have for w in wanted)


def _matches(match: Match, job: Job, tags: Mapping[str, frozenset[str]],
             fold: Fold = canonical) -> bool:
    """Whether a rule's (or exception's) match applies; ``tags`` are already folded by ``fold``."""
    labels = _fold(job.labels, fold)
    return (
        all(_values_match(v, tags.get(fold(k)), fold) for k, v in match.tags.items())
        and all(_values_match(v, labels.get(fold(k)), fold) for k, v in match.labels.items())
        and (not match.jobs or any(fnmatchcase(job.name, g) for g in match.jobs))
        and (not match.images or (job.image is not None
                                  and any(fnmatchcase(job.image, g) for g in match.images)))
        and (not match.commands or any(fnmatchcase(job.command, g) for g in match.commands))
    )


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
    if match.images:
        parts.append(f"its image matches {', '.join(repr(g) for g in match.images)}")
    if match.commands:
        parts.append(f"its command matches {', '.join(repr(g) for g in match.commands)}")
    return "; ".join(parts) if parts else "the rule applies to every job"


def _describe(sites: Sequence[str]) -> str:
    return ", ".join(f"location set {s!r}" if ":" not in s else s for s in sites)


def _in(refs: Sequence[str], site: ResolvedSite, sets: Mapping[str, LocationSet]) -> bool:
    for ref in refs:
        if ":" in ref:
            if pattern_matches(ref, site):
                return True
        elif sets[ref].contains(site):
            return True
    return False


class _Compiled:
    """A policy set prepared for one list of sites: each rule's site set as names."""

    def __init__(self, policies: PolicySet, sites: Sequence[ResolvedSite]) -> None:
        self.policies = policies
        self.sites = sites
        sets = policies.locations
        self.members: dict[str, frozenset[str]] = {
            r.id: frozenset(s.name for s in sites if _in(r.sites, s, sets))
            for r in policies.rules
        }
        self.waiver_sites: dict[str, frozenset[str] | None] = {
            w.id: (frozenset(s.name for s in sites if _in(w.sites, s, sets)) if w.sites
                   else None)
            for w in policies.exceptions
        }
        # Evaluation order is fixed by (effect, id), never by file or rule order.
        ordered = sorted(policies.rules, key=lambda r: (_EFFECT_RANK[r.effect], r.id))
        self.layers: tuple[Layer, ...] = tuple(
            sorted({policies.layer(r.id) for r in policies.rules} | set(policies.defaults)
                   | set(policies.required_by_layer) | {"organisation"}))
        self.rules: dict[Layer, list[Rule]] = {
            layer: [r for r in ordered if policies.layer(r.id) == layer] for layer in self.layers}


def _hit(rule: Rule, site: str, compiled: _Compiled, why: str) -> RuleHit:
    where = _describe(rule.sites)
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
    return RuleHit(rule=rule.id, effect=rule.effect, message=rule.message, hint=hint,
                   mode=rule.mode)


def _waiver_covers(sites: frozenset[str] | None, site: str) -> bool:
    """An exception with no ``sites`` covers every site of the rules it waives."""
    return sites is None or site in sites


def _default_deny(layer: Layer, site: str) -> RuleHit:
    return RuleHit(
        rule=DEFAULT_DENY, effect="allow",
        message=f"the {layer} policies deny by default: a site is eligible only where an allow "
        "rule names it",
        hint=f"no allow rule of the {layer} layer that matches this job names {site}")


# -- data at rest --------------------------------------------------------------------------------


def _data_rules(policies: PolicySet) -> list[Rule]:
    """Rules about data: enforced forbids and requires that match on tags alone."""
    return [r for r in policies.rules
            if r.effect in ("forbid", "require") and r.mode == "enforce" and r.match.tags
            and not (r.match.labels or r.match.jobs or r.match.images or r.match.commands)]


def _at_rest_holds(d: Dataset, tags: Mapping[str, frozenset[str]], rules: Sequence[Rule],
                   policies: PolicySet, places: Mapping[str, ResolvedSite]) -> list[str]:
    """A copy of ``d`` where a data rule matching its own tags does not let it be."""
    folded = _fold(tags)
    out: list[str] = []
    matching = [r for r in rules if all(_values_match(v, folded.get(canonical(k)))
                                        for k, v in r.match.tags.items())]
    if not matching:
        return out
    for loc in d.replicas:  # the primary location is judged where the job runs and reads
        place = places.get(loc)
        if place is None:
            out.append(f"{HELD_DATA_AT_REST}: dataset {d.name!r} has a copy at {loc}, a location "
                       "placer cannot judge; resolve it before anything that reads it is placed")
            continue
        for r in matching:
            inside = _in(r.sites, place, policies.locations)
            if (r.effect == "forbid" and inside) or (r.effect == "require" and not inside):
                out.append(f"{HELD_DATA_AT_REST}: dataset {d.name!r} has a copy at {loc}, where "
                           f"rule {r.id!r} does not let its data be ({r.message.strip()}); a "
                           "dataset is only as resident as its most distant copy")
    return out


def places_for(sites: Sequence[ResolvedSite], locations: Mapping[str, Location] | None = None
              ) -> dict[str, ResolvedSite]:
    """Location key → a site-shaped stand-in, to judge data at a location by site patterns."""
    # A site's own entry first: data at a site's location is judged with its labels (classes).
    out: dict[str, ResolvedSite] = {}
    for s in sites:
        out.setdefault(s.location.key, s)
    for key, loc in (locations or {}).items():
        out.setdefault(key, ResolvedSite(name=f"@{key}", kind="onprem" if loc.provider ==
                                         "onprem" else "cloud", location=loc))
    return out


# -- evaluation ----------------------------------------------------------------------------------


def _exceptions_for(job: Job, lineage: JobLineage, policies: PolicySet, today: date
                    ) -> tuple[list[Waiver], list[str]]:
    """Unexpired exceptions whose match applies (strictly); and the expired ones that would."""
    strict_tags = _fold(lineage.tags, strict)
    live, expired = [], []
    for w in policies.exceptions:
        if not _matches(w.match, job, strict_tags, strict):
            continue
        if w.expires < today:
            expired.append(f"exception {w.id!r} (ticket {w.ticket}) expired on {w.expires} and "
                           "is ignored")
        else:
            live.append(w)
    return live, expired


_SCOPE: dict[Layer, tuple[Layer, ...]] = {
    "organisation": ("organisation",), "team": ("organisation", "team")}
"""The layers whose data (tagging rules, transforms, required tags) each layer judges with."""


@dataclass(frozen=True)
class _View:
    """What one layer knows of the data: its lineage and its data-at-rest holds."""

    lineage: Mapping[str, JobLineage]
    at_rest: Mapping[str, list[str]]


def _views(pipeline: Pipeline, policies: PolicySet, layers: Sequence[Layer],
           places: Mapping[str, ResolvedSite]) -> dict[Layer, _View]:
    """Each layer's view of the data, from the tagging rules and transforms of its scope.

    A layer judges with the data it and the layers above it declare: a team's tagging rule or
    transform never reaches the organisation's rules, so a team file cannot lift an
    organisation hold, satisfy an organisation allow or remove a tag an organisation rule
    matches (a team narrows, never widens). Layers that see the same data share one view.
    """
    out: dict[Layer, _View] = {}
    cache: dict[tuple[object, ...], _View] = {}
    data_rules = _data_rules(policies)
    for layer in layers:
        scope = _SCOPE.get(layer, (layer,))
        tagging = tuple(t for t in policies.tagging if policies.layer(t.id) in scope)
        transforms = tuple(t for t in policies.transforms if policies.layer(t.id) in scope)
        required = policies.required_tags_of(layer)
        rules = [r for r in data_rules if policies.layer(r.id) == layer]
        key = (tuple(t.id for t in tagging), tuple(t.id for t in transforms), required,
               tuple(r.id for r in rules))
        if key not in cache:
            at_rest: dict[str, list[str]] = {}
            for d in pipeline.datasets:
                if d.replicas and rules:
                    tags, _ = dataset_tags(d, tagging, places)
                    at_rest[d.name] = _at_rest_holds(d, tags, rules, policies, places)
            cache[key] = _View(
                pipeline_lineage(pipeline, required, tagging=tagging, transforms=transforms,
                                 places=places),
                at_rest)
        out[layer] = cache[key]
    return out


def evaluate(
    pipeline: Pipeline, sites: Sequence[ResolvedSite], policies: PolicySet, *,
    today: date | None = None, locations: Mapping[str, Location] | None = None,
) -> dict[str, JobEligibility]:
    """Eligibility of every job of ``pipeline`` (declaration order) on ``sites``.

    Args:
        today: the day exceptions are judged on (their ``expires``); today in UTC when omitted.
        locations: where data may be that is not a site's location (cloud regions of dataset
            copies), so tagging rules and data-at-rest checks can judge it.

    Raises:
        TypeError: if ``sites`` are not resolved sites (an inventory's ``Site`` entries, or
            its ``sites`` mapping, are: ``placer.catalog.resolve_inventory`` makes them).
        ValueError: if two of ``sites`` share a name (a caller's bug, not a user's input).
    """
    wrong = next((s for s in sites if not isinstance(s, ResolvedSite)), None)
    if wrong is not None:
        raise TypeError(
            f"evaluate() takes resolved sites, got {type(wrong).__name__} {wrong!r:.60}; "
            "pass resolve_inventory(inventory) (from placer.catalog), not inventory.sites")
    names = [s.name for s in sites]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"site names must be unique, got duplicates: {', '.join(dupes)}")
    day = today or datetime.now(UTC).date()
    compiled = _Compiled(policies, sites)
    views = _views(pipeline, policies, compiled.layers, places_for(sites, locations))
    out: dict[str, JobEligibility] = {}
    for job in pipeline.jobs:
        out[job.name] = _job(job, pipeline, views, compiled, day)
    return out


def _reads(job: str, lineage: Mapping[str, JobLineage]) -> set[str]:
    """Datasets in the job's lineage (those its tags came from)."""
    return {d for values in lineage[job].sources.values() for ds in values.values() for d in ds}


def _union(first: Mapping[str, Mapping[str, frozenset[str]]],
           *more: Mapping[str, Mapping[str, frozenset[str]]]
           ) -> dict[str, dict[str, frozenset[str]]]:
    out = {k: dict(v) for k, v in first.items()}
    for other in more:
        for key, values in other.items():
            slot = out.setdefault(key, {})
            for value, origin in values.items():
                slot[value] = slot.get(value, frozenset()) | origin
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def _evidence(views: Mapping[Layer, _View], job: str, part: str) -> tuple[str, ...]:
    """Evidence of every layer's view; what only a team's data gives says so."""
    org = getattr(views["organisation"].lineage[job], part) if "organisation" in views else ()
    out = list(org)
    for layer, view in views.items():
        for line in getattr(view.lineage[job], part):
            if line not in org:
                text = f"{line} (for the {layer} layer's rules only)"
                if text not in out:
                    out.append(text)
    return tuple(out)


def _job(job: Job, pipeline: Pipeline, views: Mapping[Layer, _View], compiled: _Compiled,
         today: date) -> JobEligibility:
    policies, sites = compiled.policies, compiled.sites
    held: set[str] = set()
    expired: list[str] = []
    for view in views.values():
        info = view.lineage[job.name]
        held.update(info.held)
        upstream = {ref.dataset for ref in pipeline.inputs_of(job) if ref.dataset} | _reads(
            job.name, view.lineage)
        for d in sorted(upstream):
            held.update(view.at_rest.get(d, ()))
    matched: list[Rule] = []
    rejected: dict[str, list[RuleHit]] = {}
    audit: dict[str, list[RuleHit]] = {}
    waived: dict[str, list[WaivedHit]] = {}
    allowed_by: dict[str, tuple[str, ...]] = {}
    limits: dict[str, tuple[str, ...]] = {}
    penalties: dict[str, float] = {}
    for layer in compiled.layers:
        info = views[layer].lineage[job.name]
        folded = _fold(info.tags)
        strict_tags = _fold(info.tags, strict)
        waivers, gone = _exceptions_for(job, info, policies, today)
        expired += [g for g in gone if g not in expired]
        rules = [r for r in compiled.rules[layer] if _matches(r.match, job, folded)]
        # Allows widen: they match strictly, never through a look-alike.
        allows = [r for r in rules if r.effect == "allow" and r.mode == "enforce"
                  and _matches(r.match, job, strict_tags, strict)]
        matched += rules
        why = {r.id: _why(r.match, job, info) for r in rules}
        deny = policies.defaults_of(layer).decision == "deny"
        for site in sites:
            for rule in rules:
                inside = site.name in compiled.members[rule.id]
                if not ((rule.effect == "forbid" and inside)
                        or (rule.effect == "require" and not inside)):
                    continue
                hit = _hit(rule, site.name, compiled, why[rule.id])
                if rule.mode != "enforce":
                    audit.setdefault(site.name, []).append(hit)
                    continue
                w = next((w for w in waivers if rule.id in w.waives and rule.waivable
                          and _waiver_covers(compiled.waiver_sites[w.id], site.name)), None)
                if w is not None:
                    waived.setdefault(site.name, []).append(WaivedHit(
                        rule.id, w.id, w.ticket, w.approved_by, w.expires))
                    continue
                rejected.setdefault(site.name, []).append(hit)
            if deny:
                admitting = tuple(r.id for r in allows if site.name in compiled.members[r.id])
                if admitting:
                    allowed_by[site.name] = allowed_by.get(site.name, ()) + admitting
                else:
                    rejected.setdefault(site.name, []).append(_default_deny(layer, site.name))
            caps = tuple(r.id for r in rules if r.effect == "limit" and r.mode == "enforce"
                         and site.name in compiled.members[r.id])
            if caps:
                limits[site.name] = limits.get(site.name, ()) + caps
            penalty = sum(r.penalty or 0.0 for r in rules
                          if r.effect == "prefer" and r.mode == "enforce"
                          and site.name not in compiled.members[r.id])
            if penalty > 0:
                penalties[site.name] = penalties.get(site.name, 0.0) + penalty
    sources = _union(*(v.lineage[job.name].sources for v in views.values()))
    allowed = () if held else tuple(s.name for s in sites if s.name not in rejected)
    return JobEligibility(
        job=job.name,
        allowed=allowed,
        rejected={k: tuple(v) for k, v in rejected.items()},
        penalties={k: v for k, v in penalties.items() if k in allowed},
        held=tuple(sorted(held)),
        tags={k: frozenset(v) for k, v in sources.items()},
        matched_rules=tuple(sorted({r.id for r in matched})),
        tag_sources=sources,
        audit={k: tuple(v) for k, v in audit.items()},
        waived={k: tuple(v) for k, v in waived.items()},
        allowed_by={k: v for k, v in allowed_by.items() if k in allowed},
        limits={k: v for k, v in limits.items() if k in allowed},
        derived=_evidence(views, job.name, "derived"),
        removed=_evidence(views, job.name, "removed"),
        ignored=_evidence(views, job.name, "ignored"),
        expired=tuple(expired),
    )
