"""Seeded random placement problems with realistic numbers, for tests and benchmarks.

The numbers follow public price lists loosely (they are not a catalog): on-demand GPU hours
of $0.8–$4/GPU, spot at ~35 % of on-demand with longer provisioning, an on-prem pool whose
GPU hour is cheap (amortised) but limited, egress of $0.02–$0.12/GB and links of 1–10 Gbps.
Durations span 0.5–12 h, data 1–1,000 GB (log-uniform: most edges are small, a few are big).
"""

from __future__ import annotations

import math
import random
from typing import Literal

from placer.optimizer._problem import Edge, Link, Option, Problem, Read

Shape = Literal["chain", "tree", "dag"]

#: GPU type -> (relative speed, on-demand $/GPU-hour in the cloud).
GPUS: dict[str, tuple[float, float]] = {
    "H100": (1.0, 4.0),
    "A100": (0.6, 2.5),
    "V100": (0.35, 1.4),
    "L4": (0.25, 0.8),
}
ONPREM = "onprem:fra-dc"
CLOUD = ("aws:eu-west-1", "gcp:europe-west4", "aws:us-east-1", "azure:westeurope")
POOL = "onprem:fra-dc/gpus"


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def random_problem(
    n_jobs: int,
    n_options: int = 4,
    shape: Shape = "dag",
    seed: int = 0,
    *,
    n_locations: int = 3,
    onprem: bool = True,
    pool_gpus: int = 16,
) -> Problem:
    """A random problem; the same arguments always give the same problem.

    Args:
        n_jobs: Number of jobs (>= 1).
        n_options: Options per job (distinct site/GPU/spot combinations, >= 1).
        shape: ``"chain"`` (j0 → j1 → …), ``"tree"`` (an in-tree: every job feeds one later
            job, within a few positions, so inputs merge towards the last job), or ``"dag"``
            (every job after the first consumes 1–3 of the ten jobs before it).
        seed: Random seed.
        n_locations: Number of locations (the first is on-prem when ``onprem``), 1–5.
        onprem: Whether options at the on-prem location draw from a GPU pool.
        pool_gpus: Capacity of that pool.
    """
    if n_jobs < 1 or n_options < 1 or not 1 <= n_locations <= 1 + len(CLOUD):
        raise ValueError("need n_jobs >= 1, n_options >= 1 and 1 <= n_locations <= 5")
    rng = random.Random(seed)
    locations = ([ONPREM] if onprem else []) + list(CLOUD)
    locations = locations[:n_locations]
    names = tuple(f"j{i:04d}" for i in range(n_jobs))

    links = {}
    for a in locations:
        for b in locations:
            if a != b:
                gbps = rng.uniform(1.0, 10.0)
                links[a, b] = Link(
                    usd_per_gb=round(rng.uniform(0.02, 0.12), 4),
                    hours_per_gb=8.0 / (gbps * 3600.0),
                )

    combos = [(loc, gpu, spot) for loc in locations for gpu in GPUS for spot in (False, True)
              if not (loc == ONPREM and spot)]
    options: dict[str, tuple[Option, ...]] = {}
    for name in names:
        work_h = rng.uniform(0.5, 3.0)  # hours on an H100; slower GPUs take up to 4x longer
        gpus = rng.choice((1, 2, 4, 8))
        picked = rng.sample(combos, min(n_options, len(combos)))
        opts = []
        for loc, gpu, spot in picked:
            speed, price = GPUS[gpu]
            duration = min(12.0, max(0.5, work_h / speed))
            if loc == ONPREM:
                rate, delay = 0.35 * price, 0.0
            elif spot:
                rate, delay = 0.35 * price, rng.uniform(0.1, 0.5)
            else:
                rate, delay = price, rng.uniform(0.05, 0.25)
            on_pool = onprem and loc == ONPREM
            opts.append(
                Option(
                    site=loc.split(":")[1],
                    location=loc,
                    gpu=gpu,
                    spot=spot,
                    duration_h=round(duration, 4),
                    compute_usd=round(duration * gpus * rate, 2),
                    start_delay_h=round(delay, 3),
                    pool=POOL if on_pool else None,
                    pool_gpus=gpus if on_pool else 0,
                )
            )
        options[name] = tuple(opts)

    edges: list[Edge] = []
    for i in range(1, n_jobs):
        if shape == "chain":
            srcs = [i - 1]
        elif shape == "tree":
            srcs = []
        else:
            window = list(range(max(0, i - 10), i))
            srcs = sorted(rng.sample(window, min(len(window), rng.randint(1, 3))))
        edges += [Edge(names[s], names[i], round(_log_uniform(rng, 1, 1000), 1)) for s in srcs]
    if shape == "tree":
        for i in range(n_jobs - 1):
            dst = rng.randint(i + 1, min(n_jobs - 1, i + 3))
            edges.append(Edge(names[i], names[dst], round(_log_uniform(rng, 1, 1000), 1)))

    has_input = {e.dst for e in edges}
    reads = tuple(
        Read(name, rng.choice(locations), round(_log_uniform(rng, 1, 1000), 1))
        for name in names
        if name not in has_input
    )
    return Problem(
        jobs=names,
        options=options,
        edges=tuple(edges),
        reads=reads,
        links=links,
        capacity={POOL: pool_gpus} if onprem else {},
    )
