"""placer's Kubernetes backend against a real control plane (issue 16): the API server,
the Job controller, the scheduler and kwok's fake GPU nodes of ``tests/k8s/controlplane.py``.

kwok runs nothing: a pod it manages is Running, then Succeeded, or Failed when its env says so
(``tests/k8s/kwok-stages.yaml``). Everything else is the real thing: admission, RBAC, quotas,
the Job controller's conditions, the scheduler's taints and selectors.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import placer
from placer.backends import TERMINAL_STATES, Handle, PrefixLayout
from placer.errors import BackendError, SiteUnreachableError
from placer.executor import Executor, RetryPolicy, Run
from placer.journal import Journal
from placer.models import Cluster, Inventory, Job, JobPlacement, Pipeline, Site
from placer.policy import PolicySet
from placer_k8s import KubernetesBackend, object_name
from tests.backends.contract import ComputeBackendContract
from tests.k8s.controlplane import GPU_PRODUCT, GPUS_PER_NODE, NODES, ControlPlane

pytestmark = pytest.mark.k8s

SITE = "fra-k8s"
_ns = itertools.count()


def _namespace(admin_api: Any, prefix: str) -> str:
    import kubernetes.client

    ns = f"{prefix}-{next(_ns)}"
    core: Any = kubernetes.client.CoreV1Api(admin_api)
    core.create_namespace({"metadata": {"name": ns}})
    return ns


def site(plane: ControlPlane, namespace: str, *, address: str | None = None,
         name: str = SITE, **options: str) -> Site:
    """The on-prem site whose cluster is the fixture's control plane: through its kubeconfig,
    or through ``cluster.address`` (``address``) with a token in ``PLACER_TEST_K8S_TOKEN``."""
    opts = {"image": "registry.invalid/train:1", **options}
    if address:
        cluster = Cluster(backend="k8s", address=address, namespace=namespace,
                          token_env="PLACER_TEST_K8S_TOKEN",
                          options={**opts, "ca_file": str(plane.workdir / "pki" / "ca.crt")})
    else:
        cluster = Cluster(backend="k8s", namespace=namespace,
                          options={**opts, "kubeconfig": str(plane.kubeconfig)})
    return Site(name=name, kind="onprem", location="onprem:fra", country="DE",
                pools=[{"gpu": GPU_PRODUCT, "count": 2 * GPUS_PER_NODE,
                        "cost_per_gpu_hour": 1}],
                cluster=cluster)


def gpu_job(name: str = "train", **fields: Any) -> Job:
    return Job(name=name, command="python train.py", gpu_types={GPU_PRODUCT: 1},
               resources={"gpus": 2}, **fields)


def gpu_placement(gpus: int = 2) -> JobPlacement:
    return JobPlacement(site=SITE, location="onprem:fra", gpu=GPU_PRODUCT, gpus=gpus, nodes=1,
                        spot=False, start_h=0, end_h=1, cost_usd=0, compute_usd=0,
                        transfer_usd=0, transfer_h=0)


def states_until_terminal(backend: KubernetesBackend, handle: Handle,
                          timeout_s: float = 90) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = backend.status(handle)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in TERMINAL_STATES:
            return seen
        time.sleep(0.2)
    pytest.fail(f"{handle} not terminal within {timeout_s:.0f} s; saw {seen}")


def pods_of(admin_api: Any, ns: str, job_name: str) -> list[Any]:
    import kubernetes.client

    core: Any = kubernetes.client.CoreV1Api(admin_api)
    return list(core.list_namespaced_pod(
        ns, label_selector=f"batch.kubernetes.io/job-name={job_name}").items)


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    return lambda token: monkeypatch.setenv("PLACER_TEST_K8S_TOKEN", token)


# -- nodes that run nothing -------------------------------------------------------------------
def test_kwok_nodes_are_ready_gpu_nodes_that_placer_reads_as_capacity(
        control_plane: ControlPlane, admin_api: Any) -> None:
    import kubernetes.client

    if "kwok" not in control_plane.pieces:
        pytest.skip("kwok not built (tools/k8s/build.sh kwok)")
    core: Any = kubernetes.client.CoreV1Api(admin_api)
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert set(nodes) == set(NODES)
    gpu_nodes = [n for n in nodes.values() if NODES[n.metadata.name]["gpus"]]
    assert len(gpu_nodes) == 2
    for node in gpu_nodes:
        assert node.status.allocatable["nvidia.com/gpu"] == str(GPUS_PER_NODE)
        assert [(t.key, t.effect) for t in node.spec.taints] == [("nvidia.com/gpu",
                                                                  "NoSchedule")]
    # The backend's live capacity, read from the real API server (other tests' pods may hold
    # GPUs meanwhile, so only the totals are exact).
    ns = _namespace(admin_api, "capacity")
    capacity = KubernetesBackend(site(control_plane, ns)).gpus()
    assert capacity.total == 2 * GPUS_PER_NODE
    assert sorted(n.total for n in capacity.nodes or ()) == [GPUS_PER_NODE, GPUS_PER_NODE]


# -- placer_k8s end to end ---------------------------------------------------------------------
def test_a_gpu_job_is_scheduled_on_a_gpu_node_and_runs_to_success(
        control_plane: ControlPlane, admin_api: Any) -> None:
    ns = _namespace(admin_api, "run")
    backend = KubernetesBackend(site(control_plane, ns))
    handle = backend.submit(gpu_job(), gpu_placement(), submission_id="run-1.train.1",
                            env={"PLACER_JOB": "train", "KWOK_RUN_FOR": "3s"})
    assert handle.id == object_name("run-1.train.1")
    seen = states_until_terminal(backend, handle)
    assert seen[-1] == "SUCCEEDED" and "RUNNING" in seen
    assert seen == sorted(seen, key=["PENDING", "RUNNING", "SUCCEEDED"].index)
    (pod,) = pods_of(admin_api, ns, handle.id)
    # The nodeSelector and toleration placer writes put it on a (tainted) GPU node.
    assert NODES[pod.spec.node_name]["gpus"] == GPUS_PER_NODE
    assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "2"
    assert pod.status.phase == "Succeeded"
    assert backend.find("run-1.train.1") == handle


def test_a_failed_pod_fails_the_job_at_once_kubernetes_does_not_retry_it(
        control_plane: ControlPlane, admin_api: Any) -> None:
    import kubernetes.client

    ns = _namespace(admin_api, "fail")
    backend = KubernetesBackend(site(control_plane, ns))
    handle = backend.submit(gpu_job(), gpu_placement(), submission_id="run-2.train.1",
                            env={"KWOK_EXIT_CODE": "3"})
    assert states_until_terminal(backend, handle)[-1] == "FAILED"
    batch: Any = kubernetes.client.BatchV1Api(admin_api)
    job = batch.read_namespaced_job(handle.id, ns)
    assert job.spec.backoff_limit == 0
    failed = {c.type: c for c in job.status.conditions if c.status == "True"}["Failed"]
    assert failed.reason == "BackoffLimitExceeded"
    time.sleep(2)  # had Kubernetes meant to retry, a second pod would be there by now
    (pod,) = pods_of(admin_api, ns, handle.id)
    assert pod.status.container_statuses[0].state.terminated.exit_code == 3


class FailsFirstAttempt(KubernetesBackend):
    """The real backend; its pods tell kwok to fail attempt 1 (``KWOK_FAIL_ON_ATTEMPT``)."""

    def submit(self, job: Job, placement: JobPlacement, *, submission_id: str,
               env: Mapping[str, str]) -> Handle:
        return super().submit(job, placement, submission_id=submission_id,
                              env={**env, "KWOK_FAIL_ON_ATTEMPT": "1"})


def test_the_executor_retries_a_failed_job_as_a_new_attempt_not_kubernetes(
        control_plane: ControlPlane, admin_api: Any, tmp_path: Path) -> None:
    """A pipeline on this cluster: the first attempt's pod fails, placer's retry policy submits
    attempt 2 as a new Job, which succeeds. Each Job has exactly one pod."""
    import kubernetes.client

    ns = _namespace(admin_api, "retry")
    the_site = site(control_plane, ns)
    inventory = Inventory(name="k8s", sites=(the_site,))
    pipe = Pipeline(name="k8s", jobs=(gpu_job("train"),))
    plan = placer.plan(pipe, inventory, PolicySet(name="none"))
    assert plan.status == "placed", plan.reasons
    journal = Journal(tmp_path / "journal.db")
    ex = Executor(journal, {SITE: FailsFirstAttempt(the_site)},
                  layout=PrefixLayout({"onprem:fra": f"file://{tmp_path}/out"}),
                  poll_interval_s=0.3, retry=RetryPolicy(max_attempts=3, base_s=0.5, jitter=0))
    rid = ex.start(plan, pipeline=pipe, inventory=inventory).id
    deadline = time.monotonic() + 120
    while not (st := ex.step(rid)).done:
        assert time.monotonic() < deadline, f"run not done: {st}"
        time.sleep(0.3)
    assert st.state == "SUCCEEDED"
    batch: Any = kubernetes.client.BatchV1Api(admin_api)
    jobs = {j.metadata.annotations["placer.dev/submission-id"]: j
            for j in batch.list_namespaced_job(ns).items}
    assert sorted(jobs) == [f"placer-{rid}-train-1", f"placer-{rid}-train-2"]
    outcome = {sid: [c.type for c in j.status.conditions if c.status == "True"]
               for sid, j in jobs.items()}
    assert "Failed" in outcome[f"placer-{rid}-train-1"]
    assert "Complete" in outcome[f"placer-{rid}-train-2"]
    for job in jobs.values():
        assert job.spec.backoff_limit == 0
        assert len(pods_of(admin_api, ns, job.metadata.name)) == 1


def test_a_second_submit_adopts_the_job_the_first_created(
        control_plane: ControlPlane, admin_api: Any) -> None:
    import kubernetes.client

    ns = _namespace(admin_api, "adopt")
    backend = KubernetesBackend(site(control_plane, ns))
    first = backend.submit(gpu_job(), gpu_placement(), submission_id="run-3.train.1", env={})
    # A restarted placer (a new client) submits the same id: the API's 409 is adopted.
    again = KubernetesBackend(site(control_plane, ns)).submit(
        gpu_job(), gpu_placement(), submission_id="run-3.train.1", env={})
    assert again == first
    batch: Any = kubernetes.client.BatchV1Api(admin_api)
    assert [j.metadata.name for j in batch.list_namespaced_job(ns).items] == [first.id]
    # A Job of that name made by someone else is not adopted.
    other = backend.manifest(gpu_job(), gpu_placement(), submission_id="run-4.train.1", env={})
    other["metadata"]["annotations"]["placer.dev/submission-id"] = "someone-else"
    batch.create_namespaced_job(ns, other)
    with pytest.raises(BackendError, match=r"is not submission 'run-4\.train\.1'"):
        backend.submit(gpu_job(), gpu_placement(), submission_id="run-4.train.1", env={})
    assert backend.find("run-4.train.1") is None  # nor found as placer's


def test_cancel_deletes_a_running_job_and_its_pod(
        control_plane: ControlPlane, admin_api: Any) -> None:
    ns = _namespace(admin_api, "cancel")
    backend = KubernetesBackend(site(control_plane, ns))
    handle = backend.submit(gpu_job(), gpu_placement(), submission_id="run-5.train.1",
                            env={"KWOK_RUN_FOR": "10m"})
    deadline = time.monotonic() + 60
    while backend.status(handle) != "RUNNING":
        assert time.monotonic() < deadline, "never RUNNING"
        time.sleep(0.2)
    backend.cancel(handle)
    assert states_until_terminal(backend, handle)[-1] == "STOPPED"
    backend.cancel(handle)  # a 404 now: idempotent
    deadline = time.monotonic() + 60
    while pods_of(admin_api, ns, handle.id):  # background propagation: the pod goes too
        assert time.monotonic() < deadline, "the Job's pod outlived it"
        time.sleep(0.5)


def test_a_service_account_without_create_jobs_gets_an_error_naming_verb_and_namespace(
        control_plane: ControlPlane, admin_api: Any,
        token_env: Callable[[str], None]) -> None:
    import kubernetes.client

    ns = _namespace(admin_api, "rbac")
    core: Any = kubernetes.client.CoreV1Api(admin_api)
    rbac: Any = kubernetes.client.RbacAuthorizationV1Api(admin_api)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "placer"}})
    rbac.create_namespaced_role(ns, {
        "metadata": {"name": "jobs-read-only"},
        "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "placer-reads-jobs"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "jobs-read-only"},
        "subjects": [{"kind": "ServiceAccount", "name": "placer", "namespace": ns}]})
    token = core.create_namespaced_service_account_token(
        "placer", ns, {"spec": {"expirationSeconds": 600}}).status.token
    token_env(token)
    backend = KubernetesBackend(site(control_plane, ns, address=control_plane.server))
    assert backend.find("run-6.train.1") is None  # get is granted: a 404, not a refusal
    with pytest.raises(BackendError) as denied:
        backend.submit(gpu_job(), gpu_placement(), submission_id="run-6.train.1", env={})
    message = str(denied.value)
    assert message.startswith(f"{SITE}: access denied by the Kubernetes API (create jobs.batch "
                              f"{object_name('run-6.train.1')} in namespace {ns}: HTTP 403")
    assert "token_env PLACER_TEST_K8S_TOKEN" in message
    assert token not in message


def test_a_resource_quota_refusing_the_job_is_reported_as_a_quota_not_as_access(
        control_plane: ControlPlane, admin_api: Any) -> None:
    import kubernetes.client

    ns = _namespace(admin_api, "quota")
    core: Any = kubernetes.client.CoreV1Api(admin_api)
    core.create_namespaced_resource_quota(ns, {
        "metadata": {"name": "no-more-jobs"}, "spec": {"hard": {"count/jobs.batch": "0"}}})
    deadline = time.monotonic() + 30
    while not core.read_namespaced_resource_quota("no-more-jobs", ns).status.hard:
        # The quota controller fills status in; until then admission refuses "status unknown".
        assert time.monotonic() < deadline, "the quota controller never synced the quota"
        time.sleep(0.2)
    backend = KubernetesBackend(site(control_plane, ns))
    with pytest.raises(BackendError) as refused:
        backend.submit(gpu_job(), gpu_placement(), submission_id="run-7.train.1", env={})
    error = str(refused.value)
    assert error == (f"{SITE}: a ResourceQuota refused create jobs.batch "
                     f"{object_name('run-7.train.1')} in namespace {ns} (exceeded quota: "
                     f"no-more-jobs, requested: count/jobs.batch=1, used: count/jobs.batch=0, "
                     f"limited: count/jobs.batch=0)")


# -- Kueue ------------------------------------------------------------------------------------
KUEUE = ("kueue.x-k8s.io", "v1beta2")


def _until(what: str, probe: Callable[[], Any], timeout_s: float = 90) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := probe()):
        assert time.monotonic() < deadline, f"{what} within {timeout_s:.0f} s"
        time.sleep(0.3)
    return found


def test_kueue_holds_a_job_over_quota_as_pending_and_placer_reads_the_quota(
        control_plane: ControlPlane, admin_api: Any) -> None:
    """A site with ``queue:``: placer's Jobs carry Kueue's label and start suspended; with a
    4-GPU quota, a second 4-GPU Job waits (PENDING, not FAILED) until the first is cancelled,
    and ``gpus()`` reports the quota, its use and the waiting Job."""
    import kubernetes.client

    if "kueue" not in control_plane.pieces:
        pytest.skip("kueue not built (tools/k8s/build.sh kueue)")
    custom: Any = kubernetes.client.CustomObjectsApi(admin_api)
    batch: Any = kubernetes.client.BatchV1Api(admin_api)
    group, version = KUEUE
    custom.create_cluster_custom_object(group, version, "resourceflavors", {
        "apiVersion": f"{group}/{version}", "kind": "ResourceFlavor",
        "metadata": {"name": "placer-a100"}})
    custom.create_cluster_custom_object(group, version, "clusterqueues", {
        "apiVersion": f"{group}/{version}", "kind": "ClusterQueue",
        "metadata": {"name": "placer-gpus"},
        "spec": {"namespaceSelector": {}, "resourceGroups": [{
            "coveredResources": ["nvidia.com/gpu"],
            "flavors": [{"name": "placer-a100", "resources": [
                {"name": "nvidia.com/gpu", "nominalQuota": "4"}]}]}]}})
    ns = _namespace(admin_api, "kueue")
    custom.create_namespaced_custom_object(group, version, ns, "localqueues", {
        "apiVersion": f"{group}/{version}", "kind": "LocalQueue",
        "metadata": {"name": "team"}, "spec": {"clusterQueue": "placer-gpus"}})
    _until("ClusterQueue placer-gpus Active", lambda: any(
        c["type"] == "Active" and c["status"] == "True" for c in custom.get_cluster_custom_object(
            group, version, "clusterqueues", "placer-gpus").get("status", {}).get(
            "conditions", [])))

    backend = KubernetesBackend(site(control_plane, ns, queue="team"))
    first = backend.submit(gpu_job(), gpu_placement(4), submission_id="q.train.1",
                           env={"KWOK_RUN_FOR": "10m"})
    job = batch.read_namespaced_job(first.id, ns)
    assert job.metadata.labels["kueue.x-k8s.io/queue-name"] == "team"
    _until("the first Job admitted and running", lambda: backend.status(first) == "RUNNING")
    second = backend.submit(gpu_job(), gpu_placement(4), submission_id="q.train.2",
                            env={"KWOK_RUN_FOR": "1s"})

    def waiting() -> Any:
        cap = backend.gpus()
        return cap if cap.pending else None

    capacity = _until("the second Job's Workload waiting for quota", waiting)
    assert (capacity.total, capacity.free, capacity.pending) == (4, 0, ((4,),))
    assert not capacity.fits(1)
    assert backend.status(second) == "PENDING"
    assert batch.read_namespaced_job(second.id, ns).spec.suspend is True
    assert pods_of(admin_api, ns, second.id) == []

    backend.cancel(first)  # its Workload goes with it, and the quota with that
    assert states_until_terminal(backend, second)[-1] == "SUCCEEDED"
    _until("the quota free again", lambda: backend.gpus().free == 4)


# -- the compute contract suite the Ray backend passes, against the real plane ----------------
class Forwarder:
    """A TCP forwarder to the API server, so a test can make one site unreachable (connection
    refused) without stopping the control plane the other tests share."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("https://").rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.listener.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accept() and stops listening at once
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for conn in self.conns:
            conn.close()


