"""Issue 16: a pipeline that overflows the on-prem Kueue quota bursts the overflow to the cloud
Ray site when placer's strategy says so, and a job whose data may not leave on-prem waits for
quota instead.

On-prem is the real control plane of ``tests/k8s/controlplane.py`` with Kueue in front of its
GPU nodes: a ClusterQueue of 8 GPUs, so the strategy's on-prem capacity is the quota the backend
reads (``placer_k8s`` with ``queue:``). The cloud site is the project's real local Ray cluster
(``tests/backends/conftest_ray.py``, ``pair.cloud``). Four independent 4-GPU jobs: ``a`` and
``b`` fill the quota, ``c`` (no personal data) bursts, ``d`` reads PII (policy
``pii-self-hosted``: self-hosted sites only) and waits until Kueue's quota frees, then runs
on-prem. kwok runs nothing: an on-prem pod is Succeeded after ``KWOK_RUN_FOR``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import placer
from placer.backends import CapacityReporter, Handle, PrefixLayout, compute_backends_for
from placer.catalog import resolve_inventory
from placer.executor import Executor, RetryPolicy
from placer.journal import Journal
from placer.models import Cluster, Dataset, Inventory, Job, JobPlacement, Offer, Pipeline, Site
from placer.sim.registry import make_strategy
from placer_k8s import KubernetesBackend
from tests.backends.conftest_ray import ray_clusters  # noqa: F401
from tests.backends.ray_clusters import GPU, ClusterPair
from tests.k8s.controlplane import GPU_PRODUCT, ControlPlane

pytestmark = pytest.mark.k8s
pytest.importorskip("placer_ray")

ONPREM, CLOUD = "fra-k8s", "aws-eu"
QUOTA = 8
KUEUE = ("kueue.x-k8s.io", "v1beta2")
CQ, FLAVOR, QUEUE = "burst-gpus", "burst-a100", "team"
ROOT = Path(__file__).resolve().parents[2]
RUN_FOR = "4s"  # how long an on-prem pod "runs" before kwok marks it Succeeded
assert GPU == GPU_PRODUCT  # one GPU type on both sides


class OnPremRunsFor(KubernetesBackend):
    """The real backend; its pods tell kwok how long they "run" (``KWOK_RUN_FOR``)."""

    def submit(self, job: Job, placement: JobPlacement, *, submission_id: str,
               env: Mapping[str, str]) -> Handle:
        return super().submit(job, placement, submission_id=submission_id,
                              env={**env, "KWOK_RUN_FOR": RUN_FOR})


def _until(what: str, probe: Any, timeout_s: float = 90) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := probe()):
        assert time.monotonic() < deadline, f"{what} within {timeout_s:.0f} s"
        time.sleep(0.3)
    return found


def _kueue_queue(admin_api: Any) -> str:
    """A ResourceFlavor, an 8-GPU ClusterQueue and a LocalQueue in a new namespace; the
    namespace, once the ClusterQueue is Active."""
    import kubernetes.client

    custom: Any = kubernetes.client.CustomObjectsApi(admin_api)
    group, version = KUEUE
    custom.create_cluster_custom_object(group, version, "resourceflavors", {
        "apiVersion": f"{group}/{version}", "kind": "ResourceFlavor",
        "metadata": {"name": FLAVOR}})
    custom.create_cluster_custom_object(group, version, "clusterqueues", {
        "apiVersion": f"{group}/{version}", "kind": "ClusterQueue", "metadata": {"name": CQ},
        "spec": {"namespaceSelector": {}, "resourceGroups": [{
            "coveredResources": ["nvidia.com/gpu"],
            "flavors": [{"name": FLAVOR, "resources": [
                {"name": "nvidia.com/gpu", "nominalQuota": str(QUOTA)}]}]}]}})
    ns = "burst"
    core: Any = kubernetes.client.CoreV1Api(admin_api)
    core.create_namespace({"metadata": {"name": ns}})
    custom.create_namespaced_custom_object(group, version, ns, "localqueues", {
        "apiVersion": f"{group}/{version}", "kind": "LocalQueue",
        "metadata": {"name": QUEUE}, "spec": {"clusterQueue": CQ}})
    _until(f"ClusterQueue {CQ} Active", lambda: any(
        c["type"] == "Active" and c["status"] == "True" for c in custom.get_cluster_custom_object(
            group, version, "clusterqueues", CQ).get("status", {}).get("conditions", [])))
    return ns


def _inventory(plane: ControlPlane, ns: str, pair: ClusterPair) -> Inventory:
    onprem = Site(name=ONPREM, kind="onprem", location="onprem:fra", country="DE",
                  labels={"class": "self-hosted"},
                  pools=[{"gpu": GPU, "count": 16, "cost_per_gpu_hour": 1}],
                  cluster=Cluster(backend="k8s", namespace=ns, options={
                      "image": "registry.invalid/train:1", "queue": QUEUE,
                      "kubeconfig": str(plane.kubeconfig)}))
    cloud = pair.cloud.site(CLOUD, kind="cloud").model_copy(update={"offers": (
        Offer(gpu=GPU, gpus_per_node=8, on_demand=40.0, instance_type="test-8gpu"),)})
    return Inventory(name="kueue-burst", sites=(onprem, cloud))


def _pipeline() -> Pipeline:
    """Four independent 4-GPU jobs of 1 h each; ``d`` reads personal data kept on-prem."""
    customers = Dataset(name="customers", uri="file:///srv/fra/customers", size=1,
                        location="onprem:fra", tags={"classification": "pii"})

    def job(name: str, **kw: Any) -> Job:
        return Job(name=name, command=f"{sys.executable} -c 'import time; time.sleep(1)'",
                   gpu_types={GPU: 1.0}, resources={"gpus": 4}, **kw)

    return Pipeline(name="overflow", datasets=(customers,),
                    jobs=(job("a"), job("b"), job("c"), job("d", inputs=["customers"])))


def _ts(stamp: Any) -> float:
    """A Kubernetes timestamp (the client's datetime) as epoch seconds."""
    assert isinstance(stamp, datetime), stamp
    return stamp.timestamp()


def test_the_overflow_of_the_kueue_quota_bursts_to_the_cloud_and_pii_waits_for_quota(
        control_plane: ControlPlane, admin_api: Any, ray_clusters: ClusterPair,  # noqa: F811
        tmp_path: Path) -> None:
    import kubernetes.client

    if "kueue" not in control_plane.pieces:
        pytest.skip("kueue not built (tools/k8s/build.sh kueue)")
    pair = ray_clusters
    ns = _kueue_queue(admin_api)
    inventory = _inventory(control_plane, ns, pair)
    pipe = _pipeline()
    policies = placer.load_policies(ROOT / "policies" / "pii-self-hosted.yaml")
    plan = placer.plan(pipe, inventory, policies)
    assert plan.status == "placed", plan.reasons
    sites = resolve_inventory(inventory)
    backends = compute_backends_for(sites)
    backends[ONPREM] = onprem = OnPremRunsFor(next(s for s in sites if s.name == ONPREM))
    assert isinstance(onprem, CapacityReporter)
    capacity = onprem.gpus()  # the quota, not the 16 GPUs of the nodes
    assert (capacity.total, capacity.free, capacity.pending) == (QUOTA, QUOTA, ())

    journal = Journal(tmp_path / "journal.db")
    layout = PrefixLayout({s.location.key: f"file://{tmp_path}/{s.name}" for s in sites})
    # Budget 0: a job that cannot start on-prem now does not wait for it, if it may burst.
    ex = Executor(journal, backends, layout=layout, poll_interval_s=0.5,
                  retry=RetryPolicy(max_attempts=1), decision_log=tmp_path / "decisions.jsonl",
                  strategy=lambda: make_strategy("placer", 0.0))
    rid = ex.start(plan, pipeline=pipe, inventory=inventory, policies=policies).id
    deadline = time.monotonic() + 120
    while not (st := ex.step(rid)).done:
        assert time.monotonic() < deadline, f"run not done: {st}"
        time.sleep(0.5)
    assert st.state == "SUCCEEDED", st

    # -- the journal: what the strategy decided, and why --------------------------------------
    events = journal.events(rid, "strategy_decision")
    decisions = [(e.job, e.data["decision"], e.data["site"]) for e in events]
    first = {job: (kind, site) for job, kind, site in reversed(decisions)}
    assert first == {"a": ("onprem", ONPREM), "b": ("onprem", ONPREM),
                     "c": ("burst", CLOUD), "d": ("wait", None)}, decisions
    # d never bursts: it waits until the quota has room, then runs on-prem.
    assert [(k, s) for j, k, s in decisions if j == "d"] == [("wait", None), ("onprem", ONPREM)]
    c_burst = next(e for e in events if e.job == "c")
    assert f"on-prem is full (0/{QUOTA} GPUs free" in c_burst.data["reason"]
    assert c_burst.data["burst"]["site"] == CLOUD
    d_wait = next(e for e in events if e.job == "d")
    assert d_wait.data["policy"]["allowed"] == [ONPREM]
    assert d_wait.data["policy"]["denied"] == {CLOUD: ["pii-self-hosted-only"]}
    assert f"on-prem is full (0/{QUOTA} GPUs free" in d_wait.data["reason"]
    assert f"deny {CLOUD} (rule pii-self-hosted-only)" in d_wait.data["reason"]
    ran = {s.job: s.site for s in journal.steps(rid)}
    assert ran == {"a": ONPREM, "b": ONPREM, "c": CLOUD, "d": ONPREM}
    # Each decision is in the audit decision log too.
    logged = (tmp_path / "decisions.jsonl").read_text().splitlines()
    assert sum('"kind":"strategy"' in line.replace(" ", "") for line in logged) == len(events)

    # -- the real objects ---------------------------------------------------------------------
    batch: Any = kubernetes.client.BatchV1Api(admin_api)
    custom: Any = kubernetes.client.CustomObjectsApi(admin_api)
    jobs = {j.metadata.annotations["placer.dev/submission-id"]: j
            for j in batch.list_namespaced_job(ns).items}
    sid = {n: f"placer-{rid}-{n}-1" for n in "abcd"}
    assert sorted(jobs) == sorted(sid[n] for n in "abd")  # c never reached Kubernetes
    for n in "abd":
        job = jobs[sid[n]]
        assert job.metadata.labels["kueue.x-k8s.io/queue-name"] == QUEUE
        assert any(c.type == "Complete" and c.status == "True" for c in job.status.conditions)
    # d started only once a or b had finished and given back its quota.
    freed = min(_ts(jobs[sid[n]].status.completion_time) for n in "ab")
    assert _ts(jobs[sid["d"]].status.start_time) >= freed
    # Kueue admitted all three through the 8-GPU ClusterQueue, 4 GPUs each.
    workloads = custom.list_namespaced_custom_object(*KUEUE, ns, "workloads")["items"]
    admitted = {w["metadata"]["ownerReferences"][0]["name"]: w["status"]["admission"]
                for w in workloads}
    assert sorted(admitted) == sorted(jobs[sid[n]].metadata.name for n in "abd")
    for admission in admitted.values():
        assert admission["clusterQueue"] == CQ
        (pod_set,) = admission["podSetAssignments"]
        assert pod_set["flavors"] == {"nvidia.com/gpu": FLAVOR}
        assert pod_set["resourceUsage"]["nvidia.com/gpu"] == "4"
    # The cloud Ray cluster ran c and only c; the on-prem Ray cluster of the pair, nothing.
    ray_jobs = {name: sorted(i.submission_id for i in getattr(pair, name).client().list_jobs()
                             if (i.submission_id or "").startswith(f"placer-{rid}-"))
                for name in ("onprem", "cloud")}
    assert ray_jobs == {"onprem": [], "cloud": [sid["c"]]}
    assert pair.cloud.client().get_job_info(sid["c"]).status == "SUCCEEDED"
    _until("the quota free again", lambda: onprem.gpus().free == QUOTA)
