"""placer: residency-aware placement of ML job DAGs on on-prem GPU pools and cloud regions.

    >>> import placer
    >>> pipe = placer.load_pipeline("examples/quickstart/pipeline.yaml")   # doctest: +SKIP
    >>> plan = placer.plan(pipe, policies=placer.load_policies("policies/"), deadline="12h")
    ...                                                                    # doctest: +SKIP
    >>> print(plan.explain())                                              # doctest: +SKIP

Importing placer imports no cloud SDK; backends load theirs lazily when asked for.
"""

from placer.catalog import Catalog, default_catalog, default_inventory, load_inventory
from placer.errors import (
    BackendError,
    BackendUnavailableError,
    CatalogError,
    ConfigError,
    ExecutionError,
    InventoryError,
    JournalError,
    PipelineError,
    PlacerError,
    PolicyError,
    ResidencyError,
    RunLockedError,
    RunNotFoundError,
    SimulationError,
    SiteUnreachableError,
    SolverError,
)
from placer.executor import Run, RunStatus, resume, submit
from placer.explain import explain_plan
from placer.journal import Journal
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
from placer.scheduler import plan, plan_frontier

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "Catalog",
    "CatalogError",
    "ConfigError",
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
    "Offer",
    "Pipeline",
    "PipelineError",
    "PlacerError",
    "Plan",
    "PolicyError",
    "PolicySet",
    "ResidencyError",
    "Resources",
    "Run",
    "RunLockedError",
    "RunNotFoundError",
    "RunStatus",
    "SimulationError",
    "Site",
    "SiteUnreachableError",
    "SolverError",
    "default_catalog",
    "default_inventory",
    "explain_plan",
    "load_inventory",
    "load_pipeline",
    "load_policies",
    "plan",
    "plan_frontier",
    "resume",
    "submit",
]
