r"""Shrink the MILP without changing its optimum: location classes, folding and dominance.

The MILP prices an edge :math:`e = (s, d)` through transportation variables :math:`y_{eab}`
over location pairs. Most of those pairs are interchangeable: in a SkyPilot-style problem
every region of a cloud is priced alike, so an edge between two 19-region jobs has 361 pairs
but only 9 distinct prices. Three reductions, each exact:

**Location classes (per edge).** Edge :math:`e`'s price matrix is
:math:`U_e = \sum_i g_i L[A_e, B_e]` and its time matrix :math:`H_e = \max_i g_i\, T[A_e, B_e]`
(:math:`L`, :math:`T` the per-GB link price and time, :math:`g_i` the merged sizes). Put two
source locations in one class when their rows of :math:`L[A_e, B_e]` (and of :math:`T`, when
times matter) are identical, and two destination locations in one class when their columns
are. Then :math:`U_e` and :math:`H_e` are constant on every (source class, destination
class) block, and these are the coarsest such partitions. *Why the MILP stays exact:* with
binary :math:`x`, exactly one source class :math:`P` and one destination class :math:`Q`
have marginal 1, which forces :math:`y_{ePQ} = 1` and the edge is charged
:math:`U_e[a, b]` for any :math:`a \in P, b \in Q` — the price of the pair actually used.
The diagonal needs no special case: when :math:`a \to a` is free but :math:`a \to b` inside
the same cloud is not, rows :math:`a` and :math:`b` differ (in column :math:`a` or
:math:`b`), so :math:`a` and :math:`b` are never merged; when they do merge, moving inside
the class costs exactly what the class pair charges. The LP relaxation is unchanged too: a
fractional :math:`y` on locations maps to one on classes by summing, and back by spreading
each class pair's mass in proportion to the marginals, at the same cost.

**Folding.** When one end of an edge has a single class, the edge's price and time are a
function of the other end's option alone: they become part of that option's cost (and of
the precedence row's coefficients), and the edge needs no :math:`y` at all.

**Dominance.** Two options of one job whose locations fall in the same class on every
remaining edge of the job are interchangeable for every edge. Then option :math:`o'`
dominates :math:`o` when it is no more expensive (compute, reads, penalty, folded transfer),
its reads arrive no later, and :math:`\delta' + d' \le \delta + d` (provisioning and run time
both come after the inputs arrive, so only their sum moves the end); on a contended pool it
must also use the same pool with no more GPUs, :math:`d' \le d` and :math:`\delta' \le
\delta` (so its run interval fits inside the other's). Replacing :math:`o` by :math:`o'` in
any plan keeps every constraint and costs no more, so dropping :math:`o` loses no optimum.
Exact ties keep the lower option index (the problem's tie-break). Without a deadline,
budget, time objective or contended pool only cost matters, and each class keeps its
cheapest option.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from placer.optimizer._compile import BoolArray, Compiled, FloatArray, IntArray


def ragged(starts: IntArray, counts: IntArray) -> tuple[IntArray, IntArray]:
    """Expand segments: ``(owner, element)`` for every element of every segment, in order."""
    owner = np.repeat(np.arange(counts.size), counts)
    offsets = np.cumsum(counts) - counts
    return owner, starts[owner] + np.arange(owner.size) - offsets[owner]


def row_classes(m: FloatArray) -> tuple[IntArray, IntArray]:
    """Class of each row of ``m`` (bitwise-identical rows share one, numbered by first
    occurrence), and each class's first row."""
    width = m.shape[1] * 8
    raw = np.ascontiguousarray(m, dtype=np.float64).tobytes()
    seen: dict[bytes, int] = {}
    cls = [seen.setdefault(raw[i * width : (i + 1) * width], len(seen)) for i in range(m.shape[0])]
    first = dict.fromkeys(cls)
    rep = {k: i for i, k in reversed(list(enumerate(cls)))}
    return np.asarray(cls, dtype=np.int64), np.asarray([rep[k] for k in first], dtype=np.int64)


