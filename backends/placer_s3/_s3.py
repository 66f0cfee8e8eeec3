"""The S3 storage backend: where a dataset lives, its tags and size; verified, guarded copies.

boto3 is imported only when a client is first needed, so importing this module (and
``import placer``) stays SDK-free. Endpoint and credentials come from boto3's standard chain
(``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, instance roles, ...) unless an
``endpoint_url`` or a ``session`` is given.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlencode

from placer.errors import (
    BackendError,
    BackendUnavailableError,
    DatasetNotFoundError,
    ResidencyError,
)
from placer.storage import (
    DEFAULT_TTL_S,
    BucketFacts,
    CallingReader,
    ObjectInfo,
    ObjectStore,
    PartReport,
    Replica,
    StoredObject,
    clean_store_tags,
    split_uri,
)
from placer_s3._errors import map_client_error

if TYPE_CHECKING:
    from placer.models import Location, StoreCredentials
    from placer.storage import ObjectReader

# CopyObject and PutObject move at most 5 GiB in one request; larger objects need a multipart
# copy, whose SHA-256 is a composite S3 cannot compare with the source's. Refused until then.
MAX_SINGLE_COPY = 5 * 1024**3
# What an AWS region name looks like (us-east-1, eu-central-2, us-gov-west-1, ap-southeast-4).
_AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


def parse_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``; the key may be empty or end in ``/``."""
    return split_uri(uri, "s3")


def location_key(constraint: str | None) -> str:
    """GetBucketLocation's answer → placer's location key.

    S3 answers ``None`` (or ``""``) for us-east-1 and the legacy ``"EU"`` for eu-west-1.

    >>> location_key(None), location_key("EU"), location_key("eu-central-1")
    ('aws:us-east-1', 'aws:eu-west-1', 'aws:eu-central-1')
    """
    region = constraint or "us-east-1"
    return f"aws:{'eu-west-1' if region == 'EU' else region}"


def rule_prefix(rule: Mapping[str, Any]) -> str:
    """The keys a replication rule copies, as a prefix (``""``: every key).

    A rule filtered by tags only may copy any key, so it counts for every key (a partial copy
    is a copy).

    >>> rule_prefix({"Filter": {"Prefix": "ds/"}}), rule_prefix({"Prefix": "old/"})
    ('ds/', 'old/')
    >>> rule_prefix({"Filter": {"And": {"Prefix": "a/", "Tags": []}}})
    'a/'
    >>> rule_prefix({"Filter": {"Tag": {"Key": "k", "Value": "v"}}})
    ''
    """
    filt = rule.get("Filter")
    if isinstance(filt, Mapping):
        if "Prefix" in filt:
            return str(filt.get("Prefix") or "")
        both = filt.get("And")
        return str(both.get("Prefix") or "") if isinstance(both, Mapping) else ""
    return str(rule.get("Prefix") or "")


