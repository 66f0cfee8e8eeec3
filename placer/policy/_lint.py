"""Lint a policy set against an inventory: what loads but cannot be what its author meant.

``placer policy lint`` loads the policies first, so everything the loader refuses (bad YAML, an
unknown field or effect, a misspelt key, an undefined location set, a region no catalog knows,
an exception waiving a rule marked ``waivable: false``) is an error before lint starts. Lint
then judges the loaded set against an inventory's sites and, for what must hold anywhere, the
catalog's regions too. Only what is provably so is reported:

errors (exit 1)
    ``unknown-reference``: a place the rules name that no site of the inventory has (what
    ``placer plan`` refuses); ``empty-intersection``: enforced requires that one job can match
    together, whose sites have no site of the inventory in common; ``stranded-data``: a data
    class (tag values the rules match on) that no site of the inventory may ever run, with the
    rules that cause it.
warnings
    ``matches-no-site``: a forbid, allow, limit or prefer whose sites are no site of the
    inventory and no catalog region (it does nothing); ``prefer-everywhere``: a prefer whose
    sites hold every site of the inventory (it never adds a penalty); ``allow-no-effect``: an
    allow in a layer whose default is allow; ``shadowed``: a forbid or require that never
    rejects a site another rule, applying to every job it applies to, does not already reject
    (on any site there could be, not only the inventory's: see :func:`probe_sites`);
    ``expired-exception``: an exception past its ``expires`` (ignored; delete it).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase
from typing import Literal

from placer.catalog import Catalog, default_catalog
from placer.errors import PolicyError
from placer.models import (
    EEA_COUNTRIES,
    EU_COUNTRIES,
    ISO_COUNTRIES,
    Dataset,
    Job,
    Location,
    Pipeline,
    ResolvedSite,
)
from placer.policy._evaluate import DEFAULT_DENY, evaluate
from placer.policy._model import CLASS_LABEL, Match, PolicySet, Rule, pattern_matches
from placer.policy._references import check_references, is_glob
from placer.policy._testing import Origin, origins
from placer.tags import canonical

Level = Literal["error", "warning"]

MAX_DATA_CLASSES = 4096
"""Combinations of tag values tried for ``stranded-data``; above it, one and two values only."""
MAX_REQUIRES_TOGETHER = 4
"""The most requires combined when looking for an empty intersection."""


@dataclass(frozen=True)
class Finding:
    """One thing lint found, with where it is written."""

    level: Level
    code: str
    message: str
    rules: tuple[str, ...] = ()
    file: str | None = None
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        if self.field:
            where += f"{self.field}: "
        return f"{where}{self.level}: [{self.code}] {self.message}"


def _finding(level: Level, code: str, message: str, rules: Sequence[str],
             origin: Origin | None) -> Finding:
    if origin is None:
        return Finding(level, code, message, tuple(rules))
    return Finding(level, code, message, tuple(rules), origin.file, origin.line, origin.field)


# -- sites and matches ---------------------------------------------------------------------------


def catalog_places(sites: Sequence[ResolvedSite], catalog: Catalog) -> list[ResolvedSite]:
    """A stand-in site for every catalog region that no site of ``sites`` is at."""
    have = {s.location.key for s in sites}
    return [ResolvedSite(name=f"@{loc.key}", kind="cloud", location=loc)
            for loc in catalog.regions() if loc.key not in have]


MAX_PROBE_ATTRIBUTES = 6
"""Classes and extra jurisdictions combined on probe sites; with more, ``shadowed`` is skipped."""


def _named(policies: PolicySet) -> tuple[list[str], list[str], set[str], bool]:
    """On-prem keys, classes and extra jurisdictions, and countries the policies name; and
    whether they name sites by name (which no probe can stand for)."""
    patterns = set(policies.references)
    for ls in policies.locations.values():
        patterns.update(ls.include)
        patterns.update(ls.exclude)
    onprem, attributes, countries, by_name = set(), set(), set(), False
    for p in patterns:
        prefix, _, rest = p.partition(":")
        if prefix in ("country", "jurisdiction") and rest in ISO_COUNTRIES:
            countries.add(rest)
        if prefix == "onprem" and not is_glob(p):
            onprem.add(p)
        elif prefix == "class" or (prefix == "jurisdiction" and rest not in ("EU", "EEA")
                                   and rest not in ISO_COUNTRIES):
            attributes.add(p)
        elif prefix == "site":
            by_name = True
    return sorted(onprem), sorted(attributes), countries, by_name


def _countries(named: set[str]) -> list[str]:
    """Countries enough to stand for all: those named, and one unnamed of each kind (EU
    member, EEA but not EU, outside the EEA), which no pattern tells from its kind's others."""
    out = set(named)
    for kind in (EU_COUNTRIES, EEA_COUNTRIES - EU_COUNTRIES, ISO_COUNTRIES - EEA_COUNTRIES):
        out.add(min(kind - named, default=min(kind)))
    return sorted(out)


