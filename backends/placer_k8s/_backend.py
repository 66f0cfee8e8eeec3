"""The Kubernetes compute backend: one placer job is one ``batch/v1`` Job or KubeRay ``RayJob``.

The ``kubernetes`` client is imported on first use. A site reaches its API server either through
a kubeconfig (``Cluster.context`` picks the context; ``options.kubeconfig`` the file, else
``$KUBECONFIG`` or ``~/.kube/config``) or, when ``Cluster.address`` is set, directly with a
bearer token from ``token_env`` / ``token_file``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from placer.backends import (
    FAILED,
    PENDING,
    RUNNING,
    STOPPED,
    SUCCEEDED,
    ClusterFormat,
    GpuCapacity,
    Handle,
    JobState,
)
from placer.errors import BackendError, BackendUnavailableError
from placer.models import Job, JobPlacement, ResolvedSite, Site
from placer_k8s import _capacity, _kuberay
from placer_k8s._errors import api_status, is_dropped, map_error
from placer_k8s._kuberay import RAY_API_VERSION
from placer_k8s._manifests import (
    NAME_LABEL,
    SUBMISSION_ANNOTATION,
    ManifestOptions,
    Workload,
    batch_job,
    object_name,
    ray_job,
)

NAME: Final = "k8s"
_DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_RAY_GROUP, _RAY_VERSION = RAY_API_VERSION.split("/")
_RAYJOBS = "rayjobs"
_KUEUE_GROUP, _KUEUE_VERSION = "kueue.x-k8s.io", "v1beta2"  # Kueue v0.17's storage version
# Labels Kubernetes puts on a Job's pods (the first since 1.27); KubeRay's submitter is a Job
# named after its RayJob, and the submitter's log is the Ray job's log (it runs `ray job submit`).
_JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
_RAY_STATES: Mapping[str, JobState] = {
    "PENDING": PENDING, "SCHEDULED": PENDING, "RUNNING": RUNNING, "SUCCEEDED": SUCCEEDED,
    "FAILED": FAILED, "STOPPED": STOPPED,
}


def _options(site: Site | ResolvedSite) -> ManifestOptions:
    if site.cluster is None:
        raise BackendError(f"{site.name}: no cluster configured for the k8s backend")
    o = site.cluster.options
    workload = o.get("workload", "job")
    if workload not in ("job", "rayjob"):
        raise BackendError(f"{site.name}: options.workload must be job or rayjob, not "
                           f"{workload!r}")
    wl: Workload = "rayjob" if workload == "rayjob" else "job"
    prefix = "gpu_product."
    return ManifestOptions(
        namespace=site.cluster.namespace or o.get("namespace") or "default",
        workload=wl, image=o.get("image"),
        gpu_label=o.get("gpu_label", ManifestOptions.gpu_label),
        gpu_products={k[len(prefix):]: v for k, v in sorted(o.items()) if k.startswith(prefix)},
        head_cpu=o.get("head_cpu", ManifestOptions.head_cpu),
        head_memory=o.get("head_memory", ManifestOptions.head_memory),
        ray_version=o.get("ray_version"), service_account=o.get("service_account"),
        queue=_queue(site.name, wl, o.get("queue")),
    )


def _queue(site: str, workload: Workload, queue: str | None) -> str | None:
    """``options.queue``, a Kueue LocalQueue: a DNS-1123 name, and for batch Jobs only (a
    RayJob would need KubeRay's own suspend handshake with Kueue, not exercised here)."""
    if queue is None:
        return None
    if workload != "job":
        raise BackendError(f"{site}: options.queue (Kueue) is supported for workload: job only, "
                           f"not {workload}")
    if not _DNS1123.fullmatch(queue):
        raise BackendError(f"{site}: options.queue {queue!r} is not a Kubernetes object name")
    return queue


class KubernetesBackend:
    """Runs placer jobs as Kubernetes objects in one namespace of one site's cluster.

    Implements :class:`placer.backends.ComputeBackend`. Submission is idempotent: the object
    name is derived from the submission id (:func:`~placer_k8s.object_name`) and a 409
    AlreadyExists adopts the existing object. ``cancel`` deletes the object with
    ``propagationPolicy: Background`` (its pods go too); an object that is gone, or going,
    reports ``STOPPED``, because Kubernetes keeps no record of a deleted object's outcome.

    Args:
        site: the site; ``site.cluster`` says how to reach its API server (see the module).
        api_client: a ready ``kubernetes.client.ApiClient`` (tests, or callers with their own
            auth); ``None`` builds one from the site when first needed.
        timeout_s: connect and read timeout of each API call.
    """

    name = NAME
    cluster_formats: tuple[ClusterFormat, ...] = (_kuberay.RAYCLUSTER,)
    """What :meth:`render_cluster` renders (a :class:`placer.backends.ClusterRenderer`)."""

    @staticmethod
    def render_cluster(site: ResolvedSite, placement: JobPlacement, fmt: str, *,
                       image: str | None = None) -> dict[str, Any]:
        """The KubeRay ``RayCluster`` for a plan's cloud site
        (:func:`~placer_k8s.raycluster_manifest`)."""
        return _kuberay.render_cluster(site, placement, fmt, image=image)

    def __init__(self, site: Site | ResolvedSite, *, api_client: Any = None,
                 timeout_s: float = 30.0) -> None:
        self.site = site.name
        self.options = _options(site)
        assert site.cluster is not None  # checked by _options
        self._cluster = site.cluster
        self._api = api_client
        self.timeout_s = timeout_s

    def __repr__(self) -> str:  # never show the client: its configuration holds the token
        return (f"KubernetesBackend(site={self.site!r}, context={self._cluster.context!r}, "
                f"namespace={self.options.namespace!r}, workload={self.options.workload!r})")

    # -- connection ----------------------------------------------------------------------------
    def _token(self) -> str | None:
        c = self._cluster
        if c.token_env:
            token = os.environ.get(c.token_env)
            if not token:
                raise BackendError(f"{self.site}: environment variable {c.token_env} is not set")
            return token.strip()
        if c.token_file:
            try:
                return Path(c.token_file).expanduser().read_text().strip()
            except OSError as exc:
                raise BackendError(f"{self.site}: cannot read token file {c.token_file} "
                                   f"({type(exc).__name__})") from exc
        return None

    def _client(self) -> Any:
        if self._api is not None:
            return self._api
        try:
            import kubernetes.client
            import kubernetes.config
            config: Any = kubernetes.config  # untyped module
        except ImportError as exc:
            raise BackendUnavailableError(
                f"the k8s backend needs the kubernetes client: pip install 'placer[k8s]' "
                f"({exc.name} is missing)") from exc
        cfg = kubernetes.client.Configuration()
        c = self._cluster
        if c.address:
            cfg.host = c.address
            token = self._token()
            if token:
                # "authorization" is the key clients before v35 read, "BearerToken" newer ones.
                cfg.api_key = {"authorization": token, "BearerToken": token}
                cfg.api_key_prefix = {"authorization": "Bearer", "BearerToken": "Bearer"}
            if "ca_file" in c.options:
                cfg.ssl_ca_cert = c.options["ca_file"]
        else:
            try:
                config.load_kube_config(
                    config_file=c.options.get("kubeconfig"), context=c.context,
                    client_configuration=cfg, persist_config=False)
            except Exception as exc:  # ConfigException, or a file that is not there
                raise BackendError(f"{self.site}: cannot load kubeconfig context "
                                   f"{c.context!r} ({type(exc).__name__})") from exc
        # One try per call: the executor retries with backoff and must learn fast that a site
        # is down, rather than after urllib3's default three reconnects.
        cfg.retries = 0
        self._api = kubernetes.client.ApiClient(cfg)
        return self._api

    def _call(self, what: str, fn: Callable[[Any], Any], *,
              allow: tuple[int, ...] = ()) -> tuple[int | None, Any]:
        """``(None, result)``, or ``(status, None)`` for an allowed HTTP error status."""
        api = self._client()
        try:
            try:
                return None, fn(api)
            except Exception as exc:
                if not is_dropped(exc):
                    raise
                # A kept-alive connection the server had closed (found against a real API
                # server going away): the pool has dropped it, so one more try opens a new
                # one and tells a live server from a gone one. Every call here may be
                # repeated: create adopts its own 409, delete takes a 404.
                return None, fn(api)
        except Exception as exc:
            status = api_status(exc)
            if status is not None and status in allow:
                return status, None
            raise map_error(exc, self.site, what, self._credentials()) from exc

    def _credentials(self) -> str:
        c = self._cluster
        if c.address:
            source = (f"token_env {c.token_env}" if c.token_env else
                      f"token_file {c.token_file}" if c.token_file else "no token")
            return f"{c.address} ({source})"
        return f"kubeconfig context {c.context!r}" if c.context else "the current context"

    def _kw(self) -> dict[str, Any]:
        return {"_request_timeout": (self.timeout_s, self.timeout_s)}

    # -- manifests -----------------------------------------------------------------------------
    def manifest(self, job: Job, placement: JobPlacement, *, submission_id: str,
                 env: Mapping[str, str]) -> dict[str, Any]:
        """The object ``submit`` would create, as JSON (for dry runs and validation)."""
        build = ray_job if self.options.workload == "rayjob" else batch_job
        try:
            return build(job, placement, submission_id=submission_id, env=env,
                         opts=self.options)
        except ValueError as exc:
            raise BackendError(f"{self.site}: {exc}") from exc

    def _handle(self, name: str) -> Handle:
        return Handle(backend=self.name, site=self.site, id=name)

    # -- the ComputeBackend protocol -----------------------------------------------------------
    def submit(self, job: Job, placement: JobPlacement, *, submission_id: str,
               env: Mapping[str, str]) -> Handle:
        body = self.manifest(job, placement, submission_id=submission_id, env=env)
        ns, name = self.options.namespace, body["metadata"]["name"]
        what = f"create {self._kind()} {name} in namespace {ns}"
        if self.options.workload == "rayjob":
            status, _ = self._call(what, lambda api: self._custom(
                api).create_namespaced_custom_object(_RAY_GROUP, _RAY_VERSION, ns, _RAYJOBS,
                                                     body, **self._kw()), allow=(409,))
        else:
            status, _ = self._call(what, lambda api: self._batch(api).create_namespaced_job(
                ns, body, **self._kw()), allow=(409,))
        if status == 409:
            # AlreadyExists: an earlier submit of this id got through; adopt it, unless the
            # name belongs to another submission (a slug collision the hash makes unlikely).
            found = self._get(name)
            if found is None or _submission_id(found) not in (submission_id, None):
                raise BackendError(f"{self.site}: object {name} exists but is not submission "
                                   f"{submission_id!r}")
        return self._handle(name)

    def status(self, handle: Handle) -> JobState:
        obj = self._get(self._own(handle))
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return STOPPED
        if self.options.workload == "rayjob":
            return rayjob_state(obj)
        return job_state(obj)

    def logs(self, handle: Handle) -> str:
        name = self._own(handle)
        ns = self.options.namespace
        labels = ([f"{NAME_LABEL}={name}"] if self.options.workload == "job"
                  else [f"{label}={name}" for label in _JOB_NAME_LABELS])
        pods: list[dict[str, Any]] = []
        for selector in labels:
            pods = self._pods(name, selector)
            if pods:
                break
        if not pods:
            return ""
        # The newest pod is the one that ran last (a Job with backoffLimit 0 has one).
        pod = max(pods, key=lambda p: (p["metadata"].get("creationTimestamp") or "",
                                       p["metadata"]["name"]))
        pod_name = pod["metadata"]["name"]
        status, text = self._call(
            f"get pods/log of {pod_name} in namespace {ns}",
            lambda api: self._core(api).read_namespaced_pod_log(
                pod_name, ns, _preload_content=False, **self._kw()),
            allow=(400, 404))  # 400: the container has not started yet
        return "" if status else bytes(text.data).decode(errors="replace")

    def cancel(self, handle: Handle) -> None:
        name = self._own(handle)
        ns = self.options.namespace
        what = f"delete {self._kind()} {name} in namespace {ns}"
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        if self.options.workload == "rayjob":
            self._call(what, lambda api: self._custom(api).delete_namespaced_custom_object(
                _RAY_GROUP, _RAY_VERSION, ns, _RAYJOBS, name, body=body, **self._kw()),
                allow=(404,))
        else:
            self._call(what, lambda api: self._batch(api).delete_namespaced_job(
                name, ns, body=body, **self._kw()), allow=(404,))

    def find(self, submission_id: str) -> Handle | None:
        name = object_name(submission_id)
        obj = self._get(name)
        if obj is None or _submission_id(obj) not in (submission_id, None):
            return None
        return self._handle(name)

    def gpus(self) -> GpuCapacity:
        """The cluster's GPUs now, node by node, and the GPU pods waiting for a node
        (:class:`placer.backends.CapacityReporter`; the rule is :mod:`placer_k8s._capacity`'s).

        Two reads: every node (``GET /api/v1/nodes``) and every pod that has not ended, in all
        namespaces (``GET /api/v1/pods?fieldSelector=status.phase!=Succeeded,
        status.phase!=Failed``): GPUs other teams' pods hold are not free. The site's
        credentials need ``list`` on nodes and pods cluster-wide; without it the API's 403 is a
        :class:`~placer.errors.BackendError` and the strategy refuses, never guesses.

        With ``options.queue`` the site's Jobs wait for Kueue's admission, so its capacity is
        that queue's ClusterQueue quota instead (:meth:`_queue_gpus`).
        """
        if self.options.queue:
            return self._queue_gpus(self.options.queue)
        _, nodes = self._call("list nodes", lambda api: self._core(api).list_node(
            _preload_content=False, **self._kw()))
        _, pods = self._call("list pods", lambda api: self._core(
            api).list_pod_for_all_namespaces(
                field_selector="status.phase!=Succeeded,status.phase!=Failed",
                _preload_content=False, **self._kw()))
        try:
            return _capacity.capacity(_json(nodes), _json(pods))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackendError(f"{self.site}: the API server's nodes and pods give no usable "
                               f"GPU figures ({type(exc).__name__}: {exc})") from None

    def _queue_gpus(self, queue: str) -> GpuCapacity:
        """With ``options.queue``: the Kueue quota that gates this site's Jobs
        (:func:`placer_k8s._capacity.queue_capacity`). Three reads: the LocalQueue (its
        ClusterQueue's name), the ClusterQueue, and the namespace's Workloads."""
        ns = self.options.namespace

        def get(what: str, fn: Callable[[Any], Any]) -> dict[str, Any]:
            _, raw = self._call(what, lambda api: fn(self._custom(api)))
            return _json(raw)

        kw = {"_preload_content": False, **self._kw()}
        local = get(f"get localqueues.kueue.x-k8s.io {queue} in namespace {ns}",
                    lambda c: c.get_namespaced_custom_object(
                        _KUEUE_GROUP, _KUEUE_VERSION, ns, "localqueues", queue, **kw))
        name = (local.get("spec") or {}).get("clusterQueue")
        if not isinstance(name, str) or not name:
            raise BackendError(f"{self.site}: LocalQueue {ns}/{queue} names no ClusterQueue")
        cq = get(f"get clusterqueues.kueue.x-k8s.io {name}",
                 lambda c: c.get_cluster_custom_object(
                     _KUEUE_GROUP, _KUEUE_VERSION, "clusterqueues", name, **kw))
        wls = get(f"list workloads.kueue.x-k8s.io in namespace {ns}",
                  lambda c: c.list_namespaced_custom_object(
                      _KUEUE_GROUP, _KUEUE_VERSION, ns, "workloads", **kw))
        try:
            return _capacity.queue_capacity(cq, wls, queue)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackendError(f"{self.site}: Kueue's ClusterQueue {name} gives no usable GPU "
                               f"figures ({type(exc).__name__}: {exc})") from None

    # -- helpers -------------------------------------------------------------------------------
    def _kind(self) -> str:
        """The resource as RBAC names it, for error messages (``create jobs.batch …``)."""
        return "rayjobs.ray.io" if self.options.workload == "rayjob" else "jobs.batch"

    def _own(self, handle: Handle) -> str:
        if handle.backend != self.name or handle.site != self.site:
            raise BackendError(f"{self.site}: handle {handle} belongs to another backend or site")
        return handle.id

    def _pods(self, name: str, selector: str) -> list[dict[str, Any]]:
        def list_pods(api: Any) -> Any:
            return self._core(api).list_namespaced_pod(
                self.options.namespace, label_selector=selector, _preload_content=False,
                **self._kw())

        _, listed = self._call(f"list pods of {name} in namespace {self.options.namespace}",
                               list_pods)
        items: list[dict[str, Any]] = _json(listed).get("items") or []
        return items

    def _get(self, name: str) -> dict[str, Any] | None:
        ns = self.options.namespace
        what = f"get {self._kind()} {name} in namespace {ns}"
        if self.options.workload == "rayjob":
            status, obj = self._call(what, lambda api: self._custom(
                api).get_namespaced_custom_object(_RAY_GROUP, _RAY_VERSION, ns, _RAYJOBS, name,
                                                  _preload_content=False, **self._kw()),
                allow=(404,))
        else:
            status, obj = self._call(what, lambda api: self._batch(api).read_namespaced_job(
                name, ns, _preload_content=False, **self._kw()), allow=(404,))
        return None if status == 404 else _json(obj)

    @staticmethod
    def _batch(api: Any) -> Any:
        import kubernetes.client

        return kubernetes.client.BatchV1Api(api)

    @staticmethod
    def _core(api: Any) -> Any:
        import kubernetes.client

        return kubernetes.client.CoreV1Api(api)

    @staticmethod
    def _custom(api: Any) -> Any:
        import kubernetes.client

        return kubernetes.client.CustomObjectsApi(api)


def _json(response: Any) -> dict[str, Any]:
    """A raw (``_preload_content=False``) response's JSON: plain dicts, as the API sent them."""
    import json

    if isinstance(response, dict):
        return response
    out: dict[str, Any] = json.loads(bytes(response.data) or b"{}")
    return out


def _submission_id(obj: Mapping[str, Any]) -> str | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(SUBMISSION_ANNOTATION)
    return value if isinstance(value, str) else None


def job_state(obj: Mapping[str, Any]) -> JobState:
    """A ``batch/v1`` Job's state from its conditions and pod counts.

    ``Complete``/``SuccessCriteriaMet`` → SUCCEEDED, ``Failed``/``FailureTarget`` → FAILED (the
    latter two are set first since Kubernetes 1.31); otherwise RUNNING once a pod is active,
    else PENDING (including a suspended Job, which has not started).
    """
    status = obj.get("status") or {}
    true = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    if true & {"Failed", "FailureTarget"}:
        return FAILED
    if true & {"Complete", "SuccessCriteriaMet"}:
        return SUCCEEDED
    if (status.get("active") or 0) > 0 or (status.get("ready") or 0) > 0:
        return RUNNING
    return PENDING


def rayjob_state(obj: Mapping[str, Any]) -> JobState:
    """A KubeRay RayJob's state: the Ray job's own ``jobStatus`` first, then the deployment's.

    ``jobDeploymentStatus: Failed`` with no terminal ``jobStatus`` is a job that never ran to an
    end (submission failed, deadline exceeded): FAILED. An empty or ``SCHEDULED`` job status
    (cluster still coming up) is PENDING.
    """
    status = obj.get("status") or {}
    ray = _RAY_STATES.get(str(status.get("jobStatus") or ""), PENDING)
    if ray in (SUCCEEDED, FAILED, STOPPED):
        return ray
    if status.get("jobDeploymentStatus") == "Failed":
        return FAILED
    return ray
