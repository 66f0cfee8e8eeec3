"""Load policy files (errors name file, line and field), merge them, and hash the result.

Files are read in sorted path order whatever order they are given in, so error messages, too,
do not depend on how a user listed them. Merging is a union: rules, location sets and required
tags from every file form one namespace. A rule id may be defined once across all files; a
location-set name may appear in several files only with the same definition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from placer.catalog import Catalog, default_catalog
from placer.errors import ConfigError, ErrorDetail, PolicyError
from placer.policy._model import (
    API_VERSION,
    LocationSet,
    PolicyFile,
    PolicySet,
    Rule,
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


def _pattern_uses(pf: PolicyFile, sm: SourceMap) -> Iterable[tuple[str, Loc]]:
    """Every site pattern a file uses, with the path it is written at."""
    for name, ls in pf.locations.items():
        for part in ("include", "exclude"):
            for k, pat in enumerate(getattr(ls, part)):
                yield pat, ("locations", name, part, k)
    for i, rule in enumerate(pf.rules):
        for k, ref in enumerate(rule.sites):
            if ":" in ref:
                loc: Loc = ("rules", i, "sites", k)
                yield ref, loc if loc in sm.lines else ("rules", i, "sites")


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
        for i, rule in enumerate(pf.rules):
            if rule.id in rules:
                _, psm, j = rules[rule.id]
                where = f"{psm.file}:{psm.line(('rules', j, 'id'))}"
                problems.append(
                    _detail(
                        sm,
                        ("rules", i, "id"),
                        f"duplicate rule id {rule.id!r} (first defined at {where}); "
                        "rule ids must be unique across all policy files",
                    )
                )
                continue
            rules[rule.id] = (rule, sm, i)
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
        for i, rule in enumerate(pf.rules):
            for k, ref in enumerate(rule.sites):
                if ":" not in ref and ref not in known:
                    loc: Loc = ("rules", i, "sites", k)
                    if loc not in sm.lines:  # written as a scalar: `sites: eea`
                        loc = ("rules", i, "sites")
                    problems.append(_detail(sm, loc, unknown_set_message(ref, known)))
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
        locations={name: known[name] for name in sorted(known)},
        rules=tuple(rules[rid][0] for rid in sorted(rules)),
        sources=tuple(sm.file for _, sm in ordered),
        origins={
            rid: f"{sm.file}:{sm.line(('rules', i))}" for rid, (_, sm, i) in sorted(rules.items())
        },
        declared_locations=tuple(declared),
        references=dict(sorted(references.items())),
    )


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


def _canonical_rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "effect": rule.effect,
        "match": {
            "tags": {k: sorted(set(v)) for k, v in sorted(rule.match.tags.items())},
            "labels": {k: sorted(set(v)) for k, v in sorted(rule.match.labels.items())},
            "jobs": sorted(set(rule.match.jobs)),
        },
        "sites": sorted(set(rule.sites)),
        "message": rule.message,
        "penalty": rule.penalty,
    }


def canonical_form(ps: PolicySet) -> dict[str, Any]:
    """The content of a policy set in a form independent of rule, pattern and file order.

    Names, descriptions, sources and origins are left out: they do not change a decision, and
    splitting the same rules differently across files gives the same policy.
    """
    return {
        "apiVersion": API_VERSION,
        "required_tags": sorted(set(ps.required_tags)),
        "locations": {name: _canonical_set(ls) for name, ls in sorted(ps.locations.items())},
        "rules": [_canonical_rule(r) for r in sorted(ps.rules, key=lambda r: r.id)],
    }


def policy_hash(ps: PolicySet) -> str:
    """``sha256:<hex>`` of :func:`canonical_form`: the evidence of which policy decided."""
    text = json.dumps(canonical_form(ps), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
