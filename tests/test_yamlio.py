import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from placer.errors import ConfigError, ErrorDetail
from placer.yamlio import (
    MAX_DEPTH,
    MIN_EXPANSION_LIMIT,
    SourceMap,
    expansion_limit,
    format_loc,
    parse_yaml,
    read_yaml,
)

DOC = """\
name: x
jobs:
  train:
    gpu_types:
      A100: 6h
    inputs:
      - a
      - b
"""


def test_source_map_records_the_line_of_every_key_and_item() -> None:
    data, sm = parse_yaml(DOC, "p.yaml")
    assert data["jobs"]["train"]["inputs"] == ["a", "b"]
    assert sm.line(("name",)) == 1
    assert sm.line(("jobs", "train", "gpu_types", "A100")) == 5
    assert sm.line(("jobs", "train", "inputs", 1)) == 8
    # An unknown deeper path falls back to its nearest known ancestor.
    assert sm.line(("jobs", "train", "inputs", 1, "nope")) == 8


def test_rekey_maps_names_to_list_indices() -> None:
    _, sm = parse_yaml(DOC, "p.yaml")
    sm2 = sm.rekey(("jobs",), ["train"])
    assert sm2.line(("jobs", 0, "gpu_types", "A100")) == 5


def test_syntax_error_names_file_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: 1\nb: [1, 2\nc: 3\n", "bad.yaml")
    [d] = info.value.details
    assert (d.file, d.line) == ("bad.yaml", 3)
    assert d.msg.startswith("invalid YAML: ")


def test_duplicate_keys_are_errors_not_silently_dropped() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml("rules:\n  a: 1\n  a: 2\n", "dup.yaml")
    assert info.value.details == [
        ErrorDetail(
            "duplicate key 'a' (first at line 2); YAML would silently keep only the last one",
            "dup.yaml", 3, "rules.a",
        )
    ]


def test_missing_file_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        read_yaml(tmp_path / "nope.yaml")
    assert info.value.details[0].msg == "file not found"


def test_unsafe_tags_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: !!python/object/apply:os.system ['true']\n", "evil.yaml")
    assert info.value.details[0].line == 1


def test_format_loc() -> None:
    assert format_loc(("jobs", 0, "inputs", 1)) == "jobs[0].inputs[1]"
    assert format_loc(()) == ""


# -- hostile and huge input (issue 9) ----------------------------------------------------------


def billion_laughs(levels: int) -> str:
    """Nine aliases of nine aliases of …: 9**levels strings from a few hundred bytes."""
    out = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    out += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(out) + "\n"


_PARSE = """\
import json, sys
from placer.errors import ConfigError
from placer.yamlio import parse_yaml
try:
    parse_yaml(sys.stdin.read(), "bomb.yaml")
except ConfigError as exc:
    print(json.dumps([[d.file, d.line, d.msg] for d in exc.details]))
"""


def parse_elsewhere(text: str) -> list[tuple[str, int, str]]:
    """``parse_yaml`` in a child process with a deadline, so that a regression fails the test
    instead of eating the machine's memory (the old code took 1.4 GB and 40 s for 7 levels)."""
    res = subprocess.run([sys.executable, "-c", _PARSE], input=text, capture_output=True,
                         text=True, timeout=60, check=True)
    return [(file, line, msg) for file, line, msg in json.loads(res.stdout or "[]")]


@pytest.mark.parametrize("levels", [7, 9, 40])
def test_an_alias_bomb_is_refused_before_it_expands(levels: int) -> None:
    [(file, line, msg)] = parse_elsewhere(billion_laughs(levels))
    assert (file, line) == ("bomb.yaml", levels + 1)  # the alias that stands for the most
    assert msg.startswith("aliases expand this document to ")
    assert f"over the limit of {MIN_EXPANSION_LIMIT:,}" in msg and "billion laughs" in msg


def test_a_merge_key_bomb_is_refused_too() -> None:
    out = ["m0: &m0 {k: v}"]
    out += [f"m{i}: &m{i}\n  <<: [" + ", ".join([f"*m{i - 1}"] * 9) + "]" for i in range(1, 10)]
    [(_, line, msg)] = parse_elsewhere("\n".join(out) + "\n")
    assert line == 19 and msg.startswith("aliases expand this document to ")


def test_the_cli_refuses_a_bomb_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    """In a fresh process with a deadline: the old code took minutes and gigabytes here."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("apiVersion: placer/v1\nkind: Pipeline\n" + billion_laughs(9))
    deep = tmp_path / "deep.yaml"
    deep.write_text("kind: Pipeline\njobs: " + "[" * 100_000 + "]" * 100_000 + "\n")
    for args, path, line in (
        (["validate"], bomb, 12), (["plan"], bomb, 12), (["validate"], deep, 2),
    ):
        res = subprocess.run([sys.executable, "-m", "placer", *args, str(path)],
                             capture_output=True, text=True, timeout=120, check=False)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr
        assert f"error: {path}:{line}: " in res.stderr


@pytest.mark.parametrize(
    "text",
    [
        "[" * 900 + "]" * 900,
        "[" * 100_000 + "]" * 100_000,
        "{a: " * 100_000 + "1" + "}" * 100_000,
        "".join("  " * i + "- \n" for i in range(900)),
        "".join("  " * i + f"k{i}:\n" for i in range(900)),
    ],
    ids=["flow-list-900", "flow-list-100k", "flow-map-100k", "block-list-900", "block-map-900"],
)
def test_nesting_past_the_bound_is_refused_not_a_recursion_error(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "deep.yaml")
    [d] = info.value.details
    assert d.file == "deep.yaml" and d.line is not None
    assert d.msg.startswith(f"mappings and lists are nested deeper than {MAX_DEPTH} levels")


def test_nesting_up_to_the_bound_is_fine() -> None:
    data, _ = parse_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH, "ok.yaml")
    for _ in range(MAX_DEPTH - 1):
        data = data[0]
    assert data == []


def test_an_alias_that_deepens_past_the_bound_is_refused() -> None:
    text = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    with pytest.raises(ConfigError, match=f"alias \\*a nests the document deeper than {MAX_DEPTH}"):
        parse_yaml(text, "deep.yaml")


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: &a\n  b: [1, *a]\n", "loop.yaml")
    assert info.value.details[0].line == 2
    assert "recursive structure" in info.value.details[0].msg


def test_the_expansion_bound_grows_with_the_document() -> None:
    """Aliases may multiply a big document's nodes tenfold, a small one's up to a million."""
    assert expansion_limit(10) == MIN_EXPANSION_LIMIT
    assert expansion_limit(300_000) == 3_000_000
    # 150,000 uses of a 10-node anchor: 1.5 M nodes, past the floor but within 10 x its own.
    text = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [" + "*a, " * 150_000 + "]\n"
    data, _ = parse_yaml(text, "many.yaml")
    assert len(data["b"]) == 150_000 and data["b"][-1] is data["a"]
    # The same anchor used that often from a small document is refused.
    few = "a: &a [" + ", ".join(map(str, range(2_000))) + "]\nb: [" + "*a, " * 600 + "]\n"
    with pytest.raises(ConfigError, match="aliases expand this document"):
        parse_yaml(few, "few.yaml")


def test_merge_keys_still_work_and_their_lines_map() -> None:
    text = """\
jobs:
  base: &defaults
    command: python x.py
    gpu_types: {T4: 1h}
  train:
    <<: *defaults
    command: python train.py
  eval:
    <<: [*defaults, {spot: true}]
"""
    data, sm = parse_yaml(text, "p.yaml")
    assert data == yaml.safe_load(text)
    assert data["jobs"]["train"] == {"command": "python train.py", "gpu_types": {"T4": "1h"}}
    assert data["jobs"]["train"]["gpu_types"] is data["jobs"]["base"]["gpu_types"]
    assert data["jobs"]["eval"]["spot"] is True
    assert sm.line(("jobs", "train", "command")) == 7
    assert sm.line(("jobs", "train", "<<")) == 6
    # Below an alias, lines are those of the anchored node, as the old two-pass parser had them.
    assert sm.line(("jobs", "train", "<<", "gpu_types", "T4")) == 4
    assert sm.line(("jobs", "eval", "<<", 1, "spot")) == 9
    sm2 = sm.rekey(("jobs",), list(data["jobs"]))
    assert sm2.line(("jobs", 1, "command")) == 7
    assert sm2.line(("jobs", 2, "spot")) == 8  # merged in: the job's own line


def test_duplicate_keys_inside_an_anchor_are_reported_where_it_is_used_too() -> None:
    text = "a:\n  b: 1\n  b: 2\nc: &c {d: 1, d: 2}\ne: *c\ng: {h: 1, h: 2}\n"
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "dup.yaml")
    assert [(d.line, d.field) for d in info.value.details] == [
        (3, "a.b"), (4, "c.d"), (4, "e.d"), (6, "g.h"),
    ]


def test_a_key_repeated_in_two_repeated_mappings_is_not_a_duplicate_of_its_own() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: {x: 1}\na: {x: 2, y: 3}\n", "dup.yaml")
    assert [d.field for d in info.value.details] == ["a"]


def test_more_than_one_document_is_still_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: 1\n---\nb: 2\n", "two.yaml")
    [d] = info.value.details
    assert d.line == 2 and "expected a single document" in d.msg


@pytest.mark.parametrize(
    ("text", "line"),
    [("a: 1\nb: !!int abc\n", 2), ("when: 2020-13-45\n", 1), ("n: " + "9" * 5000 + "\n", 1)],
)
def test_values_pyyaml_crashes_on_are_errors_with_a_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "v.yaml")
    [d] = info.value.details
    assert d.line == line and d.msg.startswith("invalid YAML: cannot read ")


_SCALARS = (
    st.none() | st.booleans() | st.integers()
    | st.floats(allow_nan=False) | st.text(max_size=20)
)
# Keys of one type per mapping: duplicate keys are found by their text (as before), so
# {"1": …, 1: …} is refused where safe_load would have taken it.
_DATA = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    | st.dictionaries(st.integers(), inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_DATA, st.booleans())
def test_what_safe_dump_writes_parses_back_to_the_same_data(data: object, flow: bool) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow)
    assert parse_yaml(text, "x.yaml")[0] == data


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=5), _SCALARS, max_size=4), min_size=1,
                max_size=4), st.lists(st.integers(0, 3), max_size=8))
def test_shared_objects_come_back_as_aliases_like_safe_load(
    parts: list[dict[str, object]], uses: list[int]
) -> None:
    """``safe_dump`` writes a shared object once with an anchor and then aliases it."""
    data = {"parts": parts, "uses": [parts[i % len(parts)] for i in uses],
            "merged": [{"<<": parts[i % len(parts)]} for i in uses]}
    text = yaml.safe_dump(data)
    text = text.replace("'<<':", "<<:")  # make them real merge keys
    assert parse_yaml(text, "x.yaml")[0] == yaml.safe_load(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4, unique=True),
       st.lists(st.tuples(st.sampled_from(["jobs", "x"]), st.integers(-1, 4),
                          st.sampled_from(["k", "m", "a"])), max_size=10))
def test_a_lazy_rekey_finds_the_lines_the_materialised_one_has(
    names: list[str], probes: list[tuple[str, int, str]]
) -> None:
    text = "jobs:\n" + "".join(f"  {n}:\n    k: 1\n    m: [1, 2]\n" for n in names) + "x: 1\n"
    _, sm = parse_yaml(text, "p.yaml")
    lazy = sm.rekey(("jobs",), names).rekey(("x",), [])
    eager = sm.rekey(("jobs",), names).rekey(("x",), [])
    eager = SourceMap(eager.file, eager.lines)  # reading .lines applies the rekeys
    for top, i, k in probes:
        for loc in ((top, i, k), (top, i), (top, names[i % len(names)], k)):
            assert lazy.line(loc) == eager.line(loc)
    assert lazy.lines == eager.lines and lazy == eager
    assert eager.lines[("jobs", len(names) - 1, "m", 1)] == 3 * len(names) + 1


def test_without_libyaml_the_pure_python_parser_gives_the_same_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import placer.yamlio

    text = DOC + "base: &b {x: 1, y: [1, 2]}\nuse:\n  <<: *b\n  y: 3\nlist: [*b, *b]\n"
    with_c = parse_yaml(text, "p.yaml")
    monkeypatch.setattr(placer.yamlio, "_LOADER", yaml.SafeLoader)
    data, sm = parse_yaml(text, "p.yaml")
    assert (data, sm.lines) == (with_c[0], with_c[1].lines)
    for bad in ("[" * 100_000, billion_laughs(9), "a: [1, 2\nb: 3\n"):
        with pytest.raises(ConfigError):
            parse_yaml(bad, "bad.yaml")


def test_the_garbage_collector_is_left_as_it_was() -> None:
    """Parsing pauses the collector; it must come back on (or stay off), and objects an
    application froze before a fork must stay frozen."""
    import gc

    assert gc.isenabled()
    parse_yaml(DOC, "p.yaml")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        parse_yaml(DOC, "p.yaml")
        assert not gc.isenabled()
    finally:
        gc.enable()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        parse_yaml(DOC, "p.yaml")
        assert gc.get_freeze_count() == frozen > 0
    finally:
        gc.unfreeze()


def test_fields_at_steps_through_models_lists_and_mappings() -> None:
    from placer.models import Pipeline
    from placer.policy import PolicyFile
    from placer.yamlio import fields_at

    assert "gpu_types" in fields_at(Pipeline, ("jobs", 3))
    assert fields_at(Pipeline, ("jobs", 3, "resources")) == ["gpus", "cpus", "memory"]
    assert "apiVersion" in fields_at(PolicyFile, ())  # as written: the alias
    assert "exclude" in fields_at(PolicyFile, ("locations", "eea"))
    assert fields_at(Pipeline, ("jobs", 3, "gpu_types")) == []  # a mapping of names, no model


def test_find_yaml_files_walks_folders_once_each_through_symlinks(tmp_path: Path) -> None:
    from placer.yamlio import find_yaml_files

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.YML").write_text("{}")
    (tmp_path / "a" / "y.yaml").write_text("{}")
    (tmp_path / "a" / "z.txt").write_text("")
    (tmp_path / "a" / "b" / "loop").symlink_to(tmp_path / "a")
    files, skipped, problems = find_yaml_files([tmp_path, tmp_path / "a" / "y.yaml"])
    assert files == [tmp_path / "a" / "y.yaml", tmp_path / "a" / "b" / "x.YML"]
    assert skipped == [str(tmp_path / "a" / "z.txt")]
    assert problems == []
    (tmp_path / "empty").mkdir()
    _, _, problems = find_yaml_files([tmp_path / "empty", tmp_path / "nope"])
    assert problems == [
        ErrorDetail("no YAML files (*.yaml, *.yml) in this folder or below it",
                    str(tmp_path / "empty")),
        ErrorDetail("file or folder not found", str(tmp_path / "nope")),
    ]
