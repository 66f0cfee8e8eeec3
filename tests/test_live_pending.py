"""Work waiting on the on-prem cluster in the strategy's predicted wait (issue 13, item 1).

The cluster reports the requests it holds and has not started
(:attr:`placer.backends.GpuCapacity.pending`); those that fit no node now
(:meth:`~placer.backends.GpuCapacity.waiting`) take the next GPUs released ahead of any job
placer has not submitted. The live view queues them first: anyone else's with no known end,
placer's own pending steps (``own_pending``) once each, with their estimates. The world is
test_live's (fra-dc: 8 GPUs, here two nodes of 4; aws-fra allowed, aws-va never).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from placer.backends import GpuCapacity, NodeGpus
from placer.catalog import resolve_inventory
from placer.live import LiveView, StepDecision, StrategyStep, allowed_by_policy, job_requests
from placer.online import DatasetInfo, JobRequest
from placer.policy import evaluate
from placer.sim.registry import make_strategy
from tests.builders import job, pipeline
from tests.test_live import FRA, GPU, NOTES, ONPREM, World, inventory, policies

SITES = resolve_inventory(inventory())
ON = next(s for s in SITES if s.kind == "onprem")
CLOUD = [s for s in SITES if s.kind == "cloud"]
# a and c are short; b's 8 h keeps the tail bound from capping a's allowance.
PIPE = pipeline(*(job(n, inputs=["notes"], outputs={"out": 1}, gpu_types={GPU: h},
                      resources={"gpus": g}) for n, g, h in (("a", 4, 0.5), ("b", 4, 8.0),
                                                            ("c", 2, 0.5))),
                datasets=(NOTES,))
REQS = job_requests(PIPE, dict.fromkeys(("a", "b", "c"), GPU))
BY_NAME = {r.name: r for r in REQS}
NOW = 10.0
# Placer's own running steps: 4 GPUs free at NOW + 1 h, the other 4 at NOW + 3 h.
RUNNING = [(NOW + 1.0, 4), (NOW + 3.0, 4)]
OWN = JobRequest(id=7, name="own", gpus=4, estimate_h=0.5)  # one of placer's, pending


def cluster(free_a: int, free_b: int, *pending: tuple[int, ...]) -> GpuCapacity:
    return GpuCapacity(total=8, free=free_a + free_b, nodes=(NodeGpus("n-a", 4, free_a),
                                                              NodeGpus("n-b", 4, free_b)),
                       pending=pending)


def view(capacity: GpuCapacity, **kw: Any) -> LiveView:
    kw.setdefault("running", RUNNING)
    return LiveView(
        now_h=NOW, onprem=ON, cloud=CLOUD, gpu=GPU, capacity=capacity, requests=REQS,
        allowed=allowed_by_policy(evaluate(PIPE, SITES, policies()), REQS, ON.name,
                                  [s.name for s in CLOUD]),
        datasets={"notes": DatasetInfo("notes", NOTES.location or "", NOTES.size,
                                       dict(NOTES.tags))}, **kw)


def decide(v: LiveView, name: str = "a", budget: float = 5.0) -> StepDecision:
    """Placer's strategy (budget 5: a allows about 2.8 h of waiting) on ready job ``name``."""
    return StrategyStep(make_strategy("placer", budget), REQS).decide(name, lambda: v)


def wait(v: LiveView, name: str = "a") -> float:
    return make_strategy("placer", 5.0).outlook(BY_NAME[name], v).wait_h or 0.0


def test_outside_demand_lengthens_the_wait_and_bursts_past_the_budget() -> None:
    alone = decide(view(cluster(0, 0)))
    assert (alone.kind, alone.facts["predicted_wait_h"]) == ("wait", 1.0)  # the 1 h release
    assert "outside_waiting" not in alone.facts
    assert alone.reason.startswith("on-prem is full (0/8 GPUs free, 0 queued by placer); ")
    assert "outside work" not in alone.reason
    allowance = alone.facts["allowance_h"]
    assert isinstance(allowance, float) and 1.0 < allowance < 3.0

    # Someone else's 4-GPU request waits on the cluster: it takes the 1 h release for good.
    behind = decide(view(cluster(0, 0, (4,))))
    assert (behind.kind, behind.site) == ("burst", FRA)
    assert behind.facts["predicted_wait_h"] == 3.0 and behind.facts["allowance_h"] == allowance
    assert behind.facts["outside_waiting"] == {"requests": 1, "gpus": 4}
    assert behind.facts["queued"] == 1
    assert "outside work is waiting ahead (1 request, 4 GPUs)" in behind.reason

    # Two of them (a placement group of 2+2 counts as one request of 4) take both releases:
    # no release is known for a (fail closed: unbounded), and nothing infinite is recorded.
    never = decide(view(cluster(0, 0, (4,), (2, 2))))
    assert never.kind == "burst" and never.facts["wait_unbounded"] is True
    assert never.facts["predicted_wait_h"] is None
    assert "(2 requests, 8 GPUs)" in never.reason
    json.dumps(never.facts, allow_nan=False)
    assert math.isinf(view(cluster(0, 0, (4,))).queued_gpu_hours())


