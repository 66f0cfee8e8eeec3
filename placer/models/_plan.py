"""The Plan: what the scheduler decided, kept apart from what the user declared.

A plan is a value: "no site may run this job" is a plan with status ``infeasible`` and its
reasons, never an exception. Its JSON form (``placer plan --json``) is a stable interface.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Literal

from pydantic import Field

from placer.models._base import Model

PlanStatus = Literal["placed", "held", "infeasible"]
Objective = Literal["cost", "time"]


class JobPlacement(Model):
    """Where and when one job runs, and what it costs there."""

    site: str
    location: str
    gpu: str
    gpus: int
    nodes: int = Field(description="cloud nodes rented (on-prem: 0)")
    spot: bool
    start_h: float
    end_h: float
    cost_usd: float = Field(description="compute + data moved into the job")
    compute_usd: float
    transfer_usd: float
    transfer_h: float = Field(description="longest inbound transfer before the job starts")
    penalty_usd: float = Field(default=0.0, description="soft-preference penalty (objective only)")


class SiteVerdict(Model):
    """How one site fared for one job: rejected by rules, or eligible and how it compared."""

    eligible: bool
    rules: tuple[str, ...] = Field(default=(), description="ids of the rules that rejected it")
    messages: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    best_option: str | None = Field(default=None, description="cheapest way to run it here")
    delta_cost_usd: float | None = Field(
        default=None, description="plan cost change if the job moved here, others fixed"
    )
    delta_makespan_h: float | None = Field(
        default=None,
        description="makespan change if the job moved here, others fixed (on-prem pools "
        "assumed to have room: capacity is not re-checked)",
    )
    note: str | None = None
    audit: tuple[str, ...] = Field(
        default=(), description="rules in audit or warn mode that would have rejected it"
    )
    waived: tuple[str, ...] = Field(
        default=(), description="rules that would reject it, waived: 'rule by exception (ticket)'"
    )


class JobEvidence(Model):
    """What the policies did for one job beyond accepting or rejecting sites."""

    derived: tuple[str, ...] = Field(default=(), description="tags derived by tagging rules")
    removed: tuple[str, ...] = Field(default=(), description="tags removed, and who approved")
    ignored: tuple[str, ...] = Field(default=(), description="removals no policy approves")
    expired: tuple[str, ...] = Field(default=(), description="exceptions ignored as expired")
    limits: tuple[str, ...] = Field(default=(), description="options removed by limit rules")


class DatasetEvidence(Model):
    """What was known of one dataset when the plan was made, each fact with its provenance.

    ``provenance`` maps a fact (``location``, ``replicas``, ``storage_tags``, ``size``,
    ``tags``) to how it was obtained: ``written in the pipeline``, or the store's call and
    when (``GetBucketLocation(acme-eu) @ 2026-12-06T10:00:00Z``). ``placer submit`` asks the
    stores again and refuses to run if location, replicas or storage tags changed since.
    """

    uri: str | None = None
    location: str | None = Field(default=None, description="primary copy; unknown = held")
    replicas: tuple[str, ...] = Field(default=(), description="other locations with a copy")
    size_gb: float = 0.0
    tags: dict[str, str] = Field(default_factory=dict, description="written in the pipeline")
    storage_tags: dict[str, str] = Field(
        default_factory=dict, description="tags or labels the store reports"
    )
    provenance: dict[str, str] = Field(
        default_factory=dict, description="fact → how it was obtained (call, time, file)"
    )


class Plan(Model):
    """A placement for every job of a pipeline, with the evidence behind it."""

    status: PlanStatus
    objective: Objective
    optimal: bool
    cost_usd: float
    makespan_h: float
    policy_hash: str
    jobs: dict[str, JobPlacement] = Field(default_factory=dict)
    rejected: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict, description="job → site → ids of the rules that rejected it"
    )
    reasons: list[str] = Field(default_factory=list)
    pipeline: str = "pipeline"
    deadline_h: float | None = None
    budget_usd: float | None = None
    solver: str = ""
    gap: float | None = None
    lower_bound: float | None = None
    solve_time_s: float = 0.0
    tags: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict, description="job → tags it carries (inherited along the DAG)"
    )
    verdicts: dict[str, dict[str, SiteVerdict]] = Field(default_factory=dict)
    rules: dict[str, str] = Field(default_factory=dict, description="rule id → message")
    evidence: dict[str, JobEvidence] = Field(
        default_factory=dict, description="job → tagging, declassification, exceptions, limits"
    )
    decided_on: date | None = Field(
        default=None, description="the day the policies were applied (exceptions expire)"
    )
    warnings: list[str] = Field(
        default_factory=list, description="what warn-mode rules would have rejected"
    )
    budget_charges: dict[str, float] = Field(
        default_factory=dict, description="budget key → USD this plan charges to it"
    )
    datasets: dict[str, DatasetEvidence] = Field(
        default_factory=dict, description="dataset → its facts and their provenance"
    )

    def explain(self, job: str | None = None) -> str:
        """Plain-text explanation: per job, the choice, its cost and why not the other sites.

        The text is :func:`placer.explain.explain_plan`'s: the explainer registers itself when
        ``placer`` is imported (which importing any part of placer does), so the model never
        imports its presentation.
        """
        if _explainer is None:  # pragma: no cover - placer/__init__ always registers it
            raise RuntimeError("no plan explainer registered; import placer.explain")
        return _explainer(self, job)


Explainer = Callable[[Plan, str | None], str]
_explainer: Explainer | None = None


def register_explainer(explainer: Explainer) -> None:
    """Make :meth:`Plan.explain` use ``explainer`` (:mod:`placer.explain` registers its own)."""
    global _explainer
    _explainer = explainer
