"""Derive ``placer/catalog/data/spot_stats.csv`` from the spot traces the simulator replays.

``python -m placer.sim.spot_stats`` rewrites the table; ``--check`` only compares (exit 1 when
the shipped table differs from a fresh derivation). The planner prices spot from this table
(:func:`placer.pricing.spot_run`); the core never imports the simulator, so the numbers travel
as package data.

Source: the single-V100 availability traces of "Can't Be Late" (Wu et al., NSDI'24;
github.com/skypilot-org/spot-traces at 221da1ab, ``placer/sim/data/SOURCES.md``), set
``availability/1-node/aws-02-15-2023`` (45 days, 195 s ticks): the set the simulator's
``spot_traces: region`` replays. Per AWS region, its *region* trace (up when any zone is up: a
provisioner that fails over between zones sees that; :func:`placer.sim.cloud.load_spot_traces`),
so the rows are ``aws:us-east-1``, ``aws:us-east-2`` and ``aws:us-west-2``. Every other region
borrows the ``*`` row: the three region traces pooled (their up and down runs, waits and
replays taken together). The simulator's ``spot_traces: region`` instead lends each such site
one region's pattern, round-robin; a planner has no round to rob, so the pooled average is the
documented default.

Since issue 13 the simulator's default (``spot_traces: auto``) replays zone-level traces
matched to each job's size (:class:`placer.sim.cloud.ZoneSpot`), which are scarcer than these
single-V100 region traces: the planner's table is still derived from the region traces (a
plan's spot margin is therefore optimistic for multi-GPU jobs), and is regenerated unchanged
by this module.

What is measured, on each trace read cyclically (as the simulator replays it):

* ``availability``: share of ticks up; ``mtbf_h`` / ``mttr_h``: mean length of an up / down run
  (hours up between preemptions, hours to regain capacity); ``wait_h``: mean time from a request
  at each tick's start to the next up tick;
* ``p90_extra_h``: a job of ``W`` hours of work is replayed from a request at every
  :data:`STRIDE`-th tick with the simulator's rules (``placer.sim.engine``: wait for capacity,
  ``provisioning_h`` billed before the work, a preemption keeps the progress and owes
  ``restart_h`` of redone work on the next start, or what was left of it when preempted before
  paying it off), and the 90th percentile of its wall time beyond ``provisioning_h + W`` is
  kept, made non-decreasing in ``W`` (a longer job never gets a smaller margin), at
  :data:`RUN_POINTS`. ``provisioning_h`` is the catalog's spot default; ``restart_h`` is
  :data:`placer.pricing.DEFAULT_RESTART_H`.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np

from placer.catalog import (
    DEFAULT_SPOT_KEY,
    SpotStats,
    default_catalog,
    format_spot_stats,
    read_spot_stats_text,
)
from placer.pricing import DEFAULT_RESTART_H, SPOT_QUANTILE
from placer.sim.cloud import SpotTrace, load_spot_traces

TRACE_SET: Final = "availability/1-node/aws-02-15-2023"
REGIONS: Final = ("us-east-1", "us-east-2", "us-west-2")
KIND: Final = "v100_1"
RUN_POINTS: Final = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
STRIDE: Final = 7
"""Replay a request at every 7th tick (every 22.75 min on 195 s ticks; 2,880 starts)."""
QUANTILE: Final = SPOT_QUANTILE

HEADER: Final = (
    "Spot statistics per cloud region, derived by `python -m placer.sim.spot_stats` (do not "
    "edit by hand).",
    "Source: Z. Wu et al., \"Can't Be Late: Optimizing Spot Instance Savings under Deadlines\", "
    "NSDI 2024;",
    "traces github.com/skypilot-org/spot-traces commit 221da1ab (placer/sim/data/SOURCES.md), "
    f"set {TRACE_SET}, single V100 (p3.2xlarge).",
    "Per AWS region its region trace (up when any zone is up); location * is the pooled "
    "default that every other region borrows.",
    "availability: share of time up; mtbf_h / mttr_h: mean up / down run, hours; wait_h: mean "
    "wait for capacity from a random request;",
    "p90_extra_h run:extra: 90th percentile of wall time beyond provisioning + run, replayed "
    "with the simulator's rules at provisioning_h and restart_h.",
)


def _runs(up: np.ndarray, gap_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Lengths (hours) of the up runs and the down runs of a cyclic 0/1 trace."""
    n = up.size
    changes = np.flatnonzero(up != np.roll(up, 1))
    if changes.size == 0:
        whole = np.array([n * gap_h])
        return (whole, np.array([])) if bool(up[0]) else (np.array([]), whole)
    lens = np.diff(np.append(changes, changes[0] + n)) * gap_h
    vals = up[changes]
    return lens[vals], lens[~vals]


