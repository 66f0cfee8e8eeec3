"""A run's status as the journal records it: what ``placer status`` and ``placer runs`` show.

Read from the journal alone, in any process, with no backend: the driver of a run writes the
journal, everyone else reads it. Besides each job's latest attempt it shows the run's LOST
attempts and what became of them (cancelled, outputs removed or kept), and each staging copy
measured against what the plan's link model said it would take (``transfer_measured`` events,
written by the staging room).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from placer.executor._state import WAITING, JobState
from placer.journal import (
    TERMINAL_RUN_STATES,
    EventRecord,
    Journal,
    RunState,
    StepRecord,
    StepState,
)
from placer.models import JobPlacement, Model

__all__ = ["JobStatus", "LostAttemptStatus", "RunStatus", "TransferStatus", "TransferTotals",
           "run_status"]


class JobStatus(Model):
    """One job of a run as last recorded."""

    job: str
    state: JobState
    site: str | None
    attempt: int
    submission_id: str | None = None
    reason: str | None = None
    cost_usd: float | None = None
    started: float | None = None
    finished: float | None = None


class LostAttemptStatus(Model):
    """A LOST attempt and what became of it once its site answered again.

    ``pending``: its site has not answered since (it may still run there); ``cancelled``:
    cancelled, its outputs not yet removed (the cluster still reports it stopping);
    ``outputs_removed`` / ``outputs_kept``: settled (kept: ``reason`` says why).
    """

    job: str
    attempt: int
    site: str | None
    state: Literal["pending", "cancelled", "outputs_removed", "outputs_kept"]
    prefix: str | None = None
    objects: int = 0
    reason: str | None = None


class TransferStatus(Model):
    """One staging copy: what it moved, took and cost, beside what the plan's model said."""

    id: int
    job: str
    src_location: str | None
    dst_location: str | None
    state: str
    bytes: int | None = None
    seconds: float | None = None
    usd: float | None = Field(default=None, description="the link model's price of the bytes")
    planned_gb: float | None = Field(default=None, description="the size the pipeline declares")
    planned_s: float | None = None
    planned_usd: float | None = None
    expected_s: float | None = Field(
        default=None, description="the link model's time for the bytes actually moved")
    slow: bool = False


class TransferTotals(Model):
    """Every measured copy of a run, planned against actual."""

    count: int = 0
    bytes: int = 0
    seconds: float = 0.0
    usd: float = 0.0
    planned_s: float = 0.0
    planned_usd: float = 0.0
    slow: int = 0


class RunStatus(Model):
    """A run as the journal records it: what ``placer status RUN`` shows."""

    run_id: str
    state: RunState
    reason: str | None
    jobs: dict[str, JobStatus]
    cost_usd: float
    lost_attempts: list[LostAttemptStatus] = Field(default_factory=list)
    transfers: list[TransferStatus] = Field(default_factory=list)
    transfer_totals: TransferTotals = Field(default_factory=TransferTotals)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_RUN_STATES


def run_status(journal: Journal, run_id: str) -> RunStatus:
    """The status of a run read from the journal alone (any process, no backends needed).

    Reasons are display text: masked with the journal's redactor, which knows the secrets of
    the run's sites. A run an older placer recorded with masked values can still be shown.
    """
    rec = journal.run(run_id)
    placements: dict[str, JobPlacement] = {}
    for p in journal.plans(run_id, allow_masked=True):
        placements.update(p.plan.jobs)
    order = [j.name for j in journal.run_spec(run_id, allow_masked=True).pipeline.jobs]
    mask = journal.redactor.text
    latest: dict[str, StepRecord] = {}
    steps = journal.steps(run_id)
    for s in steps:
        if s.job not in latest or s.attempt > latest[s.job].attempt:
            latest[s.job] = s
    jobs: dict[str, JobStatus] = {}
    cost = 0.0
    for name in order:
        last = latest.get(name)
        if last is None:
            placed = placements.get(name)
            jobs[name] = JobStatus(job=name, state=WAITING,
                                   site=None if placed is None else placed.site, attempt=0)
            continue
        if last.state == StepState.SUCCEEDED and last.cost_usd:
            cost += last.cost_usd
        jobs[name] = JobStatus(job=name, state=last.state, site=last.site, attempt=last.attempt,
                               submission_id=last.submission_id,
                               reason=None if last.reason is None else mask(last.reason),
                               cost_usd=last.cost_usd, started=last.started,
                               finished=last.finished)
    transfers = _transfers(journal, run_id)
    return RunStatus(run_id=run_id, state=rec.state,
                     reason=None if rec.reason is None else mask(rec.reason), jobs=jobs,
                     cost_usd=cost, lost_attempts=_lost(journal, run_id, steps),
                     transfers=transfers, transfer_totals=_totals(transfers))


_LOST_KINDS = ("lost_attempt_cancelled", "lost_attempt_outputs_removed",
               "lost_attempt_outputs_kept")  # in the order they happen to one attempt


def _lost(journal: Journal, run_id: str, steps: list[StepRecord]) -> list[LostAttemptStatus]:
    """Every LOST attempt, with the last thing the executor recorded of it (the journal's
    events are read only for a run that has one)."""
    if not any(s.state == StepState.LOST for s in steps):
        return []
    done: dict[tuple[str | None, int], EventRecord] = {}
    for kind in _LOST_KINDS:
        for e in journal.events(run_id, kind):
            done[(e.job, int(e.data.get("attempt", 0)))] = e
    out = []
    for s in steps:
        if s.state != StepState.LOST:
            continue
        last = done.get((s.job, s.attempt))
        state = "pending" if last is None else last.kind.removeprefix("lost_attempt_")
        data = {} if last is None else last.data
        reason = data.get("reason")
        out.append(LostAttemptStatus.model_validate({
            "job": s.job, "attempt": s.attempt, "site": s.site, "state": state,
            "prefix": data.get("prefix"), "objects": int(data.get("objects") or 0),
            "reason": None if reason is None else journal.redactor.text(str(reason))}))
    return out


def _transfers(journal: Journal, run_id: str) -> list[TransferStatus]:
    """Every staging copy, with what ``transfer_measured`` recorded of it."""
    rows = journal.transfers(run_id)
    if not rows:
        return []
    measured = {int(e.data["id"]): e.data for e in journal.events(run_id, "transfer_measured")
                if "id" in e.data}
    out = []
    for t in rows:
        m = measured.get(t.id, {})
        out.append(TransferStatus(
            id=t.id, job=t.job, src_location=t.src_location, dst_location=t.dst_location,
            state=t.state, bytes=t.bytes, **{k: m[k] for k in (
                "seconds", "usd", "planned_gb", "planned_s", "planned_usd", "expected_s",
                "slow") if m.get(k) is not None}))
    return out


def _totals(transfers: list[TransferStatus]) -> TransferTotals:
    done = [t for t in transfers if t.seconds is not None]
    return TransferTotals(
        count=len(done), bytes=sum(t.bytes or 0 for t in done),
        seconds=sum(t.seconds or 0.0 for t in done), usd=sum(t.usd or 0.0 for t in done),
        planned_s=sum(t.planned_s or 0.0 for t in done),
        planned_usd=sum(t.planned_usd or 0.0 for t in done),
        slow=sum(1 for t in done if t.slow))
