"""The engine's on-prem structures against their definitions after any sequence of changes: the
queue per GPU count (queueing, leaving), the running jobs by estimated end (starting, ending) and
the pool's "does it fit" (allocating, releasing)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from placer.online import JobRequest
from placer.sim.engine._queues import OnPremQueue, Pool, Running

JOBS = 12
GPUS = (1, 2, 4, 8)

# (job, priority): queue the job at that priority if it is not queued, else take it off
queue_ops = st.lists(st.tuples(st.integers(0, JOBS - 1), st.sampled_from((0.0, 0.5, 1.0, 2.5))),
                     max_size=60)


@settings(max_examples=200, deadline=None)
@given(queue_ops)
def test_the_queue_by_gpu_count_is_the_queue_in_order(ops: list[tuple[int, float]]) -> None:
    jobs = [JobRequest(i, f"j{i}", gpus=GPUS[i % 4], estimate_h=1.0) for i in range(JOBS)]
    q = OnPremQueue(JOBS, ordered=True)
    model: dict[int, tuple[float, int]] = {}  # job -> (priority, order of queueing)
    for step, (j, prio) in enumerate(ops):
        if j in model:
            q.remove(j, 1.0)
            del model[j]
        else:
            q.push(jobs[j], prio, 1.0)
            model[j] = (prio, step)
        in_order = sorted(model, key=model.__getitem__)
        assert [e[2].id for e in q.entries()] == in_order
        assert q.count == len(model)
        assert sorted(q.buckets) == sorted({jobs[j].gpus for j in model})
        for g, lane in q.buckets.items():
            assert [e[2].id for e in lane] == [j for j in in_order if jobs[j].gpus == g]
        assert sorted(e[2].id for e in q.heads()) == sorted(
            lane[0][2].id for lane in q.buckets.values())
        assert q.order is not None
        assert [e[2].id for e in q.order] == in_order
    if not model:
        assert q.gpu_h == 0.0


# (job, end, GPUs): start the job with that estimated end if it is not running, else end it
running_ops = st.lists(st.tuples(st.integers(0, JOBS - 1), st.sampled_from((0.5, 1.0, 3.0)),
                                 st.sampled_from(GPUS)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(running_ops)
def test_running_jobs_are_read_earliest_end_first(ops: list[tuple[int, float, int]]) -> None:
    r = Running(JOBS)
    model: dict[int, tuple[float, int]] = {}
    for j, end, gpus in ops:
        if j in model:
            r.remove(j, model.pop(j)[1])
        else:
            r.add(j, end, gpus)
            model[j] = (end, gpus)
        assert list(r.by_end()) == sorted(model.values())
        assert len(r) == len(model)
    assert all(math.isnan(r._end[j]) for j in range(JOBS) if j not in model)


# (GPUs, job to release): allocate that many GPUs if they fit, else release a job's GPUs
pool_ops = st.lists(st.tuples(st.integers(1, 20), st.integers(0, 30)), max_size=80)


@settings(max_examples=200, deadline=None)
@given(pool_ops, st.sampled_from(("first", "best")))
def test_whether_a_job_fits_is_whether_some_node_has_room(ops: list[tuple[int, int]],
                                                          mode: str) -> None:
    pool = Pool(3, 8, mode)
    held: list[list[tuple[int, int]]] = []
    for gpus, k in ops:
        if pool.fits(gpus):
            held.append(pool.alloc(gpus))
        elif held:
            pool.release(held.pop(k % len(held)))
        for g in range(1, 25):
            whole_nodes = sum(f == 8 for f in pool.free) >= -(-g // 8)
            assert pool.fits(g) == (whole_nodes if g > 8 else max(pool.free) >= g)
        assert pool.top == max(pool.free)
        assert pool.total_free == sum(pool.free)
