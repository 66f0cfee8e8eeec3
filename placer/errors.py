"""The one exception tree of placer.

Results are values, surprises are exceptions: "no site may run this job" is a
:class:`~placer.models.Plan` with status ``infeasible`` and reasons, never an
exception. Exceptions are for input that cannot be understood or for
infrastructure that cannot be reached::

    PlacerError
    ├── ConfigError (ValueError)        bad YAML or a bad field: names file, line, field
    │   ├── PipelineError               cycles, unknown references, duplicate names
    │   ├── InventoryError              unknown regions, bad sites or offers
    │   └── PolicyError                 bad rules, unknown location sets
    ├── CatalogError (LookupError)      a region, GPU or price the catalog does not know
    ├── SolverError (RuntimeError)      the MILP solver failed for a reason other than infeasibility
    ├── BackendError (RuntimeError)     a backend failed to talk to its cluster or store
    │   ├── BackendUnavailableError (ImportError)  its extra is not installed
    │   ├── CredentialsError            a token or key is missing or refused: a person fixes it
    │   ├── SiteUnreachableError        the site itself is down: the executor fails over
    │   ├── DatasetNotFoundError (LookupError)  no bucket, object or prefix where a URI points
    │   ├── ChecksumMismatchError       a copy's destination does not hold the source's bytes
    │   └── InvalidTagError             a store's tag or label placer cannot read as a fact
    ├── JournalError (RuntimeError)     the run store cannot be opened or written (not a placer
    │   │                               journal, from a newer placer, damaged, disk full)
    │   ├── RunNotFoundError (LookupError)  no run with that id in the journal
    │   └── LockHeldError               another process holds a lock (names its pid)
    │       ├── RunLockedError          ... the run's: it drives that run
    │       └── ControllerRunningError  ... the journal's: a controller already drives it
    ├── ExecutionError (RuntimeError)   the executor was asked for something it cannot do
    │   ├── ResidencyError              an output location outside the job's allowed location
    │   ├── NotPlacedError              placer.submit: the plan is held or infeasible (has .plan)
    │   └── RunFailedError              Run.wait: the run ended FAILED, STUCK or CANCELLED
    └── SimulationError (RuntimeError)  a strategy decided the impossible in a simulation
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class PlacerError(Exception):
    """Base of every error placer raises on purpose."""


@dataclass(frozen=True)
class ErrorDetail:
    """One problem found in an input file.

    ``field`` is a dotted path (``jobs[0].gpu_types.A100``) and ``loc`` the same path as a
    tuple, as pydantic reports it; ``line`` is 1-based or ``None`` when the problem is not tied
    to a place in a file.
    """

    msg: str
    file: str | None = None
    line: int | None = None
    field: str | None = None
    loc: tuple[str | int, ...] = ()

    def __str__(self) -> str:
        if self.file is None and self.line is None:
            return f"{self.field}: {self.msg}" if self.field else self.msg
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.msg}"


class ConfigError(PlacerError, ValueError):
    """Input that cannot be understood; carries every problem found, each with its place."""

    def __init__(self, details: list[ErrorDetail] | ErrorDetail | str) -> None:
        if isinstance(details, str):
            details = [ErrorDetail(details)]
        elif isinstance(details, ErrorDetail):
            details = [details]
        self.details: list[ErrorDetail] = details
        super().__init__("\n".join(str(d) for d in details))


class PipelineError(ConfigError):
    """A pipeline that is not a valid DAG: cycles, unknown references, duplicate names."""


class InventoryError(ConfigError):
    """An inventory naming unknown regions or holding inconsistent sites or offers."""


class PolicyError(ConfigError):
    """A policy file with bad rules, unknown location sets or bad patterns."""


class CatalogError(PlacerError, LookupError):
    """The catalog does not know a region, GPU type or price that was asked for."""


class SolverError(PlacerError, RuntimeError):
    """The solver failed for a reason other than proven infeasibility."""


class BackendError(PlacerError, RuntimeError):
    """A backend could not talk to its cluster or store."""


class BackendUnavailableError(BackendError, ImportError):
    """A backend was asked for but its optional dependency is not installed."""


class CredentialsError(BackendError):
    """A cluster or store refused placer's credentials, or they are missing (an unset
    ``token_env``, an empty ``token_file``). Waiting does not fix it, a person does: a
    preflight and ``placer resume`` refuse at once with the fix, instead of retrying."""


class SiteUnreachableError(BackendError):
    """The site as a whole cannot be reached (cluster stopped, API down), not just one call.

    The executor treats it as a site failure: it re-plans the rest of the run without the site.
    A backend raises it only when it is confident the site is down; a flaky call is a plain
    :class:`BackendError`, retried with backoff.
    """

    def __init__(self, site: str, message: str = "site is unreachable") -> None:
        self.site = site
        super().__init__(f"{site}: {message}")


class JournalError(PlacerError, RuntimeError):
    """The run store cannot be opened or written: not a placer journal, written by a newer
    placer, damaged (a stored spec that no longer matches its hash), or a failed write (disk
    full). The message names the journal's path."""


