"""The executor's staging copies between two stores go through placer.transfer: in parts,
recorded in the executor's journal, so a copy killed half way resumes in a new executor
without re-sending the parts it had finished, and a run's cancel stops it between parts.

Two moto_server endpoints stand for the on-prem S3-compatible stores of two sites (fra, nyc);
compute is the executor tests' fake backends on a fake clock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from placer.backends import StorageRouter, layout_for, storage_for
from placer.catalog import resolve_inventory
from placer.errors import ResidencyError
from placer.executor import Executor, RetryPolicy, Run
from placer.journal import Journal
from placer.models import Dataset, Inventory
from placer.storage import CopyResult, PartReport, tree_digest
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY, moto_server
from tests.backends.transfer_worlds import MIN_PART, PART
from tests.builders import job, pipeline
from tests.executor.world import EU, US, World

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")

FRA, NYC = "onprem:fra-dc1", "onprem:nyc-dc1"
BIG = 6 * PART + 100  # seven parts of PART bytes (the last short)
PARTS = 7


class Killed(BaseException):
    """The process dies here (not an error placer handles: nothing after it runs)."""


@pytest.fixture(scope="module")
def endpoints() -> Iterator[dict[str, str]]:
    small = {"S3_UPLOAD_PART_MIN_SIZE": str(MIN_PART)}
    with moto_server(small) as fra, moto_server(small) as nyc:
        yield {"fra": fra, "nyc": nyc}


class Stores:
    """The two sites' stores as the executor builds them (:func:`storage_for`), with small
    parts, an admin client per endpoint, and the parts the fra store was sent."""

    def __init__(self, w: World, endpoints: dict[str, str], n: str) -> None:
        self.buckets = {"fra": f"fra-{n}", "nyc": f"nyc-{n}"}
        w.inventory = Inventory.model_validate({
            **w.inventory.model_dump(mode="json", by_alias=True, exclude_unset=True),
            "sites": {
                EU: {"location": FRA, "country": "DE",
                     "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": "$2.0"}],
                     "storage": f"s3://{self.buckets['fra']}/placer",
                     "storage_endpoint": endpoints["fra"]},
                US: {"location": NYC, "country": "US",
                     "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": "$1.0"}],
                     "storage": f"s3://{self.buckets['nyc']}/placer",
                     "storage_endpoint": endpoints["nyc"]}}})
        self.sites = resolve_inventory(w.inventory)
        session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                        aws_secret_access_key=SECRET_KEY,
                                        region_name="us-east-1")
        self.admin = {k: session.client("s3", endpoint_url=v) for k, v in endpoints.items()}
        for k, bucket in self.buckets.items():
            self.admin[k].create_bucket(Bucket=bucket)
        self.sent = 0
        self.during: Callable[[int], None] = lambda _n: None
        self.w = w

    def router(self) -> StorageRouter:
        """A fresh router (as a new process builds), copying in parts of PART bytes, two in
        flight; every part sent to fra is counted, and ``during(count)`` runs before it."""
        router = storage_for(self.sites)
        assert router is not None
        router.part_size, router.workers = PART, 2
        fra = router.store_for(f"s3://{self.buckets['fra']}/placer/")
        for store in {id(s): s for s in router.buckets["s3"].values()}.values():
            store.min_part_size = MIN_PART
        put_part = fra.put_part

        def counted(uri: str, upload: str, number: int, data: bytes, digest: str
                    ) -> PartReport:
            self.sent += 1
            self.w.clock.t += 1.0  # each part takes a second on the world's clock
            self.during(self.sent)
            report: PartReport = put_part(uri, upload, number, data, digest)
            return report

        fra.put_part = counted
        return router

    def executor(self, journal: Journal) -> Executor:
        router = self.router()
        w = self.w
        return Executor(journal, w.fakes, layout=layout_for(self.sites), storage=router,
                        mover=router, clock=w.clock, sleep=w.clock.sleep, poll_interval_s=1.0,
                        retry=RetryPolicy(max_attempts=3, base_s=10, seed=7))

    def put(self, uri: str, data: bytes) -> None:
        """Write ``uri`` on the nyc store as the job running there would."""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        self.admin["nyc"].put_object(Bucket=bucket, Key=key, Body=data,
                                     ChecksumAlgorithm="SHA256")

    def get(self, uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return self.admin["fra"].get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]

    def uploads(self) -> list[Any]:
        return list(self.admin["fra"].list_multipart_uploads(
            Bucket=self.buckets["fra"]).get("Uploads", ()))


_n = iter(range(10**6))


@pytest.fixture
def world(tmp_path: Path, endpoints: dict[str, str],
          monkeypatch: pytest.MonkeyPatch) -> tuple[World, Stores]:
    """``b`` runs in nyc on public data; ``c`` reads its output and EU data, so runs in fra:
    ``b.out`` is copied nyc → fra, between the two endpoints, before ``c`` is submitted."""
    for key, value in {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    w = World(tmp_path, pipeline=pipeline(
        job("b", inputs=["web"], outputs={"out": 2}),
        job("c", inputs=["b.out", "eu_notes"], outputs={"model": 1}),
        datasets=(
            Dataset(name="eu_notes", uri="mem://fra/data/notes", size=5, location=FRA,
                    tags={"residency": "EU"}),
            Dataset(name="web", uri="mem://nyc/data/web", size=5, location=NYC,
                    tags={"residency": "none"}),
        )))
    return w, Stores(w, endpoints, str(next(_n)))


def _data(size: int, seed: int) -> bytes:
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


FILES = {"part-0": _data(BIG, 1), "part-1": _data(300, 2)}


def _start_until_b_wrote(w: World, stores: Stores, ex: Executor) -> tuple[Run, str]:
    """Start the run; once ``b`` is submitted, write its output (a multi-part object and a
    small one under ``b.out``) as the job would; ``b.out``'s URI."""
    plan = w.plan()
    assert (plan.jobs["b"].site, plan.jobs["c"].site) == (US, EU)
    run = ex.start(plan, pipeline=w.pipeline, inventory=w.inventory, policies=w.policies)
    for _ in range(20):
        bs = [j for j in w.fakes[US].jobs.values() if j.job == "b"]
        if bs:
            out: str = json.loads(bs[0].env["PLACER_OUTPUTS"])["out"]
            for name, data in FILES.items():
                stores.put(f"{out}/{name}", data)
            return run, out
        run.step()
    raise AssertionError("b was never submitted")


