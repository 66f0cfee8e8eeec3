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
   object's size. A destination with multipart writes (``ObjectStore.multipart``) gets them
   as parts, ``workers`` in flight; one without gets one streamed write.
4. **Each part verified.** Each part's SHA-256 is computed on the bytes read and sent with
   it (the store refuses bytes that do not match, where it checks); what the store reports
   it stored (its SHA-256, or its MD5: S3's part ETag, a GCS part object's MD5) is compared
   with the same digest of the bytes read. Before the parts are assembled the destination is
   asked for them again, so a part replaced behind placer's back fails the copy (the upload is
   then dropped: nothing is assembled, nothing downstream can read it).
5. **The whole verified.** SHA-256 over the parts in order (streamed) is compared with the
   source's own stored SHA-256 (if it kept one) and with what the destination reports: its
   full-object SHA-256, or its composite (the SHA-256 of the parts' SHA-256s, S3's), else the
   destination is re-read and hashed (a GCS composite object has no checksum placer computes).
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import IO, Any, Protocol

from placer.errors import BackendError, ChecksumMismatchError, DatasetNotFoundError
from placer.journal import Journal
from placer.storage import (
    AllowedLocations,
    CopyResult,
    ObjectStore,
    PartReport,
    StoredObject,
    tree_digest,
    with_key,
)

__all__ = [
    "DEFAULT_PART_SIZE", "DEFAULT_WORKERS", "CopyLedger", "JournalLedger", "MemoryLedger",
    "copy", "copy_key",
]

