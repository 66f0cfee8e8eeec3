"""Fakes of the backend seams, in the box (as httpx ships a mock transport).

:class:`FakeComputeBackend` and :class:`FakeStorageResolver` are in-memory and deterministic,
and pass the same contract tests as the real backends (``tests/backends/contract.py`` for
compute, ``tests/backends/storage_contract.py`` for storage), so a test of the executor
written against them says something about the real thing.

    >>> from placer.testing import FakeComputeBackend
    >>> fake = FakeComputeBackend("dc1", outcomes={"train": ["FAILED", "SUCCEEDED"]})
    >>> fake.down = True   # every call now raises SiteUnreachableError("dc1")
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from placer.backends import (
    FAILED,
    PENDING,
    RUNNING,
    STOPPED,
    SUCCEEDED,
    TERMINAL_STATES,
    DatasetFacts,
    Handle,
    JobState,
)
from placer.errors import BackendError, SiteUnreachableError
from placer.models import Job, JobPlacement
from placer.storage import (
    AllowedLocations,
    BucketFacts,
    CopyResult,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    Replica,
    StoredObject,
)


@dataclass
class FakeJob:
    """One job the fake cluster holds, keyed by its submission id."""

    submission_id: str
    job: str
    placement: JobPlacement
    env: dict[str, str]
    outcome: str
    state: JobState = PENDING
    polls: int = 0
    lines: list[str] = field(default_factory=list)


class FakeComputeBackend:
    """An in-memory cluster for one site.

    Each ``status`` call moves a job one poll on: PENDING for ``polls_to_start`` polls, RUNNING
    for ``polls_to_finish`` more, then its scripted outcome. ``outcomes[job]`` lists the outcome
    of each successive submission of that job (the last repeats); ``"RUNNING"`` means it never
    finishes on its own. ``submit_errors[job]`` lists errors raised by successive submit calls.

    Attributes tests assert on: ``submissions`` (one entry per job actually created, so
    exactly-once is ``len`` per submission id), ``calls`` (every call, in order), ``down``
    (set it to take the whole site down).
    """

    name = "fake"

    def __init__(self, site: str, *, outcomes: Mapping[str, Sequence[str]] | None = None,
                 polls_to_start: int = 1, polls_to_finish: int = 1,
                 submit_errors: Mapping[str, Sequence[BackendError]] | None = None) -> None:
        self.site = site
        self.down = False
        self.outcomes = {k: list(v) for k, v in (outcomes or {}).items()}
        self.polls_to_start = polls_to_start
        self.polls_to_finish = polls_to_finish
        self.submit_errors = {k: list(v) for k, v in (submit_errors or {}).items()}
        self.jobs: dict[str, FakeJob] = {}
        self.submissions: list[str] = []
        self.calls: list[tuple[str, str]] = []
        self._submitted_per_job: dict[str, int] = {}

    def _check(self, call: str, ref: str) -> None:
        self.calls.append((call, ref))
        if self.down:
            raise SiteUnreachableError(self.site, "connection refused")

    def _job(self, handle: Handle) -> FakeJob:
        if handle.site != self.site or handle.id not in self.jobs:
            raise BackendError(f"{self.site}: no job {handle.id!r}")
        return self.jobs[handle.id]

    def _handle(self, sid: str) -> Handle:
        return Handle(backend=self.name, site=self.site, id=sid)

    def submit(self, job: Job, placement: JobPlacement, *, submission_id: str,
               env: Mapping[str, str]) -> Handle:
        self._check("submit", submission_id)
        if submission_id in self.jobs:  # idempotent: the same step is one job
            return self._handle(submission_id)
        errors = self.submit_errors.get(job.name)
        if errors:
            raise errors.pop(0)
        n = self._submitted_per_job.get(job.name, 0)
        self._submitted_per_job[job.name] = n + 1
        script = self.outcomes.get(job.name) or [SUCCEEDED]
        outcome = script[min(n, len(script) - 1)]
        fj = FakeJob(submission_id, job.name, placement, dict(env), outcome)
        fj.lines.append(f"[{self.site}] {submission_id}: $ {job.command}")
        fj.lines.append(f"[{self.site}] PLACER_JOB={env.get('PLACER_JOB', '')} "
                        f"PLACER_OUTPUT_DIR={env.get('PLACER_OUTPUT_DIR', '')}")
        self.jobs[submission_id] = fj
        self.submissions.append(submission_id)
        return self._handle(submission_id)

    def status(self, handle: Handle) -> JobState:
        self._check("status", handle.id)
        fj = self._job(handle)
        if fj.state in TERMINAL_STATES:
            return fj.state
        fj.polls += 1
        if fj.state == PENDING and fj.polls >= self.polls_to_start:
            self._move(fj, RUNNING)
        elif (fj.state == RUNNING and fj.outcome != RUNNING
              and fj.polls >= self.polls_to_start + self.polls_to_finish):
            self._move(fj, SUCCEEDED if fj.outcome == SUCCEEDED else FAILED
                       if fj.outcome == FAILED else STOPPED)
        return fj.state

    def _move(self, fj: FakeJob, state: JobState) -> None:
        fj.lines.append(f"[{self.site}] {fj.submission_id}: {fj.state} -> {state}")
        fj.state = state

    def logs(self, handle: Handle) -> str:
        self._check("logs", handle.id)
        return "\n".join(self._job(handle).lines) + "\n"

    def cancel(self, handle: Handle) -> None:
        self._check("cancel", handle.id)
        fj = self._job(handle)
        if fj.state not in TERMINAL_STATES:
            self._move(fj, STOPPED)

    def find(self, submission_id: str) -> Handle | None:
        self._check("find", submission_id)
        return self._handle(submission_id) if submission_id in self.jobs else None

    # -- for tests ------------------------------------------------------------------------------
    def count(self, submission_id: str) -> int:
        """How many jobs were created for ``submission_id`` (exactly-once means 1)."""
        return self.submissions.count(submission_id)

    def running(self) -> list[str]:
        return [sid for sid, j in self.jobs.items() if j.state in (PENDING, RUNNING)]


class FakeStorageResolver(ObjectStore):
    """An in-memory object store that keeps the storage contract (``storage_contract.py``).

    Where a URI lives comes from a table of prefixes (``prefixes``: prefix → location key,
    the longest match wins; ``tags``: prefix → the tags of everything under it). The objects
    are ``objects`` (URI → bytes); :meth:`put` writes one behind the store's back, as another
    client would. Everything else is the shared algorithm of
    :class:`~placer.storage.ObjectStore`: the same resolve, residency guard, verified copies
    (within this store, or streamed from and to another one) and verification as S3 and GCS.
    Like a real store it computes an object's SHA-256 from its bytes, checks a write against
    the SHA-256 sent with it, and pins reads and copies to the version hashed.

    Unknown stays unknown (as the policy engine requires): a URI under no known prefix
    resolves to ``location=None`` (and no size), never to a guess, and is never written to.
    ``replicas`` (prefix → location keys) are other places the store copies everything under a
    prefix to, as an S3 replication rule or a dual-region bucket does. ``copies`` lists every
    ``(src, dst)`` copied, in order.
    """

    name = "fake"
    head_operation = "get"
    list_operation = "list"

    def __init__(self, prefixes: Mapping[str, str],
                 tags: Mapping[str, Mapping[str, str]] | None = None,
                 replicas: Mapping[str, Sequence[str]] | None = None) -> None:
        self.prefixes = dict(prefixes)
        self.tags = {k: dict(v) for k, v in (tags or {}).items()}
        self.replicas = {k: tuple(v) for k, v in (replicas or {}).items()}
        self.objects: dict[str, bytes] = {}
        self.copies: list[tuple[str, str]] = []

    @classmethod
    def from_roots(cls, roots: Mapping[str, str]) -> FakeStorageResolver:
        """From a location → root mapping (a :class:`~placer.backends.PrefixLayout`'s)."""
        return cls({root: loc for loc, root in roots.items()})

    def put(self, uri: str, data: bytes) -> None:
        """Write an object behind the store's back (a job's output, another client)."""
        self.objects[uri] = bytes(data)

    def _prefix(self, uri: str) -> str | None:
        return max((p for p in self.prefixes if uri.startswith(p)), key=len, default=None)

    # -- the store's primitives -------------------------------------------------------------------
    def location(self, uri: str, *, fresh: bool = False) -> str | None:
        match = self._prefix(uri)
        return None if match is None else self.prefixes[match]

    def bucket_facts(self, uri: str) -> BucketFacts:
        match = self._prefix(uri)
        tags = dict(self.tags.get(match, {})) if match is not None else {}
        replicas = tuple(Replica(loc, f"fake replication of {prefix}")
                         for prefix, locs in sorted(self.replicas.items())
                         if uri.startswith(prefix) for loc in locs)
        return BucketFacts(self.location(uri), f"fake prefix {match}", tags,
                           "fake tags" + ("" if tags else " (none)"), replicas=replicas,
                           replicas_evidence="fake replication" if replicas else "")

    def head(self, uri: str) -> StoredObject | None:
        data = self.objects.get(uri)
        if data is None:
            return None
        sha = hashlib.sha256(data).hexdigest()
        return StoredObject(uri, len(data), version=sha[:16], checksums={"sha256": sha})

    def pages(self, prefix_uri: str) -> Iterator[list[ObjectInfo]]:
        yield [ObjectInfo(u, len(d)) for u, d in sorted(self.objects.items())
               if u.startswith(prefix_uri)]

    def _current(self, obj: StoredObject) -> bytes:
        now = self.head(obj.uri)
        if now is None or now.version != obj.version:
            raise BackendError(f"{obj.uri}: the object changed while it was being copied")
        return self.objects[obj.uri]

    def copy_one(self, src: StoredObject, dst_uri: str) -> None:
        self.objects[dst_uri] = self._current(src)

    def open_read(self, obj: StoredObject) -> ObjectReader:
        return io.BytesIO(self._current(obj))

    def write(self, uri: str, body: IO[bytes], *, size: int, checksums: Mapping[str, str],
              content_type: str | None = None, metadata: Mapping[str, str] | None = None,
              tags: Sequence[tuple[str, str]] = ()) -> None:
        data = body.read()
        sha = hashlib.sha256(data).hexdigest()
        if len(data) != size or checksums.get("sha256", sha) != sha:
            raise BackendError(f"{uri}: the store refused the write: the bytes do not match "
                               "the size and SHA-256 sent with them")
        self.objects[uri] = data

    # -- what the fake adds ---------------------------------------------------------------------
    def delete(self, uri: str) -> None:
        """Delete one object (none there: nothing to do), as removing a lost attempt's
        outputs does (:class:`placer.executor.LostAttempts`)."""
        self.objects.pop(uri, None)

    def resolve(self, uri: str) -> DatasetFacts:
        if self._prefix(uri) is None:  # no store knows it: nothing to say, not even a size
            return DatasetFacts(uri=uri, location=None, size_gb=None, tags={},
                                evidence={"location": "no known prefix"})
        return super().resolve(uri)

    def copy(self, src_uri: str, dst_uri: str, *, allowed: AllowedLocations,
             source: ObjectStore | None = None) -> CopyResult:
        result = super().copy(src_uri, dst_uri, allowed=allowed, source=source)
        self.copies.append((src_uri, dst_uri))
        return result


class FakeDataMover(FakeStorageResolver):
    """A :class:`FakeStorageResolver` built from a location → root mapping (``roots``), as
    executor tests use it for the DataMover seam."""

    def __init__(self, roots: Mapping[str, str]) -> None:
        super().__init__({root: loc for loc, root in roots.items()})
        self.roots = dict(roots)  # location -> root URI


# What FakeDataMover.copy returns (the result of every store's verified copy).
FakeCopy = CopyResult
