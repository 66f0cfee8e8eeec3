"""The simulator engine: determinism, conservation, packing, queue disciplines, DAG transfers,
spot preemption, quotas, and clear errors when a strategy decides the impossible.

Hand examples use a scripted strategy (every decision written down per job) so that each test
exercises the engine alone; the baselines' own decisions are tested in ``test_baselines.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pytest

from placer.catalog import default_inventory, resolve_inventory
from placer.errors import PlacerError, SimulationError
from placer.models import ResolvedSite
from placer.online import (
    Cloud,
    ClusterView,
    Decision,
    JobRequest,
    OnPrem,
    QueueMode,
    StopReason,
    Strategy,
)
from placer.pricing import PricedOffer
from placer.sim.baselines import (
    ComputeWait,
    ConstantWait,
    NoWait,
    OnPremOnly,
    SkyPilotCheapest,
    StarWait,
)
from placer.sim.cloud import (
    CloudModel,
    CloudSite,
    Provisioning,
    SpotTrace,
    catalog_cloud,
    uniform_cloud,
)
from placer.sim.engine import OnPremConfig, SimResult, simulate
from placer.sim.jobs import SimDataset, SimJob, Workload
from placer.sim.metrics import busy_gpu_hours, summarise
from placer.sim.workload import itp_trace, pipelines
from tests.sim.builders import hand_workload as _wl
from tests.sim.builders import two_site_cloud as _hand_cloud

# -- builders ------------------------------------------------------------------------------------


def _r(hours: float) -> float:
    return round(hours, 9)


class Scripted(Strategy):
    """Decides from a script: ``ready[name]``, ``timeout[name]`` and ``stopped[(name, reason)]``
    (lists consumed in order). Records the on-prem jobs each arrival sees running and every
    stop with the work the job has left (times rounded to 1e-9 h, to compare with hand
    figures)."""

    name = "scripted"

    def __init__(
        self,
        ready: Mapping[str, Decision],
        stopped: Mapping[tuple[str, str], list[Decision]] | None = None,
        *,
        timeout: Mapping[str, list[Decision]] | None = None,
        queue: QueueMode = "ooo",
        fit: str = "first",
    ) -> None:
        self.ready = dict(ready)
        self.stopped = {k: list(v) for k, v in (stopped or {}).items()}
        self.timeout = {k: list(v) for k, v in (timeout or {}).items()}
        self.queue = queue
        self.fit = "best" if fit == "best" else "first"
        self.seen: dict[str, list[tuple[float, int]]] = {}
        self.stops: list[tuple[str, float, str, bool, str, float]] = []

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        self.seen[job.name] = sorted((_r(end), g) for end, g in view.running_onprem())
        return self.ready[job.name]

    def on_timeout(self, job: JobRequest, view: ClusterView) -> Decision:
        return self.timeout[job.name].pop(0)

    def on_cloud_stopped(
        self, job: JobRequest, view: ClusterView, site: str, spot: bool, reason: StopReason
    ) -> Decision:
        self.stops.append((job.name, _r(view.now), site, spot, reason, _r(view.remaining_h(job))))
        return self.stopped[(job.name, reason)].pop(0)


def _schedule(result: SimResult) -> dict[str, tuple[str, float, float]]:
    """Per job: (site, start of its final run's work, end)."""
    return {r.job.name: (r.site, r.start_h, r.end_h) for r in result.records}


def _one_node(gpus: int = 4, nodes: int = 1) -> OnPremConfig:
    return OnPremConfig(nodes=nodes, gpus_per_node=gpus)


# Up for hours [0, 2), down for [2, 3), up for [3, 10), then cyclic.
_TRACE = SpotTrace("hand", 3600.0, np.array([True, True, False] + [True] * 7))


@pytest.fixture(scope="module")
def sites() -> list[ResolvedSite]:
    return resolve_inventory(default_inventory())


# -- determinism ---------------------------------------------------------------------------------


def _fingerprint(result: SimResult) -> tuple[object, ...]:
    """Everything a run produced except wall-clock timings."""
    return (
        tuple((r.ready_h, r.attempts, r.refused, r.decisions) for r in result.records),
        result.onprem_busy,
    )


def test_same_seed_same_run_different_seed_different_run(sites: list[ResolvedSite]) -> None:
    # The catalog cloud draws a provisioning delay per launch and replays spot traces; SkyPilot
    # goes to spot first and fails over, so the run depends on both.
    cloud = catalog_cloud(sites, gpu="V100", inventory=default_inventory())
    wl = itp_trace("cluster04", limit=300)
    onprem = OnPremConfig(site="fra-dc", location="onprem:fra-dc1", nodes=2)

    def run(seed: int) -> SimResult:
        return simulate(wl, SkyPilotCheapest(), onprem=onprem, cloud=cloud, seed=seed)

    first, again, other = run(1), run(1), run(2)
    assert _fingerprint(first) == _fingerprint(again)
    assert _fingerprint(first) != _fingerprint(other)
    # the premise: this run does exercise spot, preemptions and refusals
    atts = [a for r in first.records for a in r.attempts]
    assert any(a.spot for a in atts)
    assert any(a.outcome == "preempted" for a in atts)
    assert any(r.refused for r in first.records)
    assert all(a.start_h > a.launch_h for a in atts if a.site != "fra-dc")  # provisioning drawn


# -- conservation on real slices -----------------------------------------------------------------

_STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "onprem-only": lambda: OnPremOnly(),
    "no-wait": lambda: NoWait(),
    "constant-wait": lambda: ConstantWait(0.25),
    "constant-wait-nosj": lambda: ConstantWait(0.25, no_sj=True),
    "compute-wait": lambda: ComputeWait(0.25, ooo=False),
    "compute-wait+oo": lambda: ComputeWait(0.25),
    "star-wait": lambda: StarWait(0.25),
    "skypilot": lambda: SkyPilotCheapest(),
}


