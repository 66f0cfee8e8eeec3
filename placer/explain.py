"""Explanations of a Plan: per job, the choice, its cost, and why not the other sites.

Two forms of one content:

* :func:`explain_plan` (text, for people): the summary, then per job where it runs, what the
  policies did (derived and removed tags, ignored removals, waived rules, audit- and warn-mode
  rules that would have rejected a site, expired exceptions, limits), why each other site was
  rejected with a hint of what would make it eligible, and why a job is held (with what would
  lift the hold: a dataset's location or tag, a copy of data where it may not be, a cap, a
  budget);
* :func:`explain_data` (an :class:`Explanation`, for machines: ``placer explain --json``, and
  the per-job part of every record of the decision log, :mod:`placer.decisions`).

Hints come from the plan alone (no policy files are read): the rules' own hints, reworded
where a default-deny decided, plus what the plan's evidence shows (a job of the pipeline that
an approved transform lets remove the tag that made the rule apply).

Importing this module makes :meth:`placer.models.Plan.explain` use :func:`explain_plan`
(``import placer`` imports it), so the model itself never imports its presentation.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Literal

from pydantic import ConfigDict, Field

from placer.models import JobEvidence, JobPlacement, Model, Plan, SiteVerdict, register_explainer
from placer.units import format_duration

EXPLANATION_SCHEMA: Literal["placer/explanation/v1"] = "placer/explanation/v1"

JobStatus = Literal["placed", "held", "not placed"]


class BudgetUse(Model):
    """A budget a plan would overrun, with the figures (``held: budget 92% used``)."""

    key: str = Field(description="rule[label=value]@period-start")
    rule: str
    period: str
    spent_usd: float = Field(description="charged earlier in the period")
    cap_usd: float
    used_pct: float = Field(description="spent / cap, before this plan")
    needs_usd: float = Field(description="what this plan would charge")
    next_period: date | None = Field(default=None, description="when a new budget starts")
    message: str = ""


class JobExplanation(Model):
    """One job: where it runs (or why not), every site's verdict, and the policies' evidence."""

    status: JobStatus
    placement: JobPlacement | None = None
    eligible: tuple[str, ...] = Field(default=(), description="sites the policies admit")
    reasons: tuple[str, ...] = Field(default=(), description="why it is held or not placed")
    hints: tuple[str, ...] = Field(default=(), description="what would lift the hold")
    tags: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    sites: dict[str, SiteVerdict] = Field(
        default_factory=dict, description="site → verdict, its hints saying what would admit it")
    evidence: JobEvidence = Field(default_factory=JobEvidence)
    warnings: tuple[str, ...] = ()


class Explanation(Model):
    """``placer explain --json``: the plan's outcome, and every job explained."""

    model_config = ConfigDict(**Model.model_config, serialize_by_alias=True)  # "schema"

    schema_: Literal["placer/explanation/v1"] = Field(default=EXPLANATION_SCHEMA, alias="schema")
    pipeline: str
    status: str
    objective: str
    optimal: bool
    cost_usd: float
    makespan_h: float
    policy_hash: str
    decided_on: date | None = None
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    budget_charges: dict[str, float] = Field(default_factory=dict)
    budgets: tuple[BudgetUse, ...] = Field(default=(), description="budgets it would overrun")
    rules: dict[str, str] = Field(default_factory=dict, description="rule id → message")
    jobs: dict[str, JobExplanation] = Field(default_factory=dict)


def _money(x: float) -> str:
    return f"${x:,.2f}"


def _signed(x: float, unit: str) -> str:
    if unit == "$":
        return f"{'+' if x >= 0 else '-'}${abs(x):,.2f}"
    return f"{'+' if x >= 0 else '-'}{format_duration(abs(x))}"


# -- reading the plan's reasons ------------------------------------------------------------------
# The scheduler, the lineage and the limits write these reasons; each pattern here reads one
# shape, and anything else is shown as written (never dropped).

_BUDGET_RE = re.compile(
    r"^budget (?P<key>.+?): \$(?P<spent>[\d,]+\.\d+) of \$(?P<cap>[\d,]+\.\d+) used this "
    r"(?P<period>day|week|month) \((?P<pct>\d+)%\), and this plan needs \$(?P<needs>[\d,]+\.\d+)"
    r" more(?:: (?P<message>.*))?$", re.S)
_DATASET_RE = re.compile(r"dataset '([^']*)'")
_TAGS_RE = re.compile(r"required tags? (.+?); ")
_AT_RE = re.compile(r"has a copy at (\S+?),")
_RULE_RE = re.compile(r"rule '([^']*)'")
_LIMIT_RE = re.compile(r"limit '([^']*)'")
_CARRIES_RE = re.compile(r"it carries ([^=\s]+)=(\S+) \(from dataset ([^)]*)\)")
_REMOVED_RE = re.compile(r"^(\S+?)=(\S+) removed by job '([^']*)', approved by transform '([^']*)'")
_DENY_RE = re.compile(r"the (\w+) policies deny by default")