def test_a_large_enough_budget_still_waits_behind_outside_demand() -> None:
    d = decide(view(cluster(0, 0, (4,))), budget=50.0)
    assert (d.kind, d.facts["predicted_wait_h"]) == ("wait", 3.0)


def test_free_gpus_not_on_one_node_are_told_apart_from_a_full_pool() -> None:
    # 2 + 2 free (placer's two 2-GPU steps hold the rest); someone's 4-GPU request fits no
    # node: it waits, and so would a.
    v = view(cluster(2, 2, (4,)), running=[(NOW + 1.0, 2), (NOW + 3.0, 2)])
    assert v.free_gpus == 4 and v.outside_waiting == (1, 4) and not v.fits_now(BY_NAME["a"])
    d = decide(v, budget=50.0)
    assert d.reason.startswith("4 of 8 GPUs are free on-prem but not 4 on one node (0 queued "
                               "by placer), outside work is waiting ahead (1 request, 4 GPUs)")
    # The waiting request does not start on the GPUs free now (it fits no node): c (2 GPUs)
    # starts now, as the cluster would start it, and a waits for a release.
    assert v.fits_now(BY_NAME["c"]) and wait(v, "c") == 0.0
    # At the 1 h release 6 GPUs are free: the request ahead takes 4 for good, a waits for 3 h.
    assert wait(v, "a") == 3.0


def test_own_pending_steps_are_counted_once() -> None:
    # OWN is the 4-GPU request waiting on the cluster: it takes the 1 h release and ends
    # 0.5 h later, then a starts. Counted twice (as someone's and as ours) a would wait 3.5 h.
    v = view(cluster(0, 0, (4,)), own_pending=[OWN])
    assert v.outside_waiting == (0, 0) and v.queue_length() == 1
    assert [q.name for q in v.queued()] == ["own"] and v.queued_gpu_hours() == 2.0
    assert wait(v) == 1.5
    d = decide(v)
    assert d.kind == "wait" and "outside_waiting" not in d.facts and d.facts["queued"] == 1
    assert "outside work" not in d.reason
    # Unknown as ours, the same request is someone else's: it holds the release for good.
    assert wait(view(cluster(0, 0, (4,)))) == 3.0

    # Only one request per own step: a second one of the same size is someone else's.
    two = view(cluster(0, 0, (4,), (4,)), own_pending=[OWN])
    assert two.outside_waiting == (1, 4) and [q.name for q in two.queued()] == [
        "own", "(waiting on the cluster #2)"]
    # An own step of another size matches nothing: it is about to start (or has).
    other = view(cluster(0, 0, (4,)), own_pending=[JobRequest(9, "small", 2, 0.5)])
    assert other.outside_waiting == (1, 4)


def test_an_own_pending_step_that_fits_now_runs_on_its_estimate() -> None:
    # The cluster starts OWN on n-a now (its GPUs are no longer free); ours, it ends in 0.5 h.
    v = view(cluster(4, 0, (4,)), own_pending=[OWN])
    assert v.free_gpus == 0 and v.outside_waiting == (0, 0) and v.queue_length() == 0
    assert wait(v) == 0.5
    assert wait(view(cluster(4, 0, (4,)))) == 1.0  # someone's: no known end


def test_the_executor_passes_its_pending_steps_to_the_view(tmp_path: Path) -> None:
    """``x`` is submitted on-prem and stays PENDING (the cluster reports its request waiting);
    ``y`` is then asked about: ``x`` is in its queue once, as placer's own, and only a request
    beyond it is someone else's."""
    pipe = pipeline(*(job(n, inputs=["notes"], outputs={"out": 1}, gpu_types={GPU: 0.5},
                          resources={"gpus": 4}) for n in ("x", "y")), datasets=(NOTES,))
    w = World(tmp_path, pipe, free=8, budget=5.0)
    w.onprem.polls_to_start = 1000
    first, rid = w.start(max_concurrency=1)  # only x is asked: it is submitted on-prem
    first.step(rid)
    assert w.journal.steps(rid)[-1].state == "PENDING"
    w.onprem.capacity = cluster(0, 0, (4,))
    ex = w.executor(max_concurrency=8)
    ex.step(rid)
    e = w.journal.events(rid, "strategy_decision")[-1]
    assert e.job == "y" and e.data["queued"] == 1 and "outside_waiting" not in e.data

    w2 = World(tmp_path / "2", pipe, free=8, budget=5.0)
    w2.onprem.polls_to_start = 1000
    first, rid = w2.start(max_concurrency=1)
    first.step(rid)
    w2.onprem.capacity = cluster(0, 0, (4,), (4,))
    w2.executor(max_concurrency=8).step(rid)
    e = w2.journal.events(rid, "strategy_decision")[-1]
    assert e.job == "y" and e.data["queued"] == 2
    assert e.data["outside_waiting"] == {"requests": 1, "gpus": 4}
    assert "outside work is waiting ahead (1 request, 4 GPUs)" in e.data["reason"]
    assert e.data["decision"] == "burst" and e.data["wait_unbounded"] is True
    assert ONPREM in e.data["policy"]["allowed"]
