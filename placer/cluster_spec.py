"""Backend-neutral sizing of the cluster a plan paid for on a cloud site.

placer does not launch clouds. For a cloud site whose inventory names no running cluster, it
renders the spec of the cluster the plan paid for (instance type, spot or on-demand, region,
node count), so an operator or CI brings it up with the cloud's own tooling and points the
site's ``cluster.address`` at it. What a spec looks like is a backend's business (a
:class:`placer.backends.ClusterRenderer`: ``placer_ray`` renders Ray cluster launcher YAML,
``placer_k8s`` KubeRay ``RayCluster`` manifests, found through the ``placer.backends`` entry
points); what it is sized for is decided here, once, for all of them: which placement
(:func:`sizing_placement`), which offer (:func:`planned_offer`), how many nodes
(:func:`worker_nodes`), and the site options a renderer reads.

Pure: plain values from models, no SDK, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import yaml

from placer.errors import CatalogError, ConfigError, ErrorDetail
from placer.models import JobPlacement, Offer, Plan, ResolvedSite


def sizing_placement(plan: Plan, site: str, job: str | None = None) -> JobPlacement:
    """The placement a site's cluster is sized for: ``job``'s, or the site's largest.

    Largest by nodes, then GPUs; ties go to the first in plan order. The cluster's GPU type and
    spot choice come from that placement, so jobs on one site that differ in either need a spec
    each (pass ``job``).

    Raises:
        ConfigError: the plan puts no job (or not ``job``) on ``site``, or its jobs there
            differ in GPU type or spot, and no ``job`` was named.
    """
    # The messages name the choices and the CLI's flags (--job, --site): a user reading
    # `placer cluster-spec`'s error learns the fix without reading the plan's JSON.
    jobs_here = [name for name, p in plan.jobs.items() if p.site == site]
    if job is not None:
        placement = plan.jobs.get(job)
        if placement is None or placement.site != site:
            where = "is not in the plan" if placement is None else f"runs on {placement.site!r}"
            choices = f"--job one of: {', '.join(jobs_here)}" if jobs_here else \
                f"the plan puts no job on {site!r}"
            raise ConfigError(ErrorDetail(f"the plan does not put job {job!r} on site {site!r} "
                                          f"(it {where}); {choices}", field="job"))
        return placement
    here = [plan.jobs[name] for name in jobs_here]
    if not here:
        used = sorted({p.site for p in plan.jobs.values()})
        raise ConfigError(ErrorDetail(f"the plan puts no job on site {site!r}; --site one of: "
                                      f"{', '.join(used) or '(none)'}", field="site"))
    if len({(p.gpu, p.spot) for p in here}) > 1:
        kinds = ", ".join(f"{n}: {p.gpu}{' spot' if p.spot else ''}"
                          for n, p in zip(jobs_here, here, strict=True))
        raise ConfigError(ErrorDetail(f"jobs on {site!r} differ in GPU type or spot ({kinds}); "
                                      "name one job to size the cluster for with --job (in "
                                      "Python: job=)", field="job"))
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


def cloud_provider(site: ResolvedSite) -> str:
    """The provider of a cloud site (``aws``, ``gcp``, ``azure``); on-prem has no cluster to render.

    Raises:
        ConfigError: ``site`` is not a cloud site.
    """
    if site.kind != "cloud" or site.location.provider == "onprem":
        raise ConfigError(ErrorDetail(f"{site.name} is not a cloud site: no cluster to render",
                                      field=f"sites.{site.name}"))
    return site.location.provider


def site_option(site: ResolvedSite, key: str) -> str | None:
    """The site's ``cluster.options[key]``, if it has one."""
    return site.cluster.options.get(key) if site.cluster else None


def required_option(site: ResolvedSite, key: str) -> str:
    """The site's ``cluster.options[key]``; a ConfigError naming the field when it is unset."""
    value = site_option(site, key)
    if not value:
        raise ConfigError(ErrorDetail(f"rendering a cluster here needs options.{key}",
                                      field=f"sites.{site.name}.cluster.options.{key}"))
    return value


def worker_nodes(placement: JobPlacement, offer: Offer) -> tuple[int, int]:
    """(nodes, GPUs per node): the plan's node count, or enough nodes for its GPUs."""
    nodes = max(placement.nodes, math.ceil(placement.gpus / offer.gpus_per_node), 1)
    return nodes, offer.gpus_per_node


class _NoAliases(yaml.SafeDumper):
    """Writes a shared sub-dict out in full each time: operators read specs, not anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_yaml(spec: Mapping[str, Any]) -> str:
    """A spec as YAML, in the order it was built (Ray's own examples read top-down)."""
    return yaml.dump(dict(spec), Dumper=_NoAliases, sort_keys=False)
