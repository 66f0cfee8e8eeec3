"""The benchmark runner: every strategy of a scenario over its waiting budgets, as values.

:func:`run_benchmark` runs each (strategy, budget) pair of :meth:`Scenario.runs` once, in this
process or through a :class:`Runner` (``placer_ray``'s runs them as Ray tasks), and returns rows
of metrics in that order. Runs are independent and each is seeded by the scenario's seed, so
the numbers do not depend on where or in which order they ran (wall-clock figures aside:
decision latency and ``wall_s``). A remote run receives the scenario *model* and its directory
and rebuilds everything itself (:func:`run_one`): built objects such as cloud models and spot
traces are never pickled, and a worker builds a scenario once however many of its runs it gets.

What is shown of a benchmark (tables, progress bars, ``metrics.csv``/``.json``, plots,
``RESULTS.md``) is the command line's: :mod:`placer.report` draws it from these values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from placer.sim.engine import SimResult
from placer.sim.metrics import Metrics, SpotTraceUse, spot_trace_use, summarise
from placer.sim.registry import base_name, make_strategy
from placer.sim.scenario import Prepared, Scenario, build

__all__ = [
    "BenchResult",
    "Progress",
    "Row",
    "Runner",
    "Timeline",
    "run_benchmark",
    "run_one",
]

BASELINE = "no-wait"
"""Cloud spend is reported as a share of this strategy's (or of ``no-wait+mask`` when only that
ran), as Starburst reports its policies' cost against bursting at once."""


@dataclass(frozen=True)
class Timeline:
    """What the timeline plot needs of one run, small enough to ship back from a remote run."""

    busy: tuple[tuple[float, int], ...]
    """On-prem busy GPUs, a step function: (time h, GPUs busy from then on)."""
    spend: tuple[tuple[float, float], ...]
    """Cumulative cloud USD (compute and egress when a run stops, a replica's egress when it is
    requested, replica storage at the end)."""
    onprem_gpus: int


@dataclass(frozen=True)
class Row:
    """One run: a strategy at a budget (``None``: a strategy that does not wait)."""

    strategy: str
    budget: float | None
    metrics: Metrics
    share_of_no_wait: float | None
    """Cloud $ / No-Wait's cloud $, when No-Wait ran (and spent something)."""
    timeline: Timeline
    spot_traces: SpotTraceUse | None = None
    """Which spot traces the run met, and how much of its spot use was borrowed."""


@dataclass(frozen=True)
class BenchResult:
    scenario: Scenario
    rows: tuple[Row, ...]
    workload: str
    """Name and size of the built workload, for titles."""
    source: str
    """The workload's citation (trace, commit, licence, or generator parameters)."""


Outcome = tuple[Metrics, Timeline, SpotTraceUse]


class Runner(Protocol):
    """Runs calls somewhere else (``placer_ray``'s runner: Ray tasks), results as they finish.

    ``fn`` is :func:`run_one`, a module-level function its workers import; each call's
    arguments are plain values (the scenario as JSON).
    """

    def map(
        self, fn: Callable[..., Outcome], calls: Sequence[tuple[Any, ...]]
    ) -> Iterator[tuple[int, Outcome]]:
        """``(index in calls, fn(*call))`` for every call, in the order they finish."""
        ...


class Progress(Protocol):
    """What :func:`run_benchmark` reports as it goes (``placer.report.ProgressBars`` draws
    it). Runs are numbered in :meth:`Scenario.runs` order."""

    def start(self, labels: Sequence[str], jobs: int) -> None:
        """Before any run: a label per run, and the jobs each replays."""
        ...

    def running(self, run: int) -> None:
        """Run ``run`` starts here (not reported for runs elsewhere)."""
        ...

    def advance(self, run: int, finished: int) -> None:
        """Run ``run`` has finished ``finished`` jobs (every 256, for runs here)."""
        ...

    def done(self, run: int, metrics: Metrics) -> None: ...


def timeline_of(result: SimResult) -> Timeline:
    onprem = result.onprem.site
    events: list[tuple[float, float]] = []
    for rec in result.records:
        for att in rec.attempts:
            usd = att.egress_usd + (att.compute_usd if att.site != onprem else 0.0)
            if usd:
                events.append((att.stop_h, usd))
    events += [(r.requested_h, r.egress_usd) for r in result.replicas if r.egress_usd]
    if result.replicas:
        events.append((result.end_h, result.storage_usd()))
    events.sort()
    spend: list[tuple[float, float]] = [(0.0, 0.0)]
    total = 0.0
    for t, usd in events:
        total += usd
        if spend[-1][0] == t:
            spend[-1] = (t, total)
        else:
            spend.append((t, total))
    return Timeline(tuple(result.onprem_busy), tuple(spend), result.onprem.gpus)


