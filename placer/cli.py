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
from placer.secrets import Redactor
from placer.units import format_duration

app = typer.Typer(
    add_completion=False,
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


@app.callback()
def _per_command() -> None:
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


def _plan_table(plan: Any) -> Table:
    t = Table(title=_cell(f"{plan.pipeline}: {plan.status}"), title_justify="left",
              box=box.SIMPLE_HEAD)
    for col in ("job", "site", "GPUs", "mode", "start", "end", "cost"):
        t.add_column(col, justify="right" if col in ("start", "end", "cost") else "left",
                     no_wrap=True)
    for name, p in plan.jobs.items():
        mode = "spot" if p.spot else ("on-demand" if p.nodes else "on-prem")
        t.add_row(_cell(name), _cell(p.site), _cell(f"{p.gpus}× {p.gpu}"), mode,
                  format_duration(p.start_h), format_duration(p.end_h), f"${p.cost_usd:,.2f}")
    return t


def _show(plan: Any, as_json: bool, output: Path | None) -> None:
    text = plan.model_dump_json(indent=2)
    if output is not None:
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise _fail(ConfigError(f"{output}: cannot write the plan: {exc.strerror}")) from None
    if as_json:
        sys.stdout.write(text + "\n")
        return
    from placer.explain import explain_plan

    if plan.jobs:
        out.print(_plan_table(plan))
    out.print(explain_plan(plan), highlight=False, markup=False)
    if output is not None:
        out.print(f"\nplan written to {_plain(output)}", highlight=False)


def _show_frontier(plans: list[Any], as_json: bool, output: Path | None,
                   plot: Path | None) -> None:
    """The frontier: a table from the cheapest plan to the fastest, its JSON, its plot."""
    text = "[\n" + ",\n".join(p.model_dump_json(indent=2) for p in plans) + "\n]"
    if output is not None:
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise _fail(ConfigError(f"{output}: cannot write the plans: {exc.strerror}")) from None
    if plot is not None and plans[0].status == "placed":
        from placer.report import PlotsUnavailable, frontier

        try:
            frontier(plans, plot)
        except PlotsUnavailable as exc:
            raise _fail(exc) from None
    if as_json:
        sys.stdout.write(text + "\n")
        return
    if plans[0].status != "placed":
        _show(plans[0], False, None)
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
    out.print(t)
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
    out.print(table)


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
    from placer import backends
    from placer.catalog import default_catalog, default_inventory, resolve_inventory
    from placer.loading import check_dataset_sites, load_pipeline_with_source
    from placer.resolve import needs_store, resolve_datasets

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
    uris = [d.uri for d in pipeline.datasets if d.uri and needs_store(d)]
    stores = None if offline or not uris else backends.stores_for_datasets(sites, uris)
    written, pipeline = pipeline, resolve_datasets(pipeline, stores, offline=offline)
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
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="also write JSON here")
    ] = None,
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

    Exit codes: 0 placed; 1 held or infeasible (the plan says why); 2 bad input (each problem
    with its file, line and field); 3 the solver found no plan within --time-limit.
    """
    decided: dict[str, Any] = {}
    try:
        result = _run_plan(pipeline, inventory, policies or [], objective, deadline, budget,
                           time_limit, decided=decided, offline=offline, journal=journal,
                           points=points if objective == "pareto" else None)
    except PlacerError as exc:
        raise _fail(exc) from None
    if isinstance(result, list):
        _show_frontier(result, as_json, output, plot)
        raise typer.Exit(EXIT_OK if result[0].status == "placed" else EXIT_NOT_PLACED)
    _show(result, as_json, output)
    if "queue" in decided and result.jobs and not as_json:
        _show_queue(result, decided)
    if not no_log:
        try:
            logged = _log_decision("plan", result, decided)
            if not as_json:
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
def demo(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Plan the quickstart pipeline on the embedded default inventory (no cloud account)."""
    pipe = _bundled("examples", "quickstart", "pipeline.yaml")
    pols = [_bundled("policies"), _bundled("examples", "quickstart", "deid-approval.yaml")]
    if not as_json:
        out.print(f"[bold]placer demo[/]: planning {pipe.name} (quickstart) on the embedded "
                  "default inventory with the shipped policies and the quickstart's approved "
                  "de-identifier, objective cost, deadline 12h\n")
    try:
        result = _run_plan(pipe, None, pols, "cost", "12h", None, offline=True)
    except PlacerError as exc:
        raise _fail(exc) from None
    _show(result, as_json, None)


