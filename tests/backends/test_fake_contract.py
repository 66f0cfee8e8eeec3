"""The fakes in placer.testing keep the same contract as the real backends."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from placer.backends import StorageResolver
from placer.testing import FakeComputeBackend, FakeStorageResolver
from tests.backends.contract import ComputeBackendContract

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
    assert r.resolve("s3://eu/x/y").location == "aws:eu-central-1"
    facts = r.resolve("s3://elsewhere/x")
    assert facts.location is None and facts.evidence == {"location": "no known prefix"}


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