class TestContractOnARealControlPlane(ComputeBackendContract):
    """The contract's jobs run on kwok's CPU node: ``contract-ok`` ends Succeeded after 1 s,
    ``contract-long`` (``sleep 600``) stays Running until cancelled. Its log is kwok's canned
    log (it ran nothing), read through the API server's real pods/log proxy to the node."""

    site = "contract-site"

    @pytest.fixture
    def namespace(self, admin_api: Any) -> str:
        return _namespace(admin_api, "contract")

    @pytest.fixture
    def forwarder(self, control_plane: ControlPlane) -> Iterator[Forwarder]:
        fwd = Forwarder(control_plane.server)
        yield fwd
        fwd.stop()

    @pytest.fixture
    def reopen(self, control_plane: ControlPlane, namespace: str, forwarder: Forwarder,
               token_env: Callable[[str], None]) -> Callable[[], KubernetesBackend]:
        token_env(control_plane.admin_token)
        return lambda: KubernetesBackend(
            site(control_plane, namespace, address=forwarder.url, name=self.site), timeout_s=10)

    @pytest.fixture
    def backend(self, reopen: Callable[[], KubernetesBackend]) -> KubernetesBackend:
        return reopen()

    @pytest.fixture
    def take_down(self, forwarder: Forwarder) -> Callable[[], None]:
        return forwarder.stop

    @pytest.fixture
    def sleep(self) -> Callable[[], None]:
        return lambda: time.sleep(0.2)

    @pytest.fixture
    def sid(self) -> str:
        return f"placer-contract-{next(_ns)}"


