"""The run state machine: the states of a job and of a run, and every move between them.

A *step* is one attempt of one job. Its state is a :class:`~placer.journal.StepState`, the
journal's record of it; before its first step, and between attempts, a job is
:data:`WAITING` or :data:`RETRY_WAIT` (:class:`Waiting`), states only the executor holds.

* WAITING → INTENT once its inputs are done and the residency guards pass; STUCK if a guard
  refuses or no eligible site is left (its descendants BLOCKED);
* INTENT → SUBMITTED (submitted, or found already submitted on resume) → PENDING → RUNNING →
  SUCCEEDED, as the cluster reports;
* FAILED → RETRY_WAIT, and after the backoff the next attempt; after
  ``RetryPolicy.max_attempts`` failures FAILED for good, its descendants BLOCKED;
* STOPPED outside placer: its descendants BLOCKED; a cancel stops every step in flight;
* in flight when its site goes down: LOST, and the job is WAITING again (to be re-placed);
  the LOST attempt itself is cancelled on its site once that answers again (``_failover``).

A run is RUNNING until every job has ended: SUCCEEDED if all did, STUCK if any is stuck, else
FAILED; ``cancel`` takes it through CANCELLING (until every step in flight is stopped) to
CANCELLED.

Every move is written to the journal before the executor acts on it (:class:`Transitions`),
and a run is rebuilt from the journal alone (:func:`load_run`), so any process can continue it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias

import networkx as nx

from placer.backends import FAILED, PENDING, RUNNING, STOPPED, SUCCEEDED, Handle
from placer.errors import BackendError
from placer.journal import (
    ACTIVE_STEP_STATES,
    TERMINAL_RUN_STATES,
    Journal,
    RunState,
    StepRecord,
    StepState,
)
from placer.secrets import Redactor

if TYPE_CHECKING:
    from placer.backends import JobState as BackendState
    from placer.models import Inventory, JobPlacement, Objective, Pipeline
    from placer.policy import PolicySet

__all__ = [
    "ACTIVE_STEP_STATES", "FINAL_JOB_STATES", "POLLED_STATES", "RETRY_WAIT",
    "TERMINAL_RUN_STATES", "WAITING", "JobState", "LiveJob", "LiveRun", "RetryPolicy",
    "RunState", "StepState", "Transitions", "Waiting", "load_run", "submission_id",
]

log = logging.getLogger("placer.executor")


class Waiting(StrEnum):
    """A job with no step in flight that may still run: never stored as a step's state."""

    WAITING = "WAITING"  # not submitted yet, or its site went down: runs when its inputs are
    RETRY_WAIT = "RETRY_WAIT"  # failed; the next attempt waits out its backoff


WAITING: Final = Waiting.WAITING
RETRY_WAIT: Final = Waiting.RETRY_WAIT
JobState: TypeAlias = StepState | Waiting
"""What the executor knows of a job: its latest step's state, or why it has none in flight."""

POLLED_STATES: frozenset[StepState] = frozenset(
    {StepState.SUBMITTED, StepState.PENDING, StepState.RUNNING})
"""Steps known to the cluster: their state is polled every tick."""
FINAL_JOB_STATES: frozenset[StepState] = frozenset(
    {StepState.SUCCEEDED, StepState.FAILED, StepState.STOPPED, StepState.STUCK,
     StepState.BLOCKED})
"""A job in one of these will not run again in this run."""


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


@dataclass
class LiveJob:
    """One job of a run as the executor driving it holds it."""

    name: str
    state: JobState = WAITING
    attempt: int = 0
    failures: int = 0
    site: str | None = None
    handle: Handle | None = None
    not_before: float = 0.0
    call_errors: int = 0


@dataclass
class LiveRun:
    """A run as the executor driving it holds it, rebuilt from the journal by :func:`load_run`."""

    id: str
    pipeline: Pipeline
    inventory: Inventory
    policies: PolicySet
    objective: Objective
    policy_hash: str
    placements: dict[str, JobPlacement]
    jobs: dict[str, LiveJob]
    state: RunState
    excluded: set[str] = field(default_factory=set)
    """Sites that went down during the run: never used again by it."""
    eligible: dict[str, frozenset[str]] | None = None
    """Job → sites the run's own policies allow, computed from the stored spec when first
    needed; every submission is checked against it, whatever the plan says."""

    def __post_init__(self) -> None:
        self.order = self.pipeline.topological_order()
        self.graph = self.pipeline.graph()


