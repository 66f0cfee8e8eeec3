"""The Kubernetes backend without a control plane: manifests validated against published
schemas, states mapped from statuses, kubeconfig handling, and the RayJob workload on the wire
against a fake API server on 127.0.0.1 (a real API server runs no KubeRay operator, so nothing
there ever moves a RayJob). Batch Jobs, 409 adoption, 401s, refused connections and the compute
contract run against a real control plane in ``tests/k8s`` (``-m k8s``)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from placer.backends import Handle
from placer.errors import BackendError, BackendUnavailableError
from placer.models import Cluster, Job, JobPlacement, Site
from placer_k8s import KubernetesBackend, job_state, object_name, rayjob_state
from tests.backends.contract import ENV, OK, ComputeBackendContract, placement
from tests.backends.k8s_server import FakeKubeAPI

K8S_VERSION = "1.37.0"
RAYJOB_SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "kuberay-rayjob-v1.schema.json").read_text())
TOKEN = "k8s-secret-token-3f9a"  # a test token the tests grep for
IMAGE = "ghcr.io/acme/train@sha256:" + "a" * 64
_ids = itertools.count()

TRAIN = Job(name="train", command="python train.py --epochs 3", image=IMAGE,
            gpu_types={"A100-80GB": 6}, runtime_env={"pip": ["torch==2.3.1"]})


def gpu_placement(gpus: int = 8, nodes: int = 2) -> JobPlacement:
    return JobPlacement(site="gpu-site", location="onprem:fra", gpu="A100-80GB", gpus=gpus,
                        nodes=nodes, spot=False, start_h=0, end_h=6, cost_usd=0, compute_usd=0,
                        transfer_usd=0, transfer_h=0)


def site(workload: str = "job", *, address: str | None = None, name: str = "contract-site",
         context: str | None = None, kubeconfig: str | None = None,
         token_env: str | None = "PLACER_TEST_K8S_TOKEN", **options: str) -> Site:
    opts = {"workload": workload, "image": "busybox:1.36", **options}
    if kubeconfig:
        opts["kubeconfig"] = kubeconfig
    return Site(name=name, location="onprem:fra", country="DE",
                pools=[{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}],
                cluster=Cluster(backend="k8s", address=address, context=context,
                                namespace="ml", token_env=token_env if address else None,
                                options=opts))


def validate_job(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def validate_rayjob(manifest: dict[str, Any]) -> None:
    jsonschema.validate(manifest, RAYJOB_SCHEMA)
    cluster = manifest["spec"]["rayClusterSpec"]
    templates = [cluster["headGroupSpec"]["template"]] + [
        w["template"] for w in cluster.get("workerGroupSpecs", [])]
    for i, template in enumerate(templates):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate",
                                      "metadata": {"name": f"t{i}"}, "template": template},
                                     K8S_VERSION, strict=True)


# -- manifests --------------------------------------------------------------------------------
def test_batch_job_manifest_is_valid_and_asks_for_the_planned_gpus() -> None:
    backend = KubernetesBackend(site("job", address="http://127.0.0.1:1"))
    m = backend.manifest(TRAIN, gpu_placement(8, 1), submission_id="run-1/train", env=ENV)
    validate_job(m)
    pod = m["spec"]["template"]["spec"]
    assert m["metadata"]["name"] == object_name("run-1/train")
    assert m["metadata"]["namespace"] == "ml"
    assert m["metadata"]["annotations"]["placer.dev/submission-id"] == "run-1/train"
    assert m["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "A100-80GB"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                   "effect": "NoSchedule"}]
    (c,) = pod["containers"]
    assert c["image"] == IMAGE
    assert c["command"] == ["/bin/sh", "-c", "python train.py --epochs 3"]
    assert c["resources"] == {"limits": {"nvidia.com/gpu": "8"}}
    assert c["env"] == [{"name": k, "value": ENV[k]} for k in sorted(ENV)]


def test_gpu_product_names_and_label_come_from_site_options() -> None:
    backend = KubernetesBackend(site("job", address="http://127.0.0.1:1",
                                     gpu_label="cloud.google.com/gke-accelerator",
                                     **{"gpu_product.A100-80GB": "nvidia-a100-80gb"}))
    m = backend.manifest(TRAIN, gpu_placement(), submission_id="s", env={})
    validate_job(m)
    assert m["spec"]["template"]["spec"]["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-a100-80gb"}


def test_a_cpu_job_gets_no_gpu_scheduling() -> None:
    backend = KubernetesBackend(site("job", address="http://127.0.0.1:1"))
    m = backend.manifest(OK, placement("contract-site"), submission_id="s", env={})
    validate_job(m)
    pod = m["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert "resources" not in pod["containers"][0] or "limits" not in pod["containers"][0][
        "resources"]


def test_rayjob_manifest_is_valid_and_spreads_gpus_over_the_planned_nodes() -> None:
    backend = KubernetesBackend(site("rayjob", address="http://127.0.0.1:1",
                                     ray_version="2.40.0"))
    m = backend.manifest(TRAIN, gpu_placement(8, 2), submission_id="run-1/train", env=ENV)
    validate_rayjob(m)
    spec = m["spec"]
    assert spec["jobId"] == "run-1/train" and spec["entrypoint"] == TRAIN.command
    assert spec["shutdownAfterJobFinishes"] is True and spec["backoffLimit"] == 0
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"pip": ["torch==2.3.1"], "env_vars": ENV}
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == "2.40.0"
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert "nodeSelector" not in head
    assert "nvidia.com/gpu" not in head["containers"][0]["resources"].get("limits", {})
    (workers,) = cluster["workerGroupSpecs"]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 2
    wpod = workers["template"]["spec"]
    assert wpod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "4"}
    assert wpod["nodeSelector"] == {"nvidia.com/gpu.product": "A100-80GB"}
    assert wpod["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_the_schemas_reject_a_broken_manifest() -> None:
    """The validators are not vacuous."""
    backend = KubernetesBackend(site("rayjob", address="http://127.0.0.1:1"))
    m = backend.manifest(TRAIN, gpu_placement(), submission_id="s", env={})
    m["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replica"] = 2
    with pytest.raises(jsonschema.ValidationError):
        validate_rayjob(m)
    job = KubernetesBackend(site("job", address="http://127.0.0.1:1")).manifest(
        TRAIN, gpu_placement(), submission_id="s", env={})
    job["spec"]["template"]["spec"]["containers"][0]["gpus"] = 8
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_job(job)


def test_object_names_are_stable_valid_and_distinct() -> None:
    names = {object_name(s) for s in ("Run_1", "run-1", "run-1/train", "9" * 200, "", "---")}
    assert len(names) == 6
    for n in names:
        assert len(n) <= 47 and n[0].isalpha() and n == n.lower()
        validate_job({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": n},
                      "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}})
    assert object_name("run-1") == object_name("run-1")


def test_a_job_without_an_image_is_refused_before_any_call() -> None:
    backend = KubernetesBackend(site("job", address="http://127.0.0.1:1", image=""))
    with pytest.raises(BackendError, match="names no image"):
        backend.manifest(OK, placement("contract-site"), submission_id="s", env={})


@pytest.mark.parametrize(("status", "state"), [
    ({}, "PENDING"),
    ({"active": 1}, "RUNNING"),
    ({"conditions": [{"type": "Complete", "status": "True"}]}, "SUCCEEDED"),
    ({"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}, "SUCCEEDED"),
    ({"conditions": [{"type": "Failed", "status": "True"}]}, "FAILED"),
    ({"active": 1, "conditions": [{"type": "FailureTarget", "status": "True"}]}, "FAILED"),
    ({"conditions": [{"type": "Failed", "status": "False"}], "active": 1}, "RUNNING"),
    ({"conditions": [{"type": "Suspended", "status": "True"}]}, "PENDING"),
])
def test_job_conditions_map_to_placer_states(status: dict[str, Any], state: str) -> None:
    assert job_state({"status": status}) == state


@pytest.mark.parametrize(("status", "state"), [
    ({}, "PENDING"),
    ({"jobDeploymentStatus": "Initializing"}, "PENDING"),
    ({"jobStatus": "SCHEDULED"}, "PENDING"),
    ({"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"}, "RUNNING"),
    ({"jobStatus": "SUCCEEDED", "jobDeploymentStatus": "Complete"}, "SUCCEEDED"),
    ({"jobStatus": "FAILED", "jobDeploymentStatus": "Complete"}, "FAILED"),
    ({"jobStatus": "STOPPED"}, "STOPPED"),
    ({"jobDeploymentStatus": "Failed", "reason": "SubmissionFailed"}, "FAILED"),
])
def test_rayjob_status_maps_to_placer_states(status: dict[str, Any], state: str) -> None:
    assert rayjob_state({"status": status}) == state


# -- the wire ---------------------------------------------------------------------------------
@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    server = FakeKubeAPI(token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def sid() -> str:
    return f"placer-contract-{next(_ids)}"


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACER_TEST_K8S_TOKEN", TOKEN)


def kubeconfig(tmp_path: Path, servers: dict[str, str], token: str = TOKEN) -> str:
    """A kubeconfig with one context per fake server, each with its own namespace."""
    cfg = {
        "apiVersion": "v1", "kind": "Config", "current-context": next(iter(servers)),
        "clusters": [{"name": n, "cluster": {"server": url}} for n, url in servers.items()],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "u", "namespace": "ctx-ns"}}
                     for n in servers],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_a_rayjob_is_submitted_read_logged_and_deleted_on_the_wire(api: FakeKubeAPI,
                                                                 sid: str) -> None:
    """What KubeRay alone would make happen: its submitter pod's log, its status moving. The
    batch Job's round trip runs against a real API server in ``tests/k8s``."""
    backend = KubernetesBackend(site("rayjob", address=api.url), timeout_s=5)
    h = backend.submit(OK, placement("contract-site"), submission_id=sid, env=ENV)
    assert h == Handle("k8s", "contract-site", object_name(sid))
    create = api.requests[0]
    base = "/apis/ray.io/v1/namespaces/ml/rayjobs"
    assert (create.method, create.path) == ("POST", base)
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    assert create.body == backend.manifest(OK, placement("contract-site"), submission_id=sid,
                                           env=ENV)
    while backend.status(h) not in ("SUCCEEDED", "FAILED"):
        pass
    assert backend.status(h) == "SUCCEEDED"
    assert "placer-contract-ok" in backend.logs(h)
    pod_lists = [r for r in api.requests if r.path == "/api/v1/namespaces/ml/pods"]
    assert pod_lists[0].query["labelSelector"] == [f"batch.kubernetes.io/job-name={h.id}"]
    backend.cancel(h)
    delete = api.requests[-1]
    assert (delete.method, delete.path) == ("DELETE", f"{base}/{h.id}")
    assert delete.body["propagationPolicy"] == "Background"
    assert backend.status(h) == "STOPPED"


