"""Copies between any two stores: ranged reads, parts in flight, verified, resumable.

:func:`copy` moves an object (or every object under a prefix) from one
:class:`~placer.storage.ObjectStore` to another of any kind (S3 → S3 on another endpoint,
S3 → GCS, GCS → S3, GCS → GCS), and is the protocol docs/storage.md ("Copies: the protocol")
describes:

1. **Guarded first.** The destination's residency (:meth:`ObjectStore.check_destination`,
   asked of the store, fresh) is checked before anything is read or written.
2. **Recognised when done.** A copy is keyed by (source URI, source version, destination URI,
   part size). One the ledger records as finished, whose destination still has the version
   and size recorded, is not repeated; nor is one whose destination already reports the
   source's SHA-256 and size.
3. **Streamed in parts.** The source is read in ranges of ``part_size`` bytes (pinned to the
   version read at the start); at most ``workers`` parts are in memory at once, whatever the
   object's size, over all the objects of a prefix. A destination with multipart writes
   (``ObjectStore.multipart``) gets them as parts, ``workers`` in flight; one without gets
   one streamed write. Objects overlap: while one is being finished (``ListParts``,
   assembly, ``head``) the next ones' parts are sent, and the next objects' heads, tags and
   upload are asked ahead, so no worker waits on one object's fixed requests.
4. **Each part verified.** Each part's digest is computed on the bytes read and sent with it
   (SHA-256 to S3, MD5 to GCS: the store refuses bytes that do not match); what the store reports
   it stored (its SHA-256, or its MD5: S3's part ETag, a GCS part object's MD5) is compared
   with the same digest of the bytes read. Before the parts are assembled the destination is
   asked for them again, so a part replaced behind placer's back fails the copy (the upload is
   then dropped: nothing is assembled, nothing downstream can read it).
5. **The whole verified.** SHA-256 over the parts in order (streamed) is compared with the
   source's own stored SHA-256 (if it kept one) and with what the destination reports: its
   full-object SHA-256, or its composite (the SHA-256 of the parts' SHA-256s, S3's), or its
   CRC32C (a GCS composite's: :func:`crc32c_combine` of the parts' CRC32Cs, computed on the
   bytes read). Nothing is read back (only from a store that reports none of these).
6. **Resumable.** The ledger records the upload and each part as the destination reported it,
   as soon as it is written. A copy started again after a crash or a kill lists the
   destination's parts (S3 ``ListParts``; the part objects on GCS) and re-sends only those not
   recorded or not reported the same (a recorded part is re-read from the source for the
   whole-object hash, and its digest checked again; it is not re-sent).

:class:`JournalLedger` keeps the ledger in the executor's journal (the ``copy_parts`` table),
so a copy resumes across processes; :class:`MemoryLedger` within one.
"""

from __future__ import annotations

import hashlib
import io
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from typing import IO, Any, Protocol

from placer.errors import BackendError, ChecksumMismatchError, DatasetNotFoundError
from placer.journal import COPY_PARTS, Journal
from placer.storage import (
    AllowedLocations,
    CopyResult,
    ObjectStore,
    PartReport,
    StoredObject,
    copy_targets,
    fast_crc32c,
    hasher,
    same_part,
    tree_digest,
)

__all__ = [
    "DEFAULT_PART_SIZE", "DEFAULT_WORKERS", "CopyAbandoned", "CopyLedger", "JournalLedger",
    "MemoryLedger", "copy", "copy_key", "crc32c_combine",
]

DEFAULT_PART_SIZE = 64 * 1024 * 1024
DEFAULT_WORKERS = 8
_LIST_AT_MOST = 1000  # a destination prefix listed instead of a head per object, up to this


class CopyAbandoned(BackendError):
    """Raised by ``on_part`` to stop a copy for good (a run's cancel: nothing will resume it).
    The multipart upload in progress is aborted and its ledger entry dropped, rather than left
    for a resumed copy as any other stop leaves it."""


def copy_key(obj: StoredObject, dst_uri: str, part_size: int) -> str:
    """The ledger's name for one copy: the source version, the destination, the part size
    (another part size cuts other parts, so it is another copy).

    >>> copy_key(StoredObject("s3://a/k", 3, "v1"), "gs://b/k", 8)[:12]
    '19ee4d616d4d'
    """
    return hashlib.sha256(f"{obj.uri}\n{obj.version}\n{dst_uri}\n{part_size}".encode()
                          ).hexdigest()


class CopyLedger(Protocol):
    """Where a copy's progress is kept durably: its upload, each part the destination
    reported, the whole once every part is in (its SHA-256, and what the assembled object
    must report: ``checks``, space-separated ``<algorithm>:<hex>``), and, once verified, the
    destination version that holds it."""

    def upload(self, key: str) -> str | None: ...
    def started(self, key: str, upload: str) -> None: ...
    def part(self, key: str, report: PartReport) -> None: ...
    def parts(self, key: str) -> dict[int, PartReport]: ...
    def assembling(self, key: str, sha256: str, checks: str) -> None: ...
    def assembling_as(self, key: str) -> tuple[str, str] | None: ...
    def finished(self, key: str, version: str, checksum: str) -> None: ...
    def finished_as(self, key: str) -> tuple[str, str] | None: ...
    def forget(self, key: str) -> None: ...


