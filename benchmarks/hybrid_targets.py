"""Issue 4's targets for placer's strategy against Starburst's, measured side by side.

Three parts, each printed as a table, plotted, and (without ``--quick``) appended to
``benchmarks/RESULTS.md`` with the command that produced it:

1. **Speed.** Wall time of one replay of all 15,802 jobs of ITP cluster04 per strategy (one
   process, one core), on Starburst's model.
2. **Starburst's model** (``benchmarks/scenarios/starburst-itp.yaml``, and the same on a
   second trace, ``starburst-itp-cluster07.yaml``, so that nothing is fitted to one trace: one
   price per cloud GPU-hour, no spot, no egress, no start-up delay). Compute-Wait with
   out-of-order scanning and placer are each swept densely over their waiting budget. For
   every Compute-Wait point, the placer point with the fewest cloud GPU-hours among those
   whose average *and* p99 completion times are no worse is its match; the table gives the
   saving. A last column bounds what not wasting waits can give alone: Compute-Wait with
   perfect foresight of its own bursts, matched on average JCT only. Also the sanity check:
   Compute-Wait's cloud spend and average JCT against No-Wait's. The match is interpolated
   along placer's budget curve (:func:`placer.sim.metrics.cheapest_point`: its budget is
   interpolated too), not the cheapest of many sampled placer points.
3. **The realistic model** (``eu-pipelines.yaml`` and, without ``--quick``, the two-month
   ``eu-itp.yaml``, each also with ``cache_inputs``): catalog prices, spot traces,
   provisioning, egress, 35 % of the work EU-only. Compute-Wait+OO in its fair configuration
   (issue 13: spot- and egress-aware bursts, the residency mask with lineage) against placer,
   matched the same way; violations from the independent checker; deadline misses; placer's
   decision latency. Without the cache the baselines read every input from where it lives,
   and placer keeps the copies its rent-or-buy rule pays for; ``placer-noreplicas`` (placer
   without that rule) is matched too, to show how much of the gap is data placement. With
   ``cache_inputs`` every strategy gets the same cache.

One seed, one baseline: issue 13's comparison against the strongest baseline over 5 seeds and
the estimate-noise sweep is ``benchmarks/fair_hybrid.py``.

    python benchmarks/hybrid_targets.py            # everything (~8 min on one core)
    python benchmarks/hybrid_targets.py --quick    # coarse sweeps, no eu-itp, no RESULTS.md
    python benchmarks/hybrid_targets.py --spot-traces region  # the old spot traces (old numbers)

Spot replays zone-level traces matched to each job's size (``spot_traces: auto``); each
realistic table ends with the traces met and the share of spot GPU-hours on a borrowed one.
``--spot-traces region`` replays the region-level single-V100 traces of the runs before issue
13, only to reproduce those numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from placer.report import PlotsUnavailable, ProgressBars, pareto  # noqa: E402
from placer.sim.bench import BenchResult, Row, run_benchmark  # noqa: E402
from placer.sim.metrics import CurvePoint, cheapest_point, summarise  # noqa: E402
from placer.sim.registry import make_strategy  # noqa: E402
from placer.sim.scenario import Scenario, SweepSpec, build, load_scenario  # noqa: E402

SCENARIOS = ROOT / "benchmarks" / "scenarios"
OUT = ROOT / "benchmarks" / "out"
"""Where the plots go; ``--quick`` writes to a temporary folder instead, so a coarse run never
replaces the plots that RESULTS.md refers to."""
RESULTS = ROOT / "benchmarks" / "RESULTS.md"

CW_BUDGETS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0)
PLACER_BUDGETS = (
    0.05,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
    1.15,
    1.3,
    1.6,
    2.0,
    2.5,
    3.0,
)


SPOT_TRACES = "auto"
"""``--spot-traces``: what a catalog scenario's ``spot_traces: auto`` is replaced by."""


def _sweep(
    scenario: Scenario, strategies: tuple[str, ...], budgets: tuple[float, ...], cache: bool
) -> Scenario:
    update: dict[str, object] = {
        "strategies": strategies, "sweep": SweepSpec(wait=budgets), "cache_inputs": cache}
    if scenario.cloud.model == "catalog" and scenario.cloud.spot_traces == "auto":
        update["cloud"] = scenario.cloud.model_copy(update={"spot_traces": SPOT_TRACES})
    return scenario.model_copy(update=update)


def _rows(
    path: Path, strategies: tuple[str, ...], budgets: tuple[float, ...], cache: bool = False
) -> list[Row]:
    scenario = _sweep(load_scenario(path), strategies, budgets, cache)
    with ProgressBars(enabled=sys.stderr.isatty()) as bars:
        return list(run_benchmark(scenario, path.parent, progress=bars).rows)


