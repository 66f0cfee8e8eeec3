"""Workloads for the simulator: real traces, a user's CSV, generators, and transformations.

Sources (the files ship in ``placer/sim/data/``; ``SOURCES.md`` there has commits, licences and
checksums):

- :func:`itp_trace` replays one of the ten Microsoft ITP clusters published with ElasticFlow
  (Gu et al., ASPLOS'23; github.com/microsoft/elasticflow-traces, MIT): 69,351 training jobs
  with submission time, duration and GPU count.
- :func:`philly_runtimes_h` gives the 83,154 Philly job run times (Jeon et al., ATC'19, as
  re-published in github.com/alibaba/clusterdata, CC BY 4.0): a duration distribution only.
- :func:`csv_trace` reads a user's own trace with the ITP columns.
- :func:`synthetic` follows the shape of Starburst's generator (Luo et al., "Starburst: A
  Cost-aware Scheduler for Hybrid Cloud", USENIX ATC'24): Poisson or Gamma inter-arrival times
  with a chosen coefficient of variation, the "Philly" GPU-count mix
  P(1, 2, 4, 8) = (0.70, 0.15, 0.10, 0.05), exponential run times (mean 4 h in its simulations).
- :func:`pipelines` builds DAG workloads (prep → train → eval chains, sweeps that fan out and
  in) from distributions that are *our assumptions*, written out in :data:`PIPELINE_ASSUMPTIONS`.

Transformations return new workloads and never mutate their input: :func:`with_residency`
(which jobs read residency-tagged data), :func:`with_estimate_noise` (what strategies are told),
:func:`with_deadlines` and :func:`window`. Everything random takes a ``seed`` and draws from
``numpy.random.default_rng(seed)`` in a fixed order, so the same arguments give the same
workload bit for bit.

Bad input raises :class:`~placer.errors.ConfigError` whose details name the file, line and
column (CSV) or the parameter (``field``).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal, TypeVar, get_args

import numpy as np
import numpy.typing as npt

from placer.errors import ConfigError, ErrorDetail
from placer.sim.jobs import SimDataset, SimJob, Workload

__all__ = [
    "DEFAULT_PIPELINE_DATASET",
    "ITP_CLUSTERS",
    "MIN_RUNTIME_H",
    "PHILLY_GPU_MIX",
    "PIPELINE_ASSUMPTIONS",
    "csv_trace",
    "itp_trace",
    "parse_trace_spec",
    "philly_runtimes_h",
    "pipelines",
    "synthetic",
    "window",
    "with_deadlines",
    "with_estimate_noise",
    "with_residency",
]

Arrivals = Literal["poisson", "gamma"]
RuntimeDistribution = Literal["exponential", "philly", "itp"]
PipelineShape = Literal["chain", "sweep", "mixed"]
NoiseDistribution = Literal["uniform", "lognormal"]

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
STARBURST: Final = "Starburst generator shape (Luo et al., USENIX ATC'24)"

PHILLY_GPU_MIX: Final[Mapping[int, float]] = MappingProxyType({1: 0.70, 2: 0.15, 4: 0.10, 8: 0.05})
"""GPU-count mix Starburst's generator calls the "Philly distribution" (Luo et al., ATC'24)."""

MIN_RUNTIME_H: Final = 30 / 3600
"""Default lower clip of generated run times: 30 s, Starburst's clip in its real-cluster run.

