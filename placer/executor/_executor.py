"""The executor: one loop that drives plans through compute backends.

:meth:`Executor.step` is one tick: poll what is in flight, adopt or submit what is ready (at
most ``max_concurrency`` in flight), re-plan if a site is gone, settle the run;
:meth:`~placer.executor.Run.wait` drives ticks as the run's only driver. The moves themselves
live in the other rooms: states and retries (``_state``), the guards and copies
(``_staging``), what a job is told (``_manifest``), failover (``_failover``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from placer.backends import (
    CapacityReporter,
    ComputeBackend,
    DataMover,
    GpuCapacity,
    Handle,
    StorageLayout,
    StorageResolver,
)
from placer.catalog import Catalog, default_catalog, resolve_inventory
from placer.errors import (
    BackendError,
    ExecutionError,
    PlacerError,
    ResidencyError,
    RunNotFoundError,
    SiteUnreachableError,
)
from placer.executor._failover import Failover, LostAttempts
from placer.executor._manifest import JobContract, plan_hash
from placer.executor._run import Run
from placer.executor._staging import CopyStopped, Staging
from placer.executor._state import (
    ACTIVE_STEP_STATES,
    POLLED_STATES,
    RETRY_WAIT,
    TERMINAL_RUN_STATES,
    WAITING,
    LiveJob,
    LiveRun,
    RetryPolicy,
    RunState,
    StepState,
    Transitions,
    load_run,
    submission_id,
)
from placer.executor._status import RunStatus, run_status
from placer.journal import Journal, StepRecord
from placer.live import (
    LiveView,
    NamedStrategy,
    StepDecision,
    StrategyFactory,
    StrategyStep,
    allowed_by_policy,
    job_requests,
)
from placer.models import Inventory, JobPlacement, Pipeline, Plan, ResolvedSite
from placer.online import DatasetInfo, JobRequest
from placer.policy import JobEligibility, PolicySet
from placer.policy import evaluate as evaluate_policies
from placer.scheduler import plan as make_plan
from placer.secrets import Redactor, secret_values

__all__ = ["Executor", "Hook", "Observer"]

log = logging.getLogger("placer.executor")

Hook = Callable[[str, str, str], None]
"""``hook(point, run_id, job)`` at ``after_intent``, ``after_submit`` and ``after_status``:
lets tests kill the executor exactly between two journal writes."""

Observer = Callable[[Journal, str], None]
"""``observer(journal, run_id)`` after every tick and cancel of a run, once the journal holds
what it did: how a tracker (``placer.tracking``) follows runs live. An observer's failure is
logged, never the run's."""


class _NoAnswer:
    """The backend call did not answer (already handled); distinct from a ``None`` answer."""