class S3Resolver(ObjectStore):
    """Reads dataset facts from S3 and copies data between buckets without leaving the policy.

    The store's primitives for :class:`placer.storage.ObjectStore`, which holds the resolve,
    residency guard, verified copy (inside S3, or from and to another store) and verify.

    A bucket's location is what its store says (docs/storage.md, "Where a bucket is"). By
    default the store is a cloud one (AWS S3, or anything answering for itself): each
    bucket's location is its ``GetBucketLocation``. With ``onprem_location`` the store is an
    on-prem site's own S3-compatible store (MinIO, Ceph): it has no geography, so every bucket
    on it is at the site, unless the store itself names a cloud region in another country,
    which is refused (:class:`ResidencyError`) rather than guessed at.

    Args:
        endpoint_url: an S3-compatible endpoint (tests pass a ``moto_server``'s); ``None``
            lets boto3 find one in the environment, or use AWS.
        session: a ``boto3.session.Session`` to take credentials and region from; ``None``
            builds one from boto3's standard chain when first needed.
        page_size: objects per ListObjectsV2 page (S3's maximum is 1000).
        max_attempts: tries per call, with botocore's "standard" backoff on throttling and
            transient errors; the executor retries whole steps on top of this.
        onprem_location: this endpoint is the on-prem store of a site at this location (an
            ``onprem`` :class:`~placer.models.Location`, with its country); needs
            ``endpoint_url``.
        cache_ttl_s: how long :meth:`resolve` reuses a bucket's facts (seconds).
        clock: epoch seconds, for the cache and the facts' provenance (``time.time``).
        credentials_ref: where this store's credentials are (a site's
            ``storage_credentials``: a profile, or the names of the environment variables
            holding the keys), read when the first client is made; ``None``: boto3's chain.
    """

    name = "s3"
    schemes = ("s3",)
    native = "sha256"
    serves_onprem = True
    head_operation = "HeadObject"
    list_operation = "ListObjectsV2"
    object_tags_operation = "GetObjectTagging"
    # Multipart uploads: every part but the last at least 5 MiB, at most 10,000 parts
    # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html).
    multipart = True
    part_algorithm = "sha256"
    min_part_size = 5 * 1024 * 1024
    max_parts = 10_000

    def __init__(self, *, endpoint_url: str | None = None, session: Any = None,
                 page_size: int = 1000, max_attempts: int = 5,
                 onprem_location: Location | None = None, cache_ttl_s: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] | None = None,
                 credentials_ref: StoreCredentials | None = None) -> None:
        if onprem_location is not None:
            if onprem_location.provider != "onprem":
                raise ValueError(f"onprem_location must be an on-prem location, not "
                                 f"{onprem_location.key}: a cloud store says where its "
                                 "buckets are")
            if not endpoint_url:
                raise ValueError("an on-prem store needs its endpoint_url: without one, boto3 "
                                 "talks to a cloud store, which says where its buckets are")
        self.endpoint_url = endpoint_url
        self.onprem_location = onprem_location
        self.page_size = page_size
        self.max_attempts = max_attempts
        self._session = session
        self.credentials_ref = credentials_ref
        self._clients: dict[str, Any] = {}
        self._regions: dict[str, str] = {}
        self._signing: dict[str, str | None] = {}  # bucket → region its requests are signed for
        self._evidence: dict[str, str] = {}
        self.ttl_s = cache_ttl_s
        if clock is not None:
            self.clock = clock

    def __repr__(self) -> str:  # never show the session or the keys: they are credentials
        where = f", onprem_location={self.onprem_location.key!r}" if self.onprem_location else ""
        return f"S3Resolver(endpoint_url={self.endpoint_url!r}{where})"

    # -- clients ------------------------------------------------------------------------------
    def _client(self, region: str | None = None) -> Any:
        """A client per region: S3 wants each bucket's requests signed for its own region."""
        key = region or ""
        if key not in self._clients:
            try:
                import boto3
                from botocore.config import Config
            except ImportError as exc:
                raise BackendUnavailableError(
                    "the s3 backend needs boto3: pip install 'placer[s3]'") from exc
            if self._session is None:
                self._session = boto3.session.Session(**_session_args(self.credentials_ref))
            # 32 kept-alive connections: placer.transfer has up to 2 x 8 requests in flight
            # per endpoint (parts, and the heads, tags and finishes asked beside them).
            config = Config(retries={"mode": "standard", "max_attempts": self.max_attempts},
                            connect_timeout=10, read_timeout=60, max_pool_connections=32)
            self._clients[key] = self._session.client(
                "s3", region_name=region or self._session.region_name or "us-east-1",
                endpoint_url=self.endpoint_url, config=config)
        return self._clients[key]

    def _call(self, uri: str, operation: str, fn: Callable[[], Any]) -> Any:
        """Run one SDK call; every SDK exception leaves as a placer error (see ``_errors``)."""
        try:
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError as exc:
            raise BackendUnavailableError(
                "the s3 backend needs boto3: pip install 'placer[s3]'") from exc

        try:
            return fn()
        except (ClientError, BotoCoreError) as exc:
            raise map_client_error(exc, uri, operation) from exc

    def location(self, uri: str, *, fresh: bool = False) -> str:
        """The location key of the bucket ``uri`` names, from its store.

        A cloud store: ``aws:<region>`` from ``GetBucketLocation``. An on-prem store: the
        site's location, once ``GetBucketLocation`` has shown the bucket exists and names no
        cloud region elsewhere (see :meth:`_onprem_answer`).

        Cached per bucket (a bucket's region cannot change while it exists); ``fresh=True``
        asks the store again, for the residency guard: a bucket deleted and re-created
        elsewhere during a long run must not inherit its old answer.

        Raises:
            DatasetNotFoundError: no such bucket.
            ResidencyError: an on-prem store names a cloud region outside the site's country.
        """
        bucket, _ = parse_uri(uri)
        if fresh or bucket not in self._regions:
            answer = self._call(uri, "GetBucketLocation",
                                lambda: self._client().get_bucket_location(Bucket=bucket))
            constraint = answer.get("LocationConstraint") or None
            if self.onprem_location is None:
                key = location_key(constraint)
                self._signing[bucket] = key.removeprefix("aws:")
                quirk = {None: ": no region, which S3 answers for us-east-1",
                         "EU": ": 'EU', S3's legacy name for eu-west-1"}.get(constraint, "")
                self._evidence[bucket] = f"GetBucketLocation({bucket}){quirk}"
            else:
                key, self._evidence[bucket] = self._onprem_answer(uri, bucket, constraint)
                # Sign for the store's own region name if it has one (MinIO's --region, a Ceph
                # zonegroup); else the session's default.
                self._signing[bucket] = "eu-west-1" if constraint == "EU" else constraint
            self._regions[bucket] = key
        return self._regions[bucket]

    def _onprem_answer(self, uri: str, bucket: str, constraint: str | None) -> tuple[str, str]:
        """(location key, evidence) of a bucket on this on-prem store.

        The store has no geography: the site's location is the truth for its buckets. A store
        may still carry a region name (MinIO's ``--region``, a Ceph zonegroup); a name that is
        no cloud region, or a cloud region in the site's own country, does not contradict the
        inventory. A cloud region in another country, or one placer's catalog cannot place,
        does: refused, never guessed.
        """
        from placer.catalog import default_catalog

        assert self.onprem_location is not None
        site = self.onprem_location
        said = f"on-prem store {self.endpoint_url}, at {site.key} ({site.country})"
        if constraint is None:
            return site.key, f"{said}; GetBucketLocation({bucket}): no region"
        cloud = location_key(constraint)
        catalog = default_catalog()
        if cloud in catalog:
            country = catalog.location(cloud).country
            if country != site.country:
                raise ResidencyError(
                    f"{uri}: the on-prem store {self.endpoint_url} reports bucket {bucket} in "
                    f"{cloud} ({country}), but the inventory puts this store at {site.key} in "
                    f"{site.country}; refusing to guess which is true. Fix the store's region "
                    "setting or the inventory")
        elif _AWS_REGION.match(constraint):
            raise ResidencyError(
                f"{uri}: the on-prem store {self.endpoint_url} reports bucket {bucket} in "
                f"region {constraint!r}, which placer's catalog cannot place, so it cannot be "
                f"confirmed to be in {site.country} where the inventory puts this store; "
                "refusing to guess")
        return site.key, f"{said}; GetBucketLocation({bucket}): {constraint!r}"

    def _bucket_client(self, uri: str) -> Any:
        bucket, _ = parse_uri(uri)
        self.location(uri)
        return self._client(self._signing.get(bucket))

    def forget(self, uri: str | None = None) -> None:
        """Drop the cached facts and region of ``uri``'s bucket (of every bucket if ``None``)."""
        super().forget(uri)
        if uri is None:
            self._regions.clear()
        else:
            self._regions.pop(parse_uri(uri)[0], None)

    # -- the store's primitives (the algorithm is placer.storage.ObjectStore's) ----------------
    def bucket_facts(self, uri: str) -> BucketFacts:
        """``GetBucketLocation``, ``GetBucketTagging`` and ``GetBucketReplication``: each
        enabled replication rule's destination bucket is a copy, at that bucket's location."""
        bucket, _ = parse_uri(uri)
        location = self.location(uri)
        client = self._bucket_client(uri)
        tags, evidence = self._bucket_tags(uri, client, bucket)
        replicas, how = self._replicas(uri, client, bucket)
        return BucketFacts(location, self._evidence[bucket], tags, evidence, replicas, how,
                           provider=location.partition(":")[0])

    def _replicas(self, uri: str, client: Any, bucket: str) -> tuple[tuple[Replica, ...], str]:
        """The copies ``bucket``'s replication rules make, and the evidence.

        A disabled rule makes none. A destination is located like any bucket
        (:meth:`location`, on this store); one placer's catalog cannot place is a copy at an
        unknown location (the dataset is then held). A destination that cannot be read
        (missing, access denied) is an error: where a copy is must never be assumed.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        from placer.catalog import default_catalog

        try:
            answer = client.get_bucket_replication(Bucket=bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ReplicationConfigurationNotFoundError":
                return (), f"GetBucketReplication({bucket}): no replication"
            if code in ("NotImplemented", "XNotImplemented") and self.onprem_location:
                # An on-prem store without bucket replication (older Ceph RGW): its buckets
                # are at the site, and it keeps no copies of them elsewhere by this route.
                return (), f"GetBucketReplication({bucket}): not implemented by this store"
            raise map_client_error(exc, uri, "GetBucketReplication") from exc
        except BotoCoreError as exc:
            raise map_client_error(exc, uri, "GetBucketReplication") from exc
        catalog = default_catalog()
        out: list[Replica] = []
        said: list[str] = []
        for rule in (answer.get("ReplicationConfiguration") or {}).get("Rules", ()):
            rid = str(rule.get("ID") or "(no id)")
            if rule.get("Status") != "Enabled":
                said.append(f"rule {rid} disabled")
                continue
            dest = str((rule.get("Destination") or {}).get("Bucket", "")).rsplit(":", 1)[-1]
            prefix = rule_prefix(rule)
            try:
                where = self.location(f"s3://{dest}/", fresh=True)
            except BackendError as exc:
                raise BackendError(
                    f"{uri}: bucket {bucket}'s replication rule {rid} copies to bucket "
                    f"{dest}, whose location cannot be read ({exc}); where a copy is cannot "
                    "be assumed") from exc
            known = where.startswith("onprem:") or where in catalog
            how = (f"rule {rid}{f' (prefix {prefix!r})' if prefix else ''} → {dest} in {where}"
                   + ("" if known else " (not in placer's catalog: unknown)"))
            out.append(Replica(where if known else None, how, prefix))
            said.append(how)
        return tuple(out), f"GetBucketReplication({bucket}): " + ("; ".join(said) or "no rules")

    def _bucket_tags(self, uri: str, client: Any, bucket: str) -> tuple[dict[str, str], str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = client.get_bucket_tagging(Bucket=bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchTagSet":
                return {}, "GetBucketTagging (no tag set)"
            raise map_client_error(exc, uri, "GetBucketTagging") from exc
        except BotoCoreError as exc:  # no answer: connection, credentials
            raise map_client_error(exc, uri, "GetBucketTagging") from exc
        return self._tag_dict(uri, bucket, None, answer), "GetBucketTagging"

    @staticmethod
    def _tag_pairs(answer: Mapping[str, Any]) -> list[tuple[str, str]]:
        """A TagSet's (key, value) pairs. A tag with no ``Value`` has the empty value: S3
        allows empty values, and some stores (moto among them) leave ``<Value>`` out."""
        return [(str(t.get("Key", "")), str(t.get("Value") or ""))
                for t in answer.get("TagSet", ())]

    @classmethod
    def _tag_dict(cls, uri: str, bucket: str, key: str | None,
                  answer: Mapping[str, Any]) -> dict[str, str]:
        """A TagSet in its stored form (:func:`placer.tags.clean_tags`).

        Raises:
            InvalidTagError: a key or value with an invisible character, or two keys that are
                one key once normalised; never dropped, since a dropped tag can make a rule miss.
        """
        return clean_store_tags(uri, bucket, key, cls._tag_pairs(answer))

    def object_tag_pairs(self, obj: StoredObject) -> list[tuple[str, str]]:
        bucket, key = parse_uri(obj.uri)
        client = self._bucket_client(obj.uri)
        return self._tag_pairs(self._call(obj.uri, "GetObjectTagging", lambda: (
            client.get_object_tagging(Bucket=bucket, Key=key))))

    def delete(self, uri: str) -> None:
        """DeleteObject (none there: nothing to do; a versioned bucket keeps the old version
        behind a delete marker): how the executor removes a LOST attempt's outputs, only
        under that attempt's own prefix (placer.executor.LostAttempts)."""
        bucket, key = parse_uri(uri)
        client = self._bucket_client(uri)
        self._call(uri, "DeleteObject", lambda: client.delete_object(Bucket=bucket, Key=key))

    def head(self, uri: str) -> StoredObject | None:
        """HeadObject with ``ChecksumMode``: S3's full-object SHA-256, when it kept one (not a
        multipart composite ``…-N``), is the object's checksum."""
        bucket, key = parse_uri(uri)
        client = self._bucket_client(uri)
        try:
            head = self._call(uri, "HeadObject", lambda: client.head_object(
                Bucket=bucket, Key=key, ChecksumMode="ENABLED"))
        except DatasetNotFoundError:
            return None
        stored = str(head.get("ChecksumSHA256") or "")
        # A multipart object's SHA-256 is the composite of its parts' (``…-N`` on S3; moto
        # leaves the ``-N`` out, but its ETag still ends in ``-N``), never the object's own.
        composite = "-" in stored or re.search(r"-\d+\"?$", str(head.get("ETag", "")))
        checksums = {} if not stored else {
            "sha256-composite" if composite else "sha256": _hex(stored.split("-")[0])}
        return StoredObject(uri, int(head["ContentLength"]), str(head.get("ETag", "")),
                            checksums, head.get("ContentType"), dict(head.get("Metadata") or {}))

    def pages(self, prefix_uri: str) -> Iterator[list[ObjectInfo]]:
        bucket, prefix = parse_uri(prefix_uri)
        client = self._bucket_client(prefix_uri)
        it = iter(client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}))
        while True:
            page = self._call(prefix_uri, "ListObjectsV2", lambda: next(it, None))
            if page is None:
                return
            yield [ObjectInfo(f"s3://{bucket}/{o['Key']}", int(o["Size"]))
                   for o in page.get("Contents", ())]

    @staticmethod
    def _single_request(uri: str, size: int) -> None:
        if size > MAX_SINGLE_COPY:
            raise BackendError(f"{uri}: {size} bytes is over S3's 5 GiB single-request limit; "
                               "a multipart verified copy is not implemented yet")

    def copy_one(self, src: StoredObject, dst_uri: str) -> None:
        """``CopyObject`` with ``ChecksumAlgorithm=SHA256`` (S3 computes the destination's
        SHA-256 from the bytes it wrote) and ``CopySourceIfMatch`` the version hashed."""
        self._single_request(src.uri, src.size)
        src_bucket, src_key = parse_uri(src.uri)
        dst_bucket, dst_key = parse_uri(dst_uri)
        client = self._bucket_client(dst_uri)
        pin = {"CopySourceIfMatch": src.version} if src.version else {}
        self._call(dst_uri, "CopyObject", lambda: client.copy_object(
            Bucket=dst_bucket, Key=dst_key, CopySource={"Bucket": src_bucket, "Key": src_key},
            ChecksumAlgorithm="SHA256", MetadataDirective="COPY", TaggingDirective="COPY",
            **pin))

    def open_read(self, obj: StoredObject) -> ObjectReader:
        """``GetObject`` with ``IfMatch`` the version hashed."""
        bucket, key = parse_uri(obj.uri)
        client = self._bucket_client(obj.uri)
        pin = {"IfMatch": obj.version} if obj.version else {}
        body = self._call(obj.uri, "GetObject", lambda: client.get_object(
            Bucket=bucket, Key=key, **pin))["Body"]
        return CallingReader(body, partial(self._call, obj.uri, "GetObject"))

    def write(self, uri: str, body: IO[bytes], *, size: int, checksums: Mapping[str, str],
              content_type: str | None = None, metadata: Mapping[str, str] | None = None,
              tags: Sequence[tuple[str, str]] = ()) -> StoredObject | None:
        """``PutObject`` with ``ChecksumSHA256``: S3 refuses bytes that do not match it, and
        keeps it as the object's checksum (``ChecksumAlgorithm`` names it, so a store that
        only keeps what the SDK's algorithm header names keeps it too). The object as S3's
        answer reports it: its ETag and the SHA-256 it checked (``None`` without one)."""
        self._single_request(uri, size)
        bucket, key = parse_uri(uri)
        client = self._bucket_client(uri)
        extra = _object_fields(content_type, metadata, tags)
        if "sha256" in checksums:
            extra["ChecksumSHA256"] = _b64(checksums["sha256"])
            extra["ChecksumAlgorithm"] = "SHA256"
        answer = self._call(uri, "PutObject", lambda: client.put_object(
            Bucket=bucket, Key=key, Body=body, ContentLength=size, **extra))
        stored = _hex(answer.get("ChecksumSHA256"))
        if not stored or not answer.get("ETag"):
            return None
        return StoredObject(uri, size, str(answer["ETag"]), {"sha256": stored}, content_type,
                            dict(metadata or {}))

    # -- ranged reads and multipart writes (placer.transfer) -----------------------------------
    def read_range(self, obj: StoredObject, start: int, length: int) -> bytes:
        """``GetObject`` with ``Range`` and ``IfMatch`` the version hashed."""
        bucket, key = parse_uri(obj.uri)
        client = self._bucket_client(obj.uri)
        pin = {"IfMatch": obj.version} if obj.version else {}
        body = self._call(obj.uri, "GetObject", lambda: client.get_object(
            Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}", **pin))["Body"]
        try:
            return bytes(self._call(obj.uri, "GetObject", body.read))
        finally:
            body.close()

    def start_parts(self, uri: str, *, content_type: str | None = None,
                    metadata: Mapping[str, str] | None = None,
                    tags: Sequence[tuple[str, str]] = ()) -> str:
        """``CreateMultipartUpload`` with ``ChecksumAlgorithm=SHA256``: every part is checked
        by S3 against the SHA-256 sent with it."""
        bucket, key = parse_uri(uri)
        client = self._bucket_client(uri)
        extra = _object_fields(content_type, metadata, tags)
        answer = self._call(uri, "CreateMultipartUpload", lambda: client.create_multipart_upload(
            Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", **extra))
        return str(answer["UploadId"])

    def put_part(self, uri: str, upload: str, number: int, data: bytes, digest: str
                 ) -> PartReport:
        """``UploadPart`` with ``ChecksumSHA256`` (S3 refuses bytes that do not match); the
        SHA-256 S3 answers with. ``ChecksumAlgorithm`` is named too: the SDK then sends the
        value given (it computes none of its own), and S3 answers with the checksum."""
        bucket, key = parse_uri(uri)
        client = self._bucket_client(uri)
        answer = self._call(uri, "UploadPart", lambda: client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=data,
            ContentLength=len(data), ChecksumAlgorithm="SHA256",
            ChecksumSHA256=_b64(digest)))  # digest: SHA-256 hex
        return _part(number, len(data), answer)

    def listed_parts(self, uri: str, upload: str) -> dict[int, PartReport] | None:
        """``ListParts``, every page; ``None`` once the upload is gone (``NoSuchUpload``)."""
        bucket, key = parse_uri(uri)
        client = self._bucket_client(uri)
        found: dict[int, PartReport] = {}
        marker = 0
        while True:
            page = self._upload_call(uri, "ListParts", partial(
                client.list_parts, Bucket=bucket, Key=key, UploadId=upload,
                PartNumberMarker=marker))
            if page is None:
                return None
            for p in page.get("Parts", ()):
                n = int(p["PartNumber"])
                found[n] = _part(n, int(p["Size"]), p)
            if not page.get("IsTruncated"):
                return found
            marker = int(page["NextPartNumberMarker"])

    def finish_parts(self, uri: str, upload: str, parts: Sequence[PartReport]) -> str | None:
        """``CompleteMultipartUpload``; S3's composite SHA-256 (the SHA-256 of the parts'
        SHA-256s, in order) as ``sha256-composite:<hex>``, when it answers one."""
        bucket, key = parse_uri(uri)
        client = self._bucket_client(uri)
        answer = self._call(uri, "CompleteMultipartUpload", lambda: (
            client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": [
                    {"PartNumber": p.number, "ETag": p.token}
                    | ({"ChecksumSHA256": _b64(p.digest[7:])} if p.digest[:7] == "sha256:"
                       else {})
                    for p in parts]})))
        composite = str(answer.get("ChecksumSHA256") or "")
        if not composite:
            return None
        return f"sha256-composite:{_hex(composite.split('-')[0])}"

    def abort_parts(self, uri: str, upload: str) -> None:
        """``AbortMultipartUpload`` (an upload already gone is not an error)."""
        bucket, key = parse_uri(uri)
        client = self._bucket_client(uri)
        self._upload_call(uri, "AbortMultipartUpload", lambda: client.abort_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload))

    def _upload_call(self, uri: str, operation: str, fn: Callable[[], Any]) -> Any:
        """One call on a multipart upload; ``None`` if the upload is gone (``NoSuchUpload``:
        completed, aborted, or expired by a lifecycle rule)."""
        from botocore.exceptions import ClientError

        try:
            return self._call(uri, operation, fn)
        except BackendError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and (
                    cause.response.get("Error", {}).get("Code") == "NoSuchUpload"):
                return None
            raise


