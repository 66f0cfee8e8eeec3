"""`placer schema` says what the loaders say (issue 14, "honest validation").

Every shipped and example YAML file is valid under the schema `placer schema` prints for its
kind (the quickstart inventory and the policies used to be refused: ``'kind' is a required
property``, ``'EU' is not of type 'array'``), and known-bad snippets are refused by the schema
and the loader alike (``"12 hours"`` used to pass the schema). The quantity patterns accept
exactly the text :mod:`placer.units` reads.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from placer import units
from placer.catalog import inventory_from_data
from placer.cli import app
from placer.errors import PlacerError
from placer.loading import pipeline_from_data
from placer.policy import policy_file_from_data
from placer.yamlio import parse_yaml, strip_header, validate

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_DIRS = ("examples", "policies", "benchmarks/scenarios", "placer/catalog/data",
                "placer/bundled")
KIND_OF = {"Pipeline": "pipeline", "Inventory": "inventory", "PolicySet": "policy",
           "Scenario": "scenario"}


def _shipped() -> list[Path]:
    found = {p.resolve(): p for d in SHIPPED_DIRS for p in sorted((ROOT / d).rglob("*.y*ml"))}
    return sorted(found.values())


@cache
def _schema(kind: str) -> dict[str, Any]:
    """The schema as `placer schema KIND` prints it, i.e. as an editor gets it."""
    res = CliRunner().invoke(app, ["schema", kind])
    assert res.exit_code == 0, res.output
    schema: dict[str, Any] = json.loads(res.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _as_json(data: Any) -> Any:
    """What an editor's YAML-to-JSON gives: dates as text, every mapping key a string."""
    if isinstance(data, dict):
        return {str(k): _as_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_as_json(v) for v in data]
    if isinstance(data, dt.date):
        return data.isoformat()
    return data


def _kind(data: dict[str, Any]) -> str:
    if "kind" in data:
        return KIND_OF[data["kind"]]
    for key, kind in (("jobs", "pipeline"), ("sites", "inventory"), ("workload", "scenario")):
        if key in data:
            return kind
    raise AssertionError(f"no kind: {sorted(data)}")


def _schema_errors(kind: str, data: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(_schema(kind))
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(_as_json(data))]


def test_every_kind_of_shipped_file_is_covered() -> None:
    kinds = {_kind(yaml.safe_load(p.read_text())) for p in _shipped()}
    assert kinds == {"pipeline", "inventory", "policy", "scenario"}
    assert len(_shipped()) >= 15


