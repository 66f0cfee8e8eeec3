"""Progress bars of a benchmark on stderr: a :class:`placer.sim.bench.Progress` drawn by rich."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from time import monotonic
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from placer.sim.metrics import Metrics


class ProgressBars:
    """A bar per run, on stderr, only when stderr is a terminal and ``enabled``.

    Use as a context manager around :func:`placer.sim.bench.run_benchmark`::

        with ProgressBars() as bars:
            result = run_benchmark(scenario, progress=bars)
    """

    def __init__(self, enabled: bool = True) -> None:
        console = Console(stderr=True)
        self._bar = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not (enabled and console.is_terminal),
        )
        self._tasks: list[TaskID] = []
        self._jobs = 1

    def __enter__(self) -> ProgressBars:
        self._bar.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bar.__exit__(kind, exc, tb)

    def start(self, labels: Sequence[str], jobs: int) -> None:
        self._jobs = max(jobs, 1)
        self._tasks = [self._bar.add_task(s, total=self._jobs, note="") for s in labels]

    def running(self, run: int) -> None:
        self._bar.update(self._tasks[run], note="running")

    def advance(self, run: int, finished: int) -> None:
        self._bar.update(self._tasks[run], completed=finished)

    def done(self, run: int, metrics: Metrics) -> None:
        note = f"cloud ${metrics.cloud_usd:,.0f}  avg JCT {metrics.jct_avg_h:.2f} h"
        self._bar.update(self._tasks[run], completed=self._jobs, note=note)


class RunProgress:
    """A line each time a job of a run changes state (or site, or attempt), while a command
    drives the run (``placer submit --wait``): plain lines, so a log or a pipe reads them too.

    ``write`` prints one line; ``mask`` masks secrets in text from clusters (reasons).
    """

    def __init__(self, write: Callable[[str], None],
                 mask: Callable[[str], str] = str, clock: Callable[[], float] = monotonic) -> None:
        self._write, self._mask, self._clock = write, mask, clock
        self._t0 = clock()
        self._seen: dict[str, tuple[object, ...]] = {}
        self._run: object = None

    def update(self, status: Any) -> None:
        """Write what changed since the last status (a :class:`placer.executor.RunStatus`)."""
        at = f"[{self._clock() - self._t0:5.0f}s]"
        width = max((len(j) for j in status.jobs), default=0)
        for name, j in status.jobs.items():
            key = (j.state, j.site, j.attempt, j.reason)
            if self._seen.get(name) == key:
                continue
            self._seen[name] = key
            where = f" on {j.site}" if j.site else ""
            attempt = f" (attempt {j.attempt})" if j.attempt > 1 else ""
            why = f": {j.reason}" if j.reason else ""
            self._write(self._mask(f"{at} {name:<{width}}  {j.state}{where}{attempt}{why}"))
        if status.state != self._run:
            self._run = status.state
            if status.done:
                self._write(self._mask(f"{at} run {status.run_id} {status.state}"))
