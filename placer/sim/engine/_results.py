"""What one run produces: each job's record of runs (attempts), the replicas made, the on-prem
busy curve, and the configuration of the pool it ran on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from placer.sim.jobs import SimJob, Workload

HOURS_PER_MONTH: Final = 730.0

STORAGE_USD_PER_GB_MONTH = 0.023
"""Default price of keeping a replica: Amazon S3 Standard, first 50 TB per month, us-east-1
(list price, https://aws.amazon.com/s3/pricing/, as of 2026). Charged for on-prem copies too,
so that a replica is never free."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a job on one site (a completed run, or one stopped early)."""

    site: str
    spot: bool
    launch_h: float
    """On-prem: when the GPUs were taken. Cloud: when the nodes were requested (after the
    inputs were staged; billing starts here)."""
    start_h: float
    """When the job's own work began (after input transfer, and provisioning in the cloud)."""
    stop_h: float
    gpus_billed: int
    """Cloud: GPUs paid for (whole nodes); on-prem: the job's GPUs (a job larger than a node
    holds whole nodes, which :attr:`SimResult.onprem_busy` counts)."""
    compute_usd: float
    egress_usd: float
    outcome: str
    """``done``, ``preempted``, ``limit`` (stopped by the strategy's own limit)."""


@dataclass(frozen=True, slots=True)
class Replica:
    """A copy of a dataset kept at a location other than where it lives."""

    dataset: str
    location: str
    source: str
    """Where the copy was made from (the cheapest ready copy at the time)."""
    gb: float
    requested_h: float
    ready_h: float
    """When the transfer ends; jobs starting from then on read the copy."""
    egress_usd: float
    """What the copy paid (0 for a cache copy: the read that made it paid)."""
    reason: str
    """``strategy`` (asked for by the strategy) or ``cache`` (``cache_inputs``)."""


@dataclass(frozen=True)
class JobRecord:
    """What happened to one job: when it was ready, each run, and where it finished."""

    job: SimJob
    ready_h: float
    attempts: tuple[Attempt, ...]
    decisions: int
    decision_s: float
    """Wall time the strategy spent deciding about this job (all its decisions)."""
    refused: tuple[str, ...] = ()
    """Cloud launches that failed before running: ``site:reason`` (spot unavailable, quota)."""

    @property
    def end_h(self) -> float:
        return self.attempts[-1].stop_h

    @property
    def site(self) -> str:
        return self.attempts[-1].site

    @property
    def start_h(self) -> float:
        """When the final, successful run started its work."""
        return self.attempts[-1].start_h

    @property
    def jct_h(self) -> float:
        """Completion time: from submission (the DAG's, for a pipeline job) to the end."""
        return self.end_h - self.job.arrival_h

    @property
    def wait_h(self) -> float:
        """Time from ready to the start of the work of the final run, minus the work done in
        earlier runs that was kept: queueing, provisioning, transfers and lost work."""
        return self.end_h - self.ready_h - self.job.runtime_h


@dataclass(frozen=True)
class OnPremConfig:
    """The on-prem pool of a simulation."""

    site: str = "onprem"
    location: str = "onprem:dc"
    nodes: int = 0
    gpus_per_node: int = 8

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node


@dataclass(frozen=True)
class SimResult:
    """Everything one run produced; :mod:`placer.sim.metrics` turns it into numbers."""

    strategy: str
    workload: Workload
    onprem: OnPremConfig
    records: tuple[JobRecord, ...]
    onprem_busy: tuple[tuple[float, int], ...]
    """Step function of busy on-prem GPUs: ``(time, GPUs busy from then on)``."""
    site_locations: Mapping[str, str]
    wall_s: float
    seed: int
    params: Mapping[str, object] = field(default_factory=dict)
    replicas: tuple[Replica, ...] = ()
    storage_usd_per_gb_month: float = STORAGE_USD_PER_GB_MONTH

    @property
    def end_h(self) -> float:
        """When the last job ended (replicas are stored until then)."""
        return max((r.end_h for r in self.records), default=0.0)

    def storage_usd(self) -> float:
        """What keeping the replicas cost, from when each was ready to the end of the run."""
        end = self.end_h
        rate = self.storage_usd_per_gb_month / HOURS_PER_MONTH
        return sum(r.gb * rate * max(end - r.ready_h, 0.0) for r in self.replicas)
