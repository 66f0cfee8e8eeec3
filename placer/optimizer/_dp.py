r"""Exact dynamic programming for chains and trees (joins or forks), with Pareto labels.

When the DAG is a forest — every job feeds at most one other job (an in-forest: inputs
merging into a training job), or every job has at most one input (an out-forest: one
preprocessing job fanning out to several trainings) — and no pool can be overcommitted,
the problem is a resource-constrained shortest path and is solved exactly without a MILP.
(A DAG with both a fork and a join, even a tree when undirected, goes to the MILP: a
job's two branches would have to agree on a shared ancestor's choice.) The out-forest
recursion is documented on :func:`_solve_out`; the in-forest one here.

For each job :math:`j` and option :math:`o` we keep the Pareto set :math:`L_{jo}` of pairs
(cost, end time) over all choices for :math:`j`'s ancestors (which, in an in-forest, are
disjoint for different inputs of a join). With :math:`\kappa_{jo}` the job's own cost
(compute + reads [+ penalty]), :math:`\rho_{jo}` its read time, :math:`\delta_{jo}` its delay
and :math:`d_{jo}` its duration:

.. math::

    L_{jo} = \operatorname{Pareto}\Big\{ \big(\kappa_{jo} + \textstyle\sum_{e} (C_e + u_e),\;
        \max(\rho_{jo}, \max_e (T_e + h_e)) + \delta_{jo} + d_{jo}\big) \Big\}

over one label :math:`(C_e, T_e) \in L_{p\,o'}` per input edge :math:`e = (p, j)` and option
:math:`o'` of :math:`p`, with :math:`u_e, h_e` the transfer cost and time between the two
options' locations. Costs add and times take the maximum at a join; labels are combined one
input at a time and filtered to their Pareto set after every step. Both operations are
monotone, so a dominated partial label can never become part of a better plan: the result
is exact, and deadline/budget constraints are exact too (labels that already break them, or
must break them given the cheapest/fastest possible remainder, are dropped). The sinks are
joined the same way by a virtual root, whose label set is the whole cost–makespan Pareto
frontier.

Pruning keeps this fast without giving up exactness: before the DP, a few scalarised
plans (cost + λ·time for a grid of λ) give an incumbent; exact "cheapest completion" and
"fastest completion" bounds per (job, option), plus Lagrangian bounds
:math:`g_\lambda - \lambda \cdot (\text{deadline} - \text{end})`, drop every label that
cannot lead to a plan at least as good as the incumbent.

Ties: labels are generated in option-index and job order and the Pareto filter keeps the
first of equal labels, so results are deterministic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from placer.optimizer._compile import Compiled, FloatArray, IntArray, risky_jobs
from placer.optimizer._solution import Objective, Solution, build, infeasible, ssgs, tol


def dp_method(c: Compiled) -> str | None:
    """``"dp-chain"`` / ``"dp-tree"`` if the DP is exact for ``c``, else ``None``.

    The DP needs every job to feed at most one other job (joins are fine, forks are not:
    a fork's branches would share the parent's choice) and no pool that could be
    overcommitted (a chain never runs two jobs at once, so only per-job fit matters there).
    """
    in_forest = all(len(out) <= 1 for out in c.out_edges)
    out_forest = all(len(ins) <= 1 for ins in c.in_edges)
    if not (in_forest or out_forest) or risky_jobs(c):
        return None
    return "dp-chain" if in_forest and out_forest else "dp-tree"


def _pareto(cost: FloatArray, t: FloatArray) -> IntArray:
    """Indices of the non-dominated (cost, time) pairs, by increasing time (first tie wins).

    Sorts on time alone with a stable sort when no two times are equal (timsort: the inputs
    are a few already-sorted runs, so this is much faster than a two-key sort), and by
    (time, cost) when some are (joins take maxima, which makes ties common).
    """
    if cost.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    ts = t[order]
    if bool(np.any(ts[1:] == ts[:-1])):
        order = np.lexsort((cost, t))
    cs = cost[order]
    keep = np.empty(cs.size, dtype=np.bool_)
    keep[0] = True
    keep[1:] = cs[1:] < np.minimum.accumulate(cs)[:-1]
    return order[keep].astype(np.int64)


@dataclass(frozen=True, slots=True)
class _Step:
    """One join step: labels after it come from (previous label, contribution label)."""

    src: int
    prov_opt: IntArray
    prov_idx: IntArray
    prev: IntArray
    contrib: IntArray


@dataclass(frozen=True, slots=True)
class _Labels:
    """Pareto labels of one (job, option); ``time`` is the end time (in-forest) or the
    makespan lower bound ``A`` (out-forest, where ``tail`` is also kept)."""

    cost: FloatArray
    time: FloatArray
    steps: tuple[_Step, ...]
    tail: FloatArray | None = None


_EMPTY = np.zeros(0)


def _union(
    sets: list[tuple[int, _Labels]], add_c: FloatArray | None, add_t: FloatArray | None
) -> tuple[FloatArray, FloatArray, IntArray, IntArray]:
    """Pareto union of several options' labels, shifted by per-option cost/time."""
    cs, ts, po, pi = [], [], [], []
    for k, (o, lab) in enumerate(sets):
        cs.append(lab.cost + (0.0 if add_c is None else add_c[k]))
        ts.append(lab.time + (0.0 if add_t is None else add_t[k]))
        po.append(np.full(lab.cost.size, o, dtype=np.int64))
        pi.append(np.arange(lab.cost.size, dtype=np.int64))
    if not cs:
        z = np.zeros(0, dtype=np.int64)
        return _EMPTY, _EMPTY, z, z
    c, t = np.concatenate(cs), np.concatenate(ts)
    keep = _pareto(c, t)
    return c[keep], t[keep], np.concatenate(po)[keep], np.concatenate(pi)[keep]


