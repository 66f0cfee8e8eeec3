"""Scenarios: one YAML file naming everything a benchmark run needs, and what it builds.

A scenario (``apiVersion: placer/v1``, ``kind: Scenario``) names the workload, the on-prem pool,
the cloud model, the inventory and policies, the ground truth for the residency checker, the
strategies and the waiting budgets to sweep. :func:`load_scenario` validates it (every problem
names file, line and field, as the other loaders do); :func:`build` turns it into the objects
:func:`placer.sim.simulate` takes. The model holds paths as written (relative to the scenario
file) so that it can be shipped to another process, e.g. a Ray worker, with the scenario's
directory and rebuilt there: built objects (a cloud model, traces) are never pickled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from placer.catalog import default_catalog, default_inventory, load_inventory, resolve_inventory
from placer.errors import ConfigError, ErrorDetail
from placer.models import GpuPool, Inventory, ResolvedSite
from placer.models._base import LocationKey, Model, SizeGB
from placer.policy import load_policies
from placer.sim.cloud import CloudModel, catalog_cloud, uniform_cloud
from placer.sim.engine import STORAGE_USD_PER_GB_MONTH, OnPremConfig, SimResult, simulate
from placer.sim.jobs import SimDataset, SimJob, Workload
from placer.sim.registry import ALL, base_name, strategy_names
from placer.sim.residency import Eligibility
from placer.sim.strategy import Strategy
from placer.sim.workload import (
    parse_trace_spec,
    pipelines,
    window,
    with_deadlines,
    with_estimate_noise,
    with_residency,
)
from placer.yamlio import Loc, SourceMap, format_loc, read_yaml, strip_header, validate

__all__ = [
    "CloudSpec",
    "DatasetSpec",
    "DeadlineSpec",
    "OnPremSpec",
    "PipelineSpec",
    "Prepared",
    "ResidencySpec",
    "Scenario",
    "SweepSpec",
    "WindowSpec",
    "WorkloadSpec",
    "build",
    "load_scenario",
    "read_scenario",
]

KIND = "Scenario"
_TRACE_KINDS = ("itp", "csv", "synthetic", "pipelines")

Share = Annotated[float, Field(ge=0, le=1)]


class DatasetSpec(Model):
    """A dataset some jobs read: where it lives and the tags policies match on."""

    name: str = Field(min_length=1, description="unique name within the scenario")
    location: LocationKey = Field(description="where its bytes live, e.g. onprem:fra-dc1")
    size: SizeGB = Field(default=0.0, description="e.g. 500GB; read (and paid for) per job")
    tags: dict[str, str] = Field(
        default_factory=dict, description="e.g. {residency: EU}; policies match on these"
    )

    def sim(self) -> SimDataset:
        return SimDataset(self.name, self.location, self.size, dict(self.tags))


class ResidencySpec(Model):
    """Which share of the work reads residency-restricted data (``with_residency``)."""

    share: Share = Field(description="share of units (pipelines or independent jobs), 0..1")
    restricted: tuple[DatasetSpec, ...] = Field(
        default=(), description="datasets restricted units read, e.g. tagged residency: EU"
    )
    unrestricted: tuple[DatasetSpec, ...] = Field(
        default=(), description="datasets the other units read, e.g. tagged residency: none"
    )


class DeadlineSpec(Model):
    """Deadlines as a multiple of each unit's critical path (``with_deadlines``)."""

    slack: float = Field(gt=0, description="deadline = arrival + slack x critical path")
    share: Share = Field(default=1.0, description="share of units that get a deadline")
    spread: float = Field(default=0.0, ge=0, description="slack drawn from U[slack, slack+spread]")


class PipelineSpec(Model):
    """DAG pipelines (``placer.sim.workload.pipelines``); datasets come from ``residency``."""

    count: int = Field(ge=1, description="number of pipelines")
    rate_per_h: float = Field(gt=0, description="pipeline submissions per hour")
    shape: Literal["chain", "sweep", "mixed"] = Field(default="mixed", description="DAG shape")
    sweep_width: int = Field(default=4, ge=1, description="trials per sweep")
    sweep_share: Share = Field(default=0.5, description="share of sweeps when shape is mixed")
    arrivals: Literal["poisson", "gamma"] = Field(default="poisson", description="arrivals")
    cv: float = Field(default=1.0, gt=0, description="inter-arrival coefficient of variation")
    gpu_mix: dict[int, float] | None = Field(
        default=None, description="GPUs -> share for training jobs; default Starburst's Philly mix"
    )
    seed: int | None = Field(default=None, description="default: the scenario's seed")


