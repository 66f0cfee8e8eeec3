"""Datasets' facts from their stores: where each lives, its copies, tags and size, and how
each fact was obtained.

A pipeline may give a dataset by ``uri`` alone. Before it is planned,
:func:`resolve_datasets` asks the dataset's store (:class:`placer.backends.StorageRouter`,
through the backends' resolvers) and returns a new :class:`~placer.models.Pipeline` (models
are frozen; nothing is changed in place) whose datasets carry what the store said:

- a dataset with a ``uri`` and no ``location``, or with no ``tags``, is resolved: its
  ``location`` (the primary copy's), ``replicas`` (every other location that may hold a copy:
  a replication rule's destination, the other regions of a dual- or multi-region bucket),
  ``storage_tags`` (the store's tags or labels, which the policies' tagging rules read),
  ``size`` if the pipeline gives none, and ``provenance`` (fact → the call that gave it and
  when);
- what the pipeline writes wins where it is given, and is checked: a written ``location`` must
  be one of the copies the store reports, else it is an error naming the dataset ("the
  pipeline says X, its store says Y"), never a silent choice of either. Written ``replicas``
  are kept beside the store's; written ``storage_tags`` override the store's key by key;
- written ``tags`` are kept as written and the store's go to ``storage_tags``: the policies'
  tagging rules turn storage facts into tags, and a dataset's tags are the written ones united
  with the derived ones per key (``dataset_tags`` in the policies' lineage): a pipeline can
  add a tag, never weaken a derived one (docs/storage.md, "Datasets given by URI");
- ``offline=True`` asks no store: the datasets keep what the files say (one with no location
  is held by the policies, as always, and its provenance says its store was not asked);
- a dataset taken as written (no store asked) keeps the provenance its file gives, if any;
  the facts of a dataset whose store was asked each say where they came from, the written ones
  ``written in the pipeline``;
- a store that cannot answer (unreachable, access denied, no such bucket) is an error naming
  the dataset and its URI, never a hold that would look like a policy's decision.

At submit, :func:`recheck_datasets` asks the stores again (``fresh``: no cached answer) and
refuses to run a plan whose datasets' location, copies or storage tags changed since it was
made.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from placer.backends import StorageRouter
from placer.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    ErrorDetail,
    ExecutionError,
    PlacerError,
    ResidencyError,
)
from placer.models import Dataset, Pipeline, Plan, ResolvedSite
from placer.storage import DatasetFacts, merge_tags

__all__ = ["OFFLINE", "WRITTEN", "needs_store", "recheck_datasets", "resolve_datasets",
           "resolve_for_plan"]

WRITTEN = "written in the pipeline"
"""The provenance of a fact the pipeline states."""
OFFLINE = "not written in the pipeline, and offline: its store was not asked (held)"
"""The provenance of the location of a dataset not resolved because placer ran offline."""


def needs_store(d: Dataset) -> bool:
    """Whether ``d``'s store is asked: it has a ``uri`` and no ``location``, or no ``tags``."""
    return d.uri is not None and (d.location is None or not d.tags)


def resolve_for_plan(pipeline: Pipeline, sites: Iterable[ResolvedSite], *,
                     offline: bool = False) -> tuple[Pipeline, StorageRouter | None]:
    """What ``placer plan``/``submit`` and ``placer.submit`` do before planning: ``pipeline``
    with each dataset that :func:`needs_store` completed from its store (the sites' stores and
    a cloud store per scheme, :func:`placer.backends.stores_for_datasets`; none ``offline``),
    and the stores asked (``None``: none), for :func:`recheck_datasets` at submit."""
    from placer import backends  # looked up now: tests swap the stores

    uris = [d.uri for d in pipeline.datasets if d.uri and needs_store(d)]
    stores = None if offline or not uris else backends.stores_for_datasets(sites, uris)
    return resolve_datasets(pipeline, stores, offline=offline), stores


def resolve_datasets(pipeline: Pipeline, router: StorageRouter | None, *,
                     offline: bool = False, fresh: bool = False) -> Pipeline:
    """``pipeline`` with each dataset that :func:`needs_store` completed from its store.

    Args:
        pipeline: as written (loaded from its file).
        router: the stores (:func:`placer.backends.stores_for_datasets`); ``None`` when none
            is configured.
        offline: ask no store; only what the pipeline writes is used.
        fresh: ask the stores again rather than reuse a cached answer (what submit does).

    Returns:
        A new pipeline; ``pipeline`` itself when no dataset was asked about (nothing to
        validate again).

    Raises:
        ConfigError: a written location the store contradicts (naming the dataset).
        BackendError: a store that cannot answer, or a URI no installed backend reads for a
            dataset with no written location (naming the dataset and its URI).
        ResidencyError: an on-prem store whose answer contradicts the inventory.
    """
    out: list[Dataset] = []
    asked: dict[str, DatasetFacts] = {}
    for i, d in enumerate(pipeline.datasets):
        if offline and needs_store(d) and d.location is None:
            out.append(_rebuilt(d, {}, {**_written(d), "location": OFFLINE}))
            continue
        if offline or not needs_store(d):
            out.append(d)  # taken as written
            continue
        assert d.uri is not None
        if router is None or not router.serves(d.uri):
            if d.location is not None:  # only its tags were to be asked: nothing can say them
                out.append(d)
                continue
            scheme = d.uri.partition("://")[0]
            raise BackendUnavailableError(
                f"dataset {d.name!r} ({d.uri}): no storage backend reads {scheme}:// URIs, so "
                "its location cannot be asked of its store; write its location in the "
                "pipeline, install the backend for it, or plan with --offline (it is then held)")
        if d.uri not in asked:
            asked[d.uri] = _ask(router, d, fresh)
        out.append(_merged(d, asked[d.uri], i))
    if all(new is old for new, old in zip(out, pipeline.datasets, strict=True)):
        return pipeline  # nothing asked: the pipeline as written (not validated again)
    fields = {name: getattr(pipeline, name) for name in type(pipeline).model_fields}
    return type(pipeline).model_validate({**fields, "datasets": tuple(out)})


