"""The cloud of one simulation: its sites, their quotes, provisioning, spot traces, quotas and
links, and the two ways to build one (Starburst's uniform cloud, the catalog's regions)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np

from placer.catalog import Catalog, default_catalog
from placer.errors import CatalogError, ConfigError, ErrorDetail
from placer.models import Inventory, Link, Location, ResolvedSite
from placer.optimizer import Link as OptLink
from placer.pricing import (
    DEFAULT_HOST_SPOT_USD_PER_GPU_H,
    DEFAULT_HOST_USD_PER_GPU_H,
    HostVm,
    PricedOffer,
    Quote,
    cheapest_quote,
    price_offers,
)
from placer.pricing import link as price_link
from placer.sim.cloud._provisioning import Provisioning
from placer.sim.cloud._spot import (
    SpotPick,
    SpotTrace,
    ZoneSpot,
    legacy_pick,
    region_traces,
    shipped_trace,
    zone_spots,
)

_FREE = OptLink(0.0, 0.0)
"""Within one location (or the uniform model): free and instant."""


@dataclass(frozen=True, slots=True)
class CloudSite:
    """One cloud site of a model: its priced offers, provisioning (on-demand, spot), spot
    trace (None: spot always up) and quota (None: none).

    ``zone``, when set, picks a zone-level trace per job size instead of ``trace``
    (``spot_traces: auto``); ``resolved`` is the inventory's site, to flag borrowed traces."""

    name: str
    location: str
    offers: tuple[PricedOffer, ...]
    provisioning: tuple[Provisioning, Provisioning]  # (on-demand, spot)
    trace: SpotTrace | None
    quota: int | None
    zone: ZoneSpot | None = None
    resolved: ResolvedSite | None = None


