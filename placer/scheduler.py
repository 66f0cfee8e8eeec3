"""plan(): policies decide where a job may run, the optimizer decides where it should.

The steps, each pure (no I/O beyond reading the embedded catalog once):

1. resolve the inventory against the catalog (every site gets a full Location and offers);
2. evaluate the policies: per job the eligible sites, the rules that rejected the others, soft
   penalties, the tags it inherits, or why it is held;
3. turn every eligible (site, GPU type, on-demand/spot) into an optimizer :class:`Option`,
   priced by :mod:`placer.pricing`, the one cost model (``docs/cost-model.md``) that the
   simulator and the online strategies use too;
4. solve; 5. assemble a :class:`Plan` with the evidence: rejected sites and rules, and for each
   eligible site that lost, how the plan's cost and makespan would change if the job moved
   there (exact, from the solution in one pass: :func:`placer.optimizer.move_deltas`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, date, datetime

from placer.catalog import Catalog, default_catalog, default_inventory, resolve_inventory
from placer.limits import apply_caps, check_budgets
from placer.models import (
    Inventory,
    JobEvidence,
    JobPlacement,
    Location,
    Objective,
    Pipeline,
    Plan,
    ResolvedSite,
    SiteVerdict,
)
from placer.optimizer import (
    Edge,
    Problem,
    Read,
    Solution,
    move_deltas,
    pareto_frontier,
    solve,
)
from placer.policy import JobEligibility, PolicySet, check_references, policy_hash
from placer.policy import evaluate as evaluate_policies
from placer.pricing import Candidate, job_candidates, links
from placer.units import parse_duration, parse_price

__all__ = ["Candidate", "build_problem", "plan", "plan_frontier"]


def plan(
    pipeline: Pipeline,
    inventory: Inventory | None = None,
    policies: PolicySet | None = None,
    *,
    objective: Objective = "cost",
    deadline: str | float | None = None,
    budget: str | float | None = None,
    catalog: Catalog | None = None,
    time_limit_s: float = 60.0,
    pinned: Mapping[str, str] | None = None,
    exclude_sites: Collection[str] = (),
    today: date | None = None,
    spent: Mapping[str, float] | None = None,
) -> Plan:
    """Place every job of ``pipeline`` on a site, respecting every policy.

    Args:
        pipeline: the jobs and datasets.
        inventory: the sites; the embedded default (an example on-prem site plus catalog cloud
            regions) when omitted.
        policies: the rules; none when omitted (every site eligible).
        objective: ``"cost"`` (min cost, optional ``deadline``) or ``"time"`` (min makespan,
            optional ``budget``).
        deadline: makespan bound, ``"12h"`` or hours.
        budget: cost bound, ``"$500"`` or USD.
        pinned: job → site for jobs that already ran or are running (re-planning after a
            failure): such a job may only stay where it is, and still counts for data movement.
        exclude_sites: sites no unpinned job may use (a site that went down). Both only ever
            narrow the policy-eligible sets, never widen them.
        today: the day the policies are applied on (exceptions expire; budget periods); today
            in UTC when omitted. The plan records it.
        spent: budget key (:func:`placer.limits.budget_key`) → USD already charged this period
            by earlier runs (``Journal.budget_spend``); none when omitted.

    Returns:
        A Plan with status ``placed``, ``held`` (some input's location or classification is
        unknown) or ``infeasible`` (with reasons). Never raises for an unplaceable pipeline.
    """
    deadline_h = parse_duration(deadline) if deadline is not None else None
    budget_usd = parse_price(budget) if budget is not None else None

    def one(problem: Problem) -> list[Solution]:
        return [solve(problem, objective, deadline_h=deadline_h, budget_usd=budget_usd,
                      time_limit_s=time_limit_s)]

    return _plans(pipeline, inventory, policies, one, objective=objective,
                  deadline_h=deadline_h, budget_usd=budget_usd, catalog=catalog,
                  pinned=pinned, exclude_sites=exclude_sites, today=today, spent=spent)[0]


def plan_frontier(
    pipeline: Pipeline,
    inventory: Inventory | None = None,
    policies: PolicySet | None = None,
    *,
    max_points: int = 10,
    catalog: Catalog | None = None,
    time_limit_s: float = 60.0,
    today: date | None = None,
    spent: Mapping[str, float] | None = None,
) -> list[Plan]:
    """The cost–makespan Pareto frontier of ``pipeline``, as plans: cheapest first, fastest last.

    The policies, candidates and problem are built once; the optimizer's
    :func:`~placer.optimizer.pareto_frontier` traces the frontier (exact labels on chains and
    trees, else one min-cost solve per point with a tighter deadline). Every point is a whole
    plan with its evidence, as if planned with ``objective="cost"`` and a deadline at its
    makespan; a held or unplaceable pipeline gives one plan that says why.
    """

    def frontier(problem: Problem) -> list[Solution]:
        points = pareto_frontier(problem, max_points=max_points, time_limit_s=time_limit_s)
        if not points:
            return [solve(problem, "cost", time_limit_s=time_limit_s)]
        return points

    return _plans(pipeline, inventory, policies, frontier, objective="cost", deadline_h=None,
                  budget_usd=None, catalog=catalog, pinned=None, exclude_sites=(),
                  today=today, spent=spent, per_point_deadline=True)


def _plans(
    pipeline: Pipeline,
    inventory: Inventory | None,
    policies: PolicySet | None,
    solver: Callable[[Problem], list[Solution]],
    *,
    objective: Objective,
    deadline_h: float | None,
    budget_usd: float | None,
    catalog: Catalog | None,
    pinned: Mapping[str, str] | None,
    exclude_sites: Collection[str],
    today: date | None,
    spent: Mapping[str, float] | None,
    per_point_deadline: bool = False,
) -> list[Plan]:
    """The steps of :func:`plan`, with the solve step given: one plan per solution."""
    catalog = catalog or default_catalog()
    inventory = inventory or default_inventory()
    policies = policies or PolicySet(name="empty")
    sites = resolve_inventory(inventory, catalog)
    check_references(policies.references, sites, policies.declared_locations)
    day = today or datetime.now(UTC).date()
    elig = evaluate_policies(pipeline, sites, policies, today=day,
                             locations=_data_locations(pipeline, catalog))
    warnings = [f"{j}: on {site}: rule {h.rule!r} ({h.mode} mode) would reject it: {h.message}"
                for j, e in elig.items() for site, hits in e.audit.items() for h in hits
                if h.mode == "warn"]
    evidence = {j: JobEvidence(derived=e.derived, removed=e.removed, ignored=e.ignored,
                               expired=e.expired) for j, e in elig.items()
                if e.derived or e.removed or e.ignored or e.expired}
    base = Plan(
        status="placed",
        objective=objective,
        optimal=False,
        cost_usd=0.0,
        makespan_h=0.0,
        policy_hash=policy_hash(policies),
        pipeline=pipeline.name,
        deadline_h=deadline_h,
        budget_usd=budget_usd,
        tags={j: {k: sorted(v) for k, v in e.tags.items()} for j, e in elig.items()},
        rejected=_rejected(elig),
        rules={r.id: r.message for r in policies.rules},
        decided_on=day,
        warnings=warnings,
        evidence=evidence,
        datasets={d.name: {"uri": d.uri, "location": d.location, "replicas": d.replicas,
                           "size_gb": d.size, "tags": d.tags, "storage_tags": d.storage_tags,
                           "provenance": d.provenance} for d in pipeline.datasets},
    )

    held = [f"{j}: {reason}" for j in pipeline.topological_order() for reason in elig[j].held]
    if held:
        return [base.model_copy(update={"status": "held", "reasons": held,
                                        "verdicts": _verdicts(elig, sites, {}, None, None)})]

    by_name = {s.name: s for s in sites}
    candidates: dict[str, list[Candidate]] = {}
    reasons: list[str] = []
    capped: list[str] = []
    for job_name in pipeline.topological_order():
        e = elig[job_name]
        usable = _usable_sites(job_name, e.allowed, pinned or {}, exclude_sites)
        cands = job_candidates(pipeline.job(job_name), [by_name[s] for s in usable], e.penalties)
        cands, notes, hold = apply_caps(pipeline.job(job_name), cands, e, policies)
        if notes:
            old = evidence.get(job_name, JobEvidence())
            evidence[job_name] = old.model_copy(update={"limits": tuple(notes)})
        if hold is not None:
            capped.append(f"{job_name}: {hold}")
        elif not cands:
            reasons.append(_no_option_reason(pipeline, job_name, e, sites, usable,
                                             (pinned or {}).get(job_name)))
        candidates[job_name] = cands
    base = base.model_copy(update={"evidence": evidence})
    if capped:
        return [base.model_copy(update={"status": "held", "reasons": capped + reasons,
                                        "verdicts": _verdicts(elig, sites, candidates, None,
                                                              None)})]
    if reasons:
        return [base.model_copy(update={"status": "infeasible", "reasons": reasons,
                                        "verdicts": _verdicts(elig, sites, candidates, None,
                                                              None)})]

    problem = build_problem(pipeline, sites, inventory, catalog, candidates)
    return [_placed(base, sol, pipeline, elig, sites, candidates, problem, policies, spent, day,
                    per_point_deadline) for sol in solver(problem)]


def _placed(base: Plan, sol: Solution, pipeline: Pipeline,
            elig: Mapping[str, JobEligibility], sites: Sequence[ResolvedSite],
            candidates: Mapping[str, Sequence[Candidate]], problem: Problem,
            policies: PolicySet, spent: Mapping[str, float] | None, day: date,
            per_point_deadline: bool) -> Plan:
    """The plan of one solution: placements, budgets checked, verdicts with move deltas."""
    if per_point_deadline and sol.status != "infeasible":
        base = base.model_copy(update={"deadline_h": sol.makespan_h})
    common = {
        "solver": sol.method,
        "solve_time_s": sol.solve_time_s,
        "verdicts": _verdicts(elig, sites, candidates, problem, sol),
    }
    if sol.status == "infeasible":
        return base.model_copy(update={"status": "infeasible", "reasons": [sol.message], **common})
    jobs: dict[str, JobPlacement] = {}
    for name in pipeline.topological_order():
        js = sol.jobs[name]
        cand = candidates[name][js.option]
        opt = cand.option
        jobs[name] = JobPlacement(
            site=opt.site, location=opt.location, gpu=opt.gpu, gpus=cand.gpus, nodes=cand.nodes,
            spot=opt.spot, start_h=js.start_h, end_h=js.end_h,
            cost_usd=js.compute_usd + js.transfer_usd, compute_usd=js.compute_usd,
            transfer_usd=js.transfer_usd, transfer_h=js.transfer_h, penalty_usd=js.penalty_usd,
        )
    budgets = check_budgets({j.name: j for j in pipeline.jobs}, jobs, elig, policies,
                            spent or {}, day)
    if budgets.held or budgets.denied:
        return base.model_copy(update={
            "status": "held" if not budgets.denied else "infeasible",
            "reasons": budgets.denied + budgets.held, "cost_usd": sol.cost_usd,
            "budget_charges": budgets.charges, **common})
    return base.model_copy(update={
        "status": "placed", "optimal": sol.optimal, "cost_usd": sol.cost_usd,
        "makespan_h": sol.makespan_h, "jobs": jobs, "gap": sol.gap,
        "lower_bound": sol.lower_bound, "reasons": [sol.message] if sol.message else [],
        "budget_charges": budgets.charges, **common,
    })


def _data_locations(pipeline: Pipeline, catalog: Catalog) -> dict[str, Location]:
    """Catalog locations of every cloud copy of every dataset (on-prem ones are sites')."""
    out: dict[str, Location] = {}
    for d in pipeline.datasets:
        for key in d.copies:
            if key in catalog:
                out[key] = catalog.location(key)
    return out


def build_problem(pipeline: Pipeline, sites: Sequence[ResolvedSite], inventory: Inventory,
                  catalog: Catalog, candidates: Mapping[str, Sequence[Candidate]]) -> Problem:
    """The optimizer's view: options per job, data edges and reads, links, pool capacities."""
    locations = {s.location.key: s.location for s in sites}
    for d in pipeline.datasets:
        if d.location and d.location not in locations:
            locations[d.location] = catalog.location(d.location)
    edges = tuple(Edge(src=src, dst=dst, gb=gb) for dst, src, gb in pipeline.job_edges())
    reads = tuple(
        Read(job=j.name, location=d.location, gb=d.size)
        for j in pipeline.jobs for d in pipeline.dataset_reads(j)
        if d.location is not None
    )
    used = {c.option.location for cs in candidates.values() for c in cs}
    used |= {r.location for r in reads}
    capacity = {f"{s.name}/{p.gpu}": p.count for s in sites if s.kind == "onprem" for p in s.pools}
    return Problem(
        jobs=tuple(pipeline.topological_order()),
        options={j: tuple(c.option for c in cs) for j, cs in candidates.items()},
        edges=edges, reads=reads, links=links(locations, used, inventory.network, catalog),
        capacity=capacity,
    )


def _rejected(elig: Mapping[str, JobEligibility]) -> dict[str, dict[str, list[str]]]:
    return {
        j: {site: sorted({h.rule for h in hits}) for site, hits in e.rejected.items()}
        for j, e in elig.items() if e.rejected
    }


def _usable_sites(job: str, allowed: Sequence[str], pinned: Mapping[str, str],
                  exclude: Collection[str]) -> list[str]:
    """The allowed sites a re-plan may still use: a pinned job's own site (even if excluded:
    it already ran there), otherwise the allowed sites minus the excluded ones."""
    if job in pinned:
        return [s for s in allowed if s == pinned[job]]
    return [s for s in allowed if s not in exclude]


def _no_option_reason(pipeline: Pipeline, job: str, e: JobEligibility,
                      sites: Sequence[ResolvedSite], usable: Sequence[str],
                      pinned_to: str | None) -> str:
    j = pipeline.job(job)
    wanted = ", ".join(sorted(j.gpu_types))
    if not e.allowed:
        return (f"{job}: no site is allowed by the policies "
                f"(rejected: {', '.join(sorted(e.rejected)) or 'none'})")
    if pinned_to is not None and not usable:
        return f"{job}: pinned to {pinned_to}, which the policies do not allow for it"
    if not usable:
        # Excluded: down or without a backend. No other site is not a policy's doing.
        others = ("the others are rejected by the policies" if e.rejected
                  else "there is no other site")
        return f"{job}: every allowed site ({', '.join(e.allowed)}) is excluded; {others}"
    return (f"{job}: none of the allowed sites ({', '.join(usable)}) offers "
            f"{j.resources.gpus}× any of its GPU types ({wanted})")


_NO_OFFER = SiteVerdict(eligible=True, note="offers none of the job's GPU types in the needed size")
_ELIGIBLE = SiteVerdict(eligible=True)


def _verdicts(elig: Mapping[str, JobEligibility], sites: Sequence[ResolvedSite],
              candidates: Mapping[str, Sequence[Candidate]], problem: Problem | None,
              sol: Solution | None) -> dict[str, dict[str, SiteVerdict]]:
    """Per job and site: rejected by which rules, or eligible and what moving there would do.

    "What moving there would do" holds every other job where the plan put it. Both changes
    are exact and come from one pass over the problem (:func:`placer.optimizer.move_deltas`),
    never a re-solve per site; the makespan change ignores on-prem capacity (the schedule as
    :func:`placer.optimizer.evaluate` makes it), so it is the same whether or not a pool binds.
    """
    out: dict[str, dict[str, SiteVerdict]] = {}
    placed = sol is not None and sol.status != "infeasible" and problem is not None
    choice = {j: js.option for j, js in sol.jobs.items()} if placed and sol else {}
    moves = move_deltas(problem, choice) if placed and problem is not None else None
    rejected: dict[tuple[tuple[str, str, str], ...], SiteVerdict] = {}
    for job, e in elig.items():
        row: dict[str, SiteVerdict] = {}
        cands = candidates.get(job, ())
        at: dict[str, list[int]] = {}
        for i, c in enumerate(cands):
            at.setdefault(c.option.site, []).append(i)
        held = SiteVerdict(eligible=False, note="held: " + "; ".join(e.held)) if e.held else None
        m = moves.get(job) if moves is not None else None
        for site in sites:
            hits = e.rejected.get(site.name, ())
            if held is not None:
                row[site.name] = held
                continue
            if hits:
                key = tuple((h.rule, h.message, h.hint) for h in hits)
                verdict = rejected.get(key)
                if verdict is None:  # the same rules reject the same sites for many jobs
                    rules, messages, hints = zip(*key, strict=True)
                    verdict = rejected[key] = SiteVerdict(
                        eligible=False, rules=rules, messages=messages, hints=hints)
                row[site.name] = verdict
                continue
            idx = at.get(site.name)
            if not idx:
                row[site.name] = _NO_OFFER
                continue
            if m is None:
                row[site.name] = _ELIGIBLE
                continue
            if choice[job] in idx:
                row[site.name] = SiteVerdict(
                    eligible=True, best_option=cands[choice[job]].label, delta_cost_usd=0.0,
                    delta_makespan_h=0.0, note="chosen")
                continue
            # Cheapest here in the objective (cost + penalty), then real cost, then order.
            _, delta_usd, i = min((m.cost_usd[i] + m.penalty_usd[i], m.cost_usd[i], i)
                                  for i in idx)
            row[site.name] = SiteVerdict(
                eligible=True, best_option=cands[i].label, delta_cost_usd=delta_usd,
                delta_makespan_h=m.makespan_h[i])
        # What audit-mode rules and exceptions did, whatever the verdict.
        for site in sites if e.audit or e.waived else ():
            notes = {
                "audit": tuple(f"{h.rule} ({h.mode})" for h in e.audit.get(site.name, ())),
                "waived": tuple(f"{w.rule} by exception {w.exception} (ticket {w.ticket}, "
                                f"approved by {w.approved_by}, expires {w.expires})"
                                for w in e.waived.get(site.name, ())),
            }
            if any(notes.values()):
                row[site.name] = row[site.name].model_copy(update=notes)
        out[job] = row
    return out
