"""Limit rules: cost caps per job and per hour, and budgets per period, applied to priced options.

The policy evaluator only says which limit rules match a job on which sites (it knows no
prices); this module, called by :func:`placer.plan`, applies them to the options the pricing
seam built:

* ``max_usd_per_job`` / ``max_usd_per_hour``: an option on a capped site that costs more is
  removed. With ``on_excess: deny`` the job may still run elsewhere (under the cap, or on a site
  the rule does not name); with ``on_excess: hold``, a job left with no option is *held* (it
  waits; the plan says by how much it is over) rather than infeasible.
* ``budget``: spend per period (UTC day, ISO week, calendar month) on the rule's sites, for all
  matching jobs together or per value of a job label. The plan's cost on those sites plus what
  earlier runs of the period were charged (``spent``, from the journal) must fit; otherwise the
  plan is held (``on_excess: hold``) or infeasible (``deny``), with the figures. Budgets are
  checked against the plan the optimizer chose, not optimised under.

Every plan records what it charges to each budget (:attr:`placer.models.Plan.budget_charges`),
so the next plan of the period can count it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from placer.models import Job, JobPlacement
from placer.policy import JobEligibility, PolicySet
from placer.pricing import Candidate

__all__ = ["BudgetOutcome", "apply_caps", "budget_key", "check_budgets", "period_start"]


def period_start(period: str, today: date) -> date:
    """The first day of the budget period holding ``today`` (weeks start on Monday).

    >>> period_start("month", date(2026, 12, 6)), period_start("week", date(2026, 12, 6))
    (datetime.date(2026, 12, 1), datetime.date(2026, 11, 30))
    """
    if period == "day":
        return today
    if period == "week":
        return today - timedelta(days=today.weekday())
    return today.replace(day=1)


def budget_key(rule: str, label_value: str | None, start: date) -> str:
    """The key a plan charges: ``rule@2026-12-01`` or ``rule[team=nlp]@2026-12-01``."""
    who = f"[{label_value}]" if label_value is not None else ""
    return f"{rule}{who}@{start.isoformat()}"


def apply_caps(job: Job, cands: Sequence[Candidate], elig: JobEligibility,
               policies: PolicySet) -> tuple[list[Candidate], list[str], str | None]:
    """Options of ``job`` left under its per-job and per-hour caps.

    Returns the options kept, one note per removed group (with the figures), and, when an
    ``on_excess: hold`` cap left the job with nothing, the reason it is held.
    """
    kept, notes = list(cands), []
    hold: str | None = None
    for site, rule_ids in sorted(elig.limits.items()):
        for rid in rule_ids:
            rule = policies.rule(rid)
            over = []
            for c in kept:
                if c.option.site != site:
                    continue
                usd = c.option.compute_usd
                per_h = usd / c.option.duration_h if c.option.duration_h > 0 else 0.0
                if rule.max_usd_per_job is not None and usd > rule.max_usd_per_job:
                    over.append((c, f"${usd:,.2f} > ${rule.max_usd_per_job:,.2f} per job"))
                elif rule.max_usd_per_hour is not None and per_h > rule.max_usd_per_hour:
                    over.append((c, f"${per_h:,.2f}/h > ${rule.max_usd_per_hour:,.2f}/h"))
            if not over:
                continue
            gone = {id(c) for c, _ in over}
            kept = [c for c in kept if id(c) not in gone]
            cheapest = min(over, key=lambda x: x[0].option.compute_usd)
            notes.append(f"limit {rid!r}: {len(over)} option(s) on {site} over the cap, the "
                         f"cheapest {cheapest[0].label} ({cheapest[1]}): {rule.message.strip()}")
            if rule.on_excess == "hold" and not kept:
                hold = (f"held by limit {rid!r}: every option left costs more than its cap "
                        f"(cheapest on {site}: {cheapest[1]}); the job waits until the cap or "
                        "the prices change")
    return kept, notes, hold


@dataclass(frozen=True)
class BudgetOutcome:
    """What a plan charges to each budget, and the budgets it would overrun."""

    charges: dict[str, float]
    held: list[str]
    denied: list[str]


def check_budgets(jobs: Mapping[str, Job], placements: Mapping[str, JobPlacement],
                  elig: Mapping[str, JobEligibility], policies: PolicySet,
                  spent: Mapping[str, float], today: date) -> BudgetOutcome:
    """Charge each job's cost to every budget whose limit rule caps it where it was placed."""
    charges: dict[str, float] = {}
    for name, p in placements.items():
        for rid in elig[name].limits.get(p.site, ()):
            rule = policies.rule(rid)
            if rule.budget is None:
                continue
            label = None
            if rule.budget.per_label is not None:
                label = jobs[name].labels.get(rule.budget.per_label, "")
                label = f"{rule.budget.per_label}={label}"
            key = budget_key(rid, label, period_start(rule.budget.period, today))
            charges[key] = charges.get(key, 0.0) + p.cost_usd
    held: list[str] = []
    denied: list[str] = []
    for key, usd in sorted(charges.items()):
        rid = key.split("[", 1)[0].split("@", 1)[0]
        rule = policies.rule(rid)
        assert rule.budget is not None
        before = spent.get(key, 0.0)
        cap = rule.budget.usd
        if before + usd > cap + 1e-9:
            used = 100.0 * before / cap
            why = (f"budget {key}: ${before:,.2f} of ${cap:,.2f} used this {rule.budget.period} "
                   f"({used:.0f}%), and this plan needs ${usd:,.2f} more: "
                   f"{rule.message.strip()}")
            (held if rule.on_excess == "hold" else denied).append(why)
    return BudgetOutcome(charges=charges, held=held, denied=denied)
