"""The on-prem pool and its queue, and the three queue disciplines that hand out free GPUs.

* :class:`Pool`: ``nodes`` nodes of ``gpus_per_node`` GPUs. A job of up to one node's GPUs runs
  on one node (first-fit: the lowest-numbered node with room; best-fit: the node left fullest);
  a larger job takes whole free nodes.
* :class:`OnPremQueue`: queued jobs as ``(priority, seq, job)`` entries, a heap per GPU count,
  removed lazily; queue order is priority, then arrival in the queue.
* The discipline is the strategy's ``queue``: :class:`Fifo` (the head blocks the rest),
  :class:`OutOfOrder` (any queued job that fits starts, in queue order) or :class:`Backfill`
  (EASY: the head gets a reservation from the running jobs' estimated ends; later jobs start
  only if they fit now and do not delay it).
"""

from __future__ import annotations

import heapq
import math
from bisect import insort
from collections.abc import Callable, Iterable, Sequence

Entry = tuple[float, int, int]
"""A queued job: ``(priority, seq, job)``; smaller is earlier in the queue."""
Start = Callable[[int, float], None]
"""Starts job ``j`` on-prem at ``now`` (the engine's; it takes the job off the queue)."""


class Pool:
    """Free GPUs per node, with counts per free level so that "does it fit" is O(GPUs/node)."""

    __slots__ = ("count", "free", "gpn", "mode", "total_free")

    def __init__(self, nodes: int, gpn: int, mode: str) -> None:
        self.gpn = gpn
        self.free = [gpn] * nodes
        self.count = [0] * (gpn + 1)
        self.count[gpn] = nodes
        self.total_free = nodes * gpn
        self.mode = mode

    def nodes_for(self, gpus: int) -> int:
        return -(-gpus // self.gpn)

    def fits(self, gpus: int) -> bool:
        if gpus > self.gpn:
            return self.count[self.gpn] >= self.nodes_for(gpus)
        count = self.count
        return any(count[k] for k in range(gpus, self.gpn + 1))

    def _take(self, node: int, gpus: int) -> None:
        f = self.free[node]
        self.count[f] -= 1
        self.count[f - gpus] += 1
        self.free[node] = f - gpus
        self.total_free -= gpus

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


class OnPremQueue:
    """Jobs waiting for on-prem GPUs, with their count and estimated GPU-hours.

    ``order`` holds every entry sorted (dead ones too, pruned now and then) for a discipline
    that scans the whole queue (:attr:`Fifo.scans`); it is ``None`` otherwise.
    """

    __slots__ = ("_next", "_seq", "buckets", "count", "gpu_h", "order")

    def __init__(self, jobs: int, *, ordered: bool) -> None:
        self.buckets: dict[int, list[Entry]] = {}
        """GPU count → heap of entries (dead entries die lazily)."""
        self._seq = [-1] * jobs  # the live entry's seq of each queued job, -1 when not queued
        self._next = 0
        self.order: list[Entry] | None = [] if ordered else None
        self.count = 0
        self.gpu_h = 0.0

    def live(self, entry: Entry) -> bool:
        return self._seq[entry[2]] == entry[1]

    def push(self, j: int, gpus: int, priority: float, gpu_h: float) -> None:
        seq = self._next
        self._next += 1
        entry = (priority, seq, j)
        self._seq[j] = seq
        heapq.heappush(self.buckets.setdefault(gpus, []), entry)
        if self.order is not None:
            insort(self.order, entry)
        self.count += 1
        self.gpu_h += gpu_h

    def remove(self, j: int, gpu_h: float) -> None:
        """Job ``j`` is no longer queued (its entries die lazily)."""
        self.count -= 1
        self.gpu_h -= gpu_h
        if self.count == 0:
            self.gpu_h = 0.0
        self._seq[j] = -1

    def heads(self) -> list[Entry]:
        """The first live entry of each GPU count's heap."""
        out = []
        for bucket in self.buckets.values():
            while bucket and not self.live(bucket[0]):
                heapq.heappop(bucket)
            if bucket:
                out.append(bucket[0])
        return out

    def entries(self) -> list[Entry]:
        """Every live entry, in queue order."""
        return sorted(e for b in self.buckets.values() for e in b if self.live(e))


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
        """``(estimated end, GPUs)`` of every job running on-prem."""
        self.remaining = remaining
        """Estimated hours of work left of a job."""

    def schedule(self, now: float, start: Start) -> None:
        """Start queued jobs while GPUs are free and the discipline allows."""
        queue, pool = self.queue, self.pool
        while queue.count and pool.total_free:
            head = min(queue.heads())[2]
            if not pool.fits(self.gpus[head]):
                self.blocked(head, now, start)
                return
            start(head, now)

    def blocked(self, head: int, now: float, start: Start) -> None:
        """The head does not fit: FIFO waits."""


class OutOfOrder(Fifo):
    """Any queued job that fits starts, in queue order (the first that fits goes first)."""

    def schedule(self, now: float, start: Start) -> None:
        queue, pool, gpus = self.queue, self.pool, self.gpus
        while queue.count and pool.total_free:
            fitting = [h for h in queue.heads() if pool.fits(gpus[h[2]])]
            if not fitting:
                return
            start(min(fitting)[2], now)


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
        for end, g in sorted(self.running()):
            free += g
            if free >= need:
                shadow, extra = max(end, now), free - need
                break
        order = queue.order
        assert order is not None  # a scanning discipline's queue keeps it
        if len(order) > 2 * queue.count + 64:
            order[:] = [e for e in order if queue.live(e)]
        tested = 0
        for entry in list(order):
            if tested >= 100 or not pool.total_free:
                break
            if not queue.live(entry) or entry[2] == head:
                continue
            tested += 1
            j = entry[2]
            if not pool.fits(gpus[j]):
                continue
            if now + self.remaining(j) <= shadow:
                start(j, now)
            elif gpus[j] <= extra:
                extra -= gpus[j]
                start(j, now)


DISCIPLINES: dict[str, type[Fifo]] = {"fifo": Fifo, "ooo": OutOfOrder, "backfill": Backfill}
"""The discipline of each ``queue`` a strategy may name (:data:`placer.online.QueueMode`)."""
