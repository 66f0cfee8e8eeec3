"""The controller: one process that drives every unfinished run of a journal.

Without it a run moves on only while someone drives it (``submit --wait``, ``resume``): after
``placer submit`` the backend runs the first jobs, the journal says SUBMITTED, and the next job
of the DAG waits for a ``placer resume``. A :class:`Controller` drives them all instead:
every ``poll_s`` it lists the journal's unfinished runs (:meth:`Journal.unfinished_runs`) and
gives each one tick of the executor, the same tick ``placer resume --no-wait`` gives
(``Run.wait(timeout=0)``, under the run's driver lock), so nothing here decides anything the
executor does not already decide, and exactly-once holds as it does for ``resume``: intents
in the journal, deterministic submission ids, adoption with ``find``.

What one tick of a run may meet:

* another driver (``submit --wait``, ``resume`` in a terminal) holds the run's lock: the run
  is skipped this round, untouched (:class:`~placer.errors.RunLockedError`);
* any error: recorded in the run's event log as ``controller_error`` (once per distinct
  error, not every retry), logged, and the run is tried again after a backoff, rebuilt from the
  journal; the other runs go on. A run is never marked failed for the controller's trouble:
  the journal keeps what was done, and the next tick (here or in ``placer resume``) continues.

One controller per journal: it holds an exclusive ``flock`` on ``<journal>-controller.lock``
(a :class:`~placer.journal.DriverLock`, which the OS drops when the process dies) for its whole
life; a second one raises :class:`~placer.errors.ControllerRunningError` naming the first's
pid. :func:`controller_holder` tells a reader (``placer status``) who holds it. A journal in
PostgreSQL (shared by several hosts) holds a :class:`~placer.journal.Lease` named
``controller`` instead, renewed every round; a controller that finds its lease lost stops at
once (``ControllerRunningError``), and one started with ``standby=True`` waits for the lease
of the one that drives and takes over when it lapses (its holder was killed or cut off).

It exits once no unfinished run has been left for ``idle_exit_s`` (``None``: never, for a
service). ``clock`` and ``sleep`` are injected, as in the executor, so a test drives a whole
DAG in milliseconds; :func:`start_in_background` is how ``placer submit`` starts one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from placer.errors import (
    ControllerRunningError,
    ExecutionError,
    JournalError,
    PlacerError,
    RunLockedError,
)
from placer.executor import TERMINAL_RUN_STATES, Executor, Run, RunState, RunStatus
from placer.journal import DriverLock, Journal, Lease
from placer.models import Model

__all__ = [
    "CONTROLLER_COMMAND",
    "CONTROLLER_LEASE",
    "Background",
    "Controller",
    "ControllerHolder",
    "Tick",
    "controller_holder",
    "lock_path",
    "log_path",
    "start_in_background",
]

log = logging.getLogger("placer.controller")

CONTROLLER_COMMAND: list[str] = [sys.executable, "-m", "placer"]
"""How :func:`start_in_background` runs placer (``… controller --journal PATH`` follows);
tests swap it for a placer whose backends are fakes (``tests/cli/fakecluster.py``)."""

CONTROLLER_LEASE = "controller"
"""The name of a PostgreSQL journal's controller lease (runs' are ``run:<id>``)."""

_LOCK_TRIES = 5  # a reader probing the lock (controller_holder) holds it for microseconds


def lock_path(journal: Path) -> Path:
    """``<journal>-controller.lock``: beside the journal, never a run's ``<journal>.<run>.lock``."""
    return journal.with_name(f"{journal.name}-controller.lock")


def log_path(journal: Path) -> Path:
    """``<journal>-controller.log``: where a controller started in the background writes."""
    return journal.with_name(f"{journal.name}-controller.log")


class ControllerHolder(Model):
    """The controller that holds a journal's lock, as it wrote itself into the lock file."""

    pid: int | None = None
    host: str | None = None
    since: float | None = None

    def describe(self) -> str:
        """``pid 4242 (since 2026-11-28 10:00:00 UTC)``, with the host if it is another."""
        who = f"pid {self.pid}" if self.pid else "a process that has not said who it is yet"
        if self.host and self.host != os.uname().nodename:
            who += f" on {self.host}"
        if self.since is not None:
            who += " (since " + datetime.fromtimestamp(self.since, UTC).strftime(
                "%Y-%m-%d %H:%M:%S UTC") + ")"
        return who


def _holder_of(fd: int) -> ControllerHolder:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid, host, since = data.get("pid"), data.get("host"), data.get("since")
    return ControllerHolder(pid=pid if isinstance(pid, int) else None,
                            host=host if isinstance(host, str) else None,
                            since=since if isinstance(since, int | float) else None)


