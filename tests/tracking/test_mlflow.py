"""placer runs in a real MLflow tracking server: a parent per run, a child per job.

The runs are driven by the real executor over the fake compute backends of the executor tests
(tests/executor/world.py); the server is a real ``mlflow server`` (conftest.py), read back with
MLflow's own client.
"""

from __future__ import annotations

import http.server
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from placer import decisions
from placer.errors import BackendUnavailableError, ConfigError
from placer.executor import plan_hash, submission_id
from placer.tracking import EVENT, Follower, MlflowTracker, run_view, sync, track, tracking_uri
from tests.backends.s3_server import free_port
from tests.executor.world import EU, US, World


def client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def runs_of(uri: str, run_id: str, experiment: str = "test") -> tuple[Any, dict[str, Any]]:
    """The parent MLflow run of ``run_id`` (exactly one) and its children by job."""
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    assert exp is not None
    found = c.search_runs([exp.experiment_id],
                          filter_string=f"tags.`placer.run_id` = '{run_id}'")
    parents = [r for r in found if r.data.tags["placer.kind"] == "pipeline"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in found if r.data.tags["placer.kind"] == "job"]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    by_job = {r.data.tags["placer.job"]: r for r in children}
    assert len(by_job) == len(children)  # one child per job, never two
    return parent, by_job


def test_a_run_is_a_parent_with_a_child_per_job(tmp_path: Path, mlflow_server: str) -> None:
    w = World(tmp_path)
    run = w.start(observers=[Follower(mlflow_server, "test")])
    assert run.wait(timeout=100).state == "SUCCEEDED"
    plan = w.journal.plans(run.id)[0].plan  # the plan submitted (as the decision log has it)
    parent, jobs = runs_of(mlflow_server, run.id)

    assert parent.info.status == "FINISHED" and parent.info.run_name == run.id
    assert parent.data.params["placer.policy_hash"] == plan.policy_hash
    assert parent.data.metrics["planned_cost_usd"] == pytest.approx(plan.cost_usd)
    assert parent.data.metrics["jobs_succeeded"] == 3
    assert set(jobs) == {"a", "b", "c"}
    for name, child in jobs.items():
        placed, tags = plan.jobs[name], child.data.tags
        assert child.info.status == "FINISHED" and child.info.run_name == name
        assert tags["placer.site"] == placed.site == tags["placer.planned_site"]
        assert tags["placer.location"] == placed.location
        assert (tags["placer.gpu"], tags["placer.gpus"]) == (placed.gpu, str(placed.gpus))
        assert tags["placer.capacity"] == "on-demand"
        assert tags["placer.state"] == "SUCCEEDED"
        assert child.data.metrics["planned_cost_usd"] == pytest.approx(placed.cost_usd)
        assert child.data.metrics["cost_usd"] == pytest.approx(placed.cost_usd)
        # The hashes the job itself was given, and the decision log's hash of the plan.
        env = w.fakes[placed.site].jobs[submission_id(run.id, name, 1)].env
        assert tags["placer.policy_hash"] == env["PLACER_POLICY_HASH"] == plan.policy_hash
        assert tags["placer.plan_hash"] == env["PLACER_PLAN_HASH"] == plan_hash(plan.jobs)
        logged = decisions.record(plan, pipeline=w.pipeline, inventory=w.inventory,
                                  policies=w.policies, kind="submit", run=run.id, git=False)
        assert tags["placer.plan_sha256"] == logged.plan_sha256
        assert child.info.end_time is not None and child.info.end_time >= child.info.start_time
    assert {jobs["a"].data.tags["placer.site"], jobs["b"].data.tags["placer.site"]} == {EU, US}


def test_syncing_again_finds_the_same_runs(tmp_path: Path, mlflow_server: str) -> None:
    w = World(tmp_path)
    run = w.start(observers=[Follower(mlflow_server, "test")])
    run.wait(timeout=100)
    before, before_jobs = runs_of(mlflow_server, run.id)
    # A new process (a fresh tracker: nothing remembered) syncs the same run twice.
    assert sync(w.journal, run.id, mlflow_server, "test")
    assert sync(w.journal, run.id, mlflow_server, "test")
    after, after_jobs = runs_of(mlflow_server, run.id)
    assert after.info.run_id == before.info.run_id
    assert {j: r.info.run_id for j, r in after_jobs.items()} == \
        {j: r.info.run_id for j, r in before_jobs.items()}
    assert after.data.tags == before.data.tags


def test_runs_are_shown_as_they_advance(tmp_path: Path, mlflow_server: str) -> None:
    w = World(tmp_path, outcomes={"c": ["FAILED", "FAILED", "FAILED"]})
    run = w.start(observers=[Follower(mlflow_server, "test")])
    parent, jobs = runs_of(mlflow_server, run.id)  # after the first tick only
    assert parent.info.status == "RUNNING" and parent.info.end_time in (None, 0)
    assert set(jobs) == {"a", "b"}  # c waits for both: not sent anywhere yet
    assert {j.info.status for j in jobs.values()} <= {"SCHEDULED", "RUNNING"}
    final = run.wait(timeout=500)
    assert final.state == "FAILED"
    parent, jobs = runs_of(mlflow_server, run.id)
    assert parent.info.status == "FAILED"
    assert jobs["c"].info.status == "FAILED"
    assert jobs["c"].data.tags["placer.attempt"] == "3"
    assert jobs["c"].data.metrics["attempts"] == 3
    assert "cost_usd" not in jobs["c"].data.metrics  # nothing counted for a failed job
    assert jobs["a"].info.status == jobs["b"].info.status == "FINISHED"


