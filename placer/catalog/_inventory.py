"""Inventories: load them from YAML, resolve their sites against the catalog, price their links.

An inventory's ``sites:`` is a mapping from site name to site; the loader injects each name,
validates with pydantic, and then checks what only the catalog can tell (does the region
exist, does the declared country agree, are there offers). Every problem names the file, the
line and the field, with the site by name (``sites.fra-dc.pools[0].count``), all at once.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

from placer.catalog._catalog import Catalog, default_catalog, unknown_region_message
from placer.errors import ConfigError, ErrorDetail, InventoryError
from placer.models import (
    LOCATION_RE,
    Inventory,
    Link,
    Location,
    ResolvedSite,
    jurisdictions_of,
    storage_rule_problem,
)
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
    figure (for on-demand and spot alike) or the catalog default; ``spot_overhead`` is the
    site's, None when it sets none (spot is then priced from
    :func:`placer.catalog.spot_stats`).

    Storage follows the bucket rule (:func:`storage_problems`): an on-prem site's ``storage``
    is on its own ``storage_endpoint``, and one bucket name is on one store. Network entries
    may not contradict each other (:func:`network_problems`).

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
                storage=site.storage, storage_endpoint=site.storage_endpoint,
                storage_credentials=site.storage_credentials,
                dataset_buckets=site.dataset_buckets,
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
            storage=site.storage, storage_endpoint=site.storage_endpoint,
            storage_credentials=site.storage_credentials, dataset_buckets=site.dataset_buckets,
        ))
    # Sites built with model_copy (or resolved from an old journal) skip Site's validator.
    for name, field, msg in storage_problems(inv.sites):
        problem(("sites", name, field), msg)
    for index, msg in network_problems(inv.network, [s.location for s in inv.sites], source):
        problem(("network", index), msg)
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


# -- storage ---------------------------------------------------------------------------------------


class StorageSite(Protocol):
    """What the storage rule reads of a site: a :class:`Site` or a :class:`ResolvedSite`."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def location(self) -> str | Location: ...
    @property
    def storage(self) -> str | None: ...
    @property
    def storage_endpoint(self) -> str | None: ...


def normalise_endpoint(url: str) -> str:
    """One spelling per store URL: scheme and host lower-cased, no trailing ``/``.

    >>> normalise_endpoint("HTTP://MinIO.fra:9000/")
    'http://minio.fra:9000'
    """
    scheme, sep, rest = url.strip().partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}{sep}{host.lower()}{slash}{path}".rstrip("/")


def storage_problems(sites: Iterable[StorageSite]) -> list[tuple[str, str, str]]:
    """(site, field, message) for every site whose storage breaks the bucket rule.

    The rule (docs/storage.md, "Where a bucket is"): a bucket's location is what its store
    says. A cloud store answers for its buckets, so an on-prem site's ``storage`` must be on
    the site's own ``storage_endpoint``, whose buckets are where the site is, or its own
    ``file://`` directory, which is where the site is. One store is in one place: two on-prem
    sites in different locations may not share a ``storage_endpoint``, nor a directory (or one
    inside the other). One bucket name means one bucket: a name declared (``storage`` or
    ``dataset_buckets``) on two stores (two endpoints, an endpoint and the cloud store, or one
    store reached with two credentials references) is refused, since placer routes a bucket by
    its name alone.
    """
    out: list[tuple[str, str, str]] = []
    store_of_endpoint: dict[str, tuple[str, str]] = {}  # endpoint → (site, location key)
    # (scheme, bucket) → (store, site): the store is its endpoint and credentials reference
    home: dict[tuple[str, str], tuple[tuple[str | None, str], str]] = {}
    roots: list[tuple[str, str, str]] = []  # file store root → (root, site, location key)
    for site in sites:
        msg = storage_rule_problem(site.kind, site.storage, site.storage_endpoint)
        if msg:
            out.append((site.name, "storage_endpoint" if site.storage_endpoint else "storage",
                        msg))
            continue
        if not site.storage:
            continue
        loc = site.location if isinstance(site.location, str) else site.location.key
        if site.storage.startswith("file:"):
            root = os.path.normpath(site.storage[len("file://"):])
            for other, name, where in roots:
                nested = (root == other or root.startswith(other.rstrip("/") + "/")
                          or other.startswith(root.rstrip("/") + "/"))
                if nested and where != loc:
                    out.append((site.name, "storage", (
                        f"the directory {root} is also (in) site {name!r}'s file store "
                        f"{other}, in {where}, not {loc}: one directory is in one place")))
                    break
            else:
                roots.append((root, site.name, loc))
            continue
        endpoint = normalise_endpoint(site.storage_endpoint) if site.storage_endpoint else None
        if endpoint is not None:
            first = store_of_endpoint.setdefault(endpoint, (site.name, loc))
            if first[1] != loc:
                out.append((site.name, "storage_endpoint", (
                    f"the store {endpoint} is also site {first[0]!r}'s, in {first[1]}, not "
                    f"{loc}: one store is in one place; give each location its own store")))
                continue
        creds = getattr(site, "storage_credentials", None)
        store = (endpoint, "" if creds is None else creds.model_dump_json(exclude_none=True))
        scheme, _, rest = site.storage.partition("://")
        buckets = (rest.partition("/")[0], *getattr(site, "dataset_buckets", ()))
        for i, bucket in enumerate(buckets):
            first_home = home.setdefault((scheme, bucket), (store, site.name))
            if first_home[0] == store:
                continue
            field = "storage" if i == 0 else "dataset_buckets"
            if first_home[0][0] != endpoint:
                why = (f"on {_store_name(endpoint)} here and on {_store_name(first_home[0][0])} "
                       f"for site {first_home[1]!r}: one bucket name must mean one bucket; "
                       "rename one of them")
            else:
                why = (f"reached with other storage_credentials here than for site "
                       f"{first_home[1]!r}: one bucket, one credentials reference")
            out.append((site.name, field, f"bucket {scheme}://{bucket} is {why}"))
    return out


