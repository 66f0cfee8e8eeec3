"""The scenario file's schema: pydantic models, every field described (``placer schema``
style), validated with file, line and field by :mod:`placer.yamlio`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from placer.errors import ConfigError, ErrorDetail
from placer.models import LocationKey, Model, SizeGB
from placer.sim.engine import STORAGE_USD_PER_GB_MONTH
from placer.sim.jobs import SimDataset
from placer.sim.registry import ALL, WAITING, base_name, strategy_names
from placer.yamlio import SourceMap, validate

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
    rate_per_h: float = Field(gt=0, le=1e6, allow_inf_nan=False,
                              description="pipeline submissions per hour")
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
        le=100,
        allow_inf_nan=False,
        description="run-time estimates off by a factor U[1-e, 1+e] (e < 1), or "
        "exp(N(0, ln(1+e))) with estimate_noise: lognormal; 0: exact estimates",
    )
    estimate_noise: Literal["uniform", "lognormal"] = Field(
        default="uniform",
        description="the distribution of estimate_error; every strategy sees the same "
        "estimates, drawn once per workload from the scenario's seed",
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
        if self.estimate_noise == "uniform" and self.estimate_error >= 1:
            raise ValueError(
                f"estimate_error: uniform noise needs an error below 1 (estimates stay "
                f"positive), got {self.estimate_error:g}; use estimate_noise: lognormal for "
                "larger errors"
            )
        return self


NOISE_SWEEP: Mapping[str, tuple[float, Literal["uniform", "lognormal"]]] = MappingProxyType(
    {
        "none": (0.0, "uniform"),
        "uniform-20": (0.2, "uniform"),
        "uniform-50": (0.5, "uniform"),
        "lognormal-ln2": (1.0, "lognormal"),
    }
)
"""The standard estimate-noise sweep (issue 13): exact estimates, a factor U[0.8, 1.2],
U[0.5, 1.5], and a lognormal factor with sigma ln 2 (``error`` 1: half or double as likely as
not), as ``label -> (estimate_error, estimate_noise)``. Every strategy of a run sees the same
noisy estimates (they are part of the workload), drawn from the scenario's seed."""


def with_noise(scenario: Scenario, label: str) -> Scenario:
    """``scenario`` with the estimate noise of :data:`NOISE_SWEEP`'s ``label``.

    Raises:
        ConfigError: an unknown label (the message lists the valid ones).
    """
    if label not in NOISE_SWEEP:
        raise ConfigError(f"unknown noise {label!r}; valid: {', '.join(NOISE_SWEEP)}")
    error, noise = NOISE_SWEEP[label]
    workload = scenario.workload.model_copy(
        update={"estimate_error": error, "estimate_noise": noise}
    )
    return scenario.model_copy(update={"workload": workload})


class OnPremSpec(Model):
    """The on-prem pool: ``nodes`` x ``gpus_per_node`` GPUs at the inventory's on-prem site."""

    site: str | None = Field(
        default=None, description="the on-prem site of the inventory; default: its first one"
    )
    nodes: int = Field(ge=1, le=1_000_000,
                       description="nodes in the pool (replaces the site's pools)")
    gpus_per_node: int = Field(default=8, ge=1, le=1024, description="GPUs per node")


class CloudSpec(Model):
    """The cloud: Starburst's one price (``uniform``) or the catalog's regions (``catalog``)."""

    model: Literal["uniform", "catalog"] = Field(
        default="uniform", description="uniform: one site, one price; catalog: inventory sites"
    )
    usd_per_gpu_h: float = Field(default=1.0, ge=0, le=1e6, allow_inf_nan=False,
                                 description="uniform: USD per GPU-hour")
    gpu: str | None = Field(
        default=None, description="catalog: the reference GPU type the trace's run times are on"
    )
    spot_traces: Literal["auto", "zone", "region"] | dict[str, str] = Field(
        default="auto",
        description="catalog: site -> spot trace name; auto (= zone): each site one zone, the "
        "zone-level trace matched to the job's GPU count; region: the old region-level 1-V100 "
        "traces, only to reproduce numbers from before issue 13 (see placer.sim.cloud)",
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
        default=0.2, ge=0, le=8760, allow_inf_nan=False,
        description="work a spot job redoes after a preemption, hours",
    )
    cache_inputs: bool = Field(
        default=False,
        description="keep a copy of a dataset where it was first read, so later jobs there read "
        "it for free; off: every job reads its datasets from where they live",
    )
    storage_usd_per_gb_month: float = Field(
        default=STORAGE_USD_PER_GB_MONTH,
        ge=0,
        le=1e6,
        allow_inf_nan=False,
        description="price of keeping a copy of a dataset (a strategy's or the cache's)",
    )

    @field_validator("strategies", mode="before",
                     json_schema_input_type=Literal["all"] | tuple[str, ...])
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