def test_kubeconfig_context_and_namespace_choose_the_cluster(tmp_path: Path) -> None:
    a, b = FakeKubeAPI(token=TOKEN).start(), FakeKubeAPI(token=TOKEN).start()
    try:
        cfg = kubeconfig(tmp_path, {"ctx-a": a.url, "ctx-b": b.url})
        s = site("job", context="ctx-b", kubeconfig=cfg)
        backend = KubernetesBackend(s)
        assert backend.find("nothing") is None
        assert a.requests == []
        (req,) = b.requests
        assert req.path == f"/apis/batch/v1/namespaces/ml/jobs/{object_name('nothing')}"
        assert req.headers["authorization"] == f"Bearer {TOKEN}"
    finally:
        a.stop()
        b.stop()


def test_a_missing_context_is_a_backend_error_naming_it(tmp_path: Path, api: FakeKubeAPI) -> None:
    cfg = kubeconfig(tmp_path, {"ctx-a": api.url})
    backend = KubernetesBackend(site("job", context="nope", kubeconfig=cfg))
    with pytest.raises(BackendError, match="'nope'"):
        backend.find("x")


def test_the_entry_point_builds_the_backend_from_a_site() -> None:
    from placer.backends import load_backend

    try:
        factory = load_backend("k8s")
    except BackendUnavailableError:  # registered by pyproject.toml; see docs/kubernetes.md
        pytest.skip("entry point k8s not registered in this install")
    assert isinstance(factory(site("job", address="http://127.0.0.1:1")), KubernetesBackend)


# -- the contract for RayJobs, against the fake API server -------------------------------------
class TestK8sRayJobContract(ComputeBackendContract):
    """The batch Job workload passes the same suite against a real control plane
    (``tests/k8s/test_placer_k8s.py::TestContractOnARealControlPlane``)."""

    @pytest.fixture
    def server(self) -> Iterator[FakeKubeAPI]:
        server = FakeKubeAPI(token=TOKEN).start()
        yield server
        server.stop()

    @pytest.fixture
    def backend(self, server: FakeKubeAPI) -> KubernetesBackend:
        return KubernetesBackend(site("rayjob", address=server.url), timeout_s=5)

    @pytest.fixture
    def reopen(self, server: FakeKubeAPI) -> Callable[[], KubernetesBackend]:
        return lambda: KubernetesBackend(site("rayjob", address=server.url), timeout_s=5)

    @pytest.fixture
    def take_down(self, server: FakeKubeAPI) -> Callable[[], None]:
        return server.stop

    @pytest.fixture
    def sleep(self) -> Callable[[], None]:
        import time

        return lambda: time.sleep(0.02)