@pytest.mark.parametrize("path", _shipped(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_file_is_valid_under_its_schema(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    assert _schema_errors(_kind(data), data) == []


def _load(kind: str, text: str) -> None:
    """The loader `placer validate` runs for ``kind`` (PlacerError when it refuses)."""
    data, sm = parse_yaml(text, "snippet.yaml")
    if kind == "pipeline":
        pipeline_from_data(data, sm)
    elif kind == "inventory":
        inventory_from_data(data, sm)
    elif kind == "policy":
        policy_file_from_data(data, sm)
    else:
        from placer.sim.scenario import Scenario

        validate(Scenario, strip_header(data, sm, "Scenario"), sm)


JOB = "    command: x\n    gpu_types: {T4: 1h}\n"
SITE = "  dc:\n    location: onprem:dc1\n    country: DE\n    pools: [{gpu: T4, count: 2, " \
       "cost_per_gpu_hour: 1}]\n"
POLICY = "apiVersion: placer/v1\nkind: PolicySet\nname: p\n"
RULE = "  - id: r\n    effect: forbid\n    match: {tags: {residency: EU}}\n    message: m\n"
SCENARIO = "kind: Scenario\nname: s\nworkload: {trace: 'itp:cluster04'}\nonprem: {nodes: 2}\n"

# (kind, snippet): each refused by the loader AND by the schema.
BAD = {
    "duration in words": ("pipeline", "jobs:\n  a:\n    command: x\n"
                                      "    gpu_types: {T4: 12 hours}\n"),
    "duration without unit": ("pipeline", "jobs:\n  a:\n    command: x\n"
                                          "    gpu_types: {T4: '6'}\n"),
    "size in parsecs": ("pipeline", "datasets:\n  d: {size: 12 parsecs}\njobs:\n  a:\n" + JOB),
    "negative size": ("pipeline", "datasets:\n  d: {size: -5GB}\njobs:\n  a:\n" + JOB),
    "misspelt field": ("pipeline", "jobs:\n  a:\n    command: x\n    gpu_type: {T4: 1h}\n"),
    "no jobs": ("pipeline", "name: p\n"),
    "empty job entry": ("pipeline", "jobs:\n  a:\n"),
    "zero gpus": ("pipeline", "jobs:\n  a:\n" + JOB + "    resources: {gpus: 0}\n"),
    "bad location": ("pipeline", "datasets:\n  d: {location: eu-west}\njobs:\n  a:\n" + JOB),
    "wrong kind": ("pipeline", "kind: Inventory\njobs:\n  a:\n" + JOB),
    "sites as a list": ("inventory", "sites:\n  - name: dc\n    location: onprem:dc1\n"
                                     "    country: DE\n"
                                     "    pools: [{gpu: T4, count: 2, cost_per_gpu_hour: 1}]\n"),
    "price in words": ("inventory", SITE.replace("cost_per_gpu_hour: 1", "cost_per_gpu_hour: "
                                                 "one dollar").join(["sites:\n", ""])),
    "bandwidth in words": ("inventory", "sites:\n" + SITE + "network:\n  - {from: 'onprem:*', "
                                        "to: '*', bandwidth: 10 gigabit}\n"),
    "zero bandwidth": ("inventory", "sites:\n" + SITE + "network:\n  - {from: 'onprem:*', "
                                    "to: '*', bandwidth: 0}\n"),
    "site kind misspelt": ("inventory", "sites:\n" + SITE.replace("    country", "    kind: "
                                        "on-prem\n    country")),
    "policy without kind": ("policy", "apiVersion: placer/v1\nname: p\nrules:\n" + RULE
                                      + "    sites: eea\n"),
    "forbid without sites": ("policy", POLICY + "rules:\n" + RULE),
    "unknown effect": ("policy", POLICY + "rules:\n" + RULE.replace("forbid", "forbidd")
                                 + "    sites: [eea]\n"),
    "sites as a number": ("policy", POLICY + "rules:\n" + RULE + "    sites: 5\n"),
    "scenario strategy as text": ("scenario", SCENARIO + "strategies: some\n"),
    "scenario without onprem": ("scenario", SCENARIO.replace("onprem: {nodes: 2}\n", "")),
}

# Shorthands the loader expands: each accepted by the loader AND by the schema.
GOOD = {
    "keyed jobs, empty dataset entry": ("pipeline", "datasets:\n  d:\njobs:\n  a:\n" + JOB
                                        + "    inputs: [d]\n"),
    "jobs as a list": ("pipeline", "jobs:\n  - name: a\n" + JOB),
    "removes_tags value as text": ("pipeline", "jobs:\n  a:\n" + JOB
                                   + "    removes_tags: {classification: pii}\n"),
    "quantities as text": ("pipeline", "datasets:\n  d: {size: 1.5 TB}\njobs:\n  a:\n"
                           "    command: x\n    gpu_types: {T4: 1h 30m, L4: 90MIN}\n"),
    "site kind inferred": ("inventory", "sites:\n" + SITE + "network:\n  - {from: 'onprem:*', "
                                        "to: '*', bandwidth: 400 Mbps, usd_per_gb: $0.09/GB}\n"),
    "one site, one tag value": ("policy", POLICY + "rules:\n" + RULE + "    sites: eea\n"
                                "locations:\n  eea: [aws:eu-central-1]\n"),
    "limit without sites": ("policy", POLICY + "rules:\n  - id: cap\n    effect: limit\n"
                                      "    match: {}\n    max_usd_per_job: $100\n"
                                      "    message: m\n"),
    "strategies: all": ("scenario", SCENARIO + "strategies: all\n"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_known_bad_snippets_are_refused_by_the_schema_and_the_loader(case: str) -> None:
    kind, text = BAD[case]
    with pytest.raises(PlacerError):
        _load(kind, text)
    assert _schema_errors(kind, yaml.safe_load(text)) != []


@pytest.mark.parametrize("case", sorted(GOOD))
def test_shorthands_are_accepted_by_the_schema_and_the_loader(case: str) -> None:
    kind, text = GOOD[case]
    _load(kind, text)
    assert _schema_errors(kind, yaml.safe_load(text)) == []


def test_quantities_are_typed_with_the_parsers_patterns() -> None:
    job = _schema("pipeline")["$defs"]["Job"]["properties"]["gpu_types"]["additionalProperties"]
    [number, text] = job["anyOf"]
    assert number == {"type": "number", "minimum": 0, "maximum": units.MAX_HOURS}
    assert text["pattern"] == units.DURATION_PATTERN


PARSERS = {
    units.SIZE_PATTERN: units.parse_size,
    units.DURATION_PATTERN: units.parse_duration,
    units.PRICE_PATTERN: units.parse_price,
    units.BANDWIDTH_PATTERN: units.parse_bandwidth,
}
SAMPLES = ["6h", "1h30m", "1h 30m", " 90 MIN ", "12 hours", "6", "1.5TB", "512MiB", "800",
           "$2.50/h", "0.09 USD/GB", "$2/hour", "2.5/hr", "10Gbps", "400 mbps", "1e3h", ".5h",
           "5.h", "h", "", "-5GB", "5 GB/s", "1h30", "3d2w", "$", "2.5 $", "1e400GB"]


def _parses(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except ValueError as exc:
        return "at most" in str(exc)  # the bounds are the loader's, not a pattern's
    return True


@pytest.mark.parametrize("text", SAMPLES)
def test_each_pattern_accepts_what_its_parser_reads(text: str) -> None:
    for pattern, parse in PARSERS.items():
        assert (re.search(pattern, text) is not None) == _parses(parse, text), (pattern, text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.eE+- $/hmsdwinkgtpbiBGMTHusrUSDoa", max_size=10))
def test_patterns_and_parsers_agree_on_any_text(text: str) -> None:
    for pattern, parse in PARSERS.items():
        assert (re.search(pattern, text) is not None) == _parses(parse, text), (pattern, text)


def test_schema_of_an_unknown_kind_is_exit_2() -> None:
    res = CliRunner().invoke(app, ["schema", "nope"])
    assert res.exit_code == 2
    assert "use pipeline, inventory, policy, scenario or plan" in res.stderr
