"""Ray Jobs backend: runs a placer job as one Ray job on a site's Ray cluster.

One :class:`RayJobsBackend` per site (the site's ``cluster:`` says where and which token). The
Ray SDK is imported on first use, never at import time, so ``import placer_ray`` is cheap and
``import placer`` stays SDK-free.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from placer.backends import (
    GPU_TYPE_RESOURCE_PREFIX,
    TERMINAL_STATES,
    ClusterFormat,
    GpuCapacity,
    Handle,
    JobState,
    NodeGpus,
    gpu_type_resource,
)
from placer.errors import (
    BackendError,
    BackendUnavailableError,
    CredentialsError,
    SiteUnreachableError,
)
from placer_ray import _cluster
from placer_ray._errors import JobNotFoundError, mapped, probe
from placer_ray._tasks import TaskRunner

if TYPE_CHECKING:
    from placer.models import Job, JobPlacement, ResolvedSite, Site

NAME: Final = "ray"

# A GPU type becomes a Ray custom resource (placer.backends.gpu_type_resource): a node with
# eight A100-80GB advertises ``--resources '{"gpu_type:A100-80GB": 8}'``, and a job planned on
# two of them asks for ``{"gpu_type:A100-80GB": 2}``; Ray then only starts it on a node of that
# type. The name is placer's, shared with the Ray clusters placer_k8s renders.
GPU_RESOURCE_PREFIX: Final = GPU_TYPE_RESOURCE_PREFIX
gpu_resource = gpu_type_resource

# Environment variables the executor passes that are also recorded as Ray job metadata, so a
# job on the cluster can be traced back to its run, plan and policy set (values are hashes and
# ids, never secrets; nothing else from ``env`` goes into metadata).
METADATA_FROM_ENV: Final = {
    "PLACER_RUN_ID": "placer_run_id",
    "PLACER_PLAN_HASH": "placer_plan_hash",
    "PLACER_POLICY_HASH": "placer_policy_hash",
    "PLACER_ATTEMPT": "placer_attempt",
}

# Ray's own fallbacks when the inventory names no token (highest precedence first).
RAY_TOKEN_ENV: Final = "RAY_AUTH_TOKEN"
RAY_TOKEN_PATH_ENV: Final = "RAY_AUTH_TOKEN_PATH"
RAY_DEFAULT_TOKEN_FILE: Final = Path("~/.ray/auth_token")

_STATES: Final[dict[str, JobState]] = {
    "PENDING": "PENDING",
    "RUNNING": "RUNNING",
    "SUCCEEDED": "SUCCEEDED",
    "FAILED": "FAILED",
    "STOPPED": "STOPPED",
}

ClientFactory = Callable[..., Any]


def _default_client_factory() -> ClientFactory:
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the ray backend needs Ray's job SDK ({exc}); pip install 'placer[ray]'"
        ) from exc
    return JobSubmissionClient


def _truthy(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


class RayJobsBackend:
    """Submits, watches, and stops jobs on one site's Ray cluster through the Ray Jobs API.

    Args:
        site: the site (inventory or resolved); its ``cluster.address`` is the Ray dashboard
            URL (``http://host:8265``), ``cluster.token_env`` / ``cluster.token_file`` name the
            token, and ``cluster.options`` tunes submission (see :meth:`submission_request`).
        client_factory: builds the SDK client (tests inject fakes); Ray's
            ``JobSubmissionClient`` by default, imported on first use.

    The token is read when the first request is made and kept only in the client's headers;
    it is never logged, never put in metadata, and masked in every error message.
    """

    name = NAME
    cluster_formats: tuple[ClusterFormat, ...] = (_cluster.LAUNCHER,)
    """What :meth:`render_cluster` renders (a :class:`placer.backends.ClusterRenderer`)."""

    @staticmethod
    def render_cluster(site: ResolvedSite, placement: JobPlacement, fmt: str, *,
                       image: str | None = None) -> dict[str, Any]:
        """The Ray cluster launcher config for a plan's cloud site (:func:`launcher_config`)."""
        return _cluster.render_cluster(site, placement, fmt, image=image)

    @staticmethod
    def task_runner(address: str) -> TaskRunner:
        """A runner of Python calls as Ray tasks on ``address`` (``local``, ``auto`` or a
        cluster address): what ``placer bench hybrid --ray`` spreads its runs with."""
        return TaskRunner(address)

    def __init__(self, site: Site | ResolvedSite, *,
                 client_factory: ClientFactory | None = None) -> None:
        cluster = site.cluster
        if cluster is None or not cluster.address:
            raise BackendError(f"{site.name}: the inventory gives no cluster address for Ray")
        if cluster.backend != NAME:
            raise BackendError(f"{site.name}: the site's cluster uses backend {cluster.backend!r}")
        self.site = site.name
        self.address = cluster.address.rstrip("/")
        self._token_env = cluster.token_env
        self._token_file = cluster.token_file
        self._options = dict(cluster.options)
        self._factory = client_factory
        self._client: Any = None
        self._secret: str | None = None

    def __repr__(self) -> str:
        return f"RayJobsBackend(site={self.site!r}, address={self.address!r})"

    # -- connection ---------------------------------------------------------------------------

    def _read_token(self) -> str | None:
        """The site's token: inventory's ``token_env``, then ``token_file``, then Ray's defaults.

        A source the inventory names but that is empty or missing is an error rather than a
        silent fallback: a typo must not send another cluster's token.
        """
        if self._token_env:
            value = os.environ.get(self._token_env, "").strip()
            if not value:
                raise CredentialsError(
                    f"{self.site}: environment variable {self._token_env} (token_env) is not set"
                )
            return value
        if self._token_file:
            return self._read_file(Path(self._token_file).expanduser(), "token_file")
        value = os.environ.get(RAY_TOKEN_ENV, "").strip()
        if value:
            return value
        path_env = os.environ.get(RAY_TOKEN_PATH_ENV)
        if path_env:
            return self._read_file(Path(path_env).expanduser(), RAY_TOKEN_PATH_ENV)
        default = RAY_DEFAULT_TOKEN_FILE.expanduser()
        return self._read_file(default, "Ray's default token file") if default.is_file() else None

    def _read_file(self, path: Path, what: str) -> str:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CredentialsError(
                f"{self.site}: cannot read {what} {path}: {exc.strerror}") from None
        if not value:
            raise CredentialsError(f"{self.site}: {what} {path} is empty")
        return value

    def preflight(self, timeout_s: float = 3.0) -> None:
        """Token there and accepted, cluster answering: one request, no retry, each failure
        one line that says what to fix (``placer preflight``; ``placer submit`` first)."""
        source = (f"environment variable {self._token_env} (token_env)" if self._token_env
                  else f"token_file {self._token_file}" if self._token_file
                  else f"{RAY_TOKEN_ENV} or {RAY_DEFAULT_TOKEN_FILE}")
        if self._token_env and not os.environ.get(self._token_env, "").strip():
            raise CredentialsError(f"{self.site}: {source} is not set: export "
                                   f"{self._token_env}=<the token the cluster was started with>")
        probe(self.site, self.address, self._read_token(), source, timeout_s=timeout_s,
              verify=_truthy(self._options.get("verify_tls"), default=True))

    def _sdk(self) -> Any:
        """The SDK client, created (and the cluster's version checked) on first use."""
        if self._client is None:
            factory = self._factory or _default_client_factory()
            token = self._read_token()
            self._secret = token
            headers = {"Authorization": f"Bearer {token}"} if token else None
            verify = _truthy(self._options.get("verify_tls"), default=True)
            with mapped(self.site, self.address, "connect", token):
                self._client = factory(self.address, headers=headers, verify=verify)
        return self._client

    def _call(self, what: str, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(client)`` with errors mapped; a site is declared down only if it stays so.

        One refused connection may be a blip (a proxy reload, a dashboard restart), so the call
        is tried once more after ``cluster.options.confirm_down_s`` (default 1 s) before
        :class:`SiteUnreachableError` sends the executor into a failover. Every call is safe to
        repeat: reads are reads, and a repeated submit adopts the job it already made.
        """
        confirm_s = float(self._options.get("confirm_down_s", "1"))
        for attempt in (1, 2):
            try:
                client = self._sdk()
                with mapped(self.site, self.address, what, self._secret):
                    return fn(client)
            except SiteUnreachableError:
                if attempt == 2:
                    raise
                self._client = None  # reconnect: the head may have come back elsewhere
                time.sleep(confirm_s)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check(self, handle: Handle) -> str:
        if handle.backend != NAME or handle.site != self.site:
            raise BackendError(
                f"{self.site}: handle {handle.id!r} belongs to {handle.backend}/{handle.site}"
            )
        return handle.id

    # -- submission ---------------------------------------------------------------------------

    def submission_request(self, job: Job, placement: JobPlacement, *, submission_id: str,
                           env: Mapping[str, str]) -> dict[str, Any]:
        """The keyword arguments for ``JobSubmissionClient.submit_job`` (pure; no I/O).

        * ``runtime_env``: the job's own, plus ``image_uri`` when the job names an ``image``
          (Ray 2.60 runs the job's workers in that image, via podman on the nodes; Ray only
          allows ``config`` and ``env_vars`` beside it), plus ``env`` in ``env_vars`` (placer's
          values win over the job's: they carry input and output locations).
        * ``entrypoint_num_gpus`` = the planned GPU count and ``entrypoint_resources`` =
          ``{"gpu_type:<GPU>": count}``, so Ray starts the entrypoint only on a node with that
          GPU type. ``cluster.options``: ``entrypoint_num_gpus: "false"`` leaves Ray's ``GPU``
          resource alone (the entrypoint only launches GPU workers); ``gpu_resource_prefix``
          changes the prefix; ``accelerator_label: "true"`` adds a label selector on
          ``ray.io/accelerator-type`` as well.
        * ``metadata``: job, site, GPU, and run, plan and policy hashes from ``env`` (see
          :data:`METADATA_FROM_ENV`).
        """
        runtime_env: dict[str, Any] = dict(job.runtime_env or {})
        if job.image:
            other = set(runtime_env) - {"config", "env_vars", "image_uri"}
            if other:
                raise BackendError(
                    f"{self.site}: job {job.name!r} names an image and runtime_env fields"
                    f" {sorted(other)}; Ray allows only config and env_vars beside image_uri"
                )
            if runtime_env.get("image_uri", job.image) != job.image:
                raise BackendError(f"{self.site}: job {job.name!r} names two different images")
            runtime_env["image_uri"] = job.image
        env_vars = {**dict(runtime_env.get("env_vars") or {}), **dict(env)}
        if env_vars:
            runtime_env["env_vars"] = env_vars
        prefix = self._options.get("gpu_resource_prefix", GPU_RESOURCE_PREFIX)
        request: dict[str, Any] = {
            "entrypoint": job.command,
            "submission_id": submission_id,
            "runtime_env": runtime_env or None,
            "metadata": self._metadata(job, placement, env),
        }
        if placement.gpus > 0:  # a CPU-only step (gpus == 0) asks for no GPU resources
            request["entrypoint_resources"] = {prefix + placement.gpu: float(placement.gpus)}
            if _truthy(self._options.get("entrypoint_num_gpus"), default=True):
                request["entrypoint_num_gpus"] = placement.gpus
            if _truthy(self._options.get("accelerator_label"), default=False):
                request["entrypoint_label_selector"] = {"ray.io/accelerator-type": placement.gpu}
        if job.resources.cpus is not None:
            request["entrypoint_num_cpus"] = job.resources.cpus
        if job.resources.memory is not None:
            request["entrypoint_memory"] = int(job.resources.memory * 1e9)
        return request

    def _metadata(self, job: Job, placement: JobPlacement,
                  env: Mapping[str, str]) -> dict[str, str]:
        meta = {"placer_job": job.name, "placer_site": self.site, "placer_gpu": placement.gpu}
        meta.update({key: env[var] for var, key in METADATA_FROM_ENV.items() if var in env})
        return meta

    def submit(self, job: Job, placement: JobPlacement, *, submission_id: str,
               env: Mapping[str, str]) -> Handle:
        """Submit ``job`` as Ray job ``submission_id``; if Ray already has it, adopt it.

        Ray refuses a second job with the same submission id, so a retry after a crash (or two
        placer processes racing) yields the one job that exists rather than a second run.
        """
        if placement.site != self.site:
            raise BackendError(f"{self.site}: job {job.name!r} is placed on {placement.site!r}")
        request = self.submission_request(job, placement, submission_id=submission_id, env=env)
        self._call("connect", lambda c: None)  # reads the token, so the guard can see it
        if self._secret and any(self._secret in v for v in env.values()):
            raise BackendError(
                f"{self.site}: refusing to pass the cluster's token to job {job.name!r}"
            )
        try:
            self._call("submit job", lambda c: c.submit_job(**request))
        except BackendError as exc:
            if "already exists" not in str(exc):
                raise
            # Adopt only our own job: an id naming another job is a bug upstream, not a retry.
            info = self._call("look up job", lambda c: c.get_job_info(submission_id))
            theirs = (getattr(info, "metadata", None) or {}).get("placer_job")
            if theirs != job.name:
                raise BackendError(
                    f"{self.site}: submission id {submission_id!r} already names job {theirs!r},"
                    f" not {job.name!r}"
                ) from None
        return Handle(NAME, self.site, submission_id)

    # -- observation and control ------------------------------------------------------------

    def status(self, handle: Handle) -> JobState:
        """The job's state in placer's words (Ray uses the same five)."""
        job_id = self._check(handle)
        raw = str(self._call("read job status", lambda c: c.get_job_status(job_id)))
        state = _STATES.get(raw.rsplit(".", 1)[-1])
        if state is None:
            raise BackendError(f"{self.site}: Ray reported unknown status {raw!r} for {job_id}")
        return state

    def logs(self, handle: Handle) -> str:
        """Everything the job's entrypoint has printed so far."""
        job_id = self._check(handle)
        return str(self._call("read job logs", lambda c: c.get_job_logs(job_id)))

    def follow(self, handle: Handle, *, poll_s: float = 1.0,
               timeout_s: float | None = None) -> Iterator[str]:
        """Yield new log text as it appears, until the job ends (or ``timeout_s`` passes).

        Polls the logs rather than using Ray's websocket tail: the Jobs API returns the whole
        log each time, which is fine for the sizes placer jobs print and needs no event loop.
        """
        seen = 0
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            done = self.status(handle) in TERMINAL_STATES
            text = self.logs(handle)
            if len(text) > seen:
                yield text[seen:]
                seen = len(text)
            if done or (deadline is not None and time.monotonic() >= deadline):
                return
            time.sleep(poll_s)

    def cancel(self, handle: Handle) -> None:
        """Stop the job; a job that already ended, or that Ray does not have, is left alone."""
        job_id = self._check(handle)
        try:
            self._call("stop job", lambda c: c.stop_job(job_id))
        except JobNotFoundError:
            return

    def find(self, submission_id: str) -> Handle | None:
        """The handle of job ``submission_id`` if the cluster has it, else ``None``."""
        try:
            self._call("look up job", lambda c: c.get_job_info(submission_id))
        except JobNotFoundError:
            return None
        return Handle(NAME, self.site, submission_id)

    def gpus(self) -> GpuCapacity:
        """The cluster's GPUs now, node by node, and the GPU work waiting on it
        (:class:`placer.backends.CapacityReporter`).

        Read from the dashboard the Jobs API already talks to (``GET /api/cluster_status``,
        with the same token): the load report Ray's monitor writes (:func:`capacity_from_report`
        says what is read and what is refused). Ray's ``GPU`` resource is what every job placer
        submits asks for (``entrypoint_num_gpus``), all on one node (the entrypoint is one
        bundle), so a job never spans nodes here; a site whose jobs do not ask for it
        (``entrypoint_num_gpus: "false"``) has no GPU figure placer can trust, so it refuses.
        The report trails the cluster by Ray's monitor interval (about a second): GPUs of a
        job just submitted may still show free, which the live view accounts for.
        """
        if not _truthy(self._options.get("entrypoint_num_gpus"), default=True):
            raise BackendError(f"{self.site}: the site's jobs do not ask for Ray's GPU resource "
                               "(entrypoint_num_gpus: false), so its free GPUs are unknown")
        response = self._call("read cluster resources",
                              lambda c: c._do_request("GET", "/api/cluster_status"))
        code = getattr(response, "status_code", None)
        if code != 200:
            raise BackendError(f"{self.site}: Ray cluster at {self.address}: cannot read "
                               f"cluster resources (HTTP {code})")
        try:
            return capacity_from_report(response.json())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackendError(f"{self.site}: Ray cluster at {self.address} gives no usable "
                               f"resource report ({type(exc).__name__}: {exc}); try again"
                               ) from None

    def list_submission_ids(self) -> list[str]:
        """Submission ids of every job the cluster knows (for audits and tests)."""
        jobs = self._call("list jobs", lambda c: c.list_jobs())
        return sorted(j.submission_id for j in jobs if j.submission_id)

    def wait(self, handle: Handle, *, timeout_s: float = 300.0, poll_s: float = 0.5) -> JobState:
        """Poll until the job ends; a :class:`BackendError` if it has not after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.status(handle)
            if state in TERMINAL_STATES:
                return state
            if time.monotonic() >= deadline:
                raise BackendError(f"{self.site}: job {handle.id} still {state} after {timeout_s}s")
            time.sleep(poll_s)


def capacity_from_report(body: Any) -> GpuCapacity:
    """A :class:`~placer.backends.GpuCapacity` from the dashboard's ``/api/cluster_status``.

    What Ray's monitor writes there (its ``LoadMetricsSummary``; the dashboard turns the keys
    to camelCase) and what placer reads of it:

    * ``loadMetricsReport.usage["GPU"] = [used, total]``, the cluster's;
    * ``loadMetricsReport.usageByNode[node]["GPU"]``, the same per node (keyed by node id, or
      by IP when Ray's autoscaler runs the cluster). A fraction of a GPU held counts as held;
    * ``resourceDemand``, ``[bundle, count]`` per shape of the tasks and actors waiting for
      resources (a pending Ray job's entrypoint is one), and ``pgDemand``, ``[{"bundles":
      [[bundle, count]], "strategy"}, count]`` per pending placement group: each becomes a
      pending request of its bundles' GPUs (``STRICT_PACK``: one bundle of their sum). Shapes
      without GPUs are left out, and so is a request with a bundle larger than every node
      (Ray holds it as infeasible: it never takes a GPU). ``requestDemand`` (autoscaler
      hints from ``request_resources``) is no work and is not read.

    Refused (``ValueError``, ``KeyError``, ``TypeError``) rather than guessed: no report yet,
    a report that has heard from no node, no per-node figures (a cluster started with
    ``AUTOSCALER_REPORT_PER_NODE_STATUS=0``), per-node figures that do not add up to the
    cluster's, or a demand entry of another shape.
    """
    report = body["data"]["clusterStatus"]["loadMetricsReport"]
    usage = report["usage"]
    if not usage:  # the monitor's first reports, before it has heard from a node
        raise ValueError("the report lists no resources")
    # A resource nobody has is absent: a cluster without GPUs has none.
    used, total = (float(x) for x in usage.get("GPU", (0.0, 0.0)))
    by_node = report.get("usageByNode")
    if not isinstance(by_node, dict) or not by_node:
        raise ValueError("the report gives no per-node usage (usageByNode)")
    nodes = []
    held = 0.0
    for node, resources in sorted(by_node.items()):
        n_used, n_total = (float(x) for x in resources.get("GPU", (0.0, 0.0)))
        held += n_used
        if n_total >= 1:
            whole = int(n_total)
            nodes.append(NodeGpus(str(node), whole, max(0, min(whole, int(n_total - n_used)))))
    if sum(n.total for n in nodes) != int(total) or abs(held - used) > 1e-6:
        raise ValueError(f"the nodes' GPUs ({held:g} of {sum(n.total for n in nodes)} held) "
                         f"are not the cluster's ({used:g} of {int(total)})")
    # What each node has in all (custom resources too): a request that no node could ever
    # hold (more GPUs than any node, or a gpu_type no node advertises) is infeasible to Ray,
    # never takes a GPU, and is not waiting work. A stopped job whose entrypoint never started
    # stays in the demand as such until Ray's start timeout (ray-project/ray#58353).
    # Names compared case- and punctuation-blind: the dashboard camel-cases some keys
    # (gpu_type:A100-80GB is gpuType:A100-80Gb in usageByNode) and not necessarily others.
    totals = [{_name(r): float(v[1]) for r, v in resources.items()}
              for resources in by_node.values() if isinstance(resources, dict)]

    def feasible(shape: Mapping[str, Any]) -> bool:
        return any(all(t.get(_name(r), 0.0) >= float(v) for r, v in shape.items()
                       if float(v) > 0) for t in totals)

    pending: list[tuple[int, ...]] = []

    def add(bundles: list[int], count: Any) -> None:
        bundles = [g for g in bundles if g > 0]
        if bundles:
            pending.extend([tuple(bundles)] * _count(count))

    for shape, count in report.get("resourceDemand") or ():
        if feasible(_shape(shape)):
            add([_gpus(shape)], count)
    for group, count in report.get("pgDemand") or ():
        shapes = [_shape(shape) for shape, k in group["bundles"] for _ in range(_count(k))]
        if group.get("strategy") == "STRICT_PACK":
            packed: dict[str, float] = {}
            for sh in shapes:
                for r, v in sh.items():
                    packed[r] = packed.get(r, 0.0) + float(v)
            shapes = [packed]
        if all(feasible(sh) for sh in shapes):
            add([_gpus(sh) for sh in shapes], count)
    return GpuCapacity(total=int(total), free=sum(n.free for n in nodes), nodes=tuple(nodes),
                       pending=tuple(pending))


def _name(resource: object) -> str:
    """A resource's name as compared across the report (see :func:`capacity_from_report`)."""
    return re.sub(r"[^a-z0-9]", "", str(resource).lower())


def _shape(shape: Any) -> dict[str, Any]:
    """A demand bundle as a mapping of resource → amount (refused when it is not one)."""
    if not isinstance(shape, dict):
        raise TypeError(f"a demand bundle is {type(shape).__name__}, not a mapping")
    return shape


def _gpus(shape: Any) -> int:
    """Whole GPUs a bundle asks for (a fraction holds a GPU: rounded up)."""
    if not isinstance(shape, dict):
        raise TypeError(f"a demand bundle is {type(shape).__name__}, not a mapping")
    return math.ceil(float(shape.get("GPU", 0.0)))


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"a demand count is {value!r}, not a count")
    return value
