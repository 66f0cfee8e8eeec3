"""Issue 12's optimizer table: placer against SkyPilot's formulation on the same instances.

Every case builds one seeded instance and times what ``placer plan`` runs on it
(``solve(..., method="auto")`` or ``pareto_frontier``), and beside it, in the same run and
interleaved run by run so that load hits both alike, the baselines that can express it
(``benchmarks/skypilot_ilp.py``): SkyPilot's pair-binary ILP with PuLP + CBC, the same ILP
on merged location classes (one per cloud), and SkyPilot's chain DP. Their plans are priced
by placer's own cost model and compared with placer's ("same optimum").

Cases (``--cases`` picks some by name; ``--max-jobs`` drops the big ones):

* ``sky-dag-{100,500,2000}``, ``sky-chain-2000``, ``sky-tree-2000``: ``skypilot_problem``
  (3 clouds, 19 regions, ~18 candidates per task, egress by source cloud), min cost.
* ``rand-*``: ``random_problem`` (an on-prem pool and cloud regions with random links);
  "contended" is a 16-GPU pool, "uncontended" one that never binds. A deadline is 1.25 x the
  makespan of running every job on its fastest cloud option, ignoring nothing: a plan that
  uses no pool, so the deadline is always feasible and is computed by no solver under test.
* ``pareto-{100,1000}``: the cost-makespan frontier of a random DAG (a pool that never
  binds: with a contended one every point is a capacity MILP, which the rows above time).
  From 500 jobs the points are evenly spaced deadlines, each with its proven gap.
* ``replan-sky-dag-1000``: a site fails after a third of the jobs ran; the time is the
  :class:`~placer.optimizer.Replanner`'s warm re-plan, beside a cold ``solve`` of the same
  narrowed problem (its optimum must be the same); median of the five busiest sites failing.
* ``e2e-{100,500,2000}``: YAML to explained plan, measured by ``plan_end_to_end.py`` (its
  own SkyPilot-style pipelines and inventory) when that file is present.

Each measurement runs in a forked child: its peak RSS is the solving process's (CBC's too),
and a child that outlives the per-case time limit (plus a grace) is killed with its process
group. Times are medians of up to ``--repeats`` runs while the runs fit in the time limit.

    python benchmarks/optimizer_scaling.py                   # the whole table (~1-2 h)
    python benchmarks/optimizer_scaling.py --quick           # tiny cases, seconds
    python benchmarks/optimizer_scaling.py --max-jobs 500 --time-limit 60
    python benchmarks/optimizer_scaling.py --record          # + append to RESULTS.md

Nothing is written to ``benchmarks/RESULTS.md`` without ``--record`` (or ``--results PATH``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import multiprocessing as mp
import os
import platform
import resource
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for _p in (ROOT, BENCH):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from skypilot_ilp import pair_binaries, solve_chain_dp, solve_ilp  # noqa: E402

from placer.errors import SolverError  # noqa: E402
from placer.optimizer import (  # noqa: E402
    Problem,
    Replanner,
    evaluate,
    pareto_frontier,
    random_problem,
    skypilot_problem,
    solve,
)

DEADLINE_FACTOR = 1.25
BASELINE_NAMES = {"ilp": "SkyPilot ILP", "merged": "merged ILP", "sky-dp": "SkyPilot DP"}


# -- cases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One row of the table: an instance, what placer solves on it, and its baselines."""

    key: str
    family: str  # plot series
    n_jobs: int
    make: Callable[[int], Problem]
    recipe: str  # how the instance is made, for the markdown
    kind: str = "solve"  # solve / pareto / e2e / replan
    deadline: bool = False
    baselines: tuple[str, ...] = ()
    repeats: int | None = None  # None: --repeats
    note: str = ""
    budget: float | None = None  # a frontier's whole time budget (else the time limit)


def _sky(n: int, shape: str) -> Callable[[int], Problem]:
    return lambda seed: skypilot_problem(n, seed, shape)  # type: ignore[arg-type]


def _rand(n: int, k: int, shape: str, pool: int, locs: int = 3) -> Callable[[int], Problem]:
    return lambda seed: random_problem(n, k, shape, seed, n_locations=locs,  # type: ignore[arg-type]
                                       pool_gpus=pool)


BIG = 10**6  # a pool that never binds


