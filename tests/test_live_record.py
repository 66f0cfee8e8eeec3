"""What a live strategy decision records, where, and what a restarted controller remembers
(issue 13, item 1: "records each decision with its reason (predicted wait, cost of bursting,
policy verdicts)").

* the reason's figures are structured fields of the ``strategy_decision`` event: the
  strategy's own predicted wait and allowance, the chosen (or cheapest allowed) cloud option
  with its egress, and the policy verdicts with the rules that deny each site;
* every decision is also a ``strategy`` record of the audit decision log, under the run's
  policy hash and the plan that placed the job, and a strategy's move is a ``replan`` record;
* a job's wait is rebuilt from the journal: a controller (or executor) started again counts
  the wait from when it began, and bursts once the whole wait is past the budget.

The world is tests/test_live.py's: on-prem fra-dc (8 GPUs, a fake cluster reporting them),
aws-fra (EEA) and aws-va (US, never allowed: the jobs read EU data).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

import placer
from placer import decisions
from placer.backends import GpuCapacity, PrefixLayout
from placer.catalog import resolve_inventory
from placer.controller import Controller
from placer.live import LiveView, StrategyStep, allowed_by_policy, job_requests
from placer.models import Dataset
from placer.online import ClusterView, DatasetInfo, Decision, JobRequest, OnPrem, Strategy
from placer.policy import evaluate
from placer.testing import FakeStorageResolver
from tests.builders import job, pipeline
from tests.test_live import (
    FRA,
    GPU,
    ONPREM,
    ROOTS,
    VA,
    World,
    _a_running_b_ready,
    inventory,
    policies,
    work,
)

EEA_RULE = "eu-data-stays-in-eea"


def _events(w: World, rid: str) -> list[Any]:
    return w.journal.events(rid, "strategy_decision")


# -- item 1: the reason's figures, as fields -------------------------------------------------------


def test_a_wait_records_the_predicted_wait_the_burst_cost_and_the_verdicts(
        tmp_path: Path) -> None:
    w, ex, rid = _a_running_b_ready(tmp_path, budget=50.0)
    ex.step(rid)
    [_, b] = _events(w, rid)
    assert (b.job, b.data["decision"]) == ("b", "wait")
    # placer's own prediction: a (2 h) started 1.9 h ago and holds the pool for 0.1 h more
    assert b.data["predicted_wait_h"] == pytest.approx(0.1, abs=1e-3)
    assert b.data["allowance_h"] > b.data["predicted_wait_h"]
    assert b.data["waited_h"] == 0.0
    # the cheapest allowed burst: aws-fra (aws-va is denied), priced as the planner prices it
    sites = {s.name: s for s in resolve_inventory(inventory())}
    quote = placer.pricing.cheapest_quote(
        FRA, "aws:eu-central-1", placer.pricing.price_offers(sites[FRA].offers, gpu=GPU), 8,
        False)
    assert quote is not None
    burst = b.data["burst"]
    assert burst["site"] == FRA and burst["instance"] == quote.instance
    assert burst["compute_usd"] == pytest.approx(
        quote.bill_usd(sites[FRA].provisioning_h, 0.5), abs=1e-3)
    assert burst["usd"] == pytest.approx(burst["compute_usd"] + burst["egress_usd"], abs=1e-3)
    assert b.data["policy"] == {"allowed": [ONPREM, FRA], "denied": {VA: [EEA_RULE]},
                                "unavailable": [], "held": []}
    reason = b.data["reason"]
    assert "placer(b=50) predicts a wait of 6 min on-prem" in reason
    assert f"bursting to {FRA} costs about ${burst['usd']:,.2f}" in reason
    assert f"deny {VA} (rule {EEA_RULE})" in reason


def test_a_burst_records_the_chosen_site_with_its_egress() -> None:
    """Inputs in the US (public data) and the pool full with no known release: placer bursts
    to the cheapest option with the egress counted; the record prices that very option."""
    web = Dataset(name="web", uri="mem://va/web", size=2000, location="aws:us-east-1",
                  tags={"residency": "none"})
    pipe = pipeline(job("a", inputs=["web"], gpu_types={GPU: 2.0}, resources={"gpus": 8}),
                    datasets=(web,))
    sites = resolve_inventory(inventory())
    onprem = next(s for s in sites if s.kind == "onprem")
    cloud = [s for s in sites if s.kind == "cloud"]
    reqs = job_requests(pipe, {"a": GPU})
    elig = evaluate(pipe, sites, policies())
    allowed = allowed_by_policy(elig, reqs, ONPREM, [s.name for s in cloud])
    view = LiveView(now_h=10.0, onprem=onprem, capacity=GpuCapacity(total=8, free=0),
                    cloud=cloud, gpu=GPU, allowed=allowed, requests=reqs,
                    datasets={"web": DatasetInfo("web", "aws:us-east-1", 2000.0, {})})
    from placer.sim.registry import make_strategy

    step = StrategyStep(make_strategy("placer", 0.5), reqs, eligibility=elig)
    d = step.decide("a", lambda: view)
    assert d.kind == "burst"
    burst = d.facts["burst"]
    assert isinstance(burst, dict) and burst["site"] == d.site
    egress, _ = view.transfer(reqs[0], view.location(str(d.site)))
    assert burst["egress_usd"] == pytest.approx(egress, abs=1e-3)
    assert d.facts["burst_usd"] == burst["usd"]
    assert d.facts["wait_unbounded"] is True and d.facts["predicted_wait_h"] is None
    # reading 2 TB in the US: egress decides (bursting to aws-fra would pay it on top)
    other = FRA if d.site == VA else VA
    q = view.quote(other, 8, False)
    assert q is not None
    assert burst["usd"] <= q.bill_usd(view.provisioning_h(other, False), 2.0) + \
        view.transfer(reqs[0], view.location(other))[0]
    assert "predicts no release of enough GPUs on-prem" in d.reason


# -- item 2: the audit decision log ----------------------------------------------------------------


def _sha(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_every_strategy_decision_is_in_the_decision_log(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    w, ex, rid = _a_running_b_ready(tmp_path, budget=50.0)
    ex.decision_log = log
    ex.step(rid)  # b waits
    w.wall[0] += 400 * 3600  # a overran far past b's budget: b bursts
    ex.step(rid)
    events = _events(w, rid)
    assert [(e.job, e.data["decision"]) for e in events] == [
        ("a", "onprem"), ("b", "wait"), ("b", "burst")]
    records = [r for _, r in decisions.read(log)]
    assert decisions.verify(log).ok
    # a's decision was made by the first executor, which had no log: b's two, and the move
    assert [(r.kind, r.strategy.job if r.strategy else None) for r in records] == [
        ("strategy", "b"), ("strategy", "b"), ("replan", None)]
    run = w.journal.run(rid)
    plans = w.journal.plans(rid)
    for rec, ev in zip(records[:2], events[1:], strict=True):
        assert rec.run == rid and rec.policy.hash == run.policy_hash
        choice = rec.strategy
        assert choice is not None
        assert (choice.decision, choice.site, choice.reason) == (
            ev.data["decision"], ev.data["site"], ev.data["reason"])
        assert choice.predicted_wait_h == ev.data["predicted_wait_h"]
        assert choice.burst == ev.data["burst"] and choice.policy == ev.data["policy"]
        assert choice.facts["asked"] == ev.data["asked"]
        # under the plan that placed b when it was decided: the submitted one
        assert choice.plan_seq == 0
        assert rec.plan_sha256 == _sha(plans[0].plan.model_dump(mode="json"))
        assert rec.time.timestamp() == pytest.approx(ev.ts)
    replan = records[2]
    assert replan.run == rid and replan.inputs.pinned == {"a": ONPREM, "b": FRA}
    assert replan.plan_sha256 == _sha(plans[-1].plan.model_dump(mode="json"))
    assert replan.plan["jobs"]["b"]["site"] == FRA


def test_policy_diff_does_not_redecide_live_decisions(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    _, ex, rid = _a_running_b_ready(tmp_path, budget=0.0)
    ex.decision_log = log
    ex.step(rid)  # b bursts at once, and is moved
    assert [r.kind for _, r in decisions.read(log)] == ["strategy", "replan"]
    looser = placer.load_policies(Path(__file__).parent.parent / "policies" / "locations.yaml")
    result = decisions.diff(log, policies(), looser)
    assert result.records == 2 and result.redecided == 1
    assert any("1 online-strategy decision(s) were not decided again" in n
               for n in result.notes)


def test_a_decision_log_that_cannot_be_written_stops_no_decision(tmp_path: Path) -> None:
    (tmp_path / "not-a-log").mkdir()
    w, ex, rid = _a_running_b_ready(tmp_path, budget=0.0)
    ex.decision_log = tmp_path / "not-a-log"  # a folder: cannot be opened for appending
    ex.step(rid)
    assert [(e.job, e.data["decision"]) for e in _events(w, rid)][-1] == ("b", "burst")
    assert w.submitted()[FRA] == [f"placer-{rid}-b-1"]
    failed = w.journal.events(rid, "decision_log_failed")
    assert len(failed) == 2 and "cannot open it" in failed[0].data["error"]


# -- item 3: the wait survives a restart -----------------------------------------------------------


class WaitsAnHour(Strategy):
    """Compute-Wait's shape: wait up to an hour for the pool, then burst."""

    residency = "policy"

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        return OnPrem(wait_h=1.0, priority=7.0)


