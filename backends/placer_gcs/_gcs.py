"""The GCS storage backend: bucket location, labels, sizes; verified, guarded copies.

google-cloud-storage is imported only when a client is first needed. Endpoint and credentials
come from the library's own chain (Application Default Credentials, ``STORAGE_EMULATOR_HOST``)
unless ``endpoint_url`` / ``credentials`` / ``project`` are given.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import IO, Any

from placer.errors import BackendError, BackendUnavailableError, DatasetNotFoundError
from placer.storage import (
    CHUNK,
    BucketFacts,
    CallingReader,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    StoredObject,
    clean_store_tags,
    split_uri,
)

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


class GCSResolver(ObjectStore):
    """Reads dataset facts from GCS and copies data between buckets without leaving the policy.

    The store's primitives for :class:`placer.storage.ObjectStore`, which holds the resolve,
    residency guard, verified copy (inside GCS, or from and to another store) and verify.
    GCS computes an object's MD5 when it writes it (none for a composite object: its bytes are
    then read and hashed), so copies inside GCS are checked by MD5; copies from or to another
    store by SHA-256, computed on the bytes read.

    Args:
        endpoint_url: a GCS-compatible endpoint (tests pass a ``fake-gcs-server``'s).
        credentials: ``google.auth`` credentials; ``None`` uses Application Default Credentials.
        project: the project for the client (listing and reading need none of its own).
        page_size: objects per list page.
    """

    name = "gcs"
    schemes = ("gs",)
    native = "md5"
    head_operation = "objects.get"
    list_operation = "objects.list"

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

    # -- the store's primitives (the algorithm is placer.storage.ObjectStore's) ----------------
    def location(self, uri: str, *, fresh: bool = False) -> str | None:
        """The location key of the bucket ``uri`` names, asked of GCS each time; ``None`` for
        a multi- or dual-region bucket."""
        b = self._bucket(uri)
        return location_key(b.location, b.location_type)

    def bucket_facts(self, uri: str) -> BucketFacts:
        """``buckets.get``: location and labels. GCS objects have no tags, and their free-form
        metadata is not read as residency facts. Labels are read in placer's stored form; one
        placer cannot store is :class:`~placer.errors.InvalidTagError`, never dropped."""
        name, _ = parse_uri(uri)
        b = self._bucket(uri)
        labels = clean_store_tags(uri, name, None, (b.labels or {}).items(), "label")
        location = location_key(b.location, b.location_type)
        where = f"{b.location_type or 'location'} {b.location}"
        return BucketFacts(
            location,
            f"buckets.get({name}): {where}"
            + ("" if location else " (no single placer location: held)"),
            labels, "buckets.get labels" + ("" if b.labels else " (none)"))

    @staticmethod
    def _checksums(blob: Any) -> dict[str, str]:
        """The MD5 GCS computed at write time (composite objects have none)."""
        return {"md5": base64.b64decode(blob.md5_hash).hex()} if blob.md5_hash else {}

    def head(self, uri: str) -> StoredObject | None:
        name, key = parse_uri(uri)
        client = self._client()
        blob = self._call(uri, "objects.get", lambda: client.bucket(name).get_blob(key))
        if blob is None:
            return None
        return StoredObject(uri, int(blob.size), str(blob.generation), self._checksums(blob),
                            blob.content_type, dict(blob.metadata or {}))

    def pages(self, prefix_uri: str) -> Iterator[list[ObjectInfo]]:
        name, prefix = parse_uri(prefix_uri)
        client = self._client()
        pages = self._call(prefix_uri, "objects.list", lambda: client.list_blobs(
            name, prefix=prefix, page_size=self.page_size).pages)
        while True:
            page = self._call(prefix_uri, "objects.list", lambda: next(pages, None))
            if page is None:
                return
            items = self._call(prefix_uri, "objects.list", partial(list, page))
            yield [ObjectInfo(f"gs://{name}/{o.name}", int(o.size)) for o in items]

    def _blob(self, uri: str, generation: str = "") -> Any:
        name, key = parse_uri(uri)
        return self._client().bucket(name).blob(
            key, generation=int(generation) if generation else None)

    def copy_one(self, src: StoredObject, dst_uri: str) -> None:
        """``objects.rewrite`` (resumed with its token, across regions too) of the source
        generation hashed, ``if_source_generation_match`` it."""
        source, dst = self._blob(src.uri, src.version), self._blob(dst_uri)
        pin = {"if_source_generation_match": int(src.version)} if src.version else {}
        token = None
        while True:
            token, _, _ = self._call(dst_uri, "objects.rewrite", partial(
                dst.rewrite, source, token=token, **pin))
            if token is None:
                return

    def open_read(self, obj: StoredObject) -> ObjectReader:
        """The object's bytes at the generation hashed (another generation is not read)."""
        blob = self._blob(obj.uri, obj.version)
        reader = self._call(obj.uri, "objects.get", lambda: blob.open("rb", chunk_size=CHUNK))
        return CallingReader(reader, partial(self._call, obj.uri, "objects.get"))

    def write(self, uri: str, body: IO[bytes], *, size: int, checksums: Mapping[str, str],
              content_type: str | None = None, metadata: Mapping[str, str] | None = None,
              tags: Sequence[tuple[str, str]] = ()) -> None:
        """``objects.insert`` carrying the MD5, which GCS checks against the bytes it received
        (and the client against GCS's answer). GCS objects have no tags: ``tags`` are not
        kept."""
        blob = self._blob(uri)
        if metadata:
            blob.metadata = dict(metadata)
        if "md5" in checksums:
            blob.md5_hash = base64.b64encode(bytes.fromhex(checksums["md5"])).decode()
        self._call(uri, "objects.insert", lambda: blob.upload_from_file(
            body, size=size, content_type=content_type, checksum="md5"))

