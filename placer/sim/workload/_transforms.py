"""Transformations: new workloads from old, never mutating their input (residency, estimate
noise, deadlines, a time window). Units are pipelines (moved together) or independent jobs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal, get_args

import numpy as np

from placer.sim.jobs import SimDataset, SimJob, Workload
from placer.sim.workload._checks import check_choice, datasets_by_name, require

NoiseDistribution = Literal["uniform", "lognormal"]

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
    require(0 <= share <= 1, f"must be in [0, 1], got {share}", "share")
    units = _units(workload)
    n_restricted = _exact_count(share, len(units))
    require(n_restricted == 0 or len(restricted) > 0, "needs at least one dataset", "restricted")
    require(
        n_restricted == len(units) or len(unrestricted) > 0,
        "needs at least one dataset",
        "unrestricted",
    )
    datasets = datasets_by_name([*restricted, *unrestricted], "restricted")
    overlap = {d.name for d in restricted} & {d.name for d in unrestricted}
    require(not overlap, f"datasets both restricted and not: {sorted(overlap)}", "unrestricted")

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
    check_choice(noise, get_args(NoiseDistribution), "noise")
    if noise == "uniform":
        require(0 <= error < 1, f"uniform noise needs error in [0, 1), got {error}", "error")
    else:
        require(math.isfinite(error) and error >= 0, f"must be >= 0, got {error}", "error")
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
    require(math.isfinite(slack) and slack > 0, f"must be > 0, got {slack}", "slack")
    require(math.isfinite(spread) and spread >= 0, f"must be >= 0, got {spread}", "spread")
    require(0 <= share <= 1, f"must be in [0, 1], got {share}", "share")
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
    require(math.isfinite(start_h) and start_h >= 0, f"must be >= 0, got {start_h}", "start_h")
    require(math.isfinite(hours) and hours > 0, f"must be > 0, got {hours}", "hours")
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
            require(not outside, f"job {j.name!r} depends on jobs outside its pipeline", "deps")
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


def merge(a: Workload, b: Workload) -> Workload:
    """Both workloads' units in arrival order (``a`` first on ties), renumbered densely."""
    units: list[tuple[float, int, int, list[SimJob], Workload]] = []
    for rank, w in enumerate((a, b)):
        seen: dict[int, list[SimJob]] = {}
        for j in w.jobs:
            if j.pipeline < 0:
                units.append((j.arrival_h, rank, j.id, [j], w))
            elif j.pipeline in seen:
                seen[j.pipeline].append(j)
            else:
                seen[j.pipeline] = [j]
                units.append((j.arrival_h, rank, j.id, seen[j.pipeline], w))
    units.sort(key=lambda u: u[:3])
    jobs: list[SimJob] = []
    pipes = 0
    for *_, members, _ in units:
        ids = {m.id: len(jobs) + k for k, m in enumerate(members)}
        p = -1
        if members[0].pipeline >= 0:
            p, pipes = pipes, pipes + 1
        for m in members:
            deps = tuple(ids[d] for d in m.deps)
            jobs.append(replace(m, id=ids[m.id], deps=deps, pipeline=p))
    datasets = {**a.datasets, **b.datasets}
    return Workload(f"{a.name}+{b.name}", tuple(jobs), datasets, f"{a.source}; {b.source}")