def controller_holder(journal: Path | Journal) -> ControllerHolder | None:
    """The controller driving ``journal`` now, or ``None``; read without taking its lock.

    The lock file alone does not say (a controller killed with ``kill -9`` leaves it behind),
    so the lock is probed: a shared, non-blocking ``flock`` succeeds only if nobody holds it.
    A PostgreSQL journal (an open :class:`Journal`) is asked for its ``controller`` lease,
    which counts only until it lapses.
    """
    import fcntl

    if isinstance(journal, Journal):
        if journal.path is not None:
            return controller_holder(journal.path)
        lease = journal.lease_holder(CONTROLLER_LEASE)
        if lease is None:
            return None
        pid, host, since = lease.get("pid"), lease.get("host"), lease.get("since")
        return ControllerHolder(pid=pid if isinstance(pid, int) else None,
                                host=host if isinstance(host, str) else None,
                                since=float(since) if isinstance(since, int | float) else None)

    try:
        fd = os.open(lock_path(journal), os.O_RDONLY)
    except OSError:
        return None  # no file: no controller ever ran, or the last one let go cleanly
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder_of(fd)
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class Tick(Model):
    """What one round over the journal did, run by run (run ids, oldest run first)."""

    driven: dict[str, RunState]
    """Runs given a tick, with their state after it."""
    locked: list[str]
    """Runs another process drives: skipped, untouched."""
    failed: dict[str, str]
    """Runs whose tick raised, with the error (secrets masked); tried again after a backoff."""
    deferred: list[str]
    """Runs still backing off after an error."""

    @property
    def unfinished(self) -> int:
        """Runs left to drive after this round: a controller is idle when there are none."""
        left = sum(1 for s in self.driven.values() if s not in TERMINAL_RUN_STATES)
        return left + len(self.locked) + len(self.failed) + len(self.deferred)


