"""Kubernetes manifests for one placer job: a ``batch/v1`` Job or a KubeRay ``RayJob``.

Pod templates are built with the official client's models (``kubernetes.client.V1*``, imported
on first use) and serialised with its own serialiser, so field names and types are the ones the
API server expects. KubeRay's ``RayJob`` has no model in the client: its envelope is a plain
dict, following the KubeRay ``ray.io/v1`` API reference, around client-built pod templates; its
Ray cluster is :func:`placer_k8s._kuberay.ray_cluster_spec`'s, the shape a RayCluster has too.
Everything here is pure: same inputs, same manifest.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import yaml

from placer.models import Job, JobPlacement
from placer_k8s._kuberay import GPU_RESOURCE, MANAGED_BY, RAY_API_VERSION, ray_cluster_spec

Workload = Literal["job", "rayjob"]

# NVIDIA GPU feature discovery labels nodes with the product name (e.g. NVIDIA-A100-SXM4-80GB).
DEFAULT_GPU_LABEL = "nvidia.com/gpu.product"
NAME_LABEL = "placer.dev/name"
SUBMISSION_ANNOTATION = "placer.dev/submission-id"
# Kueue's queue label: a Job carrying it is admitted by Kueue against its ClusterQueue's quota
# (https://kueue.sigs.k8s.io/docs/tasks/run/jobs/).
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
SITE_ANNOTATION = "placer.dev/site"
JOB_ANNOTATION = "placer.dev/job"
# KubeRay derives RayCluster and Service names from a RayJob's name; it rejects names longer
# than 47 characters, and Services need a DNS-1035 label (a letter first).
_SLUG_MAX = 36
_INVALID = re.compile(r"[^a-z0-9-]+")


def object_name(submission_id: str) -> str:
    """The Kubernetes object name for a submission id: stable, valid, and unique per id.

    A readable slug of the id plus 10 hex digits of its SHA-256, so two ids that slug alike
    (``Run_1`` and ``run-1``) never share an object; at most 47 characters, a letter first.

    >>> object_name("run-7f3a/train")
    'run-7f3a-train-249d65e776'
    """
    digest = hashlib.sha256(submission_id.encode()).hexdigest()[:10]
    slug = _INVALID.sub("-", submission_id.lower()).strip("-")[:_SLUG_MAX].strip("-")
    if not slug or not slug[0].isalpha():
        slug = ("p-" + slug)[:_SLUG_MAX].strip("-")
    return f"{slug}-{digest}"


@dataclass(frozen=True)
class ManifestOptions:
    """What a site adds to every manifest (from ``Cluster.namespace`` and ``Cluster.options``).

    Attributes:
        namespace: where the objects live.
        workload: ``job`` (plain Kubernetes) or ``rayjob`` (needs the KubeRay operator).
        image: container image when the job names none; pin it by digest for reproducibility.
        gpu_label: node label whose value selects the GPU type.
        gpu_products: placer GPU name → value of ``gpu_label`` (default: the placer name).
        head_cpu, head_memory: the RayJob head pod's resources (it runs no GPU work).
        ray_version: ``rayClusterSpec.rayVersion``; must match the image's Ray.
        service_account: the pods' service account, if the namespace needs one.
        queue: a Kueue LocalQueue in ``namespace``: Jobs are labelled for it and created
            suspended, so they start only when Kueue admits them (batch Jobs only).
    """

    namespace: str = "default"
    workload: Workload = "job"
    image: str | None = None
    gpu_label: str = DEFAULT_GPU_LABEL
    gpu_products: Mapping[str, str] = field(default_factory=dict)
    head_cpu: str = "2"
    head_memory: str = "8G"
    ray_version: str | None = None
    service_account: str | None = None
    queue: str | None = None


@cache
def _client() -> Any:
    import kubernetes.client

    return kubernetes.client


@cache
def _serializer() -> Any:
    return _client().ApiClient()


def to_dict(model: Any) -> Any:
    """A client model as the JSON the API server receives (camelCase, no ``None`` fields)."""
    return _serializer().sanitize_for_serialization(model)


def _quantity(gb: float) -> str:
    return f"{gb:g}G"


def _uses_gpus(placement: JobPlacement) -> bool:
    return placement.gpus > 0 and placement.gpu.upper() != "CPU"


def _gpu_scheduling(placement: JobPlacement, opts: ManifestOptions) -> dict[str, Any]:
    """nodeSelector and toleration that put a pod on the planned GPU type."""
    if not _uses_gpus(placement):
        return {}
    k = _client()
    product = opts.gpu_products.get(placement.gpu, placement.gpu)
    return {
        "node_selector": {opts.gpu_label: product},
        # GPU node pools are commonly tainted nvidia.com/gpu:NoSchedule so CPU pods stay off.
        "tolerations": [k.V1Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")],
    }


def _resources(job: Job, gpus: int, cpu: str | None = None,
               memory: str | None = None) -> Any:
    k = _client()
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    cpu = cpu or (f"{job.resources.cpus:g}" if job.resources.cpus else None)
    memory = memory or (_quantity(job.resources.memory) if job.resources.memory else None)
    if cpu:
        requests["cpu"] = cpu
    if memory:
        requests["memory"] = limits["memory"] = memory
    if gpus > 0:
        # Extended resources are set as limits; Kubernetes copies them to requests.
        limits[GPU_RESOURCE] = str(gpus)
    return k.V1ResourceRequirements(requests=requests or None, limits=limits or None)


def _metadata(name: str, job: Job, placement: JobPlacement, submission_id: str,
              opts: ManifestOptions) -> Any:
    return _client().V1ObjectMeta(
        name=name, namespace=opts.namespace,
        labels={MANAGED_BY: "placer", NAME_LABEL: name},
        annotations={SUBMISSION_ANNOTATION: submission_id, SITE_ANNOTATION: placement.site,
                     JOB_ANNOTATION: job.name},
    )


def _image(job: Job, opts: ManifestOptions) -> str:
    image = job.image or opts.image
    if not image:
        raise ValueError(f"job {job.name!r} names no image and the site sets no options.image")
    return image


def batch_job(job: Job, placement: JobPlacement, *, submission_id: str,
              env: Mapping[str, str], opts: ManifestOptions) -> dict[str, Any]:
    """A ``batch/v1`` Job running ``job.command`` once, on the planned GPU type.

    ``backoffLimit`` is 0: placer's executor owns retries (with a new submission id), so a
    retried pod never hides a failure from the journal. ``job.runtime_env`` is not applied: a
    plain pod has no Ray runtime environment, so pin dependencies in the image. With
    ``opts.queue`` the Job is labelled for that Kueue LocalQueue and created suspended.
    """
    k = _client()
    name = object_name(submission_id)
    gpus = placement.gpus if _uses_gpus(placement) else 0
    container = k.V1Container(
        name="job", image=_image(job, opts), command=["/bin/sh", "-c", job.command],
        env=[k.V1EnvVar(name=key, value=env[key]) for key in sorted(env)] or None,
        resources=_resources(job, gpus),
    )
    pod = k.V1PodSpec(restart_policy="Never", containers=[container],
                      service_account_name=opts.service_account,
                      **_gpu_scheduling(placement, opts))
    metadata = _metadata(name, job, placement, submission_id, opts)
    if opts.queue:
        metadata.labels[QUEUE_LABEL] = opts.queue
    manifest = k.V1Job(
        api_version="batch/v1", kind="Job", metadata=metadata,
        spec=k.V1JobSpec(
            backoff_limit=0,
            # Kueue unsuspends it on admission; created running, it would start before Kueue
            # saw it wherever Kueue's webhook (which suspends it too) is not installed.
            suspend=True if opts.queue else None,
            template=k.V1PodTemplateSpec(
                metadata=k.V1ObjectMeta(labels={MANAGED_BY: "placer", NAME_LABEL: name}),
                spec=pod,
            ),
        ),
    )
    out: dict[str, Any] = to_dict(manifest)
    return out


def _ray_pod(container_name: str, image: str, resources: Any, placement: JobPlacement | None,
             opts: ManifestOptions) -> dict[str, Any]:
    k = _client()
    container = k.V1Container(name=container_name, image=image, resources=resources)
    extra = _gpu_scheduling(placement, opts) if placement is not None else {}
    pod = k.V1PodSpec(containers=[container], service_account_name=opts.service_account,
                      **extra)
    out: dict[str, Any] = to_dict(k.V1PodTemplateSpec(
        metadata=k.V1ObjectMeta(labels={MANAGED_BY: "placer"}), spec=pod))
    return out


def ray_job(job: Job, placement: JobPlacement, *, submission_id: str,
            env: Mapping[str, str], opts: ManifestOptions) -> dict[str, Any]:
    """A KubeRay ``RayJob``: a Ray cluster of one CPU head and ``nodes`` GPU workers.

    The Ray job's id is the submission id, so the Ray dashboard and placer name the job alike.
    placer's ``env`` reaches the driver through the runtime environment's ``env_vars`` (the
    entrypoint runs under ``ray job submit``, not as the pod's process). The cluster is shut
    down when the job finishes; ``backoffLimit: 0`` because the executor owns retries.
    """
    image = _image(job, opts)
    name = object_name(submission_id)
    runtime_env: dict[str, Any] = dict(job.runtime_env or {})
    if env:
        runtime_env["env_vars"] = {**dict(runtime_env.get("env_vars") or {}), **env}
    head = _ray_pod("ray-head", image,
                    _resources(job, 0, cpu=opts.head_cpu, memory=opts.head_memory), None, opts)
    worker = None
    workers = 0
    if _uses_gpus(placement):
        workers = max(placement.nodes, 1)
        per_worker = math.ceil(placement.gpus / workers)
        worker = _ray_pod("ray-worker", image, _resources(job, per_worker), placement, opts)
    cluster = ray_cluster_spec(head, worker, replicas=workers, ray_version=opts.ray_version)
    spec: dict[str, Any] = {
        "entrypoint": job.command,
        "jobId": submission_id,
        "shutdownAfterJobFinishes": True,
        "backoffLimit": 0,
        "submissionMode": "K8sJobMode",
        "rayClusterSpec": cluster,
    }
    if runtime_env:
        spec["runtimeEnvYAML"] = yaml.safe_dump(runtime_env, sort_keys=True)
    metadata: dict[str, Any] = to_dict(_metadata(name, job, placement, submission_id, opts))
    return {"apiVersion": RAY_API_VERSION, "kind": "RayJob", "metadata": metadata, "spec": spec}
