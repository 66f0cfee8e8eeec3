"""Calls of a Python function as Ray tasks: how ``placer bench hybrid --ray`` spreads its runs.

:class:`TaskRunner` is the Ray side of the simulator's runner seam
(:class:`placer.sim.bench.Runner`); the command takes it from the ray backend's entry point
(:meth:`RayJobsBackend.task_runner <placer_ray.RayJobsBackend.task_runner>`), so Ray stays in
this package. Ray is imported when the first calls are made.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from placer.errors import BackendUnavailableError


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailableError(
            f"--ray needs Ray: pip install 'placer[ray]' ({exc})"
        ) from exc
    return ray


class TaskRunner:
    """Runs each call as a one-CPU Ray task, yielding results as they finish.

    Args:
        address: ``"local"`` starts a Ray instance on loopback for the duration of
            :meth:`map`, one worker per core; ``"auto"`` joins the running cluster; anything
            else is a cluster address (``ray://host:10001`` or ``host:6379``). A Ray instance
            already initialised in this process is used as it is, and left running.
    """

    def __init__(self, address: str) -> None:
        self.address = address

    def __repr__(self) -> str:
        return f"TaskRunner(address={self.address!r})"

    def map(
        self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]
    ) -> Iterator[tuple[int, Any]]:
        """``(index in calls, fn(*call))`` for every call, in the order the tasks finish.

        ``fn`` must be importable by the workers (a module-level function of an installed
        package); it is pickled by reference.
        """
        ray = _import_ray()
        started = False
        if not ray.is_initialized():
            if self.address == "local":
                # every core: the runs are independent, one per worker
                ray.init(
                    num_cpus=os.cpu_count() or 1,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    log_to_driver=False,
                    configure_logging=False,
                )
            else:
                ray.init(address=self.address, log_to_driver=False, configure_logging=False)
            started = True
        try:
            task = ray.remote(num_cpus=1)(fn)
            refs = {task.remote(*call): i for i, call in enumerate(calls)}
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    yield refs[ref], ray.get(ref)
        finally:
            if started:
                ray.shutdown()
