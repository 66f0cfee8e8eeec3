"""Issue 13's fair comparison: placer against the strongest baseline that gets the same.

Every strategy gets the same information and the same actions (``docs/simulator.md``, "Fair
comparison"):

* the same run-time estimates, with the same noise: the standard sweep of
  :data:`placer.sim.scenario.NOISE_SWEEP` (none, ±20 % and ±50 % uniform, lognormal with
  sigma ln 2), drawn once per workload from the seed;
* the same actions: every baseline bursts to the offer of least expected cost, spot and the
  inputs' egress included, as SkyPilot's optimizer places it, and reads through the input cache
  when the scenario has it (``--cache``);
* the same residency: every baseline's mask is placer's policy evaluation with lineage
  (``+mask``);
* the same budgets: every waiting strategy is swept over one grid of waiting budgets.

Each configuration runs with ``--seeds`` seeds (workload draws, residency, deadlines, noise,
spot), and the numbers are means with their spread (sample standard deviation, and the range).
Matching is by interpolation along each strategy's budget curve
(:func:`placer.sim.metrics.against_strongest`): for every placer budget, the cheapest any fair
baseline can be at no worse average *and* p99 completion time, and the saving against that
strongest baseline, per seed, then over the seeds. The papers' literal variants (cheapest
on-demand offer blind to data, direct-read mask) are extra rows, matched the same way but never
the headline.

    python benchmarks/fair_hybrid.py                 # eu-pipelines, 5 seeds, every noise
    python benchmarks/fair_hybrid.py --cache         # the same with cache_inputs
    python benchmarks/fair_hybrid.py --scenario eu-itp.yaml --seeds 5
    python benchmarks/fair_hybrid.py --quick         # 3 budgets; prints, writes nothing
    python benchmarks/fair_hybrid.py --spot-traces region  # the old traces, for old numbers

Spot: every site is one zone and each job replays the zone-level trace of its size
(``spot_traces: auto``, :class:`placer.sim.cloud.ZoneSpot`); the tables say which traces are
borrowed (another provider's, region's or zone's, or of another GPU count) and what share of the
spot GPU-hours ran on them. ``--spot-traces region`` replays the region-level single-V100 traces
of the runs before issue 13, only to reproduce those numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from placer.report import ProgressBars  # noqa: E402
from placer.sim.bench import Row, run_benchmark  # noqa: E402
from placer.sim.cloud import SpotPick  # noqa: E402
from placer.sim.metrics import CurvePoint, Match, against_strongest  # noqa: E402
from placer.sim.scenario import (  # noqa: E402
    NOISE_SWEEP,
    Scenario,
    SweepSpec,
    load_scenario,
    with_noise,
)

SCENARIOS = ROOT / "benchmarks" / "scenarios"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"

FAIR = (
    "onprem-only",
    "no-wait+mask",
    "constant-wait+mask",
    "compute-wait+oo+mask",
    "star-wait+mask",
    "skypilot+mask",
)
"""The baseline configurations the headline is against: each paper's timing with fair actions
and the lineage mask (SkyPilot's is its published estimate)."""
LITERAL = ("compute-wait+oo-literal+mask-literal", "compute-wait+oo-literal+mask")
"""The papers' literal variants, as extra rows: Compute-Wait+OO bursting to the cheapest
on-demand offer blind to data, with the direct-read mask (as issue 4 measured it; it breaks
residency) and with the lineage mask."""
OURS = "placer"
BUDGETS = (0.02, 0.05, 0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
QUICK_BUDGETS = (0.1, 0.5, 2.0)


def _configure(base: Scenario, seed: int, noise: str, cache: bool,
               budgets: Sequence[float], spot_traces: str = "auto") -> Scenario:
    update: dict[str, object] = {
        "seed": seed,
        "strategies": (*FAIR, *LITERAL, OURS),
        "sweep": SweepSpec(wait=tuple(budgets)),
        "cache_inputs": cache,
    }
    if base.cloud.model == "catalog" and isinstance(base.cloud.spot_traces, str):
        update["cloud"] = base.cloud.model_copy(update={"spot_traces": spot_traces})
    return with_noise(base.model_copy(update=update), noise)


def _curves(rows: Sequence[Row]) -> dict[str, list[CurvePoint]]:
    out: dict[str, list[CurvePoint]] = {}
    for r in rows:
        m = r.metrics
        out.setdefault(r.strategy, []).append(
            CurvePoint(r.budget or 0.0, m.cloud_usd, m.jct_avg_h, m.jct_p99_h))
    return out


def _spread(values: Sequence[float], fmt: str = ".2f") -> str:
    """``mean ± sd [min, max]`` over the seeds (the mean alone for one value)."""
    if not values:
        return "-"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:{fmt}}"
    sd = statistics.stdev(values)
    return f"{mean:{fmt}} ± {sd:{fmt}} [{min(values):{fmt}}, {max(values):{fmt}}]"


def _usd(values: Sequence[float]) -> str:
    return _spread(values, ",.0f")


def _pct(values: Sequence[float]) -> str:
    return _spread([100 * v for v in values], ".1f") + (" %" if values else "")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


Runs = Mapping[tuple[str, int], Sequence[Row]]
"""Rows per (noise, seed)."""


def headline(runs: Runs, noises: Sequence[str], seeds: Sequence[int]) -> str:
    """Per noise and placer budget: placer's cost and JCTs, the strongest fair baseline's cost
    at the same JCTs and the saving, over the seeds; the literal variants' savings beside."""
    out = []
    for noise in noises:
        per_budget: dict[float, list[tuple[Match, dict[str, Match]]]] = {}
        for seed in seeds:
            curves = _curves(runs[noise, seed])
            fair = {n: curves[n] for n in FAIR}
            for m in against_strongest(curves[OURS], fair):
                lit = {n: against_strongest([m.point], {n: curves[n]})[0] for n in LITERAL}
                per_budget.setdefault(m.point.budget, []).append((m, lit))
        rows = []
        for b, got in sorted(per_budget.items()):
            ours = [m.point for m, _ in got]
            matched = [m for m, _ in got if m.saving is not None]
            names = sorted({m.baseline for m in matched if m.baseline})
            cells = [
                noise,
                f"{b:g}",
                _usd([p.cost for p in ours]),
                _spread([p.jct_avg_h for p in ours]),
                _spread([p.jct_p99_h for p in ours], ".1f"),
                ", ".join(names) or "none reaches it",
                _usd([m.baseline_cost or 0.0 for m in matched]),
                _pct([m.saving or 0.0 for m in matched]),
                f"{len(matched)}/{len(got)}",
            ]
            for n in LITERAL:
                saved = [v for v in (x[n].saving for _, x in got) if v is not None]
                cells.append(f"{_pct(saved)} ({len(saved)}/{len(got)} seeds)")
            rows.append(cells)
        out.append(_table(
            ["noise", "placer b", "placer $", "placer avg JCT h", "placer p99 h",
             "strongest fair baseline(s)", "its $ at placer's JCTs", "placer saves",
             "seeds matched", *(f"saves vs {n} (literal, extra)" for n in LITERAL)],
            rows))
    return "\n\n".join(out)


def per_strategy(runs: Runs, noise: str, seeds: Sequence[int]) -> str:
    """Every configuration's runs at one noise level, over the seeds."""
    by: dict[tuple[str, float | None], list[Row]] = {}
    for seed in seeds:
        for r in runs[noise, seed]:
            by.setdefault((r.strategy, r.budget), []).append(r)
    rows = []
    for (name, b), rs in by.items():
        ms = [r.metrics for r in rs]
        rows.append([
            name + (" (literal, extra)" if name in LITERAL else ""),
            "-" if b is None else f"{b:g}",
            _usd([m.cloud_usd for m in ms]),
            _usd([m.egress_usd + m.storage_usd for m in ms]),
            _usd([m.spot_usd for m in ms]),
            _borrowed(rs),
            _spread([m.jct_avg_h for m in ms]),
            _spread([m.jct_p99_h for m in ms], ".1f"),
            str(max(m.violations for m in ms)),
            str(sum(m.deadline_misses for m in ms)),
        ])
    return _table(["strategy", "b", "cloud $", "of which data $", "of which spot $",
                   "spot GPU-h on a borrowed trace", "avg JCT h", "p99 JCT h",
                   "violations (worst seed)", "deadline misses (all seeds)"], rows)


def _borrowed(rows: Sequence[Row]) -> str:
    """The share of the rows' spot GPU-hours replayed on a borrowed trace, over the seeds."""
    shares = [u.borrowed_share for r in rows if (u := r.spot_traces) is not None and u.gpu_h > 0]
    return _pct(shares) if shares else "no spot"


def spot_note(runs: Runs) -> str:
    """Which spot traces the runs met, each flagged when borrowed, and the share of all their
    spot GPU-hours on borrowed ones (every configuration, noise level and seed)."""
    picks: dict[tuple[str, int, int], SpotPick] = {}
    gpu_h = borrowed = 0.0
    for rows in runs.values():
        for r in rows:
            u = r.spot_traces
            if u is None:
                continue
            gpu_h += u.gpu_h
            borrowed += u.borrowed_gpu_h
            for p in u.picks:
                picks[(p.site, p.nodes, p.gpus_per_node)] = p
    if not picks:
        return "No run rented spot."
    sites = {p.site for p in picks.values()}
    lent = {p.site for p in picks.values() if p.is_borrowed}
    n = sum(p.is_borrowed for p in picks.values())
    share = f"{100 * borrowed / gpu_h:.1f} %" if gpu_h > 0 else "-"
    lines = [f"Spot trace borrowed for {len(lent)} of {len(sites)} sites ({n} of {len(picks)} "
             f"(site, job size) traces), {share} of {gpu_h:,.0f} spot GPU-hours (all runs):"]
    lines += [f"- {p.describe()}" for _, p in sorted(picks.items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="eu-pipelines.yaml",
                    help="a scenario of benchmarks/scenarios, or an absolute path "
                    "(default eu-pipelines.yaml)")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    ap.add_argument("--cache", action="store_true", help="every strategy gets cache_inputs")
    ap.add_argument("--spot-traces", choices=("auto", "region"), default="auto",
                    help="auto: zone-level traces matched to each job's size (default); "
                    "region: the old region-level 1-V100 traces, to reproduce old numbers")
    ap.add_argument("--quick", action="store_true",
                    help=f"budgets {QUICK_BUDGETS} only; prints, no RESULTS.md")
    args = ap.parse_args(argv)
    if args.seeds < 5 and not args.quick:
        ap.error("the comparison needs at least 5 seeds")
    path = Path(args.scenario)
    if not path.is_absolute():
        path = SCENARIOS / path
    base = load_scenario(path)
    budgets = QUICK_BUDGETS if args.quick else BUDGETS
    seeds = tuple(range(args.seeds))
    noises = tuple(NOISE_SWEEP)
    t0 = time.perf_counter()
    runs: dict[tuple[str, int], Sequence[Row]] = {}
    with ProgressBars(enabled=sys.stderr.isatty()) as bars:
        for noise in noises:
            for seed in seeds:
                s = _configure(base, seed, noise, args.cache, budgets, args.spot_traces)
                runs[noise, seed] = run_benchmark(s, path.parent, progress=bars).rows
    wall = time.perf_counter() - t0
    jobs = runs[noises[0], seeds[0]][0].metrics.jobs
    spot = ("zone-level spot traces matched to job size" if args.spot_traces == "auto"
            else "the old region-level 1-V100 spot traces (legacy, for old numbers)")
    title = (f"{path.stem}{' with cache_inputs' if args.cache else ''}: {jobs:,} jobs, "
             f"seeds {seeds[0]}-{seeds[-1]}, budgets {', '.join(f'{b:g}' for b in budgets)}, "
             f"{spot}")
    text = (
        f"#### Fair comparison, {title}\n\n"
        "Placer against the strongest fair baseline at no worse average and p99 JCT "
        "(interpolated along each budget curve), mean ± sd [min, max] over the seeds:\n\n"
        + headline(runs, noises, seeds)
        + "\n\nEvery configuration, exact estimates:\n\n"
        + per_strategy(runs, "none", seeds)
        + "\n\n" + spot_note(runs)
    )
    print(text)
    print(f"\n({wall:.0f} s)")
    if not args.quick:
        cmd = "python benchmarks/fair_hybrid.py " + " ".join(sys.argv[1:])
        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        with RESULTS.open("a") as fh:
            fh.write(f"\n\n## Fair comparison ({stamp})\n\nCommand: `{cmd.strip()}` "
                     f"({wall:.0f} s; {platform.python_version()}, {platform.machine()}).\n\n"
                     f"{text}\n")


if __name__ == "__main__":
    main()
