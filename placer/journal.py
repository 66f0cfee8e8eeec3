"""The journal: a run store that records what placer is about to do before it does it.

SQLite is the embedded default (a path); a ``postgresql://`` URL keeps the journal in
PostgreSQL instead, for a controller a team shares across hosts. Everything below is one
implementation over both stores: :mod:`placer.journal_pg` is only a dialect under it (and its
leases), so SQLite's code path and on-disk schema are what they always were.

Every plan, submission, state change and transfer is written (and fsynced: WAL mode with
``synchronous=FULL``) *before* the action it describes, and its outcome after. Killing placer at
any moment therefore leaves, for every step, either nothing (never submitted), an intent (maybe
submitted: the executor asks the backend with the deterministic ``submission_id`` and adopts
what it finds), or an outcome. That is what makes ``placer resume`` exactly-once.

Tables (schema version in ``meta``):

* ``runs``: one row per run: the pipeline, first plan, inventory and policies as JSON (what a
  resume needs to re-plan), stored exactly as submitted with their sha256 (``spec_sha256``),
  the policy hash, and the run state;
* ``plans``: every plan of a run, the first and each re-plan after a failure, with the reason
  and the plan's sha256;
* ``steps``: one row per (run, job, attempt): site, ``submission_id``, backend handle, state,
  times and planned cost;
* ``transfers``: data copies between locations, intent then outcome;
* ``events``: an append-only log (triggers refuse UPDATE and DELETE) of everything above.

Integrity: the run spec and every plan are what the executor decides from (where a job may
run, what it runs with), so they are stored verbatim (never redacted) with a sha256 beside them,
checked whenever they are read back. A mismatch is a :class:`~placer.errors.JournalError`: a run
is never re-planned from data that differs from what was submitted. They come back typed:
:meth:`Journal.run_spec` is a :class:`RunSpec` (Pipeline, Inventory, PolicySet) and
:meth:`Journal.plans` a list of :class:`PlanRecord` (each with its :class:`~placer.models.Plan`),
validated once there, after the hash check; steps, transfers and events are records too.
Step and run states are :class:`StepState` and :class:`RunState`, ``str`` enums stored as
their names.

Concurrency: one driver per run. Whoever drives a run (``Executor.start``, ``resume``,
``Run.wait``, ``placer controller`` one tick at a time) holds :meth:`Journal.driving`, an
exclusive ``flock`` on ``<journal>.<run>.lock`` that the OS releases when the process dies; a
second driver is refused at once with :class:`~placer.errors.RunLockedError` naming the
holder's pid (it does not wait: run it again once the first has finished). ``cancel`` takes no
lock: it may stop a run's jobs while another process drives it. Any number of
readers (``placer status``, ``placer runs``) may open the journal with ``readonly=True`` at the
same time, which WAL mode allows without blocking the writer.

In PostgreSQL (several hosts, no kernel to drop a dead process's lock) the driver lock is a
:class:`Lease` instead: a row with an expiry, renewed by every write its holder makes to the
run (checked in that write's own transaction: a holder whose lease lapsed is refused before
it records an intent), taken over atomically once it lapses (``lease_s``). Writers queue
behind a transaction-scoped advisory lock, as SQLite's ``BEGIN IMMEDIATE`` makes them queue.

Secrets: credentials live in the environment and in files the inventory names
(``cluster.token_env`` / ``token_file``), never in the models. The journal learns their values
(:func:`placer.secrets.secret_values`) for every run it records or reads, refuses to record a
run spec that contains one (a pipeline must name a secret's variable, not hold its value), and
masks them, with a :class:`~placer.secrets.Redactor`, in everything it writes as display text:
reasons and the event log.

Errors: every SQLite failure (disk full, a locked or damaged file, a file that is not a placer
journal) is raised as a :class:`~placer.errors.JournalError` naming the journal's path, and
every PostgreSQL one naming its URL with the password masked (:attr:`Journal.where`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import secrets as _secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar, cast

from pydantic import BaseModel, PrivateAttr, ValidationError

from placer import journal_pg
from placer.errors import (
    ConfigError,
    ErrorDetail,
    JournalError,
    RunLockedError,
    RunNotFoundError,
)
from placer.models import Inventory, Model, Pipeline, Plan
from placer.policy import PolicySet
from placer.secrets import MASK, Redactor, secret_values

__all__ = [
    "ACTIVE_STEP_STATES", "FINAL_STEP_STATES", "SCHEMA_VERSION", "TERMINAL_RUN_STATES",
    "DriverLock", "EventRecord", "Journal", "Lease", "PlanRecord", "Redactor", "RunRecord",
    "RunSpec", "RunState", "StepRecord", "StepState", "TransferRecord", "default_location",
    "default_path", "is_url",
]

_R = TypeVar("_R", bound=BaseModel)

SCHEMA_VERSION = 2
COPY_PARTS = journal_pg.COPY_PARTS  # placer.transfer's ledger table (one DDL, both dialects)
# PRAGMA application_id of a placer journal ("plcr"): tells it from other SQLite files.
APPLICATION_ID = 0x706C6372
ENV_PATH = "PLACER_JOURNAL"
ENV_LEASE = "PLACER_JOURNAL_LEASE"
Lease = journal_pg.Lease
"""A PostgreSQL journal's driver lock: a row with an expiry, renewed while held."""


