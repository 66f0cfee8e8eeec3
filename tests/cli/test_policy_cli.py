"""``placer policy test`` and ``placer policy lint`` as CI meets them: exit codes, diffs, JUnit
XML, and one clear error (file, line, field) for each kind of malformed policy."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from placer.cli import app

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
runner = CliRunner()


def run(*args: str | Path):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


def _copy(tmp_path: Path) -> Path:
    dest = tmp_path / "policies"
    shutil.copytree(POLICIES, dest)
    return dest


def test_the_policy_commands_share_one_sub_app() -> None:
    res = run("policy", "--help")
    assert res.exit_code == 0
    for command in ("test", "lint", "diff"):
        assert command in res.stdout


def test_the_shipped_policies_pass_their_tests(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the default path is policies/
    junit = tmp_path / "junit.xml"
    res = run("policy", "test", "--junit", junit, "--require-coverage")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == "15 passed, 0 failed (15 tests)"
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("15", "0", "0")
    verbose = run("policy", "test", POLICIES, "-v")
    assert verbose.stdout.count("PASS  ") == 15


def test_a_changed_expectation_fails_with_a_readable_diff(tmp_path: Path) -> None:
    pols = _copy(tmp_path)
    f = pols / "eea-residency.yaml"
    text = f.read_text()
    f.write_text(text.replace("          aws-va: [eu-data-stays-in-eea]\n", "", 1))
    junit = tmp_path / "junit.xml"
    res = run("policy", "test", pols, "--junit", junit)
    assert res.exit_code == 1, res.output
    lines = res.stdout.splitlines()
    at = lines.index(f"FAIL  {f}:26: eea-residency › EU data runs in EEA regions, not in "
                     "London, Zurich or Virginia")
    assert lines[at + 1:at + 5] == [
        "  job 'train', rejected (line 43):",
        "    - expected  aws-va: (none)",
        "    + got       aws-va: eu-data-stays-in-eea",
        "      why: eu-data-stays-in-eea: Data tagged residency=EU, and anything derived from "
        "it, may be processed only in the EEA: transfers to third countries are restricted by "
        "GDPR Chapter V (Art. 44-50).",
    ]
    assert lines[-2] == "14 passed, 1 failed (15 tests)"
    failure = ET.parse(junit).getroot().find(".//failure")
    assert failure is not None and "+ got       aws-va: eu-data-stays-in-eea" in str(failure.text)


def test_rules_no_test_exercised_warn_and_fail_with_require_coverage(tmp_path: Path) -> None:
    pols = _copy(tmp_path)
    (pols / "extra.yaml").write_text(
        "apiVersion: placer/v1\nkind: PolicySet\nname: extra\nrules:\n"
        "  - {id: untested, effect: forbid, match: {tags: {k: v}}, sites: [\"country:US\"], "
        "message: m}\n")
    res = run("policy", "test", pols)
    assert res.exit_code == 0, res.output
    assert "warning: 1 item(s) no test exercised:" in res.stdout
    assert f"  rule 'untested' ({pols / 'extra.yaml'}:5)" in res.stdout
    assert run("policy", "test", pols, "--require-coverage").exit_code == 1


def test_a_test_naming_what_does_not_exist_is_bad_input(tmp_path: Path) -> None:
    pols = _copy(tmp_path)
    f = pols / "prefer-onprem.yaml"
    f.write_text(f.read_text().replace("penalties: {aws-va: 5, gcp-nl: 5}",
                                       "penalties: {aws-va: 5, gcp-nll: 5}"))
    res = run("policy", "test", pols)
    assert res.exit_code == 2, res.output
    assert (f"  error: {f}:36: tests[0].expect.train.penalties.gcp-nll: site 'gcp-nll' is not "
            "one of the test's sites (aws-va, fra-dc, gcp-nl)") in res.stdout


RULE = """\
apiVersion: placer/v1
kind: PolicySet
name: bad
locations:
  eea: [jurisdiction:EEA]
rules:
  - id: eu-in-eea
    effect: require
    match: {tags: {residency: EU}}
    sites: eea
    message: m
    waivable: false
"""
WAIVER = """\
exceptions:
  - id: x1
    waives: [eu-in-eea]
    match: {jobs: [train]}
    expires: 2027-01-01
    ticket: T-1
    approved_by: dpo
    reason: r
"""
MALFORMED = {
    "bad YAML": (RULE.replace("{tags: {residency: EU}}", "{tags: {residency: EU}"), 10, None,
                 "invalid YAML"),
    "unknown effect": (RULE.replace("effect: require", "effect: deny"), 8, "rules[0].effect",
                       "Input should be 'forbid', 'require', 'allow', 'limit' or 'prefer'"),
    "misspelt key": (RULE.replace("    effect: require", "    efect: require"), 8,
                     "rules[0].efect", "unknown field; did you mean 'effect'?"),
    "undefined location set": (RULE.replace("sites: eea", "sites: eaa"), 10, "rules[0].sites",
                               "unknown location set 'eaa' (defined: eea)"),
    "waiver of a non-waivable rule": (RULE + WAIVER, 15, "exceptions[0].waives[0]",
                                      "rule 'eu-in-eea' is marked waivable: false; no exception "
                                      "may waive it ('x1' tries)"),
}


@pytest.mark.parametrize("command", [("policy", "test"), ("policy", "lint"), ("validate",)])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_policy_is_one_clear_error_naming_file_line_and_field(
        tmp_path: Path, case: str, command: tuple[str, ...]) -> None:
    text, line, field, msg = MALFORMED[case]
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    junit = tmp_path / "junit.xml"
    extra = ("--junit", junit) if command == ("policy", "test") else ()
    res = run(*command, f, *extra)
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, res.stderr
    where = f"error: {f}:{line}: " + (f"{field}: " if field else "")
    assert errors[0].startswith(where), errors[0]
    assert msg in errors[0]
    if extra:  # CI still gets a report saying why
        root = ET.parse(junit).getroot()
        assert root.get("errors") == "1"
        assert msg in (root.findtext(".//error") or "")


def test_lint_passes_the_shipped_policies_and_fails_a_cloud_only_inventory(
        tmp_path: Path) -> None:
    res = run("policy", "lint", POLICIES)
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == ("0 error(s), 0 warning(s): 9 rules in 7 file(s), against "
                                  "inventory default (6 sites)")
    inv = tmp_path / "cloud.yaml"
    inv.write_text("name: cloud-only\nsites:\n  aws-fra: {location: aws:eu-central-1}\n")
    res = run("policy", "lint", POLICIES, "--inventory", inv)
    assert res.exit_code == 1, res.output
    out = " ".join(res.stdout.split())
    assert "error: [unknown-reference] no site of the inventory is in class 'self-hosted'" in out
    assert ("error: [stranded-data] data tagged classification=pii may run on no site of "
            "inventory 'cloud-only': pii-self-hosted-only rejects aws-fra") in out


def test_lint_of_an_inventory_that_does_not_load_is_bad_input(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("sites:\n  x: {location: aws:eu-centrl-1}\n")
    res = run("policy", "lint", POLICIES, "--inventory", inv)
    assert res.exit_code == 2
    assert f"error: {inv}:2: sites.x.location: unknown region aws:eu-centrl-1" in res.stderr


def test_validate_checks_policy_files_together(tmp_path: Path) -> None:
    res = run("validate", *sorted(POLICIES.glob("*.yaml")))
    assert res.exit_code == 0, res.output
    alone = run("validate", POLICIES / "eea-residency.yaml")
    assert alone.exit_code == 2
    assert "unknown location set 'eea'" in alone.stderr