# -- a pipeline on this cluster, driven by the real Executor -----------------------------------
class RunsFor(KubernetesBackend):
    """The real backend; each job's pods stay Running as long as ``run_for`` says (kwok's
    ``KWOK_RUN_FOR``, keyed by placer's ``PLACER_JOB``), so a test can hold one mid-run."""

    def __init__(self, the_site: Site, run_for: Mapping[str, str]) -> None:
        super().__init__(the_site)
        self.run_for = dict(run_for)

    def submit(self, job: Job, placement: JobPlacement, *, submission_id: str,
               env: Mapping[str, str]) -> Handle:
        extra = {"KWOK_RUN_FOR": self.run_for[job.name]} if job.name in self.run_for else {}
        return super().submit(job, placement, submission_id=submission_id,
                              env={**env, **extra})


def _three_job_run(control_plane: ControlPlane, admin_api: Any, tmp_path: Path, prefix: str,
                   run_for: Mapping[str, str]) -> tuple[str, Run, Journal]:
    """prep -> train -> eval on the fixture's cluster, each handing its output to the next."""
    ns = _namespace(admin_api, prefix)
    the_site = site(control_plane, ns)
    inventory = Inventory(name="k8s", sites=(the_site,))
    pipe = Pipeline(name="k8s-dag", jobs=(
        gpu_job("prep", outputs={"features": 1}),
        gpu_job("train", inputs=("prep.features",), outputs={"model": 1}),
        gpu_job("eval", inputs=("train.model",), outputs={"report": 1}),
    ))
    plan = placer.plan(pipe, inventory, PolicySet(name="none"))
    assert plan.status == "placed", plan.reasons
    journal = Journal(tmp_path / "journal.db")
    ex = Executor(journal, {SITE: RunsFor(the_site, run_for)},
                  layout=PrefixLayout({"onprem:fra": f"file://{tmp_path}/out"}),
                  poll_interval_s=0.3, retry=RetryPolicy(max_attempts=1, base_s=0.5, jitter=0))
    return ns, ex.start(plan, pipeline=pipe, inventory=inventory), journal


