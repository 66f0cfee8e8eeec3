"""The benchmark instances are what their docstrings say: deterministic, shaped, priced."""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict

import pytest

from placer.catalog import default_catalog
from placer.optimizer import random_problem, skypilot_problem
from placer.optimizer._generate import (
    SKY_EGRESS_HOURS_PER_GB,
    SKY_EGRESS_USD_PER_GB,
    SKY_GPU_USD_PER_HOUR,
    SKY_REGIONS,
)

SHAPES = ("dag", "chain", "tree")


@pytest.mark.parametrize("shape", SHAPES)
def test_same_seed_same_problem_other_seed_other_problem(shape: str) -> None:
    p = skypilot_problem(40, 3, shape)  # type: ignore[arg-type]
    assert skypilot_problem(40, 3, shape) == p  # type: ignore[arg-type]
    assert skypilot_problem(40, 4, shape) != p  # type: ignore[arg-type]


def _parents(shape: str, n: int) -> dict[str, list[str]]:
    p = skypilot_problem(n, 1, shape)  # type: ignore[arg-type]
    parents: dict[str, list[str]] = defaultdict(list)
    for e in p.edges:
        parents[e.dst].append(e.src)
        assert e.src < e.dst  # names are zero-padded: parents come earlier
        assert 0.0 <= e.gb <= 1000.0
    return parents


def test_dag_tasks_have_one_to_five_distinct_earlier_parents() -> None:
    parents = _parents("dag", 300)
    assert "t00000" not in parents
    assert len(parents) == 299
    counts = [len(v) for v in parents.values()]
    assert all(len(set(v)) == len(v) for v in parents.values())
    assert min(counts) == 1
    assert max(counts) == 5


def test_chain_and_tree_shapes() -> None:
    chain = _parents("chain", 50)
    assert all(v == [f"t{i - 1:05d}"] for i in range(1, 50) for v in [chain[f"t{i:05d}"]])
    tree = _parents("tree", 200)
    assert len(tree) == 199
    assert all(len(v) == 1 for v in tree.values())
    assert len({v[0] for v in tree.values()}) < 199  # some task forks to several children


def test_options_are_every_offering_region_of_each_requested_accelerator() -> None:
    catalog = default_catalog()
    p = skypilot_problem(200, 2)
    offered: dict[str, set[str]] = defaultdict(set)
    for loc, (_, gpus) in SKY_REGIONS.items():
        for gpu in gpus:
            offered[gpu].add(loc)
    for opts in p.options.values():
        by_request: dict[str, set[str]] = defaultdict(set)
        per_gpu_hour: dict[str, set[float]] = defaultdict(set)
        for o in opts:
            assert o.location in catalog
            gpu, count = o.gpu.split(":")
            assert int(count) in (1, 2, 4, 8)
            by_request[o.gpu].add(o.location)
            cloud = o.location.split(":")[0]
            unit = SKY_GPU_USD_PER_HOUR[cloud, gpu] * SKY_REGIONS[o.location][0] * int(count)
            per_gpu_hour[gpu].add(round(o.compute_usd / o.duration_h / unit, 2))
        assert 1 <= len(by_request) <= 3
        for request, locs in by_request.items():
            assert locs == offered[request.split(":")[0]]
        nodes = {n for v in per_gpu_hour.values() for n in v}
        assert len(nodes) == 1  # one node count per task, whatever the region
        assert nodes.pop() in (1.0, 2.0, 3.0, 4.0)
    mean = statistics.mean(len(o) for o in p.options.values())
    assert 15 <= mean <= 21  # the instances: ~18 candidates per task


def test_egress_is_priced_by_the_source_cloud_and_free_inside_a_cloud() -> None:
    p = skypilot_problem(5, 0)
    assert len(SKY_REGIONS) == 19
    assert len(p.links) == 19 * 18
    for (a, b), link in p.links.items():
        ca, cb = a.split(":")[0], b.split(":")[0]
        if ca == cb:
            assert (link.usd_per_gb, link.hours_per_gb) == (0.0, 0.0)
        else:
            assert link.usd_per_gb == SKY_EGRESS_USD_PER_GB[ca]
            assert link.hours_per_gb == SKY_EGRESS_HOURS_PER_GB
    priced = skypilot_problem(5, 0, intra_cloud_usd_per_gb=0.02)
    assert priced.links["aws:us-east-1", "aws:us-west-2"].usd_per_gb == 0.02
    (read,) = p.reads
    assert read.job == "t00000"
    assert read.location in SKY_REGIONS


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="n_tasks"):
        skypilot_problem(0)
    with pytest.raises(ValueError, match="shape"):
        skypilot_problem(3, 0, "ring")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs", "digest"),
    [
        ((12, 4, "dag", 7), {}, "ae096c473ce60989"),
        ((12, 4, "dag", 7), {"n_locations": 5, "pool_gpus": 8}, "b4d2a562f30bc4ee"),
        ((30, 6, "tree", 3), {}, "752a60bf18b9c5c8"),
        ((25, 20, "chain", 1), {"n_locations": 5, "pool_gpus": 8}, "ac87798b32dc3e9f"),
    ],
)
def test_random_problem_is_unchanged(args: tuple, kwargs: dict, digest: str) -> None:  # type: ignore[type-arg]
    """Digests of problems made before more cloud locations were appended."""
    text = repr(random_problem(*args, **kwargs))
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == digest


def test_random_problem_reaches_fifty_distinct_options() -> None:
    p = random_problem(3, 50, "dag", 0, n_locations=7)
    for opts in p.options.values():
        assert len({(o.location, o.gpu, o.spot) for o in opts}) == 50
