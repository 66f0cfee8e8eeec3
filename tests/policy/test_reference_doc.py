"""Every `yaml` block of docs/policy-reference.md runs: a policy loads and its inline tests pass
and exercise every rule; an inventory loads; a block marked ``<!-- error: … -->`` is refused
with that message. And every feature of the language has an example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import placer
from placer.errors import ConfigError
from placer.policy import load_policies, run_policy_tests

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "policy-reference.md"
_BLOCK = re.compile(r"(?:<!-- error: (?P<error>.*?) -->\n)?```yaml\n(?P<body>.*?)```", re.S)


def blocks() -> list[tuple[int, str, str | None]]:
    text = DOC.read_text(encoding="utf-8")
    return [(text[:m.start()].count("\n") + 1, m["body"], m["error"])
            for m in _BLOCK.finditer(text)]


def _write(tmp_path: Path, line: int, body: str) -> list[Path]:
    paths = []
    for i, doc in enumerate(body.split("\n---\n")):
        p = tmp_path / f"block-{line}-{i}.yaml"
        p.write_text(doc, encoding="utf-8")
        paths.append(p)
    return paths


def test_the_page_has_its_examples() -> None:
    found = blocks()
    assert len(found) >= 20
    assert sum(1 for _, _, error in found if error) == 6


@pytest.mark.parametrize(("line", "body", "error"), blocks(),
                         ids=[f"line-{b[0]}" for b in blocks()])
def test_every_block_runs(tmp_path: Path, line: int, body: str, error: str | None) -> None:
    paths = _write(tmp_path, line, body)
    if error is not None:
        with pytest.raises(ConfigError) as exc:
            load_policies(*paths)
        assert len(exc.value.details) == 1, str(exc.value)
        assert error in str(exc.value)
        return
    if "kind: Inventory" in body:
        placer.load_inventory(paths[0])
        return
    ps = load_policies(*paths)
    report = run_policy_tests(ps)
    assert report.results, f"the example at line {line} has no tests"
    assert report.ok, "\n".join(r.title + "\n" + r.diff() for r in report.results
                                if not r.passed)
    assert report.unexercised == (), [str(u) for u in report.unexercised]


def test_every_feature_has_an_example() -> None:
    docs = [d for _, body, error in blocks() if error is None
            for d in (yaml.safe_load(x) for x in body.split("\n---\n"))
            if d.get("kind") == "PolicySet"]
    rules = [r for d in docs for r in d.get("rules", ())]
    assert {r["effect"] for r in rules} == {"forbid", "require", "allow", "limit", "prefer"}
    assert {r.get("mode", "enforce") for r in rules} == {"enforce", "audit", "warn"}
    assert any(r.get("waivable") is False for r in rules)
    assert {k for r in rules for k in ("max_usd_per_job", "max_usd_per_hour", "budget",
                                       "on_excess") if k in r} == {
        "max_usd_per_job", "max_usd_per_hour", "budget", "on_excess"}
    assert {k for r in rules for k in r["match"]} >= {"tags", "labels", "images"}
    for key in ("defaults", "layer", "required_tags", "locations", "declared_locations",
                "tagging", "transforms", "exceptions", "tests"):
        assert any(key in d for d in docs), key
    assert any(d.get("layer") == "team" for d in docs)
    patterns = {p.split(":")[0] for r in rules for p in r.get("sites", ()) if ":" in p} | {
        p.split(":")[0] for d in docs for s in d.get("locations", {}).values()
        for p in (s if isinstance(s, list) else [*s["include"], *s.get("exclude", [])])}
    assert {"jurisdiction", "country", "provider", "class", "aws"} <= patterns
    tests = [t for d in docs for t in d.get("tests", ())]
    assert any("now" in t for t in tests)
    fields = {f for t in tests for e in t["expect"].values() for f in e}
    assert fields == {"decision", "allowed", "rejected", "audit", "waived", "limits",
                      "penalties", "removed"}
    assert {e["decision"] for t in tests for e in t["expect"].values() if "decision" in e} == {
        "eligible", "held", "no-site"}
