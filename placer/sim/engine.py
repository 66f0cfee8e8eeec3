"""The simulator: replays a workload against an on-prem pool and a simulated cloud.

One :func:`simulate` call is one run of one strategy. The run is deterministic: the event
order is total (:mod:`placer.sim.kernel`) and every random draw (provisioning delays) comes
from one generator seeded by ``seed`` and consumed in event order.

What is modelled, and how (the cost model of ``docs/simulator.md``):

* on-prem: ``nodes`` nodes of ``gpus_per_node`` GPUs. A job of up to one node's GPUs runs on
  one node (first-fit: the lowest-numbered node with room; best-fit: the node left fullest);
  a larger job takes whole free nodes. The queue discipline is the strategy's: FIFO (the head
  blocks the rest), out-of-order (any queued job that fits starts, in queue order) or EASY
  backfill (the head gets a reservation from the running jobs' estimated ends; later jobs
  start only if they fit now and do not delay it).
* cloud: a launch pays from the request until the run ends or stops: provisioning delay
  (sampled per launch), then the input transfer (overlapping provisioning), then the run.
  Spot capacity follows the site's availability trace: a spot launch when the trace says
  "unavailable" fails at once; a running spot job is preempted when the trace turns
  unavailable, keeps its progress (it checkpoints) and pays ``restart_overhead_h`` on its next
  start. Quotas cap the GPUs a site runs at once.
* data: a job reads its datasets from the cheapest place holding a ready copy (where they live,
  or a replica) and its dependencies' outputs from where those ran; the source pays egress
  (USD/GB) and the transfer takes GB x hours/GB before the run. A strategy may replicate a
  dataset to a location (:meth:`Simulator.replicate`): the copy pays egress once, is ready after
  its transfer, and is stored until the end of the run at ``storage_usd_per_gb_month``. With
  ``cache_inputs`` every first read at a location leaves such a copy, for every strategy.
"""

from __future__ import annotations

import heapq
import math
import time as _time
from bisect import insort
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from placer.errors import SimulationError
from placer.sim.cloud import CloudModel
from placer.sim.jobs import SimDataset, SimJob, Workload
from placer.sim.kernel import EventQueue
from placer.sim.residency import Eligibility
from placer.sim.strategy import Cloud, Decision, OnPrem, Residency, StopReason, Strategy

# Event kinds; the priority of an event is its kind, so at one instant resources are freed
# before new work is admitted, and timeouts are looked at last (after the queue had its chance).
_END_ONPREM = 0
_END_CLOUD = 1
_STOP_CLOUD = 2
_READY = 3
_TIMEOUT = 4

# Job states.
_WAITING_DEPS = 0
_QUEUED = 1
_ONPREM = 2
_CLOUD = 3
_DONE = 4
_PENDING = 5  # ready, being decided

_MAX_DECISIONS_PER_JOB = 10_000

_HOURS_PER_MONTH = 730.0

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
    """On-prem: when the GPUs were taken. Cloud: when the nodes were requested."""
    start_h: float
    """When the job's own work began (after provisioning and input transfer)."""
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
        rate = self.storage_usd_per_gb_month / _HOURS_PER_MONTH
        return sum(r.gb * rate * max(end - r.ready_h, 0.0) for r in self.replicas)