def _controller(w: World) -> Controller:
    """A controller for the world's journal: its backends are the world's fakes."""
    return Controller(w.journal, poll_s=1.0, idle_exit_s=0, clock=w.clock, sleep=w.clock.sleep,
                      strategy=WaitsAnHour, backends=w.fakes, layout=PrefixLayout(ROOTS),
                      storage=FakeStorageResolver.from_roots(ROOTS),
                      wall_clock=lambda: w.wall[0])


def test_a_restarted_controller_counts_the_wait_from_when_it_began(tmp_path: Path) -> None:
    w = World(tmp_path, work("b"), free=0, strategy=WaitsAnHour)
    _, rid = w.start()  # the pool is full: b waits (its first tick, by submit)
    assert [(e.data["decision"], e.data["asked"]) for e in _events(w, rid)] == [
        ("wait", "on_ready")]
    began = w.wall[0]
    for minutes in (36, 48):  # a controller started (again) 36 min, then 48 min, later
        w.wall[0] = began + minutes * 60
        with _controller(w) as ctl:
            ctl.tick()
        assert len(_events(w, rid)) == 1  # still the one wait: nothing new was decided
        assert w.submitted() == {}
    # 66 min after b began to wait, a third controller: an hour has gone by since b was
    # queued (not since this controller started), so the strategy is asked again and bursts
    w.wall[0] = began + 66 * 60
    with _controller(w) as ctl:
        ctl.tick()
    last = _events(w, rid)[-1]
    assert (last.data["decision"], last.data["site"], last.data["asked"]) == (
        "burst", FRA, "on_timeout")
    assert last.data["waited_h"] == pytest.approx(1.1, abs=1e-3)
    assert "after waiting 1.10 h" in last.data["reason"]
    assert w.submitted() == {FRA: [f"placer-{rid}-b-1"]}


