"""The Ray backend reports its cluster's GPUs (placer.backends.CapacityReporter).

Unit tests with dashboard answers of the shape Ray 2.60 gives (recorded from a real two-node
cluster, tests/e2e/test_capacity_ray.py reads the live ones), then one against a real local Ray
cluster: a job that holds 6 of the cluster's 8 GPUs leaves 2 free, as Ray itself reports it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from placer.backends import CapacityReporter, GpuCapacity, NodeGpus
from placer.errors import BackendError, SiteUnreachableError
from placer.models import Cluster, Job, JobPlacement, Site
from tests.backends.conftest_ray import ray_clusters  # noqa: F401  (session fixture)
from tests.backends.ray_clusters import GPU, GPUS_PER_CLUSTER, ClusterPair

placer_ray = pytest.importorskip("placer_ray")


class Response:
    def __init__(self, status_code: int, body: Any) -> None:
        self.status_code, self._body = status_code, body

    def json(self) -> Any:
        if isinstance(self._body, Exception):
            raise self._body
        return self._body


def _report(usage: dict[str, list[float]], by_node: dict[str, Any] | None = None,
            demand: list[Any] | None = None, pgs: list[Any] | None = None) -> dict[str, Any]:
    """The dashboard's answer; one node holding everything unless ``by_node`` says."""
    return {"result": True, "data": {"clusterStatus": {"loadMetricsReport": {
        "usage": usage, "usageByNode": {"n0": usage} if by_node is None else by_node,
        "resourceDemand": demand or [], "pgDemand": pgs or [], "requestDemand": []}}}}


def backend(answer: Any, **options: str) -> Any:
    calls: list[tuple[str, str]] = []

    class Client:
        def __init__(self, *a: Any, **kw: Any) -> None:
            pass

        def _do_request(self, method: str, endpoint: str, **kw: Any) -> Any:
            calls.append((method, endpoint))
            if isinstance(answer, Exception):
                raise answer
            return answer

    site = Site(name="dc", kind="cloud", location="aws:eu-central-1",
                cluster=Cluster(backend="ray", address="http://127.0.0.1:1",
                                options={"confirm_down_s": "0", **options}))
    b = placer_ray.RayJobsBackend(site, client_factory=Client)
    b.calls = calls
    return b


def test_it_reads_the_gpus_from_the_dashboards_cluster_status() -> None:
    b = backend(Response(200, _report({"GPU": [6.0, 8.0], "CPU": [1.0, 2.0]})))
    assert isinstance(b, CapacityReporter)
    assert b.gpus() == GpuCapacity(total=8, free=2, nodes=(NodeGpus("n0", 8, 2),))
    b = backend(Response(200, _report({"GPU": [6.0, 8.0], "CPU": [1.0, 2.0]})))
    b.gpus()
    assert b.calls == [("GET", "/api/cluster_status")]


def test_a_fraction_of_a_gpu_held_is_a_gpu_not_free() -> None:
    assert backend(Response(200, _report({"GPU": [0.5, 8.0]}))).gpus() == GpuCapacity(
        8, 7, nodes=(NodeGpus("n0", 8, 7),))


def test_a_cluster_without_gpus_reports_none_free() -> None:
    assert backend(Response(200, _report({"CPU": [0.0, 2.0]}))).gpus() == GpuCapacity(
        0, 0, nodes=())


