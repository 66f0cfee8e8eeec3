"""The simulated cloud: spot traces (polarity, time arithmetic), quotes, provisioning, links."""

from __future__ import annotations

import math

import numpy as np
import pytest

from placer.catalog import default_inventory, resolve_inventory
from placer.errors import CatalogError, ConfigError
from placer.models import Inventory, Link, ResolvedSite
from placer.pricing import DEFAULT_HOST_USD_PER_GPU_H, gpu_matches
from placer.sim.cloud import (
    CloudModel,
    Provisioning,
    SpotTrace,
    catalog_cloud,
    load_spot_traces,
    parse_spot_trace,
    uniform_cloud,
)

SET = "availability/1-node/aws-02-15-2023"


@pytest.fixture(scope="module")
def sites() -> list[ResolvedSite]:
    return resolve_inventory(default_inventory())


@pytest.fixture(scope="module")
def v100(sites: list[ResolvedSite]) -> CloudModel:
    return catalog_cloud(sites, gpu="V100", inventory=default_inventory())


def _offer_price(sites: list[ResolvedSite], site: str, instance: str, spot: bool) -> float:
    s = next(s for s in sites if s.name == site)
    o = next(o for o in s.offers if o.instance_type == instance)
    price = o.spot if spot else o.on_demand
    assert price is not None
    return price


# -- spot traces -----------------------------------------------------------------------------


def test_polarity_one_means_available() -> None:
    # The decision of SOURCES.md ("Spot traces"): a value is the number of instances available.
    # us-east-1a of the 45-day V100 set holds 3,360 ones in 20,158 ticks and starts with zeros.
    tr = load_spot_traces()[f"{SET}/us-east-1a_v100_1"]
    assert (len(tr), tr.gap_s) == (20158, 195.0)
    assert tr.fraction_up == pytest.approx(3360 / 20158)
    assert not tr.up_at(0.0)
    assert tr.counts is None


def test_region_trace_is_up_when_any_zone_is() -> None:
    traces = load_spot_traces()
    zones = [traces[f"{SET}/us-east-1{z}_v100_1"].up for z in "acdf"]
    region = traces[f"{SET}/us-east-1_v100_1"]
    assert np.array_equal(region.up, np.logical_or.reduce(zones))
    assert region.fraction_up == pytest.approx(0.713, abs=1e-3)


def test_count_traces_need_enough_nodes() -> None:
    tr = load_spot_traces()["availability/16-node/aws-08-27-2023/us-west-2a_v100_1"]
    assert tr.counts is not None and int(tr.counts.max()) == 16
    assert np.array_equal(tr.up, tr.counts >= 1)
    assert np.array_equal(tr.for_nodes(16).up, tr.counts == 16)
    assert tr.for_nodes(16).fraction_up < tr.fraction_up


def test_hand_trace_next_down_next_up_and_wrap() -> None:
    # One-hour ticks: up up down down up, then the trace repeats every 5 h.
    tr = SpotTrace("hand", 3600.0, np.array([1, 1, 0, 0, 1], dtype=bool))
    assert [tr.up_at(t) for t in (0.0, 1.99, 2.0, 3.5, 4.0)] == [True, True, False, False, True]
    assert tr.next_down(0.5) == pytest.approx(2.0)
    assert tr.next_down(2.5) == 2.5  # already down
    assert tr.next_up(2.5) == pytest.approx(4.0)
    assert tr.next_up(0.25) == 0.25
    assert tr.next_down(4.5) == pytest.approx(7.0)  # tick 4, then ticks 0 and 1 of the next cycle
    assert tr.up_at(12.5) is False  # 12.5 h = 2.5 h into the third cycle
    assert tr.next_up(-0.5) == -0.5  # before 0 wraps backwards onto tick 4
    shifted = tr.with_offset(4.5)  # sim time 0 is half-way through tick 4
    assert shifted.next_down(0.0) == pytest.approx(2.5)
    assert tr.offset_h == 0.0  # the original is unchanged


def test_constant_traces_never_change() -> None:
    up = SpotTrace("up", 60.0, np.ones(3, dtype=bool))
    down = SpotTrace("down", 60.0, np.zeros(3, dtype=bool))
    assert up.next_down(1.0) == math.inf and up.next_up(1.0) == 1.0
    assert down.next_up(1.0) == math.inf and down.next_down(1.0) == 1.0


def test_next_down_lands_on_a_down_tick_of_a_real_trace() -> None:
    # 195-second ticks do not divide an hour: the answer must still be down, and stable.
    tr = load_spot_traces()[f"{SET}/us-east-1f_v100_1"].with_offset(3.3)
    for t in np.linspace(0.0, 2000.0, 401):
        d = tr.next_down(float(t))
        assert d >= t and not tr.up_at(d) and tr.next_down(d) == d
        u = tr.next_up(d)
        assert u > d and tr.up_at(u)


