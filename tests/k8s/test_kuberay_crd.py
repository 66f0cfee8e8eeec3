"""placer's KubeRay RayJob, validated by the real API server against KubeRay's own CRD (issue 16).

The CRDs come from the ``github.com/ray-project/kuberay/ray-operator`` module the Go proxy
serves (``tools/k8s/build.sh`` copies ``config/crd/bases/ray.io_*.yaml``), and the ``kuberay_crds``
fixture installs them in the control plane. No operator runs: nothing turns a RayJob into
pods, so these tests cover what the API server does with the object, which is the structural
schema (types, required fields, unknown fields pruned or refused), the CRD's CEL rules and the
status subresource. KubeRay's own validating webhook and its controller-side checks are not
exercised; they need the operator.

The hand-written JSON Schema (``tests/backends/schemas/kuberay-rayjob-v1.schema.json``) stays
in the default suite, which has no control plane. Here it is held to the CRD: it may allow
nothing the CRD does not know. The cases where the server refuses a manifest that the
hand-written schema accepts show what the real server adds.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from placer.errors import BackendError
from placer.models import Cluster, Job, JobPlacement, Location, Offer, ResolvedSite, Site
from placer_k8s import KubernetesBackend, object_name, raycluster_manifest
from tests.k8s.controlplane import GPU_PRODUCT, ControlPlane

pytestmark = pytest.mark.k8s
jsonschema: Any = pytest.importorskip("jsonschema")  # no type stubs: typed as Any here

RAY = ("ray.io", "v1", "rayjobs")
SCHEMA = json.loads((Path(__file__).parents[1] / "backends" / "schemas"
                     / "kuberay-rayjob-v1.schema.json").read_text())
TRAIN = Job(name="train", command="python train.py --epochs 3",
            image="ghcr.io/acme/train@sha256:" + "a" * 64,
            gpu_types={GPU_PRODUCT: 6}, runtime_env={"pip": ["torch==2.3.1"]})
ENV = {"PLACER_RUN_ID": "r1", "PLACER_JOB": "train"}
_ns = itertools.count()


def placement(gpus: int = 8, nodes: int = 2) -> JobPlacement:
    return JobPlacement(site="fra-rayjob", location="onprem:fra", gpu=GPU_PRODUCT, gpus=gpus,
                        nodes=nodes, spot=False, start_h=0, end_h=6, cost_usd=0, compute_usd=0,
                        transfer_usd=0, transfer_h=0)


@pytest.fixture
def namespace(admin_api: Any, kuberay_crds: str) -> str:
    import kubernetes.client

    ns = f"rayjob-{next(_ns)}"
    core: Any = kubernetes.client.CoreV1Api(admin_api)
    core.create_namespace({"metadata": {"name": ns}})
    return ns


@pytest.fixture
def rayjob_site(control_plane: ControlPlane, namespace: str) -> Site:
    return Site(
        name="fra-rayjob", kind="onprem", location="onprem:fra", country="DE",
        pools=[{"gpu": GPU_PRODUCT, "count": 16, "cost_per_gpu_hour": 1}],
        cluster=Cluster(backend="k8s", namespace=namespace, options={
            "workload": "rayjob", "image": "rayproject/ray:2.40.0-gpu", "ray_version": "2.40.0",
            "kubeconfig": str(control_plane.kubeconfig)}))


@pytest.fixture
def backend(rayjob_site: Site) -> KubernetesBackend:
    return KubernetesBackend(rayjob_site)


@pytest.fixture
def custom(admin_api: Any) -> Any:
    import kubernetes.client

    return kubernetes.client.CustomObjectsApi(admin_api)


def leaves(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every scalar of ``obj`` with its path (``spec.a[0].b``)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, obj


def assert_kept(sent: dict[str, Any], stored: dict[str, Any]) -> None:
    """Everything placer sent is in what the server stored: its structural schema pruned no
    field (a pruned field is one the operator would never see)."""
    have = dict(leaves(stored))
    lost = {p: v for p, v in leaves(sent) if have.get(p, object()) != v}
    assert not lost, f"the API server dropped or changed {lost}"


def message(err: Any) -> str:
    """The server's message of an ApiException (its body is a JSON ``Status``)."""
    return str(json.loads(err.body)["message"])


def refused(custom: Any, ns: str, body: dict[str, Any], **kw: Any) -> Any:
    """The ApiException the server answers a create of ``body`` with."""
    import kubernetes.client

    with pytest.raises(kubernetes.client.ApiException) as err:
        custom.create_namespaced_custom_object(*RAY[:2], ns, RAY[2], body, **kw)
    return err.value


