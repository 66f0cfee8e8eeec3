"""Inline policy tests (``tests:`` in a policy file) and their runner: worlds, verdicts, diffs,
bad input, coverage and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from placer.policy import (
    PolicyTestReport,
    format_report,
    junit_xml,
    load_policies,
    run_policy_tests,
)
from tests.policy.policy_builders import write

RULES = """\
apiVersion: placer/v1
kind: PolicySet
name: rules
rules:
  - id: eu-in-eea
    effect: require
    match: {tags: {residency: EU}}
    sites: ["jurisdiction:EEA"]
    message: EU data stays in the EEA.
  - id: no-us
    effect: forbid
    match: {tags: {residency: EU}}
    sites: ["country:US"]
    message: Not in the US.
"""

TESTS = """\
apiVersion: placer/v1
kind: PolicySet
name: cases
tests:
  - name: EU data stays in the EEA
    datasets:
      d: {location: "aws:eu-central-1", tags: {residency: EU}}
    jobs:
      train: {inputs: d}
      report: {inputs: [train.model]}
    sites:
      fra: {location: "onprem:fra-dc1", country: DE}
      aws-fra: {location: "aws:eu-central-1"}
      aws-va: {location: "aws:us-east-1"}
    expect:
      train:
        decision: eligible
        allowed: [fra, aws-fra]
        rejected:
          aws-va: [eu-in-eea, no-us]
      report:
        allowed: [fra, aws-fra]
"""


def _run(tmp_path: Path, *texts: str) -> PolicyTestReport:
    paths = [write(tmp_path, f"p{i}.yaml", t) for i, t in enumerate(texts)]
    return run_policy_tests(load_policies(*paths))


def test_a_test_in_one_file_is_judged_by_the_rules_of_every_file(tmp_path: Path) -> None:
    report = _run(tmp_path, RULES, TESTS)
    assert report.ok and len(report.results) == 1
    [r] = report.results
    assert r.test.policy == "cases" and r.test.file.endswith("p1.yaml") and r.test.line == 5
    assert report.unexercised == ()
    # Terse: no command or GPU types, and train's output 'model' was declared for it.
    assert r.eligibility["report"].tags == {"residency": frozenset({"EU"})}


def test_a_changed_expectation_fails_with_a_readable_diff(tmp_path: Path) -> None:
    wrong = TESTS.replace("allowed: [fra, aws-fra]\n        rejected",
                          "allowed: [fra, aws-fra, aws-va]\n        rejected") \
                 .replace("aws-va: [eu-in-eea, no-us]", "aws-va: [eu-in-eea]")
    report = _run(tmp_path, RULES, wrong)
    assert not report.ok
    [r] = report.failed
    assert [(d.job, d.field, d.line) for d in r.differences] == [
        ("train", "allowed", 18), ("train", "rejected", 19)]
    assert r.diff() == "\n".join([
        "  job 'train', allowed (line 18):",
        "    - expected  fra, aws-fra, aws-va",
        "    + got       fra, aws-fra",
        "      why: aws-va: rejected by eu-in-eea, no-us",
        "      why: eu-in-eea: EU data stays in the EEA.",
        "      why: no-us: Not in the US.",
        "  job 'train', rejected (line 19):",
        "    - expected  aws-va: eu-in-eea",
        "    + got       aws-va: eu-in-eea, no-us",
        "      why: no-us: Not in the US.",
    ])
    lines = format_report(report)
    assert lines[0] == f"FAIL  {tmp_path / 'p1.yaml'}:5: cases › EU data stays in the EEA"
    assert lines[-1] == "0 passed, 1 failed (1 tests)"


def test_a_held_job_says_why(tmp_path: Path) -> None:
    text = TESTS.replace("tags: {residency: EU}", "tags: {classification: public}")
    rules = RULES.replace("rules:\n", "required_tags: [residency]\nrules:\n")
    [r] = _run(tmp_path, rules, text).failed
    d = r.differences[0]
    assert (d.field, d.expected, d.got) == ("decision", ("eligible",), ("held",))
    assert d.notes[0].startswith("missing-required-tag: dataset 'd' (read by job 'train')")


EVERY_FIELD = """\
apiVersion: placer/v1
kind: PolicySet
name: every
rules:
  - {id: f, effect: forbid, match: {tags: {k: v}}, sites: ["country:US"], message: F.}
  - {id: w, effect: forbid, match: {tags: {k: v}}, sites: ["country:NL"], message: W.,
     mode: audit}
  - {id: x, effect: forbid, match: {tags: {k: v}}, sites: ["provider:gcp"], message: X.}
  - {id: cap, effect: limit, match: {}, sites: ["provider:azure"], max_usd_per_job: 100,
     message: Cap.}
  - {id: home, effect: prefer, match: {}, sites: ["provider:onprem"], penalty: 7, message: H.}
