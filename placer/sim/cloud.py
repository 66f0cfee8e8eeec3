"""The simulated cloud: prices per GPU count, provisioning delay, spot availability, quotas, links.

A :class:`CloudModel` is the cloud side of one simulation. It is built once per scenario by
:func:`uniform_cloud` (Starburst's model) or :func:`catalog_cloud` (the catalog's prices and
the rest), and is then only read: the engine asks it for a :class:`Quote` once per launch
(~20k times per replay), so quotes are computed once per (site, GPU count, spot) and memoised.

**Spot traces.** Spot availability is replayed from the traces of "Can't Be Late" (Wu et al.,
NSDI'24), shipped gzipped under ``placer/sim/data/spot/`` with their upstream relative paths
(github.com/skypilot-org/spot-traces, commit 221da1ab; see ``data/SOURCES.md``). Each file is
``{"metadata": {"gap_seconds": g}, "data": [v0, v1, ...]}``, one value per tick of ``g`` seconds.

*Polarity: a value is the number of spot instances available, so 1 (or >= the nodes needed)
means available.* The upstream README says so, and the evidence agrees:

- the authors' collector (``scripts/availability/availability_trace.py`` in
  Michaelvll/skypilot-spot-strategy) wrote ``fail = int(not launched)`` every 600 s; its raw
  output ``data/real/ping_based/us-west-2a_v100_1.txt`` (commit 7bb5cf71) equals the first 274
  ticks of the published ``availability/1-node/aws-10-26-2022/us-west-2a_v100_1.json`` with
  every value flipped (274 of 274). The published files are the inverted, "available" form;
  that simulator's ``spot_available = not trace[tick]`` belonged to the raw fail flags;
- a 1-GPU instance is available whenever an 8-GPU one is in the same zone and hour far more
  often under this reading (P = 0.95 / 0.87 / 0.94 for V100 us-west-2a / 2b, K80 us-west-2a)
  than under the inverse (0.35 / 0.42 / 0.13); K80 us-west-2b fits neither well;
- every one-node preemption trace starts at 0 (nothing launched at tick 0), and the GCP c3-88
  traces of us-central1-a/b/c are 0 then 1 for 5,475 ticks: launched, never preempted in two
  days. Read the other way they would record no instance at all, in a preemption trace;
- the 16-node counts have 16 as their most common non-zero value (42-46 % of ticks).

Under this reading single V100s (p3.2xlarge) were available 16.7 % (us-east-1a) to 90.5 %
(us-west-2b) of 45 days from 2023-02-15, 64 % on average over nine zones; a gang of 16 was
complete 42-46 % of the time, an 8-V100 instance 47-48 %. The paper's abstract reports results
"from low to high spot availability"; its per-zone figures were not at hand to compare.

Trace names are the relative path without ``.json.gz``, e.g.
``availability/1-node/aws-02-15-2023/us-east-1f_v100_1``. For each AWS region of the
``availability/1-node`` sets there is also a *region* trace, named with the zone letter dropped
(``.../aws-02-15-2023/us-east-1_v100_1``): up when any of the region's zones is up, because a
provisioner that fails over between the zones of a region (SkyPilot does) sees exactly that.

**Time on a trace.** Simulation time ``t`` (hours) maps to trace second
``(t + offset_h) * 3600`` taken modulo the trace's length, so a replay longer than the trace
wraps around cyclically (a 45-day trace repeats); tick ``i`` covers ``[i*g, (i+1)*g)``.

**Multi-node.** A trace with counts (``N-node`` sets) is up for a job of ``n`` nodes when the
count is >= ``n``. A 0/1 trace says whether the capacity pool had room at all, and is used as
is for any node count: co-interruptions of one instance type in one zone fall within three
minutes in over 92 % of 2,635 events (Kim et al., "Spot-and-Scoot", arXiv:2604.16457).

**Provisioning delay** is lognormal per (site, spot), fitted to a p50 and a p90. The p50 is
the resolved site's figure (catalog default: node ready 180 s on-demand / 240 s spot, plus 45 s
for the Ray worker to join; ``provisioning_latency.csv``, SUGGESTED DEFAULT rows, labelled as
assumptions there). The p90 is the p50 times the ratio of the same rows' p90s: node p90 600 s /
900 s, plus 90 s for the join (the top of its stated 20-90 s range, our assumption). Adding
quantiles treats node boot and join as comonotone (a slow start is slow throughout), so the
whole delay is one lognormal with p50 225 s / p90 690 s on-demand and 285 s / 990 s on spot.
"""

