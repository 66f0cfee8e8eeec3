"""A Kubernetes site behind a Kueue LocalQueue (``options.queue``): the Job placer submits, and
the quota read as capacity, on object shapes Kueue v0.17 wrote against the real control plane
of ``tests/k8s`` (where ``test_placer_k8s.py -m k8s`` runs the same path end to end)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from placer.errors import BackendError
from placer.models import Cluster, Job, JobPlacement, Site
from placer_k8s import KubernetesBackend
from placer_k8s._capacity import queue_capacity

JOB = Job(name="train", command="python train.py", gpu_types={"A100-80GB": 1},
          resources={"gpus": 4})
PLACEMENT = JobPlacement(site="fra", location="onprem:fra", gpu="A100-80GB", gpus=4, nodes=1,
                         spot=False, start_h=0, end_h=1, cost_usd=0, compute_usd=0,
                         transfer_usd=0, transfer_h=0)


def site(**options: str) -> Site:
    return Site(name="fra", kind="onprem", location="onprem:fra", country="DE",
                pools=[{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}],
                cluster=Cluster(backend="k8s", namespace="ml",
                                options={"image": "registry.invalid/train:1", **options}))


def test_a_queued_site_labels_its_jobs_for_kueue_and_creates_them_suspended() -> None:
    m = KubernetesBackend(site(queue="team")).manifest(JOB, PLACEMENT, submission_id="s",
                                                       env={})
    kubernetes_validate.validate(m, "1.37.0", strict=True)
    assert m["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team"
    assert m["spec"]["suspend"] is True and m["spec"]["backoffLimit"] == 0
    plain = KubernetesBackend(site()).manifest(JOB, PLACEMENT, submission_id="s", env={})
    assert "suspend" not in plain["spec"]
    assert "kueue.x-k8s.io/queue-name" not in plain["metadata"]["labels"]


@pytest.mark.parametrize(("options", "message"), [
    ({"queue": "team", "workload": "rayjob"}, "workload: job only, not rayjob"),
    ({"queue": "Team Queue"}, "'Team Queue' is not a Kubernetes object name"),
])
def test_a_queue_placer_cannot_honour_is_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(BackendError, match=message):
        KubernetesBackend(site(**options))


def cluster_queue(quota: str, used: str) -> dict[str, Any]:
    gpu = [{"borrowed": "0", "name": "nvidia.com/gpu", "total": used}]
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
            "metadata": {"name": "gpus"},
            "spec": {"namespaceSelector": {}, "resourceGroups": [{
                "coveredResources": ["nvidia.com/gpu"],
                "flavors": [{"name": "a100", "resources": [
                    {"name": "nvidia.com/gpu", "nominalQuota": quota}]}]}]},
            "status": {"admittedWorkloads": 0, "pendingWorkloads": 0,
                       "flavorsReservation": [{"name": "a100", "resources": gpu}],
                       "flavorsUsage": [{"name": "a100", "resources": gpu}]}}


def workload(name: str, gpus: int, *, created: str, queue: str = "team",
             reserved: bool = False, finished: bool = False, count: int = 1) -> dict[str, Any]:
    conditions = [{"type": "QuotaReserved", "status": "True" if reserved else "False",
                   "reason": "QuotaReserved" if reserved else "Pending"}]
    if finished:
        conditions.append({"type": "Finished", "status": "True", "reason": "Succeeded"})
    status: dict[str, Any] = {"conditions": conditions}
    if reserved:
        status["admission"] = {"clusterQueue": "gpus", "podSetAssignments": []}
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
            "metadata": {"name": name, "namespace": "ml", "creationTimestamp": created},
            "spec": {"queueName": queue, "podSets": [{"name": "main", "count": count,
                     "template": {"spec": {"restartPolicy": "Never", "containers": [{
                         "name": "job", "image": "x",
                         "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]}}}]},
            "status": status}


def workloads(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "WorkloadList", "items": list(items)}


def test_the_quota_less_its_use_is_free_and_unadmitted_workloads_wait_oldest_first() -> None:
    cap = queue_capacity(cluster_queue("8", "2"), workloads(
        workload("late", 4, created="2026-01-01T00:02:00Z"),
        workload("early", 2, created="2026-01-01T00:01:00Z", count=2),
        workload("other-queue", 8, created="2026-01-01T00:00:00Z", queue="other"),
        workload("done", 8, created="2026-01-01T00:00:00Z", finished=True),
    ), "team")
    assert (cap.total, cap.free, cap.nodes) == (8, 6, None)
    assert cap.pending == ((2, 2), (4,))


def test_admitted_workloads_count_when_kueue_has_not_written_its_usage_yet() -> None:
    # As seen against Kueue v0.17: a Job admitted and running, its ClusterQueue still at 0.
    cap = queue_capacity(cluster_queue("4", "0"), workloads(
        workload("running", 4, created="2026-01-01T00:00:00Z", reserved=True),
        workload("waits", 4, created="2026-01-01T00:01:00Z")), "team")
    assert (cap.total, cap.free, cap.pending) == (4, 0, ((4,),))
    assert not cap.fits(1)


HALF_GPU = [{"flavors": [{"name": "a", "resources": [
    {"name": "nvidia.com/gpu", "nominalQuota": "1.5"}]}]}]


@pytest.mark.parametrize(("broken", "message"), [
    ({"kind": "Status"}, "not a ClusterQueue"),
    ({**cluster_queue("4", "0"), "spec": {"resourceGroups": HALF_GPU}}, "not a whole number"),
])
def test_a_cluster_queue_without_whole_gpu_figures_is_refused(broken: dict[str, Any],
                                                               message: str) -> None:
    with pytest.raises(ValueError, match=message):
        queue_capacity(broken, workloads(), "team")