@pytest.fixture(scope="module")
def itp() -> Workload:
    return itp_trace("cluster04", limit=2000)


@pytest.fixture(scope="module")
def dags() -> Workload:
    return pipelines(count=150, rate_per_h=3.0, seed=3)


def _held(gpus: int, gpn: int) -> int:
    """GPUs a job holds on-prem: a multi-node job takes whole nodes."""
    return gpus if gpus <= gpn else -(-gpus // gpn) * gpn


@pytest.mark.parametrize("workload", ["itp", "dags"])
@pytest.mark.parametrize("strategy", list(_STRATEGIES))
def test_conservation(workload: str, strategy: str, request: pytest.FixtureRequest) -> None:
    wl: Workload = request.getfixturevalue(workload)
    onprem = OnPremConfig(nodes=24 if workload == "itp" else 2)
    price = 1.5
    result = simulate(wl, _STRATEGIES[strategy](), onprem=onprem, cloud=uniform_cloud(price))

    onprem_h = cloud_work_h = cloud_billed_h = lost_h = held_h = 0.0
    for rec in result.records:
        done = [a for a in rec.attempts if a.outcome == "done"]
        assert len(done) == 1, rec
        assert rec.attempts[-1] is done[0]
        for att in rec.attempts:
            gpu_h = att.gpus_billed * (att.stop_h - att.start_h)
            if att.site == "onprem":
                assert att.outcome == "done"  # on-prem runs are never cut short
                assert att.gpus_billed == rec.job.gpus
                onprem_h += gpu_h
                held_h += _held(rec.job.gpus, onprem.gpus_per_node) * (att.stop_h - att.start_h)
            else:
                # uniform cloud: no provisioning, no transfer, nodes exactly the job's size
                assert att.start_h == att.launch_h
                assert att.gpus_billed == rec.job.gpus
                cloud_billed_h += gpu_h
                if att.outcome == "done":
                    cloud_work_h += gpu_h
                else:
                    assert att.outcome == "limit"  # Star-Wait's probe; no spot on this cloud
                    lost_h += gpu_h
        assert rec.start_h >= rec.ready_h >= rec.job.arrival_h
        assert rec.end_h == pytest.approx(rec.start_h + rec.job.runtime_h)
        for d in rec.job.deps:  # a DAG job starts after its dependencies end
            assert rec.ready_h >= result.records[d].end_h
    assert onprem_h + cloud_work_h == pytest.approx(wl.gpu_hours, rel=1e-9)

    m = summarise(result)
    assert m.cloud_gpu_h == pytest.approx(cloud_billed_h, rel=1e-9)
    assert m.cloud_gpu_h == pytest.approx(cloud_work_h + lost_h, rel=1e-9)
    assert m.cloud_usd == pytest.approx(price * cloud_billed_h, rel=1e-9)
    assert m.egress_usd == 0.0

    steps = result.onprem_busy
    assert [t for t, _ in steps] == sorted(t for t, _ in steps)
    assert all(0 <= busy <= onprem.gpus for _, busy in steps)
    assert steps[-1][1] == 0
    end = max(r.end_h for r in result.records)
    assert busy_gpu_hours(result, 0.0, end) == pytest.approx(held_h, rel=1e-9)
    if strategy == "onprem-only":
        assert m.cloud_usd == 0.0
        assert m.cloud_jobs == 0
        assert {r.site for r in result.records} == {"onprem"}
    else:
        assert m.cloud_jobs > 0  # the pool is small enough that every other strategy bursts


# -- on-prem packing -----------------------------------------------------------------------------


@pytest.mark.parametrize(("fit", "d_start"), [("first", 7.0), ("best", 3.0)])
def test_first_fit_vs_best_fit(fit: str, d_start: float) -> None:
    # Two nodes of 4 GPUs.  a (3 GPUs, [0, 1]) takes node 0 and b (3 GPUs, [0, 10]) node 1;
    # after a ends, free = [4, 1].  c (1 GPU, at 2 h, 5 h):
    #   first fit -> node 0, the lowest with room: free [3, 1]; d (4 GPUs, at 3 h) finds no
    #                whole node until c ends at 2 + 5 = 7 h;
    #   best fit  -> node 1, left fullest: free [4, 0]; d starts at once, at 3 h.
    wl = _wl(("a", 0, 3, 1), ("b", 0, 3, 10), ("c", 2, 1, 5), ("d", 3, 4, 1))
    s = Scripted(dict.fromkeys("abcd", OnPrem()), fit=fit)
    got = _schedule(simulate(wl, s, onprem=_one_node(4, 2), cloud=uniform_cloud()))
    assert got == {
        "a": ("onprem", 0, 1),
        "b": ("onprem", 0, 10),
        "c": ("onprem", 2, 7),
        "d": ("onprem", d_start, d_start + 1),
    }


def test_multi_node_jobs_take_whole_nodes() -> None:
    # Two nodes of 4 GPUs.  a (1 GPU, [0, 10]) sits on node 0; b (5 GPUs at 1 h) needs two
    # whole nodes, so 7 free GPUs are not enough and it waits for a to end at 10 h, then holds
    # all 8 GPUs for 2 h.  c (4 GPUs at 2 h) fits node 1 and, out of order, starts at once.
    wl = _wl(("a", 0, 1, 10), ("b", 1, 5, 2), ("c", 2, 4, 1))
    result = simulate(
        wl,
        Scripted(dict.fromkeys("abc", OnPrem())),
        onprem=_one_node(4, 2),
        cloud=uniform_cloud(),
    )
    assert _schedule(result) == {
        "a": ("onprem", 0, 10),
        "b": ("onprem", 10, 12),
        "c": ("onprem", 2, 3),
    }
    # busy GPUs: 1, then 1 + 4, then 1, then b's two whole nodes (8, not 5), then none
    assert result.onprem_busy == ((0, 1), (2, 5), (3, 1), (10, 8), (12, 0))


# -- queue disciplines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("queue", "expected"),
    [
        # FIFO: d waits behind b (blocked until a ends at 4) and c (starts when b ends at 5).
        ("fifo", {"a": (0, 4), "b": (4, 5), "c": (5, 11), "d": (5, 6)}),
        # out of order: c fits at 2 and starts; d fits once a ends at 4; b waits for the
        # whole node until c ends at 8.
        ("ooo", {"a": (0, 4), "b": (8, 9), "c": (2, 8), "d": (4, 5)}),
        # EASY backfill: b is reserved the node at 4 (a's estimated end).  c (2 + 6 = 8 > 4)
        # would delay it and must wait; d (3 + 1 = 4 <= 4) does not, and starts at once.
        ("backfill", {"a": (0, 4), "b": (4, 5), "c": (5, 11), "d": (3, 4)}),
    ],
)
def test_head_of_line_blocking_vs_out_of_order_vs_backfill(
    queue: QueueMode, expected: dict[str, tuple[float, float]]
) -> None:
    # One node of 4 GPUs: a (2 GPUs at 0 h, 4 h), b (4 GPUs at 1 h, 1 h),
    # c (2 GPUs at 2 h, 6 h), d (2 GPUs at 3 h, 1 h).  d starts at 5, 4 and 3 h.
    wl = _wl(("a", 0, 2, 4), ("b", 1, 4, 1), ("c", 2, 2, 6), ("d", 3, 2, 1))
    result = simulate(wl, OnPremOnly(queue=queue), onprem=_one_node(), cloud=uniform_cloud())
    assert {n: (s, e) for n, (_, s, e) in _schedule(result).items()} == expected