def _tree(files: dict[str, bytes]) -> str:
    return "sha256-tree:" + tree_digest(
        [f"{k}\t{len(v)}\t{hashlib.sha256(v).hexdigest()}\n" for k, v in sorted(files.items())])


def test_a_staging_copy_killed_after_some_parts_resumes_without_resending_them(
        world: tuple[World, Stores]) -> None:
    w, stores = world

    def kill(sent: int) -> None:
        if sent == 4:  # three parts written and recorded (two in flight), the fourth kills
            raise Killed

    stores.during = kill
    run, out = _start_until_b_wrote(w, stores, stores.executor(w.journal))
    with pytest.raises(Killed):
        run.wait(timeout=1000)
    [t] = w.journal.transfers(run.id)
    assert not [j for j in w.fakes[EU].jobs.values() if j.job == "c"]  # c waits for its input
    recorded = w.journal._db.execute(
        "SELECT COUNT(*) FROM copy_parts WHERE part > 0").fetchone()[0]
    # The parts written before the kill, and those already in flight beside the one that
    # raised (a kill in a worker stops no other worker's verified part from being recorded).
    assert 1 <= recorded < PARTS
    assert len(stores.uploads()) == 1  # the upload is left for the resumed copy
    w.journal.close()

    # A new process: a fresh journal connection, router and executor; the same stores.
    stores.during, first = (lambda _n: None), stores.sent
    w.journal = Journal(w.tmp / "journal.db")
    st = stores.executor(w.journal).resume(run.id).wait(timeout=1000)
    assert st.state == "SUCCEEDED"
    assert stores.sent - first == PARTS - recorded  # only the parts not recorded are re-sent
    assert stores.uploads() == []
    # The copy is the source, byte for byte, and the job read that copy.
    [c] = [j for j in w.fakes[EU].jobs.values() if j.job == "c"]
    local = json.loads(c.env["PLACER_INPUTS"])["b.out"]
    assert local.startswith(f"s3://{stores.buckets['fra']}/placer/")
    assert {name: stores.get(f"{local}/{name}") for name in FILES} == FILES
    done = [x for x in w.journal.transfers(run.id) if x.state == "DONE"]
    assert [(x.src_uri, x.dst_uri, x.bytes, x.checksum) for x in done] == [
        (out, local, sum(map(len, FILES.values())), _tree(FILES))]
    assert [x.state for x in w.journal.transfers(run.id)] == ["FAILED", "DONE"]
    assert t.state == "FAILED"
    # Re-verifiable later (a multi-part object's store reports only its composite: re-read).
    assert done[0].bytes is not None and done[0].checksum is not None
    stores.router().verify_copy(CopyResult(out, local + "/", done[0].bytes, 2,
                                           done[0].checksum))


