"""The pricing seam: one cost model for a job at a site, used by every planner placer has.

``placer plan`` (:mod:`placer.scheduler`), the executor's re-plans (through ``plan``), the
simulator's cloud model (:mod:`placer.sim.cloud` quotes through :func:`cheapest_quote`) and the
online strategies (:mod:`placer.online`, :mod:`placer.sim.placer_strategy`) all price with the
functions below, so what the benchmarks measure is what ``placer plan`` runs. The rules are
written out in ``docs/cost-model.md``; in short:

* **which offers fit a job**: :func:`gpu_matches` (a family name matches its variants, a name
  with a variant only itself, case-insensitive); when a job names both a family and an exact
  variant, an offer takes the exact key's run time (:func:`run_time`);
* **what a node costs**: the offer's price per node-hour, plus the host VM for a GCP
  attached-GPU offer (:func:`price_offer`, :data:`DEFAULT_HOST_USD_PER_GPU_H`);
* **how many nodes**: ``ceil(gpus / gpus_per_node)`` of the cheapest shape (:func:`cheapest_quote`;
  ties to fewer billed GPUs, then to the earlier offer);
* **time and bill**: inputs are staged first, then the node is requested, provisioned and runs
  the job: ``start >= ready + transfer + provisioning``; the node is billed from its request,
  so a cloud run costs ``nodes x price x (provisioning + run)`` (:meth:`Quote.bill_usd`); on
  spot the run is stretched to ``run x (1 + spot_overhead)`` (:func:`spot_run_h`);
* **on-prem**: ``gpus x run x cost_per_gpu_hour`` of the pool, no provisioning;
* **moving data**: ``GB x USD/GB`` and ``GB x 8 / Gbit/s`` of the link between two locations,
  the inventory's ``network:`` entries first, then the catalog's egress model (:func:`link`).

Everything here is pure and cheap; the simulator calls :func:`cheapest_quote` once per (site,
GPUs, spot) and memoises it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from placer.catalog import Catalog, gpu_matches, is_gpu_only, link_for
from placer.models import Job, Location, Offer, ResolvedSite
from placer.models import Link as NetworkLink
from placer.optimizer import Link, Option

__all__ = [
    "DEFAULT_HOST_SPOT_USD_PER_GPU_H",
    "DEFAULT_HOST_USD_PER_GPU_H",
    "HOST_VM",
    "SECONDS_PER_HOUR",
    "Candidate",
    "HostVm",
    "PricedOffer",
    "Quote",
    "cheapest_quote",
    "cloud_option",
    "gpu_matches",
    "job_candidates",
    "link",
    "links",
    "onprem_option",
    "price_offer",
    "price_offers",
    "run_time",
    "site_candidates",
    "spot_run_h",
]

SECONDS_PER_HOUR: Final = 3600.0

DEFAULT_HOST_USD_PER_GPU_H: Final = 0.47
"""Host VM added per GPU of a GCP attached-GPU (``gpu_only``) offer, on-demand, USD/h.