class _Cursor(Protocol):
    @property
    def lastrowid(self) -> int | None: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class _Connection(Protocol):
    """What the journal's logic needs of a store: ``sqlite3.Connection``, or
    :class:`placer.journal_pg.Connection`, which speaks the same SQL to PostgreSQL."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Any = ..., /) -> _Cursor: ...

    def close(self) -> None: ...


class StepState(StrEnum):
    """The state of one step (one attempt of one job), as the journal stores it.

    A ``str`` enum: each member is its own name, stored and compared as that string.
    """

    INTENT = "INTENT"  # about to submit: maybe submitted, ask the backend on resume
    SUBMITTED = "SUBMITTED"  # the backend accepted it
    PENDING = "PENDING"  # as the backend reports, from here to STOPPED
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    LOST = "LOST"  # its site went down while it was in flight; a later attempt runs elsewhere
    STUCK = "STUCK"  # no eligible site is left for it; the reason says why
    BLOCKED = "BLOCKED"  # an upstream job is stuck or failed for good


class RunState(StrEnum):
    """The state of a run, as the journal stores it (a ``str`` enum, like :class:`StepState`)."""

    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"  # cancel requested; some job could not be stopped yet
    CANCELLED = "CANCELLED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STUCK = "STUCK"


ACTIVE_STEP_STATES: frozenset[StepState] = frozenset(
    {StepState.INTENT, StepState.SUBMITTED, StepState.PENDING, StepState.RUNNING})
"""In flight: maybe or surely on a cluster."""
FINAL_STEP_STATES: frozenset[StepState] = frozenset(
    {StepState.SUCCEEDED, StepState.FAILED, StepState.STOPPED, StepState.LOST, StepState.STUCK,
     StepState.BLOCKED})
"""A step in one of these has ended (its ``finished`` time is set); a later attempt may not."""
TERMINAL_RUN_STATES: frozenset[RunState] = frozenset(
    {RunState.CANCELLED, RunState.SUCCEEDED, RunState.FAILED, RunState.STUCK})


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    pipeline_name TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    plan TEXT NOT NULL,
    inventory TEXT NOT NULL,
    policies TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    spec_sha256 TEXT
);
CREATE TABLE plans (
    run TEXT NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    created REAL NOT NULL,
    reason TEXT NOT NULL,
    plan TEXT NOT NULL,
    sha256 TEXT,
    PRIMARY KEY (run, seq)
);
CREATE TABLE steps (
    run TEXT NOT NULL REFERENCES runs(id),
    job TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    site TEXT,
    location TEXT,
    submission_id TEXT UNIQUE,
    backend TEXT,
    handle TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    submitted REAL,
    started REAL,
    finished REAL,
    cost_usd REAL,
    PRIMARY KEY (run, job, attempt)
);
CREATE TABLE transfers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL REFERENCES runs(id),
    job TEXT NOT NULL,
    src_uri TEXT NOT NULL,
    dst_uri TEXT NOT NULL,
    src_location TEXT,
    dst_location TEXT,
    state TEXT NOT NULL,
    bytes INTEGER,
    checksum TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL REFERENCES runs(id),
    ts REAL NOT NULL,
    job TEXT,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
""" + journal_pg.COPY_PARTS + """;
CREATE INDEX events_by_run ON events (run, seq);
CREATE INDEX runs_by_created ON runs (created);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
"""

# Version 1 stored run specs and plans through the redactor (a key that looked secret had its
# value replaced by "***"); version 2 stores them verbatim with a sha256. A version-1 run keeps
# a NULL hash: it can be listed and shown, and resumed only if nothing in it was masked.
_MIGRATIONS: dict[int, str] = {
    2: """
ALTER TABLE runs ADD COLUMN spec_sha256 TEXT;
ALTER TABLE plans ADD COLUMN sha256 TEXT;
""",
}


def default_path() -> Path:
    """``$PLACER_JOURNAL``, else ``journal.db`` in the user's data directory for placer.

    A ``postgresql://`` URL in ``$PLACER_JOURNAL`` is not a path: see :func:`default_location`.
    """
    env = os.environ.get(ENV_PATH)
    if env and not journal_pg.is_url(env):
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("placer")) / "journal.db"


def default_location() -> str | Path:
    """Where the journal is when none is named: ``$PLACER_JOURNAL`` (a path, or a
    ``postgresql://`` URL), else :func:`default_path`."""
    env = os.environ.get(ENV_PATH)
    return env if env and journal_pg.is_url(env) else default_path()


def _lease_s(given: float | None) -> float:
    """The lease period: as given, else ``$PLACER_JOURNAL_LEASE``, else the default."""
    text = None if given is None else f"{given:g}"
    if given is None:
        text = os.environ.get(ENV_LEASE) or None
        try:
            given = float(text) if text else journal_pg.DEFAULT_LEASE_S
        except ValueError:
            given = math.nan
    if not given > 0 or math.isinf(given):
        raise ConfigError(ErrorDetail(f"a journal's lease lasts a positive number of seconds, "
                                      f"not {text!r}", field=ENV_LEASE))
    return given


def is_url(location: object) -> bool:
    """Whether a journal location is a PostgreSQL URL (else it is a SQLite file)."""
    return journal_pg.is_url(location)


class RunRecord(Model):
    """One run as the journal knows it (what ``placer runs`` lists)."""

    id: str
    created: float
    updated: float
    pipeline_name: str
    policy_hash: str
    state: RunState
    reason: str | None = None


class StepRecord(Model):
    """One attempt of one job of a run."""

    run: str
    job: str
    attempt: int
    site: str | None
    location: str | None
    submission_id: str | None
    backend: str | None
    handle: str | None
    state: StepState
    reason: str | None
    created: float
    updated: float
    submitted: float | None
    started: float | None
    finished: float | None
    cost_usd: float | None


class EventRecord(Model):
    """One line of a run's append-only log."""

    seq: int
    run: str
    ts: float
    job: str | None
    kind: str
    data: dict[str, Any]


