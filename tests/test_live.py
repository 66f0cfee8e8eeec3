"""The live ClusterView and the executor's strategy step (issue 13, item 1).

A world of one on-prem site (fra-dc, 8 GPUs, its free GPUs reported by a fake cluster) and two
cloud sites (aws-fra in the EEA, aws-va in the US); the job reads EU data, so aws-va is never
allowed. The strategy is placer's own (made by the simulator's registry, as
``placer controller --strategy placer`` makes it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import placer
from placer.backends import CapacityReporter, GpuCapacity, PrefixLayout
from placer.catalog import resolve_inventory
from placer.errors import ExecutionError
from placer.executor import Executor, RetryPolicy
from placer.journal import Journal
from placer.live import LiveView, StrategyStep, allowed_by_policy, job_requests
from placer.models import Dataset, Inventory, Pipeline
from placer.online import Cloud, ClusterView, Decision, JobRequest, OnPrem, Strategy
from placer.policy import evaluate
from placer.pricing import cheapest_quote, price_offers
from placer.sim.registry import make_strategy
from placer.testing import FakeComputeBackend, FakeStorageResolver
from tests.builders import job, pipeline
from tests.executor.world import ROOT, FakeClock

GPU = "A100-40GB"
ONPREM, FRA, VA = "fra-dc", "aws-fra", "aws-va"
ROOTS = {"onprem:fra-dc1": "mem://fra/placer", "aws:eu-central-1": "mem://aws-fra/placer",
         "aws:us-east-1": "mem://aws-va/placer"}
WALL = 1.8e9  # seconds since the epoch: the wall clock the view's "now" is read from


class CapacityFake(FakeComputeBackend):
    """A fake cluster that also reports its GPUs (a CapacityReporter)."""

    def __init__(self, site: str, total: int = 8, free: int = 8, **kw: Any) -> None:
        super().__init__(site, **kw)
        self.capacity = GpuCapacity(total=total, free=free)
        self.asked = 0

    def gpus(self) -> GpuCapacity:
        self.asked += 1
        return self.capacity


def inventory() -> Inventory:
    return Inventory.model_validate({"name": "hybrid", "sites": {
        ONPREM: {"location": "onprem:fra-dc1", "country": "DE",
                 "pools": [{"gpu": GPU, "count": 8, "cost_per_gpu_hour": "$1.0"}]},
        FRA: {"kind": "cloud", "location": "aws:eu-central-1"},
        VA: {"kind": "cloud", "location": "aws:us-east-1"},
    }})


def policies() -> placer.PolicySet:
    return placer.load_policies(ROOT / "policies" / "locations.yaml",
                                ROOT / "policies" / "eea-residency.yaml")


NOTES = Dataset(name="notes", uri="mem://fra/data/notes", size=1, location="onprem:fra-dc1",
                tags={"residency": "EU"})


def work(*names: str, gpus: int = 8, hours: float = 2.0) -> Pipeline:
    """Independent jobs reading EU data: each may run on fra-dc or aws-fra, never aws-va."""
    return pipeline(*(job(n, inputs=["notes"], outputs={"out": 1}, gpu_types={GPU: hours},
                          resources={"gpus": gpus}) for n in names), datasets=(NOTES,))


class World:
    def __init__(self, tmp: Path, pipe: Pipeline, *, free: int = 8,
                 strategy: Any = None, budget: float = 0.5) -> None:
        self.pipeline = pipe
        self.inventory, self.policies = inventory(), policies()
        self.clock = FakeClock()
        self.wall = [WALL]
        self.fakes: dict[str, FakeComputeBackend] = {
            ONPREM: CapacityFake(ONPREM, free=free,
                                 outcomes={j.name: ["RUNNING"] for j in pipe.jobs}),
            FRA: FakeComputeBackend(FRA), VA: FakeComputeBackend(VA)}
        self.journal = Journal(tmp / "journal.db", clock=lambda: self.wall[0])
        self.strategy = strategy or (lambda: make_strategy("placer", budget))

    @property
    def onprem(self) -> CapacityFake:
        fake = self.fakes[ONPREM]
        assert isinstance(fake, CapacityFake)
        return fake

    def executor(self, **kw: Any) -> Executor:
        kw.setdefault("strategy", self.strategy)
        kw.setdefault("retry", RetryPolicy(max_attempts=1))
        return Executor(self.journal, self.fakes, layout=PrefixLayout(ROOTS),
                        storage=FakeStorageResolver.from_roots(ROOTS), clock=self.clock,
                        sleep=self.clock.sleep, poll_interval_s=1.0,
                        wall_clock=lambda: self.wall[0], **kw)

    def start(self, **kw: Any) -> tuple[Executor, str]:
        plan = placer.plan(self.pipeline, self.inventory, self.policies)
        assert plan.status == "placed", plan.reasons
        ex = self.executor(**kw)
        run = ex.start(plan, pipeline=self.pipeline, inventory=self.inventory,
                       policies=self.policies)
        return ex, run.id

    def decisions(self, rid: str) -> list[tuple[str | None, str, str | None]]:
        return [(e.job, e.data["decision"], e.data["site"])
                for e in self.journal.events(rid, "strategy_decision")]

    def submitted(self) -> dict[str, list[str]]:
        return {s: list(f.submissions) for s, f in self.fakes.items() if f.submissions}


# -- the hook ------------------------------------------------------------------------------------


def test_room_on_prem_runs_the_job_there_now(tmp_path: Path) -> None:
    w = World(tmp_path, work("a"), free=8)
    _, rid = w.start()
    assert w.decisions(rid) == [("a", "onprem", ONPREM)]
    assert list(w.submitted()) == [ONPREM]
    e = w.journal.events(rid, "strategy_decision")[0]
    assert e.data["free_gpus"] == 8 and e.data["allowed_cloud"] == [FRA]
    assert e.data["allowed_onprem"] is True and "room on-prem now" in e.data["reason"]


def test_full_on_prem_and_no_known_release_bursts_to_the_allowed_cloud_site(
        tmp_path: Path) -> None:
    w = World(tmp_path, work("a"), free=0)
    _, rid = w.start()
    assert w.decisions(rid) == [("a", "burst", FRA)]
    assert list(w.submitted()) == [FRA]  # never aws-va: the job reads EU data
    e = w.journal.events(rid, "strategy_decision")[0]
    assert "on-prem is full (0/8 GPUs free" in e.data["reason"]
    assert e.data["burst_usd"] > 0
    # The move is a plan in the journal: any process that continues the run finds it there.
    assert w.journal.plans(rid)[-1].plan.jobs["a"].site == FRA
    assert w.journal.steps(rid)[-1].site == FRA


def _a_running_b_ready(tmp: Path, budget: float) -> tuple[World, Executor, str]:
    """``a`` (8 GPUs, 2 h) has run for 1.9 h on-prem and holds all its GPUs; ``b`` (8 GPUs,
    0.5 h) is ready: its predicted wait is a's 0.1 h left."""
    pipe = pipeline(*(job(n, inputs=["notes"], outputs={"out": 1}, gpu_types={GPU: h},
                          resources={"gpus": 8}) for n, h in (("a", 2.0), ("b", 0.5))),
                    datasets=(NOTES,))
    w = World(tmp, pipe, free=8, budget=budget)
    first, rid = w.start(max_concurrency=1)  # only a is asked, and it starts on-prem
    first.step(rid)
    assert w.journal.steps(rid)[-1].state == "RUNNING"
    w.wall[0] += 1.9 * 3600
    w.onprem.capacity = GpuCapacity(total=8, free=0)
    return w, w.executor(max_concurrency=8), rid


