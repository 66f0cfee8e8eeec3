"""The run commands on fake clusters: secrets masked, user text never markup, one driver per run,
clean errors for full disks and files that are not journals (exit 2, never a traceback)."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from placer.cli import app
from tests.cli import fakecluster

ROOT = Path(__file__).resolve().parents[2]
TOKEN = fakecluster.TOKEN
runner = CliRunner()


def _files(tmp: Path, *, options: dict[str, str] | None = None,
           jobs: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """One Munich site whose token lives in $MUNICH_RAY (a name that does not look secret)."""
    inventory = {"apiVersion": "placer/v1", "kind": "Inventory", "name": "munich", "sites": {
        "muc-dc": {"location": "onprem:muc-dc1", "country": "DE",
                   "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": "$2"}],
                   "cluster": {"backend": "fake", "token_env": "MUNICH_RAY",
                               "options": {"root": "mem://muc/placer", **(options or {})}}}}}
    pipe = {"apiVersion": "placer/v1", "kind": "Pipeline", "name": "p", "jobs": jobs or {
        "train": {"command": "python train.py", "gpu_types": {"A100-80GB": "1h"}}}}
    (tmp / "inv.yaml").write_text(yaml.safe_dump(inventory))
    (tmp / "pipe.yaml").write_text(yaml.safe_dump(pipe))
    return tmp / "pipe.yaml", tmp / "inv.yaml"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The CLI in this process builds its backends from tests.cli.fakecluster."""
    return fakecluster.activate(monkeypatch, tmp_path / "cluster")


