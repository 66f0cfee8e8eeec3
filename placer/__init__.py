"""placer: residency-aware placement of ML job DAGs on on-prem GPU pools and cloud regions.

    >>> import placer
    >>> pipe = placer.load_pipeline("examples/quickstart/pipeline.yaml")   # doctest: +SKIP
    >>> plan = placer.plan(pipe, policies=placer.load_policies("policies/"), deadline="12h")
    ...                                                                    # doctest: +SKIP
    >>> print(plan.explain())                                              # doctest: +SKIP

Pipelines can be written in Python too (``placer.pipeline``, ``@placer.job``) and run in one
call (``placer.submit``): see docs/python-api.md.

Importing placer imports no cloud SDK; backends load theirs lazily when asked for, and the
executor and the Python API load when first named (``placer.submit``, ``placer.Run``, …).
"""

import typing as _typing

from placer.catalog import Catalog, default_catalog, default_inventory, load_inventory
from placer.errors import (
    BackendError,
    BackendUnavailableError,
    CatalogError,
    ConfigError,
    CredentialsError,
    ExecutionError,
    InventoryError,
    JournalError,
    NotPlacedError,
    PipelineError,
    PlacerError,
    PolicyError,
    ResidencyError,
    RunFailedError,
    RunLockedError,
    RunNotFoundError,
    SimulationError,
    SiteUnreachableError,
    SolverError,
)
from placer.loading import load_pipeline
from placer.models import (
    Dataset,
    GpuPool,
    Inventory,
    Job,
    JobPlacement,
    Link,
    Location,
    Offer,
    Pipeline,
    Plan,
    Resources,
    Site,
)
from placer.policy import PolicySet, load_policies

if _typing.TYPE_CHECKING:
    from placer.api import PipelineBuilder, Run, dump_pipeline, job, pipeline, submit
    from placer.executor import RunStatus, resume
    from placer.explain import explain_plan
    from placer.journal import Journal
    from placer.scheduler import plan, plan_frontier

# Loaded when first named: the planner (numpy, the solvers), the journal, the executor (and
# through it the backends' seams) and the Python API, so that `import placer` and `placer
# --help` stay light (under 0.5 s; tests/test_package.py checks what is not loaded).
_LAZY = {
    "PipelineBuilder": "placer.api", "Run": "placer.api", "dump_pipeline": "placer.api",
    "job": "placer.api", "pipeline": "placer.api", "submit": "placer.api",
    "RunStatus": "placer.executor", "resume": "placer.executor",
    "explain_plan": "placer.explain", "Journal": "placer.journal",
    "plan": "placer.scheduler", "plan_frontier": "placer.scheduler",
}


def __getattr__(name: str) -> _typing.Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'placer' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "Catalog",
    "CatalogError",
    "ConfigError",
    "CredentialsError",
    "Dataset",
    "ExecutionError",
    "GpuPool",
    "Inventory",
    "InventoryError",
    "Job",
    "JobPlacement",
    "Journal",
    "JournalError",
    "Link",
    "Location",
    "NotPlacedError",
    "Offer",
    "Pipeline",
    "PipelineBuilder",
    "PipelineError",
    "PlacerError",
    "Plan",
    "PolicyError",
    "PolicySet",
    "ResidencyError",
    "Resources",
    "Run",
    "RunFailedError",
    "RunLockedError",
    "RunNotFoundError",
    "RunStatus",
    "SimulationError",
    "Site",
    "SiteUnreachableError",
    "SolverError",
    "default_catalog",
    "default_inventory",
    "dump_pipeline",
    "explain_plan",
    "job",
    "load_inventory",
    "load_pipeline",
    "load_policies",
    "pipeline",
    "plan",
    "plan_frontier",
    "resume",
    "submit",
]
