"""The S3 backend against a real ``moto_server`` over HTTP (see ``s3_server``)."""

from __future__ import annotations

import hashlib
import itertools
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from placer.backends import DatasetFacts, StorageResolver
from placer.errors import BackendError, ResidencyError
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY, free_port, moto_server

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")
placer_s3 = pytest.importorskip("placer_s3")
from placer_s3 import (  # noqa: E402
    ChecksumMismatchError,
    CopyResult,
    DatasetNotFoundError,
    S3Resolver,
)

EU, US = "eu-central-1", "us-east-1"
_names = itertools.count()


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def session() -> Any:
    return boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                 region_name=US)


@pytest.fixture
def admin(endpoint: str, session: Any) -> Any:
    """A plain boto3 client to set up and tamper with the server behind the resolver's back."""
    return session.client("s3", endpoint_url=endpoint)


@pytest.fixture
def s3(endpoint: str, session: Any) -> S3Resolver:
    return S3Resolver(endpoint_url=endpoint, session=session, page_size=2)


@pytest.fixture
def bucket(admin: Any) -> Callable[..., str]:
    """Create a uniquely named bucket in a region, optionally tagged; return its name."""

    def make(region: str, tags: dict[str, str] | None = None) -> str:
        name = f"placer-test-{next(_names)}-{region}"
        conf = {} if region == US else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        admin.create_bucket(Bucket=name, **conf)
        if tags:
            admin.put_bucket_tagging(Bucket=name, Tagging={
                "TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
        return name

    return make


def _put(admin: Any, bucket: str, key: str, data: bytes, tags: str | None = None) -> None:
    admin.put_object(Bucket=bucket, Key=key, Body=data, **({"Tagging": tags} if tags else {}))


def _assert_no_secrets(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc))  # the chained SDK exception too
    assert SECRET_KEY not in text
    assert ACCESS_KEY not in text


# -- resolve -----------------------------------------------------------------------------------
def test_is_a_storage_resolver(s3: S3Resolver) -> None:
    assert isinstance(s3, StorageResolver)
    assert "S3Resolver" in repr(s3) and SECRET_KEY not in repr(s3)


@pytest.mark.parametrize("region", [EU, US])
def test_resolve_reads_the_bucket_region(s3: S3Resolver, admin: Any, bucket: Any,
                                         region: str) -> None:
    b = bucket(region)
    _put(admin, b, "data/part-0", b"x" * 10)
    facts = s3.resolve(f"s3://{b}/data/")
    assert facts.location == f"aws:{region}"
    assert facts.evidence["location"] == f"GetBucketLocation({b})"


def test_resolve_a_prefix_sums_sizes_across_pages(s3: S3Resolver, admin: Any,
                                                  bucket: Any) -> None:
    b = bucket(EU, {"residency": "EU", "classification": "personal"})
    for i in range(5):  # page size 2: three pages
        _put(admin, b, f"ds/part-{i}", b"y" * (1000 * (i + 1)))
    _put(admin, b, "ds-other/ignored", b"z" * 7)  # shares the prefix "ds" but not "ds/"
    facts = s3.resolve(f"s3://{b}/ds")  # no trailing slash: not an object, so the prefix ds/
    assert facts == DatasetFacts(
        uri=f"s3://{b}/ds", location="aws:eu-central-1", size_gb=15_000 / 1e9,
        tags={"residency": "EU", "classification": "personal"},
        evidence={"location": f"GetBucketLocation({b})", "tags": "GetBucketTagging",
                  "size": "ListObjectsV2(prefix='ds/'): 5 objects, 15000 bytes, 3 pages"})


def test_resolve_an_object_merges_object_tags_over_bucket_tags(s3: S3Resolver, admin: Any,
                                                               bucket: Any) -> None:
    b = bucket(EU, {"residency": "EU", "owner": "ml"})
    _put(admin, b, "one.parquet", b"q" * 123, tags="residency=DE&pii=yes")
    facts = s3.resolve(f"s3://{b}/one.parquet")
    assert facts.tags == {"residency": "DE", "owner": "ml", "pii": "yes"}
    assert facts.size_gb == 123 / 1e9
    assert facts.evidence["tags"] == (
        "GetBucketTagging + GetObjectTagging (object overrides bucket: residency)")
    assert facts.evidence["size"] == "HeadObject: 123 bytes"


def test_an_untagged_bucket_has_no_tags_and_says_so(s3: S3Resolver, admin: Any,
                                                    bucket: Any) -> None:
    b = bucket(US)
    _put(admin, b, "k", b"1")
    facts = s3.resolve(f"s3://{b}/k")
    assert facts.tags == {}
    assert facts.evidence["tags"] == "GetBucketTagging (no tag set) + GetObjectTagging"


def test_an_empty_output_prefix_resolves_with_size_zero(s3: S3Resolver, bucket: Any) -> None:
    # The executor resolves a job's output prefix before the job has written anything.
    b = bucket(EU)
    facts = s3.resolve(f"s3://{b}/run-1/train/")
    assert (facts.location, facts.size_gb) == ("aws:eu-central-1", 0.0)


def test_a_missing_bucket_is_a_clear_error(s3: S3Resolver) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        s3.resolve("s3://placer-no-such-bucket/ds/")
    assert str(info.value) == (
        "s3://placer-no-such-bucket/ds/: bucket does not exist (GetBucketLocation)")
    assert info.value.uri == "s3://placer-no-such-bucket/ds/"
    assert isinstance(info.value, BackendError) and isinstance(info.value, LookupError)
    _assert_no_secrets(info.value)


def test_a_missing_prefix_is_a_clear_error(s3: S3Resolver, admin: Any, bucket: Any) -> None:
    b = bucket(EU)
    _put(admin, b, "present/x", b"1")
    with pytest.raises(DatasetNotFoundError) as info:
        s3.resolve(f"s3://{b}/absent")
    assert str(info.value) == (
        f"s3://{b}/absent: no such object, and no objects under s3://{b}/absent/")


def test_not_an_s3_uri(s3: S3Resolver) -> None:
    with pytest.raises(BackendError, match=r"^gs://x/y: not an s3:// URI$"):
        s3.resolve("gs://x/y")


# -- copy ------------------------------------------------------------------------------------
def test_copy_an_object_across_regions_is_verified(s3: S3Resolver, admin: Any,
                                                   bucket: Any) -> None:
    src, dst = bucket(EU), bucket("eu-west-1")
    data = bytes(range(256)) * 4000
    _put(admin, src, "in/blob.bin", data)
    result = s3.copy(f"s3://{src}/in/blob.bin", f"s3://{dst}/out/",
                     allowed={"aws:eu-west-1", "aws:eu-central-1"})
    assert result == CopyResult(src=f"s3://{src}/in/blob.bin", dst=f"s3://{dst}/out/blob.bin",
                                bytes=len(data), objects=1,
                                checksum=f"sha256:{hashlib.sha256(data).hexdigest()}")
    assert admin.get_object(Bucket=dst, Key="out/blob.bin")["Body"].read() == data
    s3.verify_copy(result)  # still intact


def test_copy_a_prefix_and_detect_a_later_overwrite(s3: S3Resolver, admin: Any,
                                                    bucket: Any) -> None:
    src, dst = bucket(EU), bucket(EU)
    files = {f"run/train/shard-{i}": bytes([i]) * (500 + i) for i in range(5)}
    for k, v in files.items():
        _put(admin, src, k, v)
    result = s3.copy(f"s3://{src}/run/train/", f"s3://{dst}/copied/",
                     allowed=lambda loc: loc.startswith("aws:eu-"))
    assert (result.objects, result.bytes) == (5, sum(map(len, files.values())))
    assert result.checksum.startswith("sha256-tree:")
    assert [o.uri for o in s3.list_objects(f"s3://{dst}/copied/")] == [
        f"s3://{dst}/copied/shard-{i}" for i in range(5)]
    s3.verify_copy(result)

    # Tamper with one copied object on the server, same size, other bytes.
    _put(admin, dst, "copied/shard-3", b"\xff" * 503)
    with pytest.raises(ChecksumMismatchError) as info:
        s3.verify_copy(result)
    assert info.value.uri == f"s3://{dst}/copied/"


def test_verify_detects_an_overwritten_object_even_with_a_stored_sha256(
        s3: S3Resolver, admin: Any, bucket: Any) -> None:
    src, dst = bucket(US), bucket(US)
    _put(admin, src, "a", b"original")
    result = s3.copy(f"s3://{src}/a", f"s3://{dst}/a", allowed={"aws:us-east-1"})
    admin.put_object(Bucket=dst, Key="a", Body=b"tampered", ChecksumAlgorithm="SHA256")
    with pytest.raises(ChecksumMismatchError) as info:
        s3.verify_copy(result)
    good, bad = hashlib.sha256(b"original").hexdigest(), hashlib.sha256(b"tampered").hexdigest()
    assert str(info.value) == (f"s3://{dst}/a: verification failed: expected 8 bytes "
                               f"sha256:{good}, found 8 bytes sha256:{bad}")


def test_residency_guard_refuses_before_any_byte_moves(s3: S3Resolver, admin: Any,
                                                       bucket: Any) -> None:
    src, dst = bucket(EU, {"residency": "EU"}), bucket(US)
    _put(admin, src, "ds/x", b"personal data")
    for allowed in ({"aws:eu-central-1", "aws:eu-west-1"}, lambda loc: loc == "aws:eu-central-1"):
        with pytest.raises(ResidencyError) as info:
            s3.copy(f"s3://{src}/ds/", f"s3://{dst}/ds/", allowed=allowed)
        assert str(info.value) == (
            f"refused to write s3://{dst}/ds/: its bucket is in aws:us-east-1, outside the "
            "locations the policy allows for this data")
        with pytest.raises(ResidencyError):
            s3.put_json(f"s3://{dst}/manifest.json", {"a": 1}, allowed=allowed)
    assert admin.list_objects_v2(Bucket=dst)["KeyCount"] == 0


def test_a_missing_destination_bucket_is_never_created(s3: S3Resolver, admin: Any,
                                                       bucket: Any) -> None:
    src = bucket(EU)
    _put(admin, src, "x", b"1")
    with pytest.raises(DatasetNotFoundError, match="bucket does not exist"):
        s3.copy(f"s3://{src}/x", "s3://placer-not-there/x", allowed=lambda _: True)
    names = {b["Name"] for b in admin.list_buckets()["Buckets"]}
    assert "placer-not-there" not in names


def test_put_json_round_trips_and_is_checksummed(s3: S3Resolver, bucket: Any) -> None:
    b = bucket(EU)
    uri = f"s3://{b}/run-1/train/manifest.json"
    result = s3.put_json(uri, {"inputs": {"ds": "s3://x/y"}}, allowed={"aws:eu-central-1"})
    assert s3.get_json(uri) == {"inputs": {"ds": "s3://x/y"}}
    s3.verify_copy(result)


# -- credentials ---------------------------------------------------------------------------------
def test_access_denied_is_a_backend_error_without_credentials() -> None:
    # A second server with authentication on: the fake key is unknown, so every call is 403.
    with moto_server(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as url:
        session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                         aws_secret_access_key=SECRET_KEY, region_name=US)
        s3 = S3Resolver(endpoint_url=url, session=session)
        with pytest.raises(BackendError) as info:
            s3.resolve("s3://some-bucket/ds/")
    assert str(info.value) == (
        "s3://some-bucket/ds/: access denied by S3 (GetBucketLocation: InvalidAccessKeyId); "
        "check that the configured credentials may perform it")
    _assert_no_secrets(info.value)


def test_an_unreachable_endpoint_is_a_backend_error(session: Any) -> None:
    s3 = S3Resolver(endpoint_url=f"http://127.0.0.1:{free_port()}", session=session,
                    max_attempts=1)
    with pytest.raises(BackendError, match=r"GetBucketLocation failed: EndpointConnectionError"):
        s3.resolve("s3://b/k")


def test_importing_the_backend_imports_no_sdk() -> None:
    import subprocess
    import sys

    code = "import placer, placer_s3, sys; print('boto3' in sys.modules, 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_entry_point_names_the_resolver() -> None:
    from placer.backends import available_backends, load_backend

    if "s3" not in available_backends():
        pytest.skip("placer is not installed with the s3 entry point (pip install -e '.[s3]')")
    assert load_backend("s3") is S3Resolver
