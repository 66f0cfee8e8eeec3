"""Staging copies are measured against the optimizer's own link model, slow ones reported,
and a run's cancel stops copies in flight."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from placer.backends import PrefixLayout
from placer.errors import BackendError
from placer.executor import SLOW_FACTOR, SLOW_FLOOR_S, Executor, RunStatus
from placer.journal import Journal
from placer.models import Dataset
from placer.storage import AllowedLocations, CopyResult
from placer.testing import FakeDataMover
from tests.builders import job, pipeline
from tests.executor.world import EU, ROOTS, US, World

# nyc → fra at $0.02/GB over 1 Gbit/s: 8 s and $0.04 for the 2 GB b.out the pipeline declares.
NETWORK = [{"from": "onprem:nyc-dc1", "to": "onprem:fra-dc1", "usd_per_gb": 0.02,
            "bandwidth": "1Gbps"}]


def _world(tmp: Path, outputs: dict[str, float] | None = None,
           bandwidth: str = "1Gbps") -> World:
    """``b`` runs in the US on public data; ``c`` reads its outputs and EU data, so runs in
    the EU and every output of ``b`` crosses nyc → fra."""
    outputs = outputs or {"out": 2}
    w = World(tmp, pipeline=pipeline(
        job("b", inputs=["web"], outputs=outputs),
        job("c", inputs=[*(f"b.{o}" for o in outputs), "eu_notes"], outputs={"model": 1}),
        datasets=(
            Dataset(name="eu_notes", uri="mem://fra/data/notes", size=5,
                    location="onprem:fra-dc1", tags={"residency": "EU"}),
            Dataset(name="web", uri="mem://nyc/data/web", size=5,
                    location="onprem:nyc-dc1", tags={"residency": "none"}),
        ),
    ))
    w.inventory = w.inventory.model_validate(
        {**w.inventory.model_dump(mode="json", by_alias=True, exclude_unset=True),
         "network": [{**NETWORK[0], "bandwidth": bandwidth}]})
    return w


class TimedMover(FakeDataMover):
    """A fake store whose copies take ``seconds`` on the world's fake clock."""

    def __init__(self, w: World, seconds: float) -> None:
        super().__init__(ROOTS)
        self.w, self.seconds = w, seconds

    def copy(self, src_uri: str, dst_uri: str, *, allowed: AllowedLocations,
             source: Any = None) -> CopyResult:
        self.w.clock.t += self.seconds
        return super().copy(src_uri, dst_uri, allowed=allowed, source=source)


def _run_until_b_wrote(w: World, ex: Executor, mover: FakeDataMover,
                       data: bytes = b"x" * 1_000_000) -> Any:
    run = ex.start(w.plan(), pipeline=w.pipeline, inventory=w.inventory, policies=w.policies)
    for _ in range(20):
        bs = [j for j in w.fakes[US].jobs.values() if j.job == "b"]
        if bs:
            for uri in json.loads(bs[0].env["PLACER_OUTPUTS"]).values():
                mover.put(uri + "/part-0", data)
            return run
        run.step()
    raise AssertionError("b was never submitted")


def test_a_copy_is_recorded_with_bytes_seconds_and_dollars_beside_what_the_plan_priced(
        tmp_path: Path) -> None:
    w = _world(tmp_path)
    plan = w.plan()
    assert plan.jobs["b"].site == US and plan.jobs["c"].site == EU
    mover = TimedMover(w, seconds=12.0)
    run = _run_until_b_wrote(w, w.executor(mover=mover), mover, b"x" * 3_000_000)
    st: RunStatus = run.wait(timeout=100)
    assert st.state == "SUCCEEDED"
    [t] = st.transfers
    assert (t.job, t.src_location, t.dst_location, t.state, t.bytes) == (
        "c", "onprem:nyc-dc1", "onprem:fra-dc1", "DONE", 3_000_000)
    assert t.seconds == 12.0
    # Planned: what the optimizer charged c for moving b.out (the same link, 2 GB declared).
    assert t.planned_usd == pytest.approx(plan.jobs["c"].transfer_usd) == pytest.approx(0.04)
    assert t.planned_s == pytest.approx(plan.jobs["c"].transfer_h * 3600) == pytest.approx(16)
    # Actual: the same model priced for the bytes that moved.
    assert t.usd == pytest.approx(0.02 * 0.003)
    assert t.expected_s == pytest.approx(0.024)
    assert not t.slow  # 12 s is under the floor: latency, not a slow link
    tot = st.transfer_totals
    assert (tot.count, tot.bytes, tot.seconds, tot.slow) == (1, 3_000_000, 12.0, 0)
    assert tot.planned_usd == pytest.approx(0.04) and tot.usd == pytest.approx(0.00006)
    assert not w.journal.events(run.id, "transfer_slow")