def _match(base: list[Row], ours: list[Row], cost: str) -> list[tuple[Row, CurvePoint | None]]:
    """For each baseline point, the cheapest point of our budget curve (interpolated between
    sampled budgets) with avg and p99 JCT no worse."""
    curve = [
        CurvePoint(r.budget or 0.0, getattr(r.metrics, cost), r.metrics.jct_avg_h,
                   r.metrics.jct_p99_h)
        for r in ours
    ]
    return [(b, cheapest_point(curve, b.metrics.jct_avg_h, b.metrics.jct_p99_h)) for b in base]


def _nearest(rows: list[Row], budget: float) -> Row:
    """The sampled row nearest ``budget`` (for figures that are not interpolated)."""
    return min(rows, key=lambda r: (abs((r.budget or 0.0) - budget), r.budget or 0.0))


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def speed(quick: bool) -> str:
    path = SCENARIOS / "starburst-itp.yaml"
    prep = build(load_scenario(path), path.parent)
    names = (
        "onprem-only",
        "no-wait",
        "constant-wait",
        "constant-wait-nosj",
        "compute-wait",
        "compute-wait+oo",
        "star-wait",
        "skypilot",
        "placer",
    )
    rows = []
    for name in names[-2:] if quick else names:
        times = []
        for _ in range(1 if quick else 3):
            t = time.perf_counter()
            res = prep.simulate(make_strategy(name, 0.5))
            times.append(time.perf_counter() - t)
            m = summarise(res)
        times.sort()
        rows.append(
            [
                name,
                f"{len(prep.workload.jobs):,}",
                f"{times[len(times) // 2]:.2f}",
                f"{m.decision_p99_ms:.3f}",
            ]
        )
    return _table(["strategy (b=0.5)", "jobs", "replay s (median of 3)", "decision p99 ms"], rows)


def _plot(path: Path, rows: list[Row], out: Path) -> None:
    """The cost-completion-time plot of ``placer bench``, over the rows of several sweeps."""
    result = BenchResult(load_scenario(path), tuple(rows), path.stem, "")
    try:
        pareto(result, out)
    except PlotsUnavailable as exc:  # pragma: no cover - matplotlib is in the dev extra
        print(f"no plot: {exc}", file=sys.stderr)


def _clairvoyant(path: Path, budgets: tuple[float, ...]) -> list[tuple[float, float, float]]:
    """Compute-Wait+OO with perfect foresight of its own bursts: the same schedule, but a job
    that would wait and then burst goes at once. Its cloud GPU-hours are Compute-Wait's; its
    completion times lose the wasted waits. As ``(budget, cloud GPU-h, average JCT)``: the most
    that placer's main idea (do not wait for a burst that will come anyway) can give alone.
    With out-of-order scanning a job that waited and burst never fit while queued, so taking
    it out of the queue changes no one else's start."""
    prep = build(load_scenario(path), path.parent)
    out = []
    for b in budgets:
        res = prep.simulate(make_strategy("compute-wait+oo", b))
        wasted = sum(
            r.attempts[-1].launch_h - r.ready_h for r in res.records if r.site != prep.onprem.site
        )
        m = summarise(res)
        out.append((b, m.cloud_gpu_h, m.jct_avg_h - wasted / m.jobs))
    return out


