"""placer's strategy at scale: the same decisions as before, without walking the queue.

Issue 13 ("Scale") replaced the whole-queue replay behind each of placer's decisions by
incremental structures (the running jobs kept by estimated end, the queue kept per GPU count in
queue order, a cursor per count in the replay). Three guards that nothing else changed:

* **golden**: small replays whose every decision (``repr`` of each :class:`Decision`, in
  order) and every outcome (each job's runs, the replicas, the busy curve) hash to what the
  code *before* the change produced, stored in ``strategy_golden.json`` with the summary
  metrics. Starburst's uniform model (placer at three budgets, the baselines whose queue
  disciplines share the engine's new structures) and the realistic one (catalog prices, spot,
  pipelines through the optimizer, replicas, residency, and cloud quotas small enough that
  some jobs get every cloud option refused and are queued at priority 0);
* **differential**: at every wait prediction of replays with long queues, many GPU counts and
  fragmented nodes, the fast prediction equals, bit for bit, the replay over every running
  and queued job that it replaced (:func:`whole_queue_wait`, that code verbatim);
* **no walk**: against a queue of 20,000 jobs, a prediction never asks for the queue as a
  whole and reads only the running jobs' ends it needs.

The fixture is regenerated (only when decisions are *meant* to change) with
``PYTHONPATH=. python tests/sim/test_strategy_scale.py``; it holds the command and commit that
wrote it.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from placer.online import ClusterView, Decision, JobRequest, StopReason, Strategy
from placer.sim.cloud import uniform_cloud
from placer.sim.engine import OnPremConfig, SimResult, simulate
from placer.sim.metrics import summarise
from placer.sim.placer_strategy import PlacerStrategy
from placer.sim.registry import make_strategy
from placer.sim.scenario import Prepared, build, load_scenario
from placer.sim.workload import itp_trace

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("strategy_golden.json")
QUOTAS = {"aws-us-east-1": 16, "aws-eu-central-1": 16, "gcp-europe-west4": 8,
          "gcp-us-central1": 8, "azure-eastus": 8}
"""Cloud quotas (GPUs at once) of the realistic case: small enough that a few jobs find every
cloud option refused."""


# -- the cases -----------------------------------------------------------------------------------
@cache
def _eu_small() -> Prepared:
    """eu-pipelines.yaml cut to 72 h and 30 pipelines on 4 x 8 GPUs, with :data:`QUOTAS` and
    ``spot_traces: region``."""
    sc = ROOT / "benchmarks" / "scenarios"
    s = load_scenario(sc / "eu-pipelines.yaml")
    assert s.workload.window is not None and s.workload.pipelines is not None
    workload = s.workload.model_copy(update={
        "window": s.workload.window.model_copy(update={"hours": 72.0}),
        "pipelines": s.workload.pipelines.model_copy(update={"count": 30}),
    })
    return build(s.model_copy(update={
        "workload": workload,
        # the pre-issue-13 region-level spot traces these goldens were recorded with
        "cloud": s.cloud.model_copy(update={"quotas": QUOTAS, "spot_traces": "region"}),
        "onprem": s.onprem.model_copy(update={"nodes": 4}),
    }), sc)


def _run(case: str, strategy: Strategy) -> tuple[SimResult, Prepared | None]:
    """``itp:CLUSTER`` (its first 4,000 jobs on 4 x 8 GPUs, Starburst's uniform cloud: queues
    of up to ~300 jobs at high budgets) or ``eu-small`` (:func:`_eu_small`)."""
    if case == "eu-small":
        prep = _eu_small()
        return prep.simulate(strategy), prep
    workload = itp_trace(case.removeprefix("itp:"), limit=4000)
    return simulate(workload, strategy, onprem=OnPremConfig(nodes=4), cloud=uniform_cloud()), None


CASES: tuple[tuple[str, str, float], ...] = (
    ("itp:cluster04", "placer", 0.5),
    ("itp:cluster04", "placer", 5.0),
    ("itp:cluster04", "placer", 20.0),
    ("itp:cluster04", "compute-wait+oo", 0.5),
    ("itp:cluster04", "compute-wait", 0.5),
    ("itp:cluster04", "star-wait", 0.5),
    ("itp:cluster07", "placer", 5.0),
    ("itp:cluster07", "onprem-only", 0.0),
    ("eu-small", "placer", 0.5),
    ("eu-small", "placer", 2.0),
    ("eu-small", "placer-noreplicas", 1.0),
    ("eu-small", "onprem-only", 0.0),
)
"""``(case, strategy, budget)``: placer's strategy, and a baseline of each queue discipline
(out-of-order, FIFO, EASY backfill) whose engine structures changed with it."""


class _Logged(Strategy):
    """Another strategy, unchanged, with a hash of every decision it returns, in order."""

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner
        self.name, self.queue, self.residency, self.fit = (
            inner.name, inner.queue, inner.residency, inner.fit)
        self.log = hashlib.sha256()
        self.count = 0

    def _log(self, ask: str, job: JobRequest, d: Decision) -> Decision:
        self.count += 1
        self.log.update(f"{ask}|{job.id}|{d!r}\n".encode())
        return d

    def start(self, view: ClusterView, jobs: tuple[JobRequest, ...]) -> None:
        self.inner.start(view, jobs)

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        return self._log("ready", job, self.inner.on_ready(job, view))

    def on_timeout(self, job: JobRequest, view: ClusterView) -> Decision:
        return self._log("timeout", job, self.inner.on_timeout(job, view))

    def on_cloud_stopped(
        self, job: JobRequest, view: ClusterView, site: str, spot: bool, reason: StopReason
    ) -> Decision:
        return self._log("stopped", job, self.inner.on_cloud_stopped(job, view, site, spot,
                                                                      reason))

    def describe(self) -> str:
        return self.inner.describe()


def outcome(case: str, strategy: str, budget: float) -> dict[str, object]:
    """What the golden file holds of one run: hashes of the decisions and of the outcomes, and
    every summary metric but the wall-clock ones (floats as ``repr``: bit for bit)."""
    logged = _Logged(make_strategy(strategy, budget))
    result, prep = _run(case, logged)
    records = hashlib.sha256()
    for r in result.records:
        records.update(f"{r.job.id}|{r.ready_h!r}|{r.decisions}|{r.refused!r}|"
                       f"{r.attempts!r}\n".encode())
    for replica in result.replicas:
        records.update(repr(replica).encode())
    records.update(repr(result.onprem_busy).encode())
    m = summarise(result, truth=prep.truth if prep else None,
                  jurisdictions=prep.jurisdictions if prep else None).row()
    for wall_clock in ("decision_p50_ms", "decision_p99_ms", "wall_s"):
        del m[wall_clock]
    return {
        "decisions": f"{logged.count} {logged.log.hexdigest()}",
        "records": records.hexdigest(),
        "metrics": {k: repr(v) if isinstance(v, float) else v for k, v in m.items()},
    }


def _key(case: str, strategy: str, budget: float) -> str:
    return f"{case} {strategy} b={budget:g}"


@pytest.mark.parametrize(("case", "strategy", "budget"), CASES,
                         ids=[_key(*c) for c in CASES])
def test_decisions_and_outcomes_are_the_golden_ones(case: str, strategy: str,
                                                    budget: float) -> None:
    golden = json.loads(GOLDEN.read_text())["runs"][_key(case, strategy, budget)]
    assert outcome(case, strategy, budget) == golden


# -- the prediction against the whole-queue replay -----------------------------------------------
def whole_queue_wait(
    s: PlacerStrategy, job: JobRequest, view: ClusterView, priority: float = math.inf
) -> float:
    """``PlacerStrategy._predict_wait`` as it was before issue 13, verbatim but for ``self``:
    a replay of the out-of-order queue over every running and queued job, rebuilt at each
    decision. The reference the incremental prediction must equal."""
    if view.fits_now(job) and not view.queue_length():
        return 0.0
    now = view.now
    free = view.free_gpus
    ends = [(max(end, now), g) for end, g in view.running_onprem()]
    heapq.heapify(ends)
    pending: list[tuple[int, float, bool]] = []
    placed = False
    for o in view.queued():
        if not placed and s._prio.get(o.id, -math.inf) > priority:
            pending.append((job.gpus, 0.0, True))
            placed = True
        pending.append((o.gpus, view.remaining_h(o), False))
    if not placed:
        pending.append((job.gpus, 0.0, True))
    t = now
    for _ in range(s.max_steps):
        rest: list[tuple[int, float, bool]] = []
        for k, entry in enumerate(pending):
            g, h, me = entry
            if not free:
                rest.extend(pending[k:])
                break
            if g <= free:
                if me:
                    if t > now or view.fits_now(job):
                        return t - now
                    rest.append(entry)
                    continue
                free -= g
                heapq.heappush(ends, (t + h, g))
            else:
                rest.append(entry)
        pending = rest
        if not ends:
            return math.inf
        t, freed = heapq.heappop(ends)
        free += freed
        while ends and ends[0][0] <= t:
            free += heapq.heappop(ends)[1]
    return math.inf


class _Checked(PlacerStrategy):
    """placer's strategy, checking every prediction against :func:`whole_queue_wait`."""

    def __init__(self, budget: float) -> None:
        super().__init__(budget)
        self.checked = 0
        self.queued_ahead = 0
        """Predictions with queued jobs (the replay had a queue to place the job in)."""
        self.stale_ahead = 0
        """Predictions where a job queued at priority 0 is keyed above the new job's priority
        (the corner case :meth:`PlacerStrategy._place` keeps as the whole-queue replay had it)."""

    def _predict_wait(
        self, job: JobRequest, view: ClusterView, priority: float = math.inf
    ) -> float:
        if any(key > priority >= at for key, at, _ in self._stale.values()):
            self.stale_ahead += 1
        self.queued_ahead += view.queue_length() > 0
        fast = super()._predict_wait(job, view, priority)
        slow = whole_queue_wait(self, job, view, priority)
        assert fast == slow, (job.name, view.now, priority, fast, slow)
        self.checked += 1
        return fast


