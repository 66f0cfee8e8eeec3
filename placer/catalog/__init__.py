"""The embedded catalog (regions → jurisdictions, GPU offers, egress, provisioning) and inventories.

The catalog is what placer knows without being told: read from CSV files shipped in
``placer/catalog/data`` (sources in ``SOURCES.md`` there; rules in ``docs/catalog.md``). An
inventory names the sites a user may run on; :func:`resolve_inventory` fills in what it leaves
out from the catalog, and :func:`link_for` lets its ``network:`` entries override egress prices
and bandwidth. :func:`spot_stats` gives a region's measured spot preemptions and waits
(``spot_stats.csv``, derived from the simulator's traces by ``python -m placer.sim.spot_stats``).
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
    egress_schedule_for,
    inventory_from_data,
    link_for,
    load_inventory,
    normalise_endpoint,
    resolve_inventory,
    specificity,
    storage_problems,
)
from placer.catalog._spot import (
    DEFAULT_SPOT_KEY,
    SPOT_STATS_FILE,
    SpotStats,
    format_spot_stats,
    parse_spot_stats,
    read_spot_stats_text,
    spot_stats,
    spot_stats_table,
)

__all__ = [
    "DEFAULT_GBPS",
    "DEFAULT_SPOT_KEY",
    "GPU_ONLY_NOTE",
    "SPOT_STATS_FILE",
    "Catalog",
    "EgressRates",
    "ProvisioningDefaults",
    "SpotStats",
    "catalog_rows",
    "default_catalog",
    "default_inventory",
    "egress_schedule_for",
    "format_spot_stats",
    "gpu_matches",
    "inventory_from_data",
    "is_gpu_only",
    "link_for",
    "load_inventory",
    "normalise_endpoint",
    "parse_spot_stats",
    "read_spot_stats_text",
    "resolve_inventory",
    "specificity",
    "spot_stats",
    "spot_stats_table",
    "storage_problems",
]
