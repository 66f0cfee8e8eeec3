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
from tests.backends.storage_contract import StorageContract, StorageWorld
from tests.backends.storage_worlds import S3Side, s3_world

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
T0, T0_ISO = 1_796_000_000.0, "2026-11-30T00:53:20Z"  # a fixed clock, and how it is written
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
    assert facts.evidence["location"] == f"GetBucketLocation({b})" + (
        ": no region, which S3 answers for us-east-1" if region == US else "")


def test_resolve_a_prefix_sums_sizes_across_pages(endpoint: str, session: Any, admin: Any,
                                                  bucket: Any) -> None:
    s3 = S3Resolver(endpoint_url=endpoint, session=session, page_size=2, clock=lambda: T0)
    b = bucket(EU, {"residency": "EU", "classification": "personal"})
    for i in range(5):  # page size 2: three pages
        _put(admin, b, f"ds/part-{i}", b"y" * (1000 * (i + 1)))
    _put(admin, b, "ds-other/ignored", b"z" * 7)  # shares the prefix "ds" but not "ds/"
    facts = s3.resolve(f"s3://{b}/ds")  # no trailing slash: not an object, so the prefix ds/
    listed = "ListObjectsV2(prefix='ds/'): 5 objects, 15000 bytes, 3 pages"
    replication = f"GetBucketReplication({b}): no replication"
    assert facts == DatasetFacts(
        uri=f"s3://{b}/ds", location="aws:eu-central-1", size_gb=15_000 / 1e9,
        tags={"residency": "EU", "classification": "personal"},
        evidence={"location": f"GetBucketLocation({b})", "tags": "GetBucketTagging",
                  "size": listed, "replicas": replication},
        replicas=(), multi_region=None, provider="aws",
        provenance={"location": f"GetBucketLocation({b}) @ {T0_ISO}",
                    "storage_tags": f"GetBucketTagging @ {T0_ISO}",
                    "size": f"{listed} @ {T0_ISO}", "replicas": f"{replication} @ {T0_ISO}"})


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


# -- tags: stored form, empty values -------------------------------------------------------------
def test_a_bucket_tag_without_a_value_is_the_empty_string(s3: S3Resolver, admin: Any,
                                                          bucket: Any) -> None:
    """Regression (issue 9, hole 9): S3 allows an empty tag value, and moto (like other
    stores) then leaves ``<Value>`` out of GetBucketTagging; reading it was a KeyError."""
    b = bucket(EU, {"residency": "EU", "reviewed": ""})
    assert {"Key": "reviewed"} in admin.get_bucket_tagging(Bucket=b)["TagSet"]  # no Value
    _put(admin, b, "ds/x", b"1", tags="pii=")
    assert s3.resolve(f"s3://{b}/ds/").tags == {"residency": "EU", "reviewed": ""}
    assert s3.resolve(f"s3://{b}/ds/x").tags == {"residency": "EU", "reviewed": "", "pii": ""}


def test_the_tag_parser_takes_a_missing_value_as_empty() -> None:
    answer = {"TagSet": [{"Key": "a"}, {"Key": "b", "Value": "v"}, {"Key": "c", "Value": None}]}
    assert S3Resolver._tag_dict("s3://b/", "b", None, answer) == {"a": "", "b": "v", "c": ""}


def test_tags_are_read_in_their_stored_form_and_objects_override_by_canonical_key(
        s3: S3Resolver, admin: Any, bucket: Any) -> None:
    # Full-width "ＥＵ" is EU; the object's "residency" is the bucket's "Residency".
    b = bucket(EU, {"Residency": "ＥＵ", "owner": "ml"})
    _put(admin, b, "one.parquet", b"q", tags="residency=DE")
    assert s3.resolve(f"s3://{b}/").tags == {"Residency": "EU", "owner": "ml"}
    facts = s3.resolve(f"s3://{b}/one.parquet")
    assert facts.tags == {"residency": "DE", "owner": "ml"}
    assert facts.evidence["tags"] == (
        "GetBucketTagging + GetObjectTagging (object overrides bucket: residency)")


