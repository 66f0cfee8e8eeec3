"""The event kernel: a total order on (time, priority, seq), lazy cancellation, causality."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placer.errors import PlacerError, SimulationError
from placer.sim.kernel import EventQueue


def _drain(q: EventQueue) -> list[tuple[float, int, int]]:
    out = []
    while (ev := q.pop()) is not None:
        out.append(ev)
    return out


def test_order_is_time_then_priority_then_insertion() -> None:
    q = EventQueue()
    q.push(2.0, 0, kind=10, job=0)
    q.push(1.0, 4, kind=11, job=1)  # earlier time beats a lower priority
    q.push(1.0, 0, kind=12, job=2)  # same time: lower priority first
    q.push(1.0, 4, kind=13, job=3)  # same time and priority: pushed later, popped later
    q.push(1.0, 0, kind=14, job=4)
    assert len(q) == 5
    assert _drain(q) == [(1.0, 12, 2), (1.0, 14, 4), (1.0, 11, 1), (1.0, 13, 3), (2.0, 10, 0)]
    assert len(q) == 0
    assert q.pop() is None


def test_pop_advances_the_clock() -> None:
    q = EventQueue()
    q.push(3.5, 0, 0, 0)
    assert q.now == 0.0
    q.pop()
    assert q.now == 3.5
    q.push(3.5, 0, 0, 1)  # "now" is not the past
    assert q.pop() == (3.5, 0, 1)


def test_cancelled_events_are_skipped() -> None:
    q = EventQueue()
    a = q.push(1.0, 0, 0, 0)
    b = q.push(2.0, 0, 0, 1)
    c = q.push(3.0, 0, 0, 2)
    assert len({a, b, c}) == 3
    q.cancel(b)
    assert len(q) == 2
    assert q.pop() == (1.0, 0, 0)
    assert q.pop() == (3.0, 0, 2)  # the clock never visits the cancelled time
    assert q.pop() is None
    assert len(q) == 0


def test_cancelling_the_only_event_empties_the_queue() -> None:
    q = EventQueue()
    q.cancel(q.push(1.0, 0, 0, 0))
    assert q.pop() is None
    assert q.now == 0.0


@pytest.mark.parametrize("t", [0.5, math.inf, math.nan])
def test_refuses_past_and_non_finite_events(t: float) -> None:
    q = EventQueue()
    q.push(1.0, 0, 0, 0)
    q.pop()  # the clock is at 1.0
    with pytest.raises(SimulationError, match=r"event kind 7 for job 3 at t=") as info:
        q.push(t, 0, kind=7, job=3)
    assert isinstance(info.value, PlacerError)
    assert "the clock is at 1.0 h" in str(info.value)
    assert len(q) == 0  # nothing was queued


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
            st.integers(min_value=0, max_value=4),
            st.booleans(),  # cancel it?
        ),
        max_size=60,
    )
)
def test_pops_equal_sorting_by_time_priority_and_push_order(
    events: list[tuple[float, int, bool]],
) -> None:
    q = EventQueue()
    tokens = [q.push(t, p, kind=p, job=i) for i, (t, p, _) in enumerate(events)]
    for token, (_, _, cancel) in zip(tokens, events, strict=True):
        if cancel:
            q.cancel(token)
    kept = [(t, p, i) for i, (t, p, cancel) in enumerate(events) if not cancel]
    assert len(q) == len(kept)
    assert _drain(q) == [(t, p, i) for t, p, i in sorted(kept)]
