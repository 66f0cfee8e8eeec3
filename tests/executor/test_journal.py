"""The journal: schema, append-only events, readers beside a writer, default path, secrets."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from placer.errors import JournalError, RunNotFoundError
from placer.journal import SCHEMA_VERSION, Journal, Redactor, default_path
from tests.executor.world import TOKEN, World


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
    assert "schema version 99, newer than this placer understands (1)" in str(info.value)


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


def test_secrets_in_a_jobs_runtime_env_never_reach_the_file(tmp_path: Path) -> None:
    from tests.builders import job, pipeline

    w = World(tmp_path)
    w.pipeline = pipeline(job("solo", runtime_env={"env_vars": {"HF_TOKEN": TOKEN}}))
    w.start().wait(100)
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
