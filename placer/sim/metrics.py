"""Numbers from a run: cloud spend, completion times, waits, utilisation, violations, latency.

Definitions (also in ``docs/simulator.md``):

* cloud $ = compute (every cloud run, from the node request to its stop, whole nodes, spot or
  on-demand) + egress (every transfer's source pays, including a cloud bucket read on-prem and
  every replica made) + storage of replicas (from ready to the end of the run, on-prem too);
* cloud GPU-hours = GPUs billed x hours billed, provisioning included (Starburst's cost unit);
* JCT = end - submission; wait = JCT - run time (queueing, provisioning, transfers, lost work);
* on-prem utilisation = busy GPU-hours / (pool GPUs x the submission window), over the window
  from the first to the last submission (what Starburst reports as cluster utilisation);
* a deadline miss = a job with a deadline that ended after it;
* decision latency = wall time the strategy spent on one job, all its decisions together
  (``on_ready``, ``on_timeout``, ``on_cloud_stopped``), as percentiles over jobs;
* spot trace use (:func:`spot_trace_use`, beside the metrics) = the spot GPU-hours, and the
  share of them replayed on a borrowed trace (another provider's, region's or zone's, or one
  recorded for another GPU count).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise

import numpy as np

from placer.sim.check import residency_violations
from placer.sim.cloud import CloudModel, SpotPick
from placer.sim.engine import SimResult


@dataclass(frozen=True)
class Metrics:
    strategy: str
    jobs: int
    cloud_usd: float
    compute_usd: float
    spot_usd: float
    egress_usd: float
    storage_usd: float
    """Keeping replicas (a strategy's, or ``cache_inputs``'s)."""
    replicas: int
    cloud_gpu_h: float
    cloud_jobs: int
    """Jobs that finished in the cloud."""
    jct_avg_h: float
    jct_p50_h: float
    jct_p90_h: float
    jct_p99_h: float
    wait_avg_h: float
    wait_p50_h: float
    wait_p90_h: float
    wait_p99_h: float
    makespan_h: float
    dag_makespan_avg_h: float
    """Mean over pipelines of (last end - submission); NaN without pipelines."""
    onprem_util: float
    deadline_jobs: int
    deadline_misses: int
    violations: int
    preemptions: int
    decision_p50_ms: float
    decision_p99_ms: float
    wall_s: float

    def row(self) -> dict[str, object]:
        return asdict(self)


def _q(a: np.ndarray, q: float) -> float:
    return float(np.quantile(a, q)) if a.size else float("nan")


def busy_gpu_hours(result: SimResult, start: float, end: float) -> float:
    """Integral of busy on-prem GPUs over ``[start, end)``."""
    steps = result.onprem_busy
    total = 0.0
    for (t, busy), (t_next, _) in zip(steps, [*steps[1:], (end, 0)], strict=True):
        lo, hi = max(t, start), min(t_next, end)
        if hi > lo:
            total += busy * (hi - lo)
    return total


def summarise(
    result: SimResult,
    *,
    truth: Mapping[str, frozenset[str]] | None = None,
    jurisdictions: Mapping[str, frozenset[str]] | None = None,
) -> Metrics:
    """Metrics of one run; violations are counted only when the ground truth is given."""
    recs = result.records
    compute = spot = egress = gpu_h = 0.0
    preemptions = cloud_jobs = 0
    onprem = result.onprem.site
    for rec in recs:
        for att in rec.attempts:
            egress += att.egress_usd
            if att.site != onprem:
                compute += att.compute_usd
                gpu_h += att.gpus_billed * (att.stop_h - att.launch_h)
                if att.spot:
                    spot += att.compute_usd
                if att.outcome == "preempted":
                    preemptions += 1
        if rec.site != onprem:
            cloud_jobs += 1
    egress += sum(r.egress_usd for r in result.replicas)
    storage = result.storage_usd()
    jct = np.array([r.jct_h for r in recs])
    wait = np.array([r.wait_h for r in recs])
    arrivals = [r.job.arrival_h for r in recs]
    window = (min(arrivals), max(arrivals)) if recs else (0.0, 0.0)
    span = window[1] - window[0]
    gpus = result.onprem.gpus
    util = busy_gpu_hours(result, *window) / (gpus * span) if gpus and span > 0 else 0.0
    pipes: dict[int, tuple[float, float]] = {}
    for r in recs:
        p = r.job.pipeline
        if p >= 0:
            a, e = pipes.get(p, (r.job.arrival_h, r.end_h))
            pipes[p] = (min(a, r.job.arrival_h), max(e, r.end_h))
    dl = [r for r in recs if r.job.deadline_h is not None]
    misses = sum(1 for r in dl if r.end_h > (r.job.deadline_h or 0.0) + 1e-9)
    lat = np.array([r.decision_s for r in recs])
    violations = (
        len(residency_violations(result, truth, jurisdictions))
        if truth is not None and jurisdictions is not None
        else 0
    )
    return Metrics(
        strategy=result.strategy,
        jobs=len(recs),
        cloud_usd=compute + egress + storage,
        compute_usd=compute,
        spot_usd=spot,
        egress_usd=egress,
        storage_usd=storage,
        replicas=len(result.replicas),
        cloud_gpu_h=gpu_h,
        cloud_jobs=cloud_jobs,
        jct_avg_h=float(jct.mean()) if jct.size else float("nan"),
        jct_p50_h=_q(jct, 0.5),
        jct_p90_h=_q(jct, 0.9),
        jct_p99_h=_q(jct, 0.99),
        wait_avg_h=float(wait.mean()) if wait.size else float("nan"),
        wait_p50_h=_q(wait, 0.5),
        wait_p90_h=_q(wait, 0.9),
        wait_p99_h=_q(wait, 0.99),
        makespan_h=(max(r.end_h for r in recs) - window[0]) if recs else 0.0,
        dag_makespan_avg_h=(
            float(np.mean([e - a for a, e in pipes.values()])) if pipes else float("nan")
        ),
        onprem_util=util,
        deadline_jobs=len(dl),
        deadline_misses=misses,
        violations=violations,
        preemptions=preemptions,
        decision_p50_ms=_q(lat, 0.5) * 1e3,
        decision_p99_ms=_q(lat, 0.99) * 1e3,
        wall_s=result.wall_s,
    )


# -- which spot traces a run replayed ------------------------------------------------------------
@dataclass(frozen=True)
class SpotTraceUse:
    """The spot traces a run's spot launches met, and how much of its spot use was borrowed.

    Kept out of :class:`Metrics` (whose fields the golden replays pin) and reported beside it:
    ``placer.sim.bench.Row.spot_traces``.
    """

    picks: tuple[SpotPick, ...]
    """Every (site, job shape) a spot launch used, by site then shape."""
    gpu_h: float
    """Spot GPU-hours billed (provisioning included, as ``cloud_gpu_h``)."""
    borrowed_gpu_h: float
    """Of which on a borrowed trace (:attr:`SpotPick.borrowed` not empty)."""

    @property
    def sites(self) -> int:
        return len({p.site for p in self.picks})

    @property
    def borrowed_sites(self) -> int:
        """Sites that replayed a borrowed trace for at least one job size."""
        return len({p.site for p in self.picks if p.is_borrowed})

    @property
    def borrowed_share(self) -> float:
        """Borrowed share of the spot GPU-hours; NaN without spot."""
        return self.borrowed_gpu_h / self.gpu_h if self.gpu_h > 0 else float("nan")

    def summary(self) -> str:
        """``borrowed for 2 of 2 sites (9 of 11 traces), 97.1 % of 1,234 spot GPU-h``."""
        if not self.picks:
            return "no spot run"
        n = sum(p.is_borrowed for p in self.picks)
        return (f"borrowed for {self.borrowed_sites} of {self.sites} sites ({n} of "
                f"{len(self.picks)} traces), {100 * self.borrowed_share:.1f} % of "
                f"{self.gpu_h:,.0f} spot GPU-h")


def spot_trace_use(result: SimResult, cloud: CloudModel) -> SpotTraceUse:
    """Which trace each spot launch of ``result`` met (:meth:`CloudModel.spot_pick` for the
    job's spot quote at that site, the shape the launch billed) and the GPU-hours on each.

    A launch refused at once (spot unavailable) bills nothing and names no pick; a site with no
    trace (spot always up) names none either but its GPU-hours count as spot."""
    picks: dict[tuple[str, int, int], SpotPick] = {}
    gpu_h = borrowed = 0.0
    onprem = result.onprem.site
    for rec in result.records:
        for att in rec.attempts:
            if not att.spot or att.site == onprem:
                continue
            hours = att.gpus_billed * (att.stop_h - att.launch_h)
            gpu_h += hours
            q = cloud.quote(att.site, rec.job.gpus, True)
            pick = cloud.spot_pick(att.site, q.nodes, q.gpus_per_node) if q else None
            if pick is None:
                continue
            picks[(pick.site, pick.nodes, pick.gpus_per_node)] = pick
            if pick.is_borrowed:
                borrowed += hours
    return SpotTraceUse(tuple(picks[k] for k in sorted(picks)), gpu_h, borrowed)


# -- matching strategies at equal completion times ----------------------------------------------
@dataclass(frozen=True)
class CurvePoint:
    """One run of a strategy's budget sweep, as matching needs it."""

    budget: float
    cost: float
    jct_avg_h: float
    jct_p99_h: float


_EPS = 1e-9


def _feasible(f0: float, f1: float, bound: float) -> tuple[float, float] | None:
    """The ``t`` in [0, 1] where ``f0 + t (f1 - f0) <= bound``, as an interval, or None."""
    df = f1 - f0
    if abs(df) <= _EPS:
        return (0.0, 1.0) if f0 <= bound + _EPS else None
    t = (bound - f0) / df
    lo, hi = (0.0, min(t, 1.0)) if df > 0 else (max(t, 0.0), 1.0)
    return (lo, hi) if lo <= hi + _EPS else None


def cheapest_point(
    curve: Sequence[CurvePoint], jct_avg_h: float, jct_p99_h: float
) -> CurvePoint | None:
    """The cheapest point of a strategy's budget curve that is no worse than ``jct_avg_h`` on
    average and ``jct_p99_h`` at the 99th percentile, interpolated (its budget too); None if
    no point of the curve is.

    Why a curve, not points: a sweep samples a few budgets, and comparing against "the cheapest
    of many sampled points that happens to be no worse" rewards whoever was sampled more
    densely. The curve joins the points in budget order by straight segments (a budget between
    two samples is taken to behave in between: cost, average and p99 completion time all
    linear in the step), and on each segment both bounds are linear, so the feasible part is
    an interval and the cheapest point of it one of its two ends. The curve is not
    extrapolated: a target beyond its ends is out of reach (None), whatever the trend. Ties
    go to the lower budget.
    """
    pts = sorted(curve, key=lambda p: p.budget)
    best: CurvePoint | None = None

    def consider(c: CurvePoint) -> None:
        nonlocal best
        if best is None or (c.cost, c.budget) < (best.cost, best.budget):
            best = c

    for p in pts:
        if p.jct_avg_h <= jct_avg_h + _EPS and p.jct_p99_h <= jct_p99_h + _EPS:
            consider(p)
    for a, b in pairwise(pts):
        avg = _feasible(a.jct_avg_h, b.jct_avg_h, jct_avg_h)
        p99 = _feasible(a.jct_p99_h, b.jct_p99_h, jct_p99_h)
        if avg is None or p99 is None:
            continue
        lo, hi = max(avg[0], p99[0]), min(avg[1], p99[1])
        if lo > hi + _EPS:
            continue
        for t in (lo, hi):
            t = min(max(t, 0.0), 1.0)
            consider(CurvePoint(
                a.budget + t * (b.budget - a.budget),
                a.cost + t * (b.cost - a.cost),
                a.jct_avg_h + t * (b.jct_avg_h - a.jct_avg_h),
                a.jct_p99_h + t * (b.jct_p99_h - a.jct_p99_h),
            ))
    return best


def cheapest_at(
    curve: Sequence[CurvePoint], jct_avg_h: float, jct_p99_h: float
) -> float | None:
    """The least cost at which a strategy is no worse than ``jct_avg_h`` on average and
    ``jct_p99_h`` at the 99th percentile, along its budget curve (:func:`cheapest_point`);
    None if it never is."""
    p = cheapest_point(curve, jct_avg_h, jct_p99_h)
    return None if p is None else p.cost


@dataclass(frozen=True)
class Match:
    """One point of ours against the strongest baseline at its completion times."""

    point: CurvePoint
    baseline: str | None
    """The baseline configuration that is cheapest at no worse average and p99 JCT; None when
    no baseline reaches them."""
    baseline_cost: float | None

    @property
    def saving(self) -> float | None:
        """``1 - ours / baseline``: the share of the strongest baseline's cost saved."""
        if self.baseline_cost is None or self.baseline_cost <= 0:
            return None
        return 1.0 - self.point.cost / self.baseline_cost


def against_strongest(
    ours: Sequence[CurvePoint], baselines: Mapping[str, Sequence[CurvePoint]]
) -> list[Match]:
    """For each of our points, the baseline configuration that reaches its average and p99
    completion times most cheaply (:func:`cheapest_at` on each baseline's curve), and that
    cost. The baseline is chosen per point, so the comparison is always with the strongest
    one there; ties go to the first name in ``baselines``' order."""
    out: list[Match] = []
    for p in sorted(ours, key=lambda q: q.budget):
        best: tuple[float, str] | None = None
        for name, curve in baselines.items():
            c = cheapest_at(curve, p.jct_avg_h, p.jct_p99_h)
            if c is not None and (best is None or c < best[0]):
                best = (c, name)
        out.append(Match(p, best[1] if best else None, best[0] if best else None))
    return out
