"""The simulated cloud: prices per GPU count, provisioning delay, spot availability, quotas, links.

A :class:`CloudModel` is the cloud side of one simulation. It is built once per scenario by
:func:`uniform_cloud` (Starburst's model) or :func:`catalog_cloud` (the catalog's prices and
the rest), and is then only read: the engine asks it for a :class:`placer.pricing.Quote` once
per launch (~20k times per replay), so quotes are computed once per (site, GPU count, spot) and
memoised. Prices, node shapes, the GPU-matching rule, the host VM of GCP attached GPUs and the
links all come from :mod:`placer.pricing`, the cost model ``placer plan`` uses.

One room per concern, each private: ``_spot`` (spot availability traces: format, polarity,
time, multi-node, the shipped set, the zone-level pick per job size), ``_provisioning`` (the
start-up delay model), ``_model`` (the sites, the quotes and the builders); this module is
their public face.
"""

from placer.sim.cloud._model import CloudModel, CloudSite, catalog_cloud, uniform_cloud
from placer.sim.cloud._provisioning import Provisioning
from placer.sim.cloud._spot import (
    BORROW_REASONS,
    SpotPick,
    SpotSource,
    SpotTrace,
    ZoneSpot,
    home_zones,
    load_spot_trace,
    load_spot_traces,
    parse_spot_trace,
    spot_sources,
)

__all__ = [
    "BORROW_REASONS",
    "CloudModel",
    "CloudSite",
    "Provisioning",
    "SpotPick",
    "SpotSource",
    "SpotTrace",
    "ZoneSpot",
    "catalog_cloud",
    "home_zones",
    "load_spot_trace",
    "load_spot_traces",
    "parse_spot_trace",
    "spot_sources",
    "uniform_cloud",
]