@dataclass(frozen=True)
class Reduction:
    """The reduced model's data. ``x`` columns are the kept options, job after job.

    Attributes:
        xjob, xopt, xloc: Per kept option: its job, its index in ``c.options[job]``, its
            location (index into ``c.locations``).
        xstart, xcount: Per job, its first ``x`` column and number of kept options.
        xreal, xpen: Per kept option: real cost (compute, reads, folded transfers) and
            penalty.
        ye, ys, yd, ykey, yk, ym: Per edge that keeps transportation variables: its index
            in ``c.edges``, source and destination jobs, location-set pair, numbers of
            source and destination classes.
        yusd, yhours: Per such edge, class-pair price and time (padded to the largest).
        row_of_loc, col_of_loc: Per location-set pair, each location's source or
            destination class (-1: not in the set).
        fold_edge, fold_x, fold_hours: Folded transfer times: the precedence row of
            ``c.edges[fold_edge]`` gets ``fold_hours`` on column ``fold_x``.
        dropped: Allowed options not built (dominated).
    """

    xjob: IntArray
    xopt: IntArray
    xloc: IntArray
    xstart: IntArray
    xcount: IntArray
    xreal: FloatArray
    xpen: FloatArray
    ye: IntArray
    ys: IntArray
    yd: IntArray
    ykey: IntArray
    yk: IntArray
    ym: IntArray
    yusd: FloatArray
    yhours: FloatArray
    row_of_loc: IntArray
    col_of_loc: IntArray
    fold_edge: IntArray
    fold_x: IntArray
    fold_hours: FloatArray
    dropped: int


def _compact(labels: IntArray) -> tuple[IntArray, IntArray]:
    """Relabel ``labels`` 0, 1, ... by first occurrence; also each new label's first index."""
    seen: dict[int, int] = {}
    first: list[int] = []
    out = []
    for i, v in enumerate(labels.tolist()):
        k = seen.get(v)
        if k is None:
            k = seen[v] = len(first)
            first.append(i)
        out.append(k)
    return np.asarray(out, dtype=np.int64), np.asarray(first, dtype=np.int64)


@dataclass
class _Keys:
    """Per distinct (source locations, destination locations) pair: its classes.

    Whether two source locations share a class depends only on the destination set (their
    rows over it), so the partition of *all* locations is computed once per destination
    set (``rows``) and once per source set (``cols``), and a pair only relabels it.
    """

    timed: bool
    c: Compiled
    index: dict[tuple[int, int], int] = field(default_factory=dict)
    rows: dict[int, IntArray] = field(default_factory=dict)
    cols: dict[int, IntArray] = field(default_factory=dict)
    row_of_loc: list[IntArray] = field(default_factory=list)
    col_of_loc: list[IntArray] = field(default_factory=list)
    usd: list[FloatArray] = field(default_factory=list)
    hours: list[FloatArray] = field(default_factory=list)
    kind: list[IntArray] = field(default_factory=list)

    def row_part(self, b_set: int) -> IntArray:
        """Class of every location as a source towards location set ``b_set``."""
        found = self.rows.get(b_set)
        if found is None:
            b = self.c.loc_sets[b_set]
            lu, lh = self.c.link_usd[:, b], self.c.link_hours[:, b]
            key = np.hstack((lu, lh)) if self.timed else lu
            if self.c.link_kind is not None:  # never merge links priced differently
                key = np.hstack((key, self.c.link_kind[:, b].astype(np.float64)))
            found = row_classes(key)[0]
            self.rows[b_set] = found
        return found

    def col_part(self, a_set: int) -> IntArray:
        """Class of every location as a destination from location set ``a_set``."""
        found = self.cols.get(a_set)
        if found is None:
            a = self.c.loc_sets[a_set]
            lu, lh = self.c.link_usd[a].T, self.c.link_hours[a].T
            key = np.hstack((lu, lh)) if self.timed else lu
            if self.c.link_kind is not None:
                key = np.hstack((key, self.c.link_kind[a].T.astype(np.float64)))
            found = row_classes(key)[0]
            self.cols[a_set] = found
        return found

    def key(self, s: int, d: int) -> int:
        c = self.c
        k = (int(c.job_loc_set[s]), int(c.job_loc_set[d]))
        found = self.index.get(k)
        if found is not None:
            return found
        a, b = c.loc_sets[k[0]], c.loc_sets[k[1]]
        rc, rrep = _compact(self.row_part(k[1])[a])
        cc, crep = _compact(self.col_part(k[0])[b])
        n_loc = len(c.locations)
        row_of_loc = np.full(n_loc, -1, dtype=np.int64)
        row_of_loc[a] = rc
        col_of_loc = np.full(n_loc, -1, dtype=np.int64)
        col_of_loc[b] = cc
        self.row_of_loc.append(row_of_loc)
        self.col_of_loc.append(col_of_loc)
        ra, cb = a[rrep], b[crep]
        self.usd.append(c.link_usd[ra[:, None], cb])
        if c.link_kind is not None:
            self.kind.append(c.link_kind[ra[:, None], cb])
        zeros = np.zeros((ra.size, cb.size))
        self.hours.append(c.link_hours[ra[:, None], cb] if self.timed else zeros)
        self.index[k] = len(self.usd) - 1
        return len(self.usd) - 1


