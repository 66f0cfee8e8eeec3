"""The program the end-to-end jobs run on the Ray clusters: read inputs from S3 or GCS (the
store ``STORAGE_EMULATOR_HOST`` names), write outputs.

It is what a real placer job does with the environment the executor gives it: PLACER_INPUTS
and PLACER_OUTPUTS (JSON name → URI). Each output gets one object, ``part-0``, whose text
names the job and what it read, so the test can follow data from job to job.
"""

import json
import os
import sys
import time
from typing import Any

import boto3

if os.environ.get("FAIL_ATTEMPTS", "") and os.environ["PLACER_ATTEMPT"] in os.environ[
        "FAIL_ATTEMPTS"].split(","):
    print(f"failing attempt {os.environ['PLACER_ATTEMPT']} on purpose")
    sys.exit(3)
time.sleep(float(os.environ.get("SLEEP_S", "0")))

# Each bucket on its own store: the on-prem bucket on the data centre's, the rest on the
# cloud's (AWS_ENDPOINT_URL_S3), as the inventory's storage_endpoint routes them.
ROUTES = json.loads(os.environ.get("PLACER_TEST_S3_ENDPOINTS", "{}"))


def s3(bucket: str) -> Any:
    url = ROUTES.get(bucket, os.environ["AWS_ENDPOINT_URL_S3"])
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1")


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.partition("://")[2].partition("/")
    return bucket, key


def gcs(bucket: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    anon = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return storage.Client(project="test", credentials=anon).bucket(bucket)


def get_all(uri: str) -> list[str]:
    bucket, key = split(uri)
    if uri.startswith("gs://"):
        return [b.download_as_bytes().decode() for b in gcs(bucket).list_blobs(prefix=key)]
    listed = s3(bucket).list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    return [s3(bucket).get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode()
            for o in listed]


def put(uri: str, body: bytes) -> None:
    bucket, key = split(uri)
    if uri.startswith("gs://"):
        gcs(bucket).blob(f"{key}/part-0").upload_from_string(body)
    else:
        s3(bucket).put_object(Bucket=bucket, Key=f"{key}/part-0", Body=body)


read = [f"{ref}=[{body}]" for ref, uri in sorted(json.loads(os.environ["PLACER_INPUTS"]).items())
        for body in get_all(uri)]
job = os.environ["PLACER_JOB"]
for uri in json.loads(os.environ["PLACER_OUTPUTS"]).values():
    put(uri, f"{job}({' '.join(read)})".encode())
print(f"job {job} at {os.environ['PLACER_SITE']} read {len(read)} object(s)")
