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
#: Cloud locations of :func:`random_problem`, in the order ``n_locations`` takes them. The last
#: three only widen the option space (30-50 options per job); appending keeps every problem
#: made with fewer locations unchanged.
CLOUD = ("aws:eu-west-1", "gcp:europe-west4", "aws:us-east-1", "azure:westeurope",
         "gcp:us-central1", "azure:eastus", "aws:us-west-2")
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
        n_locations: Number of locations (the first is on-prem when ``onprem``), 1–8; with
            ``onprem`` there are ``4 + 8 * (n_locations - 1)`` distinct options to draw from.
        onprem: Whether options at the on-prem location draw from a GPU pool.
        pool_gpus: Capacity of that pool.
    """
    if n_jobs < 1 or n_options < 1 or not 1 <= n_locations <= 1 + len(CLOUD):
        raise ValueError(
            f"need n_jobs >= 1, n_options >= 1 and 1 <= n_locations <= {1 + len(CLOUD)}"
        )
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


# -- SkyPilot-style instances ----------------------------------------------------------------
#
# Numbers below are copied from the project's shared fact files (which cite their sources in
# ../shared/data/facts/README.md and ../shared/data/catalog/README.md; the same rows ship in
# placer/catalog/data/*.csv). Kept as constants because the optimizer imports no catalog.

SkyShape = Literal["dag", "chain", "tree"]

#: cloud -> on-demand USD per GB leaving that cloud for another cloud. SkyPilot 0.14.1's
#: ``get_egress_cost`` first tiers (sky/clouds/aws.py, gcp.py, azure.py), as recorded in
#: egress_prices.csv: AWS 0.09 (1 GB-10 TB), GCP 0.12 (<= 1 TB, whole transfer), Azure 0.0875.
SKY_EGRESS_USD_PER_GB: dict[str, float] = {"aws": 0.09, "gcp": 0.12, "azure": 0.0875}

#: Hours per GB between two clouds: SkyPilot's ``Optimizer._egress_time`` assumes 10 Gbps.
SKY_EGRESS_HOURS_PER_GB = 8.0 / (10.0 * 3600.0)

#: (cloud, accelerator) -> on-demand USD per GPU-hour in the cloud's reference US region, from
#: gpu_prices.csv: AWS p3.8xlarge/4 (V100), p4d.24xlarge/8 (A100, catalog v7), p5.48xlarge/8
#: (H100, catalog v7), g4dn.xlarge (T4), g6.xlarge (L4); GCP catalog v7 GPU rows (T4, L4, V100:
#: GPU component only), a2-highgpu-1g (A100), a3-highgpu-8g/8 us-east4 (H100); Azure
#: NC4as_T4_v3, NC6s_v3, ND96asr_A100_v4/8, ND96isr_H100_v5/8 (data-receipts 109, 2026-11).
SKY_GPU_USD_PER_HOUR: dict[tuple[str, str], float] = {
    ("aws", "T4"): 0.526, ("aws", "L4"): 0.8048, ("aws", "V100"): 3.06,
    ("aws", "A100"): 4.0966, ("aws", "H100"): 12.29,
    ("gcp", "T4"): 0.35, ("gcp", "L4"): 0.56004, ("gcp", "V100"): 2.48,
    ("gcp", "A100"): 3.6734, ("gcp", "H100"): 10.9791,
    ("azure", "T4"): 0.526, ("azure", "V100"): 3.06, ("azure", "A100"): 3.3996,
    ("azure", "H100"): 12.29,
}

#: Relative training throughput per accelerator (H100 = 1); an assumption standing in for
#: SkyPilot's per-task time estimator (which defaults to 1 h for every resource).
SKY_GPU_SPEED: dict[str, float] = {"H100": 1.0, "A100": 0.55, "L4": 0.3, "V100": 0.25,
                                   "T4": 0.12}

#: ``cloud:region`` -> (price factor vs the cloud's reference region, accelerators offered).
#: 3 clouds, 19 regions, all in the catalog's region_jurisdictions.csv. Factors are ratios of
#: the same instance's price in gpu_prices.csv (aws eu-west-1 35.40/32.77 p4d, eu-central-1
#: 40.94/32.77 p4d, eu-west-2 mean of p3.8xlarge 14.36/12.24 and p5 127.8/98.3, eu-north-1
#: 105.2/98.3 p5; gcp europe-west4 0.588/0.560 L4, europe-west1 12.09/10.98 H100); the others
#: are 1.0 (US) or 1.1 (Europe, Asia) by assumption. Which region offers which accelerator is
#: illustrative (the full v8 catalog was not copied), sized so a task sees ~18 candidates.
SKY_REGIONS: dict[str, tuple[float, tuple[str, ...]]] = {
    "aws:us-east-1": (1.0, ("T4", "L4", "V100", "A100", "H100")),
    "aws:us-east-2": (1.0, ("T4", "L4")),
    "aws:us-west-2": (1.0, ("T4", "L4", "V100", "A100", "H100")),
    "aws:eu-west-1": (1.080, ("T4", "V100")),
    "aws:eu-central-1": (1.249, ("A100",)),
    "aws:eu-west-2": (1.237, ("L4", "V100", "H100")),
    "aws:eu-north-1": (1.070, ("H100",)),
    "gcp:us-central1": (1.0, ("T4", "L4", "V100", "A100", "H100")),
    "gcp:us-east4": (1.0, ("L4", "A100", "H100")),
    "gcp:us-east1": (1.0, ("T4", "L4")),
    "gcp:us-west1": (1.0, ("T4",)),
    "gcp:europe-west4": (1.050, ("T4", "L4", "V100", "A100")),
    "gcp:europe-west1": (1.101, ("H100",)),
    "gcp:asia-east1": (1.1, ("L4", "A100")),
    "azure:eastus": (1.0, ("T4", "V100", "A100", "H100")),
    "azure:eastus2": (1.0, ("A100",)),
    "azure:westus2": (1.0, ("T4",)),
    "azure:westeurope": (1.1, ("V100",)),
    "azure:northeurope": (1.1, ("A100",)),
}


SKY_EGRESS_SCHEDULE: dict[str, tuple[float, tuple[tuple[float, float], ...]]] = {
    "aws": (1.0, ((10240.0, 0.085), (51200.0, 0.07), (153600.0, 0.05))),
    "gcp": (0.0, ((1024.0, 0.11), (10240.0, 0.08))),
    "azure": (1.0, ((10240.0, 0.083), (51200.0, 0.07), (153600.0, 0.05))),
}
"""SkyPilot 0.14.1's ``get_egress_cost()`` (sky/clouds/{aws,gcp,azure}.py; the tiers are
also rows of placer/catalog/data/egress_prices.csv): the free first GB on AWS and Azure and the
volume tiers, per transfer, as (free GB, ((from GB, USD per GB), ...)) after the first rate of
:data:`SKY_EGRESS_USD_PER_GB`. Above 150 TB SkyPilot charges $0.05 on the whole volume; here
from 150 TB on (outputs of these instances are at most 1 TB, so it never applies)."""


def sky_links(intra_cloud_usd_per_gb: float = 0.0, *, exact_egress: bool = False
              ) -> dict[tuple[str, str], Link]:
    """Links between every pair of :data:`SKY_REGIONS`, priced as SkyPilot prices them.

    Between clouds: the source cloud's egress price at 10 Gbps; with ``exact_egress`` its
    whole schedule (:data:`SKY_EGRESS_SCHEDULE`: the free first GB, the tiers). Within a
    cloud SkyPilot charges nothing and takes no time; ``intra_cloud_usd_per_gb`` > 0 (real
    inter-region prices are ~$0.02/GB) makes regions distinguishable, so no two can be merged.
    """
    links: dict[tuple[str, str], Link] = {}
    for a in SKY_REGIONS:
        for b in SKY_REGIONS:
            if a == b:
                continue
            ca, cb = a.split(":")[0], b.split(":")[0]
            if ca == cb:
                links[a, b] = Link(intra_cloud_usd_per_gb, 0.0)
            else:
                free, tiers = SKY_EGRESS_SCHEDULE[ca] if exact_egress else (0.0, ())
                links[a, b] = Link(SKY_EGRESS_USD_PER_GB[ca], SKY_EGRESS_HOURS_PER_GB,
                                   free_gb=free, tiers=tiers)
    return links


def skypilot_problem(
    n_tasks: int,
    seed: int = 0,
    shape: SkyShape = "dag",
    *,
    intra_cloud_usd_per_gb: float = 0.0,
    exact_egress: bool = False,
) -> Problem:
    """A random DAG shaped like what SkyPilot's optimizer sees; same arguments, same problem.

    Every task requests 1-3 accelerator types (``{A100:8, H100:4}``-style, count 1/2/4/8
    per node, 1-4 nodes) and each request becomes one option per region that offers it,
    as SkyPilot expands launchable resources to every valid region. A task's run time
    depends on the accelerator, not the region; its cost is nodes x GPUs x the region's
    price x hours. Every task outputs 0-1,000 GB that each child receives; the first task
    reads a 0-1,000 GB input from a random region. Egress is priced by the source cloud and
    free within a cloud (:func:`sky_links`). There is no on-prem pool: SkyPilot has none.

    Args:
        n_tasks: Number of tasks (>= 1).
        seed: Random seed.
        shape: ``"dag"`` (every task after the first has 1-5 parents among all earlier
            tasks), ``"chain"`` (t0 → t1 → …) or ``"tree"`` (every task after the first has
            one parent among the earlier tasks: an out-tree of forks).
        intra_cloud_usd_per_gb: Price of moving data between regions of one cloud.
        exact_egress: Egress with SkyPilot's whole schedule (the free first GB on AWS and
            Azure, volume tiers) instead of its first paid rate on every GB.
    """
    if n_tasks < 1:
        raise ValueError(f"need n_tasks >= 1, got {n_tasks}")
    if shape not in ("dag", "chain", "tree"):
        raise ValueError(f"shape must be dag, chain or tree, got {shape!r}")
    rng = random.Random(seed)
    regions = list(SKY_REGIONS)
    offered: dict[str, list[str]] = {}
    for loc, (_, gpus) in SKY_REGIONS.items():
        for gpu in gpus:
            offered.setdefault(gpu, []).append(loc)
    accelerators = sorted(offered)
    names = tuple(f"t{i:05d}" for i in range(n_tasks))

    options: dict[str, tuple[Option, ...]] = {}
    for name in names:
        nodes = rng.randint(1, 4)
        h100_hours = _log_uniform(rng, 0.25, 4.0)
        opts = []
        for gpu in sorted(rng.sample(accelerators, rng.randint(1, 3))):
            count = rng.choice((1, 2, 4, 8))
            hours = round(h100_hours / SKY_GPU_SPEED[gpu], 4)
            for loc in offered[gpu]:
                cloud, region = loc.split(":")
                factor = SKY_REGIONS[loc][0]
                usd_h = SKY_GPU_USD_PER_HOUR[cloud, gpu] * factor * count * nodes
                opts.append(Option(site=region, location=loc, gpu=f"{gpu}:{count}", spot=False,
                                   duration_h=hours, compute_usd=round(usd_h * hours, 4)))
        options[name] = tuple(opts)

    edges: list[Edge] = []
    out_gb = [round(rng.uniform(0.0, 1000.0), 1) for _ in names]
    for i in range(1, n_tasks):
        if shape == "chain":
            parents = [i - 1]
        elif shape == "tree":
            parents = [rng.randrange(i)]
        else:
            parents = sorted(rng.sample(range(i), min(i, rng.randint(1, 5))))
        edges += [Edge(names[s], names[i], out_gb[s]) for s in parents]
    reads = (Read(names[0], rng.choice(regions), round(rng.uniform(0.0, 1000.0), 1)),)
    return Problem(jobs=names, options=options, edges=tuple(edges), reads=reads,
                   links=sky_links(intra_cloud_usd_per_gb, exact_egress=exact_egress))
