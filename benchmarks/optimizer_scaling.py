"""How the exact optimizer methods scale with the number of jobs.

For chains and random DAGs (and, with ``--shapes``, in-trees) of 10, 100 and 1,000 jobs
(4 options each, two seeds), solve "min cost subject to makespan <= 1.3 x the shortest
possible makespan" with every applicable method (the Pareto-label DP for chains and trees,
the HiGHS MILP for all, and `auto`, which is what `placer plan` uses), each with a per-solve
time limit so the benchmark always ends.
Prints a table, writes a PNG and appends a section to ``benchmarks/RESULTS.md`` with the
command that produced it.

    python benchmarks/optimizer_scaling.py            # full run (~15 min on 2 cores)
    python benchmarks/optimizer_scaling.py --quick    # tiny sizes, seconds; no RESULTS.md
    python benchmarks/optimizer_scaling.py --shapes tree,dag --pool-gpus 1000000
        --plot-name optimizer_scaling_uncontended.png   # (one line) capacity never binds

The deadline's reference makespan is the proven minimum from ``solve(p, "time")`` (DP for
chains and trees, MILP for DAGs). When that solve cannot prove optimality in the time
limit, the best makespan it found is used, and when it finds none (large DAGs with a
contended on-prem pool), the makespan of running every job on its fastest option, ignoring
capacity; the table's ``deadline ref`` column says which.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from placer.errors import SolverError  # noqa: E402
from placer.optimizer import Problem, evaluate, random_problem, solve  # noqa: E402


@dataclass(frozen=True)
class Run:
    shape: str
    n_jobs: int
    seed: int
    method: str
    ref: str
    status: str  # optimal / feasible / no plan (time limit) / infeasible
    seconds: float
    objective: float | None
    gap: float | None


def reference_makespan(p: Problem, limit: float) -> tuple[float, str]:
    """The makespan the deadline is scaled from, and how it was obtained."""
    try:
        fastest = solve(p, "time", time_limit_s=limit)  # DP where exact, else MILP
        if fastest.status != "infeasible":
            return fastest.makespan_h, "min" if fastest.optimal else "best found"
    except SolverError:
        pass
    choice = {
        j: min(range(len(p.options[j])), key=lambda o: p.options[j][o].duration_h)
        for j in p.jobs
    }
    return evaluate(p, choice).makespan_h, "fastest options, no capacity"


def bench(
    shapes: list[str], sizes: list[int], seeds: list[int], limit: float, pool_gpus: int
) -> list[Run]:
    runs: list[Run] = []
    for shape in shapes:
        for n in sizes:
            for seed in seeds:
                p = random_problem(n, 4, shape, seed, pool_gpus=pool_gpus)  # type: ignore[arg-type]
                ref_t, ref = reference_makespan(p, limit)
                methods = ["dp", "milp"] if shape in ("chain", "tree") else ["milp"]
                for method in [*methods, "auto"]:
                    t0 = time.perf_counter()
                    try:
                        s = solve(p, "cost", deadline_h=1.3 * ref_t, method=method,  # type: ignore[arg-type]
                                  time_limit_s=limit)
                        status, obj, gap = s.status, s.objective_value, s.gap
                        name = f"auto: {s.method}" if method == "auto" else s.method
                    except SolverError:
                        status, obj, gap, name = "no plan (time limit)", None, None, method
                    runs.append(Run(shape, n, seed, name, ref, status,
                                    time.perf_counter() - t0, obj, gap))
                    print(f"  {shape:5} n={n:5} seed={seed} {name:9} {status:21} "
                          f"{runs[-1].seconds:8.2f}s", file=sys.stderr, flush=True)
    return runs


@dataclass(frozen=True)
class Row:
    shape: str
    n_jobs: int
    method: str
    median_s: float
    statuses: str
    max_gap: str
    median_cost: str
    ref: str
    all_optimal: bool


def summarise(runs: list[Run]) -> list[Row]:
    rows = []
    keys = sorted({(r.shape, r.n_jobs, r.method) for r in runs},
                  key=lambda k: (k[0], k[1], k[2]))
    for shape, n, method in keys:
        group = [r for r in runs if (r.shape, r.n_jobs, r.method) == (shape, n, method)]
        counts: dict[str, int] = {}
        for r in group:
            counts[r.status] = counts.get(r.status, 0) + 1
        gaps = [r.gap for r in group if r.gap is not None]
        objs = [r.objective for r in group if r.objective is not None]
        rows.append(Row(
            shape, n, method,
            statistics.median(r.seconds for r in group),
            ", ".join(f"{v}/{len(group)} {k}" for k, v in sorted(counts.items())),
            f"{max(gaps):.2%}" if gaps else "-",
            f"${statistics.median(objs):,.2f}" if objs else "-",
            "; ".join(sorted({r.ref for r in group})),
            all(r.status == "optimal" for r in group),
        ))
    return rows


HEADERS = ["shape", "jobs", "method", "median solve (s)", "status", "max gap",
           "median cost obj.", "deadline ref"]


def cells(row: Row) -> list[str]:
    return [row.shape, str(row.n_jobs), row.method, f"{row.median_s:.2f}", row.statuses,
            row.max_gap, row.median_cost, row.ref]


def print_table(rows: list[Row]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(" | ".join(HEADERS))
        for row in rows:
            print(" | ".join(cells(row)))
        return
    table = Table(title="optimizer scaling (cost objective, deadline 1.3x reference)")
    for h in HEADERS:
        table.add_column(h)
    for row in rows:
        table.add_row(*cells(row))
    Console().print(table)


def plot(rows: list[Row], path: Path, limit: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for shape, method in sorted({(r.shape, r.method) for r in rows}):
        pts = [r for r in rows if (r.shape, r.method) == (shape, method)]
        ax.plot([r.n_jobs for r in pts], [r.median_s for r in pts], marker="o",
                label=f"{shape} / {method}")
        for r in pts:
            if not r.all_optimal:
                ax.annotate(r.statuses, (r.n_jobs, r.median_s), fontsize=7, ha="right",
                            xytext=(-4, -12), textcoords="offset points")
    ax.axhline(limit, color="grey", linestyle=":", linewidth=1, label=f"time limit {limit:g}s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("jobs")
    ax.set_ylabel("median solve time (s)")
    ax.set_title("placer optimizer: exact methods, 4 options/job, 2 cores")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(
    rows: list[Row], command: str, limit: float, seeds: list[int], pool_gpus: int,
    plot_name: str,
) -> str:
    lines = [
        f"## optimizer_scaling — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, 2 cores, Python {platform.python_version()}; "
        f"HiGHS single-threaded; per-solve time limit {limit:g} s; seeds {seeds}; "
        f"`random_problem(n, 4, shape, seed, pool_gpus={pool_gpus})` (3 locations, one "
        f"of them on-prem with a {pool_gpus:,}-GPU pool; jobs take 1-8 GPUs). "
        "Objective: min cost with deadline 1.3 x the reference makespan.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    lines += ["", f"Plot: `benchmarks/out/{plot_name}`.", "", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one seed (smoke test)")
    ap.add_argument("--time-limit", type=float, default=120.0, help="per-solve limit (s)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "out")
    ap.add_argument("--shapes", default="chain,dag", help="comma-separated: chain,tree,dag")
    ap.add_argument("--pool-gpus", type=int, default=16,
                    help="on-prem pool size (huge = capacity never binds)")
    ap.add_argument("--plot-name", default="optimizer_scaling.png")
    ap.add_argument("--results", type=Path, default=None,
                    help="markdown file to append to (default benchmarks/RESULTS.md; "
                         "none with --quick)")
    args = ap.parse_args(argv)
    if args.quick:
        sizes, seeds, limit = [4, 8], [0], min(args.time_limit, 10.0)
        results = args.results
    else:
        sizes, seeds, limit = [10, 100, 1000], [0, 1], args.time_limit
        results = args.results or ROOT / "benchmarks" / "RESULTS.md"
    runs = bench(args.shapes.split(","), sizes, seeds, limit, args.pool_gpus)
    rows = summarise(runs)
    print_table(rows)
    png = args.out_dir / args.plot_name
    plot(rows, png, limit)
    print(f"wrote {png}")
    if results is not None:
        command = "python " + " ".join(["benchmarks/optimizer_scaling.py", *(argv or sys.argv[1:])])
        header = "" if results.exists() else (
            "# Benchmark results\n\nEach section is appended by the benchmark named in its "
            "title; the command that produced it is quoted.\n\n")
        with results.open("a", encoding="utf-8") as fh:
            fh.write(header + markdown(rows, command, limit, seeds, args.pool_gpus,
                                       args.plot_name))
        print(f"appended to {results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
