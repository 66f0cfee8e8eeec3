"""The pricing seam: one GPU-matching rule, the host VM, provisioning billed, and the planner and
the simulator pricing every (site, GPUs, spot) the same way."""

from __future__ import annotations

import math

import pytest

import placer
from placer import pricing
from placer.catalog import (
    GPU_ONLY_NOTE,
    catalog_rows,
    default_catalog,
    default_inventory,
    resolve_inventory,
)
from placer.models import Inventory, Offer, ResolvedSite
from placer.pricing import (
    DEFAULT_HOST_SPOT_USD_PER_GPU_H,
    DEFAULT_HOST_USD_PER_GPU_H,
    HostVm,
    cheapest_quote,
    cloud_option,
    gpu_matches,
    price_offer,
    price_offers,
    run_time,
)
from placer.sim.cloud import catalog_cloud
from tests.builders import job, pipeline

# -- one GPU-matching rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "gpu", "matches"),
    [
        ("A100", "A100", True),
        ("A100", "A100-40GB", True),
        ("A100", "A100-80GB", True),
        ("A100", "A100-80GB-PCIe", True),
        ("a100", "A100-80GB", True),
        ("H100", "H100-NVL", True),
        ("V100", "V100-32GB", True),
        ("A100-80GB", "A100-80GB", True),
        ("A100-80gb", "A100-80GB", True),
        ("A100-80GB", "A100-80GB-PCIe", False),
        ("A100-80GB", "A100", False),
        ("A100-40GB", "A100-80GB", False),
        ("V100", "V1000", False),
        ("H100", "H200", False),
    ],
)
def test_the_one_gpu_matching_rule(wanted: str, gpu: str, matches: bool) -> None:
    assert gpu_matches(wanted, gpu) is matches
    # the same function everywhere: the catalog listing, the planner, the simulator
    assert gpu_matches is placer.catalog.gpu_matches


def test_the_catalog_listing_filters_by_the_rule() -> None:
    cat = default_catalog()
    for wanted in ("A100", "A100-80GB", "h100", "V100", "T4"):
        listed = {(r["provider"], r["region"], r["instance_type"])
                  for r in catalog_rows(cat, gpu=wanted)}
        expected = {(loc.provider, loc.region, o.instance_type)
                    for loc, o in cat.all_offers() if gpu_matches(wanted, o.gpu)}
        assert listed == expected and listed, wanted


def test_an_exact_key_wins_over_the_family_key() -> None:
    types = {"A100": 6.0, "A100-80GB": 4.0}
    assert run_time(types, "A100-80GB") == ("A100-80GB", 4.0)
    assert run_time(types, "a100-80gb") == ("A100-80GB", 4.0)
    assert run_time(types, "A100-40GB") == ("A100", 6.0)
    assert run_time(types, "A100-80GB-PCIe") == ("A100", 6.0)
    assert run_time({"A100-80GB": 4.0}, "A100-80GB-PCIe") is None
    assert run_time({"T4": 1.0}, "L4") is None


# -- node prices -----------------------------------------------------------------------------------


def test_the_host_vm_is_added_to_gcp_attached_gpus_only() -> None:
    gpu_only = Offer(gpu="T4", gpus_per_node=2, on_demand=0.7, spot=0.2, instance_type="t4x2",
                     source=f"{GPU_ONLY_NOTE}; test")
    full = Offer(gpu="T4", gpus_per_node=2, on_demand=1.2, spot=0.4, instance_type="g4")
    p = price_offer(gpu_only)
    assert p.on_demand == pytest.approx(0.7 + 2 * DEFAULT_HOST_USD_PER_GPU_H)
    assert p.spot == pytest.approx(0.2 + 2 * DEFAULT_HOST_SPOT_USD_PER_GPU_H)
    assert (price_offer(full).on_demand, price_offer(full).spot) == (1.2, 0.4)
    free = price_offer(gpu_only, HostVm(0.0, 0.0))
    assert (free.on_demand, free.spot) == (0.7, 0.2)
    with pytest.raises(ValueError, match="non-negative"):
        HostVm(-1.0)


