"""A handle on one run: its status from the journal, and the loop that drives it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from placer.executor._status import RunStatus, run_status

if TYPE_CHECKING:
    from placer.executor._executor import Executor

__all__ = ["Run"]


class Run:
    """A handle on one run: status from the journal, progress by :meth:`wait` or :meth:`step`.

    A Run does not run in the background: whoever holds it drives it (``wait``), and a run
    whose driver died is continued by :func:`resume` from another process.
    """

    def __init__(self, executor: Executor, run_id: str) -> None:
        self.executor = executor
        self.id = run_id

    def __repr__(self) -> str:
        return f"Run({self.id!r})"

    def status(self) -> RunStatus:
        return run_status(self.executor.journal, self.id)

    def step(self) -> RunStatus:
        return self.executor.step(self.id)

    def wait(self, timeout: float | None = None) -> RunStatus:
        """Drive the run until it ends or ``timeout`` seconds pass; returns the status either
        way (check ``.done``)."""
        ex = self.executor
        with ex._driving(self.id):  # one driver per run; RunLockedError if another drives it
            deadline = None if timeout is None else ex.clock() + timeout
            mark = ex.journal.last_event(self.id)
            while True:
                if ex.journal.last_event(self.id) != mark:
                    # Someone wrote while we slept: only `cancel` does, without the lock.
                    # Read the run again rather than drive it on from what we remembered.
                    ex._runs.pop(self.id, None)
                st = self.step()
                mark = ex.journal.last_event(self.id)
                if st.done or (deadline is not None and ex.clock() >= deadline):
                    return st
                ex.sleep(ex.poll_interval_s)

    def logs(self, job: str) -> str:
        return self.executor.logs(self.id, job)

    def cancel(self) -> RunStatus:
        return self.executor.cancel(self.id)
