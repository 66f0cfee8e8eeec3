"""The ``placer`` command. Exit codes: 0 placed/ok, 1 held or infeasible, 2 bad input.

Everything printed that came from a user or a cluster (names, reasons, paths, error details,
logs) is plain text, never rich markup, and has every known secret masked: the secrets of the
sites of the inventory given to ``submit`` and of every run a command reads
(:func:`placer.secrets.secret_values`), whatever their variables are called.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
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


def _run_plan(pipeline_path: Path, inventory: Path | None, policies: list[Path],
              objective: str, deadline: str | None, budget: str | None,
              time_limit: float = 60.0) -> Any:
    import placer
    from placer.catalog import default_catalog, default_inventory, resolve_inventory
    from placer.loading import check_dataset_sites, load_pipeline_with_source

    pipeline, sm = load_pipeline_with_source(pipeline_path)
    inv = placer.load_inventory(inventory) if inventory else default_inventory()
    pol = placer.load_policies(*policies) if policies else None
    for f in pol.skipped if pol else ():
        err.print(f"note: not a policy file (not .yaml/.yml), not loaded: {f}",
                  highlight=False, markup=False)
    check_dataset_sites(pipeline, resolve_inventory(inv, default_catalog()), sm)
    if objective not in ("cost", "time"):
        raise ConfigError(f"--objective must be cost or time, got {objective!r}")
    try:
        return placer.plan(pipeline, inv, pol, objective=objective,  # type: ignore[arg-type]
                           deadline=deadline, budget=budget, time_limit_s=time_limit)
    except ValueError as exc:
        if isinstance(exc, PlacerError):
            raise
        raise ConfigError(str(exc)) from None


@app.command()
def plan(
    pipeline: Annotated[Path, typer.Argument(help="pipeline YAML")],
    inventory: Annotated[Path | None, typer.Option(help="inventory YAML (or embedded)")] = None,
    policies: Annotated[
        list[Path] | None, typer.Option(help="policy file or folder; repeatable")
    ] = None,
    objective: Annotated[str, typer.Option(help="cost (min cost) or time (min makespan)")] = "cost",
    deadline: Annotated[str | None, typer.Option(help="makespan bound, e.g. 12h")] = None,
    budget: Annotated[str | None, typer.Option(help="cost bound, e.g. $500")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="also write JSON here")
    ] = None,
    time_limit: Annotated[float, typer.Option(help="seconds the solver may take", min=0.1)] = 60.0,
) -> None:
    """Plan a pipeline: every job on an allowed site, min cost or min makespan.

    Exit codes: 0 placed; 1 held or infeasible (the plan says why); 2 bad input (each problem
    with its file, line and field); 3 the solver found no plan within --time-limit.
    """
    try:
        result = _run_plan(pipeline, inventory, policies or [], objective, deadline, budget,
                           time_limit)
    except PlacerError as exc:
        raise _fail(exc) from None
    _show(result, as_json, output)
    raise typer.Exit(EXIT_OK if result.status == "placed" else EXIT_NOT_PLACED)


@app.command()
def demo(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Plan the quickstart pipeline on the embedded default inventory (no cloud account)."""
    pipe = _bundled("examples", "quickstart", "pipeline.yaml")
    pols = [_bundled("policies")]
    if not as_json:
        out.print(f"[bold]placer demo[/]: planning {pipe.name} (quickstart) on the embedded "
                  "default inventory with the shipped policies, objective cost, deadline 12h\n")
    try:
        result = _run_plan(pipe, None, pols, "cost", "12h", None)
    except PlacerError as exc:
        raise _fail(exc) from None
    _show(result, as_json, None)


@app.command()
def explain(
    plan_file: Annotated[Path, typer.Argument(help="plan JSON from `placer plan -o`")],
    job: Annotated[str | None, typer.Option(help="explain one job only")] = None,
) -> None:
    """Explain a saved plan: why each job runs where it does, and why not elsewhere."""
    from placer.models import Plan

    try:
        saved = Plan.model_validate_json(plan_file.read_text(encoding="utf-8"))
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
    """Check pipelines, inventories and policies; print every problem with file and line."""
    from placer.catalog import inventory_from_data
    from placer.loading import pipeline_from_data
    from placer.policy import policy_from_data, yaml_files
    from placer.yamlio import SourceMap, read_yaml

    paths, skipped, problems = yaml_files(files)
    bad = len(problems)
    for d in problems:
        _fail(ConfigError(d))
    for f in skipped:
        err.print(f"note: not a YAML file, not checked: {f}", highlight=False, markup=False)
    # Each file is parsed once; the loaders validate the parsed data.
    loaders: dict[str, Callable[[Any, SourceMap], object]] = {
        "Pipeline": pipeline_from_data,
        "Inventory": inventory_from_data,
        "PolicySet": policy_from_data,
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
JournalOpt = Annotated[
    Path | None,
    typer.Option("--journal", envvar="PLACER_JOURNAL", help="run journal (SQLite); default "
                 "under the user data dir"),
]


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


def _journal(path: Path | None, readonly: bool = False) -> Any:
    """The journal, sharing this command's redactor (it learns each run's site secrets)."""
    from placer.journal import Journal

    return Journal(path, readonly=readonly, redactor=_secrets)


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
) -> None:
    """Plan a pipeline and run it: each job on its planned site, recorded in the journal."""
    import placer

    try:
        result = _run_plan(pipeline, inventory, policies or [], objective, deadline, budget)
        if result.status != "placed":
            _show(result, False, None)
            raise typer.Exit(EXIT_NOT_PLACED)
        # The journal shares this command's redactor: the executor teaches it the sites'
        # secrets before building anything that may echo a token.
        run = placer.submit(
            result, pipeline=placer.load_pipeline(pipeline),
            inventory=placer.load_inventory(inventory),
            policies=placer.load_policies(*policies) if policies else None,
            journal=_journal(journal),
        )
        out.print(f"run {_plain(run.id)} submitted", highlight=False)
        if wait:
            _finish(run.wait())
    except PlacerError as exc:
        raise _fail(exc) from None


@app.command()
def runs(journal: JournalOpt = None,
         limit: Annotated[int, typer.Option(help="how many, newest first")] = 20) -> None:
    """Recent runs with their state."""
    import datetime as dt

    from placer.errors import JournalError
    from placer.executor import run_status
    from placer.journal import default_path

    path = journal or default_path()
    if not path.exists():
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
    """Per job: state, site, attempt and cost, as the journal records them."""
    import time

    from rich.live import Live

    from placer.executor import run_status

    try:
        j = _journal(journal, readonly=True)
        st = run_status(j, run_id)
        if not watch:
            out.print(_status_table(st))
            return
        # Only reads the journal: whoever drives the run (submit --wait, resume) writes it.
        with Live(_status_table(st), console=out, auto_refresh=False) as live:
            while not st.done:
                time.sleep(interval)
                st = run_status(j, run_id)
                live.update(_status_table(st), refresh=True)
    except PlacerError as exc:
        raise _fail(exc) from None


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
        j = _journal(journal)
        run = Executor.for_run(j, run_id).resume(run_id)
        _finish(run.wait() if wait else run.wait(timeout=0))
    except PlacerError as exc:
        raise _fail(exc) from None


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
