"""Lineage: the tags a job carries, inherited along the DAG, and the holds that come with them.

A job's tags are the union (several values per key) of the tags of the datasets it reads and of
the tags of every job whose output it consumes (``inputs: [prep.features]``), transitively.
``after`` edges order jobs but move no data, so they carry no tags.

A job is held when it reads, directly or through lineage, a dataset whose location is unknown or
which lacks a tag the policies require: what cannot be classified is never placed.

A dataset's tags are those written in the pipeline united with those the policies' tagging rules
derive (:func:`dataset_tags`). A job may declare that it removes tags (a de-identifier); the
declaration counts only where a policy's transform approves the job (``_transform``), and the
lineage records which one did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache

from placer.models import Dataset, Job, Pipeline, ResolvedSite
from placer.policy._model import TaggingRule, Transform, pattern_matches
from placer.tags import canonical, strict

HELD_UNKNOWN_LOCATION = "unknown-location"
"""A dataset the job depends on has no known location."""
HELD_MISSING_TAG = "missing-required-tag"
"""A dataset the job depends on lacks a tag key listed in ``required_tags``."""

HELD_CODES: tuple[str, ...] = (HELD_UNKNOWN_LOCATION, HELD_MISSING_TAG)

# key -> value -> names of the datasets the value came from
TagSources = dict[str, dict[str, frozenset[str]]]


@dataclass(frozen=True)
class JobLineage:
    """What one job inherits: tags with the datasets they came from, and hold reasons."""

    sources: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    """The tags of what the job reads: what it processes, so what its own placement obeys."""
    held: tuple[str, ...] = ()
    passes: Mapping[str, Mapping[str, frozenset[str]]] | None = None
    """The tags of its outputs: ``sources`` minus approved removals (None: the same)."""
    derived: tuple[str, ...] = ()
    """Which tagging rule derived which tag of which dataset in the job's lineage."""
    removed: tuple[str, ...] = ()
    """Tags removed in this job's lineage (by it or upstream), each with the transform that
    approved it: why a job downstream of a de-identifier no longer carries a tag."""
    ignored: tuple[str, ...] = ()
    """Removals the job declared that no transform approves (the tags were kept)."""

    @property
    def tags(self) -> dict[str, frozenset[str]]:
        return {k: frozenset(v) for k, v in sorted(self.sources.items())}


def held_code(reason: str) -> str:
    """The named code a hold reason starts with (``unknown-location: dataset …``)."""
    return reason.split(":", 1)[0]


def _dataset_holds(d: Dataset, tags: Mapping[str, frozenset[str]], reader: str,
                   required_tags: Iterable[str]) -> list[str]:
    out = []
    if d.location is None:
        out.append(
            f"{HELD_UNKNOWN_LOCATION}: dataset {d.name!r} (read by job {reader!r}) has no known "
            "location; resolve where it is stored (location: provider:region) before it can "
            "be placed"
        )
    have = {canonical(k): v for k, v in tags.items()}
    missing = sorted(k for k in set(required_tags) if canonical(k) not in have)
    empty = sorted(k for k in set(required_tags)
                   if canonical(k) in have and not any(v for v in have[canonical(k)]))
    if empty:
        keys = ", ".join(repr(k) for k in empty)
        out.append(
            f"{HELD_MISSING_TAG}: dataset {d.name!r} (read by job {reader!r}) has an empty "
            f"value for the required tag{'s' if len(empty) > 1 else ''} {keys}; an empty "
            "classification is no classification, so nothing that reads it may be placed"
        )
    if missing:
        keys = ", ".join(repr(k) for k in missing)
        out.append(
            f"{HELD_MISSING_TAG}: dataset {d.name!r} (read by job {reader!r}) lacks the "
            f"required tag{'s' if len(missing) > 1 else ''} {keys}; its classification is "
            "unknown, so nothing that reads it may be placed until it is tagged"
        )
    return out