class TransferRecord(Model):
    """One copy of data between locations: recorded as intended before it starts."""

    id: int
    run: str
    job: str
    src_uri: str
    dst_uri: str
    src_location: str | None
    dst_location: str | None
    state: str
    bytes: int | None
    checksum: str | None


class _Verbatim(Model):
    """A record validated from JSON the journal stores verbatim, keeping that JSON.

    :attr:`stored` is the JSON as stored (checked against its sha256, where one was recorded,
    before it was validated): evidence of what was submitted, byte for byte. Code that decides
    reads the typed fields.
    """

    _stored: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def stored(self) -> dict[str, Any]:
        return self._stored


class PlanRecord(_Verbatim):
    """One plan of a run: the first (``seq`` 0) or a re-plan after a failure, with why."""

    run: str
    seq: int
    created: float
    reason: str
    plan: Plan


class RunSpec(_Verbatim):
    """What a run was submitted with: its pipeline, inventory and policies, as stored.

    Validated once, when read back (after the sha256 check); :attr:`stored` keeps the stored
    JSON of each part (``spec.stored["pipeline"]``).
    """

    run: str
    pipeline: Pipeline
    inventory: Inventory
    policies: PolicySet


class DriverLock:
    """The exclusive right to drive one run: an advisory ``flock`` on a file beside the journal.

    ``<journal>.<run>.lock`` (e.g. ``journal.db.run-20261128-0a1b2c.lock``). The kernel drops
    the lock when the holder's process exits, however it exits (``kill -9`` included), so a
    crashed driver never leaves a stale lock: a file left behind is simply locked again. While
    held, the file names the holder (pid, host, since when) for the message a second driver
    gets; it is removed when the holder lets go. Taken with :meth:`Journal.driving`.
    """

    def __init__(self, path: Path, run_id: str, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.run_id = run_id
        self.depth = 0
        self._clock = clock
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock now or raise :class:`RunLockedError` naming who holds it."""
        import fcntl  # POSIX; placer's executor runs on Linux and macOS

        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise JournalError(f"cannot create the driver lock {self.path}: {exc}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                self._refuse(fd, exc)
            # A holder that let go between our open and our flock removed the file we locked:
            # lock the one at the path now, or two drivers would each hold a lock.
            try:
                st, now = os.fstat(fd), os.stat(self.path)
                if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        with suppress(OSError):  # who holds it is for messages only: a full disk may refuse
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": _host(),
                                      "since": self._clock()}).encode(), 0)
        self._fd = fd

    def _refuse(self, fd: int, exc: OSError) -> NoReturn:
        """Raise why the lock cannot be had: who holds it, or the OS error."""
        holder = _holder(fd)
        os.close(fd)
        if not isinstance(exc, BlockingIOError):
            raise JournalError(f"cannot lock {self.path}: {exc}") from exc
        pid, since = holder.get("pid"), holder.get("since")
        who = f"pid {pid}" if pid else "another process"
        if holder.get("host") and holder.get("host") != _host():
            who += f" on {holder['host']}"
        when = (" (since " + datetime.fromtimestamp(since, UTC).strftime(
            "%Y-%m-%d %H:%M:%S UTC") + ")") if isinstance(since, int | float) else ""
        raise RunLockedError(
            f"run {self.run_id} is being driven by {who}{when}; one process drives a "
            "run at a time: let it finish (`placer status` shows progress) or stop it, "
            f"then `placer resume {self.run_id}`",
            pid=pid if isinstance(pid, int) else None,
            since=since if isinstance(since, int | float) else None) from None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with suppress(OSError):  # removed while still held: see acquire
            os.unlink(self.path)
        os.close(fd)  # drops the flock


def _host() -> str:
    return os.uname().nodename


def _holder(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_F = TypeVar("_F", bound=Callable[..., Any])
_V = TypeVar("_V", bound=_Verbatim)


def _sql(what: str) -> Callable[[_F], _F]:
    """Raise SQLite's errors from a Journal method as :class:`JournalError` naming the file."""

    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def inner(self: Journal, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except (sqlite3.Error, journal_pg.StoreError) as exc:
                hint = " (is the disk full?)" if "disk" in str(exc) else ""
                raise JournalError(f"journal {self.where}: cannot {what}: {exc}{hint}") from exc

        return cast(_F, inner)

    return wrap


class Journal:
    """The run store. ``Journal()`` opens (creating if needed) the default path.

    Args:
        path: where the journal is: a SQLite file (the embedded default), or a
            ``postgresql://`` URL (a journal shared by a team's controllers on several hosts:
            :mod:`placer.journal_pg`); ``$PLACER_JOURNAL`` or the user data dir when omitted.
        readonly: open for reading only (a second process watching a run).
        redactor: masks secrets in the display text written (reasons, events); a default one
            (secret-looking environment variables) when omitted. The journal teaches it the
            secrets of every run it records or reads (:func:`placer.secrets.secret_values`).
        clock: wall-clock seconds for timestamps (injectable for tests).
        lease_s: PostgreSQL only: how long a driver's lease lasts without renewal (a killed
            driver's runs are taken over after at most this long); ``$PLACER_JOURNAL_LEASE``
            or 60 seconds when omitted. SQLite's locks are ``flock``, which the OS drops when
            the process dies.

    Attributes:
        path: the SQLite file (``None`` for PostgreSQL).
        url: the PostgreSQL URL (``None`` for SQLite).
        where: the journal as every message names it (the URL with its password masked).

    Raises:
        JournalError: the file is not a placer journal (another kind of file, another
            program's SQLite database; readers also refuse an empty file), is from a newer
            placer, or cannot be opened.
    """

    path: Path | None
    url: str | None
    _db: _Connection

    def __init__(self, path: str | Path | None = None, *, readonly: bool = False,
                 redactor: Redactor | None = None,
                 clock: Callable[[], float] = time.time,
                 lease_s: float | None = None) -> None:
        location = path if path is not None else default_location()
        self.readonly = readonly
        self.redactor = redactor or Redactor()
        self._clock = clock
        # Only a PostgreSQL journal has leases: $PLACER_JOURNAL_LEASE means nothing to SQLite.
        self.lease_s = journal_pg.DEFAULT_LEASE_S if lease_s is None else lease_s
        self._driving: dict[str, DriverLock | Lease] = {}
        self._learnt: set[str] = set()  # runs whose secrets the redactor knows
        if journal_pg.is_url(location):
            self.lease_s = _lease_s(lease_s)
            self.url, self.path = str(location), None
            self.where = journal_pg.redact(self.url)
            self._db = journal_pg.connect(self.url, version=SCHEMA_VERSION, readonly=readonly)
            return
        self.url = None
        self.path = Path(location)
        self.where = str(self.path)
        if self.path.is_dir():
            raise JournalError(f"{self.path} is a directory, not a placer journal")
        try:
            if readonly:
                if not self.path.exists():
                    raise JournalError(f"no journal at {self.path}")
                db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                     isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not self.path.exists():
                    # Owner-only from the first byte: run metadata is nobody else's business.
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
                db = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        self._db = db
        try:
            db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("PRAGMA foreign_keys = ON")
            # Before anything is written: never turn another program's file into a journal.
            self._check_kind()
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                # FULL: an intent row is on disk before the submission it announces is made.
                self._db.execute("PRAGMA synchronous = FULL")
                self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise JournalError(f"{self.path} is not a placer journal ({exc})") from exc
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        for lock in list(self._driving.values()):
            lock.release()
        self._driving.clear()
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _file(self) -> Path:
        """The SQLite file (what only SQLite's code paths ask for)."""
        if self.path is None:
            raise JournalError(f"journal {self.where} is not a SQLite file")
        return self.path

    @property
    def shared(self) -> bool:
        """Whether several hosts may share this journal (PostgreSQL): its locks are leases."""
        return self.url is not None

    def _version(self) -> int:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if not has_meta:
            return 0
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            return int(row["value"]) if row else 0
        except ValueError:
            return 0

    def _check_kind(self) -> None:
        """Refuse a file that is not a placer journal, and one from a newer placer.

        An empty database is a journal yet to be made (a writer makes it; a reader has nothing
        to read). A placer journal carries :data:`APPLICATION_ID` (version 1 ones did not: they
        are known by their ``meta`` version and ``runs`` table).
        """
        app_id = self._db.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type='table'").fetchall()}
        version = self._version()
        ours = app_id == APPLICATION_ID or (app_id == 0 and version >= 1 and "runs" in tables)
        if not tables and app_id == 0:
            if self.readonly:
                what = "an empty file" if self._file.stat().st_size == 0 else "no tables"
                raise JournalError(f"{self.path} is not a placer journal ({what})")
            return
        if not ours:
            what = (f"application id {app_id:#x}" if app_id
                    else "tables " + ", ".join(sorted(tables)[:5]))
            raise JournalError(f"{self.path} is not a placer journal (an SQLite database "
                               f"of another program: {what})")
        if version > SCHEMA_VERSION:
            raise JournalError(f"journal {self.path} has schema version {version}, newer than "
                               f"this placer understands ({SCHEMA_VERSION}); upgrade placer")
        if version < 1:
            raise JournalError(f"{self.path} is not a placer journal (no schema version)")

    def _migrate(self) -> None:
        version = self._version()
        if version == SCHEMA_VERSION:
            return
        with self._tx():
            if version == 0:
                for stmt in _statements(_SCHEMA):
                    self._db.execute(stmt)
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                                 (str(SCHEMA_VERSION),))
            else:
                for v in range(version + 1, SCHEMA_VERSION + 1):
                    for stmt in _statements(_MIGRATIONS[v]):
                        self._db.execute(stmt)
                self._db.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                                 (str(SCHEMA_VERSION),))
            self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    @contextmanager
    def _tx(self) -> Iterator[_Connection]:
        """One write transaction; IMMEDIATE so a second writer waits instead of failing late.

        Committed when the block ends, rolled back if it raises (or if the commit itself
        fails, e.g. on a full disk): a failed write leaves nothing half-recorded.
        """
        if self.readonly:
            raise JournalError(f"journal {self.where} was opened read-only")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                # SQLite may have rolled back already (disk full).
                with suppress(sqlite3.Error, journal_pg.StoreError):
                    self._db.execute("ROLLBACK")
            raise

    def _json(self, obj: Any) -> str:
        """Display/log data (events): secrets masked."""
        if isinstance(obj, BaseModel):
            obj = obj.model_dump(mode="json", by_alias=True)
        return json.dumps(self.redactor.data(obj), sort_keys=True, separators=(",", ":"))

    @staticmethod
    def _spec(obj: Any) -> str:
        """Data the executor decides from: stored verbatim, never redacted."""
        if isinstance(obj, BaseModel):
            obj = obj.model_dump(mode="json", by_alias=True)
        return json.dumps(obj, sort_keys=True, separators=(",", ":"))

    def _loads(self, text: str, run_id: str, table: str, column: str) -> Any:
        try:
            return json.loads(text)
        except (TypeError, ValueError) as exc:
            raise JournalError(f"journal {self.where}: run {run_id}: {table}.{column} is not "
                               f"valid JSON ({exc}); the journal is damaged") from None

    def _learn(self, run_id: str, inventory: Any) -> None:
        """Teach the redactor the secrets of the run's sites (once per run)."""
        if run_id in self._learnt:
            return
        self.redactor.add(*secret_values(_sites_of(inventory)))
        self._learnt.add(run_id)

    def _event(self, db: _Connection, run: str, kind: str, job: str | None,
               data: Mapping[str, Any]) -> None:
        lock = self._driving.get(run)
        if isinstance(lock, Lease):
            # Every write to a run its driver makes goes through here, in the write's own
            # transaction: a driver whose lease lapsed is refused before it records an intent
            # (and so before it submits), never after; one that still holds it renews it.
            lock.renew(cast(journal_pg.Connection, db))
        db.execute("INSERT INTO events (run, ts, job, kind, data) VALUES (?, ?, ?, ?, ?)",
                   (run, self._clock(), job, kind, self._json(dict(data))))

    # -- drivers --------------------------------------------------------------------------------
    @contextmanager
    def driving(self, run_id: str, *, new: bool = False) -> Iterator[DriverLock | Lease]:
        """Hold the run's :class:`DriverLock` for the block: only one process drives a run.

        A PostgreSQL journal's is a :class:`Lease` instead (several hosts share it): renewed
        by every write to the run while held, taken over once it has lapsed; a holder whose
        lease lapsed gets :class:`JournalError` from its next write to the run.

        Re-entrant within this journal object. Raises :class:`RunLockedError` at once if
        another process holds it (``placer resume`` of a run that ``submit --wait`` drives),
        :class:`RunNotFoundError` for an unknown run. ``new``: the run is about to be
        created in the block (``Executor.start`` locks it first, so a controller never drives
        a run before the process that submits it has let go of it).
        """
        lock = self._driving.get(run_id)
        if lock is None:
            if self.readonly:
                raise JournalError(f"journal {self.where} was opened read-only; it cannot drive "
                                   f"run {run_id}")
            if not new:
                self.run(run_id)
            lock = self.lease(f"run:{run_id}", run_id) if self.shared else \
                DriverLock(self._lock_path(run_id), run_id, self._clock)
            lock.acquire()
            self._driving[run_id] = lock
        lock.depth += 1
        try:
            yield lock
        finally:
            lock.depth -= 1
            if lock.depth == 0:
                del self._driving[run_id]
                lock.release()

    def lease(self, name: str, run_id: str | None = None) -> Lease:
        """A lease named ``name`` in this (PostgreSQL) journal, not yet taken: a run's driver
        lock (``run:<id>``) or the journal's controller (``controller``); ``run_id`` is what
        its refusal names."""
        if not isinstance(self._db, journal_pg.Connection):
            raise JournalError(f"journal {self.where} is a SQLite file: its locks are flock "
                               "files beside it, not leases")
        return Lease(self._db, name, run_id or name, self.lease_s)

    def lease_holder(self, name: str) -> dict[str, Any] | None:
        """Who holds the lease ``name`` now (host, pid, since, expires), or ``None``."""
        if not isinstance(self._db, journal_pg.Connection):
            raise JournalError(f"journal {self.where} is a SQLite file: it has no leases")
        return journal_pg.holder(self._db, name)

    def _lock_path(self, run_id: str) -> Path:
        safe = run_id if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,120}", run_id) else \
            hashlib.sha256(run_id.encode()).hexdigest()
        return self._file.with_name(f"{self._file.name}.{safe}.lock")

    @_sql("read a run's events")
    def last_event(self, run_id: str) -> int:
        """The sequence number of the run's latest event (0 if none): it changes whenever
        anything about the run is recorded, by this process or another.

        A driver asks it on every tick (``Run.wait``), so a PostgreSQL journal renews the
        run's lease here too, while this journal holds it: a run whose jobs change nothing for
        longer than a lease keeps its driver, and a driver whose lease lapsed (paused, cut
        off) is told at its next tick (:class:`JournalError`), before it acts.
        """
        lock = self._driving.get(run_id)
        if isinstance(lock, Lease):
            lock.renew()
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run=?",
                               (run_id,)).fetchone()
        return int(row[0])

    # -- runs -----------------------------------------------------------------------------------
    def new_run_id(self) -> str:
        """``run-YYYYMMDD-xxxxxx``: sortable by day, random enough to never collide in practice."""
        day = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y%m%d")
        return f"run-{day}-{_secrets.token_hex(3)}"

    @_sql("record a new run")
    def create_run(self, *, pipeline: BaseModel, plan: BaseModel, inventory: BaseModel,
                   policies: BaseModel, policy_hash: str, pipeline_name: str,
                   run_id: str | None = None) -> str:
        """Record a new run and its first plan, verbatim; returns the run id.

        Raises:
            ConfigError: the spec holds the value of one of its sites' secrets (a pipeline
                must name where a secret lives, never hold it); nothing is recorded.
        """
        now = self._clock()
        texts = {"pipeline": self._spec(pipeline), "plan": self._spec(plan),
                 "inventory": self._spec(inventory), "policies": self._spec(policies)}
        known = secret_values(_sites_of(inventory))
        self.redactor.add(*known)
        known = {v for v in known if self.redactor.knows(v)}  # long enough to be a secret
        _refuse_secrets({k: json.loads(v) for k, v in texts.items()}, known)
        for _ in range(8):
            rid = run_id or self.new_run_id()
            try:
                with self._tx() as db:
                    db.execute(
                        "INSERT INTO runs (id, created, updated, pipeline_name, pipeline, plan,"
                        " inventory, policies, policy_hash, state, spec_sha256)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (rid, now, now, pipeline_name, texts["pipeline"], texts["plan"],
                         texts["inventory"], texts["policies"], policy_hash, RunState.RUNNING,
                         _spec_digest(rid, policy_hash, texts)))
                    db.execute("INSERT INTO plans (run, seq, created, reason, plan, sha256)"
                               " VALUES (?, 0, ?, 'initial plan', ?, ?)",
                               (rid, now, texts["plan"], _digest(rid, "0", texts["plan"])))
                    self._event(db, rid, "run_created", None, {"policy_hash": policy_hash})
                self._learnt.add(rid)
                return rid
            except (sqlite3.IntegrityError, journal_pg.StoreIntegrityError):
                if run_id is not None:
                    raise JournalError(f"run {run_id} already exists in {self.where}") from None
        raise JournalError("could not find a free run id")  # pragma: no cover

    @_sql("list unfinished runs")
    def unfinished_runs(self) -> list[RunRecord]:
        """Every run not in a terminal state, oldest first: what a controller drives."""
        done = tuple(TERMINAL_RUN_STATES)
        rows = self._db.execute(
            f"SELECT * FROM runs WHERE state NOT IN ({', '.join('?' * len(done))})"
            " ORDER BY created, id", done).fetchall()
        return [self._run_record(r) for r in rows]

    @_sql("read a run")
    def run(self, run_id: str) -> RunRecord:
        row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"no run {run_id!r} in {self.where}")
        return self._run_record(row)

    @_sql("read a run's spec")
    def run_spec(self, run_id: str, *, allow_masked: bool = False) -> RunSpec:
        """The pipeline, inventory and policies of a run exactly as submitted, validated.

        Checked against the sha256 recorded with them before they are decoded: a mismatch
        raises :class:`JournalError`, as does a part this placer cannot validate. A run
        recorded by a version-1 journal has no hash, and its spec went through the old
        redactor: one with a masked value (``***``) is refused unless ``allow_masked`` (for
        display: listing and status, never for planning).
        """
        row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"no run {run_id!r} in {self.where}")
        texts = {k: row[k] for k in ("pipeline", "plan", "inventory", "policies")}
        stored = row["spec_sha256"] if "spec_sha256" in row.keys() else None  # noqa: SIM118 (v1)
        if stored is not None:
            computed = _spec_digest(run_id, row["policy_hash"], texts)
            if computed != stored:
                raise JournalError(
                    f"journal {self.where}: run {run_id}: the stored run spec does not match "
                    f"its sha256 (recorded {stored}, now {computed}): the journal was altered "
                    "or damaged; refusing to plan from it")
        spec = {k: self._loads(texts[k], run_id, "runs", k)
                for k in ("pipeline", "inventory", "policies")}
        self._learn(run_id, spec["inventory"])
        if stored is None and not allow_masked:
            for k in ("pipeline", "inventory", "policies"):
                self._refuse_masked(run_id, f"runs.{k}", spec[k])
        return self._typed(RunSpec, {"run": run_id, **spec}, spec, run_id,
                           "the stored run spec")

    def _typed(self, cls: type[_V], fields: dict[str, Any], stored: dict[str, Any],
               run_id: str, where: str) -> _V:
        """``cls`` validated from JSON read back (keeping it verbatim), or a JournalError."""
        try:
            record = cls.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise JournalError(
                f"journal {self.where}: run {run_id}: {where} is not valid for this placer "
                f"({exc.error_count()} problem(s), first at {loc}: {first['msg']})") from None
        record._stored = stored
        return record

    def _refuse_masked(self, run_id: str, where: str, data: Any) -> None:
        path = _find(data, lambda v: MASK in v)
        if path is not None:
            raise JournalError(
                f"journal {self.where}: run {run_id} was recorded by an older placer, which "
                f"masked values in what it stored ({where}: {path or '.'} holds {MASK!r}); "
                "it cannot be resumed or re-planned safely: submit the pipeline again")

    @_sql("list runs")
    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs, newest first."""
        rows = self._db.execute("SELECT * FROM runs ORDER BY created DESC, id DESC LIMIT ?",
                                (limit,)).fetchall()
        return [self._run_record(r) for r in rows]

    def _run_record(self, row: Any) -> RunRecord:
        try:
            return RunRecord(id=row["id"], created=row["created"], updated=row["updated"],
                             pipeline_name=row["pipeline_name"], policy_hash=row["policy_hash"],
                             state=row["state"], reason=row["reason"])
        except ValueError as exc:
            raise JournalError(f"journal {self.where}: run {row['id']}: the runs row is not "
                               f"valid: {exc}") from None

    @_sql("record a run's state")
    def set_run_state(self, run_id: str, state: RunState, reason: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET state=?, reason=?, updated=? WHERE id=?",
                       (state, self._opt(reason), self._clock(), run_id))
            self._event(db, run_id, "run_state", None, {"state": state, "reason": reason})

    def _opt(self, s: str | None) -> str | None:
        return None if s is None else self.redactor.text(s)

    # -- plans ----------------------------------------------------------------------------------
    @_sql("record a plan")
    def record_plan(self, run_id: str, plan: BaseModel, reason: str) -> int:
        """Record a re-plan (verbatim, with its sha256) before the executor acts on it;
        returns its sequence number."""
        text = self._spec(plan)
        with self._tx() as db:
            row = db.execute("SELECT COALESCE(MAX(seq), -1) + 1 AS n FROM plans WHERE run=?",
                             (run_id,)).fetchone()
            seq = int(row["n"])
            db.execute("INSERT INTO plans (run, seq, created, reason, plan, sha256)"
                       " VALUES (?, ?, ?, ?, ?, ?)",
                       (run_id, seq, self._clock(), self.redactor.text(reason), text,
                        _digest(run_id, str(seq), text)))
            self._event(db, run_id, "plan", None, {"seq": seq, "reason": reason})
        return seq

    @_sql("read a run's plans")
    def plans(self, run_id: str, *, allow_masked: bool = False) -> list[PlanRecord]:
        """Every plan of the run, oldest first, each checked against its sha256 and validated
        (``allow_masked`` as for :meth:`run_spec`)."""
        rows = self._db.execute("SELECT * FROM plans WHERE run=? ORDER BY seq",
                                (run_id,)).fetchall()
        out = []
        for r in rows:
            stored = r["sha256"] if "sha256" in r.keys() else None  # noqa: SIM118
            if stored is not None and _digest(run_id, str(r["seq"]), r["plan"]) != stored:
                raise JournalError(
                    f"journal {self.where}: run {run_id}: plan {r['seq']} does not match its "
                    "sha256: the journal was altered or damaged; refusing to plan from it")
            plan = self._loads(r["plan"], run_id, "plans", "plan")
            if stored is None and not allow_masked:
                self._refuse_masked(run_id, f"plans[{r['seq']}]", plan)
            if not isinstance(plan, dict):
                raise JournalError(f"journal {self.where}: run {run_id}: plan {r['seq']} is "
                                   "not a JSON object; the journal is damaged")
            out.append(self._typed(PlanRecord, {
                "run": run_id, "seq": r["seq"], "created": r["created"],
                "reason": r["reason"], "plan": plan}, plan, run_id, f"plan {r['seq']}"))
        return out

    @_sql("read what budgets were charged")
    def budget_spend(self, keys: Iterable[str] | None = None) -> dict[str, float]:
        """USD charged to each budget key (``rule[team=nlp]@2026-12-01``) by recorded runs.

        A run counts, per key, the largest charge any of its plans made (a re-plan after a
        failure plans only what is left, so its charge is smaller; summing would count the
        same work twice): what was committed when the work was sent, which is what a budget
        must stop before it is spent. Cancelled runs count too: their work may have run.
        ``keys`` narrows the answer.
        """
        wanted = None if keys is None else set(keys)
        per_run: dict[tuple[str, str], float] = {}
        for r in self._db.execute("SELECT run, plan FROM plans").fetchall():
            plan = self._loads(r["plan"], r["run"], "plans", "plan")
            charges = plan.get("budget_charges") if isinstance(plan, dict) else None
            for key, usd in (charges or {}).items():
                if wanted is None or key in wanted:
                    k = (r["run"], key)
                    per_run[k] = max(per_run.get(k, 0.0), float(usd))
        out: dict[str, float] = {}
        for (_, key), usd in sorted(per_run.items()):
            out[key] = out.get(key, 0.0) + usd
        return out

    # -- steps ----------------------------------------------------------------------------------
    @_sql("record an intent")
    def record_intent(self, run_id: str, job: str, attempt: int, site: str,
                      submission_id: str, *, location: str | None = None,
                      cost_usd: float | None = None,
                      manifest: Mapping[str, Any] | None = None) -> None:
        """Record that ``submission_id`` is about to be submitted (call before submitting)."""
        now = self._clock()
        with self._tx() as db:
            db.execute(
                "INSERT INTO steps (run, job, attempt, site, location, submission_id, state,"
                " created, updated, cost_usd) VALUES (?,?,?,?,?,?,'INTENT',?,?,?)",
                (run_id, job, attempt, site, location, submission_id, now, now, cost_usd))
            self._event(db, run_id, "intent", job, {
                "attempt": attempt, "site": site, "submission_id": submission_id,
                "manifest": dict(manifest or {})})

    @_sql("record a step's state")
    def record_state(self, run_id: str, job: str, attempt: int, state: StepState, *,
                     reason: str | None = None, backend: str | None = None,
                     handle: str | None = None, site: str | None = None) -> None:
        """Record a step's new state (creating the row for STUCK/BLOCKED steps never submitted).

        Times follow the state: ``submitted`` on SUBMITTED, ``started`` on RUNNING, ``finished``
        on any final state; each is set once.
        """
        now = self._clock()
        with self._tx() as db:
            row = db.execute("SELECT 1 FROM steps WHERE run=? AND job=? AND attempt=?",
                             (run_id, job, attempt)).fetchone()
            if row is None:
                db.execute("INSERT INTO steps (run, job, attempt, site, state, created, updated)"
                           " VALUES (?,?,?,?,?,?,?)", (run_id, job, attempt, site, state, now, now))
            times = {StepState.SUBMITTED: "submitted", StepState.RUNNING: "started"}.get(state)
            final = state in FINAL_STEP_STATES
            sets = ["state=?", "updated=?"]
            args: list[Any] = [state, now]
            if reason is not None:
                sets.append("reason=?")
                args.append(self.redactor.text(reason))
            if handle is not None:
                sets += ["backend=?", "handle=?"]
                args += [backend, handle]
            if times:
                sets.append(f"{times}=COALESCE({times}, ?)")
                args.append(now)
            if final:
                sets.append("finished=COALESCE(finished, ?)")
                args.append(now)
            db.execute(f"UPDATE steps SET {', '.join(sets)} WHERE run=? AND job=? AND attempt=?",
                       (*args, run_id, job, attempt))
            self._event(db, run_id, "state", job, {
                "attempt": attempt, "state": state, "reason": reason,
                **({"handle": handle} if handle else {})})

    @_sql("read a run's steps")
    def steps(self, run_id: str) -> list[StepRecord]:
        """Every attempt of every job of the run, in the order they were created."""
        rows = self._db.execute("SELECT * FROM steps WHERE run=? ORDER BY created, job, attempt",
                                (run_id,)).fetchall()
        return self._records(StepRecord, rows, run_id, "steps")

    # -- transfers and events -------------------------------------------------------------------
    @_sql("record a transfer")
    def record_transfer(self, run_id: str, job: str, src_uri: str, dst_uri: str, *,
                        src_location: str | None, dst_location: str | None) -> int:
        """Record a copy about to start; returns its id for :meth:`finish_transfer`."""
        now = self._clock()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO transfers (run, job, src_uri, dst_uri, src_location, dst_location,"
                " state, created, updated) VALUES (?,?,?,?,?,?,'INTENT',?,?)"
                + (" RETURNING id" if self.url else ""),  # PostgreSQL has no lastrowid
                (run_id, job, src_uri, dst_uri, src_location, dst_location, now, now))
            tid = int(cur.fetchone()[0]) if self.url else int(cur.lastrowid or 0)
            self._event(db, run_id, "transfer", job, {"id": tid, "src": src_uri, "dst": dst_uri,
                                                      "state": "INTENT"})
        return tid

    @_sql("record a transfer's outcome")
    def finish_transfer(self, run_id: str, transfer_id: int, state: str, *,
                        nbytes: int | None = None, checksum: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE transfers SET state=?, bytes=?, checksum=?, updated=? WHERE id=?",
                       (state, nbytes, checksum, self._clock(), transfer_id))
            self._event(db, run_id, "transfer", None, {"id": transfer_id, "state": state,
                                                       "bytes": nbytes, "checksum": checksum})

    @_sql("read a run's transfers")
    def transfers(self, run_id: str) -> list[TransferRecord]:
        rows = self._db.execute(
            "SELECT id, run, job, src_uri, dst_uri, src_location, dst_location, state, bytes,"
            " checksum FROM transfers WHERE run=? ORDER BY id", (run_id,)).fetchall()
        return self._records(TransferRecord, rows, run_id, "transfers")

    def _records(self, model: type[_R], rows: list[Any], run_id: str,
                 table: str) -> list[_R]:
        """Rows as typed records; a row that does not validate is a JournalError naming it."""
        try:
            return [model.model_validate(dict(r)) for r in rows]
        except ValueError as exc:
            raise JournalError(f"journal {self.where}: run {run_id}: a {table} row is not "
                               f"valid: {exc}") from None

    @_sql("record an event")
    def record_event(self, run_id: str, kind: str, job: str | None = None,
                     **data: Any) -> None:
        """Append a free-form event (site down, retry scheduled, cancel requested, …)."""
        with self._tx() as db:
            self._event(db, run_id, kind, job, data)

    @_sql("read a run's events")
    def events(self, run_id: str, kind: str | None = None) -> list[EventRecord]:
        sql = "SELECT * FROM events WHERE run=?" + (" AND kind=?" if kind else "") + \
            " ORDER BY seq"
        rows = self._db.execute(sql, (run_id, kind) if kind else (run_id,)).fetchall()
        out = []
        for r in rows:
            data = self._loads(r["data"], run_id, "events", "data")
            if not isinstance(data, dict):
                raise JournalError(f"journal {self.where}: run {run_id}: events.data of event "
                                   f"{r['seq']} is not a JSON object; the journal is damaged")
            out.append(EventRecord(seq=r["seq"], run=r["run"], ts=r["ts"], job=r["job"],
                                   kind=r["kind"], data=data))
        return out


def _statements(script: str) -> list[str]:
    """Split the schema into statements (triggers contain ``;`` inside BEGIN … END)."""
    out: list[str] = []
    buf = ""
    for line in script.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return out


def _digest(*parts: str) -> str:
    """sha256 over length-prefixed parts (no two different part lists hash alike)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return "sha256:" + h.hexdigest()