class CloudModel:
    """The cloud of one simulation: sites, quotes, provisioning, spot traces, quotas, links.

    Immutable (the memo tables inside are caches of pure functions). Build with
    :func:`uniform_cloud` or :func:`catalog_cloud`.
    """

    __slots__ = (
        "_catalog",
        "_free_links",
        "_link_memo",
        "_locs",
        "_network",
        "_pick_memo",
        "_quote_memo",
        "_quotes_memo",
        "_sites",
        "_trace_memo",
        "name",
        "sites",
    )

    name: str
    sites: tuple[str, ...]
    """Site names in the order given (ties in :meth:`quotes` break by name, not by this)."""
    _sites: Mapping[str, CloudSite]
    _free_links: bool
    _locs: Mapping[str, Location]
    _network: tuple[Link, ...]
    _catalog: Catalog | None
    _quote_memo: dict[tuple[str, int, bool], Quote | None]
    _quotes_memo: dict[tuple[int, bool], tuple[Quote, ...]]
    _link_memo: dict[tuple[str, str], OptLink]
    _trace_memo: dict[tuple[str, int], SpotTrace]
    _pick_memo: dict[tuple[str, int, int], tuple[SpotPick, SpotTrace]]

    def __init__(
        self,
        name: str,
        sites: Sequence[CloudSite],
        *,
        locations: Mapping[str, Location] | None = None,
        network: Sequence[Link] = (),
        catalog: Catalog | None = None,
    ) -> None:
        by_name: dict[str, CloudSite] = {}
        for s in sites:
            if s.name in by_name:
                raise ConfigError(f"duplicate cloud site {s.name!r}")
            by_name[s.name] = s
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "sites", tuple(by_name))
        set_(self, "_sites", MappingProxyType(by_name))
        set_(self, "_free_links", locations is None)
        set_(self, "_locs", MappingProxyType(dict(locations or {})))
        set_(self, "_network", tuple(network))
        set_(self, "_catalog", catalog)
        set_(self, "_quote_memo", {})
        set_(self, "_quotes_memo", {})
        set_(self, "_link_memo", {})
        set_(self, "_trace_memo", {})
        set_(self, "_pick_memo", {})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a CloudModel is immutable")

    def __repr__(self) -> str:
        return f"CloudModel({self.name!r}, sites={list(self.sites)})"

    def _site(self, site: str) -> CloudSite:
        s = self._sites.get(site)
        if s is None:
            known = ", ".join(self.sites) or "none"
            raise CatalogError(f"unknown cloud site {site!r}; this model has: {known}")
        return s

    def location(self, site: str) -> str:
        """The location key of ``site``."""
        return self._site(site).location

    def quote(self, site: str, gpus: int, spot: bool) -> Quote | None:
        """The cheapest way to run ``gpus`` GPUs at ``site``, or None (no offer, no spot price):
        :func:`placer.pricing.cheapest_quote`, the planner's rule (whole nodes of one offer, the
        cheapest total, ties to fewer billed GPUs, then to the earlier offer)."""
        key = (site, gpus, spot)
        memo = self._quote_memo
        if key in memo:
            return memo[key]
        s = self._site(site)
        if gpus < 1:
            raise ConfigError(f"a quote needs >= 1 GPU, got {gpus}")
        got = memo[key] = cheapest_quote(site, s.location, s.offers, gpus, spot)
        return got

    def quotes(self, gpus: int, spot: bool) -> tuple[Quote, ...]:
        """A quote from every site that has one, cheapest first (ties by site name)."""
        key = (gpus, spot)
        memo = self._quotes_memo
        got = memo.get(key)
        if got is None:
            qs = (self.quote(s, gpus, spot) for s in self.sites)
            got = tuple(
                sorted((q for q in qs if q is not None), key=lambda q: (q.usd_per_h, q.site))
            )
            memo[key] = got
        return got

    def provisioning(self, site: str, spot: bool) -> Provisioning:
        """The delay distribution of ``site`` (for strategies that plan with its p50 or mean)."""
        return self._site(site).provisioning[spot]

    def provision_h(self, site: str, spot: bool, rng: np.random.Generator) -> float:
        """One provisioning delay, hours, drawn from ``rng`` (nothing drawn for the zero model)."""
        return self._site(site).provisioning[spot].sample(rng)

    def spot_trace(self, site: str, nodes: int = 1, gpus_per_node: int = 1) -> SpotTrace | None:
        """The spot availability of ``site`` for a job of ``nodes`` nodes of ``gpus_per_node``
        GPUs (a quote's shape); None = always up. A site with a zone (``spot_traces: auto``)
        picks the trace by size (:class:`placer.sim.cloud.ZoneSpot`); a named trace is read
        for ``nodes`` whatever the GPUs per node (:meth:`SpotTrace.for_nodes`, the old rule)."""
        s = self._site(site)
        if s.zone is not None:
            return self._zone_pick(s.zone, nodes, gpus_per_node)[1]
        tr = s.trace
        if tr is None or nodes == 1:
            return tr
        memo = self._trace_memo
        got = memo.get((site, nodes))
        if got is None:
            got = memo[(site, nodes)] = tr.for_nodes(nodes)
        return got

    def _zone_pick(self, zone: ZoneSpot, nodes: int,
                   gpus_per_node: int) -> tuple[SpotPick, SpotTrace]:
        key = (zone.site, nodes, gpus_per_node)
        memo = self._pick_memo
        got = memo.get(key)
        if got is None:
            got = memo[key] = zone.pick(nodes, gpus_per_node)
        return got

    def spot_pick(self, site: str, nodes: int = 1, gpus_per_node: int = 1) -> SpotPick | None:
        """Which trace ``site`` replays for a job of ``nodes`` x ``gpus_per_node`` GPUs, and
        whether (and why) it is borrowed; None when the site has no trace (spot always up)."""
        s = self._site(site)
        if s.zone is not None:
            return self._zone_pick(s.zone, nodes, gpus_per_node)[0]
        if s.trace is None or s.resolved is None:
            return None
        return legacy_pick(s.resolved, s.trace.name, nodes, gpus_per_node,
                           self.name.partition(":")[2] or "V100")

    def quota_gpus(self, site: str) -> int | None:
        """At most this many GPUs billed at ``site`` at once; None = no quota."""
        return self._site(site).quota

    def link(self, from_loc: str, to_loc: str) -> tuple[float, float]:
        """(USD per GB, hours per GB) from one location key to another: :func:`placer.pricing.link`,
        the planner's link model (the inventory's ``network:`` entries, else the catalog's egress
        model; ``h/GB = 8 / Gbit/s / 3600``). The same location: ``(0, 0)``. The uniform model
        has free, instant links everywhere.
        """
        ln = self.link_of(from_loc, to_loc)
        if not ln.linear:
            raise ConfigError(
                f"the link {from_loc} → {to_loc} has a free allowance or tiers: its price is "
                "not per GB; ask link_of() for the whole link (Link.usd prices a transfer)")
        return ln.usd_per_gb, ln.hours_per_gb

    def link_of(self, from_loc: str, to_loc: str) -> OptLink:
        """The whole link from one location key to another (:func:`placer.pricing.link`), with
        any free allowance and tiers: what the simulator's transfers are priced by
        (``Link.usd(gb)``), as the planner prices them."""
        if from_loc == to_loc or self._free_links:
            return _FREE
        key = (from_loc, to_loc)
        memo = self._link_memo
        got = memo.get(key)
        if got is None:
            got = memo[key] = price_link(self._network, self._catalog, self._loc(from_loc),
                                         self._loc(to_loc))
        return got

    def _loc(self, key: str) -> Location:
        loc = self._locs.get(key)
        if loc is not None:
            return loc
        cat = self._catalog if self._catalog is not None else default_catalog()
        if key in cat:
            return cat.location(key)
        raise CatalogError(
            f"unknown location {key!r}: neither a site of the inventory nor a catalog region"
        )


