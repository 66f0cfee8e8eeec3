"""The GCS storage backend: bucket location, labels, sizes; verified, guarded copies.

google-cloud-storage is imported only when a client is first needed. Endpoint and credentials
come from the library's own chain (Application Default Credentials, ``STORAGE_EMULATOR_HOST``)
unless ``endpoint_url`` / ``credentials`` / ``project`` are given.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from functools import partial
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
from placer_s3._errors import ChecksumMismatchError, DatasetNotFoundError

_INSTALL = "the gcs backend needs google-cloud-storage: pip install 'placer[gcs]'"


def parse_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/key`` → ``(bucket, key)``; the key may be empty or end in ``/``."""
    return split_uri(uri, "gs")


def location_key(location: str | None, location_type: str | None) -> str | None:
    """A bucket's location → placer's key; ``None`` for multi- and dual-regions.

    A multi-region (``EU``) or dual-region (``EUR4``) bucket keeps its bytes in several
    regions the catalog cannot name one by one, so its location is unknown to the policy and
    the data is held (unknown is not allowed) rather than guessed.

    >>> location_key("EUROPE-WEST4", "region"), location_key("EU", "multi-region")
    ('gcp:europe-west4', None)
    """
    if not location or (location_type or "region") != "region":
        return None
    return f"gcp:{location.lower()}"


def _map_error(exc: Exception, uri: str, operation: str) -> BackendError:
    """google-api-core / google-auth exceptions → placer's; messages carry no SDK text."""
    code = getattr(exc, "code", None)
    if code == 404:
        return DatasetNotFoundError(uri, f"no such bucket or object ({operation})")
    if code in (401, 403):
        return BackendError(f"{uri}: access denied by GCS ({operation}: HTTP {code}); check "
                            "that the configured credentials may perform it")
    if code == 412:
        return BackendError(f"{uri}: the source changed during {operation}; retry the copy")
    status = f"HTTP {code}" if code else type(exc).__name__
    return BackendError(f"{uri}: GCS {operation} failed: {status}")