transforms:
  - {id: deid, match: {images: ["deid:*"]}, removes: {k: v}, message: approved}
exceptions:
  - {id: exc, waives: [x], match: {jobs: [a]}, expires: 2026-12-31, ticket: T-1,
     approved_by: dpo, reason: migration}
tests:
  - name: every field
    now: 2026-12-06
    datasets:
      d: {location: "aws:us-east-1", tags: {k: v}}
    jobs:
      a: {inputs: [d]}
      b: {inputs: [d], image: "deid:1", removes_tags: {k: v}}
    sites:
      onprem: {location: "onprem:fra-dc1", country: DE}
      aws-va: {location: "aws:us-east-1"}
      gcp-nl: {location: "gcp:europe-west4"}
      az-nl: {location: "azure:westeurope", jurisdictions: [ACME]}
    expect:
      a:
        decision: eligible
        allowed: [onprem, gcp-nl, az-nl]
        rejected: {aws-va: [f]}
        audit: {gcp-nl: [w], az-nl: [w]}
        waived: {gcp-nl: [x]}
        limits: {az-nl: [cap]}
        penalties: {gcp-nl: 7, az-nl: 7}
      b:
        removed: [k=v]
"""


def test_every_field_is_compared(tmp_path: Path) -> None:
    report = _run(tmp_path, EVERY_FIELD)
    assert report.ok, report.results[0].diff()
    assert report.unexercised == ()  # the exception and the transform included


@pytest.mark.parametrize(("old", "new", "field"), [
    ("decision: eligible", "decision: no-site", "decision"),
    ("allowed: [onprem, gcp-nl, az-nl]", "allowed: [onprem]", "allowed"),
    ("rejected: {aws-va: [f]}", "rejected: {aws-va: [f, cap]}", "rejected"),
    ("audit: {gcp-nl: [w], az-nl: [w]}", "audit: {gcp-nl: [w]}", "audit"),
    ("waived: {gcp-nl: [x]}", "waived: {}", "waived"),
    ("limits: {az-nl: [cap]}", "limits: {}", "limits"),
    ("penalties: {gcp-nl: 7, az-nl: 7}", "penalties: {gcp-nl: 7}", "penalties"),
    ("removed: [k=v]", "removed: []", "removed"),
])
def test_each_field_can_fail(tmp_path: Path, old: str, new: str, field: str) -> None:
    assert old in EVERY_FIELD
    [r] = _run(tmp_path, EVERY_FIELD.replace(old, new)).failed
    assert [d.field for d in r.differences] == [field]


def test_exceptions_are_judged_on_the_test_day(tmp_path: Path) -> None:
    later = _run(tmp_path, EVERY_FIELD.replace("now: 2026-12-06", "now: 2027-01-01"))
    [r] = later.failed
    assert [d.field for d in r.differences] == ["allowed", "rejected", "waived", "penalties"]
    rejected = r.differences[1]
    assert (rejected.expected, rejected.got) == (("gcp-nl: (none)",), ("gcp-nl: x",))
    assert r.eligibility["a"].expired == (
        "exception 'exc' (ticket T-1) expired on 2026-12-31 and is ignored",)


BAD = """\
apiVersion: placer/v1
kind: PolicySet
name: bad
rules:
  - {id: r, effect: forbid, match: {}, sites: ["country:US"], message: m}
tests:
  - name: names that do not exist
    datasets:
      d: {location: "aws:eu-centrl-1"}
    jobs:
      a: {inputs: [d]}
    sites:
      dc: {location: "onprem:fra-dc1"}
      aws: {location: "aws:us-east-1", country: DE}
      typo: {location: "gcp:europe-wst4"}
      ok: {location: "aws:us-east-1"}
    expect:
      a: {allowed: [ok]}
  - name: expectations that name nothing
    jobs:
      a: {}
      b: {inputs: [nope]}
    sites:
      ok: {location: "aws:us-east-1"}
    expect:
      a: {allowed: [ok]}
  - name: more
    jobs:
      a: {}
    sites:
      ok: {location: "aws:us-east-1"}
    expect:
      a: {allowed: [ko], rejected: {ok: [rr]}}
      z: {decision: held}
