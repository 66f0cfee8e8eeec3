"""Inline policy tests: the ``tests:`` of policy files, run by ``placer policy test``.

A test gives a small world (datasets, jobs, sites) and what it expects for each job: the
decision (``eligible``, ``held`` or ``no-site``), the sites allowed, and per site the rules that
reject it, audit it, waive it or cap it. Every test is judged against the WHOLE policy set
loaded (rules from several files combine), so a test written in one file fails when another
file changes what it decides: that is the point.

A test is terse: a job needs no command or GPU types (harmless defaults are filled in), an
output another job reads is declared for it, and a cloud site takes its country and
jurisdictions from the embedded catalog. What a test names must exist: an expectation for a
job the test does not have, a site it does not list or a rule no policy defines is bad input,
not a failed test.

:func:`run_policy_tests` returns values (:class:`PolicyTestReport`); :func:`format_report`
and :func:`junit_xml` render them for a terminal and for CI.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from placer.catalog import Catalog, default_catalog
from placer.errors import CatalogError, ConfigError, ErrorDetail
from placer.models import (
    ISO_COUNTRIES,
    Location,
    Pipeline,
    ResolvedSite,
    jurisdictions_of,
)
from placer.policy._evaluate import DEFAULT_DENY, JobEligibility, evaluate
from placer.policy._model import PolicySet, SourcedTest, TestExpectation
from placer.yamlio import Loc, SourceMap, format_loc, read_yaml, validate

DECISIONS = ("eligible", "held", "no-site")
"""``eligible``: some site is allowed; ``held``: unknown facts hold the job; ``no-site``: not
held, and the rules leave no site."""

DEFAULT_JOB: dict[str, Any] = {"command": "run", "gpu_types": {"A100-80GB": 1}}
"""What a test's job gets when it says nothing: policies never look at either."""

SECTIONS = ("rules", "tagging", "transforms", "exceptions")
_WHAT = {"rules": "rule", "tagging": "tagging rule", "transforms": "transform",
         "exceptions": "exception"}


# -- where things are written ------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """Where a policy item is written."""

    file: str
    line: int | None
    field: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


_Parsed = tuple[Any, SourceMap]


def _read(file: str, cache: dict[str, _Parsed | None]) -> _Parsed | None:
    if file not in cache:
        try:
            cache[file] = read_yaml(file)
        except ConfigError:
            cache[file] = None
    return cache[file]


def origins(policies: PolicySet) -> dict[str, Origin]:
    """Id → where it is written, for every rule, tagging rule, transform and exception.

    The files are read again (a policy set keeps only the rules' origins); an item whose file
    cannot be read has no origin.
    """
    out: dict[str, Origin] = {}
    cache: dict[str, _Parsed | None] = {}
    for file in policies.sources:
        parsed = _read(file, cache)
        if parsed is None or not isinstance(parsed[0], dict):
            continue
        data, sm = parsed
        for section in SECTIONS:
            items = data.get(section)
            if not isinstance(items, list):
                continue
            for i, item in enumerate(items):
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    out.setdefault(item["id"], Origin(file, sm.line((section, i)),
                                                      format_loc((section, i))))
    return out


