"""Loading policy files: every error names file, line and field; merging; the content hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from placer.errors import ConfigError, ErrorDetail, PolicyError
from placer.policy import PolicySet, load_policies, policy_hash
from tests.policy.policy_builders import HEADER, write

GOOD = (
    HEADER
    + """\
name: good
description: a small valid policy
required_tags: [residency]
locations:
  eea:
    include: ["jurisdiction:EEA", "aws:eu-*"]
    exclude: ["aws:eu-west-2"]
  onprem: ["onprem:*"]
rules:
  - id: eu-stays
    effect: require
    match: {tags: {residency: EU}}
    sites: eea
    message: EU data stays in the EEA.
  - id: prefer-onprem
    effect: prefer
    match: {}
    sites: [onprem, "site:gpu-*"]
    penalty: $25
    message: Use our own GPUs first.
"""
)


def test_loads_a_valid_file(tmp_path: Path) -> None:
    ps = load_policies(write(tmp_path, "good.yaml", GOOD))
    assert ps.name == "good"
    assert ps.required_tags == ("residency",)
    assert [r.id for r in ps.rules] == ["eu-stays", "prefer-onprem"]
    assert ps.locations["onprem"].include == ("onprem:*",)
    assert ps.locations["eea"].exclude == ("aws:eu-west-2",)
    assert ps.rule("eu-stays").sites == ("eea",)
    assert ps.rule("prefer-onprem").penalty == 25.0
    assert ps.sources == (str(tmp_path / "good.yaml"),)
    assert ps.origins == {
        "eu-stays": f"{tmp_path / 'good.yaml'}:12",
        "prefer-onprem": f"{tmp_path / 'good.yaml'}:17",
    }


def test_no_paths_give_the_empty_policy_set_and_an_empty_directory_is_an_error(
    tmp_path: Path,
) -> None:
    assert load_policies() == PolicySet()
    (tmp_path / "README.md").write_text("rules live elsewhere")
    with pytest.raises(PolicyError) as info:
        load_policies(tmp_path)
    assert _details(info) == [ErrorDetail(
        "no policy files (*.yaml, *.yml) in this directory or below it; an empty policy folder "
        "would allow every job everywhere", str(tmp_path))]


def _details(exc: pytest.ExceptionInfo[PolicyError]) -> list[ErrorDetail]:
    assert isinstance(exc.value, ConfigError)
    assert isinstance(exc.value, ValueError)
    return exc.value.details


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    f = write(tmp_path, "p.yaml", HEADER + "name: x\nrules:\n  - id: a\n    effect: [forbid\n")
    with pytest.raises(PolicyError) as exc:
        load_policies(f)
    assert _details(exc) == [
        ErrorDetail(
            msg="invalid YAML: while parsing a flow sequence expected ',' or ']', "
            "but got '<stream end>'",
            file=str(f),
            line=7,
        )
    ]


def test_duplicate_yaml_key_is_an_error_not_a_dropped_rule(tmp_path: Path) -> None:
    f = write(tmp_path, "p.yaml", HEADER + "name: x\nname: y\n")
    with pytest.raises(PolicyError) as exc:
        load_policies(f)
    assert _details(exc) == [
        ErrorDetail(
            msg="duplicate key 'name' (first at line 3); "
            "YAML would silently keep only the last one",
            file=str(f),
            line=4,
            field="name",
        )
    ]


def test_misspelt_field_names_file_line_and_field(tmp_path: Path) -> None:
    text = (
        HEADER
        + """\
name: x
rules:
  - id: a
    efect: forbid
    match: {}
    sites: ["aws:*"]
    message: m
"""
    )
    f = write(tmp_path, "p.yaml", text)
    with pytest.raises(PolicyError) as exc:
        load_policies(f)
    # One mistake, one error: at the misspelt key, naming the field meant.
    assert _details(exc) == [
        ErrorDetail(
            "unknown field; did you mean 'effect'? (effect is required and missing; see "
            "`placer schema`)",
            str(f),
            6,
            "rules[0].efect",
            ("rules", 0, "efect"),
        ),
    ]


def test_bad_effect_value(tmp_path: Path) -> None:
    text = (
        HEADER
        + """\
