"""The hunter's oracle: where each job may truly run, computed from the generator's ground truth.

It shares no code with ``placer.policy``, ``placer.tags`` or ``placer.models`` (like
``placer/sim/check.py``): it never sees the spelling placer reads. The generator knows the true
value of every tag before it writes ``"ＥＵ"`` or ``"\\u2003EU"``, whether a spelling is a
look-alike (``"ЕU"`` with a Cyrillic Е), the pattern a rule meant before it writes a typo, the
files a policy folder holds before placer walks it, which exceptions are live on the day judged
and which transforms approve which jobs; the oracle judges from that truth alone.

The semantics, in full (``docs/policies.md``, written again here from the text, not the code):

* **facts**: a dataset carries its written tags (key → true value; an empty value is a value
  ``""``) and the tags the tagging rules derive for it. A tagging rule derives its tags when
  every part it gives holds: a ``uri`` glob matches the dataset's URI (``*`` and ``?`` stay
  within a path segment, ``**`` crosses segments), each ``storage_tags`` key has one of the
  listed values among the tags the store reports, and EVERY copy of the dataset (its location
  and its replicas) lies where one of the ``locations`` patterns matches;
* a job's **lineage** is what it reads: the facts of the datasets it reads and of what the jobs
  whose outputs it reads pass on, transitively; ``after`` carries no data. A job passes on what
  it reads minus the tags it declares it removes, each removal counting only where a transform
  matches the job (by image or command, strictly; name globs only narrow) and lists that tag
  (or ``*``). The job itself is judged by what it reads;
* a job is **held** (may run nowhere) if its lineage (every dataset it reads, directly or
  through any job, whatever was removed on the way) holds a dataset with no known location,
  without a non-empty value for a required tag key, or with a replica where an enforced forbid
  or require that matches the dataset's own tags on tags alone does not let it be (a replica at
  a location nothing knows counts as such, once such a rule matches);
* a rule **matches** when every ``tags`` key has one of the listed values in the lineage
  (``*``: the key is present, whatever its value), every ``labels`` key likewise on the job's
  labels, one ``jobs`` glob (if any) matches its name, one ``images`` glob its image and one
  ``commands`` glob its command. Forbids and requires match through every spelling (case,
  width, spaces, look-alike letters). What widens (``allow``, exceptions) matches **strictly**:
  a tag spelt with a look-alike letter (in its key or its value) is not the tag it imitates;
* per **layer** (``organisation``, ``team``): a site is admitted unless an enforced forbid of
  the layer names it or an enforced require of the layer does not, each time unless a live
  exception waives that rule for the job there (a live exception: not expired on the day
  judged, matching the job strictly, listing the rule, the rule waivable, the site among the
  exception's ``sites`` if it has any). Under ``defaults: {decision: deny}`` the layer admits
  only the sites an enforced allow of the layer that matches the job names. A site is allowed
  iff every layer admits it. ``audit``/``warn`` rules, ``prefer`` and ``limit`` never widen nor
  (for eligibility) narrow;
* data **at rest** (an output, a copy of an input) is judged by the enforced forbids and
  requires on data (matching on tags only, or on everything), applied to what the producing
  job passes on;
* each **layer judges with its own data**: the organisation's rules, required tags and
  exceptions see the tags the organisation's tagging rules derive and the removals its
  transforms approve; a team's see those and the team's own. A team file never lifts an
  organisation hold, satisfies an organisation allow or removes a tag an organisation rule
  matches.

A ``site:`` pattern names sites, not places where data rests: the oracle does not judge a
replica by it (such a rule neither holds nor clears a replica in the oracle's eyes).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from importlib.resources import files
from typing import Any

# EU member states and the further EEA states (ISO 3166-1 alpha-2), written out again here.
EU = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
})
EEA = EU | {"IS", "LI", "NO"}
LAYERS = ("organisation", "team")
SCOPE = {"organisation": ("organisation",), "team": ("organisation", "team")}
"""The layers whose tagging rules, transforms and exceptions each layer judges with."""


def in_scope(items: Iterable[Mapping[str, Any]], layer: str) -> list[Mapping[str, Any]]:
    return [i for i in items if i.get("layer", "organisation") in SCOPE[layer]]


def required_of(truth: Truth, layer: str) -> list[str]:
    """The tag keys a layer's files require (``required_tags``: the organisation's)."""
    return list(truth.get("required_tags", ()) if layer == "organisation"
                else truth.get("team_required_tags", ()))
HARD = ("forbid", "require")

Truth = Mapping[str, Any]


@cache
def cloud_regions() -> dict[str, tuple[str, frozenset[str]]]:
    """``provider:region`` → (country, extra jurisdictions) read from the catalog's data file."""
    text = files("placer.catalog").joinpath("data", "region_jurisdictions.csv").read_text("utf-8")
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        extra = frozenset(t.strip() for t in row["residency_tags"].split("|") if t.strip())
        out[f"{row['cloud']}:{row['region']}"] = (row["country_iso2"].strip().upper(), extra)
    return out


