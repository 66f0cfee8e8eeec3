"""placer.resolve: datasets given by URI completed from their stores, written facts checked,
offline, errors naming the dataset, the re-check at submit; and the base algorithm's copies
(ObjectStore.resolve) on an in-memory store. The real stores: tests/backends/test_store_facts.py
and tests/backends/test_datasets_by_uri.py."""

from __future__ import annotations

from typing import Any

import pytest

import placer
from placer.backends import StorageRouter
from placer.errors import BackendError, BackendUnavailableError, ConfigError, ExecutionError
from placer.models import Dataset, Pipeline
from placer.resolve import OFFLINE, WRITTEN, needs_store, recheck_datasets, resolve_datasets
from placer.storage import BucketFacts, Replica, stamp
from placer.testing import FakeStorageResolver
from tests.builders import job, pipeline

T0 = 1_796_000_000.0
EU = "aws:eu-central-1"


class Store(FakeStorageResolver):
    """The in-memory store, with replicas per prefix (``copies``: prefix → replicas) and a
    fixed clock."""

    def __init__(self, prefixes: dict[str, str], tags: dict[str, dict[str, str]] | None = None,
                 copies: dict[str, tuple[Replica, ...]] | None = None) -> None:
        super().__init__(prefixes, tags)
        self.copies_at = copies or {}
        self.asked = 0
        self.clock = lambda: T0

    def bucket_facts(self, uri: str) -> BucketFacts:
        self.asked += 1
        facts = super().bucket_facts(uri)
        match = self._prefix(uri)
        replicas = self.copies_at.get(match or "", ())
        return BucketFacts(facts.location, facts.location_evidence, facts.tags,
                           facts.tags_evidence, replicas,
                           "fake replication" if replicas else "", provider="aws")


def _world(**kw: Any) -> tuple[Store, StorageRouter]:
    store = Store({"s3://eu/": EU, "s3://us/": "aws:us-east-1"},
                  tags={"s3://eu/": {"Residency": "eu"}}, **kw)
    store.put("s3://eu/ds/a", b"x" * 1000)
    store.put("s3://us/ds/a", b"y" * 10)
    return store, StorageRouter({"s3": store})


def _pipe(*datasets: Dataset) -> Pipeline:
    return pipeline(*(job(f"j{i}", inputs=[d.name]) for i, d in enumerate(datasets)),
                    datasets=datasets)


def _ds(**kw: Any) -> Dataset:
    return Dataset.model_validate({"name": "notes", "uri": "s3://eu/ds/", **kw})


# -- which datasets are asked ----------------------------------------------------------------
def test_needs_store_when_a_uri_lacks_location_or_tags() -> None:
    assert needs_store(_ds())
    assert needs_store(_ds(location=EU))  # no tags: the store's tags are wanted
    assert not needs_store(_ds(location=EU, tags={"residency": "EU"}))
    assert not needs_store(Dataset(name="x"))  # no uri: nothing to ask


def test_a_dataset_by_uri_gets_its_facts_and_their_provenance() -> None:
    _, router = _world()
    p = _pipe(_ds())
    out = resolve_datasets(p, router)
    d = out.dataset("notes")
    assert (d.location, d.replicas, d.storage_tags, d.size) == (EU, (), {"Residency": "eu"},
                                                                 1000 / 1e9)
    assert d.tags == {}  # storage tags are not tags: tagging rules turn them into tags
    assert d.provenance == {
        "location": f"fake prefix s3://eu/ @ {stamp(T0)}",
        "storage_tags": f"fake tags @ {stamp(T0)}",
        "size": f"list(prefix='ds/'): 1 objects, 1000 bytes, 1 pages @ {stamp(T0)}",
    }
    assert p.dataset("notes").location is None  # a new pipeline; the written one is unchanged
    assert out.jobs == p.jobs


def test_written_facts_win_and_are_kept() -> None:
    _, router = _world()
    d = resolve_datasets(_pipe(_ds(location=EU, size="2GB", storage_tags={"residency": "EU"},
                                   provenance={"size": "inventory of 2026-01"})),
                         router).dataset("notes")
    assert (d.location, d.size, d.storage_tags) == (EU, 2.0, {"residency": "EU"})
    assert d.provenance["location"] == f"{WRITTEN}; confirmed by fake prefix s3://eu/ @ " \
                                       f"{stamp(T0)}"
    assert d.provenance["size"] == "inventory of 2026-01"  # what the file says of its own facts
    assert d.provenance["storage_tags"].endswith("overridden by the pipeline: residency")


def test_a_written_location_the_store_contradicts_is_an_error_naming_the_dataset() -> None:
    _, router = _world()
    with pytest.raises(ConfigError) as info:
        resolve_datasets(_pipe(_ds(location="aws:us-east-1")), router)
    assert str(info.value) == (
        "datasets.notes.location: dataset 'notes': the pipeline says it is at aws:us-east-1, "
        "its store says aws:eu-central-1 (s3://eu/ds/); correct the pipeline, or leave its "
        "location out and let the store say")


def test_a_written_location_may_be_any_copy_and_the_others_stay_replicas() -> None:
    _, router = _world(copies={"s3://eu/": (Replica("aws:eu-west-1", "rule r"),)})
    d = resolve_datasets(_pipe(_ds(location="aws:eu-west-1")), router).dataset("notes")
    assert (d.location, d.replicas) == ("aws:eu-west-1", (EU,))