def test_bad_trace_names_file_and_field() -> None:
    with pytest.raises(ConfigError) as err:
        parse_spot_trace('{"metadata": {"gap_seconds": 60}, "data": [0, 1, 2]}', "x/1-node/a")
    assert [(d.file, d.field) for d in err.value.details] == [("x/1-node/a", "data[2]")]
    with pytest.raises(ConfigError) as err:
        parse_spot_trace('{"metadata": {}, "data": [0]}', "b")
    assert err.value.details[0].field == "metadata.gap_seconds"


# -- quotes ----------------------------------------------------------------------------------


def test_gpu_matching() -> None:
    assert gpu_matches("V100", "V100") and gpu_matches("V100", "V100-32GB")
    assert all(gpu_matches("A100", g) for g in ("A100-40GB", "A100-80GB", "A100-80GB-PCIe"))
    assert gpu_matches("A100-80GB", "A100-80GB")
    assert not gpu_matches("A100-80GB", "A100-80GB-PCIe")
    assert not gpu_matches("V100", "V1000")


def test_node_rounding_and_cheapest_offer(sites: list[ResolvedSite], v100: CloudModel) -> None:
    p3_8x = _offer_price(sites, "aws-us-east-1", "p3.8xlarge", spot=True)
    q = v100.quote("aws-us-east-1", 3, spot=True)  # 3 GPUs on 4-GPU nodes: 1 node
    assert q is not None
    assert (q.instance, q.nodes, q.gpus_per_node, q.gpu_h_per_h) == ("p3.8xlarge", 1, 4, 4)
    assert q.usd_per_h == pytest.approx(p3_8x)
    # 8 GPUs on spot: one p3dn (V100-32GB counts as V100) is cheaper than two p3.8xlarge.
    p3dn = _offer_price(sites, "aws-us-east-1", "p3dn.24xlarge", spot=True)
    assert p3dn < 2 * p3_8x
    q8 = v100.quote("aws-us-east-1", 8, spot=True)
    assert q8 is not None and (q8.instance, q8.gpu, q8.nodes) == ("p3dn.24xlarge", "V100-32GB", 1)
    a100 = catalog_cloud(sites, gpu="A100")
    q9 = a100.quote("aws-us-east-1", 9, spot=False)  # 9 GPUs on 8-GPU nodes: 2 nodes
    assert q9 is not None and (q9.nodes, q9.gpu_h_per_h) == (2, 16)
    assert q9.usd_per_h == pytest.approx(
        2 * _offer_price(sites, "aws-us-east-1", q9.instance, spot=False)
    )


def test_gcp_attached_gpu_pays_for_its_host(sites: list[ResolvedSite], v100: CloudModel) -> None:
    gpu_part = _offer_price(sites, "gcp-us-central1", "(GPU attached) V100", spot=False)
    q = v100.quote("gcp-us-central1", 2, spot=False)
    assert q is not None and q.nodes == 2
    assert q.usd_per_h == pytest.approx(2 * (gpu_part + DEFAULT_HOST_USD_PER_GPU_H))
    free_host = catalog_cloud(sites, gpu="V100", host_usd_per_gpu_h=0.0)
    q0 = free_host.quote("gcp-us-central1", 2, spot=False)
    assert q0 is not None and q0.usd_per_h == pytest.approx(2 * gpu_part)


def test_quotes_sorted_and_none_without_offer(sites: list[ResolvedSite], v100: CloudModel) -> None:
    qs = v100.quotes(4, spot=False)
    assert [(q.usd_per_h, q.site) for q in qs] == sorted((q.usd_per_h, q.site) for q in qs)
    assert {q.site for q in qs} == {
        "aws-us-east-1",
        "gcp-europe-west4",
        "gcp-us-central1",
        "azure-eastus",
    }
    assert v100.quote("aws-eu-central-1", 1, spot=False) is None  # no V100 there
    assert v100.quote("azure-eastus", 1, spot=True) is None  # no spot price
    exact = catalog_cloud(sites, gpu="A100-80GB")
    assert exact.quote("azure-eastus", 1, spot=False) is None  # only A100-80GB-PCIe there
    assert "fra-dc" not in v100.sites  # on-prem sites are not cloud sites


def test_uniform_cloud_is_starburst_model() -> None:
    cloud = uniform_cloud(2.5)
    q = cloud.quote("cloud", 6, spot=False)
    assert q is not None and (q.usd_per_h, q.gpu_h_per_h, q.nodes) == (15.0, 6, 1)
    assert q.usd_per_h * 3.0 == 6 * 3.0 * 2.5  # 6 GPUs for 3 h
    assert cloud.quote("cloud", 6, spot=True) is None
    assert cloud.quotes(6, spot=True) == ()
    rng = np.random.default_rng(0)
    assert cloud.provision_h("cloud", False, rng) == 0.0
    assert cloud.link("onprem:fra-dc1", cloud.location("cloud")) == (0.0, 0.0)
    assert cloud.quota_gpus("cloud") is None and cloud.spot_trace("cloud") is None


