"""placer's GCS storage backend (entry point ``gcs`` in the ``placer.backends`` group).

``GCSResolver`` is a :class:`placer.storage.ObjectStore`: it implements
:class:`placer.backends.StorageResolver` and the same verified, residency-guarded copies as
every store, with placer's own result and error types (:mod:`placer.storage`,
:mod:`placer.errors`). google-cloud-storage is imported lazily.
"""

from placer_gcs._gcs import GCSResolver, location_key, parse_uri

__all__ = ["GCSResolver", "location_key", "parse_uri"]
