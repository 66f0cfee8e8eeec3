"""Cluster specs for a cloud site's planned offer: Ray cluster launcher YAML, KubeRay RayCluster.

placer does not launch clouds. For a cloud site whose inventory names no running cluster, it
renders the spec of the cluster the plan paid for (instance type, spot or on-demand, region,
node count), so an operator or CI brings it up with Ray's own tooling (``ray up spec.yaml``,
``kubectl apply -f raycluster.yaml``) and points the site's ``cluster.address`` at it.

Pure: plain dicts from models, no SDK, no I/O. The head node is always on-demand: losing it
loses the cluster, and it is cheap next to the GPU workers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Final

import yaml

from placer.errors import CatalogError, ConfigError, ErrorDetail
from placer.models import JobPlacement, Offer, Plan, ResolvedSite

# The Ray custom resource placer's Ray backend asks for to pin a GPU type; it must match
# ``placer_ray.gpu_resource`` (a test checks it), or jobs would wait forever for the resource.
GPU_TYPE_RESOURCE_PREFIX: Final = "gpu_type:"
HEAD_NODE_TYPE: Final = "head"
WORKER_NODE_TYPE: Final = "gpu_worker"
# CPU-only head instance types, by provider; override with cluster.options.head_instance_type.
DEFAULT_HEAD_INSTANCE: Final = {
    "aws": "m5.2xlarge", "gcp": "n2-standard-8", "azure": "Standard_D8s_v5",
}
# Labels the clouds' managed Kubernetes put on spot/preemptible nodes, and their taints.
SPOT_NODE_LABEL: Final = {
    "aws": ("eks.amazonaws.com/capacityType", "SPOT"),
    "gcp": ("cloud.google.com/gke-spot", "true"),
    "azure": ("kubernetes.azure.com/scalesetpriority", "spot"),
}
INSTANCE_TYPE_LABEL: Final = "node.kubernetes.io/instance-type"


def sizing_placement(plan: Plan, site: str, job: str | None = None) -> JobPlacement:
    """The placement a site's cluster is sized for: ``job``'s, or the site's largest.

    Largest by nodes, then GPUs; ties go to the first in plan order. The cluster's GPU type and
    spot choice come from that placement, so jobs on one site that differ in either need a spec
    each (pass ``job``).

    Raises:
        ConfigError: the plan puts no job (or not ``job``) on ``site``, or its jobs there
            differ in GPU type or spot, and no ``job`` was named.
    """
    if job is not None:
        placement = plan.jobs.get(job)
        if placement is None or placement.site != site:
            raise ConfigError(ErrorDetail(f"the plan does not put job {job!r} on site {site!r}",
                                          field="job"))
        return placement
    here = [p for p in plan.jobs.values() if p.site == site]
    if not here:
        raise ConfigError(ErrorDetail(f"the plan puts no job on site {site!r}", field="site"))
    if len({(p.gpu, p.spot) for p in here}) > 1:
        raise ConfigError(ErrorDetail(f"jobs on {site!r} differ in GPU type or spot; name one "
                                      "job to size the cluster for", field="job"))
    best = here[0]
    for p in here[1:]:
        if (p.nodes, p.gpus) > (best.nodes, best.gpus):
            best = p
    return best


def planned_offer(site: ResolvedSite, placement: JobPlacement) -> Offer:
    """The offer of ``site`` the placement rents: the first for its GPU (with spot if needed).

    Raises:
        CatalogError: the site has no such offer, or it names no instance type.
    """
    for offer in site.offers:
        if offer.gpu == placement.gpu and (not placement.spot or offer.spot is not None):
            if not offer.instance_type:
                raise CatalogError(f"{site.name}: the {offer.gpu} offer names no instance type; "
                                   "set instance_type in the inventory")
            return offer
    kind = "spot " if placement.spot else ""
    raise CatalogError(f"{site.name}: no {kind}offer for {placement.gpu}")


def _cloud(site: ResolvedSite) -> str:
    if site.kind != "cloud" or site.location.provider == "onprem":
        raise ConfigError(ErrorDetail(f"{site.name} is not a cloud site: no cluster to render",
                                      field=f"sites.{site.name}"))
    return site.location.provider


def _option(site: ResolvedSite, key: str) -> str | None:
    return site.cluster.options.get(key) if site.cluster else None


def _required(site: ResolvedSite, key: str) -> str:
    value = _option(site, key)
    if not value:
        raise ConfigError(ErrorDetail(f"rendering a cluster here needs options.{key}",
                                      field=f"sites.{site.name}.cluster.options.{key}"))
    return value


def _workers(placement: JobPlacement, offer: Offer) -> tuple[int, int]:
    """(nodes, GPUs per node): the plan's node count, or enough nodes for its GPUs."""
    nodes = max(placement.nodes, math.ceil(placement.gpus / offer.gpus_per_node), 1)
    return nodes, offer.gpus_per_node