def _next_period(key: str, period: str) -> date | None:
    start = key.rpartition("@")[2]
    try:
        day = date.fromisoformat(start)
    except ValueError:
        return None
    if period == "day":
        return day + timedelta(days=1)
    if period == "week":
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def budget_uses(plan: Plan) -> tuple[BudgetUse, ...]:
    """The budgets ``plan`` would overrun, read from its reasons (empty when none)."""
    out = []
    for reason in plan.reasons:
        m = _BUDGET_RE.match(reason)
        if m is None:
            continue
        key, period = m["key"], m["period"]
        out.append(BudgetUse(
            key=key, rule=key.split("[", 1)[0].split("@", 1)[0], period=period,
            spent_usd=_number(m["spent"]), cap_usd=_number(m["cap"]), used_pct=float(m["pct"]),
            needs_usd=_number(m["needs"]), next_period=_next_period(key, period),
            message=(m["message"] or "").strip()))
    return tuple(out)


def _hold_hint(reason: str) -> str:
    """What would lift one hold, from its reason."""
    ds = _DATASET_RE.search(reason)
    name = f"dataset {ds[1]!r}" if ds else "the dataset"
    if reason.startswith("unknown-location:"):
        return (f"eligible once {name} has a known location (write `location:` or resolve it "
                "from its store)")
    if reason.startswith("missing-required-tag:"):
        tags = _TAGS_RE.search(reason)
        what = tags[1] if tags else "the required tags"
        return f"eligible once {name} carries {what} with a value"
    if reason.startswith("data-at-rest:"):
        at = _AT_RE.search(reason)
        where = f" at {at[1]}" if at else ""
        rule = _RULE_RE.search(reason)
        if rule:
            return (f"eligible once {name} has no copy{where}: delete that replica or move it "
                    f"where rule {rule[1]!r} lets the data be")
        return (f"eligible once placer can judge the copy of {name}{where} (a location the "
                "inventory or catalog knows), or that copy is removed")
    limit = _LIMIT_RE.search(reason)
    if reason.startswith("held by limit") and limit:
        return (f"eligible once an option costs no more than limit {limit[1]!r} allows (prices "
                "fall, a cheaper site or GPU type is added, or the cap is raised)")
    return ""


def _budget_hold(b: BudgetUse) -> tuple[str, str]:
    held = (f"held: budget {b.used_pct:.0f}% used ({b.key}: {_money(b.spent_usd)} of "
            f"{_money(b.cap_usd)} this {b.period}; this plan needs {_money(b.needs_usd)} more)")
    when = f" ({b.next_period})" if b.next_period else ""
    hint = (f"eligible when the next {b.period} starts{when} or budget {b.rule!r} is raised: "
            f"{_money(max(b.cap_usd - b.spent_usd, 0.0))} is left of it")
    return held, hint


def _removals(plan: Plan) -> list[tuple[str, str, str, str]]:
    """(key, value, job, transform) of every approved removal in the plan."""
    out = []
    for ev in plan.evidence.values():
        for line in ev.removed:
            m = _REMOVED_RE.match(line)
            if m:
                out.append((m[1], m[2], m[3], m[4]))
    return out


def _site_hints(job: str, verdict: SiteVerdict,
                removals: list[tuple[str, str, str, str]]) -> tuple[str, ...]:
    """The verdict's hints (one per rule), saying what would make the site eligible."""
    hints = list(verdict.hints) + [""] * (len(verdict.rules) - len(verdict.hints))
    for i, rule in enumerate(verdict.rules):
        if rule == "default-deny":
            msg = verdict.messages[i] if i < len(verdict.messages) else ""
            layer = _DENY_RE.search(msg)
            of = f" of the {layer[1]} layer" if layer else ""
            hints[i] = f"eligible if an allow rule{of} that matches this job names the site"
            continue
        for key, value, origin in _CARRIES_RE.findall(hints[i]):
            for rkey, rvalue, by, transform in removals:
                if by != job and rkey.casefold() == key.casefold() \
                        and rvalue.casefold() == value.casefold():
                    hints[i] += (f"; eligible if dataset {origin} is replaced by its "
                                 f"de-identified copy, the output of job {by!r} ({key}={value} "
                                 f"removed, approved by transform {transform!r})")
                    break
    return tuple(hints)


# -- the machine form ------------------------------------------------------------------------------


