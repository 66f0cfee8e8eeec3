"""SkyPilot's published DAG formulation, re-implemented on a placer ``Problem``: the baseline.

SkyPilot (``sky/optimizer.py``, ``Optimizer._optimize_by_ilp``; read, not copied) places a
DAG by an ILP with one binary ``c[v][r]`` per task and candidate resource and one binary
``e[u,v][a,b]`` per edge and *pair* of candidates, linearising ``c[u] x c[v]``::

    min  sum_v c[v] . k[v]  +  sum_(u,v) e[u,v] . F[u,v]
    s.t. sum_r c[v][r] = 1;  sum_ab e[u,v][a,b] = 1;
         sum_b e[u,v][a,b] = c[u][a];  sum_a e[u,v][a,b] = c[v][b]

solved by PuLP + CBC; chains go to a dynamic program instead (``_optimize_by_dp``). This
module builds the same model from a :class:`placer.optimizer.Problem`, so both solve the very
same instance: ``k`` is an option's compute cost (+ penalty) plus the egress of the stored
inputs it reads (SkyPilot prices those on an edge from a dummy source with one resource,
which is the same thing), ``F`` is the price of the GB moved (``Link.usd``: SkyPilot's
egress schedule where the instance has it) between the two options' locations. Its answer
is priced again with ``placer.optimizer.evaluate`` so "same optimum" is checked by placer's
cost model, not by this model's.

Two additions SkyPilot does not have, each said where it is used:

* ``deadline_h``: SkyPilot's own *time* formulation (``finish[v] >= finish[u] + run time +
  e . F_time``), kept as constraints ``finish[v] <= deadline`` under the cost objective.
  Pools (on-prem capacity) have no counterpart: those rows are not run.
* ``merged=True``: locations that are interchangeable (free and instant between each other,
  and identically priced and timed to and from every other location) are solved as one
  class, keeping per task and class only its cheapest option. With SkyPilot's egress model
  (free within a cloud) that is one location per cloud. Exact for the cost objective; not
  used with a deadline, where a dearer option of the same class can be faster.

Run alone: ``python benchmarks/skypilot_ilp.py 100`` (a SkyPilot-style 100-task DAG).
"""

from __future__ import annotations

import itertools
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from placer.optimizer import Link, Option, Problem, evaluate  # noqa: E402


@dataclass(frozen=True)
class BaselineResult:
    """One baseline solve: what it found and how long it took (model build included)."""

    status: str  # optimal / feasible (time limit) / no plan (time limit) / infeasible
    seconds: float
    build_seconds: float
    objective: float | None  # placer's evaluation of the plan (cost + penalties)
    choice: dict[str, int] | None
    columns: int  # binaries (task options + edge option pairs); the DP: labels


def _link(problem: Problem, a: str, b: str) -> Link:
    if a == b:
        return Link(0.0, 0.0)
    return problem.links[a, b]


def pair_binaries(problem: Problem, merged: bool = False) -> int:
    """How many edge-pair binaries the ILP needs (the size that makes SkyPilot's ILP slow)."""
    if merged:
        cls = location_classes(problem)
        width = {j: len({cls[o.location] for o in opts}) for j, opts in problem.options.items()}
    else:
        width = {j: len(opts) for j, opts in problem.options.items()}
    return sum(width[src] * width[dst] for src, dst in _edge_groups(problem))


def _edge_groups(problem: Problem) -> dict[tuple[str, str], list[float]]:
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in problem.edges:
        groups[e.src, e.dst].append(e.gb)
    return groups


def location_classes(problem: Problem) -> dict[str, str]:
    """Location -> its class representative; one class = interchangeable locations.

    ``a`` and ``b`` are interchangeable when moving data between them is free and instant
    both ways and every other location's link to and from them has the same price and time
    (missing links must be missing for both). Every member of a class is checked against
    every other, so the relation need not be transitive to be safe.
    """
    locs: list[str] = []
    seen: set[str] = set()
    for opts in problem.options.values():
        for o in opts:
            if o.location not in seen:
                seen.add(o.location)
                locs.append(o.location)
    for r in problem.reads:
        if r.location not in seen:
            seen.add(r.location)
            locs.append(r.location)
    everywhere = sorted(seen | {x for pair in problem.links for x in pair})

    def same(a: str, b: str) -> bool:
        free = Link(0.0, 0.0)
        if problem.links.get((a, b)) != free or problem.links.get((b, a)) != free:
            return False
        for c in everywhere:
            if c in (a, b):
                continue
            if problem.links.get((a, c)) != problem.links.get((b, c)):
                return False
            if problem.links.get((c, a)) != problem.links.get((c, b)):
                return False
        return True

    classes: list[list[str]] = []
    for loc in locs:
        for members in classes:
            if all(same(loc, m) for m in members):
                members.append(loc)
                break
        else:
            classes.append([loc])
    return {m: members[0] for members in classes for m in members}


