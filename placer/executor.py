"""The executor: runs a Plan through compute backends, in DAG order, surviving failure.

One loop (:meth:`Executor.step`, driven by :meth:`Run.wait`) polls what is in flight, submits
every job whose inputs are done (at most ``max_concurrency`` in flight), and settles the run.
Every action follows *write intent → act → record outcome* in the :class:`~placer.journal.Journal`,
and every submission uses the deterministic ``placer-{run}-{job}-{attempt}`` id, so a run can be
killed at any moment and resumed (:func:`resume`) with no job lost and none submitted twice: a
step whose intent was recorded but not its outcome is looked up with ``backend.find`` and adopted
before it is ever resubmitted.

Failures:

* a job that FAILS is retried as a new attempt after an exponential backoff with seeded jitter,
  up to ``RetryPolicy.max_attempts`` failures; then its descendants are BLOCKED;
* a backend call that raises :class:`~placer.errors.BackendError` is retried on the next tick
  (same submission id, so it is safe); ``max_call_errors`` in a row count as a failed attempt;
* a site that raises :class:`~placer.errors.SiteUnreachableError` is excluded for the rest of
  the run: its in-flight steps are LOST and every job not yet done is re-planned with
  :func:`placer.plan` (``pinned`` keeps finished and running jobs where they are,
  ``exclude_sites`` drops the site). Re-planning only narrows the policy-eligible sets: a job
  whose every eligible site is gone is STUCK with the reason, never moved elsewhere.

Nothing here sleeps or reads the clock directly: ``clock`` and ``sleep`` are injected, so tests
run a whole failover in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import networkx as nx

from placer.backends import (
    FAILED,
    PENDING,
    RUNNING,
    STOPPED,
    SUCCEEDED,
    ComputeBackend,
    DataMover,
    Handle,
    StorageLayout,
    StorageResolver,
)
from placer.catalog import Catalog, default_catalog, resolve_inventory
from placer.errors import BackendError, ExecutionError, ResidencyError, SiteUnreachableError
from placer.journal import (
    ACTIVE_STEP_STATES,
    TERMINAL_RUN_STATES,
    Journal,
    Redactor,
    RunState,
    StepRecord,
    StepState,
)
from placer.models import Inventory, JobPlacement, Pipeline, Plan
from placer.models._base import Model
from placer.policy import JobEligibility, PolicySet
from placer.policy import evaluate as evaluate_policies
from placer.scheduler import plan as make_plan

log = logging.getLogger("placer.executor")

# Executor-only job states, before a step exists or between attempts.
WAITING, RETRY_WAIT = "WAITING", "RETRY_WAIT"
_FINAL_JOB = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "STUCK", "BLOCKED"})

Hook = Callable[[str, str, str], None]
"""``hook(point, run_id, job)`` at ``after_intent``, ``after_submit`` and ``after_status``:
lets tests kill the executor exactly between two journal writes."""


def submission_id(run_id: str, job: str, attempt: int) -> str:
    """The id a step is submitted under: the same step always gets the same id."""
    return f"placer-{run_id}-{job}-{attempt}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    ``delay`` is ``min(cap, base · 2^(n-1)) · (1 + jitter · u)`` with ``u`` drawn from a
    generator seeded by (seed, run, job, attempt): different jobs spread out, the same run
    replays identically.
    """

    max_attempts: int = 3
    base_s: float = 10.0
    cap_s: float = 600.0
    jitter: float = 0.5
    seed: int = 0
    max_call_errors: int = 5

    def delay(self, run_id: str, job: str, failures: int) -> float:
        u = random.Random(f"{self.seed}:{run_id}:{job}:{failures}").random()
        return float(min(self.cap_s, self.base_s * 2 ** (failures - 1)) * (1 + self.jitter * u))


class JobStatus(Model):
    """One job of a run as last recorded."""

    job: str
    state: str
    site: str | None
    attempt: int
    submission_id: str | None = None
    reason: str | None = None
    cost_usd: float | None = None
    started: float | None = None
    finished: float | None = None


class RunStatus(Model):
    """A run as the journal records it: what ``placer status RUN`` shows."""

    run_id: str
    state: RunState
    reason: str | None
    jobs: dict[str, JobStatus]
    cost_usd: float

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_RUN_STATES


