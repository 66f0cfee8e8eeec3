"""A LOST attempt whose cluster comes back is cancelled there and its partial outputs removed,
only under its own output prefix; the surviving attempt's outputs are never touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from placer.backends import PrefixLayout
from placer.catalog import resolve_inventory
from placer.executor import Executor, Hook, RetryPolicy, Run, submission_id
from placer.testing import FakeDataMover
from tests.executor.world import EU, ROOTS, US, World


def _executor(w: World, hook: Hook | None = None, *, storage: Any = None,
              roots: dict[str, str] | None = None) -> Executor:
    """The world's executor, with ``storage`` as its store (and mover), or none."""
    return Executor(w.journal, w.fakes, layout=PrefixLayout(roots or ROOTS), storage=storage,
                    mover=storage, clock=w.clock, sleep=w.clock.sleep, poll_interval_s=1.0,
                    hook=hook, retry=RetryPolicy(max_attempts=3, base_s=10, seed=7))


def _start(w: World, hook: Hook | None = None, **kw: Any) -> Run:
    return _executor(w, hook, **kw).start(w.plan(), pipeline=w.pipeline,
                                          inventory=w.inventory, policies=w.policies)


def _kill_us_when_b_runs(w: World):  # type: ignore[no-untyped-def]
    def hook(point: str, run_id: str, job: str) -> None:
        fj = w.fakes[US].jobs.get(submission_id(run_id, "b", 1))
        if point == "after_status" and job == "b" and fj is not None and fj.state == "RUNNING":
            w.fakes[US].down = True
    return hook


def _b_outputs(w: World, site: str, run_id: str, attempt: int) -> str:
    return w.fakes[site].jobs[submission_id(run_id, "b", attempt)].env["PLACER_OUTPUT_DIR"]


def _events(w: World, run_id: str, kind: str) -> list[dict]:  # type: ignore[type-arg]
    return [{"job": e.job, **e.data} for e in w.journal.events(run_id, kind)]


def test_a_lost_attempt_is_cancelled_when_its_site_comes_back_and_its_outputs_removed(
        tmp_path: Path) -> None:
    w = World(tmp_path)
    w.fakes[US].outcomes = {"b": ["RUNNING"]}  # the US attempt never ends on its own
    store = FakeDataMover(ROOTS)
    run = _start(w, _kill_us_when_b_runs(w), storage=store)
    st = run.wait(timeout=1000)
    assert st.state == "SUCCEEDED"
    lost_dir = _b_outputs(w, US, run.id, 1)
    kept_dir = _b_outputs(w, EU, run.id, 2)
    assert lost_dir != kept_dir and lost_dir.startswith(ROOTS["onprem:nyc-dc1"])
    # What each attempt wrote, and something of another run's beside it.
    store.put(lost_dir + "out/part-0", b"partial")
    store.put(lost_dir + "out/part-1", b"par")
    store.put(kept_dir + "out/part-0", b"complete")
    neighbour = ROOTS["onprem:nyc-dc1"] + "/other-run/b/out/part-0"
    store.put(neighbour, b"not ours")
    # While the site is down nothing is cancelled or removed: the lost attempt is pending.
    assert run.status().lost_attempts[0].state == "pending"
    assert not _events(w, run.id, "lost_attempt_cancelled")

    w.fakes[US].down = False  # the site comes back
    again = _executor(w, storage=store).resume(run.id)
    w.clock.t += 3600  # past the probe backoff
    st = again.step()

    sid = submission_id(run.id, "b", 1)
    assert w.fakes[US].jobs[sid].state == "STOPPED"
    assert ("cancel", sid) in w.fakes[US].calls
    [cancelled] = _events(w, run.id, "lost_attempt_cancelled")
    assert (cancelled["job"], cancelled["attempt"], cancelled["site"]) == ("b", 1, US)
    [removed] = _events(w, run.id, "lost_attempt_outputs_removed")
    assert (removed["prefix"], removed["objects"], removed["bytes"]) == (lost_dir, 2, 10)
    assert not [u for u in store.objects if u.startswith(lost_dir)]
    assert store.objects[kept_dir + "out/part-0"] == b"complete"
    assert store.objects[neighbour] == b"not ours"
    [lost] = st.lost_attempts
    assert (lost.job, lost.attempt, lost.state, lost.objects) == ("b", 1, "outputs_removed", 2)

    from typer.testing import CliRunner

    from placer.cli import app

    shown = CliRunner().invoke(app, ["status", run.id, "--journal", str(w.tmp / "journal.db")])
    assert f"lost attempt b#1 on {US}: cancelled; 2 objects removed from {lost_dir}" in \
        " ".join(shown.stdout.split())

    # Settled: later ticks neither cancel nor delete again.
    calls = len(w.fakes[US].calls)
    again.step()
    assert len(w.fakes[US].calls) == calls
    assert len(_events(w, run.id, "lost_attempt_outputs_removed")) == 1