def _unit_costs(problem: Problem) -> dict[str, list[float]]:
    """Per task and option: compute + penalty + egress of its stored inputs."""
    reads = defaultdict(list)
    for r in problem.reads:
        reads[r.job].append(r)
    return {
        j: [o.compute_usd + o.penalty_usd
            + sum(_link(problem, r.location, o.location).usd(r.gb) for r in reads[j])
            for o in opts]
        for j, opts in problem.options.items()
    }


def _kept_options(
    problem: Problem, k: dict[str, list[float]], merged: bool
) -> dict[str, list[int]]:
    """Option indices the model keeps per task: all, or the cheapest of each location class."""
    if not merged:
        return {j: list(range(len(opts))) for j, opts in problem.options.items()}
    cls = location_classes(problem)
    kept: dict[str, list[int]] = {}
    for j, opts in problem.options.items():
        best: dict[str, int] = {}
        for i, o in enumerate(opts):
            c = cls[o.location]
            if c not in best or k[j][i] < k[j][best[c]]:
                best[c] = i
        kept[j] = sorted(best.values())
    return kept


def solve_ilp(
    problem: Problem,
    *,
    deadline_h: float | None = None,
    merged: bool = False,
    time_limit_s: float = 300.0,
    threads: int = 1,
) -> BaselineResult:
    """SkyPilot's pair-binary ILP (cost objective) with PuLP + CBC; see the module docstring.

    Raises:
        ImportError: PuLP is not installed (``pip install -e '.[bench]'``).
        ValueError: ``merged`` with a deadline (merging is exact only for cost alone).
    """
    import pulp

    if merged and deadline_h is not None:
        raise ValueError("merged classes are exact only without a deadline")
    t0 = time.perf_counter()
    k = _unit_costs(problem)
    kept = _kept_options(problem, k, merged)
    opts = problem.options
    prob = pulp.LpProblem("placement", pulp.LpMinimize)
    c: dict[str, list[Any]] = {}
    for n, j in enumerate(problem.jobs):
        c[j] = [pulp.LpVariable(f"c{n}_{i}", cat="Binary") for i in kept[j]]
        prob += pulp.lpSum(c[j]) == 1
    objective: list[Any] = [pulp.lpDot(c[j], [k[j][i] for i in kept[j]]) for j in problem.jobs]
    columns = sum(len(v) for v in c.values())
    index = {j: n for n, j in enumerate(problem.jobs)}
    edge_terms: dict[tuple[str, str], tuple[list[Any], list[float]]] = {}
    for (u, v), gbs in _edge_groups(problem).items():
        ku, kv = kept[u], kept[v]
        e = [[pulp.LpVariable(f"e{index[u]}_{index[v]}_{a}_{b}", cat="Binary")
              for b in range(len(kv))] for a in range(len(ku))]
        flat = [x for row in e for x in row]
        columns += len(flat)
        prob += pulp.lpSum(flat) == 1
        for a in range(len(ku)):
            prob += pulp.lpSum(e[a]) == c[u][a]
        for b in range(len(kv)):
            prob += pulp.lpSum(e[a][b] for a in range(len(ku))) == c[v][b]
        usd, hours = [], []
        for a in ku:
            for b in kv:
                link = _link(problem, opts[u][a].location, opts[v][b].location)
                usd.append(sum(link.usd(gb) for gb in gbs))
                hours.append(max(gbs) * link.hours_per_gb)
        objective.append(pulp.lpDot(flat, usd))
        edge_terms[u, v] = (flat, hours)
    prob += pulp.lpSum(objective)
    if deadline_h is not None:
        _add_deadline(prob, problem, c, kept, edge_terms, deadline_h)
    build = time.perf_counter() - t0
    solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=max(1.0, time_limit_s - build),
                               threads=threads)
    prob.solve(solver)
    seconds = time.perf_counter() - t0
    if prob.sol_status == pulp.LpSolutionNoSolutionFound:
        return BaselineResult("no plan (time limit)", seconds, build, None, None, columns)
    if prob.sol_status == pulp.LpSolutionInfeasible:
        return BaselineResult("infeasible", seconds, build, None, None, columns)
    choice = {}
    for j in problem.jobs:
        vals = [x.value() or 0.0 for x in c[j]]
        choice[j] = kept[j][max(range(len(vals)), key=vals.__getitem__)]
    status = "optimal" if prob.sol_status == pulp.LpSolutionOptimal else "feasible (time limit)"
    value = evaluate(problem, choice).objective_value
    return BaselineResult(status, seconds, build, value, choice, columns)


