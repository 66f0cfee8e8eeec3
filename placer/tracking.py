"""Runs as an MLflow tracking server shows them: the pipeline a parent run, each job a child.

ML teams already watch their training in MLflow; this puts placer's decisions beside it. A
placer run becomes one MLflow run (tag ``placer.kind = pipeline``) in the experiment named
after the pipeline (or ``$MLFLOW_EXPERIMENT_NAME``), and each job that was sent to a site a
nested run under it (``mlflow.parentRunId``) with where it ran (site, location, GPU type and
count, spot or on demand), what it cost (planned, and the cost ``placer status`` counts), the
policy and plan hashes (the ``PLACER_POLICY_HASH`` / ``PLACER_PLAN_HASH`` the job was given,
and the decision log's ``plan_sha256``), its state, attempts and times.

Everything shown is read from the journal (:func:`run_view`), so any process can sync any run
at any time, and syncing again changes only what changed: the MLflow runs are found again by
their ``placer.run_id`` / ``placer.job`` tags, never created twice.

Live: :class:`Follower` is an executor observer (:data:`placer.executor.Observer`) that syncs a
run after each of its ticks. A run asks to be tracked with an ``mlflow`` event in its journal
(``placer submit --mlflow-uri``, ``placer track``), so every process that drives it (a
controller, ``placer resume``) keeps it in sync. The tracking server is never in a run's way:
every call is bounded (no retries, a short timeout), one that fails is logged once, and the
server is tried again a while later; the run goes on regardless.

``mlflow`` is imported only when a run is synced (``pip install 'placer[mlflow]'``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from placer.errors import BackendUnavailableError, ConfigError, ErrorDetail
from placer.executor import FINAL_JOB_STATES, TERMINAL_RUN_STATES, plan_hash, run_status
from placer.journal import Journal, RunState, StepRecord, StepState
from placer.models import JobPlacement, Model

__all__ = [
    "ENV_EXPERIMENT", "ENV_URI", "EVENT", "Follower", "MlflowRunView", "MlflowTracker",
    "RunView", "Status", "experiment_name", "plan_sha256", "requested", "run_view", "sync",
    "track", "tracking_uri",
]

log = logging.getLogger("placer.tracking")

ENV_URI = "MLFLOW_TRACKING_URI"
ENV_EXPERIMENT = "MLFLOW_EXPERIMENT_NAME"
EVENT = "mlflow"
"""The journal event that asks for a run to be tracked: ``{"uri": …, "experiment": …}``."""
INSTALL = "pip install 'placer[mlflow]'"
TAG_RUN, TAG_JOB, TAG_KIND = "placer.run_id", "placer.job", "placer.kind"
_MAX_TAG = 5000  # MLflow refuses longer tag values on some stores

Status = Literal["SCHEDULED", "RUNNING", "FINISHED", "FAILED", "KILLED"]
"""MLflow's run statuses."""

_RUN_STATUS: dict[RunState, Status] = {
    RunState.RUNNING: "RUNNING", RunState.CANCELLING: "RUNNING",
    RunState.SUCCEEDED: "FINISHED", RunState.FAILED: "FAILED", RunState.STUCK: "FAILED",
    RunState.CANCELLED: "KILLED",
}
_JOB_STATUS: dict[str, Status] = {
    StepState.INTENT: "SCHEDULED", StepState.SUBMITTED: "SCHEDULED",
    StepState.PENDING: "SCHEDULED", StepState.RUNNING: "RUNNING",
    StepState.SUCCEEDED: "FINISHED", StepState.FAILED: "FAILED", StepState.STUCK: "FAILED",
    StepState.BLOCKED: "FAILED", StepState.STOPPED: "KILLED",
    StepState.LOST: "SCHEDULED",  # its site went down: a later attempt runs elsewhere
}


