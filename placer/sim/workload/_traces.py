"""Reading traces: the packaged Microsoft ITP clusters and Philly run times, and a user's CSV.

The parsed files are cached per process (read-only arrays); every workload is built fresh.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from placer.errors import ConfigError, ErrorDetail
from placer.sim.jobs import SimJob, Workload
from placer.sim.workload._checks import fail

FloatArray = npt.NDArray[np.float64]
_T = TypeVar("_T", bound=np.generic)

ITP_CLUSTERS: Final = tuple(f"cluster{i:02d}" for i in range(1, 11))

ITP_SOURCE: Final = (
    "Microsoft ITP trace, {cluster} (Gu et al., ElasticFlow, ASPLOS'23); "
    "github.com/microsoft/elasticflow-traces @277ed24d0e90, MIT"
)
PHILLY_SOURCE: Final = (
    "Philly run times (Jeon et al., ATC'19) via github.com/alibaba/clusterdata @7a6c496e4f4b, "
    "CC BY 4.0"
)

_REQUIRED_COLUMNS: Final = ("submission_time", "duration", "num_gpu")
_MAX_DETAILS: Final = 20


@dataclass(frozen=True)
class _Trace:
    """The columns of a trace file in file order; arrays are read-only."""

    names: tuple[str, ...]
    submit_s: FloatArray
    duration_s: FloatArray
    gpus: npt.NDArray[np.int64]


def _parse_trace_csv(text: str, file: str) -> _Trace:
    """Parse ``submission_time,duration,num_gpu[,job_id]`` rows, collecting every bad cell.

    Extra columns are ignored (real traces carry more than a replay needs); blank lines are
    skipped. Times are seconds; ``duration`` must be > 0 and ``num_gpu`` an integer >= 1.
    """
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise ConfigError(ErrorDetail("empty file: expected a header row", file=file, line=1))
    columns = [h.strip() for h in header]
    details: list[ErrorDetail] = []
    for col in _REQUIRED_COLUMNS:
        if col not in columns:
            details.append(
                ErrorDetail(
                    f"missing column; the header needs {', '.join(_REQUIRED_COLUMNS)} "
                    f"(job_id optional), found {', '.join(columns) or 'nothing'}",
                    file=file,
                    line=1,
                    field=col,
                )
            )
    if details:
        raise ConfigError(details)
    i_sub, i_dur, i_gpu = (columns.index(c) for c in _REQUIRED_COLUMNS)
    i_id = columns.index("job_id") if "job_id" in columns else None

    names: list[str] = []
    submit: list[float] = []
    duration: list[float] = []
    gpus: list[int] = []
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            details.append(
                ErrorDetail(
                    f"expected {len(columns)} fields, found {len(row)}", file=file, line=line
                )
            )
            continue
        bad = len(details)
        t = _number(row[i_sub], file, line, "submission_time", details)
        d = _number(row[i_dur], file, line, "duration", details)
        if d is not None and d <= 0:
            details.append(ErrorDetail(f"must be > 0, got {d:g}", file, line, "duration"))
        g = _gpu_count(row[i_gpu], file, line, details)
        name = f"job{len(names)}" if i_id is None else row[i_id].strip()
        if i_id is not None:
            if not name:
                details.append(ErrorDetail("empty job_id", file, line, "job_id"))
            elif name in first_line:
                details.append(
                    ErrorDetail(
                        f"duplicate job_id {name!r} (first on line {first_line[name]})",
                        file,
                        line,
                        "job_id",
                    )
                )
            else:
                first_line[name] = line
        if len(details) == bad and t is not None and d is not None and g is not None:
            names.append(name)
            submit.append(t)
            duration.append(d)
            gpus.append(g)
    if not details and not names:
        details.append(ErrorDetail("no jobs: the file has a header but no rows", file, 2))
    if details:
        if len(details) > _MAX_DETAILS:
            more = len(details) - _MAX_DETAILS
            details = [*details[:_MAX_DETAILS], ErrorDetail(f"... and {more} more", file)]
        raise ConfigError(details)
    return _Trace(
        names=tuple(names),
        submit_s=_frozen(np.array(submit, dtype=np.float64)),
        duration_s=_frozen(np.array(duration, dtype=np.float64)),
        gpus=_frozen(np.array(gpus, dtype=np.int64)),
    )


def _number(cell: str, file: str, line: int, column: str, out: list[ErrorDetail]) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        out.append(ErrorDetail(f"not a number: {cell!r}", file, line, column))
        return None
    if not math.isfinite(value):
        out.append(ErrorDetail(f"not a finite number: {cell!r}", file, line, column))
        return None
    return value


def _gpu_count(cell: str, file: str, line: int, out: list[ErrorDetail]) -> int | None:
    value = _number(cell, file, line, "num_gpu", out)
    if value is None:
        return None
    if value != int(value) or value < 1:
        out.append(
            ErrorDetail(f"must be an integer >= 1, got {cell.strip()!r}", file, line, "num_gpu")
        )
        return None
    return int(value)


def _frozen(array: npt.NDArray[_T]) -> npt.NDArray[_T]:
    """Cached arrays are shared by every caller: make writes fail instead of leak."""
    array.flags.writeable = False
    return array


def _read_data(*parts: str) -> str:
    """A packaged data file as text, gunzipped if it ends in ``.gz``."""
    raw = files("placer").joinpath("sim", "data", *parts).read_bytes()
    if parts[-1].endswith(".gz"):
        raw = gzip.decompress(raw)
    return raw.decode("utf-8")


def _itp_cluster(cluster: str) -> str:
    """``cluster04``, ``04`` or ``4`` → ``cluster04``; anything else is a ConfigError."""
    key = cluster.strip().lower().removeprefix("cluster")
    if key.isdigit() and 1 <= int(key) <= len(ITP_CLUSTERS):
        return ITP_CLUSTERS[int(key) - 1]
    raise fail(
        f"unknown ITP cluster {cluster!r}; valid: {', '.join(ITP_CLUSTERS)} (or 1-10)",
        field="cluster",
    )


@cache
def _itp(cluster: str) -> _Trace:
    name = f"{cluster}.csv.gz"
    return _parse_trace_csv(_read_data("itp", name), f"placer/sim/data/itp/{name}")


@cache
def _philly_h() -> FloatArray:
    text = _read_data("philly", "philly_runtime.csv.gz")
    header, _, body = text.partition("\n")
    if header.strip() != "runtime":
        raise fail(
            "expected a 'runtime' header", file="placer/sim/data/philly/philly_runtime.csv.gz"
        )
    return _frozen(np.array(body.split(), dtype=np.float64) / 3600.0)


def _from_trace(trace: _Trace, *, name: str, source: str, limit: int | None) -> Workload:
    """Jobs sorted by submission time (stable: file order breaks ties), first arrival at 0."""
    if limit is not None and limit < 1:
        raise fail(f"must be >= 1, got {limit}", field="limit")
    order = np.argsort(trace.submit_s, kind="stable")[:limit]
    t0 = trace.submit_s[order[0]]
    arrival = ((trace.submit_s[order] - t0) / 3600.0).tolist()
    runtime = (trace.duration_s[order] / 3600.0).tolist()
    gpus = trace.gpus[order].tolist()
    names = trace.names
    jobs = tuple(
        SimJob(id=i, name=names[k], arrival_h=a, runtime_h=r, gpus=g, estimate_h=r)
        for i, (k, a, r, g) in enumerate(zip(order.tolist(), arrival, runtime, gpus, strict=True))
    )
    return Workload(name=name, jobs=jobs, source=source)


def itp_trace(cluster: str = "cluster04", *, limit: int | None = None) -> Workload:
    """One ITP cluster as a workload: every job independent, ``estimate_h == runtime_h``.

    Args:
        cluster: ``"cluster04"``, ``"04"`` or ``"4"``; :data:`ITP_CLUSTERS` lists them.
        limit: keep only the first ``limit`` jobs by submission time.

    The trace has no GPU type (replay it on one reference type) and no job shorter than 600 s
    (filtered upstream). Parsed files are cached per process; the workload is built fresh.
    """
    name = _itp_cluster(cluster)
    return _from_trace(
        _itp(name), name=f"itp:{name}", source=ITP_SOURCE.format(cluster=name), limit=limit
    )


def csv_trace(path: str | Path) -> Workload:
    """A user's trace: a CSV (or ``.csv.gz``) with a header naming ``submission_time`` [s],
    ``duration`` [s], ``num_gpu`` and optionally ``job_id`` (other columns are ignored).

    Arrivals are rebased so the first job arrives at 0. Every bad cell is reported with its
    file, line and column.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
        if p.suffix == ".gz":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8-sig")
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise fail(f"cannot read trace: {e}", file=str(p)) from e
    except UnicodeDecodeError as e:
        raise fail(f"not UTF-8 text: {e}", file=str(p)) from e
    return _from_trace(
        _parse_trace_csv(text, str(p)), name=f"csv:{p.name}", source=f"CSV trace {p}", limit=None
    )


def philly_runtimes_h() -> FloatArray:
    """The 83,154 Philly job run times in hours, file order (read-only; copy to modify).

    Two are 0 s and 2.4 % are under 30 s; generators clip them (see :data:`MIN_RUNTIME_H`).
    """
    return _philly_h()


def itp_durations_s(cluster: str = "cluster04") -> FloatArray:
    """An ITP cluster's job durations in seconds, file order (read-only; copy to modify)."""
    return _itp(_itp_cluster(cluster)).duration_s
