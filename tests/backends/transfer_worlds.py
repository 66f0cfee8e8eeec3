"""Stores for placer.transfer's tests: two ``moto_server`` endpoints (an "on-prem" S3-compatible
store and an "AWS" one) and a ``fake-gcs-server``, each with a placer store, an admin client
that reads and writes behind placer's back, and a count of the parts placer sent.

moto is started with ``S3_UPLOAD_PART_MIN_SIZE`` small (moto's setting; real S3's minimum is
5 MiB) and the S3 stores' ``min_part_size`` lowered to match, so multipart copies stay small.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

from placer.storage import ObjectStore, PartReport, StoredObject

PART = 2048  # bytes per part in these tests
MIN_PART = 1024  # moto's minimum part size in these tests
ANYWHERE: Callable[[str], bool] = lambda _where: True  # noqa: E731
_names = itertools.count()


class Side:
    """One store: ``put``/``get``/``drop`` behind placer's back, ``bucket()`` a fresh one."""

    kind = ""
    store: ObjectStore

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()  # parts placer sent, by destination URI
        self.reads = 0
        store = self.store
        put_part, read_range = store.put_part, store.read_range

        def counted_put(uri: str, upload: str, number: int, data: bytes, digest: str
                        ) -> PartReport:
            self.sent[uri] += 1
            return put_part(uri, upload, number, data, digest)

        def counted_read(obj: StoredObject, start: int, length: int) -> bytes:
            self.reads += 1
            return read_range(obj, start, length)

        store.put_part = counted_put  # type: ignore[method-assign]
        store.read_range = counted_read  # type: ignore[method-assign]

    def bucket(self) -> str:
        raise NotImplementedError

    def put(self, uri: str, data: bytes) -> None:
        raise NotImplementedError

    def get(self, uri: str) -> bytes | None:
        raise NotImplementedError

    def uploads(self, bucket_uri: str) -> list[str]:
        """The multipart uploads in progress in a bucket."""
        raise NotImplementedError

    def tamper_part(self, uri: str, upload: str, number: int, data: bytes) -> None:
        """Replace part ``number`` of an upload placer is making, as another client could."""
        raise NotImplementedError


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.partition("://")[2].partition("/")
    return bucket, key


class S3Side(Side):
    kind = "s3"

    def __init__(self, endpoint: str, session: Any) -> None:
        from placer_s3 import S3Resolver

        self.store = S3Resolver(endpoint_url=endpoint, session=session)
        self.store.min_part_size = MIN_PART
        self.admin = session.client("s3", endpoint_url=endpoint)
        super().__init__()

    def bucket(self) -> str:
        name = f"placer-transfer-{next(_names)}"
        self.admin.create_bucket(Bucket=name)
        return f"s3://{name}/"

    def put(self, uri: str, data: bytes) -> None:
        bucket, key = _split(uri)
        self.admin.put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256")

    def get(self, uri: str) -> bytes | None:
        bucket, key = _split(uri)
        try:
            return self.admin.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]
        except self.admin.exceptions.NoSuchKey:
            return None

    def uploads(self, uri: str) -> list[str]:
        bucket, _ = _split(uri)
        return [u["UploadId"] for u in
                self.admin.list_multipart_uploads(Bucket=bucket).get("Uploads", ())]

    def tamper_part(self, uri: str, upload: str, number: int, data: bytes) -> None:
        bucket, key = _split(uri)
        self.admin.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                               Body=data)


class GCSSide(Side):
    kind = "gcs"

    def __init__(self, url: str) -> None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        from placer_gcs import GCSResolver

        self.store = GCSResolver(endpoint_url=url, credentials=AnonymousCredentials(),
                                 project="test")
        self.admin = storage.Client(project="test", credentials=AnonymousCredentials(),
                                    client_options={"api_endpoint": url})
        super().__init__()

    def bucket(self) -> str:
        name = f"placer-transfer-{next(_names)}"
        self.admin.create_bucket(name)
        return f"gs://{name}/"

    def put(self, uri: str, data: bytes) -> None:
        bucket, key = _split(uri)
        self.admin.bucket(bucket).blob(key).upload_from_string(data)

    def get(self, uri: str) -> bytes | None:
        bucket, key = _split(uri)
        blob = self.admin.bucket(bucket).get_blob(key)
        return None if blob is None else blob.download_as_bytes()

    def uploads(self, uri: str) -> list[str]:
        bucket, _ = _split(uri)
        return sorted({b.name.split("/")[1] for b in self.admin.list_blobs(
            bucket, prefix=".placer-uploads/")})

    def tamper_part(self, uri: str, upload: str, number: int, data: bytes) -> None:
        bucket, _ = _split(uri)
        self.admin.bucket(bucket).blob(
            f".placer-uploads/{upload}/{number:05d}").upload_from_string(data)
