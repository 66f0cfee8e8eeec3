"""The online-scheduling seam: as each job becomes ready, run it on-prem, let it wait, or burst.

``placer plan`` places a whole pipeline ahead of time. An *online* scheduler decides job by job
while a cluster runs: a job is ready (submitted, its dependencies done), and the scheduler
queues it on the on-prem pool (maybe with a waiting budget) or sends it to a cloud site now.
This module is that interface, in placer's own types, so that the same strategy can run
against the simulator (:mod:`placer.sim`, which implements :class:`ClusterView` from its state)
and against live clusters (a later issue implements the view from them):

* :class:`JobRequest` is what a strategy knows of a job (GPUs, run-time estimate, spot
  tolerance, deadline, pipeline membership, datasets read), never the job's true run time;
* :class:`ClusterView` is what it may see of the world: the time, the on-prem pool (capacity,
  free GPUs, the queue by GPU count, running jobs' estimated ends, earliest first), cloud
  quotes (plain
  :class:`placer.pricing.Quote` values), where each job may run (:func:`placer.policy.evaluate`,
  with lineage), what moving its inputs costs, and where copies of datasets are. The view is
  read-only;
* :data:`Decision` is the answer: :class:`OnPrem` (run now if it fits, else wait, up to a
  budget) or :class:`Cloud` (burst to a site now). A decision may carry :class:`Replicate`
  requests, copies of datasets to start before the decision is carried out: that is how a
  strategy moves data, not by calling the view;
* :class:`Strategy` answers three questions: :meth:`~Strategy.on_ready`,
  :meth:`~Strategy.on_timeout` (a queued job used up its waiting budget) and
  :meth:`~Strategy.on_cloud_stopped` (a cloud run ended early: spot capacity was not there, the
  spot instance was preempted, the site's quota was full, or the run hit the ``limit_h`` the
  strategy set itself).

Residency: ``Strategy.residency`` says which filter a strategy applies to its own choices.
``"none"`` places as if no data were restricted (what an off-the-shelf burst scheduler does);
``"naive"`` masks the sites that the tags of the datasets a job reads *directly* forbid (a
region filter bolted onto a baseline: it misses data derived from restricted data);
``"policy"`` uses placer's policy evaluation with lineage. What the on-prem queue does with
queued jobs (first-in-first-out, out-of-order, backfill) is the strategy's ``queue``, and how
it packs nodes its ``fit``, because published policies differ exactly there.

Nothing here imports the simulator, the executor or the command line (a test checks it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from placer.optimizer import Link
from placer.pricing import Quote

__all__ = [
    "Allowed",
    "Cloud",
    "ClusterView",
    "DatasetInfo",
    "Decision",
    "JobRequest",
    "OnPrem",
    "Outlook",
    "QueueMode",
    "Queued",
    "Replicate",
    "Residency",
    "StopReason",
    "Strategy",
    "spot_net_holds",
]

QueueMode = Literal["fifo", "ooo", "backfill"]
Residency = Literal["none", "naive", "policy"]
StopReason = Literal["unavailable", "preempted", "quota", "limit"]
Allowed = tuple[bool, tuple[str, ...]]
"""``(on-prem allowed, allowed cloud sites)``."""


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What a strategy knows of one job when it decides.

    ``id`` is dense within a workload (0..n-1) and a job's dependencies have lower ids.
    """

    id: int
    name: str
    gpus: int
    estimate_h: float
    """The run time the job is expected to take (an estimate; the truth is not shown)."""
    spot_ok: bool = True
    """Whether the job checkpoints and so may run on spot capacity."""
    deadline_h: float | None = None
    """Absolute time the job should end by, or ``None``."""
    submitted_h: float = 0.0
    """Submission time (a pipeline job's is its pipeline's)."""
    pipeline: int | None = None
    """The pipeline (DAG) the job belongs to; None for an independent job."""
    deps: tuple[int, ...] = ()
    """Jobs whose outputs this job reads; it is ready only after they end."""
    reads: tuple[str, ...] = ()
    """Names of the stored datasets it reads (keys of :attr:`ClusterView.datasets`)."""
    output_gb: float = 0.0
    """Size of what it writes, read by the jobs that depend on it."""


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """Stored data some jobs read: where its bytes live, its size and the tags policies match."""

    name: str
    location: str
    """Location key, e.g. ``onprem:fra-dc1`` or ``aws:eu-central-1``."""
    gb: float
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Replicate:
    """A request to keep a copy of dataset ``dataset`` at ``location`` (from its cheapest ready
    copy: egress once, storage from then on). Asking for a copy that is there, or on its way,
    does nothing. Residency is the strategy's business (:meth:`ClusterView.may_store`)."""

    dataset: str
    location: str


@dataclass(frozen=True, slots=True)
class OnPrem:
    """Queue the job on-prem: it starts as soon as the pool has room.

    Attributes:
        wait_h: Waiting budget: if the job has not started this many hours from now,
            :meth:`Strategy.on_timeout` is asked again. ``None`` waits as long as it takes.
        priority: Queue order, lower first; equal priorities keep the order of queueing.
        copies: Copies of datasets to start before the job is queued.
    """

    wait_h: float | None = None
    priority: float = 0.0
    copies: tuple[Replicate, ...] = ()


