"""The embedded catalog: regions and jurisdictions, offers and prices, provisioning, listings."""

from __future__ import annotations

import csv
import io
import math
from importlib.resources import files

import pytest

from placer.catalog import (
    GPU_ONLY_NOTE,
    Catalog,
    catalog_rows,
    default_catalog,
    is_gpu_only,
)
from placer.catalog._catalog import parse_gpu_prices
from placer.errors import CatalogError
from placer.models import Location

# Written out here, independently of placer.models.EU_COUNTRIES, so a wrong list there fails a test.
EU27 = {
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
}
EEA = EU27 | {"IS", "LI", "NO"}


def _csv(name: str) -> list[dict[str, str]]:
    text = files("placer.catalog").joinpath("data", name).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


REGION_ROWS = _csv("region_jurisdictions.csv")


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return default_catalog()


def test_default_catalog_is_shared() -> None:
    assert default_catalog() is default_catalog()


def test_catalog_is_immutable(cat: Catalog) -> None:
    with pytest.raises(AttributeError):
        cat._offers = {}
    regions = cat.regions()
    regions.clear()
    assert cat.regions()


@pytest.mark.parametrize("row", REGION_ROWS, ids=lambda r: f"{r['cloud']}:{r['region']}")
def test_every_region_resolves_with_its_jurisdictions(cat: Catalog, row: dict[str, str]) -> None:
    loc = cat.location(f"{row['cloud']}:{row['region']}")
    country = row["country_iso2"]
    assert loc.provider == row["cloud"]
    assert loc.country == country
    assert loc.continent == row["continent"]
    assert country in loc.jurisdictions
    assert ("EU" in loc.jurisdictions) == (country in EU27)
    assert ("EEA" in loc.jurisdictions) == (country in EEA)


@pytest.mark.parametrize(
    ("key", "eu", "eea"),
    [
        ("aws:eu-central-1", True, True),
        ("gcp:europe-west4", True, True),
        ("azure:westeurope", True, True),
        ("aws:eu-west-2", False, False),  # London
        ("gcp:europe-west2", False, False),
        ("azure:uksouth", False, False),
        ("aws:eu-central-2", False, False),  # Zurich
        ("gcp:europe-west6", False, False),
        ("azure:switzerlandnorth", False, False),
        ("azure:norwayeast", False, True),  # EEA, not EU
        ("aws:us-east-1", False, False),
    ],
)
def test_eu_eea_membership(cat: Catalog, key: str, eu: bool, eea: bool) -> None:
    j = cat.location(key).jurisdictions
    assert ("EU" in j, "EEA" in j) == (eu, eea)


def test_uk_and_swiss_regions_carry_the_non_eea_tag(cat: Catalog) -> None:
    for key in ("aws:eu-west-2", "gcp:europe-west6", "azure:ukwest"):
        assert "EUROPE_NON_EEA" in cat.location(key).jurisdictions


def test_region_count_and_order(cat: Catalog) -> None:
    keys = [loc.key for loc in cat.regions()]
    assert len(keys) == len(REGION_ROWS) == len(set(keys))
    assert keys[0] == "aws:us-east-1"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("aws:eu-centrl-1", "unknown region aws:eu-centrl-1; did you mean aws:eu-central-1?"),
        ("gcp:eu-central-1", "unknown region gcp:eu-central-1; did you mean aws:eu-central-1?"),
        ("gcp:europe-west-4", "unknown region gcp:europe-west-4; did you mean gcp:europe-west4?"),
        ("azure:mars", "unknown region azure:mars; `placer catalog` lists the known regions"),
        ("aws:europe-west4", "unknown region aws:europe-west4; did you mean gcp:europe-west4?"),
        ("azure:west-europe", "unknown region azure:west-europe; did you mean azure:westeurope?"),
    ],
)
def test_unknown_region_suggests(cat: Catalog, key: str, message: str) -> None:
    with pytest.raises(CatalogError) as info:
        cat.location(key)
    assert str(info.value) == message
    assert isinstance(info.value, LookupError)


def test_onprem_location_is_not_in_the_catalog(cat: Catalog) -> None:
    with pytest.raises(CatalogError, match="declared in an inventory"):
        cat.location("onprem:fra-dc1")


# -- offers -----------------------------------------------------------------------------------


def test_offers_are_sane(cat: Catalog) -> None:
    offers = cat.all_offers()
    assert len(offers) >= 30
    for loc, o in offers:
        assert loc.provider in ("aws", "gcp", "azure")
        per_gpu = o.on_demand / o.gpus_per_node
        assert 0.1 < per_gpu < 20, (loc.key, o)
        if o.spot is not None:
            assert 0 < o.spot < o.on_demand, (loc.key, o)
        assert o.source
        assert o.instance_type


def test_offers_are_unique_per_region_and_instance_type(cat: Catalog) -> None:
    seen = [(loc.key, o.instance_type) for loc, o in cat.all_offers()]
    assert len(seen) == len(set(seen))