def _join(
    cur_c: FloatArray, cur_t: FloatArray, cc: FloatArray, tt: FloatArray
) -> tuple[FloatArray, FloatArray, IntArray, IntArray]:
    nc = (cur_c[:, None] + cc[None, :]).ravel()
    nt = np.maximum(cur_t[:, None], tt[None, :]).ravel()
    keep = _pareto(nc, nt)
    return nc[keep], nt[keep], keep // cc.size, keep % cc.size


def solve_dp(
    c: Compiled,
    objective: Objective,
    *,
    deadline: float | None,
    budget: float | None,
    use_penalty: bool = True,
    frontier: bool = False,
    max_points: int | None = None,
) -> list[Solution]:
    """Solve a chain or tree exactly; see the module docstring.

    Returns:
        One solution (the optimum, or an infeasible result), or with ``frontier=True`` the
        Pareto frontier of (cost objective, makespan), cheapest first (at most
        ``max_points`` evenly spaced points keeping both ends, when given).
    """
    t0 = time.perf_counter()
    method = dp_method(c) or "dp-tree"
    if objective == "time":
        deadline = None
    else:
        budget = None
    n = c.n
    own = [
        c.compute[j] + c.read_usd[j] + (c.penalty[j] if objective == "cost" and use_penalty else 0)
        for j in range(n)
    ]
    if any(len(out) > 1 for out in c.out_edges):
        return _solve_out(c, own, objective, deadline, budget, frontier, method, t0,
                          max_points)
    # Exact cheapest / lower-bound fastest completions of each (job, option), for pruning.
    ctg, ttg = _to_go(c, own)

    # An incumbent plan bounds the objective, so labels that cannot beat it are dropped.
    bound = None if frontier else _incumbent(c, own, objective, deadline, budget)
    lagrange = (
        [(lam, _to_go(c, own, lam)[0]) for lam in _lambdas(c, own)[2:]]
        if bound is not None and (deadline is not None or budget is not None)
        else []
    )

    labels: list[dict[int, _Labels]] = [{} for _ in range(n)]
    for j in c.topo:
        for o in range(len(c.options[j])):
            if not c.allowed[j][o]:
                continue
            cur_c = np.asarray([float(own[j][o])])
            cur_t = np.asarray([float(c.read_h[j][o])])
            steps: list[_Step] = []
            for e in c.in_edges[j]:
                ce = c.edges[e]
                src_sets = list(labels[ce.src].items())
                opts = [op for op, _ in src_sets]
                cc, tt, po, pi = _union(src_sets, ce.usd[opts, o], ce.hours[opts, o])
                if cc.size == 0:
                    cur_c = _EMPTY
                    break
                cur_c, cur_t, prev, contrib = _join(cur_c, cur_t, cc, tt)
                steps.append(_Step(ce.src, po, pi, prev, contrib))
            if cur_c.size == 0:
                continue
            end = cur_t + float(c.delay[j][o] + c.dur[j][o])
            keep = np.ones(end.size, dtype=np.bool_)
            if deadline is not None:
                keep &= end + ttg[j][o] <= deadline + tol(deadline)
            if budget is not None:
                keep &= cur_c + ctg[j][o] <= budget + tol(budget)
            if bound is not None and objective == "cost":
                rest = np.full(end.size, float(ctg[j][o]))
                if deadline is not None:
                    # Lagrangian bound: cost_rest >= g_lam - lam * (time still allowed).
                    for lam, g in lagrange:
                        rest = np.maximum(rest, float(g[j][o]) - lam * (deadline - end))
                keep &= cur_c + rest <= bound + tol(bound)
            elif bound is not None:
                rest = np.full(end.size, float(ttg[j][o]))
                if budget is not None:
                    # time_rest >= (g_lam - money still allowed) / lam.
                    for lam, g in lagrange:
                        rest = np.maximum(rest, (float(g[j][o]) - (budget - cur_c)) / lam)
                keep &= end + rest <= bound + 1e-6 + tol(bound)
            if not keep.all():
                idx = np.flatnonzero(keep)
                cur_c, end = cur_c[idx], end[idx]
                steps = _reindex(steps, idx)
            if cur_c.size:
                labels[j][o] = _Labels(cur_c, end, tuple(steps))

    # Virtual root joining all sinks.
    root = _virtual_root(labels, [j for j in c.topo if not c.out_edges[j]])
    if root is None:
        return [infeasible(method, objective, "", time.perf_counter() - t0)]
    return _finish(c, labels, *root, objective, deadline, budget, frontier, method, t0,
                   max_points)


