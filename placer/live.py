"""The live :class:`placer.online.ClusterView`: what a strategy sees of real clusters.

The simulator implements :class:`~placer.online.ClusterView` from its state
(``placer.sim.engine``); this module implements it from live state, so a strategy written for
the simulator (placer's own, the baselines) decides for a real run unchanged
(``placer controller --strategy``, issue 13):

* the clock is the wall clock, in hours since the Unix epoch (the journal's timestamps);
* the on-prem pool is the run's one on-prem site: its location from the inventory, its GPUs and
  the free ones from the cluster itself (:class:`placer.backends.CapacityReporter`; a backend
  without it is refused, never guessed);
* the on-prem queue is the work placer knows waits for that pool: steps submitted there that
  have not started, then the jobs the strategy told to wait; running jobs are the steps running
  there, each ending at its start plus its run-time estimate (from the journal);
* quotes, links, provisioning and eligibility are the planner's: :mod:`placer.pricing` over the
  inventory's resolved sites, :func:`placer.policy.evaluate` with lineage over the run's own
  stored policies.

Where live state cannot answer a question the view answers so that it never widens what a job
may do (each such method says so): no spot capacity is ever shown (the executor does not ask
clouds for spot), no copy of data may be kept anywhere (``may_store`` is False: copies are not
carried out live), and every residency mode is answered with the full policy evaluation.

:class:`StrategyStep` is what the executor asks for each ready job of one run: it builds the
view, asks the strategy, and says why, for the journal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
                 reserved: int = 0) -> None:
        self._now = now_h
        self._onprem = onprem
        self._capacity = capacity
        self._cloud = {s.name: s for s in cloud}
        self._gpu = gpu
        self._allowed = dict(allowed)
        self._requests = {r.id: r for r in requests}
        self._queued = sorted(queued, key=lambda q: (q[0], q[1]))
        self._running = sorted(running)
        self._datasets = dict(datasets or {})
        self._replicas = {k: tuple(v) for k, v in (replicas or {}).items()}
        self._output_at = dict(output_at or {})
        self._locations = dict(locations or {})
        for s in (onprem, *cloud):
            self._locations.setdefault(s.location.key, s.location)
        self._network = tuple(network)
        self._catalog = catalog
        self._reserved = max(0, reserved)
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
        """What the cluster reports free, less the GPUs of steps placer has just submitted
        there that the cluster's report does not show yet (never below 0)."""
        return max(0, self._capacity.free - self._reserved)

    def fits_now(self, job: JobRequest) -> bool:
        """Whether the pool has ``job.gpus`` GPUs free now. The cluster reports a count, not
        its nodes: a job larger than any one node's free GPUs may be judged to fit and then
        wait in the cluster's own queue (the re-check on the strategy's side catches it)."""
        return job.gpus <= self.onprem_gpus and job.gpus <= self.free_gpus

    def queue_length(self) -> int:
        return len(self._queued)

    def queued_gpu_hours(self) -> float:
        return sum(q[2].gpus * self.remaining_h(q[2]) for q in self._queued)

    def running_onprem(self) -> Iterator[tuple[float, int]]:
        """The on-prem steps placer runs, by estimated end (start + the job's estimate). Work
        on the cluster that placer did not submit has no known end: it holds its GPUs (they
        are not free), and no release of them is predicted, so a prediction errs long."""
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
        type, on demand. Spot: always None, failing closed (the executor never asks a cloud
        for spot capacity, so no strategy may plan on it)."""
        if spot or site not in self._cloud or gpus < 1:
            return None
        s = self._cloud[site]
        return pricing.cheapest_quote(site, s.location.key, self._offers[site], gpus, False)

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
        """Always False: live clusters give no spot signal placer reads (fail closed)."""
        return False

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


def _check_view(view: LiveView) -> ClusterView:
    return view  # mypy checks that LiveView implements the protocol


# -- a run's jobs as a strategy sees them ------------------------------------------------------


def job_requests(pipeline: Pipeline, gpu_of: Mapping[str, str], *,
                 submitted_h: float = 0.0) -> tuple[JobRequest, ...]:
    """The run's jobs as :class:`~placer.online.JobRequest` values, ids in topological order.

    ``gpu_of`` names each job's GPU type (its planned placement's): the estimate is the job's
    run time on it. A run whose jobs depend on each other is one pipeline (placer's strategy then
    places the whole DAG when its first job is ready, as in the simulator); a run of independent
    jobs is decided job by job.
    """
    order = pipeline.topological_order()
    ids = {name: i for i, name in enumerate(order)}
    graph = pipeline.graph()
    several = graph.number_of_edges() > 0
    out = []
    for name in order:
        job = pipeline.job(name)
        rt = pricing.run_time(job.gpu_types, gpu_of[name])
        if rt is None:
            raise ExecutionError(f"{name}: no run-time estimate for GPU {gpu_of[name]}")
        reads = tuple(r.dataset for r in pipeline.inputs_of(name) if r.dataset is not None)
        out.append(JobRequest(
            id=ids[name], name=name, gpus=job.resources.gpus, estimate_h=rt[1],
            spot_ok=False, submitted_h=submitted_h, pipeline=0 if several else None,
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


@dataclass(frozen=True)
class StepDecision:
    """What the strategy decided for one ready job, and why (recorded in the journal)."""

    job: str
    kind: Kind
    site: str | None
    """Where to submit now (``None`` for ``wait``)."""
    reason: str
    facts: dict[str, object] = field(default_factory=dict)
    """The figures behind it: free GPUs, queue, the waiting budget, the cheapest allowed burst,
    the sites the policies allow."""


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

    What it remembers lives in memory: an executor rebuilt from the journal asks again with
    ``on_ready`` (the wait so far is not counted twice, nor remembered).
    """

    def __init__(self, strategy: Strategy, requests: Sequence[JobRequest]) -> None:
        self.strategy = strategy
        self.requests = {r.name: r for r in requests}
        self._started = False
        self._waiting: dict[str, _Waiting] = {}
        self._seq = 0
        self._last: dict[str, tuple[Kind, str | None]] = {}

    @property
    def waiting(self) -> Mapping[str, tuple[float, int]]:
        """Jobs waiting for the on-prem pool: ``(priority, seq)`` each."""
        return {n: (w.priority, w.seq) for n, w in self._waiting.items()}

    def queued(self) -> list[Queued]:
        return [(w.priority, w.seq, self.requests[n]) for n, w in self._waiting.items()]

    def decide(self, name: str, build: Callable[[], LiveView]) -> StepDecision:
        """The decision for ready job ``name``: ``build()`` gives the view of now."""
        view = build()
        job = self.requests[name]
        if not self._started:
            self.strategy.start(view, tuple(self.requests.values()))
            self._started = True
        w = self._waiting.get(name)
        if w is None:
            d = self.strategy.on_ready(job, view)
            asked = "on_ready"
        elif view.now >= w.check_at_h:
            d = self.strategy.on_timeout(job, view)
            asked = "on_timeout"
        else:  # waiting in the queue: it starts when the pool has room, as a queue does
            if view.fits_now(job):
                del self._waiting[name]
                return self._said(name, "onprem", view.onprem_site, view,
                                  f"room on-prem now ({view.free_gpus}/{view.onprem_gpus} GPUs "
                                  f"free) after waiting {_h(view.now - w.since_h)}", asked="queue")
            return self._said(name, "wait", None, view, "", asked="queue")
        return self._carry_out(name, d, view, asked, waited_h=0.0 if w is None
                               else view.now - w.since_h)

    def _carry_out(self, name: str, d: Decision, view: LiveView, asked: str,
                   waited_h: float) -> StepDecision:
        job = self.requests[name]
        if isinstance(d, Cloud):
            self._waiting.pop(name, None)
            q = view.quote(d.site, job.gpus, False)
            usd = None if q is None else _bill(view, q, job.estimate_h)
            bill = ("" if q is None else
                    f": about ${usd:,.2f} for {_h(job.estimate_h)} on {q.nodes}x {q.instance}")
            who = self.strategy.describe()
            if view.fits_now(job):
                why = f"{who} sends it to {d.site} although on-prem has room{bill}"
            else:
                why = (f"on-prem is full ({view.free_gpus}/{view.onprem_gpus} GPUs free, "
                       f"{view.queue_length()} queued) and {who} would rather pay than wait "
                       f"({'after waiting ' + _h(waited_h) if waited_h else 'at once'}): "
                       f"burst to {d.site}{bill}")
            why += f"; {_verdicts(view, job)}"
            return self._said(name, "burst", d.site, view, why, asked=asked,
                              burst_usd=None if usd is None else round(usd, 4))
        if view.fits_now(job):
            self._waiting.pop(name, None)
            return self._said(name, "onprem", view.onprem_site, view,
                              f"room on-prem now ({view.free_gpus}/{view.onprem_gpus} GPUs free)",
                              asked=asked)
        now = view.now
        budget = math.inf if d.wait_h is None else d.wait_h
        prev = self._waiting.get(name)
        self._seq += 1
        self._waiting[name] = _Waiting(since_h=now - waited_h if prev is None else prev.since_h,
                                       check_at_h=now + budget, priority=d.priority,
                                       seq=prev.seq if prev is not None else self._seq)
        cheapest = next((q for q in view.quotes(job.gpus, False)
                         if q.site in view.allowed(job, "policy")[1]), None)
        burst = ("no cloud site is allowed" if cheapest is None else
                 f"bursting to {cheapest.site} would cost about "
                 f"${_bill(view, cheapest, job.estimate_h):,.2f}")
        return self._said(name, "wait", None, view,
                          f"on-prem is full ({view.free_gpus}/{view.onprem_gpus} GPUs free, "
                          f"{view.queue_length()} queued); {self.strategy.describe()} queues it "
                          f"for on-prem (it starts when the pool has room; asked again in "
                          f"{_h(budget)}); {burst}; {_verdicts(view, job)}",
                          asked=asked, wait_h=None if d.wait_h is None else round(d.wait_h, 4))

    def _said(self, name: str, kind: Kind, site: str | None, view: LiveView, reason: str, *,
              asked: str, **extra: object) -> StepDecision:
        job = self.requests[name]
        onprem_ok, sites = view.allowed(job, "policy")
        facts: dict[str, object] = {
            "asked": asked, "strategy": self.strategy.describe(),
            "free_gpus": view.free_gpus, "onprem_gpus": view.onprem_gpus,
            "queued": view.queue_length(), "gpus": job.gpus,
            "allowed_onprem": onprem_ok, "allowed_cloud": list(sites), **extra}
        return StepDecision(job=name, kind=kind, site=site, reason=reason, facts=facts)

    def changed(self, d: StepDecision) -> bool:
        """Whether ``d`` differs from the last decision recorded for its job (a job waiting
        tick after tick is recorded once)."""
        key = (d.kind, d.site)
        if self._last.get(d.job) == key:
            return False
        self._last[d.job] = key
        return True


def _verdicts(view: LiveView, job: JobRequest) -> str:
    """What the run's policies allow the job, in words."""
    onprem_ok, sites = view.allowed(job, "policy")
    where = ([view.onprem_site] if onprem_ok else []) + list(sites)
    return "the policies allow " + (", ".join(where) or "no site")


def _bill(view: LiveView, q: Quote, run_h: float) -> float:
    """What a burst on ``q`` is billed (provisioning and the run, :meth:`Quote.bill_usd`)."""
    return q.bill_usd(view.provisioning_h(q.site, False), run_h)


def _h(hours: float) -> str:
    if math.isinf(hours):
        return "no limit"
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.2f} h"