def test_a_copy_far_slower_than_the_link_model_is_reported(tmp_path: Path) -> None:
    w = _world(tmp_path)
    # 1 MB at 1 Gbit/s: the model says 8 ms, so the floor rules: slow past 3 x 30 s.
    mover = TimedMover(w, seconds=SLOW_FACTOR * SLOW_FLOOR_S + 1)
    run = _run_until_b_wrote(w, w.executor(mover=mover), mover)
    st = run.wait(timeout=1000)
    [t] = st.transfers
    assert t.slow and st.transfer_totals.slow == 1
    [slow] = w.journal.events(run.id, "transfer_slow")
    assert slow.job == "c" and slow.data["seconds"] == t.seconds == 91.0
    assert (slow.data["factor"], slow.data["floor_s"]) == (SLOW_FACTOR, SLOW_FLOOR_S)


@pytest.mark.parametrize(("seconds", "slow"), [(SLOW_FACTOR * SLOW_FLOOR_S - 1, False),
                                               (SLOW_FACTOR * 80 - 1, False),
                                               (SLOW_FACTOR * 80 + 1, True)])
def test_the_slow_threshold_follows_the_bytes_moved_above_the_floor(
        tmp_path: Path, seconds: float, slow: bool) -> None:
    # 10 MB over 1 Mbit/s: the link model says 80 s, above the floor: slow past 240 s.
    w = _world(tmp_path, bandwidth="1Mbps")
    mover = TimedMover(w, seconds=seconds)
    run = _run_until_b_wrote(w, w.executor(mover=mover), mover, b"z" * 10_000_000)
    [t] = run.wait(timeout=10_000).transfers
    assert t.expected_s == pytest.approx(80.0)
    assert t.slow is slow
    assert len(w.journal.events(run.id, "transfer_slow")) == int(slow)


class PartMover(FakeDataMover):
    """A copy in ``parts`` parts, one second each on the fake clock, that asks
    ``should_stop`` between parts (as a multipart engine does) and runs ``during(n)`` after
    part ``n``."""

    def __init__(self, w: World, parts: int, during: Callable[[int], None]) -> None:
        super().__init__(ROOTS)
        self.w, self.parts, self.during = w, parts, during
        self.sent = 0

    def copy(self, src_uri: str, dst_uri: str, *, allowed: AllowedLocations,
             source: Any = None, should_stop: Callable[[], bool] | None = None) -> CopyResult:
        for n in range(self.parts):
            if should_stop is not None and should_stop():
                raise BackendError(f"{dst_uri}: copy stopped after {n} parts")
            self.w.clock.t += 1.0
            self.sent += 1
            self.during(n)
        return super().copy(src_uri, dst_uri, allowed=allowed, source=source)


def _cancel_elsewhere(w: World, run_id: str) -> None:
    """``placer cancel`` from another process: its own journal connection, no driver lock."""
    with Journal(w.tmp / "journal.db") as other:
        Executor(other, w.fakes, layout=PrefixLayout(ROOTS)).cancel(run_id)


