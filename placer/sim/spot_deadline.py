"""One job, one deadline, spot or on-demand: "Can't Be Late"'s setting replayed on its traces.

Z. Wu, W.-L. Chiang, Z. Mao, Z. Yang, E. Friedman, S. Shenker, I. Stoica, "Can't Be Late:
Optimizing Spot Instance Savings under Deadlines", NSDI 2024. A job needs ``work_h`` hours of
computation (the paper's C(0)) and must finish within ``deadline_h`` hours of its submission
(R(0)). It may run on spot (cheap, there only when the trace says so) or on demand (always
there, dear), or wait. Every start on a new instance costs a *changeover* of ``changeover_h``
hours (d: provisioning, set-up and the work lost since the last checkpoint) during which the
job is billed at the new instance's price and makes no progress; progress is kept when spot is
preempted. This module replays that setting tick by tick on the traces the paper published
(the ones :mod:`placer.sim.cloud` reads, with the same polarity: a value counts the spot
instances available), so that placer's spot decision can be compared with the paper's policy,
Uniform Progress, and with the baselines it beats.

The policies (each a small class whose :meth:`DeadlinePolicy.decide` is the rule):

* :class:`OnDemandOnly`: the reference bill, ``(work + d) x on-demand price``.
* :class:`Greedy`: the paper's §3.4: spot whenever there, wait otherwise, on demand to the end
  once the Safety Net Rule fires.
* :class:`UniformProgress`: the paper's §5.2 policy (rules below).
* :class:`PlacerPlan` (``placer``): what the product does today for one job. ``placer plan``
  chooses spot or on-demand once, at submission, with the real optimizer over the real options
  (:func:`placer.pricing.cloud_option`: spot's duration is the expected one from the catalog's
  trace statistics for the region, :func:`placer.pricing.spot_estimate`), cheapest option
  that meets the deadline; the executor has no spot fallback, so a spot job waits for capacity
  after every preemption (the assumption :func:`placer.pricing.spot_run` states), deadline or
  not. Its misses are counted.
* :class:`PlacerSafetyNet` (``placer+safety-net``): a labelled variant, not the product:
  placer's choice, then on spot the Greedy rules (the Safety Net Rule added to the executor).
* :class:`PlacerLiveNet` (``placer-live+safety-net``): the product's live path with the spot
  safety net (``placer controller --spot-safety-net``, :func:`placer.online.spot_net_holds`):
  at submission, spot only if it is there and a spot run lost at the worst moment with
  nothing kept, then done again on demand, still meets the deadline (``2 x (d + work) <=
  deadline``); on a preemption, on demand to the end. (Named apart from
  ``placer+safety-net``, the Greedy variant above, which assumes the work is kept.)
* :class:`PlacerOnline` (``placer-online``): placer's online strategy
  (:class:`placer.sim.placer_strategy.PlacerStrategy`) for one job: spot only if it is there at
  submission and the deadline leaves ``spot_slack`` of the run spare with a flat
  ``spot_overhead``; on a preemption it decides again, sees spot down and takes on-demand to
  the end.

Interpretation, where the paper leaves room (all policies share it):

* Decisions are taken at the start of each trace tick (195-600 s on the availability sets);
  availability is constant within a tick, and a job on spot is preempted at the start of a tick
  that is down. A job finishing inside a tick is billed to its finish.
* The first start is a changeover too (the paper's "whenever a job switches to a new spot or
  on-demand instance"), so on-demand only finishes at ``work + d``.
* The Safety Net Rule keeps a margin of ``d + max(d, gap)``: the paper's ``2d`` whenever a tick
  is no longer than d (every shipped trace: 32-600 s against 720 s), and one tick more than
  ``d`` otherwise, so that waiting one tick can never strand the job. It applies whenever the
  job is not on spot (idle, just preempted, or about to leave on-demand): moving to spot or to
  idle needs ``R(t) >= C(t) + margin``; otherwise the job goes, or stays, on demand to the end.
  With ``deadline - work >= d`` Greedy and Uniform Progress then never miss (a property test).
* Jobs of ``nodes`` instances are gang-scheduled and homogeneous (§5.5): spot is there when the
  trace counts at least ``nodes`` instances (:meth:`placer.sim.cloud.SpotTrace.for_nodes`), and
  the bill is per node.
* The paper's switch point for very loose deadlines (§A.8) is not applied: Uniform Progress is
  the plain §5.2 policy at every deadline.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from pydantic import Field

from placer.catalog import SpotStats, default_catalog, spot_stats
from placer.errors import CatalogError, ConfigError, SimulationError
from placer.models import Hours, Model
from placer.online import spot_net_holds
from placer.optimizer import Problem, solve
from placer.pricing import Quote, SpotRun, cloud_option, price_offer, spot_estimate
from placer.sim.cloud import SpotTrace, load_spot_traces
from placer.sim.placer_strategy import PlacerStrategy

__all__ = [
    "DEFAULT_CHANGEOVER_H",
    "IDLE",
    "ON_DEMAND",
    "SPOT",
    "Cell",
    "DeadlineJob",
    "DeadlinePolicy",
    "Greedy",
    "Mode",
    "OnDemandOnly",
    "PlacerChoice",
    "PlacerLiveNet",
    "PlacerOnline",
    "PlacerPlan",
    "PlacerSafetyNet",
    "Prices",
    "Run",
    "Sweep",
    "Tick",
    "TraceSet",
    "UniformProgress",
    "location_of",
    "placer_choice",
    "run_sweep",
    "sample_offsets",
    "simulate",
    "standard_policies",
    "summarise_runs",
    "trace_stats",
]

Mode = Literal["idle", "spot", "on-demand"]
"""Where the job is during a tick (the paper's instance states, §3.2)."""
IDLE: Final = "idle"
SPOT: Final = "spot"
ON_DEMAND: Final = "on-demand"

DEFAULT_CHANGEOVER_H: Final = 0.2
"""The paper's default changeover delay d (§6.1), also :data:`placer.pricing.DEFAULT_RESTART_H`."""

_EPS: Final = 1e-9
"""Hours of work below which a job counts as done (float sums of tick lengths)."""


class DeadlineJob(Model):
    """One job of the paper's setting (§3.1); see the module docstring."""

    work_h: Hours = Field(gt=0, description="computation needed, hours (C(0))")
    deadline_h: Hours = Field(gt=0, description="deadline after submission, hours (R(0))")
    changeover_h: Hours = Field(default=DEFAULT_CHANGEOVER_H, ge=0,
                                description="hours without progress after each start (d)")
    nodes: int = Field(default=1, ge=1, le=1024, description="gang-scheduled instances")

    @property
    def slack_h(self) -> float:
        """``deadline - work``: the time the job may spend not progressing."""
        return self.deadline_h - self.work_h


class Prices(Model):
    """USD per node-hour on demand and on spot, and where the figures come from."""

    on_demand: float = Field(gt=0, allow_inf_nan=False)
    spot: float = Field(gt=0, allow_inf_nan=False)
    source: str = ""

    @classmethod
    def from_catalog(cls, location: str = "aws:us-west-2",
                     instance_type: str = "p3.2xlarge") -> Prices:
        """An offer's prices from placer's catalog (host VM included where one is added). The
        default, p3.2xlarge (1 V100) in us-west-2 at $3.06 / $0.9731, is the pair the paper's
        simulator used for every trace (``placer/catalog/data/gpu_prices.csv``)."""
        cat = default_catalog()
        for offer in cat.offers(location):
            if offer.instance_type == instance_type:
                priced = price_offer(offer)
                if priced.spot is None:
                    raise CatalogError(f"{instance_type} at {location} has no spot price")
                return cls(on_demand=priced.on_demand, spot=priced.spot,
                           source=f"placer catalog: {instance_type} at {location} "
                                  f"({offer.source or 'no source'})")
        raise CatalogError(f"the catalog has no {instance_type} at {location}")


@dataclass(frozen=True, slots=True)
class Tick:
    """What a policy sees at the start of a tick (a plain slotted value: one per tick per run,
    millions in a sweep, so not a pydantic model)."""

    t_h: float
    """Hours since submission."""
    done_h: float
    """Work done so far (the paper's cp(t) = C(0) - C(t))."""
    mode: Mode
    """Where the job is now: the last tick's choice, or ``idle`` if spot was just lost."""
    spot_available: bool
    preempted: bool
    """The job was on spot in the last tick and spot is gone now."""


class Run(Model):
    """One job replayed from one start offset under one policy."""

    policy: str
    offset_h: float
    cost_usd: float
    finish_h: float | None
    """Hours from submission to the end of the work; None if not done within the horizon."""
    met_deadline: bool
    spot_h: float
    """Billed hours on spot, changeovers included (per node)."""
    on_demand_h: float
    changeovers: int


# -- policies ------------------------------------------------------------------------------------


class DeadlinePolicy(ABC):
    """A decision rule of the paper's kind (§3.2): at each tick, from where the job is and
    whether spot is there, where it should be next. An instance keeps the state of one run at
    a time; :meth:`start` resets it."""

    name: str
    """The policy's label in results (a class constant; an instance may relabel itself)."""
    job: DeadlineJob
    prices: Prices
    gap_h: float

    def start(self, job: DeadlineJob, prices: Prices, gap_h: float) -> None:
        """Begin a run of ``job`` on a trace with ticks of ``gap_h`` hours."""
        self.job, self.prices, self.gap_h = job, prices, gap_h

    @abstractmethod
    def decide(self, tick: Tick) -> Mode:
        """Where the job runs during this tick. ``spot`` only when ``tick.spot_available``."""

    def slack(self, tick: Tick) -> float:
        """``R(t) - C(t)``: time left to the deadline less the work left."""
        j = self.job
        return (j.deadline_h - tick.t_h) - (j.work_h - tick.done_h)

    @property
    def margin_h(self) -> float:
        """The Safety Net Rule's margin: ``2d`` when a tick is no longer than ``d`` (see the
        module docstring)."""
        d = self.job.changeover_h
        return d + max(d, self.gap_h)


class OnDemandOnly(DeadlinePolicy):
    """On demand from submission to the end: the reference cost."""

    name = "on-demand"

    def decide(self, tick: Tick) -> Mode:
        return ON_DEMAND


class Greedy(DeadlinePolicy):
    """The paper's Greedy (§3.4): stay on spot until preempted (Exploitation Rule), take spot
    whenever it is there, wait otherwise; when the slack falls below the safety margin, go on
    demand and stay there (Safety Net Rule)."""

    name = "greedy"
    _committed: bool

    def start(self, job: DeadlineJob, prices: Prices, gap_h: float) -> None:
        super().start(job, prices, gap_h)
        self._committed = False

    def decide(self, tick: Tick) -> Mode:
        if self._committed:
            return ON_DEMAND
        if tick.mode == SPOT:  # only while available: a preempted job is idle
            return SPOT
        if self.slack(tick) < self.margin_h:
            self._committed = True
            return ON_DEMAND
        return SPOT if tick.spot_available else IDLE


class UniformProgress(DeadlinePolicy):
    """The paper's Uniform Progress (§5.2.2), with its Safety Net Rule (§3.3).

    The expected progress line is ``ep(t) = t x C(0) / R(0)``; ``cp(t)`` is the work done.

    1. *Uniform Progress*: an idle job behind the line (``cp(t) < ep(t)``) goes on demand and
       stays there to catch up.
    2. *Taking Risks*: an idle job takes spot whenever it is there, even behind the line, and
       stays on it until it is preempted (Exploitation Rule).
    3. *Hysteresis*: a job on demand stays there until ``cp(t) >= ep(t + 2d)``. It leaves on
       demand only for spot: §5.2.2 motivates the rule by the plain policy's "when the job is
       on on-demand, and a spot becomes available, our policy will immediately switch to
       spot", so the hysteresis gates that switch and an on-demand job never goes idle (the
       ``rc_*_threshold`` strategies of the ``sky_spot`` simulator, in its public copies, keep
       on-demand while spot is away too).
    4. *Safety Net*: whenever the job would be on spot or idle next while
       ``R(t) < C(t) + margin``, it goes on demand and stays there to the end.
    """

    name = "uniform-progress"
    _committed: bool

    def start(self, job: DeadlineJob, prices: Prices, gap_h: float) -> None:
        super().start(job, prices, gap_h)
        self._committed = False

    def expected(self, t_h: float) -> float:
        """``ep(t)``: the uniform progress line."""
        return t_h * self.job.work_h / self.job.deadline_h

    def decide(self, tick: Tick) -> Mode:
        if self._committed:
            return ON_DEMAND
        if tick.mode == SPOT:  # Exploitation Rule (spot is there, or the job would be idle)
            return SPOT
        want: Mode
        if tick.mode == ON_DEMAND:  # Hysteresis: leave on-demand only for spot, and only ahead
            ahead = tick.done_h >= self.expected(tick.t_h + 2 * self.job.changeover_h)
            if not (tick.spot_available and ahead):
                return ON_DEMAND
            want = SPOT
        elif tick.spot_available:
            want = SPOT  # Taking Risks
        elif tick.done_h < self.expected(tick.t_h):
            want = ON_DEMAND  # Uniform Progress
        else:
            want = IDLE
        if want != ON_DEMAND and self.slack(tick) < self.margin_h:
            self._committed = True  # Safety Net
            return ON_DEMAND
        return want


@dataclass(frozen=True, slots=True)
class PlacerChoice:
    """placer's choice for one job at submission, with the estimate it rested on."""

    spot: bool
    estimate: SpotRun | None
    """The spot run the optimizer was offered (None: spot never finishes there)."""
    location: str


def placer_choice(job: DeadlineJob, prices: Prices, location: str,
                  stats: SpotStats | None = None) -> PlacerChoice:
    """What ``placer plan`` chooses for ``job`` at ``location``: the real options
    (:func:`placer.pricing.cloud_option`, spot priced and timed by
    :func:`placer.pricing.spot_estimate` from ``stats``, by default the catalog's row for the
    location) solved by :func:`placer.optimizer.solve` for the least cost within the deadline.

    To price the world this module simulates, the options' provisioning is the changeover ``d``
    and the work redone per preemption 0, so each preemption costs the model ``d`` of billed
    time, as it costs the replay. Spot is taken when its *expected* duration (waits and
    preemptions included) fits the deadline and its expected bill is lower; if nothing fits,
    the fastest option (the planner would report the plan infeasible).
    """
    st = stats if stats is not None else spot_stats(location)
    d, n = job.changeover_h, job.nodes
    quotes = [Quote("cloud", location, "node", "gpu", n, 1, spot, n * price, n)
              for spot, price in ((False, prices.on_demand), (True, prices.spot))]
    est = spot_estimate(location, job.work_h, provisioning_h=d, stats=st, restart_h=0.0)
    options = [cloud_option(quotes[0], run_h=job.work_h, provisioning_h=d)]
    if est is not None:
        options.append(cloud_option(quotes[1], run_h=job.work_h, provisioning_h=d,
                                    spot_stats=st, restart_h=0.0))
    problem = Problem(jobs=("job",), options={"job": tuple(options)})
    sol = solve(problem, "cost", deadline_h=job.deadline_h)
    if sol.status == "infeasible":
        sol = solve(problem, "time")
    return PlacerChoice(options[sol.jobs["job"].option].spot, est, location)


class PlacerPlan(DeadlinePolicy):
    """placer today (``placer plan`` + the executor): spot or on-demand chosen once, at
    submission, by :func:`placer_choice`; on spot the job takes capacity whenever it is there
    and waits for it otherwise, through every preemption and past the deadline if need be (the
    executor resubmits to the same site; its retry limit is not modelled)."""

    name = "placer"

    def __init__(self, location: str, stats: SpotStats | None = None,
                 name: str | None = None) -> None:
        if name is not None:
            self.name = name
        self.location = location
        self.stats = stats
        self._cache: dict[tuple[DeadlineJob, Prices], PlacerChoice] = {}
        self.choice: PlacerChoice | None = None

    def start(self, job: DeadlineJob, prices: Prices, gap_h: float) -> None:
        super().start(job, prices, gap_h)
        key = (job, prices)
        if key not in self._cache:
            self._cache[key] = placer_choice(job, prices, self.location, self.stats)
        self.choice = self._cache[key]

    def decide(self, tick: Tick) -> Mode:
        assert self.choice is not None, "start() first"
        if not self.choice.spot:
            return ON_DEMAND
        return SPOT if tick.spot_available else IDLE


class PlacerSafetyNet(PlacerPlan):
    """A labelled variant, not the product: :class:`PlacerPlan`'s choice, then on spot the
    rules of :class:`Greedy` (the Safety Net Rule added to the executor)."""

    name = "placer+safety-net"

    def __init__(self, location: str, stats: SpotStats | None = None,
                 name: str | None = None) -> None:
        super().__init__(location, stats, name)
        self._greedy = Greedy()

    def start(self, job: DeadlineJob, prices: Prices, gap_h: float) -> None:
        super().start(job, prices, gap_h)
        self._greedy.start(job, prices, gap_h)

    def decide(self, tick: Tick) -> Mode:
        assert self.choice is not None, "start() first"
        return self._greedy.decide(tick) if self.choice.spot else ON_DEMAND


class PlacerLiveNet(DeadlinePolicy):
    """The live path's spot safety net for one job (see the module docstring): spot from
    submission when it is there, cheaper, and :func:`placer.online.spot_net_holds` holds with
    the changeover ``d`` as both provisioning figures; on a preemption, on demand to the end
    (live, the failed attempt is retried on demand). Spot not there at submission: on demand
    (live, a spot request without capacity fails and is retried on demand; the replay spares
    it that failed request). The replay keeps the work done across a preemption, as for every
    row; the rule assumes none is kept, so it errs on the safe side."""

    name = "placer-live+safety-net"
    _on_spot: bool | None

    def start(self, job: DeadlineJob, prices: Prices, gap_h: float) -> None:
        super().start(job, prices, gap_h)
        self._on_spot = None

    def decide(self, tick: Tick) -> Mode:
        if self._on_spot is None:
            j = self.job
            self._on_spot = (tick.spot_available and self.prices.spot < self.prices.on_demand
                             and spot_net_holds(now_h=tick.t_h, deadline_h=j.deadline_h,
                                                run_h=j.work_h - tick.done_h,
                                                spot_start_h=j.changeover_h,
                                                on_demand_start_h=j.changeover_h))
        if self._on_spot and tick.preempted:
            self._on_spot = False  # the spot attempt failed: retried on demand, to the end
        return SPOT if self._on_spot else ON_DEMAND


_FIRST_SPOT_FACTOR: Final = 4.0 / 3.0
""":meth:`PlacerStrategy._spot_factor` before any launch: ``1 / (1 - p)`` with the Laplace
prior ``p = (0 + 1) / (0 + 4)`` of a preemption."""


class PlacerOnline(DeadlinePolicy):
    """placer's online strategy (:class:`placer.sim.placer_strategy.PlacerStrategy`) for one
    job with one cloud site, restated. At submission (``_best``): spot is a candidate only if it
    is available now and ``d + work x (1 + spot_overhead) + spot_slack x work <= deadline``;
    the cheaper candidate that meets the deadline wins, spot's bill being
    ``(d + work x (1 + spot_overhead)) x spot price x 4/3`` (the learnt preemption factor before
    any launch). On a preemption (``on_cloud_stopped``) it decides again: spot is down at that
    moment, so on demand, to the end. ``spot_overhead`` and ``spot_slack`` default to the
    strategy's own defaults."""

    name = "placer-online"

    def __init__(self, spot_overhead: float | None = None,
                 spot_slack: float | None = None) -> None:
        defaults = PlacerStrategy()
        self.spot_overhead = defaults.spot_overhead if spot_overhead is None else spot_overhead
        self.spot_slack = defaults.spot_slack if spot_slack is None else spot_slack
        self._on_spot: bool | None = None

    def start(self, job: DeadlineJob, prices: Prices, gap_h: float) -> None:
        super().start(job, prices, gap_h)
        self._on_spot = None

    def prefers_spot(self) -> bool:
        """The submission-time choice when spot is available (see the class docstring)."""
        j, d = self.job, self.job.changeover_h
        spot_d = j.work_h * (1.0 + self.spot_overhead)
        if d + spot_d + self.spot_slack * j.work_h > j.deadline_h:
            return False
        spot_usd = j.nodes * self.prices.spot * (d + spot_d) * _FIRST_SPOT_FACTOR
        od_usd = j.nodes * self.prices.on_demand * (d + j.work_h)
        od_meets = d + j.work_h <= j.deadline_h
        return not od_meets or (spot_usd, d + spot_d) < (od_usd, d + j.work_h)

    def decide(self, tick: Tick) -> Mode:
        if self._on_spot is None:
            self._on_spot = tick.spot_available and self.prefers_spot()
        if self._on_spot and tick.preempted:
            self._on_spot = False  # preempted: spot is down now, so on demand to the end
        return SPOT if self._on_spot else ON_DEMAND


# -- the replay ----------------------------------------------------------------------------------


def simulate(policy: DeadlinePolicy, job: DeadlineJob, trace: SpotTrace, *, prices: Prices,
             offset_h: float = 0.0, overrun_h: float | None = None) -> Run:
    """Replay ``job`` under ``policy`` on ``trace`` from ``offset_h`` hours into it.

    Time 0 is the start of the tick that holds ``trace.offset_h + offset_h`` (offsets are taken
    down to a tick boundary); the trace wraps around cyclically. A job that misses its deadline
    runs on until done or until ``overrun_h`` past the deadline (default ``10 x work``), so
    that its whole bill is counted.

    Raises:
        SimulationError: the policy chose spot in a tick without spot.
    """
    up = trace.for_nodes(job.nodes).up
    n = int(up.size)
    g = trace.gap_s / 3600.0
    first = math.floor((trace.offset_h + offset_h) / g + 1e-9) % n
    policy.start(job, prices, g)
    work, d = job.work_h, job.changeover_h
    rate = {SPOT: job.nodes * prices.spot, ON_DEMAND: job.nodes * prices.on_demand}
    billed = {SPOT: 0.0, ON_DEMAND: 0.0}
    horizon = job.deadline_h + (10.0 * work if overrun_h is None else overrun_h)
    last = math.ceil(horizon / g)
    done = cost = owed = 0.0
    mode: Mode = IDLE
    changeovers = 0
    finish: float | None = None
    for k in range(last):
        t = k * g
        avail = bool(up[(first + k) % n])
        preempted = mode == SPOT and not avail
        if preempted:
            mode, owed = IDLE, 0.0
        want = policy.decide(Tick(t, done, mode, avail, preempted))
        if want == SPOT and not avail:
            raise SimulationError(f"{policy.name} chose spot at {t:.3f} h, when there was none")
        if want != mode:
            mode = want
            owed = 0.0 if want == IDLE else d
            changeovers += want != IDLE
        if mode == IDLE:
            continue
        over = min(owed, g)
        rest = work - done
        owed -= over
        if g - over >= rest - _EPS:  # done within this tick: billed to the finish
            used = over + rest
            cost += rate[mode] * used
            billed[mode] += used
            done, finish = work, t + used
            break
        done += g - over
        cost += rate[mode] * g
        billed[mode] += g
    return Run(policy=policy.name, offset_h=offset_h, cost_usd=cost, finish_h=finish,
               met_deadline=finish is not None and finish <= job.deadline_h + _EPS,
               spot_h=billed[SPOT], on_demand_h=billed[ON_DEMAND], changeovers=changeovers)


# -- sweeps --------------------------------------------------------------------------------------


_ZONE_RE: Final = re.compile(r"^(?P<region>.*\d)-?[a-z]$")


def location_of(trace_name: str) -> str:
    """The catalog location of a shipped trace, e.g. ``aws:us-east-1`` for
    ``availability/1-node/aws-02-15-2023/us-east-1a_v100_1`` (the zone's region: placer's
    statistics are per region)."""
    folder, _, base = trace_name.rpartition("/")
    provider = folder.rpartition("/")[2].partition("-")[0] or "aws"
    zone = base.partition("_")[0]
    m = _ZONE_RE.match(zone)
    return f"{provider}:{m.group('region') if m else zone}"


def trace_stats(trace: SpotTrace, location: str) -> SpotStats:
    """Spot statistics measured on ``trace`` itself (read cyclically, as the replay reads it),
    in the catalog's terms (``placer.sim.spot_stats``): share of ticks up, mean up and down
    run, mean wait for capacity from each tick. For a sensitivity row only: statistics of the
    very trace a job is replayed on are more than a planner can know. The replayed percentile
    is not measured (``p90_extra_h`` is 0): the plan's choice does not use it."""
    up = np.asarray(trace.up, dtype=np.bool_)
    g = trace.gap_s / 3600.0
    n = int(up.size)
    changes = np.flatnonzero(up != np.roll(up, 1))
    if changes.size == 0:
        runs_up = np.array([n * g]) if up[0] else np.array([])
        runs_down = np.array([]) if up[0] else np.array([n * g])
    else:
        lens = np.diff(np.append(changes, changes[0] + n)) * g
        runs_up, runs_down = lens[up[changes]], lens[~up[changes]]
    ups = np.flatnonzero(up)
    if ups.size:
        nxt = np.concatenate([ups, ups + n])
        wait = float(np.mean(nxt[np.searchsorted(nxt, np.arange(n))] - np.arange(n))) * g
    else:
        wait = math.inf
    return SpotStats(
        location=location, gpu="V100", borrowed=False, availability=float(up.mean()),
        mtbf_h=(float(runs_up.mean()) if runs_down.size else math.inf) if runs_up.size else 1e-9,
        mttr_h=float(runs_down.mean()) if runs_down.size else 0.0,
        wait_h=wait if math.isfinite(wait) else 0.0,
        p90_extra_h=((0.0, 0.0),), provisioning_h=0.0, restart_h=0.0, trace=trace.name)


def standard_policies(trace_name: str) -> tuple[DeadlinePolicy, ...]:
    """The benchmark's line-up for one trace; placer's plan uses the trace region's row."""
    loc = location_of(trace_name)
    return (OnDemandOnly(), Greedy(), UniformProgress(), PlacerPlan(loc), PlacerSafetyNet(loc),
            PlacerOnline())


class TraceSet(Model):
    """Traces of one kind (shipped names, :func:`placer.sim.cloud.load_spot_traces`), and the
    instances a job needs on them."""

    label: str
    traces: tuple[str, ...] = Field(min_length=1)
    nodes: int = Field(default=1, ge=1, le=1024)


class Sweep(Model):
    """Job sizes and deadlines to replay, and where on the traces jobs start."""

    work_h: Hours = Field(default=48.0, gt=0)
    deadlines_h: tuple[float, ...] = Field(default=(52.0, 60.0, 72.0, 96.0), min_length=1)
    changeover_h: Hours = Field(default=DEFAULT_CHANGEOVER_H, ge=0)
    stride_h: float = Field(default=6.0, gt=0)
    """One start per ``stride_h`` hours of trace (see :func:`sample_offsets`)."""
    seed: int | None = 0
    """Seed of the start offsets' jitter; None: the plain grid. The only randomness."""


def sample_offsets(period_h: float, window_h: float, stride_h: float, seed: int | None,
                   stream: Sequence[int] = ()) -> tuple[float, ...]:
    """Start offsets over ``[0, period - window]`` (so a job's deadline window never wraps):
    one per ``stride_h`` bucket, at a uniform place inside it drawn from ``seed`` (stratified,
    so starts cover the trace evenly and do not lock onto its daily cycle); ``stream`` names
    the sub-stream (trace, deadline) so that each gets its own draws. None: bucket starts."""
    room = period_h - window_h
    if room < 0:
        raise ConfigError(f"a {window_h:g} h window does not fit in a {period_h:g} h trace")
    starts = np.arange(0.0, room + _EPS, stride_h)
    if seed is not None:
        rng = np.random.default_rng([seed, *stream])
        starts = starts + rng.uniform(0.0, 1.0, starts.size) * np.minimum(stride_h, room - starts)
    return tuple(float(x) for x in starts)


class Cell(Model):
    """One policy on one trace set at one deadline, over every start offset of every trace."""

    trace_set: str
    nodes: int
    work_h: float
    deadline_h: float
    policy: str
    runs: int
    mean_cost_usd: float
    on_demand_cost_usd: float
    """The reference: on-demand only, ``(work + d) x nodes x on-demand price``."""
    savings_pct: float
    """``100 x (1 - mean cost / reference)``; misses' bills to their late finish included."""
    miss_pct: float
    mean_late_h: float | None
    """Mean hours past the deadline over the misses that finished; None without any."""
    unfinished: int
    spot_share_pct: float
    """Share of the billed hours on spot."""
    mean_changeovers: float


def summarise_runs(runs: Sequence[Run], *, trace_set: str, job: DeadlineJob,
                   prices: Prices) -> Cell:
    """The :class:`Cell` of one policy's runs."""
    if not runs or len({r.policy for r in runs}) != 1:
        raise ConfigError("summarise the runs of exactly one policy")
    ref = (job.work_h + job.changeover_h) * job.nodes * prices.on_demand
    mean = float(np.mean([r.cost_usd for r in runs]))
    misses = [r for r in runs if not r.met_deadline]
    late = [r.finish_h - job.deadline_h for r in misses if r.finish_h is not None]
    spot = sum(r.spot_h for r in runs)
    total = spot + sum(r.on_demand_h for r in runs)
    return Cell(trace_set=trace_set, nodes=job.nodes, work_h=job.work_h,
                deadline_h=job.deadline_h, policy=runs[0].policy, runs=len(runs),
                mean_cost_usd=mean, on_demand_cost_usd=ref, savings_pct=100.0 * (1 - mean / ref),
                miss_pct=100.0 * len(misses) / len(runs),
                mean_late_h=float(np.mean(late)) if late else None,
                unfinished=sum(r.finish_h is None for r in runs),
                spot_share_pct=100.0 * spot / total if total else 0.0,
                mean_changeovers=float(np.mean([r.changeovers for r in runs])))


def run_sweep(trace_set: TraceSet, sweep: Sweep, *, prices: Prices,
              traces: Mapping[str, SpotTrace] | None = None,
              policies: Callable[[str], Iterable[DeadlinePolicy]] = standard_policies,
              ) -> tuple[Cell, ...]:
    """Every policy of ``policies(trace)`` at every deadline of ``sweep``, from the same start
    offsets (:func:`sample_offsets`, one stream per trace and deadline), pooled over the set's
    traces: one :class:`Cell` per (deadline, policy), in that order. Deterministic."""
    known = load_spot_traces() if traces is None else traces
    missing = [name for name in trace_set.traces if name not in known]
    if missing:
        raise ConfigError(f"unknown spot trace(s): {', '.join(missing)}")
    cells: list[Cell] = []
    for di, deadline in enumerate(sweep.deadlines_h):
        job = DeadlineJob(work_h=sweep.work_h, deadline_h=deadline,
                          changeover_h=sweep.changeover_h, nodes=trace_set.nodes)
        runs: dict[str, list[Run]] = {}
        for ti, name in enumerate(trace_set.traces):
            trace = known[name]
            lineup = tuple(policies(name))
            for off in sample_offsets(trace.period_h, deadline, sweep.stride_h, sweep.seed,
                                      (ti, di)):
                for pol in lineup:
                    runs.setdefault(pol.name, []).append(
                        simulate(pol, job, trace, prices=prices, offset_h=off))
        cells += [summarise_runs(rs, trace_set=trace_set.label, job=job, prices=prices)
                  for rs in runs.values()]
    return tuple(cells)