def cases(quick: bool) -> list[Case]:
    """The issue's table (or, with ``quick``, the same kinds of case at toy sizes)."""
    if quick:
        return [
            Case("sky-dag-12", "sky-dag", 12, _sky(12, "dag"), "skypilot_problem(12, seed)",
                 baselines=("ilp", "merged")),
            Case("sky-chain-12", "sky-chain", 12, _sky(12, "chain"),
                 "skypilot_problem(12, seed, 'chain')", baselines=("sky-dp", "merged")),
            Case("rand-dag-8x4-uncontended", "rand-dag", 8, _rand(8, 4, "dag", BIG),
                 "random_problem(8, 4, 'dag', seed, pool_gpus=10**6)", baselines=("ilp",)),
            Case("rand-dag-8x4-contended-deadline", "rand-dag-contended", 8,
                 _rand(8, 4, "dag", 16), "random_problem(8, 4, 'dag', seed)", deadline=True,
                 note="ILP n/a: capacity"),
            Case("rand-chain-8", "rand-chain", 8, _rand(8, 4, "chain", 16),
                 "random_problem(8, 4, 'chain', seed)", baselines=("sky-dp", "ilp")),
            Case("pareto-8", "pareto", 8, _rand(8, 4, "dag", BIG),
                 "random_problem(8, 4, 'dag', seed, pool_gpus=10**6)", kind="pareto"),
            Case("replan-sky-dag-12", "replan", 12, _sky(12, "dag"),
                 "skypilot_problem(12, seed); 5 site failures", kind="replan"),
        ]
    out = [
        *(Case(f"sky-dag-{n}", "sky-dag", n, _sky(n, "dag"), f"skypilot_problem({n}, seed)",
               baselines=("ilp", "merged")) for n in (100, 500, 2000)),
        Case("sky-chain-2000", "sky-chain", 2000, _sky(2000, "chain"),
             "skypilot_problem(2000, seed, 'chain')", baselines=("sky-dp", "merged")),
        Case("sky-tree-2000", "sky-tree", 2000, _sky(2000, "tree"),
             "skypilot_problem(2000, seed, 'tree')", baselines=("merged",)),
        Case("rand-dag-100x20-uncontended", "rand-dag x20", 100, _rand(100, 20, "dag", BIG),
             "random_problem(100, 20, 'dag', seed, pool_gpus=10**6)", baselines=("ilp",)),
        Case("rand-dag-100x20-contended-deadline", "rand-dag x20 contended", 100,
             _rand(100, 20, "dag", 16), "random_problem(100, 20, 'dag', seed)", deadline=True,
             note="ILP n/a: capacity"),
        *(Case(f"rand-dag-{n}x4-contended-deadline", "rand-dag x4 contended", n,
               _rand(n, 4, "dag", 16), f"random_problem({n}, 4, 'dag', seed)", deadline=True,
               note="ILP n/a: capacity") for n in (200, 300)),
        Case("rand-dag-1000x30-deadline", "rand-dag x30", 1000, _rand(1000, 30, "dag", BIG, 5),
             "random_problem(1000, 30, 'dag', seed, n_locations=5, pool_gpus=10**6)",
             deadline=True, baselines=("ilp",)),
        Case("rand-dag-10000x50-deadline-contended", "rand-dag x50 contended", 10000,
             _rand(10000, 50, "dag", 16, 7),
             "random_problem(10000, 50, 'dag', seed, n_locations=7)", deadline=True,
             repeats=1, note="ILP n/a: capacity"),
        Case("rand-chain-10000", "rand-chain", 10000, _rand(10000, 4, "chain", 16),
             "random_problem(10000, 4, 'chain', seed)", baselines=("sky-dp", "ilp"),
             repeats=3),
        Case("pareto-100", "pareto", 100, _rand(100, 4, "dag", BIG),
             "random_problem(100, 4, 'dag', seed, pool_gpus=10**6)", kind="pareto",
             repeats=3, note="frontier: no baseline; exact walk, up to 20 points"),
        Case("pareto-1000", "pareto", 1000, _rand(1000, 4, "dag", BIG),
             "random_problem(1000, 4, 'dag', seed, pool_gpus=10**6)", kind="pareto",
             repeats=3, budget=5.0,
             note="frontier: no baseline; 10 spaced points in a 5 s budget, gap = worst"),
    ]
    out.append(Case("replan-sky-dag-1000", "replan", 1000, _sky(1000, "dag"),
                    "skypilot_problem(1000, seed); 5 site failures", kind="replan",
                    repeats=3, note="median of 5 failures per run; time = warm re-plan"))
    if (BENCH / "plan_end_to_end.py").exists():
        out += [Case(f"e2e-{n}", "e2e", n, lambda seed: Problem(jobs=(), options={}),
                     f"plan_end_to_end.run_size({n}, ...)", kind="e2e", repeats=3,
                     note="YAML to explained plan; plan_end_to_end's own instance")
                for n in (100, 500, 2000)]
    return out