def test_nothing_is_printed_on_stdout(tmp_path: Path, mlflow_server: str,
                                      capfd: pytest.CaptureFixture[str]) -> None:
    w = World(tmp_path)
    w.start(observers=[Follower(mlflow_server, "test")]).wait(timeout=100)
    assert capfd.readouterr().out == ""


def test_an_unreachable_server_never_fails_or_stalls_a_run(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if not _has_mlflow():
        pytest.skip("mlflow is not installed")
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    w = World(tmp_path)
    follower = Follower(nobody, "test", retry_after_s=3600)
    with caplog.at_level(logging.WARNING, logger="placer.tracking"):
        run = w.start(observers=[follower])
        assert run.wait(timeout=100).state == "SUCCEEDED"
    warned = [r for r in caplog.records if r.name == "placer.tracking"]
    assert len(warned) == 1  # once, then left alone for retry_after_s
    assert nobody in warned[0].getMessage() and "carries on" in warned[0].getMessage()
    # The run still asked to be tracked, so a later sync (server back) can catch up.
    assert w.journal.events(run.id, kind=EVENT)[-1].data["uri"] == nobody


def test_a_failing_server_is_asked_once_not_retried(tmp_path: Path) -> None:
    """MLflow retries a 503 seven times with backoff by default (minutes): a tick asks once.
    The server here answers every request 503 and counts them."""
    if not _has_mlflow():
        pytest.skip("mlflow is not installed")
    asked: list[str] = []

    class Busy(http.server.BaseHTTPRequestHandler):
        def _busy(self) -> None:
            asked.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _busy

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        w = World(tmp_path)
        run = w.start()
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        assert not sync(w.journal, run.id, uri, "test")
        assert len(asked) == 1
        assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # set only while syncing
    finally:
        server.shutdown()
        server.server_close()


def test_an_observer_that_fails_never_fails_the_run(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    def broken(journal: Any, run_id: str) -> None:
        seen.append(run_id)
        raise RuntimeError("tracking server on fire")

    w = World(tmp_path)
    with caplog.at_level(logging.WARNING, logger="placer.executor"):
        run = w.start(observers=[broken])
        assert run.wait(timeout=100).state == "SUCCEEDED"
    assert len(seen) > 1 and set(seen) == {run.id}  # after every tick
    assert any("tracking server on fire" in r.getMessage() for r in caplog.records)


def test_a_controller_follows_runs_that_asked(tmp_path: Path, mlflow_server: str) -> None:
    """A run submitted with tracking is synced by whoever drives it next (here a second
    executor with a follower that names no server: it reads the run's own request)."""
    w = World(tmp_path, outcomes={"a": ["RUNNING"]})
    run = w.start()
    track(w.journal, run.id, mlflow_server, "test")
    untracked = w.start()
    ex = w.executor(observers=[Follower()])
    ex.step(run.id)
    ex.step(untracked.id)
    parent, _ = runs_of(mlflow_server, run.id)
    assert parent.info.status == "RUNNING"
    c = client(mlflow_server)
    exp = c.get_experiment_by_name("test")
    assert not c.search_runs([exp.experiment_id],
                             filter_string=f"tags.`placer.run_id` = '{untracked.id}'")


def test_the_view_is_read_from_the_journal_alone(tmp_path: Path) -> None:
    w = World(tmp_path)
    run = w.start()
    run.wait(timeout=100)
    view = run_view(w.journal, run.id)
    assert view.experiment == w.pipeline.name
    assert view.parent.status == "FINISHED" and view.parent.end_ms is not None
    assert set(view.jobs) == {"a", "b", "c"}
    assert view.parent.tags["placer.placements"] == ", ".join(
        f"{j}: {p.site}" for j, p in w.plan().jobs.items())


def test_a_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    with pytest.raises(BackendUnavailableError, match=r"pip install 'placer\[mlflow\]'"):
        MlflowTracker("http://127.0.0.1:1")


def test_a_password_in_the_uri_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(None) is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://ml.example:5000")
    assert tracking_uri(None) == "http://ml.example:5000"
    assert tracking_uri("http://other:5000") == "http://other:5000"
    with pytest.raises(ConfigError) as err:
        tracking_uri("https://me:hunter2@ml.example")
    assert err.value.details[0].field == "--mlflow-uri"
    assert "hunter2" not in str(err.value)


def test_import_placer_does_not_import_mlflow() -> None:
    code = ("import sys, placer, placer.tracking, placer.cli; "
            "assert 'mlflow' not in sys.modules, 'mlflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def _has_mlflow() -> bool:
    from tests.tracking.conftest import mlflow_missing

    return not mlflow_missing()
