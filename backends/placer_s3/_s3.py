"""The S3 storage backend: where a dataset lives, its tags and size; verified, guarded copies.

boto3 is imported only when a client is first needed, so importing this module (and
``import placer``) stays SDK-free. Endpoint and credentials come from boto3's standard chain
(``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, instance roles, ...) unless an
``endpoint_url`` or a ``session`` is given.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from placer.backends import DatasetFacts
from placer.errors import BackendError, BackendUnavailableError, ResidencyError
from placer_s3._copy import (
    AllowedLocations,
    CopyResult,
    ObjectInfo,
    is_allowed,
    split_uri,
    tree_digest,
)
from placer_s3._errors import ChecksumMismatchError, DatasetNotFoundError, map_client_error

# copy_object copies at most 5 GiB in one request; larger objects need a multipart copy,
# whose SHA-256 is a composite S3 cannot compare with the source's. Refused until implemented.
MAX_SINGLE_COPY = 5 * 1024**3
_CHUNK = 1024 * 1024


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


class S3Resolver:
    """Reads dataset facts from S3 and copies data between buckets without leaving the policy.

    Args:
        endpoint_url: an S3-compatible endpoint (tests pass a ``moto_server``'s); ``None``
            lets boto3 find one in the environment, or use AWS.
        session: a ``boto3.session.Session`` to take credentials and region from; ``None``
            builds one from boto3's standard chain when first needed.
        page_size: objects per ListObjectsV2 page (S3's maximum is 1000).
        max_attempts: tries per call, with botocore's "standard" backoff on throttling and
            transient errors; the executor retries whole steps on top of this.
    """

    name = "s3"

    def __init__(self, *, endpoint_url: str | None = None, session: Any = None,
                 page_size: int = 1000, max_attempts: int = 5,
                 bucket_locations: Mapping[str, str] | None = None) -> None:
        self.endpoint_url = endpoint_url
        # An S3-compatible store that is not AWS (MinIO or Ceph in a data centre) has no AWS
        # region to ask for: its operator declares where each bucket is.
        self.bucket_locations = dict(bucket_locations or {})
        self.page_size = page_size
        self.max_attempts = max_attempts
        self._session = session
        self._clients: dict[str, Any] = {}
        self._regions: dict[str, str] = {}

    def __repr__(self) -> str:  # never show the session: it holds credentials
        return f"S3Resolver(endpoint_url={self.endpoint_url!r})"

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
                self._session = boto3.session.Session()
            config = Config(retries={"mode": "standard", "max_attempts": self.max_attempts},
                            connect_timeout=10, read_timeout=60)
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
        """The location key of the bucket ``uri`` names (``aws:<region>``), from S3 itself.

        Cached per bucket (a bucket's region cannot change while it exists); ``fresh=True``
        asks S3 again, for the residency guard: a bucket deleted and re-created elsewhere
        during a long run must not inherit its old answer.
        """
        bucket, _ = parse_uri(uri)
        if bucket in self.bucket_locations:
            return self.bucket_locations[bucket]
        if fresh or bucket not in self._regions:
            answer = self._call(uri, "GetBucketLocation",
                                lambda: self._client().get_bucket_location(Bucket=bucket))
            self._regions[bucket] = location_key(answer.get("LocationConstraint"))
        return self._regions[bucket]

    def _bucket_client(self, uri: str) -> Any:
        where = self.location(uri)
        return self._client(where.removeprefix("aws:") if where.startswith("aws:") else None)

    # -- resolve ------------------------------------------------------------------------------
    def resolve(self, uri: str) -> DatasetFacts:
        """Location, tags and size of an object or a prefix, each with how it was obtained.

        ``s3://b/k`` is the object ``k`` if it exists, else the prefix ``k/``; ``s3://b/k/``
        is always a prefix. A prefix with a trailing ``/`` may be empty (an output prefix not
        yet written): its size is 0. Anything else that names no data is
        :class:`DatasetNotFoundError`.

        Tags: the bucket's, overridden key by key by the object's for a single object (the
        more specific statement wins; the evidence names every overridden key). Only "no tag
        set" means no tags: tags that cannot be read are an error, never ``{}``, because a
        missing residency tag could let a forbid rule miss.
        """
        bucket, key = parse_uri(uri)
        location = self.location(uri)
        client = self._bucket_client(uri)
        evidence = {"location": f"declared for bucket {bucket}" if bucket in self.bucket_locations
                    else f"GetBucketLocation({bucket})"}
        tags, evidence["tags"] = self._bucket_tags(uri, client, bucket)

        head = None
        if key and not key.endswith("/"):
            head = self._head(uri, client, bucket, key, missing_ok=True)
        if head is not None:
            size = int(head["ContentLength"])
            evidence["size"] = f"HeadObject: {size} bytes"
            obj_tags = self._tag_dict(self._call(uri, "GetObjectTagging", lambda: (
                client.get_object_tagging(Bucket=bucket, Key=key))))
            overridden = sorted(k for k in obj_tags if k in tags and tags[k] != obj_tags[k])
            tags = {**tags, **obj_tags}
            evidence["tags"] += " + GetObjectTagging" + (
                f" (object overrides bucket: {', '.join(overridden)})" if overridden else "")
        else:
            prefix = key if not key or key.endswith("/") else key + "/"
            size, count, pages = 0, 0, 0
            for page in self._pages(uri, client, bucket, prefix):
                pages += 1
                for obj in page.get("Contents", ()):
                    size, count = size + int(obj["Size"]), count + 1
            if count == 0 and key and not key.endswith("/"):
                raise DatasetNotFoundError(uri, "no such object, and no objects under "
                                           f"s3://{bucket}/{prefix}")
            evidence["size"] = (f"ListObjectsV2(prefix={prefix!r}): {count} objects, "
                                f"{size} bytes, {pages} pages")
        return DatasetFacts(uri=uri, location=location, size_gb=size / 1e9, tags=tags,
                            evidence=evidence)

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
        return self._tag_dict(answer), "GetBucketTagging"

    @staticmethod
    def _tag_dict(answer: dict[str, Any]) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in answer.get("TagSet", ())}

    def _head(self, uri: str, client: Any, bucket: str, key: str,
              missing_ok: bool = False) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self._call(uri, "HeadObject", lambda: client.head_object(
                Bucket=bucket, Key=key, ChecksumMode="ENABLED"))
        except DatasetNotFoundError:
            if missing_ok:
                return None
            raise
        return head

    def _pages(self, uri: str, client: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size})
        it = iter(pages)
        while True:
            page = self._call(uri, "ListObjectsV2", lambda: next(it, None))
            if page is None:
                return
            yield page

    def list_objects(self, uri: str) -> list[ObjectInfo]:
        """Every object under a prefix (``s3://b/p/``), sorted by key."""
        bucket, prefix = parse_uri(uri)
        client = self._bucket_client(uri)
        return [ObjectInfo(f"s3://{bucket}/{o['Key']}", int(o["Size"]))
                for page in self._pages(uri, client, bucket, prefix)
                for o in page.get("Contents", ())]

    # -- residency guard ----------------------------------------------------------------------
    def check_destination(self, uri: str, allowed: AllowedLocations) -> str:
        """The destination bucket's location if the policy allows it; else refuse.

        Called before any byte is written, so a retry or a failover can never write outside
        the allowed locations. A missing bucket is an error: buckets are never created here
        (an auto-created bucket lands wherever the client's region says, not where the data
        may go). The bucket's region is read from S3, never taken from the URI or config.
        """
        where = self.location(uri, fresh=True)  # DatasetNotFoundError if there is no bucket
        if not is_allowed(where, allowed):
            raise ResidencyError(f"refused to write {uri}: its bucket is in {where}, outside "
                                 "the locations the policy allows for this data")
        return where

    # -- checksums ----------------------------------------------------------------------------
    def _digest(self, uri: str, client: Any, bucket: str, key: str) -> tuple[int, str, str]:
        """(size, sha256 hex, ETag) of an object.

        The full-object SHA-256 S3 stored and validated at write time is used when there is
        one; otherwise (another algorithm, a multipart composite "…-N", none) the bytes are
        streamed and hashed here.
        """
        head = self._head(uri, client, bucket, key)
        assert head is not None
        size, etag = int(head["ContentLength"]), str(head.get("ETag", ""))
        stored = head.get("ChecksumSHA256")
        if stored and "-" not in stored:
            return size, base64.b64decode(stored).hex(), etag
        body = self._call(uri, "GetObject", lambda: client.get_object(
            Bucket=bucket, Key=key, IfMatch=etag) if etag else client.get_object(
            Bucket=bucket, Key=key))["Body"]
        h, n = hashlib.sha256(), 0
        try:
            for chunk in iter(lambda: self._call(uri, "GetObject", lambda: body.read(_CHUNK)), b""):
                h.update(chunk)
                n += len(chunk)
        finally:
            body.close()
        if n != size:
            raise ChecksumMismatchError(uri, f"{size} bytes", f"{n} bytes read")
        return size, h.hexdigest(), etag

    # -- copy and verify ----------------------------------------------------------------------
    def copy(self, src_uri: str, dst_uri: str, *, allowed: AllowedLocations) -> CopyResult:
        """Copy an object or a prefix (``…/`` → ``…/``) to another bucket, verified.

        ``s3://b/k`` without a trailing ``/`` is the object ``k`` if it exists, else the prefix
        ``k/``, copied to the destination as a prefix.

        The destination's region is checked against ``allowed`` (location keys, or a predicate
        on one) before anything is written; then each object is copied server-side with
        ``ChecksumAlgorithm=SHA256`` (S3 computes the destination's SHA-256 from the bytes it
        wrote) and only if the source is unchanged (``CopySourceIfMatch``). Success is reported
        only when every destination object has the source's size and SHA-256; otherwise
        :class:`ChecksumMismatchError`. Re-running a copy overwrites, so retries are safe.
        """
        self.check_destination(dst_uri, allowed)
        src_bucket, src_key = parse_uri(src_uri)
        dst_bucket, dst_key = parse_uri(dst_uri)
        if src_key and not src_key.endswith("/") and self._head(
                src_uri, self._bucket_client(src_uri), src_bucket, src_key,
                missing_ok=True) is None:
            # Like resolve(): ``s3://b/k`` names the object k if it exists, else the prefix k/
            # (a job's output is often a directory of parts).
            src_key += "/"
            dst_key = dst_key if dst_key.endswith("/") else dst_key + "/"
        if src_key and not src_key.endswith("/"):
            if dst_key == "" or dst_key.endswith("/"):
                dst_key += src_key.rsplit("/", 1)[-1]
            size, sha = self._copy_one(src_uri, src_bucket, src_key, dst_bucket, dst_key)
            return CopyResult(src_uri, f"s3://{dst_bucket}/{dst_key}", size, 1, f"sha256:{sha}")
        if dst_key and not dst_key.endswith("/"):
            raise BackendError(f"{dst_uri}: a prefix ({src_uri}) must be copied to a prefix "
                               "ending in '/'")
        objects = self.list_objects(src_uri)
        if not objects:
            raise DatasetNotFoundError(src_uri, "no objects to copy under this prefix")
        lines, total = [], 0
        for obj in objects:
            rel = parse_uri(obj.uri)[1][len(src_key):]
            size, sha = self._copy_one(obj.uri, src_bucket, src_key + rel, dst_bucket,
                                       dst_key + rel)
            lines.append(f"{rel}\t{size}\t{sha}\n")
            total += size
        return CopyResult(src_uri, f"s3://{dst_bucket}/{dst_key}", total, len(objects),
                          f"sha256-tree:{tree_digest(lines)}")

    def _copy_one(self, uri: str, src_bucket: str, src_key: str, dst_bucket: str,
                  dst_key: str) -> tuple[int, str]:
        src_client = self._bucket_client(uri)
        size, sha, etag = self._digest(uri, src_client, src_bucket, src_key)
        if size > MAX_SINGLE_COPY:
            raise BackendError(f"{uri}: {size} bytes is over the 5 GiB single-request copy "
                               "limit; multipart verified copy is not implemented yet")
        dst_uri = f"s3://{dst_bucket}/{dst_key}"
        dst_client = self._bucket_client(dst_uri)
        source = {"Bucket": src_bucket, "Key": src_key}
        self._call(dst_uri, "CopyObject", lambda: dst_client.copy_object(
            Bucket=dst_bucket, Key=dst_key, CopySource=source, CopySourceIfMatch=etag,
            ChecksumAlgorithm="SHA256", MetadataDirective="COPY", TaggingDirective="COPY"))
        self.verify(dst_uri, size=size, sha256=sha)
        return size, sha

    def verify(self, uri: str, *, size: int, sha256: str) -> None:
        """Check that the object at ``uri`` has ``size`` bytes and SHA-256 ``sha256`` (hex).

        Raises :class:`ChecksumMismatchError` otherwise. Use it again before reading a copy
        made earlier: an object overwritten since has another checksum.
        """
        bucket, key = parse_uri(uri)
        found_size, found_sha, _ = self._digest(uri, self._bucket_client(uri), bucket, key)
        if (found_size, found_sha) != (size, sha256):
            raise ChecksumMismatchError(uri, f"{size} bytes sha256:{sha256}",
                                        f"{found_size} bytes sha256:{found_sha}")

    def verify_copy(self, result: CopyResult) -> None:
        """Re-check every object of an earlier :meth:`copy` against its recorded checksum."""
        dst_bucket, dst_key = parse_uri(result.dst)
        if result.checksum.startswith("sha256:"):
            self.verify(result.dst, size=result.bytes, sha256=result.checksum[len("sha256:"):])
            return
        client = self._bucket_client(result.dst)
        lines = []
        for obj in self.list_objects(result.dst):
            rel = parse_uri(obj.uri)[1][len(dst_key):]
            size, sha, _ = self._digest(obj.uri, client, dst_bucket, dst_key + rel)
            lines.append(f"{rel}\t{size}\t{sha}\n")
        found = f"sha256-tree:{tree_digest(lines)}"
        if found != result.checksum:
            raise ChecksumMismatchError(result.dst, result.checksum, found)

    # -- small writes -------------------------------------------------------------------------
    def put_json(self, uri: str, value: Any, *, allowed: AllowedLocations) -> CopyResult:
        """Write ``value`` as JSON (sorted keys) to ``uri`` under the same residency guard.

        For the executor's small manifests; S3 checks the SHA-256 sent with the body.
        """
        self.check_destination(uri, allowed)
        bucket, key = parse_uri(uri)
        data = json.dumps(value, sort_keys=True, indent=2).encode()
        client = self._bucket_client(uri)
        self._call(uri, "PutObject", lambda: client.put_object(
            Bucket=bucket, Key=key, Body=data, ContentType="application/json",
            ChecksumAlgorithm="SHA256"))
        sha = hashlib.sha256(data).hexdigest()
        return CopyResult("", uri, len(data), 1, f"sha256:{sha}")

    def get_json(self, uri: str) -> Any:
        """Read a JSON object written by :meth:`put_json` (or by a job)."""
        bucket, key = parse_uri(uri)
        client = self._bucket_client(uri)
        body = self._call(uri, "GetObject",
                          lambda: client.get_object(Bucket=bucket, Key=key))["Body"]
        try:
            return json.loads(self._call(uri, "GetObject", body.read))
        finally:
            body.close()

