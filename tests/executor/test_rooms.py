"""The executor package's seams: one StepState, typed journal records, the job contract, and
one way to build an executor from an inventory (the CLI's and the Python API's)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import placer
import placer.executor
import placer.journal
from placer.backends import PrefixLayout
from placer.errors import BackendError, ExecutionError, JournalError
from placer.executor import Executor, StepState, Waiting, submission_id
from placer.journal import Journal, PlanRecord, RunSpec
from placer.models import Inventory, Plan
from placer.testing import FakeComputeBackend, FakeStorageResolver
from tests.executor.world import EU, ROOTS, TOKEN, US, World

CONTRACT = {"PLACER_RUN_ID", "PLACER_JOB", "PLACER_ATTEMPT", "PLACER_SITE", "PLACER_LOCATION",
            "PLACER_POLICY_HASH", "PLACER_PLAN_HASH", "PLACER_OUTPUT_DIR", "PLACER_INPUTS",
            "PLACER_OUTPUTS", "PLACER_MANIFEST"}


# -- states ----------------------------------------------------------------------------------

def test_step_states_are_one_str_enum_stored_as_plain_names(tmp_path: Path) -> None:
    assert placer.journal.StepState is placer.executor.StepState
    assert StepState.RUNNING == "RUNNING" and json.dumps([StepState.LOST]) == '["LOST"]'
    assert placer.executor.WAITING == "WAITING" and Waiting.RETRY_WAIT == "RETRY_WAIT"
    assert not set(Waiting) & set(StepState)  # executor-only states are never stored
    w = World(tmp_path)
    run = w.start()
    assert run.wait(100).state == "SUCCEEDED"
    steps = w.journal.steps(run.id)
    assert {type(s.state) for s in steps} == {StepState}
    assert type(w.journal.run(run.id).state) is placer.journal.RunState
    w.journal.close()
    with sqlite3.connect(tmp_path / "journal.db") as db:
        assert set(db.execute("SELECT typeof(state), state FROM steps")) == {
            ("text", "SUCCEEDED")}
        events = [json.loads(d) for (d,) in db.execute(
            "SELECT data FROM events WHERE kind='state'")]
    states = {e["state"] for e in events}
    assert {"SUBMITTED", "RUNNING", "SUCCEEDED"} <= states <= {s.value for s in StepState}


# -- the journal returns typed records -------------------------------------------------------

def test_plans_and_the_run_spec_come_back_typed_and_verbatim(tmp_path: Path) -> None:
    w = World(tmp_path)
    plan = w.plan()
    run = w.executor().start(plan, pipeline=w.pipeline, inventory=w.inventory,
                             policies=w.policies)
    [first] = w.journal.plans(run.id)
    assert isinstance(first, PlanRecord) and isinstance(first.plan, Plan)
    assert (first.run, first.seq, first.reason) == (run.id, 0, "initial plan")
    assert first.plan == plan
    assert first.stored["jobs"] == plan.model_dump(mode="json")["jobs"]
    spec = w.journal.run_spec(run.id)
    assert isinstance(spec, RunSpec)
    assert (spec.pipeline, spec.inventory, spec.policies) == (w.pipeline, w.inventory,
                                                             w.policies)
    assert spec.stored["pipeline"] == w.pipeline.model_dump(mode="json", by_alias=True)


def test_a_stored_spec_this_placer_cannot_validate_is_a_journal_error(tmp_path: Path) -> None:
    w = World(tmp_path, outcomes={"a": ["RUNNING"]})
    run = w.start()
    db = w.journal._db
    pipeline = json.loads(db.execute("SELECT pipeline FROM runs WHERE id=?",
                                     (run.id,)).fetchone()[0])
    pipeline["colour"] = "red"
    # Without its hash (a version-1 run): the hash check cannot catch it, validation does.
    db.execute("UPDATE runs SET spec_sha256=NULL, pipeline=? WHERE id=?",
               (json.dumps(pipeline), run.id))
    with pytest.raises(JournalError) as info:
        w.executor().resume(run.id)
    assert str(info.value) == (
        f"journal {tmp_path / 'journal.db'}: run {run.id}: the stored run spec is not valid "
        "for this placer (1 problem(s), first at pipeline.colour: Extra inputs are not "
        "permitted)")


# -- the job contract ------------------------------------------------------------------------

def test_every_step_gets_the_documented_environment_and_the_journal_its_manifest(
        tmp_path: Path) -> None:
    w = World(tmp_path)
    run = w.start()
    assert run.wait(100).state == "SUCCEEDED"
    intents = {e.job: e.data["manifest"] for e in w.journal.events(run.id, "intent")}
    for fake in w.fakes.values():
        for fj in fake.jobs.values():
            assert set(fj.env) == CONTRACT
            manifest = json.loads(fj.env["PLACER_MANIFEST"])
            assert manifest == intents[fj.job]
            assert manifest["output_dir"] == fj.env["PLACER_OUTPUT_DIR"]
            assert fj.env["PLACER_ATTEMPT"] == str(manifest["attempt"]) == "1"
            assert fj.env["PLACER_PLAN_HASH"].startswith("sha256:")


# -- one executor from an inventory ----------------------------------------------------------

def _with_clusters(inv: Inventory) -> Inventory:
    data = inv.model_dump(mode="json", by_alias=True, exclude_none=True)
    for s in data["sites"]:
        s["cluster"] = {"backend": "fake", "token_env": "MUNICH_RAY"}
    return Inventory.model_validate(data)


@pytest.fixture
def seams(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The inventory's ``fake`` clusters are FakeComputeBackends; storage is in memory. Each
    factory notes whether the redactor it was built beside already knew the site's token."""
    import placer.backends as backends

    monkeypatch.setenv("MUNICH_RAY", TOKEN)
    built: dict[str, Any] = {"fakes": {}, "knew": [], "journal": None}

    def load_backend(name: str) -> Any:
        assert name == "fake"

        def factory(site: Any) -> FakeComputeBackend:
            built["knew"].append(built["journal"].redactor.knows(TOKEN))
            fake: FakeComputeBackend = built["fakes"].setdefault(site.name,
                                                                 FakeComputeBackend(site.name))
            return fake

        return factory

    monkeypatch.setattr(backends, "load_backend", load_backend)
    monkeypatch.setattr(backends, "layout_for", lambda sites: PrefixLayout(ROOTS))
    monkeypatch.setattr(backends, "storage_for",
                        lambda sites: FakeStorageResolver.from_roots(ROOTS))
    return built


