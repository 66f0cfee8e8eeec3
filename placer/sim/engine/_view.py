"""What a strategy sees of a run: the simulator's :class:`placer.online.ClusterView`.

Strategies see :class:`placer.online.JobRequest` values and the answers below, never the
simulator's own records. :class:`View` reads the state :class:`~._simulator.Simulator` keeps
(it is the simulator's base class); nothing here changes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from placer.errors import SimulationError
from placer.online import Allowed, DatasetInfo, JobRequest, Queued, Residency
from placer.optimizer import Link
from placer.pricing import Quote
from placer.sim.cloud import CloudModel
from placer.sim.engine._data import Data
from placer.sim.engine._queues import OnPremQueue, Pool, Running
from placer.sim.engine._results import HOURS_PER_MONTH, OnPremConfig
from placer.sim.jobs import SimJob, Workload
from placer.sim.kernel import EventQueue
from placer.sim.residency import Eligibility


class View:
    """The :class:`~placer.online.ClusterView` half of a :class:`~._simulator.Simulator`."""

    # the run's state, kept by the simulator
    workload: Workload
    jobs: tuple[SimJob, ...]
    requests: tuple[JobRequest, ...]
    onprem: OnPremConfig
    eligibility: Eligibility
    events: EventQueue
    pool: Pool
    queue: OnPremQueue
    running: Running
    done_work: list[float]
    overhead: list[float]
    data: Data
    storage_usd_per_gb_month: float
    _cloud: CloudModel
    _site_loc: dict[str, str]
    _asking_gpus: int = 0
    """GPUs of the job the strategy is deciding about (0: none), for :meth:`spot_available`."""

    @property
    def now(self) -> float:
        return self.events.now

    @property
    def onprem_site(self) -> str:
        return self.onprem.site

    @property
    def onprem_gpus(self) -> int:
        return self.onprem.gpus

    @property
    def onprem_location(self) -> str:
        return self.onprem.location

    @property
    def free_gpus(self) -> int:
        return self.pool.total_free

    def fits_now(self, job: JobRequest) -> bool:
        return job.gpus <= self.onprem.gpus and self.pool.fits(job.gpus)

    def queue_length(self) -> int:
        return self.queue.count

    def queued_gpu_hours(self) -> float:
        return self.queue.gpu_h

    def running_onprem(self) -> Iterator[tuple[float, int]]:
        return self.running.by_end()

    def queued(self) -> Iterator[JobRequest]:
        for _, _, job in self.queue.entries():
            yield job

    def queued_by_gpus(self) -> Mapping[int, Sequence[Queued]]:
        """The queue's own lists (no copy): the strategy only reads them."""
        return self.queue.buckets

    def remaining_h(self, job: JobRequest) -> float:
        j = job.id  # _remaining inlined: the wait prediction asks for every job it replays
        return max(self.jobs[j].estimate_h - self.done_work[j], 0.0) + self.overhead[j]

    def _remaining(self, j: int) -> float:
        return max(self.jobs[j].estimate_h - self.done_work[j], 0.0) + self.overhead[j]

    @property
    def cloud_sites(self) -> tuple[str, ...]:
        return self._cloud.sites

    def quote(self, site: str, gpus: int, spot: bool) -> Quote | None:
        return self._cloud.quote(site, gpus, spot)

    def quotes(self, gpus: int, spot: bool) -> tuple[Quote, ...]:
        return self._cloud.quotes(gpus, spot)

    def provisioning_h(self, site: str, spot: bool) -> float:
        """The mean of the site's provisioning distribution (what a strategy plans with)."""
        return self._cloud.provisioning(site, spot).mean_h

    def spot_available(self, site: str, nodes: int = 1) -> bool:
        """Whether the site's spot trace is up now for ``nodes`` nodes (no trace: always).
        Their GPUs per node are those of the site's spot quote for the job being decided (what
        strategies ask about), so the answer is the trace a launch of it would meet."""
        q = self._cloud.quote(site, self._asking_gpus, True) if self._asking_gpus else None
        gpn = q.gpus_per_node if q is not None and q.nodes == nodes else 1
        trace = self._cloud.spot_trace(site, nodes, gpn)
        return trace is None or trace.up_at(self.events.now)

    def location(self, site: str) -> str:
        loc = self._site_loc.get(site)
        if loc is None:
            raise SimulationError(f"unknown site {site!r}; sites: {', '.join(self._site_loc)}")
        return loc

    def link(self, from_location: str, to_location: str) -> Link:
        return self._cloud.link_of(from_location, to_location)

    def allowed(self, job: JobRequest, mode: Residency) -> Allowed:
        return self.eligibility.allowed(job.id, mode)

    @property
    def datasets(self) -> Mapping[str, DatasetInfo]:
        return self.workload.datasets

    @property
    def storage_usd_per_gb_h(self) -> float:
        return self.storage_usd_per_gb_month / HOURS_PER_MONTH

    def read_cost(self, name: str, location: str) -> tuple[float, float, str]:
        """``(USD, hours, source)`` to read dataset ``name`` at ``location`` now, from the
        cheapest ready copy; a copy at ``location`` itself is read for free, once it is there
        if it is still on its way."""
        return self.data.read_cost(name, location)

    def transfer(self, job: JobRequest, location: str) -> tuple[float, float]:
        return self.data.transfer(job.id, location)

    def may_store(self, name: str, location: str) -> bool:
        """Whether placer's policies let a copy of dataset ``name`` be kept at ``location``."""
        onprem_ok, sites = self.eligibility.stores(name)
        if location == self.onprem.location:
            return onprem_ok
        return any(self._site_loc[s] == location for s in sites)

    def replica_ready(self, name: str, location: str) -> float | None:
        """When the copy of ``name`` at ``location`` is (or will be) ready; None if there is
        no copy there and none on its way."""
        return self.data.replica_ready(name, location)