@pytest.mark.parametrize(("case", "budget"), [("itp:cluster04", 20.0), ("eu-small", 2.0)])
def test_every_prediction_equals_the_whole_queue_replay(case: str, budget: float) -> None:
    s = _Checked(budget)
    _run(case, s)
    assert s.checked > 1000 and s.queued_ahead > 500
    if case == "eu-small":
        assert s.stale_ahead > 0  # the corner case is exercised, not only the plain path


# -- a prediction reads what it needs, not the queue ---------------------------------------------
@dataclass
class _BigQueue:
    """The on-prem half of a view: ``free`` GPUs free, jobs running until ``ends`` and
    ``queued`` jobs waiting, ``(priority, seq, job)`` in queue order. Counts what is read."""

    queued_jobs: list[tuple[float, int, JobRequest]]
    ends: list[tuple[float, int]]
    free: int = 0
    gpus: int = 4096
    now: float = 0.0
    whole_queue_allowed: bool = False
    ends_read: int = 0
    by_gpus: dict[int, list[tuple[float, int, JobRequest]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in self.queued_jobs:
            self.by_gpus.setdefault(entry[2].gpus, []).append(entry)

    @property
    def free_gpus(self) -> int:
        return self.free

    @property
    def onprem_gpus(self) -> int:
        return self.gpus

    def fits_now(self, job: JobRequest) -> bool:
        return job.gpus <= self.free

    def queue_length(self) -> int:
        return len(self.queued_jobs)

    def queued_by_gpus(self) -> Mapping[int, Sequence[tuple[float, int, JobRequest]]]:
        return self.by_gpus

    def queued(self) -> Iterator[JobRequest]:
        assert self.whole_queue_allowed, "the prediction walked the queue"
        return (job for _, _, job in self.queued_jobs)

    def running_onprem(self) -> Iterator[tuple[float, int]]:
        for end in self.ends:
            self.ends_read += 1
            yield end

    def remaining_h(self, job: JobRequest) -> float:
        return job.estimate_h


@cache
def _big_queue_jobs() -> tuple[tuple[float, int, JobRequest], ...]:
    sizes = (1, 2, 4, 8)
    return tuple((float(i), i, JobRequest(i, f"q{i}", gpus=sizes[i % 4], estimate_h=1.0 + i % 7))
                 for i in range(20_000))


def _big_queue() -> _BigQueue:
    """4,000 GPUs all busy, 2,000 running jobs ending one every 0.01 h, 20,000 queued jobs of
    1 to 8 GPUs at rising priorities."""
    return _BigQueue(list(_big_queue_jobs()), [(0.01 * (k + 1), 2) for k in range(2000)])


@pytest.mark.parametrize(("gpus", "priority"), [(1, 5.5), (8, 5.5), (8, 19_999.5),
                                                (4, math.inf)])
def test_a_prediction_does_not_walk_a_long_queue(gpus: int, priority: float) -> None:
    s = PlacerStrategy(0.5)
    view = _big_queue()
    for p, _, queued in view.queued_jobs:  # as if this strategy had queued them
        s._prio[queued.id] = p
    job = JobRequest(99_999, "x", gpus=gpus, estimate_h=1.0)
    fast = s._predict_wait(job, view, priority)  # type: ignore[arg-type]
    # at most max_steps releases, each one end: never the 2,000 running jobs, never the queue
    assert view.ends_read <= s.max_steps + 1
    reference = _big_queue()
    reference.whole_queue_allowed = True
    assert fast == whole_queue_wait(s, job, reference, priority)  # type: ignore[arg-type]


# -- writing the golden file ---------------------------------------------------------------------
def _write(path: Path, runner: Callable[[str, str, float], dict[str, object]]) -> None:
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False, cwd=ROOT).stdout.strip()
    runs = {_key(*c): runner(*c) for c in CASES}
    path.write_text(json.dumps({
        "about": "Decisions and outcomes of tests/sim/test_strategy_scale.py's CASES, as "
                 "written by the placer package on the PYTHONPATH at the time: regenerate "
                 "only when decisions are meant to change.",
        "command": "PYTHONPATH=. python tests/sim/test_strategy_scale.py",
        "placer": "the package imported from "
                  + str(Path(sys.modules["placer"].__file__ or "").parent.parent),
        "commit": commit,
        "runs": runs,
    }, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    _write(GOLDEN, outcome)
    print(f"wrote {GOLDEN}")