def test_a_quote_is_whole_nodes_of_the_cheapest_shape() -> None:
    offers = price_offers([
        Offer(gpu="V100", gpus_per_node=1, on_demand=3.0, instance_type="one"),
        Offer(gpu="V100", gpus_per_node=8, on_demand=20.0, instance_type="eight"),
        Offer(gpu="V100", gpus_per_node=4, on_demand=10.0, spot=4.0, instance_type="four"),
    ])
    # 6 GPUs: 6 x $3 = $18, 1 x $20, 2 x $10 = $20 -> six single nodes
    q = cheapest_quote("s", "aws:us-east-1", offers, 6, False)
    assert q is not None
    assert (q.instance, q.nodes, q.usd_per_h, q.gpu_h_per_h) == ("one", 6, 18.0, 6)
    # 7 GPUs: $21, $20, $20: a tie between one 8-GPU node and two 4-GPU nodes, both 8 billed
    # GPUs: the earlier offer wins
    q = cheapest_quote("s", "aws:us-east-1", offers, 7, False)
    assert q is not None and (q.instance, q.nodes) == ("eight", 1)
    # spot: only the offer with a spot price
    q = cheapest_quote("s", "aws:us-east-1", offers, 5, True)
    assert q is not None and (q.instance, q.nodes, q.usd_per_h) == ("four", 2, 8.0)
    assert cheapest_quote("s", "x", (), 1, False) is None


def test_provisioning_is_billed_and_spot_runs_longer() -> None:
    offers = price_offers([Offer(gpu="V100", gpus_per_node=4, on_demand=10.0, spot=4.0)])
    q = cheapest_quote("s", "aws:us-east-1", offers, 6, False)
    assert q is not None
    opt = cloud_option(q, run_h=3.0, provisioning_h=0.1, spot_overhead=0.2)
    assert (opt.duration_h, opt.start_delay_h) == (3.0, 0.1)
    assert opt.compute_usd == pytest.approx(2 * 10.0 * (0.1 + 3.0))
    s = cheapest_quote("s", "aws:us-east-1", offers, 6, True)
    assert s is not None
    opt = cloud_option(s, run_h=3.0, provisioning_h=0.25, spot_overhead=0.2)
    assert opt.duration_h == pytest.approx(3.6)
    assert opt.compute_usd == pytest.approx(2 * 4.0 * (0.25 + 3.6))


# -- the planner prices by the seam ----------------------------------------------------------------


def _one_site(offers: list[Offer], *, provisioning: str = "6m") -> Inventory:
    # a flat spot_overhead, so spot can be billed by hand (the traces' model: test_spot_pricing)
    return Inventory.model_validate({"sites": {"c": {
        "location": "gcp:europe-west4", "provisioning": provisioning, "spot_overhead": 0.1,
        "offers": [o.model_dump() for o in offers],
    }}})


def test_a_plan_bills_provisioning_and_the_host_vm_by_hand() -> None:
    # 6 GPUs for 3 h on 4-GPU attached-T4 nodes at $1.40/node-h (GPU only): 2 nodes, each
    # $1.40 + 4 x $0.47 host = $3.28/h, billed from the request: provisioning 0.1 h + 3 h.
    inv = _one_site([Offer(gpu="T4", gpus_per_node=4, on_demand=1.4, spot=0.5,
                           instance_type="n1+4xT4", source=f"{GPU_ONLY_NOTE}; test")])
    p = placer.plan(pipeline(job("x", gpu_types={"T4": 3.0}, resources={"gpus": 6})), inv)
    assert p.status == "placed"
    x = p.jobs["x"]
    assert (x.nodes, x.gpus, x.spot) == (2, 8, False)
    assert (x.start_h, x.end_h) == pytest.approx((0.1, 3.1))
    assert x.compute_usd == pytest.approx(2 * (1.4 + 4 * 0.47) * (0.1 + 3.0))
    # spot: run 3 h x 1.1, host at $0.235/GPU-h
    p = placer.plan(pipeline(job("x", gpu_types={"T4": 3.0}, resources={"gpus": 6}, spot=True)),
                    inv)
    x = p.jobs["x"]
    assert x.spot and x.end_h == pytest.approx(0.1 + 3.3)
    assert x.compute_usd == pytest.approx(2 * (0.5 + 4 * 0.235) * (0.1 + 3.3))


