"""Issue 13, item 1: live on-prem capacity from a real two-node Ray cluster (token auth on).

The cluster is a head with 4 GPUs on 127.0.0.1 and a worker with 4 on 127.0.0.2 (Ray's logical
GPUs: nothing needs a real one). Two jobs placer did not submit hold 3 GPUs on each node, so
2 GPUs are free in all but only 1 on either node: a 2-GPU job does not fit now, as Ray itself
shows by keeping one pending, and that pending job is reported as work waiting on the cluster,
while a 1-GPU job still fits and Ray starts it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from placer.backends import GpuCapacity
from placer.catalog import resolve_inventory
from placer.errors import BackendError
from placer.live import LiveView
from placer.models import Inventory, Job, JobPlacement
from placer.online import JobRequest
from tests.backends.ray_clusters import (
    GPU,
    RayCluster,
    add_node,
    require_ray,
    start_cluster,
)

placer_ray = pytest.importorskip("placer_ray")

GPUS_PER_NODE = 4


def _until(cond: Callable[[], Any], what: str, timeout_s: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: BackendError | None = None
    while True:
        try:
            got = cond()
        except BackendError as exc:  # no report yet: the monitor writes one every second or so
            got, last = None, exc
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what} (last: {last!r})"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[tuple[RayCluster, Any]]:
    """The cluster, with 3 GPUs held on each node by work placer did not submit."""
    require_ray()
    cluster = start_cluster("cap2", num_cpus=1, gpus=GPUS_PER_NODE)
    try:
        add_node(cluster, "127.0.0.2", gpus=GPUS_PER_NODE)
        backend = placer_ray.RayJobsBackend(cluster.site())
        _until(lambda: backend.gpus().nodes is not None and len(backend.gpus().nodes) == 2,
               "both nodes to be reported")
        client = cluster.client()
        for _ in range(2):  # 3 GPUs each: no node has room for both (4 GPUs each)
            client.submit_job(entrypoint="sleep 300", entrypoint_num_gpus=3)
        _until(lambda: backend.gpus().used == 6, "6 GPUs to be held")
        yield cluster, backend
    finally:
        cluster.stop()


def _submit(backend: Any, cluster: RayCluster, name: str, gpus: int) -> Any:
    """A placer step of ``gpus`` GPUs, through the backend as the executor submits one."""
    job = Job(name=name, command="sleep 300", gpu_types={GPU: 1}, resources={"gpus": gpus})
    placement = JobPlacement(site=cluster.name, location=f"onprem:{cluster.name}", gpu=GPU,
                             gpus=gpus, nodes=0, spot=False, start_h=0, end_h=0.1, cost_usd=0,
                             compute_usd=0, transfer_usd=0, transfer_h=0)
    return backend.submit(job, placement, submission_id=f"placer-cap-{name}-{time.time_ns()}",
                          env={})


def _view(cluster: RayCluster, capacity: GpuCapacity) -> LiveView:
    sites = resolve_inventory(Inventory(name="cap", sites=(cluster.site(kind="onprem"),)))
    return LiveView(now_h=time.time() / 3600, onprem=sites[0], capacity=capacity, cloud=(),
                    gpu=GPU, allowed={})


def _assert_waiting_demand_lengthens_the_wait(cluster: RayCluster, cap: GpuCapacity) -> None:
    """Placer's strategy on a 4-GPU job, taking the two 3-GPU holders to end in 1 h and 2 h:
    the pending 2-GPU request takes 2 of the GPUs released at 1 h for good, so the job waits
    for the 2 h release; unless the request is placer's own (0.5 h), then 1.5 h."""
    from placer.live import StrategyStep
    from placer.sim.registry import make_strategy

    job = JobRequest(id=0, name="j4", gpus=4, estimate_h=1.0)
    sites = resolve_inventory(Inventory(name="cap", sites=(cluster.site(kind="onprem"),)))
    now = time.time() / 3600

    def predicted(capacity: GpuCapacity, **kw: Any) -> dict[str, object]:
        view = LiveView(now_h=now, onprem=sites[0], capacity=capacity, cloud=(), gpu=GPU,
                        allowed={0: (True, ())}, requests=(job,),
                        running=[(now + 1.0, 3), (now + 2.0, 3)], **kw)
        step = StrategyStep(make_strategy("placer", 5.0), (job,))
        return step.decide("j4", lambda: view).facts

    alone = predicted(GpuCapacity(total=cap.total, free=cap.free, nodes=cap.nodes))
    behind = predicted(cap)
    assert (alone["predicted_wait_h"], behind["predicted_wait_h"]) == (1.0, 2.0)
    assert behind["outside_waiting"] == {"requests": 1, "gpus": 2}
    ours = predicted(cap, own_pending=[JobRequest(id=1, name="two", gpus=2, estimate_h=0.5)])
    assert ours["predicted_wait_h"] == 1.5 and "outside_waiting" not in ours


def test_gpus_free_in_all_but_not_on_one_node_do_not_fit(
        two_nodes: tuple[RayCluster, Any]) -> None:
    cluster, backend = two_nodes
    cap = backend.gpus()
    assert (cap.total, cap.free) == (8, 2)
    assert sorted((n.total, n.free) for n in cap.nodes) == [(4, 1), (4, 1)]
    view = _view(cluster, cap)
    two, one = (JobRequest(id=i, name=f"j{g}", gpus=g, estimate_h=1.0)
                for i, g in enumerate((2, 1)))
    assert view.free_gpus == 2
    assert view.fits_now(two) is False and view.fits_now(one) is True
    # what the cluster-wide count alone would have said
    assert GpuCapacity(total=cap.total, free=cap.free).fits(2)


def test_a_job_that_cannot_run_is_reported_as_pending_demand_and_smaller_work_still_fits(
        two_nodes: tuple[RayCluster, Any]) -> None:
    cluster, backend = two_nodes
    assert backend.gpus().pending == ()
    waiting = _submit(backend, cluster, "two", 2)
    small = None
    try:
        cap = _until(lambda: backend.gpus().pending and backend.gpus(), "the demand to show")
        assert cap.pending == ((2,),) and cap.waiting() == ((2,),)
        assert backend.status(waiting) == "PENDING"
        assert cap.fits(1) and not cap.fits(2) and cap.available() == 2
        view = _view(cluster, cap)
        assert view.free_gpus == 2
        assert view.fits_now(JobRequest(id=0, name="j1", gpus=1, estimate_h=1.0))
        _assert_waiting_demand_lengthens_the_wait(cluster, cap)
        # Ray starts later work that fits ahead of the pending job, as the rule says
        small = _submit(backend, cluster, "one", 1)
        _until(lambda: backend.status(small) == "RUNNING", "the 1-GPU job to start")
        assert backend.status(waiting) == "PENDING"
        cap = _until(lambda: backend.gpus().used == 7 and backend.gpus(), "7 GPUs held")
        assert cap.pending == ((2,),) and cap.free == 1 and cap.fits(1) and not cap.fits(2)
    finally:
        for h in (waiting, small):
            if h is not None:
                backend.cancel(h)  # the last test on this cluster: it is stopped next