def test_newest_on_demand_with_spot_from_the_row_that_has_it(cat: Catalog) -> None:
    (p4d,) = [o for o in cat.offers("aws:us-east-1") if o.instance_type == "p4d.24xlarge"]
    assert p4d.on_demand == pytest.approx(21.957642)  # 2026-11-09 list price, not the 32.77
    assert p4d.spot == pytest.approx(6.7915)  # the snapshot's spot, below on-demand
    assert p4d.source is not None
    assert p4d.source.startswith("on-demand: data-receipts")


def test_spot_above_on_demand_is_dropped() -> None:
    header = (
        "cloud,region,instance_type,gpu,gpus,price_scope,ondemand_usd_per_hour,"
        "spot_usd_per_hour,as_of,source,confidence\n"
    )
    text = header + (
        "aws,us-east-1,x8,H100,8,instance,90,30,catalog snapshot,old,high\n"
        "aws,us-east-1,x8,H100,8,instance,20,,2026-01-01,new,high\n"
    )
    ((key, offer),) = parse_gpu_prices(text)
    assert key == "aws:us-east-1"
    assert (offer.on_demand, offer.spot) == (20.0, None)


def test_neoclouds_are_skipped(cat: Catalog) -> None:
    assert all("lambda" not in (o.source or "").lower() for _, o in cat.all_offers())
    assert {loc.provider for loc, _ in cat.all_offers()} == {"aws", "gcp", "azure"}


def test_gcp_gpu_only_rows(cat: Catalog) -> None:
    us = {o.instance_type: o for o in cat.offers("gcp:us-central1")}
    # The A100 GPU-only row is dropped: a2-highgpu-1g prices the same GPU with its host.
    assert "(GPU attached) A100 40GB" not in us
    assert us["a2-highgpu-1g"].on_demand == pytest.approx(3.67339)
    t4 = us["(GPU attached) T4"]
    assert is_gpu_only(t4)
    assert t4.source is not None
    assert t4.source.startswith(GPU_ONLY_NOTE)
    assert not is_gpu_only(us["a2-highgpu-1g"])


def test_region_without_offers(cat: Catalog) -> None:
    assert cat.offers("gcp:asia-east1") == ()
    with pytest.raises(CatalogError):
        cat.offers("gcp:nowhere1")


# -- provisioning ------------------------------------------------------------------------------


def test_provisioning_defaults(cat: Catalog) -> None:
    assert cat.provisioning_h("aws", spot=False) == pytest.approx((180 + 45) / 3600)
    assert cat.provisioning_h("gcp", spot=True) == pytest.approx((240 + 45) / 3600)
    assert cat.provisioning_h("onprem", spot=False) == 0.0
    with pytest.raises(CatalogError):
        cat.provisioning_h("oci", spot=False)


# -- listing ----------------------------------------------------------------------------------


def test_catalog_rows_columns_and_per_gpu_prices(cat: Catalog) -> None:
    rows = catalog_rows(cat)
    assert len(rows) == len(cat.all_offers())
    (p4d,) = [
        r for r in rows if r["region"] == "us-east-1" and r["instance_type"] == "p4d.24xlarge"
    ]
    assert p4d["ondemand_usd_per_gpu_hour"] == pytest.approx(21.957642 / 8)
    assert p4d["spot_usd_per_gpu_hour"] == pytest.approx(6.7915 / 8)
    assert p4d["jurisdictions"] == ["US"]
    assert set(p4d) >= {
        "provider", "region", "country", "jurisdictions", "gpu", "instance_type",
        "gpus_per_node", "ondemand_usd_per_hour", "spot_usd_per_hour",
        "ondemand_usd_per_gpu_hour", "spot_usd_per_gpu_hour", "source", "gpu_only",
    }


def test_catalog_rows_filters(cat: Catalog) -> None:
    eu = catalog_rows(cat, jurisdiction="eu")
    assert eu
    assert all("EU" in r["jurisdictions"] for r in eu)
    assert not any(r["region"] == "eu-west-2" for r in eu)  # London is not EU
    a100 = catalog_rows(cat, gpu="a100")
    assert {r["gpu"] for r in a100} == {"A100-40GB", "A100-80GB", "A100-80GB-PCIe"}
    # one GPU-matching rule (placer.pricing.gpu_matches): a name with a variant matches only
    # itself, as in planning; the listing matched A100-80GB-PCIe too before issue 10
    assert {r["gpu"] for r in catalog_rows(cat, gpu="A100-80GB")} == {"A100-80GB"}
    assert {r["gpu"] for r in catalog_rows(cat, gpu="a100-80gb-pcie")} == {"A100-80GB-PCIe"}
    assert {r["provider"] for r in catalog_rows(cat, provider="gcp")} == {"gcp"}
    assert catalog_rows(cat, gpu="A100-40GB", provider="azure", jurisdiction="US")[0][
        "instance_type"
    ] == "Standard_ND96asr_A100_v4"


def test_custom_catalog_rejects_offer_in_unknown_region(cat: Catalog) -> None:
    loc = Location(provider="aws", region="us-east-1", country="US")
    with pytest.raises(CatalogError):
        Catalog([loc], [("aws:eu-west-1", cat.offers("aws:us-east-1")[0])],
                cat.egress, cat.provisioning)
    assert math.isfinite(cat.provisioning_h("azure", spot=False))