def probe_sites(policies: PolicySet, sites: Sequence[ResolvedSite], catalog: Catalog
                ) -> list[ResolvedSite] | None:
    """Sites standing for every site there could be, as far as the policies can tell them
    apart: each catalog region and an on-prem site in each country that matters (at each
    on-prem location the policies name, and one they do not), each with every combination of
    the classes and
    extra jurisdictions the policies name; plus the inventory's own. ``None`` when the policies
    tell sites apart by something no probe can stand for (site names, too many attributes).
    """
    onprem, attributes, countries, by_name = _named(policies)
    if by_name or len(attributes) > MAX_PROBE_ATTRIBUTES:
        return None
    combos = [c for n in range(len(attributes) + 1)
              for c in itertools.combinations(attributes, n)]
    places = [*catalog.regions()]
    for key in [*onprem, "onprem:lint-probe"]:
        region = key.partition(":")[2]
        places += [Location(provider="onprem", region=region, country=c)
                   for c in _countries(countries)]
    out = list(sites)
    for loc in places:
        for combo in combos:
            classes = [a.partition(":")[2] for a in combo if a.startswith("class:")]
            extra = frozenset(a.partition(":")[2] for a in combo
                              if a.startswith("jurisdiction:"))
            where = loc.model_copy(update={"jurisdictions": loc.jurisdictions | extra}) \
                if extra else loc
            out.append(ResolvedSite(
                name=f"@{loc.key}/{loc.country}/{'+'.join(combo)}",
                kind="onprem" if loc.provider == "onprem" else "cloud", location=where,
                labels={CLASS_LABEL: ", ".join(classes)} if classes else {}))
    return out


def members(rule_sites: Iterable[str], policies: PolicySet,
            sites: Sequence[ResolvedSite]) -> frozenset[str]:
    """Names of the sites a ``sites`` list (patterns and location-set names) holds."""
    refs = tuple(rule_sites)
    out = set()
    for s in sites:
        for ref in refs:
            inside = (pattern_matches(ref, s) if ":" in ref
                      else policies.locations[ref].contains(s))
            if inside:
                out.add(s.name)
                break
    return frozenset(out)


def _describe_sites(rule: Rule) -> str:
    return ", ".join(f"location set {s!r}" if ":" not in s else s for s in rule.sites)


def _glob_example(glob: str) -> str:
    """A string the glob surely matches (``train-*`` → ``train-``)."""
    out, i = "", 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            pass
        elif c == "?":
            out += "x"
        elif c == "[":
            end = glob.find("]", i + 2)
            if end < 0:
                out += c
            else:
                body = glob[i + 1:end]
                if body.startswith("!"):
                    return glob  # not worth guessing: assume no example
                out += body[0]
                i = end
        else:
            out += c
        i += 1
    return out


