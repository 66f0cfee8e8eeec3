"""Inputs made in another location are copied, verified and journaled before a job reads them."""

from __future__ import annotations

import json
from pathlib import Path

from placer.models import Dataset
from placer.testing import FakeDataMover
from tests.builders import job, pipeline
from tests.executor.world import EU, ROOTS, US, World


def _moving_world(tmp: Path) -> World:
    """``b`` reads public data (cheapest in the US); ``c`` reads ``b.out`` and EU personal
    data, so it must run in the EU and ``b.out`` has to cross."""
    return World(tmp, pipeline=pipeline(
        job("b", inputs=["web"], outputs={"out": 2}),
        job("c", inputs=["b.out", "eu_notes"], outputs={"model": 1}),
        datasets=(
            Dataset(name="eu_notes", uri="mem://fra/data/notes", size=5,
                    location="onprem:fra-dc1", tags={"residency": "EU"}),
            Dataset(name="web", uri="mem://nyc/data/web", size=5,
                    location="onprem:nyc-dc1", tags={"residency": "none"}),
        ),
    ))


def _start_until_b_submitted(w: World, mover: FakeDataMover):  # type: ignore[no-untyped-def]
    """Start the run and return it with the URI ``b`` was told to write ``out`` to."""
    run = w.start(mover=mover)
    for _ in range(20):
        bs = [j for j in w.fakes[US].jobs.values() if j.job == "b"]
        if bs:
            return run, json.loads(bs[0].env["PLACER_OUTPUTS"])["out"]
        run.step()
    raise AssertionError("b was never submitted")


def test_an_input_from_another_location_is_copied_into_the_consumer_location(tmp_path):
    w = _moving_world(tmp_path)
    assert w.plan().jobs["b"].site == US and w.plan().jobs["c"].site == EU
    mover = FakeDataMover(ROOTS)
    run, out = _start_until_b_submitted(w, mover)
    mover.put(out + "/part-0", b"weights" * 10)
    st = run.wait(timeout=60)
    assert st.state == "SUCCEEDED"
    [c] = [j for j in w.fakes[EU].jobs.values() if j.job == "c"]
    local = json.loads(c.env["PLACER_INPUTS"])["b.out"]
    assert local.startswith(ROOTS["onprem:fra-dc1"])
    assert mover.objects[local + "/part-0"] == b"weights" * 10
    [t] = w.journal.transfers(run.id)
    assert (t.src_uri, t.dst_uri, t.state, t.bytes) == (out, local, "DONE", 70)
    assert t.dst_location == "onprem:fra-dc1" and t.checksum.startswith("sha256-tree:")


def test_a_copy_is_never_redone_once_recorded_done(tmp_path):
    w = _moving_world(tmp_path)
    mover = FakeDataMover(ROOTS)
    run, out = _start_until_b_submitted(w, mover)
    mover.put(out + "/part-0", b"x")
    run.wait(timeout=60)
    again = w.executor(mover=mover).resume(run.id)
    again.step()
    assert len(mover.copies) == 1


def test_a_failed_copy_is_journaled_and_nothing_is_submitted(tmp_path):
    w = _moving_world(tmp_path)
    mover = FakeDataMover(ROOTS)
    run, _ = _start_until_b_submitted(w, mover)  # b wrote nothing: the copy must fail
    st = run.wait(timeout=60)
    assert st.jobs["c"].state != "SUCCEEDED"
    assert not [j for j in w.fakes[EU].jobs.values() if j.job == "c"]
    assert {t.state for t in w.journal.transfers(run.id)} == {"FAILED"}


def test_the_mover_refuses_a_destination_outside_the_allowed_location() -> None:
    import pytest

    from placer.errors import ResidencyError

    mover = FakeDataMover(ROOTS)
    mover.put("mem://fra/placer/x/part", b"pii")
    with pytest.raises(ResidencyError):
        mover.copy("mem://fra/placer/x", "mem://nyc/placer/y", allowed={"onprem:fra-dc1"})
    assert not any(k.startswith("mem://nyc/") for k in mover.objects)