# -- builders ------------------------------------------------------------------------------------


def uniform_cloud(usd_per_gpu_h: float = 1.0) -> CloudModel:
    """Starburst's cloud: one site ``cloud``, one price per GPU-hour, no spot, no egress,
    no provisioning delay, no quota. A quote for g GPUs is one node of g GPUs at
    ``g * usd_per_gpu_h``."""
    if not (math.isfinite(usd_per_gpu_h) and usd_per_gpu_h >= 0):
        raise ConfigError(f"usd_per_gpu_h must be a non-negative number, got {usd_per_gpu_h}")
    return _UniformCloud(usd_per_gpu_h)


class _UniformCloud(CloudModel):
    """One offer of any size: the node is exactly as big as the job."""

    __slots__ = ("_price",)

    _price: float

    def __init__(self, usd_per_gpu_h: float) -> None:
        zero = Provisioning.zero()
        site = CloudSite("cloud", "cloud:uniform", (), (zero, zero), None, None)
        super().__init__("uniform", [site])
        object.__setattr__(self, "_price", usd_per_gpu_h)

    def quote(self, site: str, gpus: int, spot: bool) -> Quote | None:
        s = self._site(site)
        if gpus < 1:
            raise ConfigError(f"a quote needs >= 1 GPU, got {gpus}")
        if spot:
            return None
        return Quote(s.name, s.location, "uniform", "any", 1, gpus, False, gpus * self._price, gpus)


