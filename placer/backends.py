"""The seams backends plug into, and how placer finds them.

placer never imports a backend by name: each registers under the entry-point group
``placer.backends`` (``placer_ray``, ``placer_k8s``, ``placer_s3``, ``placer_gcs`` ship with
placer's extras; third parties register the same way). A backend imports its SDK lazily, so
``import placer`` stays free of cloud SDKs.

A storage backend subclasses :class:`placer.storage.ObjectStore` (the one verified-copy
algorithm; the store fills in its primitives) and declares the URI schemes it serves;
:func:`storage_for` routes each URI by scheme and bucket to the store that serves it. A compute
backend may also render the cluster a plan paid for (:class:`ClusterRenderer`, found by
:func:`cluster_renderers`): ``placer_ray`` renders Ray launcher configs, ``placer_k8s`` KubeRay
``RayCluster`` manifests.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, runtime_checkable

from placer import transfer
from placer.errors import BackendUnavailableError
from placer.storage import AllowedLocations
from placer.storage import CopyResult as CopyResult
from placer.storage import DatasetFacts as DatasetFacts
from placer.storage import ObjectStore as ObjectStore

if TYPE_CHECKING:
    from placer.journal import Journal
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


GPU_TYPE_RESOURCE_PREFIX: Final = "gpu_type:"
"""A GPU type becomes a Ray custom resource with this prefix: a node with eight A100-80GB
advertises ``{"gpu_type:A100-80GB": 8}``, and a job planned on two of them asks for
``{"gpu_type:A100-80GB": 2}``, so Ray starts it only on a node of that type. Defined here, once,
because two backends share it: ``placer_ray`` asks for it when it submits, and every Ray cluster
placer renders (``placer_ray``'s launcher config, ``placer_k8s``'s RayCluster) advertises it."""


def gpu_type_resource(gpu: str) -> str:
    """The Ray custom resource that stands for one GPU of type ``gpu``.

    >>> gpu_type_resource("A100-80GB")
    'gpu_type:A100-80GB'
    """
    return GPU_TYPE_RESOURCE_PREFIX + gpu


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


@dataclass(frozen=True)
class NodeGpus:
    """One node of a cluster as it reports itself now: its GPUs, and how many no work holds.

    >>> NodeGpus("n1", total=4, free=1)
    NodeGpus(node='n1', total=4, free=1)
    """

    node: str
    """The cluster's own name for the node (a Ray node id, a Kubernetes node name)."""
    total: int
    free: int

    def __post_init__(self) -> None:
        if not 0 <= self.free <= self.total:
            raise ValueError(f"node {self.node}: free GPUs must be within 0..total, "
                             f"got {self.free}/{self.total}")


Bundle = int
"""GPUs a pending request needs on one node (a Ray resource bundle, a pod)."""


