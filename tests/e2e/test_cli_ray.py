"""The run commands as a user types them, against the two real Ray clusters and S3 (moto:
the cloud's store, and fra-dc's own store named by its ``storage_endpoint``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from placer.cli import app
from tests.backends.ray_clusters import GPU, ClusterPair
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY
from tests.e2e.conftest import CLOUD_BUCKET, ONPREM_BUCKET, job_endpoints

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("job_script.py")
runner = CliRunner()


def _files(tmp: Path, pair: ClusterPair, endpoint: str,
           onprem_endpoint: str) -> tuple[Path, Path]:
    def cluster(c: Any) -> dict[str, Any]:
        return {"backend": "ray", "address": c.address, "token_env": c.token_env}

    inventory = {"apiVersion": "placer/v1", "kind": "Inventory", "name": "cli-e2e", "sites": {
        "fra-dc": {"location": f"onprem:{pair.onprem.name}", "country": "DE",
                   "labels": {"class": "self-hosted"},
                   "pools": [{"gpu": GPU, "count": 8, "cost_per_gpu_hour": "$1"}],
                   "cluster": cluster(pair.onprem), "storage": f"s3://{ONPREM_BUCKET}/cli",
                   "storage_endpoint": onprem_endpoint},
        "aws-eu": {"location": "aws:eu-central-1", "cluster": cluster(pair.cloud),
                   "offers": [{"gpu": GPU, "gpus_per_node": 8, "on_demand": "$2/h"}],
                   "storage": f"s3://{CLOUD_BUCKET}/cli"},
    }}
    env = {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, **job_endpoints(onprem_endpoint)}
    job = {"command": f"{sys.executable} {SCRIPT}", "runtime_env": {"env_vars": env},
           "gpu_types": {GPU: "1h"}}
    pipeline = {"apiVersion": "placer/v1", "kind": "Pipeline", "name": "cli-e2e", "datasets": {
        "notes": {"uri": f"s3://{ONPREM_BUCKET}/data/notes", "size": "1GB",
                  "location": f"onprem:{pair.onprem.name}",
                  "tags": {"residency": "EU", "classification": "pii"}},
        "web": {"uri": f"s3://{CLOUD_BUCKET}/data/web", "size": "1GB",
                "location": "aws:eu-central-1",
                "tags": {"residency": "none", "classification": "public"}},
    }, "jobs": {
        "prep": {**job, "inputs": ["notes"], "outputs": {"features": "1GB"}},
        "pretrain": {**job, "inputs": ["web"], "outputs": {"checkpoint": "1GB"},
                     "resources": {"gpus": 8}},
        "finetune": {**job, "inputs": ["pretrain.checkpoint", "prep.features"],
                     "outputs": {"model": "1GB"}},
    }}
    (tmp / "inv.yaml").write_text(yaml.safe_dump(inventory))
    (tmp / "pipe.yaml").write_text(yaml.safe_dump(pipeline))
    return tmp / "pipe.yaml", tmp / "inv.yaml"


def test_submit_wait_then_runs_status_and_logs(ray_clusters: ClusterPair, endpoint: str,
                                               onprem_endpoint: str, admin: Any,
                                               tmp_path: Path) -> None:
    pipe, inv = _files(tmp_path, ray_clusters, endpoint, onprem_endpoint)
    db = str(tmp_path / "journal.db")
    # What the operator's shell holds for the S3 store (boto3's standard chain).
    env = {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"}
    res = runner.invoke(app, ["submit", str(pipe), "--inventory", str(inv), "--policies",
                              str(ROOT / "policies"), "--wait", "--journal", db], env=env)
    assert res.exit_code == 0, res.output
    [run_id] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", res.stdout)
    assert f"{run_id}: SUCCEEDED" in res.stdout

    # The checkpoint crossed from the cloud bucket to the on-prem one, verified.
    from placer.journal import Journal

    [move] = Journal(db).transfers(run_id)
    assert move.state == "DONE"
    assert move.src_uri.startswith(f"s3://{CLOUD_BUCKET}/cli/{run_id}/pretrain/")
    assert move.dst_uri.startswith(f"s3://{ONPREM_BUCKET}/cli/{run_id}/finetune/inputs/")

    res = runner.invoke(app, ["runs", "--journal", db])
    assert res.exit_code == 0
    assert re.search(rf"{run_id}\s+cli-e2e\s+SUCCEEDED\s+.*\$\d+\.\d\d\s+aws-eu, fra-dc",
                     res.stdout), res.stdout

    res = runner.invoke(app, ["status", run_id, "--journal", db, "--watch"])
    assert res.exit_code == 0
    assert re.search(r"finetune\s+SUCCEEDED\s+fra-dc", res.stdout)

    res = runner.invoke(app, ["logs", run_id, "finetune", "--journal", db, "--follow"],
                        env=env)
    assert res.exit_code == 0, res.output
    assert "job finetune at fra-dc read 2 object(s)" in res.stdout
    for cluster in (ray_clusters.onprem, ray_clusters.cloud):
        assert cluster.token not in res.stdout + res.stderr

    res = runner.invoke(app, ["logs", run_id, "nope", "--journal", db])
    assert res.exit_code == 2
    assert res.stderr == f"error: no job 'nope' in run {run_id}\n"


def test_submit_without_wait_a_controller_drives_the_run_to_its_end(
        ray_clusters: ClusterPair, endpoint: str, onprem_endpoint: str, admin: Any,
        tmp_path: Path, monkeypatch: Any) -> None:
    """No --wait, no resume: the controller `placer submit` starts drives a 2-job DAG."""
    import time

    from placer.controller import controller_holder

    pipe, inv = _files(tmp_path, ray_clusters, endpoint, onprem_endpoint)
    spec = yaml.safe_load(pipe.read_text())
    del spec["jobs"]["pretrain"]
    spec["jobs"]["finetune"]["inputs"] = ["prep.features"]
    pipe.write_text(yaml.safe_dump(spec))
    db = tmp_path / "journal.db"
    env = {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1",
           "PLACER_CONTROLLER_POLL": "0.5", "PLACER_CONTROLLER_IDLE_EXIT": "1"}
    monkeypatch.delenv("PLACER_NO_CONTROLLER")  # the controller inherits this environment
    res = runner.invoke(app, ["submit", str(pipe), "--inventory", str(inv), "--policies",
                              str(ROOT / "policies"), "--journal", str(db)], env=env)
    assert res.exit_code == 0, res.output
    [run_id] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", res.stdout)
    [pid] = re.findall(r"controller pid (\d+) started", res.stdout)
    try:
        deadline = time.monotonic() + 180
        while True:
            res = runner.invoke(app, ["status", run_id, "--journal", str(db)])
            assert res.exit_code == 0, res.output
            if f"{run_id}: SUCCEEDED" in res.stdout:
                break
            assert f"{run_id}: RUNNING" in res.stdout, res.stdout
            assert time.monotonic() < deadline, res.stdout
            time.sleep(0.5)
        assert re.search(r"finetune\s+SUCCEEDED\s+fra-dc", res.stdout), res.stdout
        while controller_holder(db) is not None:  # idle: it exits on its own
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        if controller_holder(db) is not None:
            import os
            import signal

            os.kill(int(pid), signal.SIGKILL)
    log = db.with_name("journal.db-controller.log").read_text()
    assert f"run {run_id} SUCCEEDED" in log
    for cluster in (ray_clusters.onprem, ray_clusters.cloud):
        assert cluster.token not in log