def test_placer_s_rayjob_passes_the_crd_schema_strictly_and_loses_no_field(
        backend: KubernetesBackend, custom: Any, namespace: str, kuberay_crds: str) -> None:
    """A dry run with strict field validation (an unknown field would be a 400), then the
    backend's own create; what the server stores holds every field placer wrote."""
    m = backend.manifest(TRAIN, placement(), submission_id="run-1.train.1", env=ENV)
    jsonschema.validate(m, SCHEMA)  # the hand-written schema and the server agree on it
    dry = custom.create_namespaced_custom_object(*RAY[:2], namespace, RAY[2], m,
                                                 dry_run="All", field_validation="Strict")
    assert_kept(m, dry)
    assert custom.list_namespaced_custom_object(*RAY[:2], namespace, RAY[2])["items"] == []

    handle = backend.submit(TRAIN, placement(), submission_id="run-1.train.1", env=ENV)
    assert handle.id == object_name("run-1.train.1")
    stored = custom.get_namespaced_custom_object(*RAY[:2], namespace, RAY[2], handle.id)
    assert_kept(m, stored)
    assert stored["metadata"]["annotations"]["placer.dev/submission-id"] == "run-1.train.1"
    assert yaml.safe_load(stored["spec"]["runtimeEnvYAML"])["env_vars"] == ENV
    (workers,) = stored["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert workers["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "nvidia.com/gpu": "4"}
    assert backend.find("run-1.train.1") == handle
    assert backend.status(handle) == "PENDING"  # no operator: no status yet


