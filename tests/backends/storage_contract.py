"""The contract every storage backend keeps, as a reusable test class.

A backend's test module subclasses :class:`StorageContract` and provides one fixture, ``world``
(a :class:`StorageWorld`): the store that holds sources, the store written to, and how to make
buckets and touch objects behind the stores' backs. A world with two different stores is a
cross-store pair (S3 → GCS): the same cases then run through the streamed copy.

Run against :class:`placer.testing.FakeStorageResolver` (``test_fake_contract.py``), a real
``moto_server`` (``test_s3_backend.py``), a real ``fake-gcs-server`` (``test_gcs_backend.py``)
and the pairs S3 → GCS and GCS → S3 (``test_cross_store.py``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from placer.backends import DataMover, StorageResolver, StorageRouter
from placer.errors import ChecksumMismatchError, DatasetNotFoundError, ResidencyError
from placer.storage import CopyResult, ObjectStore

Tags = dict[str, str]


@dataclass
class StorageWorld:
    """Stores and buckets for the contract.

    ``router`` routes every bucket the world makes to its store (a copy goes through it, as
    the executor's does); ``src`` holds sources, ``dst`` the allowed destinations, at
    ``dst_location``. ``source_bucket(tags)`` makes a bucket on ``src`` at ``src_location``
    with those tags (labels) and returns its root URI (``s3://b/``); ``dest_bucket()`` an empty
    one on ``dst``; ``outside_bucket()`` an empty one at a location other than
    ``dst_location``. ``put``/``get``/``names`` write, read and list objects directly, as
    another client would. ``algorithm`` is the checksum a copy in this world reports.
    """

    router: StorageRouter
    src: ObjectStore
    dst: ObjectStore
    src_location: str
    dst_location: str
    algorithm: str
    source_bucket: Callable[[Tags | None], str]
    dest_bucket: Callable[[], str]
    outside_bucket: Callable[[], str]
    put: Callable[[str, bytes], None]
    get: Callable[[str], bytes]
    names: Callable[[str], list[str]]


def _sum(algorithm: str, data: bytes) -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


FILES = {f"part-{i}": bytes([i + 1]) * (300 + i) for i in range(3)}


class StorageContract:
    """Resolve, the residency guard, verified copies, verification, errors, idempotence."""

    def _prefix(self, world: StorageWorld, tags: Tags | None = None) -> str:
        root = world.source_bucket(tags)
        for name, data in FILES.items():
            world.put(f"{root}ds/{name}", data)
        world.put(f"{root}ds-old/ignored", b"shares 'ds' but not 'ds/'")
        return root

    # -- the seams -------------------------------------------------------------------------------
    def test_it_is_a_resolver_and_a_mover(self, world: StorageWorld) -> None:
        for store in (world.src, world.dst, world.router):
            assert isinstance(store, StorageResolver)
            assert isinstance(store, DataMover)

    # -- resolve ---------------------------------------------------------------------------------
    def test_resolve_an_object(self, world: StorageWorld) -> None:
        root = world.source_bucket({"residency": "eu", "owner": "ml"})  # GCS: lower case
        world.put(f"{root}one.bin", b"q" * 123)
        facts = world.router.resolve(f"{root}one.bin")
        assert (facts.uri, facts.location, facts.size_gb) == (
            f"{root}one.bin", world.src_location, 123 / 1e9)
        assert facts.tags == facts.storage_tags == {"residency": "eu", "owner": "ml"}
        assert {"location", "tags", "size"} <= set(facts.evidence) <= {
            "location", "tags", "size", "replicas"}
        assert all(facts.evidence.values())
        assert "123 bytes" in facts.evidence["size"]
        # Every fact with how and when it was obtained; a single-region bucket has one copy.
        assert (facts.replicas, facts.copies) == ((), (world.src_location,))
        assert facts.provider == world.src_location.partition(":")[0]
        assert {"location", "storage_tags", "size"} <= set(facts.provenance)
        assert all(re.search(r" @ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", how)
                   for how in facts.provenance.values()), facts.provenance

    def test_resolve_a_prefix(self, world: StorageWorld) -> None:
        root = self._prefix(world, {"residency": "eu"})
        total = sum(map(len, FILES.values()))
        for uri in (f"{root}ds", f"{root}ds/"):  # no object "ds": the prefix ds/
            facts = world.router.resolve(uri)
            assert (facts.location, facts.size_gb) == (world.src_location, total / 1e9)
            assert facts.tags == {"residency": "eu"}
            assert {"location", "tags", "size"} <= set(facts.evidence)
            assert f"3 objects, {total} bytes" in facts.evidence["size"]
        empty = world.router.resolve(f"{root}not-written-yet/")  # an output prefix
        assert (empty.location, empty.size_gb) == (world.src_location, 0.0)

    def test_a_missing_source_is_dataset_not_found(self, world: StorageWorld) -> None:
        root = self._prefix(world)
        dst = world.dest_bucket()
        with pytest.raises(DatasetNotFoundError) as info:
            world.router.resolve(f"{root}absent")
        assert info.value.uri == f"{root}absent"
        for src in (f"{root}absent", f"{root}absent/"):
            with pytest.raises(DatasetNotFoundError):
                world.router.copy(src, f"{dst}x/", allowed={world.dst_location})
        assert world.names(dst) == []

    # -- the residency guard ----------------------------------------------------------------------
    def test_a_destination_outside_allowed_is_refused_before_any_byte(
            self, world: StorageWorld) -> None:
        root = self._prefix(world, {"residency": "eu"})
        outside = world.outside_bucket()
        where = world.router.resolve(outside).location
        assert where is not None and where != world.dst_location
        for src in (f"{root}ds/", f"{root}ds/part-0"):
            with pytest.raises(ResidencyError, match=f"its bucket is in {where}, outside"):
                world.router.copy(src, f"{outside}ds/", allowed={world.dst_location})
        store = world.router.store_for(outside)
        with pytest.raises(ResidencyError):
            store.copy(f"{root}ds/", f"{outside}ds/", allowed=lambda loc: loc != where,
                       source=world.src if world.src is not store else None)
        with pytest.raises(ResidencyError):
            store.put_json(f"{outside}manifest.json", {"a": 1}, allowed={world.dst_location})
        assert world.names(outside) == []

    # -- verified copies --------------------------------------------------------------------------
    def test_copy_an_object_verified(self, world: StorageWorld) -> None:
        root = world.source_bucket(None)
        data = bytes(range(256)) * 50
        world.put(f"{root}in/blob.bin", data)
        dst = world.dest_bucket()
        result = world.router.copy(f"{root}in/blob.bin", f"{dst}out/",
                                   allowed={world.dst_location})
        assert result == CopyResult(src=f"{root}in/blob.bin", dst=f"{dst}out/blob.bin",
                                    bytes=len(data), objects=1,
                                    checksum=_sum(world.algorithm, data))
        assert world.get(f"{dst}out/blob.bin") == data
        world.router.verify_copy(result)
        world.dst.verify(result.dst, size=len(data), checksum=result.checksum)

    def test_copy_a_prefix_verified(self, world: StorageWorld) -> None:
        root = self._prefix(world)
        dst = world.dest_bucket()
        result = world.router.copy(f"{root}ds", f"{dst}copy",  # both read as prefixes
                                   allowed=lambda loc: loc == world.dst_location)
        assert (result.dst, result.objects, result.bytes) == (
            f"{dst}copy/", 3, sum(map(len, FILES.values())))
        assert result.checksum.startswith(f"{world.algorithm}-tree:")
        assert world.names(dst) == [f"{dst}copy/{name}" for name in FILES]
        assert all(world.get(f"{dst}copy/{n}") == data for n, data in FILES.items())
        world.dst.verify_copy(result)

    def test_a_corrupted_destination_is_caught(self, world: StorageWorld) -> None:
        root = self._prefix(world)
        dst = world.dest_bucket()
        tree = world.router.copy(f"{root}ds/", f"{dst}tree/", allowed={world.dst_location})
        one = world.router.copy(f"{root}ds/part-0", f"{dst}one", allowed={world.dst_location})
        world.put(f"{dst}tree/part-1", b"\xff" * len(FILES["part-1"]))  # same size, other bytes
        world.put(f"{dst}one", b"\x00" * len(FILES["part-0"]))
        with pytest.raises(ChecksumMismatchError) as info:
            world.dst.verify_copy(tree)
        assert info.value.uri == f"{dst}tree/"
        with pytest.raises(ChecksumMismatchError) as info:
            world.router.verify_copy(one)
        assert info.value.uri == f"{dst}one"
        assert str(info.value).startswith(f"{dst}one: verification failed: expected "
                                          f"{len(FILES['part-0'])} bytes {one.checksum}, found")

    def test_copying_again_is_idempotent(self, world: StorageWorld) -> None:
        root = self._prefix(world)
        dst = world.dest_bucket()
        first = world.router.copy(f"{root}ds/", f"{dst}in/", allowed={world.dst_location})
        again = world.router.copy(f"{root}ds/", f"{dst}in/", allowed={world.dst_location})
        assert again == first
        assert world.names(dst) == [f"{dst}in/{name}" for name in FILES]
        world.dst.verify_copy(again)

    def test_put_json_round_trips_verified(self, world: StorageWorld) -> None:
        dst = world.dest_bucket()
        written = world.dst.put_json(f"{dst}m.json", {"b": 2, "a": [1]},
                                     allowed={world.dst_location})
        assert world.dst.get_json(f"{dst}m.json") == {"a": [1], "b": 2}
        assert written.checksum.startswith(f"{world.dst.native}:")
        world.dst.verify_copy(written)