@dataclass(frozen=True)
class Site:
    name: str | None
    """``None`` for a place that is no site (a cloud region holding a replica)."""
    location: str
    country: str
    jurisdictions: frozenset[str]

    @property
    def provider(self) -> str:
        return self.location.split(":", 1)[0]


def jurisdictions(country: str, extra: Iterable[str] = ()) -> frozenset[str]:
    out = {country, *extra}
    if country in EU:
        out.add("EU")
    if country in EEA:
        out.add("EEA")
    return frozenset(out)


def sites(truth: Truth) -> dict[str, Site]:
    out = {}
    for name, s in truth["sites"].items():
        loc = s["location"]
        if loc.startswith("onprem:"):
            country, extra = s["country"], frozenset(s.get("jurisdictions", ()))
        else:
            country, cat_extra = cloud_regions()[loc]
            extra = cat_extra | frozenset(s.get("jurisdictions", ()))
        out[name] = Site(name, loc, country, jurisdictions(country, extra))
    return out


def place(location: str, all_sites: Mapping[str, Site]) -> Site | None:
    """Where data at ``location`` is, judged by location only: an on-prem site's data centre
    (with the jurisdictions its inventory gives it), a catalog region, or unknown (``None``)."""
    if location.startswith("onprem:"):
        return next((s for s in all_sites.values() if s.location == location), None)
    if location in cloud_regions():
        country, extra = cloud_regions()[location]
        return Site(None, location, country, jurisdictions(country, extra))
    return None


def pattern_matches(pattern: str, site: Site) -> bool | None:
    """Whether a pattern matches; ``None`` when it cannot say (a ``site:`` pattern judged
    against a place that is no site)."""
    prefix, _, rest = pattern.partition(":")
    if prefix == "jurisdiction":
        return rest in site.jurisdictions
    if prefix == "country":
        return site.country == rest
    if prefix == "site":
        return None if site.name is None else fnmatchcase(site.name, rest)
    if prefix == "provider":
        return fnmatchcase(site.provider, rest)
    return fnmatchcase(site.location, pattern)


def _any(results: Iterable[bool | None]) -> bool | None:
    out: bool | None = False
    for r in results:
        if r is True:
            return True
        if r is None:
            out = None
    return out


def names_place(refs: Iterable[str], site: Site, sets: Mapping[str, Any]) -> bool | None:
    """Whether a ``sites`` list (patterns and location-set names) includes ``site``; ``None``
    when that depends on a ``site:`` pattern and ``site`` is no site."""
    results: list[bool | None] = []
    for ref in refs:
        if ":" in ref:
            results.append(pattern_matches(ref, site))
            continue
        ls = sets[ref]
        inc = _any(pattern_matches(p, site) for p in ls["include"])
        exc = _any(pattern_matches(p, site) for p in ls.get("exclude", ()))
        if inc is False or exc is True:
            results.append(False)
        elif inc is True and exc is False:
            results.append(True)
        else:
            results.append(None)
    return _any(results)


def names_site(refs: Iterable[str], site: Site, sets: Mapping[str, Any]) -> bool:
    return names_place(refs, site, sets) is True


def meanings(ref: str, truth: Truth) -> list[tuple[str, str | None]]:
    """Everything an input name could mean: ``("dataset", name)`` or ``(job, output)``."""
    out: list[tuple[str, str | None]] = []
    if ref in truth["datasets"]:
        out.append(("dataset", ref))
    for k, ch in enumerate(ref):
        if ch == ".":
            job, output = ref[:k], ref[k + 1:]
            if job in truth["jobs"] and output in truth["jobs"][job]["outputs"]:
                out.append((job, output))
    return out


