"""Inventories: loading with exact error structures, resolution against the catalog, the default."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from placer.catalog import (
    Catalog,
    default_catalog,
    default_inventory,
    load_inventory,
    resolve_inventory,
)
from placer.errors import ConfigError, ErrorDetail, InventoryError
from placer.models import Inventory, Offer, Site


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def details(path: str) -> list[ErrorDetail]:
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert isinstance(info.value, ConfigError)
    return info.value.details


# -- loading: errors as exact structures --------------------------------------------------------


def test_unknown_region_with_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, """
        sites:
          frankfurt:
            location: aws:eu-centrl-1
    """)
    assert details(path) == [
        ErrorDetail(
            msg="unknown region aws:eu-centrl-1; did you mean aws:eu-central-1?",
            file=path,
            line=3,
            field="sites.frankfurt.location",
            loc=("sites", "frankfurt", "location"),
        )
    ]


def test_negative_price(tmp_path: Path) -> None:
    path = write(tmp_path, """
        sites:
          fra-dc:
            location: onprem:fra-dc1
            country: DE
            pools:
              - gpu: A100-80GB
                count: 4
                cost_per_gpu_hour: -2
    """)
    assert details(path) == [
        ErrorDetail(
            msg="price must not be negative, got -2",
            file=path,
            line=8,
            field="sites.fra-dc.pools[0].cost_per_gpu_hour",
            loc=("sites", "fra-dc", "pools", 0, "cost_per_gpu_hour"),
        )
    ]


def test_negative_offer_price_in_a_string(tmp_path: Path) -> None:
    path = write(tmp_path, """
        sites:
          aws-use1:
            location: aws:us-east-1
            offers:
              - {gpu: H100, gpus_per_node: 8, on_demand: "$-5/h"}
    """)
    assert details(path) == [
        ErrorDetail(
            msg="price must not be negative, got '$-5/h'",
            file=path,
            line=5,
            field="sites.aws-use1.offers[0].on_demand",
            loc=("sites", "aws-use1", "offers", 0, "on_demand"),
        )
    ]


def test_onprem_site_without_country(tmp_path: Path) -> None:
    path = write(tmp_path, """
        sites:
          fra-dc:
            location: onprem:fra-dc1
            pools: [{gpu: V100, count: 8, cost_per_gpu_hour: 0.4}]
    """)
    assert details(path) == [
        ErrorDetail(
            msg="an on-prem site needs its country (ISO-2), e.g. country: DE",
            file=path,
            line=2,
            field="sites.fra-dc",
            loc=("sites", "fra-dc"),
        )
    ]


def test_unknown_field(tmp_path: Path) -> None:
    path = write(tmp_path, """
        sites:
          aws-use1:
            location: aws:us-east-1
            provisionning: 5m
    """)
    assert details(path) == [
        ErrorDetail(
            msg="unknown field; did you mean 'provisioning'? (see `placer schema`)",
            file=path,
            line=4,
            field="sites.aws-use1.provisionning",
            loc=("sites", "aws-use1", "provisionning"),
        )
    ]


def test_every_problem_at_once_in_line_order(tmp_path: Path) -> None:
    path = write(tmp_path, """
        sites:
          frankfurt:
            location: aws:eu-centrl-1
          aws-use1:
            location: aws:us-east-1
            gpus: 8
    """)
    found = details(path)
    assert [(d.line, d.field) for d in found] == [
        (3, "sites.frankfurt.location"),
        (6, "sites.aws-use1.gpus"),
    ]


def test_catalog_contradictions_and_missing_offers(tmp_path: Path) -> None:
    path = write(tmp_path, """
        sites:
          london:
            location: aws:eu-west-2
            country: DE
            jurisdictions: [EU, SOVEREIGN]
          taiwan:
            location: gcp:asia-east1
    """)
    assert details(path) == [
        ErrorDetail(
            msg="aws:eu-west-2 is in GB according to the catalog, not DE",
            file=path, line=4, field="sites.london.country",
            loc=("sites", "london", "country"),
        ),
        ErrorDetail(
            msg="jurisdiction EU does not follow from country GB; EU/EEA membership and country "
            "codes come from the country, only other labels may be added",
            file=path, line=5, field="sites.london.jurisdictions",
            loc=("sites", "london", "jurisdictions"),
        ),
        ErrorDetail(
            msg="cloud site 'taiwan' has no GPU offers: the catalog lists none for gcp:asia-east1 "
            "and the site declares none; add `offers:` to the site",
            file=path, line=6, field="sites.taiwan", loc=("sites", "taiwan"),
        ),
    ]


def test_sites_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, """
        sites:
          - name: a
            location: aws:us-east-1
    """)
    assert details(path) == [
        ErrorDetail(
            msg="sites must be a mapping of site name → site, e.g. `sites: {fra-dc: …}`",
            file=path, line=1, field="sites", loc=("sites",),
        )
    ]


def test_yaml_syntax_and_missing_file_are_inventory_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "sites: [\n")
    (d,) = details(path)
    assert (d.file, d.msg.startswith("invalid YAML")) == (path, True)
    (d,) = details(str(tmp_path / "missing.yaml"))
    assert d.msg == "file not found"


# -- loading and resolving: what goes right -------------------------------------------------------


def test_load_and_resolve(tmp_path: Path) -> None:
    path = write(tmp_path, """
        name: mine
        sites:
          fra-dc:
            location: onprem:fra-dc1
            country: DE
            jurisdictions: [SOVEREIGN]
            pools: [{gpu: A100-80GB, count: 16, cost_per_gpu_hour: "$1.20/h"}]
          aws-fra:
            location: aws:eu-central-1
            country: DE
            jurisdictions: [BSI-C5]
            provisioning: 10m
          aws-use1:
            location: aws:us-east-1
            offers:
              - {gpu: H100, gpus_per_node: 8, on_demand: 40, spot: 12, instance_type: p5.48xlarge}
        network:
          - {from: "onprem:*", to: "aws:*", usd_per_gb: 0.02, bandwidth: 5Gbps}
    """)
    inv = load_inventory(path)
    assert [s.name for s in inv.sites] == ["fra-dc", "aws-fra", "aws-use1"]
    fra, aws_fra, use1 = resolve_inventory(inv)

    assert fra.kind == "onprem"
    assert fra.location.key == "onprem:fra-dc1"
    assert fra.location.jurisdictions == {"DE", "EU", "EEA", "SOVEREIGN"}
    assert fra.pools[0].cost_per_gpu_hour == 1.2
    assert (fra.offers, fra.provisioning_h, fra.spot_provisioning_h) == ((), 0.0, 0.0)

    assert aws_fra.location.jurisdictions == {"DE", "EU", "EEA", "BSI-C5"}
    assert aws_fra.location.continent == "EU"
    assert aws_fra.offers == default_catalog().offers("aws:eu-central-1")
    assert aws_fra.provisioning_h == aws_fra.spot_provisioning_h == pytest.approx(10 / 60)

    assert use1.offers == (
        Offer(gpu="H100", gpus_per_node=8, on_demand=40, spot=12, instance_type="p5.48xlarge",
              source="inventory"),
    )
    assert use1.provisioning_h == pytest.approx(225 / 3600)
    assert use1.spot_provisioning_h == pytest.approx(285 / 3600)
    assert use1.location.jurisdictions == {"US"}


def test_resolve_without_source_names_fields() -> None:
    inv = Inventory(sites=(Site(name="x", kind="cloud", location="aws:eu-centrl-1"),))
    with pytest.raises(InventoryError) as info:
        resolve_inventory(inv)
    assert info.value.details == [
        ErrorDetail(
            msg="unknown region aws:eu-centrl-1; did you mean aws:eu-central-1?",
            field="sites.x.location", loc=("sites", "x", "location"),
        )
    ]


def test_onprem_cannot_claim_a_foreign_jurisdiction() -> None:
    site = Site.model_validate({
        "name": "zrh", "location": "onprem:zrh1", "country": "CH", "jurisdictions": ["EU"],
        "pools": [{"gpu": "T4", "count": 1, "cost_per_gpu_hour": 0.1}],
    })
    with pytest.raises(InventoryError, match="jurisdiction EU does not follow from country CH"):
        resolve_inventory(Inventory(sites=(site,)))


def test_resolve_with_a_custom_catalog() -> None:
    cat = default_catalog()
    small = Catalog([cat.location("aws:us-east-1")], [], cat.egress, cat.provisioning)
    inv = Inventory(sites=(Site(name="x", kind="cloud", location="aws:us-east-1"),))
    with pytest.raises(InventoryError, match="has no GPU offers"):
        resolve_inventory(inv, small)


# -- storage: where a bucket is --------------------------------------------------------------------

_POOL = 'pools: [{gpu: A100-80GB, count: 8, cost_per_gpu_hour: 1}]'


def test_an_onprem_site_keeps_its_storage_on_its_own_store(tmp_path: Path) -> None:
    path = write(tmp_path, f"""
        sites:
          fra-dc:
            location: onprem:fra-dc1
            country: DE
            {_POOL}
            storage: s3://fra-store/placer
            storage_endpoint: http://minio.fra-dc1:9000
          aws-fra:
            location: aws:eu-central-1
            storage: s3://acme-eu/placer
    """)
    fra, aws = resolve_inventory(load_inventory(path))
    assert (fra.storage, fra.storage_endpoint) == (
        "s3://fra-store/placer", "http://minio.fra-dc1:9000")
    assert (aws.storage, aws.storage_endpoint) == ("s3://acme-eu/placer", None)


@pytest.mark.parametrize(("site", "line", "field", "msg"), [
    # an on-prem bucket on the cloud store: the inventory's word would beat the store's
    (f"""location: onprem:fra-dc1
            country: DE
            {_POOL}
            storage: s3://fra-store/placer""", 2, "sites.x",
     "storage 's3://fra-store/placer' has no storage_endpoint, so it would be a bucket on a "
     "cloud store; a cloud store says where its buckets are, and that is never this on-prem "
     "site."),
    ("""location: aws:eu-central-1
            storage: s3://acme-eu/placer
            storage_endpoint: http://minio:9000""", 2, "sites.x",
     "storage_endpoint is for on-prem sites: a cloud region's buckets are on the provider's "
     "store, which says where they are; remove it"),
    (f"""location: onprem:fra-dc1
            country: DE
            {_POOL}
            storage: gs://fra-store/placer
            storage_endpoint: http://minio:9000""", 2, "sites.x",
     "storage 'gs://fra-store/placer' must be an s3:// URI: an on-prem store at "
     "storage_endpoint is S3-compatible"),
    (f"""location: onprem:fra-dc1
            country: DE
            {_POOL}
            storage: s3://fra-store/placer
            storage_endpoint: http://admin:hunter2@minio:9000""", 7, "sites.x.storage_endpoint",
     "storage_endpoint 'http://admin:hunter2@minio:9000' must be an http:// or https:// URL "
     "such as http://minio.fra-dc1:9000, without user:password@"),
])
def test_storage_that_breaks_the_bucket_rule_is_refused_at_load(
        tmp_path: Path, site: str, line: int, field: str, msg: str) -> None:
    path = write(tmp_path, f"""
        sites:
          x:
            {site}
    """)
    [detail] = details(path)
    assert (detail.line, detail.field) == (line, field)
    assert detail.msg.startswith(msg)