def _jobs_by_step(admin_api: Any, ns: str) -> dict[str, Any]:
    """The namespace's Kubernetes Jobs by the pipeline job placer's annotation names."""
    import kubernetes.client

    batch: Any = kubernetes.client.BatchV1Api(admin_api)
    return {j.metadata.annotations["placer.dev/job"]: j
            for j in batch.list_namespaced_job(ns).items}


def _env(k8s_job: Any) -> dict[str, str]:
    return {e.name: e.value for e in k8s_job.spec.template.spec.containers[0].env}


def test_a_three_job_pipeline_runs_to_succeeded_in_dependency_order(
        control_plane: ControlPlane, admin_api: Any, tmp_path: Path) -> None:
    """prep -> train -> eval, each a Kubernetes Job the executor creates only once its
    producer's Job is Complete, told where its input was written; logs read through the API
    server's pods/log; the journal ends SUCCEEDED with one attempt a job."""
    ns, run, journal = _three_job_run(control_plane, admin_api, tmp_path, "dag",
                                      run_for={"prep": "2s", "train": "2s", "eval": "2s"})
    status = run.wait(timeout=150)
    assert status.state == "SUCCEEDED", status
    order = ("prep", "train", "eval")

    jobs = _jobs_by_step(admin_api, ns)
    assert sorted(jobs) == sorted(order)
    for name, k8s_job in jobs.items():
        sid = f"placer-{run.id}-{name}-1"
        assert k8s_job.metadata.name == object_name(sid)
        assert k8s_job.metadata.labels["app.kubernetes.io/managed-by"] == "placer"
        assert k8s_job.metadata.labels["placer.dev/name"] == k8s_job.metadata.name
        assert k8s_job.metadata.annotations == {"placer.dev/submission-id": sid,
                                                "placer.dev/site": SITE,
                                                "placer.dev/job": name}
        assert [c.type for c in k8s_job.status.conditions if c.status == "True"].count(
            "Complete") == 1
        assert len(pods_of(admin_api, ns, k8s_job.metadata.name)) == 1
    # Dependency order, by the API server's clocks (second resolution) and the journal's.
    for before, after in itertools.pairwise(order):
        assert jobs[before].status.completion_time <= jobs[after].metadata.creation_timestamp
        assert jobs[before].status.start_time < jobs[after].status.start_time
    steps = {s.job: s for s in journal.steps(run.id)}
    assert sorted((s.job, s.attempt, s.state) for s in steps.values()) == sorted(
        (name, 1, "SUCCEEDED") for name in order)
    for before, after in itertools.pairwise(order):
        finished, submitted = steps[before].finished, steps[after].submitted
        assert finished is not None and submitted is not None and finished <= submitted
    # Data handoff as the executor does it: each consumer is told the URI its producer was
    # told to write (one location: no copy between stores).
    envs = {name: _env(jobs[name]) for name in order}
    for producer, consumer, output in (("prep", "train", "features"), ("train", "eval", "model")):
        written = json.loads(envs[producer]["PLACER_OUTPUTS"])[output]
        assert written.startswith(f"file://{tmp_path}/out/")
        assert json.loads(envs[consumer]["PLACER_INPUTS"]) == {f"{producer}.{output}": written}
    assert journal.transfers(run.id) == []
    # Logs through placer: kwok's canned container log, from the pod the Job ran.
    for name in order:
        assert "placer-contract-ok" in run.logs(name)
    assert {j.state for j in run.status().jobs.values()} == {"SUCCEEDED"}
    assert journal.run(run.id).state == "SUCCEEDED"


