"""Copy throughput and memory: placer.transfer against the libraries' own transfer paths.

On loopback: two ``moto_server`` endpoints (S3 → S3 across endpoints, as an on-prem store and
AWS) and a ``fake-gcs-server`` (S3 → GCS). For each object size (1 MiB up to ``--total``, each
class ``--total`` bytes in all), each method copies every object of the class, ``--repeats``
times, side by side in one run; each copy runs in a fresh process, whose peak RSS is reported.

Methods (same part size and concurrency):

- ``placer``: :func:`placer.transfer.copy` of the prefix (parts in flight, each part and the
  whole verified: S3's composite SHA-256, a GCS composite's CRC32C combined from the parts';
  nothing is read back). Its source reads are ``--reads stream`` by default: moto_server
  answers a ranged GET by reading the whole object (``moto/s3/responses.py``,
  ``_handle_range_header``), so ranged parts cost O(object) each on it, which real S3 does
  not.
- ``boto3``: S3 → S3: ``get_object`` streamed into the transfer manager's ``upload_fileobj``
  (``TransferConfig(multipart_chunksize=part, max_concurrency=workers)``); across two endpoints
  a server-side ``copy`` is impossible. S3 → GCS: the stream into google-cloud-storage's
  ``upload_from_file`` (a resumable upload, ``chunk_size=part``). Neither verifies end to end.

Prints a table, writes ``benchmarks/out/copy_throughput.png`` and appends a section to
``benchmarks/RESULTS.md`` with the command. Not a test: nothing here asserts a time.

    python benchmarks/copy_throughput.py                 # 1 GiB per size class, 3 repeats
    python benchmarks/copy_throughput.py --total 10GiB   # the 10 GB run
    python benchmarks/copy_throughput.py --quick         # 64 MiB, 1 repeat; no RESULTS.md
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "backends"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

MIB = 1024 * 1024
METHODS = ("placer", "boto3")
PAIRS = ("s3-s3", "s3-gcs")


def _size(text: str) -> int:
    units = {"KiB": 1024, "MiB": MIB, "GiB": 1024 * MIB}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[:-len(unit)]) * factor)
    return int(text)


def _stores(endpoints: dict[str, str]) -> dict[str, Any]:
    import boto3
    from google.auth.credentials import AnonymousCredentials  # type: ignore[import-untyped]

    from placer.backends import storage_backends
    from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY

    stores = storage_backends()  # the installed backends, as placer finds them
    S3Resolver, GCSResolver = stores["s3"], stores["gs"]

    session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                    aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    return {
        "src": S3Resolver(endpoint_url=endpoints["onprem"], session=session),
        "s3": S3Resolver(endpoint_url=endpoints["aws"], session=session),
        "gcs": GCSResolver(endpoint_url=endpoints["gcs"], credentials=AnonymousCredentials(),
                           project="bench"),
        "session": session,
    }


# -- one measured copy, in its own process ----------------------------------------------------
def one(args: argparse.Namespace) -> None:
    """Copy every object under ``args.src`` with one method; print seconds, bytes, peak RSS."""
    endpoints = json.loads(args.endpoints)
    stores = _stores(endpoints)
    dst_kind = args.pair.split("-")[1]
    started = time.perf_counter()
    if args.method == "placer":
        from placer.transfer import copy

        result = copy(stores["src"], args.src, stores[dst_kind], args.dst,
                      allowed=lambda _where: True, part_size=args.part,
                      workers=args.workers, reads=args.reads)
        moved = result.bytes
    else:
        moved = _library_copy(stores, endpoints, args, dst_kind)
    seconds = time.perf_counter() - started
    rss = _peak_rss()
    print(json.dumps({"seconds": seconds, "bytes": moved, "rss": rss}))


def _peak_rss() -> int:
    """This process's peak resident set (``VmHWM``; ``ru_maxrss`` would count what the
    parent held when it forked this process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _library_copy(stores: dict[str, Any], endpoints: dict[str, str],
                  args: argparse.Namespace, dst_kind: str) -> int:
    from boto3.s3.transfer import TransferConfig

    session = stores["session"]
    src = session.client("s3", endpoint_url=endpoints["onprem"])
    bucket, _, prefix = args.src[5:].partition("/")
    dst_bucket, _, dst_prefix = args.dst.partition("://")[2].partition("/")
    config = TransferConfig(multipart_threshold=args.part, multipart_chunksize=args.part,
                            max_concurrency=args.workers)
    moved = 0
    if dst_kind == "s3":
        dst = session.client("s3", endpoint_url=endpoints["aws"])
    else:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        gcs = storage.Client(project="bench", credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": endpoints["gcs"]})
    for page in src.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            key, size = item["Key"], int(item["Size"])
            body = src.get_object(Bucket=bucket, Key=key)["Body"]
            name = dst_prefix + key[len(prefix):]
            if dst_kind == "s3":
                dst.upload_fileobj(body, dst_bucket, name, Config=config)
            else:
                blob = gcs.bucket(dst_bucket).blob(name, chunk_size=args.part)
                blob.upload_from_file(body, size=size)
            moved += size
    return moved


# -- the run ------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total", default="1GiB", help="bytes per size class (1GiB; 10GiB)")
    parser.add_argument("--sizes", default="1MiB,16MiB,256MiB,total",
                        help="object sizes, comma-separated ('total': one object)")
    parser.add_argument("--part", default="16MiB", help="part size, both methods")
    parser.add_argument("--workers", type=int, default=8, help="parts in flight, both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reads", default="stream", choices=("stream", "ranged"),
                        help="placer's source reads (moto_server reads the whole object for "
                             "every ranged GET, so 'stream' by default here)")
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--quick", action="store_true", help="64MiB, 1 repeat, no RESULTS.md")
    parser.add_argument("--note", default="", help="a sentence for the RESULTS.md entry "
                        "(what else the machine was running)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("method", "pair", "src", "dst", "endpoints"):
        parser.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.part = _size(args.part)
    if args.one:
        one(args)
        return
    if args.quick:
        args.total, args.repeats = "64MiB", 1
    total = _size(args.total)
    sizes = [total if s == "total" else _size(s) for s in args.sizes.split(",")]
    sizes = sorted({s for s in sizes if s <= total})
    rows = run(args, total, sizes, args.pairs.split(","))
    table = _table(rows)
    print(table)
    _plot(rows, ROOT / "benchmarks" / "out" / "copy_throughput.png")
    if not args.quick:
        _append(table, rows, " ".join(["python", "benchmarks/copy_throughput.py",
                                       *(a if " " not in a else repr(a)
                                         for a in sys.argv[1:])]), args.note)


def run(args: argparse.Namespace, total: int, sizes: list[int],
        pairs: list[str]) -> list[dict[str, Any]]:
    import boto3

    from tests.backends.gcs_server import fake_gcs_server
    from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY, moto_server

    rows = []
    with moto_server() as onprem, moto_server() as aws:
        endpoints = {"onprem": onprem, "aws": aws}
        session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                        aws_secret_access_key=SECRET_KEY,
                                        region_name="us-east-1")
        src = session.client("s3", endpoint_url=onprem)
        dst = session.client("s3", endpoint_url=aws)
        src.create_bucket(Bucket="bench-src")
        dst.create_bucket(Bucket="bench-dst")
        chunk = bytes(range(256)) * 4096  # 1 MiB, not all zeros
        for size in sizes:
            # A fresh fake-gcs-server per size class: its in-memory backend keeps what was
            # written and deleted, and a whole run's worth exhausted 24 GB here.
            with fake_gcs_server("US-CENTRAL1") as gcs:
                endpoints["gcs"] = gcs
                rows += _size_class(args, total, size, pairs, endpoints, src, dst, chunk)
    return rows


def _size_class(args: argparse.Namespace, total: int, size: int, pairs: list[str],
                endpoints: dict[str, str], src: Any, dst: Any, chunk: bytes
                ) -> list[dict[str, Any]]:
    """Every pair, method and repeat for objects of ``size`` bytes."""
    from google.auth.credentials import AnonymousCredentials  # type: ignore[import-untyped]
    from google.cloud import storage

    gclient = storage.Client(project="bench", credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": endpoints["gcs"]})
    gclient.create_bucket("bench-dst")
    rows = []
    count = max(1, total // size)
    prefix = f"c{size}/"
    for i in range(count):
        src.upload_fileobj(_Repeat(chunk, size), "bench-src", f"{prefix}{i:05d}")
    for pair in pairs:
        # One untimed copy first (the library's): the first copy after the source was
        # written, whichever method, ran up to 1.5x slower on moto_server here.
        dst_uri = (f"s3://bench-dst/warmup/{prefix}" if pair == "s3-s3"
                   else f"gs://bench-dst/warmup/{prefix}")
        _measure(args, "boto3", pair, f"s3://bench-src/{prefix}", dst_uri, endpoints)
        _empty(dst, gclient, pair, "warmup/")
        for rep in range(args.repeats):
            # side by side; which goes first alternates by repeat (a run just after
            # the other's objects were dropped pays for moto freeing them)
            for method in METHODS if rep % 2 == 0 else METHODS[::-1]:
                dst_uri = (f"s3://bench-dst/{method}{rep}/{prefix}" if pair == "s3-s3"
                           else f"gs://bench-dst/{method}{rep}/{prefix}")
                got = _measure(args, method, pair, f"s3://bench-src/{prefix}",
                               dst_uri, endpoints)
                rows.append({"pair": pair, "size": size, "objects": count,
                             "method": method, "repeat": rep, **got})
                print(f"{pair} {size // MIB} MiB x{count} {method} #{rep}: "
                      f"{got['bytes'] / got['seconds'] / MIB:.1f} MiB/s, "
                      f"peak RSS {got['rss'] / MIB:.0f} MiB", flush=True)
                _empty(dst, gclient, pair, f"{method}{rep}/")
    for page in src.get_paginator("list_objects_v2").paginate(Bucket="bench-src"):
        for item in page.get("Contents", ()):
            src.delete_object(Bucket="bench-src", Key=item["Key"])
    return rows


class _Repeat(io.RawIOBase):
    """``size`` bytes of ``chunk`` repeated, as a stream (a 1 GiB source is never in memory)."""

    def __init__(self, chunk: bytes, size: int) -> None:
        super().__init__()
        self._chunk, self._left, self._at = chunk, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any, /) -> int:
        n = min(len(buffer), self._left, len(self._chunk) - self._at)
        buffer[:n] = self._chunk[self._at:self._at + n]
        self._at, self._left = (self._at + n) % len(self._chunk), self._left - n
        return n


def _empty(dst: Any, gclient: Any, pair: str, prefix: str) -> None:
    """Drop what a run wrote (moto and the fake keep objects in memory)."""
    if pair == "s3-s3":
        for page in dst.get_paginator("list_objects_v2").paginate(Bucket="bench-dst",
                                                                   Prefix=prefix):
            for item in page.get("Contents", ()):
                dst.delete_object(Bucket="bench-dst", Key=item["Key"])
    else:
        for blob in gclient.list_blobs("bench-dst", prefix=prefix):
            blob.delete()


def _measure(args: argparse.Namespace, method: str, pair: str, src: str, dst: str,
             endpoints: dict[str, str]) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--one", "--method", method, "--pair", pair, "--src", src,
            "--dst", dst, "--endpoints", json.dumps(endpoints), "--part", str(args.part),
            "--workers", str(args.workers), "--reads", args.reads]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{method} {pair} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    keys = sorted({(r["pair"], r["size"], r["objects"]) for r in rows})
    for pair, size, count in keys:
        row: dict[str, Any] = {"pair": pair, "size": size, "objects": count}
        for method in METHODS:
            mine = [r for r in rows if (r["pair"], r["size"], r["method"]) == (pair, size, method)]
            row[method] = statistics.median(r["bytes"] / r["seconds"] / MIB for r in mine)
            row[f"{method}_rss"] = max(r["rss"] for r in mine) / MIB
        out.append(row)
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| pair | object size | objects | placer MiB/s | library MiB/s | placer / library "
             "| placer peak RSS MiB | library peak RSS MiB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in _summary(rows):
        lines.append(f"| {r['pair']} | {r['size'] / MIB:g} MiB | {r['objects']} | "
                     f"{r['placer']:.1f} | {r['boto3']:.1f} | {r['placer'] / r['boto3']:.2f}x | "
                     f"{r['placer_rss']:.0f} | {r['boto3_rss']:.0f} |")
    return "\n".join(lines)


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = _summary(rows)
    fig, (speed, memory) = plt.subplots(1, 2, figsize=(11, 4))
    for pair in sorted({r["pair"] for r in summary}):
        mine = [r for r in summary if r["pair"] == pair]
        xs = [r["size"] / MIB for r in mine]
        for method, style in (("placer", "-o"), ("boto3", "--s")):
            label = f"{pair} {'placer' if method == 'placer' else 'library'}"
            speed.plot(xs, [r[method] for r in mine], style, label=label)
            memory.plot(xs, [r[f"{method}_rss"] for r in mine], style, label=label)
    for ax, title, unit in ((speed, "throughput (median)", "MiB/s"),
                            (memory, "peak RSS of the copying process", "MiB")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("object size (MiB)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def _append(table: str, rows: list[dict[str, Any]], command: str, note: str = "") -> None:
    summary = _summary(rows)
    ratios = [r["placer"] / r["boto3"] for r in summary]
    rss = [r["placer_rss"] for r in summary]
    with (ROOT / "benchmarks" / "RESULTS.md").open("a") as out:
        out.write(f"\n## Copy throughput: placer.transfer against the libraries "
                  f"({time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC)\n\n"
                  f"Command: `{command}` ({platform.machine()}, {platform.python_version()}; "
                  "two moto_server endpoints and a fake-gcs-server on loopback, on a shared "
                  f"machine{'; ' + note if note else ''}). Median of the repeats, placer and "
                  "the library side by side, which goes first alternating by repeat, after one "
                  "untimed copy; peak RSS of the copying process (max over the repeats).\n\n"
                  f"{table}\n\n"
                  f"placer / library throughput: {min(ratios):.2f}x–{max(ratios):.2f}x; "
                  f"placer's peak RSS {min(rss):.0f}–{max(rss):.0f} MiB across object sizes. "
                  "Plot: `benchmarks/out/copy_throughput.png`.\n")


if __name__ == "__main__":
    main()
