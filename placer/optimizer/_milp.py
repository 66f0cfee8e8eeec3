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
exact), which matters for the bound on large DAGs.

Objectives. ``"cost"``: :math:`\min \sum_{jo}(c_{jo} + r_{jo} + \pi_{jo}) x_{jo} + \sum_{eab}
u_{eab} y_{eab}`, with :math:`T \le \text{deadline}` when one is given. ``"time"``:
:math:`\min T` with real cost (no :math:`\pi`) :math:`\le` budget; then, lexicographically, a
second solve fixes :math:`T \le T^* + 10^{-6}` and minimises real cost, so among plans
equally fast the cheapest is returned.

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
from placer.optimizer._compile import BoolArray, Compiled, FloatArray, IntArray, risky_jobs
from placer.optimizer._highs import quiet_highs
from placer.optimizer._solution import Objective, Solution, build, infeasible

_INF = highspy.kHighsInf


@dataclass
class _Model:
    """Column bounds, costs and a COO matrix under construction (local to one build)."""

    lb: list[float] = field(default_factory=list)
    ub: list[float] = field(default_factory=list)
    integer: list[bool] = field(default_factory=list)
    rows: list[FloatArray] = field(default_factory=list)
    cols: list[FloatArray] = field(default_factory=list)
    vals: list[FloatArray] = field(default_factory=list)
    row_lo: list[float] = field(default_factory=list)
    row_hi: list[float] = field(default_factory=list)

    def add_cols(self, k: int, lb: float, ub: float, integer: bool = False) -> int:
        first = len(self.lb)
        self.lb.extend([lb] * k)
        self.ub.extend([ub] * k)
        self.integer.extend([integer] * k)
        return first

    def add_row(self, cols: object, vals: object, lo: float, hi: float) -> None:
        c = np.asarray(cols, dtype=np.float64).ravel()
        v = np.asarray(vals, dtype=np.float64).ravel()
        self.rows.append(np.full(c.shape, len(self.row_lo), dtype=np.float64))
        self.cols.append(c)
        self.vals.append(v)
        self.row_lo.append(lo)
        self.row_hi.append(hi)


@dataclass(frozen=True)
class _Built:
    lp: highspy.HighsLp
    xoff: list[int]
    s0: int
    t_col: int
    cost_real: FloatArray
    cost_pen: FloatArray


def _horizon(c: Compiled) -> float:
    h = 0.0
    for j in range(c.n):
        ok = c.allowed[j]
        h += float(np.max((c.delay[j] + c.dur[j])[ok], initial=0.0))
        h += float(np.max(c.read_h[j][ok], initial=0.0))
    for e in c.edges:
        h += float(np.max(e.loc_hours, initial=0.0))
    return h + 1.0


def _build(
    c: Compiled, objective: Objective, deadline: float | None, budget: float | None,
    use_penalty: bool,
) -> _Built:
    m = _Model()
    n = c.n
    horizon = _horizon(c)
    xoff = []
    for j in range(n):
        first = m.add_cols(len(c.options[j]), 0.0, 1.0, integer=True)
        for o, ok in enumerate(c.allowed[j]):
            if not ok:
                m.ub[first + o] = 0.0
        xoff.append(first)
    s0 = m.add_cols(n, 0.0, horizon)
    t_col = m.add_cols(1, 0.0, horizon if deadline is None else min(horizon, deadline))

    def xcols(j: int) -> FloatArray:
        return np.arange(xoff[j], xoff[j] + len(c.options[j]), dtype=np.float64)

    for j in range(n):
        m.add_row(xcols(j), np.ones(len(c.options[j])), 1.0, 1.0)
        # Release: reads and provisioning.
        m.add_row(
            np.concatenate(([s0 + j], xcols(j))),
            np.concatenate(([1.0], -(c.read_h[j] + c.delay[j]))),
            0.0,
            _INF,
        )
        if not c.out_edges[j]:
            m.add_row(
                np.concatenate(([t_col, s0 + j], xcols(j))),
                np.concatenate(([1.0, -1.0], -c.dur[j])),
                0.0,
                _INF,
            )

    y_cost: dict[int, float] = {}
    for e in c.edges:
        s, d = e.src, e.dst
        ycols: FloatArray = np.zeros(0)
        yh: FloatArray = np.zeros(0)
        if e.moves_data:
            na, nb = e.loc_usd.shape
            y = m.add_cols(na * nb, 0.0, 1.0)
            grid = np.arange(y, y + na * nb, dtype=np.float64).reshape(na, nb)
            src_loc = np.asarray([e.src_locs.index(o.location) for o in c.options[s]])
            dst_loc = np.asarray([e.dst_locs.index(o.location) for o in c.options[d]])
            for a in range(na):
                sel = xcols(s)[src_loc == a]
                m.add_row(
                    np.concatenate((grid[a], sel)),
                    np.concatenate((np.ones(nb), -np.ones(sel.size))), 0.0, 0.0,
                )
            for b in range(nb):
                sel = xcols(d)[dst_loc == b]
                m.add_row(
                    np.concatenate((grid[:, b], sel)),
                    np.concatenate((np.ones(na), -np.ones(sel.size))), 0.0, 0.0,
                )
            ycols, yh = grid.ravel(), e.loc_hours.ravel()
            for ycol, yusd in zip(ycols, e.loc_usd.ravel(), strict=True):
                y_cost[int(ycol)] = float(yusd)
        m.add_row(
            np.concatenate(([s0 + d, s0 + s], xcols(s), ycols, xcols(d))),
            np.concatenate(([1.0, -1.0], -c.dur[s], -yh, -c.delay[d])),
            0.0,
            _INF,
        )

    _add_capacity(m, c, xoff, s0, horizon)

    ncol = len(m.lb)
    cost_real = np.zeros(ncol)
    cost_pen = np.zeros(ncol)
    for j in range(n):
        sl = slice(xoff[j], xoff[j] + len(c.options[j]))
        cost_real[sl] = c.compute[j] + c.read_usd[j]
        cost_pen[sl] = c.penalty[j]
    for col, usd in y_cost.items():
        cost_real[col] = usd
    if objective == "time" and budget is not None:
        nz = np.flatnonzero(cost_real)
        m.add_row(nz.astype(np.float64), cost_real[nz], -_INF, budget)

    if objective == "cost":
        col_cost = cost_real + cost_pen if use_penalty else cost_real.copy()
    else:
        col_cost = np.zeros(ncol)
        col_cost[t_col] = 1.0

    start, index, value = _csc(m, ncol)
    lp = highspy.HighsLp()
    lp.num_col_ = ncol
    lp.num_row_ = len(m.row_lo)
    lp.col_cost_ = col_cost
    lp.col_lower_ = np.asarray(m.lb)
    lp.col_upper_ = np.asarray(m.ub)
    lp.row_lower_ = np.asarray(m.row_lo)
    lp.row_upper_ = np.asarray(m.row_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
        for i in m.integer
    ]
    return _Built(lp, xoff, s0, t_col, cost_real, cost_pen)


