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
from placer.sim.cloud._spot import SpotTrace, auto_traces, shipped_trace

_FREE = OptLink(0.0, 0.0)
"""Within one location (or the uniform model): free and instant."""


@dataclass(frozen=True, slots=True)
class CloudSite:
    """One cloud site of a model: its priced offers, provisioning (on-demand, spot), spot
    trace (None: spot always up) and quota (None: none)."""

    name: str
    location: str
    offers: tuple[PricedOffer, ...]
    provisioning: tuple[Provisioning, Provisioning]  # (on-demand, spot)
    trace: SpotTrace | None
    quota: int | None


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

    def spot_trace(self, site: str, nodes: int = 1) -> SpotTrace | None:
        """The spot availability of ``site`` for a job of ``nodes`` nodes; None = always up."""
        tr = self._site(site).trace
        if tr is None or nodes == 1:
            return tr
        memo = self._trace_memo
        got = memo.get((site, nodes))
        if got is None:
            got = memo[(site, nodes)] = tr.for_nodes(nodes)
        return got

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
    spot_traces: Mapping[str, str] | Literal["auto"] = "auto",
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
    none (spot always up). ``"auto"`` gives every site with a matching spot offer a trace:
    an AWS region its own region trace from the two-month V100 set
    (``availability/1-node/aws-02-15-2023/<region>_v100_1``) where one exists; every other site
    borrows a pattern: the set's region traces (us-east-1, us-east-2, us-west-2) in name order,
    round-robin in site order, skipping those the model's own AWS regions already use while any
    are left (a stand-in: no GCP, Azure or EU trace exists, and two sites sharing one pattern
    would be preempted together). ``spot_offset_h`` shifts every trace. ``quotas`` caps the
    GPUs billed at a site at once.
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
    if spot_traces != "auto":
        for site in spot_traces:
            if site not in names:
                problems.append(
                    ErrorDetail(f"unknown cloud site {site!r}", field=f"spot_traces.{site}")
                )
    if problems:
        raise ConfigError(problems)

    host = HostVm(host_usd_per_gpu_h, host_spot_usd_per_gpu_h)
    priced = {s.name: price_offers(s.offers, host, gpu=gpu) for s in cloud}
    if spot_traces == "auto":
        chosen = auto_traces(cloud, priced)
    else:
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
        built.append(
            CloudSite(s.name, s.location.key, priced[s.name], prov, tr, quotas.get(s.name)))
    locations = {s.location.key: s.location for s in sites}
    return CloudModel(
        f"catalog:{gpu}",
        built,
        locations=locations,
        network=inventory.network if inventory is not None else (),
        catalog=catalog,
    )