def _merge(into: TagSources, other: Mapping[str, Mapping[str, frozenset[str]]]) -> None:
    for key, values in other.items():
        # One slot per strict spelling: "Residency" and "residency" are one key, but a
        # look-alike ("r\u0435sidency") keeps its own slot, so what widens (matched strictly)
        # never sees its values under the key it imitates, whatever the order of the inputs.
        # What narrows folds the slots together again (canonical form).
        slot_key = next((k for k in into if strict(k) == strict(key)), key)
        slot = into.setdefault(slot_key, {})
        for value, origin in values.items():
            slot[value] = slot.get(value, frozenset()) | origin


_GLOB_PART = re.compile(r"\*\*|\*|\?|[^*?]+")


@lru_cache(maxsize=1024)
def uri_glob(pattern: str) -> re.Pattern[str]:
    """``s3://clinical-*/**``: ``*`` and ``?`` stay within a path segment, ``**`` crosses them.

    >>> bool(uri_glob("s3://clinical-*/**").match("s3://clinical-eu/notes/2024/a.parquet"))
    True
    >>> bool(uri_glob("s3://clinical-*").match("s3://clinical-eu/notes"))
    False
    """
    out = []
    for part in _GLOB_PART.findall(pattern):
        out.append(".*" if part == "**" else "[^/]*" if part == "*" else "[^/]" if part == "?"
                   else re.escape(part))
    return re.compile("".join(out) + r"\Z")


def _tagging_matches(rule: TaggingRule, d: Dataset,
                     places: Mapping[str, ResolvedSite]) -> bool:
    m = rule.match
    if m.uri and not (d.uri and any(uri_glob(g).match(d.uri) for g in m.uri)):
        return False
    if m.storage_tags:
        have: dict[str, set[str]] = {}
        for k, v in d.storage_tags.items():
            have.setdefault(canonical(k), set()).add(canonical(v))
        for key, wanted in m.storage_tags.items():
            values = have.get(canonical(key))
            if values is None or not any(w == "*" or canonical(w) in values for w in wanted):
                return False
    if m.locations:
        # Every copy must be in one of the places: as resident as the most distant copy.
        copies = d.copies
        if not copies:
            return False
        for loc in copies:
            place = places.get(loc)
            if place is None or not any(pattern_matches(p, place) for p in m.locations):
                return False
    return True


def dataset_tags(d: Dataset, tagging: Sequence[TaggingRule] = (),
                 places: Mapping[str, ResolvedSite] | None = None
                 ) -> tuple[dict[str, frozenset[str]], tuple[str, ...]]:
    """A dataset's tags: those written, united with those its policies' tagging rules derive.

    Per key the values are united, so a pipeline can add a value but never weaken a derived
    one. Returns the tags and the evidence (which rule derived what).
    """
    acc: TagSources = {k: {v: frozenset({d.name})} for k, v in d.tags.items()}
    evidence = []
    for rule in sorted(tagging, key=lambda r: r.id):
        if _tagging_matches(rule, d, places or {}):
            _merge(acc, {k: {v: frozenset({d.name})} for k, v in rule.tags.items()})
            pairs = ", ".join(f"{k}={v}" for k, v in sorted(rule.tags.items()))
            evidence.append(f"dataset {d.name!r}: {pairs} derived by tagging rule {rule.id!r}")
    return {k: frozenset(v) for k, v in acc.items()}, tuple(evidence)


def _approved(job: Job, transform: Transform) -> bool:
    m = transform.match
    return (
        (not m.images or (job.image is not None
                          and any(fnmatchcase(job.image, g) for g in m.images)))
        and (not m.commands or any(fnmatchcase(job.command, g) for g in m.commands))
        and (not m.jobs or any(fnmatchcase(job.name, g) for g in m.jobs))
    )