def _reads(truth: Truth) -> dict[str, list[tuple[str, str | None]]]:
    return {j: [m for ref in spec["inputs"] for m in meanings(ref, truth)]
            for j, spec in truth["jobs"].items()}


def lineage(truth: Truth) -> dict[str, frozenset[str]]:
    """Job → every dataset it reads, directly or through job outputs (a fixpoint: cycles and
    ambiguous names cannot make it loop or miss a source). Removals do not shorten it."""
    reads = _reads(truth)
    out: dict[str, set[str]] = {j: set() for j in truth["jobs"]}
    changed = True
    while changed:
        changed = False
        for j, ms in reads.items():
            new = set(out[j])
            for kind, name in ms:
                if kind == "dataset":
                    new.add(str(name))
                else:
                    new |= out[kind]
            if new != out[j]:
                out[j], changed = new, True
    return {j: frozenset(v) for j, v in out.items()}


def unresolved_inputs(truth: Truth) -> list[str]:
    """Input names that mean nothing: a pipeline with one must never be placed."""
    return [f"{j}: {ref}" for j, spec in truth["jobs"].items() for ref in spec["inputs"]
            if not meanings(ref, truth)]


# -- facts: tags as they truly are ---------------------------------------------------------------
@dataclass(frozen=True)
class Fact:
    """One tag of one dataset: its true key and value, and whether either is spelt with a
    look-alike letter (then it is that tag for forbids and requires, and not for what widens)."""

    key: str
    value: str  # "" for a tag written with an empty value
    dataset: str
    disguised_key: bool = False
    disguised_value: bool = False

    @property
    def strict(self) -> tuple[str, str]:
        return ("≈" + self.key if self.disguised_key else self.key,
                "≈" + self.value if self.disguised_value else self.value)