It also lifts Philly's shortest run times (2.4 % of its rows are under 30 s, two are 0 s).
"""

_REQUIRED_COLUMNS: Final = ("submission_time", "duration", "num_gpu")
_MAX_DETAILS: Final = 20


# -- reading traces --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Trace:
    """The columns of a trace file in file order; arrays are read-only."""

    names: tuple[str, ...]
    submit_s: FloatArray
    duration_s: FloatArray
    gpus: npt.NDArray[np.int64]


def _fail(msg: str, *, field: str | None = None, file: str | None = None) -> ConfigError:
    return ConfigError(ErrorDetail(msg, file=file, line=None, field=field))


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
    raise _fail(
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
        raise _fail(
            "expected a 'runtime' header", file="placer/sim/data/philly/philly_runtime.csv.gz"
        )
    return _frozen(np.array(body.split(), dtype=np.float64) / 3600.0)


def _from_trace(trace: _Trace, *, name: str, source: str, limit: int | None) -> Workload:
    """Jobs sorted by submission time (stable: file order breaks ties), first arrival at 0."""
    if limit is not None and limit < 1:
        raise _fail(f"must be >= 1, got {limit}", field="limit")
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
        raise _fail(f"cannot read trace: {e}", file=str(p)) from e
    except UnicodeDecodeError as e:
        raise _fail(f"not UTF-8 text: {e}", file=str(p)) from e
    return _from_trace(
        _parse_trace_csv(text, str(p)), name=f"csv:{p.name}", source=f"CSV trace {p}", limit=None
    )


def philly_runtimes_h() -> FloatArray:
    """The 83,154 Philly job run times in hours, file order (read-only; copy to modify).

    Two are 0 s and 2.4 % are under 30 s; generators clip them (see :data:`MIN_RUNTIME_H`).
    """
    return _philly_h()


# -- generators ------------------------------------------------------------------------------


def _require(ok: bool, msg: str, field: str) -> None:
    if not ok:
        raise _fail(msg, field=field)


def _check_choice(value: str, choices: tuple[str, ...], field: str) -> None:
    _require(value in choices, f"{value!r} is not one of {', '.join(choices)}", field)


def _check_arrivals(rate_per_h: float, arrivals: str, cv: float) -> None:
    _require(
        math.isfinite(rate_per_h) and rate_per_h > 0, f"must be > 0, got {rate_per_h}", "rate_per_h"
    )
    _check_choice(arrivals, get_args(Arrivals), "arrivals")
    _require(math.isfinite(cv) and cv > 0, f"must be > 0, got {cv}", "cv")
    _require(
        arrivals == "gamma" or cv == 1.0,
        f"Poisson arrivals have cv 1; use arrivals='gamma' for cv={cv}",
        "cv",
    )


def _gaps(rng: np.random.Generator, arrivals: str, cv: float, rate: float, n: int) -> FloatArray:
    """``n`` inter-arrival times with mean ``1/rate`` and coefficient of variation ``cv``.

    Gamma with shape ``k = 1/cv²`` and scale ``1/(rate·k)`` has exactly that mean and CV;
    ``cv = 1`` is the exponential (Poisson process).
    """
    if arrivals == "poisson":
        return rng.exponential(1.0 / rate, n)
    k = 1.0 / (cv * cv)
    return rng.gamma(k, 1.0 / (rate * k), n)


def _arrivals_within(
    rng: np.random.Generator, arrivals: str, cv: float, rate: float, hours: float
) -> FloatArray:
    """Arrival times in ``[0, hours)`` of a renewal process started at 0."""
    expected = rate * hours
    chunk = int(expected + 6.0 * max(cv, 1.0) * math.sqrt(expected) + 16)
    times = np.cumsum(_gaps(rng, arrivals, cv, rate, chunk))
    while times[-1] < hours:
        more = np.cumsum(_gaps(rng, arrivals, cv, rate, chunk)) + times[-1]
        times = np.concatenate([times, more])
    return times[times < hours]


def _gpu_mix(mix: Mapping[int, float]) -> tuple[npt.NDArray[np.int64], FloatArray]:
    _require(len(mix) > 0, "needs at least one GPU count", "gpu_mix")
    counts = sorted(mix)
    for c in counts:
        _require(
            isinstance(c, int) and c >= 1, f"GPU counts must be integers >= 1, got {c!r}", "gpu_mix"
        )
        p = mix[c]
        _require(math.isfinite(p) and p >= 0, f"share of {c} GPUs must be >= 0, got {p}", "gpu_mix")
    probs = np.array([mix[c] for c in counts], dtype=np.float64)
    _require(abs(probs.sum() - 1.0) < 1e-6, f"shares must sum to 1, got {probs.sum():g}", "gpu_mix")
    return np.array(counts, dtype=np.int64), probs / probs.sum()


def _mix_label(mix: Mapping[int, float]) -> str:
    return "{" + ", ".join(f"{c}: {mix[c]:g}" for c in sorted(mix)) + "}"


def synthetic(
    *,
    hours: float,
    rate_per_h: float,
    arrivals: Arrivals = "poisson",
    cv: float = 1.0,
    gpu_mix: Mapping[int, float] = PHILLY_GPU_MIX,
    runtime: RuntimeDistribution = "exponential",
    mean_runtime_h: float = 4.0,
    min_runtime_h: float = MIN_RUNTIME_H,
    max_runtime_h: float | None = None,
    seed: int = 0,
) -> Workload:
    """Independent jobs arriving over ``[0, hours)``, Starburst-style.

    Args:
        hours: length of the submission window.
        rate_per_h: mean arrivals per hour.
        arrivals: ``"poisson"`` (exponential gaps) or ``"gamma"`` gaps with coefficient of
            variation ``cv`` (Starburst sweeps CV 1–8 for burstiness).
        gpu_mix: probability of each GPU count; default :data:`PHILLY_GPU_MIX`.
        runtime: ``"exponential"`` with mean ``mean_runtime_h``; ``"philly"`` samples
            :func:`philly_runtimes_h`; ``"itp"`` samples the ITP cluster04 durations.
            ``mean_runtime_h`` applies to the exponential only.
        min_runtime_h, max_runtime_h: clip of every run time (``None``: no upper clip).
        seed: draws are arrivals, then GPU counts, then run times, from one generator.
    """
    _require(math.isfinite(hours) and hours > 0, f"must be > 0, got {hours}", "hours")
    _check_arrivals(rate_per_h, arrivals, cv)
    counts, probs = _gpu_mix(gpu_mix)
    _check_choice(runtime, get_args(RuntimeDistribution), "runtime")
    _require(mean_runtime_h > 0, f"must be > 0, got {mean_runtime_h}", "mean_runtime_h")
    _require(min_runtime_h > 0, f"must be > 0, got {min_runtime_h}", "min_runtime_h")
    hi = math.inf if max_runtime_h is None else max_runtime_h
    _require(hi >= min_runtime_h, "must be >= min_runtime_h", "max_runtime_h")

    rng = np.random.default_rng(seed)
    times = _arrivals_within(rng, arrivals, cv, rate_per_h, hours)
    n = len(times)
    gpus = rng.choice(counts, size=n, p=probs)
    if runtime == "exponential":
        run = rng.exponential(mean_runtime_h, n)
    elif runtime == "philly":
        run = rng.choice(philly_runtimes_h(), n)
    else:
        run = rng.choice(_itp("cluster04").duration_s / 3600.0, n)
    run = np.clip(run, min_runtime_h, hi)
    jobs = tuple(
        SimJob(id=i, name=f"job{i}", arrival_h=a, runtime_h=r, gpus=g, estimate_h=r)
        for i, (a, r, g) in enumerate(zip(times.tolist(), run.tolist(), gpus.tolist(), strict=True))
    )
    runtime_label = {
        "exponential": f"exponential run times (mean {mean_runtime_h:g} h)",
        "philly": f"run times sampled from Philly [{PHILLY_SOURCE}]",
        "itp": f"run times sampled from {ITP_SOURCE.format(cluster='cluster04')}",
    }[runtime]
    clip = f"clipped to [{min_runtime_h:g}, {hi:g}] h"
    source = (
        f"synthetic: {arrivals} arrivals (cv {cv:g}) at {rate_per_h:g}/h over {hours:g} h, "
        f"GPU mix {_mix_label(gpu_mix)}, {runtime_label}, {clip}, seed {seed}; {STARBURST}"
    )
    return Workload(name=f"synthetic-{arrivals}-{runtime}", jobs=jobs, source=source)


@dataclass(frozen=True)
class _LogNormal:
    """``median · exp(sigma · N(0, 1))`` clipped to ``[lo, hi]``."""

    median: float
    sigma: float
    lo: float
    hi: float

    def draw(self, rng: np.random.Generator) -> float:
        value = self.median * math.exp(self.sigma * float(rng.standard_normal()))
        return min(max(value, self.lo), self.hi)


PIPELINE_ASSUMPTIONS: Final[Mapping[str, _LogNormal]] = MappingProxyType(
    {
        # Data preparation: tokenising / feature extraction, typically well under an hour.
        "prep_h": _LogNormal(0.5, 0.6, 5 / 60, 4.0),
        # Its output is the training set: tens to hundreds of GB.
        "prep_output_gb": _LogNormal(100.0, 0.8, 10.0, 1000.0),
        # Training: median 2.9 h, sigma 0.8 puts p90 near 8 h, matching the ITP trace's
        # p50 2.93 h and p90 8.0 h (our statistics over all 69,351 ITP jobs).
        "train_h": _LogNormal(2.9, 0.8, 10 / 60, 72.0),
        # A checkpoint: a few GB.
        "checkpoint_gb": _LogNormal(4.0, 0.5, 0.5, 50.0),
        # Evaluation of one checkpoint, and the selection step that ends a sweep.
        "eval_h": _LogNormal(0.25, 0.5, 2 / 60, 2.0),
        "select_h": _LogNormal(0.1, 0.5, 1 / 60, 1.0),
    }
)
"""Our assumptions for DAG jobs (no public trace has pipeline structure), one draw per job.