def _store_name(endpoint: str | None) -> str:
    return "the cloud store" if endpoint is None else f"the on-prem store {endpoint}"


# -- links -----------------------------------------------------------------------------------------


_BRACKET = re.compile(r"\[[^\]]*\]")


def specificity(pattern: str) -> int:
    """Characters of a location pattern that are not wildcards (``[…]`` counts as one).

    >>> specificity("aws:eu-*"), specificity("*"), specificity("onprem:fra-dc1")
    (7, 0, 14)
    """
    return sum(1 for c in _BRACKET.sub("x", pattern) if c not in "*?")


# How a link reaches a pair, from weakest to strongest at equal specificity.
BY_DEFAULT_SYMMETRY, BY_WRITTEN_SYMMETRY, AS_WRITTEN = 0, 1, 1
_HOW = {AS_WRITTEN: "both stated for this direction (as written, or by a written "
                    "`symmetric: true`)",
        BY_DEFAULT_SYMMETRY: "both reaching it only by the default symmetry"}
FIGURES = ("usd_per_gb", "bandwidth", "free", "tiers")


def _how(link: Link, a: str, b: str) -> int | None:
    """How ``link`` applies to ``a → b``: :data:`AS_WRITTEN` (matching ``from → to``, or
    the reverse of a link that says ``symmetric: true`` itself), :data:`BY_DEFAULT_SYMMETRY`
    (only the reverse, with ``symmetric`` not written), or ``None``."""
    if fnmatchcase(a, link.from_) and fnmatchcase(b, link.to):
        return AS_WRITTEN
    if link.symmetric and fnmatchcase(b, link.from_) and fnmatchcase(a, link.to):
        return BY_WRITTEN_SYMMETRY if link.symmetric_written else BY_DEFAULT_SYMMETRY
    return None


def _applies(link: Link, a: str, b: str) -> bool:
    return _how(link, a, b) is not None


@dataclass(frozen=True)
class LinkConflict:
    """Two network entries that set one figure of one direction, at the same rank, to
    different values: which one is meant cannot be decided, so neither is used."""

    figure: str
    first: int  # index in the network list
    second: int
    a: str
    b: str
    rank: tuple[int, int]

    def message(self, links: Sequence[Link], where: Mapping[int, str] | None = None) -> str:
        def entry(i: int) -> str:
            link = links[i]
            value = getattr(link, self.figure)
            shown = f"{value:g}" if isinstance(value, float) else \
                ", ".join(f"from {t.from_gb:g} GB ${t.usd_per_gb:g}" for t in value)
            text = f"network[{i}] ({link.from_} → {link.to}, {self.figure} {shown})"
            return f"{text} at {where[i]}" if where and i in where else text

        return (
            f"{entry(self.second)} contradicts {entry(self.first)}: both set {self.figure} "
            f"from {self.a} to {self.b}, with the same specificity ({self.rank[0]}) and "
            f"{_HOW[self.rank[1]]}; keep one, make one more specific, or write "
            "`symmetric: false` on the one meant for a single direction")


def _resolve(links: Sequence[Link], a: str, b: str
             ) -> tuple[dict[str, Any], list[LinkConflict]]:
    """Each figure the links state for ``a → b`` and the conflicts at its winning rank."""
    best: dict[str, tuple[tuple[int, int], list[int]]] = {}
    for i, link in enumerate(links):
        how = _how(link, a, b)
        if how is None:
            continue
        rank = (specificity(link.from_) + specificity(link.to), how)
        for figure in FIGURES:
            if getattr(link, figure) is None:
                continue
            top = best.get(figure)
            if top is None or rank > top[0]:
                best[figure] = (rank, [i])
            elif rank == top[0]:
                top[1].append(i)
    values: dict[str, Any] = {}
    conflicts: list[LinkConflict] = []
    for figure, (rank, entries) in best.items():
        first = entries[0]
        values[figure] = getattr(links[first], figure)
        for other in entries[1:]:
            if getattr(links[other], figure) != values[figure]:
                conflicts.append(LinkConflict(figure, first, other, a, b, rank))
                break
    return values, conflicts


