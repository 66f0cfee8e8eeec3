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
  (``on_ready``, ``on_timeout``, ``on_cloud_stopped``), as percentiles over jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from placer.sim.check import residency_violations
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