@pytest.mark.parametrize(("bucket_tags", "object_tags", "tag"), [
    ({"resi\u200bdency": "EU"}, None, "resi\u200bdency"),        # zero-width space in a key
    ({"residency": "E\u202eU"}, None, "residency"),               # bidi override in a value
    ({"residency": "EU"}, "Residency=US&owner=ml&RESIDENCY=EU", None),  # one key, twice
])
def test_a_tag_placer_cannot_store_is_an_error_naming_bucket_and_key(
        s3: S3Resolver, admin: Any, bucket: Any, bucket_tags: dict[str, str],
        object_tags: str | None, tag: str | None) -> None:
    from placer_s3 import InvalidTagError

    b = bucket(EU, bucket_tags)
    _put(admin, b, "ds/x", b"1", tags=object_tags)
    uri = f"s3://{b}/ds/x" if object_tags else f"s3://{b}/ds/"
    with pytest.raises(InvalidTagError) as info:
        s3.resolve(uri)
    assert isinstance(info.value, BackendError)
    assert (info.value.bucket, info.value.tag) == (b, tag)
    where = f"bucket {b}, object ds/x" if object_tags else f"bucket {b}"
    assert str(info.value).startswith(f"{uri}: invalid tag on {where}: ")
    if tag:
        assert repr(tag) in str(info.value)


def test_merge_tags_keeps_the_objects_spelling() -> None:
    from placer_s3 import merge_tags

    assert merge_tags({"Residency": "EU", "a": "1"}, {"residency": "EU", "b": "2"}) == (
        {"residency": "EU", "a": "1", "b": "2"}, [])


# -- where a bucket is: a cloud store and an on-prem store --------------------------------------
# Two moto servers: ``endpoint`` plays AWS S3 (answers for its buckets' regions), and
# ``onprem_endpoint`` an S3-compatible store in the fra-dc1 data centre (MinIO, Ceph).
FRA = "onprem:fra-dc1"


@pytest.fixture(scope="session")
def onprem_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def onprem_admin(onprem_endpoint: str, session: Any) -> Any:
    return session.client("s3", endpoint_url=onprem_endpoint)


@pytest.fixture
def cloud_env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cloud store as boto3's environment names it (what `storage_for` builds on)."""
    for name, value in {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                        "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": US}.items():
        monkeypatch.setenv(name, value)


def _inventory(tmp_path: Any, fra_storage: str, fra_endpoint: str | None = None,
               aws_storage: str | None = None) -> Any:
    import yaml

    from placer.catalog import load_inventory, resolve_inventory

    fra: dict[str, Any] = {"location": FRA, "country": "DE", "storage": fra_storage,
                           "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}]}
    if fra_endpoint:
        fra["storage_endpoint"] = fra_endpoint
    aws: dict[str, Any] = {"location": "aws:eu-central-1"}
    if aws_storage:
        aws["storage"] = aws_storage
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"sites": {"fra-dc": fra, "aws-fra": aws}}, sort_keys=False))
    return resolve_inventory(load_inventory(path))


def test_an_onprem_claim_for_a_bucket_on_the_cloud_store_is_refused(
        tmp_path: Any, cloud_env: None, admin: Any, bucket: Any) -> None:
    """Regression (issue 9, hole 10): the inventory said Frankfurt (on-prem) for a bucket
    that S3 itself puts in us-east-1; the copy was allowed into it. Now the inventory is
    refused, and not a byte reaches the bucket."""
    from placer.backends import storage_for
    from placer.errors import InventoryError

    src, dst = bucket(EU), bucket(US)
    _put(admin, src, "ds/x", b"personal data")

    def copy_into_fra_dc_storage() -> None:  # what the executor does for a job at fra-dc
        router = storage_for(_inventory(tmp_path, f"s3://{dst}/placer"))
        assert router is not None
        router.copy(f"s3://{src}/ds/", f"s3://{dst}/placer/ds/", allowed={FRA})

    with pytest.raises(InventoryError) as info:
        copy_into_fra_dc_storage()
    [detail] = info.value.details
    assert (detail.field, detail.line) == ("sites.fra-dc", 2)
    assert "has no storage_endpoint" in detail.msg
    assert "a cloud store says where its buckets are" in detail.msg
    assert admin.list_objects_v2(Bucket=dst)["KeyCount"] == 0