def link_for(
    inventory_links: Iterable[Link], catalog: Catalog | None, a: Location, b: Location
) -> tuple[float, float]:
    """(USD per GB, Gbit/s) for moving data from ``a`` to ``b``, inventory first.

    Each figure is resolved on its own, among the inventory links that match the pair and
    state that figure. A link matches ``a → b`` in its written direction (``from`` matches
    ``a``, ``to`` matches ``b``) or, unless ``symmetric: false``, by symmetry (the reverse).
    The winner is ranked by

    1. **specificity** (non-wildcard characters of ``from`` + ``to``), then
    2. **direction**: a link matching as written, or whose ``symmetric: true`` is written out,
       beats one that reaches the pair only by the default symmetry.

    Specificity comes first because it says which pairs an entry is about: an entry naming
    ``onprem:fra-dc1`` and ``aws:eu-central-1`` (a Direct Connect line, both ways) was written
    for that pair, and a broad one-way ``aws:* → onprem:*`` must not undo it for one direction
    just by being one-way; with direction first, one catch-all entry would override every
    specific symmetric one. Direction decides between entries about the same pairs: a user who
    writes ``A → B: $0.50`` and ``B → A: $0.01`` gets each direction's own price, since neither
    entry's unwritten ``symmetric`` default was a statement about the other direction.

    There is no third rank. Two entries left tied with different figures (the same pair both
    ways with ``symmetric: true`` written on both, or the same ``from``/``to`` twice) are a
    contradiction, not a matter of order: :func:`network_problems` reports it when the
    inventory is loaded, and this function raises rather than pick one. A figure no matching
    link states comes from :meth:`Catalog.link`. The same location is always free and
    unlimited, whatever the inventory says.

    Raises:
        InventoryError: two entries tied at the winning rank with different figures.
    """
    if a.key == b.key:
        return 0.0, math.inf
    cat = catalog if catalog is not None else default_catalog()
    usd, gbps = cat.link(a, b)
    links = tuple(inventory_links)
    values, conflicts = _resolve(links, a.key, b.key)
    if conflicts:
        raise InventoryError([
            ErrorDetail(c.message(links), field=f"network[{c.second}]", loc=("network", c.second))
            for c in conflicts])
    return values.get("usd_per_gb", usd), values.get("bandwidth", gbps)


def egress_schedule_for(inventory_links: Iterable[Link], a: Location, b: Location
                        ) -> tuple[float, tuple[tuple[float, float], ...]]:
    """(free GB, ((from GB, USD per GB), ...)) of each transfer from ``a`` to ``b``: what the
    inventory's ``network:`` entries say (resolved like :func:`link_for`; the catalog prices
    every GB at its first paid rate, so it has none)."""
    if a.key == b.key:
        return 0.0, ()
    links = tuple(inventory_links)
    values, conflicts = _resolve(links, a.key, b.key)
    if conflicts:
        raise InventoryError([
            ErrorDetail(c.message(links), field=f"network[{c.second}]", loc=("network", c.second))
            for c in conflicts])
    tiers = values.get("tiers") or ()
    return float(values.get("free") or 0.0), tuple((t.from_gb, t.usd_per_gb) for t in tiers)


def network_problems(
    links: Sequence[Link], locations: Iterable[str], source: SourceMap | None = None
) -> list[tuple[int, str]]:
    """(index, message) for each network entry that contradicts an earlier one.

    Checked on every ordered pair of the given locations (the inventory's sites) and of the
    entries' own patterns taken as locations (``aws:* → onprem:*`` and back), so two entries
    with the same ``from``/``to`` are caught even where no site matches them. With ``source``
    the message names the other entry's line.
    """
    if len(links) < 2:
        return []
    points = list(dict.fromkeys(locations))
    pairs = [(x, y) for x in points for y in points if x != y]
    for link in links:
        pairs += [(link.from_, link.to), (link.to, link.from_)]
    where = {}
    if source is not None:
        for i in range(len(links)):
            line = source.line(("network", i))
            if line is not None:
                where[i] = f"line {line}"
    seen: set[tuple[str, int, int]] = set()
    out: list[tuple[int, str]] = []
    for x, y in dict.fromkeys(pairs):
        if x == y:
            continue
        for c in _resolve(links, x, y)[1]:
            if (c.figure, c.first, c.second) not in seen:
                seen.add((c.figure, c.first, c.second))
                out.append((c.second, c.message(links, where)))
    return out