def run_status(journal: Journal, run_id: str) -> RunStatus:
    """The status of a run read from the journal alone (any process, no backends needed)."""
    rec = journal.run(run_id)
    placements: dict[str, Any] = {}
    for p in journal.plans(run_id):
        placements.update(p.get("jobs", {}))
    order = [j["name"] for j in journal.run_spec(run_id)["pipeline"]["jobs"]]
    latest: dict[str, StepRecord] = {}
    for s in journal.steps(run_id):
        if s.job not in latest or s.attempt > latest[s.job].attempt:
            latest[s.job] = s
    jobs: dict[str, JobStatus] = {}
    cost = 0.0
    for name in order:
        last = latest.get(name)
        if last is None:
            site = placements.get(name, {}).get("site")
            jobs[name] = JobStatus(job=name, state=WAITING, site=site, attempt=0)
            continue
        if last.state == "SUCCEEDED" and last.cost_usd:
            cost += last.cost_usd
        jobs[name] = JobStatus(job=name, state=last.state, site=last.site, attempt=last.attempt,
                               submission_id=last.submission_id, reason=last.reason,
                               cost_usd=last.cost_usd, started=last.started,
                               finished=last.finished)
    return RunStatus(run_id=run_id, state=rec.state, reason=rec.reason, jobs=jobs, cost_usd=cost)


@dataclass
class _Job:
    name: str
    state: str = WAITING
    attempt: int = 0
    failures: int = 0
    site: str | None = None
    handle: Handle | None = None
    not_before: float = 0.0
    call_errors: int = 0


@dataclass
class _Run:
    id: str
    pipeline: Pipeline
    inventory: Inventory
    policies: PolicySet
    objective: Any
    policy_hash: str
    placements: dict[str, JobPlacement]
    jobs: dict[str, _Job]
    state: RunState
    excluded: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.order = self.pipeline.topological_order()
        self.graph = self.pipeline.graph()


class _NoAnswer:
    """The backend call did not answer (already handled); distinct from a ``None`` answer."""


_NO_ANSWER = _NoAnswer()
_T = TypeVar("_T")


def _plan_hash(rs: _Run) -> str:
    """Content hash of the placements in force (it changes when a failure forces a re-plan)."""
    body = json.dumps({j: p.model_dump(mode="json") for j, p in sorted(rs.placements.items())},
                      sort_keys=True)
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


