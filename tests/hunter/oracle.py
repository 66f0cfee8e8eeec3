"""The hunter's oracle: where each job may truly run, computed from the generator's ground truth.

It shares no code with ``placer.policy``, ``placer.tags`` or ``placer.models`` (like
``placer/sim/check.py``): it never sees the spelling placer reads. The generator knows the true
value of every tag before it writes ``"ＥＵ"`` or ``"\\u2003EU"``, the pattern a rule meant before
it writes a typo, and the files a policy folder holds before placer walks it; the oracle judges
from that truth alone.

The semantics, in full:

* a job's **lineage** is the set of datasets it reads, directly or through the outputs of the
  jobs it reads, transitively; ``after`` carries no data. An input name that could mean two
  things (a dataset ``prep.features`` beside job ``prep``'s output ``features``) means both;
* a job is **held** (may run nowhere) if its lineage holds a dataset with no known location or
  without a value for a required tag key;
* a rule **matches** a job when every ``tags`` key has one of the listed values in the lineage
  (``*``: any value), every ``labels`` key likewise on the job's labels, and one ``jobs`` glob
  (if any) matches its name;
* a site is **allowed** iff no matching forbid names it and every matching require names it.
  ``prefer`` never removes a site.

Data at rest (an output, a copy) is judged by the rules that match on tags only: they are about
data; rules on labels and job names are about where a job runs.
"""

from __future__ import annotations

import csv
import io
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
    name: str
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


def pattern_matches(pattern: str, site: Site) -> bool:
    prefix, _, rest = pattern.partition(":")
    if prefix == "jurisdiction":
        return rest in site.jurisdictions
    if prefix == "country":
        return site.country == rest
    if prefix == "site":
        return fnmatchcase(site.name, rest)
    if prefix == "provider":
        return site.provider == rest
    return fnmatchcase(site.location, pattern)


def names_site(refs: Iterable[str], site: Site, sets: Mapping[str, Any]) -> bool:
    """Whether a rule's ``sites`` (patterns and location-set names) include ``site``."""
    for ref in refs:
        if ":" in ref:
            if pattern_matches(ref, site):
                return True
        else:
            ls = sets[ref]
            if any(pattern_matches(p, site) for p in ls["include"]) and not any(
                    pattern_matches(p, site) for p in ls.get("exclude", ())):
                return True
    return False


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


def lineage(truth: Truth) -> dict[str, frozenset[str]]:
    """Job → every dataset it reads, directly or through job outputs (a fixpoint: cycles and
    ambiguous names cannot make it loop or miss a source)."""
    jobs = truth["jobs"]
    reads = {j: [m for ref in spec["inputs"] for m in meanings(ref, truth)]
             for j, spec in jobs.items()}
    out: dict[str, set[str]] = {j: set() for j in jobs}
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


def _present(value: Any) -> bool:
    return value is not None and value != ""


def tags_of(datasets: Iterable[str], truth: Truth) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for d in datasets:
        for k, v in truth["datasets"][d]["tags"].items():
            if _present(v):
                out.setdefault(k, set()).add(v)
    return out


def held(datasets: Iterable[str], truth: Truth) -> list[str]:
    """Why data of these datasets may go nowhere (unknown location, required tag missing)."""
    out = []
    for d in sorted(datasets):
        spec = truth["datasets"][d]
        if spec["location"] is None:
            out.append(f"{d}: unknown location")
        for key in truth.get("required_tags", ()):
            if not _present(spec["tags"].get(key)):
                out.append(f"{d}: no value for required tag {key}")
    return out


def _values_match(wanted: Iterable[str], have: set[str] | None) -> bool:
    if not have:
        return False
    return any(w == "*" or w in have for w in wanted)


def rule_matches(rule: Mapping[str, Any], job: str, tags: Mapping[str, set[str]],
                 labels: Mapping[str, str]) -> bool:
    m = rule["match"]
    return (all(_values_match(v, tags.get(k)) for k, v in m.get("tags", {}).items())
            and all(_values_match(v, {labels[k]} if _present(labels.get(k)) else set())
                    for k, v in m.get("labels", {}).items())
            and (not m.get("jobs") or any(fnmatchcase(job, g) for g in m["jobs"])))


def _allowed(rules: Iterable[Mapping[str, Any]], all_sites: Mapping[str, Site],
             sets: Mapping[str, Any]) -> frozenset[str]:
    ok = set(all_sites)
    for r in rules:
        inside = {n for n, s in all_sites.items() if names_site(r["sites"], s, sets)}
        if r["effect"] == "forbid":
            ok -= inside
        elif r["effect"] == "require":
            ok &= inside
    return frozenset(ok)


@dataclass(frozen=True)
class Verdict:
    """What the truth allows each job, with the reasons (for counterexample reports)."""

    allowed: Mapping[str, frozenset[str]]
    """job → site names it may run on."""
    locations: Mapping[str, frozenset[str]]
    """job → locations where its outputs may be written (those of its allowed sites)."""
    data_locations: Mapping[str, frozenset[str]]
    """job → locations where its outputs may rest, judged by the rules on tags only."""
    why: Mapping[str, str]
    sites: Mapping[str, Site]


def judge(truth: Truth) -> Verdict:
    all_sites = sites(truth)
    sets = truth.get("locations", {})
    rules = truth.get("rules", ())
    lin = lineage(truth)
    broken = unresolved_inputs(truth)
    allowed, locations, data_locations, why = {}, {}, {}, {}
    for job, spec in truth["jobs"].items():
        tags = tags_of(lin[job], truth)
        holds = held(lin[job], truth) + broken
        matched = [r for r in rules if rule_matches(r, job, tags, spec.get("labels", {}))]
        on_data = [r for r in matched if not r["match"].get("labels")
                   and not r["match"].get("jobs")]
        if holds:
            allowed[job] = data = frozenset()
        else:
            allowed[job] = _allowed(matched, all_sites, sets)
            data = _allowed(on_data, all_sites, sets)
        locations[job] = frozenset(all_sites[s].location for s in allowed[job])
        data_locations[job] = frozenset(all_sites[s].location for s in data)
        why[job] = (f"lineage {sorted(lin[job])}, tags "
                    f"{ {k: sorted(v) for k, v in sorted(tags.items())} }, "
                    + (f"held: {'; '.join(holds)}" if holds else
                       f"rules {sorted(r['id'] for r in matched if r['effect'] != 'prefer')}")
                    + f" → allowed {sorted(allowed[job])}")
    return Verdict(allowed, locations, data_locations, why, all_sites)
