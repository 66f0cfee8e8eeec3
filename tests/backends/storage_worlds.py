"""The storage contract's worlds (``storage_contract.StorageWorld``) on real local servers.

``S3Side`` is a ``moto_server`` (buckets in any region); ``GCSSide`` two ``fake-gcs-server``
processes, one in europe-west4 and one in us-central1 (the fake gives every bucket its server's
location). Each makes uniquely named buckets and reads and writes objects behind the stores'
backs, as another client would. The worlds combine them: S3 alone, GCS alone, S3 → GCS and
GCS → S3.
"""

from __future__ import annotations

import itertools
from typing import Any

from placer.backends import StorageRouter
from tests.backends.storage_contract import StorageWorld, Tags

_names = itertools.count()
EU, WEST, US = "eu-central-1", "eu-west-1", "us-east-1"
GCS_EU, GCS_US = "gcp:europe-west4", "gcp:us-central1"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.partition("://")[2].partition("/")
    return bucket, key


class S3Side:
    """A moto_server, its resolver (two objects a page) and an admin client."""

    def __init__(self, endpoint: str, session: Any) -> None:
        from placer_s3 import S3Resolver

        self.store = S3Resolver(endpoint_url=endpoint, session=session, page_size=2)
        self.admin = session.client("s3", endpoint_url=endpoint)

    def bucket(self, region: str, tags: Tags | None = None) -> str:
        name = f"placer-contract-{next(_names)}-{region}"
        conf = {} if region == US else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        self.admin.create_bucket(Bucket=name, **conf)
        if tags:
            self.admin.put_bucket_tagging(Bucket=name, Tagging={
                "TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
        return f"s3://{name}/"

    def put(self, uri: str, data: bytes) -> None:
        bucket, key = _split(uri)
        self.admin.put_object(Bucket=bucket, Key=key, Body=data)

    def get(self, uri: str) -> bytes:
        bucket, key = _split(uri)
        return self.admin.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]

    def names(self, prefix: str) -> list[str]:
        bucket, key = _split(prefix)
        found = self.admin.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
        return sorted(f"s3://{bucket}/{o['Key']}" for o in found)


class GCSSide:
    """Two fake-gcs-servers (europe-west4, us-central1), a resolver and an admin client each.

    This fake-gcs-server does not store bucket labels: the labels a bucket is made with are set
    on the server's real ``buckets.get`` answer before a resolver reads it.
    """

    def __init__(self, eu_url: str, us_url: str) -> None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        from placer_gcs import GCSResolver

        self.urls = {GCS_EU: eu_url, GCS_US: us_url}
        self.stores = {loc: GCSResolver(endpoint_url=url, credentials=AnonymousCredentials(),
                                        project="test", page_size=2)
                       for loc, url in self.urls.items()}
        self.admins = {loc: storage.Client(project="test", credentials=AnonymousCredentials(),
                                           client_options={"api_endpoint": url})
                       for loc, url in self.urls.items()}
        self.labels: dict[str, Tags] = {}
        self.where: dict[str, str] = {}  # bucket → location
        for store in self.stores.values():
            self._serve_labels(store)

    def _serve_labels(self, store: Any) -> None:
        real = store._bucket

        def bucket_with_labels(uri: str) -> Any:
            b = real(uri)
            if b.name in self.labels:
                b._properties["labels"] = dict(self.labels[b.name])
            return b

        store._bucket = bucket_with_labels

    @property
    def eu(self) -> Any:
        return self.stores[GCS_EU]

    def bucket(self, location: str, labels: Tags | None = None) -> str:
        name = f"placer-contract-{next(_names)}"
        self.admins[location].create_bucket(name)
        self.where[name] = location
        if labels:
            self.labels[name] = dict(labels)
        return f"gs://{name}/"

    def _blob(self, uri: str) -> Any:
        bucket, key = _split(uri)
        return self.admins[self.where[bucket]].bucket(bucket).blob(key)

    def put(self, uri: str, data: bytes) -> None:
        self._blob(uri).upload_from_string(data)

    def get(self, uri: str) -> bytes:
        return self._blob(uri).download_as_bytes()  # type: ignore[no-any-return]

    def names(self, prefix: str) -> list[str]:
        bucket, key = _split(prefix)
        admin = self.admins[self.where[bucket]]
        return sorted(f"gs://{bucket}/{b.name}" for b in admin.list_blobs(bucket, prefix=key))


def _sides(*sides: Any) -> tuple[Any, Any, Any]:
    """put, get, names routed to the side that serves a URI's scheme."""
    by_scheme = {("s3" if isinstance(s, S3Side) else "gs"): s for s in sides}

    def side(uri: str) -> Any:
        return by_scheme[uri.partition("://")[0]]

    return (lambda uri, data: side(uri).put(uri, data), lambda uri: side(uri).get(uri),
            lambda uri: side(uri).names(uri))


def _routed(router: StorageRouter, gcs: GCSSide, location: str) -> str:
    """A GCS bucket at ``location``, routed to the resolver of its server."""
    root = gcs.bucket(location)
    router.buckets.setdefault("gs", {})[_split(root)[0]] = gcs.stores[location]
    return root


def s3_world(s3: S3Side) -> StorageWorld:
    put, get, names = _sides(s3)
    return StorageWorld(
        router=StorageRouter({"s3": s3.store}), src=s3.store, dst=s3.store,
        src_location=f"aws:{EU}", dst_location=f"aws:{WEST}", algorithm="sha256",
        source_bucket=lambda tags: s3.bucket(EU, tags), dest_bucket=lambda: s3.bucket(WEST),
        outside_bucket=lambda: s3.bucket(US), put=put, get=get, names=names)


def gcs_world(gcs: GCSSide) -> StorageWorld:
    put, get, names = _sides(gcs)
    router = StorageRouter({"gs": gcs.eu})
    return StorageWorld(
        router=router, src=gcs.eu, dst=gcs.eu, src_location=GCS_EU, dst_location=GCS_EU,
        algorithm="md5", source_bucket=lambda tags: gcs.bucket(GCS_EU, tags),
        dest_bucket=lambda: gcs.bucket(GCS_EU),
        outside_bucket=lambda: _routed(router, gcs, GCS_US), put=put, get=get, names=names)


def s3_to_gcs_world(s3: S3Side, gcs: GCSSide) -> StorageWorld:
    put, get, names = _sides(s3, gcs)
    router = StorageRouter({"s3": s3.store, "gs": gcs.eu})
    return StorageWorld(
        router=router, src=s3.store, dst=gcs.eu, src_location=f"aws:{EU}",
        dst_location=GCS_EU, algorithm="sha256",
        source_bucket=lambda tags: s3.bucket(EU, tags), dest_bucket=lambda: gcs.bucket(GCS_EU),
        outside_bucket=lambda: _routed(router, gcs, GCS_US), put=put, get=get, names=names)


def gcs_to_s3_world(s3: S3Side, gcs: GCSSide) -> StorageWorld:
    put, get, names = _sides(s3, gcs)
    return StorageWorld(
        router=StorageRouter({"s3": s3.store, "gs": gcs.eu}), src=gcs.eu, dst=s3.store,
        src_location=GCS_EU, dst_location=f"aws:{EU}", algorithm="sha256",
        source_bucket=lambda tags: gcs.bucket(GCS_EU, tags), dest_bucket=lambda: s3.bucket(EU),
        outside_bucket=lambda: s3.bucket(US), put=put, get=get, names=names)