def _add_deadline(
    prob: Any,
    problem: Problem,
    c: dict[str, list[Any]],
    kept: dict[str, list[int]],
    edge_terms: dict[tuple[str, str], tuple[list[Any], list[float]]],
    deadline_h: float,
) -> None:
    """SkyPilot's time-formulation rows, bounded by the deadline (placer's start rule)."""
    import pulp

    opts = problem.options
    finish = {j: pulp.LpVariable(f"f{n}", lowBound=0, upBound=deadline_h)
              for n, j in enumerate(problem.jobs)}
    reads = defaultdict(list)
    for r in problem.reads:
        reads[r.job].append(r)
    for j in problem.jobs:
        run = [opts[j][i].start_delay_h + opts[j][i].duration_h for i in kept[j]]
        prob += finish[j] >= pulp.lpDot(c[j], run)
        for r in reads[j]:
            arrive = [r.gb * _link(problem, r.location, opts[j][i].location).hours_per_gb
                      for i in kept[j]]
            prob += finish[j] >= pulp.lpDot(c[j], [a + b for a, b in zip(arrive, run,
                                                                         strict=True)])
    for (u, v), (flat, hours) in edge_terms.items():
        run = [opts[v][i].start_delay_h + opts[v][i].duration_h for i in kept[v]]
        prob += finish[v] >= finish[u] + pulp.lpDot(flat, hours) + pulp.lpDot(c[v], run)


def solve_chain_dp(problem: Problem) -> BaselineResult:
    """SkyPilot's chain DP (``_optimize_by_dp``): per task and candidate, the cheapest
    predecessor candidate plus egress, in plain Python over every pair, as SkyPilot does.

    Raises:
        ValueError: the problem is not a single chain.
    """
    t0 = time.perf_counter()
    order = _chain_order(problem)
    k = _unit_costs(problem)
    gb = {(e.src, e.dst): e.gb for e in problem.edges}
    opts: dict[str, tuple[Option, ...]] = dict(problem.options)
    best: list[float] = list(k[order[0]])
    back: list[list[int]] = []
    for prev, task in itertools.pairwise(order):
        size = gb[prev, task]
        new, ptr = [], []
        for b, ob in enumerate(opts[task]):
            low, arg = float("inf"), -1
            for a, oa in enumerate(opts[prev]):
                cost = best[a] + _link(problem, oa.location, ob.location).usd(size)
                if cost < low:
                    low, arg = cost, a
            new.append(low + k[task][b])
            ptr.append(arg)
        best = new
        back.append(ptr)
    o = min(range(len(best)), key=best.__getitem__)
    choice = {order[-1]: o}
    for task, ptr in zip(reversed(order[:-1]), reversed(back), strict=True):
        o = ptr[o]
        choice[task] = o
    seconds = time.perf_counter() - t0
    labels = sum(len(v) for v in opts.values())
    return BaselineResult("optimal", seconds, 0.0, evaluate(problem, choice).objective_value,
                          choice, labels)


def _chain_order(problem: Problem) -> list[str]:
    nxt: dict[str, str] = {}
    has_parent: set[str] = set()
    for e in problem.edges:
        if e.src in nxt or e.dst in has_parent:
            raise ValueError("not a chain: a task has two parents or two children")
        nxt[e.src] = e.dst
        has_parent.add(e.dst)
    heads = [j for j in problem.jobs if j not in has_parent]
    if len(heads) != 1:
        raise ValueError(f"not a single chain: {len(heads)} heads")
    order = [heads[0]]
    while order[-1] in nxt:
        order.append(nxt[order[-1]])
    if len(order) != len(problem.jobs):
        raise ValueError("not a single chain")
    return order


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from placer.optimizer import skypilot_problem, solve

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tasks", type=int, nargs="?", default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shape", default="dag", choices=["dag", "chain", "tree"])
    ap.add_argument("--time-limit", type=float, default=300.0)
    args = ap.parse_args(argv)
    p = skypilot_problem(args.tasks, args.seed, args.shape)
    for name, run in (("merged ILP", lambda: solve_ilp(p, merged=True,
                                                        time_limit_s=args.time_limit)),
                      ("SkyPilot ILP", lambda: solve_ilp(p, time_limit_s=args.time_limit))):
        r = run()
        print(f"{name:13} {r.status:22} {r.seconds:8.2f}s  objective {r.objective}  "
              f"{r.columns:,} binaries")
    s = solve(p, time_limit_s=args.time_limit)
    print(f"{'placer':13} {s.status:22} {s.solve_time_s:8.2f}s  objective {s.objective_value}"
          f"  ({s.method})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
