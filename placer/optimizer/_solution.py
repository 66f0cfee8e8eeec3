"""The optimizer's output, and the one place a choice of options becomes a schedule.

Every method (DP, MILP, brute force) only decides *which option* each job uses (and, when a
pool is contended, in which order jobs take it). The schedule, the costs and the makespan are
then recomputed here from the cost model, so all methods report numbers the same way and a
reported number is never a solver's rounded copy of one.

The schedule comes from the *serial schedule generation scheme* (SSGS): jobs are taken in a
given order (an "activity list" that respects the DAG), and each starts at the earliest time
its inputs have arrived, its provisioning delay has passed and its pool has room for its
whole run. Without contended pools this is exactly the earliest-start schedule, whatever the
order. With contended pools, taking jobs in the order of a feasible schedule's start times
gives a schedule in which no job starts later than it did there (earlier jobs can only have
moved left, so they use no more of the pool at or after any later start), so re-scheduling a
MILP solution this way never makes it worse.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from placer.optimizer._compile import Compiled, compile_problem
from placer.optimizer._problem import Problem

Status = Literal["optimal", "feasible", "infeasible"]
Objective = Literal["cost", "time"]

#: Absolute slack when comparing times and money against a deadline or budget.
TOL = 1e-7


def tol(value: float) -> float:
    """Comparison slack for a deadline or budget of this size (absolute and relative)."""
    return TOL * max(1.0, abs(value))


@dataclass(frozen=True)
class JobSchedule:
    """Where and when one job runs, and what it costs.

    Attributes:
        job: Job name.
        option: Index into ``problem.options[job]``.
        start_h: Start of the run (after inputs arrived and the cluster was provisioned).
        end_h: ``start_h + duration_h``.
        compute_usd: The option's compute cost.
        transfer_usd: Cost of data moved INTO this job (edges in and reads).
        transfer_h: Longest inbound transfer (edges in and reads).
        penalty_usd: The option's soft-preference penalty (not part of any reported cost).
    """

    job: str
    option: int
    start_h: float
    end_h: float
    compute_usd: float
    transfer_usd: float
    transfer_h: float
    penalty_usd: float


@dataclass(frozen=True)
class Solution:
    """A plan for every job, with its quality certificate.

    Attributes:
        status: ``optimal``; ``feasible`` (a time limit was hit with a plan in hand); or
            ``infeasible`` (proven: no plan meets the constraints; ``jobs`` is empty).
        optimal: ``status == "optimal"``.
        method: ``"dp-chain"``, ``"dp-tree"``, ``"milp"``, ``"milp-warm"`` (a
            :class:`~placer.optimizer.Replanner` re-plan), ``"lagrange"``, ``"brute"`` or
            ``"evaluate"`` (a ``+ssgs`` suffix: scheduled with capacity after the relaxation).
        objective: What was minimised.
        cost_usd: Real cost (compute + transfer), without penalties.
        objective_value: The minimised value: cost + penalties for ``"cost"``, makespan for
            ``"time"``.
        makespan_h: Latest end of any job.
        lower_bound: Proven lower bound on ``objective_value`` (equal to it when optimal).
        gap: ``(objective_value - lower_bound) / objective_value``; 0 when optimal.
        jobs: Per job name, its schedule.
        solve_time_s: Wall-clock time spent solving.
        message: Human explanation, e.g. why a problem is infeasible.
    """

    status: Status
    optimal: bool
    method: str
    objective: Objective
    cost_usd: float
    objective_value: float
    makespan_h: float
    lower_bound: float | None
    gap: float | None
    jobs: Mapping[str, JobSchedule]
    solve_time_s: float
    message: str = ""

    @property
    def penalty_usd(self) -> float:
        """Sum of soft-preference penalties of the chosen options."""
        return sum(s.penalty_usd for s in self.jobs.values())

    @property
    def choice(self) -> dict[str, int]:
        """The chosen option index per job."""
        return {name: s.option for name, s in self.jobs.items()}


def infeasible(
    method: str, objective: Objective, message: str, solve_time_s: float
) -> Solution:
    """A proven-infeasible result: no jobs, infinite values, the reason in ``message``."""
    inf = float("inf")
    return Solution(
        status="infeasible",
        optimal=False,
        method=method,
        objective=objective,
        cost_usd=inf,
        objective_value=inf,
        makespan_h=inf,
        lower_bound=None,
        gap=None,
        jobs={},
        solve_time_s=solve_time_s,
        message=message,
    )


def ssgs(c: Compiled, choice: Sequence[int], order: Sequence[int] | None = None) -> list[float]:
    """Start times from the serial schedule generation scheme (see module docstring).

    Args:
        c: The compiled problem.
        choice: Option index per job index.
        order: Activity list (job indices, predecessors first). Defaults to ``c.topo``.

    Returns:
        Start time per job index.
    """
    order = c.topo if order is None else order
    n = c.n
    start = [0.0] * n
    end = [0.0] * n
    placed: Placed = {}
    for j in order:
        t = earliest_start(c, choice, j, end, placed)
        d = float(c.dur[j][choice[j]])
        opt = c.options[j][choice[j]]
        if opt.pool is not None and opt.pool_gpus > 0:
            placed.setdefault(opt.pool, Profile(c.problem.capacity[opt.pool])).add(
                t, d, opt.pool_gpus)
        start[j] = t
        end[j] = t + d
    return start


class Profile:
    """A pool's usage as a step function: ``times[i]`` starts a segment of ``use[i]`` GPUs.

    :meth:`fit` is the earliest ``t >= t0`` with room for ``g`` more GPUs over the whole run
    ``[t, t + d)``, found in one sweep over the segments, not by re-summing every placed run
    for every candidate start (that was quadratic over a plan). ``add`` with a negative ``g``
    takes a run back off (brute force backtracks so).
    """

    __slots__ = ("cap", "times", "use")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.times: list[float] = [0.0]
        self.use: list[int] = [0]

    def fit(self, t0: float, d: float, g: int) -> float:
        times, use, room = self.times, self.use, self.cap - g
        i = max(bisect.bisect_right(times, t0) - 1, 0)
        t = t0
        n = len(times)
        while i < n:
            if times[i] >= t + d:
                return t
            if use[i] > room:
                if i + 1 >= n:
                    raise AssertionError("unreachable: the last segment is empty")
                t = max(t, times[i + 1])
            i += 1
        return t

    def add(self, t: float, d: float, g: int) -> None:
        times, use = self.times, self.use
        for x in (t, t + d):
            i = bisect.bisect_right(times, x) - 1
            if times[i] != x:
                times.insert(i + 1, x)
                use.insert(i + 1, use[i])
        lo = bisect.bisect_left(times, t)
        hi = bisect.bisect_left(times, t + d)
        for i in range(lo, hi):
            use[i] += g


Placed = dict[str, Profile]
"""Per pool: the usage of the runs already placed on it."""


def earliest_start(
    c: Compiled, choice: Sequence[int], j: int, end: Sequence[float], placed: Placed
) -> float:
    """The earliest start of job ``j`` under ``choice``, given its predecessors' ``end`` times
    and the runs already ``placed`` on the pools: its reads and every predecessor's output
    have arrived, its provisioning delay has passed, and its pool (if it takes GPUs from one)
    has room for its whole run. The one earliest-start rule: SSGS and brute force's activity
    lists both place jobs with it."""
    o = choice[j]
    ready = float(c.read_h[j][o])
    for e in c.in_edges[j]:
        ce = c.edges[e]
        ready = max(ready, end[ce.src] + float(ce.hours[choice[ce.src], o]))
    t = ready + float(c.delay[j][o])
    opt = c.options[j][o]
    if opt.pool is not None and opt.pool_gpus > 0 and opt.pool in placed:
        t = placed[opt.pool].fit(t, float(c.dur[j][o]), opt.pool_gpus)
    return t


def build(
    c: Compiled,
    choice: Sequence[int],
    *,
    status: Status,
    method: str,
    objective: Objective,
    solve_time_s: float,
    order: Sequence[int] | None = None,
    lower_bound: float | None = None,
    message: str = "",
) -> Solution:
    """Schedule a choice with SSGS and price it; the common tail of every method.

    ``lower_bound`` is clipped to the objective value (a solver's bound can exceed the
    recomputed value by its tolerance); when ``status`` is optimal the bound is the value.
    """
    start = ssgs(c, choice, order)
    jobs: dict[str, JobSchedule] = {}
    cost = 0.0
    penalty = 0.0
    makespan = 0.0
    for j, name in enumerate(c.names):
        o = choice[j]
        t_usd = float(c.read_usd[j][o])
        t_h = float(c.read_h[j][o])
        for e in c.in_edges[j]:
            ce = c.edges[e]
            t_usd += float(ce.usd[choice[ce.src], o])
            t_h = max(t_h, float(ce.hours[choice[ce.src], o]))
        comp = float(c.compute[j][o])
        pen = float(c.penalty[j][o])
        end = start[j] + float(c.dur[j][o])
        jobs[name] = JobSchedule(
            job=name,
            option=int(o),
            start_h=start[j],
            end_h=end,
            compute_usd=comp,
            transfer_usd=t_usd,
            transfer_h=t_h,
            penalty_usd=pen,
        )
        cost += comp + t_usd
        penalty += pen
        makespan = max(makespan, end)
    value = cost + penalty if objective == "cost" else makespan
    gap: float | None
    if status == "optimal":
        lower_bound, gap = value, 0.0
    elif lower_bound is not None:
        lower_bound = min(lower_bound, value)
        gap = (value - lower_bound) / value if value > 0 else 0.0
    else:
        gap = None
    return Solution(
        status=status,
        optimal=status == "optimal",
        method=method,
        objective=objective,
        cost_usd=cost,
        objective_value=value,
        makespan_h=makespan,
        lower_bound=lower_bound,
        gap=gap,
        jobs=jobs,
        solve_time_s=solve_time_s,
        message=message,
    )


def evaluate(
    problem: Problem, choice: Mapping[str, int], objective: Objective = "cost"
) -> Solution:
    """Schedule and price a fixed assignment with earliest starts, ignoring capacity.

    A helper for tests and ``explain``: it answers "what would this plan cost and how long
    would it take" without optimizing anything. The result has ``status="feasible"`` and
    ``method="evaluate"`` and no bound.

    Raises:
        ValueError: the problem is invalid, or ``choice`` misses a job or names an option
            index out of range.
    """
    c = compile_problem(problem)
    idx: list[int] = []
    for name, opts in zip(c.names, c.options, strict=True):
        if name not in choice:
            raise ValueError(f"choice has no option for job {name!r}")
        o = choice[name]
        if not 0 <= o < len(opts):
            raise ValueError(f"job {name!r}: option {o} out of range 0..{len(opts) - 1}")
        idx.append(o)
    return build(
        without_capacity(c),
        idx,
        status="feasible",
        method="evaluate",
        objective=objective,
        solve_time_s=0.0,
    )


def without_capacity(c: Compiled) -> Compiled:
    """The same compiled problem with every pool treated as unbounded (for :func:`evaluate`)."""
    opts = tuple(tuple(replace(o, pool=None, pool_gpus=0) for o in os) for os in c.options)
    return replace(c, options=opts)


def violations(problem: Problem, solution: Solution, eps: float = 1e-6) -> list[str]:
    """Check a solution against the cost model; returns human-readable problems (empty = ok).

    Checks that inputs arrive and provisioning passes before each start, that ends are
    start + duration, that no pool is ever overcommitted, and that every reported money
    figure recomputes from the chosen options. Used by the property tests and handy when
    debugging a new method.
    """
    c = compile_problem(problem)
    out: list[str] = []
    if solution.status == "infeasible":
        return out
    s = [solution.jobs[name] for name in c.names]
    choice = [x.option for x in s]
    total = 0.0
    for j, name in enumerate(c.names):
        o = choice[j]
        x = s[j]
        ready = float(c.read_h[j][o])
        usd = float(c.read_usd[j][o])
        for e in c.in_edges[j]:
            ce = c.edges[e]
            ready = max(ready, s[ce.src].end_h + float(ce.hours[choice[ce.src], o]))
            usd += float(ce.usd[choice[ce.src], o])
        if x.start_h < ready + float(c.delay[j][o]) - eps * max(1.0, ready):
            out.append(f"{name}: starts at {x.start_h} before its inputs are ready")
        if abs(x.end_h - x.start_h - float(c.dur[j][o])) > eps * max(1.0, x.end_h):
            out.append(f"{name}: end - start != duration")
        if abs(usd - x.transfer_usd) > eps * max(1.0, usd):
            out.append(f"{name}: transfer_usd {x.transfer_usd} != {usd}")
        if abs(float(c.compute[j][o]) - x.compute_usd) > eps:
            out.append(f"{name}: compute_usd mismatch")
        if not c.allowed[j][o]:
            out.append(f"{name}: option {o} needs more GPUs than its pool has")
        total += x.compute_usd + x.transfer_usd
    if abs(total - solution.cost_usd) > eps * max(1.0, total):
        out.append(f"cost_usd {solution.cost_usd} != recomputed {total}")
    makespan = max(x.end_h for x in s)
    if abs(makespan - solution.makespan_h) > eps * max(1.0, makespan):
        out.append(f"makespan_h {solution.makespan_h} != recomputed {makespan}")
    for j in range(c.n):
        opt = c.options[j][choice[j]]
        if opt.pool is None or opt.pool_gpus == 0:
            continue
        t = s[j].start_h
        used = 0
        for k in range(c.n):
            ok = c.options[k][choice[k]]
            if ok.pool == opt.pool and s[k].start_h - eps <= t < s[k].end_h - eps:
                used += ok.pool_gpus
        if used > problem.capacity[opt.pool]:
            out.append(f"pool {opt.pool!r} overcommitted at t={t}: {used} GPUs")
    return out