def reduce_problem(
    c: Compiled, *, timed: bool, risky: dict[str, list[int]], use_penalty: bool,
    prune: bool = True,
) -> Reduction:
    """Classes, folding and dominance (module docstring) for one solve.

    Args:
        c: Compiled problem.
        timed: Whether start times matter (a deadline, the time objective, a budget or a
            contended pool). Without them only prices define classes and only cost
            decides dominance.
        risky: The contended pools' risky jobs (:func:`~placer.optimizer._compile.risky_jobs`).
        use_penalty: Whether penalties count in the cost that dominance compares.
        prune: Whether dominated options are dropped. A model that will later lose options
            (:class:`~placer.optimizer.Replanner`) keeps them: the option that dominated
            another may be the one taken away. Classes and folding stay exact under removal.
    """
    n = c.n
    counts = np.asarray([len(o) for o in c.options], dtype=np.int64)
    starts = np.cumsum(counts) - counts
    ojob = np.repeat(np.arange(n), counts)
    oidx = np.arange(ojob.size) - starts[ojob]
    oloc = np.concatenate(c.opt_loc)
    allowed: BoolArray = np.concatenate(c.allowed)
    base_real = np.concatenate(c.compute) + np.concatenate(c.read_usd)
    pen = np.concatenate(c.penalty)

    keys = _Keys(timed, c)
    moving = [e for e in c.edges if e.gbs]
    e_ids = np.asarray([i for i, e in enumerate(c.edges) if e.gbs], dtype=np.int64)
    e_key = np.asarray([keys.key(e.src, e.dst) for e in moving], dtype=np.int64)
    e_s = np.asarray([e.src for e in moving], dtype=np.int64)
    e_d = np.asarray([e.dst for e in moving], dtype=np.int64)
    n_key = len(keys.usd)
    kk = np.asarray([u.shape[0] for u in keys.usd], dtype=np.int64)
    mm = np.asarray([u.shape[1] for u in keys.usd], dtype=np.int64)
    kmax, mmax = int(kk.max(initial=1)), int(mm.max(initial=1))
    lu = np.zeros((n_key, kmax, mmax))
    lh = np.zeros((n_key, kmax, mmax))
    for i in range(n_key):
        lu[i, : kk[i], : mm[i]] = keys.usd[i]
        lh[i, : kk[i], : mm[i]] = keys.hours[i]
    row_of_loc = np.asarray(keys.row_of_loc, dtype=np.int64).reshape(n_key, len(c.locations))
    col_of_loc = np.asarray(keys.col_of_loc, dtype=np.int64).reshape(n_key, len(c.locations))
    npar = max((len(e.gbs) for e in moving), default=0)
    gbs = np.zeros((len(moving), max(npar, 1)))
    for i, e in enumerate(moving):
        gbs[i, : len(e.gbs)] = e.gbs
    # Same arithmetic, in the same order, as _compile's loc_usd / loc_hours.
    usd = np.zeros((len(moving), kmax, mmax))
    for p in range(npar):
        usd += gbs[:, p, None, None] * lu[e_key]
    hours = gbs.max(axis=1)[:, None, None] * lh[e_key]
    if c.link_kind is not None:  # links with an allowance or tiers: their own price of the GB
        for i, e in enumerate(moving):
            sub = keys.kind[int(e_key[i])]
            for r, q in np.argwhere(sub).tolist():
                kind = c.kinds[int(sub[r, q])]
                assert kind is not None
                usd[i, r, q] = sum(kind.usd(gb) for gb in e.gbs)
    live = np.any(usd != 0, axis=(1, 2))
    if timed:
        live |= np.any(hours != 0, axis=(1, 2))
    k_e, m_e = kk[e_key], mm[e_key]

    # Folding: an edge with one class at one end prices the other end's options. First the
    # edges whose location sets have one class at an end; then, after each dominance pass,
    # those where the options kept at one end all fall in one class.
    cost_fold = np.zeros(ojob.size)
    fold_parts: list[tuple[IntArray, IntArray, FloatArray]] = []
    lone_src = np.zeros(len(moving), dtype=np.int64)  # the single source class, when folded

    def fold(w: IntArray, into_dst: bool, opts_of: IntArray, lone: IntArray) -> None:
        """Fold edges ``w`` into the options ``opts_of`` lists per job (global ids)."""
        if not w.size:
            return
        job = e_d[w] if into_dst else e_s[w]
        owner, pos = ragged(kstart[job], kcount[job])
        opt = opts_of[pos]
        ew = w[owner]
        if into_dst:
            idx = (ew, lone[owner], col_of_loc[e_key[ew], oloc[opt]])
        else:
            idx = (ew, row_of_loc[e_key[ew], oloc[opt]], lone[owner])
        np.add.at(cost_fold, opt, usd[idx])
        if timed:
            fold_parts.append((e_ids[ew], opt, hours[idx]))

    every = np.arange(ojob.size)
    kstart, kcount = starts, counts
    fold_dst = live & (k_e == 1)
    fold_src = live & (k_e > 1) & (m_e == 1)
    fold(np.flatnonzero(fold_dst), True, every, np.zeros(int(fold_dst.sum()), dtype=np.int64))
    fold(np.flatnonzero(fold_src), False, every, np.zeros(int(fold_src.sum()), dtype=np.int64))
    folded = fold_dst | fold_src
    yedge = live & ~folded
    del lone_src

    keep = allowed.copy()
    while True:
        # Signature: each option's class on every edge that still tells locations apart
        # (with times, folded edges too: their transfer time depends on the class).
        sig = np.zeros(ojob.size, dtype=np.int64)
        # A job's class on an edge depends only on the location set at the other end.
        role_sets: dict[tuple[int, int], list[int]] = {}
        for i in np.flatnonzero(yedge | folded if timed else yedge).tolist():
            s, d = int(e_s[i]), int(e_d[i])
            role_sets.setdefault((0, int(c.job_loc_set[d])), []).append(s)
            role_sets.setdefault((1, int(c.job_loc_set[s])), []).append(d)
        for (role, other), jobs in sorted(role_sets.items()):
            uj = np.unique(np.asarray(jobs, dtype=np.int64))
            _, opt = ragged(starts[uj], counts[uj])
            cls = (keys.row_part(other) if role == 0 else keys.col_part(other))[oloc[opt]]
            sig[opt] = sig[opt] * (len(c.locations) + 1) + cls
            if sig.max(initial=0) > 2**40:
                sig = np.unique(sig, return_inverse=True)[1].astype(np.int64).ravel()
        real = base_real + cost_fold
        cost = real + pen if use_penalty else real
        cand = np.flatnonzero(keep)
        if prune and not timed:
            # Only cost matters: each (job, signature) keeps its cheapest option.
            order = cand[np.lexsort((oidx[cand], cost[cand], sig[cand], ojob[cand]))]
            first = np.ones(order.size, dtype=np.bool_)
            first[1:] = (ojob[order[1:]] != ojob[order[:-1]]) | (sig[order[1:]]
                                                                 != sig[order[:-1]])
            keep[order[~first]] = False
        elif prune:
            order = cand[np.lexsort((oidx[cand], sig[cand], ojob[cand]))]
            keep[_dominated(c, order, ojob, oidx, sig, cost, risky)] = False
        kid = np.flatnonzero(keep)
        kcount = np.bincount(ojob[kid], minlength=n).astype(np.int64)
        kstart = np.cumsum(kcount) - kcount
        w = np.flatnonzero(yedge)
        if not w.size:
            break
        lone: dict[bool, tuple[IntArray, IntArray]] = {}
        for into_dst, job, cls_of_loc in ((True, e_s, row_of_loc), (False, e_d, col_of_loc)):
            owner, pos = ragged(kstart[job[w]], kcount[job[w]])
            cls = cls_of_loc[e_key[w[owner]], oloc[kid[pos]]]
            offsets = np.cumsum(kcount[job[w]]) - kcount[job[w]]
            single = np.minimum.reduceat(cls, offsets) == np.maximum.reduceat(cls, offsets)
            lone[into_dst] = (single, cls[offsets])
        to_dst = lone[True][0]
        to_src = lone[False][0] & ~to_dst
        if not (to_dst.any() or to_src.any()):
            break
        fold(w[to_dst], True, kid, lone[True][1][to_dst])
        fold(w[to_src], False, kid, lone[False][1][to_src])
        yedge[w[to_dst | to_src]] = False
        folded[w[to_dst | to_src]] = True

    real = base_real + cost_fold
    xid = np.flatnonzero(keep)
    xjob = ojob[xid]
    xcount = np.bincount(xjob, minlength=n).astype(np.int64)
    xstart = np.cumsum(xcount) - xcount
    xcol = np.full(ojob.size, -1, dtype=np.int64)
    xcol[xid] = np.arange(xid.size)
    if fold_parts:
        fe = np.concatenate([p[0] for p in fold_parts])
        fx = xcol[np.concatenate([p[1] for p in fold_parts])]
        fh = np.concatenate([p[2] for p in fold_parts])
        ok = fx >= 0
        fe, fx, fh = fe[ok], fx[ok], fh[ok]
    else:
        fe = fx = np.zeros(0, dtype=np.int64)
        fh = np.zeros(0)
    y = np.flatnonzero(yedge)
    return Reduction(
        xjob=xjob, xopt=oidx[xid], xloc=oloc[xid], xstart=xstart, xcount=xcount,
        xreal=real[xid], xpen=pen[xid],
        ye=e_ids[y], ys=e_s[y], yd=e_d[y], ykey=e_key[y], yk=k_e[y], ym=m_e[y],
        yusd=usd[y], yhours=hours[y], row_of_loc=row_of_loc, col_of_loc=col_of_loc,
        fold_edge=fe, fold_x=fx, fold_hours=fh, dropped=int(allowed.sum() - xid.size),
    )