def test_a_cancel_from_another_process_stops_a_long_copy_at_the_next_part(
        tmp_path: Path) -> None:
    w = _world(tmp_path)
    state: dict[str, str] = {}

    def during(n: int) -> None:
        if n == 5:
            _cancel_elsewhere(w, state["run"])

    mover = PartMover(w, parts=1000, during=during)
    ex = w.executor(mover=mover)
    run = ex.start(w.plan(), pipeline=w.pipeline, inventory=w.inventory, policies=w.policies)
    state["run"] = run.id
    for _ in range(20):
        bs = [j for j in w.fakes[US].jobs.values() if j.job == "b"]
        if bs:
            mover.put(json.loads(bs[0].env["PLACER_OUTPUTS"])["out"] + "/part-0", b"x")
            break
        run.step()
    st = run.wait(timeout=1000)
    assert st.state == "CANCELLED"
    assert mover.sent <= 7  # stopped within a part boundary (the flag is read every 0.5 s)
    [t] = w.journal.transfers(run.id)
    assert t.state == "CANCELLED"
    assert not [j for j in w.fakes[EU].jobs.values() if j.job == "c"]  # never submitted
    assert [e.job for e in w.journal.events(run.id, "copies_stopped")] == ["c"]


def test_a_cancel_stops_copies_between_objects_for_a_mover_without_the_hook(
        tmp_path: Path) -> None:
    w = _world(tmp_path, outputs={"out": 2, "log": 1})
    state: dict[str, str] = {}

    class Cancelling(FakeDataMover):
        def copy(self, src_uri: str, dst_uri: str, *, allowed: AllowedLocations,
                 source: Any = None) -> CopyResult:
            result = super().copy(src_uri, dst_uri, allowed=allowed, source=source)
            _cancel_elsewhere(w, state["run"])  # cancelled while the first copy runs
            return result

    mover = Cancelling(ROOTS)
    ex = w.executor(mover=mover)
    run = ex.start(w.plan(), pipeline=w.pipeline, inventory=w.inventory, policies=w.policies)
    state["run"] = run.id
    for _ in range(20):
        bs = [j for j in w.fakes[US].jobs.values() if j.job == "b"]
        if bs:
            for uri in json.loads(bs[0].env["PLACER_OUTPUTS"]).values():
                mover.put(uri + "/part-0", b"x")
            break
        run.step()
    assert run.wait(timeout=1000).state == "CANCELLED"
    assert [t.state for t in w.journal.transfers(run.id)] == ["DONE"]  # the second never began
    assert len(mover.copies) == 1


def test_status_and_runs_show_copies_planned_against_actual(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from placer.cli import app

    w = _world(tmp_path)
    mover = TimedMover(w, seconds=SLOW_FACTOR * SLOW_FLOOR_S + 1)
    run = _run_until_b_wrote(w, w.executor(mover=mover), mover)
    run.wait(timeout=1000)
    db = str(tmp_path / "journal.db")
    runner = CliRunner()
    res = runner.invoke(app, ["status", run.id, "--journal", db])
    assert res.exit_code == 0, res.output
    assert "copies: 1 copy, 0.001 GB: 91.0s / $0.00 (planned 16.0s / $0.04), 1 slow" \
        in res.stdout
    assert f"slow copy {run.status().transfers[0].id} for c (onprem:nyc-dc1 -> " \
        "onprem:fra-dc1): 91.0s, the link model said 0.0s" in " ".join(res.stdout.split())
    data = json.loads(runner.invoke(app, ["status", run.id, "--journal", db, "--json"]).stdout)
    assert data["transfer_totals"]["slow"] == 1
    assert data["transfers"][0]["planned_usd"] == pytest.approx(0.04)
    [one] = json.loads(runner.invoke(app, ["runs", "--journal", db, "--json"]).stdout)["runs"]
    assert one["transfers"]["count"] == 1 and one["transfers"]["seconds"] == 91.0
    assert "(planned 16.0s" in " ".join(runner.invoke(
        app, ["runs", "--journal", db, "-o", "wide"]).stdout.split())
