"""The hunter against real S3 (``moto_server``): facts read from buckets, bytes written to them.

Three servers: one is "the cloud" (AWS S3: a bucket is where GetBucketLocation says), the
others on-prem sites' own stores. Random buckets in random regions with tags spelt in random ways
become datasets through placer's own storage wiring; a run with placer's S3 store doing the
copies must leave every byte in a bucket the truth allows for the data it holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hunter.budget import CI, NIGHTLY, scaled
from tests.hunter.corpus import corpus_params
from tests.hunter.hunting import hunt_property
from tests.hunter.storage import Servers, hunt_storage, servers_running
from tests.hunter.strategies import storage_cases

pytest.importorskip("boto3")
pytest.importorskip("moto.server")
pytest.importorskip("placer_s3")


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with servers_running() as running:
        yield running


def _hunter(servers: Servers) -> Any:
    return lambda case, workdir: hunt_storage(case, workdir, servers)


def test_no_byte_lands_outside_the_allowed_locations(servers: Servers) -> None:
    hunt_property(storage_cases(), scaled(CI, 0.15), "test_storage (ci)", _hunter(servers),
                  kind="storage")


@pytest.mark.nightly
def test_no_byte_lands_outside_the_allowed_locations_nightly(servers: Servers) -> None:
    hunt_property(storage_cases(), scaled(NIGHTLY, 0.1), "test_storage (nightly)",
                  _hunter(servers), kind="storage")


STORAGE_CASES = corpus_params("storage")


@pytest.mark.parametrize(("path", "doc"), STORAGE_CASES)
def test_storage_corpus_case(path: Path, doc: dict[str, Any], tmp_path: Path,
                             servers: Servers) -> None:
    outcome = hunt_storage(doc["case"], tmp_path, servers)
    assert not outcome.counterexample, (
        f"{path.name} ({doc.get('source')}): {doc.get('note')}\n{outcome.report()}")
    if doc.get("expect") == "refused":
        assert outcome.stage == "refused", (
            f"{path.name}: must be refused loudly, got {outcome.stage} ({outcome.detail})")
