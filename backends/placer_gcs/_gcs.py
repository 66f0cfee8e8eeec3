"""The GCS storage backend: bucket location, labels, sizes; verified, guarded copies.

google-cloud-storage is imported only when a client is first needed. Endpoint and credentials
come from the library's own chain (Application Default Credentials, ``STORAGE_EMULATOR_HOST``)
unless ``endpoint_url`` / ``credentials`` / ``project`` are given.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from functools import partial
from typing import IO, TYPE_CHECKING, Any

from placer.catalog import default_catalog
from placer.errors import BackendError, BackendUnavailableError, DatasetNotFoundError
from placer.storage import (
    CHUNK,
    DEFAULT_TTL_S,
    BucketFacts,
    CallingReader,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    PartReport,
    Replica,
    StoredObject,
    clean_store_tags,
    fast_crc32c,
    split_uri,
)

if TYPE_CHECKING:
    from placer.models import Location, StoreCredentials

# Where a multipart write's parts wait, in the destination's own bucket (so under the same
# residency guard): UPLOADS/<upload id>/<part number>, and the upload's marker.
UPLOADS = ".placer-uploads"
_COMPOSE = 32

_INSTALL = "the gcs backend needs google-cloud-storage: pip install 'placer[gcs]'"

# GCS multi-regions: a bucket there may keep its bytes in any of the provider's regions of that
# geography (https://cloud.google.com/storage/docs/locations#location-mr: "EU: data centers
# within member states of the European Union", "US: data centers in the United States",
# "ASIA: data centers in Asia"). Placer takes every GCP region its catalog places there.
MULTI_REGIONS: dict[str, Callable[[Location], bool]] = {
    "EU": lambda loc: "EU" in loc.jurisdictions,
    "US": lambda loc: loc.country == "US",
    "ASIA": lambda loc: loc.continent == "AS",
}
# GCS predefined dual-regions and their two regions
# (https://cloud.google.com/storage/docs/locations#predefined).
DUAL_REGIONS: dict[str, tuple[str, str]] = {
    "ASIA1": ("asia-northeast1", "asia-northeast2"),  # Tokyo, Osaka
    "EUR4": ("europe-north1", "europe-west4"),  # Finland, Netherlands
    "NAM4": ("us-central1", "us-east1"),  # Iowa, South Carolina
}


def parse_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/key`` → ``(bucket, key)``; the key may be empty or end in ``/``."""
    return split_uri(uri, "gs")


def placement(location: str | None, location_type: str | None,
              data_locations: Sequence[str] = ()) -> tuple[str | None, tuple[str, ...], str | None]:
    """``(location, replicas, multi-region name)`` of a bucket, from ``buckets.get``.

    - A region (``EUROPE-WEST4``) is ``gcp:europe-west4``, with no other copy.
    - A configurable dual-region (``customPlacementConfig.dataLocations``) is its two regions;
      a predefined dual-region (:data:`DUAL_REGIONS`) is its two regions.
    - A multi-region (:data:`MULTI_REGIONS`) is every GCP region of placer's catalog in that
      geography: the first the catalog lists is the location, the others are replicas.
    - Anything else that is not a region (an unknown multi- or dual-region, or a region of a
      dual-region the catalog does not know) is unknown: ``(None, (), name)``, so the dataset
      is held, never guessed.

    The location's name decides before ``locationType``: the emulator fake-gcs-server answers
    ``region`` for every bucket, and a multi-region name cannot be a region. A region name
    with another ``locationType`` contradicts itself and is unknown.

    >>> placement("EUROPE-WEST4", "region")
    ('gcp:europe-west4', (), None)
    >>> placement("EUR4", "dual-region")
    ('gcp:europe-north1', ('gcp:europe-west4',), 'EUR4')
    >>> placement("EU", "dual-region", ["EUROPE-WEST1", "EUROPE-WEST4"])
    ('gcp:europe-west1', ('gcp:europe-west4',), 'EU')
    >>> where, copies, name = placement("EU", "multi-region")
    >>> where, "gcp:europe-west2" in copies, "gcp:europe-west4" in copies, name
    ('gcp:europe-west1', False, True, 'EU')
    >>> placement("MARS1", "dual-region"), placement("EUROPE-WEST4", "multi-region")
    ((None, (), 'MARS1'), (None, (), 'EUROPE-WEST4'))
    """
    name = (location or "").upper()
    kind = (location_type or "region").lower()
    catalog = default_catalog()
    if data_locations:
        keys = [f"gcp:{r.lower()}" for r in data_locations]
    elif name in DUAL_REGIONS:
        keys = [f"gcp:{r}" for r in DUAL_REGIONS[name]]
    elif name in MULTI_REGIONS:
        keys = [loc.key for loc in catalog.regions()
                if loc.provider == "gcp" and MULTI_REGIONS[name](loc)]
    elif name and kind == "region":
        return f"gcp:{name.lower()}", (), None
    else:
        return None, (), name or None
    keys = list(dict.fromkeys(keys))
    if not keys or any(k not in catalog for k in keys):
        return None, (), name or None
    return keys[0], tuple(keys[1:]), name or None


