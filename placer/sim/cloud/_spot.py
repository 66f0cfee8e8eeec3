"""Spot availability, replayed from real traces.

Spot availability is replayed from the traces of "Can't Be Late" (Wu et al.,
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
Only ``spot_traces: region`` (:func:`region_traces`, the rule before issue 13, kept for older
numbers) replays them.

**Which trace a site replays** (``spot_traces: auto``, the default): a site is one zone
(:func:`home_zones`), and a job replays the zone-level availability trace of its size
(:class:`ZoneSpot`: its shape, else its GPU count, else the nearest larger, else the largest),
each pick a :class:`SpotPick` naming every way it is borrowed (:data:`BORROW_REASONS`).

**Time on a trace.** Simulation time ``t`` (hours) maps to trace second
``(t + offset_h) * 3600`` taken modulo the trace's length, so a replay longer than the trace
wraps around cyclically (a 45-day trace repeats); tick ``i`` covers ``[i*g, (i+1)*g)``.

**Multi-node.** A trace with counts (``N-node`` sets) is up for a job of ``n`` nodes when the
count is >= ``n``. A 0/1 trace says whether the capacity pool had room at all, and is used as
is for any node count: co-interruptions of one instance type in one zone fall within three
minutes in over 92 % of 2,635 events (Kim et al., "Spot-and-Scoot", arXiv:2604.16457).
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
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from placer.errors import CatalogError, ConfigError, ErrorDetail
from placer.models import ResolvedSite
from placer.pricing import PricedOffer

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


def shipped_trace(name: str) -> SpotTrace:
    """A shipped trace by name (the names of :func:`load_spot_traces`)."""
    traces = _shipped()
    tr = traces.get(name)
    if tr is None:
        near = difflib.get_close_matches(name, list(traces), n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]}?" if near else ""
        raise CatalogError(f"unknown spot trace {name!r}{hint}")
    return tr


_AUTO_SET: Final = "availability/1-node/aws-02-15-2023"


def region_traces(
    cloud: Sequence[ResolvedSite], priced: Mapping[str, tuple[PricedOffer, ...]]
) -> dict[str, SpotTrace]:
    """``spot_traces: region`` of :func:`placer.sim.cloud.catalog_cloud`, the rule before issue
    13 (kept to reproduce older numbers): a region-level single-V100 trace for every site with a
    spot offer (its own AWS region's, "any zone up", else a borrowed region pattern,
    round-robin), whatever the job's size."""
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


# -- zone-level traces matched to the job's size (issue 13) -------------------------------------

_SOURCE_RE: Final = re.compile(
    r"^availability/(?P<n>\d+)-node/(?P<provider>[a-z]+)-[\d-]+/"
    r"(?P<zone>[a-z0-9-]+)_(?P<gpu>[a-z0-9]+)_(?P<k>\d+)$"
)
BORROW_REASONS: Final = ("provider", "region", "zone", "gpu", "size")
"""Why a trace is borrowed, in the order :attr:`SpotPick.borrowed` lists them: it was recorded
with another provider, in another region, in another zone than the site's, for another GPU
type, or for another number of GPUs than the job is billed for."""


@dataclass(frozen=True, slots=True)
class SpotSource:
    """One shipped zone-level availability trace and what it measured: ``instances`` (1 for a
    0/1 ``1-node`` trace, N for a count of an ``N-node`` set) instances of ``gpus_per_instance``
    GPUs of type ``gpu`` (lower case) in one zone."""

    name: str
    provider: str
    region: str
    zone: str
    gpu: str
    gpus_per_instance: int
    instances: int
    trace: SpotTrace

    @property
    def days(self) -> float:
        return self.trace.period_h / 24.0


@dataclass(frozen=True, slots=True)
class SpotPick:
    """The spot trace a site replays for a job of ``nodes`` x ``gpus_per_node`` GPUs, and why.

    ``gpus`` is the GPU count the trace stands for (a 0/1 trace of 8-GPU instances: 8; a count
    trace read as "at least m instances of k GPUs": m x k). ``borrowed`` names every way the
    trace is not the site's own (:data:`BORROW_REASONS`); empty: the site's zone, the job's GPU
    type and count. A plain value (no trace arrays): it travels back from a remote run.
    """

    site: str
    nodes: int
    gpus_per_node: int
    source: str
    """The shipped trace's name (a region trace's for ``spot_traces: region``)."""
    zone: str
    """The zone the trace was recorded in; ``<region> (any zone)`` for a region trace."""
    gpus: int
    borrowed: tuple[str, ...]

    @property
    def need_gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def is_borrowed(self) -> bool:
        return bool(self.borrowed)

    def describe(self) -> str:
        """``gcp-us-central1 8x1 GPU: .../us-west-2a_v100_1 >= 8 (borrowed: provider)``."""
        flag = f" (borrowed: {', '.join(self.borrowed)})" if self.borrowed else ""
        return (f"{self.site} {self.nodes}x{self.gpus_per_node} GPU: {self.source} "
                f"as {self.gpus} GPU(s){flag}")