def kind_of(policies: PolicySet, item_id: str) -> str:
    """``rule``, ``tagging rule``, ``transform`` or ``exception``."""
    for section in SECTIONS:
        if any(i.id == item_id for i in getattr(policies, section)):
            return _WHAT[section]
    return "rule"


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One expectation of one job that the policies do not meet."""

    job: str
    field: str
    line: int | None
    expected: tuple[str, ...]
    """Lines of what the test expects (``site: rule, rule`` for per-site fields)."""
    got: tuple[str, ...]
    """Lines of what the policies decide."""
    notes: tuple[str, ...] = ()
    """Why: the messages of the rules involved, or the hold reasons."""


@dataclass(frozen=True)
class PolicyTestResult:
    """One inline test: passed, failed (differences) or bad input (errors)."""

    test: SourcedTest
    differences: tuple[Difference, ...] = ()
    errors: tuple[ErrorDetail, ...] = ()
    eligibility: Mapping[str, JobEligibility] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.differences and not self.errors

    @property
    def title(self) -> str:
        where = self.test.file + (f":{self.test.line}" if self.test.line is not None else "")
        return f"{where}: {self.test.policy} › {self.test.test.name}"

    def diff(self) -> str:
        """The differences as text: ``-`` what the test expects, ``+`` what the policies say."""
        out: list[str] = []
        for d in self.differences:
            where = f" (line {d.line})" if d.line is not None else ""
            out.append(f"  job {d.job!r}, {d.field}{where}:")
            out += [f"    - expected  {x}" for x in d.expected]
            out += [f"    + got       {x}" for x in d.got]
            out += [f"      why: {n}" for n in d.notes]
        out += [f"  error: {e}" for e in self.errors]
        return "\n".join(out)


@dataclass(frozen=True)
class Unexercised:
    """A rule (or exception, transform, tagging rule) that no test exercised."""

    kind: str
    id: str
    origin: Origin | None

    def __str__(self) -> str:
        return f"{self.kind} {self.id!r}" + (f" ({self.origin})" if self.origin else "")


@dataclass(frozen=True)
class PolicyTestReport:
    """Every inline test of a policy set, and what none of them exercised."""

    results: tuple[PolicyTestResult, ...]
    unexercised: tuple[Unexercised, ...] = ()

    @property
    def failed(self) -> tuple[PolicyTestResult, ...]:
        return tuple(r for r in self.results if r.differences and not r.errors)

    @property
    def errors(self) -> tuple[PolicyTestResult, ...]:
        return tuple(r for r in self.results if r.errors)

    @property
    def passed(self) -> tuple[PolicyTestResult, ...]:
        return tuple(r for r in self.results if r.passed)

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)


# -- building a test's world ---------------------------------------------------------------------


def _sub_map(sm: SourceMap | None, prefix: Loc) -> SourceMap:
    """The part of a file's source map under ``prefix``, with ``prefix`` removed."""
    if sm is None:
        return SourceMap("<test>")
    n = len(prefix)
    return SourceMap(sm.file, {loc[n:]: line for loc, line in sm.lines.items()
                               if loc[:n] == prefix})


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _pipeline_data(st: SourcedTest) -> dict[str, Any]:
    """The test's datasets and jobs as a pipeline mapping, with the defaults filled in."""
    t = st.test
    jobs: dict[str, dict[str, Any]] = {}
    for name, spec in t.jobs.items():
        full = {**DEFAULT_JOB, **(spec or {})}
        for key in ("inputs", "after"):
            if key in full:
                full[key] = _as_list(full[key])
        jobs[name] = full
    # An output another job reads is declared for the job that makes it.
    for spec in jobs.values():
        inputs = spec.get("inputs")
        for ref in inputs if isinstance(inputs, list) else ():
            if not isinstance(ref, str) or ref in t.datasets:
                continue
            maker, dot, output = ref.partition(".")
            if dot and maker in jobs and output:
                outputs = jobs[maker].setdefault("outputs", {})
                if isinstance(outputs, dict):
                    outputs.setdefault(output, 1)
    return {"name": "policy-test", "datasets": {k: v or {} for k, v in t.datasets.items()},
            "jobs": jobs}


def _named(loc: tuple[str | int, ...], names: Mapping[str, Sequence[str]]) -> Loc:
    """``jobs[0].inputs`` → ``jobs.train.inputs``: tests name their jobs and datasets."""
    if len(loc) >= 2 and loc[0] in names and isinstance(loc[1], int):
        order = names[str(loc[0])]
        if loc[1] < len(order):
            return (loc[0], order[loc[1]], *loc[2:])
    return loc


def _build_pipeline(st: SourcedTest, prefix: Loc, sm: SourceMap | None,
                    catalog: Catalog) -> tuple[Pipeline | None, list[ErrorDetail]]:
    data = _pipeline_data(st)
    names = {"jobs": list(data["jobs"]), "datasets": list(data["datasets"])}
    sub = _sub_map(sm, prefix)
    for section, order in names.items():
        sub = sub.rekey((section,), order)
    try:
        pipeline = validate(Pipeline, data, sub)
    except ConfigError as exc:
        return None, [ErrorDetail(d.msg, st.file, d.line,
                                  format_loc((*prefix, *_named(d.loc, names))))
                      for d in exc.details]
    problems = []
    for d in pipeline.datasets:
        for key in d.copies:
            if not key.startswith("onprem:") and key not in catalog:
                at: Loc = (*prefix, "datasets", d.name, "location")
                try:
                    catalog.location(key)
                except CatalogError as exc:
                    problems.append(_detail(st, sm, at, str(exc.args[0])))
    return (None if problems else pipeline), problems