_NO_ANSWER = _NoAnswer()
_T = TypeVar("_T")


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
        strategy: makes the online strategy (:class:`placer.online.Strategy`, one per run) that
            decides, for each ready job, on-prem now, wait, or burst to a cloud site
            (:class:`placer.live.StrategyStep`, over a :class:`placer.live.LiveView` of the
            clusters); every decision is a ``strategy_decision`` event with its reason. The
            residency guard checks whatever it picks. ``None`` (the default): every job runs
            where the plan put it.
        wall_clock: seconds since the Unix epoch, for the strategy's view (the journal's clock).
        spot_safety_net: with a strategy, let it send a job that tolerates preemption
            (``spot: true``) to spot capacity, only where a spot run lost at the worst moment
            can be done again on demand by the job's deadline (the run's submission plus the
            plan's makespan bound, less the estimates of the jobs after it; a run planned
            without a deadline has none, and the net holds); a failed spot attempt is retried
            on demand, through the same residency guard. Off (the default): the strategy sees
            no spot offer, and every job it places runs on demand.
        observers: called after each tick and cancel, see :data:`Observer`.

    :meth:`from_inventory` builds one with every backend an inventory names.
    """

    def __init__(self, journal: Journal, backends: Mapping[str, ComputeBackend], *,
                 layout: StorageLayout, storage: StorageResolver | None = None,
                 mover: DataMover | None = None,
                 retry: RetryPolicy | None = None, max_concurrency: int = 8,
                 poll_interval_s: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, catalog: Catalog | None = None,
                 hook: Hook | None = None, decision_log: Path | None = None,
                 strategy: StrategyFactory | None = None,
                 wall_clock: Callable[[], float] = time.time,
                 spot_safety_net: bool = False,
                 observers: Sequence[Observer] = ()) -> None:
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
        # Where re-plans are logged for auditors (placer.decisions); None: not logged.
        self.decision_log = decision_log
        self.strategy = strategy
        self.wall_clock = wall_clock
        self.spot_safety_net = spot_safety_net
        self.observers = tuple(observers)
        self._steps: dict[str, _RunStrategy] = {}  # run → its strategy and what it sees
        self._capacity: GpuCapacity | None = None  # read once per tick
        self._starts: dict[str, dict[str, StepRecord]] = {}  # run → its steps, once per tick
        # Display text only (logs, errors): the journal teaches it each run's site secrets.
        self.redactor: Redactor = journal.redactor
        # Defaults for start(), when built for an inventory (from_inventory).
        self.inventory: Inventory | None = None
        self.policies: PolicySet | None = None
        self._states = Transitions(self)
        self._staging = Staging(self)
        self._failover = Failover(self, self._states)
        self._lost = LostAttempts(self)  # LOST attempts to cancel once their site answers
        self._runs: dict[str, LiveRun] = {}
        self._seen: dict[str, int] = {}  # run → its last event when this executor let go of it

    @classmethod
    def from_inventory(cls, inventory: Inventory, journal: Journal, *,
                       policies: PolicySet | None = None,
                       backends: Mapping[str, ComputeBackend] | None = None,
                       layout: StorageLayout | None = None, **options: Any) -> Executor:
        """An executor with the backends the inventory names, for runs on its sites.

        The journal's redactor learns the sites' secrets first (read from where the inventory
        says they live; none is stored), so nothing after can show one. Then whatever is not
        given is built from the resolved sites: ``storage`` and ``mover``, the stores their
        ``storage`` roots name (:func:`~placer.backends.storage_for`: ``None`` when none
        does); ``backends``, each site's ``cluster`` through the ``placer.backends`` entry
        points; ``layout``, each site's ``storage`` root. ``inventory`` and ``policies`` become
        the defaults of :meth:`start`; ``options`` go to :class:`Executor`.
        """
        from placer import backends as seams  # looked up now: tests swap these

        sites = resolve_inventory(inventory, options.get("catalog"))
        journal.redactor.add(*secret_values(sites))
        if "storage" not in options:
            options["storage"] = seams.storage_for(sites)
        options.setdefault("mover", options["storage"])
        if backends is None:
            backends = seams.compute_backends_for(sites)
        ex = cls(journal, backends, layout=seams.layout_for(sites) if layout is None else layout,
                 **options)
        ex.inventory, ex.policies = inventory, policies
        return ex

    @classmethod
    def for_run(cls, journal: Journal, run_id: str, **options: Any) -> Executor:
        """An executor for a recorded run: :meth:`from_inventory` on its stored inventory."""
        spec = journal.run_spec(run_id)
        return cls.from_inventory(spec.inventory, journal, policies=spec.policies, **options)

    # -- public ---------------------------------------------------------------------------------
    def start(self, plan: Plan, *, pipeline: Pipeline, inventory: Inventory | None = None,
              policies: PolicySet | None = None) -> Run:
        """Record a new run of ``plan`` and submit its first jobs.

        ``inventory`` and ``policies`` default to those of :meth:`from_inventory`.
        """
        if inventory is None:
            inventory = self.inventory
        if inventory is None:
            raise ExecutionError("start needs the inventory the plan was made for")
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
        if policies is None:
            policies = self.policies
        policies = policies or PolicySet(name="empty")
        rid = self._unused_run_id()
        run = Run(self, rid)
        # Locked before it is recorded: a controller driving the journal sees the run only
        # once its first tick is done, never between its creation and its first submission.
        with self._driving(rid, new=True):
            self.journal.create_run(pipeline=pipeline, plan=plan, inventory=inventory,
                                    policies=policies, policy_hash=plan.policy_hash,
                                    pipeline_name=pipeline.name, run_id=rid)
            if isinstance(self.strategy, NamedStrategy):
                # The run's own: any controller that drives it later decides with this one.
                self.journal.record_event(rid, "strategy", None, name=self.strategy.name,
                                          budget=self.strategy.budget)
            log.info("run %s started: %d jobs", rid, len(names))
            run.step()
        return run

    def _unused_run_id(self) -> str:
        for _ in range(8):
            rid = self.journal.new_run_id()
            try:
                self.journal.run(rid)
            except RunNotFoundError:
                return rid
        raise ExecutionError("could not find a free run id")  # pragma: no cover

    def resume(self, run_id: str) -> Run:
        """Continue a run from the journal (after a crash, or from another process).

        Raises :class:`~placer.errors.RunLockedError` at once if another process drives it.
        """
        with self._driving(run_id):
            self._runs.pop(run_id, None)
            self._load(run_id)
        return Run(self, run_id)

    @contextmanager
    def _driving(self, run_id: str, *, new: bool = False) -> Iterator[None]:
        """Drive ``run_id`` as its only driver (:meth:`Journal.driving`, a lock the OS drops
        if this process dies; ``new``: a run about to be recorded). Taking it afresh, what this
        executor remembers of the run is dropped if anything was recorded since it last let go
        (another process drove it)."""
        with self.journal.driving(run_id, new=new) as lock:
            fresh = lock.depth == 1
            if fresh and self._seen.get(run_id) != self.journal.last_event(run_id):
                self._runs.pop(run_id, None)
            try:
                yield
            finally:
                if fresh:
                    with suppress(PlacerError):
                        self._seen[run_id] = self.journal.last_event(run_id)

    def step(self, run_id: str) -> RunStatus:
        """One tick: poll in-flight steps, adopt or submit, re-plan if needed, settle."""
        rs = self._load(run_id)
        if rs.state == RunState.CANCELLING:
            self._cancel(rs)
        elif rs.state not in TERMINAL_RUN_STATES:
            if self._failover.needs_replan(rs):
                self._failover.replan(rs, "placements on unavailable sites")
            for name in rs.order:
                self._advance(rs, rs.jobs[name])
            self._submit_ready(rs)
            self._states.settle(rs)
        # Every tick, whatever the run's state (a finished run's `resume` chases them too).
        self._lost.chase(rs)
        return self._observed(run_id)

    def cancel(self, run_id: str) -> RunStatus:
        """Stop every in-flight job of the run on every site; the run ends CANCELLED."""
        rs = self._load(run_id)
        if rs.state not in TERMINAL_RUN_STATES:
            self.journal.set_run_state(rs.id, RunState.CANCELLING, "cancel requested")
            rs.state = RunState.CANCELLING
            self._cancel(rs)
        return self._observed(run_id)

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
        backend = self.backends.get(handle.site)
        if backend is None:
            raise ExecutionError(f"no compute backend for site {handle.site}, where {job} ran")
        try:
            return self.redactor.text(backend.logs(handle))
        except BackendError as exc:
            raise BackendError(self.redactor.text(str(exc))) from None

    def _observed(self, run_id: str) -> RunStatus:
        """The run's status, once every observer has seen the journal (none can fail a run)."""
        for observe in self.observers:
            try:
                observe(self.journal, run_id)
            except Exception as exc:  # an observer never stops a run
                log.warning("run %s: observer %r failed: %s", run_id, observe,
                            self.redactor.text(str(exc)))
        return run_status(self.journal, run_id)

    # -- one tick -------------------------------------------------------------------------------
    def _load(self, run_id: str) -> LiveRun:
        if run_id not in self._runs:
            self._runs[run_id] = load_run(self.journal, run_id,
                                          max_attempts=self.retry.max_attempts)
        return self._runs[run_id]

    def _call_hook(self, point: str, rs: LiveRun, job: str) -> None:
        if self.hook is not None:
            self.hook(point, rs.id, job)

    def _on_site(self, rs: LiveRun, j: LiveJob,
                 call: Callable[[ComputeBackend], _T]) -> _T | _NoAnswer:
        """Call the backend of ``j``'s site. A site that is down triggers failover and any other
        backend error counts against the step; both return :data:`_NO_ANSWER`."""
        assert j.site is not None
        try:
            return call(self.backends[j.site])
        except SiteUnreachableError as exc:
            self._failover.site_down(rs, exc.site or j.site, exc)
        except BackendError as exc:
            self._states.call_error(rs, j, exc)
        return _NO_ANSWER

    def _advance(self, rs: LiveRun, j: LiveJob) -> None:
        if j.state == StepState.INTENT:
            self._adopt_or_submit(rs, j)
            return
        if j.state not in POLLED_STATES or j.handle is None:
            return
        handle = j.handle
        state = self._on_site(rs, j, lambda b: b.status(handle))
        if isinstance(state, _NoAnswer):
            return
        j.call_errors = 0
        self._call_hook("after_status", rs, j.name)
        self._states.observed(rs, j, state)

    def _adopt_or_submit(self, rs: LiveRun, j: LiveJob) -> None:
        if self.clock() < j.not_before:
            return
        sid = submission_id(rs.id, j.name, j.attempt)
        found = self._on_site(rs, j, lambda b: b.find(sid))
        if isinstance(found, _NoAnswer):
            return
        if found is not None:
            self.journal.record_event(rs.id, "adopted", j.name, submission_id=sid)
            self._states.submitted(rs, j, found)
            return
        self._submit(rs, j)

    def _contract(self, rs: LiveRun, job: str, attempt: int,
                  placement: JobPlacement) -> JobContract:
        paths = self._staging.paths(rs, job, placement)
        return JobContract(run_id=rs.id, job=job, attempt=attempt, site=placement.site,
                           location=placement.location, policy_hash=rs.policy_hash,
                           plan_hash=plan_hash(rs.placements), output_dir=paths.output_dir,
                           inputs=paths.inputs, outputs=paths.outputs)

    def _submit(self, rs: LiveRun, j: LiveJob) -> None:
        """Submit the step whose intent is recorded (idempotent by submission id)."""
        placement = rs.placements[j.name]
        env = self._contract(rs, j.name, j.attempt, placement).environment()
        sid = submission_id(rs.id, j.name, j.attempt)
        spec = rs.pipeline.job(j.name)
        handle = self._on_site(rs, j, lambda b: b.submit(spec, placement, submission_id=sid,
                                                         env=env))
        if isinstance(handle, _NoAnswer):
            return
        self._call_hook("after_submit", rs, j.name)
        self._states.submitted(rs, j, handle)

    def _submit_ready(self, rs: LiveRun) -> None:
        self._capacity = None  # the on-prem cluster is asked again each tick
        self._starts.pop(rs.id, None)  # and the journal once, not once per decision
        in_flight = sum(1 for j in rs.jobs.values() if j.state in ACTIVE_STEP_STATES)
        for name in rs.order:
            if in_flight >= self.max_concurrency or rs.state != RunState.RUNNING:
                return
            j = rs.jobs[name]
            if j.state not in (WAITING, RETRY_WAIT) or self.clock() < j.not_before:
                continue
            if any(rs.jobs[p].state != StepState.SUCCEEDED for p in rs.graph.predecessors(name)):
                continue
            placement = rs.placements[name]
            if self.strategy is not None:
                chosen = self._ask_strategy(rs, name, placement)
                if chosen is None:  # waits for the on-prem pool: asked again next tick
                    continue
                placement = chosen
            attempt = j.attempt + 1
            try:
                self._staging.check_eligible(rs, name, placement)
                if placement != rs.placements[name]:
                    placement = self._move(rs, name, placement.site, spot=placement.spot)
                manifest = self._contract(rs, name, attempt, placement).manifest()
                self._staging.move_inputs(rs, name, placement)
            except ResidencyError as exc:
                self._states.stick(rs, j, StepState.STUCK, str(exc))
                continue
            except CopyStopped as exc:  # a cancel came in: the next tick stops the rest
                self.journal.record_event(rs.id, "copies_stopped", name, reason=str(exc))
                rs.state = self.journal.run(rs.id).state
                return
            except BackendError as exc:
                self._states.call_error(rs, j, exc)
                continue
            self._states.intent(rs, j, attempt, placement, manifest)
            in_flight += 1
            self._call_hook("after_intent", rs, name)
            self._submit(rs, j)

    # -- the online strategy (placer controller --strategy) --------------------------------------
    def _run_strategy(self, rs: LiveRun) -> _RunStrategy:
        """What the run's strategy works from: built once per run (and executor)."""
        got = self._steps.get(rs.id)
        if got is not None:
            return got
        assert self.strategy is not None
        sites = resolve_inventory(rs.inventory, self.catalog)
        onprem = [s for s in sites if s.kind == "onprem" and s.name in self.backends]
        if len(onprem) != 1:
            raise ExecutionError(
                f"run {rs.id}: an online strategy needs exactly one on-prem site with a "
                f"compute backend; the inventory has {', '.join(s.name for s in onprem) or 'none'}")
        if not isinstance(self.backends[onprem[0].name], CapacityReporter):
            raise ExecutionError(
                f"run {rs.id}: the compute backend of on-prem site {onprem[0].name} cannot report "
                "its free GPUs (no CapacityReporter); an online strategy does not guess them")
        gpu_of = {n: p.gpu for n, p in rs.placements.items()}
        first = self.journal.plans(rs.id)[0].plan
        deadline = None if first.deadline_h is None else \
            self.journal.run(rs.id).created / 3600.0 + first.deadline_h
        requests = job_requests(rs.pipeline, gpu_of, submitted_h=self.wall_clock() / 3600.0,
                                deadline_h=deadline, spot=self.spot_safety_net)
        eligibility = evaluate_policies(rs.pipeline, sites, rs.policies)
        step = StrategyStep(self.strategy(), requests, eligibility=eligibility,
                            safety_net=self.spot_safety_net)
        # What an earlier process decided: a job still waiting goes on counting its wait
        # from when it began (a controller that restarts does not wait again from zero).
        step.restore([(e.job, e.ts / 3600.0, e.data)
                      for e in self.journal.events(rs.id, "strategy_decision")],
                     {n for n, j in rs.jobs.items() if j.state in (WAITING, RETRY_WAIT)})
        got = self._steps[rs.id] = _RunStrategy(
            step=step, onprem=onprem[0], sites=tuple(sites), eligibility=eligibility)
        return got

    def _ask_strategy(self, rs: LiveRun, name: str,
                      planned: JobPlacement) -> JobPlacement | None:
        """The strategy's decision for ready job ``name``, recorded with its reason: where to
        submit it (not yet checked: the residency guard does that next), or None to wait."""
        ctx = self._run_strategy(rs)
        # A spot attempt that failed (preempted, or no capacity): the strategy is told, and the
        # retry is never on spot.
        stopped = planned.site if (rs.jobs[name].state == RETRY_WAIT and planned.spot) else None
        d = ctx.step.decide(name, lambda: self._live_view(rs, ctx, name), stopped=stopped)
        if ctx.step.changed(d):
            self._record_decision(rs, d)
        if d.site is None:
            return None
        if d.site == planned.site and d.spot == planned.spot:
            return planned
        site = next((s for s in ctx.sites if s.name == d.site), None)
        location = planned.location if site is None else site.location.key
        # Provisional, for the guard: the planner prices it once the guard has passed (_move).
        # A plan's spot placement is not the strategy's: on demand unless it chose spot.
        return planned.model_copy(update={"site": d.site, "location": location,
                                          "spot": d.spot})

    def _record_decision(self, rs: LiveRun, d: StepDecision) -> None:
        """The decision as a ``strategy_decision`` event, and in the decision log (if the
        executor has one) as a ``strategy`` record under the plan that placed the job."""
        self.journal.record_event(rs.id, "strategy_decision", d.job, decision=d.kind,
                                  site=d.site, reason=d.reason, **d.facts)
        log.info("run %s: %s: %s%s: %s", rs.id, d.job, d.kind,
                 f" on {d.site}" if d.site else "", self.redactor.text(d.reason))
        if self.decision_log is None:
            return
        from placer import decisions

        def choice() -> tuple[Plan, Pipeline, decisions.StrategyChoice]:
            plans = self.journal.plans(rs.id)  # the first places every job (start checks it)
            rec = next((p for p in reversed(plans) if d.job in p.plan.jobs), plans[0])
            facts = dict(d.facts)
            typed = {k: facts.pop(k, None) for k in ("waited_h", "predicted_wait_h",
                                                      "allowance_h", "burst")}
            made = decisions.StrategyChoice(job=d.job, decision=d.kind, site=d.site,
                                            reason=d.reason, plan_seq=rec.seq,
                                            policy=facts.pop("policy", None) or {},
                                            facts=facts, **typed)
            if set(rec.plan.jobs) == {j.name for j in rs.pipeline.jobs}:
                return rec.plan, rs.pipeline, made
            # a plan of a strategy move: the pipeline cut to its jobs, as _move planned it
            return rec.plan, Pipeline(name=rs.pipeline.name, datasets=rs.pipeline.datasets,
                                      jobs=tuple(j for j in rs.pipeline.jobs
                                                 if j.name in rec.plan.jobs)), made

        self._log_decision(rs, choice, kind="strategy")

    def _log_decision(self, rs: LiveRun, made: Callable[[], tuple[Plan, Pipeline, Any]], *,
                      kind: Literal["replan", "strategy"], **options: Any) -> None:
        """Append a decision about run ``rs`` to the decision log, stamped with the wall clock
        (the journal's). A log that cannot be written stops nothing (the journal holds the
        decision); that it was not logged is recorded, as a failover's re-plan does."""
        from placer import decisions

        assert self.decision_log is not None
        try:
            plan, pipeline, strategy = made()
            decisions.append(decisions.record(
                plan, pipeline=pipeline, inventory=rs.inventory, policies=rs.policies,
                kind=kind, run=rs.id, strategy=strategy,
                clock=lambda: datetime.fromtimestamp(self.wall_clock(), UTC), **options),
                self.decision_log)
        except (PlacerError, ValueError) as exc:  # ValueError: a record that does not validate
            self.journal.record_event(rs.id, "decision_log_failed", None,
                                      error=self.redactor.text(str(exc)))
            log.warning("run %s: %s decision not logged: %s", rs.id, kind, exc)

    def _live_view(self, rs: LiveRun, ctx: _RunStrategy, name: str) -> LiveView:
        """The clusters as they are now, for one decision about ``name``."""
        onprem = ctx.onprem
        if self._capacity is None:
            backend = self.backends[onprem.name]
            assert isinstance(backend, CapacityReporter)
            self._capacity = backend.gpus()
        step = ctx.step
        now_h = self.wall_clock() / 3600.0
        pending: list[JobRequest] = []
        running: list[tuple[float, int]] = []
        reserved = 0
        starts = self._starts.get(rs.id)
        if starts is None:  # when running jobs started: our own submissions do not change it
            starts = self._starts[rs.id] = {s.job: s for s in self.journal.steps(rs.id)}
        for n, j in rs.jobs.items():
            p = rs.placements.get(n)
            if j.site != onprem.name or p is None:
                continue
            req = step.requests[n]
            if j.state in (StepState.INTENT, StepState.SUBMITTED):
                # Submitted this tick, after the cluster reported: its GPUs are not free, and
                # it is taken to start now.
                reserved += req.gpus
                running.append((now_h + req.estimate_h, req.gpus))
            elif j.state == StepState.PENDING:  # in the cluster's pending demand too: the
                pending.append(req)               # view counts it once, in the cluster's order
            elif j.state == StepState.RUNNING:
                rec = starts.get(n)
                began = (rec.started or rec.updated) / 3600.0 if rec is not None else now_h
                running.append((began + req.estimate_h, req.gpus))
        queued = [q for q in step.queued() if q[2].name != name]
        sites = [s for s in ctx.sites if s.kind == "cloud" and s.name in self.backends
                 and s.name not in rs.excluded]
        requests = tuple(step.requests.values())
        datasets = {d.name: DatasetInfo(d.name, d.location, d.size, dict(d.tags))
                    for d in rs.pipeline.datasets if d.location is not None}
        return LiveView(
            now_h=now_h, onprem=onprem, capacity=self._capacity, cloud=sites,
            gpu=rs.placements[name].gpu,
            allowed=allowed_by_policy(ctx.eligibility, requests, onprem.name,
                                      [s.name for s in sites]),
            requests=requests, queued=queued, running=running, datasets=datasets,
            replicas={d.name: d.replicas for d in rs.pipeline.datasets},
            output_at={step.requests[n].id: rs.placements[n].location
                       for n, j in rs.jobs.items() if j.state == StepState.SUCCEEDED},
            locations={s.location.key: s.location for s in ctx.sites},
            network=rs.inventory.network, catalog=self.catalog, reserved=reserved,
            spot=self.spot_safety_net, own_pending=pending)

    def _move(self, rs: LiveRun, name: str, site: str, *, spot: bool = False) -> JobPlacement:
        """Place ``name`` on ``site`` (the strategy's choice, past the residency guard), priced
        by the planner with every finished or running job pinned where it ran, and record the
        plan in the journal: its outputs are found there from now on, by this process or any
        other. A site the planner cannot place it on is refused (ResidencyError: STUCK).
        ``spot``: the strategy chose spot (past the safety net), and the planner may price it
        so; otherwise the job is planned as not tolerating preemption: on demand."""
        if site not in self.backends or site in rs.excluded:
            why = "it went down during the run" if site in rs.excluded else \
                "no compute backend serves that site"
            raise ResidencyError(f"refused to run {name} on {site}, where the strategy sent "
                                 f"it: {why}")
        pinned = {n: j.site for n, j in rs.jobs.items()
                  if j.site is not None and (j.state == StepState.SUCCEEDED
                                             or j.state in ACTIVE_STEP_STATES)}
        pinned[name] = site
        keep = tuple(job.model_copy(update={"spot": spot}) if job.name == name else job
                     for job in rs.pipeline.jobs if job.name in pinned)
        sub = Pipeline(name=rs.pipeline.name, datasets=rs.pipeline.datasets, jobs=keep)
        others = {s.name for s in resolve_inventory(rs.inventory, self.catalog)
                  if s.name not in self.backends} | rs.excluded
        new = make_plan(sub, rs.inventory, rs.policies, objective=rs.objective,
                        catalog=self.catalog, pinned=pinned, exclude_sites=sorted(others))
        if new.status != "placed" or name not in new.jobs or new.jobs[name].site != site \
                or (new.jobs[name].spot and not spot):
            raise ResidencyError(f"refused to run {name} on {site}, where the strategy sent "
                                 f"it: the planner cannot place it there ({new.status}: "
                                 + "; ".join(new.reasons) + ")")
        self.journal.record_plan(rs.id, new, f"strategy: {name} to {site}")
        if self.decision_log is not None:  # a re-plan, logged as a failover's is
            self._log_decision(rs, lambda: (new, sub, None), kind="replan", pinned=pinned,
                               exclude_sites=sorted(others))
        rs.placements[name] = new.jobs[name]
        return new.jobs[name]

    # -- cancel ---------------------------------------------------------------------------------
    def _cancel(self, rs: LiveRun) -> None:
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
            self._states.cancelled(rs, j)
        if failed:
            self.journal.set_run_state(rs.id, RunState.CANCELLING,
                                       "could not stop yet: " + ", ".join(sorted(failed)))
        else:
            self._states.set_run_state(rs, RunState.CANCELLED, "cancelled")


@dataclass
class _RunStrategy:
    """One run's strategy and the fixed things its views are built from."""

    step: StrategyStep
    onprem: ResolvedSite
    sites: tuple[ResolvedSite, ...]
    eligibility: Mapping[str, JobEligibility]