def test_at_one_instant_ends_come_before_timeouts() -> None:
    # One GPU.  x holds it [0, 1]; y is queued at 0 with a 1 h budget.  At 1 h x's end frees
    # the GPU before y's timeout is looked at, so y starts on-prem instead of bursting.
    wl = _wl(("x", 0, 1, 1), ("y", 0, 1, 1))
    s = Scripted({"x": OnPrem(), "y": OnPrem(wait_h=1.0)}, timeout={"y": [Cloud("cloud")]})
    result = simulate(wl, s, onprem=_one_node(1), cloud=uniform_cloud())
    assert _schedule(result) == {"x": ("onprem", 0, 1), "y": ("onprem", 1, 2)}
    assert result.records[1].decisions == 1


# -- DAGs and transfers --------------------------------------------------------------------------


def test_dag_jobs_start_after_dependencies_plus_transfer(sites: list[ResolvedSite]) -> None:
    # prep runs at gcp-us-central1 [0, 1] and writes 450 GB; train runs on-prem in Frankfurt
    # and reads it; eval runs at gcp-europe-west4 and reads train's 90 GB.
    cloud = catalog_cloud(
        sites, gpu="V100", inventory=default_inventory(), provisioning="zero", spot_traces={}
    )
    onprem = OnPremConfig(site="fra-dc", location="onprem:fra-dc1", nodes=1)
    # The premises, from the catalog: every link runs at 10 Gbit/s, so 1 GB takes
    # 8 / (10 * 3600) h; GCP's first internet tier is $0.12/GB (egress_prices.csv); on-prem
    # egress is free (the organisation's uplink).
    h_per_gb = 8 / (10 * 3600)
    assert cloud.link("gcp:us-central1", "onprem:fra-dc1") == pytest.approx((0.12, h_per_gb))
    assert cloud.link("onprem:fra-dc1", "gcp:europe-west4") == pytest.approx((0.0, h_per_gb))
    wl = _wl(
        ("prep", 0, 1, 1),
        ("train", 0, 1, 2),
        ("eval", 0, 1, 0.5),
        deps={"train": ("prep",), "eval": ("train",)},
        output_gb={"prep": 450, "train": 90},
    )
    s = Scripted(
        {"prep": Cloud("gcp-us-central1"), "train": OnPrem(), "eval": Cloud("gcp-europe-west4")}
    )
    result = simulate(wl, s, onprem=onprem, cloud=cloud)
    prep, train, ev = result.records
    # train: ready when prep ends (1 h); holds its GPU while 450 GB arrive, 450 * 8 / 36000 =
    # 0.1 h; runs 2 h: [1.1, 3.1]; prep's site pays 450 * 0.12 = $54 egress.
    assert train.ready_h == 1.0
    (att,) = train.attempts
    assert (att.site, att.launch_h) == ("fra-dc", 1.0)
    assert (att.start_h, att.stop_h) == pytest.approx((1.1, 3.1))
    assert att.egress_usd == pytest.approx(54.0)
    # eval: ready at 3.1; 90 GB take 90 * 8 / 36000 = 0.02 h to stage, then the node is
    # requested (zero provisioning here) and does 0.5 h of work: [3.12, 3.62], paid from the
    # request (3.12) to the end: 0.5 h (staging comes before the request and is not billed).
    assert ev.ready_h == pytest.approx(3.1)
    (att,) = ev.attempts
    usd_h = cloud.quote("gcp-europe-west4", 1, False).usd_per_h  # type: ignore[union-attr]
    assert (att.launch_h, att.start_h, att.stop_h) == pytest.approx((3.12, 3.12, 3.62))
    assert att.egress_usd == 0.0
    assert att.compute_usd == pytest.approx(0.5 * usd_h)
    assert prep.attempts[0].egress_usd == 0.0
    assert result.site_locations["gcp-europe-west4"] == "gcp:europe-west4"