class GCSResolver:
    """Reads dataset facts from GCS and copies data between buckets without leaving the policy.

    Args:
        endpoint_url: a GCS-compatible endpoint (tests pass a ``fake-gcs-server``'s).
        credentials: ``google.auth`` credentials; ``None`` uses Application Default Credentials.
        project: the project for the client (listing and reading need none of its own).
        page_size: objects per list page.
    """

    name = "gcs"

    def __init__(self, *, endpoint_url: str | None = None, credentials: Any = None,
                 project: str | None = None, page_size: int = 1000) -> None:
        self.endpoint_url = endpoint_url
        self.project = project
        self.page_size = page_size
        self._credentials = credentials
        self._client_obj: Any = None

    def __repr__(self) -> str:  # never show the credentials
        return f"GCSResolver(endpoint_url={self.endpoint_url!r})"

    def _client(self) -> Any:
        if self._client_obj is None:
            try:
                from google.cloud import storage
            except ImportError as exc:
                raise BackendUnavailableError(_INSTALL) from exc
            options = {"api_endpoint": self.endpoint_url} if self.endpoint_url else None
            self._client_obj = self._call("gs://", "Client", lambda: storage.Client(
                project=self.project, credentials=self._credentials, client_options=options))
        return self._client_obj

    def _call(self, uri: str, operation: str, fn: Callable[[], Any]) -> Any:
        try:
            from google.api_core.exceptions import GoogleAPIError
            from google.auth.exceptions import GoogleAuthError
            from requests.exceptions import RequestException
        except ImportError as exc:
            raise BackendUnavailableError(_INSTALL) from exc
        try:
            return fn()
        except (GoogleAPIError, GoogleAuthError, RequestException) as exc:
            raise _map_error(exc, uri, operation) from exc

    def _bucket(self, uri: str) -> Any:
        name, _ = parse_uri(uri)
        client = self._client()
        return self._call(uri, "buckets.get", lambda: client.get_bucket(name))

    def location(self, uri: str) -> str | None:
        """The location key of the bucket ``uri`` names, asked of GCS each time."""
        b = self._bucket(uri)
        return location_key(b.location, b.location_type)

    def resolve(self, uri: str) -> DatasetFacts:
        """Location, labels and size of an object or a prefix, each with how it was obtained.

        Same URI rules as the S3 backend: ``gs://b/k`` is the object ``k`` if it exists, else
        the prefix ``k/``; ``gs://b/k/`` may be an empty (not yet written) prefix. Tags are
        the bucket's labels only: GCS objects have no tags, and their free-form metadata is
        not read as residency facts.
        """
        name, key = parse_uri(uri)
        b = self._bucket(uri)
        location = location_key(b.location, b.location_type)
        where = f"{b.location_type or 'location'} {b.location}"
        evidence = {
            "location": f"buckets.get({name}): {where}"
                        + ("" if location else " (no single placer location: held)"),
            "tags": "buckets.get labels" + ("" if b.labels else " (none)"),
        }
        blob = None
        if key and not key.endswith("/"):
            blob = self._call(uri, "objects.get", lambda: b.get_blob(key))
        if blob is not None:
            size = int(blob.size)
            evidence["size"] = f"objects.get: {size} bytes"
        else:
            prefix = key if not key or key.endswith("/") else key + "/"
            size = count = pages = 0
            for page in self._pages(uri, name, prefix):
                pages += 1
                for item in page:
                    size, count = size + int(item.size), count + 1
            if count == 0 and key and not key.endswith("/"):
                raise DatasetNotFoundError(uri, "no such object, and no objects under "
                                           f"gs://{name}/{prefix}")
            evidence["size"] = (f"objects.list(prefix={prefix!r}): {count} objects, "
                                f"{size} bytes, {pages} pages")
        return DatasetFacts(uri=uri, location=location, size_gb=size / 1e9,
                            tags=dict(b.labels or {}), evidence=evidence)

    def _pages(self, uri: str, bucket: str, prefix: str) -> Iterator[list[Any]]:
        client = self._client()
        pages = self._call(uri, "objects.list", lambda: client.list_blobs(
            bucket, prefix=prefix, page_size=self.page_size).pages)
        while True:
            page = self._call(uri, "objects.list", lambda: next(pages, None))
            if page is None:
                return
            yield self._call(uri, "objects.list", partial(list, page))

    def list_objects(self, uri: str) -> list[ObjectInfo]:
        """Every object under a prefix (``gs://b/p/``), sorted by name."""
        name, prefix = parse_uri(uri)
        return [ObjectInfo(f"gs://{name}/{o.name}", int(o.size))
                for page in self._pages(uri, name, prefix) for o in page]

    def check_destination(self, uri: str, allowed: AllowedLocations) -> str:
        """The destination bucket's location if allowed; else :class:`ResidencyError`.

        Asked of GCS before any write; buckets are never created; a multi-region bucket has
        no single location and is refused.
        """
        where = self.location(uri)
        if where is None or not is_allowed(where, allowed):
            raise ResidencyError(f"refused to write {uri}: its bucket is in "
                                 f"{where or 'a multi-region location'}, outside the locations "
                                 "the policy allows for this data")
        return where

    @staticmethod
    def _digest(blob: Any) -> str:
        """``md5:<hex>`` GCS computed at write time, or ``crc32c:<hex>`` for composite objects
        (which have no MD5)."""
        if blob.md5_hash:
            return "md5:" + base64.b64decode(blob.md5_hash).hex()
        return "crc32c:" + base64.b64decode(blob.crc32c).hex()

    def _get(self, uri: str) -> Any:
        name, key = parse_uri(uri)
        client = self._client()
        blob = self._call(uri, "objects.get", lambda: client.bucket(name).get_blob(key))
        if blob is None:
            raise DatasetNotFoundError(uri, "no such object (objects.get)")
        return blob

    def copy(self, src_uri: str, dst_uri: str, *, allowed: AllowedLocations) -> CopyResult:
        """Copy an object or a prefix (``…/`` → ``…/``) to another bucket, verified.

        Residency is checked first; each object is copied server-side with ``objects.rewrite``
        (resumed with its token across regions) only if the source generation is the one
        read; success only if the destination has the source's size and MD5 (or CRC32C).
        """
        self.check_destination(dst_uri, allowed)
        _, src_key = parse_uri(src_uri)
        dst_bucket, dst_key = parse_uri(dst_uri)
        if src_key and not src_key.endswith("/"):
            if dst_key == "" or dst_key.endswith("/"):
                dst_key += src_key.rsplit("/", 1)[-1]
            dst = f"gs://{dst_bucket}/{dst_key}"
            size, digest = self._copy_one(src_uri, dst)
            return CopyResult(src_uri, dst, size, 1, digest)
        if dst_key and not dst_key.endswith("/"):
            raise BackendError(f"{dst_uri}: a prefix ({src_uri}) must be copied to a prefix "
                               "ending in '/'")
        objects = self.list_objects(src_uri)
        if not objects:
            raise DatasetNotFoundError(src_uri, "no objects to copy under this prefix")
        lines, total, algos = [], 0, set()
        for obj in objects:
            rel = parse_uri(obj.uri)[1][len(src_key):]
            size, digest = self._copy_one(obj.uri, f"gs://{dst_bucket}/{dst_key}{rel}")
            algos.add(digest.partition(":")[0])
            lines.append(f"{rel}\t{size}\t{digest}\n")
            total += size
        return CopyResult(src_uri, f"gs://{dst_bucket}/{dst_key}", total, len(objects),
                          f"{'+'.join(sorted(algos))}-tree:{tree_digest(lines)}")

    def _copy_one(self, src_uri: str, dst_uri: str) -> tuple[int, str]:
        src = self._get(src_uri)
        dst_bucket, dst_key = parse_uri(dst_uri)
        dst = self._client().bucket(dst_bucket).blob(dst_key)
        token = None
        while True:
            token, _, _ = self._call(dst_uri, "objects.rewrite", partial(
                dst.rewrite, src, token=token, if_source_generation_match=src.generation))
            if token is None:
                break
        self.verify(dst_uri, size=int(src.size), digest=self._digest(src))
        return int(src.size), self._digest(src)

    def verify(self, uri: str, *, size: int, digest: str) -> None:
        """Check the object at ``uri`` has ``size`` bytes and ``digest`` (``md5:…``)."""
        blob = self._get(uri)
        found = (int(blob.size), self._digest(blob))
        if found != (size, digest):
            raise ChecksumMismatchError(uri, f"{size} bytes {digest}",
                                        f"{found[0]} bytes {found[1]}")

    def verify_copy(self, result: CopyResult) -> None:
        """Re-check every object of an earlier :meth:`copy` against its recorded checksum."""
        if "-tree:" not in result.checksum:
            self.verify(result.dst, size=result.bytes, digest=result.checksum)
            return
        _, dst_key = parse_uri(result.dst)
        lines, algos = [], set()
        for obj in self.list_objects(result.dst):
            blob = self._get(obj.uri)
            digest = self._digest(blob)
            algos.add(digest.partition(":")[0])
            lines.append(f"{parse_uri(obj.uri)[1][len(dst_key):]}\t{int(blob.size)}\t{digest}\n")
        found = f"{'+'.join(sorted(algos))}-tree:{tree_digest(lines)}"
        if found != result.checksum:
            raise ChecksumMismatchError(result.dst, result.checksum, found)

    def put_json(self, uri: str, value: Any, *, allowed: AllowedLocations) -> CopyResult:
        """Write ``value`` as JSON (sorted keys) under the residency guard; MD5-validated."""
        self.check_destination(uri, allowed)
        name, key = parse_uri(uri)
        data = json.dumps(value, sort_keys=True, indent=2).encode()
        blob = self._client().bucket(name).blob(key)
        self._call(uri, "objects.insert", lambda: blob.upload_from_string(
            data, content_type="application/json", checksum="md5"))
        return CopyResult("", uri, len(data), 1, self._digest(self._get(uri)))

    def get_json(self, uri: str) -> Any:
        """Read a JSON object written by :meth:`put_json` (or by a job)."""
        blob = self._get(uri)
        return json.loads(self._call(uri, "objects.get", blob.download_as_bytes))