name: x
rules:
  - id: a
    effect: deny
    match: {}
    sites: ["aws:*"]
    message: m
"""
    )
    f = write(tmp_path, "p.yaml", text)
    with pytest.raises(PolicyError) as exc:
        load_policies(f)
    assert _details(exc) == [
        ErrorDetail(
            "Input should be 'forbid', 'require', 'allow', 'limit' or 'prefer'",
            str(f),
            6,
            "rules[0].effect",
            ("rules", 0, "effect"),
        )
    ]


def test_unknown_location_set(tmp_path: Path) -> None:
    text = (
        HEADER
        + """\
name: x
locations:
  eea: ["jurisdiction:EEA"]
rules:
  - id: a
    effect: require
    match: {}
    sites:
      - eea
      - eu
    message: m
  - id: b
    effect: require
    match: {}
    sites: eu
    message: m
"""
    )
    f = write(tmp_path, "p.yaml", text)
    with pytest.raises(PolicyError) as exc:
        load_policies(f)
    msg = (
        "unknown location set 'eu' (defined: eea); "
        "a site pattern needs a prefix such as aws: or jurisdiction:"
    )
    assert _details(exc) == [
        ErrorDetail(msg, str(f), 12, "rules[0].sites[1]", ("rules", 0, "sites", 1)),
        ErrorDetail(msg, str(f), 17, "rules[1].sites", ("rules", 1, "sites")),
    ]


def test_location_set_defined_in_another_file_is_visible(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", HEADER + 'name: a\nlocations:\n  eea: ["jurisdiction:EEA"]\n')
    write(
        tmp_path,
        "b.yaml",
        HEADER
        + "name: b\nrules:\n  - {id: r, effect: require, match: {}, sites: eea, message: m}\n",
    )
    ps = load_policies(tmp_path)
    assert ps.name == "a+b"
    assert ps.rule("r").sites == ("eea",)


def test_duplicate_rule_id_across_two_files(tmp_path: Path) -> None:
    body = (
        "rules:\n  - id: same\n    effect: forbid\n    match: {}\n    sites: aws:*\n"
        "    message: m\n"
    )
    a = write(tmp_path, "a.yaml", HEADER + "name: a\n" + body)
    b = write(tmp_path, "b.yaml", HEADER + "name: b\ndescription: second\n" + body)
    for args in ((a, b), (b, a), (tmp_path,)):
        with pytest.raises(PolicyError) as exc:
            load_policies(*args)
        assert _details(exc) == [
            ErrorDetail(
                f"duplicate id 'same' (first defined at {a}:5); ids of rules, tagging rules, "
                "transforms and exceptions must be unique across all policy files",
                str(b),
                6,
                "rules[0].id",
                ("rules", 0, "id"),
            )
        ]


def test_same_location_set_twice_must_agree(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        HEADER + 'name: a\nlocations:\n  eea: ["jurisdiction:EEA", "aws:eu-*"]\n',
    )
    write(
        tmp_path,
        "b.yaml",
        HEADER + 'name: b\nlocations:\n  eea: ["aws:eu-*", "jurisdiction:EEA"]\n',
    )
    assert load_policies(tmp_path).locations["eea"].include == ("jurisdiction:EEA", "aws:eu-*")
    c = write(tmp_path, "c.yaml", HEADER + 'name: c\nlocations:\n  eea: ["jurisdiction:EU"]\n')
    with pytest.raises(PolicyError) as exc:
        load_policies(tmp_path)
    assert _details(exc) == [
        ErrorDetail(
            f"location set 'eea' is already defined differently at {tmp_path / 'a.yaml'}:5; "
            "a location-set name means one set across all policy files",
            str(c),
            5,
            "locations.eea",
            ("locations", "eea"),
        )
    ]


def test_bad_patterns_and_penalties(tmp_path: Path) -> None:
    text = (
        HEADER
        + """\