def uri_glob(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` within one path segment, ``**`` across segments; nothing else special."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def copies(spec: Mapping[str, Any]) -> list[str]:
    if spec.get("location") is None:
        return []
    return list(dict.fromkeys([spec["location"], *spec.get("replicas", ())]))


def tagging_matches(rule: Mapping[str, Any], spec: Mapping[str, Any],
                    all_sites: Mapping[str, Site]) -> bool:
    m = rule["match"]
    if m.get("uri") and not (spec.get("uri") and any(uri_glob(g).match(spec["uri"])
                                                     for g in m["uri"])):
        return False
    have = spec.get("storage_tags") or {}
    for key, wanted in (m.get("storage_tags") or {}).items():
        if key not in have or not ("*" in wanted or have[key] in wanted):
            return False
    if m.get("locations"):
        cs = copies(spec)
        if not cs:
            return False
        for loc in cs:
            p = place(loc, all_sites)
            if p is None or _any(pattern_matches(x, p) for x in m["locations"]) is not True:
                return False
    return True


def dataset_facts(name: str, truth: Truth, all_sites: Mapping[str, Site],
                  layer: str = "team") -> set[Fact]:
    spec = truth["datasets"][name]
    dis = spec.get("disguised") or {}
    out = {Fact(k, "" if v is None else v, name, k in dis.get("keys", ()),
                k in dis.get("values", ()))
           for k, v in spec["tags"].items()}
    for rule in in_scope(truth.get("tagging", ()), layer):
        if tagging_matches(rule, spec, all_sites):
            out |= {Fact(k, v, name) for k, v in rule["tags"].items()}
    return out


def canonical(facts: Iterable[Fact]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in facts:
        out.setdefault(f.key, set()).add(f.value)
    return out


def strict(facts: Iterable[Fact]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in facts:
        k, v = f.strict
        out.setdefault(k, set()).add(v)
    return out


def job_spec(truth: Truth, job: str) -> dict[str, Any]:
    spec = dict(truth["jobs"][job])
    spec.setdefault("command", f"run {job}")
    spec.setdefault("image", None)
    spec.setdefault("labels", {})
    spec.setdefault("removes_tags", {})
    return spec


def approver(job: str, spec: Mapping[str, Any], key: str, value: str,
             transforms: Iterable[Mapping[str, Any]]) -> str | None:
    """The transform that approves ``job`` removing ``key=value``, if any."""
    for t in sorted(transforms, key=lambda t: t["id"]):
        m = t["match"]
        if not (m.get("images") or m.get("commands")):
            continue  # a job name alone is no approval
        if m.get("images") and not (spec["image"] and any(fnmatchcase(spec["image"], g)
                                                          for g in m["images"])):
            continue
        if m.get("commands") and not any(fnmatchcase(spec["command"], g) for g in m["commands"]):
            continue
        if m.get("jobs") and not any(fnmatchcase(job, g) for g in m["jobs"]):
            continue
        listed = t["removes"].get(key, ())
        if "*" in listed or value in listed:
            return str(t["id"])
    return None


def flow(truth: Truth, all_sites: Mapping[str, Site], layer: str = "team"
         ) -> tuple[dict[str, set[Fact]], dict[str, set[Fact]]]:
    """(job → facts it reads, job → facts it passes on), a fixpoint over the DAG, as
    ``layer`` sees the data."""
    reads = _reads(truth)
    transforms = in_scope(truth.get("transforms", ()), layer)
    ds_facts = {d: dataset_facts(d, truth, all_sites, layer) for d in truth["datasets"]}
    read: dict[str, set[Fact]] = {j: set() for j in truth["jobs"]}
    passed: dict[str, set[Fact]] = {j: set() for j in truth["jobs"]}
    for _ in range(len(read) + 2):
        changed = False
        for j, ms in reads.items():
            new: set[Fact] = set()
            for kind, name in ms:
                new |= ds_facts[str(name)] if kind == "dataset" else passed[kind]
            spec = job_spec(truth, j)
            gone = {f for f in new for key, values in spec["removes_tags"].items()
                    for v in values if f.key == key and (v == "*" or f.value == v)
                    and approver(j, spec, key, v, transforms) is not None}
            if new != read[j] or new - gone != passed[j]:
                read[j], passed[j], changed = new, new - gone, True
        if not changed:
            break
    return read, passed


# -- rules ---------------------------------------------------------------------------------------
def _values_match(wanted: Iterable[str], have: set[str] | None) -> bool:
    if have is None:
        return False
    return any(w == "*" or w in have for w in wanted)


def rule_matches(match: Mapping[str, Any], job: str, spec: Mapping[str, Any],
                 tags: Mapping[str, set[str]]) -> bool:
    labels = {k: {v} for k, v in spec["labels"].items()}
    return (all(_values_match(v, tags.get(k)) for k, v in (match.get("tags") or {}).items())
            and all(_values_match(v, labels.get(k)) for k, v in (match.get("labels") or {}).items())
            and (not match.get("jobs") or any(fnmatchcase(job, g) for g in match["jobs"]))
            and (not match.get("images") or (spec["image"] is not None and any(
                fnmatchcase(spec["image"], g) for g in match["images"])))
            and (not match.get("commands") or any(fnmatchcase(spec["command"], g)
                                                  for g in match["commands"])))


def about_data(rule: Mapping[str, Any]) -> bool:
    """A rule on data: it asks nothing of the job itself (labels, name, image, command)."""
    return not any(rule["match"].get(k) for k in ("labels", "jobs", "images", "commands"))


def tags_only(rule: Mapping[str, Any]) -> bool:
    return bool(rule["match"].get("tags")) and about_data(rule)


def enforced(rule: Mapping[str, Any]) -> bool:
    return rule.get("mode", "enforce") == "enforce"


def live(exception: Mapping[str, Any], day: int) -> bool:
    """Not expired on the day judged (``day``: days after the case's decision day)."""
    return int(exception["expires_in"]) >= day


def data_sites(rules: Iterable[Mapping[str, Any]], tags: Mapping[str, set[str]],
               places: Iterable[Site], sets: Mapping[str, Any]) -> set[str]:
    """Locations where data with ``tags`` may rest: no enforced forbid on data (on its tags,
    or on everything) matching it names them, every such require does."""
    ok = set()
    rules = [r for r in rules if r["effect"] in HARD and enforced(r) and about_data(r)
             and all(_values_match(v, tags.get(k))
                     for k, v in (r["match"].get("tags") or {}).items())]
    for p in places:
        good = True
        for r in rules:
            inside = names_place(r["sites"], p, sets)
            if (r["effect"] == "forbid" and inside is True) or (
                    r["effect"] == "require" and inside is False):
                good = False
        if good:
            ok.add(p.location)
    return ok


def at_rest_holds(name: str, truth: Truth, all_sites: Mapping[str, Site],
                  facts: set[Fact], layer: str | None = None) -> list[str]:
    spec = truth["datasets"][name]
    tags = canonical(facts)
    sets = truth.get("locations", {})
    out: list[str] = []
    rules = [r for r in truth.get("rules", ()) if r["effect"] in HARD and enforced(r)
             and (layer is None or r.get("layer", "organisation") == layer)
             and tags_only(r)
             and all(_values_match(v, tags.get(k)) for k, v in r["match"]["tags"].items())]
    if not rules or spec.get("location") is None:
        return out
    for loc in spec.get("replicas", ()):
        p = place(loc, all_sites)
        if p is None:
            out.append(f"{name}: a replica at {loc}, which nothing knows")
            continue
        for r in rules:
            inside = names_place(r["sites"], p, sets)
            if (r["effect"] == "forbid" and inside is True) or (
                    r["effect"] == "require" and inside is False):
                out.append(f"{name}: a replica at {loc}, where {r['id']} does not let it be")
    return out


def held(datasets: Iterable[str], truth: Truth,
         facts: Mapping[str, set[Fact]] | None = None,
         all_sites: Mapping[str, Site] | None = None, layer: str | None = None) -> list[str]:
    """Why data of these datasets may go nowhere (unknown location, required tag missing, a
    replica where its tags may not be), as ``layer`` sees them (None: every layer, each with
    its own data)."""
    all_sites = all_sites if all_sites is not None else sites(truth)
    if layer is None:
        out = []
        for one in LAYERS:
            out += [h for h in held(datasets, truth, None, all_sites, one) if h not in out]
        return out
    out = []
    for d in sorted(datasets):
        spec = truth["datasets"][d]
        fs = facts[d] if facts is not None else dataset_facts(d, truth, all_sites, layer)
        if spec["location"] is None and f"{d}: unknown location" not in out:
            out.append(f"{d}: unknown location")
        have = canonical(fs)
        for key in required_of(truth, layer):
            if not any(have.get(key, ())):
                out.append(f"{d}: no value for required tag {key}")
        out += at_rest_holds(d, truth, all_sites, fs, layer)
    return out


@dataclass(frozen=True)
class Verdict:
    """What the truth allows each job, with the reasons (for counterexample reports)."""

    allowed: Mapping[str, frozenset[str]]
    """job → site names it may run on."""
    locations: Mapping[str, frozenset[str]]
    """job → locations where its outputs may be written (those of its allowed sites)."""
    data_locations: Mapping[str, frozenset[str]]
    """job → locations where what it passes on may rest, judged by the rules on tags only."""
    waived_locations: Mapping[str, frozenset[str]]
    """job → locations of allowed sites it may use only through an exception."""
    why: Mapping[str, str]
    sites: Mapping[str, Site]
    held: Mapping[str, tuple[str, ...]]
    expired: Mapping[str, frozenset[str]]
    """job → exceptions that match it strictly but have expired on the day judged."""
    waivers: Mapping[str, frozenset[str]]
    """job → live exceptions that match it strictly."""
    allows: Mapping[str, frozenset[str]]
    """job → enforced allow rules that match it strictly."""
    refuse: tuple[str, ...] = ()
    """Why placer must refuse the case (policies it may not accept)."""


def judge(truth: Truth, day: int = 0) -> Verdict:
    """Judge every job. ``day``: days after the case's decision day (exceptions expire)."""
    all_sites = sites(truth)
    sets = truth.get("locations", {})
    rules = list(truth.get("rules", ()))
    exceptions = list(truth.get("exceptions", ()))
    defaults = truth.get("defaults") or {}
    lin = lineage(truth)
    broken = unresolved_inputs(truth)
    views = {layer: flow(truth, all_sites, layer) for layer in LAYERS}
    facts_of = {layer: {d: dataset_facts(d, truth, all_sites, layer) for d in truth["datasets"]}
                for layer in LAYERS}
    places = list({s.location: s for s in all_sites.values()}.values())
    allowed, locations, data_locations, waived_locations, why = {}, {}, {}, {}, {}
    holds_of, expired_of, waivers_of, allows_of = {}, {}, {}, {}
    for job in truth["jobs"]:
        spec = job_spec(truth, job)
        holds: list[str] = []
        for layer in LAYERS:
            holds += [h for h in held(lin[job], truth, facts_of[layer], all_sites, layer)
                      if h not in holds]
        holds += broken
        ok = set(all_sites)
        waived: set[str] = set()
        matched: list[str] = []
        expired: set[str] = set()
        live_ids: set[str] = set()
        allow_ids: set[str] = set()
        for layer in LAYERS:
            read, _ = views[layer]
            tags, stags = canonical(read[job]), strict(read[job])
            matching = [w for w in exceptions if rule_matches(w["match"], job, spec, stags)]
            waivers = [w for w in matching if live(w, day)]
            expired |= {w["id"] for w in matching if not live(w, day)}
            live_ids |= {w["id"] for w in waivers}
            mine = [r for r in rules if r.get("layer", "organisation") == layer and enforced(r)]
            allow_ids |= {r["id"] for r in mine if r["effect"] == "allow"
                          and rule_matches(r["match"], job, spec, stags)}
            for r in mine:
                if r["effect"] not in HARD or not rule_matches(r["match"], job, spec, tags):
                    continue
                matched.append(r["id"])
                for name, s in all_sites.items():
                    inside = names_site(r["sites"], s, sets)
                    if (r["effect"] == "forbid") != inside:
                        continue  # the rule does not reject this site
                    cover = [w for w in waivers if r["id"] in w["waives"]
                             and r.get("waivable", True)
                             and (not w.get("sites") or names_site(w["sites"], s, sets))]
                    if cover:
                        waived.add(name)
                    else:
                        ok.discard(name)
            if defaults.get(layer, "allow") == "deny":
                admitted = {name for r in mine if r["effect"] == "allow"
                            and rule_matches(r["match"], job, spec, stags)
                            for name, s in all_sites.items() if names_site(r["sites"], s, sets)}
                matched += [f"{r['id']} (allow)" for r in mine if r["effect"] == "allow"
                            and rule_matches(r["match"], job, spec, stags)]
                ok &= admitted
        expired_of[job] = frozenset(expired)
        waivers_of[job] = frozenset(live_ids)
        allows_of[job] = frozenset(allow_ids)
        read, passed = views["team"]
        tags, stags = canonical(read[job]), strict(read[job])
        waivers = sorted(live_ids)
        if holds:
            ok = set()
        allowed[job] = frozenset(ok)
        holds_of[job] = tuple(holds)
        locations[job] = frozenset(all_sites[s].location for s in ok)
        waived_locations[job] = frozenset(all_sites[s].location for s in ok & waived)
        data_locations[job] = frozenset.intersection(*(frozenset(data_sites(
            [r for r in rules if r.get("layer", "organisation") == layer],
            canonical(views[layer][1][job]), places, sets)) for layer in LAYERS)
        ) if not holds else frozenset()
        why[job] = (f"lineage {sorted(lin[job])}, tags "
                    f"{ {k: sorted(v) for k, v in sorted(tags.items())} }"
                    + (f", strictly { {k: sorted(v) for k, v in sorted(stags.items())} }"
                       if stags != tags else "")
                    + (f", passes on { {k: sorted(v) for k, v in canonical(passed[job]).items()} }"
                       if passed[job] != read[job] else "")
                    + ", " + (f"held: {'; '.join(holds)}" if holds else
                              f"rules {sorted(matched)}")
                    + (f", live exceptions {sorted(waivers_of[job])}" if waivers else "")
                    + (f", expired {sorted(expired_of[job])}" if expired_of[job] else "")
                    + f" → allowed {sorted(allowed[job])}")
    return Verdict(allowed, locations, data_locations, waived_locations, why, all_sites,
                   holds_of, expired_of, waivers_of, allows_of, tuple(truth.get("refuse", ())))