@app.command()
def explain(
    plan_file: Annotated[Path, typer.Argument(
        help="plan JSON from `placer plan -o`, or a record of the decision log")],
    job: Annotated[str | None, typer.Option(help="explain one job only")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="print the machine form (schema placer/explanation/v1)")] = False,
) -> None:
    """Explain a saved plan: why each job runs where it does, and why not elsewhere.

    PLAN_FILE is a plan (`placer plan -o`) or one record of the decision log. The text shows,
    per job, the rules behind each verdict with a hint of what would make a site eligible,
    waived rules, audit- and warn-mode rules, derived and removed tags, limits, and holds.
    """
    from placer.decisions import SCHEMA as DECISION_SCHEMA
    from placer.explain import explain_data
    from placer.models import Plan

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
        if as_json:
            sys.stdout.write(explain_data(saved, job).model_dump_json(indent=2, by_alias=True)
                             + "\n")
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
        for key, kind in (("jobs", "Pipeline"), ("sites", "Inventory"), ("rules", "PolicySet")):
            if key in data:
                return kind
    return None


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="YAML files or folders")]) -> None:
    """Check pipelines, inventories and policies; print every problem with file and line.

    The policy files given are checked together, as one policy set (a rule may name a location
    set another file defines; ids must be unique across them), as `placer plan` loads them.
    """
    from placer.catalog import inventory_from_data
    from placer.loading import pipeline_from_data
    from placer.policy import merge, policy_file_from_data, yaml_files
    from placer.yamlio import SourceMap, read_yaml

    paths, skipped, problems = yaml_files(files)
    bad = len(problems)
    for d in problems:
        _fail(ConfigError(d))
    for f in skipped:
        err.print(f"note: not a YAML file, not checked: {f}", highlight=False, markup=False)
    # Each file is parsed once; the loaders validate the parsed data.
    policy_docs: list[Any] = []
    loaders: dict[str, Callable[[Any, SourceMap], object]] = {
        "Pipeline": pipeline_from_data,
        "Inventory": inventory_from_data,
        "PolicySet": lambda data, sm: policy_docs.append(policy_file_from_data(data, sm)),
    }
    for path in paths:
        try:
            data, sm = read_yaml(path)
            kind = _kind_of(data)
            if kind is None or kind not in loaders:
                raise ConfigError(f"{path}: cannot tell what this is; add kind: Pipeline, "
                                  "Inventory or PolicySet")
            loaders[kind](data, sm)
            out.print(f"[green]ok[/]    {_plain(path)} ({kind})", highlight=False)
        except PlacerError as exc:
            bad += 1
            _fail(exc)
    if policy_docs:  # what only the policy files together can say: sets, ids, references
        try:
            merge(policy_docs)
        except PlacerError as exc:
            bad += 1
            _fail(exc)
    raise typer.Exit(EXIT_BAD_INPUT if bad else EXIT_OK)


@app.command()
def schema(
    kind: Annotated[str, typer.Argument(help="pipeline, inventory, policy or plan")] = "pipeline",
) -> None:
    """Print the JSON Schema of a file kind, for editors to validate and complete."""
    from placer.schema import json_schema

    try:
        sys.stdout.write(json.dumps(json_schema(kind), indent=2) + "\n")
    except KeyError:
        raise _fail(
            ConfigError(f"unknown kind {kind!r}; use pipeline, inventory, policy or plan")
        ) from None


@app.command()
def catalog(
    gpu: Annotated[str | None, typer.Option(help="only this GPU type, e.g. A100-40GB")] = None,
    provider: Annotated[str | None, typer.Option(help="aws, gcp or azure")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="e.g. EU, EEA, US, DE")] = None,
) -> None:
    """List the embedded catalog's GPU offers with on-demand and spot prices."""
    from placer.catalog import catalog_rows, default_catalog

    rows = catalog_rows(default_catalog(), gpu=gpu, provider=provider, jurisdiction=jurisdiction)
    t = Table(title=f"{len(rows)} offers, USD (sources: placer/catalog/data/SOURCES.md)",
              box=box.SIMPLE_HEAD, title_justify="left")
    cols = ("provider", "region", "country", "gpu", "instance_type", "gpus_per_node",
            "ondemand_usd_per_gpu_hour", "spot_usd_per_gpu_hour")
    for c in cols:
        t.add_column(c.replace("_usd_per_gpu_hour", " $/GPU-h").replace("_", " "),
                     justify="right" if "usd" in c or c == "gpus_per_node" else "left")
    marked = False
    for r in rows:
        cells = ["" if r.get(c) is None else
                 (f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c])) for c in cols]
        if r.get("gpu_only"):
            cells[6] += "*"
            marked = True
        t.add_row(*(Text(c) for c in cells))
    out.print(t)
    if marked:
        out.print("* GPU only: the host VM is billed on top (a lower bound; see docs/catalog.md)")


