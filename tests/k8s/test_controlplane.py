"""The control plane fixture gives a real API server: authentication, RBAC and the official
client all behave as on a cluster (issue 16's groundwork)."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from typing import Any

import pytest

from tests.k8s.controlplane import ControlPlane

pytestmark = pytest.mark.k8s


def _job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "job", "image": "busybox", "command": ["true"]}]}}},
    }


def test_api_server_answers_with_its_version(control_plane: ControlPlane) -> None:
    context = ssl.create_default_context(cafile=str(control_plane.workdir / "pki" / "ca.crt"))
    bearer = {"Authorization": f"Bearer {control_plane.admin_token}"}
    request = urllib.request.Request(f"{control_plane.server}/version", headers=bearer)
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        version = json.load(response)
    assert version["gitVersion"].startswith("v1.")
    # Anonymous requests are refused: authentication is real.
    anonymous = urllib.request.Request(f"{control_plane.server}/api/v1/namespaces")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, context=context, timeout=10)
    refused.value.close()
    assert refused.value.code in (401, 403)


def test_client_creates_and_reads_a_namespace_and_a_job(admin_api: Any) -> None:
    import kubernetes.client

    api = admin_api
    # Any: the tests pass plain dicts, which the client serializes as they are.
    core: Any = kubernetes.client.CoreV1Api(api)
    batch: Any = kubernetes.client.BatchV1Api(api)
    core.create_namespace({"metadata": {"name": "placer-ns"}})
    assert core.read_namespace("placer-ns").status.phase == "Active"
    batch.create_namespaced_job("placer-ns", _job("train"))
    job = batch.read_namespaced_job("train", "placer-ns")
    assert job.spec.backoff_limit == 0
    assert job.spec.template.spec.containers[0].command == ["true"]
    # A second create of the same name is a real 409 conflict.
    with pytest.raises(kubernetes.client.ApiException) as conflict:
        batch.create_namespaced_job("placer-ns", _job("train"))
    assert conflict.value.status == 409


def test_rbac_refuses_a_service_account_without_create_jobs(
        control_plane: ControlPlane, admin_api: Any) -> None:
    import kubernetes.client

    admin = admin_api
    core: Any = kubernetes.client.CoreV1Api(admin)
    rbac: Any = kubernetes.client.RbacAuthorizationV1Api(admin)
    ns = "placer-rbac"
    core.create_namespace({"metadata": {"name": ns}})
    core.create_namespaced_service_account(ns, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(ns, {
        "metadata": {"name": "job-reader"},
        "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "reader-reads-jobs"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "job-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]})
    token = core.create_namespaced_service_account_token(
        "reader", ns, {"spec": {"expirationSeconds": 600}}).status.token

    config = kubernetes.client.Configuration()
    config.host = control_plane.server
    config.ssl_ca_cert = str(control_plane.workdir / "pki" / "ca.crt")
    config.api_key = {"authorization": token}
    config.api_key_prefix = {"authorization": "Bearer"}
    with kubernetes.client.ApiClient(config) as sa_api:
        batch: Any = kubernetes.client.BatchV1Api(sa_api)
        assert batch.list_namespaced_job(ns).items == []  # the granted verb works
        with pytest.raises(kubernetes.client.ApiException) as denied:
            batch.create_namespaced_job(ns, _job("nope"))
    assert denied.value.status == 403
    body = json.loads(denied.value.body or "{}")
    assert body["reason"] == "Forbidden"
    assert f"system:serviceaccount:{ns}:reader" in body["message"]
    assert 'cannot create resource "jobs"' in body["message"]
    assert f'in the namespace "{ns}"' in body["message"]


def test_job_controller_makes_a_pod_that_the_scheduler_finds_no_node_for(
        control_plane: ControlPlane, admin_api: Any) -> None:
    """With kube-controller-manager and kube-scheduler running, a Job gets a real pod, and with
    no node matching its selector the scheduler marks it Unschedulable."""
    import kubernetes.client

    missing = {"kube-controller-manager", "kube-scheduler"} - set(control_plane.pieces)
    if missing:
        pytest.skip(f"not built: {', '.join(sorted(missing))} (tools/k8s/build.sh)")
    core: Any = kubernetes.client.CoreV1Api(admin_api)
    batch: Any = kubernetes.client.BatchV1Api(admin_api)
    ns = "placer-sched"
    core.create_namespace({"metadata": {"name": ns}})
    job = _job("waits")  # kwok's nodes are not in this zone: no node fits
    job["spec"]["template"]["spec"]["nodeSelector"] = {"topology.kubernetes.io/zone": "nowhere"}
    batch.create_namespaced_job(ns, job)
    deadline = time.monotonic() + 60
    conditions: list[Any] = []
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(ns, label_selector="batch.kubernetes.io/job-name=waits")
        if pods.items:
            conditions = pods.items[0].status.conditions or []
            if any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conditions):
                break
        time.sleep(0.5)
    else:
        pytest.fail(f"no Unschedulable pod for Job waits within 60 s: {conditions}")
    assert len(pods.items) == 1
    assert pods.items[0].spec.node_name is None


def _wait_for(what: str, probe: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout:.0f} s")


def test_kueue_activates_a_cluster_queue_and_makes_a_workload_for_a_queued_job(
        control_plane: ControlPlane, admin_api: Any) -> None:
    """Kueue's CRDs are served and its controller reconciles: a ClusterQueue with a GPU quota
    becomes Active, and a Job labelled for a LocalQueue gets a Workload asking for its GPUs."""
    import kubernetes.client

    if "kueue" not in control_plane.pieces:
        pytest.skip("kueue not built (tools/k8s/build.sh kueue)")
    custom: Any = kubernetes.client.CustomObjectsApi(admin_api)
    core: Any = kubernetes.client.CoreV1Api(admin_api)
    batch: Any = kubernetes.client.BatchV1Api(admin_api)
    group, version = "kueue.x-k8s.io", "v1beta2"
    custom.create_cluster_custom_object(group, version, "resourceflavors", {
        "apiVersion": f"{group}/{version}", "kind": "ResourceFlavor",
        "metadata": {"name": "a100"}})
    custom.create_cluster_custom_object(group, version, "clusterqueues", {
        "apiVersion": f"{group}/{version}", "kind": "ClusterQueue",
        "metadata": {"name": "gpus"},
        "spec": {"namespaceSelector": {}, "resourceGroups": [{
            "coveredResources": ["cpu", "nvidia.com/gpu"],
            "flavors": [{"name": "a100", "resources": [
                {"name": "cpu", "nominalQuota": "8"},
                {"name": "nvidia.com/gpu", "nominalQuota": "4"}]}]}]}})
    ns = "placer-kueue"
    core.create_namespace({"metadata": {"name": ns}})
    custom.create_namespaced_custom_object(group, version, ns, "localqueues", {
        "apiVersion": f"{group}/{version}", "kind": "LocalQueue",
        "metadata": {"name": "team"}, "spec": {"clusterQueue": "gpus"}})

    def active() -> bool:
        cq = custom.get_cluster_custom_object(group, version, "clusterqueues", "gpus")
        return any(c["type"] == "Active" and c["status"] == "True"
                   for c in cq.get("status", {}).get("conditions", []))

    _wait_for("ClusterQueue gpus Active", active)

    job = _job("queued")
    job["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "team"}
    job["spec"]["suspend"] = True  # what Kueue's webhook would set; not registered yet
    job["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}
    batch.create_namespaced_job(ns, job)

    def workload() -> Any:
        items = custom.list_namespaced_custom_object(group, version, ns, "workloads")["items"]
        return items[0] if items else None

    wl = _wait_for("a Workload for Job queued", workload)
    assert wl["spec"]["queueName"] == "team"
    requests = wl["spec"]["podSets"][0]["template"]["spec"]["containers"][0]["resources"]
    assert requests["limits"]["nvidia.com/gpu"] == "2"
