"""placer's compute backend for Ray clusters, through the Ray Jobs API.

Registered under the entry-point group ``placer.backends`` as ``ray``; the entry point is the
:class:`RayJobsBackend` class, built once per site: ``RayJobsBackend(site)``. Ray itself is
imported on first use (``pip install 'placer[ray]'``). The entry point also renders the Ray
cluster launcher config a plan paid for on a cloud site (``placer cluster-spec --format
launcher``; :func:`launcher_config`) and runs Python calls as Ray tasks (:class:`TaskRunner`,
for ``placer bench hybrid --ray``).
"""

from placer_ray._backend import (
    GPU_RESOURCE_PREFIX,
    METADATA_FROM_ENV,
    NAME,
    RayJobsBackend,
    gpu_resource,
)
from placer_ray._cluster import LAUNCHER, launcher_config
from placer_ray._errors import JobNotFoundError
from placer_ray._tasks import TaskRunner

__all__ = [
    "GPU_RESOURCE_PREFIX",
    "LAUNCHER",
    "METADATA_FROM_ENV",
    "NAME",
    "JobNotFoundError",
    "RayJobsBackend",
    "TaskRunner",
    "gpu_resource",
    "launcher_config",
]
