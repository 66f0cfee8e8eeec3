"""The benchmark runner: every strategy of a scenario over its waiting budgets, and the report.

:func:`run_benchmark` runs each (strategy, budget) pair of :meth:`Scenario.runs` once, in this
process or as Ray tasks, and returns rows of metrics in that order. Runs are independent and
each is seeded by the scenario's seed, so the numbers do not depend on where or in which order
they ran (wall-clock figures aside: decision latency and ``wall_s``). A Ray task receives the
scenario *model* and its directory and rebuilds everything itself (:func:`run_one`): built
objects such as cloud models and spot traces are never pickled, and a worker builds a scenario
once however many of its runs it gets.

:func:`write_report` writes ``metrics.csv``, ``metrics.json`` (with the scenario, seed, placer
version and command line), the plots of :mod:`placer.sim.plots`, and optionally appends a
section to a markdown file (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from placer.errors import BackendUnavailableError, ConfigError, ErrorDetail
from placer.sim.engine import SimResult
from placer.sim.metrics import Metrics, summarise
from placer.sim.registry import base_name, make_strategy
from placer.sim.scenario import Prepared, Scenario, build

__all__ = [
    "BenchResult",
    "Row",
    "Timeline",
    "markdown_table",
    "rich_table",
    "run_benchmark",
    "run_one",
    "write_report",
]

BASELINE = "no-wait"
"""Cloud spend is reported as a share of this strategy's (or of ``no-wait+mask`` when only that
ran), as Starburst reports its policies' cost against bursting at once."""


@dataclass(frozen=True)
class Timeline:
    """What the timeline plot needs of one run, small enough to ship back from a Ray task."""

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