Sweep trials share the GPU count and checkpoint size of their sweep and run
``train_h × U(0.75, 1.25)``, as trials of one model differ by their hyper-parameters only.
Eval and select jobs use 1 GPU and write 0.1 GB of metrics.
"""

_METRICS_GB: Final = 0.1
_SWEEP_SPREAD: Final = 0.25

DEFAULT_PIPELINE_DATASET: Final = SimDataset(
    name="corpus", location="onprem:fra-dc1", gb=500.0, tags=MappingProxyType({"residency": "none"})
)
"""What :func:`pipelines` reads when given no datasets: 500 GB, unrestricted, at the on-prem
site of the embedded default inventory (``onprem:fra-dc1``)."""


def pipelines(
    *,
    count: int,
    rate_per_h: float,
    shape: PipelineShape = "mixed",
    sweep_width: int = 4,
    sweep_share: float = 0.5,
    arrivals: Arrivals = "poisson",
    cv: float = 1.0,
    gpu_mix: Mapping[int, float] = PHILLY_GPU_MIX,
    datasets: Sequence[SimDataset] = (DEFAULT_PIPELINE_DATASET,),
    seed: int = 0,
) -> Workload:
    """``count`` DAGs arriving at ``rate_per_h`` (the first at the first gap after 0).

    Shapes (runtimes and sizes from :data:`PIPELINE_ASSUMPTIONS`):

    - ``chain``: prep (1 GPU) → train (GPUs from ``gpu_mix``) → eval (1 GPU).
    - ``sweep``: prep → ``sweep_width`` trains in parallel → select (1 GPU).
    - ``mixed``: each pipeline is a sweep with probability ``sweep_share``, else a chain.

    Every job of a DAG shares its ``arrival_h`` and ``pipeline`` number; ids are topological.
    The prep job reads one of ``datasets`` (uniformly at random); the others read their
    dependencies' outputs.
    """
    _require(count >= 1, f"must be >= 1, got {count}", "count")
    _check_arrivals(rate_per_h, arrivals, cv)
    _check_choice(shape, get_args(PipelineShape), "shape")
    _require(sweep_width >= 1, f"must be >= 1, got {sweep_width}", "sweep_width")
    _require(0 <= sweep_share <= 1, f"must be in [0, 1], got {sweep_share}", "sweep_share")
    counts, probs = _gpu_mix(gpu_mix)
    _require(len(datasets) > 0, "needs at least one dataset", "datasets")
    by_name = _datasets_by_name(datasets, "datasets")

    a = PIPELINE_ASSUMPTIONS
    rng = np.random.default_rng(seed)
    times = np.cumsum(_gaps(rng, arrivals, cv, rate_per_h, count)).tolist()
    jobs: list[SimJob] = []

    def add(
        name: str,
        t: float,
        run_h: float,
        gpus: int,
        output_gb: float,
        p: int,
        deps: tuple[int, ...] = (),
        reads: tuple[str, ...] = (),
    ) -> int:
        jobs.append(
            SimJob(
                id=len(jobs),
                name=name,
                arrival_h=t,
                runtime_h=run_h,
                gpus=gpus,
                estimate_h=run_h,
                reads=reads,
                deps=deps,
                output_gb=output_gb,
                pipeline=p,
            )
        )
        return len(jobs) - 1

    for p, t in enumerate(times):
        sweep = shape == "sweep" or (shape == "mixed" and float(rng.random()) < sweep_share)
        dataset = datasets[int(rng.integers(len(datasets)))]
        prep_h = a["prep_h"].draw(rng)
        prep = add(
            f"p{p}/prep", t, prep_h, 1, a["prep_output_gb"].draw(rng), p, reads=(dataset.name,)
        )
        gpus = int(rng.choice(counts, p=probs))
        train_h = a["train_h"].draw(rng)
        ckpt = a["checkpoint_gb"].draw(rng)
        if not sweep:
            train = add(f"p{p}/train", t, train_h, gpus, ckpt, p, deps=(prep,))
            add(f"p{p}/eval", t, a["eval_h"].draw(rng), 1, _METRICS_GB, p, deps=(train,))
            continue
        trials = tuple(
            add(f"p{p}/train{k}", t, train_h * spread, gpus, ckpt, p, deps=(prep,))
            for k, spread in enumerate(
                rng.uniform(1 - _SWEEP_SPREAD, 1 + _SWEEP_SPREAD, sweep_width).tolist()
            )
        )
        add(f"p{p}/select", t, a["select_h"].draw(rng), 1, _METRICS_GB, p, deps=trials)

    source = (
        f"pipelines: {count} {shape} DAGs ({arrivals} arrivals, cv {cv:g}, {rate_per_h:g}/h), "
        f"sweep width {sweep_width}, GPU mix {_mix_label(gpu_mix)}, seed {seed}; "
        "run times and sizes are placer's assumptions (placer.sim.workload.PIPELINE_ASSUMPTIONS)"
    )
    return Workload(name=f"pipelines-{shape}", jobs=tuple(jobs), datasets=by_name, source=source)


# -- transformations -------------------------------------------------------------------------


def _datasets_by_name(datasets: Sequence[SimDataset], field: str) -> dict[str, SimDataset]:
    out: dict[str, SimDataset] = {}
    for d in datasets:
        _require(out.get(d.name, d) == d, f"two different datasets are named {d.name!r}", field)
        out[d.name] = d
    return out


def _units(workload: Workload) -> list[list[int]]:
    """Scheduling units in order of their first job: one per pipeline, one per independent job."""
    units: list[list[int]] = []
    by_pipeline: dict[int, list[int]] = {}
    for job in workload.jobs:
        if job.pipeline < 0:
            units.append([job.id])
        elif job.pipeline in by_pipeline:
            by_pipeline[job.pipeline].append(job.id)
        else:
            by_pipeline[job.pipeline] = [job.id]
            units.append(by_pipeline[job.pipeline])
    return units


def _exact_count(share: float, n: int) -> int:
    """``round(share × n)``, halves rounded up (not to even), so 0.5 × 3 units is 2."""
    return math.floor(share * n + 0.5)


def with_residency(
    workload: Workload,
    *,
    share: float,
    restricted: Sequence[SimDataset],
    unrestricted: Sequence[SimDataset],
    seed: int = 0,
) -> Workload:
    """Make exactly ``round(share × units)`` units read a restricted dataset, the rest not.

    A unit is a pipeline (all its jobs move together) or an independent job. Which units are
    restricted, and which dataset of the list each unit reads (uniformly), is drawn from
    ``seed``. The unit's first job reads the chosen dataset, its other jobs read no dataset
    (they read their dependencies' outputs); the workload's datasets become exactly
    ``restricted`` + ``unrestricted``. Restricted datasets carry tags such as
    ``{residency: EU, classification: pii}``; unrestricted ones ``{residency: none}``.
    """
    _require(0 <= share <= 1, f"must be in [0, 1], got {share}", "share")
    units = _units(workload)
    n_restricted = _exact_count(share, len(units))
    _require(n_restricted == 0 or len(restricted) > 0, "needs at least one dataset", "restricted")
    _require(
        n_restricted == len(units) or len(unrestricted) > 0,
        "needs at least one dataset",
        "unrestricted",
    )
    datasets = _datasets_by_name([*restricted, *unrestricted], "restricted")
    overlap = {d.name for d in restricted} & {d.name for d in unrestricted}
    _require(not overlap, f"datasets both restricted and not: {sorted(overlap)}", "unrestricted")

    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(len(units), size=n_restricted, replace=False).tolist())
    jobs = list(workload.jobs)
    for u, ids in enumerate(units):
        pool = restricted if u in chosen else unrestricted
        dataset = pool[int(rng.integers(len(pool)))]
        jobs[ids[0]] = replace(jobs[ids[0]], reads=(dataset.name,))
        for i in ids[1:]:
            if jobs[i].reads:
                jobs[i] = replace(jobs[i], reads=())
    source = (
        f"{workload.source}; residency: {n_restricted}/{len(units)} units restricted, seed {seed}"
    )
    return Workload(name=workload.name, jobs=tuple(jobs), datasets=datasets, source=source)


def with_estimate_noise(
    workload: Workload, *, error: float, seed: int = 0, noise: NoiseDistribution = "uniform"
) -> Workload:
    """Tell strategies ``estimate_h = runtime_h × factor``; ``runtime_h`` (the truth) stays.

    ``noise="uniform"``: factor ~ U[1 − error, 1 + error], error in [0, 1) so estimates stay
    positive (Starburst's estimate-noise sweep is of this kind, 0–100 %). ``"lognormal"``:
    factor = exp(N(0, ln(1 + error))), unbounded but symmetric in ratio — over- and
    under-estimating by the same factor are equally likely — for error >= 0.
    """
    _check_choice(noise, get_args(NoiseDistribution), "noise")
    if noise == "uniform":
        _require(0 <= error < 1, f"uniform noise needs error in [0, 1), got {error}", "error")
    else:
        _require(math.isfinite(error) and error >= 0, f"must be >= 0, got {error}", "error")
    rng = np.random.default_rng(seed)
    n = len(workload.jobs)
    if noise == "uniform":
        factors = rng.uniform(1 - error, 1 + error, n)
    else:
        factors = np.exp(rng.normal(0.0, math.log1p(error), n))
    jobs = tuple(
        replace(j, estimate_h=j.runtime_h * f)
        for j, f in zip(workload.jobs, factors.tolist(), strict=True)
    )
    source = f"{workload.source}; estimates × {noise} noise {error:g}, seed {seed}"
    return Workload(workload.name, jobs, workload.datasets, source)


def with_deadlines(
    workload: Workload, *, slack: float, seed: int = 0, share: float = 1.0, spread: float = 0.0
) -> Workload:
    """Give ``round(share × units)`` units a deadline; the others get none.

    A unit's deadline is ``arrival + s × critical path``, where the critical path is the
    longest chain of true run times through its pipeline (an independent job: its run time)
    and ``s`` is drawn from U[slack, slack + spread] per unit (``spread = 0``: exactly
    ``slack``). Every job of a pipeline carries the pipeline's deadline: the DAG should be done
    by then. Transfers and queueing are not in the critical path, so ``slack = 1`` is only met
    by a job that starts at once and never waits for data.
    """
    _require(math.isfinite(slack) and slack > 0, f"must be > 0, got {slack}", "slack")
    _require(math.isfinite(spread) and spread >= 0, f"must be >= 0, got {spread}", "spread")
    _require(0 <= share <= 1, f"must be in [0, 1], got {share}", "share")
    finish = [0.0] * len(workload.jobs)
    for j in workload.jobs:  # ids are topological
        finish[j.id] = j.runtime_h + max((finish[d] for d in j.deps), default=0.0)
    units = _units(workload)
    rng = np.random.default_rng(seed)
    chosen = set(
        rng.choice(len(units), size=_exact_count(share, len(units)), replace=False).tolist()
    )
    factors = (
        rng.uniform(slack, slack + spread, len(units)).tolist() if spread else [slack] * len(units)
    )
    jobs = list(workload.jobs)
    for u, ids in enumerate(units):
        deadline = None
        if u in chosen:
            first = jobs[ids[0]]
            deadline = first.arrival_h + factors[u] * max(finish[i] for i in ids)
        for i in ids:
            jobs[i] = replace(jobs[i], deadline_h=deadline)
    source = (
        f"{workload.source}; deadlines: slack {slack:g}+{spread:g} on share {share:g}, seed {seed}"
    )
    return Workload(workload.name, tuple(jobs), workload.datasets, source)


def window(workload: Workload, start_h: float, hours: float) -> Workload:
    """The units that arrive in ``[start_h, start_h + hours)``, times rebased to ``start_h``.

    Pipelines are kept or dropped whole (by their arrival); ids and pipeline numbers are
    renumbered densely in order, dependencies and deadlines follow. An empty window gives a
    workload with no jobs.
    """
    _require(math.isfinite(start_h) and start_h >= 0, f"must be >= 0, got {start_h}", "start_h")
    _require(math.isfinite(hours) and hours > 0, f"must be > 0, got {hours}", "hours")
    end = start_h + hours
    new_id: dict[int, int] = {}
    jobs: list[SimJob] = []
    pipeline_no: dict[int, int] = {}
    for ids in _units(workload):
        if not start_h <= workload.jobs[ids[0]].arrival_h < end:
            continue
        for i in ids:
            j = workload.jobs[i]
            new_id[i] = len(jobs)
            if j.pipeline >= 0:
                pipeline_no.setdefault(j.pipeline, len(pipeline_no))
            outside = [d for d in j.deps if d not in new_id]
            _require(not outside, f"job {j.name!r} depends on jobs outside its pipeline", "deps")
            jobs.append(
                replace(
                    j,
                    id=len(jobs),
                    arrival_h=j.arrival_h - start_h,
                    deps=tuple(new_id[d] for d in j.deps),
                    deadline_h=None if j.deadline_h is None else j.deadline_h - start_h,
                    pipeline=pipeline_no.get(j.pipeline, -1),
                )
            )
    # A job's dependencies are numbered before it (same unit, lower old id; or an earlier
    # unit), so the new ids stay topological.
    source = f"{workload.source}; window [{start_h:g}, {end:g}) h"
    return Workload(
        f"{workload.name}[{start_h:g}h+{hours:g}h]", tuple(jobs), workload.datasets, source
    )


# -- the CLI's --trace -----------------------------------------------------------------------


def _mix_from_text(text: str) -> dict[int, float]:
    """``1:0.7/8:0.3`` → ``{1: 0.7, 8: 0.3}`` (``/`` because ``,`` separates keys)."""
    out: dict[int, float] = {}
    for part in text.split("/"):
        gpus, sep, p = part.partition(":")
        if not sep:
            raise ValueError(f"expected GPUS:SHARE, got {part!r}")
        out[int(gpus)] = float(p)
    return out


_Converter = Callable[[str], object]

_SYNTHETIC_KEYS: Final[Mapping[str, tuple[str, _Converter]]] = MappingProxyType(
    {
        "rate": ("rate_per_h", float),
        "rate_per_h": ("rate_per_h", float),
        "hours": ("hours", float),
        "seed": ("seed", int),
        "arrivals": ("arrivals", str),
        "cv": ("cv", float),
        "gpu_mix": ("gpu_mix", _mix_from_text),
        "runtime": ("runtime", str),
        "mean": ("mean_runtime_h", float),
        "mean_runtime_h": ("mean_runtime_h", float),
        "min_runtime_h": ("min_runtime_h", float),
        "max_runtime_h": ("max_runtime_h", float),
    }
)
_PIPELINE_KEYS: Final[Mapping[str, tuple[str, _Converter]]] = MappingProxyType(
    {
        "count": ("count", int),
        "rate": ("rate_per_h", float),
        "rate_per_h": ("rate_per_h", float),
        "shape": ("shape", str),
        "sweep_width": ("sweep_width", int),
        "sweep_share": ("sweep_share", float),
        "seed": ("seed", int),
        "arrivals": ("arrivals", str),
        "cv": ("cv", float),
        "gpu_mix": ("gpu_mix", _mix_from_text),
    }
)


def _keywords(
    spec: str, body: str, keys: Mapping[str, tuple[str, _Converter]], required: Sequence[str]
) -> dict[str, object]:
    kwargs: dict[str, object] = {}
    for item in filter(None, (s.strip() for s in body.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in keys:
            raise _fail(
                f"{spec!r}: unknown or malformed {item!r}; keys: {', '.join(keys)}", field="trace"
            )
        param, convert = keys[key]
        try:
            kwargs[param] = convert(value.strip())
        except ValueError as e:
            raise _fail(f"{spec!r}: bad value for {key}: {e}", field="trace") from e
    missing = [k for k in required if k not in kwargs]
    if missing:
        raise _fail(f"{spec!r}: needs {', '.join(missing)}", field="trace")
    return kwargs


def parse_trace_spec(spec: str) -> Workload:
    """The workload a ``--trace`` argument names.

    - ``itp:cluster04`` / ``itp:07`` / ``itp:4`` (``itp`` alone: cluster04)
    - ``csv:PATH`` — see :func:`csv_trace`
    - ``synthetic:rate=32,hours=3,seed=1`` — keys of :func:`synthetic` (``rate`` and ``mean``
      abbreviate ``rate_per_h`` and ``mean_runtime_h``; ``gpu_mix=1:0.7/8:0.3``)
    - ``pipelines:count=200,rate=4,shape=mixed`` — keys of :func:`pipelines`
    """
    kind, _, body = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "itp":
        return itp_trace(body.strip() or "cluster04")
    if kind == "csv":
        _require(bool(body.strip()), f"{spec!r}: csv needs a path, csv:PATH", "trace")
        return csv_trace(body.strip())
    if kind == "synthetic":
        kw = _keywords(spec, body, _SYNTHETIC_KEYS, ("rate_per_h", "hours"))
        return synthetic(**kw)  # type: ignore[arg-type]
    if kind == "pipelines":
        kw = _keywords(spec, body, _PIPELINE_KEYS, ("count", "rate_per_h"))
        return pipelines(**kw)  # type: ignore[arg-type]
    raise _fail(
        f"unknown trace {spec!r}; expected itp:CLUSTER, csv:PATH, synthetic:KEY=VALUE,... "
        "or pipelines:KEY=VALUE,...",
        field="trace",
    )