def _virtual_root(
    labels: list[dict[int, _Labels]], terminals: list[int]
) -> tuple[FloatArray, FloatArray, list[_Step]] | None:
    """Join the label sets of ``terminals`` (sinks or sources) under one virtual root.

    Returns ``None`` when some terminal has no feasible label (the problem is infeasible).
    """
    root_c, root_t = np.asarray([0.0]), np.asarray([0.0])
    root_steps: list[_Step] = []
    for j in terminals:
        cc, tt, po, pi = _union(list(labels[j].items()), None, None)
        if cc.size == 0:
            return None
        root_c, root_t, prev, contrib = _join(root_c, root_t, cc, tt)
        root_steps.append(_Step(j, po, pi, prev, contrib))
    return root_c, root_t, root_steps


def _finish(
    c: Compiled,
    labels: list[dict[int, _Labels]],
    root_c: FloatArray,
    root_t: FloatArray,
    root_steps: list[_Step],
    objective: Objective,
    deadline: float | None,
    budget: float | None,
    frontier: bool,
    method: str,
    t0: float,
    max_points: int | None = None,
) -> list[Solution]:
    """Pick the answer (or the frontier) from the root's label set and rebuild the plans."""
    ok = np.ones(root_c.size, dtype=np.bool_)
    if deadline is not None:
        ok &= root_t <= deadline + tol(deadline)
    if budget is not None:
        ok &= root_c <= budget + tol(budget)
    cand = np.flatnonzero(ok)
    if cand.size == 0:
        return [infeasible(method, objective, "", time.perf_counter() - t0)]
    if frontier:
        picks = [int(i) for i in cand[np.argsort(root_c[cand], kind="stable")]]
        if max_points is not None and len(picks) > max_points:
            step = (len(picks) - 1) / (max_points - 1)
            picks = [picks[round(i * step)] for i in range(max_points)]
    elif objective == "cost":
        picks = [int(cand[np.argmin(root_c[cand])])]
    else:
        best_t = float(root_t[cand].min())
        near = cand[root_t[cand] <= best_t + 1e-6]
        picks = [int(near[np.argmin(root_c[near])])]
    out = []
    for pick in picks:
        choice = _reconstruct(c, labels, root_steps, pick)
        out.append(
            build(
                c,
                choice,
                status="optimal",
                method=method,
                objective=objective,
                solve_time_s=time.perf_counter() - t0,
            )
        )
    return out


