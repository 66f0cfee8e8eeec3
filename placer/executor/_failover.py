"""Failover: a site that goes down is dropped for the rest of the run, and the rest re-planned.

A backend that raises :class:`~placer.errors.SiteUnreachableError` takes its site out of the
run (a ``site_down`` event): the site's in-flight steps are LOST and every job not yet done is
re-planned with :func:`placer.plan`, ``pinned`` keeping finished and running jobs where they
are (their outputs live there) and ``exclude_sites`` dropping the site and every site without
a compute backend.

Re-planning only narrows: the policy-eligible sets are evaluated again from the run's stored
spec and sites are only ever removed from them. A job whose every eligible site is gone is
STUCK with the rules that keep it there, never moved elsewhere, and its descendants BLOCKED.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import networkx as nx

from placer.backends import ComputeBackend
from placer.catalog import Catalog, resolve_inventory
from placer.errors import PlacerError
from placer.executor._state import (
    ACTIVE_STEP_STATES,
    FINAL_JOB_STATES,
    RETRY_WAIT,
    WAITING,
    LiveRun,
    Transitions,
)
from placer.journal import Journal, StepState
from placer.models import Pipeline, Plan
from placer.policy import JobEligibility, PolicySet
from placer.policy import evaluate as evaluate_policies
from placer.scheduler import plan as make_plan
from placer.secrets import Redactor

__all__ = ["Failover", "stuck_reason"]

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
