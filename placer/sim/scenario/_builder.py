"""Building a scenario: the workload, the on-prem pool, the cloud model, the eligibility and
what the residency checker needs, from a validated :class:`Scenario`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from placer.catalog import default_catalog, default_inventory, load_inventory, resolve_inventory
from placer.errors import ConfigError, ErrorDetail
from placer.models import GpuPool, Inventory, ResolvedSite
from placer.online import Strategy
from placer.policy import load_policies
from placer.sim.cloud import CloudModel, catalog_cloud, uniform_cloud
from placer.sim.engine import OnPremConfig, SimResult, simulate
from placer.sim.jobs import Workload
from placer.sim.residency import Eligibility
from placer.sim.scenario._schema import Scenario
from placer.sim.workload import (
    merge,
    parse_trace_spec,
    pipelines,
    window,
    with_deadlines,
    with_estimate_noise,
    with_residency,
)
from placer.yamlio import Loc, SourceMap, format_loc


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
    w = parts[0] if len(parts) == 1 else merge(parts[0], parts[1])
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
        w = with_estimate_noise(
            w, error=spec.estimate_error, seed=s.seed, noise=spec.estimate_noise
        )
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
