"""Issue 13 ("fair baselines"): placer's spot decision against Can't Be Late's Uniform Progress.

One job of 48 hours of work on V100s, deadlines of 52, 60, 72 and 96 hours (job fractions
0.92 to 0.5), changeover d = 0.2 h, p3.2xlarge prices from placer's catalog ($3.06 / $0.9731
per node-hour, the pair the paper's simulator used), replayed with
:mod:`placer.sim.spot_deadline` on the paper's own traces (``placer/sim/data/spot``) from
many start offsets (one per ``stride`` hours of trace, jittered from seed 0; every policy
starts from the same offsets). Four trace sets: the 45-day single-V100 set (9 zones), the
27-day one (us-west-2a/b), the 16-node availability set (a job of 16 nodes needs 16) and the
4-node preemption set (4 nodes). Policies: on-demand only, Greedy, Uniform Progress, placer
(the planner's one-shot choice, then the executor waiting on spot), placer+safety-net (a
labelled variant), placer-online (the simulator's placer strategy),
placer-live+safety-net (the live path's spot safety net, ``placer controller
--spot-safety-net``: spot only if a lost spot run can be done again on demand by the deadline,
a preempted one retried on demand) and a sensitivity row, placer[own-trace stats] (the planner
fed the statistics of the very trace it is replayed on).

Prints one table per trace set, writes ``benchmarks/out/spot_deadline.png`` and, with
``--record``, appends a section to ``benchmarks/RESULTS.md``.

    python benchmarks/spot_deadline.py             # every set (~2 min on one core)
    python benchmarks/spot_deadline.py --record    # the same, appended to RESULTS.md
    python benchmarks/spot_deadline.py --quick     # one set, two deadlines; plot in a temp dir
    python benchmarks/spot_deadline.py --deadlines 52 60 72 96 120   # other deadlines
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from placer.sim.cloud import SpotTrace, load_spot_traces  # noqa: E402
from placer.sim.spot_deadline import (  # noqa: E402
    Cell,
    DeadlinePolicy,
    PlacerLiveNet,
    PlacerPlan,
    Prices,
    Sweep,
    TraceSet,
    location_of,
    run_sweep,
    standard_policies,
    trace_stats,
)

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
PLOT = "spot_deadline.png"
DEADLINES = (52.0, 60.0, 72.0, 96.0)
OWN = "placer[own-trace stats]"


def _zones(traces: dict[str, SpotTrace], folder: str, kind: str) -> tuple[str, ...]:
    """The zone traces of a shipped folder (not the region traces built from them)."""
    out = []
    for name in sorted(traces):
        head, _, base = name.rpartition("/")
        zone, _, k = base.partition("_")
        if head == folder and k == kind and zone[-1].isalpha():
            out.append(name)
    return tuple(out)


def trace_sets(traces: dict[str, SpotTrace], quick: bool) -> list[tuple[TraceSet, float]]:
    """The sets and the stride (hours between starts) each is sampled at."""
    sets = [
        (TraceSet(label="1×V100, 27 days from 2022-10-26, us-west-2a/b",
                  traces=_zones(traces, "availability/1-node/aws-10-26-2022", "v100_1")), 2.0),
        (TraceSet(label="1×V100, 45 days from 2023-02-15, 9 zones",
                  traces=_zones(traces, "availability/1-node/aws-02-15-2023", "v100_1")), 6.0),
        (TraceSet(label="16×V100 gang, 11-16 days from 2023-08-27, 3 zones", nodes=16,
                  traces=_zones(traces, "availability/16-node/aws-08-27-2023", "v100_1")), 2.0),
        (TraceSet(label="4×V100 gang, preemption traces, 13-18 days from 2023-08-03, 3 zones",
                  nodes=4,
                  traces=_zones(traces, "preemption/4-node/aws-08-03-2023", "v100_1")), 2.0),
    ]
    return [(sets[0][0], 24.0)] if quick else sets


def lineup(traces: dict[str, SpotTrace],
           nodes: int) -> Callable[[str], tuple[DeadlinePolicy, ...]]:
    """The standard policies plus the sensitivity row, for one trace."""

    def policies(name: str) -> tuple[DeadlinePolicy, ...]:
        loc = location_of(name)
        own = trace_stats(traces[name].for_nodes(nodes), loc)
        return (*standard_policies(name), PlacerLiveNet(),
                PlacerPlan(loc, stats=own, name=OWN))

    return policies


def _fmt_pct(x: float) -> str:
    s = f"{x:.1f}"
    return "0.0" if s == "-0.0" else s


def table(cells: Sequence[Cell], deadlines: Sequence[float]) -> str:
    """Rows: policies; per deadline, savings against on-demand only and the miss rate."""
    policies = list(dict.fromkeys(c.policy for c in cells))
    by = {(c.policy, c.deadline_h): c for c in cells}
    head = ["policy"]
    for d in deadlines:
        head += [f"D={d:g} h save %", "miss %"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for p in policies:
        row = [p]
        for d in deadlines:
            c = by[(p, d)]
            row += [_fmt_pct(c.savings_pct), _fmt_pct(c.miss_pct)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def details(cells: Sequence[Cell], deadlines: Sequence[float]) -> str:
    """Mean bills, spot shares, changeovers and the lateness of the misses, per deadline."""
    ref = {c.deadline_h: c for c in cells if c.policy == "on-demand"}
    parts = []
    for d in deadlines:
        c0 = ref[d]
        rows = ", ".join(
            f"{c.policy} ${c.mean_cost_usd:,.0f} (spot {c.spot_share_pct:.0f} %, "
            f"{c.mean_changeovers:.1f} changeovers"
            + (f", misses {c.mean_late_h:.1f} h late on average" if c.mean_late_h else "")
            + (f", {c.unfinished} unfinished" if c.unfinished else "") + ")"
            for c in cells if c.deadline_h == d and c.policy != "on-demand")
        parts.append(f"- D={d:g} h ({c0.runs} starts; on-demand only ${c0.mean_cost_usd:,.0f}): "
                     f"{rows}.")
    return "\n".join(parts)


def plot(results: Sequence[tuple[TraceSet, Sequence[Cell]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 6.4), squeeze=False, sharex=True)
    styles = {"on-demand": ("#7f7f7f", ":"), "greedy": ("#1f77b4", "-"),
              "uniform-progress": ("#2ca02c", "-"), "placer": ("#d62728", "-"),
              "placer+safety-net": ("#ff7f0e", "--"), "placer-online": ("#9467bd", "--"),
              "placer-live+safety-net": ("#17becf", "-."),
              OWN: ("#8c564b", ":")}
    for col, (ts, cells) in enumerate(results):
        top, bottom = axes[0][col], axes[1][col]
        for pol in dict.fromkeys(c.policy for c in cells):
            pts = sorted((c.deadline_h, c.savings_pct, c.miss_pct) for c in cells
                         if c.policy == pol)
            color, ls = styles.get(pol, ("#000000", "-"))
            xs = [p[0] for p in pts]
            top.plot(xs, [p[1] for p in pts], marker="o", color=color, linestyle=ls, label=pol)
            bottom.plot(xs, [p[2] for p in pts], marker="o", color=color, linestyle=ls)
        top.set_title(ts.label, fontsize=8)
        top.set_ylabel("savings vs on-demand only (%)")
        bottom.set_ylabel("deadline misses (%)")
        bottom.set_xlabel("deadline (h) for 48 h of work")
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("One job under a deadline: spot policies on Can't Be Late's traces (d = 0.2 h)",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def machine() -> str:
    load = os.getloadavg()[0]
    return (f"{platform.machine()}, {os.cpu_count()} cores (load average {load:.1f} at the end),"
            f" Python {platform.python_version()}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="one trace set, two deadlines, few starts; plot in a temp dir")
    ap.add_argument("--record", action="store_true",
                    help="append the tables and the command to benchmarks/RESULTS.md")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="where the plot goes (default benchmarks/out; a temp dir with --quick)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the start offsets' jitter")
    ap.add_argument("--deadlines", type=float, nargs="+", default=None, metavar="H",
                    help=f"deadlines in hours (default {' '.join(f'{d:g}' for d in DEADLINES)})")
    args = ap.parse_args(argv)
    if args.quick and args.record:
        ap.error("--quick runs are not recorded")
    out = args.out_dir or (Path(tempfile.mkdtemp(prefix="placer-spot-deadline-")) if args.quick
                           else ROOT / "benchmarks" / "out")
    deadlines = tuple(args.deadlines) if args.deadlines else (
        (52.0, 72.0) if args.quick else DEADLINES)
    prices = Prices.from_catalog()
    traces = load_spot_traces()
    t0 = time.perf_counter()
    results: list[tuple[TraceSet, Sequence[Cell]]] = []
    parts = []
    for ts, stride in trace_sets(traces, args.quick):
        sweep = Sweep(work_h=48.0, deadlines_h=deadlines, changeover_h=0.2, stride_h=stride,
                      seed=args.seed)
        cells = run_sweep(ts, sweep, prices=prices, traces=traces,
                          policies=lineup(traces, ts.nodes))
        results.append((ts, cells))
        body = (f"### {ts.label} ({ts.nodes} node{'s' if ts.nodes > 1 else ''}; a start every "
                f"~{stride:g} h)\n\n{table(cells, deadlines)}\n\n{details(cells, deadlines)}")
        parts.append(body)
        print(body + "\n", flush=True)
    wall = time.perf_counter() - t0
    png = out / PLOT
    plot(results, png)
    print(f"({wall:.0f} s) wrote {png}")
    if args.record:
        command = "python " + " ".join(["benchmarks/spot_deadline.py",
                                        *(sys.argv[1:] if argv is None else argv)])
        stamp = subprocess.run(["date"], capture_output=True, text=True, check=False)
        text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
        gap = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        section = (
            f"## spot_deadline (issue 13): placer's spot choice against Uniform Progress — "
            f"{stamp.stdout.strip()}\n\n"
            f"Command: `{command}` ({wall:.0f} s)\n\n"
            f"Machine: {machine()}.\n\n"
            "One job of 48 h of work, changeover d = 0.2 h, prices "
            f"${prices.on_demand:g} / ${prices.spot:g} per node-hour ({prices.source}); "
            "`placer.sim.spot_deadline` replays each policy from the same jittered start "
            f"offsets (seed {args.seed}); *save %* is 1 - mean bill / on-demand-only bill (late "
            "jobs' whole bills included), *miss %* the share of starts that finished after the "
            "deadline. Policies and interpretation: `docs/simulator.md`, \"Spot under a "
            "deadline\".\n\n" + "\n\n".join(parts) + f"\n\nPlot: `benchmarks/out/{PLOT}`.\n")
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write(gap + section)
        print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