def _reindex(steps: list[_Step], idx: IntArray) -> list[_Step]:
    """Keep only labels ``idx`` of the last step (earlier steps are referenced by it)."""
    if not steps:
        return steps
    last = steps[-1]
    return [*steps[:-1], _Step(last.src, last.prov_opt, last.prov_idx, last.prev[idx],
                                last.contrib[idx])]


def _reconstruct(
    c: Compiled, labels: list[dict[int, _Labels]], root_steps: list[_Step], pick: int
) -> list[int]:
    choice = [-1] * c.n
    stack: list[tuple[int, int, int]] = []
    idx = pick
    for step in reversed(root_steps):
        k = int(step.contrib[idx])
        stack.append((step.src, int(step.prov_opt[k]), int(step.prov_idx[k])))
        idx = int(step.prev[idx])
    while stack:
        j, o, idx = stack.pop()
        choice[j] = o
        for step in reversed(labels[j][o].steps):
            k = int(step.contrib[idx])
            stack.append((step.src, int(step.prov_opt[k]), int(step.prov_idx[k])))
            idx = int(step.prev[idx])
    return choice


def _scalar_plan(c: Compiled, own: list[FloatArray], lam: float) -> list[int] | None:
    """Greedy-exact plan for the scalarised key ``cost + lam * end`` (one label per option).

    Exact for ``lam == 0`` (pure cost is additive) and for pure time (``lam`` huge: the
    fastest input for each option minimises the max at a join); in between a heuristic,
    used only to find incumbents.
    """
    best_c: list[FloatArray] = []
    best_t: list[FloatArray] = []
    pick: list[list[list[int]]] = []
    for j in range(c.n):
        k = len(c.options[j])
        best_c.append(np.full(k, np.inf))
        best_t.append(np.full(k, np.inf))
        pick.append([[] for _ in range(k)])
    for j in c.topo:
        for o in range(len(c.options[j])):
            if not c.allowed[j][o]:
                continue
            cost = float(own[j][o])
            ready = float(c.read_h[j][o])
            chosen = []
            for e in c.in_edges[j]:
                ce = c.edges[e]
                pc = best_c[ce.src] + ce.usd[:, o]
                pt = best_t[ce.src] + ce.hours[:, o]
                with np.errstate(invalid="ignore"):
                    key = pc + lam * pt
                key[~np.isfinite(pc)] = np.inf
                op = int(np.argmin(key))
                if not np.isfinite(key[op]):
                    cost = np.inf
                    break
                cost += float(pc[op])
                ready = max(ready, float(pt[op]))
                chosen.append(op)
            best_c[j][o] = cost
            best_t[j][o] = ready + float(c.delay[j][o] + c.dur[j][o])
            pick[j][o] = chosen
    choice = [-1] * c.n
    for j in reversed(c.topo):
        if not c.out_edges[j]:
            with np.errstate(invalid="ignore"):
                key = best_c[j] + lam * best_t[j]
            key[~np.isfinite(best_c[j])] = np.inf
            choice[j] = int(np.argmin(key))
            if not np.isfinite(key[choice[j]]):
                return None
        for e, op in zip(c.in_edges[j], pick[j][choice[j]], strict=True):
            choice[c.edges[e].src] = op
    return choice


def _lambdas(c: Compiled, own: list[FloatArray]) -> list[float]:
    """Prices of an hour in dollars to try: 0, "infinite", and a log grid around the
    problem's own cost/time ratio (for incumbents and Lagrangian bounds)."""
    time_scale = sum(float(np.min(c.dur[j])) for j in range(c.n)) or 1.0
    cost_scale = sum(float(np.min(own[j])) for j in range(c.n)) or 1.0
    ratio = cost_scale / time_scale
    return [0.0, 1e12 * max(1.0, ratio)] + [ratio * 10 ** (k / 2) for k in range(-6, 7)]


def _incumbent(
    c: Compiled,
    own: list[FloatArray],
    objective: Objective,
    deadline: float | None,
    budget: float | None,
) -> float | None:
    """Best objective value among a few scalarised plans that meet the constraint, or None."""
    best: float | None = None
    for lam in _lambdas(c, own):
        choice = _scalar_plan(c, own, lam)
        if choice is None:
            return None  # some sink has no runnable option at all
        start = ssgs(c, choice)
        makespan = max(start[j] + float(c.dur[j][choice[j]]) for j in range(c.n))
        cost = sum(float(own[j][choice[j]]) for j in range(c.n)) + sum(
            float(e.usd[choice[e.src], choice[e.dst]]) for e in c.edges
        )
        if objective == "cost":
            if deadline is not None and makespan > deadline + tol(deadline):
                continue
            best = cost if best is None else min(best, cost)
            if deadline is None:
                break  # lam == 0 is the exact minimum cost
        else:
            if budget is not None and cost > budget + tol(budget):
                continue
            best = makespan if best is None else min(best, makespan)
    return best