@dataclass(frozen=True)
class GpuCapacity:
    """A site's cluster as it reports itself now: its GPUs, how many no work holds, per node,
    and the work already waiting for them.

    The rule a job is judged by (:meth:`fits`), written once for every backend:

    1. Pending requests go first: each, in the order reported, takes GPUs now if it fits the
       nodes' free GPUs (each bundle on the node with the most free, the placement that leaves
       the least room for anyone else); a request that fits nowhere takes nothing now (it waits
       for a release, as a job of ours would: Ray and the Kubernetes scheduler start later work
       that fits ahead of earlier work that does not; tests/e2e/test_capacity_ray.py shows it
       on Ray).
    2. GPUs of work just submitted that the report does not show yet (``reserved``) may have
       gone to any node: each node is taken to have lost up to that many.
    3. A job no larger than the largest node needs that many free GPUs on one node. A larger
       job fits only if the cluster spreads a job over nodes (``multi_node``): then it takes
       whole free nodes, largest first, as the simulator's pool does; else it never fits.

    A reporter that does not know its nodes (``nodes=None``: a fake, or a cluster reported as
    one pool) is judged by the counts alone.

    >>> c = GpuCapacity(total=8, free=2, nodes=(NodeGpus("a", 4, 1), NodeGpus("b", 4, 1)))
    >>> c.fits(2), c.fits(1)
    (False, True)
    >>> GpuCapacity(total=8, free=2).used
    6
    """

    total: int
    free: int
    nodes: tuple[NodeGpus, ...] | None = None
    """Per node, when the cluster reports them (their figures add up to ``total``/``free``)."""
    pending: tuple[tuple[Bundle, ...], ...] = ()
    """Work the cluster holds and has not started, whoever submitted it (the cluster cannot
    say; placer's own pending steps are in it too): per request, the GPUs of each bundle.
    Requests no node could ever hold are left out: they never take a GPU."""
    multi_node: bool = False
    """Whether one job may span several nodes (rule 3)."""

    def __post_init__(self) -> None:
        if not 0 <= self.free <= self.total:
            raise ValueError(f"free GPUs must be within 0..total, got {self.free}/{self.total}")
        if self.nodes is not None and (sum(n.total for n in self.nodes) != self.total
                                       or sum(n.free for n in self.nodes) != self.free):
            raise ValueError(f"the nodes' GPUs do not add up to {self.free}/{self.total} free")
        if any(g < 1 for r in self.pending for g in r) or any(not r for r in self.pending):
            raise ValueError("each pending request is one or more bundles of 1 GPU or more")

    @property
    def used(self) -> int:
        return self.total - self.free

    @property
    def pending_gpus(self) -> int:
        """GPUs the work waiting on the cluster asks for, in all."""
        return sum(sum(r) for r in self.pending)

    @cached_property
    def _settled(self) -> tuple[tuple[int, ...], tuple[tuple[Bundle, ...], ...]]:
        """Free GPUs per node once the pending requests that fit now have started (rule 1),
        and the requests that still wait. Worked out once: a decision asks several times."""
        free = [n.free for n in self.nodes] if self.nodes is not None else [self.free]
        waiting = []
        for request in self.pending:
            trial = list(free)
            for g in sorted(request, reverse=True):
                i = max(range(len(trial)), key=lambda k: (trial[k], -k), default=-1)
                if i < 0 or trial[i] < g:
                    waiting.append(request)
                    break
                trial[i] -= g
            else:
                free = trial
        return tuple(free), tuple(waiting)

    def available(self, reserved: int = 0) -> int:
        """Free GPUs no pending request is about to take, less ``reserved`` (never below 0)."""
        return max(0, sum(self._settled[0]) - max(0, reserved))

    def waiting(self) -> tuple[tuple[Bundle, ...], ...]:
        """The pending requests that fit nowhere now: they take the next GPUs released that
        they fit in, ahead of any job submitted after them."""
        return self._settled[1]

    def fits(self, gpus: int, *, reserved: int = 0) -> bool:
        """Whether a job of ``gpus`` GPUs would start now (the rule above)."""
        if gpus < 1:
            return True
        free, _ = self._settled
        reserved = max(0, reserved)
        if self.nodes is None:
            return gpus <= free[0] - reserved
        largest = max((n.total for n in self.nodes), default=0)
        if gpus <= largest:
            return any(f - reserved >= gpus for f in free)
        if not self.multi_node:
            return False
        whole = sorted((n.total for n, f in zip(self.nodes, free, strict=True)
                        if f - reserved >= n.total), reverse=True)
        got = 0
        for size in whole:
            got += size
            if got >= gpus:
                return True
        return False


