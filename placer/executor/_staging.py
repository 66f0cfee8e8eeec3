"""Staging under the residency guards: where a job may run, write, and read from.

Three guards stand between a plan and a submission, whatever the plan says:

* **eligibility** (:meth:`Staging.check_eligible`): every submission is checked against the
  sites the run's *own stored* policies allow for the job, re-evaluated from the journal's spec
  with lineage; a placement outside them is refused (the job is STUCK: "refused to run …");
* **output prefix** (:meth:`Staging.prefix`): a job writes under the layout's prefix for its
  own location, and, with a storage resolver, only if that prefix resolves to that location;
* **copies** (:meth:`Staging.move_inputs`): an input made in another location is copied only
  into the consuming job's own location (the mover refuses any other destination), verified,
  with intent and outcome journaled.

Inputs are resolved through :meth:`~placer.models.Pipeline.inputs_of` (each an
:class:`~placer.models.InputRef`), never by splitting the strings a pipeline lists.

Every copy is measured (a ``transfer_measured`` event: bytes, seconds, and the dollars the
link model of :func:`placer.pricing.link`, the optimizer's, charges for those bytes) beside
what that model planned for the size the pipeline declares. A copy slower than
:data:`SLOW_FACTOR` times the model's time for the bytes it moved (never less than
:data:`SLOW_FLOOR_S`, so tiny copies are not flagged for their latency) is reported
(``transfer_slow``). Copies run inside the tick that submits their job; a run's cancel stops
them at the next object boundary, and inside a copy at the next part boundary for a mover
whose ``copy`` takes ``should_stop`` (:meth:`Staging.should_stop`).
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from placer import pricing
from placer.backends import DataMover, StorageLayout, StorageResolver
from placer.catalog import Catalog, resolve_inventory
from placer.errors import ExecutionError, PlacerError, ResidencyError
from placer.executor._state import LiveRun
from placer.journal import Journal, RunState
from placer.models import JobPlacement, Location
from placer.policy import evaluate as evaluate_policies

__all__ = ["SLOW_FACTOR", "SLOW_FLOOR_S", "CopyStopped", "JobPaths", "RemoteInput", "Staging"]

log = logging.getLogger("placer.executor")

SLOW_FACTOR: Final = 3.0
"""A copy is slow past ``SLOW_FACTOR × max(the link model's time for its bytes,
SLOW_FLOOR_S)`` seconds."""
SLOW_FLOOR_S: Final = 30.0
"""The least model time that test uses (seconds), so latency alone never flags a tiny copy."""
_STOP_CHECK_S: Final = 0.5  # should_stop reads the journal at most this often


class CopyStopped(ExecutionError):
    """A run's cancel stopped a copy of its inputs (recorded CANCELLED; nothing submitted)."""


class _Host(Protocol):
    """What staging reads from the executor that owns it (at each call: callers may swap the
    layout of an executor, as tests do)."""

    journal: Journal
    layout: StorageLayout
    storage: StorageResolver | None
    mover: DataMover | None
    catalog: Catalog
    clock: Callable[[], float]


@dataclass(frozen=True)
class RemoteInput:
    """An input made in another location, and where the consuming job reads its copy."""

    ref: str
    src_uri: str
    src_location: str
    local_uri: str
    planned_gb: float = 0.0  # the size the pipeline declares for the output


class _StopFlag:
    """``should_stop()`` for one run's copies: whether the run is being cancelled, read from
    the journal (a ``placer cancel`` from another process writes only there) at most every
    ``_STOP_CHECK_S``. Read only in the thread that made it (a journal connection is not
    shared across threads); other threads get the last answer, so a copy engine should call
    it from its own loop between parts."""

    def __init__(self, journal: Journal, run_id: str, clock: Callable[[], float]) -> None:
        self._journal, self._run, self._clock = journal, run_id, clock
        self._thread = threading.get_ident()
        self._at: float | None = None
        self.stopped = False

    def __call__(self, *, fresh: bool = False) -> bool:
        """Whether the run is being cancelled; ``fresh``: read the journal now (the executor
        does at each object boundary, where a read costs nothing beside a copy)."""
        if self.stopped or threading.get_ident() != self._thread:
            return self.stopped
        now = self._clock()
        if fresh or self._at is None or now - self._at >= _STOP_CHECK_S or now < self._at:
            self._at = now
            # Renews the run's lease (a PostgreSQL journal's) while a copy outlasts it; a
            # driver that lost it is told here (JournalError), between two parts.
            self._journal.last_event(self._run)
            state = self._journal.run(self._run).state
            self.stopped = state in (RunState.CANCELLING, RunState.CANCELLED)
        return self.stopped


@dataclass(frozen=True)
class JobPaths:
    """Where one job writes (``output_dir``, ``outputs``) and reads (``inputs``)."""

    output_dir: str
    inputs: dict[str, str | None]
    outputs: dict[str, str]