def _part(number: int, size: int, answer: Mapping[str, Any]) -> PartReport:
    """A part as S3 reports it: its SHA-256 when S3 answers one; else its ETag, which S3
    makes the MD5 of the part's bytes (unless encrypted with SSE-C or SSE-KMS, where S3 keeps
    the SHA-256 sent: https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html, ETag)."""
    etag = str(answer.get("ETag", ""))
    if answer.get("ChecksumSHA256"):
        digest = f"sha256:{_hex(answer['ChecksumSHA256'])}"
    elif re.fullmatch(r'"?[0-9a-f]{32}"?', etag):
        digest = f"md5:{etag.strip(chr(34))}"
    else:
        digest = ""
    return PartReport(number, size, digest, etag)


def _b64(digest: str) -> str:
    return base64.b64encode(bytes.fromhex(digest)).decode()


def _hex(b64: str | None) -> str:
    return base64.b64decode(b64).hex() if b64 else ""


def _session_args(ref: StoreCredentials | None) -> dict[str, str]:
    """boto3 ``Session`` arguments from a credentials reference: a profile, or the values of
    the environment variables it names (read now; an unset one is an error naming it, never
    a silent fall back to other credentials)."""
    if ref is None:
        return {}
    if ref.profile:
        return {"profile_name": ref.profile}
    out: dict[str, str] = {}
    for arg, env in (("aws_access_key_id", ref.access_key_id_env),
                     ("aws_secret_access_key", ref.secret_access_key_env),
                     ("aws_session_token", ref.session_token_env)):
        if env is None:
            continue
        value = os.environ.get(env)
        if not value:
            raise BackendUnavailableError(
                f"the s3 store's credentials are in the environment variable {env} "
                "(storage_credentials), which is not set")
        out[arg] = value
    return out


def _object_fields(content_type: str | None, metadata: Mapping[str, str] | None,
                   tags: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """What ``PutObject`` and ``CreateMultipartUpload`` both take about the object written."""
    extra: dict[str, Any] = {"Metadata": dict(metadata or {})}
    if content_type:
        extra["ContentType"] = content_type
    if tags:
        extra["Tagging"] = urlencode(list(tags))
    return extra