@dataclass(frozen=True, slots=True)
class Cloud:
    """Burst: run the job at a cloud site now.

    Attributes:
        site: A cloud site of the view (:attr:`ClusterView.cloud_sites`).
        spot: Use the site's spot offer (preemptible, cheaper).
        limit_h: Stop the run this many hours after the decision if it has not ended, then ask
            :meth:`Strategy.on_cloud_stopped` (reason ``"limit"``); work done is lost.
        copies: Copies of datasets to start before the job is launched.
    """

    site: str
    spot: bool = False
    limit_h: float | None = None
    copies: tuple[Replicate, ...] = ()


Decision = OnPrem | Cloud


@dataclass(frozen=True, slots=True)
class Outlook:
    """What a strategy expects for one job, for the record of a decision (never for deciding):
    a live decision's reason carries it (``placer status``, the decision log).

    Attributes:
        wait_h: Hours the strategy predicts the job would wait for the on-prem pool if queued
            now (``math.inf``: no release of enough GPUs is known); None: it predicts none.
        allowance_h: The total wait the strategy lets the job have before it would rather pay
            for the cloud; None: it sets none (or has not priced the job yet).
    """

    wait_h: float | None = None
    allowance_h: float | None = None

Queued = tuple[float, int, JobRequest]
"""A job waiting in the on-prem queue as ``(priority, seq, job)``: the queue's order is
``(priority, seq)``, lower first, and ``seq`` grows in the order jobs were queued (so equal
priorities keep it). ``seq`` is unique, so entries compare without comparing jobs."""


def spot_net_holds(*, now_h: float, deadline_h: float | None, run_h: float,
                   spot_start_h: float, on_demand_start_h: float) -> bool:
    """The spot safety net: whether a job may take a spot offer now and still meet its
    deadline if the spot run is lost at the worst moment, just before it ends, with nothing
    kept (no checkpoint assumed), and the whole run is done again on demand:
    ``now + spot_start + run + on_demand_start + run <= deadline``. ``*_start_h``: hours from
    the request to a ready worker (provisioning). A job with no deadline cannot be late: the
    net holds (what a run without a deadline means is the caller's to define and document).

    >>> spot_net_holds(now_h=0, deadline_h=10, run_h=4, spot_start_h=0.5, on_demand_start_h=0.5)
    True
    >>> spot_net_holds(now_h=1, deadline_h=10, run_h=4, spot_start_h=0.5, on_demand_start_h=0.6)
    False
    """
    if deadline_h is None:
        return True
    return now_h + spot_start_h + run_h + on_demand_start_h + run_h <= deadline_h


class ClusterView(Protocol):
    """What a strategy may see of the world when it decides. Read-only."""

    # -- time and the on-prem pool ---------------------------------------------------------------
    @property
    def now(self) -> float:
        """Hours since the start (of the replay, or of the scheduler's epoch)."""
        ...

    @property
    def onprem_site(self) -> str:
        """Name of the on-prem site."""
        ...

    @property
    def onprem_location(self) -> str:
        """Location key of the on-prem pool (where its inputs must be brought)."""
        ...

    @property
    def onprem_gpus(self) -> int:
        """GPUs of the on-prem pool (0 when there is none)."""
        ...

    @property
    def free_gpus(self) -> int: ...

    def fits_now(self, job: JobRequest) -> bool:
        """Whether the pool could start ``job`` this instant (node packing included)."""
        ...

    def queue_length(self) -> int: ...

    def queued_gpu_hours(self) -> float:
        """Estimated GPU-hours of work waiting in the on-prem queue."""
        ...

    def running_onprem(self) -> Iterator[tuple[float, int]]:
        """``(estimated end, GPUs)`` of every job running on-prem, earliest end first (ties
        by GPUs), lazily: a reader that needs only the first few ends stops there."""
        ...

    def queued(self) -> Iterator[JobRequest]:
        """Jobs waiting in the on-prem queue, in queue order."""
        ...

    def queued_by_gpus(self) -> Mapping[int, Sequence[Queued]]:
        """The on-prem queue split by GPU count: each count with jobs waiting maps to its
        jobs as :data:`Queued` entries, in queue order (counts with none may be absent).

        Sequences rather than one iterator so that a strategy can bisect a count's jobs by
        priority and read the first few of each count without walking the queue (placer's
        wait prediction does). Read-only, and valid until the world changes.
        """
        ...

    def remaining_h(self, job: JobRequest) -> float:
        """Estimated hours of work left (the estimate less progress kept across preemptions,
        plus any restart overhead owed)."""
        ...

    # -- the cloud, priced by placer.pricing -----------------------------------------------------
    @property
    def cloud_sites(self) -> tuple[str, ...]: ...

    def quote(self, site: str, gpus: int, spot: bool) -> Quote | None:
        """The cheapest way to run ``gpus`` GPUs at ``site``
        (:func:`placer.pricing.cheapest_quote`), or None (no offer there, or no spot price)."""
        ...

    def quotes(self, gpus: int, spot: bool) -> tuple[Quote, ...]:
        """A quote from every cloud site that has one, cheapest first (ties by site name)."""
        ...

    def provisioning_h(self, site: str, spot: bool) -> float:
        """Expected hours from a node request at ``site`` to a worker ready to run."""
        ...

    def spot_available(self, site: str, nodes: int = 1) -> bool:
        """Whether ``site`` has spot capacity for ``nodes`` nodes now."""
        ...

    def location(self, site: str) -> str:
        """The location key of a site (on-prem or cloud)."""
        ...

    def link(self, from_location: str, to_location: str) -> Link:
        """Price and speed of moving data between two locations (:func:`placer.pricing.link`)."""
        ...

    # -- policies --------------------------------------------------------------------------------
    def allowed(self, job: JobRequest, mode: Residency) -> Allowed:
        """``(on-prem allowed, allowed cloud sites)`` under a residency filter."""
        ...

    # -- data ------------------------------------------------------------------------------------
    @property
    def datasets(self) -> Mapping[str, DatasetInfo]:
        """The stored datasets by name (where they live, their size and tags)."""
        ...

    @property
    def storage_usd_per_gb_h(self) -> float:
        """What keeping a copy costs per GB and hour."""
        ...

    def transfer(self, job: JobRequest, location: str) -> tuple[float, float]:
        """``(USD, hours)`` to bring all of the job's inputs (datasets from their cheapest ready
        copies, its dependencies' outputs from where they ran) to ``location``."""
        ...

    def read_cost(self, name: str, location: str) -> tuple[float, float, str]:
        """``(USD, hours, source)`` to read dataset ``name`` at ``location`` now, from its
        cheapest ready copy."""
        ...

    def may_store(self, name: str, location: str) -> bool:
        """Whether the policies (where a job reading only it may run) let a copy of dataset
        ``name`` be kept at ``location``."""
        ...

    def replica_ready(self, name: str, location: str) -> float | None:
        """When a copy of ``name`` at ``location`` is or will be ready; None if none is."""
        ...


