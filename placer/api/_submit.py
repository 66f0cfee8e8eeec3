"""``placer.submit``: plan a pipeline and run it in one call; a :class:`Run` handle on it.

It does what ``placer submit`` does, through the same library calls: datasets given by URI
are resolved through their stores and planned on, then asked again just before the run starts
(stale facts refused), the decision is appended to the decision log with the run id (nothing
is submitted when the log cannot be written), and the executor is built from the inventory
(:func:`placer.executor.submit`). The executor, backends and stores are imported here, inside
the call, so ``import placer`` stays light.

As with ``placer submit --wait``, the process that waits drives the run: a run nobody waits
on moves on under a controller (``placer controller``) or ``placer resume``.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from placer.api._builder import PipelineBuilder
from placer.api._function import FUNCTION_COMMAND, VALUE_FILE, storage_endpoints_env
from placer.errors import ExecutionError, NotPlacedError, PlacerError, RunFailedError
from placer.executor import Run as _ExecutorRun
from placer.models import Inventory, Pipeline, Plan

if TYPE_CHECKING:
    from placer.executor import RunStatus
    from placer.journal import Journal
    from placer.policy import PolicySet

__all__ = ["Run", "drive_until_done", "submit"]


class Run(_ExecutorRun):
    """A handle on one run: ``.id``, ``.plan``, ``.status()``, ``.wait()``, ``.logs(job)``,
    ``.cancel()``, and ``.result(job)`` for what a function job returned."""

    @property
    def plan(self) -> Plan:
        """The plan in force: the first, or the latest re-plan after a site failed."""
        return self.executor.journal.plans(self.id)[-1].plan

    def wait(self, timeout: float | None = None) -> RunStatus:
        """Drive the run until it ends (or wait for the process that drives it).

        Returns the final status when the run SUCCEEDED, or the status so far when
        ``timeout`` seconds passed first (``.done`` is then false).

        Raises:
            RunFailedError: the run ended FAILED, STUCK or CANCELLED; it names each job that
                did not succeed, with its reason, and carries the status.
        """
        st = drive_until_done(self, timeout)
        if st.done and st.state != "SUCCEEDED":
            raise RunFailedError(st)
        return st

    def result(self, job: str) -> Any:
        """What function job ``job`` returned, read from where it was written."""
        from placer.executor import run_status

        st = run_status(self.executor.journal, self.id)
        if job not in st.jobs:
            raise ExecutionError(f"no job {job!r} in run {self.id}")
        spec = self.executor.journal.run_spec(self.id).pipeline.job(job)
        if FUNCTION_COMMAND not in spec.command:
            raise ExecutionError(f"job {job!r} is not a function job (@placer.job); its "
                                 "outputs are files under its output URIs")
        if st.jobs[job].state != "SUCCEEDED":
            raise ExecutionError(f"job {job!r} of run {self.id} is {st.jobs[job].state}; it "
                                 "has no value")
        step = max((s for s in self.executor.journal.steps(self.id)
                    if s.job == job and s.state == "SUCCEEDED"), key=lambda s: s.attempt)
        ex = self.executor
        prefix = ex.layout.job_prefix(self.id, job, step.location or "")
        if prefix is None or ex.storage is None:
            raise ExecutionError(f"job {job!r} ran where no storage is configured; it wrote no "
                                 "value")
        [name] = spec.outputs
        uri = f"{prefix}{name}/{VALUE_FILE}"
        # The executor's own stores, built from the run's inventory, answer for the bucket.
        store: Any = ex.storage
        if hasattr(store, "store_for"):
            store = store.store_for(uri)
        return store.get_json(uri)


def drive_until_done(run: _ExecutorRun, timeout: float | None = None) -> RunStatus:
    """Drive ``run`` to its end (or until ``timeout`` seconds); while another process drives
    it (a controller took it), wait for that one, and drive again if it lets go. Returns the
    status either way (``placer submit --wait`` shows it)."""
    from placer.errors import RunLockedError

    deadline = None if timeout is None else time.monotonic() + timeout
    told = False
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return _ExecutorRun.wait(run, left)
        except RunLockedError as exc:
            st = run.status()
            if st.done or (deadline is not None and time.monotonic() >= deadline):
                return st
            if not told:
                import sys

                who = f"pid {exc.pid}" if exc.pid else "another process"
                print(f"note: {who} drives run {run.id}; waiting for it to end",
                      file=sys.stderr)
                told = True
            time.sleep(run.executor.poll_interval_s)


def submit(what: PipelineBuilder | Pipeline | Plan | str | Path, /, *,
           inventory: Inventory | str | Path, pipeline: Pipeline | None = None,
           policies: PolicySet | str | Path | Sequence[str | Path] | None = None,
           deadline: str | float | None = None, budget: str | float | None = None,
           objective: str = "cost", journal: Journal | str | Path | None = None,
           offline: bool = False, time_limit_s: float = 60.0, preflight: bool = True,
           **options: Any) -> Run:
    """Plan ``what`` and start running it; returns its :class:`Run` (``.wait()`` drives it).

    ``what`` is a pipeline: a builder, a :class:`Pipeline`, or a pipeline file; ``inventory`` and
    ``policies`` models or files (``policies`` a file, a folder, or several). ``journal`` is
    a :class:`Journal`, a path or ``postgresql://`` URL, or the default journal. ``options``
    go to the executor (``retry``, ``max_concurrency``, ``backends``, ``strategy``, …).

    ``submit(plan, pipeline=..., inventory=...)`` runs a plan already made (of ``pipeline``).

    Before anything is recorded, the plan's sites and jobs pass :func:`placer.preflight.
    preflight` as with ``placer submit`` (tokens, clusters, stores, pinned images; off with
    ``preflight=False`` or ``PLACER_NO_PREFLIGHT=1``).

    Raises:
        NotPlacedError: the plan is not ``placed`` (held, infeasible); it carries the plan.
        BackendError: the preflight found problems (each on its own line, with its fix).
        PlacerError: bad input, a store that cannot answer, a decision log that cannot be
            written (nothing is submitted then).
    """
    from placer import decisions, executor
    from placer.catalog import load_inventory
    from placer.journal import Journal

    inv = inventory if isinstance(inventory, Inventory) else load_inventory(inventory)
    pol = _policies(policies)
    j = journal if isinstance(journal, Journal) else Journal(journal)
    options.setdefault("decision_log", decisions.default_path())
    if isinstance(what, Plan):  # a plan made by the caller
        if pipeline is None:
            raise ExecutionError("submit(plan, ...) needs pipeline=, the pipeline it places")
        ex_run = executor.submit(what, pipeline=pipeline, inventory=inv, policies=pol,
                                 journal=j, **options)
        return Run(ex_run.executor, ex_run.id)
    if pipeline is not None:
        raise ExecutionError("pipeline= goes with a plan; submit(pipeline, ...) plans it")
    pipe, written, stores, plan = _plan(what, inv, pol, objective, deadline, budget,
                                        offline, time_limit_s, j)
    def log(run: str | None) -> None:
        rec = decisions.record(plan, pipeline=pipe, inventory=inv, policies=pol, kind="submit",
                               run=run, time_limit_s=time_limit_s, spent=_spent(pol, j))
        decisions.append(rec, options["decision_log"])

    if plan.status != "placed":
        with contextlib.suppress(PlacerError):  # as `placer submit`: logged if it can be
            log(None)
        raise NotPlacedError(plan)
    if not offline:  # never run on stale facts: the datasets' stores are asked again, now
        from placer.resolve import recheck_datasets

        pipe = recheck_datasets(plan, written, stores)
    if preflight and os.environ.get("PLACER_NO_PREFLIGHT", "").strip() not in (
            "1", "true", "yes"):
        _preflight(plan, pipe, inv)
    decisions.check_writable(options["decision_log"])  # refuse before acting
    ex_run = executor.submit(plan, pipeline=pipe, inventory=inv, policies=pol, journal=j,
                             **options)
    try:
        log(ex_run.id)
    except PlacerError as exc:  # checked writable just before: a disk filled meanwhile
        warnings.warn(f"run {ex_run.id} was submitted but its decision could not be logged: "
                      f"{exc}; the journal holds its plan and inputs", stacklevel=2)
    return Run(ex_run.executor, ex_run.id)


def _preflight(plan: Plan, pipe: Pipeline, inv: Inventory) -> None:
    """The plan's sites and jobs, checked before the run is recorded (``placer submit``'s)."""
    from placer.catalog import resolve_inventory
    from placer.errors import BackendError
    from placer.preflight import preflight

    problems = preflight(resolve_inventory(inv), pipe,
                         only={p.site for p in plan.jobs.values()}, jobs=set(plan.jobs))
    if problems:
        raise BackendError("preflight: " + "\npreflight: ".join(p.message for p in problems)
                           + f"\npreflight: {len(problems)} problem(s); nothing was submitted "
                           "or recorded")


def _policies(policies: Any) -> PolicySet | None:
    from placer.policy import PolicySet, load_policies

    if policies is None or isinstance(policies, PolicySet):
        return policies
    paths = [policies] if isinstance(policies, str | Path) else list(policies)
    return load_policies(*paths)


def _spent(pol: PolicySet | None, journal: Journal) -> dict[str, float]:
    """What earlier runs charged to the policies' budgets (none without a budget rule)."""
    if pol is None or not any(r.budget is not None for r in pol.rules):
        return {}
    return dict(journal.budget_spend())


def _plan(pipeline: Any, inv: Inventory, pol: PolicySet | None, objective: str,
          deadline: str | float | None, budget: str | float | None, offline: bool,
          time_limit_s: float, journal: Journal) -> tuple[Pipeline, Pipeline, Any, Plan]:
    """The pipeline as planned, as written, the stores asked, and the plan."""
    from placer.catalog import default_catalog, resolve_inventory
    from placer.errors import ConfigError
    from placer.loading import check_dataset_sites, load_pipeline
    from placer.resolve import resolve_for_plan
    from placer.scheduler import plan as make_plan

    if isinstance(pipeline, PipelineBuilder):
        pipe = pipeline.build()
    elif isinstance(pipeline, Pipeline):
        pipe = pipeline
    else:
        pipe = load_pipeline(pipeline)
    sites = resolve_inventory(inv, default_catalog())
    check_dataset_sites(pipe, sites)
    pipe = _with_store_endpoints(pipe, sites)
    if objective not in ("cost", "time"):
        raise ConfigError(f"objective must be cost or time, got {objective!r}")
    written = pipe
    pipe, stores = resolve_for_plan(pipe, sites, offline=offline)  # as `placer plan` does
    try:
        plan = make_plan(pipe, inv, pol, objective=objective,  # type: ignore[arg-type]
                           deadline=deadline, budget=budget, time_limit_s=time_limit_s,
                           spent=_spent(pol, journal))
    except ValueError as exc:
        if isinstance(exc, PlacerError):
            raise
        raise ConfigError(str(exc)) from None
    return pipe, written, stores, plan


def _with_store_endpoints(pipe: Pipeline, sites: Sequence[Any]) -> Pipeline:
    """Function jobs told where the on-prem sites' stores are (they write their value there);
    the pipeline recorded with the run says so."""
    env = storage_endpoints_env(sites)
    if not env or not any(FUNCTION_COMMAND in j.command for j in pipe.jobs):
        return pipe
    jobs = []
    for j in pipe.jobs:
        if FUNCTION_COMMAND in j.command:
            rt = dict(j.runtime_env or {})
            rt["env_vars"] = {**dict(rt.get("env_vars") or {}), **env}
            j = j.model_copy(update={"runtime_env": rt})
        jobs.append(j)
    return Pipeline(name=pipe.name, datasets=pipe.datasets, jobs=tuple(jobs))