class _PlanFacts:
    """What every job's explanation reads from the plan as a whole, gathered once per plan, so
    explaining N jobs is linear in the plan rather than N times its reasons and evidence."""

    def __init__(self, plan: Plan) -> None:
        self.removals = _removals(plan)
        self.budgets = budget_uses(plan)
        self.reasons: dict[str, list[str]] = {}
        self.warnings: dict[str, list[str]] = {}
        # A job's lines start "job: " (job names hold neither ':' nor spaces).
        for lines, by_job in ((plan.reasons, self.reasons), (plan.warnings, self.warnings)):
            for line in lines:
                head, sep, _ = line.partition(": ")
                if sep:
                    by_job.setdefault(head, []).append(line)


def job_explanation(plan: Plan, job: str, *, facts: _PlanFacts | None = None
                    ) -> JobExplanation:
    """One job of ``plan``, explained (raises ``KeyError`` for a job the plan does not know).

    ``facts`` is the plan's :class:`_PlanFacts` when several jobs of one plan are explained.
    """
    if job not in plan.verdicts and job not in plan.jobs:
        known = ", ".join(sorted(set(plan.verdicts) | set(plan.jobs)))
        raise KeyError(f"no job {job!r} in this plan (jobs: {known})")
    facts = facts or _PlanFacts(plan)
    verdicts = plan.verdicts.get(job, {})
    sites = {s: (v.model_copy(update={"hints": _site_hints(job, v, facts.removals)}) if v.rules
                 else v) for s, v in verdicts.items()}
    own = tuple(r[len(job) + 2:] for r in facts.reasons.get(job, ()))
    held_by_data = any((v.note or "").startswith("held: ") for v in verdicts.values())
    held_by_cap = any(r.startswith("held by limit") for r in own)
    reasons, hints = list(own), [h for h in (_hold_hint(r) for r in own) if h]
    placement = plan.jobs.get(job)
    budgets = facts.budgets if placement is None else ()
    for b in budgets:
        held, hint = _budget_hold(b)
        reasons.append(held if plan.status == "held" else
                       "not placed: " + held.removeprefix("held: "))
        hints.append(hint)
    status: JobStatus = "placed" if placement is not None else (
        "held" if held_by_data or held_by_cap or (budgets and plan.status == "held")
        else "not placed")
    return JobExplanation(
        status=status,
        placement=placement,
        eligible=tuple(s for s, v in verdicts.items() if v.eligible),
        reasons=tuple(reasons),
        hints=tuple(dict.fromkeys(hints)),
        tags={k: tuple(v) for k, v in plan.tags.get(job, {}).items()},
        sites=sites,
        evidence=plan.evidence.get(job, JobEvidence()),
        warnings=tuple(facts.warnings.get(job, ())),
    )


def explain_data(plan: Plan, job: str | None = None) -> Explanation:
    """The machine form of :func:`explain_plan` (every job, or just ``job``)."""
    names = [job] if job is not None else list(dict.fromkeys([*plan.jobs, *plan.verdicts]))
    facts = _PlanFacts(plan)
    return Explanation(
        pipeline=plan.pipeline, status=plan.status, objective=plan.objective,
        optimal=plan.optimal, cost_usd=plan.cost_usd, makespan_h=plan.makespan_h,
        policy_hash=plan.policy_hash, decided_on=plan.decided_on,
        reasons=tuple(plan.reasons), warnings=tuple(plan.warnings),
        budget_charges=dict(plan.budget_charges), budgets=facts.budgets,
        rules=dict(plan.rules), jobs={n: job_explanation(plan, n, facts=facts) for n in names},
    )


# -- the text ------------------------------------------------------------------------------------


def summary(plan: Plan) -> str:
    """One paragraph: status, objective, cost, makespan, optimality, the policies' day."""
    lines = [f"Plan for pipeline {plan.pipeline!r}: {plan.status.upper()}"]
    target = "min cost" if plan.objective == "cost" else "min makespan"
    if plan.deadline_h is not None:
        target += f", deadline {format_duration(plan.deadline_h)}"
    if plan.budget_usd is not None:
        target += f", budget {_money(plan.budget_usd)}"
    lines.append(f"objective: {target}")
    if plan.status == "placed":
        proof = "proven optimal" if plan.optimal else (
            f"feasible, gap {plan.gap:.2%}" if plan.gap is not None else "feasible, not proven")
        lines.append(f"cost {_money(plan.cost_usd)}, makespan {format_duration(plan.makespan_h)}"
                     f" ({proof}; solver {plan.solver}, {plan.solve_time_s * 1000:.0f} ms)")
    lines.append(f"policy set {plan.policy_hash}"
                 + (f", decided on {plan.decided_on}" if plan.decided_on else ""))
    for r in plan.reasons:
        lines.append(f"  - {r}")
    for key, usd in sorted(plan.budget_charges.items()):
        lines.append(f"  charges budget {key}: {_money(usd)}")
    for w in plan.warnings:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


