"""placer's S3 storage backend (entry point ``s3`` in the ``placer.backends`` group).

``S3Resolver`` is a :class:`placer.storage.ObjectStore`: it implements
:class:`placer.backends.StorageResolver` and the verified, residency-guarded copies the
executor uses to move data between sites. boto3 is imported lazily, on the first call that
needs S3. The copy types and errors are placer's own, re-exported here for older imports.
"""

from placer.errors import ChecksumMismatchError, DatasetNotFoundError, InvalidTagError
from placer.storage import (
    AllowedLocations,
    CopyResult,
    ObjectInfo,
    is_allowed,
    merge_tags,
    tree_digest,
)
from placer_s3._s3 import S3Resolver, location_key, parse_uri

__all__ = [
    "AllowedLocations",
    "ChecksumMismatchError",
    "CopyResult",
    "DatasetNotFoundError",
    "InvalidTagError",
    "ObjectInfo",
    "S3Resolver",
    "is_allowed",
    "location_key",
    "merge_tags",
    "parse_uri",
    "tree_digest",
]
