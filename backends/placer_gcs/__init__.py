"""placer's GCS storage backend (entry point ``gcs`` in the ``placer.backends`` group).

``GCSResolver`` implements :class:`placer.backends.StorageResolver` and the same verified,
residency-guarded copies as the S3 backend (whose result and error types it shares until
they move to :mod:`placer.backends`). google-cloud-storage is imported lazily.
"""

from placer_gcs._gcs import GCSResolver, location_key, parse_uri

__all__ = ["GCSResolver", "location_key", "parse_uri"]