@pytest.mark.parametrize("answer", [
    Response(200, {"result": True, "data": {"clusterStatus": None}}),  # no report yet
    Response(200, _report({})),  # a report that has heard from no node yet
    Response(200, _report({"GPU": [0.0, 8.0]}, by_node={})),  # no per-node figures
    Response(200, _report({"GPU": [0.0, 8.0]}, by_node={"a": {"GPU": [0.0, 4.0]}})),
    Response(200, _report({"GPU": [1.0, 8.0]}, by_node={"a": {"GPU": [0.0, 8.0]}})),
    Response(200, _report({"GPU": [0.0, 8.0]}, demand=[[{"GPU": 1.0}, "many"]])),
    Response(200, _report({"GPU": [0.0, 8.0]}, demand=[["GPU", 1]])),
    Response(200, ValueError("not JSON")),
    Response(500, {}),
])
def test_a_report_it_cannot_read_is_refused_not_guessed(answer: Response) -> None:
    with pytest.raises(BackendError, match=r"dc: Ray cluster at http://127\.0\.0\.1:1"):
        backend(answer).gpus()


TWO_NODES = {"a": {"GPU": [3.0, 4.0], "CPU": [0.0, 2.0]}, "b": {"GPU": [2.5, 4.0]}}


def test_it_reports_each_nodes_gpus_and_a_job_must_fit_on_one() -> None:
    got = backend(Response(200, _report({"GPU": [5.5, 8.0]}, by_node=TWO_NODES))).gpus()
    assert got == GpuCapacity(total=8, free=2, nodes=(NodeGpus("a", 4, 1), NodeGpus("b", 4, 1)))
    assert (got.fits(1), got.fits(2)) == (True, False)  # 2 free in all, 1 on each node


def test_it_reports_the_work_waiting_on_the_cluster_and_leaves_out_what_can_never_run() -> None:
    demand = [[{"GPU": 3.0}, 2], [{"CPU": 1.0}, 4], [{"GPU": 10.0}, 1], [{"GPU": 0.5}, 1]]
    pgs = [[{"bundles": [[{"GPU": 3.0}, 2]], "strategy": "STRICT_SPREAD"}, 1],
           [{"bundles": [[{"GPU": 1.0}, 3]], "strategy": "STRICT_PACK"}, 2],
           [{"bundles": [[{"CPU": 1.0}, 1]], "strategy": "PACK"}, 1]]
    got = backend(Response(200, _report({"GPU": [5.5, 8.0]}, by_node=TWO_NODES,
                                        demand=demand, pgs=pgs))).gpus()
    # tasks of 3 GPUs twice, a half GPU (a GPU held), the spread group's 2 bundles, the packed
    # groups as one bundle of 3 each; CPU-only work and a 10-GPU task (no node has 10) are not
    assert got.pending == ((3,), (3,), (1,), (3, 3), (3,), (3,))
    assert got.pending_gpus == 19


def test_a_real_two_node_answer_is_read_as_it_is() -> None:
    """Ray 2.60's answer, cut to what is read, from tests/e2e/test_capacity_ray.py's cluster:
    a 10-GPU job (infeasible), a 3-GPU job and a placement group of 2x3 GPUs pending."""
    usage_a = {"gpuType:A100-80Gb": [0.0, 8.0], "CPU": [0.0, 2.0], "GPU": [6.0, 8.0]}
    usage_b = {"gpuType:A100-80Gb": [0.0, 4.0], "CPU": [0.0, 2.0], "GPU": [4.0, 4.0]}
    body = {"result": True, "msg": "Got cluster status.", "data": {
        "autoscalingStatus": None, "autoscalingError": None, "clusterStatus": {
            "autoscalerReport": {"activeNodes": {}, "pendingNodes": [], "legacy": True},
            "loadMetricsReport": {
                "usage": {"CPU": [0.0, 4.0], "GPU": [10.0, 12.0]},
                "resourceDemand": [[{"GPU": 3.0}, 1], [{"GPU": 10.0}, 1]],
                "pgDemand": [[{"bundles": [[{"GPU": 3.0}, 2]], "strategy": "STRICT_SPREAD"}, 1]],
                "requestDemand": [],
                "usageByNode": {"bccba4001de8b008": usage_a, "193077fca4bdf73b": usage_b}}}}}
    got = backend(Response(200, body)).gpus()
    assert got == GpuCapacity(total=12, free=2, nodes=(
        NodeGpus("193077fca4bdf73b", 4, 0), NodeGpus("bccba4001de8b008", 8, 2)),
        pending=((3,), (3, 3)))
    assert got.waiting() == ((3,), (3, 3)) and got.fits(2) and not got.fits(3)


