"""Inventories: load them from YAML, resolve their sites against the catalog, price their links.

An inventory's ``sites:`` is a mapping from site name to site; the loader injects each name,
validates with pydantic, and then checks what only the catalog can tell (does the region
exist, does the declared country agree, are there offers). Every problem names the file, the
line and the field, with the site by name (``sites.fra-dc.pools[0].count``), all at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from placer.catalog._catalog import Catalog, default_catalog, unknown_region_message
from placer.errors import ConfigError, ErrorDetail, InventoryError
from placer.models._base import LOCATION_RE
from placer.models.location import Location, jurisdictions_of
from placer.models.site import Inventory, Link, ResolvedSite
from placer.yamlio import (
    Loc,
    SourceMap,
    format_loc,
    parse_yaml,
    read_yaml,
    strip_header,
    validate,
)

DEFAULT_INVENTORY_FILE = "placer/catalog/data/default_inventory.yaml"


# -- loading ---------------------------------------------------------------------------------------


def load_inventory(path: str | Path, *, catalog: Catalog | None = None) -> Inventory:
    """Read, validate and check an inventory YAML file.

    Checks everything :func:`resolve_inventory` would, so an inventory that loads also resolves.

    Raises:
        InventoryError: every problem found, each with file, line and field: YAML syntax,
            unknown fields, bad quantities, on-prem sites without a country, unknown regions
            (with a close-match suggestion), countries or jurisdictions that contradict the
            catalog, cloud sites with no offers.
    """
    try:
        data, sm = read_yaml(path)
    except InventoryError:
        raise
    except ConfigError as exc:
        raise InventoryError(exc.details) from None
    return inventory_from_data(data, sm, catalog)


@cache
def default_inventory() -> Inventory:
    """The embedded example inventory (one on-prem site, five cloud regions).

    Used by ``placer demo`` and whenever no inventory is given.
    """
    text = files("placer.catalog").joinpath("data", "default_inventory.yaml").read_text("utf-8")
    try:
        data, sm = parse_yaml(text, DEFAULT_INVENTORY_FILE)
    except ConfigError as exc:  # pragma: no cover - the shipped file is tested
        raise InventoryError(exc.details) from None
    return inventory_from_data(data, sm, default_catalog())


def inventory_from_data(data: Any, sm: SourceMap, catalog: Catalog | None = None) -> Inventory:
    """Validate parsed YAML (``sites:`` as a mapping name → site) into a checked Inventory."""
    if not isinstance(data, dict):
        raise InventoryError(_detail(sm, (), "an inventory is a mapping with a `sites:` mapping"))
    try:
        data = strip_header(data, sm, "Inventory")
    except ConfigError as exc:
        raise InventoryError(exc.details) from None
    names: list[str] = []
    problems: list[ErrorDetail] = []
    sites = data.get("sites")
    if isinstance(sites, dict):
        specs: list[Any] = []
        for raw_name, spec in sites.items():
            name = str(raw_name)
            names.append(name)
            if isinstance(spec, dict):
                if "name" in spec and spec["name"] != name:
                    problems.append(_detail(
                        sm,
                        ("sites", name, "name"),
                        f"a site's name is its key ({name!r}); remove `name:` or make it equal",
                    ))
                spec = {**spec, "name": name}
            specs.append(spec)
        data = {**data, "sites": specs}
        sm = sm.rekey(("sites",), names)
    elif sites is not None:
        problems.append(_detail(
            sm, ("sites",), "sites must be a mapping of site name → site, e.g. `sites: {fra-dc: …}`"
        ))
    if problems:
        raise InventoryError(problems)
    try:
        inv = validate(Inventory, data, sm)
    except ConfigError as exc:
        # Report unknown regions too, so one run shows every problem the file has.
        found = [_by_name(d, names) for d in exc.details]
        found += _unknown_regions(data.get("sites"), names, catalog, sm)
        found.sort(key=lambda d: d.line or 0)
        raise InventoryError(found) from None
    resolve_inventory(inv, catalog, source=sm)
    return inv


def _unknown_regions(
    specs: Any, names: Sequence[str], catalog: Catalog | None, sm: SourceMap
) -> list[ErrorDetail]:
    """Unknown cloud regions among sites that did not validate (checked on the raw data)."""
    if not isinstance(specs, list):
        return []
    cat = catalog if catalog is not None else default_catalog()
    out: list[ErrorDetail] = []
    for name, spec in zip(names, specs, strict=False):
        where = spec.get("location") if isinstance(spec, dict) else None
        if not isinstance(where, str) or not LOCATION_RE.match(where):
            continue  # pydantic has reported it
        if not where.startswith("onprem:") and where not in cat:
            msg = unknown_region_message(where, _keys(cat))
            out.append(_detail(sm, ("sites", name, "location"), msg))
    return out


def _detail(sm: SourceMap, loc: Loc, msg: str) -> ErrorDetail:
    """Like ``SourceMap.detail``, and keeps the ``loc`` tuple too."""
    return ErrorDetail(msg, sm.file, sm.line(loc), format_loc(loc), loc)


def _by_name(d: ErrorDetail, names: Sequence[str]) -> ErrorDetail:
    """``sites[0].pools`` → ``sites.fra-dc.pools``: users know their sites by name."""
    loc = d.loc
    if len(loc) >= 2 and loc[0] == "sites" and isinstance(loc[1], int) and loc[1] < len(names):
        loc = ("sites", names[loc[1]], *loc[2:])
        return ErrorDetail(d.msg, d.file, d.line, format_loc(loc), loc)
    return d


# -- resolution ------------------------------------------------------------------------------------


def resolve_inventory(
    inv: Inventory, catalog: Catalog | None = None, *, source: SourceMap | None = None
) -> list[ResolvedSite]:
    """Every site with its full Location, offers and provisioning times.

    On-prem: ``Location("onprem", <part after onprem:>, site.country, site.jurisdictions)``,
    the pools as given, provisioning 0. Cloud: the catalog's Location for the region, with the
    site's extra jurisdictions added; ``site.country``, if given, must equal the catalog's;
    offers are the site's if it states any, else the catalog's; provisioning is the site's
    figure (for on-demand and spot alike) or the catalog default.

    Raises:
        InventoryError: listing every problem; with ``source`` each names file and line.
    """
    cat = catalog if catalog is not None else default_catalog()
    problems: list[ErrorDetail] = []
    out: list[ResolvedSite] = []

    def problem(loc: Loc, msg: str) -> None:
        if source is not None:
            problems.append(_detail(source, loc, msg))
        else:
            problems.append(ErrorDetail(msg, field=format_loc(loc), loc=loc))

    for site in inv.sites:
        where: Loc = ("sites", site.name)
        provider, _, region = site.location.partition(":")
        if site.kind == "onprem":
            assert site.country is not None  # Site's validator requires it
            bad = _foreign_jurisdictions(site.jurisdictions, site.country)
            if bad:
                problem((*where, "jurisdictions"), _foreign_msg(bad, site.country))
                continue
            loc = Location(
                provider="onprem",
                region=region,
                country=site.country,
                jurisdictions=site.jurisdictions,
            )
            out.append(ResolvedSite(
                name=site.name, kind="onprem", location=loc, pools=site.pools,
                spot_overhead=site.spot_overhead, labels=site.labels, cluster=site.cluster,
                storage=site.storage,
            ))
            continue
        if site.location not in cat:
            problem((*where, "location"), unknown_region_message(site.location, _keys(cat)))
            continue
        loc = cat.location(site.location)
        ok = True
        if site.country is not None and site.country != loc.country:
            problem((*where, "country"),
                    f"{loc.key} is in {loc.country} according to the catalog, not {site.country}")
            ok = False
        bad = _foreign_jurisdictions(site.jurisdictions, loc.country)
        if bad:
            problem((*where, "jurisdictions"), _foreign_msg(bad, loc.country))
            ok = False
        if site.offers is not None:
            offers = tuple(o if o.source else o.model_copy(update={"source": "inventory"})
                           for o in site.offers)
        else:
            offers = cat.offers(loc.key)
        if not offers:
            problem(where if site.offers is None else (*where, "offers"),
                    f"cloud site {site.name!r} has no GPU offers: the catalog lists none for "
                    f"{loc.key} and the site declares none; add `offers:` to the site")
            ok = False
        if not ok:
            continue
        if site.jurisdictions - loc.jurisdictions:
            loc = loc.model_copy(update={"jurisdictions": loc.jurisdictions | site.jurisdictions})
        if site.provisioning is not None:
            prov = spot_prov = site.provisioning
        else:
            prov = cat.provisioning_h(provider, spot=False)
            spot_prov = cat.provisioning_h(provider, spot=True)
        out.append(ResolvedSite(
            name=site.name, kind="cloud", location=loc, offers=offers,
            provisioning_h=prov, spot_provisioning_h=spot_prov,
            spot_overhead=site.spot_overhead, labels=site.labels, cluster=site.cluster,
            storage=site.storage,
        ))
    if problems:
        raise InventoryError(problems)
    return out


def _keys(cat: Catalog) -> list[str]:
    return [loc.key for loc in cat.regions()]


_COUNTRY_LIKE = re.compile(r"^[A-Z]{2}$")


def _foreign_jurisdictions(extra: Iterable[str], country: str) -> list[str]:
    """Declared jurisdictions that only a country (or EU/EEA membership) can confer.

    A site may add its own labels (``SOVEREIGN``, ``BSI-C5``), but not claim ``EU``, ``EEA`` or
    another two-letter country code its country does not imply: that would let an EU-only
    policy place data in London because of one line of YAML.
    """
    implied = jurisdictions_of(country)
    return sorted(
        j for j in extra if (j in ("EU", "EEA") or _COUNTRY_LIKE.match(j)) and j not in implied
    )


def _foreign_msg(bad: Sequence[str], country: str) -> str:
    listed = ", ".join(bad)
    return (
        f"jurisdiction {listed} does not follow from country {country}; EU/EEA membership and "
        f"country codes come from the country, only other labels may be added"
    )


# -- links -----------------------------------------------------------------------------------------


_BRACKET = re.compile(r"\[[^\]]*\]")


def specificity(pattern: str) -> int:
    """Characters of a location pattern that are not wildcards (``[…]`` counts as one).

    >>> specificity("aws:eu-*"), specificity("*"), specificity("onprem:fra-dc1")
    (7, 0, 14)
    """
    return sum(1 for c in _BRACKET.sub("x", pattern) if c not in "*?")


def _applies(link: Link, a: str, b: str) -> bool:
    if fnmatchcase(a, link.from_) and fnmatchcase(b, link.to):
        return True
    return link.symmetric and fnmatchcase(b, link.from_) and fnmatchcase(a, link.to)


def link_for(
    inventory_links: Iterable[Link], catalog: Catalog | None, a: Location, b: Location
) -> tuple[float, float]:
    """(USD per GB, Gbit/s) for moving data from ``a`` to ``b``, inventory first.

    Each figure is resolved on its own: among the inventory links that match the pair (``from``
    matches ``a`` and ``to`` matches ``b``, or the reverse for a symmetric link) and state that
    figure, the most specific wins (non-wildcard characters of ``from`` + ``to``; a tie goes to
    the later entry); a figure no matching link states comes from :meth:`Catalog.link`. The same
    location is always free and unlimited, whatever the inventory says.
    """
    if a.key == b.key:
        return 0.0, math.inf
    cat = catalog if catalog is not None else default_catalog()
    usd, gbps = cat.link(a, b)
    best_usd = best_bw = -1
    for link in inventory_links:
        if not _applies(link, a.key, b.key):
            continue
        score = specificity(link.from_) + specificity(link.to)
        # ">=": a later entry beats an equally specific earlier one.
        if link.usd_per_gb is not None and score >= best_usd:
            usd, best_usd = link.usd_per_gb, score
        if link.bandwidth is not None and score >= best_bw:
            gbps, best_bw = link.bandwidth, score
    return usd, gbps