class Staging:
    """The residency guards, and the copies and paths they allow."""

    def __init__(self, host: _Host) -> None:
        self._host = host
        self._resolved: dict[str, tuple[str, ...]] = {}  # output prefix → where its copies are
        self._locations: dict[str, dict[str, Location]] = {}  # run → location key → Location
        self._takes_copy: dict[int, frozenset[str]] = {}  # id(mover.copy's function) → params

    # -- where a job may run --------------------------------------------------------------------
    def check_eligible(self, rs: LiveRun, job: str, placement: JobPlacement) -> None:
        """Refuse to submit where the run's own policies do not allow the job.

        The plan was made under the same policies, so this never fires for an honest plan; it
        is the last line against a plan, a re-plan or a journal that disagrees with the
        policies (a bug or a tampered file), re-evaluated from the stored spec with lineage.
        """
        if rs.eligible is None:
            sites = resolve_inventory(rs.inventory, self._host.catalog)
            rs.eligible = {n: frozenset(e.allowed) for n, e in
                           evaluate_policies(rs.pipeline, sites, rs.policies).items()}
        if placement.site not in rs.eligible[job]:
            allowed = ", ".join(sorted(rs.eligible[job])) or "no site"
            raise ResidencyError(f"refused to run {job} on {placement.site}: the run's policies "
                                 f"allow it only on {allowed}")

    # -- where it writes ------------------------------------------------------------------------
    def prefix(self, rs: LiveRun, job: str, location: str) -> str:
        """The job's output prefix: in ``location`` (where it runs), or a ResidencyError."""
        prefix = self._host.layout.job_prefix(rs.id, job, location)
        if prefix is None:
            raise ResidencyError(f"{job}: no storage is configured in {location}, where it "
                                 "runs; its outputs may not be written anywhere else")
        storage = self._host.storage
        if storage is not None:
            if prefix not in self._resolved:
                self._resolved[prefix] = storage.resolve(prefix).copies
            copies = self._resolved[prefix]
            # Every copy, not only the primary: a multi-region or replicated bucket carries the
            # outputs to each of its locations.
            if copies != (location,):
                where = ", ".join(copies) or "an unknown location"
                raise ResidencyError(f"{job}: its output prefix {prefix} is in {where}, not "
                                     f"only in {location} where the job runs and the policy "
                                     "allows its data")
        return prefix

    # -- what it reads --------------------------------------------------------------------------
    def remote_inputs(self, rs: LiveRun, job: str,
                      placement: JobPlacement) -> list[RemoteInput]:
        """Each input made in another location, with where its copy goes (none without a
        mover: the job then reads such inputs where they were written)."""
        if self._host.mover is None:
            return []
        out = []
        for ref in rs.pipeline.inputs_of(job):
            if ref.job is None or ref.output is None:
                continue
            src, name = ref.job, ref.output
            src_loc = rs.placements[src].location
            if src_loc == placement.location:
                continue
            local = f"{self.prefix(rs, job, placement.location)}inputs/{src}/{name}"
            out.append(RemoteInput(ref.ref, self.prefix(rs, src, src_loc) + name, src_loc,
                                   local, float(rs.pipeline.job(src).outputs[name])))
        return out

    def paths(self, rs: LiveRun, job: str, placement: JobPlacement) -> JobPaths:
        """The job's output prefix and outputs, and the URI it reads each input from."""
        spec = rs.pipeline.job(job)
        # A job that declares no outputs needs no storage where it runs (its output dir is
        # then empty); any prefix it is given is still checked to be in its own location.
        bare = (not spec.outputs
                and self._host.layout.job_prefix(rs.id, job, placement.location) is None)
        prefix = "" if bare else self.prefix(rs, job, placement.location)
        inputs: dict[str, str | None] = {}
        local = {r.ref: r.local_uri for r in self.remote_inputs(rs, job, placement)}
        for ref in rs.pipeline.inputs_of(spec):
            if ref.dataset is not None:
                inputs[ref.ref] = rs.pipeline.dataset(ref.dataset).uri
            else:
                assert ref.job is not None and ref.output is not None
                src_loc = rs.placements[ref.job].location
                inputs[ref.ref] = (local.get(ref.ref)
                                   or self.prefix(rs, ref.job, src_loc) + ref.output)
        outputs = {name: prefix + name for name in spec.outputs}
        return JobPaths(output_dir=prefix, inputs=inputs, outputs=outputs)

    def move_inputs(self, rs: LiveRun, job: str, placement: JobPlacement) -> None:
        """Copy inputs made in other locations into the job's own, verified, journaled.

        Intent is recorded before the copy and the outcome after, so a crash mid-copy is
        redone on resume (copies overwrite, so redoing is safe; a mover that takes the
        ``journal``, :class:`~placer.backends.StorageRouter`, re-sends only the parts it had
        not recorded there); a copy already recorded as done is not repeated. The
        destination may only be the job's own location, which the policies allow for
        everything the job reads.
        """
        journal = self._host.journal
        records = journal.transfers(rs.id)
        done = {(t.src_uri, t.dst_uri) for t in records if t.state == "DONE"}
        # A copy still INTENT here was left by a driver killed in it (this one drives the run
        # alone, and finishes its own): closed FAILED before it is redone.
        dead = {(t.src_uri, t.dst_uri): t.id for t in records if t.state == "INTENT"}
        should_stop = self.should_stop(rs)
        for move in self.remote_inputs(rs, job, placement):
            if (move.src_uri, move.local_uri) in done:
                continue
            if should_stop(fresh=True):  # cancelled between two copies: the next never starts
                raise CopyStopped(f"{job}: the run is being cancelled; its inputs are not "
                                  "copied")
            mover = self._host.mover
            assert mover is not None
            if (move.src_uri, move.local_uri) in dead:
                journal.finish_transfer(rs.id, dead[move.src_uri, move.local_uri], "FAILED")
            tid = journal.record_transfer(rs.id, job, move.src_uri, move.local_uri,
                                          src_location=move.src_location,
                                          dst_location=placement.location)
            takes = self._takes(mover)
            extra: dict[str, Any] = {k: v for k, v in (("should_stop", should_stop),
                                                        ("journal", journal)) if k in takes}
            began = self._host.clock()
            try:
                result = mover.copy(move.src_uri, move.local_uri, allowed={placement.location},
                                    **extra)
            except BaseException as exc:
                stopped = isinstance(exc, PlacerError) and should_stop(fresh=True)
                journal.finish_transfer(rs.id, tid, "CANCELLED" if stopped else "FAILED")
                if stopped:
                    raise CopyStopped(f"{job}: the run's cancel stopped copying {move.ref}") \
                        from exc
                raise
            seconds = max(0.0, self._host.clock() - began)
            journal.finish_transfer(rs.id, tid, "DONE", nbytes=result.bytes,
                                    checksum=result.checksum)
            self._measure(rs, job, tid, move, placement.location, result.bytes, seconds)

    # -- stopping copies ------------------------------------------------------------------------
    def should_stop(self, rs: LiveRun) -> _StopFlag:
        """A ``should_stop()`` for the run's copies: ``True`` once the run is being cancelled
        (by this process or by ``placer cancel`` in another). A copy engine calls it between
        parts (from the thread that called ``copy``) and stops with an error; the executor
        then records the copy CANCELLED."""
        return _StopFlag(self._host.journal, rs.id, self._host.clock)

    def _takes(self, mover: DataMover) -> frozenset[str]:
        """The parameters ``mover.copy`` takes (looked up once per mover class): with
        ``should_stop`` it is asked between parts; with ``journal`` (the executor's) a copy
        in parts records them there, so a resumed run re-sends only the missing ones."""
        fn = getattr(type(mover), "copy", None)
        key = id(fn)
        if key not in self._takes_copy:
            try:
                self._takes_copy[key] = frozenset(inspect.signature(mover.copy).parameters)
            except (TypeError, ValueError):
                self._takes_copy[key] = frozenset()
        return self._takes_copy[key]

    # -- what copies take and cost --------------------------------------------------------------
    def _location(self, rs: LiveRun, key: str) -> Location:
        known = self._locations.get(rs.id)
        if known is None:
            known = self._locations[rs.id] = {
                s.location.key: s.location
                for s in resolve_inventory(rs.inventory, self._host.catalog)}
        return known[key] if key in known else self._host.catalog.location(key)

    def _measure(self, rs: LiveRun, job: str, tid: int, move: RemoteInput, dst_location: str,
                 nbytes: int, seconds: float) -> None:
        """Record what one copy moved, took and cost, and what the plan's model said."""
        data: dict[str, Any] = {"id": tid, "src_location": move.src_location,
                                "dst_location": dst_location, "bytes": nbytes,
                                "seconds": round(seconds, 3), "planned_gb": move.planned_gb}
        try:
            link = pricing.link(rs.inventory.network, self._host.catalog,
                                self._location(rs, move.src_location),
                                self._location(rs, dst_location))
        except PlacerError as exc:  # priced when planned, so only a changed catalog gets here
            log.warning("run %s: transfer %d not priced: %s", rs.id, tid, exc)
        else:
            gb, per_s = nbytes / 1e9, link.hours_per_gb * pricing.SECONDS_PER_HOUR
            expected = gb * per_s
            data.update(usd=round(link.usd(gb), 6), expected_s=round(expected, 3),
                        planned_s=round(move.planned_gb * per_s, 3),
                        planned_usd=round(link.usd(move.planned_gb), 6),
                        slow=seconds > SLOW_FACTOR * max(expected, SLOW_FLOOR_S))
        journal = self._host.journal
        journal.record_event(rs.id, "transfer_measured", job, **data)
        if data.get("slow"):
            journal.record_event(rs.id, "transfer_slow", job, id=tid, seconds=data["seconds"],
                                 expected_s=data["expected_s"], factor=SLOW_FACTOR,
                                 floor_s=SLOW_FLOOR_S)
            log.warning("run %s: copy %d for %s took %.1fs, the link model said %.1fs", rs.id,
                        tid, job, seconds, data["expected_s"])