class WindowSpec(Model):
    """Keep the units that arrive in ``[start_h, start_h + hours)`` (``window``)."""

    start_h: float = Field(default=0.0, ge=0, description="window start, hours into the trace")
    hours: float = Field(gt=0, description="window length, hours")


class WorkloadSpec(Model):
    """The jobs: a trace and/or pipelines (merged by arrival), then the transformations."""

    trace: str | None = Field(
        default=None,
        description="a --trace spec: itp:cluster04, csv:PATH (relative to the scenario file), "
        "synthetic:rate=32,hours=3 or pipelines:count=200,rate=4",
    )
    limit: int | None = Field(
        default=None, ge=1, description="keep only the trace's first N jobs by submission time"
    )
    window: WindowSpec | None = Field(default=None, description="cut the trace to a time window")
    pipelines: PipelineSpec | None = Field(
        default=None, description="DAG pipelines, alone or mixed into the trace"
    )
    residency: ResidencySpec | None = Field(
        default=None, description="which units read restricted data; none: no datasets"
    )
    deadlines: DeadlineSpec | None = Field(
        default=None, description="deadlines; none: no job has one"
    )
    estimate_error: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="run-time estimates off by a factor U[1-e, 1+e]; 0: exact estimates",
    )

    @field_validator("trace")
    @classmethod
    def _trace_kind(cls, v: str | None) -> str | None:
        if v is not None and v.partition(":")[0].strip().lower() not in _TRACE_KINDS:
            raise ValueError(
                f"unknown trace {v!r}; expected itp:CLUSTER, csv:PATH, synthetic:KEY=VALUE,... "
                "or pipelines:KEY=VALUE,..."
            )
        return v

    @model_validator(mode="after")
    def _something(self) -> WorkloadSpec:
        if self.trace is None and self.pipelines is None:
            raise ValueError("a workload needs a trace, pipelines, or both")
        return self


class OnPremSpec(Model):
    """The on-prem pool: ``nodes`` x ``gpus_per_node`` GPUs at the inventory's on-prem site."""

    site: str | None = Field(
        default=None, description="the on-prem site of the inventory; default: its first one"
    )
    nodes: int = Field(ge=1, description="nodes in the pool (replaces the site's pools)")
    gpus_per_node: int = Field(default=8, ge=1, description="GPUs per node")


class CloudSpec(Model):
    """The cloud: Starburst's one price (``uniform``) or the catalog's regions (``catalog``)."""

    model: Literal["uniform", "catalog"] = Field(
        default="uniform", description="uniform: one site, one price; catalog: inventory sites"
    )
    usd_per_gpu_h: float = Field(default=1.0, ge=0, description="uniform: USD per GPU-hour")
    gpu: str | None = Field(
        default=None, description="catalog: the reference GPU type the trace's run times are on"
    )
    spot_traces: Literal["auto"] | dict[str, str] = Field(
        default="auto",
        description="catalog: site -> spot trace name, or auto (see placer.sim.cloud)",
    )
    spot_offset_h: float = Field(default=0.0, description="catalog: shift of every spot trace")
    provisioning: Literal["default", "zero"] = Field(
        default="default", description="catalog: the catalog's start-up delays, or none"
    )
    quotas: dict[str, int] = Field(
        default_factory=dict, description="catalog: site -> most GPUs billed there at once"
    )

    @model_validator(mode="after")
    def _consistent(self) -> CloudSpec:
        if self.model == "catalog" and not self.gpu:
            raise ConfigError(
                ErrorDetail(
                    "the catalog model needs a reference GPU type, e.g. V100",
                    field="gpu",
                    loc=("gpu",),
                )
            )
        if self.model == "uniform":
            for key, value in (("gpu", self.gpu), ("quotas", self.quotas)):
                if value:
                    raise ConfigError(ErrorDetail("only for model: catalog", field=key, loc=(key,)))
        return self


