"""Hand-made workloads and clouds for the simulator's tests, small enough to check by hand."""

from __future__ import annotations

from collections.abc import Mapping

from placer.pricing import PricedOffer
from placer.sim.cloud import CloudModel, CloudSite, Provisioning, SpotTrace
from placer.sim.jobs import SimJob, Workload


def hand_workload(
    *specs: tuple[str, float, int, float],
    deps: Mapping[str, tuple[str, ...]] | None = None,
    output_gb: Mapping[str, float] | None = None,
) -> Workload:
    """Jobs ``(name, arrival h, GPUs, run time h)`` in id order, estimates exact; deps and
    outputs by name."""
    deps, output_gb = deps or {}, output_gb or {}
    ids = {name: i for i, (name, *_) in enumerate(specs)}
    jobs = tuple(
        SimJob(
            id=i,
            name=name,
            arrival_h=t,
            runtime_h=r,
            gpus=g,
            estimate_h=r,
            deps=tuple(ids[d] for d in deps.get(name, ())),
            output_gb=output_gb.get(name, 0.0),
        )
        for i, (name, t, g, r) in enumerate(specs)
    )
    return Workload("hand", jobs)


def two_site_cloud(trace: SpotTrace | None = None, *, quota_b: int | None = None) -> CloudModel:
    """Two sites with no provisioning delay and free links: ``a`` ($3/GPU-h on demand, $1/GPU-h
    spot, availability ``trace``) and ``b`` ($2/GPU-h on demand only, quota ``quota_b``)."""
    zero = (Provisioning.zero(), Provisioning.zero())
    return CloudModel(
        "hand",
        [
            CloudSite("a", "cloud:a", (PricedOffer("a1", "V100", 1, 3.0, 1.0),), zero, trace, None),
            CloudSite(
                "b", "cloud:b", (PricedOffer("b1", "V100", 1, 2.0, None),), zero, None, quota_b
            ),
        ],
    )