class RunNotFoundError(JournalError, LookupError):
    """No run with that id in the journal."""


class LockHeldError(JournalError):
    """Another process holds a lock this one needs; ``pid`` and ``since`` (epoch seconds)
    name the holder when it could be read, so the message can say whom to wait for."""

    def __init__(self, message: str, *, pid: int | None = None,
                 since: float | None = None) -> None:
        self.pid = pid
        self.since = since
        super().__init__(message)


class RunLockedError(LockHeldError):
    """Another process is driving the run (``submit --wait``, ``resume``): one driver per run."""


class ControllerRunningError(LockHeldError):
    """A ``placer controller`` already drives the journal: one controller per journal."""


class ExecutionError(PlacerError, RuntimeError):
    """The executor was asked for something it cannot do (e.g. a plan that is not placed)."""


class ResidencyError(ExecutionError):
    """Refused: an output location would lie outside the storage the policy allows the job."""


class NotPlacedError(ExecutionError):
    """``placer.submit`` made a plan that is not placed (held, infeasible): nothing runs.

    ``plan`` is that plan (``plan.explain()`` says why).
    """

    def __init__(self, plan: Any) -> None:
        self.plan = plan
        why = "; ".join(plan.reasons) or "see plan.explain()"
        super().__init__(f"pipeline {plan.pipeline!r} was not placed ({plan.status}): {why}; "
                         "nothing was submitted")


class RunFailedError(ExecutionError):
    """A run waited on ended without succeeding; ``status`` is its final status."""

    def __init__(self, status: Any) -> None:
        self.status = status
        bad = [f"{j.job}: {j.state}" + (f" ({j.reason})" if j.reason else "")
               for j in status.jobs.values() if j.state != "SUCCEEDED"]
        why = f" ({status.reason})" if status.reason else ""
        super().__init__(f"run {status.run_id} ended {status.state}{why}: "
                         + ("; ".join(bad) or "no job failed") + "; see run.logs(job)")


class SimulationError(PlacerError, RuntimeError):
    """A simulation cannot go on: a strategy decided something impossible (an unknown site, a
    job larger than every pool and no cloud allowed), or a scenario does not fit together."""


class DatasetNotFoundError(BackendError, LookupError):
    """The bucket, or the object or prefix, a URI names does not exist (in any store)."""

    def __init__(self, uri: str, what: str) -> None:
        self.uri = uri
        super().__init__(f"{uri}: {what}")


class ChecksumMismatchError(BackendError):
    """A copy's destination does not hold the source's bytes: size or checksum differ.

    Raised by every store's verified copy and ``verify``/``verify_copy`` (see
    :mod:`placer.storage`); ``expected`` and ``found`` read like ``8 bytes sha256:<hex>``.
    """

    def __init__(self, uri: str, expected: str, found: str) -> None:
        self.uri, self.expected, self.found = uri, expected, found
        super().__init__(f"{uri}: verification failed: expected {expected}, found {found}")


class InvalidTagError(BackendError):
    """A bucket's or object's tag (a GCS bucket's label) placer refuses to read as a fact.

    A key or value with an invisible character (zero-width space, bidirectional override), or
    two keys that are one key once case, width and look-alike letters are normalised
    (:func:`placer.tags.clean_tags`). Never dropped silently: a dropped ``residency`` tag
    could make a ``forbid`` rule miss.
    """

    def __init__(self, uri: str, bucket: str, key: str | None, tag: str | None,
                 problem: str, what: str = "tag") -> None:
        self.uri, self.bucket, self.key, self.tag = uri, bucket, key, tag
        where = f"bucket {bucket}" + (f", object {key}" if key else "")
        super().__init__(f"{uri}: invalid {what} on {where}: {problem}")
