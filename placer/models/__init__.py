"""Pydantic models for everything a user declares and everything placer decides."""

from placer.models.location import EEA_COUNTRIES, EU_COUNTRIES, Location, jurisdictions_of
from placer.models.pipeline import Dataset, Job, Pipeline, Resources
from placer.models.plan import JobPlacement, Plan, SiteVerdict
from placer.models.site import Cluster, GpuPool, Inventory, Link, Offer, ResolvedSite, Site

__all__ = [
    "EEA_COUNTRIES",
    "EU_COUNTRIES",
    "Cluster",
    "Dataset",
    "GpuPool",
    "Inventory",
    "Job",
    "JobPlacement",
    "Link",
    "Location",
    "Offer",
    "Pipeline",
    "Plan",
    "ResolvedSite",
    "Resources",
    "Site",
    "SiteVerdict",
    "jurisdictions_of",
]