An n1-highmem-8 (8 vCPU, 52 GB; about what AWS gives one V100 in a p3.2xlarge) at about
$0.47/h, the figure ``gpu_prices.csv`` notes for GCP's attached T4 (SkyPilot catalog v7
snapshot, recorded with "~"): approximate, one VM shape for every GPU.
"""
DEFAULT_HOST_SPOT_USD_PER_GPU_H: Final = 0.235
"""The same host on spot: half the on-demand price, the spot / on-demand ratio of GCP's
a2-highgpu-1g host VM in us-central1 (0.36975 / 0.73948, SkyPilot catalog v8 sample in
``shared/data/catalog``). An assumption for n1 hosts."""


# -- GPU types -----------------------------------------------------------------------------------


def run_time(gpu_types: Mapping[str, float], gpu: str) -> tuple[str, float] | None:
    """``(key, hours)``: which of a job's ``gpu_types`` an offer or pool of type ``gpu`` runs
    it as, and for how long; None if none matches (:func:`gpu_matches`).

    An exact key (case-insensitive) wins over a family key, so with ``{A100: 6h, A100-80GB: 4h}``
    an ``A100-80GB`` runs 4 h and an ``A100-40GB`` 6 h. Among several family keys (only
    possible with names differing in case) the first declared wins.

    >>> run_time({"A100": 6.0, "A100-80GB": 4.0}, "A100-80GB"), run_time({"A100": 6.0}, "T4")
    (('A100-80GB', 4.0), None)
    """
    g = gpu.lower()
    found: tuple[str, float] | None = None
    for key, hours in gpu_types.items():
        if key.lower() == g:
            return key, hours
        if found is None and gpu_matches(key, gpu):
            found = (key, hours)
    return found


# -- cloud offers and quotes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostVm:
    """USD per GPU-hour of the host VM a GCP attached-GPU offer needs (on demand, spot)."""

    on_demand: float = DEFAULT_HOST_USD_PER_GPU_H
    spot: float = DEFAULT_HOST_SPOT_USD_PER_GPU_H

    def __post_init__(self) -> None:
        for label, v in (("on_demand", self.on_demand), ("spot", self.spot)):
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"host VM {label} price must be a non-negative number, got {v}")


HOST_VM: Final = HostVm()
"""The default host VM prices (:data:`DEFAULT_HOST_USD_PER_GPU_H`, spot
:data:`DEFAULT_HOST_SPOT_USD_PER_GPU_H`)."""


@dataclass(frozen=True, slots=True)
class PricedOffer:
    """A node type with its full price per node-hour (host VM included), ready to quote."""

    instance: str
    """The instance type, or ``"<gpu> x<n>"`` when the offer names none."""
    gpu: str
    gpus_per_node: int
    on_demand: float
    """USD per node-hour on demand, host VM included."""
    spot: float | None
    """USD per node-hour on spot, host VM included; None: no spot offer."""
    instance_type: str | None = None
    """The offer's own instance type (None when it names none), for labels."""

    def usd_per_node_h(self, spot: bool) -> float | None:
        return self.spot if spot else self.on_demand


def price_offer(offer: Offer, host: HostVm = HOST_VM) -> PricedOffer:
    """``offer`` with its full node price: a GCP attached-GPU offer
    (:func:`placer.catalog.is_gpu_only`) gets ``host`` per GPU added, on demand and on spot."""
    n = offer.gpus_per_node
    od, spot = offer.on_demand, offer.spot
    if is_gpu_only(offer):
        od += host.on_demand * n
        spot = None if spot is None else spot + host.spot * n
    return PricedOffer(
        offer.instance_type or f"{offer.gpu} x{n}", offer.gpu, n, od, spot, offer.instance_type
    )


def price_offers(
    offers: Iterable[Offer], host: HostVm = HOST_VM, *, gpu: str | None = None
) -> tuple[PricedOffer, ...]:
    """:func:`price_offer` of every offer, in order; only those matching ``gpu`` if given."""
    return tuple(price_offer(o, host) for o in offers if gpu is None or gpu_matches(gpu, o.gpu))


@dataclass(frozen=True, slots=True)
class Quote:
    """What running ``gpus`` GPUs at a site costs: whole nodes of its cheapest matching offer.

    A plain value: the planner, the simulator's cloud model and an online scheduler's view all
    hand out these.
    """

    site: str
    location: str
    """Location key of the site, e.g. ``aws:us-east-1``."""
    instance: str
    gpu: str
    nodes: int
    gpus_per_node: int
    spot: bool
    usd_per_h: float
    """USD per hour for all ``nodes`` nodes (host VM included)."""
    gpu_h_per_h: int
    """GPUs billed (``nodes * gpus_per_node``): GPU-hours accrued per hour."""

    def bill_usd(self, provisioning_h: float, run_h: float) -> float:
        """The bill of one run: the nodes are paid from their request, through provisioning
        and the run (input staging comes before the request and is not billed)."""
        return self.usd_per_h * (provisioning_h + run_h)