def test_cancelling_a_running_pipeline_deletes_its_job_and_pod_and_creates_no_more(
        control_plane: ControlPlane, admin_api: Any, tmp_path: Path) -> None:
    """train holds its GPUs for 10 minutes; the run is cancelled while it runs: its Job and
    pod are deleted, eval's Job is never created, the run ends CANCELLED."""
    import kubernetes.client

    ns, run, journal = _three_job_run(control_plane, admin_api, tmp_path, "dagcancel",
                                      run_for={"prep": "1s", "train": "10m"})
    deadline = time.monotonic() + 120
    while (st := run.step()).jobs["train"].state != "RUNNING":
        assert not st.done and time.monotonic() < deadline, f"train never RUNNING: {st}"
        time.sleep(0.3)
    train = _jobs_by_step(admin_api, ns)["train"]
    assert len(pods_of(admin_api, ns, train.metadata.name)) == 1

    status = run.cancel()
    deadline = time.monotonic() + 60
    while not status.done:
        assert time.monotonic() < deadline, f"run not cancelled: {status}"
        time.sleep(0.3)
        status = run.step()
    assert status.state == "CANCELLED", status
    batch: Any = kubernetes.client.BatchV1Api(admin_api)
    with pytest.raises(kubernetes.client.ApiException) as gone:
        batch.read_namespaced_job(train.metadata.name, ns)
    assert gone.value.status == 404
    deadline = time.monotonic() + 60
    while pods_of(admin_api, ns, train.metadata.name):
        assert time.monotonic() < deadline, "train's pod outlived its Job"
        time.sleep(0.5)
    # Only prep's (finished) Job is left; eval was never submitted, nor recorded as such.
    time.sleep(1)
    assert sorted(_jobs_by_step(admin_api, ns)) == ["prep"]
    steps = {(s.job, s.state) for s in journal.steps(run.id)}
    assert steps == {("prep", "SUCCEEDED"), ("train", "STOPPED")}
    assert journal.run(run.id).state == "CANCELLED"
    assert status.jobs["eval"].state != "SUCCEEDED"


