"""Spot statistics per cloud region, measured on the "Can't Be Late" availability traces.

``spot_stats.csv`` in ``placer/catalog/data`` is derived by ``python -m placer.sim.spot_stats``
from the traces the simulator replays (Wu et al., "Can't Be Late: Optimizing Spot Instance
Savings under Deadlines", NSDI'24; github.com/skypilot-org/spot-traces at 221da1ab, see
``placer/sim/data/SOURCES.md``). The table lets :mod:`placer.pricing` price a spot run from
measured preemptions instead of a flat overhead, without the core importing the simulator: the
derivation imports the simulator, the result is plain package data.

A region with its own trace has its own row; every other region borrows the ``*`` row (the
pooled pattern of every region trace in the set), and :func:`spot_stats` marks it borrowed so a
plan can say so. The rules are in ``docs/catalog.md``.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files
from itertools import pairwise
from types import MappingProxyType
from typing import Final

from placer.errors import CatalogError

SPOT_STATS_FILE: Final = "spot_stats.csv"
DEFAULT_SPOT_KEY: Final = "*"
"""The row every region without its own trace borrows."""

SPOT_STATS_COLUMNS: Final = (
    "location", "gpu", "borrowed", "availability", "mtbf_h", "mttr_h", "wait_h",
    "p90_extra_h", "provisioning_h", "restart_h", "trace",
)


@dataclass(frozen=True, slots=True)
class SpotStats:
    """What a region's spot capacity did over its trace (all times in hours).

    ``p90_extra_h`` is the replayed 90th percentile of the time a job of ``run_h`` hours of work
    takes beyond ``provisioning_h + run_h`` (waiting for capacity, re-provisioning, redoing
    ``restart_h`` after each preemption), at a few run lengths; :meth:`p90_extra` interpolates.
    """

    location: str
    """``provider:region`` of the trace, or ``*`` for the pooled default."""
    gpu: str
    """The trace's GPU (the shipped set is single V100 nodes; it stands for every GPU)."""
    borrowed: bool
    """True when the figures are not this location's own (another region's pattern)."""
    availability: float
    """Share of time spot capacity was there."""
    mtbf_h: float
    """Mean time between preemptions: mean length of an up period (inf: never preempted)."""
    mttr_h: float
    """Mean time to regain capacity: mean length of a down period."""
    wait_h: float
    """Mean wait for capacity from a request at a random moment (0 when up)."""
    p90_extra_h: tuple[tuple[float, float], ...]
    """``(run_h, extra_h)`` points, increasing in ``run_h``, the first at 0."""
    provisioning_h: float
    """Provisioning per launch the replay for ``p90_extra_h`` assumed."""
    restart_h: float
    """Work redone after each preemption the replay for ``p90_extra_h`` assumed."""
    trace: str
    """Which trace(s) the row comes from."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.availability <= 1.0:
            raise CatalogError(f"spot stats {self.location}: availability must be in [0, 1]")
        if not self.mtbf_h > 0:  # inf: never preempted
            raise CatalogError(f"spot stats {self.location}: mtbf_h must be > 0, got {self.mtbf_h}")
        for label, v in (("mttr_h", self.mttr_h), ("wait_h", self.wait_h),
                         ("provisioning_h", self.provisioning_h), ("restart_h", self.restart_h)):
            if not (math.isfinite(v) and v >= 0):
                raise CatalogError(f"spot stats {self.location}: {label} must be >= 0, got {v}")
        pts = self.p90_extra_h
        if not pts or pts[0][0] != 0.0 or any(b[0] <= a[0] for a, b in pairwise(pts)) \
                or any(not (math.isfinite(y) and y >= 0) for _, y in pts):
            raise CatalogError(f"spot stats {self.location}: p90_extra_h must be points from "
                               "run 0 with increasing runs and extras >= 0")

    def p90_extra(self, run_h: float) -> float:
        """The replayed 90th-percentile extra time for ``run_h`` hours of work: linear between
        the table's points, the last segment's slope beyond them (never decreasing)."""
        pts = self.p90_extra_h
        xs = [x for x, _ in pts]
        if len(pts) == 1:
            return pts[0][1]
        i = min(max(bisect.bisect_right(xs, run_h) - 1, 0), len(pts) - 2)
        (x0, y0), (x1, y1) = pts[i], pts[i + 1]
        return max(0.0, y0 + (y1 - y0) * (run_h - x0) / (x1 - x0))

    def borrowed_by(self, location: str) -> SpotStats:
        """These figures lent to ``location``, marked borrowed (the trace names the lender)."""
        if location == self.location:
            return self
        return replace(self, location=location, borrowed=True,
                       trace=f"no trace here, borrowed: {self.trace}")


def _points(text: str, where: str) -> tuple[tuple[float, float], ...]:
    try:
        out = []
        for part in text.split():
            x, _, y = part.partition(":")
            out.append((float(x), float(y)))
        return tuple(out)
    except ValueError:
        raise CatalogError(f"{where}: p90_extra_h must be 'run:extra' pairs, got {text!r}") \
            from None


def parse_spot_stats(text: str) -> tuple[SpotStats, ...]:
    """The rows of a ``spot_stats.csv`` text (lines starting with ``#`` are its header notes)."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    reader = csv.DictReader(io.StringIO(body))
    missing = set(SPOT_STATS_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise CatalogError(f"{SPOT_STATS_FILE}: missing columns {', '.join(sorted(missing))}")
    out: list[SpotStats] = []
    for n, row in enumerate(reader, start=2):
        where = f"{SPOT_STATS_FILE} row {n}"
        try:
            out.append(SpotStats(
                location=row["location"], gpu=row["gpu"], borrowed=row["borrowed"] == "yes",
                availability=float(row["availability"]), mtbf_h=float(row["mtbf_h"]),
                mttr_h=float(row["mttr_h"]), wait_h=float(row["wait_h"]),
                p90_extra_h=_points(row["p90_extra_h"], where),
                provisioning_h=float(row["provisioning_h"]), restart_h=float(row["restart_h"]),
                trace=row["trace"]))
        except ValueError as exc:
            raise CatalogError(f"{where}: {exc}") from None
    keys = [s.location for s in out]
    if len(set(keys)) != len(keys):
        raise CatalogError(f"{SPOT_STATS_FILE}: a location is listed twice")
    if DEFAULT_SPOT_KEY not in keys:
        raise CatalogError(f"{SPOT_STATS_FILE}: no default row ({DEFAULT_SPOT_KEY!r})")
    return tuple(out)


def format_spot_stats(rows: Sequence[SpotStats], header: Sequence[str] = ()) -> str:
    """``rows`` as the text of ``spot_stats.csv``, ``header`` lines first as ``# `` notes;
    numbers to 4 decimals, so that a re-derivation compares equal."""
    buf = io.StringIO()
    for line in header:
        buf.write(f"# {line}".rstrip() + "\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SPOT_STATS_COLUMNS)
    for s in rows:
        w.writerow([
            s.location, s.gpu, "yes" if s.borrowed else "no", f"{s.availability:.4f}",
            f"{s.mtbf_h:.4f}", f"{s.mttr_h:.4f}", f"{s.wait_h:.4f}",
            " ".join(f"{x:g}:{y:.4f}" for x, y in s.p90_extra_h),
            f"{s.provisioning_h:.4f}", f"{s.restart_h:.4f}", s.trace,
        ])
    return buf.getvalue()


def read_spot_stats_text() -> str:
    """The shipped ``spot_stats.csv``, as text."""
    return files("placer.catalog").joinpath("data", SPOT_STATS_FILE).read_text(encoding="utf-8")


@cache
def spot_stats_table() -> Mapping[str, SpotStats]:
    """The shipped table by location (``*``: the default), read once per process."""
    return MappingProxyType({s.location: s for s in parse_spot_stats(read_spot_stats_text())})


def spot_stats(location: str) -> SpotStats:
    """The spot statistics for cloud location ``location`` (``provider:region``): its own row
    if a trace was measured there, else the default row, marked borrowed."""
    table = spot_stats_table()
    own = table.get(location)
    return own if own is not None else table[DEFAULT_SPOT_KEY].borrowed_by(location)
