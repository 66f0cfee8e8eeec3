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
  spot the run takes the expected preemptions, waits and re-provisioning measured on the
  region's spot trace (:func:`spot_run`; the table: ``docs/catalog.md``), or ``run x (1 +
  spot_overhead)`` where a site sets that figure (:func:`spot_run_h`);
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
from functools import lru_cache
from typing import Final

from placer.catalog import (
    Catalog,
    SpotStats,
    egress_schedule_for,
    gpu_matches,
    is_gpu_only,
    link_for,
    spot_stats,
)
from placer.models import Job, Location, Offer, ResolvedSite
from placer.models import Link as NetworkLink
from placer.optimizer import Link, Option

__all__ = [
    "DEFAULT_HOST_SPOT_USD_PER_GPU_H",
    "DEFAULT_HOST_USD_PER_GPU_H",
    "DEFAULT_RESTART_H",
    "HOST_VM",
    "SECONDS_PER_HOUR",
    "SPOT_QUANTILE",
    "Candidate",
    "HostVm",
    "PricedOffer",
    "Quote",
    "SpotRun",
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
    "spot_estimate",
    "spot_run",
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


@lru_cache(maxsize=4096)
def _run_time(gpu_types: tuple[tuple[str, float], ...], gpu: str) -> tuple[str, float] | None:
    return run_time(dict(gpu_types), gpu)


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


DEFAULT_RESTART_H: Final = 0.2
"""Hours of work redone after each spot preemption: restoring the last checkpoint and redoing
the work since it. Can't Be Late's changeover delay (``restart_overhead_hours=0.2``,
``provisioning_latency.csv``) and the simulator's ``restart_overhead_h``; the same as
checkpointing every 24 minutes and losing half an interval on average. Jobs state no checkpoint
interval of their own (yet), so every job gets this figure."""

SPOT_QUANTILE: Final = 0.9
"""The quantile of a spot run's duration shown beside the expected one."""


@dataclass(frozen=True, slots=True)
class SpotRun:
    """What ``run_h`` hours of work take on spot, after the first provisioning (hours).

    ``expected_h`` and ``billed_h`` are means; ``conservative_h`` is the
    :data:`SPOT_QUANTILE` duration, never below ``expected_h``. With a flat ``spot_overhead``
    all three are ``run x (1 + overhead)`` and ``stats`` is None.
    """

    run_h: float
    expected_h: float
    """Expected wall time: first wait for capacity, the work, and per preemption the wait to
    regain capacity, the re-provisioning and the redone work."""
    conservative_h: float
    """The duration met with probability about :data:`SPOT_QUANTILE` (see :func:`spot_run`):
    shown beside the plan's spot choices, so a user sees the tail the mean hides."""
    billed_h: float
    """Expected hours billed: the work, re-provisioning and redone work (not the waits)."""
    preemptions: float
    """Expected number of preemptions."""
    stats: SpotStats | None = None
    """The region's statistics; None for a flat overhead."""
    overhead: float | None = None
    """The site's explicit ``spot_overhead``, when that priced the run."""

    def note(self) -> str:
        """A short account for a plan's evidence: where the figures come from."""
        if self.stats is None:
            return f"spot_overhead {self.overhead:g} set on the site"
        st = self.stats
        # A borrowed row's trace already says what it was borrowed from.
        where = st.trace if st.borrowed else f"trace {st.trace}"
        return (f"expected {self.expected_h:.2f} h for {self.run_h:g} h of work, "
                f"p{SPOT_QUANTILE * 100:.0f} {self.conservative_h:.2f} h, "
                f"{self.preemptions:.2f} preemptions; {where}")


def spot_run_h(run_h: float, spot_overhead: float) -> float:
    """The run time on spot under a flat overhead: ``run x (1 + spot_overhead)``."""
    return run_h * (1.0 + spot_overhead)


def spot_run(
    run_h: float,
    stats: SpotStats,
    *,
    provisioning_h: float,
    restart_h: float = DEFAULT_RESTART_H,
) -> SpotRun | None:
    """``run_h`` hours of work on spot capacity that behaves like ``stats`` says; None when
    preemptions come faster than a restart can pay off (the run never finishes on average).

    The model. While up, preemptions come at rate ``l = 1/mtbf_h``
    per hour, the long-run rate of the trace whatever the distribution of its up times
    (renewal reward). Each one costs ``c = provisioning_h + restart_h`` of billed up time
    (the nodes come back, the job restores its checkpoint and redoes the work since it:
    :data:`DEFAULT_RESTART_H`) and ``mttr_h`` of unbilled waiting for capacity. That up time
    can be preempted too, so the expected number of preemptions is
    ``n = l * run / (1 - l * c)``, the hours billed ``run + n * c`` and the expected wall time
    ``wait_h + run + n * (c + mttr_h)``, where ``wait_h`` is the expected wait for capacity at
    the first request (the first provisioning is the option's start delay, billed apart).

    The conservative duration is the region's replayed 90th percentile
    (``SpotStats.p90_extra``: the trace replayed with the simulator's rules from requests all
    along it), moved by ``n`` times any difference between this run's ``c`` and the replay's,
    and never below the expected time. Assumptions: the job waits for its own region's
    capacity (it does not fail over to on-demand or elsewhere); the same pattern for every GPU
    type and node count (the traces are single V100 nodes; co-preemptions of one type in a
    zone are near simultaneous); checkpointing itself costs nothing. Against the replay, the
    expected bill is within a few per cent, while the expected wall time is 5-20 % low in the
    flaky regions (bad spells bring both more preemptions and longer waits): the percentile,
    not the mean, is what deadlines are checked against.
    """
    lam = 0.0 if math.isinf(stats.mtbf_h) else 1.0 / stats.mtbf_h
    c = provisioning_h + restart_h
    if lam * c >= 1.0:
        return None
    n = lam * run_h / (1.0 - lam * c)
    billed = run_h + n * c
    expected = stats.wait_h + billed + n * stats.mttr_h
    shift = n * (c - stats.provisioning_h - stats.restart_h)
    conservative = max(expected, run_h + stats.p90_extra(run_h) + shift)
    return SpotRun(run_h, expected, conservative, billed, n, stats)


@lru_cache(maxsize=8192)
def spot_estimate(
    location: str,
    run_h: float,
    *,
    provisioning_h: float,
    spot_overhead: float | None = None,
    stats: SpotStats | None = None,
    restart_h: float = DEFAULT_RESTART_H,
) -> SpotRun | None:
    """A spot run at ``location``: a flat ``spot_overhead`` when one is given (a site that
    sets it overrides the traces), else :func:`spot_run` with ``stats`` or the catalog's
    :func:`placer.catalog.spot_stats` for the location (borrowed where it has no trace)."""
    if spot_overhead is not None:
        d = spot_run_h(run_h, spot_overhead)
        return SpotRun(run_h, d, d, d, 0.0, None, spot_overhead)
    st = stats if stats is not None else spot_stats(location)
    return spot_run(run_h, st, provisioning_h=provisioning_h, restart_h=restart_h)


def cloud_option(
    quote: Quote,
    *,
    run_h: float,
    provisioning_h: float,
    spot_overhead: float | None = None,
    spot_stats: SpotStats | None = None,
    restart_h: float = DEFAULT_RESTART_H,
    site: str | None = None,
    penalty_usd: float = 0.0,
) -> Option:
    """The optimizer option of running a job of ``run_h`` hours on ``quote``'s nodes.

    ``start_delay_h`` is the provisioning (the inputs' transfer comes before it, from the
    problem's edges and reads). On demand, ``duration_h`` is the run and ``compute_usd``
    :meth:`Quote.bill_usd` of both. On spot (:func:`spot_estimate`: ``spot_overhead`` if given,
    else the region's trace statistics), ``duration_h`` is the expected duration (the work
    with the expected preemptions, waits and restarts) and ``compute_usd`` the expected bill:
    the optimizer checks deadlines against the duration, so a job with little slack goes to
    spot only when the plan still meets its deadline with the expected delay. The
    :data:`SPOT_QUANTILE` duration is evidence (in the option's label), not planned on: a
    plan on means is what the cost model promises everywhere else. ``site`` overrides the
    name reported back.

    Raises:
        ValueError: a spot run that never finishes (preemptions faster than restarts).
    """
    if quote.spot:
        sr = spot_estimate(quote.location, run_h, provisioning_h=provisioning_h,
                           spot_overhead=spot_overhead, stats=spot_stats, restart_h=restart_h)
        if sr is None:
            raise ValueError(f"spot at {quote.location} never finishes a {run_h:g} h run: "
                             "preemptions come faster than a restart pays off")
        d, billed = sr.expected_h, sr.billed_h
    else:
        d = billed = run_h
    return Option(
        site=quote.site if site is None else site,
        location=quote.location,
        gpu=quote.gpu,
        spot=quote.spot,
        duration_h=d,
        compute_usd=quote.bill_usd(provisioning_h, billed),
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


_PRICED: dict[int, tuple[Sequence[Offer], HostVm, tuple[PricedOffer, ...]]] = {}


def _priced(offers: Sequence[Offer], host: HostVm) -> tuple[PricedOffer, ...]:
    """A site's offers priced once, not once per job (values: safe to share). Keyed by the
    offers' identity: hashing a tuple of models per lookup costs more than the pricing."""
    hit = _PRICED.get(id(offers))
    if hit is not None and hit[0] is offers and hit[1] is host:
        return hit[2]
    if len(_PRICED) > 1024:
        _PRICED.clear()
    priced = price_offers(offers, host)
    _PRICED[id(offers)] = (offers, host, priced)  # holds offers: the id stays theirs
    return priced


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
    Cloud: per GPU-type key and pricing mode (on demand; spot only when ``spot_ok``, an offer
    has a spot price and the region's spot run finishes at all: :func:`spot_estimate`) the
    cheapest node shape among the offers that take their run time from that key; every other
    shape is dominated (same place, run time and start-up delay, dearer). A spot option's
    label says where its duration comes from (the region's trace, a borrowed pattern, or the
    site's ``spot_overhead``), so a plan's evidence shows it.
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
    priced = _priced(site.offers, host)
    types = tuple(gpu_types.items())
    keys = [_run_time(types, o.gpu) for o in priced]
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
            label = _label(o.gpu, o.instance_type, nodes, spot)
            stats: SpotStats | None = None
            if spot:
                sr = spot_estimate(loc, hours, provisioning_h=delay,
                                   spot_overhead=site.spot_overhead)
                if sr is None:  # preempted faster than it restarts: no spot option here
                    continue
                stats = sr.stats
                label = f"{label} ({sr.note()})"
            opt = cloud_option(q, run_h=hours, provisioning_h=delay, spot_overhead=(
                site.spot_overhead), spot_stats=stats, penalty_usd=penalty_usd)
            out.append(Candidate(opt, nodes=nodes, gpus=q.gpu_h_per_h, label=label))
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
    network = tuple(network)
    usd, gbps = link_for(network, catalog, a, b)
    hours = 0.0 if math.isinf(gbps) else 8.0 / gbps / SECONDS_PER_HOUR
    free, tiers = (egress_schedule_for(network, a, b)
                   if any(n.free is not None or n.tiers for n in network) else (0.0, ()))
    return Link(usd_per_gb=usd, hours_per_gb=hours, free_gb=free, tiers=tiers)


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
