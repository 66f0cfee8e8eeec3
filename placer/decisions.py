"""The decision log: every placement decision, with its evidence, appended for auditors.

One JSON object per line (``placer/decision/v1``, :class:`Decision`): when and how it was
decided (``plan``, ``submit`` with its run id, ``replan``, ``strategy``: an online strategy's
decision about one ready job of a run, :class:`StrategyChoice`), which policies decided (their
content hash, the files, and for files in a git work tree the commit and whether those files
differ from it), the inputs needed to decide again (the pipeline and the inventory as JSON with
their sha256, the options, the budget spend counted, the day), the dataset facts with their
provenance, the plan itself (with its sha256), and per job and site the verdict: eligible or
not, the rules that decided, their messages, a hint of what would make the site eligible, and
the audit-mode and waived rules (:class:`placer.explain.JobExplanation`).

Append-only, and checkably so:

* a record is written by one ``write`` on a descriptor opened with ``O_APPEND``, under an
  exclusive ``flock`` of the log, and fsynced; a write cut short is truncated back, so the log
  holds whole lines only;
* each record stores ``prev``, the sha256 of the line before it (:data:`GENESIS` for the first),
  and ``digest``, the sha256 of its own content: :func:`verify` finds the first line that was
  edited, removed, inserted or reordered. A chain cannot show that its *last* lines were cut
  off: keep :attr:`Verification.head` somewhere else (a ticket, the journal) to check that.

The log is ``$PLACER_DECISIONS``, else ``decisions.jsonl`` beside the journal's default path;
the file is created owner-only (0600, its folder 0700). No secrets: inventories hold only
references to them (``token_env``, ``token_file``), and a record holding the value of one of its
sites' secrets is refused.

:func:`diff` re-decides recorded decisions under two policy sets (``placer policy diff``): every
job whose eligible sites, held status or placement would change, with the rules behind it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError

from placer.errors import PlacerError
from placer.explain import JobExplanation, explain_data, job_explanation
from placer.journal import default_path as journal_path
from placer.models import Inventory, Model, Objective, Pipeline, Plan, PlanStatus
from placer.policy import PolicySet, canonical_form, policy_hash
from placer.scheduler import plan as decide
from placer.secrets import Redactor, secret_values

__all__ = [
    "ENV_PATH", "GENESIS", "SCHEMA", "Appended", "Change", "Decision", "DecisionLogError",
    "GitStamp", "Inputs", "Outcome", "PolicyDiff", "PolicyStamp", "StrategyChoice", "Undecidable",
    "Verification", "append", "check_writable", "default_path", "diff", "git_stamps",
    "inputs_of", "policy_changes", "read", "record", "redecide", "verify",
]

SCHEMA: Literal["placer/decision/v1"] = "placer/decision/v1"
ENV_PATH = "PLACER_DECISIONS"
FILE_NAME = "decisions.jsonl"
GENESIS = "sha256:" + "0" * 64
"""``prev`` of the first record of a log."""
GIT_TIMEOUT_S = 5.0

Kind = Literal["plan", "submit", "replan", "strategy"]


class DecisionLogError(PlacerError):
    """The decision log cannot be written or read (a full disk, a foreign file, a torn line)."""


# -- the record ----------------------------------------------------------------------------------


class GitStamp(Model):
    """The git work tree holding some of the policy files, and the state of those files."""

    root: str = Field(description="the work tree's top folder")
    commit: str | None = Field(description="HEAD; none in a repository with no commit yet")
    dirty: bool | None = Field(
        description="whether any of `files` differs from HEAD (changed, untracked or ignored); "
        "none when git could not tell")
    files: tuple[str, ...] = Field(description="the policy files in this tree, from its root")


class PolicyStamp(Model):
    """Which policies decided: their content hash, files, and git commits."""

    hash: str
    name: str
    sources: tuple[str, ...] = Field(default=(), description="the files loaded, as named")
    git: tuple[GitStamp, ...] = Field(
        default=(), description="per git work tree holding some of them; none outside git")


class Inputs(Model):
    """What deciding again needs besides the policies: stored verbatim, with their sha256."""

    pipeline: dict[str, Any]
    pipeline_sha256: str
    inventory: dict[str, Any]
    inventory_sha256: str
    objective: Objective
    deadline_h: float | None = None
    budget_usd: float | None = None
    time_limit_s: float = 60.0
    spent: dict[str, float] = Field(
        default_factory=dict, description="budget key → USD charged earlier in the period")
    pinned: dict[str, str] = Field(default_factory=dict, description="re-plans: job → site")
    exclude_sites: tuple[str, ...] = ()


class StrategyChoice(Model):
    """An online strategy's decision about one ready job of a run (``placer controller
    --strategy``): the journal's ``strategy_decision`` event, with the plan it was made under.

    The record around it carries the run's inputs and policies as any record does, and as its
    ``plan`` the run's plan that placed the job when it was decided (``plan_seq`` in the
    journal; a plan made by an earlier strategy move holds only the jobs it pinned, and the
    record's pipeline is cut to them), so ``plan_sha256`` and ``policy.hash`` tie the decision
    to the plans and policies the log already holds.
    """

    job: str
    decision: Literal["onprem", "wait", "burst"]
    site: str | None = Field(description="where the job is sent now; none for a wait")
    reason: str
    plan_seq: int = Field(description="the journal's plan the job was placed by")
    waited_h: float | None = Field(default=None, description="hours the job had waited")
    predicted_wait_h: float | None = Field(
        default=None, description="the strategy's predicted wait on-prem, hours; none: no "
        "prediction, or no release known (facts.wait_unbounded)")
    allowance_h: float | None = Field(default=None,
                                      description="the wait the strategy allows the job")
    burst: dict[str, Any] | None = Field(
        default=None, description="the chosen (burst) or cheapest allowed cloud option: site, "
        "instance, nodes, spot, compute_usd, egress_usd, usd")
    policy: dict[str, Any] = Field(
        default_factory=dict, description="allowed sites; denied sites → rule ids; allowed "
        "but unavailable sites; holds")
    facts: dict[str, Any] = Field(default_factory=dict,
                                  description="the rest of what the event recorded")


class Decision(Model):
    """One line of the decision log."""

    model_config = ConfigDict(**Model.model_config, serialize_by_alias=True)  # "schema"

    schema_: Literal["placer/decision/v1"] = Field(default=SCHEMA, alias="schema")
    time: datetime = Field(description="when it was recorded (UTC)")
    kind: Kind
    run: str | None = Field(default=None, description="the run it started (submit, replan)")
    pipeline: str
    status: PlanStatus
    reasons: tuple[str, ...] = ()
    decided_on: date | None = Field(description="the day the policies were applied on")
    policy: PolicyStamp
    inputs: Inputs
    datasets: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="dataset → its facts, with their provenance")
    jobs: dict[str, JobExplanation] = Field(
        default_factory=dict, description="job → placement, per-site verdicts and hints")
    warnings: tuple[str, ...] = ()
    budget_charges: dict[str, float] = Field(default_factory=dict)
    plan: dict[str, Any] = Field(description="the plan, as decided")
    plan_sha256: str
    strategy: StrategyChoice | None = Field(
        default=None, description="kind strategy: the online strategy's decision")
    prev: str = Field(default="", description="sha256 of the line before (GENESIS: first)")
    digest: str = Field(default="", description="sha256 of this record without `digest`")


def _canonical(obj: Any) -> str:
    """The one text form of JSON data the log hashes and writes (as the journal stores specs)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _sha256(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _dump(model: Model) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return data


def _datasets(plan: Plan, pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    """The dataset facts the plan carries, with their provenance; else the pipeline's own."""
    if plan.datasets:
        return {name: _dump(d) for name, d in plan.datasets.items()}
    return {d.name: d.model_dump(mode="json", exclude_defaults=True) | {"name": d.name}
            for d in pipeline.datasets}


def record(
    plan: Plan, *, pipeline: Pipeline, inventory: Inventory, policies: PolicySet | None,
    kind: Kind = "plan", run: str | None = None, spent: Mapping[str, float] | None = None,
    pinned: Mapping[str, str] | None = None, exclude_sites: Sequence[str] = (),
    time_limit_s: float = 60.0, clock: Callable[[], datetime] | None = None,
    git: bool = True, cwd: Path | None = None, strategy: StrategyChoice | None = None,
) -> Decision:
    """The record of one decision (not yet chained: :func:`append` sets ``prev`` and ``digest``).

    ``policies`` are those the plan was decided with; ``git`` stamps the work trees holding
    their files (relative file names are taken from ``cwd``, the current folder by default).
    ``strategy`` (with ``kind="strategy"``, and only then): an online strategy's decision made
    under ``plan``.
    """
    if (kind == "strategy") != (strategy is not None):
        raise ValueError("a strategy decision is recorded with kind='strategy', and only it")
    policies = policies or PolicySet(name="empty")
    now = (clock or (lambda: datetime.now(UTC)))()
    if now.tzinfo is None:
        raise ValueError("the decision clock must give an aware datetime (UTC)")
    pipe, inv = _dump(pipeline), _dump(inventory)
    plan_data = _dump(plan)
    return Decision(
        time=now.astimezone(UTC), kind=kind, run=run, pipeline=plan.pipeline,
        status=plan.status, reasons=tuple(plan.reasons), decided_on=plan.decided_on,
        policy=PolicyStamp(hash=plan.policy_hash, name=policies.name, sources=policies.sources,
                           git=git_stamps(policies.sources, cwd=cwd) if git else ()),
        inputs=Inputs(
            pipeline=pipe, pipeline_sha256=_sha256(_canonical(pipe)), inventory=inv,
            inventory_sha256=_sha256(_canonical(inv)), objective=plan.objective,
            deadline_h=plan.deadline_h, budget_usd=plan.budget_usd, time_limit_s=time_limit_s,
            spent=dict(spent or {}), pinned=dict(pinned or {}),
            exclude_sites=tuple(exclude_sites)),
        datasets=_datasets(plan, pipeline),
        jobs=explain_data(plan).jobs, warnings=tuple(plan.warnings),
        budget_charges=dict(plan.budget_charges),
        plan=plan_data, plan_sha256=_sha256(_canonical(plan_data)), strategy=strategy,
    )


# -- git -----------------------------------------------------------------------------------------


def _git(args: Sequence[str], cwd: Path, timeout: float) -> str | None:
    """``git args`` in ``cwd``: its output, or None if git is missing, fails or takes too long.

    Never runs the repository's fsmonitor hook, never takes the index lock, never prompts.
    """
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_LITERAL_PATHSPECS": "1",
           "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        res = subprocess.run(["git", "-c", "core.fsmonitor=false", *args], cwd=cwd, env=env,
                             capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def git_stamps(files: Iterable[str | Path], *, cwd: Path | None = None,
               timeout: float = GIT_TIMEOUT_S) -> tuple[GitStamp, ...]:
    """Per git work tree holding some of ``files``: HEAD and whether those files differ from it.

    A file outside any work tree, git not installed, a repository git refuses (another owner)
    or a command that takes longer than ``timeout`` seconds: no stamp, never an error.
    """
    base = cwd or Path.cwd()
    roots: dict[Path, Path | None] = {}
    groups: dict[Path, list[str]] = {}
    for f in files:
        path = (base / f).resolve()
        folder = path.parent
        if folder not in roots:
            top = _git(["rev-parse", "--show-toplevel"], folder, timeout)
            roots[folder] = Path(top.strip()).resolve() if top and top.strip() else None
        root = roots[folder]
        if root is None:
            continue
        try:
            groups.setdefault(root, []).append(path.relative_to(root).as_posix())
        except ValueError:  # a path git sees through a symlink elsewhere
            continue
    out = []
    for root, rel in sorted(groups.items()):
        head = _git(["rev-parse", "--verify", "--quiet", "HEAD"], root, timeout)
        status = _git(["status", "--porcelain", "--ignored=matching", "--untracked-files=all",
                       "--", *rel], root, timeout)
        out.append(GitStamp(root=str(root), commit=(head.strip() or None) if head else None,
                            dirty=None if status is None else bool(status.strip()),
                            files=tuple(sorted(rel))))
    return tuple(out)


# -- writing -------------------------------------------------------------------------------------


def default_path() -> Path:
    """``$PLACER_DECISIONS``, else ``decisions.jsonl`` beside the journal's default path."""
    env = os.environ.get(ENV_PATH)
    if env:
        return Path(env)
    return journal_path().parent / FILE_NAME


@dataclass(frozen=True)
class Appended:
    """Where a record went: the log, the byte offset of its line, and the line's sha256."""

    path: Path
    offset: int
    line_sha256: str


def _open(path: Path) -> int:
    """The log opened for appending (created owner-only, its creation fsynced)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            try:
                fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process created it meanwhile
                return os.open(path, flags)
            with contextlib.suppress(OSError):
                dfd = os.open(path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            return fd
    except OSError as exc:
        raise DecisionLogError(f"decision log {path}: cannot open it for appending: "
                               f"{exc.strerror or exc}") from None


def _last_line(fd: int, path: Path, size: int) -> bytes | None:
    """The last line of the log (without its newline); None for an empty log."""
    if size == 0:
        return None
    if os.pread(fd, 1, size - 1) != b"\n":
        raise DecisionLogError(
            f"decision log {path}: its last line is incomplete (a write was cut short, or this "
            "is not a placer decision log); run placer.decisions.verify on it, and move it "
            "aside before recording more decisions")
    end, pos, chunk = size - 1, size - 1, 1 << 16
    while pos > 0:
        lo = max(0, pos - chunk)
        block = os.pread(fd, pos - lo, lo)
        i = block.rfind(b"\n")
        if i >= 0:
            return os.pread(fd, end - (lo + i + 1), lo + i + 1)
        pos = lo
    return os.pread(fd, end, 0)


def _check_tail(line: bytes | None, path: Path) -> str:
    """The hash the next record chains to; refuses a log whose last line is not a record."""
    if line is None:
        return GENESIS
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise DecisionLogError(f"decision log {path}: its last line is not a {SCHEMA} record; "
                               f"is {ENV_PATH} pointing at another file?")
    return _sha256(line)


def _lock(fd: int) -> None:
    import fcntl  # POSIX: placer runs on Linux and macOS

    fcntl.flock(fd, fcntl.LOCK_EX)


def check_writable(path: Path | None = None) -> Path:
    """Check, before acting, that a record could be appended to the log (``submit`` does).

    Opens (creating it, owner-only, if need be) and reads the log's last line under its lock,
    writing nothing. Raises :class:`DecisionLogError` when appending would fail.
    """
    path = path or default_path()
    fd = _open(path)
    try:
        _lock(fd)
        _check_tail(_last_line(fd, path, os.fstat(fd).st_size), path)
    except OSError as exc:
        raise DecisionLogError(f"decision log {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return path


def _seal(decision: Decision, prev: str) -> bytes:
    """The record's line (no newline): chained to ``prev``, with its own digest."""
    data = _dump(decision.model_copy(update={"prev": prev}))
    data.pop("digest")
    data["digest"] = _sha256(_canonical(data))
    return _canonical(data).encode("utf-8")


def _refuse_secrets(decision: Decision, line: bytes, path: Path) -> None:
    sites = decision.inputs.inventory.get("sites", [])
    known = Redactor(secret_values(sites if isinstance(sites, list) else []), from_env=False)
    text = line.decode("utf-8")
    if known.text(text) != text:
        raise DecisionLogError(
            f"decision log {path}: the record holds the value of one of its sites' secrets (a "
            "cluster's token_env or token_file); placer records references to secrets, never "
            "their values: name where the secret lives instead of writing it")


def append(decision: Decision, path: Path | None = None) -> Appended:
    """Append ``decision`` to the log, chained to the line before it, and fsync it.

    Raises :class:`DecisionLogError` when it cannot be written; the log is then as it was.
    """
    path = path or default_path()
    fd = _open(path)
    try:
        _lock(fd)
        size = os.fstat(fd).st_size
        prev = _check_tail(_last_line(fd, path, size), path)
        line = _seal(decision, prev)
        _refuse_secrets(decision, line, path)
        data = line + b"\n"
        try:
            done = 0
            while done < len(data):
                done += os.write(fd, data[done:])
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):  # a write cut short leaves no partial line
                os.ftruncate(fd, size)
                os.fsync(fd)
            raise DecisionLogError(f"decision log {path}: cannot append the decision: "
                                   f"{exc.strerror or exc}") from None
        return Appended(path, size, _sha256(line))
    except OSError as exc:
        raise DecisionLogError(f"decision log {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


# -- reading and verifying -------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: ``ok``, how many lines, the last line's sha256 (``head``),
    and the first broken line (1-based) with what is wrong with it."""

    path: Path
    ok: bool
    lines: int
    head: str
    broken_line: int | None = None
    problem: str | None = None


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(number, line without newline, whether it ended with a newline), up to the size the
    log had when no append was in flight (a shared lock, held only to read that size)."""
    import fcntl

    try:
        with path.open("rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            try:
                size = os.fstat(f.fileno()).st_size
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            read = 0
            for n, raw in enumerate(f, 1):
                if read + len(raw) > size:  # appended after the snapshot
                    raw = raw[:size - read]
                    if not raw:
                        return
                read += len(raw)
                yield n, raw.rstrip(b"\n"), raw.endswith(b"\n")
                if read >= size:
                    return
    except OSError as exc:
        raise DecisionLogError(f"decision log {path}: cannot read it: "
                               f"{exc.strerror or exc}") from None


def _check_record(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The record's JSON and, when it is not a sound record, why."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return None, f"not a {SCHEMA} record"
    body = {k: v for k, v in data.items() if k != "digest"}
    if data.get("digest") != _sha256(_canonical(body)):
        return data, "its content does not match its digest: the line was edited"
    for part in ("pipeline", "inventory"):
        inputs = data.get("inputs") or {}
        if inputs.get(f"{part}_sha256") != _sha256(_canonical(inputs.get(part))):
            return data, f"its {part} does not match its sha256"
    if data.get("plan_sha256") != _sha256(_canonical(data.get("plan"))):
        return data, "its plan does not match its sha256"
    return data, None


def verify(path: Path | None = None) -> Verification:
    """Check the log's chain: every line a whole, unedited record, chained to the one before.

    Reports the first broken line: an edited line is caught where it is (its digest), a
    removed, inserted or reordered line where the chain breaks (the line after the gap).
    """
    path = path or default_path()
    prev, count = GENESIS, 0
    for n, line, whole in _lines(path):
        count = n
        if not whole:
            return Verification(path, False, n, prev, n,
                                "the line is incomplete (no newline): a write was cut short")
        data, problem = _check_record(line)
        if data is not None and problem is None and data.get("prev") != prev:
            problem = ("it does not follow the line before it: a line was removed, inserted or "
                       "reordered before it" if n > 1 else
                       "it is not the first record of a log: lines were removed before it")
        if problem is not None:
            return Verification(path, False, n, prev, n, problem)
        prev = _sha256(line)
    return Verification(path, True, count, prev)


def read(path: Path | None = None) -> Iterator[tuple[int, Decision]]:
    """The log's records, with their line numbers (no chain check: see :func:`verify`).

    Raises :class:`DecisionLogError` for a line that is not a valid record.
    """
    path = path or default_path()
    for n, line, _ in _lines(path):
        try:
            yield n, Decision.model_validate_json(line)
        except ValidationError as exc:
            raise DecisionLogError(f"decision log {path}:{n}: not a {SCHEMA} record: "
                                   f"{exc.errors()[0]['msg']}") from None


# -- deciding again --------------------------------------------------------------------------------


def inputs_of(decision: Decision) -> tuple[Pipeline, Inventory]:
    """The recorded pipeline and inventory, checked against their sha256 first."""
    inp = decision.inputs
    for part, data, digest in (("pipeline", inp.pipeline, inp.pipeline_sha256),
                               ("inventory", inp.inventory, inp.inventory_sha256)):
        if _sha256(_canonical(data)) != digest:
            raise DecisionLogError(f"the recorded {part} does not match its sha256: it was "
                                   "changed after it was recorded")
    try:
        return Pipeline.model_validate(inp.pipeline), Inventory.model_validate(inp.inventory)
    except ValidationError as exc:
        raise DecisionLogError(f"the recorded inputs are not valid for this placer: "
                               f"{exc.errors()[0]['msg']}") from None


def redecide(decision: Decision, policies: PolicySet | None) -> Plan:
    """Decide again from the recorded inputs, on the recorded day, under ``policies``."""
    pipeline, inventory = inputs_of(decision)
    inp = decision.inputs
    return decide(pipeline, inventory, policies, objective=inp.objective,
                  deadline=inp.deadline_h, budget=inp.budget_usd, time_limit_s=inp.time_limit_s,
                  pinned=inp.pinned or None, exclude_sites=inp.exclude_sites,
                  today=decision.decided_on, spent=inp.spent)


class Outcome(Model):
    """One job's decision, as compared: held or placed, where, and the sites it may use."""

    status: str
    site: str | None = None
    eligible: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


class Change(Model):
    """A job whose decision would change, and why."""

    source: str = Field(description="the log or file the decision was recorded in")
    line: int | None = None
    digest: str = ""
    time: datetime
    kind: Kind
    run: str | None = None
    pipeline: str
    job: str
    changed: tuple[Literal["eligible", "held", "placement"], ...]
    old: Outcome
    new: Outcome
    admitted: tuple[str, ...] = Field(default=(), description="sites eligible only under NEW")
    rejected: tuple[str, ...] = Field(default=(), description="sites eligible only under OLD")
    rules: tuple[str, ...] = Field(default=(), description="the rules behind the change")
    why: tuple[str, ...] = ()


class Undecidable(Model):
    """A recorded decision (or a file) that cannot be decided again, and why."""

    source: str
    line: int | None = None
    reason: str


class PolicyDiff(Model):
    """``placer policy diff``: what NEW changes in the decisions OLD made, and why."""

    old_hash: str
    new_hash: str
    policy_changes: tuple[str, ...] = ()
    records: int = 0
    redecided: int = 0
    changes: tuple[Change, ...] = ()
    undecidable: tuple[Undecidable, ...] = ()
    notes: tuple[str, ...] = ()


def _items(ps: PolicySet) -> dict[tuple[str, str], tuple[str, Any]]:
    """(section, id) → (effect or kind, canonical content) of every item of a policy set."""
    form = canonical_form(ps)
    out: dict[tuple[str, str], tuple[str, Any]] = {}
    for r in form.get("rules", []):
        out[("rule", r["id"])] = (r["effect"], r)
    for name, ls in form.get("locations", {}).items():
        out[("location set", name)] = ("set", ls)
    for section, word in (("tagging", "tagging rule"), ("transforms", "transform"),
                          ("exceptions", "exception")):
        for item in form.get(section, []):
            out[(word, item["id"])] = (word, item)
    out[("required tags", "")] = ("tags", form.get("required_tags", []))
    out[("defaults", "")] = ("defaults", form.get("defaults", {}))
    return out


def policy_changes(old: PolicySet, new: PolicySet) -> tuple[list[str], dict[str, str]]:
    """What differs between two policy sets, in words; and changed rule id → effect."""
    a, b = _items(old), _items(new)
    words: list[str] = []
    rules: dict[str, str] = {}
    for key in sorted(set(a) | set(b)):
        section, ident = key
        name = f"{section} {ident!r}" if ident else section
        if key not in a:
            words.append(f"{name} added" + (f" ({b[key][0]})" if section == "rule" else ""))
        elif key not in b:
            words.append(f"{name} removed" + (f" ({a[key][0]})" if section == "rule" else ""))
        elif a[key] != b[key]:
            words.append(f"{name} changed")
        else:
            continue
        if section == "rule":
            rules[ident] = (b.get(key) or a[key])[0]
    return words, rules


def _rule_ids(text: str) -> list[str]:
    """The ids of the rules a reason names: ``rule 'x'``, ``limit 'x'``, a budget's key."""
    ids = re.findall(r"(?:rule|limit) '([^']+)'", text)
    ids += re.findall(r"budget \d+% used \(([^\[@:]+)", text)
    ids += re.findall(r"^budget ([^\[@:\s]+)", text)
    return ids


def _outcome(x: JobExplanation) -> Outcome:
    return Outcome(status=x.status, site=x.placement.site if x.placement else None,
                   eligible=x.eligible, reasons=x.reasons)


def _compare(job: str, old_plan: Plan, new_plan: Plan, changed_rules: Mapping[str, str]
             ) -> tuple[Outcome, Outcome, dict[str, Any]] | None:
    old_x, new_x = job_explanation(old_plan, job), job_explanation(new_plan, job)
    old, new = _outcome(old_x), _outcome(new_x)
    what: list[str] = []
    if set(old.eligible) != set(new.eligible):
        what.append("eligible")
    if (old.status == "held") != (new.status == "held"):
        what.append("held")
    if old.site != new.site:
        what.append("placement")
    if not what:
        return None
    rules: list[str] = []
    why: list[str] = []
    rejected = tuple(s for s in old.eligible if s not in new.eligible)
    admitted = tuple(s for s in new.eligible if s not in old.eligible)
    # Sites grouped by the rules that decide them: "now rejected by no-us: a, b".
    groups: dict[str, list[str]] = {}
    for site in rejected:
        v = new_x.sites.get(site)
        by = list(v.rules) if v else []
        rules += by
        groups.setdefault(f"now rejected by {', '.join(by)}" if by else
                          "no longer eligible (held)", []).append(site)
    for site in admitted:
        v = old_x.sites.get(site)
        by = list(v.rules) if v else []
        rules += by
        groups.setdefault(f"no longer rejected by {', '.join(by)}" if by else
                          "now eligible", []).append(site)
    why += [f"{what}: {', '.join(sites)}" for what, sites in groups.items()]
    if "held" in what:
        side, x = ("now", new_x) if new.status == "held" else ("no longer", old_x)
        for reason in x.reasons:
            rules += _rule_ids(reason)
            why.append(f"{side} held: {reason.removeprefix('held: ')}")
    if "placement" in what:
        why.append(f"placement: {old.site or '(none)'} → {new.site or '(none)'}"
                   + ("" if new.site else f" (plan {new_plan.status})"))
        if not rejected and not admitted and "held" not in what:
            soft = sorted(r for r, eff in changed_rules.items() if eff in ("prefer", "limit"))
            rules += soft
            for reason in new.reasons if new.site is None else ():
                rules += _rule_ids(reason)
                why.append(reason)
            if soft:
                why.append(f"eligible sites unchanged; changed prefer/limit rules: "
                           f"{', '.join(soft)}")
    return old, new, {"changed": tuple(what), "admitted": admitted, "rejected": rejected,
                      "rules": tuple(dict.fromkeys(rules)), "why": tuple(why)}


def _records(folder: Path) -> Iterator[tuple[str, int | None, Decision | None, str | None]]:
    """(source, line, decision or None, why not) for every record in ``folder`` (or file)."""
    files = [folder] if folder.is_file() else sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".jsonl", ".json"))
    for f in files:
        if f.suffix.lower() == ".jsonl":
            for n, line, _ in _lines(f):
                if not line.strip():
                    continue
                try:
                    yield str(f), n, Decision.model_validate_json(line), None
                except ValidationError as exc:
                    yield str(f), n, None, (f"not a {SCHEMA} record: "
                                            f"{exc.errors()[0]['msg']}")
            continue
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            yield str(f), None, None, f"cannot read it: {exc}"
            continue
        if isinstance(data, dict) and data.get("schema") == SCHEMA:
            try:
                yield str(f), None, Decision.model_validate(data), None
            except ValidationError as exc:
                yield str(f), None, None, f"not a {SCHEMA} record: {exc.errors()[0]['msg']}"
            continue
        try:
            Plan.model_validate(data)
        except ValidationError:
            yield str(f), None, None, "neither a placer plan nor a decision record"
            continue
        yield str(f), None, None, ("a plan without its inputs (pipeline, inventory) cannot be "
                                   "re-decided; use the decision log, or one of its records")


def diff(folder: Path, old: PolicySet, new: PolicySet) -> PolicyDiff:
    """Re-decide every decision recorded in ``folder`` under ``old`` and ``new``: which jobs
    would change (eligible sites, held status, placement), and the rules behind each change.

    ``folder`` holds decision logs (``*.jsonl``) and/or records (``*.json``), or is one file.
    The same record found twice (a log and a record copied from it) is decided once.
    """
    if not folder.exists():
        raise DecisionLogError(f"{folder}: no such file or folder")
    old_hash, new_hash = policy_hash(old), policy_hash(new)
    words, changed_rules = policy_changes(old, new)
    changes: list[Change] = []
    bad: list[Undecidable] = []
    notes: list[str] = []
    seen: set[str] = set()
    logs: set[Path] = set()
    records = redecided = other_policy = live = 0
    for source, line, dec, why_not in _records(folder):
        if source.lower().endswith(".jsonl"):
            logs.add(Path(source))
        if dec is None:
            bad.append(Undecidable(source=source, line=line, reason=why_not or "unreadable"))
            continue
        if dec.digest and dec.digest in seen:
            continue
        seen.add(dec.digest)
        records += 1
        if dec.kind == "strategy":  # decided from live cluster state, which no record holds
            live += 1
            continue
        if old_hash == new_hash:
            continue
        other_policy += dec.policy.hash != old_hash
        try:
            plans = redecide(dec, old), redecide(dec, new)
        except (PlacerError, ValueError) as exc:
            bad.append(Undecidable(source=source, line=line, reason=str(exc)))
            continue
        redecided += 1
        jobs = dict.fromkeys([*plans[0].verdicts, *plans[0].jobs, *plans[1].verdicts,
                              *plans[1].jobs])
        for job in jobs:
            try:
                found = _compare(job, plans[0], plans[1], changed_rules)
            except KeyError:
                continue
            if found is None:
                continue
            before, after, extra = found
            changes.append(Change(source=source, line=line, digest=dec.digest, time=dec.time,
                                  kind=dec.kind, run=dec.run, pipeline=dec.pipeline, job=job,
                                  old=before, new=after, **extra))
    if old_hash == new_hash:
        notes.append(f"OLD and NEW have the same content ({old_hash}): no decision can change")
    if live:
        notes.append(f"{live} online-strategy decision(s) were not decided again: they "
                     "depended on the clusters' state at the time; the submit and replan "
                     "records of their runs were")
    if other_policy:
        notes.append(f"{other_policy} decision(s) were recorded under another policy set than "
                     "OLD; both sides were decided again, so OLD's column is OLD's decision")
    for f in sorted({Path(c.source) for c in changes} | {Path(u.source) for u in bad}
                    | logs):
        if f.suffix.lower() == ".jsonl" and f.exists():
            v = verify(f)
            if not v.ok:
                notes.append(f"{f}: the log's chain is broken at line {v.broken_line}: "
                             f"{v.problem}")
    return PolicyDiff(old_hash=old_hash, new_hash=new_hash, policy_changes=tuple(words),
                      records=records, redecided=redecided, changes=tuple(changes),
                      undecidable=tuple(bad), notes=tuple(notes))