def _detail(st: SourcedTest, sm: SourceMap | None, loc: Loc, msg: str) -> ErrorDetail:
    line = sm.line(loc) if sm is not None else st.line
    return ErrorDetail(msg, st.file, line, format_loc(loc))


def _build_sites(st: SourcedTest, prefix: Loc, sm: SourceMap | None, catalog: Catalog
                 ) -> tuple[list[ResolvedSite], list[ErrorDetail]]:
    sites: list[ResolvedSite] = []
    problems: list[ErrorDetail] = []
    for name, ts in st.test.sites.items():
        at: Loc = (*prefix, "sites", name)
        provider, _, region = ts.location.partition(":")
        try:
            if provider == "onprem":
                if ts.country is None:
                    problems.append(_detail(st, sm, (*at, "location"),
                                            "an on-prem test site needs its country (ISO "
                                            "3166-1 alpha-2), e.g. country: DE"))
                    continue
                loc = Location(provider="onprem", region=region, country=ts.country)
            else:
                loc = catalog.location(ts.location)
                if ts.country is not None and ts.country != loc.country:
                    problems.append(_detail(
                        st, sm, (*at, "country"),
                        f"{loc.key} is in {loc.country} according to the catalog, not "
                        f"{ts.country}; leave country out for a cloud site"))
                    continue
        except CatalogError as exc:
            problems.append(_detail(st, sm, (*at, "location"), str(exc.args[0])))
            continue
        except ValueError as exc:  # a country that is not an ISO code
            msg = str(exc.errors()[0]["msg"]) if hasattr(exc, "errors") else str(exc)
            problems.append(_detail(st, sm, (*at, "country"),
                                    msg.removeprefix("Value error, ")))
            continue
        own = jurisdictions_of(loc.country)
        foreign = sorted(j for j in ts.jurisdictions
                         if (j in ("EU", "EEA") or j in ISO_COUNTRIES) and j not in own)
        if foreign:
            problems.append(_detail(
                st, sm, (*at, "jurisdictions"),
                f"{', '.join(foreign)} can only come from the site's country ({loc.country}); "
                "an inventory could not declare it either"))
            continue
        if ts.jurisdictions:
            loc = loc.model_copy(update={"jurisdictions": loc.jurisdictions
                                         | frozenset(ts.jurisdictions)})
        sites.append(ResolvedSite(name=name, kind="onprem" if provider == "onprem" else "cloud",
                                  location=loc, labels=dict(ts.labels)))
    return sites, problems


def _check_names(st: SourcedTest, prefix: Loc, sm: SourceMap | None, policies: PolicySet,
                 pipeline: Pipeline, sites: Sequence[ResolvedSite]) -> list[ErrorDetail]:
    """Every job, site and rule an expectation names must exist."""
    jobs = {j.name for j in pipeline.jobs}
    site_names = {s.name for s in sites}
    rule_ids = {r.id for r in policies.rules} | {DEFAULT_DENY}
    problems: list[ErrorDetail] = []
    for job, exp in st.test.expect.items():
        at: Loc = (*prefix, "expect", job)
        if job not in jobs:
            problems.append(_detail(st, sm, at, f"expectation for job {job!r}, which the test "
                                    f"does not have (jobs: {', '.join(sorted(jobs))})"))
            continue
        for fld in ("allowed", "rejected", "audit", "waived", "limits", "penalties"):
            value = getattr(exp, fld)
            for site in value or ():
                if site not in site_names:
                    problems.append(_detail(
                        st, sm, (*at, fld, site) if isinstance(value, dict) else (*at, fld),
                        f"site {site!r} is not one of the test's sites "
                        f"({', '.join(sorted(site_names))})"))
        for fld in ("rejected", "audit", "waived", "limits"):
            for site, ids in (getattr(exp, fld) or {}).items():
                for rid in ids:
                    if rid not in rule_ids:
                        problems.append(_detail(
                            st, sm, (*at, fld, site),
                            f"no loaded policy has a rule {rid!r}"))
    return problems