def test_from_inventory_builds_every_backend_after_learning_the_secrets(
        tmp_path: Path, seams: dict[str, Any]) -> None:
    w = World(tmp_path)
    journal = seams["journal"] = Journal(tmp_path / "j.db")
    inv = _with_clusters(w.inventory)
    ex = Executor.from_inventory(inv, journal, policies=w.policies)
    assert ex.backends == seams["fakes"] and set(ex.backends) == {EU, US}
    assert seams["knew"] == [True, True]
    assert isinstance(ex.storage, FakeStorageResolver) and ex.mover is ex.storage
    assert ex.layout == PrefixLayout(ROOTS)
    run = ex.start(w.plan(), pipeline=w.pipeline)  # inventory and policies: from_inventory's
    spec = journal.run_spec(run.id)
    assert (spec.inventory, spec.policies) == (inv, w.policies)
    # What is given is used as is; None is a choice too (no storage guard, no copies).
    mine = {EU: FakeComputeBackend(EU)}
    other = Executor.from_inventory(inv, journal, backends=mine, storage=None)
    assert other.backends == mine and other.storage is None and other.mover is None
    with pytest.raises(ExecutionError, match="start needs the inventory"):
        Executor(journal, mine, layout=PrefixLayout(ROOTS)).start(w.plan(), pipeline=w.pipeline)


def test_the_python_api_submits_and_resumes_through_the_inventory(
        tmp_path: Path, seams: dict[str, Any]) -> None:
    w = World(tmp_path)
    seams["journal"] = journal = Journal(tmp_path / "j.db")
    inv = _with_clusters(w.inventory)
    opts: dict[str, Any] = {"clock": w.clock, "sleep": w.clock.sleep, "poll_interval_s": 1.0}
    run = placer.submit(w.plan(), pipeline=w.pipeline, inventory=inv, policies=w.policies,
                        journal=journal, **opts)
    journal.close()
    seams["journal"] = journal = Journal(tmp_path / "j.db")  # another process
    again = placer.resume(run.id, journal=journal, **opts)  # backends from the stored inventory
    assert again.wait(100).state == "SUCCEEDED"
    fakes = seams["fakes"]
    assert sorted(s for f in fakes.values() for s in f.submissions) == sorted(
        submission_id(run.id, j, 1) for j in "abc")


def test_a_backend_that_echoes_its_token_while_built_is_masked(
        tmp_path: Path, seams: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import placer.backends as backends

    def load_backend(name: str) -> Any:
        def factory(site: Any) -> Any:
            raise BackendError(f"{site.name}: 401 for Bearer {TOKEN}")

        return factory

    monkeypatch.setattr(backends, "load_backend", load_backend)
    journal = Journal(tmp_path / "j.db")
    with pytest.raises(BackendError) as info:
        Executor.from_inventory(_with_clusters(World(tmp_path).inventory), journal)
    assert journal.redactor.text(str(info.value)) == f"{EU}: 401 for Bearer ***"
