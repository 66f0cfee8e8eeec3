"""Progress bars of a benchmark on stderr: a :class:`placer.sim.bench.Progress` drawn by rich."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

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
