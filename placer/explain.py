"""Human explanations of a Plan: per job, the choice, its cost, and why not the other sites.

Importing this module makes :meth:`placer.models.Plan.explain` use :func:`explain_plan`
(``import placer`` imports it), so the model itself never imports its presentation.
"""

from __future__ import annotations

from placer.models import Plan, register_explainer
from placer.units import format_duration


def _money(x: float) -> str:
    return f"${x:,.2f}"


def _signed(x: float, unit: str) -> str:
    if unit == "$":
        return f"{'+' if x >= 0 else '-'}${abs(x):,.2f}"
    return f"{'+' if x >= 0 else '-'}{format_duration(abs(x))}"


def summary(plan: Plan) -> str:
    """One paragraph: status, objective, cost, makespan, optimality."""
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
    lines.append(f"policy set {plan.policy_hash}")
    for r in plan.reasons:
        lines.append(f"  - {r}")
    return "\n".join(lines)


def explain_job(plan: Plan, job: str) -> str:
    """Why ``job`` runs where it does, and for every other site why not."""
    if job not in plan.verdicts and job not in plan.jobs:
        known = ", ".join(sorted(set(plan.verdicts) | set(plan.jobs)))
        raise KeyError(f"no job {job!r} in this plan (jobs: {known})")
    out: list[str] = []
    p = plan.jobs.get(job)
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
        out.append(f"{job}: not placed ({plan.status})")
    tags = plan.tags.get(job, {})
    if tags:
        out.append("  tags: " + ", ".join(f"{k}={'|'.join(v)}" for k, v in sorted(tags.items())))
    verdicts = plan.verdicts.get(job, {})
    others = {s: v for s, v in verdicts.items() if not (p and s == p.site)}
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
        elif not v.rules:
            out.append(f"  {site}: {v.note or 'not eligible'}")
    return "\n".join(out)


def explain_plan(plan: Plan, job: str | None = None) -> str:
    """The summary, then every job (or just ``job``) explained."""
    if job is not None:
        return explain_job(plan, job)
    parts = [summary(plan)]
    if any(v.delta_cost_usd for row in plan.verdicts.values() for v in row.values()):
        parts.append("(For an eligible site that lost, the change in the plan's cost and makespan "
                     "if the job moved there, every other job held where it is.)")
    for name in plan.jobs or plan.verdicts:
        parts.append(explain_job(plan, name))
    return "\n\n".join(parts)


register_explainer(explain_plan)
