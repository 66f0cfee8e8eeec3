"""``placer.submit`` plans and runs in one call; its Run handle waits, raises on failure,
shows logs and the plan, cancels. The clusters are placer.testing's fake backends (the same
contract as the real ones); the journal and the decision log are real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import placer
from placer import decisions
from placer.backends import PrefixLayout
from placer.executor import RetryPolicy
from placer.journal import Journal
from placer.testing import FakeComputeBackend, FakeStorageResolver
from tests.executor.world import EU, ROOTS, US, FakeClock, inventory, policies


def _pipeline(gpu: str = "A100-80GB") -> placer.PipelineBuilder:
    p = placer.pipeline("api")
    notes = p.dataset("eu_notes", uri="mem://fra/data/notes", size=5, location="onprem:fra-dc1",
                      tags={"residency": "EU"})
    web = p.dataset("web", uri="mem://nyc/data/web", size=5, location="onprem:nyc-dc1",
                    tags={"residency": "none"})
    a = p.job("a", command="run a", gpu_types={gpu: 1}, inputs=[notes],
              outputs={"features": 1})
    b = p.job("b", command="run b", gpu_types={gpu: 1}, inputs=[web], outputs={"out": 2})
    c = p.job("c", command="run c", gpu_types={gpu: 1}, inputs=[b.output("out")],
              outputs={"model": 1})
    a >> c
    return p


def _submit(tmp_path: Path, p: Any = None, outcomes: dict[str, list[str]] | None = None,
            **kw: Any) -> tuple[placer.Run, dict[str, FakeComputeBackend]]:
    fakes = {s: FakeComputeBackend(s, outcomes=outcomes) for s in (EU, US)}
    clock = FakeClock()
    run = placer.submit(_pipeline() if p is None else p, inventory=inventory(),
                        policies=policies(), journal=tmp_path / "journal.db", backends=fakes,
                        layout=PrefixLayout(ROOTS), storage=FakeStorageResolver.from_roots(ROOTS),
                        clock=clock, sleep=clock.sleep, poll_interval_s=1.0, **kw)
    return run, fakes


def test_submit_plans_runs_and_the_handle_reads_the_run(tmp_path: Path) -> None:
    run, fakes = _submit(tmp_path)
    assert isinstance(run, placer.Run) and run.id.startswith("run-")
    assert run.plan.status == "placed"
    assert {j: pl.site for j, pl in run.plan.jobs.items()} == {"a": EU, "b": US, "c": US}
    st = run.wait()
    assert st.state == "SUCCEEDED" and run.status() == st
    assert "a" in run.logs("a")
    assert sorted(fakes[EU].submissions + fakes[US].submissions) == sorted(
        f"placer-{run.id}-{j}-1" for j in "abc")
    # The decision went to the log, with the run id, as `placer submit` logs it.
    [(_, rec)] = list(decisions.read())
    assert (rec.kind, rec.run) == ("submit", run.id)
    # The journal holds the built pipeline.
    assert Journal(tmp_path / "journal.db").run_spec(run.id).pipeline == _pipeline().build()


def test_wait_raises_naming_the_job_that_failed(tmp_path: Path) -> None:
    run, _ = _submit(tmp_path, outcomes={"a": ["FAILED"]}, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(placer.RunFailedError) as info:
        run.wait()
    assert info.value.status.state == "FAILED"
    assert str(info.value).startswith(f"run {run.id} ended FAILED")
    assert "a: FAILED" in str(info.value) and "c: BLOCKED" in str(info.value)
    assert isinstance(info.value, placer.PlacerError)


def test_cancel_stops_the_run_and_wait_says_so(tmp_path: Path) -> None:
    run, fakes = _submit(tmp_path, outcomes={"a": ["RUNNING"], "b": ["RUNNING"]})
    st = run.wait(timeout=5)  # fake seconds: the jobs never finish on their own
    assert not st.done and st.jobs["a"].state == "RUNNING"
    assert run.cancel().state in ("CANCELLING", "CANCELLED")
    with pytest.raises(placer.RunFailedError, match=rf"run {run.id} ended CANCELLED"):
        run.wait()
    assert fakes[EU].running() == []


def test_a_pipeline_that_cannot_be_placed_submits_nothing(tmp_path: Path) -> None:
    with pytest.raises(placer.NotPlacedError) as info:
        _submit(tmp_path, _pipeline(gpu="H100"))
    assert info.value.plan.status == "infeasible"
    assert "nothing was submitted" in str(info.value)
    assert Journal(tmp_path / "journal.db").runs() == []
    [(_, rec)] = list(decisions.read())  # the decision not to run is logged, with no run
    assert (rec.kind, rec.run) == ("submit", None)


def test_files_work_as_well_as_models(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    data = inventory().model_dump(mode="json", exclude_none=True)
    data["sites"] = {s.pop("name"): s for s in data["sites"]}
    inv.write_text(json.dumps({"apiVersion": "placer/v1", "kind": "Inventory", **data}))
    pipe = tmp_path / "pipeline.yaml"
    pipe.write_text(_pipeline().to_yaml())
    fakes = {s: FakeComputeBackend(s) for s in (EU, US)}
    clock = FakeClock()
    run = placer.submit(pipe, inventory=inv, policies=[
        Path(__file__).parents[1] / "policies" / "locations.yaml",
        Path(__file__).parents[1] / "policies" / "eea-residency.yaml"],
        journal=Journal(tmp_path / "j.db"), backends=fakes, layout=PrefixLayout(ROOTS),
        storage=FakeStorageResolver.from_roots(ROOTS), clock=clock, sleep=clock.sleep)
    assert run.wait().state == "SUCCEEDED"


def test_a_plan_made_by_the_caller_still_runs(tmp_path: Path) -> None:
    pipe = _pipeline().build()
    plan = placer.plan(pipe, inventory(), policies())
    fakes = {s: FakeComputeBackend(s) for s in (EU, US)}
    clock = FakeClock()
    run = placer.submit(plan, pipeline=pipe, inventory=inventory(), policies=policies(),
                        journal=Journal(tmp_path / "j.db"), backends=fakes,
                        layout=PrefixLayout(ROOTS), clock=clock, sleep=clock.sleep)
    assert isinstance(run, placer.Run) and run.plan == plan
    assert run.wait().state == "SUCCEEDED"
    with pytest.raises(placer.ExecutionError, match="needs pipeline="):
        placer.submit(plan, inventory=inventory())


def test_preflight_refuses_before_anything_is_recorded(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    p = _pipeline()
    p.job("d", command="run d", image="ghcr.io/acme/train:latest", gpu_types={"A100-80GB": 1})
    with pytest.raises(placer.BackendError) as info:
        _submit(tmp_path, p)
    assert str(info.value).splitlines() == [
        "preflight: job d: image ghcr.io/acme/train:latest is not pinned: name it by digest "
        "(image@sha256:…; `docker buildx imagetools inspect` prints it)",
        "preflight: 1 problem(s); nothing was submitted or recorded"]
    assert Journal(tmp_path / "journal.db").runs() == []
    monkeypatch.setenv("PLACER_NO_PREFLIGHT", "1")  # as for `placer submit`
    run, _ = _submit(tmp_path, p)
    assert run.wait().state == "SUCCEEDED"
