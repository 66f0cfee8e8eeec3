"""Shared by the end-to-end tests: two real Ray clusters and two real S3 servers (moto).

``endpoint`` plays the cloud's S3, which says where its buckets are (the cloud bucket is in
eu-central-1); ``onprem_endpoint`` plays the on-prem data centre's own S3-compatible store
(MinIO, Ceph), whose buckets are where the site is: the inventory names it as the on-prem
site's ``storage_endpoint`` (docs/storage.md, "Where a bucket is"). Jobs find each bucket's
store through ``PLACER_TEST_S3_ENDPOINTS`` (see ``job_script.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.backends.conftest_ray import ray_clusters  # noqa: F401  (session fixture)
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY, moto_server

ONPREM_BUCKET, CLOUD_BUCKET = "placer-onprem", "placer-cloud"


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def onprem_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def job_endpoints(onprem_endpoint: str) -> dict[str, str]:
    """The job environment entry that sends the on-prem bucket to the on-prem store."""
    return {"PLACER_TEST_S3_ENDPOINTS": json.dumps({ONPREM_BUCKET: onprem_endpoint})}


def _client(url: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


@pytest.fixture(scope="session")
def onprem_admin(onprem_endpoint: str) -> Any:
    client = _client(onprem_endpoint)
    client.create_bucket(Bucket=ONPREM_BUCKET)  # the store names no region
    client.put_object(Bucket=ONPREM_BUCKET, Key="data/notes/part-0", Body=b"patient notes")
    return client


@pytest.fixture(scope="session")
def admin(endpoint: str, onprem_admin: Any) -> Any:
    """The cloud store's client; the on-prem bucket is set up too (``onprem_admin``)."""
    client = _client(endpoint)
    client.create_bucket(Bucket=CLOUD_BUCKET,
                         CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    client.put_object(Bucket=CLOUD_BUCKET, Key="data/web/part-0", Body=b"web corpus")
    return client
