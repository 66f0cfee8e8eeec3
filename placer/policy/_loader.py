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

from placer.errors import ConfigError, ErrorDetail, PolicyError
from placer.policy._model import (
    API_VERSION,
    LocationSet,
    PolicyFile,
    PolicySet,
    Rule,
    unknown_set_message,
)
from placer.yamlio import Loc, SourceMap, format_loc, read_yaml, validate

POLICY_SUFFIXES = (".yaml", ".yml")


def _files(paths: Iterable[str | Path]) -> tuple[list[Path], list[ErrorDetail]]:
    found: dict[Path, Path] = {}
    problems: list[ErrorDetail] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(p.iterdir()):
                if f.is_file() and f.suffix in POLICY_SUFFIXES:
                    found.setdefault(f.resolve(), f)
        elif p.is_file():
            found.setdefault(p.resolve(), p)
        else:
            problems.append(ErrorDetail("policy file or directory not found", str(p)))
    return sorted(found.values(), key=str), problems


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


def merge(docs: Iterable[tuple[PolicyFile, SourceMap]]) -> PolicySet:
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
    )


def load_policies(*paths: str | Path) -> PolicySet:
    """Load policy files and/or directories (their ``*.yaml``/``*.yml``) into one PolicySet.

    No paths, or only empty directories, give the empty policy set (named ``empty``): every
    job may run anywhere, except what is held for unknown facts.

    Raises:
        PolicyError: with every problem found in every file, each naming file, line and field.
    """
    files, problems = _files(paths)
    docs: list[tuple[PolicyFile, SourceMap]] = []
    for f in files:
        try:
            docs.append(_read(f))
        except PolicyError as exc:
            problems.extend(exc.details)
    if problems:
        raise PolicyError(problems)
    return merge(docs)


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