def _dominated(
    c: Compiled, order: IntArray, ojob: IntArray, oidx: IntArray, sig: IntArray,
    cost: FloatArray, risky: dict[str, list[int]],
) -> IntArray:
    """Options dominated by another of the same job and signature (module docstring)."""
    dur = np.concatenate(c.dur)
    delay = np.concatenate(c.delay)
    read_h = np.concatenate(c.read_h)
    counts = np.asarray([len(o) for o in c.options], dtype=np.int64)
    starts = np.cumsum(counts) - counts
    pool = np.full(ojob.size, -1, dtype=np.int64)  # contended pool id, -1: none
    gpus = np.zeros(ojob.size)
    for p, (name, jobs) in enumerate(sorted(risky.items())):
        for j in jobs:
            for o, opt in enumerate(c.options[j]):
                if opt.pool == name and opt.pool_gpus > 0:
                    pool[starts[j] + o] = p
                    gpus[starts[j] + o] = opt.pool_gpus
    if order.size == 0:
        return order
    new = np.ones(order.size, dtype=np.bool_)
    new[1:] = (ojob[order[1:]] != ojob[order[:-1]]) | (sig[order[1:]] != sig[order[:-1]])
    gstart = np.flatnonzero(new)
    gsize = np.diff(np.append(gstart, order.size))
    member = np.repeat(np.arange(gstart.size), gsize)
    # Every ordered pair (a dominates b?) inside each group.
    b_pos, a_pos = ragged(gstart[member], gsize[member])
    a, b = order[a_pos], order[b_pos]
    ends_a, ends_b = delay[a] + dur[a], delay[b] + dur[b]

    def weak(a: IntArray, b: IntArray) -> BoolArray:
        ok: BoolArray = (cost[a] <= cost[b]) & (read_h[a] <= read_h[b])
        free = pool[a] < 0
        ok &= np.where(
            free,
            delay[a] + dur[a] <= delay[b] + dur[b],
            (pool[a] == pool[b]) & (gpus[a] <= gpus[b]) & (dur[a] <= dur[b])
            & (delay[a] <= delay[b]),
        )
        return ok

    del ends_a, ends_b
    forward, backward = weak(a, b), weak(b, a)
    dominates = forward & (~backward | (oidx[a] < oidx[b])) & (a != b)
    out: IntArray = np.unique(b[dominates])
    return out