class MemoryLedger:
    """A ledger in memory (a copy resumes within one process)."""

    def __init__(self) -> None:
        self._uploads: dict[str, str] = {}
        self._parts: dict[str, dict[int, PartReport]] = {}
        self._whole: dict[str, tuple[str, str]] = {}
        self._done: dict[str, tuple[str, str]] = {}

    def upload(self, key: str) -> str | None:
        return self._uploads.get(key)

    def started(self, key: str, upload: str) -> None:
        self._uploads[key], self._parts[key] = upload, {}
        self._whole.pop(key, None)

    def part(self, key: str, report: PartReport) -> None:
        self._parts.setdefault(key, {})[report.number] = report

    def parts(self, key: str) -> dict[int, PartReport]:
        return dict(self._parts.get(key, {}))

    def assembling(self, key: str, sha256: str, checks: str) -> None:
        self._whole[key] = (sha256, checks)

    def assembling_as(self, key: str) -> tuple[str, str] | None:
        return self._whole.get(key)

    def finished(self, key: str, version: str, checksum: str) -> None:
        self._uploads.pop(key, None)
        self._parts.pop(key, None)
        self._whole.pop(key, None)
        self._done[key] = (version, checksum)

    def finished_as(self, key: str) -> tuple[str, str] | None:
        return self._done.get(key)

    def forget(self, key: str) -> None:
        self._uploads.pop(key, None)
        self._parts.pop(key, None)
        self._whole.pop(key, None)
        self._done.pop(key, None)


# The journal's copy_parts table (placer.journal.COPY_PARTS, in both dialects' schema; a
# journal made before it gets it on first use). Row 0 is the upload, rows 1… its parts, row -2
# the whole once every part is in (digest: its SHA-256, token: the checks), row -1 the finished
# copy.
_UPSERT = ("INSERT INTO copy_parts (copy_key, part, upload, size, digest, token, updated) "
           "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (copy_key, part) DO UPDATE SET "
           "upload = excluded.upload, size = excluded.size, digest = excluded.digest, "
           "token = excluded.token, updated = excluded.updated")
_UPLOAD, _DONE, _WHOLE = 0, -1, -2