def _node_config(provider: str, site: ResolvedSite, instance_type: str,
                 spot: bool) -> dict[str, Any]:
    if provider == "aws":
        cfg: dict[str, Any] = {"InstanceType": instance_type,
                               "ImageId": _option(site, "image_id") or "latest_dlami"}
        if spot:
            cfg["InstanceMarketOptions"] = {"MarketType": "spot"}
        return cfg
    if provider == "gcp":
        source = _option(site, "source_image") or (
            "projects/deeplearning-platform-release/global/images/family/common-cu124-debian-11")
        cfg = {
            "machineType": instance_type,
            "disks": [{"boot": True, "autoDelete": True, "type": "PERSISTENT",
                       "initializeParams": {"diskSizeGb": 100, "sourceImage": source}}],
            # GPU VMs cannot live-migrate; GCE requires TERMINATE on host maintenance.
            "scheduling": {"onHostMaintenance": "TERMINATE", "automaticRestart": not spot},
        }
        if spot:
            # GCE's current Spot VM fields (``preemptible: true`` is the legacy form).
            cfg["scheduling"].update(provisioningModel="SPOT", instanceTerminationAction="DELETE")
        return cfg
    params: dict[str, Any] = {
        "vmSize": instance_type, "imagePublisher": "microsoft-dsvm",
        "imageOffer": "ubuntu-hpc", "imageSku": "2204", "imageVersion": "latest",
    }
    if spot:
        params.update(priority="Spot", evictionPolicy="Delete", billingProfile={"maxPrice": -1})
    return {"azure_arm_parameters": params}


def launcher_config(site: ResolvedSite, placement: JobPlacement, *,
                    cluster_name: str | None = None, image: str | None = None,
                    max_workers: int | None = None) -> dict[str, Any]:
    """The Ray cluster launcher config (``ray up``) for ``placement`` on cloud ``site``.

    One on-demand CPU head node type and one GPU worker node type of the planned instance
    type, spot when the plan chose spot (AWS ``InstanceMarketOptions``, GCP Spot scheduling,
    Azure Spot priority). ``min_workers`` is the plan's node count, so the capacity the plan
    priced is there when the job starts; ``max_workers`` (default the same) caps the autoscaler.
    Workers advertise ``GPU`` and placer's ``gpu_type:<GPU>`` resource.

    Site options used: ``head_instance_type``, ``ssh_user`` (default ``ubuntu``),
    ``image_id`` (aws), ``project_id`` and ``availability_zone`` (gcp; the latter defaults to
    ``<region>-a``), ``source_image`` (gcp), ``resource_group`` and ``subscription_id`` (azure).
    """
    provider = _cloud(site)
    region = site.location.region
    offer = planned_offer(site, placement)
    assert offer.instance_type is not None  # planned_offer checks it
    nodes, per_node = _workers(placement, offer)
    top = max(max_workers or nodes, nodes)
    name = cluster_name or f"placer-{site.name}"
    provider_cfg: dict[str, Any] = {"type": provider}
    if provider == "aws":
        provider_cfg.update(region=region, cache_stopped_nodes=False)
    elif provider == "gcp":
        provider_cfg.update(region=region, project_id=_required(site, "project_id"),
                            availability_zone=_option(site, "availability_zone") or f"{region}-a")
    else:
        provider_cfg.update(location=region,
                            resource_group=_option(site, "resource_group") or name)
        if sub := _option(site, "subscription_id"):
            provider_cfg["subscription_id"] = sub
    head_type = _option(site, "head_instance_type") or DEFAULT_HEAD_INSTANCE[provider]
    config: dict[str, Any] = {
        "cluster_name": name,
        "max_workers": top,
        "idle_timeout_minutes": 5,
        "provider": provider_cfg,
        "auth": {"ssh_user": _option(site, "ssh_user") or "ubuntu"},
        "head_node_type": HEAD_NODE_TYPE,
        "available_node_types": {
            HEAD_NODE_TYPE: {
                "node_config": _node_config(provider, site, head_type, spot=False),
                "resources": {},  # let Ray detect the head's CPUs; it gets no GPU work
                "min_workers": 0, "max_workers": 0,
            },
            WORKER_NODE_TYPE: {
                "node_config": _node_config(provider, site, offer.instance_type,
                                            spot=placement.spot),
                "resources": {"GPU": per_node,
                              f"{GPU_TYPE_RESOURCE_PREFIX}{offer.gpu}": per_node},
                "min_workers": nodes, "max_workers": top,
            },
        },
    }
    if image:
        config["docker"] = {"image": image, "container_name": "ray_container",
                            "pull_before_run": True}
    return config


