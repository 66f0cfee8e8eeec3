"""Generators: Starburst-shaped independent jobs (:func:`synthetic`) and DAG pipelines
(:func:`pipelines`) from distributions written out here. Every draw comes from
``numpy.random.default_rng(seed)`` in a fixed order."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from placer.sim.jobs import SimDataset, SimJob, Workload
from placer.sim.workload._checks import check_choice, datasets_by_name, require
from placer.sim.workload._traces import (
    ITP_SOURCE,
    PHILLY_SOURCE,
    FloatArray,
    itp_durations_s,
    philly_runtimes_h,
)

Arrivals = Literal["poisson", "gamma"]
RuntimeDistribution = Literal["exponential", "philly", "itp"]
PipelineShape = Literal["chain", "sweep", "mixed"]

STARBURST: Final = "Starburst generator shape (Luo et al., USENIX ATC'24)"

PHILLY_GPU_MIX: Final[Mapping[int, float]] = MappingProxyType({1: 0.70, 2: 0.15, 4: 0.10, 8: 0.05})
"""GPU-count mix Starburst's generator calls the "Philly distribution" (Luo et al., ATC'24)."""

MIN_RUNTIME_H: Final = 30 / 3600
"""Default lower clip of generated run times: 30 s, Starburst's clip in its real-cluster run.

It also lifts Philly's shortest run times (2.4 % of its rows are under 30 s, two are 0 s).
"""


def _check_arrivals(rate_per_h: float, arrivals: str, cv: float) -> None:
    require(
        math.isfinite(rate_per_h) and rate_per_h > 0, f"must be > 0, got {rate_per_h}", "rate_per_h"
    )
    check_choice(arrivals, get_args(Arrivals), "arrivals")
    require(math.isfinite(cv) and cv > 0, f"must be > 0, got {cv}", "cv")
    require(
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
    require(len(mix) > 0, "needs at least one GPU count", "gpu_mix")
    counts = sorted(mix)
    for c in counts:
        require(
            isinstance(c, int) and c >= 1, f"GPU counts must be integers >= 1, got {c!r}", "gpu_mix"
        )
        p = mix[c]
        require(math.isfinite(p) and p >= 0, f"share of {c} GPUs must be >= 0, got {p}", "gpu_mix")
    probs = np.array([mix[c] for c in counts], dtype=np.float64)
    require(abs(probs.sum() - 1.0) < 1e-6, f"shares must sum to 1, got {probs.sum():g}", "gpu_mix")
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
    require(math.isfinite(hours) and hours > 0, f"must be > 0, got {hours}", "hours")
    _check_arrivals(rate_per_h, arrivals, cv)
    counts, probs = _gpu_mix(gpu_mix)
    check_choice(runtime, get_args(RuntimeDistribution), "runtime")
    require(mean_runtime_h > 0, f"must be > 0, got {mean_runtime_h}", "mean_runtime_h")
    require(min_runtime_h > 0, f"must be > 0, got {min_runtime_h}", "min_runtime_h")
    hi = math.inf if max_runtime_h is None else max_runtime_h
    require(hi >= min_runtime_h, "must be >= min_runtime_h", "max_runtime_h")

    rng = np.random.default_rng(seed)
    times = _arrivals_within(rng, arrivals, cv, rate_per_h, hours)
    n = len(times)
    gpus = rng.choice(counts, size=n, p=probs)
    if runtime == "exponential":
        run = rng.exponential(mean_runtime_h, n)
    elif runtime == "philly":
        run = rng.choice(philly_runtimes_h(), n)
    else:
        run = rng.choice(itp_durations_s("cluster04") / 3600.0, n)
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
    require(count >= 1, f"must be >= 1, got {count}", "count")
    _check_arrivals(rate_per_h, arrivals, cv)
    check_choice(shape, get_args(PipelineShape), "shape")
    require(sweep_width >= 1, f"must be >= 1, got {sweep_width}", "sweep_width")
    require(0 <= sweep_share <= 1, f"must be in [0, 1], got {sweep_share}", "sweep_share")
    counts, probs = _gpu_mix(gpu_mix)
    require(len(datasets) > 0, "needs at least one dataset", "datasets")
    by_name = datasets_by_name(datasets, "datasets")

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
