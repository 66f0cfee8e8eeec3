"""The ``file://`` store (:mod:`placer.filestore`): the storage contract on a real directory,
alone and paired with S3 (a real ``moto_server``) both ways, and what is its own: paths that
leave the root, sidecar checksums and tags, atomic writes."""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from placer.backends import StorageRouter, storage_backends
from placer.errors import (
    BackendError,
    ChecksumMismatchError,
    DatasetNotFoundError,
    ExecutionError,
    ResidencyError,
)
from placer.filestore import FileStore
from placer.models import Location
from placer.storage import hashes_of
from tests.backends.storage_contract import StorageContract, StorageWorld, Tags

FRA = Location(provider="onprem", region="fra-dc1", country="DE")
NYC = Location(provider="onprem", region="nyc-dc1", country="US")
_n = itertools.count()


class FileSide:
    """Two site directories (fra-dc1 in DE, nyc-dc1 in the US), a store on each."""

    def __init__(self, base: Path) -> None:
        (base / "fra").mkdir()
        (base / "nyc").mkdir()
        self.fra = FileStore(root=f"file://{base}/fra", onprem_location=FRA, page_size=2)
        self.nyc = FileStore(root=f"file://{base}/nyc", onprem_location=NYC)

    def bucket(self, store: FileStore, tags: Tags | None = None) -> str:
        """A fresh directory under ``store``; ``tags`` become the root's sidecar tags."""
        if tags:
            import json

            Path(store.root, ".placer.json").write_text(json.dumps({"tags": tags}))
            store.forget()
        path = Path(store.root, f"b{next(_n)}")
        path.mkdir()
        return f"file://{path}/"

    @staticmethod
    def put(uri: str, data: bytes) -> None:
        path = Path(uri[len("file://"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    @staticmethod
    def get(uri: str) -> bytes:
        return Path(uri[len("file://"):]).read_bytes()

    @staticmethod
    def names(prefix: str) -> list[str]:
        top = Path(prefix[len("file://"):])
        return sorted(f"file://{p}" for p in top.rglob("*")
                      if p.is_file() and not p.name.startswith("."))


def file_world(side: FileSide) -> StorageWorld:
    router = StorageRouter({}, files=[side.fra, side.nyc])
    return StorageWorld(
        router=router, src=side.fra, dst=side.fra, src_location=FRA.key, dst_location=FRA.key,
        algorithm="sha256", source_bucket=lambda tags: side.bucket(side.fra, tags),
        dest_bucket=lambda: side.bucket(side.fra),
        outside_bucket=lambda: side.bucket(side.nyc), put=side.put, get=side.get,
        names=side.names)


@pytest.fixture
def files(tmp_path: Path) -> FileSide:
    return FileSide(tmp_path)


class TestFileStore(StorageContract):
    @pytest.fixture
    def world(self, files: FileSide) -> StorageWorld:
        return file_world(files)


# -- file ↔ S3 ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("moto.server")
    pytest.importorskip("placer_s3")
    from tests.backends.s3_server import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def s3(s3_endpoint: str) -> object:
    boto3 = pytest.importorskip("boto3")
    from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY
    from tests.backends.storage_worlds import S3Side

    session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                    aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    return S3Side(s3_endpoint, session)


def _mixed(files: FileSide, s3: object) -> tuple[StorageRouter, object, object, object]:
    from tests.backends.storage_worlds import S3Side

    assert isinstance(s3, S3Side)
    router = StorageRouter({"s3": s3.store}, files=[files.fra, files.nyc])

    def side(uri: str) -> object:
        return s3 if uri.startswith("s3://") else files

    return (router, lambda u, d: side(u).put(u, d), lambda u: side(u).get(u),  # type: ignore[attr-defined]
            lambda u: side(u).names(u))  # type: ignore[attr-defined]


class TestFileToS3(StorageContract):
    @pytest.fixture
    def world(self, files: FileSide, s3: object) -> StorageWorld:
        from tests.backends.storage_worlds import EU, US, S3Side

        assert isinstance(s3, S3Side)
        router, put, get, names = _mixed(files, s3)
        return StorageWorld(
            router=router, src=files.fra, dst=s3.store, src_location=FRA.key,
            dst_location=f"aws:{EU}", algorithm="sha256",
            source_bucket=lambda tags: files.bucket(files.fra, tags),
            dest_bucket=lambda: s3.bucket(EU), outside_bucket=lambda: s3.bucket(US),
            put=put, get=get, names=names)  # type: ignore[arg-type]


class TestS3ToFile(StorageContract):
    @pytest.fixture
    def world(self, files: FileSide, s3: object) -> StorageWorld:
        from tests.backends.storage_worlds import EU, S3Side

        assert isinstance(s3, S3Side)
        router, put, get, names = _mixed(files, s3)
        return StorageWorld(
            router=router, src=s3.store, dst=files.fra, src_location=f"aws:{EU}",
            dst_location=FRA.key, algorithm="sha256",
            source_bucket=lambda tags: s3.bucket(EU, tags),
            dest_bucket=lambda: files.bucket(files.fra),
            outside_bucket=lambda: files.bucket(files.nyc),
            put=put, get=get, names=names)  # type: ignore[arg-type]


# -- the file store's own behaviour --------------------------------------------------------------
def test_the_file_scheme_is_served_without_an_sdk() -> None:
    assert storage_backends()["file"] is FileStore


def test_a_path_under_no_declared_store_is_refused(files: FileSide, tmp_path: Path) -> None:
    router = StorageRouter({}, files=[files.fra])
    elsewhere = tmp_path / "loose"
    elsewhere.mkdir()
    (elsewhere / "a").write_bytes(b"x")
    with pytest.raises(ResidencyError, match=r"under no site's file:// store.*unknown"):
        router.resolve(f"file://{elsewhere}/a")
    # A sibling whose name starts like the root is not under it.
    with pytest.raises(ResidencyError):
        router.resolve(f"file://{files.fra.root}-old/a")
    assert router.serves(f"file://{elsewhere}/a")  # served: refused by name, not unknown


def test_paths_that_leave_the_root_are_refused(files: FileSide, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"elsewhere")
    os.symlink(outside, Path(files.fra.root, "link"))
    with pytest.raises(BackendError, match="outside the store's root"):
        files.fra.resolve(f"file://{files.fra.root}/link/secret")
    with pytest.raises(BackendError, match="not under this store's root"):
        files.fra.resolve(f"file://{files.fra.root}/../outside/secret")
    with pytest.raises(BackendError, match="outside the store's root"):
        files.fra.write(f"file://{files.fra.root}/link/new", io.BytesIO(b"x"), size=1,
                        checksums={})
    assert sorted(os.listdir(outside)) == ["secret"]


def test_sidecar_keeps_checksums_tags_and_metadata_for_the_version_written(
        files: FileSide) -> None:
    root = files.bucket(files.fra)
    data = b"payload" * 100
    files.fra.write(f"{root}a.bin", io.BytesIO(data), size=len(data), checksums=hashes_of(data),
                    content_type="application/x-test", metadata={"stage": "prep"},
                    tags=[("owner", "ml")])
    obj = files.fra.head(f"{root}a.bin")
    assert obj is not None
    assert dict(obj.checksums) == hashes_of(data)
    assert (obj.content_type, dict(obj.metadata)) == ("application/x-test", {"stage": "prep"})
    assert files.fra.object_tag_pairs(obj) == [("owner", "ml")]
    assert files.fra.resolve(f"{root}a.bin").tags == {"owner": "ml"}
    assert files.names(root) == [f"{root}a.bin"]  # the sidecar is not an object
    assert [o.uri for o in files.fra.list_objects(root)] == [f"{root}a.bin"]
    # Rewritten behind the store's back: the sidecar no longer applies; bytes are re-read.
    files.put(f"{root}a.bin", b"other bytes")
    again = files.fra.head(f"{root}a.bin")
    assert again is not None and again.version != obj.version
    assert dict(again.checksums) == {} and files.fra.object_tag_pairs(again) == []
    with pytest.raises(ChecksumMismatchError):
        files.fra.verify(f"{root}a.bin", size=len(data),
                         checksum=f"sha256:{hashes_of(data)['sha256']}")


def test_a_write_that_does_not_match_leaves_the_old_object_and_no_temporary(
        files: FileSide) -> None:
    root = files.bucket(files.fra)
    files.put(f"{root}a", b"old")
    with pytest.raises(ChecksumMismatchError):
        files.fra.write(f"{root}a", io.BytesIO(b"new"), size=3,
                        checksums={"sha256": hashes_of(b"not new")["sha256"]})
    with pytest.raises(ChecksumMismatchError):
        files.fra.write(f"{root}a", io.BytesIO(b"new!"), size=3, checksums={})
    assert files.get(f"{root}a") == b"old"
    assert os.listdir(root[len("file://"):]) == ["a"]


def test_a_root_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    store = FileStore(root=f"file://{tmp_path}/missing", onprem_location=FRA)
    with pytest.raises(DatasetNotFoundError):
        store.put_json(f"file://{tmp_path}/missing/m.json", {}, allowed={FRA.key})
    assert not (tmp_path / "missing").exists()


def test_a_file_store_is_only_an_onprem_sites() -> None:
    with pytest.raises(ValueError, match="on-prem site's file system"):
        FileStore(root="file:///x", onprem_location=Location(
            provider="aws", region="eu-central-1", country="DE"))


# -- the local world writes its outputs to a file:// store ---------------------------------------
PRODUCER = ("import json, os, pathlib; p = pathlib.Path(json.loads(os.environ['PLACER_OUTPUTS'])"
            "['out'].removeprefix('file://')); p.parent.mkdir(parents=True, exist_ok=True); "
            "p.write_text('made on ' + os.environ['PLACER_SITE'])")
CONSUMER = ("import json, os, pathlib; p = json.loads(os.environ['PLACER_INPUTS'])['make.out']; "
            "assert pathlib.Path(p.removeprefix('file://')).read_text() == 'made on local', p")


def test_the_local_world_runs_jobs_with_outputs(tmp_path: Path, local_world: object) -> None:
    """``placer local up``'s site keeps outputs in a file:// store in its state directory: a
    job writes one there and the next reads it, through the placer command and real Ray."""
    import json
    import subprocess
    import sys

    from placer import local

    assert isinstance(local_world, local.World)
    pipeline = tmp_path / "outputs.yaml"
    pipeline.write_text(
        "apiVersion: placer/v1\nkind: Pipeline\nname: outputs\njobs:\n"
        f"  make:\n    command: python -c {json.dumps(PRODUCER)}\n"
        "    gpu_types: {A100-80GB: 1m}\n    outputs: {out: 1MB}\n"
        f"  use:\n    command: python -c {json.dumps(CONSUMER)}\n"
        "    gpu_types: {A100-80GB: 1m}\n    inputs: [make.out]\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                  f"{os.environ['PATH']}",
           "PLACER_DECISIONS": str(tmp_path / "d.jsonl")}
    done = subprocess.run(
        [sys.executable, "-m", "placer", "submit", str(pipeline), "--inventory",
         str(local_world.inventory), "--journal", str(tmp_path / "j.db"), "--wait"],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    [out] = [p for p in local_world.store.rglob("out") if p.is_file()]
    assert out.read_text() == "made on local"
    assert out.parent.name == "make"


def test_a_function_job_finds_its_sites_file_store(files: FileSide,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``@placer.job`` functions write their value through the store of the site they run on:
    a file:// root travels to the job in PLACER_STORAGE_ENDPOINTS like an on-prem endpoint."""
    from placer.api import _function
    from placer.models import ResolvedSite

    sites = [ResolvedSite(name="fra", kind="onprem", location=FRA, storage=files.fra.root_uri)]
    for key, value in _function.storage_endpoints_env(sites).items():
        monkeypatch.setenv(key, value)
    uri = f"{files.fra.root_uri}run-1/f/out/value.json"
    store = _function._store(uri)
    assert isinstance(store, FileStore) and store.onprem_location == FRA
    store.put_json(uri, {"v": 1}, allowed={FRA.key})
    assert _function.read_value(f"{files.fra.root_uri}run-1/f/out") == {"v": 1}
    with pytest.raises(ExecutionError, match="under no site's file:// store"):
        _function._store(f"file://{files.nyc.root}/x")


def test_a_ranged_read_is_pinned_to_the_version(files: FileSide) -> None:
    root = files.bucket(files.fra)
    files.put(f"{root}r", bytes(range(200)))
    obj = files.fra.head(f"{root}r")
    assert obj is not None
    assert files.fra.read_range(obj, 10, 5) == bytes(range(10, 15))
    files.put(f"{root}r", b"rewritten")
    with pytest.raises(BackendError, match="changed since it was read"):
        files.fra.read_range(obj, 0, 1)


def test_the_executor_stages_an_input_between_two_sites_file_stores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The executor's staging with the router as its mover: ``b`` (nyc-dc1, US) writes an
    output in its site's file store, ``c`` (fra-dc1, DE; it also reads EU data) gets a
    verified, journaled copy in its own site's store, read from where the job is told; each
    output prefix is checked to be in its job's location by asking the file store."""
    import json
    from types import SimpleNamespace

    from placer.models import Dataset
    from tests.builders import job, pipeline
    from tests.executor import world as executor_world

    roots = {}
    for loc in ("fra", "nyc"):
        (tmp_path / loc).mkdir()
        roots[f"onprem:{loc}-dc1"] = (tmp_path / loc).as_uri()
    monkeypatch.setattr(executor_world, "ROOTS", roots)
    router = StorageRouter({}, files=[
        FileStore(root=roots[FRA.key], onprem_location=FRA),
        FileStore(root=roots[NYC.key], onprem_location=NYC)])
    # The world's executor resolves output prefixes through its stores: these file stores.
    monkeypatch.setattr(executor_world, "FakeStorageResolver",
                        SimpleNamespace(from_roots=lambda _: router))
    w = executor_world.World(tmp_path, pipeline=pipeline(
        job("b", inputs=["web"], outputs={"out": 2}),
        job("c", inputs=["b.out", "eu_notes"], outputs={"model": 1}),
        datasets=(Dataset(name="eu_notes", uri="mem://fra/data/notes", size=5,
                          location=FRA.key, tags={"residency": "EU"}),
                  Dataset(name="web", uri="mem://nyc/data/web", size=5,
                          location=NYC.key, tags={"residency": "none"}))))
    run = w.start(mover=router)
    for _ in range(20):
        bs = [j for j in w.fakes[executor_world.US].jobs.values() if j.job == "b"]
        if bs:
            break
        run.step()
    out = json.loads(bs[0].env["PLACER_OUTPUTS"])["out"]
    assert out.startswith(roots[NYC.key])
    FileSide.put(f"{out}/part-0", b"weights" * 10)
    assert run.wait(timeout=60).state == "SUCCEEDED"
    [c] = [j for j in w.fakes[executor_world.EU].jobs.values() if j.job == "c"]
    local = json.loads(c.env["PLACER_INPUTS"])["b.out"]
    assert local.startswith(roots[FRA.key])
    assert FileSide.get(f"{local}/part-0") == b"weights" * 10
    [t] = w.journal.transfers(run.id)
    assert (t.src_uri, t.dst_uri, t.state, t.bytes) == (out, local, "DONE", 70)
    assert t.checksum.startswith("sha256-tree:")