def load_run(journal: Journal, run_id: str, *, max_attempts: int) -> LiveRun:
    """Rebuild a run from the journal: its spec, the placements in force, each job's state.

    A step left at INTENT stays there (the executor looks it up before resubmitting); a LOST
    one waits for a new attempt, as does a FAILED one with attempts left.
    """
    rec = journal.run(run_id)
    spec = journal.run_spec(run_id)
    plans = journal.plans(run_id)
    placements: dict[str, JobPlacement] = {}
    for p in plans:
        placements.update(p.plan.jobs)
    rs = LiveRun(id=run_id, pipeline=spec.pipeline, inventory=spec.inventory,
                 policies=spec.policies, objective=plans[0].plan.objective,
                 policy_hash=rec.policy_hash, placements=placements,
                 jobs={j.name: LiveJob(j.name) for j in spec.pipeline.jobs}, state=rec.state)
    rs.excluded = {e.data["site"] for e in journal.events(run_id, "site_down")}
    by_job: dict[str, list[StepRecord]] = {}
    for s in journal.steps(run_id):
        by_job.setdefault(s.job, []).append(s)
    for name, steps in by_job.items():
        j = rs.jobs[name]
        last = max(steps, key=lambda s: s.attempt)
        j.attempt, j.site = last.attempt, last.site
        j.failures = sum(1 for s in steps if s.state == StepState.FAILED)
        if last.state in POLLED_STATES:
            j.state = last.state
            j.handle = Handle(last.backend or "", last.site or "", last.handle or "")
        elif last.state == StepState.FAILED:
            j.state = RETRY_WAIT if j.failures < max_attempts else StepState.FAILED
        elif last.state == StepState.LOST:
            j.state = WAITING
        else:
            j.state = last.state
    return rs


class _Host(Protocol):
    """What the transitions read from the executor that owns them (read at each call)."""

    journal: Journal
    redactor: Redactor
    retry: RetryPolicy
    clock: Callable[[], float]