def test_a_links_free_allowance_and_tiers_price_the_simulators_transfers() -> None:
    # The same transfer as above (prep's 450 GB from gcp:us-central1 to Frankfurt), over a
    # network entry with 100 GB free per transfer and $0.06/GB from 300 GB on: the planner's
    # price of it, Link.usd, is what the simulator charges.
    from placer.models import Inventory

    base = default_inventory().model_dump(by_alias=True, exclude_none=True)
    base["network"] = [*base.get("network", []),
                       {"from": "gcp:*", "to": "onprem:*", "usd_per_gb": 0.12, "free": "100GB",
                        "tiers": [{"from": "300GB", "usd_per_gb": 0.06}], "symmetric": False}]
    inv = Inventory.model_validate(base)
    sites = resolve_inventory(inv)
    cloud = catalog_cloud(sites, gpu="V100", inventory=inv, provisioning="zero", spot_traces={})
    link = cloud.link_of("gcp:us-central1", "onprem:fra-dc1")
    assert link.usd(450) == pytest.approx(200 * 0.12 + 150 * 0.06)
    with pytest.raises(PlacerError, match="not per GB"):
        cloud.link("gcp:us-central1", "onprem:fra-dc1")
    wl = _wl(("prep", 0, 1, 1), ("train", 0, 1, 2), deps={"train": ("prep",)},
             output_gb={"prep": 450})
    s = Scripted({"prep": Cloud("gcp-us-central1"), "train": OnPrem()})
    onprem = OnPremConfig(site="fra-dc", location="onprem:fra-dc1", nodes=1)
    result = simulate(wl, s, onprem=onprem, cloud=cloud)
    assert result.records[1].attempts[0].egress_usd == pytest.approx(33.0)


