"""The engine's vocabulary: event kinds (their priority at one instant) and job states."""

from __future__ import annotations

from typing import Final

# Event kinds; the priority of an event is its kind, so at one instant resources are freed
# before new work is admitted, and timeouts are looked at last (after the queue had its chance).
END_ONPREM: Final = 0
END_CLOUD: Final = 1
STOP_CLOUD: Final = 2
READY: Final = 3
TIMEOUT: Final = 4

# Job states.
WAITING_DEPS: Final = 0
QUEUED: Final = 1
ONPREM: Final = 2
CLOUD: Final = 3
DONE: Final = 4
PENDING: Final = 5  # ready, being decided