@dataclass(frozen=True)
class BenchResult:
    scenario: Scenario
    rows: tuple[Row, ...]
    workload: str
    """Name and size of the built workload, for titles."""
    source: str
    """The workload's citation (trace, commit, licence, or generator parameters)."""


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
) -> tuple[Metrics, Timeline]:
    """One run, building the scenario here (cached per process): what a Ray task executes.

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
) -> tuple[Metrics, Timeline]:
    strat = make_strategy(strategy) if budget is None else make_strategy(strategy, budget)
    result = prep.simulate(strat, progress=progress)
    metrics = summarise(result, truth=prep.truth, jurisdictions=prep.jurisdictions)
    return metrics, timeline_of(result)


def _progress(enabled: bool) -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
    )


def _label(strategy: str, budget: float | None) -> str:
    return strategy if budget is None else f"{strategy} @ {budget:g}"


def run_benchmark(
    scenario: Scenario,
    base_dir: str | Path | None = None,
    *,
    ray: str | None = None,
    progress: bool = True,
    prepared: Prepared | None = None,
) -> BenchResult:
    """Run every (strategy, budget) of ``scenario``; rows come back in :meth:`Scenario.runs`
    order whatever order the runs finished in.

    Args:
        scenario: the scenario.
        base_dir: the directory its relative paths are relative to (default: the current one).
        ray: ``None`` runs here, one after the other; ``"local"`` starts a Ray instance on
            loopback for the duration, one worker per core; ``"auto"`` joins the running
            cluster; anything else is a cluster address (``ray://host:10001`` or
            ``host:6379``). placer must be
            installed on the cluster's workers, and relative paths must exist there too.
        progress: show a bar per run on stderr (only when stderr is a terminal).
        prepared: the scenario already built (saves building it again here).

    Raises:
        ConfigError: a bad scenario (raised before any run starts).
        BackendUnavailableError: ``ray`` asked for but not installed.
    """
    base = str(Path(base_dir).resolve()) if base_dir is not None else str(Path.cwd())
    prep = prepared if prepared is not None else build(scenario, base)
    runs = scenario.runs()
    done: dict[int, tuple[Metrics, Timeline]] = {}
    with _progress(progress) as bar:
        n = max(len(prep.workload.jobs), 1)
        tasks = [bar.add_task(_label(s, b), total=n, note="") for s, b in runs]
        if ray is None:
            for i, (s, b) in enumerate(runs):
                bar.update(tasks[i], note="running")

                def advance(k: int, task: TaskID = tasks[i]) -> None:
                    bar.update(task, completed=k)

                done[i] = _simulate(prep, s, b, advance)
                bar.update(tasks[i], completed=n, note=_note(done[i][0]))
        else:
            for i, out in _run_on_ray(scenario, base, runs, ray):
                done[i] = out
                bar.update(tasks[i], completed=n, note=_note(out[0]))
    rows = _rows(runs, done)
    w = prep.workload
    return BenchResult(scenario, rows, f"{w.name} ({len(w.jobs)} jobs)", w.source)


def _note(m: Metrics) -> str:
    return f"cloud ${m.cloud_usd:,.0f}  avg JCT {m.jct_avg_h:.2f} h"


def _rows(
    runs: Sequence[tuple[str, float | None]], done: Mapping[int, tuple[Metrics, Timeline]]
) -> tuple[Row, ...]:
    # No-Wait itself, else its masked form (a residency scenario runs only that one).
    order = sorted(range(len(runs)), key=lambda i: runs[i][0] != BASELINE)
    base = next((done[i][0].cloud_usd for i in order if base_name(runs[i][0]) == BASELINE), None)
    out = []
    for i, (s, b) in enumerate(runs):
        m, tl = done[i]
        share = m.cloud_usd / base if base else None
        out.append(Row(s, b, m, share, tl))
    return tuple(out)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailableError(
            f"--ray needs Ray: pip install 'placer[ray]' ({exc})"
        ) from exc
    return ray


def _run_on_ray(
    scenario: Scenario, base: str, runs: Sequence[tuple[str, float | None]], address: str
) -> Iterator[tuple[int, tuple[Metrics, Timeline]]]:
    """Each run a Ray task; results are yielded as they finish (indexes keep the order)."""
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        if address == "local":
            # every core: the runs are independent, one per worker
            ray.init(
                num_cpus=os.cpu_count() or 1,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                log_to_driver=False,
                configure_logging=False,
            )
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        started = True
    try:
        task = ray.remote(num_cpus=1)(run_one)
        text = scenario.model_dump_json()
        refs = {task.remote(text, base, s, b): i for i, (s, b) in enumerate(runs)}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                yield refs[ref], ray.get(ref)
    finally:
        if started:
            ray.shutdown()


# -- output ----------------------------------------------------------------------------------


def _h(x: float) -> str:
    """Hours with two decimals; a tiny negative (float noise) prints as 0.00, not -0.00."""
    return f"{0.0 if abs(x) < 0.005 else x:.2f}"


_TABLE: tuple[tuple[str, Callable[[Row], str]], ...] = (
    ("strategy", lambda r: r.strategy),
    ("budget", lambda r: "" if r.budget is None else f"{r.budget:g}"),
    ("cloud $", lambda r: f"{r.metrics.cloud_usd:,.0f}"),
    (
        "% No-Wait",
        lambda r: "" if r.share_of_no_wait is None else f"{100 * r.share_of_no_wait:.1f}",
    ),
    ("avg JCT", lambda r: _h(r.metrics.jct_avg_h)),
    ("p50 JCT", lambda r: _h(r.metrics.jct_p50_h)),
    ("p90 JCT", lambda r: _h(r.metrics.jct_p90_h)),
    ("p99 JCT", lambda r: _h(r.metrics.jct_p99_h)),
    ("avg wait", lambda r: _h(r.metrics.wait_avg_h)),
    ("util %", lambda r: f"{100 * r.metrics.onprem_util:.1f}"),
    (
        "missed",
        lambda r: (
            f"{r.metrics.deadline_misses}/{r.metrics.deadline_jobs}"
            if r.metrics.deadline_jobs
            else "-"
        ),
    ),
    ("violations", lambda r: str(r.metrics.violations)),
    ("decide p99 ms", lambda r: f"{r.metrics.decision_p99_ms:.2f}"),
)


def rich_table(result: BenchResult) -> Table:
    t = Table(
        title=f"{result.scenario.name}: {result.workload}; times in hours",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for name, _ in _TABLE:
        left = name == "strategy"
        t.add_column(name, justify="left" if left else "right", no_wrap=left)
    for r in result.rows:
        t.add_row(*(f(r) for _, f in _TABLE))
    return t


def markdown_table(result: BenchResult) -> str:
    head = [name for name, _ in _TABLE]
    lines = [
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" if h == "strategy" else "---:" for h in head) + " |",
    ]
    lines += ["| " + " | ".join(f(r) for _, f in _TABLE) + " |" for r in result.rows]
    return "\n".join(lines)


def _clean(x: object) -> object:
    """NaN and infinities are not JSON: write them as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _record(r: Row) -> dict[str, object]:
    rec: dict[str, object] = {
        "strategy": r.strategy,
        "budget": r.budget,
        "share_of_no_wait": r.share_of_no_wait,
    }
    rec.update({k: v for k, v in asdict(r.metrics).items() if k != "strategy"})
    rec["strategy_params"] = r.metrics.strategy
    return {k: _clean(v) for k, v in rec.items()}