def _staging_cloud(sites: list[ResolvedSite], trace: SpotTrace | None = None) -> CloudModel:
    """One site ``eu`` at gcp:europe-west4: 1-GPU nodes at $2/h on demand, $0.50/h spot (spot
    availability ``trace``), provisioning exactly 0.1 h; the catalog's links."""
    prov = Provisioning(0.1, 0.1)
    offer = PricedOffer("n1-v100", "V100", 1, 2.0, 0.5)
    return CloudModel(
        "staging",
        [CloudSite("eu", "gcp:europe-west4", (offer,), (prov, prov), trace, None)],
        locations={s.location.key: s.location for s in sites},
    )


def _bucket_reader() -> Workload:
    """x: 1 GPU, 1 h, reads 90 GB in gcp:us-central1 (90 * 8 / 36000 = 0.02 h to any other
    location over the catalog's 10 Gbit/s)."""
    return Workload(
        "staging",
        (SimJob(0, "x", 0.0, 1.0, 1, 1.0, reads=("bucket",)),),
        {"bucket": SimDataset("bucket", "gcp:us-central1", 90.0)},
    )


def test_a_cloud_job_stages_its_inputs_then_requests_and_pays_for_the_node(
    sites: list[ResolvedSite],
) -> None:
    # As placer.pricing plans it: the 90 GB arrive at 0.02 h, the node is requested then (its
    # bill starts), ready 0.1 h later, and the job runs 1 h: [0.12, 1.12], billed 1.1 h x $2.
    # (Before issue 10 the transfer overlapped provisioning: start 0.1, billed from 0.)
    cloud = _staging_cloud(sites)
    s = Scripted({"x": Cloud("eu")})
    (rec,) = simulate(_bucket_reader(), s, onprem=_one_node(nodes=0), cloud=cloud).records
    (att,) = rec.attempts
    assert (att.launch_h, att.start_h, att.stop_h) == pytest.approx((0.02, 0.12, 1.12))
    assert att.compute_usd == pytest.approx(2.0 * 1.1)
    rate, _ = cloud.link("gcp:us-central1", "gcp:europe-west4")
    assert att.egress_usd == pytest.approx(90 * rate)
    assert summarise(simulate(_bucket_reader(), Scripted({"x": Cloud("eu")}),
                              onprem=_one_node(nodes=0), cloud=cloud)).cloud_gpu_h == (
        pytest.approx(1.1)
    )


