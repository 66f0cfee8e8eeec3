"""placer's compute backend for Kubernetes: a ``batch/v1`` Job, or a KubeRay ``RayJob``.

Registered under the entry-point group ``placer.backends`` as ``k8s``; the entry point is the
:class:`KubernetesBackend` class, built once per site: ``KubernetesBackend(site)``. The
``kubernetes`` client is imported on first use (``pip install 'placer[k8s]'``). The entry point
also renders the KubeRay ``RayCluster`` a plan paid for on a cloud site (``placer cluster-spec
--format raycluster``; :func:`raycluster_manifest`).
"""

from placer_k8s._backend import NAME, KubernetesBackend, job_state, rayjob_state
from placer_k8s._kuberay import GPU_RESOURCE, RAYCLUSTER, ray_cluster_spec, raycluster_manifest
from placer_k8s._manifests import (
    DEFAULT_GPU_LABEL,
    ManifestOptions,
    batch_job,
    object_name,
    ray_job,
)

__all__ = [
    "DEFAULT_GPU_LABEL",
    "GPU_RESOURCE",
    "NAME",
    "RAYCLUSTER",
    "KubernetesBackend",
    "ManifestOptions",
    "batch_job",
    "job_state",
    "object_name",
    "ray_cluster_spec",
    "ray_job",
    "raycluster_manifest",
    "rayjob_state",
]
