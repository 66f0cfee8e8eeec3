"""``@placer.job`` end to end: plain Python functions run as Ray jobs on a real local Ray
cluster (token auth on), their module shipped in the job's runtime_env, each return value
written through the site's own S3 store (moto_server) and read back by ``run.result``; one
function job reads another's value."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

import placer
from placer.executor import RetryPolicy
from tests.backends.ray_clusters import GPU, ClusterPair
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY
from tests.e2e.conftest import ONPREM_BUCKET

pytest.importorskip("boto3")
pytest.importorskip("placer_s3")

MODULE = '''\
"""Functions a user writes in their own module; placer ships this file to the cluster."""
import os

import placer

OPTS = dict(gpus=1, gpu_types={{"{gpu}": "1m"}}, python={python!r},
            runtime_env={{"env_vars": {env!r}}})


@placer.job(**OPTS)
def make_numbers() -> list[int]:
    return [1, 2, 3, 4]


@placer.job(**OPTS, output="summary")
def summarise(numbers: list[int], notes_uri: str) -> dict:
    return {{"total": sum(numbers), "n": len(numbers), "notes": notes_uri,
             "site": os.environ["PLACER_SITE"]}}
'''


def test_function_jobs_run_on_ray_and_their_values_are_readable(
        ray_clusters: ClusterPair, endpoint: str, onprem_endpoint: str, onprem_admin: Any,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = ray_clusters.onprem
    creds = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
             "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in {**creds, "AWS_ENDPOINT_URL_S3": endpoint}.items():
        monkeypatch.setenv(k, v)  # what the operator's shell holds for the stores
    pkg = tmp_path / "src"
    pkg.mkdir()
    (pkg / "h7_api_numbers.py").write_text(
        MODULE.format(gpu=GPU, python=sys.executable, env=creds), encoding="utf-8")
    monkeypatch.syspath_prepend(str(pkg))
    fns = importlib.import_module("h7_api_numbers")  # the user's module

    inventory = placer.Inventory(name="api-e2e", sites=(
        cluster.site("fra-dc", kind="onprem").model_copy(update={
            "storage": f"s3://{ONPREM_BUCKET}/api", "storage_endpoint": onprem_endpoint}),))
    where = f"onprem:{cluster.name}"
    with placer.pipeline("numbers") as p:
        notes = p.dataset("notes", uri=f"s3://{ONPREM_BUCKET}/data/notes", size=1,
                          location=where, tags={"residency": "EU", "classification": "pii"})
        nums = fns.make_numbers()
        fns.summarise(nums, notes)
    built = p.build()
    assert [j.name for j in built.jobs] == ["make-numbers", "summarise"]
    assert built.job("summarise").inputs == ("make-numbers.result", "notes")
    assert built.job("summarise").runtime_env["working_dir"] == str(pkg)  # type: ignore[index]

    run = placer.submit(p, inventory=inventory, journal=tmp_path / "journal.db",
                        poll_interval_s=0.5)
    assert run.plan.jobs["summarise"].site == "fra-dc"
    st = run.wait(timeout=120)
    assert st.state == "SUCCEEDED", st

    assert run.result("make-numbers") == [1, 2, 3, 4]
    assert run.result("summarise") == {"total": 10, "n": 4, "site": "fra-dc",
                                       "notes": f"s3://{ONPREM_BUCKET}/data/notes"}
    # Written through the site's own store, under the run's prefix, as JSON.
    key = f"api/{run.id}/summarise/summary/value.json"
    body = onprem_admin.get_object(Bucket=ONPREM_BUCKET, Key=key)["Body"].read()
    assert json.loads(body)["total"] == 10
    assert "returned a dict" in run.logs("summarise")
    # Outside a pipeline, the function is the function.
    assert fns.make_numbers() == [1, 2, 3, 4]


def test_a_function_job_that_raises_fails_the_run_with_its_name(
        ray_clusters: ClusterPair, onprem_endpoint: str, onprem_admin: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = ray_clusters.onprem
    for k, v in {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    pkg = tmp_path / "src"
    pkg.mkdir()
    (pkg / "h7_api_broken.py").write_text(
        "import placer\n\n\n"
        f"@placer.job(gpu_types={{{GPU!r}: '1m'}}, python={sys.executable!r})\n"
        "def broken() -> int:\n    raise ValueError('no data today')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(pkg))
    h7_api_broken = importlib.import_module("h7_api_broken")

    inventory = placer.Inventory(name="api-e2e", sites=(
        cluster.site("fra-dc", kind="onprem").model_copy(update={
            "storage": f"s3://{ONPREM_BUCKET}/api", "storage_endpoint": onprem_endpoint}),))
    p = placer.pipeline("broken")
    p.add(h7_api_broken.broken, name="oops")
    run = placer.submit(p, inventory=inventory, journal=tmp_path / "journal.db",
                        poll_interval_s=0.5, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(placer.RunFailedError, match=r"oops: FAILED"):
        run.wait(timeout=120)
    assert "ValueError: no data today" in run.logs("oops")
