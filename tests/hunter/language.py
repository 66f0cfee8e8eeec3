"""Properties of the policy language (issue 11), judged on placer's decisions.

Each ``hunt_*`` takes a case (``strategies.py``) and a work directory and returns an
:class:`~tests.hunter.harness.Outcome`, like :func:`~tests.hunter.harness.hunt`, so
:func:`~tests.hunter.hunting.hunt_property` drives them and saves what they find into the
corpus (``kind`` = the property's name). Each loads the case's files through placer's own entry
points (as ``placer plan`` does), decides with :func:`placer.plan` and
:func:`placer.policy.evaluate` on an explicit day, and compares:

* ``shuffle``: the same policies laid out anew (``case["variant"]["policies"]``: rules shuffled
  within and moved between files and sub-folders, files renamed and reordered) must give the
  same decision (eligible sets, held, placement, rejections, audit, waivers) and the same
  ``policy_hash``;
* ``expiry``: an exception (``case["judge"]["exception"]``) judged the day after it expires, and
  later, must change nothing: eligibility and plan equal those of the same policies without it;
  on the day it expires it may only widen, and only for the jobs it truly matches;
* ``team``: adding the team-layer files never widens any job's eligible set, and a team
  exception waiving an organisation rule is refused when the files load;
* ``audit``: a forbid or require flipped to ``audit``/``warn`` (``case["judge"]``) decides exactly
  as if it were deleted, and records (``JobEligibility.audit``, the plan's verdicts, and for
  ``warn`` the plan's warnings) every site the enforced rule rejects;
* ``lookalike``: tags spelt with look-alike letters match every forbid and require the plain
  spelling matches, never widen what the plain spelling allows, and are never matched by an
  allow or an exception.

Every property also checks placer's eligible sets against the oracle (``oracle.py``) for each
decision it makes on the case's own policies: no job may be eligible where the truth forbids.
"""

from __future__ import annotations

import copy
import datetime
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.hunter.harness import (
    LOAD_TIME_LIMIT_S,
    Outcome,
    _unexpected,
    decision_day,
    diff,
    materialize,
    time_limit,
)
from tests.hunter.oracle import Verdict, judge
from tests.hunter.strategies import expires_placeholder

Case = Mapping[str, Any]


@dataclass
class Decision:
    """What placer decided for one layout of a case on one day."""

    plan: Any
    elig: dict[str, Any]
    policies: Any


class Refused(Exception):
    """placer refused the case loudly (a PlacerError): a pass, nothing to compare."""


