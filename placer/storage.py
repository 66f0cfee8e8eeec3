"""The one verified, residency-guarded copy every object store shares.

A storage backend (``placer_s3``, ``placer_gcs``, :class:`placer.testing.FakeStorageResolver`)
subclasses :class:`ObjectStore` and fills in the store's primitives; the algorithm is here,
once, and SDK-free:

============================  =================================================================
primitive (the store's)       what it answers
============================  =================================================================
``location(uri, fresh=)``     the bucket's location key, asked of the store (``None``: unknown)
``bucket_facts(uri)``         location, copies, tags and how each was learnt (``resolve``)
``head(uri)``                 one object's size, version, stored checksums; ``None`` if absent
``pages(prefix)``             the objects under a prefix, a page at a time, sorted
``object_tag_pairs(obj)``     an object's own tags, as stored (only where the store has them)
``copy_one(obj, dst)``        a server-side copy inside the store, pinned to ``obj.version``
``open_read(obj)``            a stream of the bytes of ``obj.version``
``write(dst, body, ...)``     a streamed write that the store checks against the checksums sent
============================  =================================================================

What the base builds on them: :meth:`~ObjectStore.resolve` (object or prefix, location and
every copy, sizes, tags, each fact with its provenance: the call that gave it and when; a
bucket's facts are cached for ``ttl_s`` seconds, :meth:`~ObjectStore.forget` drops them),
:meth:`~ObjectStore.check_destination` (the residency guard, asked fresh before the
first byte), :meth:`~ObjectStore.copy` (object or prefix; server-side inside one store,
streamed and hashed between two), :meth:`~ObjectStore.verify` and
:meth:`~ObjectStore.verify_copy`, :meth:`~ObjectStore.put_json` / :meth:`~ObjectStore.get_json`.

Checksums are ``<algorithm>:<hex>`` for an object and ``<algorithm>-tree:<hex>`` for a prefix
(:func:`tree_digest`). A copy inside one store uses the algorithm that store computes itself
when it writes (``native``: SHA-256 on S3, MD5 on GCS), so no byte passes through placer; a
copy between two stores is SHA-256, computed on the bytes read.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Protocol

from placer.errors import (
    BackendError,
    ChecksumMismatchError,
    DatasetNotFoundError,
    InvalidTagError,
    ResidencyError,
)
from placer.tags import canonical, clean_tags

# Where a write may go: a set of location keys, or a predicate on one.
AllowedLocations = Collection[str] | Callable[[str], bool]

# The checksums placer can compute itself (hashlib), for streamed copies and re-reads.
ALGORITHMS = ("sha256", "md5")
CHUNK = 1024 * 1024
# A streamed copy between two stores keeps this much of an object in memory, the rest in a
# temporary file: the whole object is read and checked before the first byte is written.
SPOOL = 64 * 1024 * 1024
# How long a bucket's facts (location, copies, tags) are reused before the store is asked again.
DEFAULT_TTL_S = 600.0


def stamp(t: float) -> str:
    """An epoch time as provenance writes it: ISO 8601, UTC, to the second.

    >>> stamp(0)
    '1970-01-01T00:00:00Z'
    """
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Replica:
    """Another place a store keeps a copy of a bucket's objects: an S3 replication rule's
    destination, another region of a dual- or multi-region GCS bucket.

    ``location`` is ``None`` when the store names a place placer's catalog cannot (then the
    dataset's location is unknown: held, never guessed). ``prefix`` is the keys it copies
    (``""``: every key); ``how`` is the evidence.
    """

    location: str | None
    how: str
    prefix: str = ""

    def covers(self, key: str, *, is_prefix: bool) -> bool:
        """Whether this copy may hold some of the data at ``key`` (an object, or a prefix
        ending in ``/`` or empty): for a residency fact, a partial copy is a copy.

        >>> r = Replica("aws:us-east-1", "rule r1", prefix="ds/")
        >>> r.covers("ds/a.parquet", is_prefix=False), r.covers("", is_prefix=True)
        (True, True)
        >>> r.covers("other/", is_prefix=True), r.covers("ds-old/a", is_prefix=False)
        (False, False)
        """
        if key.startswith(self.prefix):
            return True
        return is_prefix and self.prefix.startswith(key)


@dataclass(frozen=True)
class DatasetFacts:
    """What a storage backend learnt about a dataset, and how.

    ``location`` is where the primary copy is (``None``: unknown, so the dataset is held);
    ``replicas`` every other location that may hold a copy of (some of) it; a dataset is only
    as resident as its most distant copy (:attr:`copies`). ``multi_region`` is the store's own
    name for a place of several regions (GCS ``EU``, ``EUR4``), when it reported one.
    ``tags`` are the store's tags or labels (bucket tags overridden key by key by an object's;
    also :attr:`storage_tags`, what a dataset's ``storage_tags`` become). ``evidence`` says
    how each fact was obtained (the call, what it answered); ``provenance`` is the same per
    fact (``location``, ``replicas``, ``storage_tags``, ``size``) with when
    (``"GetBucketLocation(b) @ 2026-12-06T10:00:00Z"``).
    """

    uri: str
    location: str | None
    size_gb: float | None
    tags: dict[str, str]
    evidence: dict[str, str]
    replicas: tuple[str, ...] = ()
    multi_region: str | None = None
    provider: str | None = None
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def storage_tags(self) -> dict[str, str]:
        """The store's tags or labels (the same as ``tags``)."""
        return self.tags

    @property
    def copies(self) -> tuple[str, ...]:
        """Every location holding the data (none when the location is unknown)."""
        if self.location is None:
            return ()
        return tuple(dict.fromkeys((self.location, *self.replicas)))