# -- comparing ------------------------------------------------------------------------------------


def decision_of(e: JobEligibility) -> str:
    """``held``, ``eligible`` or ``no-site``."""
    if e.held:
        return "held"
    return "eligible" if e.allowed else "no-site"


def _removed_pairs(e: JobEligibility) -> set[str]:
    return {r.split(" removed by ", 1)[0] for r in e.removed}


def _got(e: JobEligibility) -> dict[str, Any]:
    return {
        "decision": decision_of(e),
        "allowed": set(e.allowed),
        "rejected": {s: {h.rule for h in hits} for s, hits in e.rejected.items()},
        "audit": {s: {h.rule for h in hits} for s, hits in e.audit.items()},
        "waived": {s: {w.rule for w in hits} for s, hits in e.waived.items()},
        "limits": {s: set(ids) for s, ids in e.limits.items()},
        "penalties": dict(e.penalties),
        "removed": _removed_pairs(e),
    }


def _messages(policies: PolicySet, ids: Iterable[str], e: JobEligibility) -> list[str]:
    text: dict[str, str] = {}
    for hits in [*e.rejected.values(), *e.audit.values()]:
        for h in hits:
            text.setdefault(h.rule, " ".join(h.message.split()))
    for rid in ids:
        if rid not in text:
            try:
                text[rid] = " ".join(policies.rule(rid).message.split())
            except KeyError:
                continue
    return [f"{rid}: {text[rid]}" for rid in sorted(set(ids)) if rid in text]


def _site_lines(mapping: Mapping[str, Any], site: str) -> str:
    if site not in mapping:
        return f"{site}: (none)"
    value = mapping[site]
    if isinstance(value, float | int):
        return f"{site}: ${value:,.2f}"
    return f"{site}: {', '.join(sorted(value)) or '(none)'}"


def _compare(st: SourcedTest, job: str, exp: TestExpectation, e: JobEligibility,
             policies: PolicySet, order: Sequence[str], line: Any) -> list[Difference]:
    got = _got(e)
    out: list[Difference] = []
    if exp.decision is not None and exp.decision != got["decision"]:
        notes = list(e.held) if got["decision"] == "held" else []
        if got["decision"] == "no-site":
            notes = _messages(policies, {h.rule for hits in e.rejected.values() for h in hits}, e)
        out.append(Difference(job, "decision", line("decision"), (exp.decision,),
                              (got["decision"],), tuple(notes)))
    if exp.allowed is not None and set(exp.allowed) != got["allowed"]:
        rank = {s: i for i, s in enumerate(order)}
        want = sorted(set(exp.allowed), key=lambda s: rank.get(s, len(rank)))
        have = [s for s in order if s in got["allowed"]]
        lost = [s for s in want if s not in got["allowed"]]
        extra = [s for s in have if s not in set(exp.allowed)]
        notes = [f"{s}: rejected by {', '.join(sorted({h.rule for h in e.rejected[s]}))}"
                 for s in lost if s in e.rejected and not e.held]
        notes += [f"{s}: no rule rejects it" for s in extra]
        notes += _messages(policies, {h.rule for s in lost for h in e.rejected.get(s, ())}, e)
        if e.held and lost:
            notes = [*e.held, *notes]
        out.append(Difference(job, "allowed", line("allowed"),
                              (", ".join(want) or "(no site)",), (", ".join(have) or "(no site)",),
                              tuple(notes)))
    for fld in ("rejected", "audit", "waived", "limits"):
        wanted = getattr(exp, fld)
        if wanted is None:
            continue
        want_ids = {s: set(ids) for s, ids in wanted.items() if ids}
        have_ids: dict[str, set[str]] = got[fld]
        if want_ids == have_ids:
            continue
        differing = [s for s in order
                     if want_ids.get(s, set()) != have_ids.get(s, set())]
        involved = {r for s in differing for r in want_ids.get(s, set()) ^ have_ids.get(s, set())}
        out.append(Difference(job, fld, line(fld),
                              tuple(_site_lines(want_ids, s) for s in differing),
                              tuple(_site_lines(have_ids, s) for s in differing),
                              tuple(_messages(policies, involved - {DEFAULT_DENY}, e))))
    if exp.penalties is not None:
        want_p = {s: float(v) for s, v in exp.penalties.items() if v}
        have_p = got["penalties"]
        differing = [s for s in order if not math.isclose(want_p.get(s, 0.0),
                                                          have_p.get(s, 0.0), abs_tol=1e-6)]
        if differing:
            out.append(Difference(job, "penalties", line("penalties"),
                                  tuple(_site_lines(want_p, s) for s in differing),
                                  tuple(_site_lines(have_p, s) for s in differing)))
    if exp.removed is not None and set(exp.removed) != got["removed"]:
        out.append(Difference(job, "removed", line("removed"),
                              (", ".join(sorted(exp.removed)) or "(nothing)",),
                              (", ".join(sorted(got["removed"])) or "(nothing)",),
                              (*e.removed, *e.ignored)))
    return out


