"""The corpus: every counterexample the hunter ever found, kept as a replayable case.

A corpus file (``tests/hunter/corpus/*.yaml``) is::

    id: short-name
    kind: run            # run (fake backends), storage (moto_server), or a language property:
                         # shuffle, expiry, team, audit, lookalike (language.py)
    source: where it came from (an issue reproducer, or the test and date that found it)
    note: what it broke, in words
    expect: refused      # optional: the case must be refused loudly (a PlacerError)
    status: open         # optional: a hole placer still has (known.py); replayed as a strict
    hole: name           #   xfail until it is fixed
    attribution: [...]   # optional: which repair made the failure go away when it was found
    case: {pipeline, inventory, policies, truth, faults, day, variant, judge}
                         # see strategies.py; day/variant/judge only where a property needs them

``pipeline``/``inventory`` may be raw YAML text instead of a mapping (hostile YAML).
Counterexamples found by a property test are saved automatically (``save_found``) into
``$HUNTER_CORPUS_DIR`` (default: this folder), named by a hash of the case, so a rerun that
finds the same case writes the same file.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.hunter.harness import Outcome, dump_yaml, hunt
from tests.hunter.oracle import meanings

CORPUS = Path(__file__).resolve().parent / "corpus"


def corpus_dir() -> Path:
    return Path(os.environ.get("HUNTER_CORPUS_DIR", CORPUS))


def load_corpus(folder: Path = CORPUS) -> list[tuple[Path, dict[str, Any]]]:
    return [(p, yaml.safe_load(p.read_text(encoding="utf-8")))
            for p in sorted(folder.glob("*.yaml"))]


def corpus_params(*kinds: str, refused: bool = False, folder: Path = CORPUS) -> list[Any]:
    """pytest params ``(path, doc)`` of the corpus cases of these kinds (only those that must be
    refused, with ``refused``); an open hole (``status: open``) is a strict xfail."""
    import pytest

    out = []
    for p, doc in load_corpus(folder):
        if doc["kind"] not in kinds or (refused and doc.get("expect") != "refused"):
            continue
        marks = [pytest.mark.xfail(strict=True, reason=f"open hole {doc.get('hole')}: "
                                   f"{doc.get('note')}")] if doc.get("status") == "open" else []
        out.append(pytest.param(p, doc, id=p.stem, marks=marks))
    return out


def case_hash(case: Mapping[str, Any]) -> str:
    text = json.dumps(case, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


# -- attribution: which repair makes a counterexample pass ---------------------------------------
def _flat_policies(case: dict[str, Any]) -> dict[str, Any]:
    """Every policy file at the top of the folder, named ``*.yaml`` in lower case."""
    tree = {}
    for rel, doc in case["policies"].items():
        if isinstance(doc, str):
            continue
        stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        tree[f"{stem}.yaml"] = doc
    case["policies"] = tree
    return case


def _truthful_patterns(case: dict[str, Any]) -> dict[str, Any]:
    """Rules and location sets written with the patterns the truth meant (no typos)."""
    truth = case["truth"]
    rules = {r["id"]: r for r in truth.get("rules", ())}
    for doc in case["policies"].values():
        if isinstance(doc, str):
            continue
        for r in doc.get("rules", ()):
            if r["id"] in rules:
                r["sites"] = list(rules[r["id"]]["sites"])
        for name, ls in doc.get("locations", {}).items():
            t = truth["locations"][name]
            ls["include"] = list(t["include"])
            if t.get("exclude"):
                ls["exclude"] = list(t["exclude"])
    return case


def _truthful_tags(case: dict[str, Any]) -> dict[str, Any]:
    """Dataset tags and job labels spelt exactly as the truth says (empty stays empty)."""
    truth = case["truth"]
    for name, spec in case["pipeline"].get("datasets", {}).items():
        tags = truth["datasets"][name]["tags"]
        if tags:
            spec["tags"] = {k: ("" if v is None else v) for k, v in tags.items()}
        else:
            spec.pop("tags", None)
    for name, spec in case["pipeline"].get("jobs", {}).items():
        labels = truth["jobs"][name].get("labels") or {}
        if labels:
            spec["labels"] = dict(labels)
    rules = {r["id"]: r for r in truth.get("rules", ())}
    for doc in case["policies"].values():
        for r in doc.get("rules", ()) if not isinstance(doc, str) else ():
            t = rules.get(r["id"], {}).get("match", {})
            for part in ("tags", "labels"):
                if t.get(part):
                    r["match"][part] = {k: list(v) for k, v in t[part].items()}
    return case


def _no_empty_tags(case: dict[str, Any]) -> dict[str, Any]:
    """Tags written with an empty value left out, as the truth means them."""
    truth = case["truth"]
    for name, spec in case["pipeline"].get("datasets", {}).items():
        empty = [k for k, v in truth["datasets"][name]["tags"].items() if v is None]
        tags = spec.get("tags", {})
        for k in list(tags):
            if tags[k].strip() == "" or any(k.strip().casefold() == e for e in empty):
                del tags[k]
    return case


def _no_faults(case: dict[str, Any]) -> dict[str, Any]:
    case["faults"] = {"mover": (case.get("faults") or {}).get("mover", True)}
    return case


def _one_driver(case: dict[str, Any]) -> dict[str, Any]:
    case.setdefault("faults", {})["drivers"] = 1
    return case


REPAIRS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "policy-layout": ("policy files in sub-folders or with .YML/.yml/.YAML suffixes",
                      _flat_policies),
    "region-typo": ("a rule or location set naming a misspelt region", _truthful_patterns),
    "tag-spelling": ("tag values/keys (datasets, labels, rule matches) spelt with case, width, "
                     "spaces, look-alikes or invisible characters", _truthful_tags),
    "empty-tag": ("a required tag written with an empty value", _no_empty_tags),
    "two-drivers": ("two executors driving one run", _one_driver),
    "faults": ("faults during the run (site loss, retries, crashes and resume)", _no_faults),
}


def ambiguous_names(case: Mapping[str, Any]) -> list[str]:
    truth = case["truth"]
    return sorted({ref for spec in truth["jobs"].values() for ref in spec["inputs"]
                   if len(meanings(ref, truth)) > 1})


def _passes(case: Mapping[str, Any], repairs: list[str]) -> bool:
    fixed = copy.deepcopy(dict(case))
    for key in repairs:
        fixed = REPAIRS[key][1](fixed)
    with tempfile.TemporaryDirectory() as d:
        try:
            return not hunt(fixed, Path(d)).counterexample
        except Exception:
            return False


CAUSES = ("policy-layout", "region-typo", "tag-spelling", "empty-tag")
EXPOSURES = ("two-drivers", "faults")


def attribute(case: Mapping[str, Any], outcome: Outcome | None = None) -> list[str]:
    """What a counterexample needs: the causes (``REPAIRS``) whose repair makes it pass, alone
    or only together; whether an input name means two things; and whether it shows only under
    faults. ``unexplained`` means no repair helps: a new kind of hole (or a hunter bug) worth
    reading closely."""
    out = []
    amb = ambiguous_names(case)
    if amb:
        out.append(f"ambiguous-name: input names that mean two things: {', '.join(amb)}")
    if outcome is not None and outcome.drift:
        out.append("journal-drift: the journal's copy of the run differs from what was "
                   f"planned ({outcome.drift[0]})")
    applicable = [k for k in CAUSES if REPAIRS[k][1](copy.deepcopy(dict(case))) != case]
    single = [k for k in applicable if _passes(case, [k])]
    if single:
        out += [f"{k}: passes without {REPAIRS[k][0]}" for k in single]
    elif applicable and _passes(case, applicable):
        needed = [k for k in applicable
                  if not _passes(case, [a for a in applicable if a != k])]
        out += [f"{k}: passes only without all of {', '.join(needed)} ({REPAIRS[k][0]})"
                for k in needed]
    elif not out and not (outcome is not None and outcome.unexpected):
        out.append("unexplained: no repair of a known cause makes it pass")
    for k in EXPOSURES:
        if REPAIRS[k][1](copy.deepcopy(dict(case))) != case and _passes(case, [k]):
            out.append(f"{k}: shows only with {REPAIRS[k][0]}")
    return out


def save_found(case: Mapping[str, Any], outcome: Outcome, test: str,
               kind: str = "run", folder: Path | None = None) -> Path:
    """Write a counterexample into the corpus (idempotent: named by the case's hash)."""
    folder = folder or corpus_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"found-{case_hash(case)}.yaml"
    if path.exists():
        return path
    attribution = attribute(case, outcome) if kind == "run" else []
    doc = {
        "id": path.stem,
        "kind": kind,
        "source": f"found by {test} on {datetime.date.today().isoformat()}",
        "note": outcome.summary(),
        "attribution": attribution,
        "report": outcome.report().splitlines()[:30],
        "case": dict(case),
    }
    path.write_text(dump_yaml(doc, ascii_only=True), encoding="utf-8")
    return path
