"""The discrete-event kernel: a clock and a heap of events with a total, deterministic order.

Events are ordered by ``(time, priority, seq)``: at equal times a lower priority runs first (the
engine frees resources before it admits new work), and at equal time and priority the event
pushed first runs first. ``seq`` is a counter, so no two events ever compare equal and the
payload is never compared: the same pushes give the same pops, bit for bit, on every platform.

Events are cancelled lazily: :meth:`EventQueue.cancel` marks a token and :meth:`pop` skips
it, which keeps cancellation O(1) (a queued job's timeout is cancelled whenever it starts).
"""

from __future__ import annotations

import heapq
import math

from placer.errors import SimulationError


class EventQueue:
    """A min-heap of ``(time, priority, seq, kind, job)`` tuples with lazy cancellation."""

    __slots__ = ("_cancelled", "_heap", "_seq", "now")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, int, int]] = []
        self._seq = 0
        self._cancelled: set[int] = set()
        self.now = 0.0

    def push(self, time: float, priority: int, kind: int, job: int) -> int:
        """Schedule an event; returns its token (for :meth:`cancel`).

        Raises:
            SimulationError: for an event in the past or at a time that is not finite, which
                would break causality silently.
        """
        if not time >= self.now or math.isinf(time):
            raise SimulationError(
                f"event kind {kind} for job {job} at t={time!r} h, but the clock is at "
                f"{self.now!r} h: events must be finite and not in the past"
            )
        seq = self._seq
        self._seq += 1
        heapq.heappush(self._heap, (time, priority, seq, kind, job))
        return seq

    def cancel(self, token: int) -> None:
        self._cancelled.add(token)

    def pop(self) -> tuple[float, int, int] | None:
        """The next live event as ``(time, kind, job)``, advancing the clock; None when empty."""
        heap = self._heap
        cancelled = self._cancelled
        while heap:
            time, _, seq, kind, job = heapq.heappop(heap)
            if seq in cancelled:
                cancelled.discard(seq)
                continue
            self.now = time
            return time, kind, job
        return None

    def __len__(self) -> int:
        """Live events (O(n): for tests and diagnostics, not the loop)."""
        return sum(1 for e in self._heap if e[2] not in self._cancelled)