class Executor:
    """Runs plans through backends, one journal, one writer.

    Args:
        journal: where every intent and outcome is recorded.
        backends: compute backend per site name; a site without one is never used.
        layout: where each job writes its outputs, per location (required: where outputs go is
            a residency decision, placer never guesses it).
        storage: if given, every output prefix is resolved and must lie in the job's location.
        mover: if given, an input produced in another location is copied (verified, and only
            into the consuming job's own location) before the job starts, and the job reads
            the local copy; without one, jobs read such inputs where they were written.
        retry: retry and backoff policy.
        max_concurrency: steps in flight at once, over all sites.
        poll_interval_s: pause between ticks in :meth:`Run.wait`.
        clock, sleep: injectable time (monotonic seconds) for tests.
        hook: test hook, see :data:`Hook`.
    """

    def __init__(self, journal: Journal, backends: Mapping[str, ComputeBackend], *,
                 layout: StorageLayout, storage: StorageResolver | None = None,
                 mover: DataMover | None = None,
                 retry: RetryPolicy | None = None, max_concurrency: int = 8,
                 poll_interval_s: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, catalog: Catalog | None = None,
                 hook: Hook | None = None) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.journal = journal
        self.backends = dict(backends)
        self.layout = layout
        self.storage = storage
        self.mover = mover
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max_concurrency
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self.sleep = sleep
        self.catalog = catalog or default_catalog()
        self.hook = hook
        self.redactor: Redactor = journal.redactor
        self._runs: dict[str, _Run] = {}
        self._storage_checked: dict[str, str | None] = {}

    # -- public ---------------------------------------------------------------------------------
    def start(self, plan: Plan, *, pipeline: Pipeline, inventory: Inventory,
              policies: PolicySet | None = None) -> Run:
        """Record a new run of ``plan`` and submit its first jobs."""
        if plan.status != "placed":
            raise ExecutionError(f"the plan is {plan.status}, not placed: "
                                 + "; ".join(plan.reasons))
        names = {j.name for j in pipeline.jobs}
        if set(plan.jobs) != names:
            raise ExecutionError("the plan does not place exactly the pipeline's jobs: "
                                 f"plan {sorted(plan.jobs)}, pipeline {sorted(names)}")
        missing = sorted({p.site for p in plan.jobs.values()} - set(self.backends))
        if missing:
            raise ExecutionError(f"no compute backend for site(s): {', '.join(missing)}")
        policies = policies or PolicySet(name="empty")
        rid = self.journal.create_run(pipeline=pipeline, plan=plan, inventory=inventory,
                                      policies=policies, policy_hash=plan.policy_hash,
                                      pipeline_name=pipeline.name)
        log.info("run %s started: %d jobs", rid, len(names))
        run = Run(self, rid)
        run.step()
        return run

    def resume(self, run_id: str) -> Run:
        """Continue a run from the journal (after a crash, or from another process)."""
        self._runs.pop(run_id, None)
        self._load(run_id)
        return Run(self, run_id)

    def step(self, run_id: str) -> RunStatus:
        """One tick: poll in-flight steps, adopt or submit, re-plan if needed, settle."""
        rs = self._load(run_id)
        if rs.state == "CANCELLING":
            self._cancel(rs)
        elif rs.state not in TERMINAL_RUN_STATES:
            if self._needs_replan(rs):
                self._replan(rs, "placements on unavailable sites")
            for name in rs.order:
                self._advance(rs, rs.jobs[name])
            self._submit_ready(rs)
            self._settle(rs)
        return run_status(self.journal, run_id)

    def cancel(self, run_id: str) -> RunStatus:
        """Stop every in-flight job of the run on every site; the run ends CANCELLED."""
        rs = self._load(run_id)
        if rs.state not in TERMINAL_RUN_STATES:
            self.journal.set_run_state(rs.id, "CANCELLING", "cancel requested")
            rs.state = "CANCELLING"
            self._cancel(rs)
        return run_status(self.journal, run_id)

    def logs(self, run_id: str, job: str) -> str:
        """The latest attempt's logs, with secrets masked; empty if never submitted."""
        rs = self._load(run_id)
        j = rs.jobs[job]
        if j.handle is None or j.site not in self.backends:
            steps = [s for s in self.journal.steps(run_id) if s.job == job and s.handle]
            if not steps:
                return ""
            s = max(steps, key=lambda s: s.attempt)
            handle = Handle(s.backend or "", s.site or "", s.handle or "")
        else:
            handle = j.handle
        try:
            return self.redactor.text(self.backends[handle.site].logs(handle))
        except BackendError as exc:
            raise BackendError(self.redactor.text(str(exc))) from None

    # -- loading --------------------------------------------------------------------------------
    def _load(self, run_id: str) -> _Run:
        if run_id in self._runs:
            return self._runs[run_id]
        rec = self.journal.run(run_id)
        spec = self.journal.run_spec(run_id)
        plans = self.journal.plans(run_id)
        placements: dict[str, JobPlacement] = {}
        for p in plans:
            placements.update({k: JobPlacement.model_validate(v)
                               for k, v in p.get("jobs", {}).items()})
        pipeline = Pipeline.model_validate(spec["pipeline"])
        rs = _Run(id=run_id, pipeline=pipeline,
                  inventory=Inventory.model_validate(spec["inventory"]),
                  policies=PolicySet.model_validate(spec["policies"]),
                  objective=plans[0]["objective"], policy_hash=rec.policy_hash,
                  placements=placements, jobs={j.name: _Job(j.name) for j in pipeline.jobs},
                  state=rec.state)
        rs.excluded = {e.data["site"] for e in self.journal.events(run_id, "site_down")}
        by_job: dict[str, list[Any]] = {}
        for s in self.journal.steps(run_id):
            by_job.setdefault(s.job, []).append(s)
        for name, steps in by_job.items():
            j = rs.jobs[name]
            last = max(steps, key=lambda s: s.attempt)
            j.attempt, j.site = last.attempt, last.site
            j.failures = sum(1 for s in steps if s.state == "FAILED")
            if last.state in ("SUBMITTED", PENDING, RUNNING):
                j.state = last.state
                j.handle = Handle(last.backend or "", last.site or "", last.handle or "")
            elif last.state == "FAILED":
                j.state = RETRY_WAIT if j.failures < self.retry.max_attempts else "FAILED"
            elif last.state == "LOST":
                j.state = WAITING
            else:
                j.state = last.state
        self._runs[run_id] = rs
        return rs

    # -- one tick -------------------------------------------------------------------------------
    def _call_hook(self, point: str, rs: _Run, job: str) -> None:
        if self.hook is not None:
            self.hook(point, rs.id, job)

    def _on_site(self, rs: _Run, j: _Job, call: Callable[[ComputeBackend], _T]) -> _T | _NoAnswer:
        """Call the backend of ``j``'s site. A site that is down triggers failover and any other
        backend error counts against the step; both return :data:`_NO_ANSWER`."""
        assert j.site is not None
        try:
            return call(self.backends[j.site])
        except SiteUnreachableError as exc:
            self._site_down(rs, exc.site or j.site, exc)
        except BackendError as exc:
            self._call_error(rs, j, exc)
        return _NO_ANSWER

    def _advance(self, rs: _Run, j: _Job) -> None:
        if j.state == "INTENT":
            self._adopt_or_submit(rs, j)
            return
        if j.state not in ("SUBMITTED", PENDING, RUNNING) or j.handle is None:
            return
        handle = j.handle
        state = self._on_site(rs, j, lambda b: b.status(handle))
        if isinstance(state, _NoAnswer):
            return
        j.call_errors = 0
        self._call_hook("after_status", rs, j.name)
        if state == j.state:
            return
        if state in (PENDING, RUNNING, SUCCEEDED):
            self.journal.record_state(rs.id, j.name, j.attempt, state)
            j.state = state
        elif state == FAILED:
            self.journal.record_state(rs.id, j.name, j.attempt, "FAILED",
                                      reason="the job failed; see its logs")
            self._failed(rs, j)
        elif state == STOPPED:
            self.journal.record_state(rs.id, j.name, j.attempt, "STOPPED",
                                      reason="stopped outside placer")
            j.state = STOPPED
            self._block_descendants(rs, j.name, f"{j.name} was stopped")

    def _failed(self, rs: _Run, j: _Job) -> None:
        j.failures += 1
        j.handle = None
        if j.failures < self.retry.max_attempts:
            delay = self.retry.delay(rs.id, j.name, j.failures)
            j.state, j.not_before = RETRY_WAIT, self.clock() + delay
            self.journal.record_event(rs.id, "retry_scheduled", j.name,
                                      failures=j.failures, delay_s=round(delay, 3))
            log.info("run %s: %s failed (%d), retrying in %.1fs", rs.id, j.name, j.failures,
                     delay)
        else:
            j.state = "FAILED"
            self._block_descendants(rs, j.name, f"{j.name} failed {j.failures} times")

    def _call_error(self, rs: _Run, j: _Job, exc: BackendError) -> None:
        j.call_errors += 1
        msg = self.redactor.text(str(exc))
        self.journal.record_event(rs.id, "backend_error", j.name, error=msg,
                                  consecutive=j.call_errors)
        log.warning("run %s: %s: backend error: %s", rs.id, j.name, msg)
        j.not_before = self.clock() + self.retry.delay(rs.id, j.name, j.call_errors)
        if j.call_errors >= self.retry.max_call_errors:
            j.call_errors = 0
            self.journal.record_state(rs.id, j.name, j.attempt, "FAILED",
                                      reason=f"backend kept failing: {msg}")
            self._failed(rs, j)

    def _adopt_or_submit(self, rs: _Run, j: _Job) -> None:
        if self.clock() < j.not_before:
            return
        sid = submission_id(rs.id, j.name, j.attempt)
        found = self._on_site(rs, j, lambda b: b.find(sid))
        if isinstance(found, _NoAnswer):
            return
        if found is not None:
            self.journal.record_event(rs.id, "adopted", j.name, submission_id=sid)
            self._submitted(rs, j, found)
            return
        self._submit(rs, j)

    def _submit(self, rs: _Run, j: _Job) -> None:
        """Submit the step whose intent is recorded (idempotent by submission id)."""
        placement = rs.placements[j.name]
        env, _ = self._environment(rs, j.name, j.attempt, placement)
        sid = submission_id(rs.id, j.name, j.attempt)
        spec = rs.pipeline.job(j.name)
        handle = self._on_site(rs, j, lambda b: b.submit(spec, placement, submission_id=sid,
                                                         env=env))
        if isinstance(handle, _NoAnswer):
            return
        self._call_hook("after_submit", rs, j.name)
        self._submitted(rs, j, handle)

    def _submitted(self, rs: _Run, j: _Job, handle: Handle) -> None:
        self.journal.record_state(rs.id, j.name, j.attempt, "SUBMITTED", backend=handle.backend,
                                  handle=handle.id)
        j.state, j.handle, j.call_errors = "SUBMITTED", handle, 0

    def _submit_ready(self, rs: _Run) -> None:
        in_flight = sum(1 for j in rs.jobs.values() if j.state in ACTIVE_STEP_STATES)
        for name in rs.order:
            if in_flight >= self.max_concurrency or rs.state != "RUNNING":
                return
            j = rs.jobs[name]
            if j.state not in (WAITING, RETRY_WAIT) or self.clock() < j.not_before:
                continue
            if any(rs.jobs[p].state != SUCCEEDED for p in rs.graph.predecessors(name)):
                continue
            placement = rs.placements[name]
            attempt = j.attempt + 1
            try:
                _, manifest = self._environment(rs, name, attempt, placement)
                self._move_inputs(rs, name, placement)
            except ResidencyError as exc:
                self._stick(rs, j, "STUCK", str(exc))
                continue
            except BackendError as exc:
                self._call_error(rs, j, exc)
                continue
            sid = submission_id(rs.id, name, attempt)
            self.journal.record_intent(rs.id, name, attempt, placement.site, sid,
                                       location=placement.location,
                                       cost_usd=placement.cost_usd, manifest=manifest)
            j.attempt, j.site, j.state, j.handle = attempt, placement.site, "INTENT", None
            in_flight += 1
            self._call_hook("after_intent", rs, name)
            self._submit(rs, j)

    def _settle(self, rs: _Run) -> None:
        states = {j.state for j in rs.jobs.values()}
        if states == {SUCCEEDED}:
            self._set_state(rs, "SUCCEEDED", None)
            return
        if states & (ACTIVE_STEP_STATES | {WAITING, RETRY_WAIT}):
            return
        stuck = sorted(n for n, j in rs.jobs.items() if j.state == "STUCK")
        bad = sorted(n for n, j in rs.jobs.items() if j.state in ("FAILED", STOPPED))
        if stuck:
            self._set_state(rs, "STUCK", "no eligible site left for: " + ", ".join(stuck))
        else:
            self._set_state(rs, "FAILED", "failed: " + ", ".join(bad))

    def _set_state(self, rs: _Run, state: RunState, reason: str | None) -> None:
        if rs.state != state:
            self.journal.set_run_state(rs.id, state, reason)
            rs.state = state
            log.info("run %s: %s%s", rs.id, state, f" ({reason})" if reason else "")

    # -- storage --------------------------------------------------------------------------------
    def _prefix(self, rs: _Run, job: str, location: str) -> str:
        prefix = self.layout.job_prefix(rs.id, job, location)
        if prefix is None:
            raise ResidencyError(f"{job}: no storage is configured in {location}, where it "
                                 "runs; its outputs may not be written anywhere else")
        if self.storage is not None:
            if prefix not in self._storage_checked:
                self._storage_checked[prefix] = self.storage.resolve(prefix).location
            where = self._storage_checked[prefix]
            if where != location:
                raise ResidencyError(f"{job}: its output prefix {prefix} is in "
                                     f"{where or 'an unknown location'}, not in {location} "
                                     "where the job runs and the policy allows its data")
        return prefix

    def _remote_inputs(self, rs: _Run, job: str,
                       placement: JobPlacement) -> list[tuple[str, str, str, str]]:
        """(ref, source URI, source location, local URI) for each input made elsewhere."""
        if self.mover is None:
            return []
        out = []
        for ref in rs.pipeline.job(job).inputs:
            src, _, name = ref.partition(".")
            if src not in rs.placements or not name:
                continue
            src_loc = rs.placements[src].location
            if src_loc == placement.location:
                continue
            local = f"{self._prefix(rs, job, placement.location)}inputs/{src}/{name}"
            out.append((ref, self._prefix(rs, src, src_loc) + name, src_loc, local))
        return out

    def _move_inputs(self, rs: _Run, job: str, placement: JobPlacement) -> None:
        """Copy inputs made in other locations into the job's own, verified, journaled.

        Intent is recorded before the copy and the outcome after, so a crash mid-copy is
        redone on resume (copies overwrite, so redoing is safe); a copy already recorded as
        done is not repeated. The destination may only be the job's own location, which the
        policies allow for everything the job reads.
        """
        done = {(t.src_uri, t.dst_uri) for t in self.journal.transfers(rs.id)
                if t.state == "DONE"}
        for _, src_uri, src_loc, dst_uri in self._remote_inputs(rs, job, placement):
            if (src_uri, dst_uri) in done:
                continue
            assert self.mover is not None
            tid = self.journal.record_transfer(rs.id, job, src_uri, dst_uri,
                                               src_location=src_loc,
                                               dst_location=placement.location)
            try:
                result = self.mover.copy(src_uri, dst_uri, allowed={placement.location})
            except BaseException:
                self.journal.finish_transfer(rs.id, tid, "FAILED")
                raise
            self.journal.finish_transfer(rs.id, tid, "DONE", nbytes=result.bytes,
                                         checksum=result.checksum)

    def _environment(self, rs: _Run, job: str, attempt: int,
                     placement: JobPlacement) -> tuple[dict[str, str], dict[str, Any]]:
        """The job's environment and manifest: run identity, input URIs, output locations."""
        spec = rs.pipeline.job(job)
        prefix = self._prefix(rs, job, placement.location)
        datasets = {d.name: d for d in rs.pipeline.datasets}
        inputs: dict[str, str | None] = {}
        local = {ref: uri for ref, _, _, uri in self._remote_inputs(rs, job, placement)}
        for ref in spec.inputs:
            if ref in datasets:
                inputs[ref] = datasets[ref].uri
            else:
                src, out = ref.split(".", 1)
                src_loc = rs.placements[src].location
                inputs[ref] = local.get(ref) or self._prefix(rs, src, src_loc) + out
        outputs = {name: prefix + name for name in spec.outputs}
        manifest: dict[str, Any] = {
            "run_id": rs.id, "job": job, "attempt": attempt, "site": placement.site,
            "location": placement.location, "policy_hash": rs.policy_hash,
            "inputs": inputs, "outputs": outputs, "output_dir": prefix,
        }
        env = {
            "PLACER_RUN_ID": rs.id, "PLACER_JOB": job, "PLACER_ATTEMPT": str(attempt),
            "PLACER_SITE": placement.site, "PLACER_LOCATION": placement.location,
            "PLACER_POLICY_HASH": rs.policy_hash, "PLACER_PLAN_HASH": _plan_hash(rs),
            "PLACER_OUTPUT_DIR": prefix,
            "PLACER_INPUTS": json.dumps(inputs, sort_keys=True),
            "PLACER_OUTPUTS": json.dumps(outputs, sort_keys=True),
            "PLACER_MANIFEST": json.dumps(manifest, sort_keys=True),
        }
        return env, manifest

    # -- failover -------------------------------------------------------------------------------
    def _site_down(self, rs: _Run, site: str, exc: BaseException) -> None:
        if site in rs.excluded:
            return
        msg = self.redactor.text(str(exc))
        self.journal.record_event(rs.id, "site_down", None, site=site, error=msg)
        log.warning("run %s: site %s is down: %s", rs.id, site, msg)
        rs.excluded.add(site)
        for j in rs.jobs.values():
            if j.site == site and j.state in ACTIVE_STEP_STATES:
                self.journal.record_state(rs.id, j.name, j.attempt, "LOST",
                                          reason=f"site {site} went down")
                j.state, j.handle = WAITING, None
            elif j.site == site and j.state == RETRY_WAIT:
                j.state = WAITING
        self._replan(rs, f"site {site} is unreachable")

    def _needs_replan(self, rs: _Run) -> bool:
        return any(j.state in (WAITING, RETRY_WAIT)
                   and (j.name not in rs.placements
                        or rs.placements[j.name].site in rs.excluded
                        or rs.placements[j.name].site not in self.backends)
                   for j in rs.jobs.values())

    def _replan(self, rs: _Run, reason: str) -> None:
        """Re-place every job not yet done or running, without the excluded sites.

        Finished and running jobs are pinned where they ran (their outputs live there). A job
        whose eligible sites are all excluded is STUCK, its descendants BLOCKED; the rest are
        re-planned together so data movement is still priced along the DAG.
        """
        pinned = {n: j.site for n, j in rs.jobs.items()
                  if j.site is not None and (j.state == SUCCEEDED or j.state in
                                             ACTIVE_STEP_STATES)}
        todo = [n for n in rs.order if n not in pinned and rs.jobs[n].state not in _FINAL_JOB]
        if not todo:
            return
        sites = resolve_inventory(rs.inventory, self.catalog)
        exclude = rs.excluded | {s.name for s in sites if s.name not in self.backends}
        elig = evaluate_policies(rs.pipeline, sites, rs.policies)
        stuck: dict[str, tuple[StepState, str]] = {}
        for n in todo:
            up = next((p for p in nx.ancestors(rs.graph, n)
                       if p in stuck or rs.jobs[p].state in _FINAL_JOB - {SUCCEEDED}), None)
            if up is not None:
                stuck[n] = ("BLOCKED", f"waits for {up}, which cannot run")
            elif not [s for s in elig[n].allowed if s not in exclude]:
                stuck[n] = ("STUCK", _stuck_reason(n, elig[n], exclude, rs.excluded,
                                                   rs.policies))
        keep = tuple(j for j in rs.pipeline.jobs
                     if j.name not in stuck and (j.name in pinned
                                                 or rs.jobs[j.name].state not in _FINAL_JOB))
        movable = [n for n in todo if n not in stuck]
        if movable:
            sub = Pipeline(name=rs.pipeline.name, datasets=rs.pipeline.datasets, jobs=keep)
            new = make_plan(sub, rs.inventory, rs.policies, objective=rs.objective,
                            catalog=self.catalog, pinned=pinned,
                            exclude_sites=sorted(exclude))
            self.journal.record_plan(rs.id, new, reason)
            if new.status == "placed":
                for n in movable:
                    rs.placements[n] = new.jobs[n]
            else:
                why = f"re-plan is {new.status}: " + "; ".join(new.reasons)
                stuck.update(dict.fromkeys(movable, ("STUCK", why)))
        for n in rs.order:
            if n in stuck:
                state, why = stuck[n]
                self._stick(rs, rs.jobs[n], state, why)

    def _stick(self, rs: _Run, j: _Job, state: StepState, reason: str) -> None:
        j.attempt += 1  # a row of its own: earlier attempts keep their history
        self.journal.record_state(rs.id, j.name, j.attempt, state, reason=reason)
        j.state, j.handle = state, None
        log.warning("run %s: %s is %s: %s", rs.id, j.name, state, reason)
        if state == "STUCK":
            self._block_descendants(rs, j.name, f"waits for {j.name}, which cannot run")

    def _block_descendants(self, rs: _Run, name: str, reason: str) -> None:
        below = nx.descendants(rs.graph, name)
        for n in rs.order:
            j = rs.jobs[n]
            if n in below and j.state in (WAITING, RETRY_WAIT):
                self._stick(rs, j, "BLOCKED", reason)

    # -- cancel ---------------------------------------------------------------------------------
    def _cancel(self, rs: _Run) -> None:
        failed: list[str] = []
        for j in rs.jobs.values():
            if j.state not in ACTIVE_STEP_STATES or j.site is None:
                continue
            backend = self.backends.get(j.site)
            try:
                if backend is None:
                    raise BackendError(f"no backend for site {j.site}")
                handle = j.handle or backend.find(submission_id(rs.id, j.name, j.attempt))
                if handle is not None:
                    backend.cancel(handle)
            except BackendError as exc:
                failed.append(j.name)
                self.journal.record_event(rs.id, "cancel_failed", j.name,
                                          error=self.redactor.text(str(exc)))
                continue
            self.journal.record_state(rs.id, j.name, j.attempt, "STOPPED", reason="cancelled")
            j.state, j.handle = STOPPED, None
        if failed:
            self.journal.set_run_state(rs.id, "CANCELLING",
                                       "could not stop yet: " + ", ".join(sorted(failed)))
        else:
            self._set_state(rs, "CANCELLED", "cancelled")