# -- authentication and reachability, as a real server answers them ---------------------------
@pytest.mark.parametrize("workload", ["job", "rayjob"])
def test_a_token_the_server_does_not_know_is_a_401_naming_token_env_not_the_token(
        control_plane: ControlPlane, admin_api: Any, token_env: Callable[[str], None],
        workload: str) -> None:
    """Authentication comes before any resource is looked up, so a RayJob (no CRD needed) is
    refused the same way; the error names the site's ``token_env``, never a token."""
    ns = _namespace(admin_api, "authn")
    wrong = "wrong-token-77c1"
    token_env(wrong)
    backend = KubernetesBackend(site(control_plane, ns, address=control_plane.server,
                                     workload=workload))
    with pytest.raises(BackendError) as refused:
        backend.submit(gpu_job(), gpu_placement(), submission_id="run-8.train.1", env={})
    assert not isinstance(refused.value, SiteUnreachableError)
    text = str(refused.value) + repr(backend)
    assert "HTTP 401" in text and "token_env PLACER_TEST_K8S_TOKEN" in text
    assert wrong not in text and control_plane.admin_token not in text


def test_a_refused_connection_is_site_unreachable_and_names_no_token(
        control_plane: ControlPlane, admin_api: Any,
        token_env: Callable[[str], None]) -> None:
    ns = _namespace(admin_api, "unreachable")
    token_env(control_plane.admin_token)
    fwd = Forwarder(control_plane.server)
    backend = KubernetesBackend(site(control_plane, ns, address=fwd.url), timeout_s=10)
    assert backend.find("run-9.train.1") is None  # reachable through the forwarder
    fwd.stop()
    with pytest.raises(SiteUnreachableError) as info:
        backend.find("run-9.train.1")
    assert info.value.site == SITE and control_plane.admin_token not in str(info.value)