@runtime_checkable
class CapacityReporter(Protocol):
    """Optional capability of a compute backend: its cluster's GPUs, read live from the cluster.

    An online strategy (``placer controller --strategy``) decides from what the on-prem cluster
    has free *now*, node by node, and what work already waits there; a backend that cannot say
    does not implement this, and the strategy step refuses to run on it rather than guess
    (:class:`~placer.errors.ExecutionError`). A backend that can say only part of it refuses
    the whole (an error), never fills the rest in. Errors as
    for :class:`ComputeBackend`: :class:`~placer.errors.SiteUnreachableError` when the cluster
    does not answer, :class:`~placer.errors.BackendError` when its answer cannot be read.
    """

    def gpus(self) -> GpuCapacity: ...


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
    destination matches the source by size and checksum. Every :class:`ObjectStore` (the
    shared algorithm in :mod:`placer.storage`) and :class:`StorageRouter` implement it.
    """

    def copy(self, src: str, dst: str, *, allowed: Collection[str]) -> CopyOutcome: ...


@dataclass(frozen=True)
class ClusterFormat:
    """A kind of cluster spec a backend renders (``placer cluster-spec --format NAME``)."""

    name: str
    description: str
    needs_image: bool = False
    """Whether the spec names a container image (``--image``)."""


@runtime_checkable
class ClusterRenderer(Protocol):
    """A backend that renders the cluster a plan paid for on a cloud site, for the cloud's own
    tooling to bring up (``ray up``, ``kubectl apply``). The backend's entry point offers it:
    ``cluster_formats`` names what it renders; ``render_cluster`` is pure (plain data from
    models, no SDK, no I/O) and sizes the cluster with :mod:`placer.cluster_spec`.

    Errors: :class:`~placer.errors.ConfigError` for a site it cannot render (not a cloud site,
    a missing option, each naming the field), :class:`~placer.errors.CatalogError` for a
    placement the site has no offer for.
    """

    cluster_formats: tuple[ClusterFormat, ...]

    def render_cluster(self, site: ResolvedSite, placement: JobPlacement, fmt: str, *,
                       image: str | None = None) -> dict[str, Any]: ...


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


def _offered(attribute: str) -> Iterator[tuple[str, Any, Any]]:
    """``(backend name, item, backend)`` for each item of ``attribute`` (``schemes``,
    ``cluster_formats``) that an installed backend's entry point declares. Loading one imports
    no SDK; a backend that fails to load is left out here (its error names the extra when it
    is asked for by name)."""
    for name in available_backends():
        try:
            backend = load_backend(name)
        except BackendUnavailableError:
            continue
        for item in getattr(backend, attribute, ()) or ():
            yield name, item, backend


def storage_backends() -> dict[str, Any]:
    """URI scheme → the storage backend that serves it, from the installed backends.

    A storage backend is an entry point in the ``placer.backends`` group whose object declares
    the URI schemes it serves (``schemes = ("s3",)``, as every :class:`ObjectStore` does).
    Two backends for one scheme is an error.
    """
    out: dict[str, Any] = {}
    for name, scheme, backend in _offered("schemes"):
        if scheme in out and out[scheme] is not backend:
            raise BackendUnavailableError(
                f"two storage backends serve {scheme}://: {out[scheme].__name__} and "
                f"{getattr(backend, '__name__', name)}; uninstall one")
        out[scheme] = backend
    # placer's own file store needs no SDK: served even where placer's entry points are not
    # installed anew (an editable install from before it existed).
    from placer.filestore import FileStore

    for scheme in FileStore.schemes:
        out.setdefault(scheme, FileStore)
    return out


def cluster_renderers() -> dict[str, tuple[ClusterFormat, ClusterRenderer]]:
    """Format name → (its :class:`ClusterFormat`, the backend that renders it), in name order,
    from the installed backends that declare ``cluster_formats``. Two backends for one format
    is an error."""
    out: dict[str, tuple[ClusterFormat, ClusterRenderer]] = {}
    for _, fmt, backend in _offered("cluster_formats"):
        if fmt.name in out and out[fmt.name][1] is not backend:
            raise BackendUnavailableError(
                f"two backends render {fmt.name!r} cluster specs; uninstall one")
        out[fmt.name] = (fmt, backend)
    return dict(sorted(out.items()))


class StorageRouter:
    """One StorageResolver and DataMover over several stores, chosen by URI scheme and bucket.

    Built from an inventory by :func:`storage_for`. ``stores`` maps a URI scheme to its cloud
    store (the provider's, or whatever the SDK's environment names); ``buckets`` maps a scheme
    and bucket name to the store of the site that declares it (an on-prem site's own endpoint,
    or a store with the site's own credentials). Any bucket not in ``buckets`` goes to the
    scheme's cloud store: a name means one bucket, on one store. ``files`` are the on-prem
    sites' stores routed by path (a store class with ``by_path``: ``file://``): a path goes to
    the one whose root holds it (the deepest), and a path of a ``path_schemes`` scheme under
    none is refused, since nothing can say where it is.

    A copy between two stores (an on-prem one and the cloud, or two kinds of store such as S3
    and GCS, or a file system and either) runs under the same residency guard and
    verification: in parts, resumable, by :func:`placer.transfer.copy` into a store with
    multipart writes, else streamed by the destination (:meth:`ObjectStore.copy` with
    ``source=``); see :meth:`copy`.
    """

    def __init__(self, stores: Mapping[str, Any],
                 buckets: Mapping[str, Mapping[str, Any]] | None = None,
                 files: Iterable[Any] = (), path_schemes: Iterable[str] = ()) -> None:
        self.stores = dict(stores)
        self.buckets = {scheme: dict(by_name) for scheme, by_name in (buckets or {}).items()}
        self.files = list(files)
        self.path_schemes = {*path_schemes, *(s for f in self.files for s in f.schemes)}

    def store_for(self, uri: str) -> Any:
        """The store that answers for ``uri``'s bucket (or, ``file://``, its directory).

        Raises:
            ResidencyError: a ``file://`` path under no site's file store.
            BackendUnavailableError: a scheme no store of this router serves.
        """
        scheme, _, rest = uri.partition("://")
        if scheme in self.path_schemes:
            return self._file_store(uri)
        if scheme not in self.stores:
            raise BackendUnavailableError(
                f"no storage backend for {uri!r}; sites' storage uses: "
                f"{', '.join(sorted(self.schemes())) or 'none'}")
        bucket = rest.partition("/")[0]
        return self.buckets.get(scheme, {}).get(bucket, self.stores[scheme])

    def _file_store(self, uri: str) -> Any:
        from placer.errors import ResidencyError

        holding = [f for f in self.files if f.holds(uri)]
        if not holding:
            declared = ", ".join(f"{f.root_uri} ({f.onprem_location.key})" for f in self.files)
            scheme = uri.partition("://")[0]
            raise ResidencyError(
                f"{uri}: under no site's {scheme}:// store (declared: {declared or 'none'}), so "
                "its location is unknown and it is refused; declare the directory as an "
                "on-prem site's storage, or copy the data under one")
        return max(holding, key=lambda f: len(f.root))

    def schemes(self) -> set[str]:
        """The URI schemes some store of this router serves."""
        return set(self.stores) | {s for f in self.files for s in f.schemes}

    def serves(self, uri: str) -> bool:
        """Whether some store of this router answers for ``uri``'s scheme (a path of a
        ``path_schemes`` scheme always: one under no site's store is then refused by name)."""
        scheme = uri.partition("://")[0]
        return scheme in self.stores or scheme in self.path_schemes

    def resolve(self, uri: str, *, fresh: bool = False) -> DatasetFacts:
        """The facts of ``uri`` from the store that holds it; ``fresh=True`` drops what that
        store cached of its bucket first (:meth:`ObjectStore.forget`), so every fact is asked
        again."""
        store = self.store_for(uri)
        if fresh and hasattr(store, "forget"):
            store.forget(uri)
        return store.resolve(uri)  # type: ignore[no-any-return]

    # How copies between two stores run (placer.transfer's settings; tests lower them).
    part_size: int | None = None  # None: placer.transfer.DEFAULT_PART_SIZE
    workers: int | None = None  # None: placer.transfer.DEFAULT_WORKERS
    reads: Literal["ranged", "stream"] = "ranged"

    def copy(self, src: str, dst: str, *, allowed: AllowedLocations,
             should_stop: Callable[[], bool] | None = None,
             journal: Journal | None = None) -> CopyResult:
        """Copy ``src`` to ``dst`` (an object or a prefix), verified, under the residency
        guard of the destination's store, which is asked before anything moves.

        Inside one store the copy is the store's own (server-side, :meth:`ObjectStore.copy`).
        Between two stores whose destination writes in parts (``ObjectStore.multipart``: S3,
        GCS) it is :func:`placer.transfer.copy`: parts in flight, each verified, and with
        ``journal`` resumable across processes (its ``copy_parts`` table: a copy started
        again re-sends only the parts not recorded). Into a store without parts (``file://``)
        it is streamed by :meth:`ObjectStore.copy` with ``source=``. The result's checksum is
        ``sha256:`` (``sha256-tree:`` for a prefix) between stores either way, which
        :meth:`verify_copy` re-checks (re-reading an object whose store reports only a
        composite of its parts).

        Args:
            should_stop: asked between parts (the executor's: the run is being cancelled);
                ``True`` stops the copy for good with :class:`placer.transfer.CopyAbandoned`
                (a :class:`~placer.errors.BackendError`): the multipart upload in progress is
                aborted, as a cancelled run is never resumed (a copy killed with its process
                leaves it for the resumed copy).
            journal: where a multipart copy records its progress (the executor's).
        """
        source, dest = self.store_for(src), self.store_for(dst)
        if source is dest:
            return dest.copy(src, dst, allowed=allowed)  # type: ignore[no-any-return]
        if not (isinstance(source, ObjectStore) and isinstance(dest, ObjectStore)
                and dest.multipart):
            return dest.copy(src, dst, allowed=allowed,  # type: ignore[no-any-return]
                             source=source)
        on_part = None
        if should_stop is not None:
            def on_part(written: int) -> None:
                if should_stop():
                    raise transfer.CopyAbandoned(
                        f"copy of {src} to {dst} stopped after {written} parts: asked to stop "
                        "(the run is being cancelled)")
        return transfer.copy(
            source, src, dest, dst, allowed=allowed,
            ledger=transfer.JournalLedger(journal) if journal is not None else None,
            part_size=self.part_size or transfer.DEFAULT_PART_SIZE,
            workers=self.workers or transfer.DEFAULT_WORKERS, on_part=on_part,
            reads=self.reads)

    def verify_copy(self, result: CopyResult) -> None:
        """Re-check an earlier copy on the store that holds its destination."""
        self.store_for(result.dst).verify_copy(result)


def storage_for(sites: Iterable[ResolvedSite]) -> StorageRouter | None:
    """The stores named by sites' ``storage`` roots, or ``None`` when no site names one.

    A bucket's location is what its store says (docs/storage.md, "Where a bucket is"):

    - A cloud store (AWS S3, GCS) always decides where its buckets are. Every bucket not
      routed elsewhere goes to the scheme's cloud store, built from the SDK's own environment.
    - An on-prem site's ``storage`` is on the site's own S3-compatible store, at its
      ``storage_endpoint``: that store has no geography, so its buckets are where the site is
      (unless it names a cloud region in another country: refused by the store). Its bucket
      is routed to that endpoint.
    - An on-prem site whose ``storage`` has no ``storage_endpoint`` would put the inventory's
      word above a cloud store's: refused, as are one bucket name on two stores and one
      endpoint for two locations.
    - An on-prem site's ``file://`` storage is its shared file system (a store routed by
      path, :mod:`placer.filestore`): where the site is. A path under no declared root is
      refused by the router.
    - A site's ``storage_credentials`` (references: a profile, variable names, a key file) give
      its store its own credentials, and ``dataset_buckets`` route more buckets to it.

    Stores are found by the scheme of each URI (:func:`storage_backends`), never by name.

    Raises:
        BackendUnavailableError: a storage URI no installed backend reads.
        InventoryError: sites that break the rule, each named with the field at fault.
    """
    return _stores(sites, ())


def stores_for_datasets(sites: Iterable[ResolvedSite], uris: Iterable[str]
                        ) -> StorageRouter | None:
    """:func:`storage_for` the sites, plus a cloud store for each scheme of ``uris`` (the
    datasets to resolve) that an installed backend serves, built from the SDK's own
    environment (boto3's chain, Application Default Credentials, ``AWS_ENDPOINT_URL_S3``,
    ``STORAGE_EMULATOR_HOST``). A bucket an on-prem site names stays on that site's store.
    ``None`` when no store serves any of them (a scheme no backend serves, ``file://``, is
    left to the caller)."""
    return _stores(sites, tuple(uris))


def _stores(sites: Iterable[ResolvedSite], uris: tuple[str, ...]) -> StorageRouter | None:
    from placer.catalog import normalise_endpoint, storage_problems
    from placer.errors import ErrorDetail, InventoryError

    sites = list(sites)
    backends = storage_backends() if uris or any(site.storage for site in sites) else {}
    for site in sites:
        scheme = (site.storage or "").partition("://")[0]
        if site.storage and scheme not in backends:
            raise BackendUnavailableError(
                f"site {site.name!r}: no storage backend for {site.storage!r} "
                f"(installed: {', '.join(f'{s}://' for s in sorted(backends)) or 'none'})")
    problems = storage_problems(sites)
    if problems:
        raise InventoryError([ErrorDetail(msg, field=f"sites.{name}.{field}",
                                          loc=("sites", name, field))
                              for name, field, msg in problems])
    clouds: dict[str, Any] = {}
    own: dict[tuple[str, str, str], Any] = {}  # (scheme, endpoint, credentials) → its store
    files: dict[str, Any] = {}  # file store root → its store
    routes: dict[str, dict[str, Any]] = {}
    for site in sites:
        if not site.storage:
            continue
        scheme, _, rest = site.storage.partition("://")
        if getattr(backends[scheme], "by_path", False):
            store = backends[scheme](root=site.storage, onprem_location=site.location)
            files.setdefault(store.root, store)
            continue
        if scheme not in clouds:
            clouds[scheme] = backends[scheme]()
        creds = site.storage_credentials
        if site.storage_endpoint is None and creds is None:
            continue  # the cloud store, from the SDK's own environment
        kwargs: dict[str, Any] = {}
        if site.storage_endpoint:
            if not getattr(backends[scheme], "serves_onprem", False):
                raise InventoryError([ErrorDetail(
                    f"a {scheme}:// store cannot be an on-prem site's own store",
                    field=f"sites.{site.name}.storage_endpoint",
                    loc=("sites", site.name, "storage_endpoint"))])
            kwargs.update(endpoint_url=site.storage_endpoint, onprem_location=site.location)
        if creds is not None:
            kwargs["credentials_ref"] = creds
        key = (scheme, normalise_endpoint(site.storage_endpoint or ""),
               "" if creds is None else creds.model_dump_json(exclude_none=True))
        if key not in own:
            own[key] = backends[scheme](**kwargs)
        for bucket in (rest.partition("/")[0], *site.dataset_buckets):
            routes.setdefault(scheme, {})[bucket] = own[key]
    by_path = {scheme for scheme, b in backends.items() if getattr(b, "by_path", False)}
    for uri in uris:
        scheme = uri.partition("://")[0]
        if scheme in backends and scheme not in clouds and scheme not in by_path:
            clouds[scheme] = backends[scheme]()
    if not clouds and not files:
        return None
    # Once the inventory declares where its file systems are, a path under none of them is
    # refused by name; with none declared, such a URI is one no store reads (its written
    # location stands, as for any scheme no backend serves).
    return StorageRouter(clouds, routes, files.values(), path_schemes=by_path if files else ())