def _to_go(
    c: Compiled, own: list[FloatArray], lam: float = 0.0
) -> tuple[list[FloatArray], list[FloatArray]]:
    """Per (job, option): the exact cheapest cost of everything outside the job's subtree,
    and a lower bound on the time from the job's end to the makespan.

    A label (cost, end) at ``(j, o)`` whose cost plus the first exceeds the budget or the
    incumbent, or whose end plus the second exceeds the deadline, can never be completed
    into a plan that matters, so it is dropped. Cost is additive, so the cheapest
    completion is an exact scalar DP (forward: cheapest subtree per option; backward: the
    cheapest rest given the successor's option). The time bound follows the path to the
    sink and ignores the other inputs of each join (a max can only be larger).

    With ``lam > 0`` the first result is instead :math:`g_\\lambda`, the cheapest
    ``cost + lam * time`` of the rest, time counted along the path to the sink; since that
    time is at most what the deadline still allows, ``g - lam * allowed`` is a lower bound on
    the cost still to come (a Lagrangian bound; symmetric for a budget).
    """
    n = c.n
    inf = np.inf
    fc = [np.where(c.allowed[j], own[j], inf) for j in range(n)]
    for j in c.topo:
        for e in c.in_edges[j]:
            ce = c.edges[e]
            fc[j] = fc[j] + np.min(fc[ce.src][:, None] + ce.usd, axis=0)
    sinks = [j for j in range(n) if not c.out_edges[j]]
    total = sum(float(np.min(fc[j])) for j in sinks)
    ctg = [np.zeros(len(c.options[j])) for j in range(n)]
    ttg = [np.zeros(len(c.options[j])) for j in range(n)]
    for j in sinks:
        ctg[j][:] = total - float(np.min(fc[j]))
    for j in reversed(c.topo):
        if not c.out_edges[j]:
            continue
        ce = c.edges[c.out_edges[j][0]]
        s = ce.dst
        # Cost at s for option o', excluding j's branch: own + other inputs + rest.
        rest = np.where(c.allowed[s], own[s] + lam * (c.delay[s] + c.dur[s]), inf) + ctg[s]
        for e2 in c.in_edges[s]:
            other = c.edges[e2]
            if other.src != j:
                rest = rest + np.min(fc[other.src][:, None] + other.usd, axis=0)
        ctg[j] = np.min(ce.usd + lam * ce.hours + rest[None, :], axis=1)
        run = np.where(c.allowed[s], c.delay[s] + c.dur[s], inf) + ttg[s]
        ttg[j] = np.min(ce.hours + run[None, :], axis=1)
    return ctg, ttg


def _pareto3(cost: FloatArray, tail: FloatArray, a: FloatArray) -> IntArray:
    """Indices of the non-dominated (cost, tail, A) triples, cheapest first (first tie wins)."""
    order = np.lexsort((a, tail, cost))
    kept: list[int] = []
    kt = np.zeros(0)
    ka = np.zeros(0)
    for i in order:
        if kt.size and bool(np.any((kt <= tail[i]) & (ka <= a[i]))):
            continue  # an earlier (no dearer) label is no slower on both counts
        kept.append(int(i))
        kt = np.append(kt, tail[i])
        ka = np.append(ka, a[i])
    return np.asarray(kept, dtype=np.int64)


