"""PNG plots of a benchmark: the cost–completion-time Pareto curve and a timeline per strategy.

matplotlib is not a dependency of placer (``pip install 'placer[bench]'``): it is imported
here, lazily, with the non-interactive Agg backend, and its absence raises
:class:`PlotsUnavailable` so that the report can note it and carry on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

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
    labels = [ax.annotate(str(i), (p.makespan_h, p.cost_usd), textcoords="offset points",
                          xytext=(3, 4), fontsize=7) for i, p in enumerate(plans, 1)]
    ax.set_xlabel("makespan (h)")
    ax.set_ylabel("cost (USD)")
    name = plans[0].pipeline if plans else "pipeline"
    ax.set_title(f"{name}: cost-makespan frontier ({len(plans)} plans)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    declutter(fig, labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# One colour per strategy, the same in every plot and every run: placer black, the baselines
# fixed tab10 colours in a fixed order; a name not listed takes the next free colour.
_KNOWN: Final = (
    "onprem-only", "no-wait", "constant-wait", "constant-wait-nosj", "compute-wait+oo",
    "star-wait", "skypilot",
)
_TAB10: Final = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
    "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a",
)
_PLACER: Final = "#111111"
_VIOLATION: Final = "#d62728"
_OUTLIER: Final = 5.0
"""A strategy whose average JCT is more than this times the median of the others' is drawn as
an arrow at the edge (on-prem only waits weeks where the rest wait hours)."""


def colours(names: Sequence[str]) -> dict[str, str]:
    """The colour of each strategy: fixed for known names, so plots compare at a glance."""
    out: dict[str, str] = {}
    free = iter(c for i, c in enumerate(_TAB10) if i >= len(_KNOWN))
    for name in dict.fromkeys(names):  # a variant (+mask, -literal) takes its family's colour
        base = name.split("+mask")[0].removesuffix("-literal")  # unless the family has it
        fixed = _PLACER if base.startswith("placer") else (
            _TAB10[_KNOWN.index(base)] if base in _KNOWN else None)
        out[name] = fixed if fixed and fixed not in out.values() else next(free, "#7f7f7f")
    return out


def outliers(rows: Sequence[Row]) -> set[str]:
    """Strategies too far right to share the axis with the rest (see :data:`_OUTLIER`)."""
    by = _by_strategy(rows)
    far: set[str] = set()
    for name, rs in by.items():
        others = sorted(r.metrics.jct_avg_h for n, o in by.items() if n != name for r in o)
        if not others:
            continue
        median = others[len(others) // 2]
        if median > 0 and min(r.metrics.jct_avg_h for r in rs) > _OUTLIER * median:
            far.add(name)
    return far if len(far) < len(by) else set()


def pareto_figure(result: BenchResult) -> Any:
    """The figure of :func:`pareto` (for tests to read its labels and extents)."""
    plt = _pyplot()
    by = _by_strategy(result.rows)
    colour = colours(list(by))
    far = outliers(result.rows)
    fig, ax = plt.subplots(figsize=(9.5, 5.5), dpi=120)
    labels: list[Any] = []
    near = _near([r for r in result.rows if r.strategy not in far])
    drawn: list[tuple[float, float, str]] = []  # fixed points already drawn, and whose
    for name, rows in by.items():
        if name in far:
            continue
        xs = [r.metrics.jct_avg_h for r in rows]
        ys = [r.metrics.cloud_usd for r in rows]
        c = colour[name]
        if rows[0].budget is None:
            twin = next((n for x, y, n in drawn if near(x, y, xs[0], ys[0])), None)
            if twin is None:
                drawn.append((xs[0], ys[0], name))
                ax.scatter(xs, ys, marker="s", s=46, label=name, zorder=4, color=c)
            else:  # the same point as another strategy: a ring around it, said in the legend
                ax.scatter(xs, ys, marker="o", s=160, facecolors="none", edgecolors=c,
                           linewidths=1.6, zorder=5, label=f"{name} (at {twin}'s point)")
            continue
        ax.plot(xs, ys, marker="o", ms=4, label=name, color=c, zorder=3,
                linewidth=2.2 if c == _PLACER else 1.2)
        ends = {0, len(rows) - 1} if len(rows) > 4 else set(range(len(rows)))
        for i in sorted(ends):
            labels.append(ax.annotate(
                f"b={rows[i].budget:g}", (xs[i], ys[i]), textcoords="offset points",
                xytext=(5, 4), fontsize=7, color=c))
    bad = [r for r in result.rows if r.metrics.violations > 0 and r.strategy not in far]
    if bad:
        ax.scatter([r.metrics.jct_avg_h for r in bad], [r.metrics.cloud_usd for r in bad],
                   marker="x", s=90, color=_VIOLATION, linewidths=2, zorder=6,
                   label="residency violations")
        for r in bad:
            labels.append(ax.annotate(
                f"{r.metrics.violations} violations", (r.metrics.jct_avg_h, r.metrics.cloud_usd),
                textcoords="offset points", xytext=(5, -10), fontsize=7, color=_VIOLATION))
    for name in sorted(far):  # off the axis to the right: an arrow at the edge says where
        m = min(by[name], key=lambda r: r.metrics.jct_avg_h).metrics
        note = f" ({m.violations} violations)" if m.violations else ""
        labels.append(ax.annotate(
            f"{name} \u2192\navg JCT {m.jct_avg_h:,.0f} h, ${m.cloud_usd:,.0f}{note}",
            xy=(1.0, 0.03), xycoords="axes fraction", xytext=(-4, 0),
            textcoords="offset points", ha="right", va="bottom", fontsize=8,
            color=_VIOLATION if m.violations else colour[name],
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colour[name]}))
        ax.scatter([], [], marker=">", color=colour[name], label=f"{name} (off the axis)")
    ax.margins(x=0.1, y=0.12)
    ax.set_xlabel("average job completion time (h)")
    ax.set_ylabel("cloud cost (USD)")
    ax.yaxis.set_major_formatter(lambda v, _pos: f"${v:,.0f}")
    ax.set_title(f"{result.scenario.name}: cloud cost vs completion time "
                 "(b: waiting budget; lower left is better)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    declutter(fig, labels)
    return fig


def _near(rows: Sequence[Row]) -> Callable[[float, float, float, float], bool]:
    """Whether two points would be drawn on top of each other: within 1.5 % of the plotted
    ranges on both axes."""
    xs = [r.metrics.jct_avg_h for r in rows] or [0.0]
    ys = [r.metrics.cloud_usd for r in rows] or [0.0]
    dx, dy = 0.015 * (max(xs) - min(xs)), 0.015 * (max(ys) - min(ys))
    return lambda x1, y1, x2, y2: abs(x1 - x2) <= dx and abs(y1 - y2) <= dy


def pareto(result: BenchResult, path: Path) -> Path:
    """Cloud $ against average JCT: a line per waiting strategy over its budgets, a square for
    each strategy that does not wait, one fixed colour per strategy, residency violations
    crossed in red, and a strategy far off to the right (on-prem only) as an arrow at the edge
    rather than a log axis that squeezes the rest into a corner."""
    plt = _pyplot()
    fig = pareto_figure(result)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def declutter(fig: Any, labels: Sequence[Any], *, tries: int = 12) -> None:
    """Move each annotation down (then up) in steps of its height until it overlaps none
    placed before it: a greedy pass, enough for the dozen labels of a benchmark plot."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    for ann in labels:
        x0, y0 = ann.xyann
        box = ann.get_window_extent(renderer)
        step = box.height * 72.0 / fig.dpi + 1.0
        for k in range(tries * 2 + 1):
            shift = 0.0 if k == 0 else (-1) ** k * ((k + 1) // 2) * step
            ann.xyann = (x0, y0 + shift)
            box = ann.get_window_extent(renderer)
            if not any(box.overlaps(b) for b in placed):
                break
        placed.append(box)


def timeline(result: BenchResult, path: Path, budget: float | None = None) -> Path:
    """On-prem GPUs in use, one small panel per strategy (averaged over short bins, so a
    line is a shape, not a blur of steps), above the cumulative cloud $ of every strategy,
    each line labelled at its end, at one waiting budget.

    ``budget``: which of the sweep's budgets to show for waiting strategies; default the
    middle one of the sweep.
    """
    plt = _pyplot()
    budgets = result.scenario.budgets
    chosen = budget if budget is not None else sorted(budgets)[len(budgets) // 2]
    rows = [r for r in result.rows if r.budget is None or r.budget == chosen]
    colour = colours([r.strategy for r in rows])
    end = max((t for r in rows for t, _ in (*r.timeline.busy, *r.timeline.spend)), default=1.0)
    n = max(len(rows), 1)
    fig = plt.figure(figsize=(9, 1.0 * n + 3.6), dpi=120)
    grid = fig.add_gridspec(n + 1, 1, height_ratios=[1.0] * n + [3.4], hspace=0.12)
    spend_ax = fig.add_subplot(grid[n])
    gpus = rows[0].timeline.onprem_gpus if rows else 0
    for i, r in enumerate(rows):
        ax = fig.add_subplot(grid[i], sharex=spend_ax)
        t, g = binned(r.timeline.busy, end)
        ax.fill_between(t, g, step="post", color=colour[r.strategy], alpha=0.55, linewidth=0)
        if gpus:
            ax.axhline(gpus, color="grey", linestyle=":", linewidth=0.8)
            ax.set_ylim(0, gpus * 1.05)
        ax.text(0.005, 0.92, r.strategy, transform=ax.transAxes, fontsize=8, va="top",
                color=colour[r.strategy], fontweight="bold",
                bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
        ax.tick_params(labelbottom=False, labelsize=7)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.set_title(f"{result.scenario.name}: on-prem GPUs in use (of {gpus}) and cloud "
                         f"spend, waiting budget {chosen:g}", fontsize=10)
    labels: list[Any] = []
    for r in rows:
        if not r.timeline.spend:
            continue
        t2, usd = zip(*r.timeline.spend, strict=True)
        c = colour[r.strategy]
        spend_ax.step(t2, usd, where="post", color=c, linewidth=2.0 if c == _PLACER else 1.1)
        labels.append(spend_ax.annotate(
            f"{r.strategy} ${usd[-1]:,.0f}", (t2[-1], usd[-1]), textcoords="offset points",
            xytext=(4, 0), fontsize=7, color=c, va="center"))
    spend_ax.set_ylabel("cumulative cloud $")
    spend_ax.yaxis.set_major_formatter(lambda v, _pos: f"${v:,.0f}")
    spend_ax.set_xlabel("time (h)")
    spend_ax.set_xlim(0, end * 1.18)  # room for the end labels
    spend_ax.grid(alpha=0.3)
    declutter(fig, labels)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def binned(steps: Sequence[tuple[float, int]], end: float, bins: int = 400
           ) -> tuple[list[float], list[float]]:
    """A step function's time-weighted mean over ``bins`` equal bins of [0, end]."""
    if not steps or end <= 0:
        return [0.0, end], [0.0, 0.0]
    width = end / bins
    edges = [i * width for i in range(bins + 1)]
    area = [0.0] * bins
    for (t, v), nxt in zip(steps, [*(s[0] for s in steps[1:]), end], strict=True):
        a, b = max(t, 0.0), min(nxt, end)
        i = int(a / width)
        while a < b and i < bins:
            hi = min(b, edges[i + 1])
            area[i] += v * (hi - a)
            a, i = hi, i + 1
    return edges, [x / width for x in area] + [area[-1] / width]


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
