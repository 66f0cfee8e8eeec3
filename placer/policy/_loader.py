"""Load policy files (errors name file, line and field), merge them, and hash the result.

Files are read in sorted path order whatever order they are given in, so error messages, too,
do not depend on how a user listed them. Merging is a union: rules, location sets and required
tags from every file form one namespace. A rule id may be defined once across all files; a
location-set name may appear in several files only with the same definition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from placer.catalog import Catalog, default_catalog
from placer.errors import ConfigError, ErrorDetail, PolicyError
from placer.policy._model import (
    API_VERSION,
    Defaults,
    Layer,
    LocationSet,
    Match,
    PolicyFile,
    PolicySet,
    Rule,
    SourcedTest,
    unknown_set_message,
)
from placer.policy._references import catalog_problem
from placer.yamlio import Loc, SourceMap, format_loc, read_yaml, validate

POLICY_SUFFIXES = (".yaml", ".yml")


def _is_policy_file(path: Path) -> bool:
    return path.suffix.lower() in POLICY_SUFFIXES


def _walk(root: Path, found: dict[Path, Path], skipped: list[str],
          problems: list[ErrorDetail]) -> None:
    """Every policy file under ``root``, at any depth; other files are noted in ``skipped``.

    Directories are followed through symlinks, each real directory once (a symlink loop ends).
    """
    seen: set[Path] = set()
    stack = [root]
    while stack:
        d = stack.pop()
        real = d.resolve()
        if real in seen:
            continue
        seen.add(real)
        try:
            entries = sorted(d.iterdir(), key=lambda e: e.name)
        except OSError as exc:
            problems.append(ErrorDetail(f"cannot read policy directory: {exc.strerror}", str(d)))
            continue
        subdirs = []
        for e in entries:
            if e.is_dir():
                subdirs.append(e)
            elif e.is_file() and _is_policy_file(e):
                found.setdefault(e.resolve(), e)
            elif e.is_file():
                skipped.append(str(e))
            else:
                problems.append(ErrorDetail(
                    "neither a file nor a directory (a broken link?); a policy tree must not "
                    "hide what it holds", str(e)))
        stack.extend(reversed(subdirs))


def yaml_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[str], list[ErrorDetail]]:
    """Policy files named by ``paths``: files as given, directories walked to any depth.

    Files come in the order given, each directory's in name order; each real file once.

    In a directory every file ending in ``.yaml`` or ``.yml``, in any case (``EU.YAML``), in
    any sub-folder, is a policy file; every other file is reported as skipped. A directory with
    no policy file at all is an error: "no rules" is never the result of a wrong path.
    """
    found: dict[Path, Path] = {}
    skipped: list[str] = []
    problems: list[ErrorDetail] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            before = len(found)
            _walk(p, found, skipped, problems)
            if len(found) == before and not any(f.resolve().is_relative_to(p.resolve())
                                                for f in found):
                problems.append(ErrorDetail(
                    "no policy files (*.yaml, *.yml) in this directory or below it; an empty "
                    "policy folder would allow every job everywhere", str(p)))
        elif p.is_file():
            found.setdefault(p.resolve(), p)
        else:
            problems.append(ErrorDetail("policy file or directory not found", str(p)))
    return list(found.values()), sorted(set(skipped)), problems


def _detail(sm: SourceMap, loc: Loc, msg: str) -> ErrorDetail:
    return ErrorDetail(msg, sm.file, sm.line(loc), format_loc(loc), loc)


def _normalize(data: dict[str, Any], sm: SourceMap) -> None:
    """Rewrite shorthand location sets (a plain list) as ``{include: [...]}``, keeping lines."""
    locations = data.get("locations")
    if not isinstance(locations, dict):
        return
    for name, value in list(locations.items()):
        if isinstance(value, list):
            locations[name] = {"include": value}
            base: Loc = ("locations", name)
            if base in sm.lines:
                sm.lines[(*base, "include")] = sm.lines[base]
            for k in range(len(value)):
                if (*base, k) in sm.lines:
                    sm.lines[(*base, "include", k)] = sm.lines[(*base, k)]


def _read(path: Path) -> tuple[PolicyFile, SourceMap]:
    try:
        data, sm = read_yaml(path)
    except ConfigError as exc:
        raise PolicyError(exc.details) from None
    return policy_file_from_data(data, sm)


def policy_from_data(data: Any, sm: SourceMap) -> PolicySet:
    """One parsed policy file as a PolicySet (for callers that already parsed the file)."""
    return merge([policy_file_from_data(data, sm)])


def policy_file_from_data(data: Any, sm: SourceMap) -> tuple[PolicyFile, SourceMap]:
    if not isinstance(data, dict):
        raise PolicyError(
            ErrorDetail(
                f"a policy file is a mapping with apiVersion: {API_VERSION}, kind: PolicySet, "
                "name and rules",
                sm.file,
                sm.line(()),
            )
        )
    _normalize(data, sm)
    try:
        return validate(PolicyFile, data, sm), sm
    except ConfigError as exc:
        raise PolicyError(exc.details) from None


def _canonical_set(ls: LocationSet) -> dict[str, list[str]]:
    return {"include": sorted(set(ls.include)), "exclude": sorted(set(ls.exclude))}


def _site_lists(pf: PolicyFile) -> list[tuple[str, list[tuple[str, ...]]]]:
    """The ``sites`` of every rule and every exception, by section."""
    return [("rules", [r.sites for r in pf.rules]),
            ("exceptions", [e.sites for e in pf.exceptions])]


def _pattern_uses(pf: PolicyFile, sm: SourceMap) -> Iterable[tuple[str, Loc]]:
    """Every site pattern a file uses, with the path it is written at."""
    for name, ls in pf.locations.items():
        for part in ("include", "exclude"):
            for k, pat in enumerate(getattr(ls, part)):
                yield pat, ("locations", name, part, k)
    for section, sites in _site_lists(pf):
        for i, item_sites in enumerate(sites):
            for k, ref in enumerate(item_sites):
                if ":" in ref:
                    loc: Loc = (section, i, "sites", k)
                    yield ref, loc if loc in sm.lines else (section, i, "sites")
    for i, t in enumerate(pf.tagging):
        for k, pat in enumerate(t.match.locations):
            yield pat, ("tagging", i, "match", "locations", k)


_SECTIONS = ("rules", "tagging", "transforms", "exceptions")
_WHAT = {"rules": "rule", "tagging": "tagging rule", "transforms": "transform",
         "exceptions": "exception"}


def merge(docs: Iterable[tuple[PolicyFile, SourceMap]], catalog: Catalog | None = None
          ) -> PolicySet:
    """Merge validated policy files into one :class:`PolicySet`; cross-file errors name lines.

    The result does not depend on the order of ``docs``: rules are sorted by id, location
    sets by name, and the merged name is the sorted file names joined by ``+``.
    """
    ordered = sorted(docs, key=lambda d: d[1].file)
    problems: list[ErrorDetail] = []
    sets: dict[str, tuple[LocationSet, SourceMap]] = {}
    rules: dict[str, tuple[Rule, SourceMap, int]] = {}
    ids: dict[str, tuple[SourceMap, str, int]] = {}
    layers: dict[str, Layer] = {}
    defaults: dict[Layer, tuple[Defaults, SourceMap]] = {}
    for pf, sm in ordered:
        for name, ls in pf.locations.items():
            if name not in sets:
                sets[name] = (ls, sm)
                continue
            prev, psm = sets[name]
            if _canonical_set(prev) != _canonical_set(ls):
                where = f"{psm.file}:{psm.line(('locations', name))}"
                problems.append(
                    _detail(
                        sm,
                        ("locations", name),
                        f"location set {name!r} is already defined differently at {where}; "
                        "a location-set name means one set across all policy files",
                    )
                )
        for section in _SECTIONS:
            for i, item in enumerate(getattr(pf, section)):
                if item.id in ids:
                    psm, psection, j = ids[item.id]
                    where = f"{psm.file}:{psm.line((psection, j, 'id'))}"
                    problems.append(_detail(
                        sm, (section, i, "id"),
                        f"duplicate id {item.id!r} (first defined at {where}); ids of rules, "
                        "tagging rules, transforms and exceptions must be unique across all "
                        "policy files"))
                    continue
                ids[item.id] = (sm, section, i)
                layers[item.id] = pf.layer
                if section == "rules":
                    rules[item.id] = (item, sm, i)
        if "defaults" in pf.model_fields_set:
            if pf.layer in defaults and defaults[pf.layer][0] != pf.defaults:
                psm = defaults[pf.layer][1]
                problems.append(_detail(
                    sm, ("defaults",),
                    f"defaults differ from those of the same layer ({pf.layer}) at "
                    f"{psm.file}:{psm.line(('defaults',))}; one layer has one default"))
            defaults.setdefault(pf.layer, (pf.defaults, sm))
    known = {name: ls for name, (ls, _) in sets.items()}
    declared = sorted({d for pf, _ in ordered for d in pf.declared_locations})
    regions = [r.key for r in (catalog or default_catalog()).regions()]
    references: dict[str, tuple[str | None, int | None, str]] = {}
    for pf, sm in ordered:
        for pattern, at in _pattern_uses(pf, sm):
            references.setdefault(pattern, (sm.file, sm.line(at), format_loc(at)))
            msg = catalog_problem(pattern, regions, declared)
            if msg is not None:
                problems.append(_detail(sm, at, msg))
    for pf, sm in ordered:
        for section, sites in _site_lists(pf):
            for i, item_sites in enumerate(sites):
                for k, ref in enumerate(item_sites):
                    if ":" not in ref and ref not in known:
                        loc: Loc = (section, i, "sites", k)
                        if loc not in sm.lines:  # written as a scalar: `sites: eea`
                            loc = (section, i, "sites")
                        problems.append(_detail(sm, loc, unknown_set_message(ref, known)))
        problems += _waiver_problems(pf, sm, {rid: r for rid, (r, _, _) in rules.items()},
                                     layers)
    if problems:
        raise PolicyError(problems)
    names = sorted({pf.name for pf, _ in ordered})
    if len(ordered) == 1:
        description = ordered[0][0].description
    else:
        description = "\n".join(
            f"{pf.name}: {pf.description}".rstrip()
            for pf, _ in sorted(ordered, key=lambda d: d[0].name)
        )
    return PolicySet(
        name="+".join(names) if names else "empty",
        description=description,
        required_tags=tuple(sorted({t for pf, _ in ordered for t in pf.required_tags})),
        required_by_layer={
            layer: tags for layer in ("organisation", "team")
            if (tags := tuple(sorted({t for pf, _ in ordered if pf.layer == layer
                                      for t in pf.required_tags})))},
        locations={name: known[name] for name in sorted(known)},
        rules=tuple(rules[rid][0] for rid in sorted(rules)),
        sources=tuple(sm.file for _, sm in ordered),
        origins={
            rid: f"{sm.file}:{sm.line(('rules', i))}" for rid, (_, sm, i) in sorted(rules.items())
        },
        declared_locations=tuple(declared),
        references=dict(sorted(references.items())),
        defaults={layer: d for layer, (d, _) in sorted(defaults.items())},
        layers={k: v for k, v in sorted(layers.items()) if v != "organisation"},
        tagging=tuple(sorted((t for pf, _ in ordered for t in pf.tagging), key=lambda t: t.id)),
        transforms=tuple(sorted((t for pf, _ in ordered for t in pf.transforms),
                                key=lambda t: t.id)),
        exceptions=tuple(sorted((e for pf, _ in ordered for e in pf.exceptions),
                                key=lambda e: e.id)),
        tests=tuple(SourcedTest(file=sm.file, line=sm.line(("tests", i)), policy=pf.name,
                                test=t)
                    for pf, sm in ordered for i, t in enumerate(pf.tests)),
    )


def _waiver_problems(pf: PolicyFile, sm: SourceMap, rules: Mapping[str, Rule],
                     layers: Mapping[str, Layer]) -> list[ErrorDetail]:
    """An exception must waive known rules, each waivable, and a team may waive only its own."""
    out = []
    for i, w in enumerate(pf.exceptions):
        for k, rid in enumerate(w.waives):
            loc: Loc = ("exceptions", i, "waives", k)
            if loc not in sm.lines:
                loc = ("exceptions", i, "waives")
            rule = rules.get(rid)
            if rule is None:
                out.append(_detail(sm, loc, f"exception {w.id!r} waives unknown rule {rid!r}"))
            elif not rule.waivable:
                out.append(_detail(sm, loc, f"rule {rid!r} is marked waivable: false; no "
                                             f"exception may waive it ({w.id!r} tries)"))
            elif pf.layer == "team" and layers.get(rid, "organisation") != "team":
                out.append(_detail(sm, loc, f"a team's exception may waive only team rules; "
                                             f"{rid!r} is the organisation's"))
    return out


def load_policies(*paths: str | Path) -> PolicySet:
    """Load policy files and/or directory trees into one PolicySet.

    A directory is walked to any depth; every ``*.yaml``/``*.yml`` file in it (suffix in any
    case) is loaded, other files are listed in ``PolicySet.skipped`` for the caller to show.
    No paths give the empty policy set (named ``empty``): every job may run anywhere, except
    what is held for unknown facts. A directory holding no policy file is an error.

    Raises:
        PolicyError: with every problem found in every file, each naming file, line and field.
    """
    files, skipped, problems = yaml_files(paths)
    files.sort(key=str)
    docs: list[tuple[PolicyFile, SourceMap]] = []
    for f in files:
        try:
            docs.append(_read(f))
        except PolicyError as exc:
            problems.extend(exc.details)
    if problems:
        raise PolicyError(problems)
    merged = merge(docs)
    return merged.model_copy(update={"skipped": tuple(skipped)}) if skipped else merged


def _canonical_match(m: Match) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tags": {k: sorted(set(v)) for k, v in sorted(m.tags.items())},
        "labels": {k: sorted(set(v)) for k, v in sorted(m.labels.items())},
        "jobs": sorted(set(m.jobs)),
    }
    for extra in ("images", "commands"):
        if getattr(m, extra):
            out[extra] = sorted(set(getattr(m, extra)))
    return out


def _canonical_rule(rule: Rule, layer: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rule.id,
        "effect": rule.effect,
        "match": _canonical_match(rule.match),
        "sites": sorted(set(rule.sites)),
        "message": rule.message,
        "penalty": rule.penalty,
    }
    # Only what differs from the defaults, so a policy written before these fields existed
    # keeps its hash.
    extras = {"mode": "enforce", "waivable": True, "max_usd_per_job": None,
              "max_usd_per_hour": None, "budget": None, "on_excess": "deny"}
    for key, default in extras.items():
        value = getattr(rule, key)
        if value != default:
            out[key] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    if layer != "organisation":
        out["layer"] = layer
    return out


def canonical_form(ps: PolicySet) -> dict[str, Any]:
    """The content of a policy set in a form independent of rule, pattern and file order.

    Names, descriptions, sources, origins and tests are left out: they do not change a
    decision, and splitting the same rules differently across files gives the same policy.
    """
    out: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "required_tags": sorted(set(ps.required_tags)),
        "locations": {name: _canonical_set(ls) for name, ls in sorted(ps.locations.items())},
        "rules": [_canonical_rule(r, ps.layer(r.id))
                  for r in sorted(ps.rules, key=lambda r: r.id)],
    }
    if ps.defaults:
        out["defaults"] = {k: v.model_dump(mode="json") for k, v in sorted(ps.defaults.items())}
    if set(ps.required_by_layer) - {"organisation"}:
        out["required_by_layer"] = {k: sorted(set(v)) for k, v in
                                    sorted(ps.required_by_layer.items())}
    for section in ("tagging", "transforms", "exceptions"):
        items = getattr(ps, section)
        if items:
            out[section] = [
                {**_sorted_lists(i.model_dump(mode="json")), "layer": ps.layer(i.id)}
                for i in sorted(items, key=lambda i: i.id)]
    return out


def _sorted_lists(value: Any) -> Any:
    """Lists of patterns or values sorted and de-duplicated: in tagging rules, transforms and
    exceptions every list is a set (globs, sites, values, rule ids), so its order is not
    content."""
    if isinstance(value, dict):
        return {k: _sorted_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_sorted_lists(v) for v in value]
        if all(isinstance(v, str) for v in items):
            return sorted(set(items))
        return items
    return value


def policy_hash(ps: PolicySet) -> str:
    """``sha256:<hex>`` of :func:`canonical_form`: the evidence of which policy decided."""
    text = json.dumps(canonical_form(ps), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
