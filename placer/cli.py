"""The ``placer`` command. Exit codes: 0 placed/ok, 1 held or infeasible, 2 bad input.

Everything printed that came from a user or a cluster (names, reasons, paths, error details,
logs) is plain text, never rich markup, and has every known secret masked: the secrets of the
sites of the inventory given to ``submit`` and of every run a command reads
(:func:`placer.secrets.secret_values`), whatever their variables are called.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from placer.errors import BackendUnavailableError, ConfigError, PlacerError, SolverError
from placer.local import app as local_app
from placer.local import preflight_cmd, preflight_or_exit
from placer.secrets import Redactor
from placer.units import format_duration

app = typer.Typer(
    no_args_is_help=True,
    help="Residency-aware placement of ML job DAGs on on-prem GPU pools and cloud regions.",
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, `| less`) gets a width that fits a plan table rather than rich's 80.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_NOT_PLACED, EXIT_BAD_INPUT, EXIT_SOLVER = 0, 1, 2, 3

# The secrets this command knows (fresh per command): journals opened here share it, so it
# learns the site secrets of every run they read; ``submit`` adds its inventory's.
_secrets = Redactor()


def _version(value: bool) -> None:
    """``--version``: the installed distribution's version, before any command is loaded."""
    if value:
        sys.stdout.write(f"placer {_package_version()}\n")
        raise typer.Exit(EXIT_OK)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("placer")
    except PackageNotFoundError:  # a source tree that was never installed
        import placer

        return str(placer.__version__)


@app.callback()
def _per_command(
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_version, help="print the version and exit")
    ] = False,
) -> None:
    global _secrets
    _secrets = Redactor()


def _mask(text: object) -> str:
    """User or cluster text for display: secrets masked."""
    return _secrets.text(str(text))


def _plain(text: object) -> str:
    """User or cluster text inside a markup string: masked and escaped (``[/x]`` stays)."""
    return escape(_mask(text))


def _cell(text: object) -> Text:
    """A table cell or title from user or cluster text: never parsed as markup."""
    return Text(_mask(text))


def _fail(exc: PlacerError) -> typer.Exit:
    lines = ([str(d) for d in exc.details] if isinstance(exc, ConfigError) else [str(exc)])
    for line in lines:
        err.print(f"[bold red]error[/]: {_plain(line)}", highlight=False)
    return typer.Exit(EXIT_SOLVER if isinstance(exc, SolverError) else EXIT_BAD_INPUT)


def _bundled(*parts: str) -> Path:
    return Path(str(resources.files("placer").joinpath("bundled", *parts)))


# -- output: -o FORMAT (as kubectl's), --json, --output-file; tables that never cut a value ----

FORMATS = ("json", "yaml", "wide", "name")


def _formats_starting(incomplete: str) -> list[str]:
    """Shell completion of ``-o``."""
    return [f for f in FORMATS if f.startswith(incomplete)]


