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
is something a cluster operator knows from history). Every strategy here can be combined with a
residency filter (``residency="naive"``: mask the regions a job's own inputs forbid).
"""

from __future__ import annotations

from dataclasses import dataclass

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


class _Named(Strategy):
    label = "strategy"

    def __init__(self, *, queue: QueueMode, residency: Residency) -> None:
        self.queue = queue
        self.residency = residency
        mask = "+mask" if residency == "naive" else "+policy" if residency == "policy" else ""
        self.name = self.label + mask

    def _onprem_ok(self, job: JobRequest, view: ClusterView) -> bool:
        ok, _ = view.allowed(job, self.residency)
        return ok and job.gpus <= view.onprem_gpus


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
    ) -> None:
        self.label = "constant-wait" + ("-nosj" if no_sj else "")
        super().__init__(queue=queue, residency=residency)
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

    def __init__(self, *, queue: QueueMode = "fifo", residency: Residency = "none") -> None:
        super().__init__(0.0, queue=queue, residency=residency)
        self.name = "no-wait" + self.name.removeprefix("constant-wait")

    def describe(self) -> str:
        return self.name


class ComputeWait(ConstantWait):
    """Starburst's Compute-Wait: wait proportional to GPUs x estimated run time."""

    def __init__(
        self, budget: float = 0.25, *, ooo: bool = True, residency: Residency = "none"
    ) -> None:
        self.label = "compute-wait" + ("+oo" if ooo else "")
        _Named.__init__(self, queue="ooo" if ooo else "fifo", residency=residency)
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
    ) -> None:
        self.label = "star-wait" + ("" if ooo else "-fifo")
        super().__init__(queue="ooo" if ooo else "fifo", residency=residency)
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
        q = self.cheapest(job, view)
        if q is None:
            return OnPrem()
        if not self._onprem_ok(job, view):
            return Cloud(q.site)
        return Cloud(q.site, limit_h=self.probe_h)

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
    egress included, spot for jobs that checkpoint, failing over down the list."""

    label = "skypilot"

    def __init__(self, *, queue: QueueMode = "fifo", residency: Residency = "none") -> None:
        super().__init__(queue=queue, residency=residency)
        self._failed: dict[int, set[tuple[str, bool]]] = {}

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        if self._onprem_ok(job, view):
            return OnPrem(wait_h=0.0)
        return self.on_timeout(job, view)

    def on_timeout(self, job: JobRequest, view: ClusterView) -> Decision:
        _, sites = view.allowed(job, self.residency)
        failed = self._failed.get(job.id, set())
        best: tuple[float, str, bool] | None = None
        hours = view.remaining_h(job)
        for spot in (True, False) if job.spot_ok else (False,):
            for q in view.quotes(job.gpus, spot):
                if q.site not in sites or (q.site, spot) in failed:
                    continue
                usd, _ = view.transfer(job, q.location)
                # SkyPilot's own estimate (price per hour x estimated run time + egress), as
                # published: no provisioning, no spot overhead. The bill is the engine's.
                cand = (q.usd_per_h * hours + usd, q.site, spot)
                if best is None or cand < best:
                    best = cand
        if best is None:
            self._failed.pop(job.id, None)
            return self.burst(job, view)
        return Cloud(best[1], spot=best[2])

    def on_cloud_stopped(
        self, job: JobRequest, view: ClusterView, site: str, spot: bool, reason: StopReason
    ) -> Decision:
        if reason in ("unavailable", "quota"):
            self._failed.setdefault(job.id, set()).add((site, spot))
        return self.on_timeout(job, view)