@lru_cache(maxsize=4)
def _prepared(scenario_json: str, base_dir: str) -> Prepared:
    return build(Scenario.model_validate_json(scenario_json), base_dir)


def run_one(
    scenario: Scenario | str, base_dir: str, strategy: str, budget: float | None
) -> Outcome:
    """One run, building the scenario here (cached per process): what a remote run executes.

    ``scenario`` may be the model or its JSON (what is shipped to a worker).
    """
    text = scenario if isinstance(scenario, str) else scenario.model_dump_json()
    prep = _prepared(text, base_dir)
    return _simulate(prep, strategy, budget)


def _simulate(
    prep: Prepared,
    strategy: str,
    budget: float | None,
    progress: Callable[[int], None] | None = None,
) -> Outcome:
    strat = make_strategy(strategy) if budget is None else make_strategy(strategy, budget)
    result = prep.simulate(strat, progress=progress)
    metrics = summarise(result, truth=prep.truth, jurisdictions=prep.jurisdictions)
    return metrics, timeline_of(result), spot_trace_use(result, prep.cloud)


def label(strategy: str, budget: float | None) -> str:
    """How a run is named in progress displays: ``placer @ 0.5``."""
    return strategy if budget is None else f"{strategy} @ {budget:g}"


def run_benchmark(
    scenario: Scenario,
    base_dir: str | Path | None = None,
    *,
    runner: Runner | None = None,
    progress: Progress | None = None,
    prepared: Prepared | None = None,
) -> BenchResult:
    """Run every (strategy, budget) of ``scenario``; rows come back in :meth:`Scenario.runs`
    order whatever order the runs finished in.

    Args:
        scenario: the scenario.
        base_dir: the directory its relative paths are relative to (default: the current one).
        runner: ``None`` runs here, one after the other; otherwise each run is a call of
            :func:`run_one` through the runner (for Ray: ``placer_ray.TaskRunner``, which
            ``placer bench hybrid --ray`` takes from the ray backend's entry point). The
            runner's workers must have placer installed, and relative paths must exist there.
        progress: told of each run's start, progress and end.
        prepared: the scenario already built (saves building it again here).

    Raises:
        ConfigError: a bad scenario (raised before any run starts).
    """
    base = str(Path(base_dir).resolve()) if base_dir is not None else str(Path.cwd())
    prep = prepared if prepared is not None else build(scenario, base)
    runs = scenario.runs()
    done: dict[int, Outcome] = {}
    if progress is not None:
        progress.start([label(s, b) for s, b in runs], len(prep.workload.jobs))
    if runner is None:
        for i, (s, b) in enumerate(runs):
            advance: Callable[[int], None] | None = None
            if progress is not None:
                progress.running(i)
                advance = _advance(progress, i)
            done[i] = _simulate(prep, s, b, advance)
            if progress is not None:
                progress.done(i, done[i][0])
    else:
        text = scenario.model_dump_json()
        for i, out in runner.map(run_one, [(text, base, s, b) for s, b in runs]):
            done[i] = out
            if progress is not None:
                progress.done(i, out[0])
    rows = _rows(runs, done)
    w = prep.workload
    return BenchResult(scenario, rows, f"{w.name} ({len(w.jobs)} jobs)", w.source)


def _advance(progress: Progress, run: int) -> Callable[[int], None]:
    return lambda finished: progress.advance(run, finished)


def _rows(
    runs: Sequence[tuple[str, float | None]], done: Mapping[int, Outcome]
) -> tuple[Row, ...]:
    # No-Wait itself, else its masked form (a residency scenario runs only that one).
    order = sorted(range(len(runs)), key=lambda i: runs[i][0] != BASELINE)
    base = next((done[i][0].cloud_usd for i in order if base_name(runs[i][0]) == BASELINE), None)
    out = []
    for i, (s, b) in enumerate(runs):
        m, tl, spot = done[i]
        share = m.cloud_usd / base if base else None
        out.append(Row(s, b, m, share, tl, spot))
    return tuple(out)