def test_offline_asks_no_store_and_a_dataset_with_no_location_is_held() -> None:
    store, router = _world()
    p = _pipe(_ds())
    out = resolve_datasets(p, router, offline=True)
    assert store.asked == 0
    assert out.dataset("notes").location is None
    assert out.dataset("notes").provenance == {"location": OFFLINE}
    plan = placer.plan(out)
    assert plan.status == "held"
    assert "unknown-location" in plan.reasons[0]
    assert plan.datasets["notes"].provenance == {"location": OFFLINE}


def test_a_store_that_cannot_answer_is_an_error_naming_dataset_and_uri() -> None:
    _, router = _world()
    with pytest.raises(BackendError) as info:
        resolve_datasets(_pipe(_ds(uri="s3://eu/absent")), router)
    assert str(info.value).startswith("dataset 'notes': s3://eu/absent: no such object")


def test_a_scheme_no_backend_reads() -> None:
    _, router = _world()
    with pytest.raises(BackendUnavailableError, match=r"dataset 'notes' \(file:///data/notes/\): "
                                                       r"no storage backend reads file://"):
        resolve_datasets(_pipe(_ds(uri="file:///data/notes/")), router)
    # With its location written, only its tags were wanted: the written facts stand.
    written = _pipe(_ds(uri="file:///data/notes/", location=EU))
    assert resolve_datasets(written, router) is written
    with pytest.raises(BackendUnavailableError):
        resolve_datasets(_pipe(_ds()), None)  # no store configured at all


def test_a_pipeline_with_nothing_to_ask_is_returned_as_it_is() -> None:
    store, router = _world()
    written = _pipe(_ds(location=EU, tags={"residency": "EU"}), Dataset(name="local"))
    assert resolve_datasets(written, router) is written
    assert resolve_datasets(_pipe(_ds(location=EU)), router, offline=True).dataset(
        "notes").provenance == {}
    assert store.asked == 0


def test_one_uri_is_asked_once() -> None:
    store, router = _world()
    p = _pipe(_ds(), _ds(name="again"))
    resolve_datasets(p, router)
    assert store.asked == 1


# -- copies (the base algorithm, ObjectStore.resolve) ---------------------------------------------
def test_a_replica_covers_only_the_keys_its_rule_copies() -> None:
    store, router = _world(copies={"s3://eu/": (
        Replica("aws:us-east-1", "rule us (prefix 'ds/')", prefix="ds/"),
        Replica("aws:eu-west-1", "rule ie (prefix 'logs/')", prefix="logs/"))})
    store.put("s3://eu/other/b", b"z")
    assert router.resolve("s3://eu/ds/").replicas == ("aws:us-east-1",)
    assert router.resolve("s3://eu/ds/a").replicas == ("aws:us-east-1",)
    assert router.resolve("s3://eu/other/").replicas == ()
    assert router.resolve("s3://eu/").replicas == ("aws:us-east-1", "aws:eu-west-1")  # whole


def test_a_copy_the_catalog_cannot_place_holds_the_dataset() -> None:
    _, router = _world(copies={"s3://eu/": (Replica(None, "rule mx → b in aws:mx-central-1"),)})
    out = resolve_datasets(_pipe(_ds()), router)
    d = out.dataset("notes")
    assert d.location is None
    assert "rule mx → b in aws:mx-central-1" in d.provenance["location"]
    assert placer.plan(out).status == "held"


# -- the plan carries the facts, and submit re-checks them -----------------------------------
def test_the_plan_carries_each_dataset_with_its_provenance() -> None:
    _, router = _world(copies={"s3://eu/": (Replica("aws:eu-west-1", "rule r"),)})
    plan = placer.plan(resolve_datasets(_pipe(_ds()), router))
    ev = plan.datasets["notes"]
    assert (ev.uri, ev.location, ev.replicas, ev.storage_tags) == (
        "s3://eu/ds/", EU, ("aws:eu-west-1",), {"Residency": "eu"})
    assert set(ev.provenance) == {"location", "replicas", "storage_tags", "size"}
    assert placer.Plan.model_validate_json(plan.model_dump_json()) == plan


def test_recheck_passes_unchanged_facts_and_refuses_changed_ones() -> None:
    store, router = _world()
    written = _pipe(_ds())
    plan = placer.plan(resolve_datasets(written, router))
    assert plan.status == "placed", plan.reasons
    asked = store.asked
    again = recheck_datasets(plan, written, router)
    assert store.asked == asked + 1  # fresh: the cache is not used
    assert again.dataset("notes").location == EU
    store.prefixes["s3://eu/"] = "aws:us-east-1"  # moved
    store.tags["s3://eu/"] = {"Residency": "us"}
    with pytest.raises(ExecutionError) as info:
        recheck_datasets(plan, written, router)
    assert str(info.value) == (
        "refused to submit: what the stores say of the datasets changed since the plan was "
        "made, so its placements may no longer be allowed: dataset 'notes' (s3://eu/ds/): "
        "location aws:eu-central-1 → aws:us-east-1, storage tags {Residency=eu} → "
        "{Residency=us}. Plan again to decide on the facts as they are now")


def test_recheck_refuses_a_plan_without_the_dataset() -> None:
    _, router = _world()
    plan = placer.plan(_pipe(Dataset(name="other", location=EU)))
    with pytest.raises(ExecutionError, match="dataset 'notes': not in the plan"):
        recheck_datasets(plan, _pipe(_ds()), router)