def _solve_out(
    c: Compiled,
    own: list[FloatArray],
    objective: Objective,
    deadline: float | None,
    budget: float | None,
    frontier: bool,
    method: str,
    t0: float,
    max_points: int | None,
) -> list[Solution]:
    r"""Out-forest (forks, every job has at most one input): DP from the leaves up.

    A job's start is :math:`\max(\text{end}_{parent} + h, \rho_j) + \delta_j`, so the
    makespan is the longest path from time 0, entering the tree either at a root or at any
    job through its reads: :math:`\max_k (\rho_k + \delta_k + \text{tail}_k)`, with
    :math:`\text{tail}_k` the longest run from :math:`k`'s start to any end below it. Both
    depend only on choices in :math:`k`'s subtree, so labels are Pareto triples
    (cost, tail, A) with :math:`A` that maximum over the subtree; children join by adding
    costs and taking maxima, and :math:`A` at the roots is the makespan. A dominated triple
    can never be part of a better plan, so the result is exact.
    """
    n = c.n
    # Earliest possible start per (job, option) (exact min-time head), for deadline pruning.
    es = [np.zeros(len(c.options[j])) for j in range(n)]
    for j in c.topo:
        head = c.read_h[j].copy()
        for e in c.in_edges[j]:
            ce = c.edges[e]
            p_end = np.where(c.allowed[ce.src], es[ce.src] + c.dur[ce.src], np.inf)
            head = np.maximum(head, np.min(p_end[:, None] + ce.hours, axis=0))
        es[j] = head + c.delay[j]
    # Cheapest possible cost of everything outside each subtree (ignoring transfers).
    min_own = [float(np.min(np.where(c.allowed[j], own[j], np.inf))) for j in range(n)]
    sub = list(min_own)
    for j in reversed(c.topo):
        for e in c.out_edges[j]:
            sub[j] += sub[c.edges[e].dst]
    total = sum(min_own)

    labels: list[dict[int, _Labels]] = [{} for _ in range(n)]
    for j in reversed(c.topo):
        for o in range(len(c.options[j])):
            if not c.allowed[j][o]:
                continue
            cur_c = np.asarray([float(own[j][o])])
            cur_t = np.zeros(1)  # longest (transfer + delay + tail) over children
            cur_a = np.zeros(1)
            steps: list[_Step] = []
            for e in c.out_edges[j]:
                ce = c.edges[e]
                parts = [(oc, lab) for oc, lab in labels[ce.dst].items()]
                if not parts:
                    cur_c = _EMPTY
                    break
                cc = np.concatenate([lab.cost + ce.usd[o, oc] for oc, lab in parts])
                tt = np.concatenate([
                    lab.tail + ce.hours[o, oc] + c.delay[ce.dst][oc]
                    for oc, lab in parts if lab.tail is not None
                ])
                aa = np.concatenate([lab.time for _, lab in parts])
                po = np.concatenate([np.full(lab.cost.size, oc) for oc, lab in parts])
                pi = np.concatenate([np.arange(lab.cost.size) for _, lab in parts])
                k = _pareto3(cc, tt, aa)
                cc, tt, aa, po, pi = cc[k], tt[k], aa[k], po[k], pi[k]
                nc = (cur_c[:, None] + cc[None, :]).ravel()
                nt = np.maximum(cur_t[:, None], tt[None, :]).ravel()
                na = np.maximum(cur_a[:, None], aa[None, :]).ravel()
                k = _pareto3(nc, nt, na)
                cur_c, cur_t, cur_a = nc[k], nt[k], na[k]
                steps.append(_Step(ce.dst, po.astype(np.int64), pi.astype(np.int64),
                                   k // cc.size, k % cc.size))
            if cur_c.size == 0:
                continue
            tail = cur_t + float(c.dur[j][o])
            a = np.maximum(cur_a, float(c.read_h[j][o] + c.delay[j][o]) + tail)
            keep = np.ones(a.size, dtype=np.bool_)
            if deadline is not None:
                lim = deadline + tol(deadline)
                keep &= (a <= lim) & (float(es[j][o]) + tail <= lim)
            if budget is not None:
                keep &= cur_c + (total - sub[j]) <= budget + tol(budget)
            if not keep.all():
                idx = np.flatnonzero(keep)
                cur_c, tail, a = cur_c[idx], tail[idx], a[idx]
                steps = _reindex(steps, idx)
            if cur_c.size:
                labels[j][o] = _Labels(cur_c, a, tuple(steps), tail)

    # Virtual root joining all sources.
    root = _virtual_root(labels, [j for j in c.topo if not c.in_edges[j]])
    if root is None:
        return [infeasible(method, objective, "", time.perf_counter() - t0)]
    return _finish(c, labels, *root, objective, deadline, budget, frontier, method, t0,
                   max_points)
