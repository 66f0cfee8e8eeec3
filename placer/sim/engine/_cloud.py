"""Jobs running in the cloud: a launch, its refusal or its run, and what a stopped run cost.

The job's inputs are staged to the site first; then the nodes are requested, wait out the
provisioning delay (sampled per launch) and run the job, as the executor does and as
:mod:`placer.pricing` prices it: the work starts ``transfer + provisioning`` after the decision,
and the nodes are billed from their request (``decision + transfer``) until the run ends or
stops. Spot capacity follows the site's availability trace: a spot launch when the trace says
"unavailable" is refused at once; a running spot job is preempted when the trace turns
unavailable (while its inputs are still staging too: then nothing was billed). Quotas cap the
GPUs a site runs at once, from the decision on.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from placer.errors import SimulationError
from placer.online import Cloud, StopReason
from placer.sim.cloud import CloudModel
from placer.sim.engine._data import Data
from placer.sim.engine._events import END_CLOUD, STOP_CLOUD
from placer.sim.engine._results import Attempt
from placer.sim.jobs import SimJob
from placer.sim.kernel import EventQueue

_Run = tuple[Cloud, float, float, int, float, float, str]
"""A cloud run: (decision, node request, start, GPUs billed, USD/h, egress USD, how it ends)."""


class CloudRuns:
    """The cloud runs of one simulation, and the GPUs each site bills at once."""

    def __init__(self, cloud: CloudModel, *, rng: np.random.Generator, events: EventQueue,
                 data: Data, sites: Mapping[str, str], strategy: str) -> None:
        self.cloud = cloud
        self.rng = rng
        self.events = events
        self.data = data
        self.sites = sites
        """Every site's location (on-prem too: a launch there is the strategy's mistake)."""
        self.strategy = strategy
        """The strategy's name, for errors."""
        self.runs: dict[int, _Run] = {}
        self.used: dict[str, int] = {}

    def launch(self, job: SimJob, d: Cloud, now: float, done_h: float,
               owed_h: float) -> StopReason | None:
        """Start ``job`` at ``d.site``, ``done_h`` of its work kept from earlier runs and
        ``owed_h`` of restart overhead to pay; returns why the launch was refused, or None
        when it started (its end, preemption or limit is then an event)."""
        j = job.id
        cloud = self.cloud
        quote = cloud.quote(d.site, job.gpus, d.spot) if d.site in self.sites else None
        if quote is None:
            raise SimulationError(
                f"strategy {self.strategy!r} sent job {job.name!r} to "
                f"{'spot on ' if d.spot else ''}{d.site!r}, which has no such offer for "
                f"{job.gpus} GPU(s); sites: {', '.join(cloud.sites) or 'none'}"
            )
        billed = quote.nodes * quote.gpus_per_node
        quota = cloud.quota_gpus(d.site)
        if quota is not None and self.used.get(d.site, 0) + billed > quota:
            return "quota"
        trace = cloud.spot_trace(d.site, quote.nodes, quote.gpus_per_node) if d.spot else None
        if trace is not None and not trace.up_at(now):
            return "unavailable"
        egress, hours = self.data.transfer(j, quote.location)
        self.data.keep(job, quote.location)
        # The inputs are staged first, then the nodes are requested (billing starts) and
        # provisioned: start = decision + transfer + provisioning, as placer.pricing plans it.
        request = now + hours
        start = request + cloud.provision_h(d.site, d.spot, self.rng)
        end = start + job.runtime_h - done_h + owed_h
        stop, kind, reason = end, END_CLOUD, "done"
        if trace is not None:
            down = trace.next_down(now)
            if down < stop:
                stop, kind, reason = down, STOP_CLOUD, "preempted"
        if d.limit_h is not None and now + d.limit_h < stop:
            stop, kind, reason = now + d.limit_h, STOP_CLOUD, "limit"
        self.used[d.site] = self.used.get(d.site, 0) + billed
        self.runs[j] = (d, request, start, billed, quote.usd_per_h, egress, reason)
        self.events.push(stop, kind, kind, j)
        return None

    def close(self, j: int, now: float) -> tuple[Attempt, Cloud, float, str]:
        """Job ``j``'s cloud run stops at ``now``: the attempt (billed from the node request),
        the decision it ran, when its work started, and why it stopped."""
        d, request, start, billed, usd_h, egress, reason = self.runs.pop(j)
        self.used[d.site] -= billed
        # Stopped while its inputs were still staging: no node was requested, nothing billed.
        launch = min(request, now)
        attempt = Attempt(
            d.site, d.spot, launch, start, now, billed, usd_h * (now - launch), egress, reason
        )
        return attempt, d, start, reason