class Transitions:
    """Every move of a job or a run: recorded in the journal, then made in memory."""

    def __init__(self, host: _Host) -> None:
        self._host = host

    @property
    def _journal(self) -> Journal:
        return self._host.journal

    # -- a step's life --------------------------------------------------------------------------
    def intent(self, rs: LiveRun, j: LiveJob, attempt: int, placement: JobPlacement,
               manifest: Mapping[str, Any]) -> None:
        """Record that ``attempt`` of ``j`` is about to be submitted (before submitting it)."""
        sid = submission_id(rs.id, j.name, attempt)
        self._journal.record_intent(rs.id, j.name, attempt, placement.site, sid,
                                    location=placement.location, cost_usd=placement.cost_usd,
                                    manifest=manifest)
        j.attempt, j.site, j.state, j.handle = attempt, placement.site, StepState.INTENT, None

    def submitted(self, rs: LiveRun, j: LiveJob, handle: Handle) -> None:
        self._journal.record_state(rs.id, j.name, j.attempt, StepState.SUBMITTED,
                                   backend=handle.backend, handle=handle.id)
        j.state, j.handle, j.call_errors = StepState.SUBMITTED, handle, 0

    def observed(self, rs: LiveRun, j: LiveJob, state: BackendState) -> None:
        """Record the state the cluster reports for ``j``'s step, if it changed."""
        if state == j.state:
            return
        if state in (PENDING, RUNNING, SUCCEEDED):
            self._journal.record_state(rs.id, j.name, j.attempt, StepState(state))
            j.state = StepState(state)
        elif state == FAILED:
            self._journal.record_state(rs.id, j.name, j.attempt, StepState.FAILED,
                                       reason="the job failed; see its logs")
            self.failed(rs, j)
        elif state == STOPPED:
            self._journal.record_state(rs.id, j.name, j.attempt, StepState.STOPPED,
                                       reason="stopped outside placer")
            j.state = StepState.STOPPED
            self.block_descendants(rs, j.name, f"{j.name} was stopped")

    def cancelled(self, rs: LiveRun, j: LiveJob) -> None:
        """``j``'s step was stopped by a cancel of the run."""
        self._journal.record_state(rs.id, j.name, j.attempt, StepState.STOPPED,
                                   reason="cancelled")
        j.state, j.handle = StepState.STOPPED, None

    def lost(self, rs: LiveRun, j: LiveJob, reason: str) -> None:
        """The step's site went down while it was in flight: a new attempt will run elsewhere."""
        self._journal.record_state(rs.id, j.name, j.attempt, StepState.LOST, reason=reason)
        j.state, j.handle = WAITING, None

    # -- failures and retries -------------------------------------------------------------------
    def failed(self, rs: LiveRun, j: LiveJob) -> None:
        """After a recorded failure: retry after a backoff, or give up and block below."""
        retry = self._host.retry
        j.failures += 1
        j.handle = None
        if j.failures < retry.max_attempts:
            delay = retry.delay(rs.id, j.name, j.failures)
            j.state, j.not_before = RETRY_WAIT, self._host.clock() + delay
            self._journal.record_event(rs.id, "retry_scheduled", j.name,
                                       failures=j.failures, delay_s=round(delay, 3))
            log.info("run %s: %s failed (%d), retrying in %.1fs", rs.id, j.name, j.failures,
                     delay)
        else:
            j.state = StepState.FAILED
            self.block_descendants(rs, j.name, f"{j.name} failed {j.failures} times")

    def call_error(self, rs: LiveRun, j: LiveJob, exc: BackendError) -> None:
        """A backend call for ``j`` raised: retried next tick under the same submission id;
        ``max_call_errors`` in a row count as a failed attempt."""
        retry = self._host.retry
        j.call_errors += 1
        msg = self._host.redactor.text(str(exc))
        self._journal.record_event(rs.id, "backend_error", j.name, error=msg,
                                   consecutive=j.call_errors)
        log.warning("run %s: %s: backend error: %s", rs.id, j.name, msg)
        j.not_before = self._host.clock() + retry.delay(rs.id, j.name, j.call_errors)
        if j.call_errors >= retry.max_call_errors:
            j.call_errors = 0
            self._journal.record_state(rs.id, j.name, j.attempt, StepState.FAILED,
                                       reason=f"backend kept failing: {msg}")
            self.failed(rs, j)

    # -- jobs that cannot run -------------------------------------------------------------------
    def stick(self, rs: LiveRun, j: LiveJob, state: StepState, reason: str) -> None:
        """``j`` cannot run (STUCK) or waits for a job that cannot (BLOCKED), for ``reason``."""
        j.attempt += 1  # a row of its own: earlier attempts keep their history
        self._journal.record_state(rs.id, j.name, j.attempt, state, reason=reason)
        j.state, j.handle = state, None
        log.warning("run %s: %s is %s: %s", rs.id, j.name, state, reason)
        if state == StepState.STUCK:
            self.block_descendants(rs, j.name, f"waits for {j.name}, which cannot run")

    def block_descendants(self, rs: LiveRun, name: str, reason: str) -> None:
        below = nx.descendants(rs.graph, name)
        for n in rs.order:
            j = rs.jobs[n]
            if n in below and j.state in (WAITING, RETRY_WAIT):
                self.stick(rs, j, StepState.BLOCKED, reason)

    # -- the run --------------------------------------------------------------------------------
    def settle(self, rs: LiveRun) -> None:
        """End the run once every job has ended: SUCCEEDED, else STUCK, else FAILED."""
        states = {j.state for j in rs.jobs.values()}
        if states == {StepState.SUCCEEDED}:
            self.set_run_state(rs, RunState.SUCCEEDED, None)
            return
        if states & (ACTIVE_STEP_STATES | {WAITING, RETRY_WAIT}):
            return
        stuck = sorted(n for n, j in rs.jobs.items() if j.state == StepState.STUCK)
        bad = sorted(n for n, j in rs.jobs.items()
                     if j.state in (StepState.FAILED, StepState.STOPPED))
        if stuck:
            self.set_run_state(rs, RunState.STUCK,
                               "no eligible site left for: " + ", ".join(stuck))
        else:
            self.set_run_state(rs, RunState.FAILED, "failed: " + ", ".join(bad))

    def set_run_state(self, rs: LiveRun, state: RunState, reason: str | None) -> None:
        if rs.state != state:
            self._journal.set_run_state(rs.id, state, reason)
            rs.state = state
            log.info("run %s: %s%s", rs.id, state, f" ({reason})" if reason else "")