def _globs_meet(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether some text provably matches a glob of ``a`` and a glob of ``b``."""
    for x in a:
        for y in b:
            if any(fnmatchcase(ex, x) and fnmatchcase(ex, y)
                   for ex in (_glob_example(x), _glob_example(y))):
                return True
    return False


def _folded(values: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for k, vs in values.items():
        out.setdefault(canonical(k), set()).update("*" if v == "*" else canonical(v) for v in vs)
    return {k: frozenset(v) for k, v in out.items()}


def _compatible(a: Match, b: Match) -> bool:
    """Whether one job can provably match both (tags are multi-valued, labels are not)."""
    la, lb = _folded(a.labels), _folded(b.labels)
    for key in la.keys() & lb.keys():
        if "*" not in la[key] and "*" not in lb[key] and not la[key] & lb[key]:
            return False
    for fld in ("jobs", "images", "commands"):
        ga, gb = getattr(a, fld), getattr(b, fld)
        if ga and gb and not _globs_meet(ga, gb):
            return False
    return True


def _implies(a: Match, b: Match) -> bool:
    """Whether every job ``a`` matches, ``b`` matches too (provably; ``False`` when unsure)."""
    for fld in ("tags", "labels"):
        fa, fb = _folded(getattr(a, fld)), _folded(getattr(b, fld))
        for key, wanted in fb.items():
            have = fa.get(key)
            if have is None:
                return False
            if "*" not in wanted and ("*" in have or not have <= wanted):
                return False
    for fld in ("jobs", "images", "commands"):
        gb = getattr(b, fld)
        if not gb:
            continue
        ga = getattr(a, fld)
        if not ga or not all(g in gb or (not is_glob(g) and any(fnmatchcase(g, y) for y in gb))
                             for g in ga):
            return False
    return True


def _carrier(rules: Sequence[Rule]) -> tuple[str, bool]:
    """Words for a job all ``rules`` match, and whether one dataset's tags can do it."""
    tags: dict[str, set[str]] = {}
    single = True
    shown: dict[str, set[str]] = {}
    for r in rules:
        for k, vs in r.match.tags.items():
            values = {canonical(v) for v in vs if v != "*"}
            key = canonical(k)
            if key in tags and values and tags[key] and not tags[key] & values:
                single = False
            if values:
                tags[key] = (tags[key] & values) if key in tags and tags[key] & values else (
                    tags.get(key, set()) | values)
            shown.setdefault(k, set()).update(vs)
    parts = [f"{k}={'|'.join(sorted(v))}" for k, v in sorted(shown.items())]
    for r in rules:
        parts += [f"label {k}={'|'.join(v)}" for k, v in sorted(r.match.labels.items())]
        if r.match.jobs:
            parts.append(f"a name matching {', '.join(r.match.jobs)}")
    words = "carrying " + ", ".join(dict.fromkeys(parts)) if parts else "(every job)"
    return words, single


# -- the checks ------------------------------------------------------------------------------------


def _references(policies: PolicySet, sites: Sequence[ResolvedSite]) -> list[Finding]:
    try:
        check_references(policies.references, sites, policies.declared_locations)
    except PolicyError as exc:
        return [Finding("error", "unknown-reference", d.msg, file=d.file, line=d.line,
                        field=d.field) for d in exc.details]
    return []


def _dead(policies: PolicySet, sites: Sequence[ResolvedSite], universe: Sequence[ResolvedSite],
          where: Mapping[str, Origin]) -> list[Finding]:
    out = []
    inventory = {s.name for s in sites}
    for r in policies.rules:
        held = members(r.sites, policies, universe)
        at = where.get(r.id)
        if not held and r.effect in ("forbid", "allow", "limit", "prefer"):
            does = {"forbid": "forbids nothing", "allow": "admits nothing",
                    "limit": "caps nothing",
                    "prefer": "adds its penalty to every site alike, so it changes no choice"}
            out.append(_finding(
                "warning", "matches-no-site",
                f"{r.effect} rule {r.id!r} names no site of the inventory and no catalog region "
                f"({_describe_sites(r)}): it {does[r.effect]}", (r.id,), at))
        elif r.effect == "prefer" and inventory and inventory <= held:
            out.append(_finding(
                "warning", "prefer-everywhere",
                f"prefer rule {r.id!r} prefers every site of the inventory "
                f"({_describe_sites(r)}): it never adds its penalty", (r.id,), at))
        if r.effect == "allow" and policies.defaults_of(policies.layer(r.id)).decision == "allow":
            out.append(_finding(
                "warning", "allow-no-effect",
                f"allow rule {r.id!r} is in the {policies.layer(r.id)} layer, whose default is "
                "allow: it admits nothing that was not admitted already (set defaults: "
                "{decision: deny} in that layer, or remove it)", (r.id,), at))
    return out


def _rejects(rule: Rule, held: frozenset[str], universe: frozenset[str]) -> frozenset[str]:
    return held if rule.effect == "forbid" else universe - held


def _shadowed(policies: PolicySet, universe: Sequence[ResolvedSite] | None,
              where: Mapping[str, Origin]) -> list[Finding]:
    if universe is None:
        return []
    everything = frozenset(s.name for s in universe)
    hard = [r for r in policies.rules if r.effect in ("forbid", "require") and r.mode == "enforce"]
    waived = {rid for w in policies.exceptions for rid in w.waives}
    held = {r.id: members(r.sites, policies, universe) for r in hard}
    rejects = {r.id: _rejects(r, held[r.id], everything) for r in hard}

    def tags_only(m: Match) -> bool:
        return not (m.labels or m.jobs or m.images or m.commands)

    out = []
    for a in hard:
        for b in hard:
            if a.id == b.id or b.id in waived or not _implies(a.match, b.match):
                continue
            if tags_only(a.match) and not tags_only(b.match):
                continue  # a data rule also judges copies at rest; b does not
            if not rejects[a.id] <= rejects[b.id]:
                continue
            mutual = _implies(b.match, a.match) and rejects[a.id] == rejects[b.id]
            if mutual and a.id < b.id:
                continue  # report the pair once
            out.append(_finding(
                "warning", "shadowed",
                f"{a.effect} rule {a.id!r} is shadowed by {b.effect} rule {b.id!r}: every job "
                f"{a.id!r} applies to, {b.id!r} applies to as well, and every site {a.id!r} "
                "rejects, on any site there could be, it rejects already",
                (a.id, b.id), where.get(a.id)))
            break
    return out


def _intersections(policies: PolicySet, sites: Sequence[ResolvedSite],
                   where: Mapping[str, Origin], inventory_name: str) -> list[Finding]:
    requires = [r for r in policies.rules if r.effect == "require" and r.mode == "enforce"]
    held = {r.id: members(r.sites, policies, sites) for r in requires}
    # A require that alone admits no site strands its data by itself (stranded-data says so);
    # only groups whose every member admits some site are an intersection problem.
    requires = [r for r in requires if held[r.id]]
    out: list[Finding] = []
    empty: list[frozenset[str]] = []
    for size in range(2, min(len(requires), MAX_REQUIRES_TOGETHER) + 1):
        for group in itertools.combinations(requires, size):
            ids = frozenset(r.id for r in group)
            if any(e <= ids for e in empty):
                continue
            if not all(_compatible(a.match, b.match) for a, b in itertools.combinations(group, 2)):
                continue
            common = frozenset.intersection(*(held[r.id] for r in group))
            if common:
                continue
            empty.append(ids)
            words, single = _carrier(group)
            names = " and ".join(f"{r.id!r} ({_describe_sites(r)})" for r in group)
            if single:
                level: Level = "error"
                tail = "such a job can run nowhere"
            else:
                level = "warning"
                tail = ("only a job that mixes these values can meet them all, and it can run "
                        "nowhere (which may be what you mean)")
            out.append(_finding(
                level, "empty-intersection",
                f"requires {names} can all apply to one job ({words}), and no site of "
                f"inventory {inventory_name!r} is in all of them: {tail}",
                tuple(sorted(ids)), where.get(group[0].id)))
    return out


def _other(values: set[str]) -> str:
    n = 0
    while True:
        candidate = "unclassified" if n == 0 else f"unclassified-{n}"
        if canonical(candidate) not in {canonical(v) for v in values}:
            return candidate
        n += 1


def data_classes(policies: PolicySet) -> list[dict[str, str]]:
    """The tag combinations the rules tell apart: one value (or none) per key they match on.

    Smallest first. With more than :data:`MAX_DATA_CLASSES` combinations, only those of one and
    two keys.
    """
    keys: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for r in policies.rules:
        if r.mode != "enforce" or r.effect not in ("forbid", "require", "allow"):
            continue
        for k, vs in r.match.tags.items():
            key = keys.setdefault(canonical(k), k)
            for v in vs:
                if v != "*" and canonical(v) not in {canonical(x) for x in values.get(key, [])}:
                    values.setdefault(key, []).append(v)
    order = sorted(values)
    total = 1
    for k in order:
        total *= len(values[k]) + 1
    widths = range(1, len(order) + 1) if total <= MAX_DATA_CLASSES else range(1, 3)
    out = []
    for width in widths:
        for ks in itertools.combinations(order, width):
            for vs in itertools.product(*(sorted(values[k]) for k in ks)):
                out.append(dict(zip(ks, vs, strict=True)))
    return out


def _stranded(policies: PolicySet, sites: Sequence[ResolvedSite], where: Mapping[str, Origin],
              inventory_name: str, explained: Sequence[frozenset[str]]) -> list[Finding]:
    if not sites:
        return []
    bare = policies.model_copy(update={"tagging": (), "transforms": (), "exceptions": ()})
    required = {canonical(t): t for t in policies.required_tags}
    named: dict[str, set[str]] = {}  # values any rule names, per key: a filler avoids them
    for r in policies.rules:
        for k, vs in r.match.tags.items():
            named.setdefault(canonical(k), set()).update(vs)
    found: list[dict[str, str]] = []
    out = []
    for tags in data_classes(policies):
        if any(f.items() <= tags.items() for f in found):
            continue
        full = dict(tags)
        have = {canonical(k) for k in tags}
        for key, name in required.items():
            if key not in have:
                full[name] = _other(named.get(key, set()))
        pipeline = Pipeline(
            name="lint",
            datasets=(Dataset(name="data", location=sites[0].location.key, tags=full),),
            jobs=(Job(name="job", command="run", gpu_types={"A100-80GB": 1}, inputs=("data",)),))
        e = evaluate(pipeline, sites, bare)["job"]
        if e.allowed or e.held:
            continue
        found.append(tags)
        causes = tuple(sorted({h.rule for hits in e.rejected.values() for h in hits}))
        if frozenset(causes) in explained:
            continue  # said already, as an empty intersection of requires
        by_rule: dict[str, list[str]] = {}
        for site, hits in e.rejected.items():
            for h in hits:
                by_rule.setdefault(h.rule, []).append(site)
        why = "; ".join(f"{rid} rejects {', '.join(s for s in (x.name for x in sites) if s in ss)}"
                        for rid, ss in sorted(by_rule.items()))
        label = ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))
        first = next((c for c in causes if c != DEFAULT_DENY), None)
        out.append(_finding(
            "error", "stranded-data",
            f"data tagged {label} may run on no site of inventory {inventory_name!r}: {why}",
            causes, where.get(first) if first else None))
    return out