class _Pool:
    """Free GPUs per node, with counts per free level so that "does it fit" is O(GPUs/node)."""

    __slots__ = ("count", "free", "gpn", "mode", "total_free")

    def __init__(self, nodes: int, gpn: int, mode: str) -> None:
        self.gpn = gpn
        self.free = [gpn] * nodes
        self.count = [0] * (gpn + 1)
        self.count[gpn] = nodes
        self.total_free = nodes * gpn
        self.mode = mode

    def nodes_for(self, gpus: int) -> int:
        return -(-gpus // self.gpn)

    def fits(self, gpus: int) -> bool:
        if gpus > self.gpn:
            return self.count[self.gpn] >= self.nodes_for(gpus)
        count = self.count
        return any(count[k] for k in range(gpus, self.gpn + 1))

    def _take(self, node: int, gpus: int) -> None:
        f = self.free[node]
        self.count[f] -= 1
        self.count[f - gpus] += 1
        self.free[node] = f - gpus
        self.total_free -= gpus

    def alloc(self, gpus: int) -> list[tuple[int, int]]:
        free = self.free
        if gpus > self.gpn:
            need = self.nodes_for(gpus)
            nodes = [i for i, f in enumerate(free) if f == self.gpn][:need]
            out = [(i, self.gpn) for i in nodes]
        elif self.mode == "best":
            best = min((f, i) for i, f in enumerate(free) if f >= gpus)[1]
            out = [(best, gpus)]
        else:
            out = [(next(i for i, f in enumerate(free) if f >= gpus), gpus)]
        for node, g in out:
            self._take(node, g)
        return out

    def release(self, alloc: list[tuple[int, int]]) -> None:
        for node, g in alloc:
            f = self.free[node]
            self.count[f] -= 1
            self.count[f + g] += 1
            self.free[node] = f + g
            self.total_free += g


class Simulator:
    """One run. Use :func:`simulate`; the class is the :class:`~placer.sim.strategy.View`."""

    def __init__(
        self,
        workload: Workload,
        strategy: Strategy,
        *,
        onprem: OnPremConfig,
        cloud: CloudModel,
        eligibility: Eligibility,
        seed: int = 0,
        restart_overhead_h: float = 0.2,
        cache_inputs: bool = False,
        storage_usd_per_gb_month: float = STORAGE_USD_PER_GB_MONTH,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.workload = workload
        self._progress = progress
        self._finished = 0
        self.jobs = workload.jobs
        self.strategy = strategy
        self.onprem = onprem
        self._cloud = cloud
        self.eligibility = eligibility
        self.seed = seed
        self.restart_overhead_h = restart_overhead_h
        self.cache_inputs = cache_inputs
        self.storage_usd_per_gb_month = storage_usd_per_gb_month
        # dataset -> location -> when its copy there is ready (where it lives: ready from 0)
        self._copies: dict[str, dict[str, float]] = {
            name: {ds.location: -math.inf} for name, ds in workload.datasets.items()
        }
        self.replicas: list[Replica] = []
        self.rng = np.random.default_rng(seed)
        self.events = EventQueue()
        self.pool = _Pool(onprem.nodes, onprem.gpus_per_node, strategy.fit)
        n = len(self.jobs)
        self.state = [_WAITING_DEPS] * n
        self.ready_h = [math.nan] * n
        self.deps_left = [len(j.deps) for j in self.jobs]
        self.children: list[list[int]] = [[] for _ in range(n)]
        for j in self.jobs:
            for d in j.deps:
                self.children[d].append(j.id)
        self.done_work = [0.0] * n  # hours of the job's work kept from earlier runs
        self.overhead = [0.0] * n  # restart overhead owed on the next run
        self.location = [""] * n  # where a finished job's output lives
        self.attempts: list[list[Attempt]] = [[] for _ in range(n)]
        self.refused: list[list[str]] = [[] for _ in range(n)]
        self.decisions = [0] * n
        self.decision_s = [0.0] * n
        self.timeout_token = [-1] * n
        # on-prem queue: buckets by GPU count, each a heap of (priority, seq, job)
        self.buckets: dict[int, list[tuple[float, int, int]]] = {}
        self.queue_seq = [-1] * n
        self.queue_key: list[tuple[float, int]] = [(0.0, 0)] * n
        self.order: list[tuple[float, int, int]] = []  # sorted, for backfill (lazy deletion)
        self.queued_count = 0
        self.queued_gpu_h = 0.0
        self._qseq = 0
        # running
        self.alloc: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        self.running: dict[int, float] = {}  # on-prem job -> estimated end
        # cloud job -> (decision, launch, start, GPUs billed, USD/h, egress USD, stop reason)
        self.cloud_run: dict[int, tuple[Cloud, float, float, int, float, float, str]] = {}
        self.cloud_used: dict[str, int] = {}
        self.busy: list[tuple[float, int]] = [(0.0, 0)]
        self._site_loc = {onprem.site: onprem.location}
        for s in cloud.sites:
            self._site_loc[s] = cloud.location(s)

    # -- View ------------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.events.now

    @property
    def cloud(self) -> CloudModel:
        return self._cloud

    @property
    def onprem_gpus(self) -> int:
        return self.onprem.gpus

    @property
    def onprem_location(self) -> str:
        return self.onprem.location

    @property
    def datasets(self) -> Mapping[str, SimDataset]:
        return self.workload.datasets

    @property
    def free_gpus(self) -> int:
        return self.pool.total_free

    @property
    def storage_usd_per_gb_h(self) -> float:
        return self.storage_usd_per_gb_month / _HOURS_PER_MONTH

    def fits_now(self, job: SimJob) -> bool:
        return job.gpus <= self.onprem.gpus and self.pool.fits(job.gpus)

    def queue_length(self) -> int:
        return self.queued_count

    def queued_gpu_hours(self) -> float:
        return self.queued_gpu_h

    def running_onprem(self) -> Iterator[tuple[float, int]]:
        jobs = self.jobs
        for j, end in self.running.items():
            yield end, jobs[j].gpus

    def queued(self) -> Iterator[SimJob]:
        live = [e for b in self.buckets.values() for e in b if self._live(e)]
        for _, _, j in sorted(live):
            yield self.jobs[j]

    def remaining_h(self, job: SimJob) -> float:
        return max(job.estimate_h - self.done_work[job.id], 0.0) + self.overhead[job.id]

    def allowed(self, job: SimJob, mode: Residency) -> tuple[bool, tuple[str, ...]]:
        return self.eligibility.allowed(job.id, mode)

    def read_cost(self, name: str, location: str) -> tuple[float, float, str]:
        """``(USD, hours, source)`` to read dataset ``name`` at ``location`` now, from the
        cheapest ready copy; a copy at ``location`` itself is read for free, once it is there
        if it is still on its way."""
        copies = self._copies[name]
        now = self.events.now
        here = copies.get(location)
        if here is not None:
            # ready, or on its way: wait for it rather than pay for a second copy
            return 0.0, max(here - now, 0.0), location
        gb = self.workload.datasets[name].gb
        best = (math.inf, math.inf, "")
        for src, ready in copies.items():
            if ready <= now and src != location:
                rate, h_per_gb = self._cloud.link(src, location)
                cand = (gb * rate, gb * h_per_gb, src)
                if cand[:2] < best[:2]:
                    best = cand
        return best

    def transfer(self, job: SimJob, location: str) -> tuple[float, float]:
        usd = hours = 0.0
        link = self._cloud.link
        for name in job.reads:
            u, h, _ = self.read_cost(name, location)
            usd += u
            hours = max(hours, h)
        for d in job.deps:
            gb = self.jobs[d].output_gb
            src = self.location[d]
            if src != location and gb > 0:
                rate, h_per_gb = link(src, location)
                usd += gb * rate
                hours = max(hours, gb * h_per_gb)
        return usd, hours

    def may_store(self, name: str, location: str) -> bool:
        """Whether placer's policies let a copy of dataset ``name`` be kept at ``location``."""
        onprem_ok, sites = self.eligibility.stores(name)
        if location == self.onprem.location:
            return onprem_ok
        return any(self._site_loc[s] == location for s in sites)

    def replica_ready(self, name: str, location: str) -> float | None:
        """When the copy of ``name`` at ``location`` is (or will be) ready; None if there is
        no copy there and none on its way."""
        t = self._copies[name].get(location)
        return None if t is None else max(t, 0.0)

    def replicate(self, name: str, location: str) -> bool:
        """Start copying dataset ``name`` to ``location`` from its cheapest ready copy; egress
        is paid now, the copy is ready when the transfer ends. False (and nothing done) when a
        copy is there or on its way. Residency is the strategy's business: the independent
        checker counts a copy where the data may not be as a violation."""
        if name not in self._copies:
            raise SimulationError(f"no dataset {name!r} to replicate")
        if location in self._copies[name]:
            return False
        usd, hours, src = self.read_cost(name, location)
        self._add_copy(name, location, src, hours, usd, "strategy")
        return True

    def _add_copy(
        self, name: str, location: str, src: str, hours: float, usd: float, reason: str
    ) -> None:
        now = self.events.now
        self._copies[name][location] = now + hours
        gb = self.workload.datasets[name].gb
        self.replicas.append(Replica(name, location, src, gb, now, now + hours, usd, reason))

    def _keep(self, job: SimJob, location: str) -> None:
        """With ``cache_inputs``, a dataset read at a location stays there for later jobs
        (ready when the read's transfer ends; the read paid the egress)."""
        if self.cache_inputs:
            for name in job.reads:
                if location not in self._copies[name]:
                    _, hours, src = self.read_cost(name, location)
                    self._add_copy(name, location, src, hours, 0.0, "cache")

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> SimResult:
        t0 = _time.perf_counter()
        self.strategy.start(self, self.jobs)
        for job in self.jobs:
            if not job.deps:
                self.events.push(job.arrival_h, _READY, _READY, job.id)
        events = self.events
        while True:
            ev = events.pop()
            if ev is None:
                break
            now, kind, j = ev
            if kind == _END_ONPREM:
                self._end_onprem(j, now)
            elif kind == _END_CLOUD:
                self._end_cloud(j, now)
            elif kind == _STOP_CLOUD:
                self._stop_cloud(j, now)
            elif kind == _READY:
                self._ready(j, now)
            elif kind == _TIMEOUT:
                self._timeout(j, now)
            self._schedule(now)
        unfinished = [j.name for j in self.jobs if self.state[j.id] != _DONE]
        if unfinished:
            raise SimulationError(
                f"{len(unfinished)} job(s) never finished (first: {unfinished[0]!r}); the "
                f"strategy {self.strategy.name!r} left them waiting with nothing to run them "
                "(e.g. a job larger than the on-prem pool queued on-prem)"
            )
        records = tuple(
            JobRecord(
                job=job,
                ready_h=self.ready_h[job.id],
                attempts=tuple(self.attempts[job.id]),
                decisions=self.decisions[job.id],
                decision_s=self.decision_s[job.id],
                refused=tuple(self.refused[job.id]),
            )
            for job in self.jobs
        )
        return SimResult(
            strategy=self.strategy.describe(),
            workload=self.workload,
            onprem=self.onprem,
            records=records,
            onprem_busy=tuple(self.busy),
            site_locations=dict(self._site_loc),
            wall_s=_time.perf_counter() - t0,
            seed=self.seed,
            replicas=tuple(self.replicas),
            storage_usd_per_gb_month=self.storage_usd_per_gb_month,
        )

    # -- decisions -------------------------------------------------------------------------------
    def _decide(self, j: int, ask: str, *args: object) -> Decision:
        self.decisions[j] += 1
        if self.decisions[j] > _MAX_DECISIONS_PER_JOB:
            raise SimulationError(
                f"strategy {self.strategy.name!r} decided about job {self.jobs[j].name!r} "
                f"{_MAX_DECISIONS_PER_JOB} times without running it (a loop, e.g. retrying an "
                "unavailable spot site at the same instant)"
            )
        job = self.jobs[j]
        t = _time.perf_counter()
        if ask == "ready":
            d = self.strategy.on_ready(job, self)
        elif ask == "timeout":
            d = self.strategy.on_timeout(job, self)
        else:
            site, spot, reason = args
            d = self.strategy.on_cloud_stopped(
                job,
                self,
                str(site),
                bool(spot),
                reason,  # type: ignore[arg-type]
            )
        self.decision_s[j] += _time.perf_counter() - t
        return d

    def _apply(self, j: int, d: Decision, now: float) -> None:
        # A refused launch asks the strategy again at the same instant; a loop, not recursion,
        # so that a strategy that keeps insisting meets the decision limit, not Python's stack.
        while True:
            if isinstance(d, OnPrem):
                self._enqueue(j, d, now)
                return
            if not isinstance(d, Cloud):
                raise SimulationError(
                    f"strategy {self.strategy.name!r} returned {d!r} for job "
                    f"{self.jobs[j].name!r}; expected OnPrem(...) or Cloud(...)"
                )
            refused = self._launch(j, d, now)
            if refused is None:
                return
            self.refused[j].append(f"{d.site}{'/spot' if d.spot else ''}:{refused}")
            self.state[j] = _PENDING
            d = self._decide(j, "stopped", d.site, d.spot, refused)

    def _ready(self, j: int, now: float) -> None:
        self.ready_h[j] = now
        self.state[j] = _PENDING
        self._apply(j, self._decide(j, "ready"), now)

    def _timeout(self, j: int, now: float) -> None:
        self.timeout_token[j] = -1
        if self.state[j] != _QUEUED:
            return
        self._dequeue(j)
        self.state[j] = _PENDING
        self._apply(j, self._decide(j, "timeout"), now)

    # -- on-prem queue ---------------------------------------------------------------------------
    def _live(self, entry: tuple[float, int, int]) -> bool:
        j = entry[2]
        return self.state[j] == _QUEUED and self.queue_seq[j] == entry[1]

    def _enqueue(self, j: int, d: OnPrem, now: float) -> None:
        job = self.jobs[j]
        if job.gpus > self.onprem.gpus:
            raise SimulationError(
                f"strategy {self.strategy.name!r} queued job {job.name!r} on-prem, but it "
                f"needs {job.gpus} GPUs and the on-prem pool has {self.onprem.gpus}"
            )
        seq = self._qseq
        self._qseq += 1
        entry = (d.priority, seq, j)
        self.state[j] = _QUEUED
        self.queue_seq[j] = seq
        heapq.heappush(self.buckets.setdefault(job.gpus, []), entry)
        if self.strategy.queue == "backfill":
            insort(self.order, entry)
        self.queued_count += 1
        self.queued_gpu_h += job.gpus * self.remaining_h(job)
        if d.wait_h is not None:
            self.timeout_token[j] = self.events.push(
                now + max(d.wait_h, 0.0), _TIMEOUT, _TIMEOUT, j
            )

    def _dequeue(self, j: int) -> None:
        """Mark a queued job as no longer queued (its heap entries die lazily)."""
        job = self.jobs[j]
        self.queued_count -= 1
        self.queued_gpu_h -= job.gpus * self.remaining_h(job)
        if self.queued_count == 0:
            self.queued_gpu_h = 0.0
        self.queue_seq[j] = -1

    def _head(self, bucket: list[tuple[float, int, int]]) -> tuple[float, int, int] | None:
        while bucket and not self._live(bucket[0]):
            heapq.heappop(bucket)
        return bucket[0] if bucket else None

    def _schedule(self, now: float) -> None:
        if not self.queued_count or not self.pool.total_free:
            return
        mode = self.strategy.queue
        pool = self.pool
        while self.queued_count and pool.total_free:
            heads = [h for b in self.buckets.values() if (h := self._head(b)) is not None]
            if mode == "ooo":
                fitting = [h for h in heads if pool.fits(self.jobs[h[2]].gpus)]
                if not fitting:
                    return
                self._start_onprem(min(fitting)[2], now)
                continue
            head = min(heads)
            if pool.fits(self.jobs[head[2]].gpus):
                self._start_onprem(head[2], now)
                continue
            if mode == "backfill":
                self._backfill(head[2], now)
            return

    def _backfill(self, head: int, now: float) -> None:
        """EASY backfill: reserve for ``head`` at the earliest time enough GPUs free up (by the
        running jobs' estimated ends); start later jobs that fit now and either end before that
        reservation or use only GPUs the reservation leaves over. Counts GPUs, not nodes: with
        node fragmentation the reservation is an estimate, as in most production backfillers."""
        need = self.jobs[head].gpus
        free = self.pool.total_free
        shadow = math.inf
        extra = 0
        for end, gpus in sorted(self.running_onprem()):
            free += gpus
            if free >= need:
                shadow, extra = max(end, now), free - need
                break
        order = self.order
        if len(order) > 2 * self.queued_count + 64:
            order[:] = [e for e in order if self._live(e)]
        tested = 0
        for entry in list(order):
            if tested >= 100 or not self.pool.total_free:
                break
            if not self._live(entry) or entry[2] == head:
                continue
            tested += 1
            job = self.jobs[entry[2]]
            if not self.pool.fits(job.gpus):
                continue
            if now + self.remaining_h(job) <= shadow:
                self._start_onprem(job.id, now)
            elif job.gpus <= extra:
                extra -= job.gpus
                self._start_onprem(job.id, now)

    def _start_onprem(self, j: int, now: float) -> None:
        job = self.jobs[j]
        self._dequeue(j)
        if self.timeout_token[j] >= 0:
            self.events.cancel(self.timeout_token[j])
            self.timeout_token[j] = -1
        self.state[j] = _ONPREM
        self.alloc[j] = self.pool.alloc(job.gpus)
        usd, hours = self.transfer(job, self.onprem.location)
        self._keep(job, self.onprem.location)
        work = job.runtime_h - self.done_work[j] + self.overhead[j]
        # the estimate includes the restart overhead owed, so read it before it is paid
        self.running[j] = now + hours + self.remaining_h(job)
        self.overhead[j] = 0.0
        end = now + hours + work
        self._busy(now)
        self.attempts[j].append(
            Attempt(self.onprem.site, False, now, now + hours, end, job.gpus, 0.0, usd, "done")
        )
        self.events.push(end, _END_ONPREM, _END_ONPREM, j)

    def _busy(self, now: float) -> None:
        busy = self.onprem.gpus - self.pool.total_free
        if self.busy[-1][0] == now:
            self.busy[-1] = (now, busy)
        else:
            self.busy.append((now, busy))

    def _end_onprem(self, j: int, now: float) -> None:
        self.pool.release(self.alloc[j])
        self.alloc[j] = []
        del self.running[j]
        self._busy(now)
        self._finish(j, self.onprem.location, now)

    # -- cloud -----------------------------------------------------------------------------------
    def _launch(self, j: int, d: Cloud, now: float) -> StopReason | None:
        """Start a cloud run; returns why the launch was refused, or None when it started."""
        job = self.jobs[j]
        cloud = self._cloud
        quote = cloud.quote(d.site, job.gpus, d.spot) if d.site in self._site_loc else None
        if quote is None:
            raise SimulationError(
                f"strategy {self.strategy.name!r} sent job {job.name!r} to "
                f"{'spot on ' if d.spot else ''}{d.site!r}, which has no such offer for "
                f"{job.gpus} GPU(s); sites: {', '.join(cloud.sites) or 'none'}"
            )
        billed = quote.nodes * quote.gpus_per_node
        quota = cloud.quota_gpus(d.site)
        if quota is not None and self.cloud_used.get(d.site, 0) + billed > quota:
            return "quota"
        trace = cloud.spot_trace(d.site, quote.nodes) if d.spot else None
        if trace is not None and not trace.up_at(now):
            return "unavailable"
        egress, hours = self.transfer(job, quote.location)
        self._keep(job, quote.location)
        delay = max(cloud.provision_h(d.site, d.spot, self.rng), hours)
        start = now + delay
        end = start + job.runtime_h - self.done_work[j] + self.overhead[j]
        stop, kind, reason = end, _END_CLOUD, "done"
        if trace is not None:
            down = trace.next_down(now)
            if down < stop:
                stop, kind, reason = down, _STOP_CLOUD, "preempted"
        if d.limit_h is not None and now + d.limit_h < stop:
            stop, kind, reason = now + d.limit_h, _STOP_CLOUD, "limit"
        self.state[j] = _CLOUD
        self.cloud_used[d.site] = self.cloud_used.get(d.site, 0) + billed
        self.cloud_run[j] = (d, now, start, billed, quote.usd_per_h, egress, reason)
        self.events.push(stop, kind, kind, j)
        return None

    def _close_cloud(self, j: int, now: float) -> tuple[Cloud, float, str]:
        d, launch, start, billed, usd_h, egress, reason = self.cloud_run.pop(j)
        self.cloud_used[d.site] -= billed
        self.attempts[j].append(
            Attempt(
                d.site, d.spot, launch, start, now, billed, usd_h * (now - launch), egress, reason
            )
        )
        return d, start, reason

    def _end_cloud(self, j: int, now: float) -> None:
        d, _, _ = self._close_cloud(j, now)
        self._finish(j, self._site_loc[d.site], now)

    def _stop_cloud(self, j: int, now: float) -> None:
        d, start, why = self._close_cloud(j, now)
        reason: StopReason = "limit" if why == "limit" else "preempted"
        if reason == "preempted" and now > start:
            owed = self.overhead[j]
            progress = now - start - owed
            if progress > 0:
                self.done_work[j] += progress
                self.overhead[j] = self.restart_overhead_h
            else:
                self.overhead[j] = owed - (now - start)
        self.state[j] = _PENDING
        self._apply(j, self._decide(j, "stopped", d.site, d.spot, reason), now)

    # -- completion ------------------------------------------------------------------------------
    def _finish(self, j: int, location: str, now: float) -> None:
        self.state[j] = _DONE
        self._finished += 1
        if self._progress is not None and not self._finished % 256:
            self._progress(self._finished)
        self.location[j] = location
        for c in self.children[j]:
            self.deps_left[c] -= 1
            if self.deps_left[c] == 0:
                self.events.push(now, _READY, _READY, c)


def simulate(
    workload: Workload,
    strategy: Strategy,
    *,
    onprem: OnPremConfig,
    cloud: CloudModel,
    eligibility: Eligibility | None = None,
    seed: int = 0,
    restart_overhead_h: float = 0.2,
    cache_inputs: bool = False,
    storage_usd_per_gb_month: float = STORAGE_USD_PER_GB_MONTH,
    progress: Callable[[int], None] | None = None,
) -> SimResult:
    """Replay ``workload`` under ``strategy``; see the module docstring for the model.

    ``eligibility`` (which sites each job may use, from the policies) defaults to "every site,
    no policies". ``restart_overhead_h`` is the work a spot job redoes after a preemption
    (Can't Be Late's changeover delay, 0.2 h by default in its simulator). ``cache_inputs``:
    the first read of a dataset at a location copies it there for good, so later jobs at that
    location read it for free (a mirror or a persistent cache); off, every job reads its
    datasets from where they live (or a replica the strategy made), as ``placer plan`` prices
    them. ``storage_usd_per_gb_month`` prices keeping any copy. ``progress`` is called with
    the number of finished jobs every 256 jobs (for a progress bar on long replays).
    """
    sites: Sequence[str] = cloud.sites
    elig = eligibility or Eligibility.unrestricted(workload, onprem.site, tuple(sites))
    sim = Simulator(
        workload,
        strategy,
        onprem=onprem,
        cloud=cloud,
        eligibility=elig,
        seed=seed,
        restart_overhead_h=restart_overhead_h,
        cache_inputs=cache_inputs,
        storage_usd_per_gb_month=storage_usd_per_gb_month,
        progress=progress,
    )
    return sim.run()