def test_an_unreachable_site_is_asked_again_only_after_a_backoff(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.fakes[US].outcomes = {"b": ["RUNNING"]}
    run = _start(w, _kill_us_when_b_runs(w), storage=FakeDataMover(ROOTS))
    run.wait(timeout=1000)
    ex = _executor(w, storage=FakeDataMover(ROOTS))
    again = ex.resume(run.id)
    again.step()
    asked = len(w.fakes[US].calls)
    again.step()  # the fake clock has not moved: the down site is not asked again
    assert len(w.fakes[US].calls) == asked
    w.clock.t += 3600
    again.step()
    assert len(w.fakes[US].calls) == asked + 1
    assert again.status().lost_attempts[0].state == "pending"


def test_outputs_are_kept_when_the_prefix_is_shared_with_the_surviving_attempt(
        tmp_path: Path) -> None:
    """Both data centres write to one root: the lost attempt's prefix is the survivor's, so
    it cannot be proven its own; it is cancelled, and nothing is deleted."""
    shared = {"onprem:fra-dc1": "mem://shared/placer", "onprem:nyc-dc1": "mem://shared/placer"}
    w = World(tmp_path)
    w.fakes[US].outcomes = {"b": ["RUNNING"]}
    store = FakeDataMover(ROOTS)
    store.prefixes = {"mem://shared/": "onprem:fra-dc1"}  # never asked: refused before
    ex = _executor(w, _kill_us_when_b_runs(w), roots=shared)
    run = ex.start(w.plan(), pipeline=w.pipeline, inventory=w.inventory,
                   policies=w.policies)
    assert run.wait(timeout=1000).state == "SUCCEEDED"
    prefix = _b_outputs(w, EU, run.id, 2)
    assert prefix == _b_outputs(w, US, run.id, 1)
    store.put(prefix + "out/part-0", b"complete")
    w.fakes[US].down = False
    ex.storage = store
    w.clock.t += 3600
    st = ex.step(run.id)
    assert w.fakes[US].jobs[submission_id(run.id, "b", 1)].state == "STOPPED"
    [kept] = _events(w, run.id, "lost_attempt_outputs_kept")
    assert "attempt 2 of b (SUCCEEDED) writes under" in kept["reason"]
    assert store.objects[prefix + "out/part-0"] == b"complete"
    assert st.lost_attempts[0].state == "outputs_kept"


def test_a_store_that_cannot_delete_keeps_the_outputs_and_says_so(tmp_path: Path) -> None:
    class NoDelete(FakeDataMover):
        delete = None  # type: ignore[assignment]

    w = World(tmp_path)
    w.fakes[US].outcomes = {"b": ["RUNNING"]}
    run = _start(w, _kill_us_when_b_runs(w))
    run.wait(timeout=1000)
    w.fakes[US].down = False
    store = NoDelete(ROOTS)
    lost_dir = _b_outputs(w, US, run.id, 1)
    store.put(lost_dir + "out/x", b"x")
    ex = _executor(w, storage=store)
    w.clock.t += 3600
    ex.step(run.id)
    [kept] = _events(w, run.id, "lost_attempt_outputs_kept")
    assert kept["reason"] == "its store cannot delete objects"
    assert store.objects[lost_dir + "out/x"] == b"x"


def test_a_lost_attempt_still_stopping_keeps_its_outputs_until_it_has_stopped(
        tmp_path: Path) -> None:
    w = World(tmp_path)
    w.fakes[US].outcomes = {"b": ["RUNNING"]}
    store = FakeDataMover(ROOTS)
    run = _start(w, _kill_us_when_b_runs(w), storage=store)
    run.wait(timeout=1000)
    lost_dir = _b_outputs(w, US, run.id, 1)
    store.put(lost_dir + "out/x", b"x")
    w.fakes[US].down = False
    us = w.fakes[US]
    real_cancel = us.cancel
    us.cancel = lambda handle: us._check("cancel", handle.id)  # type: ignore[method-assign]
    ex = _executor(w, storage=store)
    w.clock.t += 3600
    ex.step(run.id)
    assert _events(w, run.id, "lost_attempt_cancelled")
    assert store.objects[lost_dir + "out/x"] == b"x"  # still running: not yet
    assert ex.step(run.id).lost_attempts[0].state == "cancelled"
    real_cancel(us._handle(submission_id(run.id, "b", 1)))  # the cluster stops it at last
    ex.step(run.id)
    assert lost_dir + "out/x" not in store.objects
    assert len(_events(w, run.id, "lost_attempt_cancelled")) == 1


def test_on_real_s3_stores_the_lost_attempts_objects_are_deleted_and_no_others(
        tmp_path: Path) -> None:
    """Each data centre's own S3-compatible store (one moto_server, a bucket per site, routed
    by bucket as an inventory's ``storage_endpoint`` routes it): the lost attempt's objects
    are deleted from the US store, the survivor's and a neighbour's stay."""
    pytest.importorskip("moto.server")
    import boto3

    from placer.backends import StorageRouter
    from placer_s3 import S3Resolver
    from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY, moto_server

    w = World(tmp_path)
    sites = {s.name: s.location for s in resolve_inventory(w.inventory)}
    with moto_server() as url:
        session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                        aws_secret_access_key=SECRET_KEY,
                                        region_name="us-east-1")
        admin = session.client("s3", endpoint_url=url)
        stores, roots = {}, {}
        for n, site in enumerate((EU, US)):
            bucket = f"placer-lost-{n}"
            admin.create_bucket(Bucket=bucket)
            stores[bucket] = S3Resolver(endpoint_url=url, session=session, page_size=2,
                                        onprem_location=sites[site])
            roots[sites[site].key] = f"s3://{bucket}/placer"
        router = StorageRouter({"s3": stores["placer-lost-0"]}, {"s3": stores})
        w.fakes[US].outcomes = {"b": ["RUNNING"]}
        ex = _executor(w, _kill_us_when_b_runs(w), storage=router, roots=roots)
        run = ex.start(w.plan(), pipeline=w.pipeline, inventory=w.inventory,
                       policies=w.policies)
        assert run.wait(timeout=1000).state == "SUCCEEDED"
        lost_dir, kept_dir = _b_outputs(w, US, run.id, 1), _b_outputs(w, EU, run.id, 2)
        for uri in (lost_dir + "out/part-0", lost_dir + "out/part-1", lost_dir + "out/part-2",
                    kept_dir + "out/part-0", roots[sites[US].key] + "/other/b/keep"):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            admin.put_object(Bucket=bucket, Key=key, Body=b"data")
        w.fakes[US].down = False
        w.clock.t += 3600
        st = ex.step(run.id)
        [lost] = st.lost_attempts
        assert (lost.state, lost.objects, lost.prefix) == ("outputs_removed", 3, lost_dir)
        left = {f"s3://{b}/{o['Key']}" for b in stores
                for o in admin.list_objects_v2(Bucket=b).get("Contents", [])}
        assert left == {kept_dir + "out/part-0", roots[sites[US].key] + "/other/b/keep"}