def _transform(job: Job, inherited: TagSources, transforms: Sequence[Transform]
               ) -> tuple[TagSources, list[str], list[str]]:
    """Tags a job passes on: what it inherits, minus what it removes where a transform approves.

    A declared removal counts only when a transform of the policies matches the job (by image
    or command, strictly) and lists that tag; otherwise the tag is kept and the decision says
    why. Returns the tags, what was removed (with the approving transform) and what was not.
    """
    out = {k: dict(v) for k, v in inherited.items()}
    removed: list[str] = []
    ignored: list[str] = []
    for key, values in sorted(job.removes_tags.items()):
        # Every slot the key names, look-alike spellings included: a removal an approved
        # transform lists takes the tag however its key is spelt (it only narrows what passes).
        slots = [k for k in out if canonical(k) == canonical(key)]
        for value in values:
            approver = next(
                (t for t in sorted(transforms, key=lambda t: t.id) if _approved(job, t)
                 and any(canonical(k) == canonical(key)
                         and any(w == "*" or canonical(w) == canonical(value) for w in ws)
                         for k, ws in t.removes.items())), None)
            if approver is None:
                ignored.append(
                    f"job {job.name!r} declares it removes {key}={value}, but no transform of "
                    "the policies approves it (by image or command): the tag is kept")
                continue
            for slot_key in slots:
                if slot_key not in out:
                    continue
                gone = [v for v in out[slot_key]
                        if value == "*" or canonical(v) == canonical(value)]
                for v in gone:
                    del out[slot_key][v]
                    removed.append(f"{slot_key}={v} removed by job {job.name!r}, approved by "
                                   f"transform {approver.id!r}")
                if not out[slot_key]:
                    del out[slot_key]
    return out, removed, ignored


def pipeline_lineage(
    pipeline: Pipeline, required_tags: Iterable[str] = (), *,
    tagging: Sequence[TaggingRule] = (), transforms: Sequence[Transform] = (),
    places: Mapping[str, ResolvedSite] | None = None,
) -> dict[str, JobLineage]:
    """Lineage of every job, in declaration order. Pure and deterministic.

    ``tagging`` rules add tags to datasets (``places`` resolves the location keys their
    ``locations`` patterns judge); ``transforms`` approve jobs' declared tag removals.
    """
    required = tuple(required_tags)
    tags_of: dict[str, tuple[dict[str, frozenset[str]], tuple[str, ...]]] = {
        d.name: dataset_tags(d, tagging, places) for d in pipeline.datasets}
    done: dict[str, JobLineage] = {}
    for name in pipeline.topological_order():
        job = pipeline.job(name)
        acc: TagSources = {}
        held: set[str] = set()
        derived: set[str] = set()
        upstream_removed: set[str] = set()
        # The pipeline's own resolution of each input: lineage never re-parses a name.
        for ref in pipeline.inputs_of(job):
            if ref.dataset is not None:
                d = pipeline.dataset(ref.dataset)
                tags, evidence = tags_of[d.name]
                _merge(acc, {k: dict.fromkeys(v, frozenset({d.name})) for k, v in tags.items()})
                held.update(_dataset_holds(d, tags, name, required))
                derived.update(evidence)
            else:
                assert ref.job is not None
                upstream = done[ref.job]
                _merge(acc, upstream.sources if upstream.passes is None else upstream.passes)
                held.update(upstream.held)
                derived.update(upstream.derived)
                upstream_removed.update(upstream.removed)
        carried, removed, ignored = _transform(job, acc, transforms)
        done[name] = JobLineage(
            sources={k: dict(sorted(v.items())) for k, v in sorted(acc.items())},
            passes=({k: dict(sorted(v.items())) for k, v in sorted(carried.items())}
                    if removed else None),
            held=tuple(sorted(held)),
            derived=tuple(sorted(derived)),
            removed=(*sorted(upstream_removed), *removed),
            ignored=tuple(ignored),
        )
    return {j.name: done[j.name] for j in pipeline.jobs}


def lineage_tags(pipeline: Pipeline) -> dict[str, dict[str, frozenset[str]]]:
    """Job → tag key → values it carries, inherited along the DAG.

    >>> from placer.models import Dataset, Job, Pipeline
    >>> p = Pipeline(
    ...     datasets=[Dataset(name="eu", location="aws:eu-central-1", tags={"residency": "EU"})],
    ...     jobs=[Job(name="prep", command="x", gpu_types={"T4": 1}, inputs=["eu"],
    ...               outputs={"out": 1}),
    ...           Job(name="train", command="x", gpu_types={"T4": 1}, inputs=["prep.out"])],
    ... )
    >>> lineage_tags(p)["train"]
    {'residency': frozenset({'EU'})}
    """
    return {name: info.tags for name, info in pipeline_lineage(pipeline).items()}
