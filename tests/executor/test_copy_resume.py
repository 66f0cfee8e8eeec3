"""Staging copies through the executor, in a process of their own: SIGKILLed half way and
resumed by a new process, on the SQLite journal and on the PostgreSQL one, and stopped by a
run's cancel from another process.

``b`` runs in nyc and writes a 4-part object (5 MiB parts, S3's real minimum) and a small one;
``c`` runs in fra, so the executor copies ``b.out`` from the nyc ``moto_server`` to the fra one
(:meth:`StorageRouter.copy` → :func:`placer.transfer.copy`, progress in the journal's
``copy_parts``) before it submits ``c``. The executor runs in tests/executor/
copy_resume_driver.py, on tests/cli/fakecluster.py's shared fake cluster: in a subprocess for
the run that is killed or cancelled, in the test's own process for the run that resumes it.
Every ``UploadPart`` request is logged (boto3's ``before-send``), and the driver holds one
part's request unsent until the test has killed or cancelled it, so the kill point is known.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import placer
from placer.backends import layout_for
from placer.catalog import resolve_inventory
from placer.executor import Executor
from placer.journal import Journal
from placer.models import Dataset, Inventory
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY, moto_server
from tests.builders import job, pipeline
from tests.cli.fakecluster import STATE_ENV, SharedFakeBackend
from tests.executor.copy_resume_driver import drive
from tests.executor.world import EU, ROOT, US

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")

FRA, NYC = "onprem:fra-dc1", "onprem:nyc-dc1"
PART = 5 * 2**20
PARTS = 4
FILES = {"part-0": (3 * PART + 1000, 1), "part-1": (300, 2)}  # name: (size, seed)
POLICIES = [str(ROOT / "policies" / "locations.yaml"),
            str(ROOT / "policies" / "eea-residency.yaml")]
AWS = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
       "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def endpoints() -> Iterator[dict[str, str]]:
    with moto_server() as fra, moto_server() as nyc:  # moto's default: S3's 5 MiB part minimum
        yield {"fra": fra, "nyc": nyc}


_n = iter(range(10**6))


class World:
    """Two sites' stores and a shared fake cluster; drivers started in subprocesses."""

    def __init__(self, tmp: Path, endpoints: dict[str, str], journal: str,
                 monkeypatch: pytest.MonkeyPatch) -> None:
        n = next(_n)
        self.tmp, self.endpoints, self.journal = tmp, endpoints, journal
        self.state = tmp / "cluster"
        self.buckets = {"fra": f"fra-resume-{n}", "nyc": f"nyc-resume-{n}"}
        self.roots = {k: f"s3://{b}/placer" for k, b in self.buckets.items()}
        self.inventory = Inventory.model_validate({"name": "two-dcs", "sites": {
            EU: {"location": FRA, "country": "DE",
                 "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": "$2.0"}],
                 "storage": self.roots["fra"], "storage_endpoint": endpoints["fra"]},
            US: {"location": NYC, "country": "US",
                 "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": "$1.0"}],
                 "storage": self.roots["nyc"], "storage_endpoint": endpoints["nyc"]}}})
        self.pipeline = pipeline(
            job("b", inputs=["web"], outputs={"out": 2}),
            job("c", inputs=["b.out", "eu_notes"], outputs={"model": 1}),
            datasets=(
                Dataset(name="eu_notes", uri="mem://fra/data/notes", size=5, location=FRA,
                        tags={"residency": "EU"}),
                Dataset(name="web", uri="mem://nyc/data/web", size=5, location=NYC,
                        tags={"residency": "none"})))
        session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                        aws_secret_access_key=SECRET_KEY,
                                        region_name="us-east-1")
        self.admin = {k: session.client("s3", endpoint_url=v) for k, v in endpoints.items()}
        for k, bucket in self.buckets.items():
            self.admin[k].create_bucket(Bucket=bucket)
        self.files = {name: random.Random(seed).randbytes(size)
                      for name, (size, seed) in FILES.items()}
        for name, body in self.files.items():  # what b writes (the driver copies these)
            self.admin["nyc"].put_object(Bucket=self.buckets["nyc"], Key=f"seed/{name}",
                                         Body=body, ChecksumAlgorithm="SHA256")
        self.procs: list[subprocess.Popen[str]] = []
        for key, value in {**AWS, STATE_ENV: str(self.state)}.items():
            monkeypatch.setenv(key, value)  # for the drivers run in this process

    def spec(self, name: str, *, lease_s: float | None = None, **spec: Any) -> Path:
        """A driver's spec (``mode``, ``run``, ``block_at``, ``part_delay``); its markers and
        part log go under ``tmp/name``."""
        work = self.tmp / name
        work.mkdir()
        if spec["mode"] == "start":
            plan = placer.plan(self.pipeline, self.inventory, placer.load_policies(*POLICIES))
            assert (plan.jobs["b"].site, plan.jobs["c"].site) == (US, EU), plan.reasons
            spec.update(plan=plan.model_dump(mode="json"),
                        pipeline=self.pipeline.model_dump(mode="json"), policies=POLICIES)
        spec.update(dir=str(work), journal=self.journal, lease_s=lease_s, part_size=PART,
                    inventory=self.inventory.model_dump(mode="json", by_alias=True,
                                                        exclude_unset=True),
                    fra_prefix=self.roots["fra"] + "/", nyc_root=self.roots["nyc"],
                    nyc_endpoint=self.endpoints["nyc"], files=list(FILES))
        path = work / "spec.json"
        path.write_text(json.dumps(spec))
        return path

    def spawn(self, name: str, **spec: Any) -> subprocess.Popen[str]:
        """A driver in a process of its own."""
        path = self.spec(name, **spec)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.executor.copy_resume_driver", str(path)], cwd=ROOT,
            env={**os.environ, **AWS, STATE_ENV: str(self.state),
                 "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'backends'}"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def wait_for(self, proc: subprocess.Popen[str], path: Path, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if proc.poll() is not None:
                raise AssertionError(f"the driver ended ({proc.returncode}) before {path.name}:"
                                     f" {proc.stderr.read() if proc.stderr else ''}")
            assert time.monotonic() < deadline, f"no {path} after {timeout}s"
            time.sleep(0.02)

    @staticmethod
    def finish(proc: subprocess.Popen[str]) -> dict[str, str]:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        result: dict[str, str] = json.loads(out.strip().splitlines()[-1])
        return result

    def sent(self, name: str) -> list[tuple[int, float]]:
        """Each UploadPart request the driver ``name`` sent: (part number, wall time)."""
        lines = (self.tmp / name / "parts.log").read_text().splitlines()
        return [(int(n), float(t)) for _, n, t in (line.split() for line in lines)]

    def recorded(self) -> set[int]:
        """The parts the journal's ledger records as written (one copy in parts here)."""
        with Journal(self.journal) as j:
            return {int(r[0]) for r in j._db.execute(
                "SELECT part FROM copy_parts WHERE part > 0").fetchall()}

    def ledger_rows(self) -> int:
        with Journal(self.journal) as j:
            return int(j._db.execute("SELECT COUNT(*) FROM copy_parts WHERE part >= 0"
                                     ).fetchone()[0])

    def uploads(self) -> list[Any]:
        return list(self.admin["fra"].list_multipart_uploads(
            Bucket=self.buckets["fra"]).get("Uploads", ()))

    def submitted(self, site: str) -> dict[str, Any]:
        """The jobs the shared fake cluster of ``site`` received, by submission id."""
        path = self.state / f"{site}.pickle"
        if not path.exists():
            return {}
        return dict(pickle.loads(path.read_bytes()).jobs)

    def get(self, uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return self.admin["fra"].get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def _world(tmp_path: Path, endpoints: dict[str, str], journal: str,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    w = World(tmp_path, endpoints, journal, monkeypatch)
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def sqlite_world(tmp_path: Path, endpoints: dict[str, str],
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from _world(tmp_path, endpoints, str(tmp_path / "journal.db"), monkeypatch)


@pytest.fixture
def pg_world(tmp_path: Path, endpoints: dict[str, str], postgres_url: str,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from _world(tmp_path, endpoints, postgres_url, monkeypatch)


def _kill_mid_copy_then_resume(w: World, lease_s: float | None) -> None:
    first = w.spawn("first", mode="start", block_at=3, lease_s=lease_s)
    w.wait_for(first, w.tmp / "first" / "blocked")
    deadline = time.monotonic() + 10  # part 2, in flight beside 3, lands and is recorded
    while not w.recorded() >= {1, 2} and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL
    run_id = (w.tmp / "first" / "run").read_text()
    src = w.admin["nyc"].head_object(Bucket=w.buckets["nyc"], ChecksumMode="ENABLED",
                                     Key=f"placer/{run_id}/b/out/part-0")
    assert src.get("ChecksumSHA256")  # the source's own SHA-256: the copy is checked with it
    recorded, sent_first = w.recorded(), [n for n, _ in w.sent("first")]
    assert {1, 2} <= recorded and 3 not in recorded  # 3 was held unsent when killed
    assert recorded <= set(sent_first)
    assert len(w.uploads()) == 1  # the upload is left for the resumed copy
    assert not [j for j in w.submitted(EU).values() if j.job == "c"]  # c waits for its input
    with Journal(w.journal) as j:
        assert [t.state for t in j.transfers(run_id)] == ["INTENT"]  # died mid-copy

    # Another process (this one) resumes the run: same journal, same stores, nothing else.
    assert drive(str(w.spec("second", mode="resume", run=run_id, lease_s=lease_s))) == {
        "run": run_id, "state": "SUCCEEDED"}
    resent = [n for n, _ in w.sent("second")]
    assert sorted(resent) == sorted(set(range(1, PARTS + 1)) - recorded)  # none recorded again
    assert w.uploads() == [] and w.ledger_rows() == 0

    # The copy is the source, byte for byte, and c read that copy.
    [c] = [j for j in w.submitted(EU).values() if j.job == "c"]
    local = json.loads(c.env["PLACER_INPUTS"])["b.out"]
    assert local.startswith(w.roots["fra"] + f"/{run_id}/c/")
    assert {name: w.get(f"{local}/{name}") for name in FILES} == w.files
    with Journal(w.journal) as j:
        transfers, events = j.transfers(run_id), j.events(run_id)
    # The interrupted copy is closed as FAILED by the driver that redid it.
    assert [t.state for t in transfers] == ["FAILED", "DONE"]
    assert transfers[1].bytes == sum(map(len, w.files.values()))
    # c's intent (before its submission) follows the verified copy's DONE.
    done = next(e.seq for e in events if e.kind == "transfer" and e.data.get("state") == "DONE")
    intent = next(e.seq for e in events if e.kind == "intent" and e.job == "c")
    assert done < intent


def test_a_staging_copy_sigkilled_half_way_resumes_in_a_new_process_without_resending(
        sqlite_world: World) -> None:
    _kill_mid_copy_then_resume(sqlite_world, lease_s=None)


def test_the_same_on_a_postgresql_journal(pg_world: World) -> None:
    # The killed driver's lease lapses after 3 s; the resuming driver is refused until then.
    _kill_mid_copy_then_resume(pg_world, lease_s=3.0)


def test_a_copy_longer_than_the_lease_keeps_it_on_a_postgresql_journal(
        pg_world: World) -> None:
    """Parts written renew the driver's lease: a copy that outlasts one lease (4 parts of
    0.8 s or more, one at a time, under a 2 s lease) is not a driver that stopped."""
    w = pg_world
    result = drive(str(w.spec("slow", mode="start", part_delay=0.8, workers=1, lease_s=2.0)))
    assert result["state"] == "SUCCEEDED"
    assert sorted(n for n, _ in w.sent("slow")) == list(range(1, PARTS + 1))


def test_a_cancel_from_another_process_stops_the_copy_and_aborts_its_upload(
        sqlite_world: World) -> None:
    w = sqlite_world
    proc = w.spawn("run", mode="start", block_at=2)
    w.wait_for(proc, w.tmp / "run" / "blocked")
    deadline = time.monotonic() + 10  # 1 and 3 land: nothing is in flight but 2 (held)
    while not w.recorded() >= {1, 3} and time.monotonic() < deadline:
        time.sleep(0.02)
    run_id = (w.tmp / "run" / "run").read_text()
    sites = resolve_inventory(w.inventory)
    backends = {s.name: SharedFakeBackend(SimpleNamespace(
        name=s.name, cluster=SimpleNamespace(options={}, token_env=None))) for s in sites}
    with Journal(w.journal) as other:  # `placer cancel`: its own process and connection
        assert Executor(other, backends, layout=layout_for(sites)).cancel(
            run_id).state == "CANCELLED"
    cancelled = time.time()
    time.sleep(0.6)  # past the copy's stop check interval (0.5 s), then part 2 goes
    (w.tmp / "run" / "go").write_text("")
    assert w.finish(proc) == {"run": run_id, "state": "CANCELLED"}
    sent = w.sent("run")
    assert [n for n, t in sent if t >= cancelled] == []  # no part request after the cancel
    assert sorted(n for n, _ in sent) == [1, 2, 3]  # 4 never sent: stopped after 2
    # A cancelled run is never resumed: its upload is aborted, its ledger entry dropped.
    assert w.uploads() == [] and w.ledger_rows() == 0
    listed = w.admin["fra"].list_objects_v2(Bucket=w.buckets["fra"])
    assert not [o["Key"] for o in listed.get("Contents", ()) if o["Key"].endswith("part-0")]
    with Journal(w.journal) as j:
        assert [t.state for t in j.transfers(run_id)] == ["CANCELLED"]
        assert [e.job for e in j.events(run_id, "copies_stopped")] == ["c"]
    assert not [j for j in w.submitted(EU).values() if j.job == "c"]  # never submitted
