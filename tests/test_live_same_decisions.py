"""Same state, same decisions: the simulator's view and the live view (issue 13, item 1).

One world (an inventory, the EEA policies, a stream of jobs reading EU and public data) is
replayed by the simulator under placer's strategy. At every decision the same state is also
presented through :class:`placer.live.LiveView`, built the way the executor builds it: the
on-prem pool's GPUs as a fake cluster reports them, the queue and the running jobs' estimated
ends as the journal lists them, and everything else (quotes, provisioning, links, eligibility)
computed from the inventory and the policies by the live view's own code (placer.pricing,
placer.policy.evaluate with lineage) rather than by the simulator's cloud model and
eligibility tables. A second instance of the strategy decides from the live view; both must
decide the same, every time.

Two things live clusters do not have are off on both sides, as the strategy's own parameters:
spot (the executor asks no cloud for spot) and copies of datasets (it carries none out).
"""

from __future__ import annotations

from typing import Any

import placer
from placer.backends import GpuCapacity
from placer.catalog import resolve_inventory
from placer.live import LiveView, allowed_by_policy, job_requests
from placer.models import Dataset, Inventory, Pipeline
from placer.online import ClusterView, DatasetInfo, Decision, JobRequest, StopReason, Strategy
from placer.policy import evaluate
from placer.sim.cloud import catalog_cloud
from placer.sim.engine import OnPremConfig, simulate
from placer.sim.jobs import SimJob, Workload
from placer.sim.placer_strategy import PlacerStrategy
from placer.sim.residency import Eligibility
from tests.builders import job
from tests.executor.world import ROOT

GPU = "A100-40GB"
ONPREM = "fra-dc"


def inventory() -> Inventory:
    return Inventory.model_validate({"name": "hybrid", "sites": {
        ONPREM: {"location": "onprem:fra-dc1", "country": "DE",
                 "pools": [{"gpu": GPU, "count": 8, "cost_per_gpu_hour": "$1.0"}]},
        "aws-fra": {"kind": "cloud", "location": "aws:eu-central-1", "provisioning": "0h"},
        "aws-va": {"kind": "cloud", "location": "aws:us-east-1", "provisioning": "0h"},
        "gcp-nl": {"kind": "cloud", "location": "gcp:europe-west4", "provisioning": "0h"},
    }})


DATASETS = (
    Dataset(name="notes", uri="s3://eu/notes", size=40, location="onprem:fra-dc1",
            tags={"residency": "EU"}),
    Dataset(name="web", uri="s3://us/web", size=200, location="aws:us-east-1",
            tags={"residency": "none"}),
)

# (GPUs, estimate h, reads, arrival h): a burst of work that fills the 8-GPU pool and queues
SPECS: tuple[tuple[int, float, tuple[str, ...], float], ...] = (
    (8, 2.0, ("notes",), 0.0), (4, 1.0, ("web",), 0.1), (4, 3.0, ("notes",), 0.2),
    (2, 0.5, (), 0.3), (8, 1.5, ("notes",), 0.4), (2, 4.0, ("web",), 0.5),
    (4, 0.7, ("notes",), 0.6), (8, 2.5, (), 0.8), (1, 0.3, ("notes",), 1.0),
    (4, 1.2, ("web",), 1.1), (2, 2.0, ("notes",), 1.3), (8, 0.8, ("notes",), 1.6),
    (4, 1.8, (), 2.0), (2, 1.0, ("web",), 2.2), (8, 3.0, ("notes",), 2.4),
)


def world() -> tuple[Workload, Pipeline]:
    datasets = {d.name: DatasetInfo(d.name, d.location or "", d.size, dict(d.tags))
                for d in DATASETS}
    jobs = tuple(SimJob(id=i, name=f"j{i}", arrival_h=t, runtime_h=h, gpus=g, estimate_h=h,
                        reads=reads, spot_ok=False)
                 for i, (g, h, reads, t) in enumerate(SPECS))
    pipe = Pipeline(name="stream", datasets=DATASETS, jobs=tuple(
        job(f"j{i}", inputs=list(reads), gpu_types={GPU: h}, resources={"gpus": g})
        for i, (g, h, reads, _) in enumerate(SPECS)))
    return Workload("stream", jobs, datasets), pipe


