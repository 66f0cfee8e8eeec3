"""Failover: a site that goes down is dropped for the rest of the run, and the rest re-planned.

A backend that raises :class:`~placer.errors.SiteUnreachableError` takes its site out of the
run (a ``site_down`` event): the site's in-flight steps are LOST and every job not yet done is
re-planned with :func:`placer.plan`, ``pinned`` keeping finished and running jobs where they
are (their outputs live there) and ``exclude_sites`` dropping the site and every site without
a compute backend.

Re-planning only narrows: the policy-eligible sets are evaluated again from the run's stored
spec and sites are only ever removed from them. A job whose every eligible site is gone is
STUCK with the rules that keep it there, never moved elsewhere, and its descendants BLOCKED.

A LOST attempt may still be running on its cluster, and a cluster that comes back would let
two attempts of one step write outputs. :class:`LostAttempts` chases them on every tick (and
``resume``): it asks the lost site again (with backoff while it does not answer), cancels the
attempt through its backend (idempotent), waits until the cluster reports it stopped, then
removes what it wrote, only under its own output prefix and only where that prefix is
proven to be its alone (see :meth:`LostAttempts.own_prefix`; otherwise the outputs are kept
and the reason recorded). Events: ``lost_attempt_cancelled``, ``lost_attempt_outputs_removed``,
``lost_attempt_outputs_kept``, ``lost_attempt_cleanup_failed``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import networkx as nx

from placer.backends import (
    PENDING,
    RUNNING,
    ComputeBackend,
    Handle,
    StorageLayout,
    StorageResolver,
)
from placer.catalog import Catalog, resolve_inventory
from placer.errors import BackendError, PlacerError, SiteUnreachableError
from placer.executor._state import (
    ACTIVE_STEP_STATES,
    FINAL_JOB_STATES,
    RETRY_WAIT,
    WAITING,
    LiveRun,
    Transitions,
)
from placer.journal import EventRecord, Journal, StepRecord, StepState
from placer.models import Pipeline, Plan
from placer.policy import JobEligibility, PolicySet
from placer.policy import evaluate as evaluate_policies
from placer.scheduler import plan as make_plan
from placer.secrets import Redactor

__all__ = ["LOST_EVENTS", "Failover", "LostAttempts", "ObjectRemover", "stuck_reason"]

log = logging.getLogger("placer.executor")


class _Host(Protocol):
    """What failover reads from the executor that owns it."""

    journal: Journal
    redactor: Redactor
    backends: dict[str, ComputeBackend]
    catalog: Catalog
    decision_log: Path | None


class Failover:
    """Drops sites that went down and re-plans around them, never widening eligibility."""

    def __init__(self, host: _Host, transitions: Transitions) -> None:
        self._host = host
        self._states = transitions

    def site_down(self, rs: LiveRun, site: str, exc: BaseException) -> None:
        """``site`` cannot be reached: exclude it, lose its in-flight steps, re-plan."""
        if site in rs.excluded:
            return
        journal = self._host.journal
        msg = self._host.redactor.text(str(exc))
        journal.record_event(rs.id, "site_down", None, site=site, error=msg)
        log.warning("run %s: site %s is down: %s", rs.id, site, msg)
        rs.excluded.add(site)
        for j in rs.jobs.values():
            if j.site == site and j.state in ACTIVE_STEP_STATES:
                self._states.lost(rs, j, f"site {site} went down")
            elif j.site == site and j.state == RETRY_WAIT:
                j.state = WAITING
        self.replan(rs, f"site {site} is unreachable")

    def needs_replan(self, rs: LiveRun) -> bool:
        """Whether a job yet to be submitted is placed nowhere, or on a site it cannot use."""
        backends = self._host.backends
        return any(j.state in (WAITING, RETRY_WAIT)
                   and (j.name not in rs.placements
                        or rs.placements[j.name].site in rs.excluded
                        or rs.placements[j.name].site not in backends)
                   for j in rs.jobs.values())

    def _log_decision(self, rs: LiveRun, sub: Pipeline, new: Plan, pinned: Mapping[str, str],
                      exclude: list[str]) -> None:
        """Append the re-plan to the decision log, if the executor has one. A log that cannot
        be written does not stop a failover (the journal holds the plan); it is recorded."""
        path = self._host.decision_log
        if path is None:
            return
        from placer import decisions

        try:
            decisions.append(decisions.record(
                new, pipeline=sub, inventory=rs.inventory, policies=rs.policies, kind="replan",
                run=rs.id, pinned=pinned, exclude_sites=exclude), path)
        except PlacerError as exc:
            self._host.journal.record_event(rs.id, "decision_log_failed", None,
                                            error=self._host.redactor.text(str(exc)))
            log.warning("run %s: re-plan not logged: %s", rs.id, exc)

    def replan(self, rs: LiveRun, reason: str) -> None:
        """Re-place every job not yet done or running, without the excluded sites.

        Finished and running jobs are pinned where they ran (their outputs live there). A job
        whose eligible sites are all excluded is STUCK, its descendants BLOCKED; the rest are
        re-planned together so data movement is still priced along the DAG.
        """
        catalog, backends = self._host.catalog, self._host.backends
        pinned = {n: j.site for n, j in rs.jobs.items()
                  if j.site is not None and (j.state == StepState.SUCCEEDED
                                             or j.state in ACTIVE_STEP_STATES)}
        todo = [n for n in rs.order
                if n not in pinned and rs.jobs[n].state not in FINAL_JOB_STATES]
        if not todo:
            return
        sites = resolve_inventory(rs.inventory, catalog)
        exclude = rs.excluded | {s.name for s in sites if s.name not in backends}
        elig = evaluate_policies(rs.pipeline, sites, rs.policies)
        stuck: dict[str, tuple[StepState, str]] = {}
        for n in todo:
            up = next((p for p in nx.ancestors(rs.graph, n)
                       if p in stuck
                       or rs.jobs[p].state in FINAL_JOB_STATES - {StepState.SUCCEEDED}), None)
            if up is not None:
                stuck[n] = (StepState.BLOCKED, f"waits for {up}, which cannot run")
            elif not [s for s in elig[n].allowed if s not in exclude]:
                stuck[n] = (StepState.STUCK, stuck_reason(n, elig[n], rs.excluded,
                                                          rs.policies))
        keep = tuple(j for j in rs.pipeline.jobs
                     if j.name not in stuck and (j.name in pinned
                                                 or rs.jobs[j.name].state not in
                                                 FINAL_JOB_STATES))
        movable = [n for n in todo if n not in stuck]
        if movable:
            sub = Pipeline(name=rs.pipeline.name, datasets=rs.pipeline.datasets, jobs=keep)
            new = make_plan(sub, rs.inventory, rs.policies, objective=rs.objective,
                            catalog=catalog, pinned=pinned, exclude_sites=sorted(exclude))
            self._host.journal.record_plan(rs.id, new, reason)
            self._log_decision(rs, sub, new, pinned, sorted(exclude))
            if new.status == "placed":
                for n in movable:
                    rs.placements[n] = new.jobs[n]
            else:
                why = f"re-plan is {new.status}: " + "; ".join(new.reasons)
                stuck.update(dict.fromkeys(movable, (StepState.STUCK, why)))
        for n in rs.order:
            if n in stuck:
                state, why = stuck[n]
                self._states.stick(rs, rs.jobs[n], state, why)


LOST_EVENTS = ("lost_attempt_cancelled", "lost_attempt_outputs_removed",
               "lost_attempt_outputs_kept", "lost_attempt_cleanup_failed")
"""The events :class:`LostAttempts` records (``placer status`` shows them)."""
_SETTLED = frozenset({"lost_attempt_outputs_removed", "lost_attempt_outputs_kept"})
# A lost site that does not answer is asked again after base · 2^(n-1) seconds, at most cap.
_PROBE_BASE_S, _PROBE_CAP_S = 30.0, 600.0


class _Listed(Protocol):
    uri: str
    size: int


@runtime_checkable
class ObjectRemover(Protocol):
    """A store that can list a prefix and delete one object: what removing a lost attempt's
    outputs needs. A store without ``delete`` keeps them (``lost_attempt_outputs_kept``)."""

    def list_objects(self, prefix_uri: str) -> list[Any]: ...
    def delete(self, uri: str) -> None: ...


class _LostHost(Protocol):
    journal: Journal
    redactor: Redactor
    backends: dict[str, ComputeBackend]
    layout: StorageLayout
    storage: StorageResolver | None
    clock: Callable[[], float]


class _Stopping(Exception):
    """The lost attempt was cancelled but its cluster still reports it running."""


@dataclass
class _Probe:
    failures: int = 0
    not_before: float = 0.0


def _key(s: StepRecord) -> tuple[str, int]:
    return s.job, s.attempt


def _overlaps(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


class LostAttempts:
    """Cancels LOST attempts once their cluster answers again, and removes their outputs."""

    def __init__(self, host: _LostHost) -> None:
        self._host = host
        self._probes: dict[tuple[str, str, int], _Probe] = {}
        self._done: set[tuple[str, str, int]] = set()  # settled: never read again

    @staticmethod
    def pending(journal: Journal, run_id: str,
                events: list[EventRecord] | None = None) -> list[StepRecord]:
        """LOST attempts whose outputs are not yet settled (removed or kept with a reason)."""
        lost = [s for s in journal.steps(run_id) if s.state == StepState.LOST]
        if not lost:
            return []
        if events is None:
            events = [e for kind in sorted(_SETTLED) for e in journal.events(run_id, kind)]
        settled = {(e.job, e.data.get("attempt")) for e in events if e.kind in _SETTLED}
        return [s for s in lost if _key(s) not in settled]

    def chase(self, rs: LiveRun) -> None:
        """One pass over the run's unsettled LOST attempts (one read of the steps when there
        are none)."""
        journal = self._host.journal
        if all((rs.id, s.job, s.attempt) in self._done for s in journal.steps(rs.id)
               if s.state == StepState.LOST):
            return
        events = [e for kind in ("intent", "lost_attempt_cancelled", *sorted(_SETTLED))
                  for e in journal.events(rs.id, kind)]  # only what chasing reads
        lost = self.pending(journal, rs.id, events)
        self._done |= {(rs.id, s.job, s.attempt) for s in journal.steps(rs.id)
                       if s.state == StepState.LOST} - {(rs.id, *_key(s)) for s in lost}
        cancelled = {(e.job, e.data.get("attempt")) for e in events
                     if e.kind == "lost_attempt_cancelled"}
        for step in lost:
            probe = self._probes.setdefault((rs.id, step.job, step.attempt), _Probe())
            if self._host.clock() < probe.not_before:
                continue
            try:
                self._chase_one(rs, step, _key(step) in cancelled, events)
                self._done.add((rs.id, *_key(step)))
            except _Stopping:  # asked again next tick, not counted as a failure
                probe.failures = 0
            except PlacerError as exc:  # unreachable still, or an error: asked again later;
                probe.failures += 1     # the run itself goes on whatever happens here
                probe.not_before = self._host.clock() + min(
                    _PROBE_CAP_S, _PROBE_BASE_S * 2 ** (probe.failures - 1))
                if not isinstance(exc, SiteUnreachableError) and probe.failures == 1:
                    journal.record_event(rs.id, "lost_attempt_cleanup_failed", step.job,
                                         attempt=step.attempt, site=step.site,
                                         error=self._host.redactor.text(str(exc)))

    def _chase_one(self, rs: LiveRun, step: StepRecord, cancelled: bool,
                   events: list[EventRecord]) -> None:
        journal = self._host.journal
        backend = self._host.backends.get(step.site or "")
        if backend is None:
            raise BackendError(f"no compute backend for site {step.site}")
        sid = step.submission_id or ""
        # Asked afresh (idempotent ids): a cluster rebuilt after the outage has no such job,
        # and then nothing runs there to cancel or wait for.
        handle = (backend.find(sid) if sid else
                  Handle(step.backend or "", step.site or "", step.handle) if step.handle
                  else None)
        if not cancelled:
            if handle is not None:
                backend.cancel(handle)  # idempotent: a finished job is left as it is
            journal.record_event(rs.id, "lost_attempt_cancelled", step.job,
                                 attempt=step.attempt, site=step.site, submission_id=sid,
                                 found=handle is not None)
            log.info("run %s: lost attempt %s#%d cancelled on %s", rs.id, step.job,
                     step.attempt, step.site)
        if handle is not None and backend.status(handle) in (PENDING, RUNNING):
            raise _Stopping  # its outputs wait until the cluster reports it stopped
        self._remove_outputs(rs, step, events)

    def own_prefix(self, rs: LiveRun, step: StepRecord,
                   events: Iterable[EventRecord]) -> tuple[str | None, str]:
        """The lost attempt's own output prefix, or ``(None, why not)``.

        It is its own only if: its intent recorded it; it is what the layout gives this run,
        job and the attempt's location (so it names the run and the job); no other attempt of
        the run writes under or above it, except attempts that never succeeded (FAILED, LOST),
        whose outputs nothing reads; no dataset of the pipeline and no copy of another job
        lies under or above it. Anything else (two sites in one location share a prefix) is
        not proven: the outputs stay.
        """
        dirs: dict[tuple[str, int], str] = {}
        for e in events:
            if e.kind == "intent" and e.job is not None:
                dirs[(e.job, int(e.data.get("attempt", 0)))] = str(
                    (e.data.get("manifest") or {}).get("output_dir") or "")
        prefix = dirs.get(_key(step), "")
        if not prefix:
            return None, "its intent records no output prefix"
        if step.location is None or prefix != self._host.layout.job_prefix(
                rs.id, step.job, step.location) or not prefix.endswith(
                f"/{rs.id}/{step.job}/"):
            return None, (f"{prefix} is not the layout's prefix for {step.job} of {rs.id} in "
                          f"{step.location}")
        states = {_key(s): s.state for s in self._host.journal.steps(rs.id)}
        for other, d in dirs.items():
            harmless = states.get(other) in (StepState.FAILED, StepState.LOST)
            if other != _key(step) and d and _overlaps(prefix, d) and not harmless:
                return None, (f"attempt {other[1]} of {other[0]} "
                              f"({states.get(other, 'unknown')}) writes under {d}")
        for ds in rs.pipeline.datasets:
            if ds.uri and _overlaps(prefix, ds.uri):
                return None, f"dataset {ds.name} ({ds.uri}) lies there"
        for t in self._host.journal.transfers(rs.id):
            if t.job != step.job and (_overlaps(prefix, t.src_uri)
                                      or _overlaps(prefix, t.dst_uri)):
                return None, f"a copy for {t.job} reads or writes there"
        storage = self._host.storage
        if storage is not None:
            copies = storage.resolve(prefix).copies
            if copies != (step.location,):
                return None, (f"{prefix} is in {', '.join(copies) or 'an unknown location'}, "
                              f"not only in {step.location} where the attempt ran")
        return prefix, ""

    def _remove_outputs(self, rs: LiveRun, step: StepRecord,
                        events: list[EventRecord]) -> None:
        journal = self._host.journal
        prefix, why = self.own_prefix(rs, step, events)
        store: Any = self._host.storage
        if prefix is not None:
            if store is not None and hasattr(store, "store_for"):
                store = store.store_for(prefix)
            if not isinstance(store, ObjectRemover):
                prefix, why = None, "its store cannot delete objects"
        if prefix is None:
            journal.record_event(rs.id, "lost_attempt_outputs_kept", step.job,
                                 attempt=step.attempt, site=step.site, reason=why)
            log.warning("run %s: outputs of lost attempt %s#%d kept: %s", rs.id, step.job,
                        step.attempt, why)
            return
        listed: list[_Listed] = store.list_objects(prefix)
        removed = nbytes = 0
        for obj in listed:
            if not obj.uri.startswith(prefix):  # a store's listing is not trusted blindly
                continue
            store.delete(obj.uri)
            removed, nbytes = removed + 1, nbytes + int(obj.size)
        journal.record_event(rs.id, "lost_attempt_outputs_removed", step.job,
                             attempt=step.attempt, site=step.site, prefix=prefix,
                             objects=removed, bytes=nbytes)
        log.info("run %s: removed %d objects of lost attempt %s#%d under %s", rs.id, removed,
                 step.job, step.attempt, prefix)


def stuck_reason(job: str, e: JobEligibility, down: set[str], policies: PolicySet) -> str:
    """Why ``job`` has no site left: the sites it may use and why each is gone, and the rules
    that reject every other site."""
    if e.held:
        return "held: " + "; ".join(e.held)
    gone = ", ".join(f"{s} ({'down' if s in down else 'no backend'})" for s in e.allowed)
    rules = sorted({h.rule for hits in e.rejected.values() for h in hits})
    messages = {r.id: r.message.strip() for r in policies.rules}
    why = "; ".join(f"{r}: {messages.get(r, '')}".rstrip(": ") for r in rules)
    if rules:
        others = f"every other site is rejected by the policies ({why}), so it is not moved"
    elif e.rejected:  # rejected for what the sites are (no GPU type, no cluster), not by a rule
        others = f"no other site can run it ({', '.join(sorted(e.rejected))})"
    else:  # a down site is not a policy's doing: say there is nowhere else, not that a rule said
        others = "the inventory has no other site to move it to"
    return (f"no eligible site left for {job}: it may run only on {gone or 'no site'}; "
            f"{others}")
