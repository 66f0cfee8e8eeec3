"""Issue 3 end to end: a three-job DAG across two real Ray clusters (token auth on), data
handed from job to job through real S3 servers (moto_server: the cloud's S3 and the on-prem
site's own store), everything in the journal.

``prep`` reads personal data and must stay on-prem; ``pretrain`` reads public data and goes
to the cheaper cloud cluster; ``finetune`` reads both outputs (so it is personal data too) and
runs on-prem, which needs ``pretrain``'s checkpoint copied from the cloud bucket to the
on-prem one (a copy between the two stores): verified, journaled, and only into the
consumer's own location.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

import placer
from placer.backends import PrefixLayout, StorageRouter, compute_backends_for
from placer.catalog import resolve_inventory
from placer.executor import Executor, RetryPolicy
from placer.journal import Journal
from placer.models import Dataset, Inventory, Job, Offer, Pipeline
from tests.backends.ray_clusters import GPU, ClusterPair
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY
from tests.e2e.conftest import CLOUD_BUCKET, ONPREM_BUCKET, job_endpoints

boto3 = pytest.importorskip("boto3")
pytest.importorskip("placer_s3")
from placer_s3 import S3Resolver  # noqa: E402

SCRIPT = Path(__file__).with_name("job_script.py")
ROOT = Path(__file__).resolve().parents[2]


def _world(pair: ClusterPair, endpoint: str, onprem_endpoint: str,
           extra_env: dict[str, dict[str, str]] | None = None,
           *, onprem_country: str = "DE", notes_class: str = "pii",
           ) -> tuple[Pipeline, Inventory, StorageRouter]:
    onprem_site = pair.onprem.site("fra-dc", kind="onprem").model_copy(
        update={"country": onprem_country, "labels": {"class": "self-hosted"}})
    cloud_site = pair.cloud.site("aws-eu", kind="cloud").model_copy(update={"offers": (
        Offer(gpu=GPU, gpus_per_node=8, on_demand=2.0, instance_type="test-8gpu"),)})
    onprem_loc, cloud_loc = onprem_site.location, cloud_site.location
    inventory = Inventory(name="e2e", sites=(
        onprem_site.model_copy(update={"storage": f"s3://{ONPREM_BUCKET}/runs",
                                       "storage_endpoint": onprem_endpoint}),
        cloud_site.model_copy(update={"storage": f"s3://{CLOUD_BUCKET}/runs"}),
    ))
    creds = {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
             "AWS_SECRET_ACCESS_KEY": SECRET_KEY, **job_endpoints(onprem_endpoint)}
    command = f"{sys.executable} {SCRIPT}"

    def job(name: str, **kw: Any) -> Job:
        env = {**creds, **(extra_env or {}).get(name, {})}
        return Job(name=name, command=command, runtime_env={"env_vars": env},
                   gpu_types={GPU: 1.0}, **kw)

    pipeline = Pipeline(name="e2e", datasets=(
        Dataset(name="notes", uri=f"s3://{ONPREM_BUCKET}/data/notes", size=1,
                location=onprem_loc, tags={"residency": "EU", "classification": notes_class}),
        Dataset(name="web", uri=f"s3://{CLOUD_BUCKET}/data/web", size=1, location=cloud_loc,
                tags={"residency": "none", "classification": "public"}),
    ), jobs=(
        job("prep", inputs=("notes",), outputs={"features": 1}),
        job("pretrain", inputs=("web",), outputs={"checkpoint": 1},
            resources={"gpus": 8}),
        job("finetune", inputs=("pretrain.checkpoint", "prep.features"), outputs={"model": 1}),
    ))
    # The cloud's S3 answers for its buckets; the on-prem bucket is on fra-dc's own store,
    # where the site is (what storage_for builds from the inventory and the environment).
    session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                    aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    [fra] = [s for s in resolve_inventory(inventory) if s.name == "fra-dc"]
    storage = StorageRouter(
        {"s3": S3Resolver(endpoint_url=endpoint, session=session)},
        {"s3": {ONPREM_BUCKET: S3Resolver(endpoint_url=onprem_endpoint, session=session,
                                          onprem_location=fra.location)}})
    return pipeline, inventory, storage


def _ray_jobs_of(pair: ClusterPair, run_id: str) -> list[str]:
    """Submission ids of the run's Ray jobs on both clusters (placer's ids name the run)."""
    return sorted(info.submission_id for cluster in (pair.onprem, pair.cloud)
                  for info in cluster.client().list_jobs()
                  if (info.submission_id or "").startswith(f"placer-{run_id}-"))


def test_three_jobs_across_two_ray_clusters_hand_data_through_s3(
        ray_clusters: ClusterPair, endpoint: str, onprem_endpoint: str, admin: Any,
        onprem_admin: Any, tmp_path: Path) -> None:
    pair = ray_clusters
    pipeline, inventory, storage = _world(pair, endpoint, onprem_endpoint)
    policies = placer.load_policies(ROOT / "policies")
    plan = placer.plan(pipeline, inventory, policies)
    assert plan.status == "placed", plan.reasons
    assert [plan.jobs[j].site for j in ("prep", "pretrain", "finetune")] == \
        ["fra-dc", "aws-eu", "fra-dc"]

    sites = resolve_inventory(inventory)
    journal = Journal(tmp_path / "journal.db")
    run = _executor(sites, journal, storage, retry=RetryPolicy(max_attempts=2, base_s=1)).start(
        plan, pipeline=pipeline, inventory=inventory, policies=policies)
    status = run.wait(timeout=240)
    assert status.state == "SUCCEEDED", status

    # Data flowed prep + pretrain -> finetune; the checkpoint crossed once, verified.
    key = f"runs/{run.id}/finetune/model/part-0"
    model = onprem_admin.get_object(Bucket=ONPREM_BUCKET, Key=key)["Body"].read().decode()
    assert model.startswith("finetune(")
    assert "prep(notes=[patient notes])" in model
    assert "pretrain(web=[web corpus])" in model
    [move] = journal.transfers(run.id)
    assert move.state == "DONE"
    assert move.src_uri == f"s3://{CLOUD_BUCKET}/runs/{run.id}/pretrain/checkpoint"
    assert move.dst_uri.startswith(f"s3://{ONPREM_BUCKET}/runs/{run.id}/finetune/inputs/")
    assert move.checksum and move.checksum.startswith("sha256")
    # Nothing derived from personal data was ever written to the cloud bucket.
    cloud_keys = [o["Key"] for o in admin.list_objects_v2(
        Bucket=CLOUD_BUCKET, Prefix=f"runs/{run.id}/").get("Contents", [])]
    assert cloud_keys == [f"runs/{run.id}/pretrain/checkpoint/part-0"]

    # Logs are readable through placer; the journal has the final state; one Ray job a step.
    assert "job finetune at fra-dc read 2 object(s)" in run.logs("finetune")
    assert {j.state for j in run.status().jobs.values()} == {"SUCCEEDED"}
    assert journal.run(run.id).state == "SUCCEEDED"
    assert _ray_jobs_of(pair, run.id) == sorted(
        f"placer-{run.id}-{j}-1" for j in ("prep", "pretrain", "finetune"))

    # No cluster token anywhere in the journal's bytes.
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("journal.db*"))
    assert pair.onprem.token.encode() not in raw and pair.cloud.token.encode() not in raw


def test_a_crash_between_submit_and_record_leaves_one_ray_job_per_step(
        ray_clusters: ClusterPair, endpoint: str, onprem_endpoint: str, admin: Any,
        onprem_admin: Any, tmp_path: Path) -> None:
    pair = ray_clusters
    pipeline, inventory, storage = _world(pair, endpoint, onprem_endpoint)
    policies = placer.load_policies(ROOT / "policies")
    plan = placer.plan(pipeline, inventory, policies)
    sites = resolve_inventory(inventory)
    layout = PrefixLayout({s.location.key: s.storage for s in sites if s.storage})

    class Crash(Exception):
        pass

    def crash_after_submit(point: str, run_id: str, job: str) -> None:
        if point == "after_submit" and job == "pretrain":
            raise Crash  # the process dies after Ray accepted the job, before the journal knew

    journal_path = tmp_path / "journal.db"
    first = Executor(Journal(journal_path), compute_backends_for(sites), layout=layout,
                     storage=storage, mover=storage, poll_interval_s=0.5,
                     hook=crash_after_submit)
    with pytest.raises(Crash):
        first.start(plan, pipeline=pipeline, inventory=inventory, policies=policies)
    [run_id] = [r.id for r in Journal(journal_path).runs()]

    second = Executor(Journal(journal_path), compute_backends_for(sites), layout=layout,
                      storage=storage, mover=storage, poll_interval_s=0.5)
    status = second.resume(run_id).wait(timeout=240)
    assert status.state == "SUCCEEDED", status
    assert _ray_jobs_of(pair, run_id) == sorted(
        f"placer-{run_id}-{j}-1" for j in ("prep", "pretrain", "finetune"))


def _step_until_running(run: Any, job: str, timeout_s: float = 60.0) -> None:
    """Drive ``run`` until ``job`` runs on its cluster (so a test can take the cluster down)."""
    deadline = time.monotonic() + timeout_s
    while (st := run.step()).jobs[job].state != "RUNNING":
        assert time.monotonic() < deadline, st
        time.sleep(0.5)


def _executor(sites: Any, journal: Journal, storage: StorageRouter, **kw: Any) -> Executor:
    return Executor(journal, compute_backends_for(sites), layout=PrefixLayout(
        {s.location.key: s.storage for s in sites if s.storage}), storage=storage,
        mover=storage, poll_interval_s=0.5, **kw)


def test_a_failing_job_is_retried_on_the_real_cluster(
        ray_clusters: ClusterPair, endpoint: str, onprem_endpoint: str, admin: Any,
        onprem_admin: Any, tmp_path: Path) -> None:
    pair = ray_clusters
    pipeline, inventory, storage = _world(pair, endpoint, onprem_endpoint,
                                          {"prep": {"FAIL_ATTEMPTS": "1"}})
    policies = placer.load_policies(ROOT / "policies")
    plan = placer.plan(pipeline, inventory, policies)
    journal = Journal(tmp_path / "journal.db")
    run = _executor(resolve_inventory(inventory), journal, storage,
                    retry=RetryPolicy(max_attempts=3, base_s=0.5)).start(
        plan, pipeline=pipeline, inventory=inventory, policies=policies)
    status = run.wait(timeout=240)
    assert status.state == "SUCCEEDED", status
    attempts = [(s.attempt, s.state) for s in journal.steps(run.id) if s.job == "prep"]
    assert attempts == [(1, "FAILED"), (2, "SUCCEEDED")]
    assert f"placer-{run.id}-prep-1" in _ray_jobs_of(pair, run.id)
    assert f"placer-{run.id}-prep-2" in _ray_jobs_of(pair, run.id)


def test_a_cluster_that_goes_down_mid_run_is_replanned_around(
        ray_clusters: ClusterPair, endpoint: str, onprem_endpoint: str, admin: Any,
        onprem_admin: Any, tmp_path: Path) -> None:
    """The cloud cluster dies while ``pretrain`` runs there: ``pretrain`` (public data) is
    re-planned onto the on-prem cluster; nothing is ever placed outside the eligible sets."""
    from tests.backends.ray_clusters import shared_clusters

    pair = ray_clusters
    pipeline, inventory, storage = _world(pair, endpoint, onprem_endpoint,
                                          {"pretrain": {"SLEEP_S": "30"}})
    policies = placer.load_policies(ROOT / "policies")
    plan = placer.plan(pipeline, inventory, policies)
    assert plan.jobs["pretrain"].site == "aws-eu"
    journal = Journal(tmp_path / "journal.db")
    run = _executor(resolve_inventory(inventory), journal, storage,
                    retry=RetryPolicy(max_attempts=3, base_s=0.5)).start(
        plan, pipeline=pipeline, inventory=inventory, policies=policies)
    try:
        _step_until_running(run, "pretrain")
        pair.cloud.stop()
        status = run.wait(timeout=300)
    finally:
        shared_clusters()  # bring the cloud cluster back for whoever runs next
    assert status.state == "SUCCEEDED", status
    final = {s.job: s for s in journal.steps(run.id) if s.state == "SUCCEEDED"}
    assert {j: final[j].site for j in final} == {
        "prep": "fra-dc", "pretrain": "fra-dc", "finetune": "fra-dc"}
    assert [e.data.get("site") for e in journal.events(run.id, "site_down")] == ["aws-eu"]
    assert len(journal.plans(run.id)) == 2  # the original and the re-plan

    # The cloud cluster is back (rebuilt after the outage, at a new address): the lost attempt
    # is cancelled there (Ray no longer knows it) and what it wrote removed from the cloud
    # bucket, under its own prefix only; the surviving attempt's outputs on-prem stay.
    lost = f"runs/{run.id}/pretrain/"
    admin.put_object(Bucket=CLOUD_BUCKET, Key=lost + "checkpoint/part-0", Body=b"half")
    back = inventory.model_copy(update={"sites": tuple(
        s.model_copy(update={"cluster": pair.cloud.site("aws-eu", kind="cloud").cluster})
        if s.name == "aws-eu" else s for s in inventory.sites)})
    st = _executor(resolve_inventory(back), journal, storage).resume(run.id).wait(timeout=0)
    [gone] = st.lost_attempts
    assert (gone.job, gone.site, gone.state, gone.objects) == (
        "pretrain", "aws-eu", "outputs_removed", 1)
    assert admin.list_objects_v2(Bucket=CLOUD_BUCKET, Prefix=lost)["KeyCount"] == 0
    assert onprem_admin.list_objects_v2(Bucket=ONPREM_BUCKET, Prefix=lost)["KeyCount"] == 1


def test_a_job_whose_data_may_not_leave_the_failed_site_is_stuck_not_moved(
        ray_clusters: ClusterPair, endpoint: str, onprem_endpoint: str, admin: Any,
        onprem_admin: Any, tmp_path: Path) -> None:
    """Here the on-prem data centre is in the US, so EU data may be processed only on the
    cloud cluster (aws:eu-central-1). When that cluster dies, ``prep`` has nowhere left to go:
    it is reported STUCK with the rule that keeps it, and never submitted on-prem."""
    from tests.backends.ray_clusters import shared_clusters

    pair = ray_clusters
    pipeline, inventory, storage = _world(pair, endpoint, onprem_endpoint,
                                          {"prep": {"SLEEP_S": "30"}},
                                          onprem_country="US", notes_class="internal")
    policies = placer.load_policies(ROOT / "policies")
    plan = placer.plan(pipeline, inventory, policies)
    assert plan.status == "placed", plan.reasons
    assert plan.jobs["prep"].site == "aws-eu"
    journal = Journal(tmp_path / "journal.db")
    run = _executor(resolve_inventory(inventory), journal, storage,
                    retry=RetryPolicy(max_attempts=3, base_s=0.5)).start(
        plan, pipeline=pipeline, inventory=inventory, policies=policies)
    onprem_client = pair.onprem.client()
    try:
        _step_until_running(run, "prep")
        pair.cloud.stop()
        status = run.wait(timeout=300)
    finally:
        shared_clusters()
    assert status.state == "STUCK", status
    assert status.jobs["prep"].state == "STUCK"
    assert "eu-data-stays-in-eea" in (status.jobs["prep"].reason or "")
    on_prem = [j.submission_id for j in onprem_client.list_jobs()
               if (j.submission_id or "").startswith(f"placer-{run.id}-")]
    assert not [sid for sid in on_prem if "-prep-" in sid or "-finetune-" in sid]


def test_killing_placer_between_submit_and_record_then_resuming_leaves_one_job_per_step(
        ray_clusters: ClusterPair, endpoint: str, onprem_endpoint: str, admin: Any,
        onprem_admin: Any, tmp_path: Path) -> None:
    """A real process kill (``os._exit``) right after Ray accepted ``pretrain`` and before the
    journal recorded it; ``resume`` in a new process adopts it instead of submitting again."""
    import json
    import os
    import subprocess

    pair = ray_clusters
    pipeline, inventory, storage = _world(pair, endpoint, onprem_endpoint)
    policies_dir = ROOT / "policies"
    plan = placer.plan(pipeline, inventory, placer.load_policies(policies_dir))
    journal_path = tmp_path / "journal.db"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "pipeline": pipeline.model_dump(mode="json"),
        "inventory": inventory.model_dump(mode="json", by_alias=True),
        "plan": plan.model_dump(mode="json"), "policies": str(policies_dir),
        "journal": str(journal_path), "die_after": "pretrain",
    }))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": endpoint}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("crash_executor.py")),
                           str(spec)], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 137, proc.stderr
    [rec] = Journal(journal_path).runs()
    pretrain = [s for s in Journal(journal_path).steps(rec.id) if s.job == "pretrain"]
    assert [(s.attempt, s.state) for s in pretrain] == [(1, "INTENT")]

    sites = resolve_inventory(inventory)
    status = _executor(sites, Journal(journal_path), storage).resume(rec.id).wait(timeout=240)
    assert status.state == "SUCCEEDED", status
    assert _ray_jobs_of(pair, rec.id) == sorted(
        f"placer-{rec.id}-{j}-1" for j in ("prep", "pretrain", "finetune"))
