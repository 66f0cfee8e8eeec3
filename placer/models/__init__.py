"""Pydantic models for everything a user declares and everything placer decides.

The models' modules are private (``_location``, ``_pipeline``, ``_site``, ``_plan``, and
``_base`` for the shared base model and unit-carrying field types): import from here.
"""

from placer.models._base import (
    LOCATION_RE,
    MAX_CPUS,
    MAX_GPUS,
    NAME_RE,
    PROVIDERS,
    USD,
    Gbps,
    Hours,
    LocationKey,
    Model,
    Name,
    SizeGB,
)
from placer.models._location import (
    EEA_COUNTRIES,
    EU_COUNTRIES,
    ISO_COUNTRIES,
    Location,
    check_country,
    jurisdictions_of,
)
from placer.models._pipeline import Dataset, InputRef, Job, Pipeline, Resources
from placer.models._plan import (
    JobEvidence,
    JobPlacement,
    Objective,
    Plan,
    PlanStatus,
    SiteVerdict,
    register_explainer,
)
from placer.models._site import (
    Cluster,
    GpuPool,
    Inventory,
    Link,
    Offer,
    ResolvedSite,
    Site,
    StoreCredentials,
    storage_rule_problem,
)

__all__ = [
    "EEA_COUNTRIES",
    "EU_COUNTRIES",
    "ISO_COUNTRIES",
    "LOCATION_RE",
    "MAX_CPUS",
    "MAX_GPUS",
    "NAME_RE",
    "PROVIDERS",
    "USD",
    "Cluster",
    "Dataset",
    "Gbps",
    "GpuPool",
    "Hours",
    "InputRef",
    "Inventory",
    "Job",
    "JobEvidence",
    "JobPlacement",
    "Link",
    "Location",
    "LocationKey",
    "Model",
    "Name",
    "Objective",
    "Offer",
    "Pipeline",
    "Plan",
    "PlanStatus",
    "ResolvedSite",
    "Resources",
    "Site",
    "SiteVerdict",
    "SizeGB",
    "StoreCredentials",
    "check_country",
    "jurisdictions_of",
    "register_explainer",
    "storage_rule_problem",
]
