"""The journal: a SQLite run store that records what placer is about to do before it does it.

Every plan, submission, state change and transfer is written (and fsynced: WAL mode with
``synchronous=FULL``) *before* the action it describes, and its outcome after. Killing placer at
any moment therefore leaves, for every step, either nothing (never submitted), an intent (maybe
submitted: the executor asks the backend with the deterministic ``submission_id`` and adopts
what it finds), or an outcome. That is what makes ``placer resume`` exactly-once.

Tables (schema version in ``meta``):

* ``runs``: one row per run: the pipeline, first plan, inventory and policies as JSON (what a
  resume needs to re-plan), the policy hash, and the run state;
* ``plans``: every plan of a run, the first and each re-plan after a failure, with the reason;
* ``steps``: one row per (run, job, attempt): site, ``submission_id``, backend handle, state,
  times and planned cost;
* ``transfers``: data copies between locations, intent then outcome;
* ``events``: an append-only log (triggers refuse UPDATE and DELETE) of everything above.

Concurrency: one writer process per journal (the executor driving a run); any number of
readers (``placer status``, ``placer runs``) may open it with ``readonly=True`` at the same time,
which WAL mode allows without blocking the writer.

Secrets are never stored: nothing the journal records carries a credential by design (tokens
live in backend configuration and the environment, not in the models), and as a second line
every text written passes through a :class:`Redactor` that masks known secret values and the
values of secret-looking keys.
"""

from __future__ import annotations

import json
import os
import re
import secrets as _secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from placer.errors import JournalError, RunNotFoundError
from placer.models._base import Model

SCHEMA_VERSION = 1
ENV_PATH = "PLACER_JOURNAL"

StepState = Literal[
    "INTENT",  # about to submit: maybe submitted, ask the backend on resume
    "SUBMITTED",  # the backend accepted it
    "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED",  # as the backend reports
    "LOST",  # its site went down while it was in flight; a later attempt runs elsewhere
    "STUCK",  # no eligible site is left for it; the reason says why
    "BLOCKED",  # an upstream job is stuck or failed for good
]
RunState = Literal["RUNNING", "CANCELLING", "CANCELLED", "SUCCEEDED", "FAILED", "STUCK"]
ACTIVE_STEP_STATES = frozenset({"INTENT", "SUBMITTED", "PENDING", "RUNNING"})
TERMINAL_RUN_STATES = frozenset({"CANCELLED", "SUCCEEDED", "FAILED", "STUCK"})

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
    reason TEXT
);
CREATE TABLE plans (
    run TEXT NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    created REAL NOT NULL,
    reason TEXT NOT NULL,
    plan TEXT NOT NULL,
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
CREATE INDEX events_by_run ON events (run, seq);
CREATE INDEX runs_by_created ON runs (created);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
"""


def default_path() -> Path:
    """``$PLACER_JOURNAL``, else ``journal.db`` in the user's data directory for placer."""
    env = os.environ.get(ENV_PATH)
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("placer")) / "journal.db"


# Names whose values are credentials, wherever they appear (env vars, JSON keys).
_SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|AUTH)", re.I
)
_MASK = "***"
# Keys that name *where* a secret lives (an env var's name, a file's path), not a secret: the
# journal must keep them, or a resumed run could not find its cluster's token again.
_SECRET_REFERENCE = re.compile(r"^token_(env|file)$")
_MIN_SECRET_LEN = 6  # shorter values would mask innocent text ("1", "true")


class Redactor:
    """Masks secret values in text before it is stored, logged or raised.

    Knows the values passed explicitly and, by default, those of environment variables whose
    name looks like a credential (``RAY_AUTH_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, …). JSON-like
    data additionally has the values of secret-looking keys masked whatever they are.
    """

    def __init__(self, values: Iterable[str] = (), *, from_env: bool = True) -> None:
        found = {v for v in values if v and len(v) >= _MIN_SECRET_LEN}
        if from_env:
            found |= {v for k, v in os.environ.items()
                      if _SECRET_NAME.search(k) and len(v) >= _MIN_SECRET_LEN}
        # Longest first, so a secret containing another is masked whole.
        self._values = sorted(found, key=lambda v: (-len(v), v))

    def add(self, *values: str) -> None:
        """Learn more secret values (e.g. a token a backend read from a file)."""
        self._values = sorted({*self._values, *(v for v in values
                                                if v and len(v) >= _MIN_SECRET_LEN)},
                              key=lambda v: (-len(v), v))

    def text(self, s: str) -> str:
        for v in self._values:
            s = s.replace(v, _MASK)
        return s

    def data(self, obj: Any) -> Any:
        """A copy of JSON-like ``obj`` with secret keys' values and known secrets masked."""
        if isinstance(obj, Mapping):
            return {k: (_MASK if isinstance(k, str) and _SECRET_NAME.search(k)
                        and not _SECRET_REFERENCE.match(k)
                        and isinstance(v, str) else self.data(v)) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.data(v) for v in obj]
        if isinstance(obj, str):
            return self.text(obj)
        return obj


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