def test_full_on_prem_waits_within_the_budget(tmp_path: Path) -> None:
    w, ex, rid = _a_running_b_ready(tmp_path, budget=50.0)
    for _ in range(3):
        ex.step(rid)
    assert w.decisions(rid) == [("a", "onprem", ONPREM), ("b", "wait", None)]  # once
    assert w.submitted() == {ONPREM: [f"placer-{rid}-a-1"]}
    assert ex.step(rid).jobs["b"].state == "WAITING"
    e = w.journal.events(rid, "strategy_decision")[-1]
    assert "on-prem is full (0/8 GPUs free" in e.data["reason"] and e.data["wait_h"] > 0
    # a ends; the pool has room: b starts on-prem, the queue's own move
    w.onprem.capacity = GpuCapacity(total=8, free=8)
    ex.step(rid)
    assert w.decisions(rid)[-1] == ("b", "onprem", ONPREM)
    assert w.submitted() == {ONPREM: [f"placer-{rid}-a-1", f"placer-{rid}-b-1"]}


def test_full_on_prem_bursts_when_the_wait_is_past_the_budget(tmp_path: Path) -> None:
    w, ex, rid = _a_running_b_ready(tmp_path, budget=0.0)
    ex.step(rid)
    assert w.decisions(rid) == [("a", "onprem", ONPREM), ("b", "burst", FRA)]
    assert w.submitted()[FRA] == [f"placer-{rid}-b-1"]


def test_a_waiting_job_is_asked_again_when_its_budget_runs_out(tmp_path: Path) -> None:
    w, ex, rid = _a_running_b_ready(tmp_path, budget=50.0)
    ex.step(rid)
    assert w.decisions(rid)[-1] == ("b", "wait", None)
    # Far past a's estimated end and b's waiting budget, the pool is still full (a overran):
    # asked again, waiting no longer pays.
    w.wall[0] += 400 * 3600
    ex.step(rid)
    assert w.decisions(rid)[-1] == ("b", "burst", FRA)
    assert w.journal.events(rid, "strategy_decision")[-1].data["asked"] == "on_timeout"