class Strategy:
    """Base class: a name, a queue discipline, node packing, a residency filter and three
    decisions.

    Subclasses override :meth:`on_ready` and, where they differ from "burst to the cheapest
    allowed cloud site on demand", :meth:`on_timeout` and :meth:`on_cloud_stopped`.
    """

    name: str = "strategy"
    queue: QueueMode = "ooo"
    residency: Residency = "none"
    fit: Literal["first", "best"] = "first"

    def start(self, view: ClusterView, jobs: tuple[JobRequest, ...]) -> None:
        """Called once before the first decision; ``jobs`` is the whole workload known in
        advance, for strategies that normalise a waiting budget over it (as Starburst's budget
        framework does; a live scheduler passes its history)."""

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        raise NotImplementedError

    def on_timeout(self, job: JobRequest, view: ClusterView) -> Decision:
        return self.burst(job, view)

    def on_cloud_stopped(
        self, job: JobRequest, view: ClusterView, site: str, spot: bool, reason: StopReason
    ) -> Decision:
        if reason == "limit":
            return self.burst(job, view)
        # Spot gone, preempted or quota full: fall back to on-demand elsewhere if possible.
        return self.burst(job, view, exclude=site if reason == "quota" else None)

    # -- helpers shared by the baselines --------------------------------------------------------
    def cheapest(
        self, job: JobRequest, view: ClusterView, *, spot: bool = False, exclude: str | None = None
    ) -> Quote | None:
        """The cheapest cloud quote this strategy's residency filter allows, or None."""
        _, sites = view.allowed(job, self.residency)
        for q in view.quotes(job.gpus, spot):
            if q.site in sites and q.site != exclude:
                return q
        return None

    def burst(
        self, job: JobRequest, view: ClusterView, *, exclude: str | None = None
    ) -> Decision:
        """Send the job to the cheapest allowed cloud site on demand; if no cloud site is
        allowed, wait on-prem for as long as it takes."""
        q = self.cheapest(job, view, exclude=exclude)
        if q is None:
            return OnPrem()
        return Cloud(q.site)

    def outlook(self, job: JobRequest, view: ClusterView) -> Outlook:
        """What this strategy expects for ``job`` now (its predicted wait on-prem, its
        allowance), asked right after a decision so that the decision's record can say why.
        Must not change what the strategy decides next. Default: no prediction."""
        return Outlook()

    def resume_waiting(self, job: JobRequest, ready_h: float, priority: float) -> None:
        """``job`` has been waiting in the on-prem queue since ``ready_h`` at ``priority``,
        put there by an earlier instance of this strategy (a controller that restarted): take
        it as if this instance had queued it, so its wait so far counts. Called once, after
        :meth:`start`, before any decision about the job. Default: nothing to remember."""

    def describe(self) -> str:
        """One line for tables: the name and the parameters that matter."""
        return self.name
