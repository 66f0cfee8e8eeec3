"""The executor end to end on fake backends: DAG order, retries, failover, resume, cancel."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from placer.errors import BackendError, ExecutionError, ResidencyError, SiteUnreachableError
from placer.executor import RetryPolicy, submission_id
from placer.journal import Journal
from placer.testing import FakeStorageResolver
from tests.executor.world import EU, ROOTS, TOKEN, US, World


def latest(world: World, run_id: str) -> dict[str, tuple[str, str | None, int]]:
    st = world.journal.steps(run_id)
    out: dict[str, tuple[str, str | None, int]] = {}
    for s in sorted(st, key=lambda s: s.attempt):
        out[s.job] = (s.state, s.site, s.attempt)
    return out


def test_three_jobs_across_two_sites_end_to_end(tmp_path: Path) -> None:
    w = World(tmp_path)
    run = w.start()
    st = run.wait(timeout=100)
    assert st.state == "SUCCEEDED"
    assert latest(w, run.id) == {"a": ("SUCCEEDED", EU, 1), "b": ("SUCCEEDED", US, 1),
                                 "c": ("SUCCEEDED", US, 1)}
    # c was submitted only after both a and b were done, with b's output as its input.
    c = w.fakes[US].jobs[submission_id(run.id, "c", 1)]
    assert json.loads(c.env["PLACER_INPUTS"]) == {
        "b.out": f"{ROOTS['onprem:nyc-dc1']}/{run.id}/b/out"}
    assert c.env["PLACER_OUTPUT_DIR"] == f"{ROOTS['onprem:nyc-dc1']}/{run.id}/c/"
    manifest = json.loads(c.env["PLACER_MANIFEST"])
    assert manifest["policy_hash"].startswith("sha256:") and manifest["attempt"] == 1
    a = w.fakes[EU].jobs[submission_id(run.id, "a", 1)]
    assert json.loads(a.env["PLACER_INPUTS"]) == {"eu_notes": "mem://fra/data/notes"}
    # Every output lies in the location of the site the job ran on.
    for fake, root in ((w.fakes[EU], ROOTS["onprem:fra-dc1"]),
                       (w.fakes[US], ROOTS["onprem:nyc-dc1"])):
        for fj in fake.jobs.values():
            assert all(u.startswith(root) for u in json.loads(fj.env["PLACER_OUTPUTS"]).values())
    assert all(f.count(sid) == 1 for f in w.fakes.values() for sid in f.submissions)
    assert st.cost_usd == pytest.approx(w.plan().cost_usd)
    assert "PENDING -> RUNNING" in run.logs("c")
    kinds = [e.kind for e in w.journal.events(run.id)]
    assert kinds[0] == "run_created" and kinds[-1] == "run_state"
    # Intent is written before the submission it announces.
    for j in "abc":
        ev = [e.kind for e in w.journal.events(run.id) if e.job == j]
        assert ev[:2] == ["intent", "state"]


def test_bounded_concurrency(tmp_path: Path) -> None:
    w = World(tmp_path)
    run = w.start(max_concurrency=1)
    in_flight = [len(f.running()) for f in w.fakes.values()]
    assert sum(in_flight) == 1
    assert run.wait(100).state == "SUCCEEDED"


def test_a_failing_job_is_retried_with_backoff_then_succeeds(tmp_path: Path) -> None:
    w = World(tmp_path, outcomes={"b": ["FAILED", "FAILED", "SUCCEEDED"]})
    run = w.start()
    st = run.wait(timeout=10_000)
    assert st.state == "SUCCEEDED"
    b = [s for s in w.journal.steps(run.id) if s.job == "b"]
    assert [(s.attempt, s.state) for s in b] == [(1, "FAILED"), (2, "FAILED"), (3, "SUCCEEDED")]
    delays = [e.data["delay_s"] for e in w.journal.events(run.id, "retry_scheduled")]
    retry = RetryPolicy(max_attempts=3, base_s=10, seed=7)
    assert delays == [round(retry.delay(run.id, "b", 1), 3), round(retry.delay(run.id, "b", 2), 3)]
    assert 10 <= delays[0] <= 15 and 20 <= delays[1] <= 30  # exponential, bounded jitter
    # No real time passed: the injected clock absorbed the backoff.
    assert w.clock.t - 1000 >= sum(delays)


def test_a_job_that_keeps_failing_blocks_its_descendants(tmp_path: Path) -> None:
    w = World(tmp_path, outcomes={"b": ["FAILED"]})
    run = w.start()
    st = run.wait(timeout=10_000)
    assert st.state == "FAILED" and st.reason == "failed: b"
    assert st.jobs["b"].state == "FAILED" and st.jobs["b"].attempt == 3
    assert st.jobs["c"].state == "BLOCKED" and st.jobs["c"].reason == "b failed 3 times"
    assert st.jobs["a"].state == "SUCCEEDED"


def test_transient_submit_errors_are_retried_under_the_same_submission_id(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.fakes[US].submit_errors = {"b": [BackendError("503 busy"), BackendError("503 busy")]}
    run = w.start()
    assert run.wait(1000).state == "SUCCEEDED"
    sid = submission_id(run.id, "b", 1)
    assert [c for c in w.fakes[US].calls if c == ("submit", sid)] == [("submit", sid)] * 3
    assert w.fakes[US].count(sid) == 1
    assert len(w.journal.events(run.id, "backend_error")) == 2


def test_site_down_mid_run_replans_onto_the_other_eligible_site(tmp_path: Path) -> None:
    w = World(tmp_path)

    def hook(point: str, run_id: str, job: str) -> None:
        # us-dc dies the moment b is seen running.
        if point == "after_status" and job == "b" and w.fakes[US].jobs[
                submission_id(run_id, "b", 1)].state == "RUNNING":
            w.fakes[US].down = True

    run = w.start(hook)
    st = run.wait(timeout=1000)
    assert st.state == "SUCCEEDED"
    steps = [(s.job, s.attempt, s.site, s.state) for s in w.journal.steps(run.id)]
    assert ("b", 1, US, "LOST") in steps
    assert ("b", 2, EU, "SUCCEEDED") in steps and ("c", 1, EU, "SUCCEEDED") in steps
    assert [e.data["site"] for e in w.journal.events(run.id, "site_down")] == [US]
    plans = w.journal.plans(run.id)
    assert len(plans) == 2
    assert {j: p.site for j, p in plans[1].plan.jobs.items()} == {"a": EU, "b": EU, "c": EU}
    # The re-plan only ever used policy-eligible sites: a stayed where it was pinned.
    assert plans[1].plan.jobs["a"].site == plans[0].plan.jobs["a"].site == EU


def test_a_replan_goes_to_the_decision_log_with_what_it_was_decided_from(
        tmp_path: Path) -> None:
    from placer import decisions

    w = World(tmp_path)
    log = tmp_path / "decisions.jsonl"

    def hook(point: str, run_id: str, job: str) -> None:
        if point == "after_status" and job == "b":
            w.fakes[US].down = True

    run = w.start(hook, decision_log=log)
    assert run.wait(timeout=1000).state == "SUCCEEDED"
    [(_, rec)] = list(decisions.read(log))
    assert (rec.kind, rec.run, rec.status) == ("replan", run.id, "placed")
    assert rec.inputs.exclude_sites == (US,)
    assert rec.inputs.pinned == {"a": EU}
    assert decisions.verify(log).ok


def test_a_job_whose_data_may_not_leave_the_failed_jurisdiction_is_stuck_not_moved(
        tmp_path: Path) -> None:
    w = World(tmp_path)

    def hook(point: str, run_id: str, job: str) -> None:
        if point == "after_submit" and job == "a":
            w.fakes[EU].down = True

    run = w.start(hook)
    st = run.wait(timeout=1000)
    assert st.state == "STUCK"
    assert st.reason == "no eligible site left for: a"
    a = st.jobs["a"]
    assert a.state == "STUCK" and a.site is None
    assert a.reason is not None
    assert a.reason.startswith("no eligible site left for a: it may run only on eu-dc (down); "
                               "every other site is rejected by the policies "
                               "(eu-data-stays-in-eea: Data tagged residency=EU")
    assert a.reason.endswith("so it is not moved")
    assert st.jobs["c"].state == "BLOCKED"
    assert st.jobs["c"].reason == "waits for a, which cannot run"
    assert st.jobs["b"].state == "SUCCEEDED" and st.jobs["b"].site == US
    # Never moved: nothing of a's was ever submitted to the US site.
    assert all(fj.job != "a" for fj in w.fakes[US].jobs.values())


@pytest.mark.parametrize("point", ["after_intent", "after_submit"])
def test_crash_between_intent_and_record_then_resume_submits_each_step_once(
        tmp_path: Path, point: str) -> None:
    w = World(tmp_path)

    class Killed(Exception):
        pass

    def kill(p: str, run_id: str, job: str) -> None:
        if p == point and job == "b":
            raise Killed

    with pytest.raises(Killed):
        w.start(kill)
    run_id = w.journal.runs(1)[0].id
    assert {s.job: s.state for s in w.journal.steps(run_id)}["b"] == "INTENT"
    w.journal.close()

    # A new process: a fresh journal connection and executor, the same clusters.
    w.journal = Journal(tmp_path / "journal.db")
    run = w.executor().resume(run_id)
    assert run.wait(1000).state == "SUCCEEDED"
    for fake in w.fakes.values():
        assert sorted(set(fake.submissions)) == sorted(fake.submissions)
    assert w.fakes[US].count(submission_id(run_id, "b", 1)) == 1
    adopted = [e.data["submission_id"] for e in w.journal.events(run_id, "adopted")]
    assert adopted == ([submission_id(run_id, "b", 1)] if point == "after_submit" else [])


def test_resume_after_a_crash_mid_poll_keeps_going(tmp_path: Path) -> None:
    w = World(tmp_path)
    run = w.start()
    run.step()
    w.journal.close()
    w.journal = Journal(tmp_path / "journal.db")
    again = w.executor().resume(run.id)
    assert again.wait(100).state == "SUCCEEDED"
    assert sum(len(f.submissions) for f in w.fakes.values()) == 3


def test_cancel_stops_every_running_job(tmp_path: Path) -> None:
    w = World(tmp_path, outcomes={"a": ["RUNNING"], "b": ["RUNNING"]})
    run = w.start()
    run.step()
    assert len(w.fakes[EU].running()) == 1 and len(w.fakes[US].running()) == 1
    st = run.cancel()
    assert st.state == "CANCELLED"
    assert w.fakes[EU].running() == [] and w.fakes[US].running() == []
    assert {j: s.state for j, s in st.jobs.items()} == {"a": "STOPPED", "b": "STOPPED",
                                                        "c": "WAITING"}
    assert run.wait(10).state == "CANCELLED"  # nothing is submitted after a cancel
    assert sum(len(f.submissions) for f in w.fakes.values()) == 2


def test_cancel_from_another_process_uses_the_journal(tmp_path: Path) -> None:
    w = World(tmp_path, outcomes={"a": ["RUNNING"], "b": ["RUNNING"]})
    run = w.start()
    other = w.executor()  # knows the run only through the journal
    assert other.cancel(run.id).state == "CANCELLED"
    assert w.fakes[EU].running() == [] and w.fakes[US].running() == []


def test_outputs_never_land_outside_the_jobs_location(tmp_path: Path) -> None:
    w = World(tmp_path)
    bad = {"onprem:fra-dc1": "mem://nyc/placer/wrong", "onprem:nyc-dc1": ROOTS["onprem:nyc-dc1"]}
    from placer.backends import PrefixLayout

    ex = w.executor()
    ex.layout = PrefixLayout(bad)
    run = ex.start(w.plan(), pipeline=w.pipeline, inventory=w.inventory, policies=w.policies)
    st = run.wait(100)
    assert st.state == "STUCK"
    assert st.jobs["a"].reason == (
        f"a: its output prefix mem://nyc/placer/wrong/{run.id}/a/ is in onprem:nyc-dc1, not "
        "only in onprem:fra-dc1 where the job runs and the policy allows its data")
    assert w.fakes[EU].submissions == []
    assert issubclass(ResidencyError, ExecutionError)


def test_outputs_never_land_where_the_output_bucket_replicates_them(tmp_path: Path) -> None:
    # The output root is in Frankfurt, but its bucket replicates to New York: every copy counts.
    w = World(tmp_path)
    store = FakeStorageResolver({root: loc for loc, root in ROOTS.items()},
                                replicas={ROOTS["onprem:fra-dc1"]: ["onprem:nyc-dc1"]})
    ex = w.executor()
    ex.storage = store
    run = ex.start(w.plan(), pipeline=w.pipeline, inventory=w.inventory, policies=w.policies)
    st = run.wait(100)
    assert st.state == "STUCK"
    assert st.jobs["a"].reason == (
        f"a: its output prefix mem://fra/placer/{run.id}/a/ is in onprem:fra-dc1, "
        "onprem:nyc-dc1, not only in onprem:fra-dc1 where the job runs and the policy allows "
        "its data")
    assert w.fakes[EU].submissions == []


def test_a_plan_that_is_not_placed_is_refused(tmp_path: Path) -> None:
    w = World(tmp_path)
    bad = w.plan().model_copy(update={"status": "infeasible", "reasons": ["x: nope"]})
    with pytest.raises(ExecutionError) as info:
        w.executor().start(bad, pipeline=w.pipeline, inventory=w.inventory, policies=w.policies)
    assert str(info.value) == "the plan is infeasible, not placed: x: nope"


def test_no_token_in_the_journal_logs_or_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    w = World(tmp_path)  # the journal's redactor learns the token from the environment
    # A leaky SDK echoes the token in an error; the site goes down with it in the message too.
    w.fakes[US].submit_errors = {"b": [BackendError(f"401 Authorization: Bearer {TOKEN}")]}
    real_find = w.fakes[EU].find

    def leaky_find(sid: str) -> object:
        if sid.endswith("-a-1"):
            raise SiteUnreachableError(EU, f"refused with token={TOKEN}")
        return real_find(sid)

    def hook(point: str, run_id: str, job: str) -> None:
        if point == "after_intent" and job == "a":
            raise RuntimeError("die")

    with pytest.raises(RuntimeError):
        w.start(hook)
    run_id = w.journal.runs(1)[0].id
    w.fakes[EU].find = leaky_find  # type: ignore[method-assign]
    run = w.executor().resume(run_id)
    st = run.wait(1000)
    texts = [st.model_dump_json(), *(run.logs(j) for j in "abc"), caplog.text]
    texts += [json.dumps(e.data) for e in w.journal.events(run_id)]
    assert all(TOKEN not in t for t in texts)
    assert any("***" in e.data.get("error", "") for e in w.journal.events(run_id))
    w.journal.close()
    for f in tmp_path.iterdir():  # the database, its WAL and shm files
        assert TOKEN.encode() not in f.read_bytes(), f
