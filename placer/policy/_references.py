"""Rules must name places that exist: a misspelt location fails closed, loudly.

A ``forbid`` naming ``aws:eu-centrall-1`` forbids nothing, and an ``exclude`` naming a typo
excludes nothing: both fail open. So every place a policy names is checked against what placer
knows, in two steps:

* when policies load (:func:`catalog_problem`): cloud regions against the embedded catalog
  (a region key must exist, a glob must match at least one region), countries against
  ISO 3166-1, jurisdictions ``EU``/``EEA``/country codes;
* when they meet an inventory (:func:`check_references`, called by :func:`placer.plan`):
  on-prem location keys, site names, other jurisdiction labels and site classes
  (``class:baa-covered``) against its sites.

A place named on purpose although nothing knows it yet (an announced region, a data centre of
another team's inventory) is listed under ``declared_locations`` in the policy file; only
those are exempt.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Sequence
from fnmatch import fnmatchcase

from placer.errors import ErrorDetail, PolicyError
from placer.models import ISO_COUNTRIES, ResolvedSite
from placer.policy._model import CLASS_LABEL, site_classes

_WILDCARD = re.compile(r"[*?\[]")
CLOUDS = ("aws", "gcp", "azure")


def is_glob(text: str) -> bool:
    return bool(_WILDCARD.search(text))


def _declared(pattern: str, declared: Collection[str]) -> bool:
    return pattern in declared or any(fnmatchcase(d, pattern) for d in declared)


def _suggest(word: str, known: Iterable[str], prefix: str = "") -> str:
    match = difflib.get_close_matches(word, sorted(set(known)), n=1, cutoff=0.6)
    return f"; did you mean {prefix}{match[0]}?" if match else ""


def catalog_problem(pattern: str, regions: Sequence[str], declared: Collection[str]) -> str | None:
    """Why a (syntactically valid) pattern names nothing the catalog knows, or ``None``.

    Only what needs no inventory is judged here: cloud regions (countries are checked with the
    pattern's syntax).
    """
    prefix = pattern.partition(":")[0]
    if _declared(pattern, declared):
        return None
    if prefix in CLOUDS:
        same = [r for r in regions if r.startswith(prefix + ":")]
        if is_glob(pattern):
            if not any(fnmatchcase(r, pattern) for r in same):
                return (f"{pattern} matches no {prefix} region the catalog knows (`placer "
                        "catalog` lists them); a misspelt region would make this rule miss, so "
                        "it is refused. If it names a region the catalog does not have yet, "
                        "list it under declared_locations")
            return None
        if pattern not in same:
            return (f"unknown region {pattern}{_suggest(pattern, same)} A rule naming a region "
                    "no catalog knows would silently match nothing; if it is a region the "
                    "catalog does not have yet, list it under declared_locations")
    return None


def inventory_problem(pattern: str, sites: Sequence[ResolvedSite],
                      declared: Collection[str]) -> str | None:
    """Why a pattern names an on-prem location, a site, a jurisdiction or a class no site has."""
    prefix, _, rest = pattern.partition(":")
    if _declared(pattern, declared):
        return None
    if prefix == "onprem" and not is_glob(pattern):
        keys = [s.location.key for s in sites if s.location.provider == "onprem"]
        if pattern not in keys:
            return (f"no on-prem site of the inventory is at {pattern}"
                    f"{_suggest(pattern, keys)} (on-prem locations: "
                    f"{', '.join(sorted(set(keys))) or 'none'}); if the rule names a data "
                    "centre outside this inventory on purpose, list it under declared_locations")
    if prefix == "site" and not is_glob(rest):
        names = [s.name for s in sites]
        if rest not in names:
            return (f"no site named {rest!r} in the inventory{_suggest(rest, names, 'site:')} "
                    "If the rule names a site of another inventory on purpose, list it under "
                    "declared_locations")
    if prefix == "jurisdiction" and rest not in ("EU", "EEA") and rest not in ISO_COUNTRIES:
        labels = {j for s in sites for j in s.location.jurisdictions}
        if rest not in labels:
            return (f"no site of the inventory is in jurisdiction {rest!r}"
                    f"{_suggest(rest, labels)}; jurisdictions other than EU, EEA and country "
                    "codes come from the inventory's sites. If the rule names one on purpose, "
                    "list it under declared_locations")
    if prefix == "class":
        classes = {c for s in sites for c in site_classes(s)}
        if rest not in classes:
            return (f"no site of the inventory is in class {rest!r}"
                    f"{_suggest(rest, classes, 'class:')} (classes: "
                    f"{', '.join(sorted(classes)) or 'none'}); a site joins a class through its "
                    f"{CLASS_LABEL!r} label, e.g. labels: {{{CLASS_LABEL}: {rest}}}. If the rule "
                    "names a class no site has on purpose, list it under declared_locations")
    return None


def check_references(references: dict[str, tuple[str | None, int | None, str]],
                     sites: Sequence[ResolvedSite], declared: Collection[str]) -> None:
    """Raise :class:`PolicyError` for every pattern that names nothing in ``sites``.

    ``references`` maps each pattern to where it was first written (file, line, field).
    """
    problems = []
    for pattern, (file, line, fld) in sorted(references.items(),
                                              key=lambda kv: (kv[1][0] or "", kv[1][1] or 0)):
        msg = inventory_problem(pattern, sites, declared)
        if msg is not None:
            problems.append(ErrorDetail(msg, file, line, fld))
    if problems:
        raise PolicyError(problems)