class JournalLedger:
    """The ledger in the executor's journal (SQLite or PostgreSQL): a copy killed with the
    process that ran it resumes in the next one. Each record is its own committed write
    transaction (SQLite's ``synchronous = FULL``: on disk before the next part is sent)."""

    def __init__(self, journal: Journal, clock: Callable[[], float] = time.time) -> None:
        self._journal, self._clock = journal, clock
        with journal._tx() as db:
            db.execute(COPY_PARTS)

    def _put(self, key: str, part: int, upload: str | None, size: int | None,
             digest: str | None, token: str | None) -> None:
        with self._journal._tx() as db:
            db.execute(_UPSERT, (key, part, upload, size, digest, token, self._clock()))

    def _rows(self, key: str) -> list[tuple[int, str | None, int | None, str | None,
                                            str | None]]:
        rows = self._journal._db.execute(
            "SELECT part, upload, size, digest, token FROM copy_parts WHERE copy_key = ? "
            "ORDER BY part", (key,)).fetchall()
        return [(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    def upload(self, key: str) -> str | None:
        return next((u for p, u, *_ in self._rows(key) if p == _UPLOAD), None)

    def started(self, key: str, upload: str) -> None:
        self.forget(key)
        self._put(key, _UPLOAD, upload, None, None, None)

    def part(self, key: str, report: PartReport) -> None:
        self._put(key, report.number, None, report.size, report.digest, report.token)

    def parts(self, key: str) -> dict[int, PartReport]:
        return {p: PartReport(p, int(s or 0), d or "", t or "")
                for p, _, s, d, t in self._rows(key) if p > 0}

    def assembling(self, key: str, sha256: str, checks: str) -> None:
        self._put(key, _WHOLE, None, None, sha256, checks)

    def assembling_as(self, key: str) -> tuple[str, str] | None:
        return next(((d or "", t or "") for p, _, _, d, t in self._rows(key) if p == _WHOLE),
                    None)

    def finished(self, key: str, version: str, checksum: str) -> None:
        with self._journal._tx() as db:
            db.execute("DELETE FROM copy_parts WHERE copy_key = ?", (key,))
            db.execute(_UPSERT, (key, _DONE, None, None, checksum, version, self._clock()))

    def finished_as(self, key: str) -> tuple[str, str] | None:
        return next(((t or "", d or "") for p, _, _, d, t in self._rows(key) if p == _DONE),
                    None)

    def forget(self, key: str) -> None:
        with self._journal._tx() as db:
            db.execute("DELETE FROM copy_parts WHERE copy_key = ?", (key,))


# -- the copy -----------------------------------------------------------------------------------
def copy(source: ObjectStore, src_uri: str, dest: ObjectStore, dst_uri: str, *,
         allowed: AllowedLocations, ledger: CopyLedger | None = None,
         part_size: int = DEFAULT_PART_SIZE, workers: int = DEFAULT_WORKERS,
         on_part: Callable[[int], None] | None = None, reads: str = "ranged") -> CopyResult:
    """Copy an object or a prefix from ``source`` into ``dest``, verified (module docstring).

    Names as :meth:`ObjectStore.copy`: ``…/k`` is the object ``k`` if it exists, else the
    prefix ``k/``; an object copied to ``…/`` keeps its name. The result's checksum is
    ``sha256:<hex>`` (an object) or ``sha256-tree:<hex>`` (a prefix), equal to
    :meth:`ObjectStore.copy`'s between two stores.

    Args:
        allowed: the locations the destination may be in (the residency guard, asked first).
        ledger: where progress is kept (resume, and a finished copy recognised); a fresh
            :class:`MemoryLedger` if omitted.
        part_size: bytes per part (raised to the destination's minimum, and so that an object
            needs at most ``dest.max_parts`` parts).
        workers: parts in flight (and in memory) at once.
        on_part: called with the count of parts this call has written, after each is recorded
            (tests stop a copy there).
        reads: ``"ranged"``: each part is a ranged read of its own, on a worker (parallel
            reads); ``"stream"``: an object of several parts is read as one stream, part after
            part, while workers write them (one connection to the source; a store whose
            ranged reads are costly: moto_server reads the whole object for each range).

    Raises:
        ResidencyError: the destination is outside ``allowed`` (nothing was read or written).
        ChecksumMismatchError: a part or the whole differs from the bytes read (the upload
            is dropped when the difference is found before assembly).
        DatasetNotFoundError: nothing at ``src_uri``.
    """
    if part_size < 1 or workers < 1:
        raise ValueError("part_size and workers must be at least 1")
    if reads not in ("ranged", "stream"):
        raise ValueError(f"reads must be 'ranged' or 'stream', not {reads!r}")
    dest.check_destination(dst_uri, allowed)
    job = _Copy(source, dest, ledger if ledger is not None else MemoryLedger(), part_size,
                workers, on_part, reads)
    targets = copy_targets(source, src_uri, dest, dst_uri)
    if targets.obj is not None:
        [(obj, digest)] = job.many([(src_uri, targets.dst)])
        return CopyResult(src_uri, targets.dst, obj.size, 1, f"sha256:{digest}")
    job.listed = _listed(dest, targets.dst,
                         limit=max(_LIST_AT_MOST, 2 * len(targets.objects)))
    copied = job.many([(info.uri, dst) for info, _, dst in targets.objects])
    lines = [f"{rel}\t{one.size}\t{digest}\n"
             for (_, rel, _), (one, digest) in zip(targets.objects, copied, strict=True)]
    return CopyResult(src_uri, targets.dst, sum(o.size for o, _ in copied),
                      len(targets.objects), f"sha256-tree:{tree_digest(lines)}")


@dataclass
class _Part:
    """One part done: its bytes while the whole's hash still needs them (else ``b""``), its
    size, SHA-256 and CRC32C (0 when not computed), and what the destination reported for it
    (``sent``: written by this call, else found already there)."""

    number: int
    data: bytes
    size: int
    sha256: str
    crc32c: int
    report: PartReport
    sent: bool


class _Whole:
    """What the whole object is checked with, built part by part in order: the SHA-256 of
    its bytes (and MD5 when that is the only checksum of the source's placer can compute),
    the composite (SHA-256 of the parts' SHA-256s, as S3 reports a multipart object's) and
    the CRC32C (combined from the parts', as GCS reports a composed object's)."""

    def __init__(self, *, md5: bool, crc32c: bool) -> None:
        self._hashers = {"sha256": hashlib.sha256()}
        if md5:
            self._hashers["md5"] = hashlib.md5(usedforsecurity=False)
        self._composite = hashlib.sha256()
        self._crc: int | None = 0 if crc32c else None
        self.reports: list[PartReport] = []

    def hash_bytes(self, data: bytes) -> None:
        for h in self._hashers.values():
            h.update(data)

    def part(self, got: _Part) -> None:
        self._composite.update(bytes.fromhex(got.sha256))
        if self._crc is not None:
            self._crc = crc32c_combine(self._crc, got.crc32c, got.size)
        self.reports.append(got.report)

    def digests(self) -> dict[str, str]:
        out = {a: h.hexdigest() for a, h in self._hashers.items()}
        out["sha256-composite"] = self._composite.hexdigest()
        if self._crc is not None:
            out["crc32c"] = f"{self._crc:08x}"
        return out


@dataclass
class _Asked:
    """An object as asked for ahead of its copy: the source's ``head``, the destination's,
    and the source's tags (``None``: not asked, as for a destination that may already hold
    the copy, where they are asked only if it does not)."""

    obj: StoredObject | None
    there: StoredObject | None
    tags: list[tuple[str, str]] | None


class _InParts:
    """One object being copied in parts (the main thread's view): its upload (``None`` while
    it is being started), the parts recorded and still reported by the destination
    (``kept``), the parts started, done and taken in order by the whole's hash."""

    def __init__(self, index: int, obj: StoredObject, dst_uri: str, part: int, key: str,
                 tags: list[tuple[str, str]] | None, crc32c: Callable[[bytes], int] | None
                 ) -> None:
        self.index, self.obj, self.dst_uri, self.part, self.key = index, obj, dst_uri, part, key
        self.tags, self.crc32c = tags, crc32c
        self.count = math.ceil(obj.size / part)
        self.upload: str | None = None
        self.kept: dict[int, PartReport] = {}
        self.stream: Any = None
        self.started = 0  # parts 1..started handed to a worker
        self.head = 1  # the next part the whole's hash takes
        self.waiting: dict[int, _Part] = {}  # done, not yet taken in order
        self.whole = _Whole(md5=_source_check(obj, crc32c) == "md5", crc32c=crc32c is not None)
        self.dropped = False  # its upload was aborted (a part replaced): forget it
        self.hashed: Future[None] | None = None  # its bytes' last turn at the whole's hash

    def held(self) -> int:
        return sum(1 for p in self.waiting.values() if p.data)


class _Copy:
    def __init__(self, source: ObjectStore, dest: ObjectStore, ledger: CopyLedger,
                 part_size: int, workers: int, on_part: Callable[[int], None] | None,
                 reads: str) -> None:
        self.source, self.dest, self.ledger = source, dest, ledger
        self.part_size, self.workers, self.on_part = part_size, workers, on_part
        self.reads = reads
        # The destination prefix's listing (URI: size), when a prefix is copied: an object
        # listed as absent, or with another size, is not asked for (it cannot be done).
        self.listed: dict[str, int] | None = None
        self.written = 0
        self.open_uploads: dict[str, tuple[str, str]] = {}  # key: (dst_uri, upload)

    def _size(self, size: int) -> int:
        """The part size for an object of ``size`` bytes on this destination."""
        return max(self.part_size, self.dest.min_part_size, math.ceil(size / self.dest.max_parts))

    def many(self, items: Sequence[tuple[str, str]]) -> list[tuple[StoredObject, str]]:
        """Copy each ``(source URI, destination URI)``; each source object and its SHA-256.

        A pipeline, so that no worker waits for one object's fixed requests before the next
        object's bytes move. Two pools: ``parts`` (``workers`` threads) reads, hashes and
        writes parts and one-write objects, and is the only one that holds an object's bytes;
        ``asks`` (``workers`` threads) sends the requests that hold none: both ends' ``head``
        and the source's tags for up to ``2 * workers`` objects ahead, an upload's start
        (``ListParts`` of a recorded one, else ``CreateMultipartUpload``) while the object
        before it is still sending parts, and an object's finish (``ListParts`` again,
        assembly, ``head``) while the next objects' parts are sent; and ``hasher``, one
        thread, which takes each object's bytes in order into its whole SHA-256 (hashlib lets
        go of the GIL, so it runs beside the thread that reads a stream). At most ``workers``
        parts' bytes are held at once, over all objects: in flight, done and waiting for their
        object's whole hash, or in it. Parts start in object order; at most two objects in
        parts have parts still to start. The ledger is read and written from this thread only
        (a SQLite connection is its thread's), each part recorded as soon as it is written.
        """
        out: list[tuple[StoredObject, str] | None] = [None] * len(items)
        ahead: deque[tuple[int, Future[_Asked]]] = deque()
        upcoming = iter(range(len(items)))
        feeding: list[_InParts] = []  # in parts, not yet all taken by the whole's hash
        parts_out: dict[Future[_Part], _InParts] = {}
        writes: dict[Future[tuple[dict[str, str], StoredObject | None]],
                     tuple[int, StoredObject, str]] = {}
        control: dict[Future[Any], tuple[str, Any]] = {}  # starts, finishes, checks
        crc32c = fast_crc32c()

        def hashed() -> None:
            while hashing and hashing[0][0].done():
                hashing.popleft()[0].result()  # a failed hash fails the copy

        def held() -> int:
            hashed()
            # A part's bytes still to be hashed count once: not while its write, which holds
            # the same bytes, is in flight (a stream's part is hashed as it is written).
            return (len(parts_out) + len(writes) + sum(j.held() for j in feeding)
                    + sum(1 for h, w in hashing if w is None or w.done()))

        def hash_whole(job: _InParts, data: bytes, write: Future[_Part] | None = None
                       ) -> None:
            """Hand ``data`` to the whole's hash, off this thread (``hasher``: one thread,
            so in order): the thread that reads a stream and takes parts in does not also
            hash every byte. Its bytes count as held until hashed."""
            job.hashed = hasher.submit(job.whole.hash_bytes, data)
            hashing.append((job.hashed, write))

        def fill() -> None:
            """Start parts, earliest object first, while fewer than ``workers`` hold bytes."""
            for job in feeding:
                if job.upload is None:
                    return  # its parts, and the next objects', wait for its upload
                while job.started < job.count:
                    if held() >= self.workers:
                        return
                    job.started += 1
                    if self.reads != "stream":
                        parts_out[parts.submit(self._put, job, job.started, None)] = job
                        continue
                    if job.stream is None:  # read here, in order, and hashed as read
                        job.stream = self.source.open_read(job.obj)
                    start = (job.started - 1) * job.part
                    data = _read_exactly(job.stream, min(job.part, job.obj.size - start))
                    write = parts.submit(self._put, job, job.started, data)
                    parts_out[write] = job
                    hash_whole(job, data, write)

        def admit() -> None:
            """Take the next objects, in order, as far as their heads are in and there is
            room: a one-write object needs a free part's worth of memory, an object in parts
            is started while fewer than two objects have parts still to start."""
            while ahead and ahead[0][1].done():
                i, asked_for = ahead[0]
                asked = asked_for.result()
                obj, dst_uri = asked.obj, items[i][1]
                if obj is None:
                    raise DatasetNotFoundError(items[i][0], "deleted while it was being copied")
                key = copy_key(obj, dst_uri, self.part_size)
                part = self._size(obj.size)
                done = self._done(obj, asked.there, key)
                if done is not None:
                    out[i] = (obj, done)
                elif self.dest.multipart and obj.size > part:
                    if sum(1 for j in feeding if j.started < j.count) >= 2:
                        return
                    needs_crc = self.dest.part_algorithm == "crc32c" or (
                        _source_check(obj, crc32c) == "crc32c")
                    job = _InParts(i, obj, dst_uri, part, key, asked.tags,
                                   crc32c if needs_crc else None)
                    feeding.append(job)
                    control[asks.submit(self._start, job, self.ledger.upload(key))] = (
                        "start", job)
                else:
                    if held() >= self.workers:
                        return
                    writes[parts.submit(self._single, obj, dst_uri, part, asked.tags)] = (
                        i, obj, key)
                ahead.popleft()

        def part_done(fut: Future[_Part], job: _InParts) -> None:
            got = fut.result()
            job.waiting[got.number] = got
            if got.sent:  # recorded as soon as written (resume needs it)
                self.ledger.part(job.key, got.report)
                self.written += 1
                if self.on_part is not None:
                    self.on_part(self.written)
            while job.head in job.waiting:  # the whole, in order
                taken = job.waiting.pop(job.head)
                if self.reads != "stream":
                    hash_whole(job, taken.data)
                job.whole.part(taken)
                job.head += 1
            if job.head > job.count:
                feeding.remove(job)
                if job.stream is not None:
                    job.stream.close()
                # The whole, recorded before assembly: a copy killed between the assembly
                # and its record finds the object the recorded parts make, not sent again.
                if job.hashed is not None:
                    job.hashed.result()  # the whole's hash has taken every byte
                sums = job.whole.digests()  # its composite is of these parts: not the source's
                self._check_source(job.obj, {a: sums[a] for a in ("sha256", "crc32c", "md5")
                                             if a in sums})
                self.ledger.assembling(job.key, sums["sha256"], " ".join(
                    f"{a}:{sums[a]}" for a in ("sha256-composite", "crc32c") if a in sums))
                control[asks.submit(self._finish, job)] = ("finish", job)

        def answered(fut: Future[Any], kind: str, what: Any) -> None:
            if kind == "start":
                job = what
                upload, listed, fresh = fut.result()
                if fresh:
                    self.ledger.started(job.key, upload)
                recorded = self.ledger.parts(job.key)
                # A part is kept only if the destination reports it as recorded.
                job.kept = {n: r for n, r in recorded.items()
                            if r.digest and same_part(r, listed.get(n))}
                job.upload = upload
                self.open_uploads[job.key] = (job.dst_uri, upload)
            elif kind == "finish":
                job = what
                try:
                    version, digest = fut.result()
                except BaseException:
                    if job.dropped:
                        self.open_uploads.pop(job.key, None)
                        self.ledger.forget(job.key)
                    raise
                self.open_uploads.pop(job.key, None)
                self.ledger.finished(job.key, version, f"sha256:{digest}")
                out[job.index] = (job.obj, digest)
            else:  # a one-write object's check
                i, obj, key = what
                version, digest = fut.result()
                self.ledger.finished(key, version, f"sha256:{digest}")
                out[i] = (obj, digest)

        parts = ThreadPoolExecutor(self.workers, thread_name_prefix="placer-copy")
        asks = ThreadPoolExecutor(self.workers, thread_name_prefix="placer-copy-ask")
        hasher = ThreadPoolExecutor(1, thread_name_prefix="placer-copy-hash")
        hashing: deque[tuple[Future[None], Future[_Part] | None]] = deque()
        try:
            while True:
                while len(ahead) < 2 * self.workers and (
                        i := next(upcoming, None)) is not None:
                    ahead.append((i, asks.submit(self._ask, items[i])))
                fill()
                admit()
                fill()
                hashed()
                waits: set[Future[Any]] = {*parts_out, *writes, *control,
                                           *(h for h, _ in hashing)}  # room, once hashed
                if ahead and not ahead[0][1].done():  # the next object's heads
                    waits.add(ahead[0][1])
                if not waits:
                    break
                finished, _ = wait(waits, return_when=FIRST_COMPLETED)
                for fut in finished:
                    if fut in parts_out:
                        part_done(fut, parts_out.pop(fut))
                    elif fut in writes:
                        i, obj, key = writes.pop(fut)
                        control[asks.submit(self._check_single, obj, items[i][1],
                                            fut.result())] = ("check", (i, obj, key))
                    elif fut in control:
                        answered(fut, *control.pop(fut))
        except BaseException as exc:
            self._stop(exc, parts, asks, feeding, parts_out, control)
            raise
        finally:
            parts.shutdown(wait=True, cancel_futures=True)
            asks.shutdown(wait=True, cancel_futures=True)
            hasher.shutdown(wait=True, cancel_futures=True)
        return [x for x in out if x is not None]

    def _stop(self, exc: BaseException, parts: ThreadPoolExecutor, asks: ThreadPoolExecutor,
              feeding: list[_InParts], parts_out: dict[Future[_Part], _InParts],
              control: dict[Future[Any], tuple[str, Any]]) -> None:
        """A copy stopped: nothing more starts and what runs ends. An upload started but
        not yet recorded (its start answered after the stop) holds no part: it is aborted.
        On :class:`CopyAbandoned` every upload still open is aborted and forgotten. On any
        other stop the recorded ones stay for a resumed copy, and what ended verified but
        was not yet taken in (parts written, objects assembled) is recorded, so a resumed
        copy sends none of it again."""
        parts.shutdown(wait=True, cancel_futures=True)
        asks.shutdown(wait=True, cancel_futures=True)
        for job in feeding:
            if job.stream is not None:
                job.stream.close()
        abandoned = isinstance(exc, CopyAbandoned)
        for fut, (kind, what) in control.items():
            if not fut.done() or fut.cancelled() or fut.exception() is not None:
                continue
            if kind == "start":
                upload, _, fresh = fut.result()
                if fresh:
                    with suppress(Exception):  # it holds no part; the error raised is the stop's
                        self.dest.abort_parts(what.dst_uri, upload)
                elif abandoned:
                    self.open_uploads[what.key] = (what.dst_uri, upload)
            elif not abandoned:  # assembled and verified before the stop: recorded finished
                key = what.key if kind == "finish" else what[2]
                version, digest = fut.result()
                self.open_uploads.pop(key, None)
                with suppress(Exception):  # best effort: the error raised is the stop's
                    self.ledger.finished(key, version, f"sha256:{digest}")
        if not abandoned:  # parts written and verified before the stop: not sent again
            for fut, job in parts_out.items():
                if fut.done() and not fut.cancelled() and fut.exception() is None and (
                        (got := fut.result()).sent):
                    with suppress(Exception):
                        self.ledger.part(job.key, got.report)
        if abandoned:
            for key, (dst_uri, upload) in list(self.open_uploads.items()):
                self.dest.abort_parts(dst_uri, upload)
                self.ledger.forget(key)
            self.open_uploads.clear()

    def _ask(self, item: tuple[str, str]) -> _Asked:
        """Both ends' ``head`` (the destination's only where its listing shows an object of
        the source's size: one that may be the copy already made); the source's tags too,
        unless the destination may already hold the copy: those are asked only when it turns
        out it does not."""
        obj = self.source.head(item[0])
        there = None
        if self.listed is None or (obj is not None and self.listed.get(item[1]) == obj.size):
            there = self.dest.head(item[1])
        tags = None
        if obj is not None and (there is None or there.size != obj.size):
            tags = self._tags(obj)
        return _Asked(obj, there, tags)

    def _tags(self, obj: StoredObject) -> list[tuple[str, str]]:
        """The source object's tags, asked only where the destination keeps them: a store
        whose objects carry none (``object_tags_operation`` unset: GCS) drops them."""
        if self.dest.object_tags_operation is None:
            return []
        return self.source.object_tag_pairs(obj)

    def _done(self, obj: StoredObject, there: StoredObject | None, key: str) -> str | None:
        """The SHA-256 of a copy already made: the ledger's, while the destination still has
        the version it recorded; the whole's recorded before assembly, when the destination
        reports what the recorded parts assemble to (a copy killed after its assembly, before
        its record: then recorded finished here); or the source's own, when the destination
        reports it."""
        if there is None or there.size != obj.size:
            return None
        done = self.ledger.finished_as(key)
        if done is not None and there.version == done[0]:
            return done[1].removeprefix("sha256:")
        whole = self.ledger.assembling_as(key)
        if whole is not None and _reports(there, whole[1]):
            self.ledger.finished(key, there.version, f"sha256:{whole[0]}")
            return whole[0]
        kept = obj.checksums.get("sha256")
        return kept if kept and there.checksums.get("sha256") == kept else None

    # -- one write --------------------------------------------------------------------------------
    def _single(self, obj: StoredObject, dst_uri: str, part: int,
                tags: list[tuple[str, str]] | None
                ) -> tuple[dict[str, str], StoredObject | None]:
        """One write, streamed from the source's ranges (at most one part in memory); the
        digests of what was read (its SHA-256, and what the destination checks and the
        source kept), and the destination's answer. Runs on a parts worker (no ledger here);
        the answer is checked by :meth:`_check_single`, which holds no bytes."""
        hashers = {a: hasher(a) for a in {"sha256", self.dest.part_algorithm,
                                           _source_check(obj, fast_crc32c()) or "sha256"}}
        if obj.size <= part:
            data = self.source.read_range(obj, 0, obj.size) if obj.size else b""
            _check_count(obj, 0, len(data), obj.size)
            for h in hashers.values():
                h.update(data)
            sums = {a: h.hexdigest() for a, h in hashers.items()}
            self._check_source(obj, sums)  # bytes read that are not the source's: not written
            body: IO[bytes] = io.BytesIO(data)
        else:  # a destination without parts: what the source kept is all it can check first
            sums = dict(obj.checksums)
            body = io.BufferedReader(_RangeReader(self.source, obj, part, hashers.values()))
        if tags is None:
            tags = self._tags(obj)
        written = self.dest.write(dst_uri, body, size=obj.size, checksums=sums,
                                  content_type=obj.content_type, metadata=obj.metadata,
                                  tags=tags)
        whole = {a: h.hexdigest() for a, h in hashers.items()}
        try:
            self._check_source(obj, whole)
        except ChecksumMismatchError:  # streamed: found once written, so dropped
            delete = getattr(self.dest, "delete", None)
            if delete is not None:
                delete(dst_uri)
            raise
        return whole, written

    def _check_single(self, obj: StoredObject, dst_uri: str,
                      done: tuple[dict[str, str], StoredObject | None]) -> tuple[str, str]:
        """What the destination reports of a one-write object (its answer to the write, else
        its ``head``); its version and SHA-256."""
        whole, written = done
        there = self._check_written(dst_uri, obj.size, whole["sha256"], reported=None,
                                    composite=None, md5=whole.get("md5"),
                                    crc32c=whole.get("crc32c"), there=written)
        return there.version, whole["sha256"]

    # -- parts ------------------------------------------------------------------------------------
    def _start(self, job: _InParts, upload: str | None
               ) -> tuple[str, dict[int, PartReport], bool]:
        """The upload for ``job``: the recorded one while the destination still has it (its
        parts as listed there), else a new one (``fresh``). Asked ahead, on the asks pool."""
        listed = self.dest.listed_parts(job.dst_uri, upload) if upload else None
        if upload is not None and listed is not None:
            return upload, listed, False
        tags = job.tags if job.tags is not None else self._tags(job.obj)
        upload = self.dest.start_parts(job.dst_uri, content_type=job.obj.content_type,
                                       metadata=job.obj.metadata, tags=tags)
        return upload, {}, True

    def _put(self, job: _InParts, n: int, data: bytes | None) -> _Part:
        """Part ``n`` of ``job``: read (unless the stream read it), hashed, and written
        unless the destination already holds it as recorded; what the destination reports
        is checked against the bytes read."""
        obj, part, dest = job.obj, job.part, self.dest
        start = (n - 1) * part
        length = min(part, obj.size - start)
        if data is None:
            data = self.source.read_range(obj, start, length)
        _check_count(obj, start, len(data), length)
        sums = {"sha256": hashlib.sha256(data).hexdigest()}
        crc = job.crc32c(data) if job.crc32c is not None else 0
        if job.crc32c is not None:
            sums["crc32c"] = f"{crc:08x}"
        if dest.part_algorithm not in sums:
            sums[dest.part_algorithm] = hasher(dest.part_algorithm, data).hexdigest()
        held = data if self.reads != "stream" else b""  # a stream's bytes were hashed as read
        old = job.kept.get(n)
        if old is not None and old.digest == _digest(old.digest, data, sums):
            return _Part(n, held, length, sums["sha256"], crc, old, False)
        assert job.upload is not None  # parts start once the upload is known
        report = dest.put_part(job.dst_uri, job.upload, n, data, sums[dest.part_algorithm])
        if not report.digest or report.digest != _digest(report.digest, data, sums):
            raise ChecksumMismatchError(
                f"{job.dst_uri} (part {n})", f"{length} bytes sha256:{sums['sha256']}",
                f"{report.size} bytes {report.digest or 'no checksum reported'}")
        return _Part(n, held, length, sums["sha256"], crc, report, True)

    def _finish(self, job: _InParts) -> tuple[str, str]:
        """Assemble ``job``'s parts once every one is taken by the whole's hash (module
        docstring, 4-5), on the asks pool while the next objects' parts are sent; the
        destination's version and the SHA-256."""
        dest, dst_uri, upload = self.dest, job.dst_uri, job.upload
        assert upload is not None
        sums = job.whole.digests()  # checked against the source's when its parts were all in
        # Asked again before assembly: a part replaced behind placer's back is not assembled.
        now = dest.listed_parts(dst_uri, upload) or {}
        for r in job.whole.reports:
            if not same_part(r, now.get(r.number)):
                dest.abort_parts(dst_uri, upload)
                job.dropped = True
                found = now.get(r.number)
                raise ChecksumMismatchError(
                    f"{dst_uri} (part {r.number})", f"{r.size} bytes {r.digest}",
                    f"{found.size} bytes {found.digest}" if found else "no such part")
        reported = dest.finish_parts(dst_uri, upload, job.whole.reports)
        there = self._check_written(dst_uri, job.obj.size, sums["sha256"], reported=reported,
                                    composite=sums["sha256-composite"],
                                    crc32c=sums.get("crc32c"), md5=None)
        return there.version, sums["sha256"]


    # -- checks -----------------------------------------------------------------------------------
    @staticmethod
    def _check_source(obj: StoredObject, whole: dict[str, str]) -> None:
        """The bytes read are the source's: its own stored checksum, where it kept one."""
        for algorithm, digest in whole.items():
            kept = obj.checksums.get(algorithm)
            if kept and kept != digest:
                raise ChecksumMismatchError(obj.uri, f"{obj.size} bytes {algorithm}:{kept}",
                                            f"{obj.size} bytes {algorithm}:{digest} read")

    def _check_written(self, dst_uri: str, size: int, sha256: str, *, reported: str | None,
                       composite: str | None, md5: str | None, crc32c: str | None = None,
                       there: StoredObject | None = None) -> StoredObject:
        """What the destination reports of the whole object must be what was read: its
        SHA-256, else its composite (S3), else its CRC32C (a GCS composite), else its MD5;
        with none, it is re-read. An object that
        fails is deleted where the store can (``delete``), so nothing downstream reads it."""
        try:
            return self._check_whole(dst_uri, size, sha256, reported=reported,
                                     composite=composite, md5=md5, crc32c=crc32c,
                                     there=there)
        except ChecksumMismatchError:
            delete = getattr(self.dest, "delete", None)
            if delete is not None:
                delete(dst_uri)
            raise

    def _check_whole(self, dst_uri: str, size: int, sha256: str, *, reported: str | None,
                     composite: str | None, md5: str | None, crc32c: str | None,
                     there: StoredObject | None) -> StoredObject:
        if there is None:
            there = self.dest.head(dst_uri)
        if there is None:
            raise ChecksumMismatchError(dst_uri, f"{size} bytes sha256:{sha256}", "no object")
        sums = dict(there.checksums)
        if reported:
            said, _, digest = reported.partition(":")
            sums.setdefault(said, digest)
        want = {"sha256": sha256, "sha256-composite": composite, "crc32c": crc32c, "md5": md5}
        algorithm = next((a for a in want if want[a] and a in sums), "")
        if algorithm:
            found = sums[algorithm]
        else:  # the destination reports nothing placer computes: re-read
            algorithm = "sha256"
            found = self.dest._read(there, ["sha256"])["sha256"]
        if there.size != size or found != want[algorithm]:
            raise ChecksumMismatchError(dst_uri, f"{size} bytes {algorithm}:{want[algorithm]}",
                                        f"{there.size} bytes {algorithm}:{found}")
        return there


def _reports(there: StoredObject, checks: str) -> bool:
    """Whether ``there`` reports ``checks`` (``<algorithm>:<hex>`` items): at least one of
    them, and each it reports the same."""
    said = dict(c.partition(":")[::2] for c in checks.split())
    shared = [a for a in said if a in there.checksums]
    return bool(shared) and all(there.checksums[a] == said[a] for a in shared)


def _listed(dest: ObjectStore, prefix_uri: str, *, limit: int) -> dict[str, int] | None:
    """What ``dest`` holds under ``prefix_uri`` (URI: size), one listing for all of a prefix's
    objects instead of a ``head`` each; ``None`` when the store refuses the listing (each
    object's ``head`` then says, and fails as it would have), or when it holds more than
    ``limit`` objects there (a few objects copied into a crowded prefix: their heads are
    cheaper than its listing)."""
    found: dict[str, int] = {}
    try:
        for page in dest.pages(prefix_uri):
            found.update((info.uri, info.size) for info in page)
            if len(found) > limit:
                return None
    except BackendError:
        return None
    return found


def _digest(reported: str, data: bytes, sums: dict[str, str]) -> str:
    """``<algorithm>:<hex>`` of ``data`` in the algorithm of ``reported`` (from ``sums``, the
    digests already computed, where it is there)."""
    algorithm = reported.partition(":")[0]
    if algorithm in sums:
        return f"{algorithm}:{sums[algorithm]}"
    if algorithm in ("sha256", "md5", "crc32c"):
        return f"{algorithm}:{hasher(algorithm, data).hexdigest()}"
    return ""  # an algorithm placer cannot compute: never equal, so never trusted


def _source_check(obj: StoredObject, crc32c: Callable[[bytes], int] | None) -> str | None:
    """The algorithm the bytes read are checked with against the source's own checksum:
    its SHA-256 (computed anyway), else its CRC32C (when fast here), else its MD5; ``None``
    when it kept none placer computes (an S3 composite, whose part boundaries are not
    known)."""
    kept = obj.checksums
    if "sha256" in kept:
        return "sha256"
    if "crc32c" in kept and crc32c is not None:
        return "crc32c"
    return "md5" if "md5" in kept else None


def _read_exactly(stream: Any, want: int) -> bytes:
    """``want`` bytes from ``stream`` (fewer only at its end); one read's bytes as they are
    when that is all of them (no copy)."""
    data = stream.read(want)
    if 0 < len(data) < want:
        buf = bytearray(data)
        while len(buf) < want and (chunk := stream.read(want - len(buf))):
            buf += chunk
        data = bytes(buf)
    return bytes(data)


# -- CRC32C, combined -----------------------------------------------------------------------------
# CRC32C (Castagnoli; reflected polynomial 0x82F63B78, RFC 3720 appendix B.4) is what GCS keeps
# for every object, a composed one too. The CRC of A+B follows from crc(A), crc(B) and len(B):
# appending len(B) zero bytes to A is a linear map over GF(2) on the 32-bit CRC register, so
# crc(A+B) = M(len B) . crc(A) XOR crc(B). M for 2^k zero bytes is the square of M for 2^(k-1),
# starting from the map for one zero bit; the method of zlib's crc32_combine (gf2_matrix_times,
# gf2_matrix_square), written here for this polynomial.
_CRC32C_POLY = 0x82F63B78


def _gf2_times(matrix: Sequence[int], vector: int) -> int:
    """``matrix`` (32 columns, one int each) times ``vector`` over GF(2)."""
    out, i = 0, 0
    while vector:
        if vector & 1:
            out ^= matrix[i]
        vector >>= 1
        i += 1
    return out


def _gf2_square(matrix: Sequence[int]) -> list[int]:
    return [_gf2_times(matrix, column) for column in matrix]


def _zero_byte_maps() -> list[list[int]]:
    """The maps for 2^k zero bytes, k = 0..63 (computed once)."""
    if not _ZERO_MAPS:
        one_bit = [_CRC32C_POLY] + [1 << (n - 1) for n in range(1, 32)]
        m = one_bit
        for _ in range(3):  # 1 bit -> 8 bits
            m = _gf2_square(m)
        for _ in range(64):
            _ZERO_MAPS.append(m)
            m = _gf2_square(m)
    return _ZERO_MAPS


_ZERO_MAPS: list[list[int]] = []


def crc32c_combine(crc_a: int, crc_b: int, length_b: int) -> int:
    """The CRC32C of ``A + B`` from ``crc32c(A)``, ``crc32c(B)`` and ``len(B)``.

    >>> f"{crc32c_combine(0xE3069283, 0, 0):08x}"  # nothing appended: crc(A)
    'e3069283'
    >>> crc32c_combine(0, 0x22620404, 4) == 0x22620404  # A empty
    True
    """
    if length_b < 0:
        raise ValueError("length_b must be at least 0")
    maps = _zero_byte_maps()
    k = 0
    while length_b:
        if length_b & 1:
            crc_a = _gf2_times(maps[k], crc_a)
        length_b >>= 1
        k += 1
    return crc_a ^ crc_b


def _check_count(obj: StoredObject, start: int, got: int, want: int) -> None:
    if got != want:
        raise ChecksumMismatchError(obj.uri, f"{want} bytes at {start}", f"{got} bytes read")


class _RangeReader(io.RawIOBase):
    """An object's bytes as one stream, read a part at a time (for a destination without
    multipart writes), hashed as they pass."""

    def __init__(self, store: ObjectStore, obj: StoredObject, part: int,
                 hashers: Iterable[Any]) -> None:
        super().__init__()
        self._store, self._obj, self._part = store, obj, part
        self._hashers = list(hashers)
        self._offset, self._buffer, self._at = 0, b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any, /) -> int:
        if self._at == len(self._buffer) and self._offset < self._obj.size:
            length = min(self._part, self._obj.size - self._offset)
            self._buffer, self._at = self._store.read_range(self._obj, self._offset, length), 0
            _check_count(self._obj, self._offset, len(self._buffer), length)
            self._offset += length
            for h in self._hashers:
                h.update(self._buffer)
        n = min(len(buffer), len(self._buffer) - self._at)
        buffer[:n] = self._buffer[self._at:self._at + n]
        self._at += n
        return n
