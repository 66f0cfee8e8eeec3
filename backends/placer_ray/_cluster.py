"""The Ray cluster launcher config (``ray up``) for the cloud cluster a plan paid for.

:meth:`RayJobsBackend.render_cluster <placer_ray.RayJobsBackend.render_cluster>` offers it as
the ``launcher`` cluster format (``placer cluster-spec --format launcher``). The sizing (which
placement, which offer, how many nodes) is :mod:`placer.cluster_spec`'s; what is Ray's is here.
Pure: plain dicts from models, no SDK, no I/O. The head node is always on-demand: losing it loses
the cluster, and it is cheap next to the GPU workers.
"""

from __future__ import annotations

from typing import Any, Final

from placer.backends import ClusterFormat, gpu_type_resource
from placer.cluster_spec import (
    cloud_provider,
    planned_offer,
    required_option,
    site_option,
    worker_nodes,
)
from placer.models import JobPlacement, ResolvedSite

LAUNCHER: Final = ClusterFormat("launcher", "Ray cluster launcher config (ray up)")
HEAD_NODE_TYPE: Final = "head"
WORKER_NODE_TYPE: Final = "gpu_worker"
# CPU-only head instance types, by provider; override with cluster.options.head_instance_type.
DEFAULT_HEAD_INSTANCE: Final = {
    "aws": "m5.2xlarge", "gcp": "n2-standard-8", "azure": "Standard_D8s_v5",
}


def _node_config(provider: str, site: ResolvedSite, instance_type: str,
                 spot: bool) -> dict[str, Any]:
    if provider == "aws":
        cfg: dict[str, Any] = {"InstanceType": instance_type,
                               "ImageId": site_option(site, "image_id") or "latest_dlami"}
        if spot:
            cfg["InstanceMarketOptions"] = {"MarketType": "spot"}
        return cfg
    if provider == "gcp":
        source = site_option(site, "source_image") or (
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
    Workers advertise ``GPU`` and placer's GPU-type resource
    (:func:`placer.backends.gpu_type_resource`, what this backend's jobs ask for).

    Site options used: ``head_instance_type``, ``ssh_user`` (default ``ubuntu``),
    ``image_id`` (aws), ``project_id`` and ``availability_zone`` (gcp; the latter defaults to
    ``<region>-a``), ``source_image`` (gcp), ``resource_group`` and ``subscription_id`` (azure).
    """
    provider = cloud_provider(site)
    region = site.location.region
    offer = planned_offer(site, placement)
    assert offer.instance_type is not None  # planned_offer checks it
    nodes, per_node = worker_nodes(placement, offer)
    top = max(max_workers or nodes, nodes)
    name = cluster_name or f"placer-{site.name}"
    provider_cfg: dict[str, Any] = {"type": provider}
    if provider == "aws":
        provider_cfg.update(region=region, cache_stopped_nodes=False)
    elif provider == "gcp":
        provider_cfg.update(region=region, project_id=required_option(site, "project_id"),
                            availability_zone=site_option(site, "availability_zone")
                            or f"{region}-a")
    else:
        provider_cfg.update(location=region,
                            resource_group=site_option(site, "resource_group") or name)
        if sub := site_option(site, "subscription_id"):
            provider_cfg["subscription_id"] = sub
    head_type = site_option(site, "head_instance_type") or DEFAULT_HEAD_INSTANCE[provider]
    config: dict[str, Any] = {
        "cluster_name": name,
        "max_workers": top,
        "idle_timeout_minutes": 5,
        "provider": provider_cfg,
        "auth": {"ssh_user": site_option(site, "ssh_user") or "ubuntu"},
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
                "resources": {"GPU": per_node, gpu_type_resource(offer.gpu): per_node},
                "min_workers": nodes, "max_workers": top,
            },
        },
    }
    if image:
        config["docker"] = {"image": image, "container_name": "ray_container",
                            "pull_before_run": True}
    return config


def render_cluster(site: ResolvedSite, placement: JobPlacement, fmt: str, *,
                   image: str | None = None) -> dict[str, Any]:
    """The ``launcher`` format (:class:`placer.backends.ClusterRenderer`)."""
    if fmt != LAUNCHER.name:
        raise ValueError(f"the ray backend renders {LAUNCHER.name!r} specs, not {fmt!r}")
    return launcher_config(site, placement, image=image)