from __future__ import annotations

import difflib
import gzip
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from placer.catalog import Catalog, default_catalog, is_gpu_only, link_for
from placer.errors import CatalogError, ConfigError, ErrorDetail
from placer.models.location import Location
from placer.models.site import Inventory, Link, Offer, ResolvedSite

__all__ = [
    "DEFAULT_HOST_SPOT_USD_PER_GPU_H",
    "DEFAULT_HOST_USD_PER_GPU_H",
    "CloudModel",
    "Provisioning",
    "Quote",
    "SpotTrace",
    "catalog_cloud",
    "gpu_matches",
    "load_spot_trace",
    "load_spot_traces",
    "uniform_cloud",
]

# -- spot traces ---------------------------------------------------------------------------------

_EDGE_S: Final = 1e-6
"""A time this close below a tick boundary counts as the next tick, so that asking again at a
time :meth:`SpotTrace.next_down` returned lands on the tick that is down, not before it."""


@dataclass(frozen=True, slots=True, eq=False)
class SpotTrace:
    """Spot availability per tick of ``gap_s`` seconds, replayed cyclically.

    ``up[i]`` says whether tick ``i`` had capacity for the job; ``counts`` (instances
    available per tick) is kept for traces that have them so that :meth:`for_nodes` can ask
    for more than one. ``offset_h`` shifts where simulation time 0 falls on the trace.
    Arrays are read-only copies. Compared by identity (they hold arrays).
    """

    name: str
    gap_s: float
    up: NDArray[np.bool_]
    offset_h: float = 0.0
    counts: NDArray[np.int64] | None = None
    _to_change: NDArray[np.int64] = field(init=False, repr=False)
    """Ticks from the start of tick i to the start of the next tick with the other value
    (cyclic), or -1 when the trace never changes."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gap_s) and self.gap_s > 0):
            raise ConfigError(
                ErrorDetail(
                    f"gap must be a positive number, got {self.gap_s}",
                    file=self.name,
                    field="metadata.gap_seconds",
                )
            )
        if not math.isfinite(self.offset_h):
            raise ConfigError(
                ErrorDetail("offset must be finite", file=self.name, field="offset_h")
            )
        up = np.array(self.up, dtype=np.bool_)
        if up.ndim != 1 or up.size == 0:
            raise ConfigError(
                ErrorDetail("a trace needs at least one tick", file=self.name, field="data")
            )
        up.setflags(write=False)
        set_ = object.__setattr__
        set_(self, "up", up)
        if self.counts is not None:
            counts = np.array(self.counts, dtype=np.int64)
            if counts.shape != up.shape:
                raise ConfigError(
                    ErrorDetail("counts and up differ in length", file=self.name, field="data")
                )
            counts.setflags(write=False)
            set_(self, "counts", counts)
        n = up.size
        changes = np.flatnonzero(up != np.roll(up, 1))  # j where up[j] != up[j-1], cyclic
        if changes.size == 0:
            to_change = np.full(n, -1, dtype=np.int64)
        else:
            idx = np.arange(n)
            pos = np.searchsorted(changes, idx, side="right")
            nxt = np.where(
                pos < changes.size, changes[np.minimum(pos, changes.size - 1)], changes[0] + n
            )
            to_change = (nxt - idx).astype(np.int64)
        to_change.setflags(write=False)
        set_(self, "_to_change", to_change)

    def __len__(self) -> int:
        return int(self.up.size)

    @property
    def period_h(self) -> float:
        """Length of the trace (one cycle), hours."""
        return self.up.size * self.gap_s / 3600.0

    @property
    def fraction_up(self) -> float:
        """Share of ticks that are up."""
        return float(self.up.mean())

    def _locate(self, t_h: float) -> tuple[int, float]:
        """(tick, seconds into that tick) for simulation time ``t_h``."""
        gap = self.gap_s
        n = self.up.size
        pos = ((t_h + self.offset_h) * 3600.0) % (n * gap)
        i = int(pos // gap)
        frac = pos - i * gap
        if i >= n or gap - frac < _EDGE_S:
            i, frac = (i + 1) % n if i < n else 0, 0.0
        return i, frac

    def up_at(self, t_h: float) -> bool:
        """Whether the trace says spot capacity is there at time ``t_h``."""
        return bool(self.up[self._locate(t_h)[0]])

    def _next(self, t_h: float, want: bool) -> float:
        i, frac = self._locate(t_h)
        if bool(self.up[i]) == want:
            return t_h
        k = int(self._to_change[i])
        if k < 0:
            return math.inf
        return t_h + (k * self.gap_s - frac) / 3600.0

    def next_down(self, t_h: float) -> float:
        """First time >= ``t_h`` the trace says unavailable; ``inf`` if it never does."""
        return self._next(t_h, False)

    def next_up(self, t_h: float) -> float:
        """First time >= ``t_h`` the trace says available; ``inf`` if it never does."""
        return self._next(t_h, True)

    def with_offset(self, offset_h: float) -> SpotTrace:
        """The same trace with simulation time 0 at ``offset_h`` hours into it."""
        return replace(self, offset_h=offset_h)

    def for_nodes(self, nodes: int) -> SpotTrace:
        """The trace for a job of ``nodes`` nodes: count >= nodes where there are counts.

        A 0/1 trace is returned unchanged (see the module docstring, *Multi-node*).
        """
        if nodes < 1:
            raise ConfigError(f"nodes must be >= 1, got {nodes}")
        if self.counts is None or nodes == 1:
            return self
        return replace(self, name=f"{self.name}@{nodes}", up=self.counts >= nodes)


_NODES_RE: Final = re.compile(r"(?:^|/)(\d+)-node/")
_ZONE_RE: Final = re.compile(r"^(?P<region>.*\d)-?[a-z]$")
_SPOT_DIR: Final = ("sim", "data", "spot")


def parse_spot_trace(text: str, name: str, *, where: str | None = None) -> SpotTrace:
    """A trace from the JSON text of one file (see the module docstring for the format).

    The node capacity comes from an ``N-node/`` part of ``name``; without one, values must be
    0 or 1. Raises :class:`ConfigError` naming the file and field of the first problem.
    """
    file = where or name
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(ErrorDetail(f"not JSON: {exc.msg}", file=file, line=exc.lineno)) from None
    if not isinstance(raw, dict):
        raise ConfigError(ErrorDetail("expected an object with metadata and data", file=file))
    gap = (
        raw.get("metadata", {}).get("gap_seconds")
        if isinstance(raw.get("metadata"), dict)
        else None
    )
    if isinstance(gap, bool) or not isinstance(gap, int | float) or not gap > 0:
        raise ConfigError(
            ErrorDetail(
                f"must be a positive number, got {gap!r}", file=file, field="metadata.gap_seconds"
            )
        )
    data = raw.get("data")
    if not isinstance(data, list) or not data:
        raise ConfigError(
            ErrorDetail("must be a non-empty list of counts", file=file, field="data")
        )
    m = _NODES_RE.search(name)
    capacity = int(m.group(1)) if m else 1
    ok = all(type(v) is int for v in data)
    counts = np.asarray(data if ok else [0], dtype=np.int64)
    if ok and counts.min() >= 0 and counts.max() <= capacity:
        return SpotTrace(name, float(gap), counts >= 1, counts=counts if capacity > 1 else None)
    for i, v in enumerate(data):  # find the first bad value, to name it
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= capacity:
            raise ConfigError(
                ErrorDetail(
                    f"must be an integer count 0..{capacity}, got {v!r}",
                    file=file,
                    field=f"data[{i}]",
                )
            )
    raise AssertionError("unreachable: some value was out of range")  # pragma: no cover


def load_spot_trace(path: str | Path, name: str | None = None) -> SpotTrace:
    """A trace from a ``.json`` or ``.json.gz`` file of the upstream format."""
    p = Path(path)
    try:
        blob = p.read_bytes()
        text = gzip.decompress(blob).decode() if p.suffix == ".gz" else blob.decode()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(ErrorDetail(f"cannot read spot trace: {exc}", file=str(p))) from None
    return parse_spot_trace(text, name or p.as_posix(), where=str(p))


def _walk(node: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            yield from _walk(child, rel + "/")
        elif child.name.endswith(".json.gz"):
            yield rel.removesuffix(".json.gz"), child


@cache
def _shipped() -> Mapping[str, SpotTrace]:
    root = files("placer")
    for part in _SPOT_DIR:
        root = root.joinpath(part)
    out: dict[str, SpotTrace] = {}
    for name, res in _walk(root, ""):
        where = "placer/" + "/".join(_SPOT_DIR) + f"/{name}.json.gz"
        out[name] = parse_spot_trace(gzip.decompress(res.read_bytes()).decode(), name, where=where)
    if not out:  # pragma: no cover - a broken install
        raise CatalogError("no spot traces found in placer/sim/data/spot")
    out.update(_region_traces(out))
    return MappingProxyType(out)


def _region_traces(traces: Mapping[str, SpotTrace]) -> dict[str, SpotTrace]:
    """``availability/1-node/<set>/<region>_<kind>``: up when any zone of the region is up."""
    groups: dict[str, list[SpotTrace]] = {}
    for name, tr in traces.items():
        if not name.startswith("availability/1-node/aws-"):
            continue
        folder, _, base = name.rpartition("/")
        zone, _, kind = base.partition("_")
        m = _ZONE_RE.match(zone)
        if m:
            groups.setdefault(f"{folder}/{m.group('region')}_{kind}", []).append(tr)
    out: dict[str, SpotTrace] = {}
    for name, members in sorted(groups.items()):
        if len({(len(t), t.gap_s) for t in members}) == 1:
            up = np.logical_or.reduce([t.up for t in members])
            out[name] = SpotTrace(name, members[0].gap_s, up)
    return out


def load_spot_traces() -> dict[str, SpotTrace]:
    """Every shipped trace by name, plus the AWS region traces (read once per process)."""
    return dict(_shipped())


def _spot_trace(name: str) -> SpotTrace:
    traces = _shipped()
    tr = traces.get(name)
    if tr is None:
        near = difflib.get_close_matches(name, list(traces), n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]}?" if near else ""
        raise CatalogError(f"unknown spot trace {name!r}{hint}")
    return tr


# -- provisioning --------------------------------------------------------------------------------

_Z90: Final = 1.2815515655446004
"""The standard normal's 0.9 quantile: a lognormal's p90 / p50 = exp(sigma * _Z90)."""

# provisioning_latency.csv, SUGGESTED DEFAULT rows (p90 of the join: top of 20-90 s, ours).
_ON_DEMAND_NODE_S: Final = (180.0, 600.0)
_SPOT_NODE_S: Final = (240.0, 900.0)
_RAY_JOIN_S: Final = (45.0, 90.0)


def _p90_over_p50(spot: bool) -> float:
    node = _SPOT_NODE_S if spot else _ON_DEMAND_NODE_S
    return (node[1] + _RAY_JOIN_S[1]) / (node[0] + _RAY_JOIN_S[0])


@dataclass(frozen=True, slots=True)
class Provisioning:
    """Hours from a node request to a worker ready to run: lognormal with this p50 and p90.

    ``p50_h == 0`` is the zero model (Starburst's assumption): every sample is 0 and no random
    number is drawn.
    """

    p50_h: float
    p90_h: float
    _mu: float = field(init=False, repr=False)
    _sigma: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not (0.0 <= self.p50_h <= self.p90_h < math.inf):
            raise ConfigError(
                f"provisioning needs 0 <= p50 <= p90 < inf, got "
                f"p50={self.p50_h} h, p90={self.p90_h} h"
            )
        if self.p50_h == 0.0 and self.p90_h != 0.0:
            raise ConfigError("provisioning with p50 = 0 must have p90 = 0 (the zero model)")
        set_ = object.__setattr__
        set_(self, "_mu", math.log(self.p50_h) if self.p50_h > 0 else -math.inf)
        set_(self, "_sigma", math.log(self.p90_h / self.p50_h) / _Z90 if self.p50_h > 0 else 0.0)

    @classmethod
    def zero(cls) -> Provisioning:
        return cls(0.0, 0.0)

    @classmethod
    def from_p50(cls, p50_h: float, spot: bool) -> Provisioning:
        """The default shape (see the module docstring) scaled to a site's p50."""
        return cls(p50_h, p50_h * _p90_over_p50(spot))

    @property
    def mean_h(self) -> float:
        return 0.0 if self.p50_h == 0 else math.exp(self._mu + self._sigma**2 / 2)

    def sample(self, rng: np.random.Generator) -> float:
        if self.p50_h == 0.0:
            return 0.0
        return float(rng.lognormal(self._mu, self._sigma))


# -- quotes and the model ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    """What running ``gpus`` GPUs at a site costs: whole nodes of the cheapest matching offer."""

    site: str
    location: str
    """Location key of the site, e.g. ``aws:us-east-1``."""
    instance: str
    gpu: str
    nodes: int
    gpus_per_node: int
    spot: bool
    usd_per_h: float
    """USD per hour for all ``nodes`` nodes."""
    gpu_h_per_h: int
    """GPUs billed (``nodes * gpus_per_node``): GPU-hours accrued per hour."""


def gpu_matches(reference: str, gpu: str) -> bool:
    """Whether an offer's GPU type counts as the scenario's reference type.

    A bare family name (no ``-``) matches the family and its variants: ``V100`` matches
    ``V100`` and ``V100-32GB``; ``A100`` matches ``A100-40GB``, ``A100-80GB`` and
    ``A100-80GB-PCIe``; ``H100`` matches ``H100-NVL`` too. A name with a variant matches only
    itself. Case-insensitive. Run times are those of the reference type on every variant.
    """
    r, g = reference.lower(), gpu.lower()
    if "-" in r:
        return g == r
    return g == r or g.startswith(r + "-")


DEFAULT_HOST_USD_PER_GPU_H: Final = 0.47
"""Host VM added per GPU of a GCP attached-GPU (``gpu_only``) offer, on-demand, USD/h.

An n1-highmem-8 (8 vCPU, 52 GB; about what AWS gives one V100 in a p3.2xlarge) at about
$0.47/h, the figure ``gpu_prices.csv`` notes for GCP's attached T4 (SkyPilot catalog v7
snapshot, recorded with "~"): approximate, one VM shape for every GPU.
"""
DEFAULT_HOST_SPOT_USD_PER_GPU_H: Final = 0.235
"""The same host on spot: half the on-demand price, the spot / on-demand ratio of GCP's
a2-highgpu-1g host VM in us-central1 (0.36975 / 0.73948, SkyPilot catalog v8 sample in
``shared/data/catalog``). An assumption for n1 hosts."""


@dataclass(frozen=True, slots=True)
class _Priced:
    instance: str
    gpu: str
    gpus_per_node: int
    on_demand: float
    spot: float | None


@dataclass(frozen=True, slots=True)
class _Site:
    name: str
    location: str
    offers: tuple[_Priced, ...]
    provisioning: tuple[Provisioning, Provisioning]  # (on-demand, spot)
    trace: SpotTrace | None
    quota: int | None


class CloudModel:
    """The cloud of one simulation: sites, quotes, provisioning, spot traces, quotas, links.

    Immutable (the memo tables inside are caches of pure functions). Build with
    :func:`uniform_cloud` or :func:`catalog_cloud`.
    """

    __slots__ = (
        "_catalog",
        "_free_links",
        "_link_memo",
        "_locs",
        "_network",
        "_quote_memo",
        "_quotes_memo",
        "_sites",
        "_trace_memo",
        "name",
        "sites",
    )

    name: str
    sites: tuple[str, ...]
    """Site names in the order given (ties in :meth:`quotes` break by name, not by this)."""
    _sites: Mapping[str, _Site]
    _free_links: bool
    _locs: Mapping[str, Location]
    _network: tuple[Link, ...]
    _catalog: Catalog | None
    _quote_memo: dict[tuple[str, int, bool], Quote | None]
    _quotes_memo: dict[tuple[int, bool], tuple[Quote, ...]]
    _link_memo: dict[tuple[str, str], tuple[float, float]]
    _trace_memo: dict[tuple[str, int], SpotTrace]

    def __init__(
        self,
        name: str,
        sites: Sequence[_Site],
        *,
        locations: Mapping[str, Location] | None = None,
        network: Sequence[Link] = (),
        catalog: Catalog | None = None,
    ) -> None:
        by_name: dict[str, _Site] = {}
        for s in sites:
            if s.name in by_name:
                raise ConfigError(f"duplicate cloud site {s.name!r}")
            by_name[s.name] = s
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "sites", tuple(by_name))
        set_(self, "_sites", MappingProxyType(by_name))
        set_(self, "_free_links", locations is None)
        set_(self, "_locs", MappingProxyType(dict(locations or {})))
        set_(self, "_network", tuple(network))
        set_(self, "_catalog", catalog)
        set_(self, "_quote_memo", {})
        set_(self, "_quotes_memo", {})
        set_(self, "_link_memo", {})
        set_(self, "_trace_memo", {})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a CloudModel is immutable")

    def __repr__(self) -> str:
        return f"CloudModel({self.name!r}, sites={list(self.sites)})"

    def _site(self, site: str) -> _Site:
        s = self._sites.get(site)
        if s is None:
            known = ", ".join(self.sites) or "none"
            raise CatalogError(f"unknown cloud site {site!r}; this model has: {known}")
        return s

    def location(self, site: str) -> str:
        """The location key of ``site``."""
        return self._site(site).location

    def quote(self, site: str, gpus: int, spot: bool) -> Quote | None:
        """The cheapest way to run ``gpus`` GPUs at ``site``, or None (no offer, no spot price).

        Nodes are ``ceil(gpus / gpus_per_node)`` of one offer; the cheapest total wins, ties to
        fewer billed GPUs, then to the earlier offer.
        """
        key = (site, gpus, spot)
        memo = self._quote_memo
        if key in memo:
            return memo[key]
        s = self._site(site)
        if gpus < 1:
            raise ConfigError(f"a quote needs >= 1 GPU, got {gpus}")
        best: Quote | None = None
        best_key: tuple[float, int] | None = None
        for o in s.offers:
            price = o.spot if spot else o.on_demand
            if price is None:
                continue
            nodes = -(-gpus // o.gpus_per_node)
            q = Quote(
                site,
                s.location,
                o.instance,
                o.gpu,
                nodes,
                o.gpus_per_node,
                spot,
                nodes * price,
                nodes * o.gpus_per_node,
            )
            k = (q.usd_per_h, q.gpu_h_per_h)
            if best_key is None or k < best_key:
                best, best_key = q, k
        memo[key] = best
        return best

    def quotes(self, gpus: int, spot: bool) -> tuple[Quote, ...]:
        """A quote from every site that has one, cheapest first (ties by site name)."""
        key = (gpus, spot)
        memo = self._quotes_memo
        got = memo.get(key)
        if got is None:
            qs = (self.quote(s, gpus, spot) for s in self.sites)
            got = tuple(
                sorted((q for q in qs if q is not None), key=lambda q: (q.usd_per_h, q.site))
            )
            memo[key] = got
        return got

    def provisioning(self, site: str, spot: bool) -> Provisioning:
        """The delay distribution of ``site`` (for strategies that plan with its p50 or mean)."""
        return self._site(site).provisioning[spot]

    def provision_h(self, site: str, spot: bool, rng: np.random.Generator) -> float:
        """One provisioning delay, hours, drawn from ``rng`` (nothing drawn for the zero model)."""
        return self._site(site).provisioning[spot].sample(rng)

    def spot_trace(self, site: str, nodes: int = 1) -> SpotTrace | None:
        """The spot availability of ``site`` for a job of ``nodes`` nodes; None = always up."""
        tr = self._site(site).trace
        if tr is None or nodes == 1:
            return tr
        memo = self._trace_memo
        got = memo.get((site, nodes))
        if got is None:
            got = memo[(site, nodes)] = tr.for_nodes(nodes)
        return got

    def quota_gpus(self, site: str) -> int | None:
        """At most this many GPUs billed at ``site`` at once; None = no quota."""
        return self._site(site).quota

    def link(self, from_loc: str, to_loc: str) -> tuple[float, float]:
        """(USD per GB, hours per GB) from one location key to another.

        The same location: ``(0, 0)``. Otherwise the inventory's ``network:`` entries, else the
        catalog's egress model (:func:`placer.catalog.link_for`); ``h/GB = 8 / (Gbit/s * 3600)``.
        The uniform model has free, instant links everywhere.
        """
        if from_loc == to_loc or self._free_links:
            return 0.0, 0.0
        key = (from_loc, to_loc)
        memo = self._link_memo
        got = memo.get(key)
        if got is None:
            usd, gbps = link_for(
                self._network, self._catalog, self._loc(from_loc), self._loc(to_loc)
            )
            got = memo[key] = (usd, 0.0 if math.isinf(gbps) else 8.0 / (gbps * 3600.0))
        return got

    def _loc(self, key: str) -> Location:
        loc = self._locs.get(key)
        if loc is not None:
            return loc
        cat = self._catalog if self._catalog is not None else default_catalog()
        if key in cat:
            return cat.location(key)
        raise CatalogError(
            f"unknown location {key!r}: neither a site of the inventory nor a catalog region"
        )


# -- builders ------------------------------------------------------------------------------------


def uniform_cloud(usd_per_gpu_h: float = 1.0) -> CloudModel:
    """Starburst's cloud: one site ``cloud``, one price per GPU-hour, no spot, no egress,
    no provisioning delay, no quota. A quote for g GPUs is one node of g GPUs at
    ``g * usd_per_gpu_h``."""
    if not (math.isfinite(usd_per_gpu_h) and usd_per_gpu_h >= 0):
        raise ConfigError(f"usd_per_gpu_h must be a non-negative number, got {usd_per_gpu_h}")
    return _UniformCloud(usd_per_gpu_h)


class _UniformCloud(CloudModel):
    """One offer of any size: the node is exactly as big as the job."""

    __slots__ = ("_price",)

    _price: float

    def __init__(self, usd_per_gpu_h: float) -> None:
        zero = Provisioning.zero()
        super().__init__("uniform", [_Site("cloud", "cloud:uniform", (), (zero, zero), None, None)])
        object.__setattr__(self, "_price", usd_per_gpu_h)

    def quote(self, site: str, gpus: int, spot: bool) -> Quote | None:
        s = self._site(site)
        if gpus < 1:
            raise ConfigError(f"a quote needs >= 1 GPU, got {gpus}")
        if spot:
            return None
        return Quote(s.name, s.location, "uniform", "any", 1, gpus, False, gpus * self._price, gpus)


def catalog_cloud(
    sites: Sequence[ResolvedSite],
    *,
    gpu: str,
    inventory: Inventory | None = None,
    catalog: Catalog | None = None,
    spot_traces: Mapping[str, str] | Literal["auto"] = "auto",
    spot_offset_h: float = 0.0,
    provisioning: Literal["default", "zero"] = "default",
    quotas: Mapping[str, int] | None = None,
    host_usd_per_gpu_h: float = DEFAULT_HOST_USD_PER_GPU_H,
    host_spot_usd_per_gpu_h: float = DEFAULT_HOST_SPOT_USD_PER_GPU_H,
) -> CloudModel:
    """The cloud sites of a resolved inventory, priced for the reference GPU type ``gpu``.

    On-prem sites are skipped (their locations still serve :meth:`CloudModel.link`).
    Offers are those whose GPU :func:`gpu_matches` ``gpu``; a site with none stays in the
    model and quotes None. GCP attached-GPU offers get ``host_usd_per_gpu_h`` (spot:
    ``host_spot_usd_per_gpu_h``) per GPU added for the host VM. Links use
    ``inventory.network`` when an inventory is given, else the catalog's model.

    ``spot_traces`` maps site → trace name (see :func:`load_spot_traces`); sites left out have
    none (spot always up). ``"auto"`` gives every site with a matching spot offer a trace:
    an AWS region its own region trace from the two-month V100 set
    (``availability/1-node/aws-02-15-2023/<region>_v100_1``) where one exists; every other site
    borrows a pattern: the set's region traces (us-east-1, us-east-2, us-west-2) in name order,
    round-robin in site order, skipping those the model's own AWS regions already use while any
    are left (a stand-in: no GCP, Azure or EU trace exists, and two sites sharing one pattern
    would be preempted together). ``spot_offset_h`` shifts every trace. ``quotas`` caps the
    GPUs billed at a site at once.
    """
    if provisioning not in ("default", "zero"):
        raise ConfigError(f"provisioning must be 'default' or 'zero', got {provisioning!r}")
    for label, v in (
        ("host_usd_per_gpu_h", host_usd_per_gpu_h),
        ("host_spot_usd_per_gpu_h", host_spot_usd_per_gpu_h),
    ):
        if not (math.isfinite(v) and v >= 0):
            raise ConfigError(f"{label} must be a non-negative number, got {v}")
    cloud = [s for s in sites if s.kind == "cloud"]
    names = {s.name for s in cloud}
    problems: list[ErrorDetail] = []
    quotas = dict(quotas or {})
    for site, q in quotas.items():
        if site not in names:
            problems.append(ErrorDetail(f"unknown cloud site {site!r}", field=f"quotas.{site}"))
        elif isinstance(q, bool) or not isinstance(q, int) or q < 0:
            problems.append(
                ErrorDetail(f"a quota is a GPU count >= 0, got {q!r}", field=f"quotas.{site}")
            )
    if spot_traces != "auto":
        for site in spot_traces:
            if site not in names:
                problems.append(
                    ErrorDetail(f"unknown cloud site {site!r}", field=f"spot_traces.{site}")
                )
    if problems:
        raise ConfigError(problems)

    priced = {
        s.name: _priced(s.offers, gpu, host_usd_per_gpu_h, host_spot_usd_per_gpu_h) for s in cloud
    }
    if spot_traces == "auto":
        chosen = _auto_traces(cloud, priced)
    else:
        chosen = {site: _spot_trace(name) for site, name in spot_traces.items()}

    built: list[_Site] = []
    for s in cloud:
        if provisioning == "zero":
            prov = (Provisioning.zero(), Provisioning.zero())
        else:
            prov = (
                Provisioning.from_p50(s.provisioning_h, False),
                Provisioning.from_p50(s.spot_provisioning_h, True),
            )
        tr = chosen.get(s.name)
        if tr is not None and spot_offset_h:
            tr = tr.with_offset(spot_offset_h)
        built.append(_Site(s.name, s.location.key, priced[s.name], prov, tr, quotas.get(s.name)))
    locations = {s.location.key: s.location for s in sites}
    return CloudModel(
        f"catalog:{gpu}",
        built,
        locations=locations,
        network=inventory.network if inventory is not None else (),
        catalog=catalog,
    )


def _priced(
    offers: Sequence[Offer], gpu: str, host_od: float, host_spot: float
) -> tuple[_Priced, ...]:
    out: list[_Priced] = []
    for o in offers:
        if not gpu_matches(gpu, o.gpu):
            continue
        n = o.gpus_per_node
        od, spot = o.on_demand, o.spot
        if is_gpu_only(o):
            od += host_od * n
            spot = None if spot is None else spot + host_spot * n
        out.append(_Priced(o.instance_type or f"{o.gpu} x{n}", o.gpu, n, od, spot))
    return tuple(out)


_AUTO_SET: Final = "availability/1-node/aws-02-15-2023"


def _auto_traces(
    cloud: Sequence[ResolvedSite], priced: Mapping[str, tuple[_Priced, ...]]
) -> dict[str, SpotTrace]:
    traces = _shipped()
    regions = sorted(  # the set's region traces (zone letter dropped), not its zone files
        n
        for n in traces
        if n.startswith(_AUTO_SET + "/")
        and n.endswith("_v100_1")
        and not _ZONE_RE.match(n.rpartition("/")[2].partition("_")[0])
    )
    wants = [s for s in cloud if any(o.spot is not None for o in priced[s.name])]
    out: dict[str, SpotTrace] = {}
    for s in wants:
        own = f"{_AUTO_SET}/{s.location.region}_v100_1"
        if s.location.provider == "aws" and own in traces:
            out[s.name] = traces[own]
    taken = {t.name for t in out.values()}
    pool = [n for n in regions if n not in taken] or regions
    turn = 0
    for s in wants:
        if s.name not in out:
            out[s.name] = traces[pool[turn % len(pool)]]
            turn += 1
    return out