def test_a_store_error_while_removing_is_recorded_once_and_tried_again_later(
        tmp_path: Path) -> None:
    from placer.errors import BackendError

    class Flaky(FakeDataMover):
        fails = 2

        def list_objects(self, prefix_uri: str) -> list[Any]:
            if self.fails:
                self.fails -= 1
                raise BackendError("store is busy")
            return super().list_objects(prefix_uri)

    w = World(tmp_path)
    w.fakes[US].outcomes = {"b": ["RUNNING"]}
    store = Flaky(ROOTS)
    run = _start(w, _kill_us_when_b_runs(w), storage=store)
    assert run.wait(timeout=1000).state == "SUCCEEDED"
    lost_dir = _b_outputs(w, US, run.id, 1)
    store.put(lost_dir + "out/x", b"x")
    w.fakes[US].down = False
    ex = _executor(w, storage=store)
    for _ in range(2):  # two failures, each after the backoff of the one before
        w.clock.t += 3600
        assert ex.step(run.id).state == "SUCCEEDED"
    [failed] = _events(w, run.id, "lost_attempt_cleanup_failed")
    assert failed["error"] == "store is busy" and failed["attempt"] == 1
    assert ex.step(run.id).lost_attempts[0].state == "cancelled"  # within the backoff
    w.clock.t += 3600
    assert ex.step(run.id).lost_attempts[0].state == "outputs_removed"
    assert lost_dir + "out/x" not in store.objects
