"""The simulator: the event loop and the strategy's decisions.

:class:`Simulator` owns each job's state (waiting for its dependencies, queued, running on-prem
or in the cloud, done), asks the strategy when a job is ready, times out in the queue or stops
in the cloud, and hands the rest to its rooms: what the strategy sees (:mod:`._view`, the
simulator's :class:`placer.online.ClusterView`), the pool, queue and discipline
(:mod:`._queues`), the data (:mod:`._data`) and the cloud runs (:mod:`._cloud`).
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable, Sequence

import numpy as np

from placer.errors import SimulationError
from placer.online import (
    Cloud,
    Decision,
    JobRequest,
    OnPrem,
    Replicate,
    StopReason,
    Strategy,
)
from placer.sim.cloud import CloudModel
from placer.sim.engine._cloud import CloudRuns
from placer.sim.engine._data import Data
from placer.sim.engine._events import (
    CLOUD,
    DONE,
    END_CLOUD,
    END_ONPREM,
    ONPREM,
    PENDING,
    QUEUED,
    READY,
    STOP_CLOUD,
    TIMEOUT,
    WAITING_DEPS,
)
from placer.sim.engine._queues import DISCIPLINES, Fifo, OnPremQueue, Pool, Running
from placer.sim.engine._results import (
    STORAGE_USD_PER_GB_MONTH,
    Attempt,
    JobRecord,
    OnPremConfig,
    SimResult,
)
from placer.sim.engine._view import View
from placer.sim.jobs import Workload
from placer.sim.kernel import EventQueue
from placer.sim.residency import Eligibility

_MAX_DECISIONS_PER_JOB = 10_000


class Simulator(View):
    """One run. Use :func:`simulate`; the class is the simulator's
    :class:`~placer.online.ClusterView`."""

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
        # what the strategy is shown of each job (everything but its true run time)
        self.requests: tuple[JobRequest, ...] = tuple(j.request() for j in workload.jobs)
        self.strategy = strategy
        self.onprem = onprem
        self._cloud = cloud
        self.eligibility = eligibility
        self.seed = seed
        self.restart_overhead_h = restart_overhead_h
        self.storage_usd_per_gb_month = storage_usd_per_gb_month
        self.rng = np.random.default_rng(seed)
        self.events = EventQueue()
        self._site_loc = {onprem.site: onprem.location}
        for s in cloud.sites:
            self._site_loc[s] = cloud.location(s)
        self.data = Data(workload, cloud.link_of, self.events, cache_inputs=cache_inputs,
                         strategy=strategy.name)
        self.cloud_runs = CloudRuns(cloud, rng=self.rng, events=self.events, data=self.data,
                                    sites=self._site_loc, strategy=strategy.name)
        n = len(self.jobs)
        self.state = [WAITING_DEPS] * n
        self.ready_h = [math.nan] * n
        self.deps_left = [len(j.deps) for j in self.jobs]
        self.children: list[list[int]] = [[] for _ in range(n)]
        for j in self.jobs:
            for d in j.deps:
                self.children[d].append(j.id)
        self.done_work = [0.0] * n  # hours of the job's work kept from earlier runs
        self.overhead = [0.0] * n  # restart overhead owed on the next run
        self.attempts: list[list[Attempt]] = [[] for _ in range(n)]
        self.refused: list[list[str]] = [[] for _ in range(n)]
        self.decisions = [0] * n
        self.decision_s = [0.0] * n
        self.timeout_token = [-1] * n
        # on-prem: the pool, the queue and how it hands out free GPUs (the strategy's queue)
        kind = DISCIPLINES.get(strategy.queue, Fifo)
        self.pool = Pool(onprem.nodes, onprem.gpus_per_node, strategy.fit)
        self.queue = OnPremQueue(n, ordered=kind.scans)
        self.discipline = kind(self.queue, self.pool, [j.gpus for j in self.jobs],
                               running=self.running_onprem, remaining=self._remaining)
        self.alloc: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        self.running = Running(n)  # on-prem jobs by estimated end
        self.busy: list[tuple[float, int]] = [(0.0, 0)]

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> SimResult:
        t0 = _time.perf_counter()
        self.strategy.start(self, self.requests)
        for job in self.jobs:
            if not job.deps:
                self.events.push(job.arrival_h, READY, READY, job.id)
        events = self.events
        while True:
            ev = events.pop()
            if ev is None:
                break
            now, kind, j = ev
            if kind == END_ONPREM:
                self._end_onprem(j, now)
            elif kind == END_CLOUD:
                self._end_cloud(j, now)
            elif kind == STOP_CLOUD:
                self._stop_cloud(j, now)
            elif kind == READY:
                self._ready(j, now)
            elif kind == TIMEOUT:
                self._timeout(j, now)
            if self.queue.count and self.pool.total_free:
                self.discipline.schedule(now, self._start_onprem)
        unfinished = [j.name for j in self.jobs if self.state[j.id] != DONE]
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
            replicas=tuple(self.data.replicas),
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
        job = self.requests[j]
        self._asking_gpus = job.gpus
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
            if not isinstance(d, OnPrem | Cloud):
                raise SimulationError(
                    f"strategy {self.strategy.name!r} returned {d!r} for job "
                    f"{self.jobs[j].name!r}; expected OnPrem(...) or Cloud(...)"
                )
            # copies first: a job may then read a copy that is on its way (and wait for it)
            for c in d.copies:
                if not isinstance(c, Replicate):
                    raise SimulationError(
                        f"strategy {self.strategy.name!r} asked for a copy {c!r} for job "
                        f"{self.jobs[j].name!r}; expected Replicate(dataset, location)"
                    )
                self.data.replicate(c.dataset, c.location)
            if isinstance(d, OnPrem):
                self._enqueue(j, d, now)
                return
            refused = self.cloud_runs.launch(self.jobs[j], d, now, self.done_work[j],
                                             self.overhead[j])
            if refused is None:
                self.state[j] = CLOUD
                return
            self.refused[j].append(f"{d.site}{'/spot' if d.spot else ''}:{refused}")
            self.state[j] = PENDING
            d = self._decide(j, "stopped", d.site, d.spot, refused)

    def _ready(self, j: int, now: float) -> None:
        self.ready_h[j] = now
        self.state[j] = PENDING
        self._apply(j, self._decide(j, "ready"), now)

    def _timeout(self, j: int, now: float) -> None:
        self.timeout_token[j] = -1
        if self.state[j] != QUEUED:
            return
        self._dequeue(j)
        self.state[j] = PENDING
        self._apply(j, self._decide(j, "timeout"), now)

    # -- on-prem ---------------------------------------------------------------------------------
    def _enqueue(self, j: int, d: OnPrem, now: float) -> None:
        job = self.jobs[j]
        if job.gpus > self.onprem.gpus:
            raise SimulationError(
                f"strategy {self.strategy.name!r} queued job {job.name!r} on-prem, but it "
                f"needs {job.gpus} GPUs and the on-prem pool has {self.onprem.gpus}"
            )
        self.state[j] = QUEUED
        self.queue.push(self.requests[j], d.priority, job.gpus * self._remaining(j))
        if d.wait_h is not None:
            self.timeout_token[j] = self.events.push(
                now + max(d.wait_h, 0.0), TIMEOUT, TIMEOUT, j
            )

    def _dequeue(self, j: int) -> None:
        self.queue.remove(j, self.jobs[j].gpus * self._remaining(j))

    def _start_onprem(self, j: int, now: float) -> None:
        job = self.jobs[j]
        self._dequeue(j)
        if self.timeout_token[j] >= 0:
            self.events.cancel(self.timeout_token[j])
            self.timeout_token[j] = -1
        self.state[j] = ONPREM
        self.alloc[j] = self.pool.alloc(job.gpus)
        usd, hours = self.data.transfer(j, self.onprem.location)
        self.data.keep(job, self.onprem.location)
        work = job.runtime_h - self.done_work[j] + self.overhead[j]
        # the estimate includes the restart overhead owed, so read it before it is paid
        self.running.add(j, now + hours + self._remaining(j), job.gpus)
        self.overhead[j] = 0.0
        end = now + hours + work
        self._busy(now)
        self.attempts[j].append(
            Attempt(self.onprem.site, False, now, now + hours, end, job.gpus, 0.0, usd, "done")
        )
        self.events.push(end, END_ONPREM, END_ONPREM, j)

    def _busy(self, now: float) -> None:
        busy = self.onprem.gpus - self.pool.total_free
        if self.busy[-1][0] == now:
            self.busy[-1] = (now, busy)
        else:
            self.busy.append((now, busy))

    def _end_onprem(self, j: int, now: float) -> None:
        self.pool.release(self.alloc[j])
        self.alloc[j] = []
        self.running.remove(j, self.jobs[j].gpus)
        self._busy(now)
        self._finish(j, self.onprem.location, now)

    # -- cloud -----------------------------------------------------------------------------------
    def _end_cloud(self, j: int, now: float) -> None:
        attempt, d, _, _ = self.cloud_runs.close(j, now)
        self.attempts[j].append(attempt)
        self._finish(j, self._site_loc[d.site], now)

    def _stop_cloud(self, j: int, now: float) -> None:
        """A cloud run stopped early: preempted (the work done is kept; the restart overhead
        is owed on the next run) or at the strategy's limit. The strategy decides again."""
        attempt, d, start, why = self.cloud_runs.close(j, now)
        self.attempts[j].append(attempt)
        reason: StopReason = "limit" if why == "limit" else "preempted"
        if reason == "preempted" and now > start:
            owed = self.overhead[j]
            progress = now - start - owed
            if progress > 0:
                self.done_work[j] += progress
                self.overhead[j] = self.restart_overhead_h
            else:
                self.overhead[j] = owed - (now - start)
        self.state[j] = PENDING
        self._apply(j, self._decide(j, "stopped", d.site, d.spot, reason), now)

    # -- completion ------------------------------------------------------------------------------
    def _finish(self, j: int, location: str, now: float) -> None:
        self.state[j] = DONE
        self._finished += 1
        if self._progress is not None and not self._finished % 256:
            self._progress(self._finished)
        self.data.output_at[j] = location
        for c in self.children[j]:
            self.deps_left[c] -= 1
            if self.deps_left[c] == 0:
                self.events.push(now, READY, READY, c)


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
    """Replay ``workload`` under ``strategy``; see :mod:`placer.sim.engine` for the model.

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
