"""The results table of a benchmark, for the terminal (rich) and for markdown: one set of
columns."""

from __future__ import annotations

from collections.abc import Callable

from rich import box
from rich.markup import escape
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


def rich_table(result: BenchResult) -> Table:
    """The results as a rich table; every cell and the title are plain text, never markup (a
    scenario or strategy named ``[bold]x[/]`` is shown as written)."""
    t = Table(
        title=escape(f"{result.scenario.name}: {result.workload}; times in hours"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for name, _ in _TABLE:
        left = name == "strategy"
        t.add_column(name, justify="left" if left else "right", no_wrap=left)
    for r in result.rows:
        t.add_row(*(escape(f(r)) for _, f in _TABLE))
    return t


def markdown_table(result: BenchResult) -> str:
    head = [name for name, _ in _TABLE]
    lines = [
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" if h == "strategy" else "---:" for h in head) + " |",
    ]
    lines += ["| " + " | ".join(f(r) for _, f in _TABLE) + " |" for r in result.rows]
    return "\n".join(lines)
