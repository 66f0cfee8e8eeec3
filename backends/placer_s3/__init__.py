"""placer's S3 storage backend (entry point ``s3`` in the ``placer.backends`` group).

``S3Resolver`` implements :class:`placer.backends.StorageResolver` and the verified,
residency-guarded copies the executor uses to move data between sites. boto3 is imported
lazily, on the first call that needs S3.
"""

from placer_s3._copy import AllowedLocations, CopyResult, ObjectInfo, is_allowed, tree_digest
from placer_s3._errors import ChecksumMismatchError, DatasetNotFoundError
from placer_s3._s3 import S3Resolver, location_key, parse_uri

__all__ = [
    "AllowedLocations",
    "ChecksumMismatchError",
    "CopyResult",
    "DatasetNotFoundError",
    "ObjectInfo",
    "S3Resolver",
    "is_allowed",
    "location_key",
    "parse_uri",
    "tree_digest",
]
