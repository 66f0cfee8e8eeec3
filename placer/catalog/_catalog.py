"""The embedded catalog: cloud regions, GPU offers, egress prices and provisioning defaults.

Every figure comes from a CSV in ``placer/catalog/data/`` (copied unchanged from the project's
collected facts; ``SOURCES.md`` there cites each source). The files are read once, with the
``csv`` module, by :func:`default_catalog`; a :class:`Catalog` is immutable afterwards, so one
instance is shared by every caller. The rules that turn rows into offers and prices are written
out in ``docs/catalog.md`` and in the docstrings below.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Any, Final

from placer.errors import CatalogError
from placer.models import EEA_COUNTRIES, EU_COUNTRIES, Location, Offer

CLOUD_PROVIDERS: Final = ("aws", "gcp", "azure")

DEFAULT_GBPS: Final = 10.0
"""Bandwidth between two different locations when nothing better is known.

The figure SkyPilot's optimizer assumes for any cross-cloud transfer
(``Optimizer._egress_time``: ``GB * 8 / 10 Gbps``, SkyPilot 0.14.1).
"""

GPU_ONLY_NOTE: Final = "GPU only, host VM extra"
"""Prefix of ``Offer.source`` for GCP rows that price the attached GPU without its host VM."""

_DATA = "data"


# -- small value types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EgressRates:
    """USD per GB that the *source* of a transfer pays (ingress is free on all three clouds).

    ``internet`` is the first paid tier of internet egress (what leaving for another provider or
    an on-prem site costs); ``same_continent`` / ``intercontinental`` are the rates between two
    regions of the same provider.
    """

    internet: Mapping[str, float]
    same_continent: Mapping[str, float]
    intercontinental: Mapping[str, float]


@dataclass(frozen=True)
class ProvisioningDefaults:
    """Seconds from a node request to a Ray worker ready to run (the csv's suggested defaults)."""

    on_demand_node_s: float
    spot_node_s: float
    ray_join_s: float

    def hours(self, spot: bool) -> float:
        node = self.spot_node_s if spot else self.on_demand_node_s
        return (node + self.ray_join_s) / 3600.0


# -- the catalog ---------------------------------------------------------------------------------


class Catalog:
    """Cloud regions with their jurisdictions, GPU offers, egress rates and provisioning times.

    Immutable after construction and cheap to share; build your own for tests, or use
    :func:`default_catalog` for the embedded data.

    >>> cat = default_catalog()
    >>> loc = cat.location("aws:eu-central-1")
    >>> loc.country, sorted(loc.jurisdictions), loc.continent
    ('DE', ['DE', 'EEA', 'EU'], 'EU')
    >>> cat.link(loc, cat.location("gcp:europe-west4"))
    (0.09, 10.0)
    """

    __slots__ = ("_egress", "_locations", "_offers", "_provisioning")

    _locations: Mapping[str, Location]
    _offers: Mapping[str, tuple[Offer, ...]]
    _egress: EgressRates
    _provisioning: ProvisioningDefaults

    def __init__(
        self,
        locations: Iterable[Location],
        offers: Iterable[tuple[str, Offer]],
        egress: EgressRates,
        provisioning: ProvisioningDefaults,
    ) -> None:
        locs: dict[str, Location] = {}
        for loc in locations:
            if loc.provider not in CLOUD_PROVIDERS:
                raise CatalogError(f"the catalog holds cloud regions only, not {loc.key}")
            if loc.key in locs:
                raise CatalogError(f"region {loc.key} listed twice")
            locs[loc.key] = loc
        by_region: dict[str, list[Offer]] = {k: [] for k in locs}
        for key, offer in offers:
            if key not in locs:
                raise CatalogError(f"offer {offer.instance_type} names unknown region {key}")
            by_region[key].append(offer)
        for rates in (egress.internet, egress.same_continent, egress.intercontinental):
            missing = set(CLOUD_PROVIDERS) - set(rates)
            if missing:
                raise CatalogError(f"egress rates missing for {', '.join(sorted(missing))}")
        set_ = object.__setattr__
        set_(self, "_locations", MappingProxyType(locs))
        set_(self, "_offers", MappingProxyType({k: tuple(v) for k, v in by_region.items()}))
        set_(self, "_egress", EgressRates(
            MappingProxyType(dict(egress.internet)),
            MappingProxyType(dict(egress.same_continent)),
            MappingProxyType(dict(egress.intercontinental)),
        ))
        set_(self, "_provisioning", provisioning)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Catalog is immutable")

    def __repr__(self) -> str:
        n = sum(len(v) for v in self._offers.values())
        return f"Catalog({len(self._locations)} regions, {n} offers)"

    @classmethod
    def from_package(cls) -> Catalog:
        """Build the catalog from the CSV files shipped in ``placer/catalog/data``."""
        locations = parse_regions(_read("region_jurisdictions.csv"))
        offers = parse_gpu_prices(_read("gpu_prices.csv"))
        return cls(
            locations,
            offers,
            parse_egress(_read("egress_prices.csv")),
            parse_provisioning(_read("provisioning_latency.csv")),
        )

    # -- regions --------------------------------------------------------------------------------
    def regions(self) -> list[Location]:
        """Every region the catalog knows, in file order (aws, gcp, azure)."""
        return list(self._locations.values())

    def location(self, key: str) -> Location:
        """The region ``provider:region``.

        Raises:
            CatalogError: for a key the catalog does not know, with the closest known key as a
                suggestion (on-prem locations are declared by an inventory, never the catalog).
        """
        loc = self._locations.get(key)
        if loc is not None:
            return loc
        if key.startswith("onprem:"):
            raise CatalogError(
                f"{key} is an on-prem location; on-prem sites are declared in an inventory, "
                "not looked up in the catalog"
            )
        raise CatalogError(unknown_region_message(key, self._locations))

    def __contains__(self, key: object) -> bool:
        return key in self._locations

    # -- offers ---------------------------------------------------------------------------------
    def offers(self, key: str) -> tuple[Offer, ...]:
        """GPU offers in region ``key`` (empty when the catalog has no prices there)."""
        self.location(key)
        return self._offers[key]

    def all_offers(self) -> list[tuple[Location, Offer]]:
        """Every offer with its region, in file order."""
        return [(self._locations[k], o) for k, offers in self._offers.items() for o in offers]

    # -- provisioning ---------------------------------------------------------------------------
    def provisioning_h(self, provider: str, spot: bool) -> float:
        """Hours from requesting a node to a Ray worker ready to run a job.

        Cloud: the suggested defaults of ``provisioning_latency.csv`` (node ready p50 180 s
        on-demand / 240 s spot, plus 45 s for the Ray worker to join; all three labelled as our
        assumption there). The same for every provider: the data holds no per-provider figure.
        On-prem: 0 (the pool is already running).
        """
        if provider == "onprem":
            return 0.0
        if provider not in CLOUD_PROVIDERS:
            raise CatalogError(f"unknown provider {provider!r}; expected onprem, aws, gcp or azure")
        return self._provisioning.hours(spot)

    @property
    def provisioning(self) -> ProvisioningDefaults:
        return self._provisioning

    # -- network --------------------------------------------------------------------------------
    @property
    def egress(self) -> EgressRates:
        return self._egress

    def link(self, a: Location, b: Location) -> tuple[float, float]:
        """(USD per GB, Gbit/s) for moving data from ``a`` to ``b``.

        - the same location: free and not limited, ``(0.0, inf)``;
        - from on-prem: 0 (the organisation's own uplink; an inventory may override);
        - to another region of the same provider: its inter-region rate, same-continent or
          intercontinental by the regions' continents (unknown continent: intercontinental);
        - to another provider or to on-prem: the source provider's first paid internet tier.

        Ingress is free everywhere, so only the source's rate counts. Volume tiers and monthly
        free allowances are ignored. Bandwidth is :data:`DEFAULT_GBPS` between different places.
        """
        if a.key == b.key:
            return 0.0, math.inf
        if a.provider == "onprem":
            return 0.0, DEFAULT_GBPS
        if a.provider not in CLOUD_PROVIDERS:  # pragma: no cover - Location.provider is a Literal
            raise CatalogError(f"unknown provider {a.provider!r}")
        if b.provider == a.provider:
            same = a.continent is not None and a.continent == b.continent
            rates = self._egress.same_continent if same else self._egress.intercontinental
            return rates[a.provider], DEFAULT_GBPS
        return self._egress.internet[a.provider], DEFAULT_GBPS


@cache
def default_catalog() -> Catalog:
    """The catalog built from the package data; read once per process."""
    return Catalog.from_package()


def unknown_region_message(key: str, known: Iterable[str]) -> str:
    """``unknown region aws:eu-centrl-1; did you mean aws:eu-central-1?``

    The suggestion is a near-identical region of the same provider (``aws:us-east1`` →
    ``aws:us-east-1``, a typo keeps its provider), else the same region name under another
    provider (``aws:europe-west4`` → ``gcp:europe-west4``), else the closest region of the same
    provider, else a near-identical key of another provider.
    """
    keys = list(known)
    provider, _, region = key.partition(":")
    same = [k.partition(":")[2] for k in keys if k.partition(":")[0] == provider]
    others = [k for k in keys if k.partition(":")[0] != provider]
    match = [f"{provider}:{m}" for m in difflib.get_close_matches(region, same, n=1, cutoff=0.9)]
    match = match or [k for k in others if k.partition(":")[2] == region]
    match = match or [
        f"{provider}:{m}" for m in difflib.get_close_matches(region, same, n=1, cutoff=0.6)
    ]
    match = match or difflib.get_close_matches(key, others, n=1, cutoff=0.85)
    if match:
        return f"unknown region {key}; did you mean {match[0]}?"
    return f"unknown region {key}; `placer catalog` lists the known regions"


# -- parsing the package data ----------------------------------------------------------------------


def _read(name: str) -> str:
    return files("placer.catalog").joinpath(_DATA, name).read_text(encoding="utf-8")


def _rows(text: str, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """CSV rows with their 1-based line numbers (header = line 1), checking the header."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or ())]
    if missing:
        raise CatalogError(f"catalog data lacks columns {', '.join(missing)}")
    for row in reader:
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}


def _float(row: Mapping[str, str], col: str, where: str) -> float | None:
    text = row[col]
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise CatalogError(f"{where}: {col} is not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise CatalogError(f"{where}: {col} must be a non-negative number, got {text!r}")
    return value


def parse_regions(text: str) -> list[Location]:
    """``region_jurisdictions.csv`` → Locations.

    Jurisdictions are the country, ``EU`` / ``EEA`` where the row says it is a member, and the
    ``residency_tags`` column (``|``-separated). The membership columns must agree with the
    EU/EEA lists of :mod:`placer.models`, so a wrong row fails loudly.
    """
    cols = ("cloud", "region", "country_iso2", "continent", "eu_member", "eea_member",
            "residency_tags")
    out: list[Location] = []
    for line, row in _rows(text, cols):
        where = f"region_jurisdictions.csv:{line}"
        country = row["country_iso2"].upper()
        eu, eea = row["eu_member"] == "1", row["eea_member"] == "1"
        if eu != (country in EU_COUNTRIES) or eea != (country in EEA_COUNTRIES):
            raise CatalogError(f"{where}: EU/EEA membership disagrees with country {country}")
        tags = {t.strip() for t in row["residency_tags"].split("|") if t.strip()}
        tags |= {country} | ({"EU"} if eu else set()) | ({"EEA"} if eea else set())
        out.append(
            Location(
                provider=row["cloud"],  # checked by pydantic (a Literal)
                region=row["region"],
                country=country,
                jurisdictions=frozenset(tags),
                continent=row["continent"] or None,
            )
        )
    return out


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Short names for the long ``source`` texts of gpu_prices.csv (numbers refer to SOURCES.md).
_SOURCE_LABELS: Final = (
    ("skypilot-org/skypilot-catalog", "SkyPilot catalog v7 snapshot [1]"),
    ("datareceipts/data-receipts", "data-receipts 109-gpu-pricing [2]"),
    ("tanod/cloud-gpu-list-prices", "HF tanod/cloud-gpu-list-prices [3]"),
    ("skypilot-spot-strategy", "Can't Be Late simulator constants [5]"),
    ("list price recalled", "recalled list price, unverified [4]"),
)


@dataclass(frozen=True)
class _PriceRow:
    line: int
    cloud: str
    region: str
    instance_type: str
    gpu: str
    gpus: int
    gpu_only: bool
    on_demand: float
    spot: float | None
    as_of: str
    dated: date | None
    source: str
    confidence: str

    def label(self) -> str:
        short = next((lab for key, lab in _SOURCE_LABELS if key in self.source), self.source)
        return f"{short}, {self.as_of}, {self.confidence}"


def _price_rows(text: str) -> list[_PriceRow]:
    cols = ("cloud", "region", "instance_type", "gpu", "gpus", "price_scope",
            "ondemand_usd_per_hour", "spot_usd_per_hour", "as_of", "source", "confidence")
    out: list[_PriceRow] = []
    for line, row in _rows(text, cols):
        if row["cloud"] not in CLOUD_PROVIDERS:
            continue  # neoclouds (lambda, runpod): no Location provider for them
        where = f"gpu_prices.csv:{line}"
        od = _float(row, "ondemand_usd_per_hour", where)
        if od is None or od <= 0:
            raise CatalogError(f"{where}: on-demand price missing")
        if row["price_scope"] not in ("instance", "gpu_only"):
            raise CatalogError(f"{where}: unknown price_scope {row['price_scope']!r}")
        try:
            gpus = int(row["gpus"])
        except ValueError:
            raise CatalogError(f"{where}: gpus is not an integer: {row['gpus']!r}") from None
        as_of = row["as_of"]
        out.append(
            _PriceRow(
                line=line,
                cloud=row["cloud"],
                region=row["region"],
                instance_type=row["instance_type"],
                gpu=row["gpu"],
                gpus=gpus,
                gpu_only=row["price_scope"] == "gpu_only",
                on_demand=od,
                spot=_float(row, "spot_usd_per_hour", where),
                as_of=as_of,
                dated=date.fromisoformat(as_of) if _ISO_DATE.match(as_of) else None,
                source=row["source"],
                confidence=row["confidence"],
            )
        )
    return out


def _newest(rows: Sequence[_PriceRow]) -> _PriceRow:
    # A dated row (as_of = YYYY-MM-DD) is newer than any undated one ("catalog snapshot",
    # "recalled", "~2023"); among equals the later row of the file wins.
    return max(rows, key=lambda r: (r.dated or date.min, r.line))


def parse_gpu_prices(text: str) -> list[tuple[str, Offer]]:
    """``gpu_prices.csv`` → ``(region key, Offer)`` pairs, one per (cloud, region, instance type).

    Rules (see docs/catalog.md):

    - only aws, gcp and azure rows (lambda and runpod have no place in ``Location.provider``);
    - several rows for one (cloud, region, instance type): on-demand from the newest row; spot
      from the newest row that has a spot price, kept only if below that on-demand price;
    - GCP ``gpu_only`` rows price the attached GPU without its host VM. Where an ``instance``
      row prices the same GPU and count in the same region (the GPU + host total), the
      ``gpu_only`` row is dropped as redundant; otherwise it is kept and its source starts with
      :data:`GPU_ONLY_NOTE`, so listings and explanations show that the price is a lower bound.
    """
    rows = _price_rows(text)
    groups: dict[tuple[str, str, str], list[_PriceRow]] = {}
    for r in rows:
        groups.setdefault((r.cloud, r.region, r.instance_type), []).append(r)
    complete = {(r.cloud, r.region, r.gpu, r.gpus) for r in rows if not r.gpu_only}
    out: list[tuple[str, Offer]] = []
    for (cloud, region, instance_type), group in groups.items():
        od_row = _newest(group)
        if od_row.gpu_only and (cloud, region, od_row.gpu, od_row.gpus) in complete:
            continue
        with_spot = [r for r in group if r.spot is not None]
        spot_row = _newest(with_spot) if with_spot else None
        spot = None
        if spot_row is not None and spot_row.spot is not None and spot_row.spot < od_row.on_demand:
            spot = spot_row.spot
        source = od_row.label()
        if spot_row is not None and spot is not None and spot_row is not od_row:
            source = f"on-demand: {source}; spot: {spot_row.label()}"
        if od_row.gpu_only:
            source = f"{GPU_ONLY_NOTE}; {source}"
        out.append(
            (
                f"{cloud}:{region}",
                Offer(
                    gpu=od_row.gpu,
                    gpus_per_node=od_row.gpus,
                    on_demand=od_row.on_demand,
                    spot=spot,
                    instance_type=instance_type,
                    source=source,
                ),
            )
        )
    return out


# Which egress_prices.csv rows feed the model: provider → (from_scope, to_scope).
_INTERNET_ROWS: Final = {
    "aws": ("region (US East)", "internet"),
    "gcp": ("region (premium tier)", "internet (worldwide excl. China/Australia)"),
    "azure": ("region (US East)", "internet"),
}
_INTER_REGION_ROWS: Final = {
    # provider → (same-continent to_scope, intercontinental to_scope)
    "aws": ("other AWS region", "other AWS region"),
    "gcp": ("other GCP region, same continent", "other GCP region, intercontinental"),
    "azure": ("other Azure region, same continent", "other Azure region, intercontinental"),
}


def parse_egress(text: str) -> EgressRates:
    """``egress_prices.csv`` → the rates of the first-cut egress model.

    Internet: the lowest tier with a non-zero price (so the first paid tier after any free
    allowance) of the US-East / premium-tier worldwide rows. Inter-region: the ``region →
    other … region`` rows (AWS has one rate for every pair).
    """
    cols = ("cloud", "from_scope", "to_scope", "tier_from_gb", "usd_per_gb")
    rows = list(_rows(text, cols))

    def rate(cloud: str, from_scope: str, to_scope: str) -> float:
        tiers: list[tuple[float, float]] = []
        for line, row in rows:
            if (row["cloud"], row["from_scope"], row["to_scope"]) != (cloud, from_scope, to_scope):
                continue
            where = f"egress_prices.csv:{line}"
            usd = _float(row, "usd_per_gb", where)
            if usd is not None and usd > 0:
                tiers.append((_float(row, "tier_from_gb", where) or 0.0, usd))
        if not tiers:
            raise CatalogError(f"egress_prices.csv has no {cloud} {from_scope} → {to_scope} rate")
        return min(tiers)[1]

    internet = {p: rate(p, *scopes) for p, scopes in _INTERNET_ROWS.items()}
    same = {p: rate(p, "region", s) for p, (s, _) in _INTER_REGION_ROWS.items()}
    inter = {p: rate(p, "region", i) for p, (_, i) in _INTER_REGION_ROWS.items()}
    return EgressRates(internet, same, inter)


_PROVISIONING_ITEMS: Final = {
    "on_demand_node_s": "SUGGESTED DEFAULT: on-demand GPU node ready",
    "spot_node_s": "SUGGESTED DEFAULT: spot GPU node ready",
    "ray_join_s": "SUGGESTED DEFAULT: Ray worker join",
}


def parse_provisioning(text: str) -> ProvisioningDefaults:
    """``provisioning_latency.csv`` → the three SUGGESTED DEFAULT rows (p50 seconds)."""
    found: dict[str, float] = {}
    for line, row in _rows(text, ("item", "p50_seconds")):
        for name, prefix in _PROVISIONING_ITEMS.items():
            if row["item"].startswith(prefix):
                value = _float(row, "p50_seconds", f"provisioning_latency.csv:{line}")
                if value is not None:
                    found[name] = value
    missing = [p for n, p in _PROVISIONING_ITEMS.items() if n not in found]
    if missing:
        raise CatalogError(f"provisioning_latency.csv lacks rows: {'; '.join(missing)}")
    return ProvisioningDefaults(**found)


# -- listing ---------------------------------------------------------------------------------------


def gpu_matches(wanted: str, gpu: str) -> bool:
    """Whether a GPU of type ``gpu`` (an offer's, a pool's) is one of ``wanted``: the one
    GPU-matching rule of placer (re-exported as :func:`placer.pricing.gpu_matches`), used by
    this listing, the planner and the simulator alike.

    A bare family name (no ``-``) matches the family and its variants: ``V100`` matches ``V100``
    and ``V100-32GB``; ``A100`` matches ``A100-40GB``, ``A100-80GB`` and ``A100-80GB-PCIe``;
    ``H100`` matches ``H100-NVL`` too. A name with a variant matches only itself
    (``A100-80GB`` does not match ``A100-80GB-PCIe``). Case-insensitive.

    >>> gpu_matches("A100", "A100-80GB"), gpu_matches("a100-80gb", "A100-80GB")
    (True, True)
    >>> gpu_matches("A100-80GB", "A100-80GB-PCIe"), gpu_matches("V100", "V1000")
    (False, False)
    """
    w, g = wanted.lower(), gpu.lower()
    if "-" in w:
        return g == w
    return g == w or g.startswith(w + "-")


def catalog_rows(
    catalog: Catalog,
    gpu: str | None = None,
    provider: str | None = None,
    jurisdiction: str | None = None,
) -> list[dict[str, Any]]:
    """One dict per offer, for ``placer catalog`` (and ``--json``).

    Filters are case-insensitive. ``gpu`` matches by :func:`gpu_matches`: a family name matches
    its variants (``A100`` matches ``A100-40GB`` and ``A100-80GB``; ``H100`` matches
    ``H100-NVL``), a name with a variant only itself;
    ``jurisdiction`` must be one of the region's jurisdictions (``EU``, ``EEA``, ``US``, ``DE``).
    Rows are sorted by provider, region, GPU and node size.

    Keys: provider, region, country, continent, jurisdictions (sorted list), gpu, instance_type,
    gpus_per_node, ondemand_usd_per_hour, spot_usd_per_hour (per node), ondemand_usd_per_gpu_hour,
    spot_usd_per_gpu_hour, gpu_only (host VM not included), source. Absent spot prices are None.
    """
    out: list[dict[str, Any]] = []
    for loc, offer in catalog.all_offers():
        if provider is not None and loc.provider != provider.lower():
            continue
        if gpu is not None and not gpu_matches(gpu, offer.gpu):
            continue
        if jurisdiction is not None and jurisdiction.upper() not in loc.jurisdictions:
            continue
        n = offer.gpus_per_node
        out.append(
            {
                "provider": loc.provider,
                "region": loc.region,
                "country": loc.country,
                "continent": loc.continent,
                "jurisdictions": sorted(loc.jurisdictions),
                "gpu": offer.gpu,
                "instance_type": offer.instance_type,
                "gpus_per_node": n,
                "ondemand_usd_per_hour": offer.on_demand,
                "spot_usd_per_hour": offer.spot,
                "ondemand_usd_per_gpu_hour": offer.on_demand / n,
                "spot_usd_per_gpu_hour": None if offer.spot is None else offer.spot / n,
                "gpu_only": is_gpu_only(offer),
                "source": offer.source,
            }
        )
    out.sort(key=lambda r: (r["provider"], r["region"], r["gpu"], r["gpus_per_node"]))
    return out


def is_gpu_only(offer: Offer) -> bool:
    """True for a catalog offer whose price excludes the host VM (GCP attached GPUs)."""
    return (offer.source or "").startswith(GPU_ONLY_NOTE)