def _stuck_reason(job: str, e: JobEligibility, exclude: set[str], down: set[str],
                  policies: PolicySet) -> str:
    if e.held:
        return "held: " + "; ".join(e.held)
    gone = ", ".join(f"{s} ({'down' if s in down else 'no backend'})" for s in e.allowed)
    rules = sorted({h.rule for hits in e.rejected.values() for h in hits})
    messages = {r.id: r.message.strip() for r in policies.rules}
    why = "; ".join(f"{r}: {messages.get(r, '')}".rstrip(": ") for r in rules)
    return (f"no eligible site left for {job}: it may run only on {gone or 'no site'}; "
            f"every other site is rejected by the policies ({why or 'no rule named'}), "
            "so it is not moved")


class Run:
    """A handle on one run: status from the journal, progress by :meth:`wait` or :meth:`step`.

    A Run does not run in the background: whoever holds it drives it (``wait``), and a run
    whose driver died is continued by :func:`resume` from another process.
    """

    def __init__(self, executor: Executor, run_id: str) -> None:
        self.executor = executor
        self.id = run_id

    def __repr__(self) -> str:
        return f"Run({self.id!r})"

    def status(self) -> RunStatus:
        return run_status(self.executor.journal, self.id)

    def step(self) -> RunStatus:
        return self.executor.step(self.id)

    def wait(self, timeout: float | None = None) -> RunStatus:
        """Drive the run until it ends or ``timeout`` seconds pass; returns the status either
        way (check ``.done``)."""
        ex = self.executor
        deadline = None if timeout is None else ex.clock() + timeout
        while True:
            st = self.step()
            if st.done or (deadline is not None and ex.clock() >= deadline):
                return st
            ex.sleep(ex.poll_interval_s)

    def logs(self, job: str) -> str:
        return self.executor.logs(self.id, job)

    def cancel(self) -> RunStatus:
        return self.executor.cancel(self.id)