def _expired(policies: PolicySet, today: date, where: Mapping[str, Origin]) -> list[Finding]:
    return [_finding("warning", "expired-exception",
                    f"exception {w.id!r} (ticket {w.ticket}) expired on {w.expires}: it is "
                    "ignored; delete it or renew it with a new approval", (w.id,),
                    where.get(w.id))
            for w in policies.exceptions if w.expires < today]


def lint_policies(policies: PolicySet, sites: Sequence[ResolvedSite], *,
                  catalog: Catalog | None = None, today: date | None = None,
                  inventory_name: str = "inventory") -> list[Finding]:
    """Everything lint finds in a loaded policy set, judged against ``sites``.

    Errors first, then warnings, each group in file and line order.
    """
    cat = catalog or default_catalog()
    day = today or datetime.now(UTC).date()
    where = origins(policies)
    universe = [*sites, *catalog_places(sites, cat)]
    found = _references(policies, sites)
    found += _dead(policies, sites, universe, where)
    found += _shadowed(policies, probe_sites(policies, sites, cat), where)
    crossing = _intersections(policies, sites, where, inventory_name)
    found += crossing
    explained = [frozenset(f.rules) for f in crossing]
    found += _stranded(policies, sites, where, inventory_name, explained)
    found += _expired(policies, day, where)
    return sorted(found, key=lambda f: (f.level != "error", f.file or "", f.line or 0, f.code))