def test_spot_lost_while_the_inputs_stage_costs_nothing(sites: list[ResolvedSite]) -> None:
    # Spot at eu is up for [0, 0.01 h), down for [0.01, 0.02), then up. x goes to spot at 0;
    # its inputs would be staged at 0.02, but the capacity is gone at 0.01: stopped before any
    # node was requested, nothing billed. It goes on demand at 0.01 and stages again:
    # requested 0.03, starts 0.13, ends 1.13.
    trace = SpotTrace("hand", 36.0, np.array([True, False] + [True] * 998))
    cloud = _staging_cloud(sites, trace)
    s = Scripted({"x": Cloud("eu", spot=True)}, {("x", "preempted"): [Cloud("eu")]})
    result = simulate(_bucket_reader(), s, onprem=_one_node(nodes=0), cloud=cloud)
    (rec,) = result.records
    first, second = rec.attempts
    assert (first.spot, first.outcome, first.launch_h, first.stop_h) == pytest.approx(
        (True, "preempted", 0.01, 0.01)
    )
    assert first.compute_usd == 0.0
    assert (second.launch_h, second.start_h, second.stop_h) == pytest.approx((0.03, 0.13, 1.13))
    assert second.compute_usd == pytest.approx(2.0 * 1.1)
    m = summarise(result)
    assert (m.spot_usd, m.cloud_gpu_h, m.preemptions) == (0.0, pytest.approx(1.1), 1)


@pytest.mark.parametrize("cache", [False, True])
def test_cached_inputs_are_read_once_per_location(sites: list[ResolvedSite], cache: bool) -> None:
    # Three jobs read a 100 GB dataset in gcp:us-central1 and run on-prem in Frankfurt, one
    # after the other on one GPU. GCP's first internet tier is $0.12/GB: $12 per read. Without
    # a cache every job pays it and waits 100 * 8 / 36000 h for the bytes; with one, only the
    # first does, and a later job sent to the cloud site next to the data reads it for free.
    cloud = catalog_cloud(
        sites, gpu="V100", inventory=default_inventory(), provisioning="zero", spot_traces={}
    )
    onprem = OnPremConfig(site="fra-dc", location="onprem:fra-dc1", nodes=1, gpus_per_node=1)
    ds = SimDataset("corpus", "gcp:us-central1", 100.0, {})
    jobs = tuple(
        SimJob(
            id=i,
            name=f"j{i}",
            arrival_h=0.0,
            runtime_h=1.0,
            gpus=1,
            estimate_h=1.0,
            reads=("corpus",),
        )
        for i in range(3)
    )
    wl = Workload("cached", jobs, {"corpus": ds})
    result = simulate(wl, OnPremOnly(queue="fifo"), onprem=onprem, cloud=cloud, cache_inputs=cache)
    egress = [r.attempts[0].egress_usd for r in result.records]
    transfer = 100 * 8 / 36000
    if cache:
        assert egress == pytest.approx([12.0, 0.0, 0.0])
        assert result.records[-1].end_h == pytest.approx(3 + transfer)
    else:
        assert egress == pytest.approx([12.0, 12.0, 12.0])
        assert result.records[-1].end_h == pytest.approx(3 + 3 * transfer)


# -- spot, quotas --------------------------------------------------------------------------------