def submit(plan: Plan, *, pipeline: Pipeline, inventory: Inventory,
           backends: Mapping[str, ComputeBackend] | None = None,
           layout: StorageLayout | None = None, policies: PolicySet | None = None,
           journal: Journal | None = None, **options: Any) -> Run:
    """Start running ``plan``; returns a :class:`Run` (call ``.wait()`` to drive it).

    ``backends`` and ``layout`` default to what the inventory says: each site's ``cluster``
    (through the ``placer.backends`` entry points) and ``storage``. ``options`` go to
    :class:`Executor` (``retry``, ``max_concurrency``, ``storage``, ``mover``, …).
    """
    from placer.backends import compute_backends_for, layout_for

    if backends is None or layout is None:
        sites = resolve_inventory(inventory)
        backends = compute_backends_for(sites) if backends is None else backends
        layout = layout_for(sites) if layout is None else layout
    ex = Executor(journal or Journal(), backends, layout=layout, **options)
    return ex.start(plan, pipeline=pipeline, inventory=inventory, policies=policies)


def resume(run_id: str, *, backends: Mapping[str, ComputeBackend], layout: StorageLayout,
           journal: Journal | None = None, **options: Any) -> Run:
    """Continue a run recorded in the journal; nothing already submitted is submitted again."""
    ex = Executor(journal or Journal(), backends, layout=layout, **options)
    return ex.resume(run_id)