def test_a_family_name_reaches_every_variant_and_the_exact_key_sets_the_run_time() -> None:
    inv = _one_site([
        Offer(gpu="A100-40GB", gpus_per_node=8, on_demand=30.0, instance_type="a2-8g"),
        Offer(gpu="A100-80GB", gpus_per_node=8, on_demand=40.0, instance_type="a2-ultra-8g"),
    ])
    # the family alone: both variants, 6 h each; the cheaper one wins
    p = placer.plan(pipeline(job("x", gpu_types={"A100": 6.0}, resources={"gpus": 8})), inv)
    assert (p.status, p.jobs["x"].gpu) == ("placed", "A100-40GB")
    assert p.jobs["x"].compute_usd == pytest.approx(30.0 * (0.1 + 6.0))
    # the exact variant runs 4 h: 40 x 4.1 = 164 < 30 x 6.1 = 183
    both = {"A100": 6.0, "A100-80GB": 4.0}
    p = placer.plan(pipeline(job("x", gpu_types=both, resources={"gpus": 8})), inv)
    assert (p.jobs["x"].gpu, p.jobs["x"].end_h) == ("A100-80GB", pytest.approx(4.1))
    # on-prem pools match by the same rule, and report the pool's own type
    onprem = Inventory.model_validate({"sites": {"dc": {
        "location": "onprem:dc1", "country": "DE",
        "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1.0}],
    }}})
    p = placer.plan(pipeline(job("x", gpu_types={"a100": 2.0}, resources={"gpus": 8})), onprem)
    assert (p.status, p.jobs["x"].gpu, p.jobs["x"].compute_usd) == ("placed", "A100-80GB", 16.0)


def test_the_planner_and_the_simulator_quote_the_same_price() -> None:
    """For every cloud site of the default inventory, GPU count and pricing mode, the planner's
    option for a V100 job costs exactly what the simulator's cloud model quotes for its
    reference type, billed over the site's provisioning and the run."""
    inv = default_inventory()
    sites = resolve_inventory(inv)
    cloud = catalog_cloud(sites, gpu="V100", inventory=inv, spot_traces={})
    checked = 0
    for site in sites:
        if site.kind != "cloud":
            continue
        for gpus in (1, 3, 8, 16):
            cands = pricing.site_candidates(site, gpus=gpus, gpu_types={"V100": 2.0},
                                            spot_ok=True)
            for spot in (False, True):
                q = cloud.quote(site.name, gpus, spot)
                c = [c for c in cands if c.option.spot == spot]
                if q is None:
                    assert c == []
                    continue
                (cand,) = c
                prov = site.spot_provisioning_h if spot else site.provisioning_h
                est = pricing.spot_estimate(site.location.key, 2.0, provisioning_h=prov,
                                            spot_overhead=site.spot_overhead)
                assert est is not None
                run = est.billed_h if spot else 2.0
                assert cand.option.compute_usd == pytest.approx(q.bill_usd(prov, run))
                assert (cand.nodes, cand.gpus, cand.option.gpu) == (q.nodes, q.gpu_h_per_h, q.gpu)
                checked += 1
    assert checked >= 8


def test_links_are_the_same_for_the_planner_and_the_simulator() -> None:
    inv = default_inventory()
    sites: list[ResolvedSite] = resolve_inventory(inv)
    cloud = catalog_cloud(sites, gpu="V100", inventory=inv, spot_traces={})
    locs = {s.location.key: s.location for s in sites}
    table = pricing.links(locs, locs, inv.network, default_catalog())
    for (a, b), ln in table.items():
        assert cloud.link(a, b) == (ln.usd_per_gb, ln.hours_per_gb)
        assert math.isfinite(ln.hours_per_gb)