# -- provisioning, quotas, traces per site ---------------------------------------------------


def test_provisioning_reproducible_and_calibrated(v100: CloudModel) -> None:
    draws = [
        [v100.provision_h("aws-us-east-1", False, rng) for _ in range(4000)]
        for rng in (np.random.default_rng(7), np.random.default_rng(7))
    ]
    assert draws[0] == draws[1]
    median_s = float(np.median(draws[0])) * 3600
    assert median_s == pytest.approx(180 + 45, rel=0.05)
    p90_s = float(np.quantile(draws[0], 0.9)) * 3600
    assert p90_s == pytest.approx(600 + 90, rel=0.1)
    spot = v100.provisioning("aws-us-east-1", True)
    assert spot.p50_h * 3600 == pytest.approx(240 + 45)


def test_zero_provisioning_draws_nothing(sites: list[ResolvedSite]) -> None:
    cloud = catalog_cloud(sites, gpu="V100", provisioning="zero")
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    assert cloud.provision_h("gcp-us-central1", True, rng) == 0.0
    assert rng.bit_generator.state == before
    with pytest.raises(ConfigError):
        Provisioning(1.0, 0.5)


def test_region_spot_traces(sites: list[ResolvedSite]) -> None:
    # the pre-issue-13 rule, kept for old numbers (the zone rule: tests/sim/test_spot_traces.py)
    v100 = catalog_cloud(sites, gpu="V100", inventory=default_inventory(), spot_traces="region")
    own = v100.spot_trace("aws-us-east-1")
    assert own is not None and own.name == f"{SET}/us-east-1_v100_1"
    borrowed = [v100.spot_trace(s) for s in ("gcp-europe-west4", "gcp-us-central1")]
    names = [t.name for t in borrowed if t is not None]
    assert len(set(names)) == 2 and own.name not in names
    assert v100.spot_trace("azure-eastus") is None  # no spot offer there


def test_explicit_traces_offset_and_quotas(sites: list[ResolvedSite]) -> None:
    name = f"{SET}/us-west-2b_v100_1"
    cloud = catalog_cloud(
        sites,
        gpu="V100",
        spot_traces={"aws-us-east-1": name},
        spot_offset_h=10.0,
        quotas={"aws-us-east-1": 16},
    )
    tr = cloud.spot_trace("aws-us-east-1")
    assert tr is not None and (tr.name, tr.offset_h) == (name, 10.0)
    assert cloud.spot_trace("gcp-us-central1") is None
    assert cloud.quota_gpus("aws-us-east-1") == 16 and cloud.quota_gpus("azure-eastus") is None
    with pytest.raises(ConfigError) as err:
        catalog_cloud(sites, gpu="V100", quotas={"nowhere": 1})
    assert err.value.details[0].field == "quotas.nowhere"
    with pytest.raises(CatalogError, match="did you mean"):
        catalog_cloud(sites, gpu="V100", spot_traces={"aws-us-east-1": name + "x"})


# -- links and errors -----------------------------------------------------------------------------


def test_links(sites: list[ResolvedSite], v100: CloudModel) -> None:
    assert v100.link("aws:us-east-1", "aws:us-east-1") == (0.0, 0.0)
    assert v100.link("onprem:fra-dc1", "onprem:fra-dc1") == (0.0, 0.0)
    usd, h_per_gb = v100.link("aws:us-east-1", "onprem:fra-dc1")
    assert usd > 0 and h_per_gb == pytest.approx(8 / (10 * 3600))  # catalog: 10 Gbit/s
    inv = default_inventory()
    slow = Inventory.model_validate(
        {
            **inv.model_dump(by_alias=True),
            "network": [
                Link.model_validate(
                    {"from": "onprem:*", "to": "aws:*", "usd_per_gb": 0.02, "bandwidth": 1.0}
                )
            ],
        }
    )
    cloud = catalog_cloud(sites, gpu="V100", inventory=slow)
    assert cloud.link("aws:us-east-1", "onprem:fra-dc1") == pytest.approx((0.02, 8 / 3600))


def test_unknown_site_and_location(v100: CloudModel) -> None:
    with pytest.raises(CatalogError, match="unknown cloud site 'aws-mars-1'"):
        v100.quote("aws-mars-1", 1, spot=False)
    with pytest.raises(CatalogError):
        v100.provision_h("fra-dc", False, np.random.default_rng(0))
    with pytest.raises(CatalogError, match="unknown location"):
        v100.link("onprem:elsewhere", "aws:us-east-1")
    with pytest.raises(ConfigError):
        v100.quote("aws-us-east-1", 0, spot=False)
