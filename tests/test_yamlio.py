import pytest

from placer.errors import ConfigError, ErrorDetail
from placer.yamlio import format_loc, parse_yaml, read_yaml

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