def decide(case: Case, workdir: Path, day: datetime.date, tree: Mapping[str, Any] | None = None,
           pipeline: Any = None) -> Decision:
    """Load ``case`` (with ``tree`` as its policy folder, ``pipeline`` as its pipeline) and
    decide on ``day``: :func:`placer.plan` and :func:`placer.policy.evaluate`. Exceptions
    expire relative to the case's own decision day, whatever day is judged."""
    import placer
    from placer.catalog import default_catalog, resolve_inventory
    from placer.errors import PlacerError
    from placer.loading import check_dataset_sites, load_pipeline_with_source
    from placer.policy import evaluate

    variant = dict(case)
    if tree is not None:
        variant["policies"] = tree
    if pipeline is not None:
        variant["pipeline"] = pipeline
    paths = materialize(variant, workdir, decision_day(case))  # expiries: from the case's day
    try:
        with time_limit(LOAD_TIME_LIMIT_S):
            pipe, sm = load_pipeline_with_source(paths["pipeline"])
            inventory = placer.load_inventory(paths["inventory"])
            policies = placer.load_policies(paths["policies"])
            catalog = default_catalog()
            sites = resolve_inventory(inventory, catalog)
            check_dataset_sites(pipe, sites, sm)
            plan = placer.plan(pipe, inventory, policies, today=day)
    except PlacerError as exc:
        raise Refused(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    locations = {key: catalog.location(key) for d in pipe.datasets for key in d.copies
                 if key in catalog}
    elig = evaluate(pipe, sites, policies, today=day, locations=locations)
    return Decision(plan, elig, policies)


def eligibility(d: Decision) -> dict[str, Any]:
    """Per job: what a decision is (eligible sets, holds, which rules reject, record, waive,
    admit or cap where), in a form that compares by value."""
    def rules(hits: Mapping[str, Any], attr: str = "rule") -> dict[str, list[str]]:
        return {site: sorted({getattr(h, attr) for h in hs}) for site, hs in sorted(hits.items())}

    return {j: {
        "allowed": sorted(e.allowed), "held": sorted(e.held), "rejected": rules(e.rejected),
        "audit": rules(e.audit),
        "waived": {s: sorted({f"{w.rule} by {w.exception}" for w in ws})
                   for s, ws in sorted(e.waived.items())},
        "allowed_by": {s: sorted(v) for s, v in sorted(e.allowed_by.items())},
        "limits": {s: sorted(v) for s, v in sorted(e.limits.items())},
        "penalties": dict(sorted(e.penalties.items())),
        "tags": {k: sorted(v) for k, v in sorted(e.tags.items())},
        "matched": sorted(e.matched_rules), "removed": sorted(e.removed),
        "ignored": sorted(e.ignored), "expired": sorted(e.expired), "derived": sorted(e.derived),
    } for j, e in d.elig.items()}


def placement(d: Decision) -> dict[str, Any]:
    """The plan's decision: status, where each job runs, what it rejected and held."""
    p = d.plan
    return {"status": p.status,
            "jobs": {j: [x.site, x.gpu, x.gpus, x.nodes, x.spot] for j, x in p.jobs.items()},
            "rejected": p.rejected, "reasons": sorted(p.reasons),
            "warnings": sorted(p.warnings), "budget_charges": p.budget_charges,
            "eligible": {j: sorted(s for s, v in row.items() if v.eligible)
                         for j, row in p.verdicts.items()}}


def against_oracle(verdict: Verdict, d: Decision, what: str) -> list[str]:
    """Sites placer finds eligible that the truth forbids (a held decision places nothing)."""
    if any(e.held for e in d.elig.values()):
        return []
    out = []
    for j, e in d.elig.items():
        extra = set(e.allowed) - verdict.allowed.get(j, frozenset())
        if extra:
            out.append(f"{what}: {j!r} is eligible on {sorted(extra)}; the truth allows only "
                       f"{sorted(verdict.allowed.get(j, ()))}")
    for j, x in d.plan.jobs.items():
        if x.site not in verdict.allowed.get(j, ()):
            out.append(f"{what}: the plan puts {j!r} on {x.site}; the truth allows only "
                       f"{sorted(verdict.allowed.get(j, ()))}")
    return out


def _outcome(name: str, body: Callable[[], list[str]], verdict: Verdict) -> Outcome:
    try:
        violations = body()
    except Refused as exc:
        return Outcome("refused", str(exc))
    except Exception as exc:
        return Outcome("crashed", f"while judging {name}", unexpected=_unexpected(exc),
                       why=dict(verdict.why), notes=[traceback.format_exc()[-2000:]])
    out = Outcome("compared", name, violations=violations)
    if violations:
        out.why = dict(verdict.why)
    return out


def _accepted(verdict: Verdict) -> list[str]:
    return [f"accepted: {r}" for r in verdict.refuse]


# -- shuffle ---------------------------------------------------------------------------------------
def hunt_shuffle(case: Case, workdir: Path) -> Outcome:
    verdict = judge(case["truth"])
    day = decision_day(case)

    def body() -> list[str]:
        try:
            a = decide(case, workdir / "as-written", day)
        except Refused as exc:
            try:
                decide(case, workdir / "rearranged", day, case["variant"]["policies"])
            except Refused:
                raise exc from None
            return [f"the policies as written are refused ({exc}); rearranged, accepted"]
        try:
            b = decide(case, workdir / "rearranged", day, case["variant"]["policies"])
        except Refused as exc:
            return [f"the policies as written are accepted; rearranged, refused ({exc})"]
        out = _accepted(verdict) + against_oracle(verdict, a, "as written")
        if a.plan.policy_hash != b.plan.policy_hash:
            out.append(f"policy_hash {a.plan.policy_hash} as written, {b.plan.policy_hash} "
                       "rearranged")
        out += [f"eligibility: {x}" for x in diff(eligibility(a), eligibility(b))]
        out += [f"plan: {x}" for x in diff(placement(a), placement(b))]
        return out

    return _outcome("shuffle", body, verdict)


# -- expiry ----------------------------------------------------------------------------------------
def without_exception(tree: Mapping[str, Any], xid: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(tree))
    for doc in out.values():
        if isinstance(doc, dict) and doc.get("exceptions"):
            doc["exceptions"] = [e for e in doc["exceptions"] if e["id"] != xid]
            if not doc["exceptions"]:
                del doc["exceptions"]
    return out


def postponed(tree: Mapping[str, Any], xid: str, days: int) -> dict[str, Any]:
    """``tree`` with exception ``xid`` expiring ``days`` later (a planted hole)."""
    out = copy.deepcopy(dict(tree))
    for doc in out.values():
        for e in doc.get("exceptions", ()) if isinstance(doc, dict) else ():
            if e["id"] == xid:
                e["expires"] = expires_placeholder(int(e["expires"][4:-1]) + days)
    return out


def hunt_expiry(case: Case, workdir: Path, sabotage: str | None = None) -> Outcome:
    """``sabotage="expires-late"``: placer is shown the exception expiring later than it does
    (a planted hole, for the test that checks this property can find one)."""
    judged = case["judge"]
    xid = judged["exception"]
    exc = next(e for e in case["truth"]["exceptions"] if e["id"] == xid)
    base = decision_day(case)
    expires = int(exc["expires_in"])
    verdict = judge(case["truth"])
    without = without_exception(case["policies"], xid)

    def body() -> list[str]:
        out: list[str] = []
        days = {"the day it expires": expires, "the day after": expires + 1,
                f"{judged['later']} days after": expires + int(judged["later"])}
        for k, (when, offset) in enumerate(days.items()):
            day = base + datetime.timedelta(days=offset)
            truth = judge(case["truth"], offset)
            try:
                w = decide(case, workdir / f"with-{k}", day,
                           postponed(case["policies"], xid, 40) if sabotage else None)
            except Refused:
                if k == 0:
                    raise
                return [*out, f"refused on {when} ({day}), accepted on the day it expires"]
            o = decide(case, workdir / f"without-{k}", day, without)
            out += [f"{when}: {v}" for v in _accepted(verdict) if k == 0]
            out += against_oracle(truth, w, f"{when} ({day})")
            ew, eo = eligibility(w), eligibility(o)
            for j in ew:
                gone = set(eo[j]["allowed"]) - set(ew[j]["allowed"])
                if gone:
                    out.append(f"{when}: exception {xid} narrows {j!r}: without it eligible "
                               f"also on {sorted(gone)}")
                used = sorted(s for s, ws in ew[j]["waived"].items()
                              if any(x.endswith(f" by {xid}") for x in ws))
                if used and xid not in truth.waivers[j]:
                    out.append(f"{when}: exception {xid} waives rules for {j!r} on {used}, but "
                               "it does not apply to the job on that day (expired or no match)")
                if offset > expires:
                    if ew[j]["allowed"] != eo[j]["allowed"] or ew[j]["held"] != eo[j]["held"]:
                        out.append(f"{when}: expired exception {xid} still changes {j!r}: "
                                   f"eligible {ew[j]['allowed']}, without it {eo[j]['allowed']}")
                    if xid in truth.expired[j] and not any(
                            f"exception {xid!r}" in x for x in ew[j]["expired"]):
                        out.append(f"{when}: {j!r} matches expired exception {xid}, and the "
                                   "decision does not say it was ignored as expired")
            if offset > expires:
                out += [f"{when}: plan: {x}" for x in diff(
                    {k2: v for k2, v in placement(o).items() if k2 != "warnings"},
                    {k2: v for k2, v in placement(w).items() if k2 != "warnings"})]
        return out

    return _outcome("expiry", body, verdict)


# -- team ------------------------------------------------------------------------------------------
def organisation_only(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {p: d for p, d in tree.items()
            if isinstance(d, str) or d.get("layer", "organisation") != "team"}


def hunt_team(case: Case, workdir: Path) -> Outcome:
    verdict = judge(case["truth"])
    day = decision_day(case)

    def body() -> list[str]:
        both = decide(case, workdir / "with-team", day)
        out = _accepted(verdict) + against_oracle(verdict, both, "with the team files")
        try:
            org = decide(case, workdir / "organisation", day, organisation_only(case["policies"]))
        except Refused as exc:
            return [*out, f"the organisation's files alone are refused ({exc}), with the "
                    "team's accepted"]
        eb, eo = eligibility(both), eligibility(org)
        for j in eb:
            wider = set(eb[j]["allowed"]) - set(eo[j]["allowed"])
            if wider:
                out.append(f"the team files widen {j!r}: eligible on {sorted(wider)} only with "
                           f"them (organisation alone: {eo[j]['allowed']}, with the team: "
                           f"{eb[j]['allowed']})")
            if eo[j]["held"] and not eb[j]["held"]:
                out.append(f"the team files lift the hold on {j!r}: {eo[j]['held']}")
        for j, x in both.plan.jobs.items():
            if x.site not in eo[j]["allowed"]:
                out.append(f"with the team files the plan puts {j!r} on {x.site}; the "
                           f"organisation alone allows {eo[j]['allowed']}")
        return out

    return _outcome("team", body, verdict)


# -- audit -----------------------------------------------------------------------------------------
def with_rule(tree: Mapping[str, Any], rid: str, mode: str | None) -> dict[str, Any]:
    """``tree`` with rule ``rid`` in ``mode``, or (``None``) deleted, with every exception's
    waiver of it (an exception left waiving nothing goes too)."""
    out = copy.deepcopy(dict(tree))
    for doc in out.values():
        if not isinstance(doc, dict):
            continue
        for r in doc.get("rules", ()):
            if r["id"] == rid and mode is not None:
                r["mode"] = mode
        if mode is None:
            doc["rules"] = [r for r in doc.get("rules", ()) if r["id"] != rid]
            for e in doc.get("exceptions", ()):
                e["waives"] = [w for w in e["waives"] if w != rid]
            doc["exceptions"] = [e for e in doc.get("exceptions", ()) if e["waives"]]
            for section in ("rules", "exceptions"):
                if not doc[section]:
                    del doc[section]
    return out


def hunt_audit(case: Case, workdir: Path, sabotage: str | None = None) -> Outcome:
    """``sabotage="enforced"``: placer is shown the rule still enforced where it should be in
    audit mode (a planted hole, for the test that checks this property can find one)."""
    rid, mode = case["judge"]["rule"], case["judge"]["mode"]
    verdict = judge(case["truth"])
    day = decision_day(case)

    def body() -> list[str]:
        enforced = decide(case, workdir / "enforce", day)
        out = _accepted(verdict) + against_oracle(verdict, enforced, "enforced")
        try:
            flipped = decide(case, workdir / mode, day,
                             with_rule(case["policies"], rid, "enforce" if sabotage else mode))
        except Refused as exc:
            return [*out, f"the policies are accepted with {rid} enforced, refused with it in "
                    f"{mode} mode ({exc})"]
        deleted = decide(case, workdir / "deleted", day, with_rule(case["policies"], rid, None))
        ee, ef, ed = eligibility(enforced), eligibility(flipped), eligibility(deleted)
        for j in ef:
            for part in ("allowed", "held", "rejected", "waived", "allowed_by"):
                if ef[j][part] != ed[j][part]:
                    out.append(f"{j!r}: {part} with {rid} in {mode} mode {ef[j][part]}, "
                               f"without it {ed[j][part]}")
            rejects = sorted(s for s, rs in ee[j]["rejected"].items() if rid in rs)
            unrecorded = [s for s in rejects if rid not in ef[j]["audit"].get(s, ())]
            if unrecorded:
                kept = sorted(s for s, rs in ef[j]["audit"].items() if rid in rs)
                out.append(f"{j!r}: enforced, {rid} rejects {unrecorded}; in {mode} mode it "
                           f"records only {kept}")
            row = flipped.plan.verdicts.get(j, {})
            missing = [s for s in rejects if not any(a.startswith(f"{rid} ")
                                                     for a in row[s].audit)] if row else rejects
            if missing:
                out.append(f"{j!r}: the plan's verdicts do not record {rid} ({mode}) on "
                           f"{missing}")
            if mode == "warn":
                quiet = [s for s in rejects if not any(
                    w.startswith(f"{j}: on {s}: rule {rid!r}") for w in flipped.plan.warnings)]
                if quiet:
                    out.append(f"{j!r}: warn-mode {rid} would reject {quiet}, and the plan "
                               "gives no warning there")
        pf, pd = placement(flipped), placement(deleted)
        for key in ("status", "jobs", "rejected", "eligible"):
            out += [f"plan in {mode} mode vs without {rid}: {x}" for x in diff(pd[key], pf[key],
                                                                             key)]
        return out

    return _outcome("audit", body, verdict)


# -- look-alikes -----------------------------------------------------------------------------------
def plainly_spelt(case: Case) -> dict[str, Any]:
    """The case's pipeline with every dataset tag (and store tag) spelt as the truth says."""
    pipe = copy.deepcopy(case["pipeline"])
    truth = case["truth"]["datasets"]
    for name, spec in pipe.get("datasets", {}).items():
        t = truth[name]
        if t["tags"]:
            spec["tags"] = {k: "" if v is None else v for k, v in t["tags"].items()}
        if t.get("storage_tags"):
            spec["storage_tags"] = dict(t["storage_tags"])
    return pipe


def hunt_lookalike(case: Case, workdir: Path) -> Outcome:
    verdict = judge(case["truth"])
    day = decision_day(case)

    def body() -> list[str]:
        spelt = decide(case, workdir / "spelt", day)
        out = _accepted(verdict) + against_oracle(verdict, spelt, "as spelt")
        plain = decide(case, workdir / "plain", day, pipeline=plainly_spelt(case))
        es, ep = eligibility(spelt), eligibility(plain)
        for j in es:
            if es[j]["matched"] != ep[j]["matched"]:
                out.append(f"{j!r}: rules matched as spelt {es[j]['matched']}, spelt plainly "
                           f"{ep[j]['matched']} (a look-alike must be caught by every rule the "
                           "real value is)")
            wider = set(es[j]["allowed"]) - set(ep[j]["allowed"])
            if wider:
                out.append(f"{j!r}: eligible on {sorted(wider)} only as spelt (look-alikes), "
                           "not when spelt plainly")
            for site, ws in es[j]["waived"].items():
                for w in ws:
                    x = w.split(" by ", 1)[1]
                    if x not in verdict.waivers[j]:
                        out.append(f"{j!r} on {site}: exception {x} waives {w.split()[0]}, "
                                   "but it does not match the job strictly (a look-alike?)")
            for site, rules in es[j]["allowed_by"].items():
                for r in rules:
                    if r not in verdict.allows[j]:
                        out.append(f"{j!r} on {site}: admitted by allow {r}, which does not "
                                   "match the job strictly (a look-alike?)")
        return out

    return _outcome("lookalike", body, verdict)


HUNTERS: dict[str, Callable[[Case, Path], Outcome]] = {
    "shuffle": hunt_shuffle, "expiry": hunt_expiry, "team": hunt_team, "audit": hunt_audit,
    "lookalike": hunt_lookalike,
}
