"""What every storage backend's verified copy returns, and the residency check it makes.

Shared by ``placer_s3`` and ``placer_gcs``; proposed for :mod:`placer.backends` so the
executor depends on placer, not on a backend package, for these types.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from placer.errors import BackendError

# Where a write may go: a set of location keys, or a predicate on one.
AllowedLocations = Collection[str] | Callable[[str], bool]


def is_allowed(location: str | None, allowed: AllowedLocations) -> bool:
    """Whether ``location`` is allowed; an unknown location never is.

    >>> is_allowed("aws:eu-central-1", {"aws:eu-central-1"}), is_allowed(None, lambda _: True)
    (True, False)
    """
    if location is None:
        return False
    return allowed(location) if callable(allowed) else location in allowed


def tree_digest(lines: Iterable[str]) -> str:
    """SHA-256 hex of the sorted ``<relative key>\\t<size>\\t<digest>\\n`` lines of a prefix."""
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its URI and size in bytes."""

    uri: str
    size: int


@dataclass(frozen=True)
class CopyResult:
    """What a verified copy moved (or a verified write wrote).

    ``checksum`` is ``<algorithm>:<hex>`` of one object (``sha256:`` on S3, ``md5:`` on GCS),
    or for a prefix ``<algorithm>-tree:<hex>``: :func:`tree_digest` of the lines
    ``<relative key>\\t<size>\\t<hex>``, equal for equal content wherever it lives.
    """

    src: str
    dst: str
    bytes: int
    objects: int
    checksum: str


def split_uri(uri: str, scheme: str) -> tuple[str, str]:
    """``<scheme>://bucket/key`` → ``(bucket, key)``; the key may be empty or end in ``/``.

    >>> split_uri("s3://acme-eu/datasets/imagenet/", "s3")
    ('acme-eu', 'datasets/imagenet/')
    """
    prefix = f"{scheme}://"
    if not uri.startswith(prefix):
        article = "an" if scheme[0] in "aefhilmnorsx" else "a"  # how the letter is spoken
        raise BackendError(f"{uri}: not {article} {prefix} URI")
    bucket, _, key = uri[len(prefix):].partition("/")
    if not bucket:
        raise BackendError(f"{uri}: no bucket in the URI")
    return bucket, key
