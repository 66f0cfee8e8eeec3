"""placer's compute backend for Ray clusters, through the Ray Jobs API.

Registered under the entry-point group ``placer.backends`` as ``ray``; the entry point is the
:class:`RayJobsBackend` class, built once per site: ``RayJobsBackend(site)``. Ray itself is
imported on first use (``pip install 'placer[ray]'``).
"""

from placer_ray._backend import (
    GPU_RESOURCE_PREFIX,
    METADATA_FROM_ENV,
    NAME,
    RayJobsBackend,
    gpu_resource,
)
from placer_ray._errors import JobNotFoundError

__all__ = [
    "GPU_RESOURCE_PREFIX",
    "METADATA_FROM_ENV",
    "NAME",
    "JobNotFoundError",
    "RayJobsBackend",
    "gpu_resource",
]