def deadline_for(p: Problem) -> float:
    """``DEADLINE_FACTOR`` x the makespan of every job on its fastest cloud (pool-free) option."""
    choice = {}
    for j, opts in p.options.items():
        free = [i for i, o in enumerate(opts) if o.pool is None] or list(range(len(opts)))
        choice[j] = min(free, key=lambda i: (opts[i].start_delay_h + opts[i].duration_h, i))
    return DEADLINE_FACTOR * evaluate(p, choice).makespan_h


# -- measuring in a child ---------------------------------------------------------------------


@dataclass
class Run:
    """One timed call: seconds (None if killed), peak RSS, and what it returned."""

    seconds: float | None
    rss_mb: float
    out: dict[str, Any]


def _resident_mb() -> float:
    """This process's resident memory now (Linux: /proc/self/statm), in MB."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _child(fn: Callable[[], dict[str, Any]], conn: Any) -> None:
    os.setpgrp()  # CBC and anything else it starts die with it
    try:
        # A forked child starts with the benchmark's own pages resident (every instance built
        # so far): its peak is counted above that, so a row measures its solve, not its place
        # in the table.
        inherited = _resident_mb()
        t0 = time.perf_counter()
        out = fn()
        seconds = out.pop("seconds", time.perf_counter() - t0)  # a baseline's own clock
        rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 - inherited,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)
        conn.send((seconds, rss, out))
    except BaseException as exc:  # reported, not raised: the table says what failed
        conn.send((None, 0.0, {"status": f"error: {type(exc).__name__}: {exc}"[:120],
                               "trace": traceback.format_exc()}))
    finally:
        conn.close()


def measure(fn: Callable[[], dict[str, Any]], limit: float) -> Run:
    """Run ``fn`` in a forked child; kill its process group after ``limit`` plus a grace."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, send))
    proc.start()
    send.close()
    grace = max(10.0, 0.1 * limit)
    t0 = time.perf_counter()
    got = recv.poll(limit + grace)
    result = recv.recv() if got else None
    if result is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.join()
    if result is None:
        return Run(None, 0.0, {"status": f"killed at {time.perf_counter() - t0:.0f} s"})
    seconds, rss, out = result
    return Run(seconds, rss, out)


# -- what each method does --------------------------------------------------------------------


def placer_call(case: Case, p: Problem, deadline: float | None, limit: float,
                seed: int) -> Callable[[], dict[str, Any]]:
    if case.kind == "pareto":
        def frontier() -> dict[str, Any]:
            pts = (pareto_frontier(p, time_limit_s=limit) if case.budget is None else
                   pareto_frontier(p, max_points=10, time_limit_s=min(limit, case.budget)))
            gaps = [s.gap for s in pts if s.gap is not None]
            return {"status": f"{len(pts)} points" + (
                        "" if all(s.optimal for s in pts) else
                        f", {sum(not s.optimal for s in pts)} not proven"),
                    "method": "/".join(sorted({s.method for s in pts})),
                    "gap": max(gaps) if gaps else None, "objective": None}
        return frontier
    if case.kind == "replan":
        return lambda: replan_failures(p, limit)
    if case.kind == "e2e":
        def e2e() -> dict[str, Any]:
            import plan_end_to_end as pe

            with tempfile.TemporaryDirectory() as tmp:
                row = pe.run_size(case.n_jobs, 1, seed, limit, 0.5, Path(tmp))
            # Its end-to-end median, not run_size's extra stage timings and old deltas.
            return {"status": str(row.status), "method": "placer.plan", "gap": None,
                    "objective": None, "solve_s": row.solve, "seconds": row.e2e}
        return e2e

    def run() -> dict[str, Any]:
        try:
            s = solve(p, "cost", deadline_h=deadline, time_limit_s=limit)
        except SolverError as exc:  # the time limit passed before any plan was found
            return {"status": "no plan in time", "method": "-", "gap": None,
                    "objective": None, "message": str(exc)}
        return {"status": s.status, "method": s.method, "gap": s.gap,
                "objective": s.objective_value if s.status != "infeasible" else None}
    return run