def _cheapest(
    offers: Iterable[PricedOffer], gpus: int, spot: bool
) -> tuple[PricedOffer, int, float] | None:
    best: tuple[PricedOffer, int, float] | None = None
    best_key: tuple[float, int] | None = None
    for o in offers:
        price = o.usd_per_node_h(spot)
        if price is None:
            continue
        nodes = -(-gpus // o.gpus_per_node)
        key = (nodes * price, nodes * o.gpus_per_node)
        if best_key is None or key < best_key:
            best, best_key = (o, nodes, nodes * price), key
    return best


def cheapest_quote(
    site: str, location: str, offers: Iterable[PricedOffer], gpus: int, spot: bool
) -> Quote | None:
    """The cheapest way to rent ``gpus`` GPUs from ``offers``: ``ceil(gpus / gpus_per_node)``
    nodes of one offer, the lowest total per hour; ties to fewer billed GPUs, then to the earlier
    offer. None when no offer has a price in that mode (no spot price, no offers)."""
    if gpus < 1:
        raise ValueError(f"a quote needs >= 1 GPU, got {gpus}")
    got = _cheapest(offers, gpus, spot)
    if got is None:
        return None
    o, nodes, usd = got
    return Quote(site, location, o.instance, o.gpu, nodes, o.gpus_per_node, spot, usd,
                 nodes * o.gpus_per_node)


# -- options for the optimizer -------------------------------------------------------------------


def spot_run_h(run_h: float, spot_overhead: float) -> float:
    """The run time planned on spot: ``run x (1 + spot_overhead)``, the expected preemptions
    and restarts (the simulator replays real ones instead)."""
    return run_h * (1.0 + spot_overhead)


def cloud_option(
    quote: Quote,
    *,
    run_h: float,
    provisioning_h: float,
    spot_overhead: float,
    site: str | None = None,
    penalty_usd: float = 0.0,
) -> Option:
    """The optimizer option of running a job of ``run_h`` hours on ``quote``'s nodes.

    ``start_delay_h`` is the provisioning (the inputs' transfer comes before it, from the
    problem's edges and reads); ``duration_h`` the run, stretched on spot; ``compute_usd``
    :meth:`Quote.bill_usd` of both. ``site`` overrides the name reported back.
    """
    d = spot_run_h(run_h, spot_overhead) if quote.spot else run_h
    return Option(
        site=quote.site if site is None else site,
        location=quote.location,
        gpu=quote.gpu,
        spot=quote.spot,
        duration_h=d,
        compute_usd=quote.bill_usd(provisioning_h, d),
        start_delay_h=provisioning_h,
        penalty_usd=penalty_usd,
    )


def onprem_option(
    site: str,
    location: str,
    gpu: str,
    *,
    gpus: int,
    run_h: float,
    usd_per_gpu_h: float,
    start_delay_h: float = 0.0,
    penalty_usd: float = 0.0,
    pool: str | None = None,
) -> Option:
    """The optimizer option of running a job on an on-prem pool: ``gpus x run x usd_per_gpu_h``,
    no provisioning. ``pool`` is the capacity key it takes ``gpus`` from (the planner's is
    ``site/gpu``); None leaves capacity out of the problem."""
    return Option(
        site=site,
        location=location,
        gpu=gpu,
        spot=False,
        duration_h=run_h,
        compute_usd=gpus * run_h * usd_per_gpu_h,
        start_delay_h=start_delay_h,
        penalty_usd=penalty_usd,
        pool=pool,
        pool_gpus=gpus if pool is not None else 0,
    )


@dataclass(frozen=True)
class Candidate:
    """An optimizer option together with what produced it (for a plan's evidence)."""

    option: Option
    nodes: int
    gpus: int
    label: str


def _label(gpu: str, instance_type: str | None, nodes: int, spot: bool) -> str:
    shape = f"{nodes}× {instance_type}" if instance_type and not instance_type.startswith("(") \
        else f"{nodes} node(s)"
    return f"{gpu}, {shape}, {'spot' if spot else 'on-demand'}"


def site_candidates(
    site: ResolvedSite,
    *,
    gpus: int,
    gpu_types: Mapping[str, float],
    spot_ok: bool,
    penalty_usd: float = 0.0,
    host: HostVm = HOST_VM,
) -> list[Candidate]:
    """Every way to run a job of ``gpus`` GPUs with run times ``gpu_types`` at ``site``.

    On-prem: one option per pool that matches one of the job's GPU types and holds ``gpus``.
    Cloud: per GPU-type key and pricing mode (on demand; spot only when ``spot_ok`` and an offer
    has a spot price) the cheapest node shape among the offers that take their run time from
    that key; every other shape is dominated (same place, run time and start-up delay, dearer).
    Order: the job's GPU types as declared, on-prem pools in site order, on demand before spot.
    """
    out: list[Candidate] = []
    loc = site.location.key
    if site.kind == "onprem":
        for key in gpu_types:
            for pool in site.pools:
                rt = run_time(gpu_types, pool.gpu)
                if rt is None or rt[0] != key or pool.count < gpus:
                    continue
                opt = onprem_option(site.name, loc, pool.gpu, gpus=gpus, run_h=rt[1],
                                    usd_per_gpu_h=pool.cost_per_gpu_hour, penalty_usd=penalty_usd,
                                    pool=f"{site.name}/{pool.gpu}")
                out.append(Candidate(opt, nodes=0, gpus=gpus, label=f"{pool.gpu} on-prem"))
        return out
    priced = price_offers(site.offers, host)
    keys = [run_time(gpu_types, o.gpu) for o in priced]
    for key, hours in gpu_types.items():
        group = [o for o, k in zip(priced, keys, strict=True) if k is not None and k[0] == key]
        if not group:
            continue
        for spot in (False, True) if spot_ok else (False,):
            got = _cheapest(group, gpus, spot)
            if got is None:
                continue
            o, nodes, usd = got
            q = Quote(site.name, loc, o.instance, o.gpu, nodes, o.gpus_per_node, spot, usd,
                      nodes * o.gpus_per_node)
            delay = site.spot_provisioning_h if spot else site.provisioning_h
            opt = cloud_option(q, run_h=hours, provisioning_h=delay,
                               spot_overhead=site.spot_overhead, penalty_usd=penalty_usd)
            out.append(Candidate(opt, nodes=nodes, gpus=q.gpu_h_per_h,
                                 label=_label(o.gpu, o.instance_type, nodes, spot)))
    return out


def job_candidates(
    job: Job,
    sites: Sequence[ResolvedSite],
    penalties: Mapping[str, float] | None = None,
    *,
    host: HostVm = HOST_VM,
) -> list[Candidate]:
    """:func:`site_candidates` of a pipeline job on every site of ``sites``, in order, each with
    its site's soft-preference penalty."""
    pen = penalties or {}
    return [
        c
        for site in sites
        for c in site_candidates(site, gpus=job.resources.gpus, gpu_types=job.gpu_types,
                                 spot_ok=job.spot, penalty_usd=pen.get(site.name, 0.0), host=host)
    ]


# -- links ---------------------------------------------------------------------------------------


def link(
    network: Iterable[NetworkLink], catalog: Catalog | None, a: Location, b: Location
) -> Link:
    """Price and speed of moving data from ``a`` to ``b``: the inventory's ``network:`` entries
    first, then the catalog's egress model (:func:`placer.catalog.link_for`). The same location
    is free and instant; hours per GB are ``8 / Gbit/s / 3600``."""
    usd, gbps = link_for(network, catalog, a, b)
    hours = 0.0 if math.isinf(gbps) else 8.0 / gbps / SECONDS_PER_HOUR
    return Link(usd_per_gb=usd, hours_per_gb=hours)


def links(
    locations: Mapping[str, Location],
    keys: Iterable[str],
    network: Iterable[NetworkLink],
    catalog: Catalog | None,
) -> dict[tuple[str, str], Link]:
    """:func:`link` for every ordered pair of distinct ``keys`` (looked up in ``locations``)."""
    net = tuple(network)
    used = sorted(set(keys))
    return {
        (a, b): link(net, catalog, locations[a], locations[b])
        for a in used for b in used if a != b
    }