class Journal:
    """The run store. ``Journal()`` opens (creating if needed) the default path.

    Args:
        path: the SQLite file; ``$PLACER_JOURNAL`` or the user data dir when omitted.
        readonly: open for reading only (a second process watching a run).
        redactor: masks secrets in everything written; a default one (secret-looking
            environment variables) when omitted.
        clock: wall-clock seconds for timestamps (injectable for tests).
    """

    def __init__(self, path: str | Path | None = None, *, readonly: bool = False,
                 redactor: Redactor | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.readonly = readonly
        self.redactor = redactor or Redactor()
        self._clock = clock
        try:
            if readonly:
                if not self.path.exists():
                    raise JournalError(f"no journal at {self.path}")
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                           isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not self.path.exists():
                    # Owner-only from the first byte: run metadata is nobody else's business.
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
                self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                # FULL: an intent row is on disk before the submission it announces is made.
                self._db.execute("PRAGMA synchronous = FULL")
                self._migrate()
            else:
                self._check_version()
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _version(self) -> int:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if not has_meta:
            return 0
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row["value"]) if row else 0

    def _check_version(self) -> None:
        v = self._version()
        if v > SCHEMA_VERSION:
            raise JournalError(f"journal {self.path} has schema version {v}, newer than this "
                               f"placer understands ({SCHEMA_VERSION}); upgrade placer")

    def _migrate(self) -> None:
        self._check_version()
        if self._version() == SCHEMA_VERSION:
            return
        with self._tx():
            for stmt in _statements(_SCHEMA):
                self._db.execute(stmt)
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE so a second writer waits instead of failing late."""
        if self.readonly:
            raise JournalError("this journal was opened read-only")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _json(self, obj: Any) -> str:
        if isinstance(obj, BaseModel):
            obj = obj.model_dump(mode="json", by_alias=True)
        return json.dumps(self.redactor.data(obj), sort_keys=True, separators=(",", ":"))

    def _event(self, db: sqlite3.Connection, run: str, kind: str, job: str | None,
               data: Mapping[str, Any]) -> None:
        db.execute("INSERT INTO events (run, ts, job, kind, data) VALUES (?, ?, ?, ?, ?)",
                   (run, self._clock(), job, kind, self._json(dict(data))))

    # -- runs -----------------------------------------------------------------------------------
    def new_run_id(self) -> str:
        """``run-YYYYMMDD-xxxxxx``: sortable by day, random enough to never collide in practice."""
        day = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y%m%d")
        return f"run-{day}-{_secrets.token_hex(3)}"

    def create_run(self, *, pipeline: BaseModel, plan: BaseModel, inventory: BaseModel,
                   policies: BaseModel, policy_hash: str, pipeline_name: str,
                   run_id: str | None = None) -> str:
        """Record a new run and its first plan; returns the run id."""
        now = self._clock()
        for _ in range(8):
            rid = run_id or self.new_run_id()
            try:
                with self._tx() as db:
                    db.execute(
                        "INSERT INTO runs (id, created, updated, pipeline_name, pipeline, plan,"
                        " inventory, policies, policy_hash, state) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (rid, now, now, pipeline_name, self._json(pipeline), self._json(plan),
                         self._json(inventory), self._json(policies), policy_hash, "RUNNING"))
                    db.execute("INSERT INTO plans VALUES (?, 0, ?, 'initial plan', ?)",
                               (rid, now, self._json(plan)))
                    self._event(db, rid, "run_created", None, {"policy_hash": policy_hash})
                return rid
            except sqlite3.IntegrityError:
                if run_id is not None:
                    raise JournalError(f"run {run_id} already exists") from None
        raise JournalError("could not find a free run id")  # pragma: no cover

    def run(self, run_id: str) -> RunRecord:
        row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"no run {run_id!r} in {self.path}")
        return _run_record(row)

    def run_spec(self, run_id: str) -> dict[str, Any]:
        """The pipeline, inventory and policies of a run as stored (JSON-decoded)."""
        row = self._db.execute("SELECT pipeline, inventory, policies FROM runs WHERE id=?",
                               (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"no run {run_id!r} in {self.path}")
        return {k: json.loads(row[k]) for k in ("pipeline", "inventory", "policies")}

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs, newest first."""
        rows = self._db.execute("SELECT * FROM runs ORDER BY created DESC, id DESC LIMIT ?",
                                (limit,)).fetchall()
        return [_run_record(r) for r in rows]

    def set_run_state(self, run_id: str, state: RunState, reason: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET state=?, reason=?, updated=? WHERE id=?",
                       (state, self._opt(reason), self._clock(), run_id))
            self._event(db, run_id, "run_state", None, {"state": state, "reason": reason})

    def _opt(self, s: str | None) -> str | None:
        return None if s is None else self.redactor.text(s)

    # -- plans ----------------------------------------------------------------------------------
    def record_plan(self, run_id: str, plan: BaseModel, reason: str) -> int:
        """Record a re-plan before the executor acts on it; returns its sequence number."""
        with self._tx() as db:
            row = db.execute("SELECT COALESCE(MAX(seq), -1) + 1 AS n FROM plans WHERE run=?",
                             (run_id,)).fetchone()
            seq = int(row["n"])
            db.execute("INSERT INTO plans VALUES (?, ?, ?, ?, ?)",
                       (run_id, seq, self._clock(), self.redactor.text(reason), self._json(plan)))
            self._event(db, run_id, "plan", None, {"seq": seq, "reason": reason})
        return seq

    def plans(self, run_id: str) -> list[dict[str, Any]]:
        """Every plan of the run, oldest first, as JSON data."""
        rows = self._db.execute("SELECT plan FROM plans WHERE run=? ORDER BY seq",
                                (run_id,)).fetchall()
        return [json.loads(r["plan"]) for r in rows]

    # -- steps ----------------------------------------------------------------------------------
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
            times = {"SUBMITTED": "submitted", "RUNNING": "started"}.get(state)
            final = state in {"SUCCEEDED", "FAILED", "STOPPED", "LOST", "STUCK", "BLOCKED"}
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

    def steps(self, run_id: str) -> list[StepRecord]:
        """Every attempt of every job of the run, in the order they were created."""
        rows = self._db.execute("SELECT * FROM steps WHERE run=? ORDER BY created, job, attempt",
                                (run_id,)).fetchall()
        return [StepRecord.model_validate(dict(r)) for r in rows]

    # -- transfers and events -------------------------------------------------------------------
    def record_transfer(self, run_id: str, job: str, src_uri: str, dst_uri: str, *,
                        src_location: str | None, dst_location: str | None) -> int:
        """Record a copy about to start; returns its id for :meth:`finish_transfer`."""
        now = self._clock()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO transfers (run, job, src_uri, dst_uri, src_location, dst_location,"
                " state, created, updated) VALUES (?,?,?,?,?,?,'INTENT',?,?)",
                (run_id, job, src_uri, dst_uri, src_location, dst_location, now, now))
            tid = int(cur.lastrowid or 0)
            self._event(db, run_id, "transfer", job, {"id": tid, "src": src_uri, "dst": dst_uri,
                                                      "state": "INTENT"})
        return tid

    def finish_transfer(self, run_id: str, transfer_id: int, state: str, *,
                        nbytes: int | None = None, checksum: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE transfers SET state=?, bytes=?, checksum=?, updated=? WHERE id=?",
                       (state, nbytes, checksum, self._clock(), transfer_id))
            self._event(db, run_id, "transfer", None, {"id": transfer_id, "state": state,
                                                       "bytes": nbytes, "checksum": checksum})

    def transfers(self, run_id: str) -> list[TransferRecord]:
        rows = self._db.execute(
            "SELECT id, run, job, src_uri, dst_uri, src_location, dst_location, state, bytes,"
            " checksum FROM transfers WHERE run=? ORDER BY id", (run_id,)).fetchall()
        return [TransferRecord.model_validate(dict(r)) for r in rows]

    def record_event(self, run_id: str, kind: str, job: str | None = None,
                     **data: Any) -> None:
        """Append a free-form event (site down, retry scheduled, cancel requested, …)."""
        with self._tx() as db:
            self._event(db, run_id, kind, job, data)

    def events(self, run_id: str, kind: str | None = None) -> list[EventRecord]:
        sql = "SELECT * FROM events WHERE run=?" + (" AND kind=?" if kind else "") + \
            " ORDER BY seq"
        rows = self._db.execute(sql, (run_id, kind) if kind else (run_id,)).fetchall()
        return [EventRecord(seq=r["seq"], run=r["run"], ts=r["ts"], job=r["job"],
                            kind=r["kind"], data=json.loads(r["data"])) for r in rows]


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


def _run_record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(id=row["id"], created=row["created"], updated=row["updated"],
                     pipeline_name=row["pipeline_name"], policy_hash=row["policy_hash"],
                     state=row["state"], reason=row["reason"])
