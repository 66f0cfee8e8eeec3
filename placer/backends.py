"""The seams backends plug into, and how placer finds them.

placer never imports a backend by name: each registers under the entry-point group
``placer.backends`` (``placer_ray``, ``placer_k8s``, ``placer_s3``, ``placer_gcs`` ship with
placer's extras; third parties register the same way). A backend imports its SDK lazily, so
``import placer`` stays free of cloud SDKs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol, runtime_checkable

from placer.errors import BackendUnavailableError

GROUP = "placer.backends"

# The extra that provides each backend that ships with placer.
EXTRAS = {"ray": "ray", "k8s": "k8s", "s3": "s3", "gcs": "gcs"}


@dataclass(frozen=True)
class Handle:
    """What a compute backend returns for a submitted job: enough to find it again."""

    backend: str
    site: str
    id: str


@runtime_checkable
class ComputeBackend(Protocol):
    """Runs jobs on a cluster. ``submit`` is idempotent: the same step twice yields one job."""

    def submit(self, job: Any, site: Any, *, submission_id: str) -> Handle: ...
    def status(self, handle: Handle) -> str: ...
    def logs(self, handle: Handle) -> str: ...
    def cancel(self, handle: Handle) -> None: ...


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