class MlflowRunView(Model):
    """One MLflow run as placer wants it: created once, then its tags, metrics, status and end
    brought up to date."""

    name: str
    start_ms: int
    end_ms: int | None = None
    status: Status
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str]
    metrics: dict[str, float] = Field(default_factory=dict)


class RunView(Model):
    """A placer run as MLflow shows it: the parent, and a child per job sent to a site."""

    run_id: str
    experiment: str
    parent: MlflowRunView
    jobs: dict[str, MlflowRunView]


def plan_sha256(stored: Mapping[str, Any]) -> str:
    """The decision log's ``plan_sha256`` of a plan as the journal stores it: both hash the
    same canonical JSON (sorted keys, no spaces), so a run's MLflow tags and its decision
    records name the same plan."""
    text = json.dumps(stored, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _ms(ts: float | None) -> int | None:
    return None if ts is None else int(ts * 1000)


def _iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _tags(data: Mapping[str, object]) -> dict[str, str]:
    """Tag values as text; ``None`` is empty (so a reason that is gone is cleared too)."""
    return {k: "" if v is None else str(v)[:_MAX_TAG] for k, v in data.items()}


def _placement_tags(p: JobPlacement | None) -> dict[str, object]:
    if p is None:
        return {}
    return {"placer.planned_site": p.site, "placer.gpu": p.gpu, "placer.gpus": p.gpus,
            "placer.nodes": p.nodes, "placer.capacity": "spot" if p.spot else "on-demand"}


def run_view(journal: Journal, run_id: str, experiment: str | None = None) -> RunView:
    """What MLflow should show of ``run_id``, read from the journal alone (no MLflow needed).

    ``experiment``: default ``$MLFLOW_EXPERIMENT_NAME``, else the pipeline's name. Reasons are
    masked with the journal's redactor, as ``placer status`` shows them.
    """
    rec = journal.run(run_id)
    status = run_status(journal, run_id)
    plans = journal.plans(run_id, allow_masked=True)
    placements: dict[str, JobPlacement] = {}
    for p in plans:
        placements.update(p.plan.jobs)
    first, last = plans[0], plans[-1]
    hashes = {"placer.policy_hash": rec.policy_hash, "placer.plan_hash": plan_hash(placements),
              "placer.plan_sha256": plan_sha256(last.stored), "placer.plan_seq": last.seq}
    steps: dict[str, list[StepRecord]] = {}
    for s in journal.steps(run_id):
        steps.setdefault(s.job, []).append(s)
    mask = journal.redactor.text
    jobs: dict[str, MlflowRunView] = {}
    for name, js in status.jobs.items():
        attempts = sorted(steps.get(name, []), key=lambda s: s.attempt)
        if not attempts:
            continue  # never sent anywhere: shown once it is
        latest, placed = attempts[-1], placements.get(name)
        final = js.state in FINAL_JOB_STATES
        metrics = {} if placed is None else {
            "planned_cost_usd": placed.cost_usd, "planned_compute_usd": placed.compute_usd,
            "planned_transfer_usd": placed.transfer_usd,
            "planned_hours": placed.end_h - placed.start_h}
        metrics["attempts"] = float(latest.attempt)
        if js.state == StepState.SUCCEEDED and latest.cost_usd is not None:
            metrics["cost_usd"] = latest.cost_usd
        if latest.started is not None and latest.finished is not None:
            metrics["run_seconds"] = latest.finished - latest.started
        jobs[name] = MlflowRunView(
            name=name, start_ms=_ms(attempts[0].created) or 0,
            end_ms=_ms(latest.finished) if final else None,
            status=_JOB_STATUS.get(js.state, "SCHEDULED"),
            tags=_tags({
                TAG_RUN: run_id, TAG_JOB: name, TAG_KIND: "job",
                "placer.site": latest.site, "placer.location": latest.location,
                **_placement_tags(placed), **hashes,
                "placer.state": js.state, "placer.attempt": latest.attempt,
                "placer.submission_id": latest.submission_id,
                "placer.reason": mask(latest.reason or ""),
                "placer.submitted": _iso(latest.submitted), "placer.started": _iso(latest.started),
                "placer.finished": _iso(latest.finished)}),
            metrics=metrics)
    done = rec.state in TERMINAL_RUN_STATES
    sites = ", ".join(f"{j}: {p.site}" for j, p in placements.items())
    parent = MlflowRunView(
        name=run_id, start_ms=_ms(rec.created) or 0, end_ms=_ms(rec.updated) if done else None,
        status=_RUN_STATUS[rec.state],
        params={k: str(v) for k, v in {
            "placer.pipeline": rec.pipeline_name, "placer.policy_hash": rec.policy_hash,
            "placer.objective": first.plan.objective, "placer.deadline_h": first.plan.deadline_h,
            "placer.budget_usd": first.plan.budget_usd}.items() if v is not None},
        tags=_tags({TAG_RUN: run_id, TAG_KIND: "pipeline", "placer.pipeline": rec.pipeline_name,
                    "placer.state": rec.state,
                    "placer.reason": mask(rec.reason or ""),
                    "placer.placements": sites, **hashes}),
        metrics={"planned_cost_usd": first.plan.cost_usd,
                 "planned_makespan_h": first.plan.makespan_h, "cost_usd": status.cost_usd,
                 "jobs": float(len(status.jobs)),
                 "jobs_succeeded": float(sum(j.state == StepState.SUCCEEDED
                                             for j in status.jobs.values()))})
    name = experiment or os.environ.get(ENV_EXPERIMENT) or rec.pipeline_name
    return RunView(run_id=run_id, experiment=name, parent=parent, jobs=jobs)


def tracking_uri(given: str | None = None) -> str | None:
    """The tracking server: ``given``, else ``$MLFLOW_TRACKING_URI``; ``None`` when neither.

    Raises:
        ConfigError: the URI holds a password (it would be recorded in the journal); MLflow
            reads credentials from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``.
    """
    uri = given or os.environ.get(ENV_URI) or None
    if uri is not None and urlsplit(uri).password:
        raise ConfigError(ErrorDetail(
            "the tracking URI holds a password, which would be stored with the run: give it "
            "in MLFLOW_TRACKING_PASSWORD (and the user in MLFLOW_TRACKING_USERNAME) instead",
            field="--mlflow-uri" if given else ENV_URI))
    return uri


def _mlflow() -> Any:
    """The ``mlflow`` module, imported now (it is heavy and optional)."""
    try:
        return importlib.import_module("mlflow")
    except ImportError as exc:
        raise BackendUnavailableError(
            f"tracking runs in MLflow needs the mlflow client: {INSTALL} ({exc})") from None


@contextmanager
def _bounded(timeout_s: float) -> Iterator[None]:
    """MLflow's HTTP calls without retries and with a short timeout, and no run URLs printed
    on stdout (placer's output is its own), unless the user set these (MLflow retries for
    minutes by default: a run's tick must not wait that long)."""
    ours = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, round(timeout_s))),
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
    ours = {k: v for k, v in ours.items() if k not in os.environ}
    os.environ.update(ours)
    try:
        yield
    finally:
        for k in ours:
            os.environ.pop(k, None)