OutputOpt = Annotated[str | None, typer.Option(
    "-o", "--output", metavar="FORMAT", autocompletion=_formats_starting,
    help="output format: json, yaml, wide (more columns, never folded) or name (one name a "
    "line); json and yaml are all that is printed on stdout")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON on stdout (as -o json)")]


def _output_format(output: str | None, as_json: bool, allowed: Sequence[str] = FORMATS, *,
                   writes_files: bool = False) -> str | None:
    """The format ``-o``/``--output`` and ``--json`` ask for; ``None``: the table.

    ``-o`` named a file before ``--output-file`` existed: a value that is not a format is
    refused, naming the flag that writes files, so ``-o json`` never becomes a file called
    ``json`` and ``-o plan.json`` never becomes a silent print.
    """
    if output is not None and output not in allowed:
        if output in FORMATS:
            why = f"this command prints {', '.join(allowed)}, not {output}"
        elif writes_files:
            why = (f"{output!r} is not one; to write a file use --output-file {output} "
                   "(-o FILE was its old spelling)")
        else:
            why = f"{output!r} is not one; to keep the output, redirect it: -o json > {output}"
        raise _fail(ConfigError(f"-o/--output takes an output format ({', '.join(allowed)}): "
                                + why))
    if as_json and output not in (None, "json"):
        raise _fail(ConfigError(f"--json and -o {output} ask for two formats: give one"))
    return "json" if as_json else output


def _emit(fmt: str, data: Any) -> None:
    """``data`` (plain JSON values) as JSON or YAML on stdout, and nothing else."""
    if fmt == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _emit_names(names: Sequence[str]) -> None:
    """``-o name``: one name a line, masked, for ``xargs`` and shell loops."""
    sys.stdout.write("".join(_mask(n) + "\n" for n in names))


def _write_output_file(path: Path, text: str, what: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _fail(ConfigError(f"{path}: cannot write {what}: {exc.strerror}")) from None


def _widest_cell(col: Any) -> int:
    """The widest cell of a table column (header not counted)."""
    cells = [Text.from_markup(c) if isinstance(c, str) else c for c in col.cells]
    return max((c.cell_len for c in cells if isinstance(c, Text)), default=1)


def _unclipped(t: Table, wrap_headers: bool = True) -> Table:
    """The table wraps instead of cutting a value: right-aligned columns (money, durations,
    counts) keep every cell on one line and wrap their header over it; text columns fold (a
    word longer than the column is split across lines) rather than end in an ellipsis."""
    import textwrap

    t.show_edge = False
    t.pad_edge = False
    for col in t.columns:
        if col.justify != "right":
            col.overflow = "fold"
            continue
        widest = _widest_cell(col)
        if wrap_headers and isinstance(col.header, str) and len(col.header) > widest:
            col.header = textwrap.fill(col.header, max(widest, *map(len, col.header.split())))
        col.no_wrap = True
    return t


def _print_table(t: Table, fmt: str | None = None) -> None:
    """A table on stdout that never cuts a value. In a terminal it wraps to the terminal's
    width (text columns fold; numbers stay whole), widened past it only when even its numbers
    do not fit; piped (a file, ``grep``, CI logs) or ``-o wide``, it is printed at its full
    width, one line a row (past the terminal's edge, as kubectl's)."""
    from rich.measure import Measurement

    _unclipped(t, wrap_headers=fmt != "wide")
    if out.is_terminal and fmt != "wide":  # the narrowest it gets, text folded to 4 columns
        need = sum(max(_widest_cell(c), *map(len, str(c.header).splitlines() or [""]))
                   if c.no_wrap else 4 for c in t.columns) + 3 * len(t.columns) - 3
    else:
        need = Measurement.get(out, out.options.update(width=100_000), t).maximum
    (out if need <= out.width else Console(soft_wrap=True, width=need)).print(t)


def _plan_table(plan: Any, wide: bool = False) -> Table:
    t = Table(title=_cell(f"{plan.pipeline}: {plan.status}"), title_justify="left",
              box=box.SIMPLE_HEAD)
    cols = ["job", "site", "GPUs", "mode", "start", "end", "cost"]
    if wide:
        cols[2:2] = ["location", "nodes"]
        cols += ["compute", "data in", "transfer"]
    numbers = ("nodes", "start", "end", "cost", "compute", "data in", "transfer")
    for col in cols:
        t.add_column(col, justify="right" if col in numbers else "left")
    for name, p in plan.jobs.items():
        mode = "spot" if p.spot else ("on-demand" if p.nodes else "on-prem")
        row: list[str | Text] = [
            _cell(name), _cell(p.site), _cell(f"{p.gpus}× {p.gpu}"), mode,
            format_duration(p.start_h), format_duration(p.end_h), f"${p.cost_usd:,.2f}"]
        if wide:
            row[2:2] = [_cell(p.location), str(p.nodes)]
            row += [f"${p.compute_usd:,.2f}", f"${p.transfer_usd:,.2f}",
                    format_duration(p.transfer_h)]
        t.add_row(*row)
    return t


def _show(plan: Any, fmt: str | None, output: Path | None) -> None:
    """A plan in the format asked (``None``: its table and explanation); ``output``: also its
    JSON written there (``--output-file``)."""
    text = plan.model_dump_json(indent=2)
    if output is not None:
        _write_output_file(output, text + "\n", "the plan")
    if fmt == "json":
        sys.stdout.write(text + "\n")
        return
    if fmt == "yaml":
        _emit("yaml", json.loads(text))
        return
    if fmt == "name":
        _emit_names(list(plan.jobs))
        return
    from placer.explain import explain_plan

    if plan.jobs:
        _print_table(_plan_table(plan, wide=fmt == "wide"), fmt)
        out.print()
    out.print(explain_plan(plan), highlight=False, markup=False)
    if output is not None:
        out.print(f"\nplan written to {_plain(output)}", highlight=False)


def _show_frontier(plans: list[Any], fmt: str | None, output: Path | None,
                   plot: Path | None) -> None:
    """The frontier: a table from the cheapest plan to the fastest, its JSON, its plot."""
    text = "[\n" + ",\n".join(p.model_dump_json(indent=2) for p in plans) + "\n]"
    if output is not None:
        _write_output_file(output, text + "\n", "the plans")
    if plot is not None and plans[0].status == "placed":
        from placer.report import PlotsUnavailable, frontier

        try:
            frontier(plans, plot)
        except PlotsUnavailable as exc:
            raise _fail(exc) from None
    if fmt == "json":
        sys.stdout.write(text + "\n")
        return
    if fmt == "yaml":
        _emit(fmt, json.loads(text))
        return
    if plans[0].status != "placed":
        _show(plans[0], fmt, None)
        return
    t = Table(title=_cell(f"{plans[0].pipeline}: cost-makespan frontier, cheapest first"),
              title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("#", "cost", "makespan", "optimal", "on-prem", "cloud", "spot",
                "moved since the previous plan"):
        t.add_column(col, justify="right" if col in ("#", "cost", "makespan", "on-prem",
                                                     "cloud", "spot") else "left")
    prev: Any = None
    for i, p in enumerate(plans, 1):
        onprem = sum(1 for j in p.jobs.values() if j.location.startswith("onprem:"))
        spot = sum(1 for j in p.jobs.values() if j.spot)
        moved = "" if prev is None else ", ".join(
            f"{name} → {j.site} {j.gpu}{' spot' if j.spot else ''}" for name, j in p.jobs.items()
            if (prev.jobs[name].site, prev.jobs[name].gpu, prev.jobs[name].spot)
            != (j.site, j.gpu, j.spot))
        t.add_row(str(i), f"${p.cost_usd:,.2f}", format_duration(p.makespan_h),
                  "yes" if p.optimal else f"gap {p.gap or 0:.2%}", str(onprem),
                  str(len(p.jobs) - onprem), str(spot), _cell(moved))
        prev = p
    _print_table(t, fmt)
    out.print("A frontier is not logged: plan the point you choose with --deadline.",
              highlight=False)
    if plot is not None:
        out.print(f"frontier plot written to {_plain(plot)}", highlight=False)
    if output is not None:
        out.print(f"plans written to {_plain(output)}", highlight=False)


def _show_queue(plan: Any, decided: dict[str, Any]) -> None:
    """Per job of a queue: on-prem when ready, waiting for on-prem, or burst, and why."""
    from rich.table import Table

    from placer.queue import queue_lines

    table = Table(title="queue: who waits for on-prem, who bursts", title_justify="left")
    for col in ("pipeline", "job", "site", "verdict", "why"):
        table.add_column(col)
    for line in queue_lines(plan, decided["pipeline"], decided["queue"], decided["onprem"]):
        table.add_row(*(_plain(x) for x in (line.pipeline, line.job, line.site, line.verdict,
                                             line.why)))
    _print_table(table)


OfflineOpt = Annotated[
    bool,
    typer.Option("--offline", help="use only what the files say: ask no store where a dataset "
                 "given by uri lives (one with no location is then held)"),
]


def _run_plan(pipeline_path: Path | Sequence[Path], inventory: Path | None,
              policies: list[Path], objective: str, deadline: str | None, budget: str | None,
              time_limit: float = 60.0, decided: dict[str, Any] | None = None, *,
              offline: bool = False, facts: dict[str, Any] | None = None,
              journal: str | None = None, points: int | None = None) -> Any:
    """Load, resolve the datasets given by URI through their stores (unless ``offline``),
    plan. ``facts`` receives the pipeline as written (``written``), as planned (``resolved``)
    and the stores asked (``stores``), for submit's re-check. Several pipelines are planned
    together as one queue (:func:`placer.queue.combine`); ``facts["queue"]`` receives them."""
    import placer
    from placer.catalog import default_catalog, default_inventory, resolve_inventory
    from placer.loading import check_dataset_sites, load_pipeline_with_source
    from placer.resolve import resolve_for_plan

    paths = [pipeline_path] if isinstance(pipeline_path, Path) else list(pipeline_path)
    loaded = [load_pipeline_with_source(p) for p in paths]
    inv = placer.load_inventory(inventory) if inventory else default_inventory()
    pol = placer.load_policies(*policies) if policies else None
    for f in pol.skipped if pol else ():
        err.print(f"note: not a policy file (not .yaml/.yml), not loaded: {f}",
                  highlight=False, markup=False)
    sites = resolve_inventory(inv, default_catalog())
    for one, sm in loaded:
        check_dataset_sites(one, sites, sm)
    if len(loaded) == 1:
        pipeline = loaded[0][0]
    else:
        from placer.queue import combine

        members = [one for one, _ in loaded]
        pipeline = combine(members)
        if facts is not None:
            facts["queue"] = members
        if decided is not None:
            decided["queue"] = members
            decided["onprem"] = [s.name for s in sites if s.kind == "onprem"]
    if objective not in ("cost", "time") and not (objective == "pareto" and points):
        raise ConfigError(f"--objective must be cost, time or pareto, got {objective!r}")
    # Datasets given by URI: their facts from their stores (docs/storage.md); planned on.
    written = pipeline
    pipeline, stores = resolve_for_plan(pipeline, sites, offline=offline)
    if facts is not None:
        facts.update(written=written, resolved=pipeline, stores=stores)
    spent = _budget_spend(pol, journal)
    if decided is not None:  # what the decision log records: exactly what was decided from
        decided.update(pipeline=pipeline, inventory=inv, policies=pol, time_limit_s=time_limit,
                       spent=spent)
    try:
        if objective == "pareto":
            if deadline is not None or budget is not None:
                raise ConfigError("--objective pareto traces every cost-makespan trade-off; "
                                  "it takes no --deadline or --budget")
            return placer.plan_frontier(pipeline, inv, pol, max_points=points or 10,
                                        time_limit_s=time_limit, spent=spent)
        return placer.plan(pipeline, inv, pol, objective=objective,  # type: ignore[arg-type]
                           deadline=deadline, budget=budget, time_limit_s=time_limit,
                           spent=spent)
    except ValueError as exc:
        if isinstance(exc, PlacerError):
            raise
        raise ConfigError(str(exc)) from None


JournalOpt = Annotated[
    str | None,
    typer.Option("--journal", envvar="PLACER_JOURNAL", help="run journal: a SQLite file, or a "
                 "postgresql:// URL (a journal a team's controllers share); default: journal.db "
                 "under the user data dir"),
]


def _journal_at(journal: str | None) -> str | Path:
    """Where the journal is: a ``postgresql://`` URL as given, else a path (the default one
    when none is given)."""
    from placer.journal import default_location, is_url

    if journal is None:
        return default_location()
    return journal if is_url(journal) else Path(journal)


def _budget_spend(policies: Any, journal: str | None) -> dict[str, float]:
    """What earlier runs charged to the policies' budgets, from the journal (none if there is
    no budget rule, or no journal yet)."""
    if policies is None or not any(r.budget is not None for r in policies.rules):
        return {}
    path = _journal_at(journal)
    if isinstance(path, Path) and not path.exists():
        return {}
    with _journal(path, readonly=True) as j:
        return dict(j.budget_spend())


@app.command()
def plan(
    pipeline: Annotated[list[Path], typer.Argument(
        help="pipeline YAML; several are planned together against shared on-prem capacity")],
    inventory: Annotated[Path | None, typer.Option(help="inventory YAML (or embedded)")] = None,
    policies: Annotated[
        list[Path] | None, typer.Option(help="policy file or folder; repeatable")
    ] = None,
    objective: Annotated[str, typer.Option(
        help="cost (min cost), time (min makespan) or pareto (the cost-makespan frontier)")
    ] = "cost",
    deadline: Annotated[str | None, typer.Option(help="makespan bound, e.g. 12h")] = None,
    budget: Annotated[str | None, typer.Option(help="cost bound, e.g. $500")] = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    output_file: Annotated[Path | None, typer.Option(
        "--output-file", help="also write the plan's JSON to this file")] = None,
    time_limit: Annotated[float, typer.Option(help="seconds the solver may take", min=0.1)] = 60.0,
    no_log: Annotated[bool, typer.Option(
        "--no-log", help="do not append this decision to the decision log (quick what-ifs)")
    ] = False,
    offline: OfflineOpt = False,
    journal: JournalOpt = None,
    points: Annotated[int, typer.Option(
        help="with --objective pareto: at most this many plans", min=2)] = 10,
    plot: Annotated[Path | None, typer.Option(
        help="with --objective pareto: write the frontier as a PNG here")] = None,
) -> None:
    """Plan a pipeline: every job on an allowed site, min cost or min makespan.

    --objective pareto plans the whole cost-makespan frontier: a table of plans from the
    cheapest to the fastest (each a full plan; --json prints them all, --plot draws them).
    A frontier is a menu, not a decision: it is not logged; plan the point you choose with
    --deadline.

    Budgets of limit rules count what earlier runs in the journal were charged this period.

    A dataset given by uri with no location (or no tags) is first resolved through
    its store: location, copies, tags and size, each with its provenance in the plan
    (datasets). A store that cannot answer is an error (exit 2). --offline asks none.

    The decision is appended to the decision log ($PLACER_DECISIONS, else decisions.jsonl
    beside the journal) unless --no-log; if it cannot be, the plan is still shown, with a
    warning, and the exit code is the plan's.

    Several pipelines are planned as one queue against the same inventory and policies (jobs
    named <pipeline>__<job>), and the plan says which jobs run on-prem when ready, which wait
    for on-prem GPUs and which burst to a cloud, and why.

    -o json (or --json) prints the plan as JSON, the keys of `placer schema plan`; -o yaml
    the same as YAML; -o name the names of its jobs; -o wide more columns (location, nodes,
    compute and data-in cost, transfer time). --output-file also writes the JSON to a file.

    Exit codes: 0 placed; 1 held or infeasible (the plan says why); 2 bad input (each problem
    with its file, line and field); 3 the solver found no plan within --time-limit.
    """
    fmt = _output_format(output, as_json, writes_files=True)
    if fmt == "name" and objective == "pareto":
        raise _fail(ConfigError("-o name lists one plan's jobs; --objective pareto prints "
                                "several plans: use -o json or yaml"))
    machine = fmt in ("json", "yaml", "name")
    decided: dict[str, Any] = {}
    try:
        result = _run_plan(pipeline, inventory, policies or [], objective, deadline, budget,
                           time_limit, decided=decided, offline=offline, journal=journal,
                           points=points if objective == "pareto" else None)
    except PlacerError as exc:
        raise _fail(exc) from None
    if isinstance(result, list):
        _show_frontier(result, fmt, output_file, plot)
        raise typer.Exit(EXIT_OK if result[0].status == "placed" else EXIT_NOT_PLACED)
    _show(result, fmt, output_file)
    if "queue" in decided and result.jobs and not machine:
        _show_queue(result, decided)
    if not no_log:
        try:
            logged = _log_decision("plan", result, decided)
            if not machine:
                out.print(f"decision logged to {_plain(logged)}", highlight=False)
        except PlacerError as exc:
            err.print(f"[bold yellow]warning[/]: decision not logged: {_plain(exc)}",
                      highlight=False)
    raise typer.Exit(EXIT_OK if result.status == "placed" else EXIT_NOT_PLACED)


def _log_decision(kind: str, result: Any, decided: dict[str, Any], run: str | None = None
                  ) -> Path:
    """Append the decision to the decision log (placer.decisions); returns the log's path."""
    from placer import decisions

    rec = decisions.record(result, pipeline=decided["pipeline"],
                           inventory=decided["inventory"], policies=decided["policies"],
                           kind=kind, run=run,  # type: ignore[arg-type]
                           time_limit_s=decided.get("time_limit_s", 60.0),
                           spent=decided.get("spent"))
    return decisions.append(rec).path


@app.command()
def demo(as_json: JsonOpt = False, output: OutputOpt = None) -> None:
    """Plan the quickstart pipeline on the embedded default inventory (no cloud account)."""
    fmt = _output_format(output, as_json)
    pipe = _bundled("examples", "quickstart", "pipeline.yaml")
    pols = [_bundled("policies"), _bundled("examples", "quickstart", "deid-approval.yaml")]
    if fmt in (None, "wide"):
        out.print(f"[bold]placer demo[/]: planning {pipe.name} (quickstart) on the embedded "
                  "default inventory with the shipped policies and the quickstart's approved "
                  "de-identifier, objective cost, deadline 12h\n")
    try:
        result = _run_plan(pipe, None, pols, "cost", "12h", None, offline=True)
    except PlacerError as exc:
        raise _fail(exc) from None
    _show(result, fmt, None)


@app.command()
def explain(
    plan_file: Annotated[Path, typer.Argument(
        help="plan JSON from `placer plan --output-file`, or a record of the decision log")],
    job: Annotated[str | None, typer.Option(help="explain one job only")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="print the machine form (schema placer/explanation/v1; as -o json)")
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Explain a saved plan: why each job runs where it does, and why not elsewhere.

    PLAN_FILE is a plan (`placer plan --output-file`) or one record of the decision log. The
    text shows, per job, the rules behind each verdict with a hint of what would make a site
    eligible, waived rules, audit- and warn-mode rules, derived and removed tags, limits, and
    holds. -o json (--json) prints the machine form, schema placer/explanation/v1; -o yaml the
    same as YAML; -o name the jobs explained.
    """
    from placer.decisions import SCHEMA as DECISION_SCHEMA
    from placer.explain import explain_data
    from placer.models import Plan

    fmt = _output_format(output, as_json, ("json", "yaml", "name"))
    try:
        text = plan_file.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("schema") == DECISION_SCHEMA:
            saved = Plan.model_validate(data.get("plan"))  # a decision record: its plan
        else:
            saved = Plan.model_validate_json(text)
        if fmt == "json":
            sys.stdout.write(explain_data(saved, job).model_dump_json(indent=2, by_alias=True)
                             + "\n")
        elif fmt == "yaml":
            _emit("yaml", explain_data(saved, job).model_dump(mode="json", by_alias=True))
        elif fmt == "name":
            _emit_names(list(explain_data(saved, job).jobs))
        else:
            out.print(saved.explain(job), highlight=False, markup=False)
    except FileNotFoundError:
        raise _fail(ConfigError(f"{plan_file}: file not found")) from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise _fail(ConfigError(f"{plan_file}: cannot read it: {why}")) from None
    except ValidationError as exc:
        raise _fail(ConfigError(f"{plan_file}: not a placer plan: {exc.error_count()} "
                                f"problem(s), first: {exc.errors()[0]['msg']}")) from None
    except KeyError as exc:
        raise _fail(ConfigError(str(exc.args[0]))) from None


def _kind_of(data: Any) -> str | None:
    if isinstance(data, dict):
        if isinstance(data.get("kind"), str):
            return str(data["kind"])
        for key, kind in (("jobs", "Pipeline"), ("sites", "Inventory"), ("rules", "PolicySet"),
                          ("workload", "Scenario")):
            if key in data:
                return kind
    return None


class _Validation:
    """What ``placer validate`` found: printed as it goes (the text), or gathered for
    ``-o json|yaml|name`` and printed at the end."""

    def __init__(self, fmt: str | None) -> None:
        self.fmt = fmt
        self.files: list[dict[str, Any]] = []
        self.problems: list[dict[str, Any]] = []
        self.skipped: list[str] = []

    def ok(self, path: Path, kind: str) -> None:
        if self.fmt is None:
            out.print(f"[green]ok[/]    {_plain(path)} ({kind})", highlight=False)
        self.files.append({"path": _mask(path), "kind": kind, "ok": True})

    def problem(self, exc: PlacerError, path: Path | None = None) -> None:
        if self.fmt is None:
            _fail(exc)
            if path is not None:  # one line per file on stdout, as for the valid ones
                n = len(exc.details) if isinstance(exc, ConfigError) else 1
                out.print(f"[red]bad[/]   {_plain(path)} ({n} problem{'s' * (n != 1)})",
                          highlight=False)
        if path is not None:
            self.files.append({"path": _mask(path), "kind": None, "ok": False})
        details = exc.details if isinstance(exc, ConfigError) else [None]
        self.problems += [
            {"file": None, "line": None, "field": None, "message": _mask(exc)} if d is None else
            {"file": None if d.file is None else _mask(d.file), "line": d.line,
             "field": None if d.field is None else _mask(d.field), "message": _mask(d.msg)}
            for d in details]

    def skip(self, path: Path | str) -> None:
        if self.fmt is None:
            err.print(f"note: not a YAML file, not checked: {path}", highlight=False,
                      markup=False)
        self.skipped.append(_mask(path))

    def emit(self) -> None:
        if self.fmt == "name":
            _emit_names([f["path"] for f in self.files if f["ok"]])
        elif self.fmt in ("json", "yaml"):
            _emit(self.fmt, {"schema": "placer/validation/v1", "ok": not self.problems,
                             "files": self.files, "problems": self.problems,
                             "skipped": self.skipped})


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="YAML files or folders")],
             as_json: JsonOpt = False, output: OutputOpt = None) -> None:
    """Check pipelines, inventories, policies and scenarios; print every problem with file and line.

    Folders are walked to any depth for *.yaml and *.yml files; one line per file (ok or bad),
    exit 2 on any problem or when no YAML file is found. The policy files given are checked
    together, as one policy set (a rule may name a location set another file defines; ids must
    be unique across them), as `placer plan` loads them. A pipeline's GPU types are checked
    against the catalog and the inventories given (the embedded one when none is), as the
    planner matches them.

    -o json (--json) prints {"schema": "placer/validation/v1", "ok", "files": [{"path",
    "kind", "ok"}], "problems": [{"file", "line", "field", "message"}], "skipped": [paths]}
    and nothing else; -o yaml the same as YAML; -o name the files that are valid. The exit code
    is the same in every format.
    """
    from placer.catalog import default_inventory, inventory_from_data
    from placer.loading import gpu_type_problems, known_gpu_types, pipeline_from_data
    from placer.models import Inventory
    from placer.policy import merge, policy_file_from_data
    from placer.yamlio import SourceMap, find_yaml_files, read_yaml, strip_header
    from placer.yamlio import validate as validate_model

    report = _Validation(_output_format(output, as_json, ("json", "yaml", "name")))
    paths, skipped, problems = find_yaml_files(files)
    bad = len(problems)
    for d in problems:
        report.problem(ConfigError(d))
    for f in skipped:
        report.skip(f)
    # Each file is parsed once; the loaders validate the parsed data.
    policy_docs: list[Any] = []

    def scenario(data: Any, sm: SourceMap) -> object:
        from placer.sim.scenario import KIND, Scenario

        return validate_model(Scenario, strip_header(data, sm, KIND), sm)

    def pipeline(data: Any, sm: SourceMap) -> object:
        # GPU types no catalog offer or inventory given here has: the planner could never
        # place them (case-insensitive and by family, as the planner matches).
        loaded, sm = pipeline_from_data(data, sm)
        gpu_problems = gpu_type_problems(loaded, sm, known_gpus)
        if gpu_problems:
            raise ConfigError(gpu_problems)
        return loaded

    loaders: dict[str, Callable[[Any, SourceMap], object]] = {
        "Pipeline": pipeline,
        "Inventory": inventory_from_data,
        "PolicySet": lambda data, sm: policy_docs.append(policy_file_from_data(data, sm)),
        "Scenario": scenario,
    }
    parsed: list[tuple[Any, SourceMap] | PlacerError] = []
    for path in paths:
        try:
            parsed.append(read_yaml(path))
        except PlacerError as exc:
            parsed.append(exc)
    # The inventories first, whatever the order given: pipelines' GPU types are checked
    # against their pools (the embedded inventory's when none is given).
    inventories: dict[int, object] = {}
    for i, doc in enumerate(parsed):
        if not isinstance(doc, PlacerError) and _kind_of(doc[0]) == "Inventory":
            try:
                inventories[i] = inventory_from_data(*doc)
            except PlacerError as exc:
                inventories[i] = exc
    known_gpus = known_gpu_types(
        [inv for inv in inventories.values() if isinstance(inv, Inventory)]
        or [default_inventory()])
    for i, path in enumerate(paths):
        try:
            doc = parsed[i]
            if isinstance(doc, PlacerError):
                raise doc
            data, sm = doc
            kind = _kind_of(data)
            if kind is None or kind not in loaders:
                raise ConfigError(f"{path}: cannot tell what this is; add kind: Pipeline, "
                                  "Inventory, PolicySet or Scenario")
            done = inventories.get(i)
            if isinstance(done, PlacerError):
                raise done
            if done is None:
                loaders[kind](data, sm)
            report.ok(path, kind)
        except PlacerError as exc:
            bad += 1
            report.problem(exc, path)
    if policy_docs:  # what only the policy files together can say: sets, ids, references
        try:
            merge(policy_docs)
        except PlacerError as exc:
            bad += 1
            report.problem(exc)
    report.emit()
    raise typer.Exit(EXIT_BAD_INPUT if bad else EXIT_OK)


@app.command()
def schema(
    kind: Annotated[str, typer.Argument(
        help="pipeline, inventory, policy, scenario or plan")] = "pipeline",
) -> None:
    """Print the JSON Schema of a file kind, for editors to validate and complete.

    The schema accepts what `placer validate` accepts, shorthands included; what needs the
    catalog or other files (regions, GPU types, references) only `placer validate` checks.
    """
    from placer.schema import json_schema, schema_of

    try:
        if kind.lower() == "scenario":
            from placer.sim.scenario import KIND, Scenario

            doc = schema_of(Scenario, KIND)
        else:
            doc = json_schema(kind)
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    except KeyError:
        raise _fail(ConfigError(
            f"unknown kind {kind!r}; use pipeline, inventory, policy, scenario or plan")) from None


@app.command()
def catalog(
    gpu: Annotated[str | None, typer.Option(help="only this GPU type, e.g. A100-40GB")] = None,
    provider: Annotated[str | None, typer.Option(help="aws, gcp or azure")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="e.g. EU, EEA, US, DE")] = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """List the embedded catalog's GPU offers with on-demand and spot prices.

    -o json (--json) prints {"schema": "placer/catalog/v1", "offers": [...]}, each offer with
    the keys provider, region, country, continent, jurisdictions, gpu, instance_type,
    gpus_per_node, ondemand_usd_per_hour, spot_usd_per_hour (per node),
    ondemand_usd_per_gpu_hour, spot_usd_per_gpu_hour (null: no spot price), gpu_only (the host
    VM is billed on top) and source; -o yaml the same as YAML; -o name one
    provider:region/instance_type a line; -o wide adds jurisdictions and per-node prices.
    """
    from placer.catalog import catalog_rows, default_catalog

    fmt = _output_format(output, as_json)
    rows = catalog_rows(default_catalog(), gpu=gpu, provider=provider, jurisdiction=jurisdiction)
    if fmt in ("json", "yaml"):
        _emit(fmt, {"schema": "placer/catalog/v1", "offers": rows})
        return
    if fmt == "name":
        _emit_names([f"{r['provider']}:{r['region']}/{r['instance_type']}" for r in rows])
        return
    t = Table(title=f"{len(rows)} offers, USD (sources: placer/catalog/data/SOURCES.md)",
              box=box.SIMPLE_HEAD, title_justify="left")
    cols: tuple[str, ...] = (
        "provider", "region", "country", "gpu", "instance_type", "gpus_per_node",
        "ondemand_usd_per_gpu_hour", "spot_usd_per_gpu_hour")
    if fmt == "wide":
        cols = (*cols[:3], "jurisdictions", *cols[3:], "ondemand_usd_per_hour",
                "spot_usd_per_hour")
    for c in cols:
        t.add_column(c.replace("_usd_per_gpu_hour", " $/GPU-h").replace("_usd_per_hour",
                                                                         " $/node-h")
                     .replace("_", " "),
                     justify="right" if "usd" in c or c == "gpus_per_node" else "left")
    marked = False
    for r in rows:
        cells = ["" if r.get(c) is None else
                 (f"{r[c]:.3f}" if isinstance(r[c], float) else
                  ", ".join(r[c]) if isinstance(r[c], list) else str(r[c])) for c in cols]
        if r.get("gpu_only"):
            cells[cols.index("ondemand_usd_per_gpu_hour")] += "*"
            marked = True
        t.add_row(*(Text(c) for c in cells))
    _print_table(t, fmt)
    if marked:
        out.print("* GPU only: the host VM is billed on top (a lower bound; see docs/catalog.md)")


# -- running plans ---------------------------------------------------------------------------


@app.command("cluster-spec")
def cluster_spec(
    plan_file: Annotated[Path, typer.Argument(help="plan JSON (placer plan --output-file)")],
    site: Annotated[str, typer.Option(help="the cloud site to render a cluster for")],
    inventory: Annotated[Path | None, typer.Option(help="inventory YAML (or embedded)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="launcher (ray up) or raycluster "
                                     "(KubeRay)")] = "launcher",
    job: Annotated[str | None, typer.Option(help="size the cluster for this job")] = None,
    image: Annotated[str | None, typer.Option(help="container image (raycluster: "
                                              "required)")] = None,
    output: OutputOpt = None,
    output_file: Annotated[Path | None, typer.Option(
        "--output-file", help="write the spec to this file instead of stdout")] = None,
) -> None:
    """Render the Ray cluster a plan paid for on a cloud site, for Ray's own tooling.

    The backend that renders ``--format`` is found through the ``placer.backends`` entry
    points (placer_ray: launcher; placer_k8s: raycluster). The spec is YAML (-o yaml, the
    default) or JSON (-o json).
    """
    import placer
    from placer.backends import cluster_renderers
    from placer.catalog import default_inventory, resolve_inventory
    from placer.cluster_spec import render_yaml, sizing_placement
    from placer.models import Plan

    as_text = _output_format(output, False, ("yaml", "json"), writes_files=True)
    try:
        renderers = cluster_renderers()
        if fmt not in renderers:
            raise ConfigError(f"--format must be {' or '.join(renderers) or '(none installed)'}"
                              f", got {fmt!r}")
        form, renderer = renderers[fmt]
        if form.needs_image and not image:
            raise ConfigError(f"--format {fmt} needs --image IMAGE, the Ray container image "
                              "its pods run (e.g. rayproject/ray:2.40.0-gpu)")
        try:
            plan_obj = Plan.model_validate_json(plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{plan_file}: not a placer plan ({type(exc).__name__})") from None
        inv = placer.load_inventory(inventory) if inventory else default_inventory()
        resolved = {s.name: s for s in resolve_inventory(inv)}
        if site not in resolved:
            which = f"inventory {inventory}" if inventory else \
                "embedded inventory (pass the plan's with --inventory)"
            raise ConfigError(f"no site {site!r} in the {which}; --site one of: "
                              f"{', '.join(resolved) or '(none)'}")
        placement = sizing_placement(plan_obj, site, job)
        spec = renderer.render_cluster(resolved[site], placement, fmt, image=image)
    except PlacerError as exc:
        raise _fail(exc) from None
    text = (json.dumps(dict(spec), indent=2, ensure_ascii=False) + "\n" if as_text == "json"
            else render_yaml(spec))
    if output_file is not None:
        _write_output_file(output_file, text, "the cluster spec")
    else:
        sys.stdout.write(text)


def _journal(path: str | Path | None, readonly: bool = False) -> Any:
    """The journal, sharing this command's redactor (it learns each run's site secrets)."""
    from placer.journal import Journal

    return Journal(_journal_at(path) if isinstance(path, str | None) else path,
                   readonly=readonly, redactor=_secrets)


def _status_table(st: Any, wide: bool = False) -> Table:
    t = Table(title=_cell(f"{st.run_id}: {st.state}" + (f" ({st.reason})" if st.reason else "")),
              title_justify="left", box=box.SIMPLE_HEAD)
    cols = ["job", "state", "site", "attempt", "cost", "reason"]
    if wide:
        cols[4:4] = ["started (UTC)", "finished (UTC)", "submission"]
    for col in cols:
        t.add_column(col, justify="right" if col in ("attempt", "cost") else "left")
    for j in st.jobs.values():
        row: list[str | Text] = [
            _cell(j.job), _cell(j.state), _cell(j.site or ""), str(j.attempt),
            "" if j.cost_usd is None else f"${j.cost_usd:,.2f}", _cell(j.reason or "")]
        if wide:
            row[4:4] = [_utc(j.started), _utc(j.finished), _cell(j.submission_id or "")]
        t.add_row(*row)
    return _unclipped(t)


def _status_data(j: Any, st: Any) -> dict[str, Any]:
    """``placer status -o json``: the run as the journal records it, secrets masked."""
    iso = "%Y-%m-%dT%H:%M:%SZ"
    jobs = [{**x.model_dump(mode="json", exclude={"started", "finished"}),
             "started": _utc(x.started, iso) or None, "finished": _utc(x.finished, iso) or None}
            for x in st.jobs.values()]
    decisions = [{"time": _utc(e.ts, iso), "job": e.job, "decision": e.data.get("decision"),
                  "site": e.data.get("site"), "reason": e.data.get("reason"),
                  **{k: e.data.get(k) for k in ("waited_h", "predicted_wait_h", "allowance_h",
                                                "wait_h", "burst", "policy")}}
                 for e in j.events(st.run_id, "strategy_decision")]

    def masked(v: Any) -> Any:
        if isinstance(v, str):
            return _mask(v)
        if isinstance(v, dict):
            return {k: masked(x) for k, x in v.items()}
        return [masked(x) for x in v] if isinstance(v, list) else v

    data: dict[str, Any] = masked({
        "schema": "placer/status/v1", "run_id": st.run_id, "state": st.state, "done": st.done,
        "reason": st.reason, "cost_usd": st.cost_usd, "jobs": jobs,
        "controller": _controller_line(j, st) or None, "strategy_decisions": decisions,
        "lost_attempts": [x.model_dump(mode="json") for x in st.lost_attempts],
        "transfers": [x.model_dump(mode="json") for x in st.transfers],
        "transfer_totals": st.transfer_totals.model_dump(mode="json")})
    return data


def _copies_cell(tot: Any) -> str:
    """Staging copies of a run, actual against planned (``placer runs``, ``placer status``)."""
    if not tot.count:
        return ""
    slow = f", {tot.slow} slow" if tot.slow else ""
    return (f"{tot.count} cop{'y' if tot.count == 1 else 'ies'}, {tot.bytes / 1e9:,.3g} GB: "
            f"{tot.seconds:,.1f}s / ${tot.usd:,.2f} (planned {tot.planned_s:,.1f}s / "
            f"${tot.planned_usd:,.2f}){slow}")


def _copy_lines(st: Any) -> list[str]:
    """``placer status``: copy totals planned vs actual, each slow copy, each LOST attempt."""
    lines = []
    cell = _copies_cell(st.transfer_totals)
    if cell:
        lines.append(f"copies: {cell}")
    for t in st.transfers:
        if t.slow:
            lines.append(f"slow copy {t.id} for {t.job} ({t.src_location} -> {t.dst_location}): "
                         f"{t.seconds:,.1f}s, the link model said {t.expected_s:,.1f}s")
    for x in st.lost_attempts:
        what = {"pending": f"not reached since {x.site} went down; may still run there",
                "cancelled": "cancelled; its outputs go once it has stopped",
                "outputs_removed": f"cancelled; {x.objects} objects removed from {x.prefix}",
                "outputs_kept": f"cancelled; outputs kept: {x.reason}"}[x.state]
        lines.append(_mask(f"lost attempt {x.job}#{x.attempt} on {x.site}: {what}"))
    return lines


def _finish(st: Any) -> None:
    out.print(_status_table(st))
    raise typer.Exit(EXIT_OK if st.state in ("SUCCEEDED", "RUNNING") else EXIT_NOT_PLACED)


@app.command("submit")
def submit_cmd(
    pipeline: Annotated[Path, typer.Argument(help="pipeline YAML")],
    inventory: Annotated[Path, typer.Option(help="inventory YAML with sites' clusters")],
    policies: Annotated[
        list[Path] | None, typer.Option(help="policy file or folder; repeatable")
    ] = None,
    objective: Annotated[str, typer.Option(help="cost or time")] = "cost",
    deadline: Annotated[str | None, typer.Option(help="makespan bound, e.g. 12h")] = None,
    budget: Annotated[str | None, typer.Option(help="cost bound, e.g. $500")] = None,
    wait: Annotated[bool, typer.Option(help="drive the run until it ends")] = False,
    journal: JournalOpt = None,
    offline: OfflineOpt = False,
    no_controller: Annotated[bool, typer.Option(
        "--no-controller", envvar="PLACER_NO_CONTROLLER",
        help="start no background controller (one runs as a service)")] = False,
    strategy: Annotated[str | None, typer.Option(
        "--strategy", help="decide each ready job live: on-prem now, wait, or burst to a "
        "cloud site, with this online strategy (e.g. placer); recorded with the run, so every "
        "controller that drives it uses it; default: every job runs where the plan put it")
    ] = None,
    strategy_budget: Annotated[float, typer.Option(
        "--strategy-budget", min=0, help="the strategy's waiting budget (with --strategy)")
    ] = 0.5,
    mlflow_uri: Annotated[str | None, typer.Option(
        "--mlflow-uri", help="track the run in this MLflow server (default: "
        "$MLFLOW_TRACKING_URI): the pipeline a parent run, each job a child, kept live by "
        "whoever drives the run (needs placer[mlflow])")] = None,
) -> None:
    """Plan a pipeline and run it: each job on its planned site, recorded in the journal.

    Without --wait, a controller drives the run from there in the background (placer
    controller, started for the journal unless one is running; its log is beside the journal),
    so placer status shows the run live and it goes on to its end. --no-controller leaves that
    to a controller run as a service (or to placer resume). With --wait, this command drives
    the run itself until it ends (if a controller took it first, it waits for it).

    Datasets given by uri are resolved through their stores as for plan, then asked
    again (no cached answer) just before the run starts: if a dataset's location, copies or
    storage tags changed, nothing is submitted (exit 2: plan again). --offline asks no
    store and runs on what the files say.

    The decision is appended to the decision log, with the run id. Nothing is submitted when
    the log cannot be written (exit 2): an unlogged run is not started.
    """
    import placer
    from placer import decisions
    from placer.resolve import recheck_datasets

    decided: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    try:
        # Refused before anything is planned or journalled: an unknown name fails here.
        chosen: dict[str, Any] = {} if strategy is None else {
            "strategy": _strategy_factory(strategy, strategy_budget)}
        from placer.tracking import requested

        follower = requested(mlflow_uri)  # refused (exit 2) before anything is planned
        if follower is not None:
            chosen["observers"] = [follower]
        result = _run_plan(pipeline, inventory, policies or [], objective, deadline, budget,
                           decided=decided, offline=offline, facts=facts, journal=journal)
        if result.status != "placed":
            _show(result, None, None)
            try:
                _log_decision("submit", result, decided)
            except PlacerError as exc:
                err.print(f"[bold yellow]warning[/]: decision not logged: {_plain(exc)}",
                          highlight=False)
            raise typer.Exit(EXIT_NOT_PLACED)
        # Tokens, clusters, stores, images: one line per problem, exit 2, nothing recorded.
        preflight_or_exit(result, inventory, facts["written"])
        # Never run on stale facts: the datasets' stores are asked again, now.
        resolved = facts["resolved"] if offline else recheck_datasets(
            result, facts["written"], facts["stores"])
        decisions.check_writable()  # refuse before acting: every run's decision is logged
        # The journal shares this command's redactor: the executor teaches it the sites'
        # secrets before building anything that may echo a token.
        from placer.executor import submit as start_run  # its Run returns failures as status

        run = start_run(
            result, pipeline=resolved,
            inventory=placer.load_inventory(inventory),
            policies=placer.load_policies(*policies) if policies else None,
            journal=_journal(journal), decision_log=decisions.default_path(), **chosen,
        )
        out.print(f"run {_plain(run.id)} submitted", highlight=False)
        try:
            _log_decision("submit", result, decided, run=run.id)
        except PlacerError as exc:  # checked writable just before: a disk filled meanwhile
            err.print(f"[bold red]error[/]: run {_plain(run.id)} was submitted but its "
                      f"decision could not be logged: {_plain(exc)}; the journal holds its "
                      "plan and inputs", highlight=False)
        if wait:
            _finish(_drive_until_done(run))
        elif not no_controller:
            _start_controller(journal, run.id)
    except PlacerError as exc:
        raise _fail(exc) from None


def _drive_until_done(run: Any) -> Any:
    """Drive the run to its end; while another process drives it (a controller took it
    between two of our ticks), wait for that one, and drive again if it lets go."""
    import time

    from placer.errors import RunLockedError
    from placer.report import RunProgress

    # Live progress: a line on stderr whenever a job changes state.
    progress = RunProgress(lambda line: err.print(line, highlight=False, markup=False), _mask)
    told = False
    try:
        progress.update(run.status())
        while True:
            try:
                st = run.wait(timeout=max(2.0, run.executor.poll_interval_s))
                progress.update(st)
                if st.done:
                    return st
                continue
            except RunLockedError as exc:
                st = run.status()
                progress.update(st)
                if st.done:
                    return st
                if not told:
                    who = f"pid {exc.pid}" if exc.pid else "another process"
                    err.print(f"note: {who} drives run {_plain(run.id)}; waiting for it to end",
                              highlight=False)
                    told = True
            time.sleep(run.executor.poll_interval_s)
    except KeyboardInterrupt:
        state = run.status().state
        err.print(f"interrupted: run {_plain(run.id)} is not cancelled ({_plain(state)} in the "
                  "journal; jobs already submitted go on on their clusters) and nothing drives "
                  f"it now: `placer resume {_plain(run.id)}` drives it on, `placer cancel "
                  f"{_plain(run.id)}` stops it", highlight=False)
        raise typer.Exit(130) from None


def _start_controller(journal: str | None, run_id: str) -> None:
    """Make sure a controller drives the journal now that a run was submitted without --wait.

    A PostgreSQL journal is a team's: its controller runs as a service (on any host), so none
    is started here; this says whether one drives the journal now.
    """
    from placer.controller import start_in_background

    path = _journal_at(journal)
    if not isinstance(path, Path):
        with _journal(path, readonly=True) as j:
            line = _controller_line(j, None)
        if line.startswith("controller: none"):
            err.print(f"[bold yellow]warning[/]: {_plain(line.removeprefix('controller: '))}",
                      highlight=False)
        else:
            out.print(_plain(line), highlight=False)
        return
    bg = start_in_background(path)
    if bg.pid is not None and bg.started:
        out.print(f"controller pid {bg.pid} started: it drives the run to its end (log: "
                  f"{_plain(bg.log)})", highlight=False)
        if bg.error:
            err.print(f"[bold yellow]warning[/]: controller pid {bg.pid}: {_plain(bg.error)}; "
                      f"see {_plain(bg.log)}", highlight=False)
    elif bg.pid is not None:
        out.print(f"controller pid {bg.pid} drives the journal: it takes the run from here",
                  highlight=False)
    else:
        err.print(f"[bold yellow]warning[/]: no controller could be started ({_plain(bg.error)};"
                  f" log: {_plain(bg.log)}): run {_plain(run_id)} moves on only with `placer "
                  f"controller` or `placer resume {_plain(run_id)}`", highlight=False)


def _utc(ts: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    import datetime as dt

    return "" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime(fmt)


@app.command()
def runs(journal: JournalOpt = None,
         limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
         as_json: JsonOpt = False, output: OutputOpt = None) -> None:
    """Recent runs with their state.

    -o json (--json) prints {"schema": "placer/runs/v1", "journal": ..., "runs": [...]},
    newest first, each run with the keys id, pipeline, state, created and updated (ISO 8601,
    UTC), cost_usd (so far; null if the run cannot be read), sites (sorted), reason,
    policy_hash and transfers (its staging copies: count, bytes, seconds, usd, planned_s,
    planned_usd, slow; null if the run cannot be read); -o yaml the same as YAML; -o name
    one run id a line; -o wide adds the last update and the policy hash.
    """
    from placer.errors import JournalError
    from placer.executor import TransferTotals, run_status

    fmt = _output_format(output, as_json)
    path = _journal_at(journal)
    found: list[dict[str, Any]] = []
    if not isinstance(path, Path) or path.exists():
        try:
            j = _journal(path, readonly=True)
            for r in j.runs(limit):
                one: dict[str, Any] = {
                    "id": r.id, "pipeline": r.pipeline_name, "state": r.state,
                    "created": _utc(r.created, "%Y-%m-%dT%H:%M:%SZ"),
                    "updated": _utc(r.updated, "%Y-%m-%dT%H:%M:%SZ"), "cost_usd": None,
                    "sites": [], "reason": r.reason, "policy_hash": r.policy_hash,
                    "transfers": None}
                try:
                    st = run_status(j, r.id)
                    one.update(cost_usd=st.cost_usd, reason=st.reason, sites=sorted(
                        {x.site for x in st.jobs.values() if x.site}),
                        transfers=st.transfer_totals.model_dump(mode="json"))
                except JournalError as exc:  # one damaged run does not hide the others
                    one["reason"] = f"cannot read: {exc}"
                found.append({k: _mask(v) if isinstance(v, str) else v
                              for k, v in one.items()})
        except PlacerError as exc:
            raise _fail(exc) from None
    if fmt in ("json", "yaml"):
        _emit(fmt, {"schema": "placer/runs/v1", "journal": _mask(path), "runs": found})
        return
    if fmt == "name":
        _emit_names([r["id"] for r in found])
        return
    if isinstance(path, Path) and not path.exists():
        out.print(f"no runs recorded yet (journal {_plain(path)})", highlight=False)
        return
    t = Table(box=box.SIMPLE_HEAD)
    cols = ["run", "pipeline", "state", "created (UTC)", "cost so far", "sites",
            "copies: actual (planned)", "reason"]
    if fmt == "wide":
        cols[4:4] = ["updated (UTC)"]
        cols.append("policy hash")
    for col in cols:
        t.add_column(col, justify="right" if col == "cost so far" else "left")
    for r in found:
        row = [Text(r["id"]), Text(r["pipeline"]), Text(r["state"]),
               r["created"].replace("T", " ").rstrip("Z"),
               "" if r["cost_usd"] is None else f"${r['cost_usd']:,.2f}",
               Text(", ".join(r["sites"])), Text(_copies_cell(TransferTotals(**r["transfers"]))
                                                 if r["transfers"] else ""),
               Text(r["reason"] or "")]
        if fmt == "wide":
            row[4:4] = [r["updated"].replace("T", " ").rstrip("Z")]
            row.append(Text(r["policy_hash"]))
        t.add_row(*row)
    _print_table(t, fmt)


@app.command()
def status(run_id: Annotated[str, typer.Argument(help="run id")],
           journal: JournalOpt = None,
           watch: Annotated[bool, typer.Option(help="refresh until the run ends")] = False,
           interval: Annotated[float, typer.Option(help="seconds between refreshes",
                                                   min=0.1)] = 2.0,
           as_json: JsonOpt = False, output: OutputOpt = None) -> None:
    """Per job: state, site, attempt and cost, as the journal records them; and whether a
    controller drives the journal (its pid), or nothing moves the run on.

    -o json (--json) prints {"schema": "placer/status/v1", "run_id", "state", "done",
    "reason", "cost_usd", "jobs": [{"job", "state", "site", "attempt", "submission_id",
    "reason", "cost_usd", "started", "finished"}], "controller" (who drives the journal, null
    when the run is over and none does), "strategy_decisions": [{"time", "job", "decision",
    "site", "reason", "waited_h", "predicted_wait_h", "allowance_h", "wait_h", "burst" (the
    chosen or cheapest allowed cloud option, egress included), "policy" (allowed, denied with
    rule ids, unavailable, held)}], "lost_attempts": [{"job", "attempt", "site", "state"
    (pending, cancelled, outputs_removed, outputs_kept), "prefix", "objects", "reason"}],
    "transfers": [{"id", "job", "src_location", "dst_location", "state", "bytes",
    "seconds", "usd", "planned_gb", "planned_s", "planned_usd", "expected_s", "slow"}],
    "transfer_totals": {"count", "bytes", "seconds", "usd", "planned_s", "planned_usd",
    "slow"}}, times ISO 8601 UTC; -o yaml the same as YAML; -o name
    the run's jobs; -o wide adds each job's start, end and submission id.
    """
    import time

    from rich.console import Group
    from rich.live import Live

    from placer.executor import run_status

    fmt = _output_format(output, as_json)
    if watch and fmt in ("json", "yaml", "name"):
        raise _fail(ConfigError(f"--watch refreshes a table; -o {fmt} prints once: drop one"))
    # -o wide: every column at its full width; a live view (--watch) stays within the terminal.
    shown_on = out if fmt != "wide" or watch else Console(soft_wrap=True,
                                                          width=max(out.width, 200))

    def view(st: Any) -> Group:
        line = _controller_line(j, st)
        shown = [line] if line else []
        shown += _copy_lines(st)
        shown += _decision_lines(j, st.run_id)
        return Group(_status_table(st, wide=fmt == "wide"), *(Text(x) for x in shown))

    try:
        j = _journal(journal, readonly=True)
        st = run_status(j, run_id)
        if fmt in ("json", "yaml"):
            _emit(fmt, _status_data(j, st))
            return
        if fmt == "name":
            _emit_names(list(st.jobs))
            return
        if not watch:
            shown_on.print(view(st))
            return
        # Only reads the journal: whoever drives the run (a controller, submit --wait, resume)
        # writes it.
        with Live(view(st), console=shown_on, auto_refresh=False) as live:
            while not st.done:
                time.sleep(interval)
                st = run_status(j, run_id)
                live.update(view(st), refresh=True)
    except PlacerError as exc:
        raise _fail(exc) from None


def _strategy_factory(name: str, budget: float) -> Callable[[], Any]:
    """Makes a fresh strategy per run, by the simulator's names (loaded lazily: only a run
    with a strategy imports the simulator), named so the run records it. An unknown name
    fails now."""
    from placer.live import NamedStrategy
    from placer.sim.registry import make_strategy

    make_strategy(name, budget)
    return NamedStrategy(name, budget, lambda: make_strategy(name, budget))


def _decision_lines(j: Any, run_id: str, limit: int = 10) -> list[str]:
    """The latest online-strategy decisions of a run (``placer controller --strategy``)."""
    import datetime as dt

    events = j.events(run_id, "strategy_decision")
    lines = []
    for e in events[-limit:]:
        when = dt.datetime.fromtimestamp(e.ts, dt.UTC).strftime("%H:%M:%S")
        site = e.data.get("site")
        lines.append(_mask(f"  {when} {e.job}: {e.data.get('decision')}"
                           + (f" on {site}" if site else "") + f": {e.data.get('reason', '')}"))
    if lines:
        more = len(events) - len(lines)
        lines.insert(0, "strategy decisions" + (f" (latest {len(lines)} of {len(events)})"
                                                if more else "") + ":")
    return lines


def _controller_line(j: Any, st: Any) -> str:
    """Who moves the run on: the journal's controller, or (if none, and the run is not over)
    a warning that only a driver in a terminal would. ``st`` ``None``: any run."""
    from placer.controller import controller_holder

    path = j.where
    holder = controller_holder(j.path if j.path is not None else j)
    if holder is not None:
        return _mask(f"controller: {holder.describe()} drives journal {path}")
    if st is not None and st.done:
        return ""
    which = f"run {st.run_id}" if st is not None else "a run"
    return _mask(f"controller: none drives journal {path}; unless `placer submit --wait` or "
                 f"`placer resume` drives {which}, it moves on only once `placer "
                 "controller` runs")


@app.command()
def logs(run_id: Annotated[str, typer.Argument(help="run id")],
         job: Annotated[str, typer.Argument(help="job name")],
         journal: JournalOpt = None,
         follow: Annotated[bool, typer.Option("--follow", "-f",
                                              help="keep printing until the job ends")] = False,
         interval: Annotated[float, typer.Option(help="seconds between polls", min=0.1)] = 2.0,
         ) -> None:
    """The job's logs, read from its cluster (secrets masked)."""
    import time

    from placer.backends import TERMINAL_STATES
    from placer.executor import Executor, run_status

    try:
        j = _journal(journal, readonly=True)  # reads only, beside whoever drives the run
        ex = Executor.for_run(j, run_id)  # its backends, rebuilt from the run's inventory
        shown = ""
        while True:
            text = ex.logs(run_id, job)
            # Logs only grow for one attempt; a new attempt starts a new text.
            new = text[len(shown):] if text.startswith(shown) else text
            sys.stdout.write(_mask(new))
            sys.stdout.flush()
            shown = text
            state = run_status(j, run_id).jobs[job].state if follow else None
            if not follow or state in TERMINAL_STATES or state in ("STUCK", "BLOCKED", "LOST"):
                return
            time.sleep(interval)
    except KeyError:
        raise _fail(ConfigError(f"no job {job!r} in run {run_id}")) from None
    except PlacerError as exc:
        raise _fail(exc) from None


@app.command()
def cancel(run_id: Annotated[str, typer.Argument(help="run id")],
           journal: JournalOpt = None) -> None:
    """Stop every running job of the run on every site.

    Works while another process drives the run (it takes no driver lock): that driver sees
    its jobs stopped.
    """
    from placer.executor import Executor

    try:
        j = _journal(journal)
        from placer.tracking import Follower

        ex = Executor.for_run(j, run_id, observers=[Follower()])  # a tracked run shows it
        out.print(_status_table(ex.cancel(run_id)))
    except PlacerError as exc:
        raise _fail(exc) from None


def _credentials_or_exit(journal: Any, run_id: str) -> None:
    """Before resuming: a cluster of the run whose token is missing or refused is one line
    with its fix and exit 2, not minutes of silent retries (a cluster that does not answer
    is left to failover). ``PLACER_NO_PREFLIGHT=1`` skips it, as for ``submit``."""
    import os

    if os.environ.get("PLACER_NO_PREFLIGHT", "").strip() in ("1", "true", "yes"):
        return
    from placer.catalog import resolve_inventory
    from placer.preflight import credentials_problems

    spec = journal.run_spec(run_id)
    problems = credentials_problems(resolve_inventory(spec.inventory))
    if problems:
        for p in problems:
            err.print(f"preflight: {_plain(p.message)}", highlight=False)
        err.print(f"preflight: fix the credentials, then placer resume {run_id} again; the "
                  "run is as it was", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command("resume")
def resume_cmd(run_id: Annotated[str, typer.Argument(help="run id")],
               wait: Annotated[bool, typer.Option(help="drive the run until it ends")] = True,
               journal: JournalOpt = None) -> None:
    """Continue a run after a crash: nothing already submitted is submitted again.

    One process drives a run at a time: if another (``submit --wait``, ``resume``) is driving
    it, this exits at once (code 2) naming that process; run it again once it has ended.
    With ``--no-wait``, one round of polling and submitting, then the status.
    """
    from placer.executor import Executor

    try:
        from placer import decisions

        j = _journal(journal)
        _credentials_or_exit(j, run_id)
        # Re-plans after a failure go to the decision log, like the first plan.
        from placer.tracking import Follower

        run = Executor.for_run(j, run_id, decision_log=decisions.default_path(),
                               observers=[Follower()]).resume(run_id)  # tracked runs synced
        _finish(run.wait() if wait else run.wait(timeout=0))
    except PlacerError as exc:
        raise _fail(exc) from None


@app.command("track")
def track_cmd(run_id: Annotated[str, typer.Argument(help="run id")],
              mlflow_uri: Annotated[str | None, typer.Option(
                  "--mlflow-uri", help="the MLflow tracking server (default: "
                  "$MLFLOW_TRACKING_URI)")] = None,
              journal: JournalOpt = None) -> None:
    """Show a run in MLflow: the pipeline a parent run, each job a child (placer[mlflow]).

    Syncs the run now and records that it is tracked there, so whoever drives it from here
    (its controller, placer resume) keeps it in sync until it ends. Run it again at any time:
    the same MLflow runs are brought up to date, never duplicated. The experiment is
    $MLFLOW_EXPERIMENT_NAME, else the pipeline's name. Exit 1 if the server did not answer.
    """
    from placer import tracking

    try:
        uri = tracking.tracking_uri(mlflow_uri)
        if uri is None:
            raise ConfigError("no MLflow server to track the run in: give --mlflow-uri or set "
                              "MLFLOW_TRACKING_URI")
        experiment = tracking.experiment_name()
        j = _journal(journal)
        tracker = tracking.MlflowTracker(uri, experiment)
        tracking.track(j, run_id, uri, experiment)
        if not tracker.sync(j, run_id, force=True):
            err.print(f"[bold yellow]warning[/]: MLflow at {_plain(uri)} did not answer: run "
                      f"{_plain(run_id)} is not synced yet (whoever drives it tries again)",
                      highlight=False)
            raise typer.Exit(EXIT_NOT_PLACED)
        view = tracking.run_view(j, run_id, experiment)
        out.print(f"run {_plain(run_id)} synced to MLflow at {_plain(uri)}, experiment "
                  f"{_plain(view.experiment)}: {len(view.jobs)} job(s)", highlight=False)
    except PlacerError as exc:
        raise _fail(exc) from None


@app.command("controller")
def controller_cmd(
    ctx: typer.Context,
    journal: JournalOpt = None,
    poll: Annotated[float, typer.Option(
        "--poll", envvar="PLACER_CONTROLLER_POLL", min=0.01,
        help="seconds between rounds over the journal's runs")] = 5.0,
    idle_exit: Annotated[float, typer.Option(
        "--idle-exit", envvar="PLACER_CONTROLLER_IDLE_EXIT", min=0,
        help="exit once no run has been left to drive for this many seconds")] = 60.0,
    forever: Annotated[bool, typer.Option(
        "--forever", help="never exit when idle: run as a service")] = False,
    once: Annotated[bool, typer.Option("--once", help="one round over the runs, then exit")
                    ] = False,
    strategy: Annotated[str | None, typer.Option(
        "--strategy", help="decide for each ready job: on-prem now, wait, or burst to a cloud "
        "site, with this online strategy (e.g. placer; as `placer bench hybrid` names them); "
        "default: every job runs where its plan put it")] = None,
    strategy_budget: Annotated[float, typer.Option(
        "--strategy-budget", "--budget", min=0,
        help="the strategy's waiting budget (with --strategy)")] = 0.5,
    spot_safety_net: Annotated[bool, typer.Option(
        "--spot-safety-net", help="let the strategy send a job that tolerates preemption "
        "(spot: true) to spot capacity, only where a spot run lost at the worst moment can be "
        "done again on demand by the job's deadline; a failed spot attempt is retried on "
        "demand (default: no spot)")] = False,
    standby: Annotated[bool, typer.Option(
        "--standby", help="if another controller drives the journal, wait and take over when "
        "it stops (its lock is freed, or its lease in a PostgreSQL journal lapses) instead of "
        "exiting")] = False,
) -> None:
    """Drive every unfinished run of the journal: one round every --poll seconds.

    placer submit starts one in the background; run it yourself as a service (--forever) and
    submit with --no-controller. One per journal: if another controller drives the journal,
    this exits at once (code 2) naming its pid; with --standby it waits, and takes over once
    that one stops. A run that another process drives (submit --wait, resume) is left to it; a
    run whose round fails is tried again after a backoff, the error recorded in its events;
    the other runs go on. Killed at any moment, it loses nothing: the next controller (or
    placer resume) continues, and no job is submitted twice.

    --journal may be a postgresql:// URL: a journal the controllers of several hosts share.
    There, one controller holds a lease, renewed every round; one killed or cut off is taken
    over (by a --standby one, or the next started) once its lease lapses.

    With --strategy, each ready job is decided live: run on the on-prem site now, wait for it,
    or burst to a cloud site, from the on-prem cluster's free GPUs (its backend must report
    them) and the run's own policies; each decision and its reason is in placer status. The
    residency guard checks every site a strategy picks, as it checks every plan. A run
    submitted with its own --strategy is always decided by that one. Without
    --spot-safety-net every job a strategy places runs on demand; with it, spot is taken only
    where spot time + provisioning + a whole rerun on demand fits before the job's deadline
    (a run planned without --deadline has none: nothing can be late, so spot is taken), and a
    failed spot attempt is retried on demand.
    """
    import signal

    from placer import decisions
    from placer.controller import Controller

    try:
        given = getattr(ctx.get_parameter_source("idle_exit"), "name", None) == "COMMANDLINE"
        if forever and (once or given):
            raise ConfigError("--forever never exits: it takes neither --idle-exit nor --once")
        options: dict[str, Any] = {}
        if strategy is not None:
            options["strategy"] = _strategy_factory(strategy, strategy_budget)
        if spot_safety_net:
            options["spot_safety_net"] = True
        from placer.tracking import Follower

        options["observers"] = [Follower()]  # runs submitted with --mlflow-uri stay in sync
        j = _journal(journal)
        # Re-plans after a failure go to the decision log, as with `placer resume`.
        ctl = Controller(j, poll_s=poll, idle_exit_s=None if forever else idle_exit,
                         decision_log=decisions.default_path(), strategies=_strategy_factory,
                         standby=standby, **options)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("placer")
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            previous = signal.signal(signal.SIGTERM, lambda *_: ctl.stop())
        except ValueError:  # not the main thread: no SIGTERM handler of ours
            previous = None
        try:
            ctl.run(once=once)
        except KeyboardInterrupt:
            err.print("controller stopped", highlight=False)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            logger.removeHandler(handler)
            logger.setLevel(level)
    except PlacerError as exc:
        raise _fail(exc) from None


class _MaskingFormatter(logging.Formatter):
    """Log lines with every secret this command knows masked (the runs' site tokens)."""

    def format(self, record: Any) -> str:
        return _mask(super().format(record))


# -- policies ------------------------------------------------------------------------------
# `placer policy ...`: created here for `policy diff` (placer.decisions); the policy test and
# lint commands join this same sub-app.
policy_app = typer.Typer(no_args_is_help=True, help="Work with policy sets.")
app.add_typer(policy_app, name="policy")


def _diff_table(result: Any, plans: Path) -> Table:
    t = Table(box=box.SIMPLE_HEAD)
    for col in ("decision", "job", "change", "old → new", "rules", "why"):
        t.add_column(col, overflow="fold")
    for c in result.changes:
        src = Path(c.source)
        name = str(src.relative_to(plans)) if src.is_relative_to(plans) and src != plans \
            else src.name
        where = f"{name}:{c.line}" if c.line is not None else name
        what = c.kind + (f" {c.run}" if c.run else "")
        old, new = c.old.site or c.old.status, c.new.site or c.new.status
        t.add_row(_cell(f"{where}\n{what}"), _cell(c.job), ", ".join(c.changed),
                  _cell(f"{old} → {new}"), _cell(", ".join(c.rules) or "-"),
                  _cell("\n".join(w for w in c.why if not w.startswith("placement: "))))
    return t


@policy_app.command("diff")
def policy_diff(
    old: Annotated[Path, typer.Argument(help="the current policies: a file or folder")],
    new: Annotated[Path, typer.Argument(help="the changed policies: a file or folder")],
    plans: Annotated[Path, typer.Option(
        "--plans", help="decision logs (*.jsonl) and/or decision records (*.json): a folder "
        "or one file")],
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """What if: the recorded decisions NEW would change, and the rules behind each change.

    Every decision recorded in --plans is decided again under OLD and under NEW, from its
    recorded inputs and on its recorded day; each job whose eligible sites, held status or
    placement would change is listed. A plan file without its inputs cannot be decided again:
    it is listed, never guessed.

    -o json (--json) prints the PolicyDiff (docs/audit.md); -o yaml the same as YAML.

    Exit codes: 0 nothing would change; 1 some decision would change; 2 bad input (including
    a decision that cannot be decided again).
    """
    import placer
    from placer import decisions

    fmt = _output_format(output, as_json, ("json", "yaml"))
    try:
        old_ps, new_ps = placer.load_policies(old), placer.load_policies(new)
        result = decisions.diff(plans, old_ps, new_ps)
    except PlacerError as exc:
        raise _fail(exc) from None
    if fmt == "json":
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    elif fmt == "yaml":
        _emit(fmt, result.model_dump(mode="json"))
    else:
        out.print(f"policy diff: OLD {result.old_hash}\n             NEW {result.new_hash}",
                  highlight=False)
        for change in result.policy_changes:
            out.print(f"  changed: {_plain(change)}", highlight=False)
        out.print(f"{result.records} decision(s) recorded, {result.redecided} decided again: "
                  f"{len(result.changes)} job decision(s) would change", highlight=False)
        if result.changes:
            out.print(_diff_table(result, plans))
        for u in result.undecidable:
            where = f"{u.source}:{u.line}" if u.line is not None else u.source
            err.print(f"[bold red]cannot be decided again[/]: {_plain(where)}: "
                      f"{_plain(u.reason)}", highlight=False)
        for note in result.notes:
            out.print(f"note: {_plain(note)}", highlight=False)
    if result.undecidable and result.old_hash != result.new_hash:
        raise typer.Exit(EXIT_BAD_INPUT)
    raise typer.Exit(EXIT_NOT_PLACED if result.changes else EXIT_OK)


def _report_line(line: str) -> Text:
    """One line of a policy test or lint report, its status word coloured."""
    text = Text(_mask(line))
    for word, style in (("PASS", "green"), ("FAIL", "bold red"), ("ERROR", "bold red"),
                        ("warning", "yellow"), ("error", "bold red")):
        at = line.find(word)
        if at == 0 or (word in ("warning", "error") and line.find(f": {word}: ") >= 0):
            start = 0 if at == 0 else line.find(f": {word}: ") + 2
            text.stylize(style, start, start + len(word))
            break
    return text


def _load_for_policy_command(paths: list[Path] | None) -> Any:
    import placer

    pol = placer.load_policies(*(paths or [Path("policies")]))
    for f in pol.skipped:
        err.print(f"note: not a policy file (not .yaml/.yml), not loaded: {f}",
                  highlight=False, markup=False)
    return pol


@policy_app.command("test")
def policy_test(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="policy files or folders, loaded together (default: policies/)")] = None,
    junit: Annotated[Path | None, typer.Option(
        "--junit", help="also write the results as JUnit XML here, for CI")] = None,
    require_coverage: Annotated[bool, typer.Option(
        "--require-coverage", help="fail when some rule, exception, transform or tagging rule "
        "is exercised by no test")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list passing tests too")
                       ] = False,
) -> None:
    """Run the inline `tests:` of the policy files, each against the whole policy set loaded.

    A failed test prints, per job and field, what it expects (-) and what the policies decide
    (+), with the messages of the rules involved. Rules no test exercised are listed.

    Exit codes: 0 every test passed; 1 a test failed (or, with --require-coverage, something
    was not exercised); 2 bad input: a policy that does not load, or a test naming a job, site
    or rule that does not exist.
    """
    from placer.policy import format_report, junit_xml, run_policy_tests

    def write_junit(text: str) -> None:
        if junit is None:
            return
        try:
            junit.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _fail(ConfigError(f"{junit}: cannot write: {exc.strerror}")) from None

    try:
        pol = _load_for_policy_command(paths)
    except PlacerError as exc:
        if isinstance(exc, ConfigError):
            from placer.policy import PolicyTestReport

            write_junit(junit_xml(PolicyTestReport(()), load_errors=exc.details))
        raise _fail(exc) from None
    report = run_policy_tests(pol)
    for line in format_report(report, verbose=verbose):
        for part in line.split("\n"):
            out.print(_report_line(part), highlight=False)
    write_junit(junit_xml(report, require_coverage=require_coverage))
    if junit is not None:
        out.print(f"JUnit XML written to {_plain(junit)}", highlight=False)
    if report.errors:
        raise typer.Exit(EXIT_BAD_INPUT)
    if report.failed or (require_coverage and report.unexercised):
        raise typer.Exit(EXIT_NOT_PLACED)
    raise typer.Exit(EXIT_OK)


@policy_app.command("lint")
def policy_lint(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="policy files or folders, loaded together (default: policies/)")] = None,
    inventory: Annotated[Path | None, typer.Option(
        help="inventory YAML the policies are judged against (default: the embedded one)")
    ] = None,
) -> None:
    """Find what loads but cannot do what it says, judged against an inventory.

    The policies are loaded first, so everything the loader refuses (bad YAML, an unknown
    field or effect, an undefined location set, a waiver of a rule marked waivable: false) is
    reported as it is by `placer validate`. Then, errors: places no site of the inventory has,
    requires that one job can meet together but no site satisfies, data classes no site may
    run; warnings: rules that match no site, prefers that prefer every site, allows with no
    effect, shadowed rules, expired exceptions.

    Exit codes: 0 no errors (warnings may be listed); 1 errors; 2 the policies or the
    inventory do not load.
    """
    import placer
    from placer.catalog import default_inventory, resolve_inventory
    from placer.policy import lint_policies

    try:
        pol = _load_for_policy_command(paths)
        inv = placer.load_inventory(inventory) if inventory else default_inventory()
        sites = resolve_inventory(inv)
    except PlacerError as exc:
        raise _fail(exc) from None
    findings = lint_policies(pol, sites, inventory_name=inv.name)
    for f in findings:
        out.print(_report_line(str(f)), highlight=False)
    errors = sum(f.level == "error" for f in findings)
    warnings = len(findings) - errors
    out.print(f"{errors} error(s), {warnings} warning(s): {len(pol.rules)} rules in "
              f"{len(pol.sources)} file(s), against inventory {_plain(inv.name)} "
              f"({len(sites)} sites)", highlight=False)
    raise typer.Exit(EXIT_NOT_PLACED if errors else EXIT_OK)