def test_the_status_kuberay_writes_is_read_through_the_status_subresource(
        backend: KubernetesBackend, custom: Any, namespace: str) -> None:
    """The operator is not running, so the test writes the status it would (through the
    status subresource, validated by the CRD's status schema); placer reads its state. The
    spec cannot be changed through that subresource, and a delete cancels."""
    import kubernetes.client

    handle = backend.submit(TRAIN, placement(), submission_id="run-2.train.1", env=ENV)
    name = handle.id
    for status, state in [({"jobDeploymentStatus": "Initializing"}, "PENDING"),
                          ({"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}, "RUNNING"),
                          ({"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"},
                           "SUCCEEDED")]:
        custom.patch_namespaced_custom_object_status(
            *RAY[:2], namespace, RAY[2], name, {"status": status}, field_validation="Strict")
        assert backend.status(handle) == state
    # The subresource writes status only: a spec change sent there is ignored.
    custom.patch_namespaced_custom_object_status(
        *RAY[:2], namespace, RAY[2], name, {"spec": {"entrypoint": "rm -rf /"}})
    got = custom.get_namespaced_custom_object(*RAY[:2], namespace, RAY[2], name)
    assert got["spec"]["entrypoint"] == TRAIN.command
    # A status the CRD does not know is refused.
    with pytest.raises(kubernetes.client.ApiException) as err:
        custom.patch_namespaced_custom_object_status(
            *RAY[:2], namespace, RAY[2], name, {"status": {"jobStatuss": "SUCCEEDED"}},
            field_validation="Strict")
    assert err.value.status == 422  # a patch the strict decoder refuses: an invalid patch
    assert 'unknown field "status.jobStatuss"' in message(err.value)
    backend.cancel(handle)
    assert backend.find("run-2.train.1") is None
    backend.cancel(handle)  # a 404 now: idempotent


def _worker(m: dict[str, Any]) -> dict[str, Any]:
    group: dict[str, Any] = m["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    return group


def test_malformed_rayjobs_are_refused_by_the_server_naming_the_field(
        backend: KubernetesBackend, custom: Any, namespace: str) -> None:
    m = backend.manifest(TRAIN, placement(), submission_id="run-3.train.1", env=ENV)
    prefix = "spec.rayClusterSpec"

    wrong_type = copy.deepcopy(m)
    _worker(wrong_type)["replicas"] = "two"
    err = refused(custom, namespace, wrong_type)
    assert err.status == 422
    assert f'{prefix}.workerGroupSpecs[0].replicas: Invalid value: "string"' in message(err)
    with pytest.raises(jsonschema.ValidationError):  # the hand-written schema sees this too
        jsonschema.validate(wrong_type, SCHEMA)

    no_head = copy.deepcopy(m)
    del no_head["spec"]["rayClusterSpec"]["headGroupSpec"]
    err = refused(custom, namespace, no_head)
    assert err.status == 422 and f"{prefix}.headGroupSpec: Required value" in message(err)

    # A typo: the server refuses it under strict field validation, and without it prunes the
    # field (it is silently lost). placer's manifests pass the strict check (test above).
    typo = copy.deepcopy(m)
    _worker(typo)["replica"] = 2
    err = refused(custom, namespace, typo, dry_run="All", field_validation="Strict")
    assert err.status == 400
    assert f'unknown field "{prefix}.workerGroupSpecs[0].replica"' in message(err)
    pruned = custom.create_namespaced_custom_object(*RAY[:2], namespace, RAY[2], typo,
                                                    dry_run="All")
    assert "replica" not in _worker(pruned)

    assert custom.list_namespaced_custom_object(*RAY[:2], namespace, RAY[2])["items"] == []


def test_what_the_server_refuses_that_the_hand_written_schema_accepts(
        backend: KubernetesBackend, custom: Any, namespace: str) -> None:
    """Why the real server matters: the CRD carries the whole core/v1 pod template schema (a
    container needs a name) and CEL rules (a ``deletionStrategy`` names both outcomes, or
    rules); the hand-written schema checks neither."""
    m = backend.manifest(TRAIN, placement(), submission_id="run-4.train.1", env=ENV)

    nameless = copy.deepcopy(m)
    del _worker(nameless)["template"]["spec"]["containers"][0]["name"]
    jsonschema.validate(nameless, SCHEMA)
    err = refused(custom, namespace, nameless)
    assert err.status == 422
    assert "spec.rayClusterSpec.workerGroupSpecs[0].template.spec.containers[0].name: " \
           "Required value" in message(err)

    half = copy.deepcopy(m)
    half["spec"]["deletionStrategy"] = {"onSuccess": {"policy": "DeleteCluster"}}
    jsonschema.validate(half, SCHEMA)
    err = refused(custom, namespace, half)
    assert err.status == 422
    assert "deletionStrategy requires either BOTH onSuccess and onFailure, OR the " \
           "deletionRules field" in message(err)


def test_a_refused_rayjob_reaches_placer_as_a_backend_error_naming_the_object(
        rayjob_site: Site, backend: KubernetesBackend) -> None:
    """Through the backend's own create: the server's 422 is a BackendError that names the
    verb, object and namespace and carries the server's reason."""

    class Broken(KubernetesBackend):
        def manifest(self, *args: Any, **kw: Any) -> dict[str, Any]:
            m = super().manifest(*args, **kw)
            _worker(m)["replicas"] = "two"
            return m

    broken = Broken(rayjob_site)
    with pytest.raises(BackendError) as err:
        broken.submit(TRAIN, placement(), submission_id="run-5.train.1", env=ENV)
    message = str(err.value)
    assert f"create rayjobs.ray.io {object_name('run-5.train.1')} in namespace" in message
    assert message.endswith("HTTP 422 Unprocessable Entity; invalid: spec.rayClusterSpec."
                            "workerGroupSpecs[0].replicas (FieldValueTypeInvalid)")
    assert backend.find("run-5.train.1") is None


def test_the_hand_written_schema_allows_nothing_the_crd_does_not_know(
        control_plane: ControlPlane, kuberay_crds: str) -> None:
    """The schema the default suite validates with may lag the CRD (fewer fields), never lead
    it: every property it allows exists in KubeRay's CRD at the same place."""
    crd = yaml.load((control_plane.bins.parent / "kuberay-crds" / "ray.io_rayjobs.yaml")
                    .read_text(), Loader=yaml.CSafeLoader)
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    server = v1["schema"]["openAPIV3Schema"]["properties"]["spec"]
    mine = SCHEMA["properties"]["spec"]
    cluster = SCHEMA["$defs"]["rayClusterSpec"]
    pairs = [
        ("spec", mine, server),
        ("spec.rayClusterSpec", cluster, server["properties"]["rayClusterSpec"]),
        ("spec.rayClusterSpec.headGroupSpec", cluster["properties"]["headGroupSpec"],
         server["properties"]["rayClusterSpec"]["properties"]["headGroupSpec"]),
        ("spec.rayClusterSpec.workerGroupSpecs[]",
         cluster["properties"]["workerGroupSpecs"]["items"],
         server["properties"]["rayClusterSpec"]["properties"]["workerGroupSpecs"]["items"]),
    ]
    for where, hand, real in pairs:
        extra = set(hand["properties"]) - set(real["properties"])
        assert not extra, f"{where}: the hand-written schema allows {extra}, unknown to KubeRay " \
                          f"{kuberay_crds}"
        assert set(hand.get("required", ())) <= set(real.get("required", ())), where


@pytest.mark.parametrize(("provider", "region", "spot"), [
    ("aws", "eu-central-1", True), ("gcp", "europe-west4", True), ("azure", "westeurope", False)])
def test_placer_s_raycluster_for_a_cloud_site_is_accepted_as_written(
        custom: Any, namespace: str, provider: str, region: str, spot: bool) -> None:
    """``placer cluster-spec --format raycluster``'s object, for each cloud's managed Kubernetes:
    created by the server (strict, so no unknown field) with nothing pruned."""
    site = ResolvedSite(
        name=f"{provider}-eu", kind="cloud",
        location=Location(provider=provider, region=region, country="DE"),
        offers=(Offer(gpu=GPU_PRODUCT, gpus_per_node=8, on_demand=40, spot=15,
                      instance_type=f"{provider}-a100-node"),),
        cluster=Cluster(backend="ray", namespace=namespace))
    planned = JobPlacement(site=site.name, location=site.location.key, gpu=GPU_PRODUCT, gpus=16,
                           nodes=2, spot=spot, start_h=0, end_h=6, cost_usd=0, compute_usd=0,
                           transfer_usd=0, transfer_h=0)
    m = raycluster_manifest(site, planned, image="rayproject/ray:2.40.0-gpu",
                            ray_version="2.40.0")
    stored = custom.create_namespaced_custom_object(
        "ray.io", "v1", namespace, "rayclusters", m, field_validation="Strict")
    assert_kept(m, stored)
    (worker,) = stored["spec"]["workerGroupSpecs"]
    assert worker["replicas"] == 2
    assert worker["template"]["spec"]["nodeSelector"][
        "node.kubernetes.io/instance-type"] == f"{provider}-a100-node"
