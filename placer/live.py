"""The live :class:`placer.online.ClusterView`: what a strategy sees of real clusters.

The simulator implements :class:`~placer.online.ClusterView` from its state
(``placer.sim.engine``); this module implements it from live state, so a strategy written for
the simulator (placer's own, the baselines) decides for a real run unchanged
(``placer controller --strategy``, issue 13):

* the clock is the wall clock, in hours since the Unix epoch (the journal's timestamps);
* the on-prem pool is the run's one on-prem site: its location from the inventory, its GPUs and
  the free ones from the cluster itself (:class:`placer.backends.CapacityReporter`; a backend
  without it is refused, never guessed);
* the on-prem queue is the work that waits for that pool: first the requests the cluster
  holds that fit no node now (:meth:`placer.backends.GpuCapacity.waiting`, in its order: placer's
  own pending steps among them with their estimates, anyone else's with no known end), then
  the jobs the strategy told to wait; running jobs are the steps running there, each ending at
  its start plus its run-time estimate (from the journal);
* quotes, links, provisioning and eligibility are the planner's: :mod:`placer.pricing` over the
  inventory's resolved sites, :func:`placer.policy.evaluate` with lineage over the run's own
  stored policies.

Where live state cannot answer a question the view answers so that it never widens what a job
may do (each such method says so): no spot capacity is shown unless the spot safety net is on
(``placer controller --spot-safety-net``: then spot offers are quoted, and a strategy's spot
choice is taken only where :func:`placer.online.spot_net_holds` says a lost spot run can be
done again on demand by the job's deadline, and a failed spot attempt is retried on demand),
no copy of data may be kept anywhere (``may_store`` is False: copies are not
carried out live), and every residency mode is answered with the full policy evaluation.

:class:`StrategyStep` is what the executor asks for each ready job of one run: it builds the
view, asks the strategy, and says why, for the journal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from placer import pricing
from placer.backends import GpuCapacity
from placer.catalog import Catalog
from placer.errors import ExecutionError
from placer.models import Link as NetworkLink
from placer.models import Location, Pipeline, ResolvedSite
from placer.online import (
    Allowed,
    Cloud,
    ClusterView,
    DatasetInfo,
    Decision,
    JobRequest,
    Queued,
    Residency,
    Strategy,
    spot_net_holds,
)
from placer.optimizer import Link
from placer.policy import JobEligibility
from placer.pricing import Quote

__all__ = [
    "LiveView",
    "NamedStrategy",
    "StepDecision",
    "StrategyFactory",
    "StrategyStep",
    "allowed_by_policy",
    "job_requests",
]

StrategyFactory = Callable[[], Strategy]
"""Makes a fresh strategy: the executor asks one per run (a strategy remembers its jobs)."""


@dataclass(frozen=True)
class NamedStrategy:
    """A strategy factory that knows its name and waiting budget, so the run records them
    (a ``strategy`` event) and any controller that later drives the run decides with the same
    strategy, not with whatever it was started with."""

    name: str
    budget: float
    make: StrategyFactory = field(compare=False, repr=False)

    def __call__(self) -> Strategy:
        return self.make()


class LiveView:
    """A :class:`~placer.online.ClusterView` over live state, read-only, for one decision.

    Built fresh for each decision (by :class:`StrategyStep`, or a test) from plain values:

    Args:
        now_h: the time, hours (since the Unix epoch, live).
        onprem: the on-prem site (resolved).
        capacity: its GPUs as the cluster reports them now.
        cloud: the cloud sites a job may be sent to (those with a compute backend), resolved.
        gpu: the GPU type quotes are for (the job's).
        allowed: per job id, ``(on-prem allowed, allowed cloud sites)`` under the run's policies
            with lineage (:func:`allowed_by_policy`).
        queued: the on-prem queue in queue order, as :data:`placer.online.Queued` entries.
        running: ``(estimated end, GPUs)`` of each job running on-prem.
        datasets: the stored datasets by name.
        replicas: per dataset, the other locations holding a full copy (the pipeline's).
        output_at: per job id, the location its outputs are in (jobs that ran).
        locations, network, catalog: what links are priced from (:func:`placer.pricing.link`).
        reserved: GPUs held by work the cluster has not reported yet (steps just submitted):
            subtracted from what it reports free.
        spot: show the cloud sites' spot offers (the spot safety net is on); False: no spot.
        own_pending: placer's own steps the cluster holds and has not started (PENDING):
            they are in its pending demand too, so each takes the place of one waiting
            request of its GPUs (first in the cluster's order) and is not counted twice; one
            that matches no waiting request is about to start (the cluster's free GPUs
            already leave it out) and is taken to run from now on its estimate.

    The cluster's waiting requests (:meth:`~placer.backends.GpuCapacity.waiting`) head the
    queue at priority ``-inf``, in the cluster's order: they take the next GPUs released that
    they fit in, ahead of any job placer has not submitted (the cluster's rule), never the GPUs
    free now (they fit no node now). Anyone else's has no known end (``estimate_h`` infinite):
    once started in a prediction it holds its GPUs for good, so a wait that needs them is
    unbounded (fail closed: the prediction errs long, never short).
    """

    def __init__(self, *, now_h: float, onprem: ResolvedSite, capacity: GpuCapacity,
                 cloud: Sequence[ResolvedSite], gpu: str, allowed: Mapping[int, Allowed],
                 requests: Sequence[JobRequest] = (), queued: Sequence[Queued] = (),
                 running: Sequence[tuple[float, int]] = (),
                 datasets: Mapping[str, DatasetInfo] | None = None,
                 replicas: Mapping[str, Sequence[str]] | None = None,
                 output_at: Mapping[int, str] | None = None,
                 locations: Mapping[str, Location] | None = None,
                 network: Sequence[NetworkLink] = (), catalog: Catalog | None = None,
                 reserved: int = 0, spot: bool = False,
                 own_pending: Sequence[JobRequest] = ()) -> None:
        self._now = now_h
        self._onprem = onprem
        self._capacity = capacity
        self._cloud = {s.name: s for s in cloud}
        self._gpu = gpu
        self._allowed = dict(allowed)
        self._requests = {r.id: r for r in requests}
        ahead, started = _cluster_queue(capacity, own_pending, now_h)
        self._outside = [q[2] for q in ahead if q[2].id < 0]
        self._queued = sorted([*ahead, *queued], key=lambda q: (q[0], q[1]))
        self._running = sorted([*running, *started])
        self._datasets = dict(datasets or {})
        self._replicas = {k: tuple(v) for k, v in (replicas or {}).items()}
        self._output_at = dict(output_at or {})
        self._locations = dict(locations or {})
        for s in (onprem, *cloud):
            self._locations.setdefault(s.location.key, s.location)
        self._network = tuple(network)
        self._catalog = catalog
        self._reserved = max(0, reserved)
        self._spot = spot
        self._offers = {s.name: pricing.price_offers(s.offers, gpu=gpu) for s in cloud}
        self._links: dict[tuple[str, str], Link] = {}
        by_gpus: dict[int, list[Queued]] = {}
        for q in self._queued:
            by_gpus.setdefault(q[2].gpus, []).append(q)
        self._by_gpus = by_gpus

    # -- time and the on-prem pool ---------------------------------------------------------------
    @property
    def now(self) -> float:
        return self._now

    @property
    def onprem_site(self) -> str:
        return self._onprem.name

    @property
    def onprem_location(self) -> str:
        return self._onprem.location.key

    @property
    def onprem_gpus(self) -> int:
        """What the cluster reports it has (not the inventory's figure: a node may be down)."""
        return self._capacity.total

    @property
    def free_gpus(self) -> int:
        """What the cluster reports free, less what work already pending there is about to
        take (requests that fit the free nodes now) and the GPUs of steps placer has just
        submitted that the report does not show yet (never below 0):
        :meth:`placer.backends.GpuCapacity.available`."""
        return self._capacity.available(self._reserved)

    def fits_now(self, job: JobRequest) -> bool:
        """Whether the job would start now: its GPUs on one node, once the work pending on the
        cluster that fits has started (:meth:`placer.backends.GpuCapacity.fits`, the one
        rule; a job larger than any node fits only on a cluster that spreads jobs over whole
        nodes). A fit implies ``job.gpus <= free_gpus``."""
        return job.gpus <= self.onprem_gpus and self._capacity.fits(job.gpus,
                                                                     reserved=self._reserved)

    def queue_length(self) -> int:
        return len(self._queued)

    def queued_gpu_hours(self) -> float:
        """Infinite while anyone else's request waits on the cluster (its end is unknown;
        no strategy reads this figure, and nothing records it)."""
        return sum(q[2].gpus * self.remaining_h(q[2]) for q in self._queued)

    @property
    def outside_waiting(self) -> tuple[int, int]:
        """``(requests, GPUs)`` of the work not placer's that waits on the cluster for GPUs
        (it fits no node now): it goes before any job placer has not submitted."""
        return len(self._outside), sum(r.gpus for r in self._outside)

    def running_onprem(self) -> Iterator[tuple[float, int]]:
        """The on-prem steps placer runs, by estimated end (start + the job's estimate),
        with its pending steps that are about to start (now + the estimate). Work on the
        cluster that placer did not submit has no known end: it holds its GPUs (they are not
        free), and no release of them is predicted, so a prediction errs long."""
        return iter(self._running)

    def queued(self) -> Iterator[JobRequest]:
        return (q[2] for q in self._queued)

    def queued_by_gpus(self) -> Mapping[int, Sequence[Queued]]:
        return self._by_gpus

    def remaining_h(self, job: JobRequest) -> float:
        """The job's estimate: a job that has not started live has done no work (no
        progress is kept across attempts)."""
        return job.estimate_h

    # -- the cloud, priced by placer.pricing -----------------------------------------------------
    @property
    def cloud_sites(self) -> tuple[str, ...]:
        """The inventory's cloud sites that have a compute backend, in inventory order."""
        return tuple(self._cloud)

    def quote(self, site: str, gpus: int, spot: bool) -> Quote | None:
        """:func:`placer.pricing.cheapest_quote` over the site's offers for the job's GPU
        type. Spot: None unless the spot safety net is on (failing closed: without it no
        strategy may plan on spot)."""
        if (spot and not self._spot) or site not in self._cloud or gpus < 1:
            return None
        s = self._cloud[site]
        return pricing.cheapest_quote(site, s.location.key, self._offers[site], gpus, spot)

    def quotes(self, gpus: int, spot: bool) -> tuple[Quote, ...]:
        qs = (self.quote(s, gpus, spot) for s in self._cloud)
        return tuple(sorted((q for q in qs if q is not None), key=lambda q: (q.usd_per_h, q.site)))

    def provisioning_h(self, site: str, spot: bool) -> float:
        """The inventory's (the catalog's) provisioning figure for the site, as the planner
        uses it."""
        s = self._cloud.get(site)
        if s is None:
            return 0.0 if site == self._onprem.name else math.inf
        return s.spot_provisioning_h if spot else s.provisioning_h

    def spot_available(self, site: str, nodes: int = 1) -> bool:
        """Without the spot safety net: always False (fail closed). With it: whether the site
        has a spot offer for the GPU type; clouds give no capacity signal placer reads, so a
        spot request is tried, and one that finds no capacity fails and is retried on
        demand (:class:`StrategyStep`)."""
        return self._spot and self.quote(site, 1, True) is not None

    def location(self, site: str) -> str:
        if site == self._onprem.name:
            return self._onprem.location.key
        s = self._cloud.get(site)
        if s is None:
            raise ExecutionError(f"unknown site {site!r}; sites: "
                                 + ", ".join([self._onprem.name, *self._cloud]))
        return s.location.key

    def link(self, from_location: str, to_location: str) -> Link:
        """:func:`placer.pricing.link`: the inventory's network, then the catalog's egress."""
        key = (from_location, to_location)
        got = self._links.get(key)
        if got is None:
            got = self._links[key] = pricing.link(
                self._network, self._catalog, self._loc(from_location), self._loc(to_location))
        return got

    def _loc(self, key: str) -> Location:
        loc = self._locations.get(key)
        if loc is not None:
            return loc
        if self._catalog is not None and key in self._catalog:
            return self._catalog.location(key)
        raise ExecutionError(f"unknown location {key!r}: neither a site of the inventory nor "
                             "a catalog region")

    # -- policies --------------------------------------------------------------------------------
    def allowed(self, job: JobRequest, mode: Residency) -> Allowed:
        """The run's own policies with lineage, whatever ``mode`` asks: ``"none"`` and
        ``"naive"`` would widen what a job may do, and live nothing is placed outside the
        policies. A job the view was not told about may run nowhere."""
        return self._allowed.get(job.id, (False, ()))

    # -- data ------------------------------------------------------------------------------------
    @property
    def datasets(self) -> Mapping[str, DatasetInfo]:
        return self._datasets

    @property
    def storage_usd_per_gb_h(self) -> float:
        """Unknown live (the catalog prices no storage): infinite, so no copy ever pays."""
        return math.inf

    def read_cost(self, name: str, location: str) -> tuple[float, float, str]:
        """From the cheapest of the dataset's location and its replicas (the pipeline's)."""
        d = self._datasets[name]
        copies = (d.location, *self._replicas.get(name, ()))
        if location in copies:
            return 0.0, 0.0, location
        best = (math.inf, math.inf, "")
        for src in copies:
            ln = self.link(src, location)
            cand = (ln.usd(d.gb), d.gb * ln.hours_per_gb, src)
            if cand[:2] < best[:2]:
                best = cand
        return best

    def transfer(self, job: JobRequest, location: str) -> tuple[float, float]:
        usd = hours = 0.0
        for name in job.reads:
            u, h, _ = self.read_cost(name, location)
            usd += u
            hours = max(hours, h)
        for d in job.deps:
            dep = self._requests.get(d)
            src = self._output_at.get(d)
            if dep is None or src is None or src == location or dep.output_gb <= 0:
                continue
            ln = self.link(src, location)
            usd += ln.usd(dep.output_gb)
            hours = max(hours, dep.output_gb * ln.hours_per_gb)
        return usd, hours

    def may_store(self, name: str, location: str) -> bool:
        """Always False: the executor does not carry out a strategy's copies (fail closed)."""
        return False

    def replica_ready(self, name: str, location: str) -> float | None:
        d = self._datasets.get(name)
        if d is None:
            return None
        return 0.0 if location in (d.location, *self._replicas.get(name, ())) else None


def _cluster_queue(capacity: GpuCapacity, own: Sequence[JobRequest], now_h: float
                   ) -> tuple[list[Queued], list[tuple[float, int]]]:
    """The cluster's waiting requests as queue entries (see :class:`LiveView`), and the own
    pending steps that are about to start as running ``(end, GPUs)``.

    Each own step takes the first waiting request of its GPUs not yet taken (requests carry
    no owner: a step of ours and someone else's of the same size are told apart by count
    only). Anyone else's request becomes a job of negative id with an infinite estimate.
    """
    waiting = capacity.waiting()
    mine: dict[int, JobRequest] = {}
    started: list[tuple[float, int]] = []
    for step in own:
        k = next((i for i, r in enumerate(waiting) if i not in mine and sum(r) == step.gpus),
                 None)
        if k is None:
            started.append((now_h + step.estimate_h, step.gpus))
        else:
            mine[k] = step
    n = len(waiting)
    ahead: list[Queued] = []
    for k, r in enumerate(waiting):
        job = mine.get(k)
        if job is None:
            job = JobRequest(id=-1 - k, name=f"(waiting on the cluster #{k + 1})",
                             gpus=sum(r), estimate_h=math.inf, spot_ok=False)
        ahead.append((-math.inf, k - n, job))  # seqs below 0: unique against placer's own
    return ahead, started


def _check_view(view: LiveView) -> ClusterView:
    return view  # mypy checks that LiveView implements the protocol


# -- a run's jobs as a strategy sees them ------------------------------------------------------


def job_requests(pipeline: Pipeline, gpu_of: Mapping[str, str], *,
                 submitted_h: float = 0.0, deadline_h: float | None = None,
                 spot: bool = False) -> tuple[JobRequest, ...]:
    """The run's jobs as :class:`~placer.online.JobRequest` values, ids in topological order.

    ``gpu_of`` names each job's GPU type (its planned placement's): the estimate is the job's
    run time on it. A run whose jobs depend on each other is one pipeline (placer's strategy then
    places the whole DAG when its first job is ready, as in the simulator); a run of independent
    jobs is decided job by job.

    ``deadline_h`` (absolute hours, the run's: its submission plus the plan's makespan bound)
    gives each job the deadline by which it must end for the jobs after it to end in time on
    their estimates: the run's less the longest chain of estimates after it. ``spot``: a job
    that declares it tolerates preemption (``spot: true``) may be sent to spot capacity
    (``spot_ok``); False: no job may.
    """
    order = pipeline.topological_order()
    ids = {name: i for i, name in enumerate(order)}
    graph = pipeline.graph()
    several = graph.number_of_edges() > 0
    estimates: dict[str, float] = {}
    for name in order:
        rt = pricing.run_time(pipeline.job(name).gpu_types, gpu_of[name])
        if rt is None:
            raise ExecutionError(f"{name}: no run-time estimate for GPU {gpu_of[name]}")
        estimates[name] = rt[1]
    after: dict[str, float] = {}  # the longest chain of estimates after each job
    for name in reversed(order):
        after[name] = max((estimates[c] + after[c] for c in graph.successors(name)), default=0.0)
    out = []
    for name in order:
        job = pipeline.job(name)
        reads = tuple(r.dataset for r in pipeline.inputs_of(name) if r.dataset is not None)
        out.append(JobRequest(
            id=ids[name], name=name, gpus=job.resources.gpus, estimate_h=estimates[name],
            spot_ok=spot and job.spot, submitted_h=submitted_h,
            deadline_h=None if deadline_h is None else deadline_h - after[name],
            pipeline=0 if several else None,
            deps=tuple(sorted(ids[p] for p in graph.predecessors(name))), reads=reads,
            output_gb=float(sum(job.outputs.values()))))
    return tuple(out)


def allowed_by_policy(eligibility: Mapping[str, JobEligibility], requests: Sequence[JobRequest],
                      onprem: str, cloud: Sequence[str]) -> dict[int, Allowed]:
    """``(on-prem allowed, allowed cloud sites)`` per job id from the policy evaluation."""
    out: dict[int, Allowed] = {}
    for r in requests:
        ok = set(eligibility[r.name].allowed)
        out[r.id] = (onprem in ok, tuple(s for s in cloud if s in ok))
    return out


# -- one run's decisions -----------------------------------------------------------------------


Kind = Literal["onprem", "wait", "burst"]

Recorded = tuple[str | None, float, Mapping[str, object]]
"""A ``strategy_decision`` event as :meth:`StrategyStep.restore` reads it: ``(job, time in
hours since the epoch, its data)``."""


@dataclass(frozen=True)
class StepDecision:
    """What the strategy decided for one ready job, and why (recorded in the journal)."""

    job: str
    kind: Kind
    site: str | None
    """Where to submit now (``None`` for ``wait``)."""
    reason: str
    facts: dict[str, object] = field(default_factory=dict)
    """The figures behind it, as JSON values (see :meth:`StrategyStep.decide`)."""
    spot: bool = False
    """A burst to the site's spot capacity (only past the spot safety net)."""


@dataclass
class _Waiting:
    since_h: float
    check_at_h: float
    priority: float
    seq: int


class StrategyStep:
    """Asks a :class:`~placer.online.Strategy` about the ready jobs of one run.

    Mirrors the simulator's contract. A new ready job is asked with ``on_ready``. ``OnPrem``
    starts it on the on-prem site if the pool has room now, else it waits in placer's queue (it
    is not submitted): each tick it starts as soon as the pool has room, and once its waiting
    budget (``wait_h``) has run out the strategy is asked again (``on_timeout``). ``Cloud``
    sends it to that site now. Whatever is decided, the executor's residency guard checks the
    site before anything is submitted.

    What it remembers of waiting jobs is rebuilt from the journal (:meth:`restore`), so a
    controller that restarts goes on counting a job's wait from when it began, not from zero.

    Args:
        strategy: the run's strategy (a fresh instance).
        requests: the run's jobs (:func:`job_requests`).
        eligibility: the policy evaluation of the run's jobs over every site of the inventory:
            each decision's record names the sites the rules deny and the rules that deny them.
        safety_net: the spot safety net is on (the view quotes spot): a strategy's spot burst
            is taken only where :func:`placer.online.spot_net_holds` holds for the job's
            deadline, else it goes to the same site on demand; off, every burst is on demand.

    A burst whose spot attempt failed (preempted, or no capacity: the executor passes
    ``stopped``) asks the strategy :meth:`~placer.online.Strategy.on_cloud_stopped`, and
    whatever it answers, the retry is never on spot.
    """

    def __init__(self, strategy: Strategy, requests: Sequence[JobRequest], *,
                 eligibility: Mapping[str, JobEligibility] | None = None,
                 safety_net: bool = False) -> None:
        self.strategy = strategy
        self.safety_net = safety_net
        self.requests = {r.name: r for r in requests}
        self.eligibility = dict(eligibility or {})
        self._started = False
        self._waiting: dict[str, _Waiting] = {}
        self._resumed: list[str] = []  # restored waiting jobs the strategy is yet to be told of
        self._seq = 0
        self._last: dict[str, tuple[Kind, str | None]] = {}

    @property
    def waiting(self) -> Mapping[str, tuple[float, int]]:
        """Jobs waiting for the on-prem pool: ``(priority, seq)`` each."""
        return {n: (w.priority, w.seq) for n, w in self._waiting.items()}

    def waiting_since(self, name: str) -> float | None:
        """When job ``name`` began to wait for the on-prem pool (hours), or None."""
        w = self._waiting.get(name)
        return None if w is None else w.since_h

    def queued(self) -> list[Queued]:
        return [(w.priority, w.seq, self.requests[n]) for n, w in self._waiting.items()]

    def restore(self, recorded: Sequence[Recorded], waiting: Collection[str]) -> None:
        """Rebuild what a restarted process forgot from the run's recorded decisions (oldest
        first): for each job of ``waiting`` (ready, not submitted) whose last decision was to
        wait, when its wait began (the first ``wait`` since its last other decision, less the
        wait it had already counted then), when its budget runs out (the last ``wait`` the
        strategy was asked for, plus its ``wait_h``) and its queue priority; and every job's
        last decision, so that one is not recorded twice. The strategy is told of each such
        job (:meth:`~placer.online.Strategy.resume_waiting`) before it next decides."""
        streaks: dict[str, _Waiting] = {}
        for job, t, data in recorded:
            if job is None or job not in self.requests:
                continue
            kind, site = data.get("decision"), data.get("site")
            if kind not in ("onprem", "wait", "burst"):
                continue
            self._last[job] = (kind, site if isinstance(site, str) else None)
            if kind != "wait":
                streaks.pop(job, None)
                continue
            w = streaks.get(job)
            if w is None:
                waited = data.get("waited_h")
                since = t - (float(waited) if isinstance(waited, int | float) else 0.0)
                w = streaks[job] = _Waiting(since_h=since, check_at_h=math.inf, priority=0.0,
                                            seq=0)
            if data.get("asked") in ("on_ready", "on_timeout", "on_cloud_stopped"):
                budget, prio = data.get("wait_h"), data.get("priority")
                w.check_at_h = t + float(budget) if isinstance(budget, int | float) else math.inf
                w.priority = float(prio) if isinstance(prio, int | float) else 0.0
        for name, w in sorted(streaks.items(), key=lambda kv: (kv[1].since_h, kv[0])):
            if name not in waiting:
                continue
            self._seq += 1
            w.seq = self._seq
            self._waiting[name] = w
            self._resumed.append(name)

    def decide(self, name: str, build: Callable[[], LiveView], *,
               stopped: str | None = None) -> StepDecision:
        """The decision for ready job ``name``: ``build()`` gives the view of now;
        ``stopped``: the site of its last attempt, when that was a spot run that failed (the
        job is to be tried again: it is recorded, whatever was decided before).

        A decision that differs from the job's last one carries its figures (``facts``):
        ``asked`` (which question the strategy was asked, or ``queue``: the queue's own move),
        the pool (``free_gpus``, ``onprem_gpus``, ``queued``), ``waited_h`` (how long the job
        has waited so far), ``predicted_wait_h`` and ``allowance_h`` (the strategy's own
        :meth:`~placer.online.Strategy.outlook`; ``wait_unbounded`` when no release of enough
        GPUs is known), ``burst`` (the chosen cloud option, or else the cheapest one the
        policies allow: site, instance, nodes, compute and egress USD, their sum) and
        ``policy`` (``allowed`` sites, ``denied`` sites with the rules that deny each,
        ``unavailable`` sites the policies allow but that cannot take work now, ``held``);
        a ``wait`` adds its budget ``wait_h`` and queue ``priority``; a burst, ``spot`` and,
        when a spot offer was weighed, ``safety_net`` (whether it ``holds``, the job's
        ``deadline_h`` and ``left_h`` to it, ``need_h`` for spot then a rerun on demand, or
        why spot was not taken).
        """
        view = build()
        job = self.requests[name]
        if not self._started:
            self.strategy.start(view, tuple(self.requests.values()))
            self._started = True
        while self._resumed:
            n = self._resumed.pop(0)
            w = self._waiting.get(n)
            if w is not None:
                self.strategy.resume_waiting(self.requests[n], w.since_h, w.priority)
        w = self._waiting.get(name)
        if stopped is not None:
            self._waiting.pop(name, None)
            self._last.pop(name, None)
            d = self.strategy.on_cloud_stopped(job, view, stopped, True, "preempted")
            asked = "on_cloud_stopped"
            w = None
        elif w is None:
            d = self.strategy.on_ready(job, view)
            asked = "on_ready"
        elif view.now >= w.check_at_h:
            d = self.strategy.on_timeout(job, view)
            asked = "on_timeout"
        else:  # waiting in the queue: it starts when the pool has room, as a queue does
            waited = view.now - w.since_h
            if view.fits_now(job):
                del self._waiting[name]
                return self._said(name, "onprem", view.onprem_site, view,
                                  f"room on-prem now ({view.free_gpus}/{view.onprem_gpus} GPUs "
                                  f"free) after waiting {_h(waited)}", asked="queue",
                                  waited_h=waited)
            return self._said(name, "wait", None, view, "", asked="queue", waited_h=waited)
        out = self._carry_out(name, d, view, asked, waited_h=0.0 if w is None
                              else view.now - w.since_h, stopped=stopped)
        if stopped is not None and out.kind != "burst":
            out = replace(out, reason=f"its spot run on {stopped} failed; {out.reason}")
        return out

    def _spot(self, job: JobRequest, d: Cloud, view: LiveView,
              stopped: str | None) -> tuple[bool, dict[str, object] | None, str]:
        """Whether a burst the strategy wants on spot goes on spot: the safety net's verdict,
        with its figures and a note for the reason."""
        if not d.spot:
            return False, None, ""
        if not self.safety_net or view.quote(d.site, job.gpus, True) is None:
            return False, {"holds": False, "why": "spot is off"}, \
                "on demand: spot is off (no spot safety net)"
        if not job.spot_ok:
            return False, {"holds": False, "why": "the job does not tolerate preemption"}, \
                "on demand: the job does not declare it tolerates preemption (spot: true)"
        if stopped is not None:
            return False, {"holds": False, "why": "a spot attempt failed"}, \
                f"on demand: its spot attempt on {stopped} failed, and a retry is never on spot"
        run = view.remaining_h(job)
        spot_start = view.provisioning_h(d.site, True)
        od_start = view.provisioning_h(d.site, False)
        need = spot_start + run + od_start + run
        holds = spot_net_holds(now_h=view.now, deadline_h=job.deadline_h, run_h=run,
                               spot_start_h=spot_start, on_demand_start_h=od_start)
        net: dict[str, object] = {"holds": holds, "need_h": round(need, 4),
                                  "deadline_h": job.deadline_h}
        if job.deadline_h is None:
            return True, net, "on spot: the run has no deadline (a lost spot run is done " \
                "again on demand)"
        left = job.deadline_h - view.now
        net["left_h"] = round(left, 4)
        words = (f"spot {_h(spot_start)} + {_h(run)}, then on demand {_h(od_start)} + "
                 f"{_h(run)} = {_h(need)} against {_h(left)} to its deadline")
        if holds:
            return True, net, f"on spot: the safety net holds ({words})"
        return False, net, f"on demand: the spot safety net does not hold ({words})"

    def _carry_out(self, name: str, d: Decision, view: LiveView, asked: str,
                   waited_h: float, stopped: str | None = None) -> StepDecision:
        job = self.requests[name]
        who = self.strategy.describe()
        if isinstance(d, Cloud):
            self._waiting.pop(name, None)
            spot, net, note = self._spot(job, d, view, stopped)
            if d.spot != spot:
                d = Cloud(d.site, spot=spot, limit_h=d.limit_h, copies=d.copies)
            if view.fits_now(job):
                why = f"{who} sends it to {d.site} although on-prem has room"
            else:
                why = (f"{_pool_words(view, job)}, and {who} would rather pay than wait "
                       f"({'after waiting ' + _h(waited_h) if waited_h else 'at once'}): "
                       f"burst to {d.site}")
            if stopped is not None:
                why = f"its spot run on {stopped} failed; {who} sends it to {d.site}"
            if note:
                why += f" {note}"
            extra: dict[str, object] = {"spot": spot}
            if net is not None:
                extra["safety_net"] = net
            return self._said(name, "burst", d.site, view, why, asked=asked, waited_h=waited_h,
                              chosen=d, **extra)
        if view.fits_now(job):
            self._waiting.pop(name, None)
            return self._said(name, "onprem", view.onprem_site, view,
                              f"room on-prem now ({view.free_gpus}/{view.onprem_gpus} GPUs free)",
                              asked=asked, waited_h=waited_h)
        now = view.now
        budget = math.inf if d.wait_h is None else d.wait_h
        prev = self._waiting.get(name)
        self._seq += 1
        self._waiting[name] = _Waiting(since_h=now - waited_h if prev is None else prev.since_h,
                                       check_at_h=now + budget, priority=d.priority,
                                       seq=prev.seq if prev is not None else self._seq)
        return self._said(name, "wait", None, view,
                          f"{_pool_words(view, job)}; {who} queues it for on-prem (it "
                          f"starts when the pool has room; asked again in {_h(budget)})",
                          asked=asked, waited_h=waited_h,
                          wait_h=None if d.wait_h is None else round(d.wait_h, 4),
                          priority=d.priority)

    def _said(self, name: str, kind: Kind, site: str | None, view: LiveView, reason: str, *,
              asked: str, waited_h: float, chosen: Cloud | None = None,
              **extra: object) -> StepDecision:
        job = self.requests[name]
        onprem_ok, sites = view.allowed(job, "policy")
        facts: dict[str, object] = {
            "asked": asked, "strategy": self.strategy.describe(),
            "free_gpus": view.free_gpus, "onprem_gpus": view.onprem_gpus,
            "queued": view.queue_length(), "gpus": job.gpus,
            "allowed_onprem": onprem_ok, "allowed_cloud": list(sites),
            "waited_h": round(waited_h, 4), **extra}
        outside, outside_gpus = view.outside_waiting
        if outside:
            facts["outside_waiting"] = {"requests": outside, "gpus": outside_gpus}
        if self._last.get(name) == (kind, site):  # not recorded (changed() says so): no more
            return StepDecision(job=name, kind=kind, site=site, reason=reason, facts=facts)
        outlook = self.strategy.outlook(job, view)
        wait = outlook.wait_h
        facts["predicted_wait_h"] = None if wait is None or math.isinf(wait) else round(wait, 4)
        if wait is not None and math.isinf(wait):
            facts["wait_unbounded"] = True
        facts["allowance_h"] = (None if outlook.allowance_h is None
                                else round(outlook.allowance_h, 4))
        burst = _burst_option(view, job, chosen)
        facts["burst"] = burst
        if chosen is not None and burst is not None:
            facts["burst_usd"] = burst["usd"]
        allowed, denied, unavailable, held = self._policy(job, view)
        facts["policy"] = {"allowed": allowed, "denied": denied, "unavailable": unavailable,
                           "held": held}
        parts = [reason, _predicted(self.strategy.describe(), wait, outlook.allowance_h),
                 _burst_words(burst, chosen is not None),
                 _policy_words(allowed, denied, unavailable)]
        return StepDecision(job=name, kind=kind, site=site,
                            reason="; ".join(p for p in parts if p), facts=facts,
                            spot=chosen is not None and chosen.spot)

    def _policy(self, job: JobRequest, view: LiveView
                ) -> tuple[list[str], dict[str, list[str]], list[str], list[str]]:
        """The policy verdicts: the sites the job may be sent to now, the sites the rules
        deny with the rules that deny each, and those the rules allow but that cannot take
        work now (no compute backend, or down)."""
        onprem_ok, sites = view.allowed(job, "policy")
        allowed = ([view.onprem_site] if onprem_ok else []) + list(sites)
        e = self.eligibility.get(job.name)
        denied: dict[str, list[str]] = {}
        unavailable: list[str] = []
        held: list[str] = []
        if e is not None:
            denied = {site: sorted({h.rule for h in hits}) for site, hits in e.rejected.items()}
            unavailable = [s for s in e.allowed if s not in allowed]
            held = list(e.held)
        return allowed, denied, unavailable, held

    def changed(self, d: StepDecision) -> bool:
        """Whether ``d`` differs from the last decision recorded for its job (a job waiting
        tick after tick is recorded once)."""
        key = (d.kind, d.site)
        if self._last.get(d.job) == key:
            return False
        self._last[d.job] = key
        return True


def _pool_words(view: LiveView, job: JobRequest) -> str:
    """Why the job does not start on-prem now: the pool is full, or its free GPUs are not on
    one node; and the work not placer's that waits on the cluster ahead of it, if any."""
    free, total = view.free_gpus, view.onprem_gpus
    queued = view.queue_length()
    requests, gpus = view.outside_waiting
    ours = queued - requests
    text = (f"{free} of {total} GPUs are free on-prem but not {job.gpus} on one node"
            if free >= job.gpus else f"on-prem is full ({free}/{total} GPUs free")
    text += f"{', ' if free < job.gpus else ' ('}{ours} queued by placer)"
    if requests:
        text += (f", outside work is waiting ahead ({requests} request"
                 f"{'s' if requests != 1 else ''}, {gpus} GPUs)")
    return text


def _burst_option(view: LiveView, job: JobRequest,
                  chosen: Cloud | None) -> dict[str, object] | None:
    """The cost of bursting: the chosen site's quote, else the cheapest the policies allow,
    with the bill through provisioning and the run and the egress of the job's inputs (the
    cheapest by their sum). None: no allowed site has an offer. An input whose location the
    view does not know (a dataset without one) leaves the egress unknown (``None``), counted
    as 0 in ``usd``."""
    _, allowed = view.allowed(job, "policy")
    best: tuple[float, str, Quote, float, float | None] | None = None
    for q in view.quotes(job.gpus, chosen.spot if chosen is not None else False):
        if q.site not in allowed if chosen is None else q.site != chosen.site:
            continue
        egress: float | None
        try:
            egress = view.transfer(job, q.location)[0]
        except (KeyError, ExecutionError):
            egress = None
        compute = q.bill_usd(view.provisioning_h(q.site, q.spot), view.remaining_h(job))
        total = compute + (egress or 0.0)
        if best is None or (total, q.site) < best[:2]:
            best = (total, q.site, q, compute, egress)
    if best is None:
        return None
    total, site, q, compute, egress = best
    return {"site": site, "instance": q.instance, "nodes": q.nodes, "spot": q.spot,
            "hours": round(view.remaining_h(job), 4), "compute_usd": round(compute, 4),
            "egress_usd": None if egress is None else round(egress, 4),
            "usd": round(total, 4)}


def _predicted(who: str, wait: float | None, allowance: float | None) -> str:
    if wait is None:
        return f"{who} makes no wait prediction"
    text = (f"{who} predicts no release of enough GPUs on-prem" if math.isinf(wait) else
            f"{who} predicts a wait of {_h(wait)} on-prem")
    return text + ("" if allowance is None else
                   f" (it allows {_h(allowance)})" if allowance >= 0 else
                   " (it allows none: on-prem saves nothing)")


def _burst_words(burst: Mapping[str, object] | None, chosen: bool) -> str:
    if burst is None:
        return "no cloud site is allowed" if not chosen else "no quote for that site"
    what = "bursting" if chosen else f"bursting to {burst['site']}"
    egress = burst["egress_usd"]
    return (f"{what} costs about ${burst['usd']:,.2f} ({burst['nodes']}x {burst['instance']}"
            f"{' spot' if burst['spot'] else ''} ${burst['compute_usd']:,.2f} + egress "
            + ("unknown" if egress is None else f"${egress:,.2f}") + ")")


def _policy_words(allowed: Sequence[str], denied: Mapping[str, Sequence[str]],
                  unavailable: Sequence[str]) -> str:
    """What the run's policies allow the job, and deny it with which rules, in words."""
    text = "the policies allow " + (", ".join(allowed) or "no site")
    if denied:
        text += "; deny " + "; ".join(f"{s} (rule {', '.join(r)})" for s, r in denied.items())
    if unavailable:
        text += "; allowed but unavailable now: " + ", ".join(unavailable)
    return text


def _h(hours: float) -> str:
    if math.isinf(hours):
        return "no limit"
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.2f} h"