# -- running --------------------------------------------------------------------------------------


def _index(st: SourcedTest, sm: SourceMap | None, seen: Mapping[str, int]) -> int:
    """The test's index in its file's ``tests:`` list: by its line, else by its order."""
    if sm is not None and st.line is not None:
        i = 0
        while ("tests", i) in sm.lines:
            if sm.lines[("tests", i)] == st.line:
                return i
            i += 1
    return seen.get(st.file, 0)


def run_test(st: SourcedTest, policies: PolicySet, *, catalog: Catalog | None = None,
             index: int | None = None, source: SourceMap | None = None) -> PolicyTestResult:
    """Run one inline test against the whole policy set."""
    cat = catalog or default_catalog()
    prefix: Loc = ("tests", index if index is not None else 0)
    pipeline, problems = _build_pipeline(st, prefix, source, cat)
    sites, site_problems = _build_sites(st, prefix, source, cat)
    problems += site_problems
    if pipeline is None or problems:
        return PolicyTestResult(st, errors=tuple(problems))
    problems = _check_names(st, prefix, source, policies, pipeline, sites)
    if problems:
        return PolicyTestResult(st, errors=tuple(problems))
    locations = {k: cat.location(k) for d in pipeline.datasets for k in d.copies if k in cat}
    elig = evaluate(pipeline, sites, policies, today=st.test.now, locations=locations)
    order = [s.name for s in sites]
    diffs: list[Difference] = []
    for job, exp in st.test.expect.items():
        def line(fld: str, job: str = job) -> int | None:
            if source is None:
                return None
            return source.line((*prefix, "expect", job, fld))

        diffs += _compare(st, job, exp, elig[job], policies, order, line)
    return PolicyTestResult(st, differences=tuple(diffs), eligibility=elig)


_BY_TRANSFORM = re.compile(r"approved by transform '([^']+)'")
_BY_TAGGING = re.compile(r"derived by tagging rule '([^']+)'")
_EXCEPTION = re.compile(r"^exception '([^']+)'")


def exercised(results: Iterable[PolicyTestResult]) -> set[str]:
    """Ids of the rules, exceptions, transforms and tagging rules some test exercised.

    A rule is exercised when some test's job matched it (``matched_rules``) or it rejected,
    audited, admitted, capped or was waived on a site; an exception when it waived a rule (or
    was found expired); a transform when it approved a removal; a tagging rule when it derived
    a tag.
    """
    out: set[str] = set()
    for r in results:
        for e in r.eligibility.values():
            out.update(e.matched_rules)
            for hits in [*e.rejected.values(), *e.audit.values()]:
                out.update(h.rule for h in hits)
            for waived in e.waived.values():
                out.update(w.rule for w in waived)
                out.update(w.exception for w in waived)
            for ids in [*e.allowed_by.values(), *e.limits.values()]:
                out.update(ids)
            for text in e.removed:
                out.update(_BY_TRANSFORM.findall(text))
            for text in e.derived:
                out.update(_BY_TAGGING.findall(text))
            for text in e.expired:
                out.update(_EXCEPTION.findall(text))
    return out