class MlflowTracker:
    """Syncs runs from a journal to one MLflow tracking server; never raises for the server.

    Args:
        uri: the tracking URI (``http://…``, or any URI MLflow takes).
        experiment: where runs go; default: see :func:`run_view`.
        timeout_s: each HTTP call's timeout (``MLFLOW_HTTP_REQUEST_TIMEOUT`` wins if set).
        retry_after_s: after a failed sync, the server is left alone this long.
        clock: monotonic seconds (tests).

    Raises:
        BackendUnavailableError: mlflow is not installed (``pip install 'placer[mlflow]'``).
    """

    def __init__(self, uri: str, experiment: str | None = None, *, timeout_s: float = 5.0,
                 retry_after_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.uri = uri
        self.experiment = experiment
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.clock = clock
        self._mod = _mlflow()
        self._client: Any = None
        self._experiments: dict[str, str] = {}  # name → id
        self._parents: dict[str, str] = {}  # placer run → MLflow parent run id
        self._synced: dict[str, int] = {}  # placer run → its last event when last synced
        self._down_until: float | None = None
        self._failing = False

    def sync(self, journal: Journal, run_id: str, *, force: bool = False) -> bool:
        """Bring the run's MLflow runs up to date; ``False`` if the server could not be
        reached (logged once until it answers again), or is being left alone after that.

        Skipped (``True``) when nothing was recorded since the last sync, unless ``force``.
        """
        if not force and self._down_until is not None and self.clock() < self._down_until:
            return False
        mark = journal.last_event(run_id)
        if not force and self._synced.get(run_id) == mark:
            return True
        view = run_view(journal, run_id, self.experiment)
        try:
            with _bounded(self.timeout_s):
                self._push(view)
        except Exception as exc:  # whatever the server did, the run goes on
            self._down_until = self.clock() + self.retry_after_s
            self._parents.pop(run_id, None)  # found again by its tags next time
            if not self._failing:
                log.warning("MLflow at %s: run %s not synced (%s: %s); placer carries on and "
                            "tries again in %gs", self.uri, run_id, type(exc).__name__,
                            journal.redactor.text(str(exc))[:300], self.retry_after_s)
            self._failing = True
            return False
        if self._failing:
            log.warning("MLflow at %s answers again: runs are synced", self.uri)
        self._failing, self._down_until = False, None
        self._synced[run_id] = mark
        return True

    # -- the server -------------------------------------------------------------------------
    def _push(self, view: RunView) -> None:
        if self._client is None:
            self._client = self._mod.MlflowClient(tracking_uri=self.uri)
        client = self._client
        exp = self._experiment_id(view.experiment)
        parent = self._parents.get(view.run_id)
        if parent is None:
            found = client.search_runs(
                [exp], filter_string=f"tags.`{TAG_RUN}` = '{view.run_id}' and "
                f"tags.`{TAG_KIND}` = 'pipeline'", max_results=1)
            run = found[0] if found else self._create(exp, view.parent, {})
            parent = self._parents[view.run_id] = run.info.run_id
            self._update(run, view.parent)
        else:
            self._update(client.get_run(parent), view.parent)
        children = {r.data.tags.get(TAG_JOB): r for r in client.search_runs(
            [exp], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'", max_results=5000)}
        for name, want in view.jobs.items():
            run = children.get(name) or self._create(exp, want, {"mlflow.parentRunId": parent})
            self._update(run, want)

    def _experiment_id(self, name: str) -> str:
        if name not in self._experiments:
            exp = self._client.get_experiment_by_name(name)
            self._experiments[name] = (self._client.create_experiment(name) if exp is None
                                       else exp.experiment_id)
        return self._experiments[name]

    def _create(self, exp: str, want: MlflowRunView, extra: dict[str, str]) -> Any:
        return self._client.create_run(exp, start_time=want.start_ms, run_name=want.name,
                                       tags={**extra, **want.tags})

    def _update(self, run: Any, want: MlflowRunView) -> None:
        """Write only what differs: params once (MLflow's are immutable), tags, metrics."""
        m = self._mod
        have = run.data
        now = int(time.time() * 1000)
        params = [m.entities.Param(k, v) for k, v in want.params.items() if k not in have.params]
        tags = [m.entities.RunTag(k, v) for k, v in want.tags.items() if have.tags.get(k) != v]
        metrics = [m.entities.Metric(k, v, now, 0) for k, v in want.metrics.items()
                   if have.metrics.get(k) != v]
        rid = run.info.run_id
        if params or tags or metrics:
            self._client.log_batch(rid, metrics=metrics, params=params, tags=tags)
        info = run.info
        if want.end_ms is not None:
            if info.status != want.status or info.end_time != want.end_ms:
                self._client.set_terminated(rid, want.status, end_time=want.end_ms)
        elif info.status != want.status:
            self._client.update_run(rid, status=want.status)


class Follower:
    """An executor observer that keeps the runs it sees in sync with MLflow.

    A run is synced when its journal asks for it (an :data:`EVENT` event). With ``uri``, the
    follower asks for every run it sees first (``placer submit --mlflow-uri``: the submitting
    process's executor sees only its own run), so later drivers keep it in sync too.
    Trackers are made on first use; one that cannot be made (mlflow not installed where a
    controller runs) is logged once per server, and its runs go on untracked.
    """

    def __init__(self, uri: str | None = None, experiment: str | None = None,
                 **tracker_options: Any) -> None:
        self.uri = uri
        self.experiment = experiment
        self.tracker_options = tracker_options
        self._trackers: dict[tuple[str, str | None], MlflowTracker | None] = {}

    def __call__(self, journal: Journal, run_id: str) -> None:
        target = self.target(journal, run_id)
        if target is None:
            return
        if target not in self._trackers:
            try:
                self._trackers[target] = MlflowTracker(*target, **self.tracker_options)
            except BackendUnavailableError as exc:
                log.warning("run %s asks to be tracked in MLflow at %s, but %s", run_id,
                            target[0], exc)
                self._trackers[target] = None
        tracker = self._trackers[target]
        if tracker is not None:
            tracker.sync(journal, run_id)

    def target(self, journal: Journal, run_id: str) -> tuple[str, str | None] | None:
        """The server and experiment the run asked for (recording ours if it asked none)."""
        asked = journal.events(run_id, kind=EVENT)
        if asked:
            data = asked[-1].data
            return str(data["uri"]), data.get("experiment")
        if self.uri is None:
            return None
        track(journal, run_id, self.uri, self.experiment)
        return self.uri, self.experiment


def requested(given: str | None = None) -> Follower | None:
    """The follower for a run about to be submitted, if it is to be tracked: at ``given``
    (``--mlflow-uri``), else ``$MLFLOW_TRACKING_URI``, in ``$MLFLOW_EXPERIMENT_NAME`` (else
    the pipeline's name); ``None`` when neither names a server.

    Raises:
        BackendUnavailableError: ``given``, and mlflow is not installed. With the variable
            alone, that is logged and the run is not tracked (the variable may be meant for
            other tools).
        ConfigError: see :func:`tracking_uri`.
    """
    uri = tracking_uri(given)
    if uri is None:
        return None
    if importlib.util.find_spec("mlflow") is None:
        if given:
            raise BackendUnavailableError(f"--mlflow-uri needs the mlflow client: {INSTALL}")
        log.warning("%s is set, but the mlflow client is not installed (%s): the run is not "
                    "tracked", ENV_URI, INSTALL)
        return None
    return Follower(uri, experiment_name())


def experiment_name() -> str | None:
    """``$MLFLOW_EXPERIMENT_NAME``; ``None`` (the pipeline's name) when unset."""
    return os.environ.get(ENV_EXPERIMENT) or None


def track(journal: Journal, run_id: str, uri: str, experiment: str | None = None) -> None:
    """Record that ``run_id`` is to be tracked at ``uri``: whoever drives it from now on syncs
    it (with a :class:`Follower`)."""
    journal.run(run_id)  # RunNotFoundError before anything is written
    asked = journal.events(run_id, kind=EVENT)
    if not asked or asked[-1].data != {"uri": uri, "experiment": experiment}:
        journal.record_event(run_id, EVENT, None, uri=uri, experiment=experiment)


def sync(journal: Journal, run_id: str, uri: str, experiment: str | None = None,
         **tracker_options: Any) -> bool:
    """Sync one run now (``placer track``); ``False`` if the server could not be reached."""
    return MlflowTracker(uri, experiment, **tracker_options).sync(journal, run_id, force=True)