def _waits(tr: SpotTrace) -> np.ndarray:
    """Hours from each tick's start to the next up tick (cyclic)."""
    g = tr.gap_s / 3600.0
    return np.array([tr.next_up(i * g) - i * g for i in range(len(tr))])


def replay_extra(tr: SpotTrace, run_h: float, t0: float, provisioning_h: float,
                 restart_h: float) -> float:
    """Wall time beyond ``provisioning_h + run_h`` of a job requested at ``t0`` on ``tr``,
    under the simulator's rules (see the module docstring); ``inf`` if it never finishes."""
    now, done, owed = t0, 0.0, 0.0
    for _ in range(1_000_000):
        s = tr.next_up(now)
        if math.isinf(s):
            return math.inf
        down = tr.next_down(s)
        end = s + provisioning_h + (run_h - done) + owed
        if end <= down:
            return end - t0 - provisioning_h - run_h
        start = s + provisioning_h
        if down > start:
            worked = down - start
            if worked > owed:
                done += worked - owed
                owed = restart_h
            else:
                owed -= worked
        now = down
    return math.inf  # pragma: no cover - a trace this hostile is not shipped


def _p90_profile(traces: Sequence[SpotTrace], provisioning_h: float,
                 restart_h: float) -> tuple[tuple[float, float], ...]:
    waits = np.concatenate([_waits(t)[::STRIDE] for t in traces])
    pts = [(0.0, float(np.quantile(waits, QUANTILE)))]
    for w in RUN_POINTS:
        extra = [replay_extra(t, w, i * t.gap_s / 3600.0, provisioning_h, restart_h)
                 for t in traces for i in range(0, len(t), STRIDE)]
        pts.append((w, max(pts[-1][1], float(np.quantile(extra, QUANTILE)))))
    return tuple((x, round(y, 4)) for x, y in pts)


def stats_from_traces(location: str, traces: Sequence[SpotTrace], trace: str,
                      provisioning_h: float, restart_h: float) -> SpotStats:
    """One row of the table, measured on ``traces`` taken together (see the module
    docstring); ``location`` ``*`` is the borrowed default."""
    ups, downs, waits, ticks, up_ticks = [], [], [], 0, 0
    for t in traces:
        u, d = _runs(np.asarray(t.up), t.gap_s / 3600.0)
        ups.append(u)
        downs.append(d)
        waits.append(_waits(t))
        ticks += len(t)
        up_ticks += int(np.count_nonzero(t.up))
    u, d = np.concatenate(ups), np.concatenate(downs)
    return SpotStats(
        location=location, gpu="V100", borrowed=location == DEFAULT_SPOT_KEY,
        availability=round(up_ticks / ticks, 4),
        # never down: no preemption, ever (an up-only trace is one up run, cyclically)
        mtbf_h=round(float(u.mean()), 4) if d.size else math.inf,
        mttr_h=round(float(d.mean()), 4) if d.size else 0.0,
        wait_h=round(float(np.concatenate(waits).mean()), 4),
        p90_extra_h=_p90_profile(traces, provisioning_h, restart_h),
        provisioning_h=round(provisioning_h, 4), restart_h=restart_h, trace=trace,
    )


def derive() -> tuple[SpotStats, ...]:
    """The table's rows, from the shipped traces: one per region, then the pooled default."""
    traces = load_spot_traces()
    prov = default_catalog().provisioning_h("aws", spot=True)
    own = {r: traces[f"{TRACE_SET}/{r}_{KIND}"] for r in REGIONS}
    rows = [stats_from_traces(f"aws:{r}", [t], f"{TRACE_SET}/{r}_{KIND} (any zone)", prov,
                              DEFAULT_RESTART_H)
            for r, t in own.items()]
    rows.append(stats_from_traces(DEFAULT_SPOT_KEY, list(own.values()),
                                  f"pooled {TRACE_SET}/{{{','.join(REGIONS)}}}_{KIND}", prov,
                                  DEFAULT_RESTART_H))
    return tuple(rows)


def derive_text() -> str:
    """:func:`derive` as the text of ``spot_stats.csv``."""
    return format_spot_stats(derive(), HEADER)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m placer.sim.spot_stats", description=__doc__
                                 .split("\n", 1)[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 if different")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "catalog"
                    / "data" / "spot_stats.csv")
    args = ap.parse_args(argv)
    text = derive_text()
    if args.check:
        same = text == read_spot_stats_text()
        print("spot_stats.csv is up to date" if same else "spot_stats.csv differs")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