def _csc(m: _Model, ncol: int) -> tuple[IntArray, IntArray, FloatArray]:
    """Column-wise (CSC) arrays of the COO triplets, duplicates summed, zeros dropped."""
    rows = np.concatenate(m.rows).astype(np.int64) if m.rows else np.zeros(0, np.int64)
    cols = np.concatenate(m.cols).astype(np.int64) if m.cols else np.zeros(0, np.int64)
    vals = np.concatenate(m.vals) if m.vals else np.zeros(0)
    nrow = max(1, len(m.row_lo))
    uniq, inverse = np.unique(cols * nrow + rows, return_inverse=True)  # sorted by (col, row)
    sums = np.bincount(inverse, weights=vals, minlength=uniq.size)
    keep = sums != 0
    uniq, sums = uniq[keep], sums[keep]
    ucols, urows = uniq // nrow, uniq % nrow
    start = np.zeros(ncol + 1, dtype=np.int64)
    np.add.at(start, ucols + 1, 1)
    return np.cumsum(start).astype(np.int32), urows.astype(np.int32), sums.astype(np.float64)


def _add_capacity(m: _Model, c: Compiled, xoff: list[int], s0: int, horizon: float) -> None:
    """Resource-flow constraints for each contended pool (see module docstring)."""
    risky = risky_jobs(c)
    if not risky:
        return
    reach: BoolArray = c.reach()
    for pool, jobs in risky.items():
        cap = float(c.problem.capacity[pool])
        g_cols: dict[int, tuple[FloatArray, FloatArray]] = {}
        gmax: dict[int, float] = {}
        for i in jobs:
            sel = [
                o for o, opt in enumerate(c.options[i]) if opt.pool == pool and c.allowed[i][o]
            ]
            gi = np.asarray([float(c.options[i][o].pool_gpus) for o in sel])
            g_cols[i] = (np.asarray(sel, dtype=np.float64) + xoff[i], gi)
            gmax[i] = float(gi.max())
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
        m.add_row(np.asarray([*src_cols, f_ss]), np.ones(len(src_cols) + 1), cap, cap)
        z: dict[tuple[int, int], int] = {}
        for i in jobs:
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
                xi = np.arange(xoff[i], xoff[i] + len(c.options[i]), dtype=np.float64)
                m.add_row(
                    np.concatenate(([s0 + k, s0 + i, zc], xi)),
                    np.concatenate(([1.0, -1.0, -horizon], -c.dur[i])),
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
                    np.concatenate((np.asarray(flows, dtype=np.float64), gc)),
                    np.concatenate((np.ones(len(flows)), -gv)),
                    0.0,
                    0.0,
                )


def _highs(lp: highspy.HighsLp, time_limit_s: float) -> highspy.Highs:
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


def _run(h: highspy.Highs) -> tuple[str, FloatArray | None, float | None]:
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
    built = _build(c, objective, deadline, budget, use_penalty)
    h = _highs(built.lp, time_limit_s)
    status, values, bound = _run(h)
    if status == "infeasible" or values is None:
        return infeasible("milp", objective, "", time.perf_counter() - t0)

    if objective == "time" and status == "optimal":
        # Lexicographic tie-break: among plans within 1e-6 h of the best makespan, the cheapest.
        best_t = float(values[built.t_col])
        remaining = time_limit_s - (time.perf_counter() - t0)
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
                values = np.asarray(h.getSolution().col_value)

    choice = []
    for j in range(c.n):
        xs = values[built.xoff[j] : built.xoff[j] + len(c.options[j])]
        choice.append(int(np.argmax(xs)))
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
