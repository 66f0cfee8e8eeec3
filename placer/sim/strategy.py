"""The one interface every strategy implements, baselines and placer's own alike.

A strategy is asked three questions, each answered with a :data:`Decision`:

* :meth:`Strategy.on_ready` — a job is ready (submitted, and its dependencies are done): queue it
  on-prem (maybe with a waiting budget) or send it to a cloud site now;
* :meth:`Strategy.on_timeout` — a queued job used up its waiting budget without starting;
* :meth:`Strategy.on_cloud_stopped` — a cloud run ended early: spot capacity was not there, the
  spot instance was preempted, the site's quota was full, or the run hit the ``limit_h`` the
  strategy set itself (Star-Wait's probe).

The same interface serves the simulator and an online scheduler: the strategy sees the world
only through :class:`View`, which the simulator implements from its state and a live
scheduler from its clusters. What the on-prem queue does with queued jobs (first-in-first-out,
out-of-order, backfill) is the strategy's ``queue`` attribute, because Starburst's policies
differ exactly there.

Residency: ``residency`` says which filter a strategy applies to its own choices. ``"none"``
places as if no data were restricted (what an off-the-shelf burst scheduler does);
``"naive"`` masks the regions that the tags of the datasets a job reads *directly* forbid (a
region filter bolted onto a baseline: it misses data derived from restricted data);
``"policy"`` uses placer's policy evaluation with lineage. The simulator checks every run
against the scenario's ground truth independently (:mod:`placer.sim.check`), whatever the
strategy believed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from placer.sim.jobs import SimDataset, SimJob

if TYPE_CHECKING:
    from placer.sim.cloud import CloudModel, Quote

QueueMode = Literal["fifo", "ooo", "backfill"]
Residency = Literal["none", "naive", "policy"]
StopReason = Literal["unavailable", "preempted", "quota", "limit"]


@dataclass(frozen=True, slots=True)
class OnPrem:
    """Queue the job on-prem.

    Attributes:
        wait_h: Waiting budget: if the job has not started this many hours from now,
            :meth:`Strategy.on_timeout` is asked again. ``None`` waits as long as it takes.
        priority: Queue order, lower first; equal priorities keep the order of queueing.
    """

    wait_h: float | None = None
    priority: float = 0.0


@dataclass(frozen=True, slots=True)
class Cloud:
    """Run the job at a cloud site now.

    Attributes:
        site: A site of the simulation's cloud model.
        spot: Use the site's spot offer (preemptible, cheaper).
        limit_h: Stop the run this many hours after launch if it has not ended, then ask
            :meth:`Strategy.on_cloud_stopped` (reason ``"limit"``); work done is lost.
    """

    site: str
    spot: bool = False
    limit_h: float | None = None


Decision = OnPrem | Cloud


class View(Protocol):
    """What a strategy may see of the world when it decides."""

    @property
    def now(self) -> float: ...

    @property
    def cloud(self) -> CloudModel: ...

    @property
    def onprem_gpus(self) -> int:
        """GPUs of the on-prem pool (0 when the scenario has none)."""
        ...

    @property
    def datasets(self) -> Mapping[str, SimDataset]:
        """The workload's datasets by name (where they live, their size and tags)."""
        ...

    @property
    def onprem_location(self) -> str:
        """Location key of the on-prem pool (where its inputs must be brought)."""
        ...

    @property
    def free_gpus(self) -> int: ...

    @property
    def storage_usd_per_gb_h(self) -> float:
        """What keeping a replica costs per GB and hour."""
        ...

    def fits_now(self, job: SimJob) -> bool:
        """Whether the pool could start ``job`` this instant (node packing included)."""
        ...

    def queue_length(self) -> int: ...

    def queued_gpu_hours(self) -> float:
        """Estimated GPU-hours of work waiting in the on-prem queue."""
        ...

    def running_onprem(self) -> Iterator[tuple[float, int]]:
        """``(estimated end, GPUs)`` of every job running on-prem, in no particular order."""
        ...

    def queued(self) -> Iterator[SimJob]:
        """Jobs waiting in the on-prem queue, in queue order."""
        ...

    def remaining_h(self, job: SimJob) -> float:
        """Estimated hours of work left (the estimate less progress kept across preemptions)."""
        ...

    def allowed(self, job: SimJob, mode: Residency) -> tuple[bool, tuple[str, ...]]:
        """``(on-prem allowed, allowed cloud sites)`` under a residency filter."""
        ...

    def transfer(self, job: SimJob, location: str) -> tuple[float, float]:
        """``(USD, hours)`` to bring the job's inputs to ``location``."""
        ...

    def read_cost(self, name: str, location: str) -> tuple[float, float, str]:
        """``(USD, hours, source)`` to read dataset ``name`` at ``location`` now, from its
        cheapest ready copy."""
        ...

    def may_store(self, name: str, location: str) -> bool:
        """Whether placer's policies (lineage rule: where a job reading only it may run) let a
        copy of dataset ``name`` be kept at ``location``."""
        ...

    def replica_ready(self, name: str, location: str) -> float | None:
        """When a copy of ``name`` at ``location`` is or will be ready; None if none is."""
        ...

    def replicate(self, name: str, location: str) -> bool:
        """Start copying dataset ``name`` to ``location`` (egress now, storage until the end);
        False when a copy is already there or on its way."""
        ...


class Strategy:
    """Base class: a name, a queue discipline, a residency filter and three decisions.

    Subclasses override :meth:`on_ready` and, where they differ from "burst to the cheapest
    allowed cloud site on demand", :meth:`on_timeout` and :meth:`on_cloud_stopped`.
    """

    name: str = "strategy"
    queue: QueueMode = "ooo"
    residency: Residency = "none"
    fit: Literal["first", "best"] = "first"

    def start(self, view: View, jobs: tuple[SimJob, ...]) -> None:
        """Called once before the first event; ``jobs`` is the whole workload, for strategies
        that normalise a waiting budget over it (as Starburst's budget framework does)."""

    def on_ready(self, job: SimJob, view: View) -> Decision:
        raise NotImplementedError

    def on_timeout(self, job: SimJob, view: View) -> Decision:
        return self.burst(job, view)

    def on_cloud_stopped(
        self, job: SimJob, view: View, site: str, spot: bool, reason: StopReason
    ) -> Decision:
        if reason == "limit":
            return self.burst(job, view)
        # Spot gone, preempted or quota full: fall back to on-demand elsewhere if possible.
        return self.burst(job, view, exclude=site if reason == "quota" else None)

    # -- helpers shared by the baselines --------------------------------------------------------
    def cheapest(
        self, job: SimJob, view: View, *, spot: bool = False, exclude: str | None = None
    ) -> Quote | None:
        """The cheapest cloud quote this strategy's residency filter allows, or None."""
        _, sites = view.allowed(job, self.residency)
        best: Quote | None = None
        for q in view.cloud.quotes(job.gpus, spot):
            if q.site in sites and q.site != exclude:
                best = q
                break
        return best

    def burst(self, job: SimJob, view: View, *, exclude: str | None = None) -> Decision:
        """Send the job to the cheapest allowed cloud site on demand; if no cloud site is
        allowed, wait on-prem for as long as it takes."""
        q = self.cheapest(job, view, exclude=exclude)
        if q is None:
            return OnPrem()
        return Cloud(q.site)

    def describe(self) -> str:
        """One line for tables: the name and the parameters that matter."""
        return self.name
