r"""Exact MILP for placement with data transfer, provisioning delays and pool capacity (HiGHS).

This is the reference method: it handles any DAG and binding capacity. The model is built in
numpy arrays and handed to HiGHS in one ``passModel`` call, so a 1,000-job problem costs no
per-element Python calls into the solver.

Sets: jobs :math:`j`; options :math:`o \in O_j` (with location :math:`\ell(o)`); merged edges
:math:`e = (s, d)` with the locations :math:`A_e` of :math:`s`'s options and :math:`B_e` of
:math:`d`'s; pools :math:`p` with capacity :math:`C_p`.

Data (per option): duration :math:`d_{jo} > 0`, compute cost :math:`c_{jo}`, penalty
:math:`\pi_{jo}`, provisioning delay :math:`\delta_{jo}`, read cost :math:`r_{jo}` and read
time :math:`\rho_{jo}` (sum / max over the job's reads from option :math:`o`'s location), GPUs
:math:`g_{jo}` taken from pool :math:`p(o)`. Per edge and location pair: transfer cost
:math:`u_{eab}` and time :math:`h_{eab}` (zero when :math:`a = b`).

Variables: :math:`x_{jo} \in \{0,1\}` (option chosen; fixed to 0 when :math:`g_{jo} > C_{p(o)}`),
:math:`y_{eab} \in [0,1]` (edge :math:`e` moves from :math:`a` to :math:`b`), start
:math:`S_j \in [0, H]`, makespan :math:`T \in [0, H]`, and per contended pool the
resource-flow variables below. Write :math:`D_j = \sum_o d_{jo} x_{jo}` (a linear expression).

.. math::

    \sum_{o} x_{jo} = 1 \quad \forall j
    \\
    \sum_{b} y_{eab} = \sum_{o:\ell(o)=a} x_{so}, \quad
    \sum_{a} y_{eab} = \sum_{o:\ell(o)=b} x_{do} \quad \forall e=(s,d), a, b
    \\
    S_d \ge S_s + D_s + \sum_{ab} h_{eab} y_{eab} + \sum_o \delta_{do} x_{do} \quad \forall e
    \\
    S_j \ge \sum_o (\rho_{jo} + \delta_{jo}) x_{jo} \quad \forall j
    \\
    T \ge S_j + D_j \quad \forall j \text{ without successors}

The transfer linearisation is a transportation polytope: with binary :math:`x`, exactly one
row and one column marginal are 1, which forces :math:`y_{eab} = 1` for exactly the chosen pair,
so :math:`y` may stay continuous. Its LP relaxation is tighter than the usual
:math:`y \ge x_s + x_d - 1` (it aggregates options by location and keeps the marginals
exact), which matters for the bound on large DAGs. One source-marginal row per edge is
implied by the others (both sides sum to one) and is left out.

The model is built on a reduced problem (:mod:`placer.optimizer._classes`, which proves each
step exact): :math:`a, b` range over *location classes* of the edge (locations whose link
prices, and times when they matter, are identical towards the other end), not locations;
an edge with one class at an end becomes a per-option cost (and time) of the other end and
gets no :math:`y`; options dominated by another of the same job in the same classes are not
built. On SkyPilot-style DAGs (19 regions, egress by source cloud) this leaves about three
options per job and 3x3 :math:`y` per edge, from ~18 options and up to 19x19.

Only what can bind is built. Start times, :math:`T` and the precedence, release and
makespan rows exist only when times matter: a deadline, the ``"time"`` objective, or a
contended pool. Without them (``"cost"`` alone, the common case) the model is the assignment
and transportation rows only, and it is first solved as an LP: that LP is the local-polytope
relaxation of a pairwise assignment problem and is integral on these instances; when its
optimum is integral in :math:`x` (checked to 1e-9), it is a proven integer optimum (the
relaxation's value is a lower bound it attains), reported ``optimal``. Otherwise the same
model is re-solved with :math:`x` binary. The LP runs with presolve off (measured faster).

Objectives. ``"cost"``: :math:`\min \sum_{jo}(c_{jo} + r_{jo} + \pi_{jo}) x_{jo} + \sum_{eab}
u_{eab} y_{eab}`, with :math:`T \le \text{deadline}` when one is given. ``"time"``:
:math:`\min T` with real cost (no :math:`\pi`) :math:`\le` budget; then, lexicographically, a
second solve fixes :math:`T \le T^* + 10^{-6}` and minimises real cost, so among plans
equally fast the cheapest is returned; that second solve gets at most twice the first one's
time (at least :data:`TIE_BREAK_MIN_S`), and if it stops early the cheaper of its plan and
the first is kept (the makespan is optimal either way).

Capacity (Artigues, Michelon & Reusser 2003, resource flow). Only pools that some set of
concurrently-runnable jobs could overcommit get constraints, and only for the jobs that could
be in such a set (see :func:`placer.optimizer._compile.risky_jobs`). For such a pool with
risky jobs :math:`R`, let :math:`G_i = \sum_{o: p(o)=p} g_{io} x_{io}`. A flow of GPUs leaves a
source (:math:`C_p` units), passes through jobs and reaches a sink:

.. math::

    f_{0i} + \sum_{k} f_{ki} = G_i = f_{i\infty} + \sum_k f_{ik} \quad \forall i \in R,
    \qquad f_{0\infty} + \sum_i f_{0i} = C_p
    \\
    f_{ik} \le U_{ik} z_{ik}, \quad
    S_k \ge S_i + D_i - H (1 - z_{ik}), \quad z_{ik} + z_{ki} \le 1
    \quad \forall i, k \in R \text{ incomparable in the DAG}

with :math:`z_{ik} \in \{0,1\}` ("i ends before k starts") and free arcs :math:`f_{ik}` (no
:math:`z`) when :math:`i` is an ancestor of :math:`k`. *Why it is exact:* every flow arc
points forward in time (:math:`E_i \le S_k`). Cut the network at any instant :math:`t`
between jobs started by :math:`t` (with the source) and the rest (with the sink): no arc
crosses backwards, so exactly :math:`C_p` units cross forward, and every job running at
:math:`t` sends all its :math:`G_i` across the cut on its own arcs; hence the running jobs use
at most :math:`C_p`. Conversely, any schedule respecting capacity admits such a flow (hand
GPUs from finished jobs to starting ones in time order), with :math:`z_{ik} = [E_i \le S_k]`.
So the feasible (choice, schedule) pairs are exactly those of the cost model.

:math:`H` is a safe horizon: the sum over jobs of their longest delay + duration, longest
read and longest inbound transfer. Running jobs one at a time in topological order fits in
:math:`H`, and the schedule reported (SSGS, see :mod:`placer.optimizer._solution`) never starts
a job later than the MILP's, so bounding starts by :math:`H` loses no optimal plan.

HiGHS settings: ``output_flag`` off (and the constructor's banner swallowed, see
:mod:`placer.optimizer._highs`), one thread and a fixed seed (same input, same answer),
``mip_rel_gap`` 1e-6, the caller's ``time_limit``. Status mapping: optimal → ``optimal``;
infeasible → ``infeasible``; time limit with an incumbent → ``feasible`` with HiGHS's dual
bound as ``lower_bound``; anything else → :class:`~placer.errors.SolverError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from placer.errors import SolverError
from placer.optimizer._classes import Reduction, ragged, reduce_problem
from placer.optimizer._compile import BoolArray, Compiled, FloatArray, IntArray, risky_jobs
from placer.optimizer._highs import quiet_highs
from placer.optimizer._solution import Objective, Solution, build, infeasible

_INF = highspy.kHighsInf
#: The least time the "time" objective's cheapest-among-the-fastest tie-break may take.
TIE_BREAK_MIN_S = 1.0


@dataclass
class _Model:
    """Column bounds and a COO matrix under construction (local to one build).

    Rows and entries arrive in numpy blocks (one block per kind of row), so building a
    2,000-job model costs a few dozen array operations, not one Python call per row.
    """

    ncol: int = 0
    lb: list[FloatArray] = field(default_factory=list)
    ub: list[FloatArray] = field(default_factory=list)
    integer: list[BoolArray] = field(default_factory=list)
    rows: list[IntArray] = field(default_factory=list)
    cols: list[IntArray] = field(default_factory=list)
    vals: list[FloatArray] = field(default_factory=list)
    nrow: int = 0
    row_lo: list[FloatArray] = field(default_factory=list)
    row_hi: list[FloatArray] = field(default_factory=list)

    def add_cols(self, k: int, lb: float, ub: float, integer: bool = False) -> int:
        first = self.ncol
        self.ncol += k
        self.lb.append(np.full(k, lb))
        self.ub.append(np.full(k, ub))
        self.integer.append(np.full(k, integer, dtype=np.bool_))
        return first

    def add_rows(self, k: int, lo: float, hi: float) -> int:
        first = self.nrow
        self.nrow += k
        self.row_lo.append(np.full(k, lo))
        self.row_hi.append(np.full(k, hi))
        return first

    def entries(self, rows: object, cols: object, vals: object) -> None:
        r = np.asarray(rows, dtype=np.int64).ravel()
        c = np.asarray(cols, dtype=np.int64).ravel()
        v = np.broadcast_to(np.asarray(vals, dtype=np.float64), r.shape).ravel()
        self.rows.append(r)
        self.cols.append(np.broadcast_to(c, r.shape).ravel())
        self.vals.append(v)

    def add_row(self, cols: object, vals: object, lo: float, hi: float) -> None:
        row = self.add_rows(1, lo, hi)
        c = np.asarray(cols, dtype=np.int64).ravel()
        self.entries(np.full(c.size, row), c, vals)


@dataclass(frozen=True)
class _Built:
    lp: highspy.HighsLp
    red: Reduction
    timed: bool
    s0: int
    t_col: int
    cost_real: FloatArray
    integer: IntArray


def _horizon(c: Compiled) -> float:
    h = 0.0
    for j in range(c.n):
        ok = c.allowed[j]
        h += float(np.max((c.delay[j] + c.dur[j])[ok], initial=0.0))
        h += float(np.max(c.read_h[j][ok], initial=0.0))
    for e in c.edges:
        h += float(np.max(e.loc_hours, initial=0.0))
    return h + 1.0


def build_model(
    c: Compiled, objective: Objective, deadline: float | None, budget: float | None,
    use_penalty: bool, risky: dict[str, list[int]], prune: bool = True,
) -> _Built:
    timed = objective == "time" or deadline is not None or bool(risky)
    r = reduce_problem(c, timed=timed, risky=risky,
                       use_penalty=use_penalty and objective == "cost", prune=prune)
    m = _Model()
    n = c.n
    nx = r.xjob.size
    m.add_cols(nx, 0.0, 1.0, integer=True)
    ostart = np.cumsum([len(o) for o in c.options]) - np.asarray([len(o) for o in c.options])
    gid = ostart[r.xjob] + r.xopt  # each x column's option in the concatenated arrays
    xcols = np.arange(nx)
    m.add_rows(n, 1.0, 1.0)
    m.entries(r.xjob, xcols, 1.0)

    # Transportation on location classes: y[e, P, Q] with both marginals tied to x.
    size = r.yk * r.ym
    y0 = m.add_cols(int(size.sum()), 0.0, 1.0)
    ybase = y0 + np.cumsum(size) - size
    # One source row per edge is implied by the others (both sides sum to 1): left out.
    src_row = m.add_rows(int(r.yk.sum()) - r.yk.size, 0.0, 0.0) + np.cumsum(r.yk - 1) - r.yk + 1
    dst_row = m.add_rows(int(r.ym.sum()), 0.0, 0.0) + np.cumsum(r.ym) - r.ym
    owner, ycol = ragged(ybase, size)
    local = ycol - ybase[owner]
    p, q = local // r.ym[owner], local % r.ym[owner]
    last = p == r.yk[owner] - 1
    m.entries(src_row[owner[~last]] + p[~last], ycol[~last], 1.0)
    m.entries(dst_row[owner] + q, ycol, 1.0)
    y_usd, y_hours = r.yusd[owner, p, q], r.yhours[owner, p, q]
    w, x = ragged(r.xstart[r.ys], r.xcount[r.ys])
    cls = r.row_of_loc[r.ykey[w], r.xloc[x]]
    kept = cls < r.yk[w] - 1
    m.entries(src_row[w[kept]] + cls[kept], x[kept], -1.0)
    w, x = ragged(r.xstart[r.yd], r.xcount[r.yd])
    m.entries(dst_row[w] + r.col_of_loc[r.ykey[w], r.xloc[x]], x, -1.0)

    s0 = t_col = -1
    if timed:
        horizon = _horizon(c)
        s0 = m.add_cols(n, 0.0, horizon)
        t_col = m.add_cols(1, 0.0, horizon if deadline is None else min(horizon, deadline))
        dur, delay = np.concatenate(c.dur)[gid], np.concatenate(c.delay)[gid]
        read_h = np.concatenate(c.read_h)[gid]
        # Precedence: S_d >= S_s + D_s + transfer time + delay_d, one row per edge.
        es = np.asarray([e.src for e in c.edges], dtype=np.int64)
        ed = np.asarray([e.dst for e in c.edges], dtype=np.int64)
        prec = m.add_rows(len(c.edges), 0.0, _INF)
        rows = prec + np.arange(len(c.edges))
        m.entries(rows, s0 + ed, 1.0)
        m.entries(rows, s0 + es, -1.0)
        w, x = ragged(r.xstart[es], r.xcount[es])
        m.entries(rows[w], x, -dur[x])
        w, x = ragged(r.xstart[ed], r.xcount[ed])
        m.entries(rows[w], x, -delay[x])
        m.entries(prec + r.ye[owner], ycol, -y_hours)
        m.entries(prec + r.fold_edge, r.fold_x, -r.fold_hours)
        # Release (reads and provisioning) and makespan.
        rel = m.add_rows(n, 0.0, _INF)
        m.entries(rel + np.arange(n), s0 + np.arange(n), 1.0)
        m.entries(rel + r.xjob, xcols, -(read_h + delay))
        sinks = np.asarray([j for j in range(n) if not c.out_edges[j]], dtype=np.int64)
        mk = m.add_rows(sinks.size, 0.0, _INF) + np.arange(sinks.size)
        m.entries(mk, t_col, 1.0)
        m.entries(mk, s0 + sinks, -1.0)
        is_sink = np.zeros(n, dtype=np.bool_)
        is_sink[sinks] = True
        sink_row = np.full(n, -1, dtype=np.int64)
        sink_row[sinks] = mk
        sx = np.flatnonzero(is_sink[r.xjob])
        m.entries(sink_row[r.xjob[sx]], sx, -dur[sx])
        _add_capacity(m, c, r, s0, horizon, risky)

    cost_real = np.zeros(m.ncol)
    cost_real[:nx] = r.xreal
    cost_real[ycol] = y_usd
    if objective == "time" and budget is not None:
        priced = np.flatnonzero(cost_real)
        m.add_row(priced, cost_real[priced], -_INF, budget)
    if objective == "cost":
        col_cost = cost_real.copy()
        if use_penalty:
            col_cost[:nx] += r.xpen
    else:
        col_cost = np.zeros(m.ncol)
        col_cost[t_col] = 1.0

    start, index, value = _csc(m)
    lp = highspy.HighsLp()
    lp.num_col_ = m.ncol
    lp.num_row_ = m.nrow
    lp.col_cost_ = col_cost
    lp.col_lower_ = np.concatenate(m.lb)
    lp.col_upper_ = np.concatenate(m.ub)
    lp.row_lower_ = np.concatenate(m.row_lo) if m.row_lo else np.zeros(0)
    lp.row_upper_ = np.concatenate(m.row_hi) if m.row_hi else np.zeros(0)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    integer = np.flatnonzero(np.concatenate(m.integer)).astype(np.int64)
    return _Built(lp, r, timed, s0, t_col, cost_real, integer)


def _csc(m: _Model) -> tuple[IntArray, IntArray, FloatArray]:
    """Column-wise (CSC) arrays of the COO triplets, duplicates summed, zeros dropped."""
    rows = np.concatenate(m.rows) if m.rows else np.zeros(0, np.int64)
    cols = np.concatenate(m.cols) if m.cols else np.zeros(0, np.int64)
    vals = np.concatenate(m.vals) if m.vals else np.zeros(0)
    nrow = max(1, m.nrow)
    uniq, inverse = np.unique(cols * nrow + rows, return_inverse=True)  # sorted by (col, row)
    sums = np.bincount(inverse.ravel(), weights=vals, minlength=uniq.size)
    keep = sums != 0
    uniq, sums = uniq[keep], sums[keep]
    ucols, urows = uniq // nrow, uniq % nrow
    start = np.zeros(m.ncol + 1, dtype=np.int64)
    np.add.at(start, ucols + 1, 1)
    return np.cumsum(start).astype(np.int32), urows.astype(np.int32), sums.astype(np.float64)


def _add_capacity(
    m: _Model, c: Compiled, r: Reduction, s0: int, horizon: float, risky: dict[str, list[int]]
) -> None:
    """Resource-flow constraints for each contended pool (see module docstring)."""
    if not risky:
        return
    reach: BoolArray = c.reach()

    def xs(i: int) -> IntArray:
        return np.arange(r.xstart[i], r.xstart[i] + r.xcount[i])

    for pool, jobs in risky.items():
        cap = float(c.problem.capacity[pool])
        g_cols: dict[int, tuple[IntArray, FloatArray]] = {}
        gmax: dict[int, float] = {}
        for i in jobs:
            sel = np.asarray([x for x in xs(i) if c.options[i][r.xopt[x]].pool == pool],
                             dtype=np.int64)
            gi = np.asarray([float(c.options[i][r.xopt[x]].pool_gpus) for x in sel])
            g_cols[i] = (sel, gi)
            gmax[i] = float(gi.max(initial=0.0))
        out_f: dict[int, list[int]] = {i: [] for i in jobs}
        in_f: dict[int, list[int]] = {i: [] for i in jobs}
        src_cols = []
        for i in jobs:
            f0 = m.add_cols(1, 0.0, gmax[i])
            fz = m.add_cols(1, 0.0, gmax[i])
            src_cols.append(f0)
            in_f[i].append(f0)
            out_f[i].append(fz)
        f_ss = m.add_cols(1, 0.0, cap)
        m.add_row([*src_cols, f_ss], np.ones(len(src_cols) + 1), cap, cap)
        z: dict[tuple[int, int], int] = {}
        for i in jobs:
            dur_i = np.asarray([c.dur[i][o] for o in r.xopt[xs(i)]])
            for k in jobs:
                if i == k or reach[k, i]:
                    continue
                u = min(gmax[i], gmax[k])
                f = m.add_cols(1, 0.0, u)
                out_f[i].append(f)
                in_f[k].append(f)
                if reach[i, k]:
                    continue
                zc = m.add_cols(1, 0.0, 1.0, integer=True)
                z[i, k] = zc
                m.add_row([f, zc], [1.0, -u], -_INF, 0.0)
                m.add_row(
                    np.concatenate(([s0 + k, s0 + i, zc], xs(i))),
                    np.concatenate(([1.0, -1.0, -horizon], -dur_i)),
                    -horizon,
                    _INF,
                )
        for (i, k), zc in z.items():
            if i < k:
                m.add_row([zc, z[k, i]], [1.0, 1.0], -_INF, 1.0)
        for i in jobs:
            gc, gv = g_cols[i]
            for flows in (out_f[i], in_f[i]):
                m.add_row(
                    np.concatenate((np.asarray(flows, dtype=np.int64), gc)),
                    np.concatenate((np.ones(len(flows)), -gv)),
                    0.0,
                    0.0,
                )


def new_highs(lp: highspy.HighsLp, time_limit_s: float) -> highspy.Highs:
    h: highspy.Highs = quiet_highs()  # HiGHS's constructor banner would otherwise hit stdout
    for name, value in (
        ("output_flag", False),
        ("log_to_console", False),
        ("threads", 1),
        ("random_seed", 0),
        ("mip_rel_gap", 1e-6),
        ("mip_feasibility_tolerance", 1e-9),
        ("primal_feasibility_tolerance", 1e-9),
        ("time_limit", max(time_limit_s, 0.01)),
    ):
        h.setOptionValue(name, value)
    status = h.passModel(lp)
    if status == highspy.HighsStatus.kError:
        raise SolverError("HiGHS rejected the model (passModel failed)")
    return h


# Statuses meaning "stopped early"; looked up by name because they vary across HiGHS versions.
_STOPPED = {
    getattr(highspy.HighsModelStatus, name)
    for name in ("kTimeLimit", "kInterrupt", "kIterationLimit", "kSolutionLimit",
                 "kMemoryLimit", "kHighsInterrupt")
    if hasattr(highspy.HighsModelStatus, name)
}
_INFEASIBLE = {
    highspy.HighsModelStatus.kInfeasible,
    highspy.HighsModelStatus.kUnboundedOrInfeasible,
}


def run_highs(h: highspy.Highs) -> tuple[str, FloatArray | None, float | None]:
    """Run HiGHS; returns (status, column values or None, dual bound)."""
    h.run()
    ms = h.getModelStatus()
    info = h.getInfo()
    has_sol = info.primal_solution_status == 2  # kSolutionStatusFeasible
    values = np.asarray(h.getSolution().col_value) if has_sol else None
    if ms == highspy.HighsModelStatus.kOptimal:
        return "optimal", values, float(info.mip_dual_bound)
    if ms in _INFEASIBLE:
        # Every variable is bounded and costs are non-negative: "unbounded" cannot happen.
        return "infeasible", None, None
    if ms in _STOPPED:
        if values is None:
            raise SolverError(
                f"HiGHS stopped ({h.modelStatusToString(ms)}) before finding any feasible "
                "plan; raise time_limit_s"
            )
        return "feasible", values, float(info.mip_dual_bound)
    raise SolverError(f"HiGHS failed: {h.modelStatusToString(ms)}")


def solve_milp(
    c: Compiled,
    objective: Objective,
    *,
    deadline: float | None,
    budget: float | None,
    time_limit_s: float,
    use_penalty: bool = True,
) -> Solution:
    """Solve ``c`` exactly with HiGHS (see the module docstring for the model).

    Args:
        c: Compiled problem.
        objective: ``"cost"`` or ``"time"``.
        deadline: Makespan bound for ``"cost"`` (ignored for ``"time"``).
        budget: Real-cost bound for ``"time"`` (ignored for ``"cost"``).
        time_limit_s: Wall-clock budget for all HiGHS runs together.
        use_penalty: Whether penalties count in the cost objective (False is used internally
            to find the cheapest *real* cost for infeasibility messages).

    Raises:
        SolverError: HiGHS failed, or stopped before finding any plan.
    """
    t0 = time.perf_counter()
    if objective == "time":
        deadline = None
    else:
        budget = None
    if not all(bool(a.any()) for a in c.allowed):
        return infeasible("milp", objective, "", time.perf_counter() - t0)
    risky = risky_jobs(c)
    built = build_model(c, objective, deadline, budget, use_penalty, risky)
    h = new_highs(built.lp, time_limit_s)
    status: str
    values: FloatArray | None
    if not built.timed:
        # Pure cost: the LP relaxation is usually integral; an integral LP optimum is a
        # proven integer optimum (its value is a lower bound it attains).
        h.setOptionValue("presolve", "off")  # measured: faster on these LPs, same answer
        status, values, bound = run_highs(h)
        if status != "optimal" or values is None or not is_integral(values, built):
            h.setOptionValue("presolve", "choose")
            _integers(h, built)
            h.setOptionValue("time_limit", max(0.01, time_limit_s - (time.perf_counter() - t0)))
            status, values, bound = run_highs(h)
    else:
        _integers(h, built)
        status, values, bound = run_highs(h)
    if status == "infeasible" or values is None:
        return infeasible("milp", objective, "", time.perf_counter() - t0)

    if objective == "time" and status == "optimal":
        # Lexicographic tie-break: among plans within 1e-6 h of the best makespan, the
        # cheapest, given at most twice the time the makespan took (at least a second): with
        # the makespan pinned this is the hardest kind of deadline problem, and a user who
        # asked for the fastest plan should not wait a minute for its price to fall 1 %.
        best_t = float(values[built.t_col])
        spent = time.perf_counter() - t0
        remaining = min(time_limit_s - spent, max(TIE_BREAK_MIN_S, 2.0 * spent))
        if remaining > 0.05:
            h.changeColBounds(built.t_col, 0.0, best_t + 1e-6)
            h.changeColsCost(
                built.lp.num_col_, np.arange(built.lp.num_col_, dtype=np.int32), built.cost_real
            )
            h.setOptionValue("time_limit", remaining)
            # Not warm-started: with highspy 1.16, setSolution() before this re-solve returned
            # column values inconsistent with the reported objective on a tested instance.
            h.clearSolver()
            h.run()
            info = h.getInfo()
            if info.primal_solution_status == 2:
                tied = np.asarray(h.getSolution().col_value)
                # Stopped early, its incumbent may cost more than the first plan: keep the cheaper.
                if float(built.cost_real @ tied) <= float(built.cost_real @ values) + 1e-9:
                    values = tied

    choice = chosen(values, built.red)
    order: list[int] | None = None
    if built.timed:
        starts = values[built.s0 : built.s0 + c.n]
        pos = {j: p for p, j in enumerate(c.topo)}
        order = sorted(range(c.n), key=lambda j: (round(float(starts[j]), 6), pos[j]))
    return build(
        c,
        choice,
        status="optimal" if status == "optimal" else "feasible",
        method="milp",
        objective=objective,
        solve_time_s=time.perf_counter() - t0,
        order=order,
        lower_bound=bound,
    )


def chosen(values: FloatArray, r: Reduction) -> list[int]:
    """Each job's option: its ``x`` column with the largest value, the first on a tie
    (every job has at least one column)."""
    x = values[: r.xjob.size]
    top = np.flatnonzero(x >= np.maximum.reduceat(x, r.xstart)[r.xjob])
    first = top[np.r_[True, r.xjob[top[1:]] != r.xjob[top[:-1]]]]
    choice = np.empty(r.xstart.size, dtype=np.int64)
    choice[r.xjob[first]] = r.xopt[first]
    return [int(o) for o in choice]


def is_integral(values: FloatArray, built: _Built) -> bool:
    """Whether every integer column of an LP solution is 0 or 1 (within 1e-9)."""
    v = values[built.integer]
    return bool(np.all((v <= 1e-9) | (v >= 1.0 - 1e-9)))


def _integers(h: highspy.Highs, built: _Built) -> None:
    """Mark the binary columns as integers (the model is passed as an LP)."""
    idx = built.integer
    if idx.size:
        h.changeColsIntegrality(idx.size, idx.astype(np.int32), np.ones(idx.size, dtype=np.uint8))