name: x
locations:
  eea:
    - "jurisdiction:EEA"
    - "ibm:eu-de"
  eu:
    include: ["country:germany"]
    exclude: ["jurisdiction:eea"]
rules:
  - id: a
    effect: prefer
    match: {}
    sites: ["provider:oracle", "aws:EU-*", "aws eu"]
    penalty: $5
    message: m
  - id: b
    effect: forbid
    match: {}
    sites: ["site:gpu-*"]
    penalty: $5
    message: m
  - id: c
    effect: prefer
    match: {}
    sites: ["onprem:*"]
    message: m
"""
    )
    f = write(tmp_path, "p.yaml", text)
    with pytest.raises(PolicyError) as exc:
        load_policies(f)

    def d(msg: str, line: int, *loc: str | int) -> ErrorDetail:
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        return ErrorDetail(msg, str(f), line, field, loc)

    assert _details(exc) == [
        d(
            "unknown pattern prefix 'ibm' in 'ibm:eu-de'; expected one of onprem:, aws:, gcp:, "
            "azure:, jurisdiction:, country:, site:, provider:, class:",
            7,
            "locations",
            "eea",
            "include",
            1,
        ),
        d(
            "bad country 'germany' in 'country:germany': write an ISO 3166-1 alpha-2 code, e.g. DE",
            9,
            "locations",
            "eu",
            "include",
            0,
        ),
        d(
            "bad jurisdiction 'eea' in 'jurisdiction:eea': write it in capitals, e.g. EU, EEA, DE",
            10,
            "locations",
            "eu",
            "exclude",
            0,
        ),
        d(
            "unknown provider 'oracle' in 'provider:oracle'; "
            "expected one of onprem, aws, gcp, azure (or a glob such as *)",
            15,
            "rules",
            0,
            "sites",
            0,
        ),
        d(
            "bad region glob 'EU-*' in 'aws:EU-*': use lowercase letters, digits, '.', '_', '-' "
            "and the wildcards * ? [ ]",
            15,
            "rules",
            0,
            "sites",
            1,
        ),
        d(
            "'aws eu' is neither a location-set name nor a site pattern "
            "(patterns look like aws:eu-*, jurisdiction:EU, site:<name>)",
            15,
            "rules",
            0,
            "sites",
            2,
        ),
        d("penalty applies to prefer rules only; a forbid rule is hard", 22, "rules", 1, "penalty"),
        d(
            "a prefer rule needs a positive penalty (USD per job placed outside its sites), "
            "e.g. penalty: $25",
            24,
            "rules",
            2,
            "penalty",
        ),
    ]


def test_hash_is_independent_of_rule_and_pattern_order_but_not_of_content(tmp_path: Path) -> None:
    a = load_policies(write(tmp_path, "a.yaml", GOOD))
    lines = GOOD.splitlines(keepends=True)
    start = lines.index("rules:\n") + 1
    rule1, rule2 = lines[start : start + 5], lines[start + 5 :]
    swapped = "".join(lines[:start] + rule2 + rule1)
    swapped = swapped.replace('"jurisdiction:EEA", "aws:eu-*"', '"aws:eu-*", "jurisdiction:EEA"')
    swapped = swapped.replace("name: good", "name: renamed").replace("a small", "another")
    b = load_policies(write(tmp_path, "b.yaml", swapped))
    assert [r.id for r in b.rules] == ["eu-stays", "prefer-onprem"]
    assert policy_hash(a) == policy_hash(b)
    changed = load_policies(write(tmp_path, "c.yaml", GOOD.replace("$25", "$26")))
    assert policy_hash(changed) != policy_hash(a)
    split = tmp_path / "split"
    split.mkdir()
    write(split, "x.yaml", "".join(lines[:start] + rule1))
    write(split, "y.yaml", HEADER + "name: y\nrules:\n" + "".join(rule2))
    assert policy_hash(load_policies(split)) == policy_hash(a)