def test_a_finished_part_copy_is_recognised_and_not_repeated(
        world: tuple[World, Stores]) -> None:
    w, stores = world
    run, out = _start_until_b_wrote(w, stores, stores.executor(w.journal))
    assert run.wait(timeout=1000).state == "SUCCEEDED"
    assert stores.sent == PARTS
    # The engine's ledger knows the copy finished: a copy asked again sends nothing.
    [t] = w.journal.transfers(run.id)
    again = stores.router().copy(out, t.dst_uri, allowed={FRA}, journal=w.journal)
    assert (again.checksum, stores.sent) == (t.checksum, PARTS)


def test_a_cancel_from_another_process_stops_a_part_copy_at_the_next_part(
        world: tuple[World, Stores]) -> None:
    w, stores = world
    state: dict[str, str] = {}

    def cancel(sent: int) -> None:
        if sent == 2:  # `placer cancel` elsewhere: its own journal connection
            with Journal(w.tmp / "journal.db") as other:
                Executor(other, w.fakes, layout=layout_for(stores.sites)).cancel(state["run"])

    stores.during = cancel
    run, _ = _start_until_b_wrote(w, stores, stores.executor(w.journal))
    state["run"] = run.id
    assert run.wait(timeout=1000).state == "CANCELLED"
    assert stores.sent < PARTS  # stopped between parts (the flag is read every 0.5 s)
    assert [t.state for t in w.journal.transfers(run.id)] == ["CANCELLED"]
    assert not [j for j in w.fakes[EU].jobs.values() if j.job == "c"]  # never submitted
    assert [e.job for e in w.journal.events(run.id, "copies_stopped")] == ["c"]


def test_the_residency_guard_refuses_before_a_part_moves(world: tuple[World, Stores]) -> None:
    w, stores = world
    src = f"s3://{stores.buckets['nyc']}/placer/out/part-0"
    stores.put(src, FILES["part-0"])
    with pytest.raises(ResidencyError, match=f"its bucket is in {FRA}, outside"):
        stores.router().copy(src, f"s3://{stores.buckets['fra']}/placer/in/", allowed={NYC},
                             journal=w.journal)
    assert stores.sent == 0 and stores.uploads() == []
    assert "Contents" not in stores.admin["fra"].list_objects_v2(Bucket=stores.buckets["fra"])
    assert w.journal._db.execute("SELECT COUNT(*) FROM copy_parts").fetchone()[0] == 0
