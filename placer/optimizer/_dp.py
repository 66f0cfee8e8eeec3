r"""Exact dynamic programming for chains and trees (joins or forks).

When the DAG is a forest — every job feeds at most one other job (an in-forest: inputs
merging into a training job), or every job has at most one input (an out-forest: one
preprocessing job fanning out to several trainings) — and no pool can be overcommitted,
the problem is a resource-constrained shortest path and is solved exactly without a MILP.
(A DAG with both a fork and a join, even a tree when undirected, goes to the MILP: a
job's two branches would have to agree on a shared ancestor's choice.)

**Cost without a deadline** needs no labels: cost is a sum of per-job and per-edge terms
over a forest, so it is a min-sum problem on a tree. Rooting each component at its
lowest-index job, :func:`_min_cost` folds every subtree into its parent with one min-plus
product per edge (a ``(parent options × child options)`` numpy matrix), then reads the plan
back from the roots. That is O(Σ options²) array work and a handful of numpy calls per job,
whatever the number of jobs.

**With a deadline, a budget, the time objective or the frontier** it keeps, for each job,
the Pareto set of (cost, end time) pairs over all choices for the job's ancestors, for all
of the job's options at once (one label array per job with an option column, so the numpy
overhead is per job, not per option). With :math:`\kappa_{jo}` the job's own cost (compute
+ reads [+ penalty]), :math:`\rho_{jo}` its read time, :math:`\delta_{jo}` its delay and
:math:`d_{jo}` its duration:

.. math::

    L_{jo} = \operatorname{Pareto}\Big\{ \big(\kappa_{jo} + \textstyle\sum_{e} (C_e + u_e),\;
        \max(\rho_{jo}, \max_e (T_e + h_e)) + \delta_{jo} + d_{jo}\big) \Big\}

over one label :math:`(C_e, T_e) \in L_{p\,o'}` per input edge :math:`e = (p, j)` and option
:math:`o'` of :math:`p`, with :math:`u_e, h_e` the transfer cost and time between the two
options' locations. Costs add and times take the maximum at a join; labels are combined one
input at a time and filtered to their Pareto set (per option, by one sort of the whole
job's array) after every step. Both operations are monotone, so a dominated partial label
can never become part of a better plan: the result is exact, and deadline/budget
constraints are exact too (labels that already break them, or must break them given the
cheapest/fastest possible remainder, are dropped). The sinks are joined the same way by a
virtual root, whose label set is the whole cost–makespan Pareto frontier. The out-forest
recursion (forks) is documented on :func:`_solve_out`.

Pruning keeps the labels few without giving up exactness: a few scalarised plans
(cost + λ·time for a grid of λ) give an incumbent; exact "cheapest completion" and "fastest
completion" bounds per (job, option), plus Lagrangian bounds
:math:`g_\lambda - \lambda \cdot (\text{deadline} - \text{end})`, drop every label that
cannot lead to a plan at least as good as the incumbent.

Ties. Without a deadline the cost DP returns, among all plans of minimum cost, the one
brute force returns: the lexicographically smallest option vector in job order
(``problem.jobs``), as :class:`~placer.optimizer.Problem` promises. When every subtree's
root is its lowest-index job (chains declared in order, out-trees) this is plain
first-index ``argmin``; otherwise each job carries, per option, where and how its best
subtree plans first differ, so ties are still compared in job order. With labels, a label
is dropped when another is no worse on both counts, so among plans of equal objective the
DP prefers the faster (cost) or cheaper (time) one, then the first in label order (option
index, then parent label): deterministic, but not necessarily the lexicographic choice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from placer.optimizer._compile import BoolArray, Compiled, FloatArray, IntArray
from placer.optimizer._solution import Objective, Solution, build, infeasible, ssgs, tol

_INF = np.inf
_EMPTY_I = np.zeros(0, dtype=np.int64)


def dp_method(c: Compiled) -> str | None:
    """``"dp-chain"`` / ``"dp-tree"`` if the DP is exact for ``c``, else ``None``.

    The DP needs every job to feed at most one other job, or every job to have at most one
    input (a fork joined again would make two branches share a choice), and no pool that
    could be overcommitted (a chain never runs two jobs at once, so only per-job fit
    matters there).
    """
    in_forest = all(len(out) <= 1 for out in c.out_edges)
    out_forest = all(len(ins) <= 1 for ins in c.in_edges)
    if not (in_forest or out_forest) or forest_risky(c, in_forest):
        return None
    return "dp-chain" if in_forest and out_forest else "dp-tree"


def forest_risky(c: Compiled, in_forest: bool) -> bool:
    """:func:`risky_jobs` for a forest, in O(jobs) instead of its O(jobs²) reachability.

    Job ``j`` can take part in overcommitting a pool when its demand plus that of every job
    incomparable with it exceeds the pool; the incomparable jobs are all jobs but ``j``'s
    predecessors and successors. In a forest one of the two is a subtree (disjoint subtrees
    below a node, summed bottom-up) and the other the path to the root (summed top-down).
    The sums are of whole GPU counts, so the test is exactly :func:`risky_jobs`'s.
    """
    if not c.problem.capacity:
        return False
    demand: dict[str, FloatArray] = {}
    for j, opts in enumerate(c.options):
        for o, opt in enumerate(opts):
            if opt.pool_gpus and opt.pool is not None and c.allowed[j][o]:
                vec = demand.setdefault(opt.pool, np.zeros(c.n))
                vec[j] = max(vec[j], opt.pool_gpus)
    if not demand:
        return False
    # Edges towards the root: j -> its successor (in-forest) or its predecessor.
    up = [
        [c.edges[e].dst for e in c.out_edges[j]] if in_forest
        else [c.edges[e].src for e in c.in_edges[j]]
        for j in range(c.n)
    ]
    leaves_first = list(c.topo) if in_forest else list(reversed(c.topo))
    for pool, g in demand.items():
        below = g.copy()  # the job and its subtree
        for j in leaves_first:
            for u in up[j]:
                below[u] += below[j]
        above = np.zeros(c.n)  # the path to the root, without the job
        for j in reversed(leaves_first):
            for u in up[j]:
                above[j] = above[u] + g[u]
        worst = float(g.sum()) - (below - g) - above
        if bool(np.any((g > 0) & (worst > c.problem.capacity[pool]))):
            return True
    return False


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
    pen = objective == "cost" and use_penalty
    own = [c.compute[j] + c.read_usd[j] + c.penalty[j] for j in range(c.n)] if pen else [
        c.compute[j] + c.read_usd[j] for j in range(c.n)
    ]
    if objective == "cost" and deadline is None and not frontier:
        choice = _min_cost(c, own)
        if choice is None:
            return [infeasible(method, objective, "", time.perf_counter() - t0)]
        return [build(c, choice, status="optimal", method=method, objective=objective,
                      solve_time_s=time.perf_counter() - t0)]
    if any(len(out) > 1 for out in c.out_edges):
        return _solve_out(c, own, objective, deadline, budget, frontier, method, t0,
                          max_points)
    return _solve_in(c, own, objective, deadline, budget, frontier, method, t0, max_points)


# --------------------------------------------------------------------------------------
# Cost without a deadline: min-sum on the undirected forest.


def _forest(c: Compiled) -> tuple[list[int], list[int], list[int]]:
    """BFS order, parent and parent edge of every job, each component rooted at its
    lowest-index job (the undirected graph of a chain or tree DAG is a forest)."""
    n = c.n
    adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for e, ce in enumerate(c.edges):
        adj[ce.src].append((e, ce.dst))
        adj[ce.dst].append((e, ce.src))
    parent = [-1] * n
    pedge = [-1] * n
    seen = [False] * n
    order: list[int] = []
    for r in range(n):
        if seen[r]:
            continue
        seen[r] = True
        head = len(order)
        order.append(r)
        while head < len(order):
            v = order[head]
            head += 1
            for e, u in adj[v]:
                if not seen[u]:
                    seen[u] = True
                    parent[u] = v
                    pedge[u] = e
                    order.append(u)
    return order, parent, pedge


@dataclass(slots=True)
class _Lex:
    """How the best subtree plans of a job's options compare in job order.

    ``first[a, b]`` is the lowest job index at which the plans for options ``a`` and ``b``
    differ (``inf`` on the diagonal) and ``less[a, b]`` whether plan ``a`` has the smaller
    option there. ``None`` fields mean the job itself is that lowest index (plans are
    ordered by option index alone).
    """

    first: FloatArray | None
    less: BoolArray | None


def _min_cost(c: Compiled, own: list[FloatArray]) -> list[int] | None:
    """The cheapest plan (ties: lexicographically smallest in job order), or ``None``.

    Bottom-up, ``f[v][o]`` is the cheapest cost of ``v``'s subtree with ``v`` on option
    ``o``; an edge to the parent folds it in with a min-plus product whose ``argmin`` is
    kept, and the plan is read top-down. For ties, the rows of each product are taken in
    the lexicographic order of the child's subtree plans (the identity when the child is
    the lowest index of its subtree), so the first ``argmin`` is the lexicographic choice:
    with the rest of the plan fixed, disjoint subtrees are compared independently.
    """
    n = c.n
    order, parent, pedge = _forest(c)
    # All options in one flat array (one numpy call, not one per job); f[v] are views.
    flat = np.where(np.concatenate(c.allowed), np.concatenate(own), _INF)
    bounds = np.cumsum([0] + [len(x) for x in own]).tolist()
    f = [flat[bounds[j]:bounds[j + 1]] for j in range(n)]
    lowest = list(range(n))  # lowest job index in each subtree
    children: list[list[int]] = [[] for _ in range(n)]
    for v in reversed(order):
        p = parent[v]
        if p >= 0:
            children[p].append(v)
            if lowest[v] < lowest[p]:
                lowest[p] = lowest[v]
    aranges: dict[int, IntArray] = {}
    lex: list[_Lex | None] = [None] * n
    pick: list[IntArray] = [_EMPTY_I] * n
    for v in reversed(order):
        perm: IntArray | None = None
        if lowest[v] != v:
            lx = _lex_of(v, len(own[v]), children[v], pick, lex)
            lex[v] = lx
            assert lx.less is not None
            perm = np.argsort(lx.less.sum(axis=0), kind="stable").astype(np.int64)
            for ch in children[v]:
                lex[ch] = None  # no longer needed
        p = parent[v]
        if p < 0:
            continue
        ce = c.edges[pedge[v]]
        w = ce.usd if ce.dst == v else ce.usd.T  # (parent options, v's options)
        if perm is None:
            m = w + f[v]
            k = m.argmin(axis=1)
            pick[v] = k
        else:
            m = w[:, perm] + f[v][perm]
            k = m.argmin(axis=1)
            pick[v] = perm[k]
        rows = aranges.get(k.size)
        if rows is None:
            rows = aranges[k.size] = np.arange(k.size)
        f[p] += m[rows, k]
    choice = [-1] * n
    for v in order:
        p = parent[v]
        if p < 0:
            o = int(np.argmin(f[v]))  # a root is the lowest index of its tree
            if not np.isfinite(f[v][o]):
                return None
            choice[v] = o
        else:
            choice[v] = int(pick[v][choice[p]])
    return choice


def _lex_of(v: int, k: int, kids: list[int], pick: list[IntArray],
            lex: list[_Lex | None]) -> _Lex:
    """:class:`_Lex` of ``v``'s options from its children's (see :func:`_min_cost`)."""
    ar = np.arange(k)
    first = np.full((k, k), float(v))
    np.fill_diagonal(first, _INF)
    less = ar[:, None] < ar[None, :]
    for ch in kids:
        pk = pick[ch]
        sub = lex[ch]
        if sub is None or sub.first is None or sub.less is None:
            same = pk[:, None] == pk[None, :]
            f_ch = np.where(same, _INF, float(ch))
            l_ch = pk[:, None] < pk[None, :]
        else:
            f_ch = sub.first[np.ix_(pk, pk)]
            l_ch = sub.less[np.ix_(pk, pk)]
        upd = f_ch < first
        first = np.where(upd, f_ch, first)
        less = np.where(upd, l_ch, less)
    return _Lex(first, less)


# --------------------------------------------------------------------------------------
# Labels: one array per job, an option column, Pareto-filtered per option.


def _pareto_rows(cost: FloatArray, t: FloatArray) -> tuple[IntArray, IntArray]:
    """Non-dominated (cost, time) pairs of each row of two matrices, as (row, column)
    indices in (row, time) order; of equal pairs the first wins, ``inf`` entries are
    padding and never kept.

    One stable sort of every row at once (rows are options, so numpy overhead is per job):
    by time (a few already-sorted runs, which timsort merges quickly), and by (time, cost)
    when some times are equal (maxima at joins make ties common); then a label is kept when
    it is strictly cheaper than every faster one, a running minimum along the row.
    """
    if cost.size == 0:
        return _EMPTY_I, _EMPTY_I
    order = np.argsort(t, axis=1, kind="stable")
    ts = np.take_along_axis(t, order, axis=1)
    if bool(np.any(ts[:, 1:] == ts[:, :-1])):
        order = np.lexsort((cost, t), axis=1)
    cs = np.take_along_axis(cost, order, axis=1)
    keep = np.empty(cs.shape, dtype=np.bool_)
    keep[:, 0] = cs[:, 0] < _INF
    keep[:, 1:] = cs[:, 1:] < np.minimum.accumulate(cs, axis=1)[:, :-1]
    rows, cols = np.nonzero(keep)
    return rows.astype(np.int64), order[rows, cols].astype(np.int64)


def _pareto_flat(g: IntArray, cost: FloatArray, t: FloatArray, ngroups: int) -> IntArray:
    """:func:`_pareto_rows` on a flat array sorted by group ``g``: indices into it."""
    if cost.size == 0:
        return _EMPTY_I
    starts, counts = _segments(g, ngroups)
    pos = np.arange(g.size, dtype=np.int64) - starts[g]
    shape = (ngroups, int(counts.max()))
    pc = np.full(shape, _INF)
    pt = np.full(shape, _INF)
    pc[g, pos] = cost
    pt[g, pos] = t
    rows, cols = _pareto_rows(pc, pt)
    return starts[rows] + cols


@dataclass(frozen=True, slots=True)
class _Step:
    """One input joined into a job's labels: label ``i`` after it is (label ``prev[i]``
    before it) joined with label ``contrib[i]`` of job ``src``."""

    src: int
    contrib: IntArray
    prev: IntArray


@dataclass(frozen=True, slots=True)
class _Labels:
    """Pareto labels of one job, all options together (sorted by option, then time).

    ``time`` is the end time (in-forest) or the makespan lower bound ``A`` (out-forest,
    where ``tail`` is also kept).
    """

    opt: IntArray
    cost: FloatArray
    time: FloatArray
    steps: tuple[_Step, ...]
    tail: FloatArray | None = None


def _segments(g: IntArray, ngroups: int) -> tuple[IntArray, IntArray]:
    """Start and size of each group in an array sorted by group."""
    counts = np.bincount(g, minlength=ngroups).astype(np.int64)
    starts = np.zeros(ngroups, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts, counts


def _pairs(cur_g: IntArray, cand_g: IntArray, ngroups: int) -> tuple[IntArray, IntArray]:
    """All (current, candidate) index pairs of the same group, current-major."""
    c_start, c_count = _segments(cand_g, ngroups)
    reps = c_count[cur_g]
    i = np.repeat(np.arange(cur_g.size, dtype=np.int64), reps)
    block = np.zeros(cur_g.size, dtype=np.int64)
    np.cumsum(reps[:-1], out=block[1:])
    k = np.arange(i.size, dtype=np.int64) - np.repeat(block - c_start[cur_g], reps)
    return i, k


def _solve_in(
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
    """In-forest (chains and joins): labels from the sources down; see the module docstring."""
    n = c.n
    # Exact cheapest / lower-bound fastest completions of each (job, option), for pruning.
    ctg, ttg = _to_go(c, own)
    # An incumbent plan bounds the objective, so labels that cannot beat it are dropped.
    bound = None if frontier else _incumbent(c, own, objective, deadline, budget)
    lagrange = (
        [(lam, _to_go(c, own, lam)[0]) for lam in _lambdas(c, own)[2:]]
        if bound is not None and (deadline is not None or budget is not None)
        else []
    )
    labels = [_Labels(_EMPTY_I, np.zeros(0), np.zeros(0), ())] * n
    for j in c.topo:
        opts = np.flatnonzero(c.allowed[j]).astype(np.int64)
        ng = opts.size
        cur_g = np.arange(ng, dtype=np.int64)
        cur_c = own[j][opts]
        cur_t = c.read_h[j][opts]
        steps: list[_Step] = []
        for n_in, e in enumerate(c.in_edges[j]):
            ce = c.edges[e]
            src = labels[ce.src]
            m = src.cost.size
            if m == 0 or cur_c.size == 0:
                cur_c = np.zeros(0)
                break
            # Candidates: a row per option of j, a column per label of the input.
            cc = src.cost[None, :] + ce.usd[src.opt][:, opts].T
            ct = src.time[None, :] + ce.hours[src.opt][:, opts].T
            if n_in == 0:
                # One label per option so far: join first, then filter once.
                rows, cols = _pareto_rows(cc + cur_c[:, None], np.maximum(ct, cur_t[:, None]))
                cur_c = cur_c[rows] + cc[rows, cols]
                cur_t = np.maximum(cur_t[rows], ct[rows, cols])
                cur_g = rows
                steps.append(_Step(ce.src, cols, rows))
                continue
            rows, cols = _pareto_rows(cc, ct)
            # Join with the labels so far, option by option.
            i, k = _pairs(cur_g, rows, ng)
            nc = cur_c[i] + cc[rows[k], cols[k]]
            nt = np.maximum(cur_t[i], ct[rows[k], cols[k]])
            keep = _pareto_flat(cur_g[i], nc, nt, ng)
            cur_c, cur_t, cur_g = nc[keep], nt[keep], cur_g[i[keep]]
            steps.append(_Step(ce.src, cols[k[keep]], i[keep]))
        if cur_c.size == 0:
            continue
        o = opts[cur_g]
        end = cur_t + c.delay[j][o] + c.dur[j][o]
        ok = np.ones(end.size, dtype=np.bool_)
        if deadline is not None:
            ok &= end + ttg[j][o] <= deadline + tol(deadline)
        if budget is not None:
            ok &= cur_c + ctg[j][o] <= budget + tol(budget)
        if bound is not None and objective == "cost":
            rest = ctg[j][o]
            if deadline is not None:
                # Lagrangian bound: cost_rest >= g_lam - lam * (time still allowed).
                for lam, g in lagrange:
                    rest = np.maximum(rest, g[j][o] - lam * (deadline - end))
            ok &= cur_c + rest <= bound + tol(bound)
        elif bound is not None:
            rest = ttg[j][o]
            if budget is not None:
                # time_rest >= (g_lam - money still allowed) / lam.
                for lam, g in lagrange:
                    rest = np.maximum(rest, (g[j][o] - (budget - cur_c)) / lam)
            ok &= end + rest <= bound + 1e-6 + tol(bound)
        if not ok.all():
            idx = np.flatnonzero(ok)
            cur_c, end, o = cur_c[idx], end[idx], o[idx]
            steps = _reindex(steps, idx)
        labels[j] = _Labels(o, cur_c, end, tuple(steps))

    root = _virtual_root(labels, [j for j in c.topo if not c.out_edges[j]])
    if root is None:
        return [infeasible(method, objective, "", time.perf_counter() - t0)]
    return _finish(c, labels, *root, objective, deadline, budget, frontier, method, t0,
                   max_points)


def _reindex(steps: list[_Step], idx: IntArray) -> list[_Step]:
    """Keep only labels ``idx`` of the last step (earlier steps are referenced by it)."""
    if not steps:
        return steps
    last = steps[-1]
    return [*steps[:-1], _Step(last.src, last.contrib[idx], last.prev[idx])]


def _virtual_root(
    labels: list[_Labels], terminals: list[int]
) -> tuple[FloatArray, FloatArray, list[_Step]] | None:
    """Join the label sets of ``terminals`` (sinks or sources) under one virtual root.

    Returns ``None`` when some terminal has no feasible label (the problem is infeasible).
    """
    root_c, root_t = np.zeros(1), np.zeros(1)
    root_steps: list[_Step] = []
    for j in terminals:
        lab = labels[j]
        m = lab.cost.size
        if m == 0:
            return None
        _, keep = _pareto_rows(lab.cost[None, :], lab.time[None, :])
        nc = (root_c[:, None] + lab.cost[keep][None, :]).ravel()
        nt = np.maximum(root_t[:, None], lab.time[keep][None, :]).ravel()
        _, k2 = _pareto_rows(nc[None, :], nt[None, :])
        root_c, root_t = nc[k2], nt[k2]
        root_steps.append(_Step(j, keep[k2 % keep.size], k2 // keep.size))
    return root_c, root_t, root_steps


def _finish(
    c: Compiled,
    labels: list[_Labels],
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


def _reconstruct(
    c: Compiled, labels: list[_Labels], root_steps: list[_Step], pick: int
) -> list[int]:
    """The option of every job in the plan behind root label ``pick``."""
    choice = [-1] * c.n
    stack: list[tuple[int, int]] = []
    idx = pick
    for step in reversed(root_steps):
        stack.append((step.src, int(step.contrib[idx])))
        idx = int(step.prev[idx])
    while stack:
        j, idx = stack.pop()
        lab = labels[j]
        choice[j] = int(lab.opt[idx])
        for step in reversed(lab.steps):
            stack.append((step.src, int(step.contrib[idx])))
            idx = int(step.prev[idx])
    return choice


# --------------------------------------------------------------------------------------
# Bounds and incumbents for pruning.


def _scalar_plan(c: Compiled, own: list[FloatArray], lam: float) -> list[int] | None:
    """Greedy-exact plan for the scalarised key ``cost + lam * end`` (one value per option).

    Exact for ``lam == 0`` (pure cost is additive) and for pure time (``lam`` huge: the
    fastest input for each option minimises the max at a join); in between a heuristic,
    used only to find incumbents.
    """
    best_c: list[FloatArray] = [np.zeros(0)] * c.n
    best_t: list[FloatArray] = [np.zeros(0)] * c.n
    pick: list[list[IntArray]] = [[] for _ in range(c.n)]
    for j in c.topo:
        cost = np.where(c.allowed[j], own[j], _INF)
        ready = c.read_h[j].copy()
        ar = np.arange(cost.size)
        for e in c.in_edges[j]:
            ce = c.edges[e]
            pc = best_c[ce.src][:, None] + ce.usd
            pt = best_t[ce.src][:, None] + ce.hours
            with np.errstate(invalid="ignore"):
                key = pc + lam * pt
            key[~np.isfinite(pc)] = _INF
            op = key.argmin(axis=0)
            cost = cost + pc[op, ar]
            ready = np.maximum(ready, pt[op, ar])
            pick[j].append(op)
        best_c[j] = cost
        best_t[j] = ready + c.delay[j] + c.dur[j]
    choice = [-1] * c.n
    for j in reversed(c.topo):
        if not c.out_edges[j]:
            with np.errstate(invalid="ignore"):
                key = best_c[j] + lam * best_t[j]
            key[~np.isfinite(best_c[j])] = _INF
            choice[j] = int(np.argmin(key))
            if not np.isfinite(key[choice[j]]):
                return None
        for e, op in zip(c.in_edges[j], pick[j], strict=True):
            choice[c.edges[e].src] = int(op[choice[j]])
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
    fc = [np.where(c.allowed[j], own[j], _INF) for j in range(n)]
    into = [np.zeros(0)] * len(c.edges)  # cheapest subtree through each edge, per dst option
    for j in c.topo:
        for e in c.in_edges[j]:
            ce = c.edges[e]
            into[e] = np.min(fc[ce.src][:, None] + ce.usd, axis=0)
            fc[j] = fc[j] + into[e]
    sinks = [j for j in range(n) if not c.out_edges[j]]
    total = sum(float(np.min(fc[j])) for j in sinks)
    ctg = [np.zeros(len(c.options[j])) for j in range(n)]
    ttg = [np.zeros(len(c.options[j])) for j in range(n)]
    for j in sinks:
        ctg[j][:] = total - float(np.min(fc[j]))
    for j in reversed(c.topo):
        if not c.out_edges[j]:
            continue
        e = c.out_edges[j][0]
        ce = c.edges[e]
        s = ce.dst
        # Cost at s for option o', excluding j's branch: own + other inputs + rest.
        rest = np.where(c.allowed[s], own[s] + lam * (c.delay[s] + c.dur[s]), _INF) + ctg[s]
        for e2 in c.in_edges[s]:
            if e2 != e:
                rest = rest + into[e2]
        ctg[j] = np.min(ce.usd + lam * ce.hours + rest[None, :], axis=1)
        run = np.where(c.allowed[s], c.delay[s] + c.dur[s], _INF) + ttg[s]
        ttg[j] = np.min(ce.hours + run[None, :], axis=1)
    return ctg, ttg


# --------------------------------------------------------------------------------------
# Out-forests (forks).


def _pareto3_groups(g: IntArray, cost: FloatArray, tail: FloatArray, a: FloatArray) -> IntArray:
    """Indices of the non-dominated (cost, tail, A) triples within each group ``g``, sorted
    by (group, cost); of equal triples the first wins.

    After a stable sort by (group, cost, tail, A), a triple is dominated exactly when an
    earlier one of its group has no larger tail and A (a dominated earlier triple has a
    dominator earlier still, so checking all earlier ones is the same as checking the kept
    ones). Pairs are compared in blocks of rows, all in numpy.
    """
    if cost.size == 0:
        return _EMPTY_I
    order = np.lexsort((a, tail, cost, g))
    gs, ts, as_ = g[order], tail[order], a[order]
    size = gs.size
    dominated = np.zeros(size, dtype=np.bool_)
    starts, _ = _segments(gs, int(gs[-1]) + 1)
    block = max(1, 4_000_000 // max(1, size))
    for lo in range(0, size, block):
        hi = min(size, lo + block)
        rows = np.arange(lo, hi)
        first = starts[gs[lo:hi]]
        # Only earlier triples of the same group: columns [first of the group, row).
        c_lo, c_hi = int(first.min()), hi
        cols = np.arange(c_lo, c_hi)
        mask = (cols[None, :] >= first[:, None]) & (cols[None, :] < rows[:, None])
        mask &= ts[None, c_lo:c_hi] <= ts[lo:hi, None]
        mask &= as_[None, c_lo:c_hi] <= as_[lo:hi, None]
        dominated[lo:hi] = mask.any(axis=1)
    return order[~dominated].astype(np.int64)


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
    can never be part of a better plan, so the result is exact. As for in-forests, all
    options of a job are handled in one array with an option column.
    """
    n = c.n
    # Earliest possible start per (job, option) (exact min-time head), for deadline pruning.
    es = [np.zeros(len(c.options[j])) for j in range(n)]
    for j in c.topo:
        head = c.read_h[j].copy()
        for e in c.in_edges[j]:
            ce = c.edges[e]
            p_end = np.where(c.allowed[ce.src], es[ce.src] + c.dur[ce.src], _INF)
            head = np.maximum(head, np.min(p_end[:, None] + ce.hours, axis=0))
        es[j] = head + c.delay[j]
    # Cheapest possible cost of everything outside each subtree (ignoring transfers).
    min_own = [float(np.min(np.where(c.allowed[j], own[j], _INF))) for j in range(n)]
    sub = list(min_own)
    for j in reversed(c.topo):
        for e in c.out_edges[j]:
            sub[j] += sub[c.edges[e].dst]
    total = sum(min_own)

    labels = [_Labels(_EMPTY_I, np.zeros(0), np.zeros(0), (), np.zeros(0))] * n
    for j in reversed(c.topo):
        opts = np.flatnonzero(c.allowed[j]).astype(np.int64)
        ng = opts.size
        cur_g = np.arange(ng, dtype=np.int64)
        cur_c = own[j][opts]
        cur_t = np.zeros(ng)  # longest (transfer + delay + tail) over children
        cur_a = np.zeros(ng)
        steps: list[_Step] = []
        for e in c.out_edges[j]:
            ce = c.edges[e]
            d = ce.dst
            lab = labels[d]
            m = lab.cost.size
            if m == 0 or cur_c.size == 0 or lab.tail is None:
                cur_c = np.zeros(0)
                break
            cc = (lab.cost[None, :] + ce.usd[opts][:, lab.opt]).ravel()
            tt = (lab.tail[None, :] + ce.hours[opts][:, lab.opt]
                  + c.delay[d][lab.opt][None, :]).ravel()
            aa = np.broadcast_to(lab.time[None, :], (ng, m)).ravel()
            cg = np.repeat(np.arange(ng, dtype=np.int64), m)
            keep = _pareto3_groups(cg, cc, tt, aa)
            cc, tt, aa, cg, cq = cc[keep], tt[keep], aa[keep], cg[keep], keep % m
            # _pareto3_groups sorts by group first, so cg is grouped as _pairs needs.
            i, k = _pairs(cur_g, cg, ng)
            nc = cur_c[i] + cc[k]
            nt = np.maximum(cur_t[i], tt[k])
            na = np.maximum(cur_a[i], aa[k])
            keep = _pareto3_groups(cur_g[i], nc, nt, na)
            cur_c, cur_t, cur_a, cur_g = nc[keep], nt[keep], na[keep], cur_g[i[keep]]
            steps.append(_Step(d, cq[k[keep]], i[keep]))
        if cur_c.size == 0:
            continue
        o = opts[cur_g]
        tail = cur_t + c.dur[j][o]
        a = np.maximum(cur_a, c.read_h[j][o] + c.delay[j][o] + tail)
        ok = np.ones(a.size, dtype=np.bool_)
        if deadline is not None:
            lim = deadline + tol(deadline)
            ok &= (a <= lim) & (es[j][o] + tail <= lim)
        if budget is not None:
            ok &= cur_c + (total - sub[j]) <= budget + tol(budget)
        if not ok.all():
            idx = np.flatnonzero(ok)
            cur_c, tail, a, o = cur_c[idx], tail[idx], a[idx], o[idx]
            steps = _reindex(steps, idx)
        labels[j] = _Labels(o, cur_c, a, tuple(steps), tail)

    root = _virtual_root(labels, [j for j in c.topo if not c.in_edges[j]])
    if root is None:
        return [infeasible(method, objective, "", time.perf_counter() - t0)]
    return _finish(c, labels, *root, objective, deadline, budget, frontier, method, t0,
                   max_points)