def test_a_new_executor_on_the_journal_keeps_placers_wait_and_queue_place(
        tmp_path: Path) -> None:
    w, ex, rid = _a_running_b_ready(tmp_path, budget=50.0)
    ex.step(rid)
    wait = _events(w, rid)[-1]
    assert wait.data["decision"] == "wait"
    began = w.wall[0]
    # a new executor (a controller restarted) half-way through b's recheck: b is still
    # queued, at the priority placer gave it, since it began to wait
    w.wall[0] = began + 0.05 * 3600
    again = w.executor()
    again.step(rid)
    step = again._steps[rid].step
    assert step.waiting == {"b": (wait.data["priority"], 1)}
    assert step.waiting_since("b") == pytest.approx(began / 3600)
    assert len(_events(w, rid)) == 2  # the wait is not recorded twice
    # far later, a third executor: asked again (on_timeout, not a fresh on_ready), with the
    # whole wait counted, and bursting: waiting no longer pays
    w.wall[0] = began + 400 * 3600
    third = w.executor()
    third.step(rid)
    last = _events(w, rid)[-1]
    assert (last.data["decision"], last.data["site"], last.data["asked"]) == (
        "burst", FRA, "on_timeout")
    assert last.data["waited_h"] == pytest.approx(400.0, abs=1e-3)


def test_a_job_that_ran_is_not_taken_for_a_waiting_one_after_a_restart(tmp_path: Path) -> None:
    w, ex, rid = _a_running_b_ready(tmp_path, budget=50.0)
    ex.step(rid)  # b waits
    w.onprem.capacity = GpuCapacity(total=8, free=8)
    ex.step(rid)  # a ended: b starts on-prem, after its wait
    assert [e.data["decision"] for e in _events(w, rid)] == ["onprem", "wait", "onprem"]
    again = w.executor()
    again.step(rid)
    assert again._steps.get(rid) is None or again._steps[rid].step.waiting == {}
    assert len(_events(w, rid)) == 3
