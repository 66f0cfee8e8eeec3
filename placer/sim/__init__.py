"""Simulated hybrid clusters: replay a GPU-job trace, compare strategies, measure cost and time.

A simulation is one workload (:mod:`placer.sim.workload`: the Microsoft ITP trace, Philly
run times, synthetic arrivals, DAG pipelines), one on-prem pool, one cloud model
(:mod:`placer.sim.cloud`: Starburst's one-price cloud or the catalog's regions with spot,
provisioning delay and egress) and one strategy (:mod:`placer.sim.strategy`; the published
baselines in :mod:`placer.sim.baselines`, placer's own in :mod:`placer.sim.placer_strategy`).
:func:`simulate` runs it deterministically; :func:`summarise` turns the result into metrics,
counting residency violations with an independent checker (:mod:`placer.sim.check`).
"""

from placer.sim.engine import Attempt, JobRecord, OnPremConfig, SimResult, simulate
from placer.sim.jobs import SimDataset, SimJob, Workload
from placer.sim.metrics import Metrics, summarise
from placer.sim.strategy import Cloud, Decision, OnPrem, Strategy, View

__all__ = [
    "Attempt",
    "Cloud",
    "Decision",
    "JobRecord",
    "Metrics",
    "OnPrem",
    "OnPremConfig",
    "SimDataset",
    "SimJob",
    "SimResult",
    "Strategy",
    "View",
    "Workload",
    "simulate",
    "summarise",
]