def run(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def _run_id(text: str) -> str:
    [rid] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", text)
    return str(rid)


def _clean(res: Any, code: int) -> None:
    assert res.exit_code == code, (res.output, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output


# -- hole 7: a site's token is masked whatever its variable is called -----------------------

def test_logs_status_runs_and_errors_mask_a_sites_token(fake: Path, tmp_path: Path) -> None:
    pipe, inv = _files(tmp_path, options={"leaky": "1"})
    db = tmp_path / "j.db"
    res = run("submit", pipe, "--inventory", inv, "--journal", db)
    _clean(res, 0)
    rid = _run_id(res.stdout)

    res = run("logs", rid, "train", "--journal", db)
    _clean(res, 0)
    assert "connected to the cluster with token ***" in res.stdout
    assert TOKEN not in res.output

    # Reasons recorded before placer knew the token (or by hand) are masked when shown.
    with sqlite3.connect(db) as con:
        con.execute("UPDATE steps SET reason=? WHERE run=?", (f"401 for {TOKEN}", rid))
        con.execute("UPDATE runs SET reason=? WHERE id=?", (f"token {TOKEN} refused", rid))
    for args in (("status", rid), ("runs",)):
        res = run(*args, "--journal", db)
        _clean(res, 0)
        assert TOKEN not in res.output and "***" in res.stdout

    # An error that carries the token (a backend that echoes its credentials) is masked too.
    pipe, inv = _files(tmp_path, options={"fail_init": "1"})
    res = run("submit", pipe, "--inventory", inv, "--journal", db)
    _clean(res, 2)
    assert res.stderr == "error: muc-dc: 401 Unauthorized for Bearer ***\n"


# -- hole 9: user text is printed as written, never as rich markup ---------------------------

MARKUP = ["[/x]", "[bold red]x[/]", "data[a-z0-9]"]


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("ref", MARKUP)
def test_user_text_in_an_error_is_printed_literally(tmp_path: Path, command: str,
                                                    ref: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("kind: Pipeline\njobs:\n  a:\n    command: x\n"
                    f"    gpu_types: {{A100-80GB: 1h}}\n    inputs: [{json.dumps(ref)}]\n")
    res = run(command, path)
    _clean(res, 2)
    assert f"job 'a' reads '{ref}', which is neither a dataset nor a job output" in res.stderr


def test_reasons_and_ids_in_tables_and_errors_are_printed_literally(fake: Path,
                                                                   tmp_path: Path) -> None:
    pipe, inv = _files(tmp_path)
    db = tmp_path / "j.db"
    rid = _run_id(run("submit", pipe, "--inventory", inv, "--journal", db).stdout)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE steps SET reason='[bold red]x[/] and [/x]' WHERE run=?", (rid,))
        con.execute("UPDATE runs SET reason='[a-z0-9]+ [/]' WHERE id=?", (rid,))
    res = run("status", rid, "--journal", db)
    _clean(res, 0)
    assert "[bold red]x[/] and [/x]" in res.stdout and "([a-z0-9]+ [/])" in res.stdout
    res = run("runs", "--journal", db)
    _clean(res, 0)
    assert "[a-z0-9]+ [/]" in res.stdout
    res = run("status", "[bold red]x[/]", "--journal", db)
    _clean(res, 2)
    assert res.stderr == f"error: no run '[bold red]x[/]' in {db}\n"


# -- hole 9: files that are not journals, damaged journals ----------------------------------

def _foreign_db(path: Path) -> None:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")


NOT_JOURNALS = {
    "empty": lambda p: p.touch(),
    "text": lambda p: p.write_text("just some notes\n" * 100),
    "png": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(2000)),
    "sqlite of another program": _foreign_db,
}


@pytest.mark.parametrize("kind", sorted(NOT_JOURNALS))
@pytest.mark.parametrize("command", [("runs",), ("status", "run-20261128-000000"),
                                     ("resume", "run-20261128-000000")])
def test_runs_status_resume_on_a_file_that_is_not_a_journal(
        tmp_path: Path, kind: str, command: tuple[str, ...]) -> None:
    path = tmp_path / "notes.db"
    NOT_JOURNALS[kind](path)
    before = path.read_bytes()
    res = run(*command, "--journal", path)
    if kind == "empty" and command[0] == "resume":  # a writer makes a journal of it
        _clean(res, 2)
        assert res.stderr == f"error: no run 'run-20261128-000000' in {path}\n"
        return
    _clean(res, 2)
    assert res.stderr.startswith(f"error: {path} is not a placer journal ("), res.stderr
    assert path.read_bytes() == before


def test_a_damaged_journal_is_a_clean_error_naming_the_run(fake: Path, tmp_path: Path) -> None:
    pipe, inv = _files(tmp_path)
    db = tmp_path / "j.db"
    rid = _run_id(run("submit", pipe, "--inventory", inv, "--journal", db).stdout)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET pipeline=replace(pipeline, 'train.py', 'evil.py')")
    for args in (("status", rid), ("resume", rid, "--no-wait"), ("logs", rid, "train")):
        res = run(*args, "--journal", db)
        _clean(res, 2)
        assert res.stderr.startswith(f"error: journal {db}: run {rid}: the stored run spec "
                                     "does not match its sha256"), res.stderr
    res = run("runs", "--journal", db)  # one damaged run does not hide the others
    _clean(res, 0)
    assert "cannot read" in res.stdout
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET spec_sha256=NULL, pipeline='{not json'")
    res = run("status", rid, "--journal", db)
    _clean(res, 2)
    assert f"run {rid}: runs.pipeline is not valid JSON" in res.stderr


# -- hole 9: real processes: two drivers of one run, a full disk ----------------------------

def _placer(tmp: Path, *args: str | Path, fsize: int | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if fsize is not None:  # Python ignores SIGXFSZ: writes past it fail with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = {**os.environ, fakecluster.STATE_ENV: str(tmp / "cluster"), "MUNICH_RAY": TOKEN}
    return subprocess.run([sys.executable, "-m", "tests.cli.fakecluster", *map(str, args)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit, check=False)


def test_two_resumes_at_once_one_drives_and_the_other_says_who(tmp_path: Path) -> None:
    pipe, inv = _files(tmp_path, options={"outcomes": json.dumps({"train": ["RUNNING"]})})
    db = tmp_path / "j.db"
    res = _placer(tmp_path, "submit", pipe, "--inventory", inv, "--journal", db)
    assert res.returncode == 0, res.stderr
    rid = _run_id(res.stdout)
    lock = tmp_path / f"j.db.{rid}.lock"
    env = {**os.environ, fakecluster.STATE_ENV: str(tmp_path / "cluster"), "MUNICH_RAY": TOKEN}
    first = subprocess.Popen([sys.executable, "-m", "tests.cli.fakecluster", "resume", rid,
                              "--journal", str(db)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        held = 0
        while held < 3:  # the first resume holds the lock (steadily: it is in its wait loop)
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first resume never took the lock"
            try:
                held = held + 1 if json.loads(lock.read_text())["pid"] == first.pid else 0
            except (OSError, ValueError, KeyError):
                held = 0
            time.sleep(0.2)
        second = _placer(tmp_path, "resume", rid, "--journal", db, timeout=30)
        assert second.returncode == 2, (second.stdout, second.stderr)
        assert "Traceback" not in second.stderr
        assert re.fullmatch(
            rf"error: run {rid} is being driven by pid {first.pid} \(since \d{{4}}-\d\d-\d\d "
            r"\d\d:\d\d:\d\d UTC\); one process drives a run at a time: let it finish "
            rf"\(`placer status` shows progress\) or stop it, then `placer resume {rid}`\n",
            second.stderr), second.stderr
        status = _placer(tmp_path, "status", rid, "--journal", db)  # readers are welcome
        assert status.returncode == 0 and "RUNNING" in status.stdout, status.stderr
    finally:
        first.send_signal(signal.SIGKILL)  # a crash: the OS drops the lock
        first.communicate()
    third = _placer(tmp_path, "resume", rid, "--no-wait", "--journal", db)
    assert third.returncode == 0, third.stderr
    assert fakecluster.submissions(tmp_path / "cluster") == {
        "muc-dc": [f"placer-{rid}-train-1"]}


def test_a_full_disk_during_submit_is_a_clean_error_and_nothing_unrecorded_is_submitted(
        tmp_path: Path) -> None:
    jobs = {n: {"command": f"python {n}.py", "gpu_types": {"A100-80GB": "1h"}}
            for n in ("a", "b")}
    pipe, inv = _files(tmp_path, jobs=jobs)
    outcomes: dict[int, str] = {}

    def submit(fsize: int) -> str:
        if fsize in outcomes:
            return outcomes[fsize]
        d = tmp_path / f"fsize-{fsize}"
        d.mkdir()
        res = _placer(d, "submit", pipe, "--inventory", inv, "--journal", d / "j.db",
                      fsize=fsize)
        assert res.returncode in (0, 2), res.stderr
        assert "Traceback" not in res.stderr, res.stderr
        if res.returncode == 2:
            assert res.stderr.startswith((f"error: cannot open journal {d / 'j.db'}: ",
                                          f"error: journal {d / 'j.db'}: cannot ")), res.stderr
        submitted = fakecluster.submissions(d / "cluster").get("muc-dc", [])
        intents: set[str] = set()
        if submitted:
            with sqlite3.connect(d / "j.db") as con:
                intents = {r[0] for r in con.execute("SELECT submission_id FROM steps")}
        assert set(submitted) <= intents, (fsize, submitted, intents)  # intent before act
        outcomes[fsize] = (res.stderr.split(": cannot ")[1].split(":")[0] if res.returncode
                           else "ok")
        return outcomes[fsize]

    # The journal's largest file (its WAL) grows as the submit goes on: find a size that is
    # enough, then fill the disk at every stage below it.
    enough = 16 * 1024
    while submit(enough) != "ok":
        enough *= 2
        assert enough < 64 * 1024 * 1024
    for k in range(1, 8):
        submit(enough // 4 + (enough // 2) * k // 8)
    stages = set(outcomes.values())
    assert {"record a new run", "record an intent"} <= stages, outcomes


# -- one wiring: every run command builds its executor with Executor.from_inventory ----------

def test_the_run_commands_build_their_executor_from_the_inventory(
        fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from placer.executor import Executor

    built: list[list[str]] = []
    real = Executor.from_inventory.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Executor], inventory: Any, journal: Any, **kw: Any) -> Executor:
        built.append(sorted(s.name for s in inventory.sites))
        return real(cls, inventory, journal, **kw)  # type: ignore[no-any-return]

    monkeypatch.setattr(Executor, "from_inventory", classmethod(counted))
    pipe, inv = _files(tmp_path, options={"outcomes": json.dumps({"train": ["RUNNING"]})})
    db = tmp_path / "j.db"
    res = run("submit", pipe, "--inventory", inv, "--journal", db)
    _clean(res, 0)
    rid = _run_id(res.stdout)
    for args in (("logs", rid, "train"), ("resume", rid, "--no-wait"), ("cancel", rid)):
        _clean(run(*args, "--journal", db), 0)
    assert built == [["muc-dc"]] * 4
    assert fakecluster.submissions(fake) == {"muc-dc": [f"placer-{rid}-train-1"]}