DEFAULT_PART_SIZE = 64 * 1024 * 1024
DEFAULT_WORKERS = 8


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
    reported, and, once verified, the destination version that holds it."""

    def upload(self, key: str) -> str | None: ...
    def started(self, key: str, upload: str) -> None: ...
    def part(self, key: str, report: PartReport) -> None: ...
    def parts(self, key: str) -> dict[int, PartReport]: ...
    def finished(self, key: str, version: str, checksum: str) -> None: ...
    def finished_as(self, key: str) -> tuple[str, str] | None: ...
    def forget(self, key: str) -> None: ...


class MemoryLedger:
    """A ledger in memory (a copy resumes within one process)."""

    def __init__(self) -> None:
        self._uploads: dict[str, str] = {}
        self._parts: dict[str, dict[int, PartReport]] = {}
        self._done: dict[str, tuple[str, str]] = {}

    def upload(self, key: str) -> str | None:
        return self._uploads.get(key)

    def started(self, key: str, upload: str) -> None:
        self._uploads[key], self._parts[key] = upload, {}

    def part(self, key: str, report: PartReport) -> None:
        self._parts.setdefault(key, {})[report.number] = report

    def parts(self, key: str) -> dict[int, PartReport]:
        return dict(self._parts.get(key, {}))

    def finished(self, key: str, version: str, checksum: str) -> None:
        self._uploads.pop(key, None)
        self._parts.pop(key, None)
        self._done[key] = (version, checksum)

    def finished_as(self, key: str) -> tuple[str, str] | None:
        return self._done.get(key)

    def forget(self, key: str) -> None:
        self._uploads.pop(key, None)
        self._parts.pop(key, None)
        self._done.pop(key, None)


# The journal's copy_parts table (placer.journal's schema has it; a journal made before it
# gets it on first use). Row 0 is the upload, rows 1… its parts, row -1 the finished copy.
_TABLE = """CREATE TABLE IF NOT EXISTS copy_parts (
    copy_key TEXT NOT NULL,
    part INTEGER NOT NULL,
    upload TEXT,
    size BIGINT,
    digest TEXT,
    token TEXT,
    updated DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (copy_key, part)
)"""
_UPSERT = ("INSERT INTO copy_parts (copy_key, part, upload, size, digest, token, updated) "
           "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (copy_key, part) DO UPDATE SET "
           "upload = excluded.upload, size = excluded.size, digest = excluded.digest, "
           "token = excluded.token, updated = excluded.updated")
_UPLOAD, _DONE = 0, -1


class JournalLedger:
    """The ledger in the executor's journal (SQLite or PostgreSQL): a copy killed with the
    process that ran it resumes in the next one. Each record is its own committed write
    transaction (SQLite's ``synchronous = FULL``: on disk before the next part is sent)."""

    def __init__(self, journal: Journal, clock: Callable[[], float] = time.time) -> None:
        self._journal, self._clock = journal, clock
        with journal._tx() as db:
            db.execute(_TABLE)

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
    _, src_key = source.parse(src_uri)
    _, dst_key = dest.parse(dst_uri)
    obj = source.head(src_uri) if src_key and not src_key.endswith("/") else None
    if obj is not None:
        if dst_key == "" or dst_key.endswith("/"):
            dst_key += src_key.rsplit("/", 1)[-1]
        dst = with_key(dst_uri, dst_key)
        [(obj, digest)] = job.many([(src_uri, dst)])
        return CopyResult(src_uri, dst, obj.size, 1, f"sha256:{digest}")
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
    copied = job.many([(info.uri, with_key(dst_uri, dst_key + rel))
                       for info, rel in zip(objects, rels, strict=True)])
    lines = [f"{rel}\t{one.size}\t{digest}\n"
             for rel, (one, digest) in zip(rels, copied, strict=True)]
    return CopyResult(src_uri, with_key(dst_uri, dst_key), sum(o.size for o, _ in copied),
                      len(objects), f"sha256-tree:{tree_digest(lines)}")


@dataclass
class _Part:
    """One part read: its bytes (dropped once hashed in order), their SHA-256, and what the
    destination reported for it (``sent``: written by this call, else found already there)."""

    number: int
    data: bytes
    sha256: str
    report: PartReport
    sent: bool


class _Copy:
    def __init__(self, source: ObjectStore, dest: ObjectStore, ledger: CopyLedger,
                 part_size: int, workers: int, on_part: Callable[[int], None] | None,
                 reads: str) -> None:
        self.source, self.dest, self.ledger = source, dest, ledger
        self.part_size, self.workers, self.on_part = part_size, workers, on_part
        self.reads = reads
        self.written = 0

    def _size(self, size: int) -> int:
        """The part size for an object of ``size`` bytes on this destination."""
        return max(self.part_size, self.dest.min_part_size, math.ceil(size / self.dest.max_parts))

    def many(self, items: Sequence[tuple[str, str]]) -> list[tuple[StoredObject, str]]:
        """Copy each ``(source URI, destination URI)``; each source object and its SHA-256.

        Objects are asked for (both ends' ``head``) ``workers`` at a time; objects of one part
        are copied ``workers`` at a time, larger ones one after the other, each with
        ``workers`` parts in flight. The ledger is written from this thread only (a SQLite
        connection is its thread's).
        """
        out: list[tuple[StoredObject, str] | None] = [None] * len(items)
        pending: dict[Future[tuple[str, str]], tuple[int, StoredObject, str]] = {}

        def collect(block: bool) -> None:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED) if block else (
                {f for f in pending if f.done()}, None)
            for fut in finished:
                i, obj, key = pending.pop(fut)
                version, digest = fut.result()
                self.ledger.finished(key, version, f"sha256:{digest}")
                out[i] = (obj, digest)

        def heads(item: tuple[str, str]) -> tuple[StoredObject | None, StoredObject | None]:
            return self.source.head(item[0]), self.dest.head(item[1])

        with ThreadPoolExecutor(self.workers, thread_name_prefix="placer-copy") as pool:
            try:
                for i, item, (obj, there) in _asked(pool, heads, items, 8 * self.workers):
                    if obj is None:
                        raise DatasetNotFoundError(item[0], "deleted while it was being copied")
                    key = copy_key(obj, item[1], self.part_size)
                    done = self._done(obj, there, key)
                    part = self._size(obj.size)
                    if done is not None:
                        out[i] = (obj, done)
                    elif self.dest.multipart and obj.size > part:
                        out[i] = (obj, self._multipart(obj, item[1], part, key))
                    else:
                        while len(pending) >= self.workers:
                            collect(block=True)
                        pending[pool.submit(self._single, obj, item[1], part)] = (i, obj, key)
                    collect(block=False)
                while pending:
                    collect(block=True)
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
        return [x for x in out if x is not None]

    def _done(self, obj: StoredObject, there: StoredObject | None, key: str) -> str | None:
        """The SHA-256 of a copy already made: the ledger's, while the destination still has
        the version it recorded; or the source's own, when the destination reports it."""
        if there is None or there.size != obj.size:
            return None
        done = self.ledger.finished_as(key)
        if done is not None and there.version == done[0]:
            return done[1].removeprefix("sha256:")
        kept = obj.checksums.get("sha256")
        return kept if kept and there.checksums.get("sha256") == kept else None

    # -- one streamed write -----------------------------------------------------------------------
    def _single(self, obj: StoredObject, dst_uri: str, part: int) -> tuple[str, str]:
        """One write, streamed from the source's ranges (at most one part in memory); the
        destination's version and the SHA-256. Runs on a worker: no ledger here."""
        hashers = {"sha256": hashlib.sha256(), "md5": hashlib.md5(usedforsecurity=False)}
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
        self.dest.write(dst_uri, body, size=obj.size, checksums=sums,
                        content_type=obj.content_type, metadata=obj.metadata,
                        tags=self.source.object_tag_pairs(obj))
        whole = {a: h.hexdigest() for a, h in hashers.items()}
        try:
            self._check_source(obj, whole)
        except ChecksumMismatchError:  # streamed: found once written, so dropped
            delete = getattr(self.dest, "delete", None)
            if delete is not None:
                delete(dst_uri)
            raise
        there = self._check_written(dst_uri, obj.size, whole["sha256"], reported=None,
                                    composite=None, md5=whole["md5"])
        return there.version, whole["sha256"]

    # -- parts ------------------------------------------------------------------------------------
    def _multipart(self, obj: StoredObject, dst_uri: str, part: int, key: str) -> str:
        """Copy one object in parts (module docstring, 3-6); its SHA-256."""
        dest = self.dest
        count = math.ceil(obj.size / part)
        upload = self.ledger.upload(key)
        listed = dest.listed_parts(dst_uri, upload) if upload else None
        if upload is None or listed is None:
            upload = dest.start_parts(dst_uri, content_type=obj.content_type,
                                      metadata=obj.metadata,
                                      tags=self.source.object_tag_pairs(obj))
            self.ledger.started(key, upload)
            listed = {}
        recorded = self.ledger.parts(key)
        # A part is kept only if the destination reports it as recorded when it was written.
        kept = {n: r for n, r in recorded.items() if listed.get(n) == r and r.digest}
        hashers = {"sha256": hashlib.sha256()}
        if "sha256" not in obj.checksums and "md5" in obj.checksums:
            hashers["md5"] = hashlib.md5(usedforsecurity=False)
        composite = hashlib.sha256()
        reports: list[PartReport] = []

        def work(n: int, data: bytes | None) -> _Part:
            start = (n - 1) * part
            length = min(part, obj.size - start)
            if data is None:
                data = self.source.read_range(obj, start, length)
            _check_count(obj, start, len(data), length)
            sha = hashlib.sha256(data).hexdigest()
            old = kept.get(n)
            if old is not None and old.digest == _digest(old.digest, data, sha):
                return _Part(n, data, sha, old, False)
            report = dest.put_part(dst_uri, upload, n, data, sha)
            if not report.digest or report.digest != _digest(report.digest, data, sha):
                raise ChecksumMismatchError(
                    f"{dst_uri} (part {n})", f"{length} bytes sha256:{sha}",
                    f"{report.size} bytes {report.digest or 'no checksum reported'}")
            return _Part(n, data, sha, report, True)

        stream = self.source.open_read(obj) if self.reads == "stream" else None

        def submit(n: int) -> None:
            """Part ``n`` to a worker; with a stream, its bytes are read here, in order."""
            data = None
            if stream is not None:
                want = min(part, obj.size - (n - 1) * part)
                data = stream.read(want)  # usually all of it: no copy
                if 0 < len(data) < want:
                    buf = bytearray(data)
                    while len(buf) < want and (chunk := stream.read(want - len(buf))):
                        buf += chunk
                    data = bytes(buf)
            pending[n] = pool.submit(work, n, data)

        pending: dict[int, Future[_Part]] = {}
        recorded_now: set[int] = set()
        following = iter(range(1, count + 1))
        with ThreadPoolExecutor(self.workers, thread_name_prefix="placer-copy") as pool:
            try:
                for n in _take(following, self.workers):
                    submit(n)
                head = 1
                while pending:
                    finished, _ = wait(pending.values(), return_when=FIRST_COMPLETED)
                    for fut in finished:  # recorded as soon as written (resume needs it)
                        got = fut.result()
                        if got.sent and got.number not in recorded_now:
                            recorded_now.add(got.number)
                            self.ledger.part(key, got.report)
                            self.written += 1
                            if self.on_part is not None:
                                self.on_part(self.written)
                    while head in pending and pending[head].done():  # hashed in order
                        got = pending.pop(head).result()
                        for h in hashers.values():
                            h.update(got.data)
                        composite.update(bytes.fromhex(got.sha256))
                        reports.append(got.report)
                        head += 1
                        for n in _take(following, 1):
                            submit(n)
            except BaseException:
                for fut in pending.values():
                    fut.cancel()
                raise
            finally:
                if stream is not None:
                    stream.close()
        whole = {a: h.hexdigest() for a, h in hashers.items()}
        self._check_source(obj, whole)
        # Asked again before assembly: a part replaced behind placer's back is not assembled.
        now = dest.listed_parts(dst_uri, upload) or {}
        for r in reports:
            if now.get(r.number) != r:
                dest.abort_parts(dst_uri, upload)
                self.ledger.forget(key)
                found = now.get(r.number)
                raise ChecksumMismatchError(
                    f"{dst_uri} (part {r.number})", f"{r.size} bytes {r.digest}",
                    f"{found.size} bytes {found.digest}" if found else "no such part")
        reported = dest.finish_parts(dst_uri, upload, reports)
        there = self._check_written(dst_uri, obj.size, whole["sha256"], reported=reported,
                                    composite=composite.hexdigest(), md5=None)
        self.ledger.finished(key, there.version, f"sha256:{whole['sha256']}")
        return whole["sha256"]

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
                       composite: str | None, md5: str | None) -> StoredObject:
        """What the destination reports of the whole object must be what was read: its
        SHA-256, else its composite, else its MD5; with none, it is re-read. An object that
        fails is deleted where the store can (``delete``), so nothing downstream reads it."""
        try:
            return self._check_whole(dst_uri, size, sha256, reported=reported,
                                     composite=composite, md5=md5)
        except ChecksumMismatchError:
            delete = getattr(self.dest, "delete", None)
            if delete is not None:
                delete(dst_uri)
            raise

    def _check_whole(self, dst_uri: str, size: int, sha256: str, *, reported: str | None,
                     composite: str | None, md5: str | None) -> StoredObject:
        there = self.dest.head(dst_uri)
        if there is None:
            raise ChecksumMismatchError(dst_uri, f"{size} bytes sha256:{sha256}", "no object")
        sums = dict(there.checksums)
        if reported:
            said, _, digest = reported.partition(":")
            sums.setdefault(said, digest)
        want = {"sha256": sha256, "sha256-composite": composite, "md5": md5}
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


def _digest(reported: str, data: bytes, sha256: str) -> str:
    """``<algorithm>:<hex>`` of ``data`` in the algorithm of ``reported``."""
    algorithm = reported.partition(":")[0]
    if algorithm == "sha256":
        return f"sha256:{sha256}"
    if algorithm == "md5":
        return f"md5:{hashlib.md5(data, usedforsecurity=False).hexdigest()}"
    return ""  # an algorithm placer cannot compute: never equal, so never trusted


def _asked(pool: ThreadPoolExecutor,
           heads: Callable[[tuple[str, str]], tuple[StoredObject | None, StoredObject | None]],
           items: Sequence[tuple[str, str]], batch: int
           ) -> Iterator[tuple[int, tuple[str, str],
                               tuple[StoredObject | None, StoredObject | None]]]:
    """``(index, item, heads(item))`` in order, asked ``batch`` items at a time on ``pool`` (a
    prefix of a million objects is not asked all at once before its first byte moves)."""
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        for i, (item, got) in enumerate(zip(chunk, pool.map(heads, chunk), strict=True)):
            yield start + i, item, got


def _take(it: Iterator[int], n: int) -> Sequence[int]:
    return [x for _, x in zip(range(n), it, strict=False)]


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
