"""The Kubernetes backend reports its cluster's GPUs (placer.backends.CapacityReporter).

Up to the wire only (no control plane runs here; docs/kubernetes.md says so): Node and Pod
objects in the API's own shape, each checked against the Kubernetes 1.37 schema, read by the
rule in ``placer_k8s._capacity``, and the two list calls the backend makes, answered by the
local fake API server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from placer.backends import CapacityReporter, GpuCapacity, NodeGpus
from placer.errors import BackendError
from tests.backends.k8s_server import FakeKubeAPI

pytest.importorskip("kubernetes")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

from placer_k8s import KubernetesBackend  # noqa: E402
from placer_k8s._capacity import capacity, pod_gpus  # noqa: E402
from tests.backends.test_k8s_backend import K8S_VERSION, TOKEN, site  # noqa: E402


def node(name: str, gpus: int, *, ready: bool = True, cordoned: bool = False) -> dict[str, Any]:
    """A GPU node as ``kubectl get node -o json`` shows one (cut to what matters)."""
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "96", "memory": "1056521260Ki", "nvidia.com/gpu": str(gpus),
                         "pods": "110"},
            "allocatable": {"cpu": "95500m", "memory": "1045086252Ki",
                            "nvidia.com/gpu": str(gpus), "pods": "110"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False",
                 "reason": "KubeletHasSufficientMemory"},
                {"type": "Ready", "status": "True" if ready else "Unknown",
                 "reason": "KubeletReady" if ready else "NodeStatusUnknown"}]}}
    if cordoned:
        obj["spec"]["unschedulable"] = True
    return obj


def pod(name: str, gpus: int, *, on: str | None, phase: str = "Running", init: int = 0,
        sidecar: int = 0, limits_only: bool = False, priority: int = 0,
        created: str = "2026-12-06T10:00:00Z") -> dict[str, Any]:
    """A pod as the API serves it; ``on``: the node it is bound to (None: not scheduled)."""
    def container(cname: str, g: int, **extra: Any) -> dict[str, Any]:
        res = {"limits": {"nvidia.com/gpu": str(g)}} if limits_only else {
            "requests": {"cpu": "4", "nvidia.com/gpu": str(g)},
            "limits": {"nvidia.com/gpu": str(g)}}
        return {"name": cname, "image": "ghcr.io/acme/train:1", **extra,
                "resources": res if g else {}}

    spec: dict[str, Any] = {"containers": [container("train", gpus)], "priority": priority,
                            "restartPolicy": "Never", "schedulerName": "default-scheduler"}
    inits = ([container("warm", init)] if init else []) + (
        [container("sidecar", sidecar, restartPolicy="Always")] if sidecar else [])
    if inits:
        spec["initContainers"] = inits
    status: dict[str, Any] = {"phase": phase, "qosClass": "Burstable"}
    if on is not None:
        spec["nodeName"] = on
    elif phase == "Pending":
        status["conditions"] = [{"type": "PodScheduled", "status": "False",
                                 "reason": "Unschedulable", "message":
                                 "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "team-a", "creationTimestamp": created},
            "spec": spec, "status": status}


def listed(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    for item in items:  # each object is one the API could send
        kubernetes_validate.validate(item, K8S_VERSION, strict=True)
    return {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "4711"},
            "items": [{k: v for k, v in i.items() if k not in ("kind", "apiVersion")}
                      for i in items]}


def test_free_gpus_per_node_are_allocatable_less_what_running_pods_request() -> None:
    nodes = listed("NodeList", [node("gpu-a", 8), node("gpu-b", 8), node("gpu-c", 8,
                   cordoned=True), node("gpu-d", 8, ready=False), node("cpu-1", 0)])
    pods = listed("PodList", [
        pod("t1", 6, on="gpu-a"), pod("t2", 3, on="gpu-b", limits_only=True),
        pod("t3", 2, on="gpu-b", phase="Pending"),  # bound, image pulling: holds its GPUs
        pod("done", 8, on="gpu-a", phase="Succeeded"),
        pod("on-cordoned", 8, on="gpu-c")])
    got = capacity(nodes, pods)
    assert got == GpuCapacity(total=16, free=5, nodes=(NodeGpus("gpu-a", 8, 2),
                                                       NodeGpus("gpu-b", 8, 3)))
    assert got.fits(3) and not got.fits(4)  # 5 free in all, at most 3 on one node


def test_pods_waiting_for_a_node_are_pending_demand_in_the_schedulers_order() -> None:
    nodes = listed("NodeList", [node("gpu-a", 8)])
    pods = listed("PodList", [
        pod("old", 4, on=None, phase="Pending", created="2026-12-06T09:00:00Z"),
        pod("urgent", 2, on=None, phase="Pending", priority=1000,
            created="2026-12-06T11:00:00Z"),
        pod("huge", 16, on=None, phase="Pending"),  # no node has 16: it never runs
        pod("cpu", 0, on=None, phase="Pending")])
    got = capacity(nodes, pods)
    assert got.pending == ((2,), (4,)) and got.available() == 2 and got.fits(2)


def test_a_pod_holds_its_effective_request() -> None:
    assert pod_gpus(pod("p", 2, on="n", init=4)) == 4  # an init container runs alone first
    assert pod_gpus(pod("p", 2, on="n", sidecar=1)) == 3  # a sidecar runs beside the app
    assert pod_gpus(pod("p", 2, on="n", init=1, sidecar=1)) == 3


@pytest.mark.parametrize(("nodes", "pods"), [
    ({"kind": "Status", "status": "Failure"}, {"kind": "PodList", "items": []}),
    ({"kind": "NodeList", "items": None}, {"kind": "PodList", "items": []}),
    ({"kind": "NodeList", "items": [{"metadata": {"name": "n"}, "status": {
        "allocatable": {"nvidia.com/gpu": "1500m"}}}]}, {"kind": "PodList", "items": []}),
])
def test_answers_it_cannot_read_are_refused(nodes: dict[str, Any], pods: dict[str, Any]) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        capacity(nodes, pods)


# -- the wire ---------------------------------------------------------------------------------
@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeAPI]:
    monkeypatch.setenv("PLACER_TEST_K8S_TOKEN", TOKEN)
    server = FakeKubeAPI(token=TOKEN).start()
    yield server
    server.stop()


def test_the_backend_lists_every_node_and_every_live_pod(api: FakeKubeAPI) -> None:
    api.node_list = listed("NodeList", [node("gpu-a", 4), node("gpu-b", 4)])
    api.pod_list = listed("PodList", [pod("t1", 3, on="gpu-a"), pod("t2", 3, on="gpu-b"),
                                      pod("w", 2, on=None, phase="Pending")])
    backend = KubernetesBackend(site(address=api.url), timeout_s=5)
    assert isinstance(backend, CapacityReporter)
    got = backend.gpus()
    assert got == GpuCapacity(total=8, free=2, nodes=(NodeGpus("gpu-a", 4, 1),
                                                      NodeGpus("gpu-b", 4, 1)), pending=((2,),))
    assert not got.fits(2)
    calls = [(r.method, r.path, r.query) for r in api.requests]
    assert calls == [("GET", "/api/v1/nodes", {}),
                     ("GET", "/api/v1/pods",
                      {"fieldSelector": ["status.phase!=Succeeded,status.phase!=Failed"]})]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in api.requests)


def test_an_answer_it_cannot_read_is_a_backend_error_naming_the_site(api: FakeKubeAPI) -> None:
    api.node_list = {"kind": "NodeList", "apiVersion": "v1", "items": [
        {"metadata": {"name": "n"}, "status": {"allocatable": {"nvidia.com/gpu": "half"}}}]}
    api.pod_list = {"kind": "PodList", "apiVersion": "v1", "items": []}
    with pytest.raises(BackendError, match=r"^contract-site: the API server's nodes and pods "
                       r"give no usable GPU figures \(ValueError: node n: GPU quantity 'half'"):
        KubernetesBackend(site(address=api.url), timeout_s=5).gpus()


def test_a_list_the_api_server_refuses_is_a_backend_error(api: FakeKubeAPI) -> None:
    # api.node_list unset: the fake answers a Status error (404), and the strategy refuses
    with pytest.raises(BackendError, match="contract-site"):
        KubernetesBackend(site(address=api.url), timeout_s=5).gpus()