def _parse_source(name: str, tr: SpotTrace) -> SpotSource | None:
    m = _SOURCE_RE.match(name)
    if m is None:
        return None
    zone = m.group("zone")
    zm = _ZONE_RE.match(zone)
    if zm is None:
        return None
    return SpotSource(name, m.group("provider"), zm.group("region"), zone, m.group("gpu"),
                      int(m.group("k")), int(m.group("n")), tr)


@cache
def spot_sources() -> tuple[SpotSource, ...]:
    """Every shipped zone-level *availability* trace, by name.

    Preemption traces are left out: they record how long a launched instance lived, not whether
    one could be launched, and the simulator asks the latter (a launch is refused when the trace
    is down)."""
    out = [s for n, tr in _shipped().items() if (s := _parse_source(n, tr)) is not None]
    return tuple(sorted(out, key=lambda s: s.name))


def _fit(src: SpotSource, nodes: int, gpus_per_node: int) -> tuple[int, int, bool]:
    """``(instances needed m, GPUs the trace then stands for, same shape as the job)``."""
    need = nodes * gpus_per_node
    k, cap = src.gpus_per_instance, src.instances
    if cap == 1:
        return 1, k, k == gpus_per_node and nodes == 1
    m = min(-(-need // k), cap)
    return m, k * m, k == gpus_per_node and nodes <= cap


def _one_gpu_up(zone: str, sources: Sequence[SpotSource]) -> float:
    """A zone's single-instance availability (its longest 1-instance, 1-GPU trace), for ties."""
    own = [s for s in sources if s.zone == zone and s.instances == 1 and s.gpus_per_instance == 1]
    return max(own, key=lambda s: (s.days, s.name)).trace.fraction_up if own else 0.0


def _coverage(zone: str, sources: Sequence[SpotSource]) -> int:
    return len({(s.gpus_per_instance, s.instances) for s in sources if s.zone == zone})


def home_zones(sites: Sequence[ResolvedSite], gpu: str) -> dict[str, str]:
    """The zone each site *is* (``spot_traces: auto``/``zone``), deterministically.

    A site whose provider and region have zone traces of ``gpu`` is the zone of that region with
    traces for the most sizes (instance shapes); ties go to the zone of median single-instance
    availability (the lower median, then the name), not the best or the worst. Every other
    site borrows a zone: the zones with traces in order of most sizes, then name, round-robin in
    site order, skipping the zones of the model's own sites while any are left (two sites
    sharing one zone would be preempted together).
    """
    sources = _of_gpu(gpu)
    zones = sorted({s.zone for s in sources})
    out: dict[str, str] = {}
    for site in sites:
        loc = site.location
        own = [z for z in zones if any(s.zone == z and s.provider == loc.provider
                                       and s.region == loc.region for s in sources)]
        if not own:
            continue
        most = max(_coverage(z, sources) for z in own)
        tied = sorted((z for z in own if _coverage(z, sources) == most),
                      key=lambda z: (_one_gpu_up(z, sources), z))
        out[site.name] = tied[(len(tied) - 1) // 2]
    donors = sorted(zones, key=lambda z: (-_coverage(z, sources), z))
    pool = [z for z in donors if z not in set(out.values())] or donors
    turn = 0
    for site in sites:
        if site.name not in out and pool:
            out[site.name] = pool[turn % len(pool)]
            turn += 1
    return out


def _of_gpu(gpu: str) -> tuple[SpotSource, ...]:
    """The zone traces of GPU type ``gpu``; the V100 ones when it has none (flagged ``gpu``)."""
    want = gpu.lower()
    got = tuple(s for s in spot_sources() if s.gpu == want)
    return got or tuple(s for s in spot_sources() if s.gpu == "v100")


@dataclass(frozen=True, slots=True)
class ZoneSpot:
    """How one site picks a zone-level trace per job size (``spot_traces: auto``/``zone``).

    **The rule** (:meth:`pick`), for a job billed ``nodes`` x ``gpus_per_node`` GPUs (the
    cheapest quote's shape), among the zone traces of the reference GPU type: *size first,
    then place*, because size moves availability more than place does (an 8-V100 instance was
    up 47-48 % of the time in the zones where a single V100 was up 72-79 %).

    1. the trace of the job's own shape: a 0/1 trace of ``gpus_per_node``-GPU instances for one
       node, or a count of such instances read as "at least ``nodes``" (an 8-GPU job on one
       p3dn: ``v100_8``; eight attached V100s: the 16-node set, count >= 8);
    2. else a trace of the same GPU count in another shape (a 4-GPU instance: the 16-node set
       of single V100s, count >= 4);
    3. else the nearest larger GPU count (a 4-GPU instance where only ``v100_8`` exists);
    4. else the largest there is (a 32-GPU job: the 16-node set at count 16), flagged ``size``.

    Within a step: the site's own zone, then its region, then its provider, then any zone;
    then the set with the fewest instances that answers (a 1-node set for a one-node job), the
    longer trace, the name. Anything but the site's zone, GPU type and GPU count is flagged
    (:data:`BORROW_REASONS`).
    """

    site: str
    provider: str
    region: str
    home: str
    gpu: str
    offset_h: float = 0.0

    def pick(self, nodes: int, gpus_per_node: int) -> tuple[SpotPick, SpotTrace]:
        """The pick for a job of ``nodes`` x ``gpus_per_node`` GPUs, and its trace (offset,
        read as "at least m instances" for a count trace)."""
        if nodes < 1 or gpus_per_node < 1:
            raise ConfigError(f"a spot pick needs >= 1 node of >= 1 GPU, got {nodes}x"
                              f"{gpus_per_node}")
        need = nodes * gpus_per_node
        sources = _of_gpu(self.gpu)
        home_region = next((s.region for s in sources if s.zone == self.home), "")

        def key(s: SpotSource) -> tuple[int, int, int, int, float, str]:
            _, level, same_shape = _fit(s, nodes, gpus_per_node)
            step = 0 if same_shape else 1 if level == need else 2 if level > need else 3
            if s.zone == self.home:
                tier = 0
            elif s.provider == self.provider and s.region in (self.region, home_region):
                tier = 1
            elif s.provider == self.provider:
                tier = 2
            else:
                tier = 3
            return (step, abs(level - need), tier, s.instances, -s.days, s.name)

        best = min(sources, key=key)
        m, level, _ = _fit(best, nodes, gpus_per_node)
        reasons = _reasons(self, best.provider, best.region, best.zone, best.gpu, level, need)
        trace = best.trace.with_offset(self.offset_h) if self.offset_h else best.trace
        trace = trace.for_nodes(m) if best.instances > 1 else trace
        return SpotPick(self.site, nodes, gpus_per_node, best.name, best.zone, level,
                        reasons), trace


def _reasons(spot: ZoneSpot, provider: str, region: str, zone: str | None, gpu: str,
             level: int, need: int) -> tuple[str, ...]:
    out: list[str] = []
    if provider != spot.provider:
        out.append("provider")
    elif region != spot.region:
        out.append("region")
    elif zone is not None and zone != spot.home:
        out.append("zone")
    if gpu != spot.gpu.lower():
        out.append("gpu")
    if level != need:
        out.append("size")
    return tuple(out)


def zone_spots(sites: Sequence[ResolvedSite], priced: Mapping[str, tuple[PricedOffer, ...]],
               gpu: str, offset_h: float = 0.0) -> dict[str, ZoneSpot]:
    """``spot_traces: auto`` (= ``zone``): a :class:`ZoneSpot` for every site with a spot offer,
    each one zone (:func:`home_zones`)."""
    wants = [s for s in sites if any(o.spot is not None for o in priced[s.name])]
    homes = home_zones(wants, gpu)
    return {s.name: ZoneSpot(s.name, s.location.provider, s.location.region, homes[s.name],
                             gpu, offset_h)
            for s in wants if s.name in homes}


def legacy_pick(site: ResolvedSite, name: str, nodes: int, gpus_per_node: int,
                gpu: str) -> SpotPick:
    """The :class:`SpotPick` of a trace named outright (``spot_traces: region`` or a map): the
    old rule, ``trace.for_nodes(nodes)`` whatever the GPUs per node, flagged like a zone pick
    (a region trace has no zone: it is flagged only for provider, region, GPU type and size)."""
    folder, _, base = name.rpartition("/")
    place, _, kind = base.partition("_")
    gpu_kind, _, k_text = kind.rpartition("_")
    k = int(k_text) if k_text.isdigit() else 1
    cap_m = _NODES_RE.search(name)
    cap = int(cap_m.group(1)) if cap_m else 1
    level = k * (min(nodes, cap) if cap > 1 else 1)
    zm = _ZONE_RE.match(place)
    region, zone = (zm.group("region"), place) if zm else (place, None)
    provider = folder.rpartition("/")[2].partition("-")[0]
    spot = ZoneSpot(site.name, site.location.provider, site.location.region,
                    zone or "", gpu)
    reasons = _reasons(spot, provider, region, None, gpu_kind or gpu.lower(), level,
                       nodes * gpus_per_node)
    return SpotPick(site.name, nodes, gpus_per_node, name,
                    zone if zone is not None else f"{region} (any zone)", level, reasons)