def test_storage_for_refuses_an_onprem_bucket_on_the_cloud_store_built_by_hand(
        endpoint: str) -> None:
    from placer.backends import storage_for
    from placer.errors import InventoryError
    from placer.models import GpuPool, Location, ResolvedSite

    site = ResolvedSite(name="fra-dc", kind="onprem",
                        location=Location(provider="onprem", region="fra-dc1", country="DE"),
                        pools=(GpuPool(gpu="A100-80GB", count=8, cost_per_gpu_hour=1),),
                        storage="s3://fra-store/placer")
    with pytest.raises(InventoryError, match="has no storage_endpoint") as info:
        storage_for([site])
    assert info.value.details[0].field == "sites.fra-dc.storage"


def test_a_bucket_on_the_onprem_store_is_at_the_site(
        tmp_path: Any, cloud_env: None, onprem_endpoint: str, admin: Any, onprem_admin: Any,
        bucket: Any) -> None:
    from placer.backends import storage_for

    name = f"placer-fra-{next(_names)}"
    onprem_admin.create_bucket(Bucket=name)  # the store names no region: moto says None
    cloud = bucket(EU)
    _put(admin, cloud, "run/pretrain/ckpt/part-0", b"weights" * 1000, tags="stage=pretrain")
    router = storage_for(_inventory(tmp_path, f"s3://{name}/placer", onprem_endpoint,
                                    aws_storage=f"s3://{cloud}/run"))
    assert router is not None

    facts = router.resolve(f"s3://{name}/placer/")
    assert facts.location == FRA
    assert facts.evidence["location"] == (
        f"on-prem store {onprem_endpoint}, at {FRA} (DE); GetBucketLocation({name}): no region")
    assert router.resolve(f"s3://{cloud}/run/").location == "aws:eu-central-1"

    # Cloud → on-prem across the two stores: guarded, streamed, verified, tags kept.
    result = router.copy(f"s3://{cloud}/run/pretrain/ckpt", f"s3://{name}/placer/in/",
                         allowed={FRA})
    assert isinstance(result, CopyResult) and (result.bytes, result.objects) == (7000, 1)
    got = onprem_admin.get_object(Bucket=name, Key="placer/in/part-0")["Body"].read()
    assert got == b"weights" * 1000
    assert onprem_admin.get_object_tagging(Bucket=name, Key="placer/in/part-0")["TagSet"] == [
        {"Key": "stage", "Value": "pretrain"}]
    router.store_for(f"s3://{name}/").verify_copy(result)
    assert name not in {b["Name"] for b in admin.list_buckets()["Buckets"]}

    # On-prem → cloud, and the guard holds across stores too.
    back = router.copy(f"s3://{name}/placer/in/", f"s3://{cloud}/back/",
                       allowed={"aws:eu-central-1"})
    assert back.checksum == result.checksum
    with pytest.raises(ResidencyError, match=f"its bucket is in {FRA}"):
        router.copy(f"s3://{cloud}/run/", f"s3://{name}/placer/no/", allowed={"aws:eu-central-1"})
    assert "placer/no/" not in str(onprem_admin.list_objects_v2(Bucket=name).get("Contents"))