"""


def test_bad_input_in_a_test_is_an_error_naming_file_line_and_field(tmp_path: Path) -> None:
    report = _run(tmp_path, BAD)
    assert not report.ok and report.failed == ()
    f = str(tmp_path / "p0.yaml")
    got = [str(e) for r in report.errors for e in r.errors]
    assert got == [
        f"{f}:9: tests[0].datasets.d.location: unknown region aws:eu-centrl-1; did you mean "
        "aws:eu-central-1?",
        f"{f}:13: tests[0].sites.dc.location: an on-prem test site needs its country (ISO "
        "3166-1 alpha-2), e.g. country: DE",
        f"{f}:14: tests[0].sites.aws.country: aws:us-east-1 is in US according to the "
        "catalog, not DE; leave country out for a cloud site",
        f"{f}:15: tests[0].sites.typo.location: unknown region gcp:europe-wst4; did you mean "
        "gcp:europe-west4?",
        f"{f}:22: tests[1].jobs.b.inputs[0]: job 'b' reads 'nope', which is neither a dataset "
        "nor a job output",
        f"{f}:33: tests[2].expect.a.allowed: site 'ko' is not one of the test's sites (ok)",
        f"{f}:33: tests[2].expect.a.rejected.ok: no loaded policy has a rule 'rr'",
        f"{f}:34: tests[2].expect.z: expectation for job 'z', which the test does not have "
        "(jobs: a)",
    ]
    assert format_report(report)[-1] == "0 passed, 0 failed, 3 with bad input (3 tests)"


def test_a_test_must_be_well_formed_when_the_file_loads(tmp_path: Path) -> None:
    from placer.errors import PolicyError

    with pytest.raises(PolicyError) as exc:
        _run(tmp_path, RULES.replace("rules:", "tests:\n  - name: x\n    jobs: {a: {}}\n"
                                     "    expect: {a: {decison: held}}\nrules:"))
    assert [(d.line, d.field) for d in exc.value.details] == [
        (5, "tests[0].sites"), (7, "tests[0].expect.a.decison")]


def test_what_no_test_exercised_is_listed_with_where_it_is(tmp_path: Path) -> None:
    extra = RULES + """\
  - {id: idle, effect: forbid, match: {tags: {k: never}}, sites: ["country:US"], message: m}
tagging:
  - {id: tag-idle, match: {uri: "s3://nowhere/**"}, tags: {k: v}}
"""
    report = _run(tmp_path, extra, TESTS)
    assert report.ok
    assert [str(u) for u in report.unexercised] == [
        f"rule 'idle' ({tmp_path / 'p0.yaml'}:15)",
        f"tagging rule 'tag-idle' ({tmp_path / 'p0.yaml'}:17)",
    ]
    assert format_report(report)[:3] == [
        "warning: 2 item(s) no test exercised:",
        f"  rule 'idle' ({tmp_path / 'p0.yaml'}:15)",
        f"  tagging rule 'tag-idle' ({tmp_path / 'p0.yaml'}:17)",
    ]


def test_junit_xml_has_a_case_per_test_and_the_diff_of_each_failure(tmp_path: Path) -> None:
    wrong = TESTS.replace("aws-va: [eu-in-eea, no-us]", "aws-va: [eu-in-eea]")
    second = TESTS.replace("name: EU data stays in the EEA", "name: second")
    report = _run(tmp_path, RULES, wrong + second.split("tests:\n", 1)[1])
    root = ET.fromstring(junit_xml(report))
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == (
        "testsuites", "2", "1", "0")
    [suite] = root.findall("testsuite")
    assert suite.get("name") == str(tmp_path / "p1.yaml")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name"), c.get("line")) for c in cases] == [
        ("cases", "EU data stays in the EEA", "5"), ("cases", "second", "23")]
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("message") == "job 'train': rejected differs"
    assert "+ got       aws-va: eu-in-eea, no-us" in (failure.text or "")
    assert cases[1].find("failure") is None


def test_junit_xml_reports_load_errors_and_coverage(tmp_path: Path) -> None:
    from placer.errors import ErrorDetail

    root = ET.fromstring(junit_xml(PolicyTestReport(()), load_errors=[
        ErrorDetail("unknown field", "p.yaml", 3, "rules[0].efect")]))
    assert root.get("errors") == "1"
    err = root.find("testsuite/testcase/error")
    assert err is not None and err.text == "p.yaml:3: rules[0].efect: unknown field"
    extra = RULES + "  - {id: idle, effect: forbid, match: {}, sites: [\"country:US\"], " \
                    "message: m}\n"
    report = _run(tmp_path, extra, TESTS.replace("rejected:\n          aws-va: [eu-in-eea, "
                                                 "no-us]", "rejected:\n          aws-va: "
                                                 "[eu-in-eea, no-us, idle]"))
    assert report.ok and report.unexercised == ()
    lonely = _run(tmp_path, extra.replace("match: {}, sites", "match: {jobs: [x]}, sites"), TESTS)
    assert ET.fromstring(junit_xml(lonely)).get("failures") == "0"
    strict = ET.fromstring(junit_xml(lonely, require_coverage=True))
    assert strict.get("failures") == "1"
    assert "not exercised: rule 'idle'" in (strict.findtext("testsuite/testcase/failure") or "")