def write_report(
    result: BenchResult,
    out_dir: str | Path,
    *,
    command: Sequence[str] | str | None = None,
    base_dir: str | Path | None = None,
    results_md: str | Path | None = None,
    timeline_budget: float | None = None,
    plots: bool = True,
    console: Console | None = None,
) -> list[Path]:
    """Write ``metrics.csv``, ``metrics.json``, the PNGs, and append to ``results_md``.

    Returns the files written. Plots are skipped with a note on ``console`` (stderr by
    default) when matplotlib is missing.
    """
    from placer import __version__
    from placer.sim import plots as plotting

    note = console or Console(stderr=True)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(ErrorDetail(f"cannot create output folder: {exc}", str(out))) from None
    cmd = command if isinstance(command, str) or command is None else _shell(command)
    records = [_record(r) for r in result.rows]
    written: list[Path] = []

    path = out / "metrics.csv"
    keys = list(records[0]) if records else ["strategy", "budget"]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(records)
    written.append(path)

    path = out / "metrics.json"
    doc = {
        "placer_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": cmd,
        "seed": result.scenario.seed,
        "base_dir": str(base_dir) if base_dir is not None else None,
        "workload": result.workload,
        "source": result.source,
        "scenario": result.scenario.model_dump(mode="json"),
        "rows": records,
    }
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    written.append(path)

    pngs: list[Path] = []
    if plots:
        try:
            pngs = plotting.write_plots(result, out, timeline_budget=timeline_budget)
        except plotting.PlotsUnavailable as exc:
            note.print(f"[yellow]note[/]: no plots: {escape(str(exc))}", highlight=False)
    written += pngs

    if results_md is not None:
        md = Path(results_md)
        written.append(md)
        _append_markdown(result, md, cmd, pngs)
    return written


def _shell(argv: Sequence[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


def _append_markdown(result: BenchResult, md: Path, cmd: str | None, pngs: Sequence[Path]) -> None:
    import os

    day = dt.date.today().isoformat()
    parts = [f"\n## {result.scenario.name} — {day}\n"]
    if result.scenario.description:
        parts.append(result.scenario.description.strip() + "\n")
    parts.append(f"Workload: {result.workload}. Source: {result.source}.\n")
    if cmd:
        parts.append(f"```\n{cmd}\n```\n")
    parts.append(markdown_table(result) + "\n")
    for p in pngs:
        rel = os.path.relpath(p.resolve(), md.resolve().parent)
        parts.append(f"![{p.stem}]({Path(rel).as_posix()})\n")
    md.parent.mkdir(parents=True, exist_ok=True)
    with md.open("a", encoding="utf-8") as f:
        f.write("\n".join(parts))


def command_line() -> list[str]:
    """The command as typed, for metrics.json and RESULTS.md."""
    return ["placer", *sys.argv[1:]]
