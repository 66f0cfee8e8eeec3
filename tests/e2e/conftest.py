"""Shared by the end-to-end tests: two real Ray clusters and a real S3 server (moto)."""

from __future__ import annotations

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
def admin(endpoint: str) -> Any:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    client.create_bucket(Bucket=ONPREM_BUCKET)
    client.create_bucket(Bucket=CLOUD_BUCKET,
                         CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    client.put_object(Bucket=ONPREM_BUCKET, Key="data/notes/part-0", Body=b"patient notes")
    client.put_object(Bucket=CLOUD_BUCKET, Key="data/web/part-0", Body=b"web corpus")
    return client


