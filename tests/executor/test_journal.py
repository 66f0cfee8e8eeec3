"""The journal: schema, append-only events, readers beside a writer, default path, secrets,
run specs stored verbatim with their hash, one driver per run, errors that name the file."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import placer
from placer.errors import ConfigError, JournalError, RunLockedError, RunNotFoundError
from placer.executor import submission_id
from placer.journal import SCHEMA_VERSION, Journal, Redactor, default_path
from placer.models import Dataset, Inventory, Job
from tests.builders import job, pipeline
from tests.executor.world import EU, ROOTS, TOKEN, US, World


def _with_cluster(inv: Inventory, site: str, **cluster: Any) -> Inventory:
    data = inv.model_dump(mode="json", by_alias=True, exclude_none=True)
    for s in data["sites"]:
        if s["name"] == site:
            s["cluster"] = {"backend": "fake", **cluster}
    return Inventory.model_validate(data)


def test_schema_is_versioned_and_pragmas_are_set(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    db = j._db
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == \
        str(SCHEMA_VERSION)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert (tmp_path / "j.db").stat().st_mode & 0o077 == 0  # owner only


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Journal(tmp_path / "j.db").close()
    with sqlite3.connect(tmp_path / "j.db") as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(JournalError) as info:
        Journal(tmp_path / "j.db")
    assert (f"schema version 99, newer than this placer understands ({SCHEMA_VERSION})"
            in str(info.value))


def test_run_ids_and_records(tmp_path: Path) -> None:
    w = World(tmp_path)
    run = w.start()
    assert re.fullmatch(r"run-\d{8}-[0-9a-f]{6}", run.id)
    assert [r.id for r in w.journal.runs(5)] == [run.id]
    assert w.journal.run(run.id).policy_hash == w.plan().policy_hash
    with pytest.raises(RunNotFoundError):
        w.journal.run("run-nope")


def test_events_are_append_only(tmp_path: Path) -> None:
    w = World(tmp_path)
    run = w.start()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        w.journal._db.execute("DELETE FROM events WHERE run=?", (run.id,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        w.journal._db.execute("UPDATE events SET kind='x'")


def test_a_reader_sees_a_run_while_the_writer_drives_it(tmp_path: Path) -> None:
    w = World(tmp_path)
    run = w.start()
    reader = Journal(tmp_path / "journal.db", readonly=True)
    before = {s.job for s in reader.steps(run.id)}
    run.wait(100)
    assert reader.run(run.id).state == "SUCCEEDED"
    assert {s.job for s in reader.steps(run.id)} >= before
    with pytest.raises(JournalError, match="read-only"):
        reader.record_event(run.id, "x")


def test_steps_and_transfers_record_intent_then_outcome(tmp_path: Path) -> None:
    w = World(tmp_path)
    run = w.start()
    tid = w.journal.record_transfer(run.id, "c", "mem://nyc/a", "mem://fra/a",
                                    src_location="onprem:nyc-dc1", dst_location="onprem:fra-dc1")
    assert w.journal.transfers(run.id)[0].state == "INTENT"
    w.journal.finish_transfer(run.id, tid, "VERIFIED", nbytes=10, checksum="sha256:x")
    t = w.journal.transfers(run.id)[0]
    assert (t.state, t.bytes, t.checksum) == ("VERIFIED", 10, "sha256:x")
    run.wait(100)
    for s in w.journal.steps(run.id):
        assert s.submitted is not None and s.started is not None and s.finished is not None
        assert s.submitted <= s.started <= s.finished


def test_default_path_honours_the_environment(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setenv("PLACER_JOURNAL", str(tmp_path / "x.db"))
    assert default_path() == tmp_path / "x.db"
    monkeypatch.delenv("PLACER_JOURNAL")
    assert default_path().name == "journal.db" and "placer" in str(default_path())


def test_redactor_masks_known_values_and_secret_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_API_TOKEN", TOKEN)
    r = Redactor(["hunter2-long"])
    assert r.text(f"x {TOKEN} y hunter2-long") == "x *** y ***"
    assert r.data({"env_vars": {"HF_TOKEN": "abc", "N": "1"}, "l": [TOKEN]}) == \
        {"env_vars": {"HF_TOKEN": "***", "N": "1"}, "l": ["***"]}


def test_a_sites_secret_written_into_the_pipeline_is_refused_and_never_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The site's token lives in $MUNICH_RAY (a name the old key heuristic did not know); a
    # pipeline that holds its value would put the token in the journal: refused, with where.
    monkeypatch.setenv("MUNICH_RAY", TOKEN)
    w = World(tmp_path)
    w.inventory = _with_cluster(w.inventory, EU, token_env="MUNICH_RAY")
    w.pipeline = pipeline(job("solo", runtime_env={"env_vars": {"RAY_CONN": f"x{TOKEN}x"}}))
    with pytest.raises(ConfigError) as info:
        w.start()
    [d] = info.value.details
    assert d.field == "pipeline.jobs[0].runtime_env.env_vars.RAY_CONN"
    assert "holds the value of a site's secret" in d.msg and TOKEN not in str(info.value)
    assert w.journal.runs() == [] and not any(f.submissions for f in w.fakes.values())
    w.journal.close()
    for f in tmp_path.iterdir():
        assert TOKEN.encode() not in f.read_bytes(), f


def test_references_to_secrets_are_kept_but_secrets_are_masked() -> None:
    from placer.journal import Redactor

    r = Redactor(["s3cr3t-value"], from_env=False)
    data = {"cluster": {"token_env": "RAY_TOKEN_FRA", "token_file": "/etc/ray/token",
                        "auth_token": "s3cr3t-value"},
            "env_vars": {"AWS_SECRET_ACCESS_KEY": "whatever-it-is"},
            "note": "token is s3cr3t-value"}
    assert r.data(data) == {
        "cluster": {"token_env": "RAY_TOKEN_FRA", "token_file": "/etc/ray/token",
                    "auth_token": "***"},
        "env_vars": {"AWS_SECRET_ACCESS_KEY": "***"},
        "note": "token is ***",
    }


# -- the run spec is what the user submitted, byte for byte ----------------------------------

PRIVATE_IN_GERMANY = """
apiVersion: placer/v1
kind: PolicySet
name: private-in-germany
locations: {germany: {include: ["country:DE"]}}
rules:
  - id: private-stays-in-germany
    effect: require
    match: {tags: {private: "true"}}
    sites: germany
    message: private data stays in Germany
