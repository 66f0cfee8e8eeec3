"""The fakes in placer.testing keep the same contracts as the real backends (compute and
storage)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from placer.backends import StorageResolver, StorageRouter
from placer.errors import DatasetNotFoundError, ResidencyError
from placer.testing import FakeComputeBackend, FakeDataMover, FakeStorageResolver
from tests.backends.contract import ComputeBackendContract
from tests.backends.storage_contract import StorageContract, StorageWorld

_ids = itertools.count()


@pytest.fixture
def sid() -> str:
    return f"placer-contract-{next(_ids)}"


class TestFakeComputeBackend(ComputeBackendContract):
    @pytest.fixture
    def backend(self) -> FakeComputeBackend:
        return FakeComputeBackend(self.site, outcomes={"contract-long": ["RUNNING"]})

    @pytest.fixture
    def reopen(self, backend: FakeComputeBackend) -> Callable[[], FakeComputeBackend]:
        return lambda: backend  # the fake *is* the cluster: its state outlives a client

    @pytest.fixture
    def take_down(self, backend: FakeComputeBackend) -> Callable[[], None]:
        def down() -> None:
            backend.down = True
        return down

    @pytest.fixture
    def sleep(self) -> Callable[[], None]:
        return lambda: None


def test_fake_storage_resolver_keeps_unknown_unknown() -> None:
    r = FakeStorageResolver.from_roots({"aws:eu-central-1": "s3://eu/"})
    assert isinstance(r, StorageResolver)
    assert r.resolve("s3://eu/x/y/").location == "aws:eu-central-1"  # an output prefix
    with pytest.raises(DatasetNotFoundError):  # honest: names no data in a known bucket
        r.resolve("s3://eu/x/y")
    facts = r.resolve("s3://elsewhere/x")
    assert facts.location is None and facts.evidence == {"location": "no known prefix"}
    with pytest.raises(ResidencyError, match="no single location"):  # never written to
        r.put_json("s3://elsewhere/m.json", {}, allowed=lambda _: True)
    assert r.objects == {}


# -- the storage contract: one fake store, and a copy between two fakes ---------------------------
FRA, NYC = "onprem:fra-dc1", "onprem:nyc-dc1"
_buckets = itertools.count()


def _fake_world(two_stores: bool) -> StorageWorld:
    src = FakeStorageResolver({})
    dst = FakeStorageResolver({}) if two_stores else src
    router = StorageRouter({"mem": src}, {"mem": {}})

    def bucket(store: FakeStorageResolver, location: str, tags: dict[str, str] | None = None
               ) -> str:
        name = f"b{next(_buckets)}"
        root = f"mem://{name}/"
        store.prefixes[root] = location
        store.tags[root] = dict(tags or {})
        router.buckets["mem"][name] = store
        return root

    def names(prefix: str) -> list[str]:
        return sorted(u for u in router.store_for(prefix).objects if u.startswith(prefix))

    return StorageWorld(
        router=router, src=src, dst=dst, src_location=FRA, dst_location=FRA,
        algorithm="sha256", source_bucket=lambda tags: bucket(src, FRA, tags),
        dest_bucket=lambda: bucket(dst, FRA), outside_bucket=lambda: bucket(dst, NYC),
        put=lambda uri, data: router.store_for(uri).put(uri, data),
        get=lambda uri: router.store_for(uri).objects[uri], names=names)


class TestFakeStorageContract(StorageContract):
    @pytest.fixture
    def world(self) -> StorageWorld:
        return _fake_world(two_stores=False)


class TestFakeToFakeStorageContract(StorageContract):
    """Two fake stores: every copy is the streamed one between stores."""

    @pytest.fixture
    def world(self) -> StorageWorld:
        return _fake_world(two_stores=True)


def test_a_source_changed_during_a_copy_is_not_copied() -> None:
    from placer.errors import BackendError

    fake = FakeDataMover({FRA: "mem://fra/", NYC: "mem://nyc/"})
    fake.put("mem://fra/a", b"one")
    obj = fake.head("mem://fra/a")
    assert obj is not None
    fake.put("mem://fra/a", b"two")
    with pytest.raises(BackendError, match="changed while it was being copied"):
        fake.copy_one(obj, "mem://fra/b")
    assert "mem://fra/b" not in fake.objects


def test_fake_scripts_outcomes_per_attempt() -> None:
    from tests.backends.contract import OK, placement

    fake = FakeComputeBackend("s", outcomes={"contract-ok": ["FAILED", "SUCCEEDED"]})
    ends = []
    for sid in ("one", "two"):
        h = fake.submit(OK, placement("s"), submission_id=sid, env={})
        while (state := fake.status(h)) not in ("FAILED", "SUCCEEDED"):
            pass
        ends.append(state)
    assert ends == ["FAILED", "SUCCEEDED"]