class Controller:
    """Drives every unfinished run of one journal, one executor tick per run per round.

    Args:
        journal: the journal whose runs it drives (opened for writing).
        poll_s: pause between rounds.
        idle_exit_s: exit after this long with no unfinished run; ``None``: never.
        max_backoff_s: the longest pause before a run whose tick failed is tried again (the
            pause doubles from ``poll_s`` with each failure in a row).
        clock, sleep: injectable time (monotonic seconds), also given to every executor.
        strategies: makes a run's own strategy from the name and budget it was submitted with
            (its ``strategy`` event); a run that has one is driven by it whatever this
            controller's ``strategy`` option says, and refused (an error in its events) when
            ``strategies`` is ``None``.
        standby: when another controller drives the journal, wait (polling every
            ``poll_s``) until its lock is free or its lease lapses and take over, instead of
            raising :class:`ControllerRunningError`.
        executor_options: for :meth:`Executor.for_run` (``decision_log``, ``backends``,
            ``strategy`` for runs submitted without one, …).

    Use :meth:`run`; or ``with controller:`` (takes the journal's controller lock) and
    :meth:`tick` for one round at a time.
    """

    def __init__(self, journal: Journal, *, poll_s: float = 5.0,
                 idle_exit_s: float | None = 60.0, max_backoff_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 strategies: Callable[[str, float], Callable[[], Any]] | None = None,
                 standby: bool = False, **executor_options: Any) -> None:
        if poll_s <= 0:
            raise ValueError("poll_s must be positive")
        if idle_exit_s is not None and idle_exit_s < 0:
            raise ValueError("idle_exit_s must be at least 0")
        self.journal = journal
        self.poll_s = poll_s
        self.idle_exit_s = idle_exit_s
        self.max_backoff_s = max(max_backoff_s, poll_s)
        self.clock = clock
        self.sleep = sleep
        self.executor_options = executor_options
        self.strategies = strategies
        if journal.shared and poll_s * 2 > journal.lease_s:
            raise ValueError(f"poll_s ({poll_s:g}s) must be under half the journal's lease "
                             f"({journal.lease_s:g}s): the controller renews its lease every "
                             "round")
        self.standby = standby
        self._lock: DriverLock | Lease = (
            journal.lease(CONTROLLER_LEASE) if journal.path is None
            else DriverLock(lock_path(journal.path), "controller"))
        self._depth = 0  # `with` re-entered (run() inside `with controller:`)
        self._stopping = False
        self._executors: dict[str, Executor] = {}
        self._failures: dict[str, int] = {}  # run → failed ticks in a row
        self._retry_at: dict[str, float] = {}
        self._recorded: dict[str, str] = {}  # run → the error last recorded in its events
        self._shown: dict[str, str] = {}  # run → its last logged progress line

    # -- the lock ---------------------------------------------------------------------------
    def __enter__(self) -> Controller:
        if self._depth:
            self._depth += 1
            return self
        attempt = 0
        while True:
            try:
                self._lock.acquire()
                break
            except RunLockedError as exc:
                attempt += 1
                if self.standby and attempt >= _LOCK_TRIES and not self._stopping:
                    if attempt == _LOCK_TRIES:
                        log.info("another controller drives journal %s: standing by",
                                 self.journal.where)
                    self.sleep(self.poll_s)
                    continue
                if attempt >= _LOCK_TRIES:  # (stopped while standing by: the same answer)
                    holder = (controller_holder(self.journal) if self.journal.shared else None) \
                        or ControllerHolder(pid=exc.pid, since=exc.since)
                    raise ControllerRunningError(
                        f"a controller already drives journal {self.journal.where}: "
                        f"{holder.describe()}; one controller per journal: let it drive, "
                        "or stop it first", pid=exc.pid, since=exc.since) from None
                self.sleep(0.05)
        self._depth = 1
        log.info("controller pid %d drives journal %s", os.getpid(), self.journal.where)
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._executors.clear()
            self._lock.release()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the run it is driving (safe from a signal handler)."""
        self._stopping = True

    # -- the loop ---------------------------------------------------------------------------
    def run(self, *, once: bool = False) -> int:
        """Drive until no unfinished run is left for ``idle_exit_s`` (or :meth:`stop`; or one
        round with ``once``); returns the number of rounds.

        Raises:
            ControllerRunningError: another controller drives the journal (nothing is done).
        """
        rounds = 0
        with self:
            idle_since: float | None = None
            while True:
                try:
                    busy = self.tick().unfinished > 0
                except ControllerRunningError:  # its lease was lost: another one drives now
                    raise
                except PlacerError as exc:  # the journal itself could not be read: try again
                    log.error("cannot list the runs of %s: %s", self.journal.where,
                              self._mask(exc))
                    busy = True
                rounds += 1
                if once or self._stopping:
                    return rounds
                now = self.clock()
                if busy or self.idle_exit_s is None:
                    idle_since = None
                else:
                    idle_since = now if idle_since is None else idle_since
                    if now - idle_since >= self.idle_exit_s:
                        log.info("no run left to drive for %gs: controller exits",
                                 self.idle_exit_s)
                        return rounds
                self.sleep(self.poll_s)
                if self._stopping:
                    return rounds

    def tick(self) -> Tick:
        """One round: one executor tick for every unfinished run of the journal, oldest first.

        Raises:
            JournalError: the journal's runs could not be listed (no run was touched).
        """
        if not self._lock.held:
            raise ExecutionError("a controller ticks only while it holds the journal's "
                                 "controller lock: use run() or `with controller:`")
        self._renew()
        driven: dict[str, RunState] = {}
        locked: list[str] = []
        failed: dict[str, str] = {}
        deferred: list[str] = []
        unfinished = [r.id for r in self.journal.unfinished_runs()]
        for rid in unfinished:
            if self._stopping:
                break
            if self._retry_at.get(rid, -math.inf) > self.clock():
                deferred.append(rid)
                continue
            try:
                st = self._drive(rid)
            except RunLockedError:  # another process drives it: theirs for now
                log.debug("run %s is driven by another process; skipped", rid)
                locked.append(rid)
                continue
            except Exception as exc:  # one run's failure, whatever it is, stops no other run
                failed[rid] = self._failed(rid, exc)
                continue
            self._succeeded(rid, st)
            driven[rid] = st.state
        # Runs that ended elsewhere (cancelled, finished by `resume`) are nothing to remember.
        for rid in {*self._executors, *self._failures, *self._shown} - set(unfinished):
            self._forget(rid)
        return Tick(driven=driven, locked=locked, failed=failed, deferred=deferred)

    def _renew(self) -> None:
        """Renew the controller's lease (PostgreSQL), or stop: a controller whose lease lapsed
        may have been replaced, and two controllers must not drive one journal."""
        if not isinstance(self._lock, Lease):
            return
        try:
            self._lock.renew()
        except JournalError as exc:
            if self._lock.held:  # the database could not be reached: the lease may still be ours
                raise
            log.error("%s", self._mask(exc))
            raise ControllerRunningError(
                f"this controller lost its lease on journal {self.journal.where}: another "
                "controller may drive it now; stopping") from exc

    # -- one run ----------------------------------------------------------------------------
    def _drive(self, rid: str) -> RunStatus:
        """One executor tick under the run's driver lock, as ``placer resume --no-wait``."""
        ex = self._executors.get(rid)
        if ex is None:
            options = dict(self.executor_options)
            own = self.journal.events(rid, "strategy")
            if own:
                name, budget = str(own[-1].data["name"]), float(own[-1].data["budget"])
                if self.strategies is None:
                    raise ExecutionError(f"run {rid} was submitted to be decided by strategy "
                                         f"{name}, which this controller cannot make")
                options["strategy"] = self.strategies(name, budget)
            ex = Executor.for_run(self.journal, rid, clock=self.clock, sleep=self.sleep,
                                  **options)
            self._executors[rid] = ex
        return Run(ex, rid).wait(timeout=0)

    def _succeeded(self, rid: str, st: RunStatus) -> None:
        if rid in self._recorded:
            self._record(rid, "controller_recovered")
        self._failures.pop(rid, None)
        self._retry_at.pop(rid, None)
        self._recorded.pop(rid, None)
        line = f"{st.state.value}: " + ", ".join(f"{j.job} {j.state}" for j in st.jobs.values())
        if self._shown.get(rid) != line:
            log.info("run %s %s", rid, self._mask(line))
            self._shown[rid] = line
        if st.done:
            self._forget(rid)

    def _failed(self, rid: str, exc: Exception) -> str:
        """Back off, rebuild the run from the journal next time, and say why, once."""
        self._executors.pop(rid, None)  # whatever it remembered may be half-updated
        n = self._failures[rid] = self._failures.get(rid, 0) + 1
        delay = min(self.poll_s * 2 ** (n - 1), self.max_backoff_s)
        self._retry_at[rid] = self.clock() + delay
        text = self._mask(exc if isinstance(exc, PlacerError)
                          else f"{type(exc).__name__}: {exc}")
        if isinstance(exc, PlacerError):
            log.warning("run %s: %s (tried again in %gs)", rid, text, delay)
        else:  # a bug or an unexpected SDK error: the traceback is for whoever fixes it
            log.error("run %s: %s (tried again in %gs)", rid, text, delay,
                      exc_info=(type(exc), exc, exc.__traceback__))
        if self._recorded.get(rid) != text and self._record(rid, "controller_error", error=text,
                                                             retry_in_s=delay):
            self._recorded[rid] = text
        return text

    def _record(self, rid: str, kind: str, **data: Any) -> bool:
        try:
            self.journal.record_event(rid, kind, pid=os.getpid(), **data)
        except PlacerError as exc:
            log.error("run %s: could not record %s in the journal: %s", rid, kind,
                      self._mask(exc))
            return False
        return True

    def _forget(self, rid: str) -> None:
        for memo in (self._executors, self._failures, self._retry_at, self._recorded,
                     self._shown):
            memo.pop(rid, None)

    def _mask(self, text: object) -> str:
        return self.journal.redactor.text(str(text))


