r"""Exact dynamic programming for chains and in-trees (joins), with Pareto labels.

When every job feeds at most one other job (a chain, or an in-forest: many inputs merging
into a training job) and no pool can be overcommitted, the problem is a resource-constrained
shortest path and is solved exactly without a MILP.

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

Ties: labels are generated in option-index and job order and the Pareto filter keeps the
first of equal labels, so results are deterministic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from placer.optimizer._compile import Compiled, FloatArray, IntArray, risky_jobs
from placer.optimizer.solution import Objective, Solution, build, infeasible, ssgs, tol


def dp_method(c: Compiled) -> str | None:
    """``"dp-chain"`` / ``"dp-tree"`` if the DP is exact for ``c``, else ``None``.

    The DP needs every job to feed at most one other job (joins are fine, forks are not:
    a fork's branches would share the parent's choice) and no pool that could be
    overcommitted (a chain never runs two jobs at once, so only per-job fit matters there).
    """
    if any(len(out) > 1 for out in c.out_edges):
        return None
    if risky_jobs(c):
        return None
    return "dp-chain" if all(len(ins) <= 1 for ins in c.in_edges) else "dp-tree"


def _pareto(cost: FloatArray, t: FloatArray) -> IntArray:
    """Indices of the non-dominated (cost, time) pairs, by increasing time (first tie wins)."""
    if cost.size == 0:
        return np.zeros(0, dtype=np.int64)
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
    cost: FloatArray
    time: FloatArray
    steps: tuple[_Step, ...]


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
) -> list[Solution]:
    """Solve an in-forest exactly; see the module docstring.

    Returns:
        One solution (the optimum, or an infeasible result), or with ``frontier=True`` the
        whole Pareto frontier of (cost objective, makespan), cheapest first.
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
    # Bounds on what the rest of the plan must add, for pruning.
    min_own = [float(np.min(own[j][c.allowed[j]], initial=np.inf)) for j in range(n)]
    min_run = [float(np.min((c.delay[j] + c.dur[j])[c.allowed[j]], initial=np.inf)) for j in range(n)]
    tail = [0.0] * n
    sub = [0.0] * n
    for j in reversed(c.topo):
        if c.out_edges[j]:
            k = c.edges[c.out_edges[j][0]].dst
            tail[j] = tail[k] + min_run[k]
    for j in c.topo:
        sub[j] = min_own[j] + sum(sub[c.edges[e].src] for e in c.in_edges[j])
    total_min = sum(min_own)

    # An incumbent plan bounds the objective, so labels that cannot beat it are dropped.
    bound = None if frontier else _incumbent(c, own, objective, deadline, budget)

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
                keep &= end + tail[j] <= deadline + tol(deadline)
            if budget is not None:
                keep &= cur_c + (total_min - sub[j]) <= budget + tol(budget)
            if bound is not None and objective == "cost":
                keep &= cur_c + (total_min - sub[j]) <= bound + tol(bound)
            elif bound is not None:
                keep &= end + tail[j] <= bound + 1e-6 + tol(bound)
            if not keep.all():
                idx = np.flatnonzero(keep)
                cur_c, end = cur_c[idx], end[idx]
                steps = _reindex(steps, idx)
            if cur_c.size:
                labels[j][o] = _Labels(cur_c, end, tuple(steps))

    # Virtual root joining all sinks.
    root_c, root_t = np.asarray([0.0]), np.asarray([0.0])
    root_steps: list[_Step] = []
    for j in c.topo:
        if c.out_edges[j]:
            continue
        cc, tt, po, pi = _union(list(labels[j].items()), None, None)
        if cc.size == 0:
            return [infeasible(method, objective, "", time.perf_counter() - t0)]
        root_c, root_t, prev, contrib = _join(root_c, root_t, cc, tt)
        root_steps.append(_Step(j, po, pi, prev, contrib))

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


def _incumbent(
    c: Compiled,
    own: list[FloatArray],
    objective: Objective,
    deadline: float | None,
    budget: float | None,
) -> float | None:
    """Best objective value among a few scalarised plans that meet the constraint, or None."""
    time_scale = sum(float(np.min(c.dur[j])) for j in range(c.n)) or 1.0
    cost_scale = sum(float(np.min(own[j])) for j in range(c.n)) or 1.0
    ratio = cost_scale / time_scale
    lams = [0.0, 1e12 * max(1.0, ratio)] + [ratio * 10 ** (k / 2) for k in range(-6, 7)]
    best: float | None = None
    for lam in lams:
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