def test_a_cluster_that_does_not_answer_is_unreachable() -> None:
    import requests

    with pytest.raises(SiteUnreachableError):
        backend(requests.exceptions.ConnectionError("refused")).gpus()


def test_jobs_that_do_not_ask_for_rays_gpu_resource_leave_the_count_unknown() -> None:
    b = backend(Response(200, _report({"GPU": [0.0, 8.0]})), entrypoint_num_gpus="false")
    with pytest.raises(BackendError, match="free GPUs are unknown"):
        b.gpus()
    assert b.calls == []


def test_a_real_cluster_reports_the_gpus_a_job_holds(ray_clusters: ClusterPair,  # noqa: F811
                                                     ) -> None:
    cluster = ray_clusters.onprem
    b = placer_ray.RayJobsBackend(cluster.site())
    deadline = time.monotonic() + 60
    # Ray's monitor writes its first report a few seconds after the head starts, and the
    # cluster is shared: wait until an earlier test's jobs have let go of their GPUs.
    while True:
        try:
            before = b.gpus()
        except BackendError:
            if time.monotonic() > deadline:
                raise
        else:
            if before.free == before.total or time.monotonic() > deadline:
                break
        time.sleep(0.5)
    assert before.total == before.free == GPUS_PER_CLUSTER, before
    sleepy = Job(name="hold", command="sleep 60", gpu_types={GPU: 1}, resources={"gpus": 6})
    placement = JobPlacement(site=cluster.name, location=f"onprem:{cluster.name}", gpu=GPU,
                             gpus=6, nodes=0, spot=False, start_h=0, end_h=0.1, cost_usd=0,
                             compute_usd=0, transfer_usd=0, transfer_h=0)
    sid = f"placer-capacity-{time.time_ns()}"
    h = b.submit(sleepy, placement, submission_id=sid, env={})
    try:
        deadline = time.monotonic() + 60
        while b.gpus().free != before.free - 6:
            assert time.monotonic() < deadline, b.gpus()
            time.sleep(0.5)
    finally:
        b.cancel(h)


def test_a_request_for_a_gpu_type_no_node_has_is_not_waiting_work() -> None:
    """A job asking for a GPU type no node advertises never takes a GPU: Ray holds it as
    infeasible, and a stopped one stays in the demand until Ray's start timeout (ray#58353).
    Counted as waiting work, it made every later on-prem wait look unbounded (it did, in the
    full suite, after the backend contract test that leaves such a job behind)."""
    node = {"gpuType:A100-80Gb": [0.0, 8.0], "CPU": [0.0, 2.0], "GPU": [0.0, 8.0]}
    demand = [[{"GPU": 1.0, "gpuType:H100-80Gb": 1.0}, 1],
              [{"GPU": 2.0, "gpu_type:A100-80GB": 2.0}, 1]]  # a key not camel-cased: the same
    pgs = [[{"bundles": [[{"GPU": 1.0, "gpuType:H100-80Gb": 1.0}, 2]],
             "strategy": "PACK"}, 1],
           [{"bundles": [[{"GPU": 4.0, "gpuType:A100-80Gb": 4.0}, 2]],
             "strategy": "STRICT_PACK"}, 1],
           [{"bundles": [[{"GPU": 5.0, "gpuType:A100-80Gb": 5.0}, 2]],
             "strategy": "STRICT_PACK"}, 1]]
    got = backend(Response(200, _report({"GPU": [0.0, 8.0]}, {"n0": node}, demand, pgs))).gpus()
    # the H100 requests and the 2x5-GPU group packed on one 8-GPU node are infeasible
    assert got.pending == ((2,), (8,))
