"""Issue 13, item 1, end to end: the strategy step on two real Ray clusters (token auth on).

The "on-prem" cluster has 8 GPUs (its free ones read from Ray's own report, through the
backend's CapacityReporter); the "cloud" one stands for a cloud site. A job bursts to the
cloud when the on-prem cluster is full and the predicted wait is past the job's waiting budget,
and not otherwise: it runs on-prem at once when there is room, and waits for on-prem when the
wait is within its budget.

Estimates are hours while the jobs here sleep seconds, so one test moves the executor's wall
clock (and the journal's) forward: the running job then "has run" most of its estimate.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import placer
from placer.backends import CapacityReporter, PrefixLayout, compute_backends_for
from placer.catalog import resolve_inventory
from placer.executor import Executor, RetryPolicy
from placer.journal import Journal
from placer.models import Inventory, Job, Offer, Pipeline
from placer.policy import PolicySet
from placer.sim.registry import make_strategy
from tests.backends.ray_clusters import GPU, ClusterPair

pytest.importorskip("placer_ray")

ONPREM, CLOUD = "fra-dc", "aws-eu"


def _inventory(pair: ClusterPair) -> Inventory:
    onprem = pair.onprem.site(ONPREM, kind="onprem")
    cloud = pair.cloud.site(CLOUD, kind="cloud").model_copy(update={"offers": (
        Offer(gpu=GPU, gpus_per_node=8, on_demand=40.0, instance_type="test-8gpu"),)})
    return Inventory(name="e2e-strategy", sites=(onprem, cloud))


def _job(name: str, estimate_h: float, sleep_s: float) -> Job:
    return Job(name=name, command=f"{sys.executable} -c 'import time; time.sleep({sleep_s})'",
               gpu_types={GPU: estimate_h}, resources={"gpus": 8})


class Wall:
    """The wall clock, movable forward (for the journal and the strategy's view alike)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _executor(inventory: Inventory, journal: Journal, wall: Callable[[], float],
              budget: float, **kw: Any) -> Executor:
    sites = resolve_inventory(inventory)
    layout = PrefixLayout({s.location.key: f"file:///tmp/placer-e2e/{s.name}" for s in sites})
    return Executor(journal, compute_backends_for(sites), layout=layout, poll_interval_s=0.5,
                    retry=RetryPolicy(max_attempts=1),
                    strategy=lambda: make_strategy("placer", budget), wall_clock=wall, **kw)


def _until(cond: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _free(inventory: Inventory) -> int:
    backend = compute_backends_for(resolve_inventory(inventory))[ONPREM]
    assert isinstance(backend, CapacityReporter)
    for _ in range(120):  # the monitor's first report comes a few seconds after a restart
        try:
            return backend.gpus().free
        except placer.PlacerError:
            time.sleep(0.5)
    return backend.gpus().free


def _decisions(journal: Journal, rid: str) -> list[tuple[str | None, str, str | None]]:
    return [(e.job, e.data["decision"], e.data["site"])
            for e in journal.events(rid, "strategy_decision")]


def _ray_jobs(pair: ClusterPair, rid: str) -> dict[str, list[str]]:
    return {name: sorted(i.submission_id for i in getattr(pair, name).client().list_jobs()
                         if (i.submission_id or "").startswith(f"placer-{rid}-"))
            for name in ("onprem", "cloud")}


def _drive(ex: Executor, rid: str, timeout_s: float = 180.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        st = ex.step(rid)
        if st.done or time.monotonic() > deadline:
            return str(st.state)
        time.sleep(0.5)


def test_a_full_on_prem_cluster_with_no_end_in_sight_bursts_to_the_cloud(
        ray_clusters: ClusterPair, tmp_path: Path) -> None:
    pair = ray_clusters
    inventory = _inventory(pair)
    _until(lambda: _free(inventory) == 8, "the on-prem cluster to be idle")
    # Work placer did not submit holds every on-prem GPU: no end is known for it.
    client = pair.onprem.client()
    holder = client.submit_job(entrypoint="sleep 300", entrypoint_num_gpus=8)
    try:
        _until(lambda: _free(inventory) == 0, "the outside job to hold the GPUs")
        pipe = Pipeline(name="burst", jobs=(_job("train", 0.5, 1),))
        plan = placer.plan(pipe, inventory, PolicySet(name="none"))
        journal = Journal(tmp_path / "journal.db")
        ex = _executor(inventory, journal, Wall(), budget=0.5)
        rid = ex.start(plan, pipeline=pipe, inventory=inventory).id
        assert _drive(ex, rid) == "SUCCEEDED"
        assert _decisions(journal, rid) == [("train", "burst", CLOUD)]
        assert _ray_jobs(pair, rid) == {"onprem": [], "cloud": [f"placer-{rid}-train-1"]}
        reason = journal.events(rid, "strategy_decision")[0].data["reason"]
        assert "on-prem is full (0/8 GPUs free" in reason
    finally:
        client.stop_job(holder)
        _until(lambda: _free(inventory) == 8, "the outside job to let go")


@pytest.mark.parametrize(("budget", "waits"), [(50.0, True), (0.0, False)])
def test_a_job_waits_for_on_prem_within_its_budget_and_bursts_past_it(
        ray_clusters: ClusterPair, tmp_path: Path, budget: float, waits: bool) -> None:
    """``a`` (8 GPUs, 1 h estimate) runs on-prem; ``b`` (8 GPUs, 0.1 h) is ready once a has
    "run" 55 minutes: its predicted wait is the 5 minutes a has left. Within a generous
    budget it waits for on-prem (nothing submitted), then runs there when a ends; with no
    budget it bursts at once."""
    pair = ray_clusters
    inventory = _inventory(pair)
    _until(lambda: _free(inventory) == 8, "the on-prem cluster to be idle")
    # a sleeps long enough for Ray's status report (seconds behind, more on a loaded
    # machine) to show its GPUs held before it ends.
    pipe = Pipeline(name="wait-or-burst", jobs=(_job("a", 1.0, 45), _job("b", 0.1, 1)))
    plan = placer.plan(pipe, inventory, PolicySet(name="none"))
    wall = Wall()
    journal = Journal(tmp_path / "journal.db", clock=wall)
    first = _executor(inventory, journal, wall, budget, max_concurrency=1)  # a only
    rid = first.start(plan, pipeline=pipe, inventory=inventory).id
    _until(lambda: first.step(rid).jobs["a"].state == "RUNNING", "a to run")
    _until(lambda: _free(inventory) == 0, "Ray to report a's GPUs held")
    wall.offset = 55 * 60
    ex = _executor(inventory, journal, wall, budget)
    ex.step(rid)
    if waits:
        assert _decisions(journal, rid) == [("a", "onprem", ONPREM), ("b", "wait", None)]
        assert _ray_jobs(pair, rid) == {"onprem": [f"placer-{rid}-a-1"], "cloud": []}
        assert _drive(ex, rid) == "SUCCEEDED"
        assert _decisions(journal, rid)[-1] == ("b", "onprem", ONPREM)
        assert _ray_jobs(pair, rid) == {"onprem": [f"placer-{rid}-a-1", f"placer-{rid}-b-1"],
                                        "cloud": []}
    else:
        assert _decisions(journal, rid) == [("a", "onprem", ONPREM), ("b", "burst", CLOUD)]
        assert _drive(ex, rid) == "SUCCEEDED"
        assert _ray_jobs(pair, rid) == {"onprem": [f"placer-{rid}-a-1"],
                                        "cloud": [f"placer-{rid}-b-1"]}
