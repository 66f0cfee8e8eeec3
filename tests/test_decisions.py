"""The decision log and the explanations it records (issue 11, "Evidence and explanations").

The log is append-only and checkably so (a sha256 chain that :func:`verify` walks), whole lines
even when processes append at once, owner-only, stamped with the git commit of the policies,
free of secrets; the explanations render every kind of evidence the policies produce; and
:func:`placer.decisions.diff` re-decides recorded decisions under changed policies.
"""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import placer
from placer import decisions
from placer.decisions import Decision, DecisionLogError
from placer.explain import explain_data
from placer.models import Dataset, Inventory, Job, Pipeline, Plan

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 12, 6)
NOW = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)

INV = Inventory.model_validate({"sites": {
    "fra": {"location": "onprem:fra-dc1", "country": "DE",
            "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 9}]},
    "nyc": {"location": "onprem:nyc-dc1", "country": "US",
            "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}]},
    "aws-va": {"location": "aws:us-east-1"}}})


def load(folder: Path, **doc: Any) -> placer.PolicySet:
    folder.mkdir(parents=True, exist_ok=True)
    body = {"apiVersion": "placer/v1", "kind": "PolicySet", "name": "p", **doc}
    (folder / "p.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return placer.load_policies(folder / "p.yaml")


def rule(rid: str, effect: str, sites: Any, match: dict[str, Any] | None = None,
         **kw: Any) -> dict[str, Any]:
    return {"id": rid, "effect": effect, "match": match or {}, "sites": sites,
            "message": f"message of {rid}", **kw}


def job(name: str, *inputs: str, **kw: Any) -> Job:
    return Job.model_validate({"name": name, "command": f"python {name}.py",
                               "gpu_types": {"A100-80GB": 1}, "inputs": inputs, **kw})


EU = Pipeline(name="eu", datasets=(Dataset(
    name="notes", location="onprem:fra-dc1", size=10, tags={"residency": "EU"},
    provenance={"location": "s3:GetBucketLocation at 2026-12-06T09:00Z"}),),
    jobs=(job("train", "notes"),))


def _record(tmp_path: Path, *, reasons: tuple[str, ...] = (), **kw: Any) -> Decision:
    ps = kw.pop("policies", None) or load(tmp_path / "pol", rules=[
        rule("no-aws", "forbid", "provider:aws", {"tags": {"residency": "EU"}})])
    plan = placer.plan(EU, INV, ps, today=TODAY)
    kw.setdefault("clock", lambda: NOW)
    rec = decisions.record(plan, pipeline=EU, inventory=INV, policies=ps, cwd=tmp_path, **kw)
    return rec.model_copy(update={"reasons": reasons}) if reasons else rec


# -- the record ----------------------------------------------------------------------------------

def test_a_record_holds_what_deciding_again_needs_and_every_verdict(tmp_path: Path) -> None:
    rec = _record(tmp_path, kind="submit", run="run-20261206-abcdef", spent={"b@2026-12-01": 5})
    data = json.loads(rec.model_dump_json())
    assert data["schema"] == "placer/decision/v1" and data["time"] == "2026-12-06T09:30:00Z"
    assert (rec.kind, rec.run, rec.decided_on, rec.status) == (
        "submit", "run-20261206-abcdef", TODAY, "placed")
    assert rec.policy.hash == rec.plan["policy_hash"] and rec.policy.sources
    # Inputs verbatim, with the sha256 of the journal's text form of them.
    text = json.dumps(EU.model_dump(mode="json", by_alias=True), sort_keys=True,
                      separators=(",", ":"))
    assert rec.inputs.pipeline_sha256 == "sha256:" + hashlib.sha256(
        text.encode()).hexdigest()
    assert decisions.inputs_of(rec) == (EU, INV)
    assert rec.inputs.spent == {"b@2026-12-01": 5.0}
    # Dataset facts with their provenance.
    assert rec.datasets["notes"]["provenance"] == {
        "location": "s3:GetBucketLocation at 2026-12-06T09:00Z"}
    # Per job and site: the verdict, the rule, its message and a hint.
    train = rec.jobs["train"]
    assert train.placement is not None and train.placement.site == "nyc"
    assert train.eligible == ("fra", "nyc")
    aws = train.sites["aws-va"]
    assert (aws.eligible, aws.rules, aws.messages) == (False, ("no-aws",), ("message of no-aws",))
    assert "Run the job on a site outside provider:aws" in aws.hints[0]
    assert Plan.model_validate(rec.plan) == placer.plan(EU, INV, placer.load_policies(
        tmp_path / "pol"), today=TODAY).model_copy(update={"solve_time_s": rec.plan[
            "solve_time_s"]})


def test_a_strategy_record_carries_the_decision_and_is_chained_as_any(tmp_path: Path) -> None:
    """An online strategy's decision (issue 13) is a record of kind ``strategy``: the run's
    inputs, policy hash and plan, and the decision with its figures; only that kind has one."""
    choice = decisions.StrategyChoice(
        job="train", decision="wait", site=None, reason="on-prem is full", plan_seq=0,
        waited_h=0.0, predicted_wait_h=0.25, allowance_h=1.5,
        burst={"site": "nyc", "usd": 12.5, "egress_usd": 0.5, "compute_usd": 12.0},
        policy={"allowed": ["fra", "nyc"], "denied": {"aws-va": ["no-aws"]}},
        facts={"asked": "on_ready", "wait_h": 0.3})
    rec = _record(tmp_path, kind="strategy", run="run-20261206-abcdef", strategy=choice)
    log = tmp_path / "decisions.jsonl"
    decisions.append(rec, log)
    [(_, back)] = list(decisions.read(log))
    assert back.strategy == choice and back.kind == "strategy"
    assert back.policy.hash == back.plan["policy_hash"]
    assert decisions.verify(log).ok
    for kind, strategy in (("strategy", None), ("submit", choice)):
        with pytest.raises(ValueError, match="kind='strategy', and only it"):
            _record(tmp_path, kind=kind, strategy=strategy)


def test_the_clock_must_be_utc_aware(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="aware"):
        _record(tmp_path, clock=lambda: datetime(2026, 12, 6))


# -- the chain -----------------------------------------------------------------------------------

def test_the_log_is_a_chain_and_verify_finds_the_first_broken_line(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "decisions.jsonl"
    rec = _record(tmp_path)
    for _ in range(3):
        decisions.append(rec, log)
    ok = decisions.verify(log)
    assert (ok.ok, ok.lines, ok.broken_line) == (True, 3, None)
    lines = log.read_bytes().splitlines(keepends=True)
    first = json.loads(lines[0])
    assert first["prev"] == decisions.GENESIS
    assert json.loads(lines[1])["prev"] == "sha256:" + hashlib.sha256(
        lines[0].rstrip(b"\n")).hexdigest()

    # An edit is caught on the edited line.
    edited = lines[1].replace(b'"time":"2026-12-06T09:30:00Z"', b'"time":"2026-12-06T10:30:00Z"')
    assert edited != lines[1]
    log.write_bytes(lines[0] + edited + lines[2])
    v = decisions.verify(log)
    assert (v.ok, v.broken_line) == (False, 2) and "edited" in (v.problem or "")

    # An edit whose digest was recomputed breaks the chain on the next line.
    data = json.loads(edited)
    data.pop("digest")
    body = json.dumps(data, sort_keys=True, separators=(",", ":"))
    data["digest"] = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    forged = json.dumps(data, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    log.write_bytes(lines[0] + forged + lines[2])
    v = decisions.verify(log)
    assert (v.ok, v.broken_line) == (False, 3) and "removed, inserted or reordered" in (
        v.problem or "")

    # A removed line, a removed first line, a torn last line.
    log.write_bytes(lines[0] + lines[2])
    assert decisions.verify(log).broken_line == 2
    log.write_bytes(lines[1] + lines[2])
    v = decisions.verify(log)
    assert v.broken_line == 1 and "removed before it" in (v.problem or "")
    log.write_bytes(lines[0] + lines[1][:100])
    v = decisions.verify(log)
    assert v.broken_line == 2 and "incomplete" in (v.problem or "")


def test_the_log_is_owner_only_and_found_by_env_or_beside_the_journal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "new" / "dir" / "decisions.jsonl"
    decisions.append(_record(tmp_path), log)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    monkeypatch.setenv("PLACER_DECISIONS", str(log))
    assert decisions.default_path() == log
    monkeypatch.delenv("PLACER_DECISIONS")
    monkeypatch.setenv("PLACER_JOURNAL", str(tmp_path / "j" / "journal.db"))
    assert decisions.default_path() == tmp_path / "j" / "decisions.jsonl"


def test_a_foreign_or_torn_log_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    rec = _record(tmp_path)
    foreign = tmp_path / "notes.txt"
    foreign.write_text("shopping list\n")
    with pytest.raises(DecisionLogError, match="not a placer/decision/v1 record"):
        decisions.append(rec, foreign)
    with pytest.raises(DecisionLogError, match="not a placer/decision/v1 record"):
        decisions.check_writable(foreign)
    assert foreign.read_text() == "shopping list\n"
    torn = tmp_path / "torn.jsonl"
    decisions.append(rec, torn)
    torn.write_bytes(torn.read_bytes()[:-10])
    with pytest.raises(DecisionLogError, match="last line is incomplete"):
        decisions.append(rec, torn)


_APPENDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from placer import decisions
    rec = decisions.Decision.model_validate_json(Path(sys.argv[1]).read_text())
    rec = rec.model_copy(update={"reasons": (sys.argv[3] * 200_000,)})
    for _ in range(int(sys.argv[4])):
        decisions.append(rec, Path(sys.argv[2]))
""")


def test_two_processes_appending_at_once_write_whole_chained_lines(tmp_path: Path) -> None:
    """Each record is ~200 kB (far above PIPE_BUF): whole lines come from O_APPEND, one write
    and the lock, not from luck."""
    src = tmp_path / "rec.json"
    src.write_text(_record(tmp_path).model_dump_json())
    log = tmp_path / "decisions.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, str(src), str(log), tag, "12"],
                              cwd=ROOT) for tag in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    v = decisions.verify(log)
    assert (v.ok, v.lines) == (True, 24), v
    tags = [json.loads(line)["reasons"][0][0] for line in log.read_bytes().splitlines()]
    assert sorted(tags) == ["a"] * 12 + ["b"] * 12


def test_a_record_holding_a_sites_secret_is_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "muc-5ecr3t-t0ken-do-not-leak-42"
    monkeypatch.setenv("MUNICH_RAY", secret)
    inv = INV.model_validate({"sites": {"fra": {
        "location": "onprem:fra-dc1", "country": "DE",
        "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 9}],
        "cluster": {"backend": "ray", "token_env": "MUNICH_RAY"}}}})
    pipe = Pipeline(name="leaky", jobs=(job("train", command=f"train --token {secret}"),))
    plan = placer.plan(pipe, inv, None, today=TODAY)
    rec = decisions.record(plan, pipeline=pipe, inventory=inv, policies=None)
    log = tmp_path / "decisions.jsonl"
    with pytest.raises(DecisionLogError, match="never their values"):
        decisions.append(rec, log)
    assert log.read_bytes() == b""
    clean = Pipeline(name="clean", jobs=(job("train"),))
    decisions.append(decisions.record(placer.plan(clean, inv, None, today=TODAY),
                                      pipeline=clean, inventory=inv, policies=None), log)
    assert secret not in log.read_text() and '"token_env":"MUNICH_RAY"' in log.read_text()


# -- git -----------------------------------------------------------------------------------------

def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t",
                           "-c", "commit.gpgsign=false", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_records_are_stamped_with_the_policy_folders_commit(tmp_path: Path) -> None:
    repo = tmp_path / "policies-repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    ps = load(repo / "org", rules=[rule("no-aws", "forbid", "provider:aws")])
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "policies")
    head = _git(repo, "rev-parse", "HEAD")
    [stamp] = _record(tmp_path, policies=ps).policy.git
    assert (stamp.root, stamp.commit, stamp.dirty, stamp.files) == (
        str(repo.resolve()), head, False, ("org/p.yaml",))

    (repo / "org" / "p.yaml").write_text((repo / "org" / "p.yaml").read_text() + "# edited\n")
    [stamp] = _record(tmp_path, policies=ps).policy.git
    assert (stamp.commit, stamp.dirty) == (head, True)
    _git(repo, "checkout", "-q", "--", "org/p.yaml")
    (repo / "notes.md").write_text("not a policy file, not loaded\n")  # untracked, elsewhere
    assert _record(tmp_path, policies=ps).policy.git[0].dirty is False

    new = load(repo / "team", rules=[rule("no-gcp", "forbid", "provider:gcp")])  # untracked
    assert _record(tmp_path, policies=new).policy.git[0].dirty is True


def test_no_git_means_no_stamp_never_an_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    outside = load(tmp_path / "plain", rules=[rule("no-aws", "forbid", "provider:aws")])
    assert _record(tmp_path, policies=outside).policy.git == ()
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    ps = load(repo, rules=[rule("no-aws", "forbid", "provider:aws")])
    [unborn] = _record(tmp_path, policies=ps).policy.git  # a repository with no commit yet
    assert (unborn.commit, unborn.dirty) == (None, True)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))  # git is not installed
    assert _record(tmp_path, policies=ps).policy.git == ()


# -- what explain renders -------------------------------------------------------------------------

EVIDENCE: dict[str, Any] = {
    "tagging": [{"id": "clinical-is-phi", "match": {"uri": "s3://clinical-*/**"},
                 "tags": {"class": "phi"}}],
    "transforms": [{"id": "deid-v3", "match": {"images": "registry.example/deid@sha256:*"},
                    "removes": {"class": "phi"}, "message": "reviewed by the DPO"}],
    "rules": [rule("phi-onprem", "require", "provider:onprem", {"tags": {"class": "phi"}}),
              rule("no-us", "forbid", "country:US", {"tags": {"residency": "EU"}}),
              rule("watch-aws", "forbid", "provider:aws", mode="warn"),
              rule("audit-nyc", "forbid", "site:nyc", mode="audit")],
    "exceptions": [
        {"id": "exc-1", "waives": ["no-us"], "match": {"jobs": "train"}, "sites": ["site:nyc"],
         "expires": "2026-12-31", "ticket": "SEC-42", "approved_by": "dpo@example.org",
         "reason": "migration"},
        {"id": "exc-old", "waives": ["no-us"], "match": {"jobs": "finetune"},
         "expires": "2026-01-31", "ticket": "SEC-7", "approved_by": "dpo@example.org",
         "reason": "old"}],
}
CLINICAL = Pipeline(name="clin", datasets=(Dataset(
    name="notes", uri="s3://clinical-eu/notes/", location="onprem:fra-dc1", size=10,
    tags={"residency": "EU"}),), jobs=(
    job("deid", "notes", image="registry.example/deid@sha256:ab12", outputs={"clean": 1},
        removes_tags={"class": ["phi"]}),
    job("train", "notes"),
    job("finetune", "deid.clean", removes_tags={"residency": ["EU"]})))


@pytest.fixture
def evidence_plan(tmp_path: Path) -> Plan:
    return placer.plan(CLINICAL, INV, load(tmp_path, **EVIDENCE), today=TODAY)


def test_explain_renders_waivers_audit_tags_removals_and_expired_exceptions(
        evidence_plan: Plan) -> None:
    text = evidence_plan.explain()
    assert "decided on 2026-12-06" in text
    train, deid, finetune = (evidence_plan.explain(j) for j in ("train", "deid", "finetune"))
    # A waiver, with its exception, ticket, approver and expiry.
    assert ("  waived on nyc: no-us by exception exc-1 (ticket SEC-42, approved by "
            "dpo@example.org, expires 2026-12-31)") in train
    # Audit and warn modes: what they would have rejected, not enforced; warn also warns.
    assert "  would be rejected by audit-nyc (audit), not enforced: nyc" in train
    assert "  would be rejected by watch-aws (warn), not enforced: aws-va" in train
    assert "  warning: train: on aws-va: rule 'watch-aws' (warn mode) would reject it" in text
    # Derived tags (which tagging rule), removed tags (which transform), ignored removals.
    assert ("  derived tag: dataset 'notes': class=phi derived by tagging rule "
            "'clinical-is-phi'") in train
    assert ("  removed tag: class=phi removed by job 'deid', approved by transform "
            "'deid-v3'") in deid
    assert "  removal ignored: job 'finetune' declares it removes residency=EU" in finetune
    # An expired exception is ignored, and says so.
    assert ("  exception ignored: exception 'exc-old' (ticket SEC-7) expired on 2026-01-31 "
            "and is ignored") in finetune
    # The hint names the de-identified copy that would make the site eligible.
    assert ("eligible if dataset 'notes' is replaced by its de-identified copy, the output of "
            "job 'deid' (class=phi removed, approved by transform 'deid-v3')") in train
    assert "de-identified copy" not in deid  # not for the transform's own input


PUBLIC = Pipeline(name="pub", datasets=(Dataset(name="d", location="onprem:fra-dc1",
                                                tags={"residency": "none"}),),
                  jobs=(Job(name="train", command="x", gpu_types={"A100-80GB": 10},
                            resources={"gpus": 8}, inputs=("d",), labels={"team": "nlp"}),))
KEY = "team-budget[team=nlp]@2026-12-01"


def test_explain_renders_limits_and_held_budgets(tmp_path: Path) -> None:
    ps = load(tmp_path, rules=[
        rule("cap", "limit", "provider:aws", max_usd_per_job=50),
        rule("team-budget", "limit", "provider:onprem", on_excess="hold",
             budget={"usd": 1000, "period": "month", "per_label": "team"})])
    first = placer.plan(PUBLIC, INV, ps, today=TODAY)
    text = first.explain()
    assert "  limit: limit 'cap': 1 option(s) on aws-va over the cap" in text
    assert f"  charges budget {KEY}: $80.00" in text
    held = placer.plan(PUBLIC, INV, ps, today=TODAY, spent={KEY: 950.0})
    assert held.status == "held"
    text = held.explain("train")
    assert text.startswith("train: held (plan held)")
    assert (f"  held: budget 95% used ({KEY}: $950.00 of $1,000.00 this month; this plan needs "
            "$80.00 more)") in text
    assert ("    hint: eligible when the next month starts (2027-01-01) or budget 'team-budget' "
            "is raised: $50.00 is left of it") in text
    [b] = explain_data(held).budgets
    assert (b.key, b.rule, b.spent_usd, b.cap_usd, b.used_pct, b.needs_usd, b.next_period) == (
        KEY, "team-budget", 950.0, 1000.0, 95.0, 80.0, date(2027, 1, 1))
    assert explain_data(held).jobs["train"].status == "held"


def test_hints_for_default_deny_and_data_at_rest(tmp_path: Path) -> None:
    deny = load(tmp_path / "deny", defaults={"decision": "deny"},
                rules=[rule("onprem-ok", "allow", "provider:onprem")])
    text = placer.plan(PUBLIC, INV, deny, today=TODAY).explain("train")
    assert "  rejected by default-deny: aws-va" in text
    assert ("    hint: eligible if an allow rule of the organisation layer that matches this job "
            "names the site") in text

    rest = load(tmp_path / "rest", rules=[
        rule("eu-in-eea", "require", "jurisdiction:EEA", {"tags": {"residency": "EU"}})])
    pipe = Pipeline(name="rest", datasets=(Dataset(
        name="d", location="onprem:fra-dc1", replicas=("aws:us-east-1",),
        tags={"residency": "EU"}),), jobs=(job("train", "d"),))
    plan = placer.plan(pipe, INV, rest, today=TODAY)
    x = explain_data(plan).jobs["train"]
    assert x.status == "held" and x.eligible == ()
    assert x.hints == ("eligible once dataset 'd' has no copy at aws:us-east-1: delete that "
                       "replica or move it where rule 'eu-in-eea' lets the data be",)
    text = plan.explain("train")
    assert "  held: data-at-rest: dataset 'd' has a copy at aws:us-east-1" in text
    assert "    hint: eligible once dataset 'd' has no copy at aws:us-east-1" in text


def test_hints_for_unknown_facts(tmp_path: Path) -> None:
    ps = load(tmp_path, required_tags=["residency"], rules=[rule("no-aws", "forbid",
                                                                 "provider:aws")])
    pipe = Pipeline(name="unknown", datasets=(Dataset(name="nowhere", tags={"residency": "EU"}),
                                              Dataset(name="untagged", location="onprem:fra-dc1")),
                    jobs=(job("a", "nowhere"), job("b", "untagged")))
    x = explain_data(placer.plan(pipe, INV, ps, today=TODAY)).jobs
    assert x["a"].hints == ("eligible once dataset 'nowhere' has a known location (write "
                            "`location:` or resolve it from its store)",)
    assert x["b"].hints == ("eligible once dataset 'untagged' carries 'residency' with a value",)


# -- deciding again -------------------------------------------------------------------------------

def test_diff_lists_every_changed_decision_with_the_rules_behind_it(tmp_path: Path) -> None:
    old = load(tmp_path / "old", rules=[rule("no-aws", "forbid", "provider:aws")])
    log = tmp_path / "logs" / "decisions.jsonl"
    decisions.append(_record(tmp_path, policies=old), log)
    new = load(tmp_path / "new", rules=[rule("no-aws", "forbid", "provider:aws"),
                                        rule("no-us", "forbid", "country:US")])
    result = decisions.diff(log.parent, old, new)
    assert result.policy_changes == ("rule 'no-us' added (forbid)",)
    assert (result.records, result.redecided) == (1, 1)
    [c] = result.changes
    assert (c.job, c.changed, c.rules) == ("train", ("eligible", "placement"), ("no-us",))
    assert (c.old.site, c.new.site, c.rejected) == ("nyc", "fra", ("nyc",))
    assert c.why[0] == "now rejected by no-us: nyc"
    assert (c.source, c.line, c.kind) == (str(log), 1, "plan")
    # And back: the site no longer rejected, by the rule that used to reject it.
    [back] = decisions.diff(log.parent, new, old).changes
    assert (back.admitted, back.rules) == (("nyc",), ("no-us",))

    same = decisions.diff(log.parent, old, load(tmp_path / "same", rules=[
        rule("no-aws", "forbid", "provider:aws")]))
    assert same.changes == () and same.undecidable == ()


def test_diff_says_a_plan_without_inputs_cannot_be_decided_again(tmp_path: Path) -> None:
    old = load(tmp_path / "old", rules=[rule("no-aws", "forbid", "provider:aws")])
    new = load(tmp_path / "new", rules=[rule("no-us", "forbid", "country:US")])
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "plan.json").write_text(placer.plan(EU, INV, old, today=TODAY).model_dump_json())
    (plans / "record.json").write_text(_record(tmp_path, policies=old).model_dump_json())
    result = decisions.diff(plans, old, new)
    [u] = result.undecidable
    assert u.source.endswith("plan.json") and "cannot be re-decided" in u.reason
    assert result.redecided == 1 and {c.job for c in result.changes} == {"train"}


def test_diff_of_a_held_decision_names_the_rule_that_holds_it(tmp_path: Path) -> None:
    old = load(tmp_path / "old", rules=[])
    pipe = Pipeline(name="rest", datasets=(Dataset(
        name="d", location="onprem:fra-dc1", replicas=("aws:us-east-1",),
        tags={"residency": "EU"}),), jobs=(job("train", "d"),))
    plan = placer.plan(pipe, INV, old, today=TODAY)
    log = tmp_path / "decisions.jsonl"
    decisions.append(decisions.record(plan, pipeline=pipe, inventory=INV, policies=old), log)
    new = load(tmp_path / "new", rules=[
        rule("eu-in-eea", "require", "jurisdiction:EEA", {"tags": {"residency": "EU"}})])
    [c] = decisions.diff(log, old, new).changes
    assert c.changed == ("eligible", "held", "placement") and c.new.status == "held"
    assert c.rules == ("eu-in-eea",)