class SweepSpec(Model):
    """Waiting budgets; a strategy that does not wait runs once whatever they are."""

    wait: tuple[Annotated[float, Field(ge=0)], ...] = Field(
        default=(0.25,), min_length=1, description="budgets, e.g. [0, 0.25, 0.5, 1]"
    )


class Scenario(Model):
    """A benchmark scenario; see the module docstring. Paths are relative to its file."""

    name: str = Field(min_length=1, description="short name, used in tables and file names")
    description: str = Field(default="", description="what the scenario models, and why")
    workload: WorkloadSpec = Field(description="the jobs")
    onprem: OnPremSpec = Field(description="the on-prem pool")
    cloud: CloudSpec = Field(default_factory=CloudSpec, description="the cloud model")
    inventory: str | None = Field(
        default=None, description="inventory YAML, relative to this file; default: embedded"
    )
    policies: tuple[str, ...] = Field(
        default=(), description="policy files or folders, relative to this file"
    )
    truth: dict[str, tuple[str, ...]] | None = Field(
        default=None,
        description="residency value -> jurisdictions where such data may be processed, e.g. "
        "{EU: [EEA]}: the ground truth of the independent checker; none: not checked",
    )
    strategies: tuple[str, ...] = Field(
        default=ALL, min_length=1, description='strategy names, or "all"'
    )
    sweep: SweepSpec = Field(default_factory=SweepSpec, description="waiting budgets")
    seed: int = Field(default=0, description="seeds every random draw; same seed, same numbers")
    restart_overhead_h: float = Field(
        default=0.2, ge=0, description="work a spot job redoes after a preemption, hours"
    )
    cache_inputs: bool = Field(
        default=False,
        description="keep a copy of a dataset where it was first read, so later jobs there read "
        "it for free; off: every job reads its datasets from where they live",
    )
    storage_usd_per_gb_month: float = Field(
        default=STORAGE_USD_PER_GB_MONTH,
        ge=0,
        description="price of keeping a copy of a dataset (a strategy's or the cache's)",
    )

    @field_validator("strategies", mode="before")
    @classmethod
    def _all(cls, v: Any) -> Any:
        return ALL if v == "all" or v == ["all"] else v

    @field_validator("strategies")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        valid = strategy_names()
        bad = [s for s in v if s not in valid]
        if bad:
            raise ValueError(f"unknown strategy {bad[0]!r}; valid: {', '.join(valid)}, or all")
        if len(set(v)) != len(v):
            raise ValueError("a strategy is listed twice")
        return v

    @model_validator(mode="after")
    def _policies_need_catalog(self) -> Scenario:
        if self.policies and self.cloud.model != "catalog":
            raise ConfigError(
                ErrorDetail(
                    "policies need cloud.model: catalog (the uniform cloud has no location "
                    "a policy could match)",
                    field="policies",
                    loc=("policies",),
                )
            )
        return self

    @property
    def budgets(self) -> tuple[float, ...]:
        return self.sweep.wait

    def runs(self) -> list[tuple[str, float | None]]:
        """(strategy, budget) pairs in order; ``None``: a strategy that does not wait."""
        from placer.sim.registry import WAITING

        out: list[tuple[str, float | None]] = []
        for s in self.strategies:
            if base_name(s) in WAITING:
                out.extend((s, b) for b in self.budgets)
            else:
                out.append((s, None))
        return out

    @classmethod
    def from_cli(
        cls,
        *,
        trace: str,
        onprem_gpus: int,
        gpus_per_node: int = 8,
        strategies: Sequence[str] | str = "all",
        sweep: Sequence[float] | None = None,
        seed: int = 0,
        cloud: Literal["uniform", "catalog"] = "uniform",
        gpu: str = "V100",
        usd_per_gpu_h: float = 1.0,
        name: str | None = None,
    ) -> Scenario:
        """The flag-only form: ``placer bench hybrid --trace ... --onprem-gpus ...``.

        Raises:
            ConfigError: naming the flag, e.g. an on-prem size that is not whole nodes.
        """
        if onprem_gpus < 1 or onprem_gpus % gpus_per_node:
            raise ConfigError(
                ErrorDetail(
                    f"must be a positive multiple of {gpus_per_node} GPUs per node, got "
                    f"{onprem_gpus}",
                    field="--onprem-gpus",
                )
            )
        data: dict[str, Any] = {
            "name": name or trace.replace(":", "-").replace("/", "-").split(",")[0],
            "workload": {"trace": trace},
            "onprem": {"nodes": onprem_gpus // gpus_per_node, "gpus_per_node": gpus_per_node},
            "cloud": (
                {"model": "uniform", "usd_per_gpu_h": usd_per_gpu_h}
                if cloud == "uniform"
                else {"model": "catalog", "gpu": gpu}
            ),
            "strategies": strategies if isinstance(strategies, str) else list(strategies),
            "seed": seed,
        }
        if sweep is not None:
            data["sweep"] = {"wait": list(sweep)}
        return validate(cls, data, SourceMap("<command line>"))


# -- loading ---------------------------------------------------------------------------------


def read_scenario(path: str | Path) -> tuple[Scenario, SourceMap]:
    """Read and validate a scenario file; the source map lets :func:`build` name lines too.

    Raises:
        ConfigError: every problem, each with file, line and field.
    """
    data, sm = read_yaml(path)
    body = strip_header(data, sm, KIND)
    return validate(Scenario, body, sm), sm


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (see :func:`read_scenario`)."""
    return read_scenario(path)[0]


# -- building --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """What one scenario builds: the arguments of :func:`placer.sim.simulate` and the checker."""

    scenario: Scenario
    workload: Workload
    onprem: OnPremConfig
    cloud: CloudModel
    eligibility: Eligibility
    sites: tuple[ResolvedSite, ...]
    """The simulated sites: the on-prem site (with the scenario's pool) and the cloud sites."""
    truth: Mapping[str, frozenset[str]] | None
    jurisdictions: Mapping[str, frozenset[str]]
    """Location key -> jurisdictions, for every simulated site."""

    def simulate(
        self, strategy: Strategy, *, progress: Callable[[int], None] | None = None
    ) -> SimResult:
        """One run of ``strategy`` with every model setting of the scenario (seed, restart
        overhead, cache, storage price): the one place that maps a scenario onto a run."""
        s = self.scenario
        return simulate(
            self.workload,
            strategy,
            onprem=self.onprem,
            cloud=self.cloud,
            eligibility=self.eligibility,
            seed=s.seed,
            restart_overhead_h=s.restart_overhead_h,
            cache_inputs=s.cache_inputs,
            storage_usd_per_gb_month=s.storage_usd_per_gb_month,
            progress=progress,
        )


class _Where:
    """Turns a scenario path into an ErrorDetail, with file and line when a source map is known."""

    def __init__(self, source: SourceMap | None) -> None:
        self.source = source

    def __call__(self, loc: Loc, msg: str) -> ErrorDetail:
        sm = self.source
        if sm is None:
            return ErrorDetail(msg, field=format_loc(loc), loc=loc)
        return ErrorDetail(msg, sm.file, sm.line(loc), format_loc(loc), loc)

    def wrap(self, loc: Loc, exc: ConfigError) -> ConfigError:
        """Re-anchor a loader's errors that name no file at ``loc`` of the scenario."""
        out = []
        for d in exc.details:
            if d.file is not None:
                out.append(d)
                continue
            sub: Loc = (*loc, *d.loc) if d.loc else loc
            msg = d.msg if not d.field or d.loc else f"{d.field}: {d.msg}"
            out.append(self(sub, msg))
        return type(exc)(out)


def _resolve_path(base: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else base / q


def _merge(a: Workload, b: Workload) -> Workload:
    """Both workloads' units in arrival order (``a`` first on ties), renumbered densely."""
    units: list[tuple[float, int, int, list[SimJob], Workload]] = []
    for rank, w in enumerate((a, b)):
        seen: dict[int, list[SimJob]] = {}
        for j in w.jobs:
            if j.pipeline < 0:
                units.append((j.arrival_h, rank, j.id, [j], w))
            elif j.pipeline in seen:
                seen[j.pipeline].append(j)
            else:
                seen[j.pipeline] = [j]
                units.append((j.arrival_h, rank, j.id, seen[j.pipeline], w))
    units.sort(key=lambda u: u[:3])
    jobs: list[SimJob] = []
    pipes = 0
    for *_, members, _ in units:
        ids = {m.id: len(jobs) + k for k, m in enumerate(members)}
        p = -1
        if members[0].pipeline >= 0:
            p, pipes = pipes, pipes + 1
        for m in members:
            deps = tuple(ids[d] for d in m.deps)
            jobs.append(replace(m, id=ids[m.id], deps=deps, pipeline=p))
    datasets = {**a.datasets, **b.datasets}
    return Workload(f"{a.name}+{b.name}", tuple(jobs), datasets, f"{a.source}; {b.source}")


def _workload(s: Scenario, base: Path, where: _Where) -> Workload:
    spec = s.workload
    parts: list[Workload] = []
    if spec.trace is not None:
        trace = spec.trace
        kind, _, rest = trace.partition(":")
        if kind.strip().lower() == "csv" and rest.strip():
            trace = f"csv:{_resolve_path(base, rest.strip())}"
        try:
            w = parse_trace_spec(trace)
        except ConfigError as exc:
            raise where.wrap(("workload", "trace"), exc) from None
        if spec.limit is not None:
            if any(j.pipeline >= 0 for j in w.jobs[: spec.limit]):
                raise ConfigError(
                    where(("workload", "limit"), "limit cuts traces of independent jobs only")
                )
            w = Workload(
                w.name, w.jobs[: spec.limit], w.datasets, f"{w.source}; first {spec.limit} jobs"
            )
        if spec.window is not None:
            w = window(w, spec.window.start_h, spec.window.hours)
        parts.append(w)
    res = spec.residency
    restricted = [d.sim() for d in res.restricted] if res else []
    unrestricted = [d.sim() for d in res.unrestricted] if res else []
    if spec.pipelines is not None:
        p = spec.pipelines
        kw: dict[str, Any] = {"gpu_mix": p.gpu_mix} if p.gpu_mix is not None else {}
        if res is not None:
            kw["datasets"] = (unrestricted + restricted)[:1]
        try:
            parts.append(
                pipelines(
                    count=p.count,
                    rate_per_h=p.rate_per_h,
                    shape=p.shape,
                    sweep_width=p.sweep_width,
                    sweep_share=p.sweep_share,
                    arrivals=p.arrivals,
                    cv=p.cv,
                    seed=s.seed if p.seed is None else p.seed,
                    **kw,
                )
            )
        except ConfigError as exc:
            raise where.wrap(("workload", "pipelines"), exc) from None
    w = parts[0] if len(parts) == 1 else _merge(parts[0], parts[1])
    if not w.jobs:
        raise ConfigError(where(("workload",), "the workload has no jobs (check limit/window)"))
    try:
        if res is not None:
            w = with_residency(
                w, share=res.share, restricted=restricted, unrestricted=unrestricted, seed=s.seed
            )
    except ConfigError as exc:
        raise where.wrap(("workload", "residency"), exc) from None
    try:
        if spec.deadlines is not None:
            d = spec.deadlines
            w = with_deadlines(w, slack=d.slack, share=d.share, spread=d.spread, seed=s.seed)
    except ConfigError as exc:
        raise where.wrap(("workload", "deadlines"), exc) from None
    if spec.estimate_error > 0:
        w = with_estimate_noise(w, error=spec.estimate_error, seed=s.seed)
    return w


def _inventory(s: Scenario, base: Path, where: _Where) -> Inventory:
    if s.inventory is None:
        return default_inventory()
    return load_inventory(_resolve_path(base, s.inventory))


def _onprem_site(s: Scenario, inv: Inventory, where: _Where) -> tuple[Inventory, str]:
    """The inventory with the chosen on-prem site's pools replaced by the scenario's pool, and
    the other on-prem sites dropped (one pool is simulated)."""
    onprem = [x for x in inv.sites if x.kind == "onprem"]
    name = s.onprem.site or (onprem[0].name if onprem else None)
    site = next((x for x in onprem if x.name == name), None)
    if site is None:
        have = ", ".join(x.name for x in onprem) or "none"
        raise ConfigError(
            where(
                ("onprem", "site"),
                f"no on-prem site {name!r} in the inventory (on-prem sites: {have})",
            )
        )
    gpu = s.cloud.gpu or (site.pools[0].gpu if site.pools else "any")
    cost = site.pools[0].cost_per_gpu_hour if site.pools else 0.0
    pool = GpuPool(gpu=gpu, count=s.onprem.nodes * s.onprem.gpus_per_node, cost_per_gpu_hour=cost)
    sites = tuple(
        x.model_copy(update={"pools": (pool,)}) if x is site else x
        for x in inv.sites
        if x.kind == "cloud" or x is site
    )
    return inv.model_copy(update={"sites": sites}), site.name


def build(
    scenario: Scenario, base_dir: str | Path | None = None, *, source: SourceMap | None = None
) -> Prepared:
    """Build the workload, on-prem pool, cloud model, eligibility and checker inputs.

    Args:
        scenario: a validated scenario.
        base_dir: the directory its relative paths are relative to (the scenario file's);
            default the current directory.
        source: the scenario file's source map (from :func:`read_scenario`), so that problems
            found here name the line too.

    Raises:
        ConfigError: (or a subclass: InventoryError, PolicyError) naming the field, and the
            file and line when ``source`` is given.
        SimulationError: a job the policies would hold (a dataset without a required tag).
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    where = _Where(source)
    s = scenario
    inv, onprem_name = _onprem_site(s, _inventory(s, base, where), where)
    resolved = tuple(resolve_inventory(inv, default_catalog()))
    onprem_site = next(x for x in resolved if x.name == onprem_name)
    onprem = OnPremConfig(
        site=onprem_name,
        location=onprem_site.location.key,
        nodes=s.onprem.nodes,
        gpus_per_node=s.onprem.gpus_per_node,
    )
    workload = _workload(s, base, where)
    known = {x.location.key for x in resolved}
    catalog = default_catalog()
    problems = [
        where(
            ("workload", "residency", group, i, "location"),
            f"{d.location!r} is neither a site of the inventory "
            f"({', '.join(sorted(known))}) nor a catalog region",
        )
        for group in ("restricted", "unrestricted")
        for i, d in enumerate(getattr(s.workload.residency, group, ()) or ())
        if s.cloud.model == "catalog"
        and d.location not in known
        and (d.location.startswith("onprem:") or d.location not in catalog)
    ]
    if problems:
        raise ConfigError(problems)
    jurisdictions = {x.location.key: x.location.jurisdictions for x in resolved}
    if s.cloud.model == "uniform":
        cloud = uniform_cloud(s.cloud.usd_per_gpu_h)
        jurisdictions.update({cloud.location(c): frozenset() for c in cloud.sites})
        eligibility = Eligibility.unrestricted(workload, onprem_name, tuple(cloud.sites))
    else:
        c = s.cloud
        try:
            cloud = catalog_cloud(
                resolved,
                gpu=c.gpu or "",
                inventory=inv,
                spot_traces=c.spot_traces,
                spot_offset_h=c.spot_offset_h,
                provisioning=c.provisioning,
                quotas=c.quotas,
            )
        except ConfigError as exc:
            raise where.wrap(("cloud",), exc) from None
        if s.policies:
            policies = load_policies(*(_resolve_path(base, p) for p in s.policies))
            eligibility = Eligibility.from_policies(workload, resolved, onprem_name, policies)
        else:
            eligibility = Eligibility.unrestricted(workload, onprem_name, tuple(cloud.sites))
    truth = None if s.truth is None else {k: frozenset(v) for k, v in s.truth.items()}
    return Prepared(
        scenario=s,
        workload=workload,
        onprem=onprem,
        cloud=cloud,
        eligibility=eligibility,
        sites=resolved,
        truth=truth,
        jurisdictions=jurisdictions,
    )
