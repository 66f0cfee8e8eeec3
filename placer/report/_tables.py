"""The results table of a benchmark, for the terminal (rich) and for markdown: one set of
columns."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from placer.sim.bench import BenchResult, Row


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


# Repeated in every part of a table split to fit a narrow terminal: they name the row.
_KEYS = 2


def rich_table(result: BenchResult) -> Table:
    """The results as a rich table; every cell and the title are plain text, never markup (a
    scenario or strategy named ``[bold]x[/]`` is shown as written). A number is never cut (its
    column keeps its widest cell on one line) and a strategy's name folds rather than end in an
    ellipsis; give it the width it measures (:func:`rich_tables` fits a narrow terminal)."""
    return _table(result, range(len(_TABLE)), title=True, narrow=False)


def rich_tables(result: BenchResult, width: int) -> list[Table]:
    """The results as tables that each fit in ``width`` columns, every value whole: the
    columns that do not fit beside the first ones go to a further table below, each repeating
    strategy and budget (as a wide data frame is printed). One table when it fits."""
    console = Console(width=100_000)
    parts: list[list[int]] = [[]]
    for i in range(_KEYS, len(_TABLE)):
        trial = _table(result, [*range(_KEYS), *parts[-1], i], title=False, narrow=True)
        if parts[-1] and Measurement.get(console, console.options, trial).maximum > width:
            parts.append([])
        parts[-1].append(i)
    return [_table(result, [*range(_KEYS), *part], title=n == 0, narrow=True)
            for n, part in enumerate(parts)]


def _table(result: BenchResult, columns: Sequence[int], title: bool, narrow: bool) -> Table:
    """The chosen columns; ``narrow``: a header wider than its column's cells wraps."""
    t = Table(
        title=escape(f"{result.scenario.name}: {result.workload}; times in hours") if title
        else None,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
    )
    chosen = [_TABLE[i] for i in columns]
    cells = [[f(r) for _, f in chosen] for r in result.rows]
    for k, (name, _) in enumerate(chosen):
        if name == "strategy":
            t.add_column(name, overflow="fold")
            continue
        widest = max([len(row[k]) for row in cells] + [len(w) for w in name.split()])
        t.add_column(textwrap.fill(name, widest) if narrow else name, justify="right",
                     no_wrap=True)
    for row in cells:
        t.add_row(*(escape(c) for c in row))
    return t


def markdown_table(result: BenchResult) -> str:
    head = [name for name, _ in _TABLE]
    lines = [
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" if h == "strategy" else "---:" for h in head) + " |",
    ]
    lines += ["| " + " | ".join(f(r) for _, f in _TABLE) + " |" for r in result.rows]
    return "\n".join(lines)