# -- benchmarks ------------------------------------------------------------------------------
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks on simulated clusters.")
app.add_typer(bench_app, name="bench")
app.add_typer(local_app, name="local")
app.command("preflight")(preflight_cmd)


def _sweep(text: str | None) -> list[float] | None:
    if text is None:
        return None
    key, sep, values = text.partition("=")
    if key.strip() != "wait" or not sep:
        raise ConfigError("--sweep: expected wait=B1,B2,..., e.g. wait=0,0.25,0.5,1")
    try:
        return [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--sweep: not a list of numbers: {values!r}") from None


def _ray_runner(address: str) -> Any:
    """Runs of a sweep as Ray tasks: the ray backend's runner, found through its entry point
    (Ray itself is imported when the runs start)."""
    from placer.backends import load_backend

    try:
        backend = load_backend("ray")
    except BackendUnavailableError as exc:
        raise BackendUnavailableError(f"--ray needs the ray backend: {exc}") from None
    return backend.task_runner(address)


@bench_app.command("hybrid")
def bench_hybrid(
    scenario: Annotated[Path | None, typer.Option(help="scenario YAML")] = None,
    trace: Annotated[str | None, typer.Option(help="itp:cluster04, csv:PATH, "
                                              "synthetic:..., pipelines:...")] = None,
    onprem_gpus: Annotated[int | None, typer.Option(help="on-prem GPUs (with --trace)")] = None,
    strategies: Annotated[str | None, typer.Option(help="comma-separated names, or all")] = None,
    sweep: Annotated[str | None, typer.Option(help="waiting budgets: wait=0,0.25,0.5,1")] = None,
    seed: Annotated[int | None, typer.Option(help="seed (default: the scenario's, or 0)")] = None,
    cloud: Annotated[str | None, typer.Option(help="uniform or catalog (with --trace)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("results"),
    ray: Annotated[str | None, typer.Option(help="run on Ray: local, auto or an address")] = None,
    results_md: Annotated[Path | None, typer.Option(help="append a section to this "
                                                    "markdown file")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
) -> None:
    """Replay a workload under each strategy and budget; print a table, write CSV/JSON/PNGs.

    Exit codes: 0 ok; 2 bad input (each problem with its file, line and field).
    """
    from placer.report import ProgressBars, command_line, rich_table, rich_tables, write_report
    from placer.sim.bench import run_benchmark
    from placer.sim.scenario import Scenario, build, read_scenario

    try:
        base: Path | None = None
        if scenario is not None:
            if trace is not None or onprem_gpus is not None or cloud is not None:
                raise ConfigError("--scenario names the workload, pool and cloud: drop --trace, "
                                  "--onprem-gpus and --cloud")
            sc, sm = read_scenario(scenario)
            base = scenario.resolve().parent
        elif trace is None or onprem_gpus is None:
            raise ConfigError("give --scenario FILE, or --trace and --onprem-gpus")
        else:
            if cloud not in (None, "uniform", "catalog"):
                raise ConfigError(f"--cloud must be uniform or catalog, got {cloud!r}")
            sc = Scenario.from_cli(trace=trace, onprem_gpus=onprem_gpus,
                                   cloud="catalog" if cloud == "catalog" else "uniform")
            sm = None
        update: dict[str, Any] = {}
        if strategies is not None:
            update["strategies"] = ("all" if strategies.strip() == "all"
                                    else [x.strip() for x in strategies.split(",") if x.strip()])
        if sweep is not None:
            update["sweep"] = {"wait": _sweep(sweep)}
        if seed is not None:
            update["seed"] = seed
        if update:
            from placer.yamlio import SourceMap, validate

            sc = validate(Scenario, {**sc.model_dump(exclude_unset=True), **update},
                          SourceMap("<command line>"))
        prep = build(sc, base, source=sm)
        runner = _ray_runner(ray) if ray is not None else None
        with ProgressBars(enabled=not quiet) as bars:
            result = run_benchmark(sc, base, runner=runner, progress=bars, prepared=prep)
        # Every value whole: a terminal gets the table in parts that fit its width, piped
        # output one table as wide as it needs.
        if out.is_terminal:
            for n, part in enumerate(rich_tables(result, out.width)):
                if n:
                    out.print()
                _print_table(part)  # widened only if one column beside the keys cannot fit
        else:
            _print_table(rich_table(result), "wide")
        files = write_report(result, out_dir, command=command_line(), base_dir=base,
                             results_md=results_md)
    except PlacerError as exc:
        raise _fail(exc) from None
    out.print(f"wrote {', '.join(str(f) for f in files)}", highlight=False)


@app.command("version")
def version_cmd() -> None:
    """Print placer's version (as --version does)."""
    sys.stdout.write(f"placer {_package_version()}\n")


def _reflow(doc: str) -> str:
    """A docstring's paragraphs as single lines, so they wrap to the terminal; a paragraph
    with indented or bulleted lines is kept as written."""
    kept = []
    for para in doc.split("\n\n"):
        lines = para.splitlines()
        if any(x[:1].isspace() or x.startswith(("- ", "* ")) for x in lines[1:]):
            kept.append(para)
        else:
            kept.append(" ".join(x.strip() for x in lines))
    return "\n\n".join(kept)


def _reflow_help(group: typer.Typer) -> None:
    """Typer keeps a help text's single line breaks: at 80 columns every other line would be a
    stub. Each command's docstring is given as reflowed help instead."""
    import inspect

    for info in group.registered_commands:
        if info.help is None and info.callback is not None:
            info.help = _reflow(inspect.getdoc(info.callback) or "")
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _reflow_help(sub.typer_instance)


def main() -> None:
    _reflow_help(app)
    app()
