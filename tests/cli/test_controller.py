"""`placer controller` on fake clusters: runs submitted without --wait go on to their end with no
`resume`; one controller per journal; a killed controller loses nothing and submits no job
twice; a run another process drives is left to it; one failing run stops no other."""

from __future__ import annotations

import os
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from placer.cli import app
from placer.controller import Controller, controller_holder, lock_path, start_in_background
from placer.executor import run_status
from placer.journal import Journal
from tests.cli import fakecluster
from tests.cli.test_cli_runs import TOKEN, _files
from tests.executor.world import FakeClock

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

# A diamond: prep, then train and report side by side, then eval after both.
JOB = {"command": "python x.py", "gpu_types": {"A100-80GB": "1h"}}
DIAMOND = {"prep": JOB, "train": {**JOB, "after": ["prep"]},
           "report": {**JOB, "after": ["prep"]}, "eval": {**JOB, "after": ["train", "report"]}}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Backends (in this process and in `placer` subprocesses) from tests.cli.fakecluster."""
    return fakecluster.activate(monkeypatch, tmp_path / "cluster")


def run(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def _submit(pipe: Path, inv: Path, db: Path) -> str:
    res = run("submit", pipe, "--inventory", inv, "--journal", db)
    assert res.exit_code == 0, res.output
    [rid] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", res.stdout)
    return str(rid)


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, fakecluster.STATE_ENV: str(tmp / "cluster"), "MUNICH_RAY": TOKEN,
           **extra}
    env.pop("PLACER_NO_CONTROLLER", None)
    return env


def _placer(tmp: Path, *args: str | Path, timeout: float = 30,
            **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.cli.fakecluster", *map(str, args)],
                          cwd=ROOT, env=_env(tmp, **env), capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture
def background(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Controllers started as processes here; killed at the end whatever happened."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate()


def _controller(tmp: Path, db: Path, procs: list[subprocess.Popen[str]],
                *args: str) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-m", "tests.cli.fakecluster", "controller",
                          "--journal", str(db), *args], cwd=ROOT, env=_env(tmp),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    _until(lambda: (h := controller_holder(db)) is not None and h.pid == p.pid,
           "the controller never took the journal's lock", p)
    return p


def _until(cond: Any, what: str, proc: subprocess.Popen[str] | None = None,
           timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc is None or proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _fake_calls(cluster: Path, site: str = "muc-dc") -> list[tuple[str, str]]:
    return list(pickle.loads((cluster / f"{site}.pickle").read_bytes()).calls)


def _once_each(cluster: Path, rid: str, jobs: Any = DIAMOND) -> None:
    """Every job created once, as attempt 1, and `submit` called once for it."""
    ids = [f"placer-{rid}-{j}-1" for j in jobs]
    mine = [s for s in fakecluster.submissions(cluster)["muc-dc"] if rid in s]
    assert sorted(mine) == sorted(ids)
    submits = [ref for call, ref in _fake_calls(cluster) if call == "submit" and rid in ref]
    assert sorted(submits) == sorted(ids)


def _state(db: Path, rid: str) -> str:
    with Journal(db, readonly=True) as j:
        return str(run_status(j, rid).state)


# -- the run goes on with no resume -----------------------------------------------------------

def test_a_controller_drives_a_dag_submitted_without_wait_to_its_end(fake: Path,
                                                                     tmp_path: Path) -> None:
    pipe, inv = _files(tmp_path, jobs=DIAMOND)
    db = tmp_path / "j.db"
    rid = _submit(pipe, inv, db)
    res = run("status", rid, "--journal", db)  # nothing drives it yet: status says so
    assert res.exit_code == 0
    assert "controller: none drives journal" in res.stdout
    assert re.search(r"train\s+WAITING", res.stdout)

    clock = FakeClock()
    with Journal(db) as j:
        rounds = Controller(j, poll_s=5, idle_exit_s=30, clock=clock,
                            sleep=clock.sleep).run()
        assert run_status(j, rid).state == "SUCCEEDED"
    assert controller_holder(db) is None  # let go on exit
    # Idle for 30 s (six rounds of 5 s) after the last run ended, then it exits.
    assert clock.slept == [5.0] * (rounds - 1) and 10 < rounds < 30
    _once_each(fake, rid)


def test_submit_starts_a_controller_in_the_background_and_status_names_it(
        tmp_path: Path) -> None:
    pipe, inv = _files(tmp_path, jobs=DIAMOND)
    db = tmp_path / "j.db"
    res = _placer(tmp_path, "submit", pipe, "--inventory", inv, "--journal", db,
                  PLACER_CONTROLLER_POLL="0.05", PLACER_CONTROLLER_IDLE_EXIT="1.5")
    assert res.returncode == 0, res.stderr
    [rid] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", res.stdout)
    [pid] = re.findall(r"controller pid (\d+) started: it drives the run to its end \(log: "
                       + re.escape(str(db)) + r"-controller\.log\)", res.stdout)
    try:
        _until(lambda: _state(db, rid) == "SUCCEEDED", "the run never ended")
        res2 = run("status", rid, "--journal", db)  # it idles 1.5 s before it exits
        assert re.search(rf"controller: pid {pid} \(since .* UTC\) drives journal", res2.stdout)
        _until(lambda: controller_holder(db) is None, "the controller never exited", timeout=10)
    finally:
        if controller_holder(db) is not None:
            os.kill(int(pid), signal.SIGKILL)
    _once_each(tmp_path / "cluster", rid)
    log = (tmp_path / "j.db-controller.log").read_text()
    assert f"run {rid} SUCCEEDED" in log and "no run left to drive for 1.5s" in log
    assert TOKEN not in log


# -- one controller per journal ---------------------------------------------------------------

def test_a_second_controller_exits_2_naming_the_first(
        fake: Path, tmp_path: Path, background: list[subprocess.Popen[str]]) -> None:
    db = tmp_path / "j.db"
    first = _controller(tmp_path, db, background, "--forever", "--poll", "0.05")

    res = run("controller", "--journal", db, "--once")
    assert res.exit_code == 2, res.output
    assert re.fullmatch(rf"error: a controller already drives journal {re.escape(str(db))}: "
                        rf"pid {first.pid} \(since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\); one "
                        r"controller per journal: let it drive, or stop it first\n",
                        res.stderr), res.stderr
    # What `placer submit` does: nothing, since one drives the journal.
    found = start_in_background(db)
    assert (found.pid, found.started) == (first.pid, False)

    first.send_signal(signal.SIGTERM)  # a service stopped: it ends its round and lets go
    assert first.wait(timeout=10) == 0
    assert controller_holder(db) is None and not lock_path(db).exists()

    res = run("controller", "--journal", db, "--forever", "--idle-exit", "5")
    assert res.exit_code == 2
    assert res.stderr == "error: --forever never exits: it takes neither --idle-exit nor --once\n"


# -- crashes, other drivers, failures ---------------------------------------------------------

def test_a_controller_killed_mid_run_and_restarted_submits_no_job_twice(
        fake: Path, tmp_path: Path, background: list[subprocess.Popen[str]]) -> None:
    pipe, inv = _files(tmp_path, jobs=DIAMOND)
    db = tmp_path / "j.db"
    rid = _submit(pipe, inv, db)
    first = _controller(tmp_path, db, background, "--forever", "--poll", "0.1")

    def prep_done() -> bool:
        with Journal(db, readonly=True) as j:
            return run_status(j, rid).jobs["prep"].state == "SUCCEEDED"

    _until(prep_done, "prep never finished", first)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert _state(db, rid) == "RUNNING"  # killed mid-run

    again = _placer(tmp_path, "controller", "--journal", db, "--poll", "0.02",
                    "--idle-exit", "0")
    assert again.returncode == 0, again.stderr
    assert _state(db, rid) == "SUCCEEDED"
    _once_each(fake, rid)


def test_a_run_another_process_drives_is_skipped_not_broken(fake: Path,
                                                            tmp_path: Path) -> None:
    pipe, inv = _files(tmp_path, jobs=DIAMOND)
    db = tmp_path / "j.db"
    theirs, ours = _submit(pipe, inv, db), _submit(pipe, inv, db)
    clock = FakeClock()
    with Journal(db) as j, Journal(db) as other:
        ctl = Controller(j, poll_s=5, idle_exit_s=0, clock=clock, sleep=clock.sleep)
        before = j.last_event(theirs)
        with other.driving(theirs), ctl:  # e.g. `placer resume` in another terminal
            for _ in range(40):
                tick = ctl.tick()
                assert tick.locked == [theirs] and not tick.failed
                if tick.driven == {ours: "SUCCEEDED"}:
                    break
                clock.sleep(5)
            assert run_status(j, ours).state == "SUCCEEDED"
            assert j.last_event(theirs) == before  # untouched: not a line in its log
        ctl.run()  # let go: the controller takes it on
        assert run_status(j, theirs).state == "SUCCEEDED"
        assert not j.events(theirs, "controller_error")
    _once_each(fake, theirs)
    _once_each(fake, ours)


def test_one_failing_run_does_not_stop_the_others(fake: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pipe, inv = _files(tmp_path, jobs=DIAMOND)
    db = tmp_path / "j.db"
    damaged, flaky, fine = (_submit(pipe, inv, db) for _ in range(3))
    with sqlite3.connect(db) as con:  # its stored spec no longer matches its sha256
        con.execute("UPDATE runs SET pipeline=replace(pipeline, 'x.py', 'evil.py') WHERE id=?",
                    (damaged,))
    # The flaky run's cluster answers its first three polls with an SDK bug.
    real, bugs = fakecluster.SharedFakeBackend.status, [0]

    def status(self: Any, handle: Any) -> Any:
        if flaky in handle.id and bugs[0] < 3:
            bugs[0] += 1
            raise RuntimeError(f"ray client bug, token {TOKEN}")
        return real(self, handle)

    monkeypatch.setattr(fakecluster.SharedFakeBackend, "status", status)
    clock = FakeClock()
    with Journal(db) as j:
        ctl = Controller(j, poll_s=5, clock=clock, sleep=clock.sleep)
        tried: list[bool] = []
        with ctl:
            for _ in range(60):
                tick = ctl.tick()
                tried.append(damaged in tick.failed)
                if all(j.run(r).state == "SUCCEEDED" for r in (flaky, fine)):
                    break
                clock.sleep(5)
            assert tick.unfinished == 1  # the damaged run is still there to drive
        for rid in (flaky, fine):
            assert run_status(j, rid).state == "SUCCEEDED"
        # The damaged run is left as it was, not failed; why is in its log, once.
        assert j.run(damaged).state == "RUNNING"
        [error] = j.events(damaged, "controller_error")
        assert "does not match its sha256" in error.data["error"]
        assert sum(tried) < len(tried)  # backing off: not tried every round
        # The flaky one says what went wrong (masked), and that it went on.
        kinds = [e.kind for e in j.events(flaky) if e.kind.startswith("controller")]
        assert kinds == ["controller_error", "controller_recovered"]
        [bug] = j.events(flaky, "controller_error")
        assert bug.data["error"] == "RuntimeError: ray client bug, token ***"
    _once_each(fake, flaky)
    _once_each(fake, fine)


def test_submit_says_loudly_when_no_controller_could_start(
        fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import placer.controller

    monkeypatch.delenv("PLACER_NO_CONTROLLER")
    monkeypatch.setattr(placer.controller, "CONTROLLER_COMMAND", [
        sys.executable, "-c", "import sys; print('cannot reach the journal'); sys.exit(3)"])
    pipe, inv = _files(tmp_path)
    db = tmp_path / "j.db"
    res = run("submit", pipe, "--inventory", inv, "--journal", db)
    assert res.exit_code == 0  # submitted all the same: the run is in the journal
    [rid] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", res.stdout)
    assert re.fullmatch(r"warning: no controller could be started \(it exited with code 3: "
                        r"cannot reach the journal; log: .*j\.db-controller\.log\): run "
                        rf"{rid} moves on only with `placer controller` or `placer resume "
                        rf"{rid}`\n", res.stderr), res.stderr
    assert "controller: none drives journal" in run("status", rid, "--journal", db).stdout
    # --no-controller: none is started, and nothing is said about one.
    res = run("submit", pipe, "--inventory", inv, "--journal", db, "--no-controller")
    assert res.exit_code == 0 and "controller" not in res.output