def raycluster_manifest(site: ResolvedSite, placement: JobPlacement, *, image: str,
                        name: str | None = None, namespace: str | None = None,
                        ray_version: str | None = None) -> dict[str, Any]:
    """A KubeRay ``RayCluster`` for the planned offer on the cloud's managed Kubernetes.

    GPU workers select nodes by the planned instance type (``node.kubernetes.io/instance-type``,
    which EKS, GKE and AKS all set) and, for spot, by the cloud's spot-capacity label, with
    tolerations for ``nvidia.com/gpu`` and the spot taint.
    """
    provider = _cloud(site)
    offer = planned_offer(site, placement)
    nodes, per_node = _workers(placement, offer)
    selector = {INSTANCE_TYPE_LABEL: str(offer.instance_type)}
    tolerations: list[dict[str, str]] = [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    if placement.spot:
        key, value = SPOT_NODE_LABEL[provider]
        selector[key] = value
        tolerations.append({"key": key, "operator": "Equal", "value": value,
                            "effect": "NoSchedule"})
    gpu_resources = {"limits": {"nvidia.com/gpu": str(per_node)}}
    labels = {"app.kubernetes.io/managed-by": "placer"}
    spec: dict[str, Any] = {
        "headGroupSpec": {
            "rayStartParams": {"dashboard-host": "0.0.0.0", "num-gpus": "0"},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                "name": "ray-head", "image": image,
                "resources": {"requests": {"cpu": "2", "memory": "8G"},
                              "limits": {"memory": "8G"}}}]}},
        },
        "workerGroupSpecs": [{
            "groupName": "gpu", "replicas": nodes, "minReplicas": nodes, "maxReplicas": nodes,
            # Advertise placer's GPU-type resource, as the launcher's worker node type does.
            "rayStartParams": {"resources": _ray_resources({
                f"{GPU_TYPE_RESOURCE_PREFIX}{offer.gpu}": per_node})},
            "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{"name": "ray-worker", "image": image,
                                "resources": gpu_resources}],
                "nodeSelector": selector, "tolerations": tolerations}},
        }],
    }
    if ray_version:
        spec["rayVersion"] = ray_version
    metadata: dict[str, Any] = {"name": name or f"placer-{site.name}", "labels": labels}
    ns = namespace or (site.cluster.namespace if site.cluster else None)
    if ns:
        metadata["namespace"] = ns
    return {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": metadata, "spec": spec}


def _ray_resources(resources: Mapping[str, int]) -> str:
    """``ray start --resources`` JSON, quoted as KubeRay passes it to the shell."""
    return "'" + json.dumps(dict(resources), sort_keys=True) + "'"


class _NoAliases(yaml.SafeDumper):
    """Writes a shared sub-dict out in full each time: operators read specs, not anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_yaml(spec: Mapping[str, Any]) -> str:
    """A spec as YAML, in the order it was built (Ray's own examples read top-down)."""
    return yaml.dump(dict(spec), Dumper=_NoAliases, sort_keys=False)
