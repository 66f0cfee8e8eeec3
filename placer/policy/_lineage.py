"""Lineage: the tags a job carries, inherited along the DAG, and the holds that come with them.

A job's tags are the union (several values per key) of the tags of the datasets it reads and of
the tags of every job whose output it consumes (``inputs: [prep.features]``), transitively.
``after`` edges order jobs but move no data, so they carry no tags.

A job is held when it reads, directly or through lineage, a dataset whose location is unknown or
which lacks a tag the policies require: what cannot be classified is never placed.

Extension point: a later version lets a job declare that it removes tags (an anonymizer) when a
policy permits it. That is one step in :func:`job_lineage`, between "union of the inputs" and
"what the job carries" (``_transform``); nothing else needs to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from placer.models import Dataset, Job, Pipeline
from placer.tags import canonical

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
    held: tuple[str, ...] = ()

    @property
    def tags(self) -> dict[str, frozenset[str]]:
        return {k: frozenset(v) for k, v in sorted(self.sources.items())}


def held_code(reason: str) -> str:
    """The named code a hold reason starts with (``unknown-location: dataset …``)."""
    return reason.split(":", 1)[0]


def _dataset_holds(d: Dataset, reader: str, required_tags: Iterable[str]) -> list[str]:
    out = []
    if d.location is None:
        out.append(
            f"{HELD_UNKNOWN_LOCATION}: dataset {d.name!r} (read by job {reader!r}) has no known "
            "location; resolve where it is stored (location: provider:region) before it can "
            "be placed"
        )
    have = {canonical(k): v for k, v in d.tags.items()}
    missing = sorted(k for k in set(required_tags) if canonical(k) not in have)
    empty = sorted(k for k in set(required_tags) if have.get(canonical(k)) == "")
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
        slot = into.setdefault(key, {})
        for value, origin in values.items():
            slot[value] = slot.get(value, frozenset()) | origin


def _transform(job: Job, inherited: TagSources) -> TagSources:
    """Tags a job passes on given what it inherits. First cut: all of them, unchanged."""
    return inherited


def pipeline_lineage(
    pipeline: Pipeline, required_tags: Iterable[str] = ()
) -> dict[str, JobLineage]:
    """Lineage of every job, in declaration order. Pure and deterministic."""
    required = tuple(required_tags)
    done: dict[str, JobLineage] = {}
    for name in pipeline.topological_order():
        job = pipeline.job(name)
        acc: TagSources = {}
        held: set[str] = set()
        # The pipeline's own resolution of each input: lineage never re-parses a name.
        for ref in pipeline.inputs_of(job):
            if ref.dataset is not None:
                d = pipeline.dataset(ref.dataset)
                _merge(acc, {k: {v: frozenset({d.name})} for k, v in d.tags.items()})
                held.update(_dataset_holds(d, name, required))
            else:
                assert ref.job is not None
                upstream = done[ref.job]
                _merge(acc, upstream.sources)
                held.update(upstream.held)
        carried = _transform(job, acc)
        done[name] = JobLineage(
            sources={k: dict(sorted(v.items())) for k, v in sorted(carried.items())},
            held=tuple(sorted(held)),
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
