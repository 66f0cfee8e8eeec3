"""PNG plots of a benchmark: the cost–completion-time Pareto curve and a timeline per strategy.

matplotlib is not a dependency of placer (``pip install 'placer[bench]'``): it is imported
here, lazily, with the non-interactive Agg backend, and its absence raises
:class:`PlotsUnavailable` so that the report can note it and carry on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from placer.errors import BackendUnavailableError
from placer.models import Plan
from placer.sim.bench import BenchResult, Row


class PlotsUnavailable(BackendUnavailableError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotsUnavailable(
            "matplotlib is not installed; pip install 'placer[bench]' for the PNG plots"
        ) from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def frontier(plans: Sequence[Plan], path: Path) -> Path:
    """The cost–makespan frontier of ``placer plan --objective pareto``: one point per plan,
    cheapest first, numbered as in the command's table."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    xs = [p.makespan_h for p in plans]
    ys = [p.cost_usd for p in plans]
    ax.plot(xs, ys, marker="o", drawstyle="steps-post", color="#1f77b4")
    for i, p in enumerate(plans, 1):
        ax.annotate(str(i), (p.makespan_h, p.cost_usd), textcoords="offset points",
                    xytext=(3, 4), fontsize=7)
    ax.set_xlabel("makespan (h)")
    ax.set_ylabel("cost (USD)")
    name = plans[0].pipeline if plans else "pipeline"
    ax.set_title(f"{name}: cost-makespan frontier ({len(plans)} plans)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def pareto(result: BenchResult, path: Path) -> Path:
    """Cloud $ against average JCT: a line per waiting strategy over its budgets (labelled
    with the budget), a single point for each strategy that does not wait."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    colours = plt.get_cmap("tab10")
    jcts = [r.metrics.jct_avg_h for r in result.rows if r.metrics.jct_avg_h > 0]
    for i, (name, rows) in enumerate(_by_strategy(result.rows).items()):
        colour = colours(i % 10)
        xs = [r.metrics.jct_avg_h for r in rows]
        ys = [r.metrics.cloud_usd for r in rows]
        if rows[0].budget is None:
            ax.scatter(xs, ys, marker="s", s=40, label=name, zorder=3, color=colour)
            continue
        ax.plot(xs, ys, marker="o", ms=4, label=name, color=colour)
        for r, x, y in zip(rows, xs, ys, strict=True):
            ax.annotate(
                f"{r.budget:g}",
                (x, y),
                textcoords="offset points",
                xytext=(4, 3),
                fontsize=7,
                color=colour,
            )
    # On-prem only typically waits orders of magnitude longer than the rest: a log axis keeps
    # the interesting corner readable.
    if jcts and max(jcts) > 5 * min(jcts):
        ax.set_xscale("log")
    ax.set_xlabel("average job completion time (h)")
    ax.set_ylabel("cloud cost (USD)")
    ax.set_title(
        f"{result.scenario.name}: cost vs completion time (labels: waiting budget)", fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def timeline(result: BenchResult, path: Path, budget: float | None = None) -> Path:
    """On-prem busy GPUs and cumulative cloud $ over time, per strategy, at one budget.

    ``budget``: which of the sweep's budgets to show for waiting strategies; default the
    middle one of the sweep.
    """
    plt = _pyplot()
    budgets = result.scenario.budgets
    chosen = budget if budget is not None else sorted(budgets)[len(budgets) // 2]
    rows = [r for r in result.rows if r.budget is None or r.budget == chosen]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), dpi=120, sharex=True)
    for r in rows:
        tl = r.timeline
        if tl.busy:
            t, g = zip(*tl.busy, strict=True)
            top.step(t, g, where="post", label=r.strategy, linewidth=0.8)
        if tl.spend:
            t2, usd = zip(*tl.spend, strict=True)
            bottom.step(t2, usd, where="post", label=r.strategy, linewidth=1.0)
    gpus = rows[0].timeline.onprem_gpus if rows else 0
    if gpus:
        top.axhline(gpus, color="grey", linestyle=":", linewidth=0.8)
    top.set_ylabel("on-prem GPUs busy")
    top.set_title(
        f"{result.scenario.name}: on-prem use and cloud spend (waiting budget {chosen:g})",
        fontsize=10,
    )
    bottom.set_ylabel("cumulative cloud cost (USD)")
    bottom.set_xlabel("time (h)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_plots(
    result: BenchResult, out_dir: Path, *, timeline_budget: float | None = None
) -> list[Path]:
    """``pareto.png`` and ``timeline.png`` in ``out_dir``."""
    _pyplot()
    return [
        pareto(result, out_dir / "pareto.png"),
        timeline(result, out_dir / "timeline.png", timeline_budget),
    ]


def _by_strategy(rows: Sequence[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for r in rows:
        out.setdefault(r.strategy, []).append(r)
    return out