def catalog_cloud(
    sites: Sequence[ResolvedSite],
    *,
    gpu: str,
    inventory: Inventory | None = None,
    catalog: Catalog | None = None,
    spot_traces: Mapping[str, str] | Literal["auto", "zone", "region"] = "auto",
    spot_offset_h: float = 0.0,
    provisioning: Literal["default", "zero"] = "default",
    quotas: Mapping[str, int] | None = None,
    host_usd_per_gpu_h: float = DEFAULT_HOST_USD_PER_GPU_H,
    host_spot_usd_per_gpu_h: float = DEFAULT_HOST_SPOT_USD_PER_GPU_H,
) -> CloudModel:
    """The cloud sites of a resolved inventory, priced for the reference GPU type ``gpu``.

    On-prem sites are skipped (their locations still serve :meth:`CloudModel.link`).
    Offers are those whose GPU :func:`placer.pricing.gpu_matches` ``gpu``; a site with none
    stays in the model and quotes None. GCP attached-GPU offers get ``host_usd_per_gpu_h``
    (spot: ``host_spot_usd_per_gpu_h``) per GPU added for the host VM
    (:func:`placer.pricing.price_offer`, the planner's defaults). Links use
    ``inventory.network`` when an inventory is given, else the catalog's model.

    ``spot_traces`` maps site → trace name (see :func:`load_spot_traces`); sites left out have
    none (spot always up). ``"auto"`` (the same as ``"zone"``) makes every site with a
    matching spot offer one zone (:func:`placer.sim.cloud.home_zones`: its own region's where
    zone traces exist, else a borrowed one) and picks, per job size, the zone-level trace of
    the job's shape or GPU count, else the nearest larger one
    (:class:`placer.sim.cloud.ZoneSpot`); :meth:`CloudModel.spot_pick` says which, and flags
    every borrowed one. ``"region"`` is the rule before issue 13, kept only to reproduce older
    numbers: an AWS region its own *region* trace from the two-month single-V100 set
    (``availability/1-node/aws-02-15-2023/<region>_v100_1``, up when any zone is) where one
    exists, every other site a borrowed region trace round-robin, and the same 1-V100 trace
    for every job size. ``spot_offset_h`` shifts every trace. ``quotas`` caps the GPUs billed
    at a site at once.
    """
    if provisioning not in ("default", "zero"):
        raise ConfigError(f"provisioning must be 'default' or 'zero', got {provisioning!r}")
    for label, v in (
        ("host_usd_per_gpu_h", host_usd_per_gpu_h),
        ("host_spot_usd_per_gpu_h", host_spot_usd_per_gpu_h),
    ):
        if not (math.isfinite(v) and v >= 0):
            raise ConfigError(f"{label} must be a non-negative number, got {v}")
    cloud = [s for s in sites if s.kind == "cloud"]
    names = {s.name for s in cloud}
    problems: list[ErrorDetail] = []
    quotas = dict(quotas or {})
    for site, q in quotas.items():
        if site not in names:
            problems.append(ErrorDetail(f"unknown cloud site {site!r}", field=f"quotas.{site}"))
        elif isinstance(q, bool) or not isinstance(q, int) or q < 0:
            problems.append(
                ErrorDetail(f"a quota is a GPU count >= 0, got {q!r}", field=f"quotas.{site}")
            )
    if spot_traces not in ("auto", "zone", "region"):
        if isinstance(spot_traces, str):
            raise ConfigError(ErrorDetail(
                f"must be auto, zone, region or a map site -> trace name, got {spot_traces!r}",
                field="spot_traces"))
        for site in spot_traces:
            if site not in names:
                problems.append(
                    ErrorDetail(f"unknown cloud site {site!r}", field=f"spot_traces.{site}")
                )
    if problems:
        raise ConfigError(problems)

    host = HostVm(host_usd_per_gpu_h, host_spot_usd_per_gpu_h)
    priced = {s.name: price_offers(s.offers, host, gpu=gpu) for s in cloud}
    zones: dict[str, ZoneSpot] = {}
    if spot_traces in ("auto", "zone"):
        chosen: dict[str, SpotTrace] = {}
        zones = zone_spots(cloud, priced, gpu, spot_offset_h)
    elif spot_traces == "region":
        chosen = region_traces(cloud, priced)
    elif not isinstance(spot_traces, str):
        chosen = {site: shipped_trace(name) for site, name in spot_traces.items()}

    built: list[CloudSite] = []
    for s in cloud:
        if provisioning == "zero":
            prov = (Provisioning.zero(), Provisioning.zero())
        else:
            prov = (
                Provisioning.from_p50(s.provisioning_h, False),
                Provisioning.from_p50(s.spot_provisioning_h, True),
            )
        tr = chosen.get(s.name)
        if tr is not None and spot_offset_h:
            tr = tr.with_offset(spot_offset_h)
        built.append(CloudSite(s.name, s.location.key, priced[s.name], prov, tr,
                               quotas.get(s.name), zones.get(s.name), s))
    locations = {s.location.key: s.location for s in sites}
    return CloudModel(
        f"catalog:{gpu}",
        built,
        locations=locations,
        network=inventory.network if inventory is not None else (),
        catalog=catalog,
    )