def location_key(location: str | None, location_type: str | None) -> str | None:
    """A bucket's single location → placer's key; ``None`` for multi- and dual-regions.

    What a write to the bucket lands in (the residency guard's question): a multi-region
    (``EU``) or dual-region (``EUR4``) bucket keeps its bytes in several regions, so no write
    to it can be confined to one and the guard refuses it. (:meth:`GCSResolver.resolve`
    reports all of them: :func:`placement`.)

    >>> location_key("EUROPE-WEST4", "region"), location_key("EU", "multi-region")
    ('gcp:europe-west4', None)
    """
    where, _, name = placement(location, location_type)
    return where if name is None else None


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
        cache_ttl_s: how long :meth:`resolve` reuses a bucket's facts (seconds).
        clock: epoch seconds, for the cache and the facts' provenance (``time.time``).
        credentials_ref: a site's ``storage_credentials`` (its ``credentials_file``, a
            service-account key), read when the client is made; ``None``: ADC.
    """

    name = "gcs"
    schemes = ("gs",)
    native = "md5"
    head_operation = "objects.get"
    list_operation = "objects.list"
    # Multipart writes: parts are objects under UPLOADS in the destination bucket, composed
    # 32 at a time (objects.compose takes at most 32 sources:
    # https://cloud.google.com/storage/docs/composite-objects), then deleted. Placer keeps a
    # composite at 1024 components at most.
    multipart = True
    min_part_size = 1
    max_parts = 1024

    def __init__(self, *, endpoint_url: str | None = None, credentials: Any = None,
                 project: str | None = None, page_size: int = 1000,
                 cache_ttl_s: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] | None = None,
                 credentials_ref: StoreCredentials | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.project = project
        self.credentials_ref = credentials_ref
        self.page_size = page_size
        self._credentials = credentials
        self._client_obj: Any = None
        self.ttl_s = cache_ttl_s
        if clock is not None:
            self.clock = clock

    def __repr__(self) -> str:  # never show the credentials
        return f"GCSResolver(endpoint_url={self.endpoint_url!r})"

    def _client(self) -> Any:
        if self._client_obj is None:
            try:
                from google.cloud import storage
            except ImportError as exc:
                raise BackendUnavailableError(_INSTALL) from exc
            options = {"api_endpoint": self.endpoint_url} if self.endpoint_url else None
            ref = self.credentials_ref
            if self._credentials is None and ref is not None and ref.credentials_file:
                # A site's own service-account key (storage_credentials.credentials_file).
                from google.oauth2 import service_account

                try:
                    self._credentials = self._call("gs://", "credentials_file", lambda: (
                        service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                            ref.credentials_file)))
                except (OSError, ValueError) as exc:  # missing, unreadable, not a key
                    raise BackendUnavailableError(
                        f"the gs:// store's credentials_file {ref.credentials_file} cannot be "
                        f"read as a service-account key ({type(exc).__name__})") from None
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
        a multi- or dual-region bucket (no write to it stays in one region)."""
        b = self._bucket(uri)
        where, _, name = placement(b.location, b.location_type, b.data_locations or ())
        return where if name is None else None

    def bucket_facts(self, uri: str) -> BucketFacts:
        """``buckets.get``: location (every region of a dual- or multi-region bucket:
        :func:`placement`) and labels. GCS objects have no tags, and their free-form metadata
        is not read as residency facts. Labels are read in placer's stored form; one placer
        cannot store is :class:`~placer.errors.InvalidTagError`, never dropped."""
        name, _ = parse_uri(uri)
        b = self._bucket(uri)
        labels = clean_store_tags(uri, name, None, (b.labels or {}).items(), "label")
        data_locations = tuple(b.data_locations or ())
        location, others, multi = placement(b.location, b.location_type, data_locations)
        where = f"{b.location_type or 'location'} {b.location}" + (
            f" (dataLocations {', '.join(data_locations)})" if data_locations else "")
        said = f"buckets.get({name}): {where}"
        if multi is None:
            location_evidence, replicas_evidence = said, f"{said}: one region, no other copy"
        elif location is None:
            location_evidence = (f"{said}: several regions placer's catalog cannot name one by "
                                 "one: unknown, held")
            replicas_evidence = location_evidence
        else:
            location_evidence = (f"{said}: {len(others) + 1} regions, the first of them "
                                 f"{location}")
            replicas_evidence = f"{said}: also {', '.join(others)}"
        return BucketFacts(
            location, location_evidence, labels,
            "buckets.get labels" + ("" if b.labels else " (none)"),
            tuple(Replica(r, f"{multi} region {r}") for r in others), replicas_evidence,
            multi_region=multi, provider="gcp")

    @staticmethod
    def _checksums(blob: Any) -> dict[str, str]:
        """The MD5 GCS computed at write time (composite objects have none) and the CRC32C
        it keeps for every object, a composite too (placer.transfer checks a composed copy
        with it, combined from its parts' CRC32Cs: no read-back)."""
        sums = {"md5": base64.b64decode(blob.md5_hash).hex()} if blob.md5_hash else {}
        crc32c = getattr(blob, "crc32c", None)
        if crc32c:
            sums["crc32c"] = base64.b64decode(crc32c).hex()
        return sums

    def delete(self, uri: str) -> None:
        """Delete one object (none there: nothing to do): how the executor removes a LOST
        attempt's outputs, only under that attempt's own prefix (placer.executor.LostAttempts)."""
        name, key = parse_uri(uri)
        client = self._client()
        self._call(uri, "objects.delete", partial(_delete_quietly, client.bucket(name).blob(key)))

    def head(self, uri: str) -> StoredObject | None:
        name, key = parse_uri(uri)
        client = self._client()
        blob = self._call(uri, "objects.get", lambda: client.bucket(name).get_blob(key))
        return None if blob is None else self._stored(uri, blob)

    @classmethod
    def _stored(cls, uri: str, blob: Any) -> StoredObject:
        """An object as GCS reports it (``objects.get``, or an insert's answer)."""
        return StoredObject(uri, int(blob.size), str(blob.generation), cls._checksums(blob),
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

    @property
    def part_algorithm(self) -> str:  # type: ignore[override]
        """CRC32C where its C implementation is installed (GCS checks it on every write, as
        it does an MD5, at a tenth of MD5's cost), else MD5."""
        return "crc32c" if fast_crc32c() else "md5"

    def write(self, uri: str, body: IO[bytes], *, size: int, checksums: Mapping[str, str],
              content_type: str | None = None, metadata: Mapping[str, str] | None = None,
              tags: Sequence[tuple[str, str]] = ()) -> StoredObject | None:
        """``objects.insert`` carrying the CRC32C or the MD5 (``part_algorithm``'s, else the
        other), which GCS checks against the bytes it received; the copy then checks what
        GCS reports (its answer: the object written). GCS objects have no tags: ``tags`` are
        not kept."""
        blob = self._blob(uri)
        if metadata:
            blob.metadata = dict(metadata)
        sent = _send_checksum(blob, checksums, self.part_algorithm)
        self._call(uri, "objects.insert", lambda: blob.upload_from_file(
            body, size=size, content_type=content_type,
            checksum=None if sent else "md5"))
        return self._stored(uri, blob) if blob.generation else None


    # -- ranged reads and multipart writes (placer.transfer) -----------------------------------
    def read_range(self, obj: StoredObject, start: int, length: int) -> bytes:
        """``objects.get`` (media) of a byte range of the generation hashed."""
        blob = self._blob(obj.uri, obj.version)
        return bytes(self._call(obj.uri, "objects.get", lambda: blob.download_as_bytes(
            start=start, end=start + length - 1, checksum=None)))

    def _upload_uri(self, uri: str, upload: str, name: str) -> str:
        return f"gs://{parse_uri(uri)[0]}/{UPLOADS}/{upload}/{name}"

    def start_parts(self, uri: str, *, content_type: str | None = None,
                    metadata: Mapping[str, str] | None = None,
                    tags: Sequence[tuple[str, str]] = ()) -> str:
        """A new upload: its marker object (empty) carries the final object's content type
        and metadata, so a resumed upload in another process finishes it the same."""
        import secrets

        upload = secrets.token_hex(12)
        marker = self._blob(self._upload_uri(uri, upload, "upload"))
        marker.metadata = {"placer-content-type": content_type or "", **(metadata or {})}
        self._call(uri, "objects.insert", lambda: marker.upload_from_string(b""))
        return upload

    def put_part(self, uri: str, upload: str, number: int, data: bytes, digest: str
                 ) -> PartReport:
        """``objects.insert`` of the part carrying its checksum (``digest``, in
        ``part_algorithm``), which GCS checks; the same checksum as GCS answers with."""
        algorithm = self.part_algorithm
        blob = self._blob(self._upload_uri(uri, upload, f"{number:05d}"))
        _send_checksum(blob, {algorithm: digest}, algorithm)
        self._call(uri, "objects.insert", lambda: blob.upload_from_string(data, checksum=None))
        return PartReport(number, len(data), self._digest(blob, algorithm),
                          str(blob.generation or ""))

    @classmethod
    def _digest(cls, blob: Any, algorithm: str) -> str:
        """The part's checksum as GCS reports it, in ``algorithm`` (``""`` if none)."""
        found = cls._checksums(blob).get(algorithm)
        return f"{algorithm}:{found}" if found else ""

    def listed_parts(self, uri: str, upload: str) -> dict[int, PartReport] | None:
        """The part objects of ``upload``; ``None`` if its marker is gone."""
        bucket, _ = parse_uri(uri)
        prefix = f"{UPLOADS}/{upload}/"
        client = self._client()
        blobs = self._call(uri, "objects.list", lambda: list(client.list_blobs(
            bucket, prefix=prefix)))
        names = {b.name[len(prefix):]: b for b in blobs}
        if "upload" not in names:
            return None
        algorithm = self.part_algorithm
        return {int(n): PartReport(int(n), int(b.size), self._digest(b, algorithm),
                                   str(b.generation or ""))
                for n, b in names.items() if n.isdigit()}

    def finish_parts(self, uri: str, upload: str, parts: Sequence[PartReport]) -> str | None:
        """``objects.compose`` of the parts in order (32 at a time, in levels), each pinned to
        the generation reported when it was written; the parts are then deleted. A composite
        object has no MD5, so GCS reports no whole-object checksum placer computes: ``None``
        (the copy re-reads it)."""
        marker = self._call(uri, "objects.get", lambda: self._client().bucket(
            parse_uri(uri)[0]).get_blob(f"{UPLOADS}/{upload}/upload"))
        if marker is None:
            raise BackendError(f"{uri}: multipart upload {upload} is gone (aborted?)")
        sources = [self._blob(self._upload_uri(uri, upload, f"{p.number:05d}"), p.token)
                   for p in parts]
        level = 0
        while len(sources) > _COMPOSE:
            level += 1
            merged = []
            for i in range(0, len(sources), _COMPOSE):
                name = self._upload_uri(uri, upload, f"c{level}-{i:05d}")
                out = self._blob(name)
                self._call(uri, "objects.compose", partial(out.compose, sources[i:i + _COMPOSE]))
                merged.append(self._blob(name, str(out.generation or "")))
            sources = merged
        dst = self._blob(uri)
        meta = dict(marker.metadata or {})
        dst.content_type = meta.pop("placer-content-type", "") or None
        if meta:
            dst.metadata = meta
        if sources:
            self._call(uri, "objects.compose", partial(dst.compose, sources))
        else:
            self._call(uri, "objects.insert", lambda: dst.upload_from_string(b""))
        self.abort_parts(uri, upload)
        return None

    def abort_parts(self, uri: str, upload: str) -> None:
        """Delete the upload's parts and marker."""
        bucket, _ = parse_uri(uri)
        client = self._client()
        for blob in self._call(uri, "objects.list", lambda: list(client.list_blobs(
                bucket, prefix=f"{UPLOADS}/{upload}/"))):
            self._call(uri, "objects.delete", partial(_delete_quietly, blob))


def _send_checksum(blob: Any, checksums: Mapping[str, str], algorithm: str) -> bool:
    """Put on ``blob`` the checksum GCS is to check the bytes against: ``algorithm``'s from
    ``checksums`` if there, else the CRC32C or MD5 there; whether one was put."""
    for name in (algorithm, "crc32c", "md5"):
        if name in checksums:
            value = base64.b64encode(bytes.fromhex(checksums[name])).decode()
            setattr(blob, "crc32c" if name == "crc32c" else "md5_hash", value)
            return True
    return False


def _delete_quietly(blob: Any) -> None:
    from google.api_core.exceptions import NotFound

    with suppress(NotFound):
        blob.delete()