def _grouped(rows: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    return sorted(rows.items())


def _evidence_lines(ev: JobEvidence) -> list[str]:
    out: list[str] = []
    for title, items in (("derived tag", ev.derived), ("removed tag", ev.removed),
                         ("removal ignored", ev.ignored), ("exception ignored", ev.expired),
                         ("limit", ev.limits)):
        out.extend(f"  {title}: {item}" for item in items)
    return out


def explain_job(plan: Plan, job: str, *, facts: _PlanFacts | None = None) -> str:
    """Why ``job`` runs where it does, and for every other site why not."""
    x = job_explanation(plan, job, facts=facts)
    out: list[str] = []
    p = x.placement
    if p is not None:
        kind = "spot" if p.spot else ("on-demand" if p.nodes else "on-prem")
        shape = f"{p.gpus}× {p.gpu}" + (f" on {p.nodes} node(s)" if p.nodes else "")
        out.append(f"{job} → {p.site} ({p.location}), {shape}, {kind}, "
                   f"{format_duration(p.start_h)} → {format_duration(p.end_h)}")
        out.append(f"  cost {_money(p.cost_usd)} = compute {_money(p.compute_usd)} + data in "
                   f"{_money(p.transfer_usd)}" + (f" (transfer {format_duration(p.transfer_h)})"
                                                  if p.transfer_h > 0 else ""))
        if p.penalty_usd:
            out.append(f"  preference penalty {_money(p.penalty_usd)} (objective only)")
    else:
        out.append(f"{job}: {x.status} (plan {plan.status})")
    if x.tags:
        out.append("  tags: " + ", ".join(f"{k}={'|'.join(v)}" for k, v in sorted(x.tags.items())))
    out.extend(_evidence_lines(x.evidence))
    for reason in x.reasons:
        if not reason.startswith(("held", "not placed")):
            reason = ("held: " if x.status == "held" else "why: ") + reason
        out.append(f"  {reason}")
    for hint in x.hints:
        out.append(f"    hint: {hint}")
    waived: dict[str, list[str]] = {}
    audit: dict[str, list[str]] = {}
    for site, v in x.sites.items():
        for w in v.waived:
            waived.setdefault(w, []).append(site)
        for a in v.audit:
            audit.setdefault(a, []).append(site)
    for what, sites in _grouped(waived):
        out.append(f"  waived on {', '.join(sites)}: {what}")
    for what, sites in _grouped(audit):
        rule = what.split(" ", 1)[0]
        out.append(f"  would be rejected by {what}, not enforced: {', '.join(sites)}")
        if rule in plan.rules:
            out.append(f"    {plan.rules[rule]}")
    others = {s: v for s, v in x.sites.items() if not (p and s == p.site)}
    # Group rejections by rule: each rule's message and hint are said once, with its sites.
    by_rule: dict[str, tuple[list[str], str, str]] = {}
    for site, v in others.items():
        for rule, msg, hint in zip(v.rules, v.messages, v.hints, strict=False):
            by_rule.setdefault(rule, ([], msg, hint))[0].append(site)
    for rule, (sites, msg, hint) in sorted(by_rule.items()):
        out.append(f"  rejected by {rule}: {', '.join(sites)}")
        out.append(f"    {msg}")
        if hint:
            out.append(f"    hint: {hint}")
    for site, v in others.items():
        if v.eligible and v.delta_cost_usd is not None and v.best_option is not None:
            when = ("" if v.delta_makespan_h is None
                    else f", makespan {_signed(v.delta_makespan_h, 'h')}")
            out.append(f"  {site}: eligible; best there {v.best_option}: cost "
                       f"{_signed(v.delta_cost_usd, '$')}{when}")
        elif v.eligible:
            out.append(f"  {site}: eligible" + (f"; {v.note}" if v.note else ""))
        elif not v.rules and not (v.note or "").startswith("held: "):
            out.append(f"  {site}: {v.note or 'not eligible'}")
    if x.status == "held" and not x.eligible and any(
            (v.note or "").startswith("held: ") for v in x.sites.values()):
        out.append(f"  every site ({', '.join(x.sites)}): held")
    return "\n".join(out)


def explain_plan(plan: Plan, job: str | None = None) -> str:
    """The summary, then every job (or just ``job``) explained."""
    if job is not None:
        return explain_job(plan, job)
    parts = [summary(plan)]
    if any(v.delta_cost_usd for row in plan.verdicts.values() for v in row.values()):
        parts.append("(For an eligible site that lost, the change in the plan's cost and makespan "
                     "if the job moved there, every other job held where it is; the makespan "
                     "change assumes on-prem pools have room.)")
    facts = _PlanFacts(plan)
    for name in plan.jobs or plan.verdicts:
        parts.append(explain_job(plan, name, facts=facts))
    return "\n\n".join(parts)


register_explainer(explain_plan)