def test_one_bucket_on_two_stores_or_one_store_in_two_places_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"""
        sites:
          fra-dc:
            location: onprem:fra-dc1
            country: DE
            {_POOL}
            storage: s3://shared/fra
            storage_endpoint: http://minio.fra:9000
          muc-dc:
            location: onprem:muc-dc1
            country: DE
            {_POOL}
            storage: s3://muc-store/muc
            storage_endpoint: HTTP://MINIO.FRA:9000/
          aws-fra:
            location: aws:eu-central-1
            storage: s3://shared/aws
    """)
    assert [(d.line, d.field, d.msg) for d in details(path)] == [
        (13, "sites.muc-dc.storage_endpoint",
         "the store http://minio.fra:9000 is also site 'fra-dc''s, in onprem:fra-dc1, not "
         "onprem:muc-dc1: one store is in one place; give each location its own store"),
        (16, "sites.aws-fra.storage",
         "bucket s3://shared is on the cloud store here and on the on-prem store "
         "http://minio.fra:9000 for site 'fra-dc': one bucket name must mean one bucket; "
         "rename one of them"),
    ]


def test_sites_copied_past_validation_are_still_checked() -> None:
    site = Site.model_validate({
        "name": "fra", "location": "onprem:fra-dc1", "country": "DE",
        "pools": [{"gpu": "T4", "count": 1, "cost_per_gpu_hour": 0.1}],
    })
    with pytest.raises(ValueError, match="has no storage_endpoint"):  # Inventory re-validates
        Inventory(sites=(site.model_copy(update={"storage": "s3://fra-store/p"}),))
    # model_copy validates nothing: resolution checks again.
    inv = Inventory(sites=(site,)).model_copy(update={"sites": (
        site.model_copy(update={"storage": "s3://fra-store/p"}),)})
    with pytest.raises(InventoryError, match="has no storage_endpoint") as info:
        resolve_inventory(inv)
    assert info.value.details[0].field == "sites.fra.storage"


# -- the embedded default inventory ---------------------------------------------------------------


def test_default_inventory_resolves() -> None:
    inv = default_inventory()
    assert inv is default_inventory()
    sites = {s.name: s for s in resolve_inventory(inv, default_catalog())}
    assert set(sites) == {
        "fra-dc", "aws-us-east-1", "aws-eu-central-1", "gcp-europe-west4", "gcp-us-central1",
        "azure-eastus",
    }
    fra = sites["fra-dc"]
    assert fra.kind == "onprem"
    assert fra.location.country == "DE"
    assert "EU" in fra.location.jurisdictions
    assert {(p.gpu, p.count) for p in fra.pools} == {("A100-80GB", 16), ("V100", 8)}
    for s in sites.values():
        if s.kind == "cloud":
            assert s.offers
            assert s.offers == default_catalog().offers(s.location.key)
            assert s.provisioning_h > 0
    assert "EU" in sites["gcp-europe-west4"].location.jurisdictions
    assert "EU" not in sites["aws-us-east-1"].location.jurisdictions