def is_allowed(location: str | None, allowed: AllowedLocations) -> bool:
    """Whether ``location`` is allowed; an unknown location never is.

    >>> is_allowed("aws:eu-central-1", {"aws:eu-central-1"}), is_allowed(None, lambda _: True)
    (True, False)
    """
    if location is None:
        return False
    return allowed(location) if callable(allowed) else location in allowed


def tree_digest(lines: Iterable[str]) -> str:
    """SHA-256 hex of the sorted ``<relative key>\\t<size>\\t<hex>\\n`` lines of a prefix."""
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object as a listing shows it: its URI and size in bytes."""

    uri: str
    size: int


@dataclass(frozen=True)
class StoredObject:
    """One object as its store describes it (``head``).

    ``version`` is the store's name for these bytes (an S3 ETag, a GCS generation): reads and
    server-side copies are pinned to it, so a copy never mixes two versions. ``checksums`` maps
    an algorithm (``sha256``, ``md5``) to the hex digest the store computed and kept; empty if
    it kept none placer can compare.
    """

    uri: str
    size: int
    version: str = ""
    checksums: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BucketFacts:
    """A bucket's location, copies and tags, each with how the store gave it.

    ``replicas``: the other places the store keeps copies (``replicas_evidence`` how it said
    so; empty if the store reports none). ``multi_region``: the store's name for a place of
    several regions. ``provider``: whose store it is, when ``location`` cannot say (unknown).
    """

    location: str | None
    location_evidence: str
    tags: dict[str, str]
    tags_evidence: str
    replicas: tuple[Replica, ...] = ()
    replicas_evidence: str = ""
    multi_region: str | None = None
    provider: str | None = None


@dataclass(frozen=True)
class CopyResult:
    """What a verified copy moved (or a verified write wrote).

    ``checksum`` is ``<algorithm>:<hex>`` of one object, or for a prefix
    ``<algorithm>-tree:<hex>``: :func:`tree_digest` of the lines
    ``<relative key>\\t<size>\\t<hex>``, equal for equal content wherever it lives.
    """

    src: str
    dst: str
    bytes: int
    objects: int
    checksum: str


@dataclass(frozen=True)
class CopyTargets:
    """What a copy's two URIs name (:func:`copy_targets`): the source object ``obj`` and its
    destination ``dst``; or, ``obj`` ``None``, the destination prefix ``dst`` and each object
    under the source prefix as ``(listed object, key relative to the prefix, destination)``."""

    dst: str
    obj: StoredObject | None = None
    objects: tuple[tuple[ObjectInfo, str, str], ...] = ()


def copy_targets(source: ObjectStore, src_uri: str, dest: ObjectStore, dst_uri: str
                 ) -> CopyTargets:
    """Resolve a copy's names, as :meth:`ObjectStore.copy` and :func:`placer.transfer.copy`
    take them: ``…/k`` without a trailing ``/`` is the object ``k`` if it exists, else the
    prefix ``k/`` (a job's output is often a directory of parts), copied to a prefix; an
    object copied to ``…/`` keeps its name.

    Raises:
        BackendError: a prefix named with ``/`` is to be copied to a destination without one.
        DatasetNotFoundError: no object at ``src_uri`` and none under the prefix.
    """
    _, src_key = source.parse(src_uri)
    _, dst_key = dest.parse(dst_uri)
    obj = source.head(src_uri) if src_key and not src_key.endswith("/") else None
    if obj is not None:
        if dst_key == "" or dst_key.endswith("/"):
            dst_key += src_key.rsplit("/", 1)[-1]
        return CopyTargets(with_key(dst_uri, dst_key), obj)
    if src_key and not src_key.endswith("/"):
        src_key += "/"
        dst_key = dst_key if not dst_key or dst_key.endswith("/") else dst_key + "/"
    elif dst_key and not dst_key.endswith("/"):
        raise BackendError(f"{dst_uri}: a prefix ({src_uri}) must be copied to a prefix "
                           "ending in '/'")
    objects = source.list_objects(with_key(src_uri, src_key))
    if not objects:
        raise DatasetNotFoundError(src_uri, "no objects to copy under this prefix")
    rels = [source.parse(info.uri)[1][len(src_key):] for info in objects]
    return CopyTargets(with_key(dst_uri, dst_key), None, tuple(
        (info, rel, with_key(dst_uri, dst_key + rel))
        for info, rel in zip(objects, rels, strict=True)))


@dataclass(frozen=True)
class PartReport:
    """One part of a multipart write as the destination store reports it: its number (from
    1), size, the checksum the store computed of what it stored (``<algorithm>:<hex>``; empty
    if it reported none) and the store's token for it (an S3 ETag; empty where none)."""

    number: int
    size: int
    digest: str
    token: str = ""


def same_part(recorded: PartReport, found: PartReport | None) -> bool:
    """Whether ``found`` is the part ``recorded`` was: same number, size and store token, and,
    where both name a digest in one algorithm, the same digest. A store may report a part in
    another algorithm when listed than when written (moto lists an S3 part's ETag only,
    never the SHA-256 it was sent); the token (the ETag: the MD5 of the bytes, or the part
    upload's own id under SSE-KMS; a GCS generation) then says it. No token and no digest
    to compare is never the same (a part placer cannot tell apart is sent again).

    >>> same_part(PartReport(1, 4, "sha256:ab", "e1"), PartReport(1, 4, "md5:cd", "e1"))
    True
    >>> same_part(PartReport(1, 4, "sha256:ab", "e1"), PartReport(1, 4, "sha256:ff", "e1"))
    False
    >>> same_part(PartReport(1, 4, "sha256:ab", ""), PartReport(1, 4, "md5:cd", ""))
    False
    """
    if found is None or (recorded.number, recorded.size, recorded.token) != (
            found.number, found.size, found.token):
        return False
    if recorded.digest and found.digest and (recorded.digest.partition(":")[0]
                                             == found.digest.partition(":")[0]):
        return recorded.digest == found.digest
    return bool(recorded.token)


class ObjectReader(Protocol):
    """The bytes of one object version, read in chunks (``b""`` at the end)."""

    def read(self, n: int, /) -> bytes: ...
    def close(self) -> None: ...


class CallingReader:
    """An SDK's stream of bytes whose every read goes through ``call`` (a store's own wrapper
    that turns SDK errors into placer's)."""

    def __init__(self, raw: Any, call: Callable[[Callable[[], bytes]], bytes]) -> None:
        self._raw, self._call = raw, call

    def read(self, n: int, /) -> bytes:
        return self._call(lambda: self._raw.read(n))

    def close(self) -> None:
        self._raw.close()


def split_uri(uri: str, scheme: str) -> tuple[str, str]:
    """``<scheme>://bucket/key`` → ``(bucket, key)``; the key may be empty or end in ``/``.

    >>> split_uri("s3://acme-eu/datasets/imagenet/", "s3")
    ('acme-eu', 'datasets/imagenet/')
    """
    prefix = f"{scheme}://"
    if not uri.startswith(prefix):
        article = "an" if scheme[:1] in tuple("aefhilmnorsx") else "a"  # the letter spoken
        raise BackendError(f"{uri}: not {article} {prefix} URI")
    bucket, _, key = uri[len(prefix):].partition("/")
    if not bucket:
        raise BackendError(f"{uri}: no bucket in the URI")
    return bucket, key


def with_key(uri: str, key: str) -> str:
    """The URI of ``key`` in ``uri``'s bucket.

    >>> with_key("gs://b/some/where", "other/key")
    'gs://b/other/key'
    """
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{rest.partition('/')[0]}/{key}"


def clean_store_tags(uri: str, bucket: str, key: str | None,
                     pairs: Iterable[tuple[str, str]], what: str = "tag") -> dict[str, str]:
    """Tags (or labels) read from a store, in placer's stored form (NFKC, trimmed).

    Raises:
        InvalidTagError: naming the bucket, the object if any, and the tag: an invisible
            character, or two keys that are one key once normalised (a store's answer with
            the same key twice included).
    """
    pairs = list(pairs)
    for tag, value in pairs:
        try:
            clean_tags({tag: value}, what)
        except ValueError as exc:
            raise InvalidTagError(uri, bucket, key, tag, str(exc), what) from None
    if len({tag for tag, _ in pairs}) != len(pairs):
        dup = next(t for i, (t, _) in enumerate(pairs) if t in {u for u, _ in pairs[:i]})
        raise InvalidTagError(uri, bucket, key, dup, f"{what} key {dup!r} appears twice", what)
    try:
        return clean_tags(dict(pairs), what)
    except ValueError as exc:  # two keys that are one key once normalised
        raise InvalidTagError(uri, bucket, key, None, str(exc), what) from None


def merge_tags(bucket: Mapping[str, str], obj: Mapping[str, str]
               ) -> tuple[dict[str, str], list[str]]:
    """Bucket tags overridden key by key by an object's, keys compared by
    :func:`placer.tags.canonical`; also the object keys whose value replaced another.

    >>> merge_tags({"Residency": "EU", "owner": "ml"}, {"residency": "DE"})
    ({'residency': 'DE', 'owner': 'ml'}, ['residency'])
    """
    by_key = {canonical(k): k for k in obj}
    merged: dict[str, str] = {}
    overridden = []
    for k, v in bucket.items():
        mine = by_key.get(canonical(k))
        if mine is None:
            merged[k] = v
            continue
        merged[mine] = obj[mine]
        if obj[mine] != v:
            overridden.append(mine)
    merged.update((k, v) for k, v in obj.items() if k not in merged)
    return merged, sorted(overridden)


def hashes_of(data: bytes, algorithms: Iterable[str] = ALGORITHMS) -> dict[str, str]:
    """Hex digests of ``data``.

    >>> hashes_of(b"", ["md5"])
    {'md5': 'd41d8cd98f00b204e9800998ecf8427e'}
    """
    return {a: hasher(a, data).hexdigest() for a in algorithms}


def hasher(algorithm: str, data: bytes = b"") -> Any:
    """A fresh hash object (``update``/``hexdigest``) for one of :data:`ALGORITHMS` (every
    store checksums with these), or ``crc32c`` (what GCS checks and keeps, hex as it reports
    it: big-endian, 8 digits)."""
    if algorithm == "crc32c":
        return _Crc32c(data)
    if algorithm not in ALGORITHMS:
        raise BackendError(f"unknown checksum algorithm {algorithm!r} (placer knows: "
                           f"{', '.join((*ALGORITHMS, 'crc32c'))})")
    return hashlib.new(algorithm, data, usedforsecurity=False)


@functools.cache
def fast_crc32c() -> Callable[[bytes], int] | None:
    """CRC32C of bytes in C (``google_crc32c``, which the GCS client brings), or ``None``
    where it is not installed or only its pure-Python fallback is (slower than MD5)."""
    try:
        import google_crc32c  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return None
    if google_crc32c.implementation != "c":
        return None
    value: Callable[[bytes], int] = google_crc32c.value
    return value


class _Crc32c:
    """CRC32C as a streaming hasher."""

    def __init__(self, data: bytes = b"") -> None:
        try:
            import google_crc32c  # type: ignore[import-untyped, unused-ignore]
        except ImportError as exc:
            raise BackendError("a CRC32C checksum needs the google-crc32c package (the "
                               "GCS backend's dependency)") from exc
        self._extend = google_crc32c.extend
        self._crc = self._extend(0, data)

    def update(self, data: bytes) -> None:
        self._crc = self._extend(self._crc, data)

    def hexdigest(self) -> str:
        return f"{self._crc:08x}"


def _split_checksum(checksum: str) -> tuple[str, str]:
    algorithm, sep, digest = checksum.partition(":")
    if not sep or not digest:
        raise BackendError(f"not a checksum: {checksum!r} (expected <algorithm>:<hex>)")
    return algorithm, digest


class ObjectStore(ABC):
    """A bucket-and-key object store placer reads facts from and copies into, verified.

    A subclass names the URI ``schemes`` it serves (how :func:`placer.backends.storage_for`
    routes a URI to it, through the ``placer.backends`` entry points), the checksum it computes
    itself when it writes (``native``), and implements the primitives listed in the module's
    docstring. Every other method is the shared algorithm: a store does not override it.

    A bucket's location is what its store says (docs/storage.md, "Where a bucket is"); the
    residency guard asks again before every write.
    """

    name: str = "store"
    schemes: tuple[str, ...] = ()  # e.g. ("s3",); empty: any scheme, routed to by no one
    native: str = "sha256"
    # Whether an on-prem site's own store can be one of these (an S3-compatible server): built
    # with ``endpoint_url=`` and ``onprem_location=`` by storage_for.
    serves_onprem: bool = False
    # Operation names, for the evidence resolve() writes.
    head_operation: str = "head"
    list_operation: str = "list"
    object_tags_operation: str | None = None  # None: the store's objects carry no tags
    # A bucket's facts are reused this long (seconds) by resolve(); a store may be given its
    # own ttl and clock (tests pass a fake one). time.time is a builtin: never bound as a method.
    ttl_s: float = DEFAULT_TTL_S
    clock: Callable[[], float] = time.time

    # -- the store's primitives ---------------------------------------------------------------
    @abstractmethod
    def location(self, uri: str, *, fresh: bool = False) -> str | None:
        """The location key of the bucket ``uri`` names; ``None`` if no single one.

        ``fresh=True`` asks the store again (the residency guard does, before every write).

        Raises:
            DatasetNotFoundError: no such bucket.
        """

    @abstractmethod
    def bucket_facts(self, uri: str) -> BucketFacts:
        """Location, copies and tags of ``uri``'s bucket, asked of the store, with evidence
        (tags via :func:`clean_store_tags`). :meth:`resolve` caches the answer (``ttl_s``)."""

    @abstractmethod
    def head(self, uri: str) -> StoredObject | None:
        """The object at ``uri``; ``None`` if there is none (a missing bucket may raise
        :class:`DatasetNotFoundError`)."""

    @abstractmethod
    def pages(self, prefix_uri: str) -> Iterator[list[ObjectInfo]]:
        """Every object whose URI starts with ``prefix_uri``, sorted, one list per page."""

    @abstractmethod
    def copy_one(self, src: StoredObject, dst_uri: str) -> None:
        """Copy ``src`` (in this store) to ``dst_uri`` server-side, only while ``src.version``
        is current; metadata and tags go with it."""

    @abstractmethod
    def open_read(self, obj: StoredObject) -> ObjectReader:
        """The bytes of ``obj.version`` (an error if the object changed since ``head``)."""

    @abstractmethod
    def write(self, uri: str, body: IO[bytes], *, size: int, checksums: Mapping[str, str],
              content_type: str | None = None, metadata: Mapping[str, str] | None = None,
              tags: Sequence[tuple[str, str]] = ()) -> StoredObject | None:
        """Write ``size`` bytes from ``body`` to ``uri``. The store checks what it received
        against the ``checksums`` it can (S3 the SHA-256, GCS the CRC32C or MD5) and refuses
        a write that does not match. Returns the object written as the store's answer reports
        it (its version and checksums), or ``None`` when the answer says too little (a copy
        then asks :meth:`head`): the answer is about this write, where a ``head`` after it
        could see a later one."""

    def object_tag_pairs(self, obj: StoredObject) -> list[tuple[str, str]]:
        """The object's own tags as stored (only where ``object_tags_operation`` is set)."""
        return []

    # -- ranged reads and multipart writes (placer.transfer's; optional) ----------------------
    # A store that sets ``multipart`` writes an object in numbered parts, several in flight,
    # each checked by the store against the checksum sent (``part_algorithm``: ``sha256``,
    # ``md5`` or ``crc32c``, the cheapest the store checks and reports), then assembled.
    multipart: bool = False
    part_algorithm: str = "sha256"
    min_part_size: int = 1  # every part but the last is at least this many bytes
    max_parts: int = 10_000

    def read_range(self, obj: StoredObject, start: int, length: int) -> bytes:
        """``length`` bytes of ``obj.version`` from ``start`` (a store with ranged reads
        overrides this fallback, which streams from the first byte and drops what it skips)."""
        reader = self.open_read(obj)
        try:
            skip = start
            while skip > 0 and (dropped := reader.read(min(skip, CHUNK))):
                skip -= len(dropped)
            out = bytearray()
            while len(out) < length and (chunk := reader.read(min(CHUNK, length - len(out)))):
                out += chunk
        finally:
            reader.close()
        return bytes(out)

    def start_parts(self, uri: str, *, content_type: str | None = None,
                    metadata: Mapping[str, str] | None = None,
                    tags: Sequence[tuple[str, str]] = ()) -> str:
        """Begin a multipart write of ``uri``; the upload's id."""
        raise BackendError(f"{uri}: the {self.name} store has no multipart writes")

    def put_part(self, uri: str, upload: str, number: int, data: bytes, digest: str
                 ) -> PartReport:
        """Write part ``number`` (from 1) of ``upload``, sending ``digest`` (the hex digest in
        ``part_algorithm`` of ``data``) for the store to check; what it reports it stored."""
        raise BackendError(f"{uri}: the {self.name} store has no multipart writes")

    def listed_parts(self, uri: str, upload: str) -> dict[int, PartReport] | None:
        """The parts of ``upload`` the store holds, as it reports them; ``None`` if the
        upload is gone (finished or aborted)."""
        raise BackendError(f"{uri}: the {self.name} store has no multipart writes")

    def finish_parts(self, uri: str, upload: str, parts: Sequence[PartReport]) -> str | None:
        """Assemble ``parts`` (in order) into the object ``uri``; the whole-object checksum
        the store reports (``<algorithm>:<hex>``), or ``None`` if it reports none."""
        raise BackendError(f"{uri}: the {self.name} store has no multipart writes")

    def abort_parts(self, uri: str, upload: str) -> None:
        """Drop ``upload`` and every part written for it."""
        raise BackendError(f"{uri}: the {self.name} store has no multipart writes")

    # -- URIs -----------------------------------------------------------------------------------
    def parse(self, uri: str) -> tuple[str, str]:
        """``(bucket, key)`` of a URI this store serves."""
        scheme = uri.partition("://")[0]
        if scheme in self.schemes or not self.schemes:
            return split_uri(uri, scheme)
        return split_uri(uri, self.schemes[0])  # "not an s3:// URI"

    def list_objects(self, prefix_uri: str) -> list[ObjectInfo]:
        """Every object under a prefix (``…/p/``), sorted by key."""
        return [obj for page in self.pages(prefix_uri) for obj in page]

    # -- resolve ------------------------------------------------------------------------------
    def forget(self, uri: str | None = None) -> None:
        """Drop what is cached about ``uri``'s bucket (every bucket's if ``None``): the next
        :meth:`resolve` asks the store. A store with caches of its own extends this."""
        cache = self._facts_cache()
        if uri is None:
            cache.clear()
        else:
            cache.pop(self.parse(uri)[0], None)

    def _facts_cache(self) -> dict[str, tuple[float, BucketFacts]]:
        # Made on first use: stores need not call this class's __init__.
        cache: dict[str, tuple[float, BucketFacts]] | None = self.__dict__.get("_bucket_cache")
        if cache is None:
            cache = self.__dict__["_bucket_cache"] = {}
        return cache

    def _cached_bucket_facts(self, uri: str, bucket: str) -> tuple[float, BucketFacts]:
        """``(when obtained, facts)`` of ``uri``'s bucket: the cached answer while younger than
        ``ttl_s``, else the store's, asked now."""
        now = self.clock()
        hit = self._facts_cache().get(bucket)
        if hit is not None and 0 <= now - hit[0] < self.ttl_s:
            return hit
        self.forget(uri)  # and whatever the store itself caches of this bucket
        facts = self.bucket_facts(uri)
        self._facts_cache()[bucket] = (now, facts)
        return now, facts

    def resolve(self, uri: str) -> DatasetFacts:
        """Location, copies, tags and size of an object or a prefix, each with how it was
        obtained and when.

        ``…/k`` is the object ``k`` if it exists, else the prefix ``k/`` (so ``ds`` never
        matches ``ds-old/``); ``…/k/`` is always a prefix and may be empty (an output prefix
        not yet written): its size is 0. Anything else that names no data is
        :class:`DatasetNotFoundError`.

        The bucket's facts (location, copies, tags) are reused for ``ttl_s`` seconds
        (:meth:`forget` drops them: ask again); sizes and an object's own tags are asked
        every time. The provenance of a fact says when it was asked.

        Copies: the bucket's replicas that may hold some of this object or prefix (a partial
        copy is a copy: the dataset is as resident as its most distant copy). A copy the store
        places where placer's catalog cannot makes the location unknown (``None``): held.

        Tags: the bucket's, overridden key by key by an object's own tags where the store has
        them (the more specific statement wins; the evidence names every overridden key).
        """
        bucket, key = self.parse(uri)
        obtained, facts = self._cached_bucket_facts(uri, bucket)
        asked = stamp(obtained)
        now = stamp(self.clock())
        evidence = {"location": facts.location_evidence, "tags": facts.tags_evidence}
        provenance = {"storage_tags": f"{facts.tags_evidence} @ {asked}"}
        tags = facts.tags
        obj = self.head(uri) if key and not key.endswith("/") else None
        if obj is not None:
            size = obj.size
            covered = key
            evidence["size"] = f"{self.head_operation}: {size} bytes"
            if self.object_tags_operation is not None:
                own = clean_store_tags(uri, bucket, key, self.object_tag_pairs(obj))
                tags, overridden = merge_tags(tags, own)
                said = f"{self.object_tags_operation}" + (
                    f" (object overrides bucket: {', '.join(overridden)})" if overridden else "")
                evidence["tags"] += f" + {said}"
                provenance["storage_tags"] += f" + {said} @ {now}"
        else:
            prefix = covered = key if not key or key.endswith("/") else key + "/"
            size = count = pages = 0
            for page in self.pages(with_key(uri, prefix)):
                pages += 1
                for item in page:
                    size, count = size + item.size, count + 1
            if count == 0 and key and not key.endswith("/"):
                raise DatasetNotFoundError(
                    uri, f"no such object, and no objects under {with_key(uri, prefix)}")
            evidence["size"] = (f"{self.list_operation}(prefix={prefix!r}): {count} objects, "
                                f"{size} bytes, {pages} pages")
        provenance["size"] = f"{evidence['size']} @ {now}"
        copies = [r for r in facts.replicas if r.covers(covered, is_prefix=obj is None)]
        unplaced = [r.how for r in copies if r.location is None]
        location = facts.location
        if unplaced:
            location = None
            evidence["location"] += (f"; a copy is where placer's catalog cannot place it "
                                     f"({'; '.join(unplaced)}): unknown, held")
        replicas = tuple(dict.fromkeys(r.location for r in copies
                                       if r.location is not None and r.location != location))
        provenance["location"] = f"{evidence['location']} @ {asked}"
        if facts.replicas_evidence:
            evidence["replicas"] = facts.replicas_evidence
            provenance["replicas"] = f"{facts.replicas_evidence} @ {asked}"
        provider = facts.provider or (location.partition(":")[0] if location else None)
        return DatasetFacts(uri=uri, location=location, size_gb=size / 1e9, tags=tags,
                            evidence=evidence, replicas=replicas,
                            multi_region=facts.multi_region, provider=provider,
                            provenance=provenance)

    # -- residency guard ----------------------------------------------------------------------
    def check_destination(self, uri: str, allowed: AllowedLocations) -> str:
        """The destination bucket's location if the policy allows it; else refuse.

        Called before any byte is written, so a retry or a failover can never write outside
        the allowed locations. The location is asked of the store again (``fresh``), never
        taken from the URI, a cache or the inventory; a bucket with no single location is
        refused. A missing bucket is :class:`DatasetNotFoundError`: buckets are never created
        (an auto-created bucket lands wherever the client's region says).
        """
        where = self.location(uri, fresh=True)
        if where is None:
            raise ResidencyError(f"refused to write {uri}: its bucket has no single location "
                                 "(a multi-region bucket?), so the policy cannot allow it")
        if not is_allowed(where, allowed):
            raise ResidencyError(f"refused to write {uri}: its bucket is in {where}, outside "
                                 "the locations the policy allows for this data")
        # What is written is carried wherever the bucket replicates: every copy must be allowed.
        key = self.parse(uri)[1]
        for replica in self.bucket_facts(uri).replicas:
            if not replica.covers(key, is_prefix=key == "" or key.endswith("/")):
                continue
            if not is_allowed(replica.location, allowed):
                raise ResidencyError(
                    f"refused to write {uri}: its bucket replicates it to {replica.location} "
                    f"({replica.how}), outside the locations the policy allows for this data")
        return where

    # -- checksums ----------------------------------------------------------------------------
    def digest(self, obj: StoredObject, algorithm: str) -> str:
        """``obj``'s hex digest: the one the store kept, else computed by streaming the bytes
        of ``obj.version``.

        Raises:
            ChecksumMismatchError: the store returned another number of bytes than it said.
        """
        stored = obj.checksums.get(algorithm)
        if stored:
            return stored
        return self._read(obj, [algorithm])[algorithm]

    def _read(self, obj: StoredObject, algorithms: Iterable[str],
              sink: IO[bytes] | None = None) -> dict[str, str]:
        """Stream ``obj``'s bytes (into ``sink``), hashing them; check the count."""
        hashers = {a: hasher(a) for a in algorithms}
        n = 0
        reader = self.open_read(obj)
        try:
            while chunk := reader.read(CHUNK):
                for h in hashers.values():
                    h.update(chunk)
                if sink is not None:
                    sink.write(chunk)
                n += len(chunk)
        finally:
            reader.close()
        if n != obj.size:
            raise ChecksumMismatchError(obj.uri, f"{obj.size} bytes", f"{n} bytes read")
        return {a: h.hexdigest() for a, h in hashers.items()}

    def verify(self, uri: str, *, size: int, checksum: str) -> None:
        """Check that the object at ``uri`` has ``size`` bytes and ``checksum``
        (``<algorithm>:<hex>``), from the store's own checksum or by reading the bytes.

        Raises:
            ChecksumMismatchError: it differs (use it again before reading a copy made
                earlier: an object overwritten since has another checksum).
            DatasetNotFoundError: there is no object at ``uri``.
        """
        algorithm, want = _split_checksum(checksum)
        hasher(algorithm)
        obj = self.head(uri)
        if obj is None:
            raise DatasetNotFoundError(uri, f"no such object ({self.head_operation})")
        found = self.digest(obj, algorithm)
        if (obj.size, found) != (size, want):
            raise ChecksumMismatchError(uri, f"{size} bytes {checksum}",
                                        f"{obj.size} bytes {algorithm}:{found}")

    def verify_copy(self, result: CopyResult) -> None:
        """Re-check every object of an earlier :meth:`copy` (or :meth:`put_json`) against its
        recorded checksum; a prefix's tree checksum is recomputed from what is there now."""
        algorithm, _ = _split_checksum(result.checksum)
        if not algorithm.endswith("-tree"):
            self.verify(result.dst, size=result.bytes, checksum=result.checksum)
            return
        algorithm = algorithm.removesuffix("-tree")
        hasher(algorithm)
        _, dst_key = self.parse(result.dst)
        lines = []
        for info in self.list_objects(result.dst):
            obj = self.head(info.uri)
            if obj is None:
                continue  # deleted while listed: the tree below is then short, and differs
            lines.append(f"{self.parse(obj.uri)[1][len(dst_key):]}\t{obj.size}\t"
                         f"{self.digest(obj, algorithm)}\n")
        found = f"{algorithm}-tree:{tree_digest(lines)}"
        if found != result.checksum:
            raise ChecksumMismatchError(result.dst, result.checksum, found)

    # -- copy -----------------------------------------------------------------------------------
    def copy(self, src_uri: str, dst_uri: str, *, allowed: AllowedLocations,
             source: ObjectStore | None = None) -> CopyResult:
        """Copy an object or a prefix (``…/`` → ``…/``) into this store, verified.

        ``…/k`` without a trailing ``/`` is the object ``k`` if it exists, else the prefix
        ``k/``, copied to the destination as a prefix; an object copied to ``…/`` keeps its
        name. ``source`` is the store that holds ``src_uri`` when it is another one (the
        cloud's S3 and an on-prem store, S3 and GCS).

        1. The destination's location is checked against ``allowed`` (location keys, or a
           predicate on one) before anything is read or written (:meth:`check_destination`).
        2. Inside one store, each object is copied server-side (:meth:`copy_one`, pinned to
           the version hashed). Between two stores, each object is read (pinned), hashed while
           read and checked against the source's size and stored checksum, spooled (at most
           ``SPOOL`` bytes in memory, the rest in a temporary file) and written with its
           checksums, which the destination store checks against the bytes it received.
        3. Success is reported only once every destination object has the source's size and
           checksum (:class:`ChecksumMismatchError` otherwise). Re-running a copy overwrites,
           so retries are safe; a copy is not atomic (a failure leaves the objects before it).
        """
        src = self if source is None else source
        self.check_destination(dst_uri, allowed)
        targets = copy_targets(src, src_uri, self, dst_uri)
        if targets.obj is not None:
            algorithm, digest = self._copy_object(src, targets.obj, targets.dst)
            return CopyResult(src_uri, targets.dst, targets.obj.size, 1,
                              f"{algorithm}:{digest}")
        lines, total, algorithm = [], 0, self._algorithm(src)
        for info, rel, dst in targets.objects:
            obj = src.head(info.uri)
            if obj is None:
                raise DatasetNotFoundError(info.uri, "deleted while it was being copied")
            _, digest = self._copy_object(src, obj, dst)
            lines.append(f"{rel}\t{obj.size}\t{digest}\n")
            total += obj.size
        return CopyResult(src_uri, targets.dst, total, len(targets.objects),
                          f"{algorithm}-tree:{tree_digest(lines)}")

    def _algorithm(self, src: ObjectStore) -> str:
        """A copy's checksum: the store's own inside one store, else SHA-256."""
        return self.native if src is self else "sha256"

    def _copy_object(self, src: ObjectStore, obj: StoredObject, dst_uri: str
                     ) -> tuple[str, str]:
        """Copy one object here, verified; its (algorithm, hex digest)."""
        if src is self:
            digest = self.digest(obj, self.native)
            self.copy_one(obj, dst_uri)
            self.verify(dst_uri, size=obj.size, checksum=f"{self.native}:{digest}")
            return self.native, digest
        # Between stores: what the source kept (SHA-256 if it has it, else its own) is checked
        # on the bytes read; with no kept checksum, the version pin is what ties them to it.
        kept = "sha256" if "sha256" in obj.checksums else src.native
        algorithms = {"sha256", kept, self.native}
        with tempfile.SpooledTemporaryFile(max_size=SPOOL) as spool:
            got = src._read(obj, sorted(algorithms), spool)
            if obj.checksums.get(kept, got[kept]) != got[kept]:
                raise ChecksumMismatchError(obj.uri, f"{obj.size} bytes {kept}:"
                                            f"{obj.checksums[kept]}",
                                            f"{obj.size} bytes {kept}:{got[kept]} read")
            spool.seek(0)
            self.write(dst_uri, spool, size=obj.size, checksums=got,
                       content_type=obj.content_type, metadata=obj.metadata,
                       tags=src.object_tag_pairs(obj))
        # What the destination reports (its own checksum of what it stored) must be what was
        # read; a store keeping none is re-read.
        written = self.head(dst_uri)
        check = next((a for a in ("sha256", self.native)
                      if written is not None and a in written.checksums), "sha256")
        self.verify(dst_uri, size=obj.size, checksum=f"{check}:{got[check]}")
        return "sha256", got["sha256"]

    # -- small writes -------------------------------------------------------------------------
    def put_json(self, uri: str, value: Any, *, allowed: AllowedLocations) -> CopyResult:
        """Write ``value`` as JSON (sorted keys) to ``uri`` under the same residency guard,
        checked by the store and verified (the executor's small manifests)."""
        self.check_destination(uri, allowed)
        data = json.dumps(value, sort_keys=True, indent=2).encode()
        sums = hashes_of(data)
        self.write(uri, io.BytesIO(data), size=len(data), checksums=sums,
                   content_type="application/json")
        checksum = f"{self.native}:{sums[self.native]}"
        self.verify(uri, size=len(data), checksum=checksum)
        return CopyResult("", uri, len(data), 1, checksum)

    def get_json(self, uri: str) -> Any:
        """Read a JSON object written by :meth:`put_json` (or by a job)."""
        obj = self.head(uri)
        if obj is None:
            raise DatasetNotFoundError(uri, f"no such object ({self.head_operation})")
        out = io.BytesIO()
        self._read(obj, (), out)
        return json.loads(out.getvalue())