def starburst(name: str, quick: bool) -> str:
    path = SCENARIOS / name
    cw_b = CW_BUDGETS[::3] if quick else CW_BUDGETS
    pl_b = PLACER_BUDGETS[::3] if quick else PLACER_BUDGETS
    cw = _rows(path, ("compute-wait+oo",), cw_b)
    ours = _rows(path, ("placer",), pl_b)
    nowait_row = _rows(path, ("no-wait",), (0.0,))[0]
    nowait = nowait_row.metrics
    oracle = _clairvoyant(path, (*cw_b, 2.5, 3.0))
    # one price of $1 per GPU-hour: the plot's cloud $ are cloud GPU-hours
    _plot(path, [nowait_row, *cw, *ours], OUT / f"{path.stem.replace('-', '_')}_pareto.png")
    rows = []
    for b, p in _match(cw, ours, "cloud_gpu_h"):
        bm = b.metrics
        cells = [
            f"{b.budget:g}",
            f"{bm.cloud_gpu_h:,.0f}",
            f"{100 * bm.cloud_gpu_h / nowait.cloud_gpu_h:.1f}",
            f"{bm.jct_avg_h:.3f} (+{100 * (bm.jct_avg_h / nowait.jct_avg_h - 1):.1f} %)",
            f"{bm.jct_p99_h:.2f}",
        ]
        if p is None:
            cells += ["-", "-", "-", "-", "none no worse"]
        else:
            cells += [
                f"{p.budget:.3g}",
                f"{p.cost:,.0f}",
                f"{p.jct_avg_h:.3f}",
                f"{p.jct_p99_h:.2f}",
                f"{100 * (1 - p.cost / bm.cloud_gpu_h):.1f} %",
            ]
        fit = [g for _, g, avg in oracle if avg <= bm.jct_avg_h + 1e-9]
        cells.append(f"{100 * (1 - min(fit) / bm.cloud_gpu_h):.1f} %" if fit else "-")
        rows.append(cells)
    head = (
        f"{nowait.jobs:,} jobs. No-Wait: {nowait.cloud_gpu_h:,.0f} cloud GPU-h, average JCT "
        f"{nowait.jct_avg_h:.3f} h, p99 {nowait.jct_p99_h:.2f} h.\n\n"
    )
    return head + _table(
        [
            "CW+OO b",
            "CW cloud GPU-h",
            "% of No-Wait",
            "CW avg JCT h (vs No-Wait)",
            "CW p99 h",
            "placer b (interpolated)",
            "placer cloud GPU-h",
            "placer avg JCT h",
            "placer p99 h",
            "fewer cloud GPU-h",
            "clairvoyant CW, avg JCT only",
        ],
        rows,
    )


def realistic(name: str, quick: bool, cache: bool = False) -> str:
    path = SCENARIOS / name
    cw_b = (0.05, 0.25, 1.0) if quick else (0.02, 0.05, 0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1.0)
    pl_b = (0.25, 1.0) if quick else (0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)
    cw = _rows(path, ("compute-wait+oo+mask",), cw_b, cache)
    ours = _rows(path, ("placer",), pl_b, cache)
    # without a cache, how much of the gap is placer's data placement: the same strategy
    # reading every input from where it lives
    plain = [] if cache else _rows(path, ("placer-noreplicas",), pl_b, cache)
    others = _rows(path, ("no-wait+mask", "skypilot+mask"), (0.0,), cache)
    _plot(
        path,
        [*others, *cw, *ours, *plain],
        OUT / f"realistic_pareto_{path.stem}{'_cached' if cache else ''}.png",
    )
    rows = []
    plain_match = {b.budget: p for b, p in _match(cw, plain, "cloud_usd")} if plain else {}
    for b, p in _match(cw, ours, "cloud_usd"):
        bm = b.metrics
        cells = [
            f"{b.budget:g}",
            f"{bm.cloud_usd:,.0f}",
            f"{bm.jct_avg_h:.2f}",
            f"{bm.jct_p99_h:.1f}",
            str(bm.violations),
        ]
        if p is None:
            cells += ["-"] * 8
        else:
            pm = _nearest(ours, p.budget).metrics
            cells += [
                f"{p.budget:.3g}",
                f"{p.cost:,.0f}",
                f"{pm.egress_usd + pm.storage_usd:,.0f}",
                f"{p.jct_avg_h:.2f}",
                f"{p.jct_p99_h:.1f}",
                str(max(r.metrics.violations for r in ours)),
                f"{pm.deadline_misses}/{pm.deadline_jobs}",
                f"{bm.cloud_usd / p.cost:.2f}x",
            ]
        if plain:
            q = plain_match.get(b.budget)
            cells.append("-" if q is None else f"{bm.cloud_usd / q.cost:.2f}x")
        rows.append(cells)
    ref = "\n".join(
        f"- {r.strategy}: ${r.metrics.cloud_usd:,.0f}, avg JCT {r.metrics.jct_avg_h:.2f} h, "
        f"DAG makespan {r.metrics.dag_makespan_avg_h:.2f} h, {r.metrics.violations} violations"
        for r in others
    )
    lat = max(r.metrics.decision_p99_ms for r in ours)
    dag = "; ".join(f"b={r.budget:g}: {r.metrics.dag_makespan_avg_h:.2f} h" for r in ours)
    reps = sorted({r.metrics.replicas for r in ours})
    jobs = ours[0].metrics.jobs
    spot = _spot_note([*others, *cw, *ours, *plain])
    header = [
        "CW+OO+mask (fair) b",
        "CW $",
        "CW avg JCT h",
        "CW p99 h",
        "CW violations",
        "placer b (interpolated)",
        "placer $",
        "of which data $ (nearest sampled b)",
        "placer avg JCT h",
        "placer p99 h",
        "placer violations (any b)",
        "placer deadline misses (nearest sampled b)",
        "CW $ / placer $",
    ]
    if plain:
        header.append("CW $ / placer-noreplicas $")
    return (
        f"{jobs:,} jobs.\n\n"
        + _table(header, rows)
        + f"\n\nOther baselines:\n{ref}\n\nplacer's mean DAG makespan: {dag}. "
        f"placer's decision latency, worst p99 over its runs: {lat:.1f} ms. Copies kept per "
        f"placer run: {', '.join(map(str, reps))}.\n\n{spot}"
    )