def test_a_cross_store_copy_checks_the_bytes_it_read(
        onprem_endpoint: str, session: Any, admin: Any, onprem_admin: Any,
        bucket: Any, s3: S3Resolver) -> None:
    from placer.models import Location

    store = S3Resolver(endpoint_url=onprem_endpoint, session=session,
                       onprem_location=Location(provider="onprem", region="fra-dc1",
                                                country="DE"))
    name = f"placer-fra-{next(_names)}"
    onprem_admin.create_bucket(Bucket=name)
    src = bucket(EU)
    _put(admin, src, "a", b"original")
    result = store.copy(f"s3://{src}/a", f"s3://{name}/a", allowed={FRA}, source=s3)
    assert result.checksum == f"sha256:{hashlib.sha256(b'original').hexdigest()}"
    onprem_admin.put_object(Bucket=name, Key="a", Body=b"tampered")
    with pytest.raises(ChecksumMismatchError):
        store.verify_copy(result)


@pytest.mark.parametrize(("constraint", "refused"), [
    ("us-west-2", "reports bucket {b} in aws:us-west-2 (US)"),     # a cloud region elsewhere
    ("EU", "reports bucket {b} in aws:eu-west-1 (IE)"),           # S3's legacy name, Ireland
    ("eu-south-9", "in region 'eu-south-9', which placer's catalog cannot place"),
    ("eu-central-1", None),                                        # Frankfurt: no contradiction
])
def test_an_onprem_store_naming_a_cloud_region_elsewhere_is_refused(
        onprem_endpoint: str, session: Any, onprem_admin: Any, constraint: str,
        refused: str | None) -> None:
    from placer.models import Location

    store = S3Resolver(endpoint_url=onprem_endpoint, session=session,
                       onprem_location=Location(provider="onprem", region="fra-dc1",
                                                country="DE"))
    name = f"placer-fra-{next(_names)}"
    onprem_admin.create_bucket(Bucket=name,
                               CreateBucketConfiguration={"LocationConstraint": constraint})
    uri = f"s3://{name}/out/"
    if refused is None:
        assert store.resolve(uri).location == FRA
        store.put_json(f"{uri}m.json", {"a": 1}, allowed={FRA})
        return
    for attempt in (lambda: store.resolve(uri),
                    lambda: store.put_json(f"{uri}m.json", {"a": 1}, allowed={FRA})):
        with pytest.raises(ResidencyError) as info:
            attempt()
        assert refused.format(b=name) in str(info.value)
    assert onprem_admin.list_objects_v2(Bucket=name)["KeyCount"] == 0


def test_one_bucket_name_on_both_stores_is_refused(
        tmp_path: Any, cloud_env: None, onprem_endpoint: str, admin: Any,
        onprem_admin: Any) -> None:
    from placer.backends import storage_for
    from placer.errors import InventoryError
    from placer.models import GpuPool, Location, ResolvedSite

    name = f"placer-both-{next(_names)}"
    admin.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": EU})
    onprem_admin.create_bucket(Bucket=name)
    with pytest.raises(InventoryError) as info:
        _inventory(tmp_path, f"s3://{name}/fra", onprem_endpoint, aws_storage=f"s3://{name}/aws")
    [detail] = info.value.details
    assert detail.field == "sites.aws-fra.storage" and detail.line is not None
    assert detail.msg == (
        f"bucket s3://{name} is on the cloud store here and on the on-prem store "
        f"{onprem_endpoint} for site 'fra-dc': one bucket name must mean one bucket; rename "
        "one of them")

    # The same rule when storage is built from sites made by hand.
    fra = ResolvedSite(name="fra-dc", kind="onprem",
                       location=Location(provider="onprem", region="fra-dc1", country="DE"),
                       pools=(GpuPool(gpu="A100-80GB", count=8, cost_per_gpu_hour=1),),
                       storage=f"s3://{name}/fra", storage_endpoint=onprem_endpoint)
    other = fra.model_copy(update={"name": "fra-dc-b",
                                   "storage_endpoint": onprem_endpoint.replace("127.0.0.1",
                                                                               "localhost")})
    with pytest.raises(InventoryError, match="one bucket name must mean one bucket"):
        storage_for([fra, other])


# -- the storage contract (tests/backends/storage_contract.py) ------------------------------------
class TestS3StorageContract(StorageContract):
    @pytest.fixture
    def world(self, endpoint: str, session: Any) -> StorageWorld:
        return s3_world(S3Side(endpoint, session))