def test_spot_preemption_keeps_progress_and_charges_restart_overhead() -> None:
    # x (1 GPU, 4 h) runs on spot at a from 0 h; the trace goes down at 2 h: preempted with
    # 2 h of work kept.  Asked again, the script tries spot at a once more: refused at once
    # (still down), then on demand at b: 4 - 2 = 2 h left plus 0.2 h restart overhead,
    # [2, 4.2].  Cost: spot 2 h * $1 + on-demand 2.2 h * $2 = $6.40.
    wl = _wl(("x", 0, 1, 4))
    s = Scripted(
        {"x": Cloud("a", spot=True)},
        {("x", "preempted"): [Cloud("a", spot=True)], ("x", "unavailable"): [Cloud("b")]},
    )
    result = simulate(wl, s, onprem=_one_node(nodes=0), cloud=_hand_cloud(_TRACE))
    (rec,) = result.records
    assert s.stops == [
        ("x", 2.0, "a", True, "preempted", 2.2),
        ("x", 2.0, "a", True, "unavailable", 2.2),
    ]
    assert rec.refused == ("a/spot:unavailable",)
    first, second = rec.attempts
    assert (first.site, first.spot, first.outcome) == ("a", True, "preempted")
    assert (first.start_h, first.stop_h, first.compute_usd) == (0.0, 2.0, 2.0)
    assert (second.site, second.spot, second.outcome) == ("b", False, "done")
    assert (second.start_h, second.stop_h) == pytest.approx((2.0, 4.2))
    assert second.compute_usd == pytest.approx(4.4)
    assert summarise(result).cloud_usd == pytest.approx(6.4)
    assert summarise(result).preemptions == 1
    assert rec.decisions == 3


def test_progress_kept_across_a_move_on_prem() -> None:
    # x is preempted at 2 h as above and queued on-prem, where it runs 2 h + 0.2 h overhead:
    # [2, 4.2].  y arrives at 3 h and sees x's estimated end: 4.2 h, overhead included.
    wl = _wl(("x", 0, 1, 4), ("y", 3, 1, 1))
    s = Scripted({"x": Cloud("a", spot=True), "y": OnPrem()}, {("x", "preempted"): [OnPrem()]})
    result = simulate(wl, s, onprem=_one_node(), cloud=_hand_cloud(_TRACE))
    assert _schedule(result) == {
        "x": ("onprem", 2.0, pytest.approx(4.2)),
        "y": ("onprem", 3.0, 4.0),
    }
    assert s.seen["y"] == [(4.2, 1)]


def test_a_preemption_during_the_restart_overhead_keeps_the_rest_owed() -> None:
    # Spot at a, ticks of 0.1 h: up [0, 2), down [2, 3), up [3, 3.1), down [3.1, 4), up from
    # 4 h.  The pool's one GPU is busy, so queueing on-prem with a 1 h budget is a way to wait.
    # x (1 GPU, 3 h): run 1 [0, 2] keeps 2 h and owes 0.2 h; run 2 [3, 3.1] pays 0.1 h of the
    # overhead, makes no progress and still owes 0.1 h; run 3 from 4.1 h: 1 h + 0.1 h, ends at
    # 5.2 h.  Spot cost at $1/h: 2 + 0.1 + 1.1 = $3.20.
    up = [True] * 20 + [False] * 10 + [True] + [False] * 9 + [True] * 60
    tr = SpotTrace("twice", 360.0, np.array(up))
    wl = _wl(("blocker", 0, 1, 100), ("x", 0, 1, 3))
    spot = Cloud("a", spot=True)
    s = Scripted(
        {"blocker": OnPrem(), "x": spot},
        {("x", "preempted"): [OnPrem(wait_h=1.0)] * 2},
        timeout={"x": [spot, spot]},
    )
    result = simulate(wl, s, onprem=_one_node(1), cloud=_hand_cloud(tr))
    assert [(n, t, why, left) for n, t, _, _, why, left in s.stops] == [
        ("x", 2.0, "preempted", 1.2),
        ("x", 3.1, "preempted", 1.1),
    ]
    rec = result.records[1]
    assert [a.outcome for a in rec.attempts] == ["preempted", "preempted", "done"]
    assert [(_r(a.launch_h), _r(a.stop_h)) for a in rec.attempts] == [
        (0.0, 2.0),
        (3.0, 3.1),
        (4.1, 5.2),
    ]
    assert summarise(result).spot_usd == pytest.approx(3.2)