def _spot_note(rows: list[Row]) -> str:
    """Which spot traces the runs met (zone-level, matched to each job's size), and the share
    of their spot GPU-hours on a borrowed one (another provider's, region's, zone's, or of
    another GPU count): ``placer.sim.metrics.SpotTraceUse``."""
    picks = {(p.site, p.nodes, p.gpus_per_node): p
             for r in rows if r.spot_traces for p in r.spot_traces.picks}
    gpu_h = sum(r.spot_traces.gpu_h for r in rows if r.spot_traces)
    lent = sum(r.spot_traces.borrowed_gpu_h for r in rows if r.spot_traces)
    if not picks or gpu_h <= 0:
        return "No run rented spot."
    sites = {p.site for p in picks.values()}
    borrowed = {p.site for p in picks.values() if p.is_borrowed}
    n = sum(p.is_borrowed for p in picks.values())
    return (f"Spot trace borrowed for {len(borrowed)} of {len(sites)} sites ({n} of {len(picks)} "
            f"(site, job size) traces), {100 * lent / gpu_h:.1f} % of {gpu_h:,.0f} spot "
            "GPU-hours over these runs: "
            + "; ".join(p.describe() for _, p in sorted(picks.items())) + ".")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="coarse, fast; no RESULTS.md")
    ap.add_argument("--spot-traces", choices=("auto", "region"), default="auto",
                    help="auto: zone-level traces matched to each job's size (default); "
                    "region: the old region-level 1-V100 traces, to reproduce old numbers")
    args = ap.parse_args()
    global OUT, SPOT_TRACES
    SPOT_TRACES = args.spot_traces
    if args.quick:
        OUT = Path(tempfile.mkdtemp(prefix="placer-targets-"))
        print(f"plots: {OUT}", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    parts = [
        ("Speed: one replay of ITP cluster04 (Starburst's model, 64 x 8 GPUs)", speed(args.quick)),
        (
            "Starburst's model, ITP cluster04 on 64 x 8 GPUs: placer vs Compute-Wait+OO at no "
            "worse average and p99 JCT",
            starburst("starburst-itp.yaml", args.quick),
        ),
        (
            "Starburst's model, ITP cluster07 on 33 x 8 GPUs (a second trace, against overfitting)",
            starburst("starburst-itp-cluster07.yaml", args.quick),
        ),
        (
            "Realistic model, eu-pipelines.yaml (one week + 120 pipelines, 16 x 8 GPUs)",
            realistic("eu-pipelines.yaml", args.quick),
        ),
    ]
    if not args.quick:
        parts += [
            (
                "Realistic model, eu-pipelines.yaml with `cache_inputs: true` (a dataset is copied "
                "once per location, not read again by every job)",
                realistic("eu-pipelines.yaml", args.quick, cache=True),
            ),
            (
                "Realistic model, eu-itp.yaml (two months + 1,000 pipelines, 64 x 8 GPUs)",
                realistic("eu-itp.yaml", args.quick),
            ),
            (
                "Realistic model, eu-itp.yaml with `cache_inputs: true`",
                realistic("eu-itp.yaml", args.quick, cache=True),
            ),
        ]
    wall = time.perf_counter() - t0
    text = "\n\n".join(f"#### {title}\n\n{body}" for title, body in parts)
    print(text)
    print(f"\n({wall:.0f} s)")
    if not args.quick:
        cmd = "python benchmarks/hybrid_targets.py" + (
            " --spot-traces region" if args.spot_traces == "region" else "")
        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        with RESULTS.open("a") as fh:
            fh.write(
                f"\n\n## Hybrid strategies against Starburst ({stamp})\n\n"
                f"Command: `{cmd}` ({wall:.0f} s; {platform.python_version()}, "
                f"{platform.machine()}).\n\n{text}\n\nPlots: "
                "`benchmarks/out/starburst_itp_pareto.png`, "
                "`benchmarks/out/starburst_itp_cluster07_pareto.png`, "
                "`benchmarks/out/realistic_pareto_eu-pipelines.png`, "
                "`benchmarks/out/realistic_pareto_eu-itp.png` (and `_cached` variants).\n"
            )


if __name__ == "__main__":
    main()
