"""KubeRay shapes: the Ray cluster both a ``RayJob`` and a ``RayCluster`` carry, and the
``RayCluster`` for the cloud cluster a plan paid for.

:func:`ray_cluster_spec` is the one builder of a KubeRay ``RayClusterSpec`` (a head group that
runs no GPU work, at most one fixed-size GPU worker group): :func:`placer_k8s.ray_job` puts it
in a RayJob's ``rayClusterSpec``, :func:`raycluster_manifest` in a RayCluster's ``spec``.
:meth:`KubernetesBackend.render_cluster <placer_k8s.KubernetesBackend.render_cluster>` offers
the latter as the ``raycluster`` cluster format (``placer cluster-spec --format raycluster``);
its sizing (which placement, which offer, how many nodes) is :mod:`placer.cluster_spec`'s.
Pure: plain dicts, no SDK, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from placer.backends import ClusterFormat, gpu_type_resource
from placer.cluster_spec import cloud_provider, planned_offer, worker_nodes
from placer.models import JobPlacement, ResolvedSite

RAYCLUSTER: Final = ClusterFormat("raycluster", "KubeRay RayCluster", needs_image=True)
RAY_API_VERSION: Final = "ray.io/v1"
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
GPU_RESOURCE: Final = "nvidia.com/gpu"
# Labels the clouds' managed Kubernetes put on spot/preemptible nodes, and their taints.
SPOT_NODE_LABEL: Final = {
    "aws": ("eks.amazonaws.com/capacityType", "SPOT"),
    "gcp": ("cloud.google.com/gke-spot", "true"),
    "azure": ("kubernetes.azure.com/scalesetpriority", "spot"),
}
INSTANCE_TYPE_LABEL: Final = "node.kubernetes.io/instance-type"


def ray_cluster_spec(head: Mapping[str, Any], worker: Mapping[str, Any] | None = None, *,
                     replicas: int = 0, worker_params: Mapping[str, str] | None = None,
                     ray_version: str | None = None) -> dict[str, Any]:
    """A KubeRay ``RayClusterSpec``: the head group from pod template ``head`` (it runs no GPU
    work and serves the dashboard), and, with a ``worker`` pod template, one ``gpu`` worker
    group of exactly ``replicas`` pods started with ``worker_params``."""
    spec: dict[str, Any] = {"headGroupSpec": {
        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-gpus": "0"},
        "template": dict(head),
    }}
    if worker is not None:
        spec["workerGroupSpecs"] = [{
            "groupName": "gpu",
            "replicas": replicas, "minReplicas": replicas, "maxReplicas": replicas,
            "rayStartParams": dict(worker_params or {}),
            "template": dict(worker),
        }]
    if ray_version:
        spec["rayVersion"] = ray_version
    return spec


def raycluster_manifest(site: ResolvedSite, placement: JobPlacement, *, image: str,
                        name: str | None = None, namespace: str | None = None,
                        ray_version: str | None = None) -> dict[str, Any]:
    """A KubeRay ``RayCluster`` for the planned offer on the cloud's managed Kubernetes.

    GPU workers select nodes by the planned instance type (``node.kubernetes.io/instance-type``,
    which EKS, GKE and AKS all set) and, for spot, by the cloud's spot-capacity label, with
    tolerations for ``nvidia.com/gpu`` and the spot taint. They advertise placer's GPU-type
    resource (:func:`placer.backends.gpu_type_resource`), as the Ray launcher's workers do, so
    the ray backend's jobs find them.
    """
    provider = cloud_provider(site)
    offer = planned_offer(site, placement)
    nodes, per_node = worker_nodes(placement, offer)
    selector = {INSTANCE_TYPE_LABEL: str(offer.instance_type)}
    tolerations: list[dict[str, str]] = [
        {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    if placement.spot:
        key, value = SPOT_NODE_LABEL[provider]
        selector[key] = value
        tolerations.append({"key": key, "operator": "Equal", "value": value,
                            "effect": "NoSchedule"})
    labels = {MANAGED_BY: "placer"}
    head = {"metadata": {"labels": labels}, "spec": {"containers": [{
        "name": "ray-head", "image": image,
        "resources": {"requests": {"cpu": "2", "memory": "8G"}, "limits": {"memory": "8G"}}}]}}
    worker = {"metadata": {"labels": labels}, "spec": {
        "containers": [{"name": "ray-worker", "image": image,
                        "resources": {"limits": {GPU_RESOURCE: str(per_node)}}}],
        "nodeSelector": selector, "tolerations": tolerations}}
    spec = ray_cluster_spec(
        head, worker, replicas=nodes, ray_version=ray_version,
        worker_params={"resources": _ray_resources({gpu_type_resource(offer.gpu): per_node})})
    metadata: dict[str, Any] = {"name": name or f"placer-{site.name}", "labels": labels}
    ns = namespace or (site.cluster.namespace if site.cluster else None)
    if ns:
        metadata["namespace"] = ns
    return {"apiVersion": RAY_API_VERSION, "kind": "RayCluster", "metadata": metadata,
            "spec": spec}


def _ray_resources(resources: Mapping[str, int]) -> str:
    """``ray start --resources`` JSON, quoted as KubeRay passes it to the shell."""
    return "'" + json.dumps(dict(resources), sort_keys=True) + "'"


def render_cluster(site: ResolvedSite, placement: JobPlacement, fmt: str, *,
                   image: str | None = None) -> dict[str, Any]:
    """The ``raycluster`` format (:class:`placer.backends.ClusterRenderer`); needs ``image``."""
    if fmt != RAYCLUSTER.name:
        raise ValueError(f"the k8s backend renders {RAYCLUSTER.name!r} specs, not {fmt!r}")
    return raycluster_manifest(site, placement, image=image or "")
