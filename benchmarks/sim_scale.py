"""Issue 13's scale table: every strategy over the whole ITP trace, and what one decision costs.

Two replays of all 69,351 jobs of the Microsoft ITP trace (its ten clusters) under Starburst's
model (one price per cloud GPU-hour; no spot, egress or start-up delay), per strategy:

* **per cluster**: each cluster on its own on-prem pool, as the shipped scenarios replay one:
  cluster04 on 64 x 8 GPUs (``starburst-itp.yaml``), cluster07 on 33 x 8
  (``starburst-itp-cluster07.yaml``), every other cluster on the rule that sized cluster07:
  ``ceil(offered load / 8)`` nodes of 8 GPUs (offered load = GPU-hours / submission span), and
  at least its largest job. Ten replays; their figures are added up (latencies pooled);
* **one pool**: the ten clusters merged into one workload (each starting at 0) on
  ``starburst-itp.yaml``'s 64 x 8 GPUs, about 2.2 x overloaded (GPU-hours over the span), so
  that queues reach hundreds of jobs: where a decision that walks the queue or the running
  jobs grows with them.

Strategies: :data:`placer.sim.registry.ALL` at waiting budget 0.5 (as ``hybrid_targets.py``'s
speed table), and placer at budget 2 too (longer queues). Each replay runs in a child process:
CPU time (``process_time``) and wall time of the ``simulate`` calls only (traces parsed and
merged before); decisions are the strategy's calls; decision latency is per job, all its
decisions' wall time together (as ``placer.sim.metrics``), median and p99 over every job.
Figures are medians over ``--runs`` repeats.

``--old PATH`` runs the same replays on another copy of placer (the tree before a change),
alternating with this one run by run so that load on the machine hits both alike, and adds
its CPU time, its p99, the ratio and whether every job's outcome (ready time, decisions, every
run) is identical.

    python benchmarks/sim_scale.py                        # the table and the plot
    python benchmarks/sim_scale.py --old /tmp/placer-old --record   # + compare, RESULTS.md
    python benchmarks/sim_scale.py --quick                # 1,000 jobs per cluster, seconds

Without ``--quick`` the plot is ``benchmarks/out/sim_scale.png``; nothing is written to
``benchmarks/RESULTS.md`` without ``--record``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
POOLS = {"cluster04": 64, "cluster07": 33}
"""Nodes of the clusters that have a shipped scenario (the scenario files' pools)."""
ONE_POOL_NODES = 64
STRATEGIES = ("onprem-only", "no-wait", "constant-wait", "constant-wait-nosj",
              "compute-wait+oo", "star-wait", "skypilot", "placer")
"""``placer.sim.registry.ALL``, spelt out so that the parent never imports placer (the
replays import whichever copy ``PYTHONPATH`` names)."""
WORKLOADS = ("per-cluster", "one-pool")


# -- the child: one (workload, strategy, budget) replay, with whichever placer is on the path --
def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Replay and measure; only APIs that placer had before issue 13 (to time old copies)."""
    import hashlib
    import math
    from functools import reduce

    import numpy as np

    from placer.sim.cloud import uniform_cloud
    from placer.sim.engine import OnPremConfig, simulate
    from placer.sim.registry import make_strategy
    from placer.sim.workload import ITP_CLUSTERS, itp_trace, merge

    limit = spec["limit"]
    traces = {c: itp_trace(c, limit=limit) for c in ITP_CLUSTERS}

    def nodes(c: str) -> int:
        if c in POOLS:
            return POOLS[c]
        jobs = itp_trace(c).jobs  # sized on the whole cluster, even under --quick
        span = max(j.arrival_h for j in jobs) - min(j.arrival_h for j in jobs)
        load = sum(j.gpus * j.runtime_h for j in jobs) / span
        return max(math.ceil(load / 8), math.ceil(max(j.gpus for j in jobs) / 8))

    if spec["workload"] == "per-cluster":
        runs = [(traces[c], nodes(c)) for c in ITP_CLUSTERS]
    else:
        runs = [(reduce(merge, traces.values()), ONE_POOL_NODES)]
    wall = cpu = 0.0
    decisions = 0
    latency: list[float] = []
    digest = hashlib.sha256()
    for workload, n in runs:
        strategy = make_strategy(spec["strategy"], spec["budget"])
        t, c = time.perf_counter(), time.process_time()
        result = simulate(workload, strategy, onprem=OnPremConfig(nodes=n),
                          cloud=uniform_cloud())
        wall += time.perf_counter() - t
        cpu += time.process_time() - c
        for r in result.records:
            decisions += r.decisions
            latency.append(r.decision_s)
            digest.update(f"{r.job.id}|{r.ready_h!r}|{r.decisions}|{r.attempts!r}\n".encode())
    ms = np.asarray(latency) * 1000.0
    return {
        "jobs": len(latency), "decisions": decisions, "wall_s": wall, "cpu_s": cpu,
        "p50_ms": float(np.quantile(ms, 0.5)), "p99_ms": float(np.quantile(ms, 0.99)),
        "outcomes": digest.hexdigest(), "pools": [n for _, n in runs],
    }


def _run(code: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """One replay in a child process importing placer from ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker",
                          json.dumps(spec)], env=env, cwd=code, capture_output=True, text=True,
                         check=False)
    if out.returncode:
        raise SystemExit(f"replay {spec} with {code} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the repeats (outcomes must agree between repeats)."""
    assert len({r["outcomes"] for r in runs}) == 1, "a replay is not deterministic"
    out = dict(runs[0])
    for key in ("wall_s", "cpu_s", "p50_ms", "p99_ms"):
        out[key] = statistics.median(r[key] for r in runs)
    return out


# -- the parent: the table, the plot, RESULTS.md ---------------------------------------------
def _rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    cases = [(s, 0.5) for s in args.strategies]
    if "placer" in args.strategies:
        cases += [("placer", b) for b in args.placer_budgets if b != 0.5]
    rows = []
    for workload in WORKLOADS:
        for strategy, budget in cases:
            spec = {"workload": workload, "strategy": strategy, "budget": budget,
                    "limit": args.limit}
            new, old = [], []
            for _ in range(args.runs):  # alternate, so that load hits both alike
                new.append(_run(ROOT, spec))
                if args.old:
                    old.append(_run(args.old, spec))
            row = {"workload": workload, "strategy": strategy, "budget": budget,
                   "new": _median(new), "old": _median(old) if old else None}
            rows.append(row)
            n = row["new"]
            line = (f"{workload:11s} {strategy:18s} b={budget:<4g} CPU {n['cpu_s']:7.2f} s "
                    f"p99 {n['p99_ms']:.3f} ms")
            if row["old"]:
                o = row["old"]
                line += (f" | old CPU {o['cpu_s']:7.2f} s p99 {o['p99_ms']:.3f} ms | "
                         f"{'same' if o['outcomes'] == n['outcomes'] else 'DIFFERENT'}")
            print(line, file=sys.stderr, flush=True)
    return rows


def _table(rows: list[dict[str, Any]], workload: str, compare: bool) -> str:
    head = ["strategy", "b", "jobs", "decisions", "wall s", "CPU s", "decision p50 ms",
            "decision p99 ms"]
    if compare:
        head += ["old CPU s", "old p99 ms", "CPU old / new", "same outcomes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["workload"] != workload:
            continue
        n = r["new"]
        cells = [r["strategy"], f"{r['budget']:g}", f"{n['jobs']:,}", f"{n['decisions']:,}",
                 f"{n['wall_s']:.2f}", f"{n['cpu_s']:.2f}", f"{n['p50_ms']:.3f}",
                 f"{n['p99_ms']:.3f}"]
        if compare and r["old"] is not None:
            o = r["old"]
            cells += [f"{o['cpu_s']:.2f}", f"{o['p99_ms']:.3f}",
                      f"{o['cpu_s'] / n['cpu_s']:.1f}x",
                      "yes" if o["outcomes"] == n["outcomes"] else "**no**"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is in the dev and bench extras
        print("no plot: matplotlib is not installed (pip install 'placer[bench]')",
              file=sys.stderr)
        return
    from matplotlib.ticker import FormatStrFormatter

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, workload in zip(axes, WORKLOADS, strict=True):
        mine = [r for r in rows if r["workload"] == workload]
        labels = [f"{r['strategy']} (b={r['budget']:g})" for r in mine]
        bars = [("after", "#3465a4", [r["new"]["cpu_s"] for r in mine])]
        if any(r["old"] for r in mine):
            bars.append(("before", "#bbbbbb",
                         [r["old"]["cpu_s"] if r["old"] else 0.0 for r in mine]))
        height = 0.8 / len(bars)
        for k, (name, colour, values) in enumerate(bars):
            ys = [y - 0.4 + height * (k + 0.5) for y in range(len(mine))]
            ax.barh(ys, values, height=height, color=colour, label=name)
            for y, v in zip(ys, values, strict=True):
                if v:
                    ax.annotate(f"{v:.2f} s", (v, y), xytext=(3, 0), textcoords="offset points",
                                va="center", fontsize=8)
        ax.set_yticks(range(len(mine)), labels)
        ax.invert_yaxis()
        ax.set_xscale("log")
        low = min(v for _, _, values in bars for v in values if v)
        high = max(v for _, _, values in bars for v in values)
        ax.set_xlim(low / 3, high * 4)
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.set_xlabel("CPU seconds per replay of all the jobs (median; log scale)")
        jobs = mine[0]["new"]["jobs"] if mine else 0
        ax.set_title(f"{workload}: {jobs:,} ITP jobs")
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"The whole ITP trace per strategy ({os.cpu_count()} cores)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _record(rows: list[dict[str, Any]], args: argparse.Namespace, text: str,
            wall: float, plot: Path) -> None:
    date = subprocess.run(["date"], capture_output=True, text=True, check=False).stdout.strip()
    load = f"{os.getloadavg()[0]:.1f}"
    cmd = shlex.join(["python", "benchmarks/sim_scale.py", *args.argv])
    old = (f" Before: the tree at `{args.old}` ({args.old_label})." if args.old else "")
    pools = next(r["new"]["pools"] for r in rows if r["workload"] == "per-cluster")
    section = (
        f"\n\n## sim_scale (issue 13): the whole ITP trace per strategy — {date}\n\n"
        f"Command: `{cmd}` ({wall:.0f} s)\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (load average {load} at the "
        f"end), Python {platform.python_version()}.{old} Medians of {args.runs} runs; old and "
        f"new alternated run by run.\n\n"
        f"All 69,351 jobs of the ten ITP clusters, Starburst's model (uniform cloud at $1 per "
        f"GPU-hour). *per-cluster*: each cluster on its own pool, nodes of 8 GPUs "
        f"{', '.join(map(str, pools))} (cluster01 to cluster10; 04 and 07 as their shipped "
        f"scenarios, the others `ceil(offered load / 8)`); figures added over the ten replays. "
        f"*one-pool*: the ten merged on 64 x 8 GPUs (~2.2 x overloaded). CPU and wall time of "
        f"the replays alone; decision latency per job (all its decisions), over every job.\n\n"
        f"{text}\n\nPlot: `benchmarks/out/{plot.name}`.\n"
    )
    with RESULTS.open("a") as fh:
        fh.write(section)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true",
                    help="1,000 jobs per cluster, 3 strategies, 1 run; plot to a temp folder")
    ap.add_argument("--runs", type=int, default=3, help="repeats per replay (median)")
    ap.add_argument("--old", type=Path, help="another placer tree to compare with")
    ap.add_argument("--old-label", default="before the change",
                    help="what --old is, for RESULTS.md (e.g. a commit)")
    ap.add_argument("--strategies", default=",".join(STRATEGIES),
                    help="comma-separated registry names")
    ap.add_argument("--placer-budgets", default="0.5,2",
                    help="placer's budgets (the baselines run at 0.5)")
    ap.add_argument("--record", action="store_true",
                    help="append the tables and the command to benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return
    args.argv = sys.argv[1:]
    args.strategies = tuple(s for s in args.strategies.split(",") if s)
    args.placer_budgets = tuple(float(b) for b in args.placer_budgets.split(","))
    args.limit = None
    plot = OUT / "sim_scale.png"
    if args.quick:
        args.limit, args.runs = 1000, 1
        args.strategies = tuple(s for s in args.strategies
                                if s in ("no-wait", "compute-wait+oo", "placer"))
        plot = Path(tempfile.mkdtemp(prefix="placer-sim-scale-")) / "sim_scale.png"
    t0 = time.perf_counter()
    rows = _rows(args)
    compare = args.old is not None
    text = "\n\n".join(f"### {w}\n\n{_table(rows, w, compare)}" for w in WORKLOADS)
    print(text)
    _plot(rows, plot)
    wall = time.perf_counter() - t0
    print(f"\nplot: {plot} ({wall:.0f} s)")
    if args.record and not args.quick:
        _record(rows, args, text, wall, plot)


if __name__ == "__main__":
    main()
