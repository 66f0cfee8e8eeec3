"""placer's own strategy on hand-computed cases: wait prediction, allowances, the tail bound,
egress, spot, residency, pipelines and determinism.

Unless a test says otherwise: Starburst's uniform cloud at $1/GPU-h (one site ``cloud``, no
provisioning delay, no egress), exact run-time estimates, and these facts of
:class:`~placer.sim.placer_strategy.PlacerStrategy`:

* scale = budget x mean(estimate) / mean(cheapest cloud $ of the whole job); a job's allowance
  is scale x (cloud $ - egress $ to bring its inputs on-prem), then at most tail - estimate
  when the job is not longer than the tail bound (tail = the 0.99 quantile of the estimates x
  1.02 by default; ``tail_quantile=None`` switches it off). Under the uniform cloud the cloud $
  of a job is GPUs x run time, so the allowance is budget x mean(run) / mean(GPUs x run) x
  GPUs x run: Compute-Wait's wait, and the allowances add up to budget x the summed run time.
* a job queues on-prem when its predicted wait fits its allowance, with priority ready +
  allowance (lower first), and is asked again after 1.05 x predicted wait + 0.001 h.
* the engine's tie-breaks at one instant: ends, then arrivals (in job order), then timeouts.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placer.catalog import default_inventory, resolve_inventory
from placer.online import ClusterView, JobRequest
from placer.pricing import PricedOffer
from placer.sim.baselines import ComputeWait, NoWait
from placer.sim.check import residency_violations
from placer.sim.cloud import (
    CloudModel,
    CloudSite,
    Provisioning,
    SpotTrace,
    catalog_cloud,
    uniform_cloud,
)
from placer.sim.engine import JobRecord, OnPremConfig, SimResult, simulate
from placer.sim.jobs import SimDataset, SimJob, Workload
from placer.sim.placer_strategy import PlacerStrategy
from placer.sim.registry import make_strategy
from placer.sim.scenario import Prepared, WindowSpec, build, load_scenario
from tests.conftest import ROOT
from tests.sim.builders import hand_workload as _wl

# -- builders ------------------------------------------------------------------------------------


def _nodes(n: int, gpus: int) -> OnPremConfig:
    return OnPremConfig(nodes=n, gpus_per_node=gpus)


def _run(workload: Workload, strategy: PlacerStrategy, onprem: OnPremConfig) -> SimResult:
    return simulate(workload, strategy, onprem=onprem, cloud=uniform_cloud(1.0))


def _by_name(result: SimResult) -> dict[str, JobRecord]:
    return {r.job.name: r for r in result.records}


def _queued_h(rec: JobRecord) -> float:
    """Hours from ready until the job first got GPUs on-prem or was sent to the cloud."""
    return rec.attempts[0].launch_h - rec.ready_h


class _Recording(PlacerStrategy):
    """PlacerStrategy that writes down every wait it predicts: ``(job, now, hours)``."""

    def __init__(self, budget: float, *, tail_quantile: float | None = 0.99) -> None:
        super().__init__(budget, tail_quantile=tail_quantile)
        self.predicted: list[tuple[str, float, float]] = []

    def _predict_wait(
        self, job: JobRequest, view: ClusterView, priority: float = math.inf
    ) -> float:
        wait = super()._predict_wait(job, view, priority)
        self.predicted.append((job.name, view.now, wait))
        return wait


# -- the wait prediction -------------------------------------------------------------------------

# One node of 8 GPUs.
#
#   job  arrives  GPUs  run h  GPUs x run
#   a    0        4     2      8
#   b    0        3     3      9
#   c    0.5      6     1      6
#   d    0.5      4     0.5    2
#   x    1        2     2      4
#                       ---    --
#                 mean  1.7    5.8
#
# Budget 5, no tail bound: scale = 5 x 1.7 / 5.8 = 1.4655; allowances c 8.79, d 2.93, x 5.86,
# all above the waits below, so every job queues; priorities (ready + allowance) d 3.43 <
# x 6.86 < c 9.29.
#
# a, b at 0: they fit and nothing is queued: wait 0.  1 GPU left.
# c at 0.5: releases at 2 (a: 1 + 4 = 5 free), 3 (b: 8 free): c (6) fits at 3: wait 2.5.
# d at 0.5: queue [c]. 2: 5 free, c (6) does not fit, d (4) does: wait 1.5.
# x at 1: queue [d, c]. 2: 5 free, d starts (1 left, ends 2.5), c and x do not fit.
#   2.5: 5 free, c still does not fit, x (2) does, out of order: wait 1.5.  (With FIFO c would
#   block x until 3, when c takes 6 of 8 GPUs and x the rest.)
# The engine: d [2, 2.5], x [2.5, 4.5], c [3, 4]; every start comes before the job's re-check
# (d 0.5 + 1.05 x 1.5 + 0.001 = 2.076, x 2.576, c 3.126), so each job is decided once.
PREDICT = _wl(("a", 0, 4, 2), ("b", 0, 3, 3), ("c", 0.5, 6, 1), ("d", 0.5, 4, 0.5), ("x", 1, 2, 2))


def test_predicted_wait_by_hand_equals_the_engines_start() -> None:
    s = _Recording(5.0, tail_quantile=None)
    result = _run(PREDICT, s, _nodes(1, 8))
    assert s.predicted == [
        ("a", 0, 0.0),
        ("b", 0, 0.0),
        ("c", 0.5, pytest.approx(2.5)),
        ("d", 0.5, pytest.approx(1.5)),
        ("x", 1, pytest.approx(1.5)),
    ]
    recs = _by_name(result)
    assert {n: (r.site, r.start_h, r.end_h) for n, r in recs.items()} == {
        "a": ("onprem", 0, 2),
        "b": ("onprem", 0, 3),
        "c": ("onprem", 3, 4),
        "d": ("onprem", 2, 2.5),
        "x": ("onprem", 2.5, 4.5),
    }
    for name, _, wait in s.predicted:
        assert recs[name].start_h - recs[name].ready_h == pytest.approx(wait)
        assert recs[name].decisions == 1


# Two nodes of 4 GPUs: a (3 GPUs, 2 h) on node 0, b (3 GPUs, 1 h) on node 1, both at 0; 2 GPUs
# are free, one per node. x (2 GPUs) arrives at 0.5: GPU counts say it fits, but no node has 2
# free; it can start when b ends at 1 (node 1: 4 free): wait 0.5 h, and it is decided once
# (not re-checked every few seconds while the counts keep saying "now").
FRAGMENTED = _wl(("a", 0, 3, 2), ("b", 0, 3, 1), ("x", 0.5, 2, 1))


def test_prediction_sees_that_free_gpus_on_different_nodes_do_not_fit() -> None:
    s = _Recording(5.0, tail_quantile=None)
    result = _run(FRAGMENTED, s, _nodes(2, 4))
    assert ("x", 0.5, pytest.approx(0.5)) in s.predicted
    x = _by_name(result)["x"]
    assert (x.site, x.start_h, x.decisions) == ("onprem", 1.0, 1)


# -- allowances: burst at once or queue ----------------------------------------------------------

# One node of 4 GPUs.  a (4 GPUs, 2 h), x (2 GPUs, 1 h), y (2 GPUs, 4 h), all at 0.
# Mean run 7/3 h, mean GPUs x run (8 + 2 + 8) / 3 = 6: scale = b x (7/3) / 6 = 7b/18;
# allowance x = 2 x 7b/18 = 7b/9, y = 8 x 7b/18 = 28b/9.
# Predicted waits: a holds the node until 2; x: 2; y: at 2 the 4 GPUs hold x and y: 2.
# b = 1: x 0.78 < 2: bursts at 0, cloud [0, 1], $2;  y 3.11 >= 2: queued, on-prem [2, 6].
# b = 3: x 2.33 >= 2: queued too, on-prem [2, 3].
BURST = _wl(("a", 0, 4, 2), ("x", 0, 2, 1), ("y", 0, 2, 4))


@pytest.mark.parametrize(
    ("budget", "x_run"),
    [(1.0, ("cloud", 0, 1, 1)), (3.0, ("onprem", 2, 3, 1))],
)
def test_burst_at_once_when_the_predicted_wait_exceeds_the_allowance(
    budget: float, x_run: tuple[str, float, float, int]
) -> None:
    s = PlacerStrategy(budget, tail_quantile=None)
    recs = _by_name(_run(BURST, s, _nodes(1, 4)))
    x, y = recs["x"], recs["y"]
    assert s._allow[x.job.id] == pytest.approx(7 * budget / 9)
    assert s._allow[y.job.id] == pytest.approx(28 * budget / 9)
    assert (x.site, x.start_h, x.end_h, x.decisions) == x_run
    assert len(x.attempts) == 1
    if x.site == "cloud":
        assert x.wait_h == 0  # decided at once: no wait out of the allowance first
    assert (y.site, y.start_h, y.end_h, y.wait_h) == ("onprem", 2, 6, 2)


# Starburst's shared trace (test_baselines.T), one node of 4 GPUs:
#   a (0, 2 GPUs, 0.75 h), b (0, 4, 1), c (0.25, 1, 2), d (1.5, 2, 0.25)
# mean run 1 h, mean GPUs x run 2: scale = b / 2, allowance = b/2 x GPUs x run:
#   a 0.75b, b 2b, c b, d 0.25b; sum 4b = b x the summed run time (4 h).
# Tail bound: 2 h (the longest estimate, the 0.99 quantile of 4) x 1.02 = 2.04; each job's
# allowance at most 2.04 - run: a 1.29, b 1.04, c 0.04, d 1.79.
STARBURST = _wl(("a", 0, 2, 0.75), ("b", 0, 4, 1), ("c", 0.25, 1, 2), ("d", 1.5, 2, 0.25))


@pytest.mark.parametrize("budget", [0.25, 0.5, 2.0])
def test_allowances_add_up_to_the_budget_times_the_run_time(budget: float) -> None:
    s = PlacerStrategy(budget, tail_quantile=None)
    _run(STARBURST, s, _nodes(1, 4))
    raw = [0.75 * budget, 2 * budget, budget, 0.25 * budget]
    got = [s._allow[j.id] for j in STARBURST.jobs]
    assert got == pytest.approx(raw)
    assert sum(got) == pytest.approx(budget * sum(j.estimate_h for j in STARBURST.jobs))
    cw = ComputeWait(budget)
    simulate(STARBURST, cw, onprem=_nodes(1, 4), cloud=uniform_cloud(1.0))
    assert got == pytest.approx([cw.wait(j) for j in STARBURST.jobs])  # Compute-Wait's shape

    bounded = PlacerStrategy(budget)
    _run(STARBURST, bounded, _nodes(1, 4))
    assert bounded._tail == pytest.approx(2.04)
    cap = [2.04 - j.estimate_h for j in STARBURST.jobs]
    assert [bounded._allow[j.id] for j in STARBURST.jobs] == pytest.approx(
        [min(r, c) for r, c in zip(raw, cap, strict=True)]
    )


# -- the tail bound ------------------------------------------------------------------------------

# One node of 4 GPUs.  a (4 GPUs, 2 h) and x (4 GPUs, 1 h) at 0; x's predicted wait is 2.
# Budget 100: scale = 100 x 1.5 / 6 = 25, x's allowance 25 x 4 = 100.
# tail_quantile 0.5: the estimate at index int(0.5 x 2) = 1 of [1, 2] is 2; x 1.02 = 2.04, so
# x may wait at most 2.04 - 1 = 1.04 < 2: it bursts at 0.  Without the bound it queues.
TAIL = _wl(("a", 0, 4, 2), ("x", 0, 4, 1))


@pytest.mark.parametrize(("quantile", "x_run"), [(0.5, ("cloud", 0, 1)), (None, ("onprem", 2, 3))])
def test_tail_bound_sends_a_short_job_that_would_wait_past_it_to_the_cloud(
    quantile: float | None, x_run: tuple[str, float, float]
) -> None:
    s = PlacerStrategy(100.0, tail_quantile=quantile)
    x = _by_name(_run(TAIL, s, _nodes(1, 4)))["x"]
    assert (x.site, x.start_h, x.end_h) == x_run
    assert s._allow[x.job.id] == pytest.approx(1.04 if quantile is not None else 100)


_JOB = st.tuples(
    st.floats(0, 3),
    st.sampled_from([1, 2, 4, 8]),
    st.floats(0.05, 3).map(lambda h: round(h, 3)),
)


@settings(max_examples=30, deadline=None)
@given(
    specs=st.lists(_JOB, min_size=2, max_size=14),
    budget=st.sampled_from([0.5, 2.0, 8.0]),
    quantile=st.sampled_from([0.5, 0.9]),
)
def test_tail_bound_holds_up_to_the_recheck_margin(
    specs: list[tuple[float, int, float]], budget: float, quantile: float
) -> None:
    # A job no longer than the bound is queued at most its allowance <= tail - estimate, plus
    # what the re-check timer adds when a prediction turns out short: it fires at 1.05 x the
    # predicted wait + 0.001 h, capped at the allowance left (exact bound: the next test).
    specs = sorted(specs)
    wl = _wl(*((f"j{i}", t, g, r) for i, (t, g, r) in enumerate(specs)))
    s = PlacerStrategy(budget, tail_quantile=quantile)
    result = _run(wl, s, _nodes(2, 8))
    checked = 0
    for rec in result.records:
        if rec.job.estimate_h <= s._tail:
            checked += 1
            allowance = s._tail - rec.job.estimate_h
            assert _queued_h(rec) <= 1.05 * allowance + 2.1e-3 + 1e-9
    assert checked >= 1  # the quantile is one of the estimates


# One node of 8 GPUs, budget 10 (every allowance is the tail bound's).
#   a (0, 4 GPUs, 1 h), b (0, 4, 1.5), x (0, 8, 1), y (0.5, 4, 1), z (5, 1, 2.5)
# tail = 2.5 x 1.02 = 2.55 (z's, the 0.99 quantile of 5 estimates); x may wait 2.55 - 1 = 1.55.
# 0: a, b start; x predicts 1.5 (both end) and queues, re-check at 1.05 x 1.5 + 0.001 = 1.576.
# 0.5: y predicts 0.5 (a's 4 GPUs at 1, which x cannot use) and queues.  1: y takes them.
# 1.5: b ends, x still does not fit.  1.576: x re-checks (y ends at 2): 1.576 + 0.424 > 1.55,
# bursts: queued 1.576 h > 1.55 h, ends at 2.576 > ready + tail = 2.55.
TAIL_RECHECK = _wl(
    ("a", 0, 4, 1), ("b", 0, 4, 1.5), ("x", 0, 8, 1), ("y", 0.5, 4, 1), ("z", 5, 1, 2.5)
)


def test_tail_bound_is_exact_when_a_recheck_finds_the_prediction_short() -> None:
    s = PlacerStrategy(10.0)
    x = _by_name(_run(TAIL_RECHECK, s, _nodes(1, 8)))["x"]
    assert s._tail == pytest.approx(2.55)
    assert x.site == "cloud"
    assert _queued_h(x) <= s._tail - x.job.estimate_h + 1e-9


# One node of 8 GPUs, budget 2, no tail bound.
#   a (0, 4 GPUs, 1 h), b (0, 4, 3), q (0.25, 4, 2), x (0.5, 4, 0.5)
# mean run 1.625, mean GPUs x run 6.5: scale 0.5; allowances q 4, x 1; priorities
# q 0.25 + 4 = 4.25, x 0.5 + 1 = 1.5: x is ahead of q in the queue.
# q at 0.25 predicts 0.75 (a ends at 1) and queues.  x at 0.5: queued at priority 1.5 it would
# take a's GPUs at 1 (wait 0.5 <= 1) and q would follow at 1.5.  The prediction replays x behind
# q instead (q at 1, x at 3 when b and q end): 2.5 > 1, and x bursts, paying $2.
PRIORITY = _wl(("a", 0, 4, 1), ("b", 0, 4, 3), ("q", 0.25, 4, 2), ("x", 0.5, 4, 0.5))


def test_prediction_uses_the_place_the_job_will_take_in_the_queue() -> None:
    s = _Recording(2.0, tail_quantile=None)
    recs = _by_name(_run(PRIORITY, s, _nodes(1, 8)))
    assert s._allow[2] == pytest.approx(4) and s._allow[3] == pytest.approx(1)
    ((at, wait),) = [(t, w) for n, t, w in s.predicted if n == "x"]
    assert at == 0.5
    assert wait == pytest.approx(0.5)  # behind a, ahead of q: starts at 1
    assert (recs["x"].site, recs["x"].start_h) == ("onprem", 1)
    assert (recs["q"].site, recs["q"].start_h) == ("onprem", 1.5)


# -- egress to on-prem ---------------------------------------------------------------------------


@functools.cache
def _catalog_cloud() -> CloudModel:
    sites = resolve_inventory(default_inventory())
    return catalog_cloud(
        sites, gpu="V100", inventory=default_inventory(), provisioning="zero", spot_traces={}
    )


FRA = OnPremConfig(site="fra-dc", location="onprem:fra-dc1", nodes=1, gpus_per_node=8)


@pytest.mark.parametrize(("gb", "site"), [(10, "fra-dc"), (100, "gcp-us-central1")])
def test_input_in_a_cloud_bucket_keeps_the_job_there_when_egress_costs_more(
    gb: float, site: str
) -> None:
    # x (1 V100, 1 h, no spot) reads gb GB in gcp:us-central1; the on-prem node is free.
    # Cloud: one V100 at gcp-us-central1 (the data's own region, no egress) $2.95.
    # On-prem: GCP egress to the Internet $0.12/GB.
    #   10 GB:  $1.20 < $2.95: running on-prem saves $1.75; it fits now: on-prem.
    #   100 GB: $12 > $2.95: on-prem is dearer, the allowance is negative: cloud at once.
    cloud = _catalog_cloud()
    assert cloud.quote("gcp-us-central1", 1, False).usd_per_h == pytest.approx(2.95)  # type: ignore[union-attr]
    assert cloud.link("gcp:us-central1", "onprem:fra-dc1")[0] == pytest.approx(0.12)
    wl = Workload(
        "egress",
        (SimJob(0, "x", 0.0, 1.0, 1, 1.0, reads=("bucket",), spot_ok=False),),
        {"bucket": SimDataset("bucket", "gcp:us-central1", gb)},
    )
    (rec,) = simulate(wl, PlacerStrategy(0.5), onprem=FRA, cloud=cloud).records
    assert rec.site == site
    assert rec.attempts[0].launch_h == 0
    assert rec.attempts[0].egress_usd == pytest.approx(0.12 * gb if site == "fra-dc" else 0)
    # No-Wait looks only at free GPUs: on-prem both times, paying the egress.
    (nw,) = simulate(wl, NoWait(), onprem=FRA, cloud=cloud).records
    assert nw.site == "fra-dc"
    assert nw.attempts[0].egress_usd == pytest.approx(0.12 * gb)


# -- spot ----------------------------------------------------------------------------------------


def _spot_cloud(trace: SpotTrace | None) -> CloudModel:
    """Site a: on demand $3/GPU-h, spot $1/GPU-h (availability ``trace``); site b: on demand
    $2/GPU-h, no spot. No provisioning delay, free links."""
    zero = (Provisioning.zero(), Provisioning.zero())
    return CloudModel(
        "hand",
        [
            CloudSite("a", "cloud:a", (PricedOffer("a1", "V100", 1, 3.0, 1.0),), zero, trace, None),
            CloudSite("b", "cloud:b", (PricedOffer("b1", "V100", 1, 2.0, None),), zero, None, None),
        ],
    )


NO_ONPREM = OnPremConfig(nodes=0)


@pytest.mark.parametrize(
    ("spot_ok", "deadline", "placed"),
    [
        (True, None, ("a", True)),
        (True, 10.0, ("a", True)),
        (True, 6.0, ("b", False)),
        (False, None, ("b", False)),
    ],
)
def test_spot_only_for_checkpointing_jobs_with_slack(
    spot_ok: bool, deadline: float | None, placed: tuple[str, bool]
) -> None:
    # x: 1 GPU, 4 h, no on-prem pool.  Spot at a is priced 4 h x 1.1 (expected overhead) x $1 x
    # 4/3 (expected launches per run, 1 / (1 - 1/4) with no preemption seen yet) = $5.87, less
    # than b on demand (4 x $2 = $8) and a on demand ($12).  Spot needs the deadline to leave
    # 0.5 x 4 h spare after finishing at 4.4: 6.4 <= 10 yes, 6.4 > 6 no (b ends at 4 <= 6).
    wl = Workload(
        "spot",
        (SimJob(0, "x", 0.0, 4.0, 1, 4.0, deadline_h=deadline, spot_ok=spot_ok),),
    )
    (rec,) = simulate(wl, PlacerStrategy(0.5), onprem=NO_ONPREM, cloud=_spot_cloud(None)).records
    assert [(a.site, a.spot, a.start_h, a.stop_h, a.outcome) for a in rec.attempts] == [
        (*placed, 0, 4, "done")
    ]


def test_preempted_spot_job_is_placed_again_and_finishes() -> None:
    # a's spot capacity: up [0, 2), down [2, 3), up after.  x (1 GPU, 4 h, checkpoints):
    # 0: spot at a (as above).  2: preempted with 2 h done; 2 h + 0.2 h restart overhead left.
    # Spot at a, which just preempted it, is struck off: b on demand 2.2 x $2 = $4.40 beats a
    # on demand $6.60: b [2, 4.2].  No launch is refused: the strategy does not try a down site.
    trace = SpotTrace("hand", 3600.0, np.array([True, True, False] + [True] * 7))
    wl = Workload("preempt", (SimJob(0, "x", 0.0, 4.0, 1, 4.0),))
    s = PlacerStrategy(0.5)
    (rec,) = simulate(wl, s, onprem=NO_ONPREM, cloud=_spot_cloud(trace)).records
    assert [(a.site, a.spot, a.start_h, a.stop_h, a.outcome) for a in rec.attempts] == [
        ("a", True, 0, 2, "preempted"),
        ("b", False, 2, pytest.approx(4.2), "done"),
    ]
    assert rec.refused == ()
    assert sum(a.compute_usd for a in rec.attempts) == pytest.approx(2 * 1 + 2.2 * 2)
    assert (s._spot_runs, s._spot_lost) == ({"a": 1}, {"a": 1})


# -- residency on the eu-pipelines scenario ------------------------------------------------------

SCENARIO = ROOT / "benchmarks" / "scenarios" / "eu-pipelines.yaml"


@functools.cache
def _eu(seed: int) -> Prepared:
    """eu-pipelines cut down: 4 h of the trace, 12 pipelines, 4 nodes (so that much bursts)."""
    s = load_scenario(SCENARIO)
    w = s.workload
    assert w.pipelines is not None
    small = s.model_copy(
        update={
            "seed": seed,
            "onprem": s.onprem.model_copy(update={"nodes": 4}),
            # the region-level spot traces this witness was found with: under the zone-level
            # ones seed 0's naive-mask run happens to stay legal (seeds 1-3 still leak)
            "cloud": s.cloud.model_copy(update={"spot_traces": "region"}),
            "workload": w.model_copy(
                update={
                    "window": WindowSpec(hours=4),
                    "pipelines": w.pipelines.model_copy(update={"count": 12}),
                }
            ),
        }
    )
    return build(small, SCENARIO.parent)


def _sim(p: Prepared, name: str, seed: int, budget: float = 0.5) -> SimResult:
    return simulate(
        p.workload,
        make_strategy(name, budget),
        onprem=p.onprem,
        cloud=p.cloud,
        eligibility=p.eligibility,
        seed=seed,
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_placer_keeps_residency_where_the_naive_mask_does_not(seed: int) -> None:
    p = _eu(seed)
    assert p.truth is not None
    placer = _sim(p, "placer", seed)
    assert residency_violations(placer, p.truth, p.jurisdictions) == []
    # Not vacuous: restricted work did go to the cloud (to EEA sites).
    everywhere = set(p.eligibility.cloud_sites)
    restricted_in_cloud = [
        r
        for r in placer.records
        if set(p.eligibility.allowed(r.job.id, "policy")[1]) != everywhere
        and any(a.site != p.onprem.site for a in r.attempts)
    ]
    assert restricted_in_cloud
    naive = _sim(p, "no-wait+mask-literal", seed)
    assert residency_violations(naive, p.truth, p.jurisdictions)


# -- pipelines -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pipeline", "gb", "sites"),
    [
        (0, 2000.0, ("aws-us-east-1", "aws-us-east-1")),
        (-1, 2000.0, ("gcp-europe-west4", "gcp-europe-west4")),
        (0, 1.0, ("gcp-europe-west4", "aws-us-east-1")),
    ],
)
def test_pipeline_follows_the_optimizers_plan(
    pipeline: int, gb: float, sites: tuple[str, str]
) -> None:
    # prep (1 V100, 1 h) -> train (8 V100, 10 h), no on-prem pool, spot always up.  Spot per
    # hour (GCP's with the host VM): 1 V100 gcp-europe-west4 $0.9498, aws-us-east-1 $1.936;
    # 8 V100 aws-us-east-1 $3.536, gcp-europe-west4 $7.5984 (x run h; every option carries the
    # same x 1.1 x 4/3, left out here).
    # prep's output is gb GB; GCP egress to AWS $0.12/GB.
    #   2000 GB, one pipeline: the optimizer prices the DAG: both at aws 1.936 + 35.36 = $37.30
    #     < both at gcp 0.95 + 75.98 = $76.93 < prep gcp, train aws 0.95 + 35.36 + $240 egress.
    #   2000 GB, the same jobs as independent ones (pipeline -1): prep alone is cheapest at gcp;
    #     then train at aws would pay the $240 egress: gcp's $75.98 wins.
    #   1 GB: egress $0.12, each job at its own cheapest site.
    cloud = _catalog_cloud()
    for site, gpus, usd in [
        ("gcp-europe-west4", 1, 0.9498),
        ("aws-us-east-1", 1, 1.936),
        ("aws-us-east-1", 8, 3.536),
        ("gcp-europe-west4", 8, 7.5984),
    ]:
        assert cloud.quote(site, gpus, True).usd_per_h == pytest.approx(usd)  # type: ignore[union-attr]
    assert cloud.link("gcp:europe-west4", "aws:us-east-1")[0] == pytest.approx(0.12)
    wl = Workload(
        "chain",
        (
            SimJob(0, "prep", 0.0, 1.0, 1, 1.0, output_gb=gb, pipeline=pipeline),
            SimJob(1, "train", 0.0, 10.0, 8, 10.0, deps=(0,), pipeline=pipeline),
        ),
    )
    s = PlacerStrategy(0.5)
    onprem = OnPremConfig(site="fra-dc", location="onprem:fra-dc1", nodes=0)
    prep, train = simulate(wl, s, onprem=onprem, cloud=cloud).records
    assert (prep.site, train.site) == sites
    assert prep.attempts[-1].spot and train.attempts[-1].spot
    assert train.start_h >= prep.end_h
    if pipeline >= 0:
        assert {j: (d.site if d else None) for j, d in s._plan.items()} == dict(enumerate(sites))
    else:
        assert s._plan == {}


def test_pipeline_jobs_never_run_before_their_dependencies() -> None:
    p = _eu(0)
    result = _sim(p, "placer", 0)
    ends = {r.job.id: r.end_h for r in result.records}
    with_deps = [r for r in result.records if r.job.deps]
    assert with_deps
    for rec in with_deps:
        ready = max(ends[d] for d in rec.job.deps)
        assert rec.ready_h >= ready
        assert all(a.launch_h >= ready for a in rec.attempts)


# -- determinism ---------------------------------------------------------------------------------


def _trace(result: SimResult) -> list[tuple[object, ...]]:
    """Everything a record holds but the decision wall time."""
    return [(r.job, r.ready_h, r.attempts, r.decisions, r.refused) for r in result.records]


def test_same_seed_same_records() -> None:
    p = _eu(1)
    first = _trace(_sim(p, "placer", 1))
    assert _trace(_sim(p, "placer", 1)) == first
    # the seed matters (provisioning delays are drawn from it), so the equality above can fail
    assert _trace(_sim(p, "placer", 2)) != first
