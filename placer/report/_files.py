"""The files of a benchmark: ``metrics.csv``, ``metrics.json`` (with the scenario, seed, placer
version and command line), the plots, and a section appended to a markdown file
(``benchmarks/RESULTS.md``)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from placer.errors import ConfigError, ErrorDetail
from placer.report._plots import PlotsUnavailable, write_plots
from placer.report._tables import markdown_table
from placer.sim.bench import BenchResult, Row


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
            pngs = write_plots(result, out, timeline_budget=timeline_budget)
        except PlotsUnavailable as exc:
            note.print(f"[yellow]note[/]: no plots: {escape(str(exc))}", highlight=False)
    written += pngs

    if results_md is not None:
        md = Path(results_md)
        written.append(md)
        _append_markdown(result, md, cmd, pngs)
    return written


def _shell(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def _append_markdown(result: BenchResult, md: Path, cmd: str | None, pngs: Sequence[Path]) -> None:
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