def recheck_datasets(plan: Plan, pipeline: Pipeline, router: StorageRouter | None) -> Pipeline:
    """Ask the stores again, fresh, and refuse if what they say changed since ``plan``.

    ``pipeline`` is the pipeline as written (the one :func:`resolve_datasets` completed for
    the plan). Returns the pipeline completed with the fresh facts, to run.

    Raises:
        ExecutionError: a dataset's location, copies or storage tags differ from the plan's
            (``plan.datasets``), or the plan does not carry a dataset: plan again.
        BackendError, ConfigError, ResidencyError: as :func:`resolve_datasets`.
    """
    now = resolve_datasets(pipeline, router, fresh=True)
    changes = []
    for d in now.datasets:
        was = plan.datasets.get(d.name)
        if was is None:
            changes.append(f"dataset {d.name!r}: not in the plan")
            continue
        diffs = []
        if d.location != was.location:
            diffs.append(f"location {was.location or 'unknown'} → {d.location or 'unknown'}")
        if set(d.replicas) != set(was.replicas):
            diffs.append(f"replicas [{', '.join(was.replicas)}] → [{', '.join(d.replicas)}]")
        if d.storage_tags != was.storage_tags:
            diffs.append(f"storage tags {_show(was.storage_tags)} → {_show(d.storage_tags)}")
        if diffs:
            changes.append(f"dataset {d.name!r} ({d.uri}): {', '.join(diffs)}")
    if changes:
        raise ExecutionError(
            "refused to submit: what the stores say of the datasets changed since the plan was "
            "made, so its placements may no longer be allowed: " + "; ".join(changes)
            + ". Plan again to decide on the facts as they are now")
    return now


# -- one dataset ----------------------------------------------------------------------------------
def _show(tags: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) + "}"


def _written(d: Dataset) -> dict[str, str]:
    """The provenance of the facts ``d`` writes (what the pipeline says of them wins)."""
    given = {"location": d.location is not None, "replicas": bool(d.replicas),
             "tags": bool(d.tags), "storage_tags": bool(d.storage_tags),
             "size": "size" in d.model_fields_set}
    return {fact: d.provenance.get(fact, WRITTEN) for fact, yes in given.items() if yes}


def _rebuilt(d: Dataset, update: dict[str, Any], provenance: dict[str, str]) -> Dataset:
    """A new, validated dataset: ``d`` as written, with ``update`` and ``provenance``."""
    spec = {**d.model_dump(exclude_unset=True), **update,
            "provenance": {**d.provenance, **provenance}}
    try:
        return Dataset.model_validate(spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BackendError(f"dataset {d.name!r} ({d.uri}): its store's answer is not a fact "
                           f"placer can keep: {'.'.join(map(str, first['loc']))}: "
                           f"{first['msg']}") from None


def _ask(router: StorageRouter, d: Dataset, fresh: bool) -> DatasetFacts:
    assert d.uri is not None
    try:
        return router.resolve(d.uri, fresh=fresh)
    except PlacerError as exc:
        text = str(exc) if d.uri in str(exc) else f"{d.uri}: {exc}"
        text = f"dataset {d.name!r}: {text}"
        if isinstance(exc, ResidencyError):
            raise ResidencyError(text) from exc
        if isinstance(exc, BackendUnavailableError):
            raise BackendUnavailableError(text) from exc
        raise BackendError(text) from exc


def _merged(d: Dataset, f: DatasetFacts, index: int) -> Dataset:
    """``d`` completed with its store's facts ``f``; written facts win, and are checked."""
    provenance = _written(d)
    update: dict[str, Any] = {}
    location: str | None
    if d.location is not None:
        if d.location not in f.copies:
            said = (" and ".join(f.copies) if f.copies
                    else f"an unknown location ({f.evidence.get('location', 'no answer')})")
            raise ConfigError(ErrorDetail(
                f"dataset {d.name!r}: the pipeline says it is at {d.location}, its store says "
                f"{said} ({f.uri}); correct the pipeline, or leave its location out and let the "
                "store say", field=f"datasets.{d.name}.location",
                loc=("datasets", index, "location")))
        provenance["location"] = (f"{provenance['location']}; confirmed by "
                                  f"{f.provenance.get('location', 'the store')}")
        location = d.location
        store_copies = f.copies
    else:
        location = update["location"] = f.location
        provenance["location"] = f.provenance.get("location", "the store")
        store_copies = f.replicas
    replicas = tuple(dict.fromkeys(r for r in (*d.replicas, *store_copies) if r != location))
    if replicas != d.replicas:
        update["replicas"] = replicas
    if "replicas" in f.provenance:
        provenance["replicas"] = (f"{provenance['replicas']}; " if d.replicas else "") + (
            f.provenance["replicas"])
    storage_tags, _ = merge_tags(f.tags, d.storage_tags)
    update["storage_tags"] = storage_tags
    if "storage_tags" in f.provenance:
        provenance["storage_tags"] = f.provenance["storage_tags"] + (
            f"; overridden by the pipeline: {', '.join(sorted(d.storage_tags))}"
            if d.storage_tags else "")
    if "size" not in d.model_fields_set and f.size_gb is not None:
        update["size"] = f.size_gb
        if "size" in f.provenance:
            provenance["size"] = f.provenance["size"]
    return _rebuilt(d, update, provenance)