# -- running plans ---------------------------------------------------------------------------


@app.command("cluster-spec")
def cluster_spec(
    plan_file: Annotated[Path, typer.Argument(help="plan JSON (placer plan --json / -o)")],
    site: Annotated[str, typer.Option(help="the cloud site to render a cluster for")],
    inventory: Annotated[Path | None, typer.Option(help="inventory YAML (or embedded)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="launcher (ray up) or raycluster "
                                     "(KubeRay)")] = "launcher",
    job: Annotated[str | None, typer.Option(help="size the cluster for this job")] = None,
    image: Annotated[str | None, typer.Option(help="container image (raycluster: "
                                              "required)")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write here")] = None,
) -> None:
    """Render the Ray cluster a plan paid for on a cloud site, for Ray's own tooling.

    The backend that renders ``--format`` is found through the ``placer.backends`` entry
    points (placer_ray: launcher; placer_k8s: raycluster).
    """
    import placer
    from placer.backends import cluster_renderers
    from placer.catalog import default_inventory, resolve_inventory
    from placer.cluster_spec import render_yaml, sizing_placement
    from placer.models import Plan

    try:
        renderers = cluster_renderers()
        if fmt not in renderers:
            raise ConfigError(f"--format must be {' or '.join(renderers) or '(none installed)'}"
                              f", got {fmt!r}")
        form, renderer = renderers[fmt]
        if form.needs_image and not image:
            raise ConfigError(f"--format {fmt} needs --image")
        try:
            plan_obj = Plan.model_validate_json(plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{plan_file}: not a placer plan ({type(exc).__name__})") from None
        inv = placer.load_inventory(inventory) if inventory else default_inventory()
        resolved = {s.name: s for s in resolve_inventory(inv)}
        if site not in resolved:
            raise ConfigError(f"no site {site!r} in the inventory")
        placement = sizing_placement(plan_obj, site, job)
        spec = renderer.render_cluster(resolved[site], placement, fmt, image=image)
    except PlacerError as exc:
        raise _fail(exc) from None
    text = render_yaml(spec)
    if output is not None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _fail(ConfigError(f"{output}: cannot write: {exc.strerror}")) from None
    else:
        sys.stdout.write(text)


def _journal(path: str | Path | None, readonly: bool = False) -> Any:
    """The journal, sharing this command's redactor (it learns each run's site secrets)."""
    from placer.journal import Journal

    return Journal(_journal_at(path) if isinstance(path, str | None) else path,
                   readonly=readonly, redactor=_secrets)


def _status_table(st: Any) -> Table:
    t = Table(title=_cell(f"{st.run_id}: {st.state}" + (f" ({st.reason})" if st.reason else "")),
              title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("job", "state", "site", "attempt", "cost", "reason"):
        t.add_column(col, justify="right" if col in ("attempt", "cost") else "left")
    for j in st.jobs.values():
        t.add_row(_cell(j.job), _cell(j.state), _cell(j.site or ""), str(j.attempt),
                  "" if j.cost_usd is None else f"${j.cost_usd:,.2f}", _cell(j.reason or ""))
    return t


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
        result = _run_plan(pipeline, inventory, policies or [], objective, deadline, budget,
                           decided=decided, offline=offline, facts=facts, journal=journal)
        if result.status != "placed":
            _show(result, False, None)
            try:
                _log_decision("submit", result, decided)
            except PlacerError as exc:
                err.print(f"[bold yellow]warning[/]: decision not logged: {_plain(exc)}",
                          highlight=False)
            raise typer.Exit(EXIT_NOT_PLACED)
        # Never run on stale facts: the datasets' stores are asked again, now.
        resolved = facts["resolved"] if offline else recheck_datasets(
            result, facts["written"], facts["stores"])
        decisions.check_writable()  # refuse before acting: every run's decision is logged
        # The journal shares this command's redactor: the executor teaches it the sites'
        # secrets before building anything that may echo a token.
        run = placer.submit(
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

    told = False
    while True:
        try:
            return run.wait()
        except RunLockedError as exc:
            st = run.status()
            if st.done:
                return st
            if not told:
                who = f"pid {exc.pid}" if exc.pid else "another process"
                err.print(f"note: {who} drives run {_plain(run.id)}; waiting for it to end",
                          highlight=False)
                told = True
            time.sleep(run.executor.poll_interval_s)


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


@app.command()
def runs(journal: JournalOpt = None,
         limit: Annotated[int, typer.Option(help="how many, newest first")] = 20) -> None:
    """Recent runs with their state."""
    import datetime as dt

    from placer.errors import JournalError
    from placer.executor import run_status

    path = _journal_at(journal)
    if isinstance(path, Path) and not path.exists():
        out.print(f"no runs recorded yet (journal {_plain(path)})", highlight=False)
        return
    t = Table(box=box.SIMPLE_HEAD)
    for col in ("run", "pipeline", "state", "created (UTC)", "cost so far", "sites", "reason"):
        t.add_column(col, justify="right" if col == "cost so far" else "left")
    try:
        j = _journal(path, readonly=True)
        for r in j.runs(limit):
            when = dt.datetime.fromtimestamp(r.created, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            try:
                st = run_status(j, r.id)
            except JournalError as exc:  # one damaged run does not hide the others
                t.add_row(_cell(r.id), _cell(r.pipeline_name), _cell(r.state), when, "", "",
                          _cell(f"cannot read: {exc}"))
                continue
            sites = ", ".join(sorted({x.site for x in st.jobs.values() if x.site}))
            t.add_row(_cell(r.id), _cell(r.pipeline_name), _cell(r.state), when,
                      f"${st.cost_usd:,.2f}", _cell(sites), _cell(st.reason or ""))
    except PlacerError as exc:
        raise _fail(exc) from None
    out.print(t)


@app.command()
def status(run_id: Annotated[str, typer.Argument(help="run id")],
           journal: JournalOpt = None,
           watch: Annotated[bool, typer.Option(help="refresh until the run ends")] = False,
           interval: Annotated[float, typer.Option(help="seconds between refreshes",
                                                   min=0.1)] = 2.0) -> None:
    """Per job: state, site, attempt and cost, as the journal records them; and whether a
    controller drives the journal (its pid), or nothing moves the run on."""
    import time

    from rich.console import Group
    from rich.live import Live

    from placer.executor import run_status

    def view(st: Any) -> Group:
        line = _controller_line(j, st)
        shown = [line] if line else []
        shown += _decision_lines(j, st.run_id)
        return Group(_status_table(st), *(Text(x) for x in shown))

    try:
        j = _journal(journal, readonly=True)
        st = run_status(j, run_id)
        if not watch:
            out.print(view(st))
            return
        # Only reads the journal: whoever drives the run (a controller, submit --wait, resume)
        # writes it.
        with Live(view(st), console=out, auto_refresh=False) as live:
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
        out.print(_status_table(Executor.for_run(j, run_id).cancel(run_id)))
    except PlacerError as exc:
        raise _fail(exc) from None


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
        # Re-plans after a failure go to the decision log, like the first plan.
        run = Executor.for_run(j, run_id, decision_log=decisions.default_path()).resume(run_id)
        _finish(run.wait() if wait else run.wait(timeout=0))
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
    submitted with its own --strategy is always decided by that one.
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
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """What if: the recorded decisions NEW would change, and the rules behind each change.

    Every decision recorded in --plans is decided again under OLD and under NEW, from its
    recorded inputs and on its recorded day; each job whose eligible sites, held status or
    placement would change is listed. A plan file without its inputs cannot be decided again:
    it is listed, never guessed.

    Exit codes: 0 nothing would change; 1 some decision would change; 2 bad input (including
    a decision that cannot be decided again).
    """
    import placer
    from placer import decisions

    try:
        old_ps, new_ps = placer.load_policies(old), placer.load_policies(new)
        result = decisions.diff(plans, old_ps, new_ps)
    except PlacerError as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
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
    from placer.report import ProgressBars, command_line, rich_table, write_report
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
        # Piped output gets room for every column rather than 120 truncated ones.
        wide = out if out.is_terminal else Console(soft_wrap=True, width=160)
        wide.print(rich_table(result))
        files = write_report(result, out_dir, command=command_line(), base_dir=base,
                             results_md=results_md)
    except PlacerError as exc:
        raise _fail(exc) from None
    out.print(f"wrote {', '.join(str(f) for f in files)}", highlight=False)


def main() -> None:
    app()
