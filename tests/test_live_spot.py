"""Spot in the live path, behind the safety net (issue 13; ``placer controller
--spot-safety-net``).

Off by default: the strategy sees no spot offer, and a spot burst it asks for anyway (or a
plan's spot placement) runs on demand. On: a spot burst is taken only when a spot run lost at
the worst moment, with nothing kept, can be done again on demand by the job's deadline (the
run's submission plus the plan's makespan bound); a failed spot attempt is retried on demand,
through the same residency guard as every submission.

The world is tests/test_live.py's: on-prem fra-dc (full here), aws-fra (EEA, with spot
offers) and aws-va (US: the job reads EU data, so never allowed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import placer
from placer.executor import Executor
from placer.online import Cloud, ClusterView, Decision, JobRequest, StopReason, Strategy
from placer.testing import FakeComputeBackend
from tests.builders import job, pipeline
from tests.test_live import FRA, GPU, NOTES, VA, World

HOURS = 2.0


class SpotFirst(Strategy):
    """Bursts every job to the cheapest allowed spot offer when there is one (on demand
    otherwise), and after a lost spot run asks for spot again: the net must say no."""

    residency = "policy"

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        q = self.cheapest(job, view, spot=True)
        return Cloud(q.site, spot=True) if q is not None else self.burst(job, view)

    def on_cloud_stopped(self, job: JobRequest, view: ClusterView, site: str, spot: bool,
                         reason: StopReason) -> Decision:
        return Cloud(site, spot=True)


class SpotThenUS(SpotFirst):
    """After a lost spot run, sends the job to aws-va, which the policies forbid."""

    def on_cloud_stopped(self, job: JobRequest, view: ClusterView, site: str, spot: bool,
                         reason: StopReason) -> Decision:
        return Cloud(VA)


def _world(tmp: Path, strategy: Any = SpotFirst, *, spot: bool = True,
           outcomes: list[str] | None = None) -> World:
    pipe = pipeline(job("a", inputs=["notes"], outputs={"out": 1}, gpu_types={GPU: HOURS},
                        resources={"gpus": 8}, spot=spot), datasets=(NOTES,))
    w = World(tmp, pipe, free=0, strategy=strategy)
    w.fakes[FRA] = FakeComputeBackend(FRA, outcomes={"a": outcomes or ["RUNNING"]})
    return w


def _start(w: World, *, deadline: str | None = None, net: bool = True,
           attempts: int = 1) -> tuple[Executor, str]:
    plan = placer.plan(w.pipeline, w.inventory, w.policies, deadline=deadline)
    assert plan.status == "placed", plan.reasons
    retry = placer.executor.RetryPolicy(max_attempts=attempts, base_s=1.0, jitter=0.0)
    ex = w.executor(spot_safety_net=net, retry=retry)
    run = ex.start(plan, pipeline=w.pipeline, inventory=w.inventory, policies=w.policies)
    return ex, run.id


def _decisions(w: World, rid: str) -> list[dict[str, Any]]:
    return [e.data for e in w.journal.events(rid, "strategy_decision")]


def _placement(w: World, rid: str) -> Any:
    return w.journal.plans(rid)[-1].plan.jobs["a"]


def test_without_the_net_a_spot_burst_runs_on_demand(tmp_path: Path) -> None:
    w = _world(tmp_path)
    _, rid = _start(w, net=False)
    [d] = _decisions(w, rid)
    # no spot offer is shown, so the strategy asks for on demand; the record says so
    assert (d["decision"], d["site"], d["spot"]) == ("burst", FRA, False)
    assert _placement(w, rid).spot is False and w.submitted() == {FRA: [f"placer-{rid}-a-1"]}


def test_a_spot_burst_asked_for_without_the_net_is_refused_too(tmp_path: Path) -> None:
    class Insists(Strategy):
        def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
            return Cloud(FRA, spot=True)

    w = _world(tmp_path, Insists)
    _, rid = _start(w, net=False)
    [d] = _decisions(w, rid)
    assert (d["spot"], d["safety_net"]) == (False, {"holds": False, "why": "spot is off"})
    assert "on demand: spot is off" in d["reason"]
    assert _placement(w, rid).spot is False


def test_with_the_net_and_room_to_rerun_the_job_goes_on_spot(tmp_path: Path) -> None:
    w = _world(tmp_path)
    _, rid = _start(w, deadline="24h")
    [d] = _decisions(w, rid)
    assert (d["decision"], d["site"], d["spot"]) == ("burst", FRA, True)
    net = d["safety_net"]
    assert net["holds"] is True and net["need_h"] > 2 * HOURS
    assert net["left_h"] == pytest.approx(24.0, abs=1e-3)  # decided at submission
    assert "on spot: the safety net holds" in d["reason"]
    assert d["burst"]["spot"] is True  # the cost of bursting is the spot offer's
    assert _placement(w, rid).spot is True and w.submitted() == {FRA: [f"placer-{rid}-a-1"]}


def test_with_the_net_and_no_room_to_rerun_the_job_goes_on_demand(tmp_path: Path) -> None:
    w = _world(tmp_path)
    # 2 h of work: a lost spot run and a whole rerun on demand need over 4 h
    _, rid = _start(w, deadline="4h")
    [d] = _decisions(w, rid)
    assert (d["decision"], d["site"], d["spot"]) == ("burst", FRA, False)
    net = d["safety_net"]
    assert net["holds"] is False and net["need_h"] > net["left_h"]
    assert "on demand: the spot safety net does not hold" in d["reason"]
    assert _placement(w, rid).spot is False


def test_a_run_without_a_deadline_takes_spot(tmp_path: Path) -> None:
    w = _world(tmp_path)
    _, rid = _start(w, deadline=None)
    [d] = _decisions(w, rid)
    assert d["spot"] is True and d["safety_net"]["deadline_h"] is None
    assert "the run has no deadline" in d["reason"]


def test_a_job_that_does_not_tolerate_preemption_never_goes_on_spot(tmp_path: Path) -> None:
    w = _world(tmp_path, spot=False)
    _, rid = _start(w, deadline="24h")
    [d] = _decisions(w, rid)
    assert d["spot"] is False and _placement(w, rid).spot is False


def _fail_once(w: World, ex: Executor, rid: str) -> None:
    """Drive the run until its spot attempt on aws-fra has failed and the retry is decided."""
    for _ in range(8):
        w.clock.sleep(2.0)
        ex.step(rid)
        if len(_decisions(w, rid)) > 1:
            return


def test_a_failed_spot_attempt_is_retried_on_demand(tmp_path: Path) -> None:
    w = _world(tmp_path, outcomes=["FAILED", "RUNNING"])
    ex, rid = _start(w, deadline="24h", attempts=2)
    _fail_once(w, ex, rid)
    first, retry = _decisions(w, rid)
    assert first["spot"] is True
    # the strategy asked for spot again; the retry is on demand, on the site it allowed
    assert (retry["asked"], retry["decision"], retry["site"], retry["spot"]) == (
        "on_cloud_stopped", "burst", FRA, False)
    assert retry["safety_net"] == {"holds": False, "why": "a spot attempt failed"}
    assert f"its spot run on {FRA} failed" in retry["reason"]
    assert _placement(w, rid).spot is False
    assert w.submitted() == {FRA: [f"placer-{rid}-a-1", f"placer-{rid}-a-2"]}


def test_a_retry_after_a_spot_failure_passes_the_residency_guard(tmp_path: Path) -> None:
    w = _world(tmp_path, SpotThenUS, outcomes=["FAILED", "RUNNING"])
    ex, rid = _start(w, deadline="24h", attempts=2)
    _fail_once(w, ex, rid)
    assert [(d["decision"], d["site"]) for d in _decisions(w, rid)] == [
        ("burst", FRA), ("burst", VA)]
    st = ex.step(rid)
    assert st.jobs["a"].state == "STUCK"
    assert "refused to run a on aws-va" in (st.jobs["a"].reason or "")
    assert VA not in w.submitted()  # nothing in the US, least of all the retry
    assert all(p.plan.jobs["a"].site != VA for p in w.journal.plans(rid))


# -- the same rule in the simulator (benchmarks/spot_deadline.py's placer-live+safety-net) --------


def _trace(*up: int) -> Any:
    import numpy as np

    from placer.sim.cloud import SpotTrace

    return SpotTrace("hand", 900.0, np.array(up, dtype=bool))  # ticks of 15 min


def test_the_simulated_net_takes_spot_only_with_room_for_a_whole_rerun() -> None:
    from placer.sim.spot_deadline import (
        DeadlineJob,
        OnDemandOnly,
        PlacerLiveNet,
        Prices,
        simulate,
    )

    prices = Prices(on_demand=3.0, spot=1.0, source="test")
    up_then_down = _trace(1, 1, 1, *[0] * 60)  # spot for 0.75 h, then gone for 15 h

    def run(deadline: float, tr: Any) -> Any:
        job = DeadlineJob(work_h=1.0, deadline_h=deadline, changeover_h=0.25)
        return simulate(PlacerLiveNet(), job, tr, prices=prices)

    # 2 x (0.25 + 1) = 2.5 h: below it, on demand from the start (the on-demand bill)
    tight = run(2.25, _trace(1))
    ref = simulate(OnDemandOnly(), DeadlineJob(work_h=1.0, deadline_h=2.25, changeover_h=0.25),
                   _trace(1), prices=prices)
    assert (tight.cost_usd, tight.spot_h) == (ref.cost_usd, 0.0)
    # at it: spot; preempted after 0.75 h (0.5 h of work done), then on demand to the end
    lost = run(2.5, up_then_down)
    assert lost.spot_h == 0.75 and lost.on_demand_h == 0.75 and lost.met_deadline
    assert lost.cost_usd == 0.75 * 1.0 + 0.75 * 3.0
    # never spot where it is not there at submission
    assert run(10.0, _trace(0, *[1] * 60)).spot_h == 0.0


def test_the_simulated_net_never_misses_on_the_papers_traces() -> None:
    from placer.sim.cloud import load_spot_traces
    from placer.sim.spot_deadline import PlacerLiveNet, Prices, Sweep, TraceSet, run_sweep

    traces = load_spot_traces()
    names = tuple(f"availability/1-node/aws-10-26-2022/us-west-2{z}_v100_1" for z in "ab")
    cells = run_sweep(TraceSet(label="t", traces=names),
                      Sweep(work_h=48.0, deadlines_h=(96.0, 97.0, 144.0), stride_h=48.0),
                      prices=Prices.from_catalog(), traces=traces,
                      policies=lambda _: (PlacerLiveNet(),))
    by = {c.deadline_h: c for c in cells}
    assert all(c.miss_pct == 0.0 for c in cells)
    assert by[96.0].spot_share_pct == 0.0  # 96 h < 2 x (48 + 0.2): no spot at all
    assert by[97.0].spot_share_pct > 0.0 and by[144.0].savings_pct > 0.0