FAILURES = 5


def replan_failures(p: Problem, limit: float) -> dict[str, Any]:
    """Each of the plan's :data:`FAILURES` busiest sites fails after the first third of the
    jobs (in the generator's topological order) ran: the warm re-plan (timed) against a cold
    :func:`solve` of the same narrowed problem, whose optimum it must equal."""
    r = Replanner(p, time_limit_s=limit)
    used: dict[str, int] = {}
    for name, js in r.solution.jobs.items():
        site = p.options[name][js.option].site
        used[site] = used.get(site, 0) + 1
    done = {name: r.solution.jobs[name].option for name in p.jobs[: len(p.jobs) // 3]}
    warm: list[float] = []
    cold: list[float] = []
    same = True
    for site in sorted(used, key=lambda s: (-used[s], s))[:FAILURES]:
        t0 = time.perf_counter()
        got = r.replan(pinned=done, exclude_sites={site})
        warm.append(time.perf_counter() - t0)
        q = replace(p, options={
            n: (p.options[n][done[n]],) if n in done
            else tuple(o for o in p.options[n] if o.site != site) for n in p.jobs})
        t0 = time.perf_counter()
        ref = solve(q, time_limit_s=limit)
        cold.append(time.perf_counter() - t0)
        same &= abs(got.objective_value - ref.objective_value) <= 1e-6 * ref.objective_value
    return {"status": f"{len(warm)} re-plans, " + ("same optimum as cold" if same
                                                    else "DIFFERENT from cold"),
            "method": "milp-warm" if r.warm else "cold", "gap": 0.0, "objective": None,
            "seconds": statistics.median(warm), "cold_s": statistics.median(cold)}


def baseline_call(name: str, p: Problem, deadline: float | None,
                  limit: float) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        if name == "sky-dp":
            r = solve_chain_dp(p)
        else:
            r = solve_ilp(p, deadline_h=deadline, merged=name == "merged", time_limit_s=limit)
        # Its own clock: model build and solve, not placer's pricing of its plan afterwards.
        return {"status": r.status, "objective": r.objective, "columns": r.columns,
                "build_s": r.build_seconds, "seconds": r.seconds}
    return run


def skip_reason(name: str, p: Problem, deadline: float | None, max_pairs: int) -> str | None:
    """Why a baseline is not run on this instance (None: run it)."""
    if name == "sky-dp":
        return None
    if importlib.util.find_spec("pulp") is None:
        return "n/a: pip install pulp"
    if name == "merged" and deadline is not None:
        return "n/a: deadline"
    pairs = pair_binaries(p, merged=name == "merged")
    if pairs > max_pairs:
        return f"skipped: {pairs / 1e6:.1f}M pair binaries"
    return None


# -- running the table ------------------------------------------------------------------------


@dataclass
class Stats:
    """A method's runs on one case."""

    runs: list[Run] = field(default_factory=list)
    skipped: str | None = None

    @property
    def times(self) -> list[float]:
        return [r.seconds for r in self.runs if r.seconds is not None]

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    @property
    def finished(self) -> bool:
        """Every run returned (none killed) and none erred."""
        return bool(self.runs) and len(self.times) == len(self.runs) \
            and not any(str(r.out.get("status", "")).startswith("error") for r in self.runs)

    @property
    def last(self) -> dict[str, Any]:
        return self.runs[-1].out if self.runs else {}

    @property
    def rss(self) -> float:
        return max((r.rss_mb for r in self.runs), default=0.0)


@dataclass
class Result:
    case: Case
    opts_per_job: float
    edges: int
    deadline: float | None
    placer: Stats
    baselines: dict[str, Stats]
    seeds: list[Result] = field(default_factory=list)  # one per seed when several ran


def merged(results: list[Result]) -> Result:
    """One row for a case run on several seeds: every run counted, each seed kept."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    placer = Stats(runs=[run for r in results for run in r.placer.runs])
    baselines = {
        name: Stats(runs=[run for r in results for run in r.baselines[name].runs],
                    skipped=next((r.baselines[name].skipped for r in results
                                  if r.baselines[name].skipped), None))
        for name in first.baselines
    }
    return Result(first.case, statistics.mean(r.opts_per_job for r in results),
                  round(statistics.mean(r.edges for r in results)), first.deadline, placer,
                  baselines, seeds=results)


def run_case(case: Case, seed: int, limit: float, repeats: int, max_pairs: int,
             progress: str) -> Result:
    t0 = time.perf_counter()
    p = case.make(seed)
    deadline = deadline_for(p) if case.deadline else None
    opj = statistics.mean(len(o) for o in p.options.values()) if p.jobs else math.nan
    print(f"{progress} {case.key}: instance in {time.perf_counter() - t0:.1f} s "
          f"({len(p.jobs)} jobs, {opj:.1f} options/job, {len(p.edges)} edges"
          f"{f', deadline {deadline:.2f} h' if deadline else ''})", file=sys.stderr, flush=True)
    methods: dict[str, tuple[Stats, Callable[[], dict[str, Any]]]] = {
        "placer": (Stats(), placer_call(case, p, deadline, limit, seed))}
    for name in case.baselines:
        why = skip_reason(name, p, deadline, max_pairs)
        methods[name] = (Stats(skipped=why), baseline_call(name, p, deadline, limit))
    want = case.repeats or repeats
    spent = dict.fromkeys(methods, 0.0)
    for i in range(want):
        for name, (stats, call) in methods.items():
            if stats.skipped or (stats.runs and not stats.finished):
                continue
            last = stats.times[-1] if stats.times else 0.0
            if i > 0 and spent[name] + last > limit:
                continue  # another run would not fit the time limit
            run = measure(call, limit)
            stats.runs.append(run)
            spent[name] += run.seconds if run.seconds is not None else limit
            took = f"{run.seconds:.3f} s" if run.seconds is not None else "killed"
            print(f"{progress}   {name:7} run {i + 1}/{want}: {took}, "
                  f"{run.out.get('status')}", file=sys.stderr, flush=True)
            if "trace" in run.out:
                print(run.out["trace"], file=sys.stderr)
    stats = {k: v[0] for k, v in methods.items()}
    return Result(case, opj, len(p.edges), deadline, stats.pop("placer"), stats)


# -- presenting -------------------------------------------------------------------------------


def secs(t: float | None) -> str:
    if t is None:
        return "-"
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"


def baseline_cell(r: Result, name: str, limit: float) -> str:
    if name not in r.baselines:
        return ""
    b = r.baselines[name]
    if b.skipped:
        return b.skipped
    if not b.finished:
        return f"> {limit:g} s ({b.last.get('status')})"
    cell = secs(b.median)
    status = b.last.get("status")
    if status != "optimal":
        cell += f" ({status})"
    if b.median and r.placer.median:
        cell += f", {b.median / r.placer.median:.3g}×"
    return cell


def agreement(r: Result) -> str:
    """Whether every finished baseline's plan costs what placer's does (priced by placer)."""
    mine = r.placer.last.get("objective")
    if mine is None:
        return "-"
    notes = []
    for name, b in r.baselines.items():
        theirs = b.last.get("objective") if b.finished else None
        if theirs is None:
            continue
        rel = (theirs - mine) / max(abs(mine), 1e-9)
        notes.append("=" if abs(rel) < 1e-6 else f"{BASELINE_NAMES[name]} {rel:+.3%}")
    if not notes:
        return "-"
    return "yes" if all(n == "=" for n in notes) else "; ".join(n for n in notes if n != "=")


HEADERS = ["case", "jobs", "opts/job", "edges", "placer method", "solve (median)", "runs",
           "status", "gap", "peak RSS", "SkyPilot ILP (×placer)", "merged ILP (×placer)",
           "SkyPilot DP (×placer)", "same optimum", "note"]


def spread(r: Result) -> str:
    """The range of per-seed medians, when several seeds ran and all finished."""
    meds = [x.placer.median for x in r.seeds if x.placer.finished]
    if len(r.seeds) < 2 or len(meds) < len(r.seeds):
        return ""
    return f" [{secs(min(m for m in meds if m is not None))}–" \
           f"{secs(max(m for m in meds if m is not None))}, {len(meds)} seeds]"


def cells(r: Result, limit: float) -> list[str]:
    if r.seeds:
        return seeds_cells(r, limit)
    pl = r.placer
    out = pl.last
    t = secs(pl.median) if pl.finished else f"> {limit:g} s"
    if r.case.kind == "e2e" and out.get("solve_s") is not None:
        t += f" (solve {secs(out['solve_s'])})"
    if r.case.kind == "replan" and out.get("cold_s") is not None:
        t += f" (cold re-solve {secs(out['cold_s'])}, {out['cold_s'] / (pl.median or 1):.3g}×)"
    gap = out.get("gap")
    opj = "-" if math.isnan(r.opts_per_job) else f"{r.opts_per_job:.1f}"
    edges = "-" if r.case.kind == "e2e" else f"{r.edges:,}"
    return [r.case.key, f"{r.case.n_jobs:,}", opj, edges, str(out.get("method", "-")),
            t, str(len(pl.times)), str(out.get("status", "-")),
            "-" if gap is None else f"{gap:.2%}", f"{pl.rss:,.0f} MB",
            baseline_cell(r, "ilp", limit), baseline_cell(r, "merged", limit),
            baseline_cell(r, "sky-dp", limit), agreement(r), r.case.note]


def seeds_cells(r: Result, limit: float) -> list[str]:
    """A row over several seeds: median of every run and the per-seed range; statuses and
    agreement from every seed, the worst gap."""
    rows = [cells(x, limit) for x in r.seeds]
    pl = r.placer
    t = (secs(pl.median) + spread(r)) if pl.finished else f"> {limit:g} s"
    extra = [x.placer.last.get("cold_s") for x in r.seeds]
    if r.case.kind == "replan" and all(e is not None for e in extra):
        cold = statistics.median(extra)
        t += f" (cold re-solve {secs(cold)}, {cold / (pl.median or 1):.3g}×)"
    gaps = [x.placer.last.get("gap") for x in r.seeds if x.placer.last.get("gap") is not None]

    def joined(i: int) -> str:
        return "; ".join(dict.fromkeys(row[i] for row in rows))

    def base(name: str, i: int) -> str:
        b = r.baselines.get(name)
        if b is None:
            return ""
        if b.skipped or not b.finished:
            return joined(i)
        ratio = f", {b.median / pl.median:.3g}×" if b.median and pl.median else ""
        return secs(b.median) + ratio
    agree = {row[13] for row in rows}
    return [r.case.key, f"{r.case.n_jobs:,}", rows[0][2], rows[0][3], joined(4), t,
            str(len(pl.times)), joined(7), "-" if not gaps else f"{max(gaps):.2%} (worst)",
            f"{pl.rss:,.0f} MB", base("ilp", 10), base("merged", 11), base("sky-dp", 12),
            "yes" if agree == {"yes"} else "; ".join(sorted(agree)), r.case.note]


def markdown_table(results: list[Result], limit: float) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(cells(r, limit)) + " |" for r in results]
    return "\n".join(lines)


def plot(results: list[Result], path: Path, limit: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    markers = {"placer": "o", "ilp": "s", "merged": "D", "sky-dp": "^"}
    styles = {"placer": "-", "ilp": "--", "merged": "-.", "sky-dp": ":"}
    families = sorted({r.case.family for r in results})
    colors = {f: plt.get_cmap("tab10")(i % 10) for i, f in enumerate(families)}
    for fam in families:
        rows = sorted((r for r in results if r.case.family == fam), key=lambda r: r.case.n_jobs)
        for m in ("placer", *BASELINE_NAMES):
            pts = []
            for r in rows:
                s = r.placer if m == "placer" else r.baselines.get(m)
                if s is None or s.skipped or not s.runs:
                    continue
                pts.append((r.case.n_jobs, s.median if s.finished else limit, s.finished))
            if not pts:
                continue
            label = f"{fam}: {'placer' if m == 'placer' else BASELINE_NAMES[m]}"
            ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts], linestyle=styles[m],
                    marker=markers[m], color=colors[fam], label=label,
                    markerfacecolor=colors[fam] if m == "placer" else "none")
            for x, y, ok in pts:
                if not ok:
                    ax.annotate("limit", (x, y), fontsize=7, xytext=(3, 3),
                                textcoords="offset points")
    ax.axhline(limit, color="grey", linestyle=":", linewidth=1, label=f"time limit {limit:g} s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("jobs")
    ax.set_ylabel("median wall time (s)")
    ax.set_title(f"placer vs SkyPilot's formulation ({os.cpu_count()} cores, same run)")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(results: list[Result], command: str, limit: float, seed: int, png: str,
             seeds: int = 1) -> str:
    try:
        import pulp

        pulp_v = f"PuLP {pulp.__version__} + CBC"
    except ImportError:
        pulp_v = "PuLP not installed"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"## optimizer_scaling — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (load average {load} at the "
        f"end), Python {platform.python_version()}, {pulp_v}. "
        + (f"Seed {seed}" if seeds == 1 else
           f"Seeds {seed}-{seed + seeds - 1} (a row's time is the median of every run of every "
           "seed, then in brackets the range of the per-seed medians)")
        + f"; per-case time "
        f"limit {limit:g} s. Times are wall-clock medians of the runs counted, placer and "
        "baselines interleaved run by run in one process tree; a baseline's ratio is its "
        "median over placer's (above 1: placer is faster). Deadlines are "
        f"{DEADLINE_FACTOR} x the makespan of every job on its fastest pool-free option. "
        "Peak RSS is the solving process's (placer's, or PuLP's and CBC's) above what it "
        "inherited from the benchmark when it was forked (the instance and earlier rows).",
        "",
        markdown_table(results, limit),
        "",
        "Instances: " + "; ".join(f"`{r.case.key}` = `{r.case.recipe}`" for r in results) + ".",
        "",
        f"Plot: `benchmarks/out/{png}`.",
        "",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="toy sizes, 10 s limit (smoke test)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1,
                    help="instances per case (seeds --seed, --seed+1, ...); one row each case")
    ap.add_argument("--time-limit", type=float, default=300.0, help="per case and method (s)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per method (at most)")
    ap.add_argument("--cases", default="", help="comma-separated substrings of case names")
    ap.add_argument("--max-jobs", type=int, default=None, help="skip larger cases")
    ap.add_argument("--max-pairs", type=int, default=1_500_000,
                    help="skip an ILP with more edge-pair binaries (memory)")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="where the plot goes (default benchmarks/out; with --quick a "
                         "temporary folder, so a toy run never replaces the recorded plot)")
    ap.add_argument("--plot-name", default="optimizer_scaling.png")
    ap.add_argument("--record", action="store_true",
                    help="append the table and command to benchmarks/RESULTS.md")
    ap.add_argument("--results", type=Path, default=None,
                    help="append to this markdown file instead (implies --record)")
    args = ap.parse_args(argv)
    limit = min(args.time_limit, 10.0) if args.quick else args.time_limit
    repeats = 2 if args.quick else args.repeats
    todo = cases(args.quick)
    if args.cases:
        wanted = [w.strip() for w in args.cases.split(",") if w.strip()]
        todo = [c for c in todo if any(w in c.key for w in wanted)]
    if args.max_jobs is not None:
        todo = [c for c in todo if c.n_jobs <= args.max_jobs]
    results = []
    for i, case in enumerate(todo, start=1):
        results.append(merged([
            run_case(case, seed, limit, repeats, args.max_pairs, f"[{i}/{len(todo)}]")
            for seed in range(args.seed, args.seed + args.seeds)]))
    table = markdown_table(results, limit)
    print(table)
    out_dir = args.out_dir or (Path(tempfile.mkdtemp(prefix="optimizer_scaling-"))
                               if args.quick else ROOT / "benchmarks" / "out")
    png = out_dir / args.plot_name
    plot(results, png, limit)
    print(f"wrote {png}")
    target = args.results or (ROOT / "benchmarks" / "RESULTS.md" if args.record else None)
    if target is not None:
        command = "python " + " ".join(["benchmarks/optimizer_scaling.py",
                                        *(sys.argv[1:] if argv is None else argv)])
        header = "" if target.exists() else (
            "# Benchmark results\n\nEach section is appended by the benchmark named in its "
            "title; the command that produced it is quoted.\n\n")
        with target.open("a", encoding="utf-8") as fh:
            fh.write(header + markdown(results, command, limit, args.seed, args.plot_name,
                                       args.seeds))
        print(f"appended to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
