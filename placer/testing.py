"""Fakes of the backend seams, in the box (as httpx ships a mock transport).

:class:`FakeComputeBackend` and :class:`FakeStorageResolver` are in-memory and deterministic,
and pass the same contract tests as the real backends (``tests/backends/contract.py``), so a
test of the executor written against them says something about the real thing.

    >>> from placer.testing import FakeComputeBackend
    >>> fake = FakeComputeBackend("dc1", outcomes={"train": ["FAILED", "SUCCEEDED"]})
    >>> fake.down = True   # every call now raises SiteUnreachableError("dc1")
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

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
from placer.errors import BackendError, ResidencyError, SiteUnreachableError
from placer.models import Job, JobPlacement


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


class FakeStorageResolver:
    """Answers where a URI lives from a table of prefixes; an unknown URI has no location.

    Unknown stays unknown (as the policy engine requires): a URI under no known prefix resolves
    to ``location=None``, never to a guess.
    """

    def __init__(self, prefixes: Mapping[str, str],
                 tags: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.prefixes = dict(prefixes)
        self.tags = {k: dict(v) for k, v in (tags or {}).items()}

    @classmethod
    def from_roots(cls, roots: Mapping[str, str]) -> FakeStorageResolver:
        """From a location → root mapping (a :class:`~placer.backends.PrefixLayout`'s)."""
        return cls({root: loc for loc, root in roots.items()})

    def resolve(self, uri: str) -> DatasetFacts:
        match = max((p for p in self.prefixes if uri.startswith(p)), key=len, default=None)
        if match is None:
            return DatasetFacts(uri=uri, location=None, size_gb=None, tags={},
                                evidence={"location": "no known prefix"})
        return DatasetFacts(uri=uri, location=self.prefixes[match], size_gb=None,
                            tags=dict(self.tags.get(match, {})),
                            evidence={"location": f"fake prefix {match}"})


@dataclass(frozen=True)
class FakeCopy:
    """What :class:`FakeDataMover` reports for a copy."""

    bytes: int
    checksum: str


class FakeDataMover:
    """An in-memory object store over several locations, with the DataMover contract.

    ``objects`` maps URI → bytes; a location owns every URI under one of its roots. Like the
    real movers it refuses a destination outside ``allowed`` before writing anything, and a
    copy of a source with no objects is an error (never an empty success).
    """

    def __init__(self, roots: Mapping[str, str]) -> None:
        self.roots = dict(roots)  # location -> root URI
        self.objects: dict[str, bytes] = {}
        self.copies: list[tuple[str, str]] = []

    def location(self, uri: str) -> str | None:
        best = max((loc for loc, root in self.roots.items() if uri.startswith(root)),
                   key=lambda loc: len(self.roots[loc]), default=None)
        return best

    def put(self, uri: str, data: bytes) -> None:
        self.objects[uri] = data

    def copy(self, src: str, dst: str, *, allowed: Collection[str]) -> FakeCopy:
        where = self.location(dst)
        if where is None or where not in allowed:
            place = where or "an unknown location"
            raise ResidencyError(f"refusing to copy to {dst}: it is in {place}, "
                                 f"allowed: {', '.join(sorted(allowed))}")
        keys = sorted(k for k in self.objects if k == src or k.startswith(src.rstrip("/") + "/"))
        if not keys:
            raise BackendError(f"nothing to copy at {src}")
        digest = hashlib.sha256()
        total = 0
        for k in keys:
            data = self.objects[k]
            self.objects[dst + k[len(src):]] = data
            digest.update(k[len(src):].encode() + b"\0" + data)
            total += len(data)
        self.copies.append((src, dst))
        return FakeCopy(bytes=total, checksum="sha256-tree:" + digest.hexdigest())