"""


def test_a_replan_after_a_site_failure_keeps_private_data_in_germany(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Old journal: the key "private" looked secret, so the stored copy (what the re-plan reads)
    # had private: "***", the rule no longer matched, and the job moved to New York.
    monkeypatch.setitem(ROOTS, "onprem:muc-dc1", "mem://muc/placer")
    (tmp_path / "policy.yaml").write_text(PRIVATE_IN_GERMANY)
    w = World(tmp_path)
    data = w.inventory.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["sites"].append({"name": "muc-dc", "location": "onprem:muc-dc1", "country": "DE",
                          "pools": [{"gpu": "A100-80GB", "count": 8,
                                     "cost_per_gpu_hour": "$3.0"}]})
    w.inventory = Inventory.model_validate(data)
    w.fakes["muc-dc"] = type(w.fakes[EU])("muc-dc", outcomes=w.outcomes)
    w.policies = placer.load_policies(tmp_path / "policy.yaml")
    w.pipeline = pipeline(job("p", inputs=["d"], outputs={"o": 1}), datasets=(
        Dataset(name="d", uri="mem://fra/data/d", size=1, location="onprem:fra-dc1",
                tags={"private": "true"}),))
    assert w.plan().jobs["p"].site == EU  # the cheapest German site (New York is cheaper)

    def hook(point: str, run_id: str, name: str) -> None:
        if point == "after_submit" and name == "p":
            w.fakes[EU].down = True

    run = w.start(hook)
    st = run.wait(1000)
    assert st.state == "SUCCEEDED", st
    assert st.jobs["p"].site == "muc-dc"
    assert w.fakes[US].submissions == []
    spec = w.journal.run_spec(run.id)
    assert spec.stored["pipeline"]["datasets"][0]["tags"] == {"private": "true"}


@pytest.mark.parametrize("crash", [False, True])
def test_a_jobs_runtime_env_reaches_the_backend_as_written_also_after_resume(
        tmp_path: Path, crash: bool) -> None:
    # Old journal: TOKENIZERS_PARALLELISM looked secret and reached Ray as "***".
    env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false", "AUTH_MODE": "kerberos-v5"}}
    w = World(tmp_path)
    w.pipeline = pipeline(job("solo", runtime_env=env))
    seen: list[Any] = []
    fake = w.fakes[w.plan().jobs["solo"].site]
    real_submit = fake.submit

    def submit(spec: Job, *args: Any, **kw: Any) -> Any:
        seen.append(spec.runtime_env)
        return real_submit(spec, *args, **kw)

    fake.submit = submit  # type: ignore[method-assign,assignment]

    class Killed(Exception):
        pass

    def kill(point: str, run_id: str, name: str) -> None:
        if crash and point == "after_intent":
            raise Killed

    if crash:
        with pytest.raises(Killed):
            w.start(kill)
        run_id = w.journal.runs(1)[0].id
        w.journal.close()
        w.journal = Journal(tmp_path / "journal.db")  # a new process
        run = w.executor().resume(run_id)
    else:
        run = w.start()
    assert run.wait(100).state == "SUCCEEDED"
    assert seen == [env]
    assert w.journal.run_spec(run.id).pipeline == w.pipeline


def test_an_altered_run_spec_or_plan_is_refused_never_replanned(tmp_path: Path) -> None:
    w = World(tmp_path, outcomes={"a": ["RUNNING"]})
    run = w.start()
    w.journal.close()
    db = sqlite3.connect(tmp_path / "journal.db")
    row = db.execute("SELECT pipeline FROM runs WHERE id=?", (run.id,)).fetchone()[0]
    with db:
        db.execute("UPDATE runs SET pipeline=? WHERE id=?",
                   (row.replace('"EU"', '"none"'), run.id))
    w.journal = Journal(tmp_path / "journal.db")
    with pytest.raises(JournalError) as info:
        w.executor().resume(run.id)
    assert f"run {run.id}: the stored run spec does not match its sha256" in str(info.value)
    assert str(tmp_path / "journal.db") in str(info.value)
    with db:  # put it back; now alter the plan instead
        db.execute("UPDATE runs SET pipeline=? WHERE id=?", (row, run.id))
        db.execute("UPDATE plans SET plan=replace(plan, 'eu-dc', 'us-dc') WHERE run=?",
                   (run.id,))
    with pytest.raises(JournalError, match=f"run {run.id}: plan 0 does not match its sha256"):
        w.executor().resume(run.id)


def _downgrade_to_v1(path: Path) -> None:
    """What placer with schema version 1 left on disk (the v2 columns did not exist)."""
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE runs DROP COLUMN spec_sha256")
        db.execute("ALTER TABLE plans DROP COLUMN sha256")
        db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
        db.execute("PRAGMA application_id = 0")


def test_a_version_1_journal_still_opens_and_a_masked_run_is_not_resumed(tmp_path: Path) -> None:
    from placer.executor import run_status

    w = World(tmp_path, outcomes={"a": ["RUNNING"]})
    clean, masked = w.start().id, w.start().id
    w.journal.close()
    _downgrade_to_v1(tmp_path / "journal.db")
    with sqlite3.connect(tmp_path / "journal.db") as db:  # the old redactor's work
        db.execute("UPDATE runs SET pipeline=replace(pipeline, '\"EU\"', '\"***\"') "
                   "WHERE id=?", (masked,))

    reader = Journal(tmp_path / "journal.db", readonly=True)  # cannot migrate: reads v1 as is
    assert {r.id for r in reader.runs()} == {clean, masked}
    assert run_status(reader, masked).jobs["a"].state in ("SUBMITTED", "PENDING", "RUNNING")
    reader.close()

    w.journal = Journal(tmp_path / "journal.db")  # a writer migrates
    db = w.journal._db
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == \
        str(SCHEMA_VERSION)
    assert {r[1] for r in db.execute("PRAGMA table_info(runs)")} >= {"spec_sha256"}
    assert run_status(w.journal, masked).state == "RUNNING"  # shown, for what it is
    with pytest.raises(JournalError) as info:
        w.executor().resume(masked)
    assert f"run {masked} was recorded by an older placer, which masked values" in \
        str(info.value)
    assert "datasets[0].tags.residency holds '***'" in str(info.value)
    assert w.executor().resume(clean).wait(5).state == "RUNNING"  # nothing was masked in it


# -- files that are not journals, damaged rows, full disks -----------------------------------

def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
        db.execute("INSERT INTO moz_places (url) VALUES ('https://example.org')")


NOT_JOURNALS = {
    "text": lambda p: p.write_text("hello, I am notes.txt\n" * 50),
    "png": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8),
    "sqlite of another program": _foreign,
}


@pytest.mark.parametrize("kind", sorted(NOT_JOURNALS))
@pytest.mark.parametrize("readonly", [True, False])
def test_a_file_that_is_not_a_journal_is_refused_and_left_alone(
        tmp_path: Path, kind: str, readonly: bool) -> None:
    path = tmp_path / "x.db"
    NOT_JOURNALS[kind](path)
    before = path.read_bytes()
    with pytest.raises(JournalError, match=f"{re.escape(str(path))} is not a placer journal"):
        Journal(path, readonly=readonly)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]


def test_an_empty_file_is_no_journal_to_read_but_one_to_make(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.touch()
    with pytest.raises(JournalError, match="is not a placer journal \\(an empty file\\)"):
        Journal(path, readonly=True)
    Journal(path).close()
    assert Journal(path, readonly=True).runs() == []
    with pytest.raises(JournalError, match="is a directory, not a placer journal"):
        Journal(tmp_path)


def test_a_row_that_is_not_json_is_a_journal_error_naming_run_and_table(tmp_path: Path) -> None:
    w = World(tmp_path)
    run = w.start()
    db = w.journal._db
    db.execute("DROP TRIGGER events_no_update")
    db.execute("UPDATE events SET data='{oops' WHERE run=?", (run.id,))
    with pytest.raises(JournalError) as info:
        w.journal.events(run.id)
    assert f"run {run.id}: events.data is not valid JSON" in str(info.value)
    db.execute("UPDATE runs SET spec_sha256=NULL, pipeline='{oops' WHERE id=?", (run.id,))
    with pytest.raises(JournalError, match=f"run {run.id}: runs.pipeline is not valid JSON"):
        w.journal.run_spec(run.id)
    db.execute("UPDATE runs SET state='EXPLODED' WHERE id=?", (run.id,))
    with pytest.raises(JournalError, match=f"run {run.id}: the runs row is not valid"):
        w.journal.runs()


def test_a_full_disk_is_a_journal_error_and_nothing_unrecorded_is_submitted(
        tmp_path: Path) -> None:
    w = World(tmp_path)
    db = w.journal._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    w.pipeline = pipeline(job("solo", command="x" * 20_000))  # needs new pages
    with pytest.raises(JournalError) as info:
        w.start()
    assert str(info.value).startswith(f"journal {tmp_path / 'journal.db'}: cannot record a new "
                                      "run: database or disk is full")
    assert w.journal.runs() == []
    assert not any(f.submissions for f in w.fakes.values())
    assert not db.in_transaction  # rolled back: the journal is usable once there is room
    db.execute("PRAGMA max_page_count = 1000000")
    assert w.start().wait(100).state == "SUCCEEDED"


# -- one driver per run ----------------------------------------------------------------------

def test_a_second_driver_of_a_run_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    from placer.executor import Executor, Run

    w = World(tmp_path, outcomes={"a": ["RUNNING"]})
    run = w.start()
    lock = tmp_path / f"journal.db.{run.id}.lock"
    other = Journal(tmp_path / "journal.db")  # as another process opens it
    layout = w.executor().layout
    with w.journal.driving(run.id):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(RunLockedError) as info:
            Executor(other, w.fakes, layout=layout).resume(run.id)
        assert info.value.pid == os.getpid()
        assert str(info.value).startswith(f"run {run.id} is being driven by pid {os.getpid()} "
                                          "(since ")
        with pytest.raises(RunLockedError):  # nor may a handle on the run drive it
            Run(Executor(other, w.fakes, layout=layout), run.id).wait(0)
        with w.journal.driving(run.id):  # re-entrant for its holder
            pass
        assert lock.exists()
    assert not lock.exists()  # let go (and the OS drops it when a process dies)
    again = Executor(other, w.fakes, layout=layout).resume(run.id)
    assert again.wait(0).state == "RUNNING"
    assert w.fakes[EU].count(submission_id(run.id, "a", 1)) == 1
    with pytest.raises(RunNotFoundError), other.driving("run-nope"):
        pass


def test_a_cancel_from_another_process_stops_the_driver_too(tmp_path: Path) -> None:
    # cancel takes no driver lock (it must work while `submit --wait` drives the run); the
    # driver reads the run again instead of finishing it from stale memory as FAILED.
    from placer.executor import Executor

    w = World(tmp_path, outcomes={"a": ["RUNNING"], "b": ["RUNNING"]})
    run = w.start()
    run.wait(2)
    other = Executor(Journal(tmp_path / "journal.db"), w.fakes, layout=w.executor().layout)
    real_sleep = w.clock.sleep

    def sleep(s: float) -> None:  # the driver sleeps between ticks; the cancel comes then
        real_sleep(s)
        if not cancelled:
            cancelled.append(other.cancel(run.id).state)

    cancelled: list[str] = []
    run.executor.sleep = sleep
    st = run.wait(10)
    assert cancelled == ["CANCELLED"]
    assert st.state == "CANCELLED" and st.reason == "cancelled"
    assert {j: s.state for j, s in st.jobs.items()} == {"a": "STOPPED", "b": "STOPPED",
                                                        "c": "WAITING"}
    assert sum(len(f.submissions) for f in w.fakes.values()) == 2


def test_budget_spend_counts_each_runs_largest_charge_per_key(tmp_path: Path) -> None:
    w = World(tmp_path)
    month = "team-budget[team=nlp]@2026-12-01"
    plan = w.plan()
    charged = plan.model_copy(update={"budget_charges": {month: 300.0, "other@2026-12-01": 5.0}})
    j = w.journal
    first = j.create_run(pipeline=w.pipeline, plan=charged, inventory=w.inventory,
                         policies=w.policies, policy_hash=plan.policy_hash,
                         pipeline_name=w.pipeline.name)
    # A re-plan after a failure plans only what is left: a smaller charge, not a second one.
    j.record_plan(first, plan.model_copy(update={"budget_charges": {month: 120.0}}), "site down")
    j.create_run(pipeline=w.pipeline, plan=plan.model_copy(update={"budget_charges":
                                                                   {month: 50.0}}),
                 inventory=w.inventory, policies=w.policies, policy_hash=plan.policy_hash,
                 pipeline_name=w.pipeline.name)
    assert j.budget_spend() == {month: 350.0, "other@2026-12-01": 5.0}
    assert j.budget_spend([month]) == {month: 350.0}
    # What placer.plan is given as `spent` is exactly this.
    assert Journal(j.path, readonly=True).budget_spend([month]) == {month: 350.0}
