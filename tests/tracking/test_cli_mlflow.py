"""``placer submit --mlflow-uri`` and ``placer track`` against a real MLflow server, on the CLI
tests' fake cluster."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.cli import fakecluster
from tests.cli.test_cli_runs import _clean, _files, _run_id, run
from tests.tracking.test_mlflow import runs_of


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return fakecluster.activate(monkeypatch, tmp_path / "cluster")


def test_submit_wait_tracks_the_run(fake: Path, tmp_path: Path, mlflow_server: str) -> None:
    pipe, inv = _files(tmp_path)
    res = run("submit", pipe, "--inventory", inv, "--journal", tmp_path / "j.db", "--wait",
              "--mlflow-uri", mlflow_server)
    _clean(res, 0)
    assert "View run" not in res.output  # MLflow prints nothing of its own
    parent, jobs = runs_of(mlflow_server, _run_id(res.stdout), experiment="p")
    assert parent.info.status == "FINISHED"
    assert set(jobs) == {"train"}
    tags = jobs["train"].data.tags
    assert (tags["placer.site"], tags["placer.gpu"], tags["placer.state"]) == \
        ("muc-dc", "A100-80GB", "SUCCEEDED")


def test_track_syncs_a_run_and_again_without_duplicates(
        fake: Path, tmp_path: Path, mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe, inv = _files(tmp_path)
    db = tmp_path / "j.db"
    res = run("submit", pipe, "--inventory", inv, "--journal", db, "--wait")
    _clean(res, 0)
    rid = _run_id(res.stdout)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "tracked-later")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)  # the standard variable
    for _ in range(2):
        res = run("track", rid, "--journal", db)
        _clean(res, 0)
        assert f"run {rid} synced to MLflow at {mlflow_server}, experiment tracked-later: " \
               "1 job(s)" in res.stdout
    parent, jobs = runs_of(mlflow_server, rid, experiment="tracked-later")  # one each
    assert parent.info.status == "FINISHED" and set(jobs) == {"train"}


def test_track_needs_a_server(fake: Path, tmp_path: Path) -> None:
    res = run("track", "run-20261206-000000", "--journal", tmp_path / "j.db")
    _clean(res, 2)
    assert "give --mlflow-uri or set MLFLOW_TRACKING_URI" in res.output


def test_submit_with_mlflow_missing_refuses_before_planning(
        fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe, inv = _files(tmp_path)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if placer[mlflow] were not installed
    db = tmp_path / "j.db"
    res = run("submit", pipe, "--inventory", inv, "--journal", db, "--mlflow-uri",
              "http://127.0.0.1:1")
    _clean(res, 2)
    assert "pip install 'placer[mlflow]'" in res.output
    assert not db.exists()  # nothing recorded
    # With only the standard variable set, the run goes on untracked (it may be for others).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    res = run("submit", pipe, "--inventory", inv, "--journal", db, "--wait")
    _clean(res, 0)


def test_the_controller_keeps_a_tracked_run_in_sync(fake: Path, tmp_path: Path,
                                                    mlflow_server: str) -> None:
    """submit without --wait syncs the first tick; the controller that drives the run on
    (a fresh process's worth of state: it reads the run's request from the journal) syncs the
    rest, to the end."""
    pipe, inv = _files(tmp_path)
    db = tmp_path / "j.db"
    res = run("submit", pipe, "--inventory", inv, "--journal", db, "--mlflow-uri",
              mlflow_server)
    _clean(res, 0)
    rid = _run_id(res.stdout)
    parent, _ = runs_of(mlflow_server, rid, experiment="p")
    assert parent.info.status == "RUNNING"
    res = run("controller", "--journal", db, "--poll", "0.05", "--idle-exit", "0")
    _clean(res, 0)
    parent, jobs = runs_of(mlflow_server, rid, experiment="p")
    assert parent.info.status == "FINISHED"
    assert jobs["train"].info.status == "FINISHED"