def test_quota_refusal_falls_back_and_quota_is_released() -> None:
    # b is the cheapest on-demand site ($2/GPU-h) with a quota of 4 GPUs.  p (4 GPUs, [0, 1])
    # fills it; q (4 GPUs at 0 h) is refused ("quota") and the default fallback sends it to
    # the next cheapest site, a ($3/GPU-h): 4 * 3 * 1 = $12.  r (4 GPUs at 1 h) finds the
    # quota free again (p ended at 1 h, and ends are processed before arrivals): b again.
    # (No-Wait's literal placement, on-demand only: the fair one would take a's spot offer.)
    wl = _wl(("p", 0, 4, 1), ("q", 0, 4, 1), ("r", 1, 4, 1))
    literal = NoWait(placement="literal")
    result = simulate(wl, literal, onprem=_one_node(nodes=0), cloud=_hand_cloud(quota_b=4))
    assert _schedule(result) == {"p": ("b", 0, 1), "q": ("a", 0, 1), "r": ("b", 1, 2)}
    assert [r.refused for r in result.records] == [(), ("b:quota",), ()]
    assert summarise(result).cloud_usd == pytest.approx(8 + 12 + 8)


# -- strategies that decide the impossible -------------------------------------------------------


class _Fixed(Strategy):
    name = "fixed"

    def __init__(self, ready: object, timeout: object = None, stopped: object = None) -> None:
        self._ready, self._timeout, self._stopped = ready, timeout, stopped

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        return self._ready  # type: ignore[return-value]

    def on_timeout(self, job: JobRequest, view: ClusterView) -> Decision:
        return self._timeout  # type: ignore[return-value]

    def on_cloud_stopped(
        self, job: JobRequest, view: ClusterView, site: str, spot: bool, reason: StopReason
    ) -> Decision:
        return self._stopped  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        ("cloud", "returned 'cloud' for job 'x'; expected OnPrem(...) or Cloud(...)"),
        (None, "strategy 'fixed' returned None for job 'x'"),
        (
            Cloud("nowhere"),
            "sent job 'x' to 'nowhere', which has no such offer for 1 GPU(s); sites: cloud",
        ),
        (Cloud("cloud", spot=True), "sent job 'x' to spot on 'cloud', which has no such offer"),
    ],
)
def test_garbage_decisions_raise(decision: object, message: str) -> None:
    with pytest.raises(SimulationError) as info:
        simulate(_wl(("x", 0, 1, 1)), _Fixed(decision), onprem=_one_node(), cloud=uniform_cloud())
    assert message in str(info.value)
    assert isinstance(info.value, PlacerError)


def test_a_timeout_loop_raises() -> None:
    # x holds the only GPU for 10 h; y is queued with a zero budget and re-queued with a zero
    # budget on every timeout: the clock never moves.
    wl = _wl(("x", 0, 1, 10), ("y", 0, 1, 1))

    class Loop(_Fixed):
        def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
            return OnPrem(wait_h=0.0)

    with pytest.raises(SimulationError, match=r"decided about job 'y' 10000 times"):
        simulate(wl, Loop(None, OnPrem(wait_h=0.0)), onprem=_one_node(1), cloud=uniform_cloud())


def test_a_refusal_loop_raises() -> None:
    # Spot at a is down from 2 h to 3 h; a job arriving at 2 h that insists on it is refused,
    # asked again, and insists again, at the same instant, forever.
    wl = _wl(("x", 2, 1, 1))
    spot = Cloud("a", spot=True)
    with pytest.raises(SimulationError, match=r"decided about job 'x' 10000 times"):
        simulate(wl, _Fixed(spot, spot, spot), onprem=_one_node(nodes=0), cloud=_hand_cloud(_TRACE))


def test_a_job_bigger_than_the_pool_queued_on_prem_raises() -> None:
    wl = _wl(("small", 0, 8, 1), ("huge", 0, 16, 1))
    with pytest.raises(
        SimulationError,
        match=r"strategy 'onprem-only' queued job 'huge' on-prem, but it needs 16 GPUs and "
        r"the on-prem pool has 8",
    ):
        simulate(wl, OnPremOnly(), onprem=_one_node(8), cloud=uniform_cloud())


def test_every_decision_is_counted_and_timed() -> None:
    wl = _wl(("x", 0, 1, 1))
    result = simulate(wl, NoWait(), onprem=_one_node(), cloud=uniform_cloud())
    (rec,) = result.records
    assert rec.decisions == 1
    assert 0 <= rec.decision_s < 1
    assert math.isfinite(result.wall_s)
