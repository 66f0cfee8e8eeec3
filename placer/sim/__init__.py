"""Simulated hybrid clusters: replay a GPU-job trace, compare strategies, measure cost and time.

A simulation is one workload (:mod:`placer.sim.workload`: the Microsoft ITP trace, Philly
run times, synthetic arrivals, DAG pipelines), one on-prem pool, one cloud model
(:mod:`placer.sim.cloud`: Starburst's one-price cloud or the catalog's regions with spot,
provisioning delay and egress) and one strategy (the core's :class:`placer.online.Strategy`;
the published baselines in :mod:`placer.sim.baselines`, placer's own in
:mod:`placer.sim.placer_strategy`). The engine is the simulator's implementation of
:class:`placer.online.ClusterView`; prices come from :mod:`placer.pricing`, as in a plan.
:func:`simulate` runs it deterministically; :func:`summarise` turns the result into metrics,
counting residency violations with an independent checker (:mod:`placer.sim.check`);
:mod:`placer.sim.bench` runs a scenario's sweep and returns the rows.

The simulator imports only placer's core and returns values: what is shown of a benchmark is
:mod:`placer.report`'s, and Ray is the ray backend's (``placer_ray.TaskRunner``).
"""

from placer.online import Cloud, ClusterView, Decision, JobRequest, OnPrem, Replicate, Strategy
from placer.sim.engine import Attempt, JobRecord, OnPremConfig, SimResult, simulate
from placer.sim.jobs import SimDataset, SimJob, Workload
from placer.sim.metrics import Metrics, summarise

__all__ = [
    "Attempt",
    "Cloud",
    "ClusterView",
    "Decision",
    "JobRecord",
    "JobRequest",
    "Metrics",
    "OnPrem",
    "OnPremConfig",
    "Replicate",
    "SimDataset",
    "SimJob",
    "SimResult",
    "Strategy",
    "Workload",
    "simulate",
    "summarise",
]
