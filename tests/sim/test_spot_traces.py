"""Zone-level spot traces matched to the job's size, and every borrowed trace flagged (issue 13).

* a site is one zone, chosen deterministically (its region's zone with traces for the most
  sizes, ties to the median single-V100 availability; else a borrowed zone, round-robin);
* a job replays the trace of its shape or GPU count, else the nearest larger, else the largest;
* every trace not of the site's zone, GPU type and GPU count is flagged, with the reason;
* the engine's launches and the strategies' view read the same matched trace;
* ``spot_traces: region`` is the old rule, unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest

from placer.catalog import default_inventory, resolve_inventory
from placer.errors import ConfigError
from placer.models import ResolvedSite
from placer.sim.cloud import (
    CloudModel,
    ZoneSpot,
    catalog_cloud,
    home_zones,
    load_spot_traces,
    spot_sources,
)
from placer.sim.engine import OnPremConfig, simulate
from placer.sim.jobs import SimJob, Workload
from placer.sim.metrics import spot_trace_use
from placer.sim.registry import make_strategy
from placer.sim.scenario import build
from tests.conftest import ROOT
from tests.sim.test_strategy_scale import _eu_small

V1 = "availability/1-node/aws-02-15-2023"
V8 = "availability/1-node/aws-10-26-2022"
N16 = "availability/16-node/aws-08-27-2023"


@pytest.fixture(scope="module")
def sites() -> list[ResolvedSite]:
    return resolve_inventory(default_inventory())


@pytest.fixture(scope="module")
def zone(sites: list[ResolvedSite]) -> CloudModel:
    return catalog_cloud(sites, gpu="V100", inventory=default_inventory())


def test_sources_are_the_zone_level_availability_traces() -> None:
    names = {s.name for s in spot_sources()}
    assert f"{V1}/us-east-1a_v100_1" in names and f"{N16}/us-west-2a_v100_1" in names
    assert not any(n.startswith("preemption/") for n in names)  # they record lifetimes
    assert f"{V1}/us-east-1_v100_1" not in names  # a derived region trace is no zone
    src = next(s for s in spot_sources() if s.name == f"{V8}/us-west-2b_v100_8")
    assert (src.provider, src.region, src.zone, src.gpu, src.gpus_per_instance,
            src.instances) == ("aws", "us-west-2", "us-west-2b", "v100", 8, 1)


def test_each_site_is_one_zone(sites: list[ResolvedSite]) -> None:
    # us-east-1: four zones with one size each; availability 1a .167 < 1d .447 < 1c .467 <
    # 1f .591: the lower median is 1d.  The GCP sites borrow the zones with the most sizes
    # (us-west-2a: 1, 8 and 16-node; then us-east-2b, us-west-2b, us-west-2c by name).
    spot = ("aws-us-east-1", "gcp-europe-west4", "gcp-us-central1")  # the V100 spot offers
    cloud = [next(s for s in sites if s.name == n) for n in spot]
    assert home_zones(cloud, "V100") == {"aws-us-east-1": "us-east-1d",
                                         "gcp-europe-west4": "us-west-2a",
                                         "gcp-us-central1": "us-east-2b"}
    # deterministic, and the site order only decides who borrows which zone
    homes = home_zones(list(reversed(cloud)), "V100")
    assert homes["aws-us-east-1"] == "us-east-1d"
    assert homes["gcp-us-central1"] == "us-west-2a"


def test_a_job_replays_the_trace_of_its_size(zone: CloudModel) -> None:
    traces = load_spot_traces()
    one = zone.spot_pick("aws-us-east-1", 1, 1)
    assert one is not None and (one.source, one.gpus, one.borrowed) == (
        f"{V1}/us-east-1d_v100_1", 1, ())
    # one 8-GPU instance: an 8-V100 zone trace (none in us-east-1: borrowed from us-west-2)
    eight = zone.spot_pick("aws-us-east-1", 1, 8)
    assert eight is not None and (eight.source, eight.gpus, eight.borrowed) == (
        f"{V8}/us-west-2a_v100_8", 8, ("region",))
    tr = zone.spot_trace("aws-us-east-1", 1, 8)
    assert tr is not None and np.array_equal(tr.up, traces[f"{V8}/us-west-2a_v100_8"].up)
    # a 4-GPU instance: no 4-GPU trace; the same GPU count as 4 single V100s of a 16-node set
    four = zone.spot_pick("aws-us-east-1", 1, 4)
    assert four is not None and (four.source, four.gpus, four.borrowed) == (
        f"{N16}/us-west-2a_v100_1", 4, ("region",))
    # eight attached V100s at GCP: the 16-node count of the borrowed zone, >= 8
    gcp = zone.spot_pick("gcp-us-central1", 8, 1)
    assert gcp is not None and (gcp.source, gcp.gpus, gcp.borrowed) == (
        f"{N16}/us-east-2b_v100_1", 8, ("provider",))
    counts = traces[f"{N16}/us-east-2b_v100_1"].counts
    tr = zone.spot_trace("gcp-us-central1", 8, 1)
    assert tr is not None and counts is not None and np.array_equal(tr.up, counts >= 8)
    # 32 GPUs: nothing that large; the largest (16) is flagged for its size too
    big = zone.spot_pick("aws-us-east-1", 4, 8)
    assert big is not None and (big.gpus, big.borrowed) == (16, ("region", "size"))
    assert zone.spot_pick("azure-eastus", 1, 1) is None  # no spot offer: no trace


def test_nearest_larger_size_and_another_gpu_type_are_flagged() -> None:
    # K80 traces exist for 1 and 8 GPUs only: a 4-GPU instance replays the 8-GPU one
    pick, trace = ZoneSpot("x", "aws", "us-west-2", "us-west-2a", "K80").pick(1, 4)
    assert (pick.source, pick.gpus, pick.borrowed) == (f"{V8}/us-west-2a_k80_8", 8, ("size",))
    assert trace.fraction_up == pytest.approx(0.326, abs=1e-3)
    # no A100 trace at all: the V100 ones, flagged
    pick, _ = ZoneSpot("y", "aws", "us-west-2", "us-west-2a", "A100").pick(1, 1)
    assert pick.borrowed == ("gpu",) and pick.source == f"{V1}/us-west-2a_v100_1"
    with pytest.raises(ConfigError):
        ZoneSpot("y", "aws", "us-west-2", "us-west-2a", "V100").pick(0, 1)


def test_the_region_rule_is_kept_and_flagged(sites: list[ResolvedSite]) -> None:
    region = catalog_cloud(sites, gpu="V100", inventory=default_inventory(),
                           spot_traces="region")
    own = region.spot_pick("aws-us-east-1", 1, 1)
    assert own is not None and (own.source, own.zone, own.borrowed) == (
        f"{V1}/us-east-1_v100_1", "us-east-1 (any zone)", ())
    # the old rule reads the 1-V100 trace for any size: flagged
    eight = region.spot_pick("aws-us-east-1", 1, 8)
    assert eight is not None and eight.borrowed == ("size",)
    assert region.spot_trace("aws-us-east-1", 1, 8) is region.spot_trace("aws-us-east-1")
    gcp = region.spot_pick("gcp-us-central1", 1, 1)
    assert gcp is not None and gcp.borrowed == ("provider",)
    with pytest.raises(ConfigError, match="auto, zone, region"):
        catalog_cloud(sites, gpu="V100", spot_traces="nearest")  # type: ignore[arg-type]


def test_launch_and_view_meet_the_matched_trace(sites: list[ResolvedSite]) -> None:
    # One cloud site (aws-us-east-1), no on-prem pool, one 8-GPU job that checkpoints, at an
    # hour when the 8-V100 trace it matches is down and the old 1-V100 region trace is up:
    # SkyPilot-style placement rents spot under the old rule and on-demand under the new one.
    only = [s for s in sites if s.kind != "cloud" or s.name == "aws-us-east-1"]
    clouds = {mode: catalog_cloud(only, gpu="V100", spot_traces=mode, provisioning="zero")
              for mode in ("zone", "region")}
    eight = clouds["zone"].spot_trace("aws-us-east-1", 1, 8)
    old = clouds["region"].spot_trace("aws-us-east-1", 1, 8)
    assert eight is not None and old is not None
    t = next(h / 4 for h in range(4000) if not eight.up_at(h / 4) and old.up_at(h / 4)
             and old.next_down(h / 4) > h / 4 + 3)
    job = SimJob(0, "x", t, 2.0, 8, 2.0, spot_ok=True)
    got = {}
    for mode, cloud in clouds.items():
        result = simulate(Workload("one", (job,)), make_strategy("skypilot"),
                          onprem=OnPremConfig(nodes=0), cloud=cloud)
        got[mode] = [(a.site, a.spot) for a in result.records[0].attempts]
        use = spot_trace_use(result, cloud)
        if mode == "region":
            assert [p.borrowed for p in use.picks] == [("size",)]
            assert use.borrowed_share == pytest.approx(1.0)
    assert got == {"zone": [("aws-us-east-1", False)], "region": [("aws-us-east-1", True)]}


def test_a_replay_flags_its_borrowed_spot_use_deterministically() -> None:
    prep = _eu_small()
    zone = build(prep.scenario.model_copy(update={
        "cloud": prep.scenario.cloud.model_copy(update={"spot_traces": "auto"})}),
        ROOT / "benchmarks" / "scenarios")
    uses = [spot_trace_use(zone.simulate(make_strategy("placer", 0.5)), zone.cloud)
            for _ in range(2)]
    assert uses[0] == uses[1]
    use = uses[0]
    assert use.gpu_h > 0 and use.picks
    # no GCP/EU zone trace exists: every spot GPU-hour at a GCP site is on a borrowed trace
    assert all("provider" in p.borrowed for p in use.picks if p.site.startswith("gcp-"))
    flagged = sum(p.is_borrowed for p in use.picks)
    assert f"({flagged} of {len(use.picks)} traces)" in use.summary()
    assert 0.0 < use.borrowed_share <= 1.0