def _spec_digest(run_id: str, policy_hash: str, texts: Mapping[str, str]) -> str:
    return _digest(run_id, policy_hash, texts["pipeline"], texts["plan"], texts["inventory"],
                   texts["policies"])


def _sites_of(inventory: Any) -> list[Any]:
    sites = getattr(inventory, "sites", ()) if isinstance(inventory, BaseModel) else (
        inventory.get("sites", ()) if isinstance(inventory, Mapping) else ())
    if isinstance(sites, Mapping):  # the YAML form: name → site
        sites = list(sites.values())
    return list(sites) if isinstance(sites, list | tuple) else []


def _find(data: Any, hit: Callable[[str], bool], path: str = "") -> str | None:
    """The dotted path of the first string in JSON ``data`` for which ``hit`` holds."""
    if isinstance(data, str):
        return path if hit(data) else None
    if isinstance(data, Mapping):
        items: Iterator[tuple[str, Any]] = ((f"{path}.{k}" if path else str(k), v)
                                            for k, v in data.items())
    elif isinstance(data, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(data))
    else:
        return None
    for sub, v in items:
        found = _find(v, hit, sub)
        if found is not None:
            return found
    return None


def _refuse_secrets(spec: Mapping[str, Any], known: set[str]) -> None:
    """Refuse a run spec holding a site's secret value: it would be stored in the journal."""
    if not known:
        return
    for name, data in spec.items():
        path = _find(data, lambda v: any(s in v for s in known))
        if path is not None:
            raise ConfigError(ErrorDetail(
                "holds the value of a site's secret (a cluster's token_env or token_file); "
                "placer stores the run's spec in its journal, so it refuses to run it: name "
                "where the secret lives (an environment variable) instead of writing its value",
                field=f"{name}.{path}" if path else name))