def run_policy_tests(policies: PolicySet, *, catalog: Catalog | None = None
                     ) -> PolicyTestReport:
    """Run every inline test of ``policies`` against the whole set; list what none exercised.

    Pure apart from reading the policy files again for line numbers.
    """
    cat = catalog or default_catalog()
    cache: dict[str, _Parsed | None] = {}
    seen: dict[str, int] = {}
    results = []
    for st in policies.tests:
        parsed = _read(st.file, cache)
        sm = parsed[1] if parsed is not None else None
        i = _index(st, sm, seen)
        seen[st.file] = seen.get(st.file, 0) + 1
        results.append(run_test(st, policies, catalog=cat, index=i, source=sm))
    done = exercised(results)
    where = origins(policies)
    missing = [Unexercised(_WHAT[section], item.id, where.get(item.id))
               for section in SECTIONS for item in getattr(policies, section)
               if item.id not in done]
    return PolicyTestReport(tuple(results), tuple(missing))


# -- rendering ------------------------------------------------------------------------------------


def format_report(report: PolicyTestReport, *, verbose: bool = False) -> list[str]:
    """Lines for a terminal: one per test (``PASS``/``FAIL``/``ERROR``), diffs, a summary."""
    out: list[str] = []
    for r in report.results:
        status = "ERROR" if r.errors else ("FAIL" if r.differences else "PASS")
        if status == "PASS" and not verbose:
            continue
        out.append(f"{status:<5} {r.title}")
        if not r.passed:
            out.append(r.diff())
    if report.unexercised:
        out.append(f"warning: {len(report.unexercised)} item(s) no test exercised:")
        out += [f"  {u}" for u in report.unexercised]
    n, bad, err = len(report.results), len(report.failed), len(report.errors)
    summary = f"{n - bad - err} passed, {bad} failed"
    if err:
        summary += f", {err} with bad input"
    out.append(summary + (f" ({len(report.results)} tests)" if n else " (no tests found)"))
    return out


def junit_xml(report: PolicyTestReport, *, load_errors: Sequence[ErrorDetail] = (),
              require_coverage: bool = False) -> str:
    """JUnit XML for CI: a test suite per policy file, a test case per inline test.

    ``load_errors``: the policies could not be loaded; one erroring test case says why.
    What no test exercised is one more test case, failed with ``require_coverage``.
    """
    root = ET.Element("testsuites", name="placer policy test")
    suites: dict[str, ET.Element] = {}
    counts: dict[str, list[int]] = {}

    def suite(name: str) -> ET.Element:
        if name not in suites:
            suites[name] = ET.SubElement(root, "testsuite", name=name)
            counts[name] = [0, 0, 0]
        return suites[name]

    if load_errors:
        case = ET.SubElement(suite("load"), "testcase", classname="load", name="load policies")
        ET.SubElement(case, "error", message="the policies could not be loaded").text = \
            "\n".join(str(d) for d in load_errors)
        counts["load"] = [1, 0, 1]
    for r in report.results:
        st = r.test
        attrs = {"classname": st.policy, "name": st.test.name, "file": st.file}
        if st.line is not None:
            attrs["line"] = str(st.line)
        case = ET.SubElement(suite(st.file), "testcase", attrs)
        c = counts[st.file]
        c[0] += 1
        if r.errors:
            c[2] += 1
            ET.SubElement(case, "error", message="bad input in the test").text = r.diff()
        elif r.differences:
            c[1] += 1
            first = r.differences[0]
            ET.SubElement(case, "failure",
                          message=f"job {first.job!r}: {first.field} differs").text = r.diff()
    if report.unexercised:
        case = ET.SubElement(suite("coverage"), "testcase", classname="coverage",
                             name="every rule exercised")
        text = "\n".join(f"not exercised: {u}" for u in report.unexercised)
        if require_coverage:
            counts["coverage"] = [1, 1, 0]
            ET.SubElement(case, "failure", message=f"{len(report.unexercised)} item(s) no test "
                          "exercised").text = text
        else:
            counts["coverage"] = [1, 0, 0]
            ET.SubElement(case, "system-out").text = text
    total = [0, 0, 0]
    for name, el in suites.items():
        tests, failures, errors = counts[name]
        el.set("tests", str(tests))
        el.set("failures", str(failures))
        el.set("errors", str(errors))
        total = [total[0] + tests, total[1] + failures, total[2] + errors]
    root.set("tests", str(total[0]))
    root.set("failures", str(total[1]))
    root.set("errors", str(total[2]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"

