"""A run's status as the journal records it: what ``placer status`` and ``placer runs`` show.

Read from the journal alone, in any process, with no backend: the driver of a run writes the
journal, everyone else reads it.
"""

from __future__ import annotations

from placer.executor._state import WAITING, JobState
from placer.journal import TERMINAL_RUN_STATES, Journal, RunState, StepRecord, StepState
from placer.models import JobPlacement, Model

__all__ = ["JobStatus", "RunStatus", "run_status"]


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
    for s in journal.steps(run_id):
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
    return RunStatus(run_id=run_id, state=rec.state,
                     reason=None if rec.reason is None else mask(rec.reason), jobs=jobs,
                     cost_usd=cost)
