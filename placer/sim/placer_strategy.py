"""placer's own strategy: predict the wait, burst at once when waiting does not pay.

The rule, and why. Each job is either run on-prem, after some queueing wait ``W``, or in the
cloud now at a cost ``C`` (its cheapest allowed option that meets its deadline). Minimising
cloud spend subject to a bound on average completion time has the Lagrangian
``sum(C over burst jobs) + lambda * sum(W over queued jobs)``, minimised job by job by queueing
exactly when ``W < C / lambda``. So a job's *allowance* is proportional to what bursting it
would cost: Starburst's Compute-Wait has the same shape under its one-price model (cost is
proportional to GPUs x run time). The difference is when the wait is paid. Compute-Wait learns
that a job will not start in time by letting it wait out its allowance and then bursts it anyway,
so every burst job pays both the wait and the cloud bill. placer predicts the wait from the
running jobs' estimated ends and the queue ahead, and decides at once: jobs it queues are the
ones expected to start within their allowance, jobs it bursts do not wait. Predictions can be
wrong (estimates, node fragmentation, later arrivals backfilling), so a queued job's prediction
is checked again when it runs out, and it bursts then if the new one is past its allowance.

Beyond Starburst's model, ``C`` is a real price: every allowed site (placer's policy evaluation,
lineage included, so derived data keeps the residency of its sources), on demand or spot,
priced by :mod:`placer.pricing` exactly as ``placer plan`` prices it (inputs staged, then the
node requested and billed through provisioning and the run), plus the egress of the job's
inputs. Spot is used only when the job
checkpoints, the site has capacity now, and the deadline leaves room for a preemption and a
restart on demand; after a preemption the job is placed again with the work it kept.

Data placement is a decision too. Where a dataset lives is given, but a copy can be kept
wherever placer's policies let a job reading it run (copies of EU data stay in the EEA). Each
read of a dataset away from its copies pays egress: rent. A replica pays one transfer and then
storage: buying. placer rents until the egress paid for reads of a dataset at one location
would have bought a copy and kept it for ``keep_h`` hours, then buys (the deterministic
ski-rental rule, never more than twice what knowing the future would have cost). Later jobs at
that location read the copy for free, which also raises what running on-prem saves.

``budget`` plays the role of Starburst's waiting budget: allowances are normalised so that at
budget ``b`` they add up to ``b`` x the summed run time, as Compute-Wait's do.

The strategy implements :class:`placer.online.Strategy` and sees the world only through
:class:`placer.online.ClusterView`, so it runs unchanged wherever a view is implemented.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import replace

from placer import pricing
from placer.errors import SimulationError
from placer.online import (
    Cloud,
    ClusterView,
    Decision,
    JobRequest,
    OnPrem,
    Outlook,
    Queued,
    Replicate,
    StopReason,
    Strategy,
)
from placer.optimizer import Edge, Option, Problem, solve
from placer.pricing import Quote

_END = (math.inf, math.inf)
"""A place in the queue after every queued job."""

_NOT_NOW = -math.inf
"""The priority of a queued request the cluster reports as fitting no node now (the live
view's, :class:`placer.live.LiveView`; the simulator queues none): the replay starts it at a
release, never on the GPUs free now."""


class PlacerStrategy(Strategy):
    """Predictive, residency- and spot-aware waiting; see the module docstring."""

    queue = "ooo"
    residency = "policy"
    fit = "best"

    def __init__(
        self,
        budget: float = 0.5,
        *,
        spot: bool = True,
        spot_overhead: float = 0.1,
        spot_slack: float = 0.5,
        tail_quantile: float | None = 0.99,
        tail_margin: float = 0.02,
        replicate: bool = True,
        keep_h: float = 720.0,
    ) -> None:
        """
        Args:
            budget: waiting budget (see the module docstring).
            spot: use spot offers at all.
            spot_overhead: expected extra run time on spot (preemptions, restarts), as a
                fraction, when comparing spot with on-demand.
            spot_slack: spot only if the deadline leaves at least this fraction of the
                remaining run time spare (room to be preempted and finish on demand).
            tail_quantile: the tail bound: waiting never makes a job end later than this
                quantile of the workload's estimated run times (times ``1 + tail_margin``)
                after it was ready, unless the job alone runs longer. None: no bound.
            tail_margin: see ``tail_quantile``.
            replicate: keep copies of datasets where they are read often (see the module
                docstring); False: every job reads from where its data lives.
            keep_h: the storage horizon a copy must pay for out of the egress it saves.
        """
        self.budget = budget
        self.use_spot = spot
        self.spot_overhead = spot_overhead
        self.spot_slack = spot_slack
        self.tail_quantile = tail_quantile
        self.tail_margin = tail_margin
        self.replicate = replicate
        self.keep_h = keep_h
        self.max_steps = 512
        self.name = "placer"
        self._scale = 0.0
        self._tail = math.inf
        self._ready: dict[int, float] = {}
        self._prio: dict[int, float] = {}  # queue priority of each job placer queued
        # jobs queued at a priority other than their _prio: (_prio or -inf, priority, GPUs)
        self._stale: dict[int, tuple[float, float, int]] = {}
        self._allow: dict[int, float] = {}
        self._failed: dict[int, set[tuple[str, bool]]] = {}
        # spot launches and preemptions seen per site: the preemption rate is learnt online
        self._spot_runs: dict[str, int] = {}
        self._spot_lost: dict[str, int] = {}
        self._jobs: tuple[JobRequest, ...] = ()
        self._pipelines: dict[int, list[int]] = {}
        self._plan: dict[
            int, Cloud | None
        ] = {}  # pipeline job -> planned cloud run, None = on-prem
        self._rent: dict[tuple[str, str], float] = {}  # egress paid per (dataset, location)
        self._rented: set[tuple[int, str]] = set()  # (job, location) reads already counted

    def describe(self) -> str:
        return f"placer(b={self.budget:g})"

    # -- setup -----------------------------------------------------------------------------------
    def start(self, view: ClusterView, jobs: tuple[JobRequest, ...]) -> None:
        self._jobs = jobs
        for job in jobs:
            if job.pipeline is not None:
                self._pipelines.setdefault(job.pipeline, []).append(job.id)
        costs = []
        for job in jobs:
            c = self._best(job, view, at=None, deadline=None)
            if c is not None:
                costs.append(c[0])
        runtime = sum(j.estimate_h for j in jobs) / len(jobs) if jobs else 0.0
        mean_cost = sum(costs) / len(costs) if costs else 0.0
        self._scale = self.budget * runtime / mean_cost if mean_cost > 0 else 0.0
        if self.tail_quantile is not None and jobs:
            ests = sorted(j.estimate_h for j in jobs)
            self._tail = ests[min(len(ests) - 1, int(self.tail_quantile * len(ests)))]
            self._tail *= 1.0 + self.tail_margin

    # -- the cloud side --------------------------------------------------------------------------
    def _cloud_option(self, q: Quote, view: ClusterView, run_h: float) -> Option:
        """The seam's option for ``q`` (:func:`placer.pricing.cloud_option`: the bill through
        provisioning and the run, spot stretched by the expected overhead), with this
        strategy's own layer on top: a spot bill times the learnt expected launches per
        finished run (:meth:`_spot_factor`)."""
        opt = pricing.cloud_option(
            q,
            run_h=run_h,
            provisioning_h=view.provisioning_h(q.site, q.spot),
            spot_overhead=self.spot_overhead,
        )
        if q.spot:
            opt = replace(opt, compute_usd=opt.compute_usd * self._spot_factor(q.site))
        return opt

    def _best(
        self, job: JobRequest, view: ClusterView, *, at: float | None, deadline: float | None
    ) -> tuple[float, float, Cloud] | None:
        """Cheapest allowed cloud option meeting ``deadline`` as ``(usd, finish, decision)``;
        the fastest one if none meets it; None if no cloud site is allowed. ``at=None`` prices
        the job for the budget's normalisation: whole estimate, inputs not yet placed, spot
        capacity assumed."""
        _, sites = view.allowed(job, self.residency)
        if not sites:
            return None
        allowed = set(sites)
        failed = self._failed.get(job.id, ())
        live = at is not None
        t0 = at if at is not None else 0.0
        hours = view.remaining_h(job) if live else job.estimate_h
        best: tuple[float, float, Cloud] | None = None
        fastest: tuple[float, float, Cloud] | None = None
        for spot in (False, True) if (self.use_spot and job.spot_ok) else (False,):
            for q in view.quotes(job.gpus, spot):
                if q.site not in allowed or (q.site, spot) in failed:
                    continue
                if spot and live and not view.spot_available(q.site, q.nodes):
                    continue
                usd_in, h_in = view.transfer(job, q.location) if live else (0.0, 0.0)
                opt = self._cloud_option(q, view, hours)
                # inputs staged first, then provisioning, then the run (placer.pricing's order)
                finish = t0 + h_in + opt.start_delay_h + opt.duration_h
                if spot and deadline is not None and finish + self.spot_slack * hours > deadline:
                    continue
                usd = opt.compute_usd + usd_in
                if spot:  # a relaunch after a preemption stages its inputs again
                    usd += usd_in * (self._spot_factor(q.site) - 1.0)
                cand = (usd, finish, Cloud(q.site, spot=spot))
                if (deadline is None or finish <= deadline) and (
                    best is None or cand[:2] < best[:2]
                ):
                    best = cand
                if fastest is None or (finish, usd) < (fastest[1], fastest[0]):
                    fastest = cand
        return best or fastest

    # -- the on-prem side ------------------------------------------------------------------------
    def _predict_wait(
        self, job: JobRequest, view: ClusterView, priority: float = math.inf
    ) -> float:
        """Hours until ``job`` would start on-prem if queued now at ``priority``.

        Replays the queue's own discipline (out-of-order: at each release, every job that fits
        starts, in queue order) on GPU counts, with the estimated ends of running jobs, the
        job taking its place among the queued ones by priority (:meth:`_place`). Node
        fragmentation is ignored, hence the re-check when the predicted wait runs out, except
        for requests queued at priority ``-inf`` (:data:`_NOT_NOW`: the cluster says they fit no
        node now): they do not start on the GPUs free now, and while one heads its GPU count,
        neither does a job of that count behind it (it would not fit either), until a release.

        The replay walks neither the queue nor the running jobs. Within one pass over the
        queue the free GPUs only go down, so once a job of ``g`` GPUs does not fit, no later
        job of ``g`` GPUs does: what a pass starts is, for each GPU count, the first jobs left
        of that count. So the replay keeps a cursor per GPU count
        (:meth:`~placer.online.ClusterView.queued_by_gpus`, each count in queue order) and
        starts the earliest cursor among the counts that fit; releases come from the running
        jobs' ends, read earliest first, and from the replay's own starts. A prediction costs
        O(log n) to place the job plus O(GPU counts) per release and per start it replays (at
        most ``max_steps`` releases), whatever the lengths of the queue and the running set;
        its result is, bit for bit, that of a replay over the whole queue.
        """
        if view.fits_now(job) and not view.queue_length():
            return 0.0
        now = view.now
        free = view.free_gpus
        queues = view.queued_by_gpus()
        mark = self._place(priority, queues)
        sizes = sorted(queues)
        lanes = [queues[g] for g in sizes]
        n = len(sizes)
        cursor = [0] * n  # jobs of each GPU count the replay has started
        heads: list[Queued | None] = [lane[0] if lane else None for lane in lanes]
        lo = min((sizes[i] for i in range(n) if heads[i] is not None), default=math.inf)
        need = job.gpus
        # releases: the running jobs' ends, earliest first (one past its estimate is taken to
        # end now), and a heap of the replayed starts' ends
        running = view.running_onprem()
        item = next(running, None)
        te, ge = (0.0, 0) if item is None else (now if now > item[0] else item[0], item[1])
        ends: list[tuple[float, int]] = []
        remaining, push, pop = view.remaining_h, heapq.heappush, heapq.heappop
        t = now
        for _ in range(self.max_steps):
            reached = False  # whether this pass has come to the job's place in the queue
            while free and (free >= lo or free >= need):
                pick = -1
                head: Queued | None = None  # the next job in queue order of a count that fits
                for i in range(n):
                    if sizes[i] > free:
                        break
                    h = heads[i]
                    if h is not None and (head is None or h < head) and (
                            t > now or h[0] != _NOT_NOW):
                        pick, head = i, h
                if not reached and (head is None or not head < mark):
                    reached = True
                    if need <= free and (t > now or view.fits_now(job)):
                        return t - now
                    # too few GPUs, or enough but not on one node (fragmentation): the pass
                    # goes on past the job, which waits for the next release
                    continue
                if head is None:
                    break
                g = sizes[pick]
                free -= g
                k = cursor[pick] = cursor[pick] + 1
                lane = lanes[pick]
                if k < len(lane):
                    heads[pick] = lane[k]
                else:
                    heads[pick] = None
                    lo = min((sizes[i] for i in range(n) if heads[i] is not None),
                             default=math.inf)
                push(ends, (t + remaining(head[2]), g))
            # the next release: every end at the earliest time left
            if item is None and not ends:
                return math.inf
            t = te if item is not None and (not ends or te <= ends[0][0]) else ends[0][0]
            while item is not None and te <= t:
                free += ge
                item = next(running, None)
                if item is not None:
                    te, ge = now if now > item[0] else item[0], item[1]
            while ends and ends[0][0] <= t:
                free += pop(ends)[1]
        return math.inf

    def _place(
        self, priority: float, queues: Mapping[int, Sequence[Queued]]
    ) -> tuple[float, float]:
        """Where a job queued now at ``priority`` goes in the queue, as the ``(priority, seq)``
        of the queued job it goes just before (``(inf, inf)``: at the end).

        That is the first queued job whose priority, as this strategy queued it (``_prio``; a
        job queued without one counts as lowest), is above ``priority``: the queue is in
        priority order, so a bisection per GPU count finds it. ``priority`` is a ready time
        plus an allowance (or infinite), never negative, so a job queued at priority 0
        without one of this strategy's priorities sorts as it does in the queue. A job queued
        at a priority other than its ``_prio`` (plain ``OnPrem()`` after its cloud options
        were all refused; :attr:`_stale`) is placed by its ``_prio``, as the whole-queue
        replay did: that costs a scan of the jobs queued at its priority, while it waits.
        """
        mark = _END
        stale = self._stale
        for lane in queues.values():
            k = bisect_right(lane, (priority, math.inf))
            while k < len(lane):
                odd = stale.get(lane[k][2].id)
                if odd is None or odd[0] > priority:
                    break
                k += 1  # queued above ``priority`` but keyed at or below it
            if k < len(lane) and lane[k] < mark:
                mark = (lane[k][0], lane[k][1])
        for j, (key, queued_at, gpus) in list(stale.items()):
            if not key > priority >= queued_at:
                continue
            # keyed above ``priority`` but queued at or below it: find it among the jobs queued
            # at exactly its priority (a job that has left the queue never comes back to it
            # without a decision, which settles whether it is stale again)
            lane = queues.get(gpus, ())
            k = bisect_left(lane, (queued_at,))
            while k < len(lane) and lane[k][0] == queued_at and lane[k][2].id != j:
                k += 1
            if k < len(lane) and lane[k][2].id == j:
                if lane[k] < mark:
                    mark = (lane[k][0], lane[k][1])
            else:
                del stale[j]
        return mark

    def _allowance(self, job: JobRequest, saving: float) -> float:
        """``(C - C_onprem) / lambda``: proportional to what running on-prem saves, within
        the tail bound; negative when on-prem is dearer (its inputs' egress)."""
        if saving <= 0:
            return -1.0
        a = self._scale * saving
        if job.estimate_h <= self._tail:
            a = min(a, self._tail - job.estimate_h)
        return a

    # -- pipelines: the optimizer places the whole DAG -----------------------------------------
    def _spot_factor(self, site: str) -> float:
        """Expected launches per completed spot run, ``1 / (1 - p)``, with the preemption
        probability ``p`` learnt from this run's launches (Laplace prior)."""
        p = (self._spot_lost.get(site, 0) + 1) / (self._spot_runs.get(site, 0) + 4)
        return 1.0 / (1.0 - min(p, 0.9))

    def _plan_pipeline(self, root: JobRequest, view: ClusterView) -> None:
        """Place every job of ``root``'s pipeline with :func:`placer.optimizer.solve`.

        Per-job decisions see only their own inputs; a DAG also pays for moving each job's
        output to its consumers, and its deadline binds the critical path, not one job. So when
        a pipeline's first job is ready the exact optimizer chooses a site for each job:
        on-prem or a cloud site on demand or spot, with provisioning, egress along every edge
        and read, and the pipeline deadline. Each job then follows the plan when it is ready,
        unless the world changed (spot gone, site refused); jobs planned on-prem still go
        through the wait prediction.

        The options are the pricing seam's (:func:`placer.pricing.onprem_option`,
        :func:`placer.pricing.cloud_option`, links from the view, which prices them with
        :func:`placer.pricing.link`), with three layers of this strategy's own on top:

        * on-prem compute is free here (the pool is paid for; what is minimised is cloud spend)
          and starts after the predicted wait, priced at ``1 / scale`` USD per hour, the same
          exchange rate as the allowances, as a penalty that steers but is not billed; the pool's
          capacity is the wait prediction's business, not the optimizer's;
        * a spot option's bill is multiplied by the learnt expected launches per run;
        * reads are folded into each option from the cheapest ready copy of each dataset
          (replica-aware), priced with the same link model: their egress is added to the
          option's cost and their transfer time comes before provisioning.
        """
        ids = [root.id] if root.pipeline is None else self._pipelines.get(root.pipeline, [root.id])
        members = [self._jobs[i] for i in ids]
        now = view.now
        wait = min(self._predict_wait(root, view), 1e6)
        per_hour = 1.0 / self._scale if self._scale > 0 else 0.0
        onprem = view.onprem_site
        options: dict[str, tuple[Option, ...]] = {}
        locations = {view.onprem_location}
        for job in members:
            opts: list[Option] = []
            onprem_ok, sites = view.allowed(job, self.residency)
            if onprem_ok and job.gpus <= view.onprem_gpus:
                usd_in, h_in = self._reads(job, view, view.onprem_location)
                opt = pricing.onprem_option(
                    onprem,
                    view.onprem_location,
                    "",
                    gpus=job.gpus,
                    run_h=job.estimate_h,
                    usd_per_gpu_h=0.0,
                    start_delay_h=wait,
                    penalty_usd=wait * per_hour,
                )
                opts.append(_with_reads(opt, usd_in, h_in))
            allowed = set(sites)
            for spot in (False, True) if (self.use_spot and job.spot_ok) else (False,):
                for q in view.quotes(job.gpus, spot):
                    if q.site not in allowed:
                        continue
                    usd_in, h_in = self._reads(job, view, q.location)
                    opts.append(_with_reads(self._cloud_option(q, view, job.estimate_h),
                                            usd_in, h_in))
                    locations.add(q.location)
            if not opts:
                return
            options[f"j{job.id}"] = tuple(opts)
        edges = tuple(
            Edge(src=f"j{d}", dst=f"j{job.id}", gb=self._jobs[d].output_gb)
            for job in members
            for d in job.deps
        )
        links = {(a, b): view.link(a, b) for a in locations for b in locations if a != b}
        deadline = root.deadline_h - now if root.deadline_h is not None else None
        problem = Problem(jobs=tuple(options), options=options, edges=edges, links=links)
        sol = solve(problem, "cost", deadline_h=deadline, time_limit_s=1.0)
        if sol.status == "infeasible":
            sol = solve(problem, "time")
        for job in members:
            name = f"j{job.id}"
            opt = options[name][sol.jobs[name].option]
            self._plan[job.id] = None if opt.site == onprem else Cloud(opt.site, spot=opt.spot)

    # -- data: rent or buy ------------------------------------------------------------------------
    @staticmethod
    def _reads(job: JobRequest, view: ClusterView, location: str) -> tuple[float, float]:
        """``(USD, hours)`` of the job's dataset reads at ``location`` from their cheapest ready
        copies (the optimizer gets them folded into each option, so it sees replicas)."""
        usd = hours = 0.0
        for name in job.reads:
            u, h, _ = view.read_cost(name, location)
            usd += u
            hours = max(hours, h)
        return usd, hours

    def _account(self, job: JobRequest, view: ClusterView, d: Decision) -> Decision:
        """Count the egress ``d`` will pay for the job's reads (rent) and buy a replica where
        the rent has reached a copy's price (transfer plus ``keep_h`` of storage): the copies
        travel with the decision (:class:`placer.online.Replicate`)."""
        if not self.replicate or not job.reads:
            return d
        location = view.onprem_location if isinstance(d, OnPrem) else view.location(d.site)
        if (job.id, location) in self._rented:
            return d
        self._rented.add((job.id, location))
        copies: list[Replicate] = []
        for name in job.reads:
            if view.replica_ready(name, location) is not None:
                continue
            usd, _, _ = view.read_cost(name, location)
            if usd <= 0:
                continue
            key = (name, location)
            paid = self._rent[key] = self._rent.get(key, 0.0) + usd
            keep = view.datasets[name].gb * view.storage_usd_per_gb_h * self.keep_h
            if paid >= usd + keep and view.may_store(name, location):
                copies.append(Replicate(name, location))
        return replace(d, copies=(*d.copies, *copies)) if copies else d

    # -- decisions -------------------------------------------------------------------------------
    def _planned(self, job: JobRequest, view: ClusterView) -> Cloud | None:
        """The plan's cloud run for a pipeline job, if it still holds now."""
        d = self._plan.get(job.id)
        if d is None or (d.site, d.spot) in self._failed.get(job.id, ()):
            return None
        if d.spot:
            q = view.quote(d.site, job.gpus, True)
            if not view.spot_available(d.site, q.nodes if q else 1):
                return None
        return d

    def _decide(self, job: JobRequest, view: ClusterView, *, waited: float) -> Decision:
        now = view.now
        if job.id in self._plan:
            planned = self._planned(job, view)
            if planned is not None:
                return self._launch(planned)
        onprem_ok, _ = view.allowed(job, self.residency)
        onprem_ok = onprem_ok and job.gpus <= view.onprem_gpus
        deadline = job.deadline_h
        best = self._best(job, view, at=now, deadline=deadline)
        if onprem_ok:
            if best is None:
                return OnPrem()
            # Bringing the inputs on-prem is not free when they live in a cloud bucket: the
            # saving of running on-prem is the cloud price less that egress.
            egress, _ = view.transfer(job, view.onprem_location)
            allowance = self._allow.get(job.id)
            if allowance is None:
                allowance = self._allow[job.id] = self._allowance(job, best[0] - egress)
            # Queue order: the job whose allowance runs out first goes first (earliest "burst
            # deadline"), so the queue spends its waits where they are cheapest.
            prio = self._ready[job.id] + allowance
            wait = self._predict_wait(job, view, prio) if allowance >= 0 else math.inf
            finish = now + wait + view.remaining_h(job)
            on_time = deadline is None or finish <= deadline
            if on_time and waited + wait <= allowance:
                # Look again a little after the predicted start, but never past the allowance.
                check = min(max(wait, 1e-3) * 1.05 + 1e-3, allowance - waited)
                self._prio[job.id] = prio
                return OnPrem(wait_h=max(check, 1e-3), priority=prio)
        if best is None:
            # Only a job that may not run on-prem gets here (one that may, returned above).
            # Queueing it on-prem would break the pool or the policies, and the simulator
            # cannot hold a job until a quota frees: refuse loudly, with the reason.
            raise self._unplaceable(job, view)
        return self._launch(best[2])

    def _unplaceable(self, job: JobRequest, view: ClusterView) -> SimulationError:
        """The error for a job with nowhere to go: not on-prem (too large for the pool, or the
        policies forbid it) and every allowed cloud option refused (or none allowed)."""
        ok, sites = view.allowed(job, self.residency)
        onprem = (
            f"it needs {job.gpus} GPUs and the on-prem pool has {view.onprem_gpus}"
            if ok
            else "the policies forbid on-prem"
        )
        failed = sorted(self._failed.get(job.id, ()))
        why = ", ".join(f"{s}{'/spot' if spot else ''}" for s, spot in failed) or "none"
        return SimulationError(
            f"strategy {self.name!r} cannot place job {job.name!r} at {view.now:g} h: {onprem}, "
            f"and no allowed cloud option is left (allowed: {', '.join(sites) or 'none'}; "
            f"refused: {why}); raise the cloud quotas or the pool"
        )

    def _launch(self, d: Cloud) -> Cloud:
        if d.spot:
            self._spot_runs[d.site] = self._spot_runs.get(d.site, 0) + 1
        return d

    def _note(self, job: JobRequest, d: Decision) -> Decision:
        """Keep :attr:`_stale` (see :meth:`_place`) up to date with the decision about ``job``:
        a job queued at a priority that sorts differently from its ``_prio``."""
        self._stale.pop(job.id, None)
        if isinstance(d, OnPrem):
            key = self._prio.get(job.id, -math.inf)
            if max(key, 0.0) != max(d.priority, 0.0):
                self._stale[job.id] = (key, d.priority, job.gpus)
        return d

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        self._ready[job.id] = view.now
        if job.pipeline is not None and not job.deps and job.id not in self._plan:
            self._plan_pipeline(job, view)
        return self._note(job, self._account(job, view, self._decide(job, view, waited=0.0)))

    def on_timeout(self, job: JobRequest, view: ClusterView) -> Decision:
        waited = view.now - self._ready[job.id]
        return self._note(job, self._account(job, view, self._decide(job, view, waited=waited)))

    def outlook(self, job: JobRequest, view: ClusterView) -> Outlook:
        """The wait :meth:`_decide` predicts for ``job`` at its queue priority (as it would be
        queued now), and its allowance once priced; the prediction mutates nothing a decision
        reads (``_place`` only drops stale entries it would drop anyway)."""
        allowance = self._allow.get(job.id)
        onprem_ok, _ = view.allowed(job, self.residency)
        if not onprem_ok or job.gpus > view.onprem_gpus:
            return Outlook(wait_h=math.inf, allowance_h=allowance)
        prio = self._prio.get(job.id)
        if prio is None:
            ready = self._ready.get(job.id, view.now)
            prio = ready + allowance if allowance is not None and allowance >= 0 else math.inf
        return Outlook(wait_h=self._predict_wait(job, view, prio), allowance_h=allowance)

    def resume_waiting(self, job: JobRequest, ready_h: float, priority: float) -> None:
        self._ready[job.id] = ready_h
        if priority > 0:  # one of this strategy's priorities (a ready time plus an allowance)
            self._prio[job.id] = priority

    def on_cloud_stopped(
        self, job: JobRequest, view: ClusterView, site: str, spot: bool, reason: StopReason
    ) -> Decision:
        if reason in ("unavailable", "quota"):
            self._failed.setdefault(job.id, set()).add((site, spot))
        elif reason == "preempted":
            # Its work so far is kept. The site's spot is down now (that is what a preemption
            # is), so it is not offered again until its trace is up; the learnt preemption
            # rate makes it dearer from now on. What on-prem saves has changed: re-price it.
            self._spot_lost[site] = self._spot_lost.get(site, 0) + 1
            self._allow.pop(job.id, None)
        waited = view.now - self._ready[job.id]
        return self._note(job, self._account(job, view, self._decide(job, view, waited=waited)))


def _with_reads(opt: Option, usd: float, hours: float) -> Option:
    """``opt`` with the job's dataset reads folded in: their egress added to its cost, their
    transfer before its start (the seam's order: staging, then provisioning)."""
    return replace(opt, compute_usd=opt.compute_usd + usd, start_delay_h=hours + opt.start_delay_h)
