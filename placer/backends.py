"""The seams backends plug into, and how placer finds them.

placer never imports a backend by name: each registers under the entry-point group
``placer.backends`` (``placer_ray``, ``placer_k8s``, ``placer_s3``, ``placer_gcs`` ship with
placer's extras; third parties register the same way). A backend imports its SDK lazily, so
``import placer`` stays free of cloud SDKs.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, runtime_checkable

from placer.errors import BackendError, BackendUnavailableError

if TYPE_CHECKING:
    from placer.models import Job, JobPlacement, ResolvedSite

GROUP = "placer.backends"

# The extra that provides each backend that ships with placer.
EXTRAS = {"ray": "ray", "k8s": "k8s", "s3": "s3", "gcs": "gcs"}


# The job states every compute backend reports, whatever its cluster calls them.
PENDING: Final = "PENDING"
RUNNING: Final = "RUNNING"
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
STOPPED: Final = "STOPPED"
JobState = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"]
JOB_STATES: tuple[JobState, ...] = (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)
TERMINAL_STATES: frozenset[str] = frozenset({SUCCEEDED, FAILED, STOPPED})


@dataclass(frozen=True)
class Handle:
    """What a compute backend returns for a submitted job: enough to find it again.

    The journal stores the three fields, so a handle must survive a restart of placer: ``id``
    is the cluster's own name for the job (a Ray submission id, a Kubernetes object name).
    """

    backend: str
    site: str
    id: str


@runtime_checkable
class ComputeBackend(Protocol):
    """Runs jobs on one site's cluster.

    ``submit`` is idempotent: the same ``submission_id`` twice yields one job (Ray Jobs
    ``submission_id``, a Kubernetes object name), so a restart never starts a step twice.
    ``find`` returns the job a ``submission_id`` names, if the cluster has it: the executor calls
    it on resume for a step whose submission was recorded as intended but not as done.

    Errors: :class:`~placer.errors.SiteUnreachableError` when the site is down (the executor
    fails over), :class:`~placer.errors.BackendError` for anything else (retried with backoff).
    Messages must never contain credentials.
    """

    name: str

    def submit(self, job: Job, placement: JobPlacement, *, submission_id: str,
               env: Mapping[str, str]) -> Handle: ...
    def status(self, handle: Handle) -> JobState: ...
    def logs(self, handle: Handle) -> str: ...
    def cancel(self, handle: Handle) -> None: ...
    def find(self, submission_id: str) -> Handle | None: ...


@runtime_checkable
class StorageLayout(Protocol):
    """Where a job of a run writes its outputs, given the location it runs in.

    The executor asks for a prefix in the job's own location and refuses any answer it can show
    to lie elsewhere: outputs stay on storage the policy allows for the job.
    """

    def job_prefix(self, run_id: str, job: str, location: str) -> str | None:
        """A URI prefix (ending in ``/``) in ``location``, or ``None`` if none is configured."""
        ...


@dataclass(frozen=True)
class PrefixLayout:
    """One storage root per location: ``{root}/{run_id}/{job}/``.

    >>> PrefixLayout({"aws:eu-central-1": "s3://acme-eu/placer"}).job_prefix(
    ...     "run-1", "train", "aws:eu-central-1")
    's3://acme-eu/placer/run-1/train/'
    """

    roots: Mapping[str, str]

    def job_prefix(self, run_id: str, job: str, location: str) -> str | None:
        root = self.roots.get(location)
        return None if root is None else f"{root.rstrip('/')}/{run_id}/{job}/"


@dataclass(frozen=True)
class DatasetFacts:
    """What a storage backend learnt about a dataset, and how (for the plan's evidence)."""

    uri: str
    location: str | None
    size_gb: float | None
    tags: dict[str, str]
    evidence: dict[str, str]


@runtime_checkable
class StorageResolver(Protocol):
    """Reads where a dataset lives, its tags and size, from the store itself."""

    def resolve(self, uri: str) -> DatasetFacts: ...


class CopyOutcome(Protocol):
    """What a verified copy reports: the bytes moved and the checksum both sides agreed on."""

    @property
    def bytes(self) -> int: ...
    @property
    def checksum(self) -> str: ...


@runtime_checkable
class DataMover(Protocol):
    """Copies data between locations, verified, refusing destinations outside ``allowed``.

    The residency check happens before any byte moves, and a copy is reported only once the
    destination matches the source by size and checksum (``placer_s3.S3Resolver`` and
    ``placer_gcs.GCSResolver`` implement it).
    """

    def copy(self, src: str, dst: str, *, allowed: Collection[str]) -> CopyOutcome: ...


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_backends() -> list[str]:
    """Names of the installed backends (their SDKs are not imported)."""
    return sorted(_entry_points())


def load_backend(name: str) -> Any:
    """Load backend ``name``; a missing extra is a clear error naming what to install."""
    ep = _entry_points().get(name)
    extra = EXTRAS.get(name)
    if ep is None:
        hint = f"pip install 'placer[{extra}]'" if extra else "install the package that provides it"
        raise BackendUnavailableError(f"backend {name!r} is not installed; {hint}")
    try:
        return ep.load()
    except ImportError as exc:
        hint = f"pip install 'placer[{extra}]'" if extra else f"its dependencies ({exc.name})"
        raise BackendUnavailableError(f"backend {name!r} cannot load: {exc}; {hint}") from exc


def load_all_backends() -> dict[str, Any]:
    """Every backend that loads; one that fails to load warns rather than crashing placer."""
    out: dict[str, Any] = {}
    for name in available_backends():
        try:
            out[name] = load_backend(name)
        except BackendUnavailableError as exc:
            warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
    return out


def compute_backends_for(sites: Iterable[ResolvedSite]) -> dict[str, ComputeBackend]:
    """A compute backend per site that says how to reach its cluster (``Site.cluster``).

    A compute backend's entry point is a factory called with the resolved site; sites with no
    ``cluster`` get none (the executor refuses plans that use them).
    """
    out: dict[str, ComputeBackend] = {}
    for site in sites:
        if site.cluster is None:
            continue
        factory = load_backend(site.cluster.backend)
        out[site.name] = factory(site)
    return out


def layout_for(sites: Iterable[ResolvedSite]) -> PrefixLayout:
    """Each site's ``storage`` root as the output root for its location."""
    roots: dict[str, str] = {}
    for site in sites:
        if site.storage:
            roots.setdefault(site.location.key, site.storage)
    return PrefixLayout(roots)


# URI scheme → storage backend (entry point name) that reads and moves it.
STORAGE_SCHEMES: Final = {"s3": "s3", "gs": "gcs"}


class StorageRouter:
    """One StorageResolver and DataMover over several stores, chosen by URI scheme.

    Built from an inventory by :func:`storage_for`. A copy between two different stores (S3 to
    GCS) is refused rather than guessed at: no backend verifies such a copy yet.
    """

    def __init__(self, stores: Mapping[str, Any]) -> None:
        self.stores = dict(stores)

    def _store(self, uri: str) -> Any:
        scheme = uri.partition("://")[0]
        if scheme not in self.stores:
            raise BackendUnavailableError(
                f"no storage backend for {uri!r}; sites' storage uses: "
                f"{', '.join(sorted(self.stores)) or 'none'}")
        return self.stores[scheme]

    def resolve(self, uri: str) -> DatasetFacts:
        return self._store(uri).resolve(uri)  # type: ignore[no-any-return]

    def copy(self, src: str, dst: str, *, allowed: Collection[str]) -> CopyOutcome:
        if src.partition("://")[0] != dst.partition("://")[0]:
            raise BackendError(f"cannot copy {src} to {dst}: copies between different stores "
                               "are not supported yet")
        return self._store(dst).copy(src, dst, allowed=allowed)  # type: ignore[no-any-return]


def storage_for(sites: Iterable[ResolvedSite]) -> StorageRouter | None:
    """The stores named by sites' ``storage`` roots, or ``None`` when no site names one.

    An on-prem site's bucket has no cloud region to ask: the inventory's statement that the
    site's storage lives at the site is taken as its location. Cloud buckets are not taken on
    trust: their store is asked where they are, and an output root in the wrong region makes
    the job stuck rather than write there.
    """
    declared: dict[str, dict[str, str]] = {}
    for site in sites:
        if not site.storage:
            continue
        scheme = site.storage.partition("://")[0]
        if scheme not in STORAGE_SCHEMES:
            raise BackendUnavailableError(
                f"site {site.name!r}: no storage backend for {site.storage!r} "
                f"(supported: {', '.join(f'{s}://' for s in STORAGE_SCHEMES)})")
        by_bucket = declared.setdefault(scheme, {})
        if site.kind == "onprem":
            bucket = site.storage.partition("://")[2].partition("/")[0]
            by_bucket[bucket] = site.location.key
    if not declared:
        return None
    stores: dict[str, Any] = {}
    for scheme, buckets in declared.items():
        factory = load_backend(STORAGE_SCHEMES[scheme])
        stores[scheme] = factory(bucket_locations=buckets) if scheme == "s3" else factory()
    return StorageRouter(stores)