class Background(Model):
    """What :func:`start_in_background` found or did."""

    pid: int | None
    """The controller driving the journal (``None``: it did not start)."""
    started: bool
    """Whether this call started it (``False``: one was running already, or it failed)."""
    log: Path
    error: str | None = None
    """Why it did not start: the end of its log."""


def start_in_background(journal: Path, *, wait_s: float = 10.0,
                        clock: Callable[[], float] = time.monotonic,
                        sleep: Callable[[float], None] = time.sleep) -> Background:
    """Start a detached controller for ``journal`` unless one drives it already.

    The controller runs as ``CONTROLLER_COMMAND controller --journal PATH`` in a session of its
    own (a terminal closing does not stop it), with this process's environment (the sites'
    token variables) and working directory, writing to :func:`log_path`. Waits up to ``wait_s``
    for it to hold the journal's lock, so a controller that cannot start is reported now rather
    than found out from a run that never moves. Two started at once: the second exits at once
    (the lock) and the first is reported. Spawned with ``posix_spawn``, not ``Popen``: this
    process is about to exit and leave it running, which a Popen object would warn about.
    """
    journal = journal.resolve()
    logfile = log_path(journal)
    running = controller_holder(journal)
    if running is not None:
        return Background(pid=running.pid, started=False, log=logfile)
    logfile.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    command = [*CONTROLLER_COMMAND, "controller", "--journal", str(journal)]
    fd = os.open(logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    start = os.lseek(fd, 0, os.SEEK_END)
    try:
        pid = os.posix_spawnp(command[0], command, dict(os.environ), setsid=True, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2)])
    except OSError as exc:
        return Background(pid=None, started=False, log=logfile,
                          error=f"cannot run {command[0]}: {exc}")
    finally:
        os.close(fd)
    deadline = clock() + wait_s
    while clock() < deadline:
        holder = controller_holder(journal)
        if holder is not None and holder.pid == pid:
            return Background(pid=pid, started=True, log=logfile)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            other = controller_holder(journal)
            if other is not None:  # another one won the race: it drives the journal
                return Background(pid=other.pid, started=False, log=logfile)
            with logfile.open("rb") as f:
                f.seek(start)
                tail = f.read().decode(errors="replace").strip().splitlines()[-3:]
            return Background(pid=None, started=False, log=logfile,
                              error=f"it exited with code {os.waitstatus_to_exitcode(status)}: "
                              + " / ".join(tail))
        sleep(0.05)
    return Background(pid=pid, started=True, log=logfile,
                      error=f"it has not taken the journal's lock after {wait_s:g}s")
