"""The published strategies placer is measured against, written from their papers' descriptions.

* **On-prem only** (Starburst's "Infinite-Wait"): never rents; the JCT reference at $0.
* **No-Wait**: burst at once when the job cannot start on-prem (cluster-autoscaler, Slurm elastic
  nodes, Kueue flavour order all behave this way); the cost reference.
* **Constant-Wait** (Ambati et al., "Waiting Game", SC'20; "Good Things Come to Those Who
  Wait", SoCC'21): every job waits the same time before bursting; **No-SJ** sends short jobs
  (estimated run time no longer than the wait) to the cloud at once.
* **Compute-Wait** (Luo et al., "Starburst", USENIX ATC'24): a job waits in proportion to its
  compute, GPUs x estimated run time, so large jobs wait long enough to run on-prem and small
  ones burst soon; **+OO** scans the queue out of order so a small job that fits starts behind a
  large one that does not.
* **Star-Wait** (Starburst, for jobs without run-time estimates): start at once, on-prem if the
  job fits, else in the cloud; a cloud run still going after ``probe_h`` (0.25 h) is stopped and
  the job goes back to the on-prem queue with a timeout of 3x its Resource-Wait (proportional to
  its GPUs), after which it bursts for good.
* **SkyPilot-style placement** (Yang et al., NSDI'23): No-Wait timing, but the burst goes to the
  cheapest (site, offer) for this job's estimated cost, inputs' egress included, on spot when the
  job checkpoints (SkyPilot's managed spot), failing over to the next offer, then on demand.

Waiting budgets follow Starburst's framework: a policy run at budget ``b`` allots in total
``b x`` the sum of the jobs' (estimated) run times, shared out by the policy's own rule. The
per-job scale is computed over the workload given to :meth:`Strategy.start` (the mean run time
is something a cluster operator knows from history).

**Fair actions** (issue 13). *When* a baseline bursts is its paper's rule; *where* it bursts is
not part of any of these papers' contributions, and giving them the cheapest on-demand offer,
blind to data, measured what the baselines were not given rather than what placer does. So by
default (``placement="fair"``) a burst goes, as SkyPilot's optimizer places it, to the offer of
least expected cost among every allowed (site, on-demand or spot) pair: the bill through
provisioning and the run (:func:`placer.pricing.cloud_option`, spot stretched by the same
:data:`SPOT_OVERHEAD` placer's strategy plans with), plus the egress of bringing the job's
inputs there from their cheapest ready copies (which includes the scenario's input cache when
it is on). Spot is used only for jobs that checkpoint and only where the site has capacity now.
``placement="literal"`` is the papers' own variant (cheapest on-demand offer, blind to data),
kept as ``-literal`` rows.

Residency: ``residency="policy"`` (``+mask``) masks what placer's policy evaluation forbids,
lineage included, so derived data keeps the residency of its sources; ``residency="naive"``
(``+mask-literal``) masks only what the datasets a job reads *directly* forbid (a region filter
bolted onto a baseline), kept for comparison.

A burst refused by the cloud (quota full, spot gone) asks again at the same instant; each
baseline remembers what was refused *at that instant* and never asks for it again then, so it
cannot loop. When every allowed cloud option is refused it waits on-prem if it may and fits,
and otherwise raises :class:`~placer.errors.SimulationError` naming the refusals: the engine
has no way to hold a job, and queueing it on-prem would break the pool or the policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from placer import pricing
from placer.errors import SimulationError
from placer.online import (
    Cloud,
    ClusterView,
    Decision,
    JobRequest,
    OnPrem,
    QueueMode,
    Residency,
    StopReason,
    Strategy,
)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


Placement = Literal["fair", "literal"]
"""Where a baseline bursts: ``"fair"``, the offer of least expected cost with egress and spot
(SkyPilot's optimizer); ``"literal"``, the cheapest on-demand offer, blind to data (the
papers')."""

SPOT_OVERHEAD = 0.1
"""Expected extra run time on spot as a fraction: the estimate placer's strategy prices spot
with (:class:`~placer.sim.placer_strategy.PlacerStrategy`'s ``spot_overhead``), through the
same :func:`placer.pricing.cloud_option`."""

_MASKS: dict[Residency, str] = {"none": "", "policy": "+mask", "naive": "+mask-literal"}


class _Named(Strategy):
    label = "strategy"

    def __init__(
        self, *, queue: QueueMode, residency: Residency, placement: Placement = "fair"
    ) -> None:
        self.queue = queue
        self.residency = residency
        self.placement = placement
        self.name = self.label + ("-literal" if placement == "literal" else "")
        self.name += _MASKS[residency]
        # (site, spot) refused per job, and the instant they were refused at: a refused launch
        # is asked about again at the same instant, and only then is the refusal known to hold
        self._refused: dict[int, tuple[float, set[tuple[str, bool]]]] = {}

    def _onprem_ok(self, job: JobRequest, view: ClusterView) -> bool:
        ok, _ = view.allowed(job, self.residency)
        return ok and job.gpus <= view.onprem_gpus

    # -- where to burst --------------------------------------------------------------------------
    def _refused_now(self, job: JobRequest, view: ClusterView) -> set[tuple[str, bool]]:
        got = self._refused.get(job.id)
        return got[1] if got is not None and got[0] == view.now else set()

    def _refuse(self, job: JobRequest, view: ClusterView, site: str, spot: bool) -> None:
        refused = self._refused_now(job, view)
        refused.add((site, spot))
        self._refused[job.id] = (view.now, refused)

    def cloud_choice(self, job: JobRequest, view: ClusterView) -> Cloud | None:
        """Where this baseline would burst ``job`` now (see the module docstring), leaving out
        what the cloud refused at this instant; None when nothing allowed is left."""
        _, sites = view.allowed(job, self.residency)
        allowed = set(sites)
        refused = self._refused_now(job, view)
        if self.placement == "literal":
            for q in view.quotes(job.gpus, False):
                if q.site in allowed and (q.site, False) not in refused:
                    return Cloud(q.site)
            return None
        hours = view.remaining_h(job)
        best: tuple[float, str, bool] | None = None
        for spot in (False, True) if job.spot_ok else (False,):
            for q in view.quotes(job.gpus, spot):
                if q.site not in allowed or (q.site, spot) in refused:
                    continue
                if spot and not view.spot_available(q.site, q.nodes):
                    continue
                opt = pricing.cloud_option(
                    q,
                    run_h=hours,
                    provisioning_h=view.provisioning_h(q.site, spot),
                    spot_overhead=SPOT_OVERHEAD,
                )
                egress, _ = view.transfer(job, q.location)
                # ties: the cheaper, then by site name, then on demand before spot
                cand = (opt.compute_usd + egress, q.site, spot)
                if best is None or cand < best:
                    best = cand
        return None if best is None else Cloud(best[1], spot=best[2])

    def burst(
        self, job: JobRequest, view: ClusterView, *, exclude: str | None = None
    ) -> Decision:
        """Burst to :meth:`cloud_choice`; with nothing left, wait on-prem if the job may and
        fits, else refuse loudly (``exclude`` is kept for the base class's signature: refusals
        are remembered instead)."""
        if exclude is not None:
            self._refuse(job, view, exclude, False)
        d = self.cloud_choice(job, view)
        if d is not None:
            return d
        return self._no_cloud(job, view)

    def _no_cloud(self, job: JobRequest, view: ClusterView) -> Decision:
        if self._onprem_ok(job, view):
            return OnPrem()
        refused = sorted(self._refused_now(job, view))
        why = ", ".join(f"{s}{'/spot' if spot else ''}" for s, spot in refused) or "none"
        ok, _ = view.allowed(job, self.residency)
        onprem = (
            f"it needs {job.gpus} GPUs and the on-prem pool has {view.onprem_gpus}"
            if ok
            else "the policies forbid on-prem"
        )
        raise SimulationError(
            f"strategy {self.name!r} cannot place job {job.name!r} at {view.now:g} h: "
            f"{onprem}, and every cloud option it may use was refused now (refused: {why}); "
            "the simulator cannot hold a job, so it refuses loudly rather than loop or break "
            "residency (raise the cloud quotas or the pool)"
        )

    def on_cloud_stopped(
        self, job: JobRequest, view: ClusterView, site: str, spot: bool, reason: StopReason
    ) -> Decision:
        if reason in ("quota", "unavailable"):
            self._refuse(job, view, site, spot)
        return self.burst(job, view)

    def describe(self) -> str:
        return self.name


class OnPremOnly(_Named):
    label = "onprem-only"

    def __init__(self, *, queue: QueueMode = "backfill", residency: Residency = "none") -> None:
        super().__init__(queue=queue, residency=residency)

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        return OnPrem()


@dataclass
class _Budget:
    """Per-job waiting time under a total budget of ``b`` x the summed run time."""

    b: float
    scale: float = 0.0


class ConstantWait(_Named):
    label = "constant-wait"

    def __init__(
        self,
        budget: float = 0.25,
        *,
        no_sj: bool = False,
        queue: QueueMode = "fifo",
        residency: Residency = "none",
        placement: Placement = "fair",
    ) -> None:
        self.label = "constant-wait" + ("-nosj" if no_sj else "")
        super().__init__(queue=queue, residency=residency, placement=placement)
        self.budget = _Budget(budget)
        self.no_sj = no_sj

    def start(self, view: ClusterView, jobs: tuple[JobRequest, ...]) -> None:
        self.budget.scale = self.budget.b * _mean([j.estimate_h for j in jobs])

    def wait(self, job: JobRequest) -> float:
        return self.budget.scale

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        if not self._onprem_ok(job, view):
            return self.burst(job, view)
        wait = self.wait(job)
        if self.no_sj and job.estimate_h <= wait:
            return self.burst(job, view)
        return OnPrem(wait_h=wait)

    def describe(self) -> str:
        return f"{self.name}(b={self.budget.b:g})"


class NoWait(ConstantWait):
    """Burst at once when the job cannot start on-prem now."""

    def __init__(
        self,
        *,
        queue: QueueMode = "fifo",
        residency: Residency = "none",
        placement: Placement = "fair",
    ) -> None:
        super().__init__(0.0, queue=queue, residency=residency, placement=placement)
        self.name = "no-wait" + self.name.removeprefix("constant-wait")

    def describe(self) -> str:
        return self.name


class ComputeWait(ConstantWait):
    """Starburst's Compute-Wait: wait proportional to GPUs x estimated run time."""

    def __init__(
        self,
        budget: float = 0.25,
        *,
        ooo: bool = True,
        residency: Residency = "none",
        placement: Placement = "fair",
    ) -> None:
        self.label = "compute-wait" + ("+oo" if ooo else "")
        _Named.__init__(
            self, queue="ooo" if ooo else "fifo", residency=residency, placement=placement
        )
        self.budget = _Budget(budget)
        self.no_sj = False

    def start(self, view: ClusterView, jobs: tuple[JobRequest, ...]) -> None:
        compute = _mean([j.gpus * j.estimate_h for j in jobs])
        runtime = _mean([j.estimate_h for j in jobs])
        self.budget.scale = self.budget.b * runtime / compute if compute else 0.0

    def wait(self, job: JobRequest) -> float:
        return self.budget.scale * job.gpus * job.estimate_h


class StarWait(_Named):
    """Starburst's Star-Wait, for jobs whose run time is not known in advance."""

    def __init__(
        self,
        budget: float = 0.25,
        *,
        probe_h: float = 0.25,
        ooo: bool = True,
        residency: Residency = "none",
        placement: Placement = "fair",
    ) -> None:
        self.label = "star-wait" + ("" if ooo else "-fifo")
        super().__init__(queue="ooo" if ooo else "fifo", residency=residency, placement=placement)
        self.budget = _Budget(budget)
        self.probe_h = probe_h

    def start(self, view: ClusterView, jobs: tuple[JobRequest, ...]) -> None:
        # Resource-Wait: proportional to GPUs, scaled to the budget with the mean run time.
        gpus = _mean([float(j.gpus) for j in jobs])
        runtime = _mean([j.estimate_h for j in jobs])
        self.budget.scale = self.budget.b * runtime / gpus if gpus else 0.0

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        if self._onprem_ok(job, view) and view.fits_now(job):
            return OnPrem(wait_h=0.0)
        d = self.cloud_choice(job, view)
        if d is None:
            return self._no_cloud(job, view)
        if not self._onprem_ok(job, view):
            return d
        return Cloud(d.site, spot=d.spot, limit_h=self.probe_h)

    def on_cloud_stopped(
        self, job: JobRequest, view: ClusterView, site: str, spot: bool, reason: StopReason
    ) -> Decision:
        if reason == "limit":
            return OnPrem(wait_h=3.0 * self.budget.scale * job.gpus)
        return super().on_cloud_stopped(job, view, site, spot, reason)

    def describe(self) -> str:
        return f"{self.name}(b={self.budget.b:g})"


class SkyPilotCheapest(_Named):
    """No-Wait timing with SkyPilot-style cloud placement: the cheapest offer for this job,
    egress included, spot for jobs that checkpoint, failing over down the list.

    The estimate is SkyPilot's as published (price per hour x estimated run time + egress: no
    provisioning, no spot overhead), so this is the paper's own variant; the fair No-Wait
    (``no-wait``) is the same timing with the expected-cost estimate. Offers refused at an
    instant are not asked for again at that instant (SkyPilot's failover); when all are, it
    waits on-prem if it may, else refuses loudly (:meth:`_Named._no_cloud`)."""

    label = "skypilot"

    def __init__(self, *, queue: QueueMode = "fifo", residency: Residency = "none") -> None:
        super().__init__(queue=queue, residency=residency)

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        if self._onprem_ok(job, view):
            return OnPrem(wait_h=0.0)
        return self.on_timeout(job, view)

    def on_timeout(self, job: JobRequest, view: ClusterView) -> Decision:
        _, sites = view.allowed(job, self.residency)
        refused = self._refused_now(job, view)
        best: tuple[float, str, bool] | None = None
        hours = view.remaining_h(job)
        for spot in (True, False) if job.spot_ok else (False,):
            for q in view.quotes(job.gpus, spot):
                if q.site not in sites or (q.site, spot) in refused:
                    continue
                usd, _ = view.transfer(job, q.location)
                # SkyPilot's own estimate (price per hour x estimated run time + egress), as
                # published: no provisioning, no spot overhead. The bill is the engine's.
                cand = (q.usd_per_h * hours + usd, q.site, spot)
                if best is None or cand < best:
                    best = cand
        if best is None:
            return self._no_cloud(job, view)
        return Cloud(best[1], spot=best[2])

    def burst(
        self, job: JobRequest, view: ClusterView, *, exclude: str | None = None
    ) -> Decision:
        if exclude is not None:
            self._refuse(job, view, exclude, False)
        return self.on_timeout(job, view)