class Forbidden(Strategy):
    """A strategy that sends every job to aws-va, whatever the policies say."""

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        return Cloud(VA)


def test_a_strategy_that_proposes_a_forbidden_site_is_refused_loudly(tmp_path: Path) -> None:
    w = World(tmp_path, work("a"), free=0, strategy=Forbidden)
    ex, rid = w.start()
    st = ex.step(rid)
    assert st.jobs["a"].state == "STUCK"
    assert "refused to run a on aws-va" in (st.jobs["a"].reason or "")
    assert w.submitted() == {}  # nothing anywhere, least of all in the US
    assert w.decisions(rid) == [("a", "burst", VA)]  # the proposal is on record
    assert all(p.plan.jobs["a"].site != VA for p in w.journal.plans(rid))


class OnPremAlways(Strategy):
    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        return OnPrem()


def test_a_backend_that_cannot_report_its_gpus_is_refused_not_guessed(tmp_path: Path) -> None:
    w = World(tmp_path, work("a"), strategy=OnPremAlways)
    w.fakes[ONPREM] = FakeComputeBackend(ONPREM)
    with pytest.raises(ExecutionError, match="cannot report its free GPUs"):
        w.start()
    assert w.submitted() == {}


def test_without_a_strategy_the_plan_is_followed_and_nothing_is_asked(tmp_path: Path) -> None:
    w = World(tmp_path, work("a"), free=0)
    _, rid = w.start(strategy=None)
    assert w.decisions(rid) == []
    assert w.onprem.asked == 0
    plan = w.journal.plans(rid)[0].plan
    assert list(w.submitted()) == [plan.jobs["a"].site]


# -- the view ------------------------------------------------------------------------------------


def _view(**kw: Any) -> LiveView:
    sites = resolve_inventory(inventory())
    onprem = next(s for s in sites if s.kind == "onprem")
    cloud = [s for s in sites if s.kind == "cloud"]
    pipe = work("a")
    reqs = job_requests(pipe, {"a": GPU})
    allowed = allowed_by_policy(evaluate(pipe, sites, policies()), reqs, onprem.name,
                                [s.name for s in cloud])
    kw.setdefault("capacity", GpuCapacity(total=8, free=6))
    return LiveView(now_h=10.0, onprem=onprem, cloud=cloud, gpu=GPU, allowed=allowed,
                    requests=reqs, datasets={}, **kw)


def test_the_live_view_prices_as_the_planner_and_fails_closed() -> None:
    v = _view(reserved=2)
    assert isinstance(v, CapacityReporter) is False
    sites = {s.name: s for s in resolve_inventory(inventory())}
    want = cheapest_quote(FRA, "aws:eu-central-1", price_offers(sites[FRA].offers, gpu=GPU), 8,
                          False)
    assert v.quote(FRA, 8, False) == want
    assert v.quote(FRA, 8, True) is None and v.quotes(8, True) == ()  # no spot live
    assert not v.spot_available(FRA)
    assert v.free_gpus == 4 and v.onprem_gpus == 8  # reported 6 free, 2 just submitted
    req = job_requests(work("a"), {"a": GPU})[0]
    assert v.fits_now(req) is False
    # every residency mode is the policy evaluation: "none" would have allowed aws-va
    assert v.allowed(req, "none") == v.allowed(req, "policy") == (True, (FRA,))
    assert v.allowed(JobRequest(id=99, name="x", gpus=1, estimate_h=1), "policy") == (False, ())
    assert not v.may_store("notes", "aws:eu-central-1")
    assert math.isinf(v.storage_usd_per_gb_h)


def test_a_strategy_step_remembers_a_waiting_job_and_starts_it_when_the_pool_has_room() -> None:
    class Waits(Strategy):
        def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
            return OnPrem(wait_h=1.0, priority=3.0)

    reqs = job_requests(work("a"), {"a": GPU})
    step = StrategyStep(Waits(), reqs)
    full = _view(capacity=GpuCapacity(total=8, free=0))
    d = step.decide("a", lambda: full)
    assert (d.kind, d.site) == ("wait", None) and step.waiting == {"a": (3.0, 1)}
    assert step.changed(d) and not step.changed(step.decide("a", lambda: full))
    d = step.decide("a", lambda: _view(capacity=GpuCapacity(total=8, free=8)))
    assert (d.kind, d.site, d.facts["asked"]) == ("onprem", ONPREM, "queue")
    assert step.waiting == {}
