"""The on-prem pool, the jobs running on it and its queue, and the three queue disciplines that
hand out free GPUs.

* :class:`Pool`: ``nodes`` nodes of ``gpus_per_node`` GPUs. A job of up to one node's GPUs runs
  on one node (first-fit: the lowest-numbered node with room; best-fit: the node left fullest);
  a larger job takes whole free nodes.
* :class:`Running`: the jobs running on-prem by estimated end, kept sorted, so that whoever
  needs the earliest ends (EASY backfill's reservation, a strategy's wait prediction) reads
  them first without sorting or walking the rest.
* :class:`OnPremQueue`: queued jobs as ``(priority, seq, job)`` entries, one sorted list per
  GPU count; queue order is priority, then arrival in the queue.
* The discipline is the strategy's ``queue``: :class:`Fifo` (the head blocks the rest),
  :class:`OutOfOrder` (any queued job that fits starts, in queue order) or :class:`Backfill`
  (EASY: the head gets a reservation from the running jobs' estimated ends; later jobs start
  only if they fit now and do not delay it).

Every structure here is updated when a job is queued, leaves the queue, starts or ends, in
O(log n) comparisons (a bisection; the list insert or delete behind it moves pointers, a
``memmove`` far cheaper than the comparisons at the sizes a replay reaches), so that no look-up
a strategy makes walks the queue or the running jobs.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Sequence

from placer.online import JobRequest, Queued

Entry = Queued
"""A queued job: ``(priority, seq, job)``; smaller is earlier in the queue (``seq`` is unique,
so the job itself is never compared)."""
Start = Callable[[int, float], None]
"""Starts job ``j`` on-prem at ``now`` (the engine's; it takes the job off the queue)."""


class Pool:
    """Free GPUs per node, with counts per free level and the highest level some node is at,
    so that "does it fit" is O(1)."""

    __slots__ = ("count", "free", "gpn", "mode", "top", "total_free")

    def __init__(self, nodes: int, gpn: int, mode: str) -> None:
        self.gpn = gpn
        self.free = [gpn] * nodes
        self.count = [0] * (gpn + 1)
        self.count[gpn] = nodes
        self.top = gpn if nodes else -1
        """The most free GPUs on one node (-1 without nodes)."""
        self.total_free = nodes * gpn
        self.mode = mode

    def nodes_for(self, gpus: int) -> int:
        return -(-gpus // self.gpn)

    def fits(self, gpus: int) -> bool:
        if gpus > self.gpn:
            return self.count[self.gpn] >= self.nodes_for(gpus)
        return gpus <= self.top

    def _take(self, node: int, gpus: int) -> None:
        f = self.free[node]
        count = self.count
        count[f] -= 1
        count[f - gpus] += 1
        self.free[node] = f - gpus
        self.total_free -= gpus
        if f == self.top and not count[f]:
            k = f - 1
            while not count[k]:  # stops at f - gpus at the latest: that node is there
                k -= 1
            self.top = k

    def alloc(self, gpus: int) -> list[tuple[int, int]]:
        free = self.free
        if gpus > self.gpn:
            need = self.nodes_for(gpus)
            nodes = [i for i, f in enumerate(free) if f == self.gpn][:need]
            out = [(i, self.gpn) for i in nodes]
        elif self.mode == "best":
            best = min((f, i) for i, f in enumerate(free) if f >= gpus)[1]
            out = [(best, gpus)]
        else:
            out = [(next(i for i, f in enumerate(free) if f >= gpus), gpus)]
        for node, g in out:
            self._take(node, g)
        return out

    def release(self, alloc: list[tuple[int, int]]) -> None:
        for node, g in alloc:
            f = self.free[node]
            self.count[f] -= 1
            self.count[f + g] += 1
            self.free[node] = f + g
            self.total_free += g
            if f + g > self.top:
                self.top = f + g


class Running:
    """Jobs running on-prem as ``(estimated end, GPUs, job)``, sorted: ties by GPUs, then job."""

    __slots__ = ("_end", "ends")

    def __init__(self, jobs: int) -> None:
        self.ends: list[tuple[float, int, int]] = []
        self._end = [math.nan] * jobs

    def __len__(self) -> int:
        return len(self.ends)

    def add(self, j: int, end: float, gpus: int) -> None:
        self._end[j] = end
        insort(self.ends, (end, gpus, j))

    def remove(self, j: int, gpus: int) -> None:
        ends = self.ends
        del ends[bisect_left(ends, (self._end[j], gpus, j))]
        self._end[j] = math.nan

    def by_end(self) -> Iterator[tuple[float, int]]:
        """``(estimated end, GPUs)`` of every running job, earliest end first."""
        for end, gpus, _ in self.ends:
            yield end, gpus


class OnPremQueue:
    """Jobs waiting for on-prem GPUs, with their count and estimated GPU-hours.

    ``buckets`` maps each GPU count with jobs queued to its entries in queue order (what
    :meth:`placer.online.ClusterView.queued_by_gpus` shows a strategy); a count whose last job
    leaves is dropped. ``order`` holds every entry in queue order for a discipline that scans
    the whole queue (:attr:`Fifo.scans`); it is ``None`` otherwise.
    """

    __slots__ = ("_entry", "_next", "buckets", "count", "gpu_h", "order")

    def __init__(self, jobs: int, *, ordered: bool) -> None:
        self.buckets: dict[int, list[Entry]] = {}
        self._entry: list[Entry | None] = [None] * jobs  # the live entry of each queued job
        self._next = 0
        self.order: list[Entry] | None = [] if ordered else None
        self.count = 0
        self.gpu_h = 0.0

    def push(self, job: JobRequest, priority: float, gpu_h: float) -> None:
        entry = (priority, self._next, job)
        self._next += 1
        self._entry[job.id] = entry
        bucket = self.buckets.get(job.gpus)
        if bucket is None:
            self.buckets[job.gpus] = [entry]
        else:
            insort(bucket, entry)
        if self.order is not None:
            insort(self.order, entry)
        self.count += 1
        self.gpu_h += gpu_h

    def remove(self, j: int, gpu_h: float) -> None:
        """Job ``j`` is no longer queued."""
        entry = self._entry[j]
        assert entry is not None  # the engine removes only queued jobs
        self._entry[j] = None
        gpus = entry[2].gpus
        bucket = self.buckets[gpus]
        if len(bucket) == 1:
            del self.buckets[gpus]
        else:
            del bucket[bisect_left(bucket, entry)]
        if self.order is not None:
            del self.order[bisect_left(self.order, entry)]
        self.count -= 1
        self.gpu_h -= gpu_h
        if self.count == 0:
            self.gpu_h = 0.0

    def heads(self) -> list[Entry]:
        """The first entry of each GPU count."""
        return [bucket[0] for bucket in self.buckets.values()]

    def entries(self) -> Iterator[Entry]:
        """Every entry, in queue order (a merge of the GPU counts' lists, no sort)."""
        return heapq.merge(*self.buckets.values())


class Fifo:
    """First in, first out: the head of the queue starts when it fits, and blocks the rest."""

    scans = False
    """Whether the discipline scans the whole queue in order (the queue keeps ``order``)."""

    def __init__(self, queue: OnPremQueue, pool: Pool, gpus: Sequence[int], *,
                 running: Callable[[], Iterable[tuple[float, int]]],
                 remaining: Callable[[int], float]) -> None:
        self.queue = queue
        self.pool = pool
        self.gpus = gpus
        """GPUs of each job."""
        self.running = running
        """``(estimated end, GPUs)`` of every job running on-prem, earliest end first."""
        self.remaining = remaining
        """Estimated hours of work left of a job."""

    def schedule(self, now: float, start: Start) -> None:
        """Start queued jobs while GPUs are free and the discipline allows."""
        queue, pool = self.queue, self.pool
        while queue.count and pool.total_free:
            head = min(queue.heads())[2].id
            if not pool.fits(self.gpus[head]):
                self.blocked(head, now, start)
                return
            start(head, now)

    def blocked(self, head: int, now: float, start: Start) -> None:
        """The head does not fit: FIFO waits."""


class OutOfOrder(Fifo):
    """Any queued job that fits starts, in queue order (the first that fits goes first)."""

    def schedule(self, now: float, start: Start) -> None:
        queue, pool = self.queue, self.pool
        while queue.count and pool.total_free:
            fitting = [h for h in queue.heads() if pool.fits(h[2].gpus)]
            if not fitting:
                return
            start(min(fitting)[2].id, now)


class Backfill(Fifo):
    """EASY backfill: FIFO, and while the head waits, later jobs that fit now start if they do
    not delay it."""

    scans = True

    def blocked(self, head: int, now: float, start: Start) -> None:
        """Reserve for ``head`` at the earliest time enough GPUs free up (by the running jobs'
        estimated ends); start later jobs that fit now and either end before that reservation
        or use only GPUs the reservation leaves over. Counts GPUs, not nodes: with node
        fragmentation the reservation is an estimate, as in most production backfillers."""
        queue, pool, gpus = self.queue, self.pool, self.gpus
        need = gpus[head]
        free = pool.total_free
        shadow = math.inf
        extra = 0
        for end, g in self.running():
            free += g
            if free >= need:
                shadow, extra = max(end, now), free - need
                break
        order = queue.order
        assert order is not None  # a scanning discipline's queue keeps it
        tested = 0
        i = 0  # starting the job at ``order[i]`` takes it out: the next one moves up to ``i``
        while i < len(order) and tested < 100 and pool.total_free:
            j = order[i][2].id
            i += 1
            if j == head:
                continue
            tested += 1
            if not pool.fits(gpus[j]):
                continue
            if now + self.remaining(j) <= shadow:
                start(j, now)
                i -= 1
            elif gpus[j] <= extra:
                extra -= gpus[j]
                start(j, now)
                i -= 1


DISCIPLINES: dict[str, type[Fifo]] = {"fifo": Fifo, "ooo": OutOfOrder, "backfill": Backfill}
"""The discipline of each ``queue`` a strategy may name (:data:`placer.online.QueueMode`)."""