class Twin(Strategy):
    """Decides with placer's strategy on the simulator's view; a second instance decides
    from the live view of the same state, and every pair of decisions is kept."""

    queue = "ooo"
    residency = "policy"
    fit = "best"

    def __init__(self, pipe: Pipeline, budget: float) -> None:
        self.sim_side = PlacerStrategy(budget, spot=False, replicate=False)
        self.live_side = PlacerStrategy(budget, spot=False, replicate=False)
        self.name = self.sim_side.name
        inv = inventory()
        self.sites = resolve_inventory(inv)
        self.onprem = next(s for s in self.sites if s.kind == "onprem")
        self.cloud = [s for s in self.sites if s.kind == "cloud"]
        self.requests = job_requests(pipe, {j.name: GPU for j in pipe.jobs})
        self.allowed = allowed_by_policy(
            evaluate(pipe, self.sites, policies()), self.requests, ONPREM,
            [s.name for s in self.cloud])
        self.datasets = {d.name: DatasetInfo(d.name, d.location or "", d.size, dict(d.tags))
                         for d in pipe.datasets}
        self.network = inv.network
        self.pairs: list[tuple[str, int, Decision, Decision]] = []

    def live(self, view: ClusterView) -> LiveView:
        """The live view of the simulator's state: what the cluster and the journal say."""
        capacity = GpuCapacity(total=view.onprem_gpus, free=view.free_gpus)  # the fake cluster
        queued = [q for qs in view.queued_by_gpus().values() for q in qs]  # the journal's
        return LiveView(now_h=view.now, onprem=self.onprem, capacity=capacity, cloud=self.cloud,
                        gpu=GPU, allowed=self.allowed, requests=self.requests, queued=queued,
                        running=list(view.running_onprem()), datasets=self.datasets,
                        network=self.network)

    def start(self, view: ClusterView, jobs: tuple[JobRequest, ...]) -> None:
        self.sim_side.start(view, jobs)
        self.live_side.start(self.live(view), jobs)

    def _both(self, what: str, job: JobRequest, view: ClusterView, *args: Any) -> Decision:
        a = getattr(self.sim_side, what)(job, view, *args)
        b = getattr(self.live_side, what)(job, self.live(view), *args)
        self.pairs.append((what, job.id, a, b))
        return a  # type: ignore[no-any-return]

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        return self._both("on_ready", job, view)

    def on_timeout(self, job: JobRequest, view: ClusterView) -> Decision:
        return self._both("on_timeout", job, view)

    def on_cloud_stopped(self, job: JobRequest, view: ClusterView, site: str, spot: bool,
                         reason: StopReason) -> Decision:
        return self._both("on_cloud_stopped", job, view, site, spot, reason)


def policies() -> placer.PolicySet:
    return placer.load_policies(ROOT / "policies" / "locations.yaml",
                                ROOT / "policies" / "eea-residency.yaml")


def _replay(budget: float) -> Twin:
    workload, pipe = world()
    twin = Twin(pipe, budget)
    sites = resolve_inventory(inventory())
    cloud = catalog_cloud(sites, gpu=GPU, inventory=inventory(), spot_traces={},
                          provisioning="zero")
    onprem = OnPremConfig(site=ONPREM, location="onprem:fra-dc1", nodes=1, gpus_per_node=8)
    elig = Eligibility.from_policies(workload, sites, ONPREM, policies())
    simulate(workload, twin, onprem=onprem, cloud=cloud, eligibility=elig)
    return twin


def test_the_simulator_and_the_live_view_make_the_same_decisions() -> None:
    seen: set[tuple[str, str]] = set()
    for budget in (0.0, 0.5, 5.0):
        twin = _replay(budget)
        assert len(twin.pairs) >= len(SPECS)
        for what, jid, sim, live in twin.pairs:
            assert sim == live, f"budget {budget}, {what} j{jid}: sim {sim}, live {live}"
            site = getattr(sim, "site", "on-prem")
            seen.add((what, site))
            if "notes" in SPECS[jid][2]:  # EU data: the EEA only, on both sides
                assert site != "aws-va"
    # the state exercises every kind of decision: on-prem, a burst to each allowed region,
    # and a waiting job asked again when its budget ran out
    assert {("on_ready", "on-prem"), ("on_ready", "gcp-nl"), ("on_ready", "aws-va"),
            ("on_timeout", "gcp-nl")} <= seen, seen
