"""The executor: runs a Plan through compute backends, in DAG order, surviving failure.

One loop (:meth:`Executor.step`, driven by :meth:`Run.wait`) polls what is in flight, submits
every job whose inputs are done (at most ``max_concurrency`` in flight), and settles the run.
Every action follows *write intent → act → record outcome* in the :class:`~placer.journal.Journal`,
and every submission uses the deterministic ``placer-{run}-{job}-{attempt}`` id, so a run can be
killed at any moment and resumed (:func:`resume`) with no job lost and none submitted twice: a
step whose intent was recorded but not its outcome is looked up with ``backend.find`` and adopted
before it is ever resubmitted. One process drives a run at a time (the journal's driver lock).

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

One room per concern:

* ``_state``: job and run states (:class:`StepState`, :class:`Waiting`, :class:`RunState`),
  retries, submission ids, every journaled move, a run rebuilt from the journal;
* ``_status``: :func:`run_status`, a run as the journal records it (no backend needed);
* ``_staging``: the residency guards (eligibility, output prefix) and verified input copies,
  each measured against the link model the plan priced it with, and stopped by a cancel;
* ``_manifest``: the ``PLACER_*`` environment and manifest a job is given (a contract);
* ``_failover``: a site that goes down, re-planning around it, stuck and blocked jobs, and
  LOST attempts cancelled (their outputs removed) once their site answers again;
* ``_executor``: :class:`Executor`, the loop, and :meth:`Executor.from_inventory`, which
  builds one from an inventory for the CLI and for :func:`submit` and :func:`resume` here;
* ``_run``: :class:`Run`, the handle that drives one run as its only driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from placer.backends import ComputeBackend, StorageLayout
from placer.executor._executor import Executor, Hook
from placer.executor._failover import (
    LOST_EVENTS,
    Failover,
    LostAttempts,
    ObjectRemover,
    stuck_reason,
)
from placer.executor._manifest import JobContract, plan_hash
from placer.executor._run import Run
from placer.executor._staging import (
    SLOW_FACTOR,
    SLOW_FLOOR_S,
    CopyStopped,
    JobPaths,
    RemoteInput,
    Staging,
)
from placer.executor._state import (
    ACTIVE_STEP_STATES,
    FINAL_JOB_STATES,
    POLLED_STATES,
    RETRY_WAIT,
    TERMINAL_RUN_STATES,
    WAITING,
    JobState,
    LiveJob,
    LiveRun,
    RetryPolicy,
    RunState,
    StepState,
    Transitions,
    Waiting,
    load_run,
    submission_id,
)
from placer.executor._status import (
    JobStatus,
    LostAttemptStatus,
    RunStatus,
    TransferStatus,
    TransferTotals,
    run_status,
)
from placer.journal import Journal
from placer.models import Inventory, Pipeline, Plan
from placer.policy import PolicySet

__all__ = [
    "ACTIVE_STEP_STATES",
    "FINAL_JOB_STATES",
    "LOST_EVENTS",
    "POLLED_STATES",
    "RETRY_WAIT",
    "SLOW_FACTOR",
    "SLOW_FLOOR_S",
    "TERMINAL_RUN_STATES",
    "WAITING",
    "CopyStopped",
    "Executor",
    "Failover",
    "Hook",
    "JobContract",
    "JobPaths",
    "JobState",
    "JobStatus",
    "LiveJob",
    "LiveRun",
    "LostAttemptStatus",
    "LostAttempts",
    "ObjectRemover",
    "RemoteInput",
    "RetryPolicy",
    "Run",
    "RunState",
    "RunStatus",
    "Staging",
    "StepState",
    "TransferStatus",
    "TransferTotals",
    "Transitions",
    "Waiting",
    "load_run",
    "plan_hash",
    "resume",
    "run_status",
    "stuck_reason",
    "submission_id",
    "submit",
]


def submit(plan: Plan, *, pipeline: Pipeline, inventory: Inventory,
           backends: Mapping[str, ComputeBackend] | None = None,
           layout: StorageLayout | None = None, policies: PolicySet | None = None,
           journal: Journal | None = None, **options: Any) -> Run:
    """Start running ``plan``; returns a :class:`Run` (call ``.wait()`` to drive it).

    The executor is :meth:`Executor.from_inventory`: whatever of ``backends``, ``layout``,
    ``storage`` and ``mover`` is not given is built from what the inventory's sites say
    (``cluster`` through the ``placer.backends`` entry points, ``storage``). ``options`` go to
    :class:`Executor` (``retry``, ``max_concurrency``, ``storage``, ``mover``, …).
    """
    ex = Executor.from_inventory(inventory, journal or Journal(), policies=policies,
                                 backends=backends, layout=layout, **options)
    return ex.start(plan, pipeline=pipeline)


def resume(run_id: str, *, backends: Mapping[str, ComputeBackend] | None = None,
           layout: StorageLayout | None = None, journal: Journal | None = None,
           **options: Any) -> Run:
    """Continue a run recorded in the journal; nothing already submitted is submitted again.

    The executor is :meth:`Executor.for_run`: what is not given is built from the run's stored
    inventory, as for :func:`submit`.
    """
    ex = Executor.for_run(journal or Journal(), run_id, backends=backends, layout=layout,
                          **options)
    return ex.resume(run_id)
