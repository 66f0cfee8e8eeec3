"""The embedded catalog (regions → jurisdictions, GPU offers, egress, provisioning) and inventories.

The catalog is what placer knows without being told: read from CSV files shipped in
``placer/catalog/data`` (sources in ``SOURCES.md`` there; rules in ``docs/catalog.md``). An
inventory names the sites a user may run on; :func:`resolve_inventory` fills in what it leaves
out from the catalog, and :func:`link_for` lets its ``network:`` entries override egress prices
and bandwidth.
"""

from placer.catalog._catalog import (
    DEFAULT_GBPS,
    GPU_ONLY_NOTE,
    Catalog,
    EgressRates,
    ProvisioningDefaults,
    catalog_rows,
    default_catalog,
    gpu_matches,
    is_gpu_only,
)
from placer.catalog._inventory import (
    default_inventory,
    inventory_from_data,
    link_for,
    load_inventory,
    normalise_endpoint,
    resolve_inventory,
    specificity,
    storage_problems,
)

__all__ = [
    "DEFAULT_GBPS",
    "GPU_ONLY_NOTE",
    "Catalog",
    "EgressRates",
    "ProvisioningDefaults",
    "catalog_rows",
    "default_catalog",
    "default_inventory",
    "gpu_matches",
    "inventory_from_data",
    "is_gpu_only",
    "link_for",
    "load_inventory",
    "normalise_endpoint",
    "resolve_inventory",
    "specificity",
    "storage_problems",
]
