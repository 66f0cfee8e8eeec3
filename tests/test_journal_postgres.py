"""The journal's PostgreSQL store (placer.journal_pg), against a real local PostgreSQL.

The journal's behaviour is one implementation over two stores, so its records are checked on
both (``store`` is ``sqlite`` or ``postgres``); what only PostgreSQL has is checked there:
refusing another program's database, the password masked in every message, and leases (one
holder at a time, taken over once lapsed, a lapsed holder refused before it records an intent).
Then controllers on one shared journal: racing, and one killed mid-run, with the fake clusters
of tests/cli/fakecluster.py: every job is submitted exactly once.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from placer.cli import app
from placer.controller import Controller, controller_holder
from placer.errors import (
    BackendUnavailableError,
    ConfigError,
    ControllerRunningError,
    JournalError,
    RunLockedError,
    RunNotFoundError,
)
from placer.executor import run_status, submission_id
from placer.journal import Journal, Lease
from placer.journal_pg import StoreError, redact
from tests.cli import fakecluster
from tests.cli.test_cli_runs import TOKEN, _files
from tests.cli.test_controller import DIAMOND, _fake_calls
from tests.executor.world import FakeClock, World

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

OpenJournal = Callable[..., Journal]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a journal is: a SQLite file, or an empty PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield str(tmp_path / "journal.db")
    else:
        yield str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def opened() -> Iterator[OpenJournal]:
    """Opens journals and closes them all at the end (a psycopg connection left open warns)."""
    journals: list[Journal] = []

    def open_(location: str, **kw: Any) -> Journal:
        j = Journal(location, **kw)
        journals.append(j)
        return j

    yield open_
    for j in journals:
        j.close()


def _world(tmp_path: Path, location: str, opened: OpenJournal) -> World:
    w = World(tmp_path)
    w.journal.close()
    w.journal = opened(location)
    return w


# -- the same journal on both stores ------------------------------------------------------------

def test_a_run_is_recorded_and_read_back_alike_on_both_stores(
        store: str, tmp_path: Path, opened: OpenJournal) -> None:
    w = _world(tmp_path, store, opened)
    run = w.start()
    j = w.journal
    assert [r.id for r in j.unfinished_runs()] == [run.id]
    assert run.wait(100).state == "SUCCEEDED"
    assert j.unfinished_runs() == []
    assert [r.id for r in j.runs(5)] == [run.id]
    assert j.run(run.id).state == "SUCCEEDED"
    with pytest.raises(RunNotFoundError):
        j.run("run-nope")

    spec = j.run_spec(run.id)  # checked against its sha256, typed
    assert spec.pipeline == w.pipeline and spec.inventory == w.inventory
    [plan] = j.plans(run.id)
    assert (plan.seq, plan.reason, plan.plan.jobs) == (0, "initial plan", w.plan().jobs)

    steps = j.steps(run.id)
    assert [(s.job, s.attempt, s.state) for s in steps] == [
        ("a", 1, "SUCCEEDED"), ("b", 1, "SUCCEEDED"), ("c", 1, "SUCCEEDED")]
    assert all(s.submission_id == submission_id(run.id, s.job, 1) for s in steps)
    assert all(s.submitted and s.finished and s.finished >= s.submitted for s in steps)

    events = j.events(run.id)
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert events[0].kind == "run_created" and j.last_event(run.id) == events[-1].seq
    assert [e.data["submission_id"] for e in j.events(run.id, "intent")] == [
        s.submission_id for s in steps]

    seq = j.record_plan(run.id, w.plan(), "site down")
    assert seq == 1 and [p.seq for p in j.plans(run.id)] == [0, 1]
    tid = j.record_transfer(run.id, "b", "mem://a/x", "mem://b/x", src_location="eu",
                            dst_location="us")
    j.finish_transfer(run.id, tid, "DONE", nbytes=12, checksum="sha256:00")
    [t] = j.transfers(run.id)
    assert (t.id, t.state, t.bytes, t.checksum) == (tid, "DONE", 12, "sha256:00")


def test_budget_spend_and_readers_alike_on_both_stores(
        store: str, tmp_path: Path, opened: OpenJournal) -> None:
    w = _world(tmp_path, store, opened)
    month = "team-budget[team=nlp]@2026-12-01"
    plan = w.plan()
    charged = plan.model_copy(update={"budget_charges": {month: 300.0, "other@2026-12-01": 5.0}})
    j = w.journal
    first = j.create_run(pipeline=w.pipeline, plan=charged, inventory=w.inventory,
                         policies=w.policies, policy_hash=plan.policy_hash,
                         pipeline_name=w.pipeline.name)
    j.record_plan(first, plan.model_copy(update={"budget_charges": {month: 120.0}}), "site down")
    j.create_run(pipeline=w.pipeline, plan=plan.model_copy(update={"budget_charges":
                                                                   {month: 50.0}}),
                 inventory=w.inventory, policies=w.policies, policy_hash=plan.policy_hash,
                 pipeline_name=w.pipeline.name)
    assert j.budget_spend() == {month: 350.0, "other@2026-12-01": 5.0}
    with pytest.raises(JournalError, match=f"run {first} already exists in "):
        j.create_run(pipeline=w.pipeline, plan=plan, inventory=w.inventory,
                     policies=w.policies, policy_hash=plan.policy_hash,
                     pipeline_name=w.pipeline.name, run_id=first)

    reader = opened(store, readonly=True)
    assert reader.budget_spend([month]) == {month: 350.0}
    assert [r.id for r in reader.unfinished_runs()][:1] == [first]  # oldest first
    with pytest.raises(JournalError, match="read-only"):
        reader.record_event(first, "note")
    # The event log is append-only in the store itself, not only in placer's code.
    with pytest.raises((sqlite3.Error, StoreError), match="append-only"):
        j._db.execute("DELETE FROM events WHERE run=?", (first,))


def test_one_driver_per_run_on_both_stores(store: str, tmp_path: Path,
                                           opened: OpenJournal) -> None:
    w = _world(tmp_path, store, opened)
    run = w.start()
    other = opened(store)
    with w.journal.driving(run.id), pytest.raises(RunLockedError) as info:
        other.driving(run.id).__enter__()
    assert info.value.pid == os.getpid()
    with other.driving(run.id):  # let go: the next one takes it
        pass


# -- PostgreSQL only ----------------------------------------------------------------------------

def test_import_placer_imports_no_database_driver() -> None:
    code = "import sys, placer, placer.journal, placer.cli; print('psycopg' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert res.stdout.strip() == "False"


def test_without_psycopg_a_postgresql_journal_names_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # not installed
    with pytest.raises(BackendUnavailableError) as info:
        Journal("postgresql://alice:pw-x1@db.example/placer")
    assert str(info.value) == ("journal postgresql://alice:***@db.example/placer: a PostgreSQL "
                               "journal needs psycopg: pip install 'placer[postgres]'")


def test_another_programs_database_and_a_newer_journal_are_refused(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id INT)")
    with pytest.raises(JournalError, match=r"is not a placer journal \(a database of another "
                       r"program: tables invoices\)"):
        Journal(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TABLE invoices")
    Journal(postgres_url).close()  # an empty database becomes a journal
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(JournalError, match=r"schema version 99, newer than this placer"):
        Journal(postgres_url)


def test_the_password_is_masked_in_every_message() -> None:
    url = "postgresql://alice:s3cr3t-pw@127.0.0.1:1/placer?connect_timeout=2"
    assert redact(url) == "postgresql://alice:***@127.0.0.1:1/placer?connect_timeout=2"
    assert redact("postgresql:///db?host=/tmp&password=pw2") == \
        "postgresql:///db?host=/tmp&password=***"
    with pytest.raises(JournalError) as info:
        Journal(url)
    text = str(info.value)
    assert text.startswith("cannot open journal postgresql://alice:***@127.0.0.1:1/placer")
    assert "s3cr3t-pw" not in text and "s3cr3t-pw" not in repr(info.value.__cause__)


def test_a_lease_is_held_by_one_and_taken_over_once_it_lapses(
        postgres_url: str, tmp_path: Path, opened: OpenJournal) -> None:
    w = _world(tmp_path, postgres_url, opened)
    first = opened(postgres_url, lease_s=0.4)
    rid = first.create_run(pipeline=w.pipeline, plan=w.plan(), inventory=w.inventory,
                           policies=w.policies, policy_hash=w.plan().policy_hash,
                           pipeline_name=w.pipeline.name)
    second = opened(postgres_url, lease_s=0.4)
    with first.driving(rid) as lock:
        assert isinstance(lock, Lease)
        first.record_event(rid, "note")  # a write renews the lease
        with pytest.raises(RunLockedError, match=rf"run {rid} is being driven by pid "
                           rf"{os.getpid()} \(since .* UTC\) \(a lease in journal "):
            second.driving(rid).__enter__()
        time.sleep(0.6)  # the holder stops renewing (a process paused, cut off, killed)
        with second.driving(rid):
            # The lapsed holder is refused before it records an intent (and so before it
            # submits anything), and nothing of it is written.
            with pytest.raises(JournalError, match=r"lost its lease on run:.*refusing to "
                               "record or do anything more"):
                first.record_intent(rid, "a", 1, "eu", submission_id(rid, "a", 1))
            assert second.steps(rid) == []
            second.record_intent(rid, "a", 1, "eu", submission_id(rid, "a", 1))
    assert [s.job for s in second.steps(rid)] == ["a"]

    # A driver with nothing to record keeps its lease by ticking (Run.wait asks last_event).
    with first.driving(rid):
        for _ in range(4):
            time.sleep(0.2)
            first.last_event(rid)
        with pytest.raises(RunLockedError):
            second.driving(rid).__enter__()


def test_a_lapsed_lease_is_taken_over_by_exactly_one(postgres_url: str,
                                                     opened: OpenJournal) -> None:
    holder = opened(postgres_url, lease_s=0.2).lease("run:x", "x")
    holder.acquire()
    time.sleep(0.3)
    journals = [opened(postgres_url, lease_s=30) for _ in range(8)]
    won: list[int] = []
    barrier = threading.Barrier(len(journals))

    def take(i: int) -> None:
        lease = journals[i].lease("run:x", "x")
        barrier.wait()
        try:
            lease.acquire()
        except RunLockedError:
            return
        won.append(i)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(journals))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    with pytest.raises(JournalError, match="lost its lease"):
        holder.renew()


class _Killed(BaseException):
    """The driver dies here, as under SIGKILL: no handler runs, nobody lets go of a lease."""


def test_a_driver_killed_between_submit_and_record_is_taken_over_with_no_second_submit(
        postgres_url: str, tmp_path: Path, opened: OpenJournal) -> None:
    w = _world(tmp_path, postgres_url, opened)
    w.journal = opened(postgres_url, lease_s=0.3)

    def die(point: str, run_id: str, job: str) -> None:
        if point == "after_submit" and job == "a":  # the backend has it; the journal does not
            for lock in w.journal._driving.values():
                assert isinstance(lock, Lease)
                lock.token = None  # a killed process releases nothing: the row stays
            raise _Killed

    with pytest.raises(_Killed):
        w.start(die)
    [rec] = w.journal.runs(1)
    [a] = w.journal.steps(rec.id)
    assert (a.job, a.state) == ("a", "INTENT")

    w.journal = opened(postgres_url)  # another process, another host
    with pytest.raises(RunLockedError):  # the dead driver's lease has not lapsed yet
        w.executor().resume(rec.id)
    time.sleep(0.4)
    st = w.executor().resume(rec.id).wait(100)
    assert st.state == "SUCCEEDED"
    assert [e.data["submission_id"] for e in w.journal.events(rec.id, "adopted")] == [
        submission_id(rec.id, "a", 1)]
    submits = [ref for fake in w.fakes.values() for call, ref in fake.calls if call == "submit"]
    assert sorted(submits) == sorted(submission_id(rec.id, j, 1) for j in ("a", "b", "c"))


def test_a_bad_lease_period_is_refused(postgres_url: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("0", "-5", "soon", "inf"):
        monkeypatch.setenv("PLACER_JOURNAL_LEASE", bad)
        with pytest.raises(ConfigError) as info:
            Journal(postgres_url)
        assert str(info.value) == ("PLACER_JOURNAL_LEASE: a journal's lease lasts a positive "
                                   f"number of seconds, not {bad!r}")


# -- controllers sharing one journal --------------------------------------------------------

@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return fakecluster.activate(monkeypatch, tmp_path / "cluster")


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.communicate()


def _submit(url: str, tmp_path: Path, name: str) -> str:
    sub = tmp_path / name
    sub.mkdir()
    pipe, inv = _files(sub, jobs=DIAMOND)
    res = runner.invoke(app, ["submit", str(pipe), "--inventory", str(inv), "--journal", url])
    assert res.exit_code == 0, res.output
    [rid] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", res.stdout)
    return str(rid)


def _placer_process(tmp: Path, url: str, procs: list[subprocess.Popen[str]], *args: str,
                    lease: str = "1.5") -> subprocess.Popen[str]:
    """`placer ARGS` on the fake clusters, its journal (with the URL) from $PLACER_JOURNAL."""
    env = {**os.environ, fakecluster.STATE_ENV: str(tmp / "cluster"), "MUNICH_RAY": TOKEN,
           "PLACER_JOURNAL": url, "PLACER_JOURNAL_LEASE": lease}
    env.pop("PLACER_NO_CONTROLLER", None)
    p = subprocess.Popen([sys.executable, "-m", "tests.cli.fakecluster", *args],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    procs.append(p)
    return p


def _controller(tmp: Path, url: str, procs: list[subprocess.Popen[str]],
                *args: str) -> subprocess.Popen[str]:
    return _placer_process(tmp, url, procs, "controller", *args)


def _until(cond: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _state(url: str, rid: str) -> str:
    with Journal(url, readonly=True) as j:
        return str(run_status(j, rid).state)


def _each_job_submitted_once(cluster: Path, rids: list[str]) -> None:
    submits = sorted(ref for call, ref in _fake_calls(cluster) if call == "submit")
    assert submits == sorted(f"placer-{rid}-{job}-1" for rid in rids for job in DIAMOND)
    assert sorted(fakecluster.submissions(cluster)["muc-dc"]) == submits


def test_a_standby_controller_waits_and_can_be_stopped_while_it_waits(
        store: str, opened: OpenJournal) -> None:
    first = Controller(opened(store), poll_s=0.05)
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        if len(slept) == 8:
            second.stop()  # SIGTERM while standing by

    second = Controller(opened(store), poll_s=0.05, standby=True, sleep=sleep)
    with first, pytest.raises(ControllerRunningError,
                              match=rf"already drives journal .*: pid {os.getpid()}"):
        second.run()
    assert len(slept) == 8  # it waited (0.05 s apart), then stopped when asked
    second._stopping = False
    assert second.run(once=True) == 1  # the first let go: it takes over at once


def test_the_cli_takes_a_postgresql_journal_wherever_it_takes_one(
        fake: Path, tmp_path: Path, postgres_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pipe, inv = _files(tmp_path, jobs=DIAMOND)
    monkeypatch.delenv("PLACER_NO_CONTROLLER")
    res = runner.invoke(app, ["submit", str(pipe), "--inventory", str(inv), "--journal",
                              postgres_url])
    assert res.exit_code == 0, res.output
    [rid] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", res.stdout)
    # No controller is started for a team's journal: it runs as a service; submit says so.
    assert re.search(r"warning: none drives journal postgresql://\S+; unless `placer submit "
                     r"--wait` or `placer resume` drives a run", " ".join(res.stderr.split()))
    monkeypatch.setenv("PLACER_JOURNAL", postgres_url)  # as the option, from the environment
    res = runner.invoke(app, ["status", rid])
    assert res.exit_code == 0, res.output
    assert "controller: none drives journal postgresql://" in res.stdout
    res = runner.invoke(app, ["runs"])
    assert res.exit_code == 0 and rid in res.stdout, res.output
    clock = FakeClock()
    with Journal(postgres_url) as j, Controller(j, poll_s=5, idle_exit_s=10, clock=clock,
                                                sleep=clock.sleep) as ctl:
        res = runner.invoke(app, ["status", rid])
        assert re.search(rf"controller: pid {os.getpid()} \(since .* UTC\) drives journal "
                         r"postgresql://", res.stdout), res.stdout
        ctl.run()
    assert _state(postgres_url, rid) == "SUCCEEDED"
    _each_job_submitted_once(fake, [rid])


def test_two_controllers_racing_on_one_journal_submit_each_job_once(
        fake: Path, tmp_path: Path, postgres_url: str,
        procs: list[subprocess.Popen[str]]) -> None:
    rids = [_submit(postgres_url, tmp_path, f"p{i}") for i in range(3)]
    # Two controllers start at once, and a `placer resume --no-wait` per run (a tick) races
    # them for the run's lease.
    racers = [_controller(tmp_path, postgres_url, procs, "--standby", "--poll", "0.05",
                          "--idle-exit", "1") for _ in range(2)]
    resumes = [_placer_process(tmp_path, postgres_url, procs, "resume", rid, "--no-wait")
               for rid in rids]
    said = []
    for p in racers:
        _, errors = p.communicate(timeout=60)
        assert p.returncode == 0, errors
        said.append(errors)
    for p in resumes:  # drove its run a tick, or found it driven (exit 2), never broke it
        _, errors = p.communicate(timeout=60)
        assert p.returncode in (0, 2), errors
        assert p.returncode == 0 or "is being driven by pid" in errors, errors
    assert all(_state(postgres_url, rid) == "SUCCEEDED" for rid in rids)
    _each_job_submitted_once(fake, rids)
    # One controller drove; the other stood by until it had gone.
    assert sum("standing by" in errors for errors in said) == 1
    assert TOKEN not in "".join(said)


def test_a_killed_controller_is_taken_over_once_its_lease_lapses(
        fake: Path, tmp_path: Path, postgres_url: str,
        procs: list[subprocess.Popen[str]]) -> None:
    rid = _submit(postgres_url, tmp_path, "p")
    # A lease long enough to outlast the standby's start on a loaded machine (it must find the
    # lease held, and stand by), short enough for the test to wait it out.
    first = _placer_process(tmp_path, postgres_url, procs, "controller", "--forever", "--poll",
                            "0.1", lease="8")

    def prep_done() -> bool:
        with Journal(postgres_url, readonly=True) as j:
            return run_status(j, rid).jobs["prep"].state == "SUCCEEDED"

    _until(prep_done, "prep never finished")
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert _state(postgres_url, rid) == "RUNNING"  # killed mid-run
    with Journal(postgres_url, readonly=True) as j:
        holder = controller_holder(j)
    assert holder is not None and holder.pid == first.pid  # its lease has not lapsed yet

    # A second controller is refused while the lease lasts; a standby one takes over after.
    with Journal(postgres_url) as j, pytest.raises(ControllerRunningError,
                                                   match=rf"pid {first.pid}"):
        Controller(j, poll_s=0.05).run(once=True)
    again = _controller(tmp_path, postgres_url, procs, "--standby", "--poll", "0.05",
                        "--idle-exit", "0")
    _, errors = again.communicate(timeout=60)
    assert again.returncode == 0, errors
    assert "standing by" in errors
    assert _state(postgres_url, rid) == "SUCCEEDED"
    _each_job_submitted_once(fake, [rid])
    assert TOKEN not in errors


def test_the_two_schemas_have_the_same_tables_and_columns(tmp_path: Path,
                                                          postgres_url: str) -> None:
    """Each dialect writes its own DDL (types, identity columns and triggers differ); this
    keeps them from drifting apart: every SQLite table and column exists in PostgreSQL, which
    adds only its leases."""
    import psycopg

    with Journal(tmp_path / "j.db"):
        pass
    with Journal(postgres_url):
        pass
    db = sqlite3.connect(tmp_path / "j.db")
    tables = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    lite = {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    db.close()
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns "
                            "WHERE table_schema = 'public' ORDER BY table_name, "
                            "ordinal_position").fetchall()
    pg: dict[str, list[str]] = {}
    for table, column in rows:
        pg.setdefault(table, []).append(column)
    assert set(pg) == set(lite) | {"leases"}
    assert {t: pg[t] for t in lite} == lite
