"""What the command line shows of a benchmark: tables, progress bars, files and plots.

The simulator returns values (:class:`placer.sim.bench.BenchResult`); this package, on the
command line's side of the house, presents them: :func:`rich_table` (or :func:`rich_tables`,
split to fit a narrow terminal) and :func:`markdown_table` (one set of columns),
:class:`ProgressBars` (a :class:`placer.sim.bench.Progress` on stderr),
:func:`write_report` (``metrics.csv``, ``metrics.json``, the PNGs, a ``RESULTS.md`` section)
and the plots (:func:`pareto`, :func:`timeline`; matplotlib, ``pip install 'placer[bench]'``,
imported when a plot is drawn).
"""

from placer.report._files import command_line, write_report
from placer.report._plots import PlotsUnavailable, frontier, pareto, timeline, write_plots
from placer.report._progress import ProgressBars, RunProgress
from placer.report._tables import markdown_table, rich_table, rich_tables

__all__ = [
    "PlotsUnavailable",
    "ProgressBars",
    "RunProgress",
    "command_line",
    "frontier",
    "markdown_table",
    "pareto",
    "rich_table",
    "rich_tables",
    "timeline",
    "write_plots",
    "write_report",
]
