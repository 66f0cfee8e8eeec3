"""Every baseline against a schedule worked out by hand on a tiny trace.

The shared trace ``T`` (one on-prem node of 4 GPUs; Starburst's uniform cloud at $1/GPU-h, no
provisioning delay, no egress):

    job  arrives  GPUs  run h   GPUs x run h
    a    0        2     0.75    1.5
    b    0        4     1       4
    c    0.25     1     2       2
    d    1.5      2     0.25    0.5
                        ----    ---
                  sum   4       8      -> mean run time 1 h, mean GPUs x run time 2 GPU-h

Waiting budget b = 0.5, so in total the jobs may wait 0.5 x 4 = 2 h:

* Constant-Wait: every job waits 0.5 x mean run time = 0.5 x 1 = 0.5 h;
* Compute-Wait: a job waits b x mean run time / mean(GPUs x run time) x GPUs x run time
  = 0.5 x 1 / 2 x g x r = 0.25 x g x r: a 0.375 h, b 1 h, c 0.5 h, d 0.125 h (sum 2 h).

Tie-breaks the schedules below rely on (the engine's documented event order): at one instant,
ends are processed before arrivals, and arrivals before timeouts; arrivals at the same time in
job order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from placer.catalog import default_inventory, resolve_inventory
from placer.errors import SimulationError
from placer.online import Residency, Strategy
from placer.policy import load_policies
from placer.sim.baselines import (
    ComputeWait,
    ConstantWait,
    NoWait,
    OnPremOnly,
    SkyPilotCheapest,
    StarWait,
)
from placer.sim.check import residency_violations
from placer.sim.cloud import (
    SpotTrace,
    catalog_cloud,
    uniform_cloud,
)
from placer.sim.engine import OnPremConfig, SimResult, simulate
from placer.sim.jobs import SimDataset, SimJob, Workload
from placer.sim.metrics import summarise
from placer.sim.residency import Eligibility
from tests.conftest import ROOT
from tests.sim.builders import hand_workload as _wl
from tests.sim.builders import two_site_cloud

T = _wl(("a", 0, 2, 0.75), ("b", 0, 4, 1), ("c", 0.25, 1, 2), ("d", 1.5, 2, 0.25))
ONE_NODE = OnPremConfig(nodes=1, gpus_per_node=4)

Schedule = dict[str, tuple[str, float, float]]


def _run(strategy: Strategy, workload: Workload = T) -> tuple[SimResult, Schedule]:
    result = simulate(workload, strategy, onprem=ONE_NODE, cloud=uniform_cloud(1.0))
    return result, {r.job.name: (r.site, r.start_h, r.end_h) for r in result.records}


# name -> (strategy factory, expected schedule, expected cloud $)
CASES: dict[str, tuple[Callable[[Residency], Strategy], Schedule, float]] = {
    # On-prem only (EASY backfill).  0: a [0, 0.75]; b (4 GPUs) is the head, reserved the node
    # at 0.75 (a's end).  0.25: c would end at 2.25 > 0.75 and the reservation leaves no GPU
    # over, so c waits.  0.75: b [0.75, 1.75].  1.5: d queued behind c.  1.75: c [1.75, 3.75]
    # and d [1.75, 2].  $0.
    "onprem-only": (
        lambda r: OnPremOnly(residency=r),
        {
            "a": ("onprem", 0, 0.75),
            "b": ("onprem", 0.75, 1.75),
            "c": ("onprem", 1.75, 3.75),
            "d": ("onprem", 1.75, 2),
        },
        0.0,
    ),
    # No-Wait.  0: a [0, 0.75]; b does not fit (2 GPUs free): cloud [0, 1], 4 x 1 = $4.
    # 0.25: c fits: [0.25, 2.25].  1.5: 3 GPUs free (a ended), d fits: [1.5, 1.75].  $4.
    "no-wait": (
        lambda r: NoWait(residency=r),
        {
            "a": ("onprem", 0, 0.75),
            "b": ("cloud", 0, 1),
            "c": ("onprem", 0.25, 2.25),
            "d": ("onprem", 1.5, 1.75),
        },
        4.0,
    ),
    # Constant-Wait (0.5 h each, FIFO).  0: a [0, 0.75]; b queued until 0.5.  0.25: c would
    # fit but waits behind b (head-of-line blocking).  0.5: b times out: cloud [0.5, 1.5], $4;
    # c is the head now and fits: [0.5, 2.5].  1.5: d fits (3 GPUs free): [1.5, 1.75].  $4.
    "constant-wait": (
        lambda r: ConstantWait(0.5, residency=r),
        {
            "a": ("onprem", 0, 0.75),
            "b": ("cloud", 0.5, 1.5),
            "c": ("onprem", 0.5, 2.5),
            "d": ("onprem", 1.5, 1.75),
        },
        4.0,
    ),
    # Constant-Wait + No-SJ: as Constant-Wait, but d's estimate (0.25 h) is no longer than the
    # wait (0.5 h): it goes to the cloud at once, [1.5, 1.75], 2 x 0.25 = $0.50.
    # b (1 h > 0.5 h) still waits.  $4 + $0.50 = $4.50.
    "constant-wait-nosj": (
        lambda r: ConstantWait(0.5, no_sj=True, residency=r),
        {
            "a": ("onprem", 0, 0.75),
            "b": ("cloud", 0.5, 1.5),
            "c": ("onprem", 0.5, 2.5),
            "d": ("cloud", 1.5, 1.75),
        },
        4.5,
    ),
    # Compute-Wait (FIFO).  0: a [0, 0.75]; b queued until 0 + 1 = 1.  0.25: c blocked behind
    # b until 0.25 + 0.5 = 0.75.  0.75: a ends first: b fits, [0.75, 1.75]; then c times out:
    # cloud [0.75, 2.75], 1 x 2 = $2.  1.5: d finds no GPU; times out at 1.5 + 0.125 = 1.625:
    # cloud [1.625, 1.875], 2 x 0.25 = $0.50.  $2.50: the big job waited long enough to run
    # on-prem, the small ones burst.
    "compute-wait": (
        lambda r: ComputeWait(0.5, ooo=False, residency=r),
        {
            "a": ("onprem", 0, 0.75),
            "b": ("onprem", 0.75, 1.75),
            "c": ("cloud", 0.75, 2.75),
            "d": ("cloud", 1.625, 1.875),
        },
        2.5,
    ),
    # Compute-Wait + out of order.  0.25: c starts at once beside a, [0.25, 2.25], so at 0.75
    # only 3 GPUs free up for b, which times out at 1: cloud [1, 2], $4.  1.5: d fits: [1.5,
    # 1.75].  $4.
    "compute-wait+oo": (
        lambda r: ComputeWait(0.5, ooo=True, residency=r),
        {
            "a": ("onprem", 0, 0.75),
            "b": ("cloud", 1, 2),
            "c": ("onprem", 0.25, 2.25),
            "d": ("onprem", 1.5, 1.75),
        },
        4.0,
    ),
    # SkyPilot-style: No-Wait timing; the uniform cloud has one site and no spot offer, so the
    # cheapest offer is the on-demand "cloud": the No-Wait schedule, $4.
    "skypilot": (
        lambda r: SkyPilotCheapest(residency=r),
        {
            "a": ("onprem", 0, 0.75),
            "b": ("cloud", 0, 1),
            "c": ("onprem", 0.25, 2.25),
            "d": ("onprem", 1.5, 1.75),
        },
        4.0,
    ),
}


SUFFIX: dict[Residency, str] = {"none": "", "policy": "+mask", "naive": "+mask-literal"}


@pytest.mark.parametrize("residency", ["none", "naive", "policy"])
@pytest.mark.parametrize("name", list(CASES))
def test_baseline_schedule_by_hand(name: str, residency: Residency) -> None:
    # Nothing is restricted on this trace, so no residency mask changes anything; the uniform
    # cloud has one on-demand offer, so the fair placement is the literal one here.
    make, expected, usd = CASES[name]
    strategy = make(residency)
    result, got = _run(strategy)
    assert got == expected
    assert summarise(result).cloud_usd == pytest.approx(usd)
    assert strategy.name == name + SUFFIX[residency]


def test_compute_wait_budget_normalisation() -> None:
    # 0.25 x GPUs x run time (module docstring): a 0.375, b 1, c 0.5, d 0.125; the waits add
    # up to the budget, 0.5 x the summed run time = 2 h.
    s = ComputeWait(0.5)
    _run(s)
    waits = [s.wait(j) for j in T.jobs]
    assert waits == [0.375, 1.0, 0.5, 0.125]
    assert sum(waits) == 0.5 * sum(j.estimate_h for j in T.jobs)
    c = ConstantWait(0.5)
    _run(c)
    assert [c.wait(j) for j in T.jobs] == [0.5] * 4


def test_no_wait_is_constant_wait_with_zero_budget() -> None:
    assert _run(NoWait())[1] == _run(ConstantWait(0.0))[1]


# -- Star-Wait -----------------------------------------------------------------------------------

# One node of 4 GPUs, uniform cloud at $1/GPU-h, budget 0.5, probe 0.25 h.
#
#   job  arrives  GPUs  run h
#   a    0        4     1.625
#   b    0        2     1
#   c    0.5      1     1.125
#   d    1        1     0.25
#                 --    -----
#            sum  8     4      -> mean GPUs 2, mean run time 1 h
#
# Resource-Wait = b x mean run time / mean GPUs x GPUs = 0.5 x 1 / 2 x g = 0.25 g; a job back
# from its probe waits 3x that, 0.75 g h.
#
# 0:     a fits: on-prem [0, 1.625].  b does not: cloud probe from 0, stopped at 0.25
#        ($2 x 0.25 = $0.50); back on-prem with 0.75 x 2 = 1.5 h, until 1.75.
# 0.5:   c probes [0.5, 0.75] ($0.25); back on-prem with 0.75 x 1 = 0.75 h, until 1.5.
# 1:     d probes; its 0.25 h of work ends exactly at the probe's limit: done in the cloud
#        [1, 1.25] ($0.25).
# 1.5:   c times out before the node frees up: bursts for good, cloud [1.5, 2.625] ($1.125).
# 1.625: a ends; b (timeout at 1.75) starts on-prem [1.625, 2.625].
# Cloud $: 0.5 + 0.25 + 0.25 + 1.125 = $2.125.
STAR = _wl(("a", 0, 4, 1.625), ("b", 0, 2, 1), ("c", 0.5, 1, 1.125), ("d", 1, 1, 0.25))


@pytest.mark.parametrize("residency", ["none", "naive"])
def test_star_wait_probe_then_back_on_prem_then_burst(residency: Residency) -> None:
    s = StarWait(0.5, residency=residency)
    result, got = _run(s, STAR)
    assert got == {
        "a": ("onprem", 0, 1.625),
        "b": ("onprem", 1.625, 2.625),
        "c": ("cloud", 1.5, 2.625),
        "d": ("cloud", 1, 1.25),
    }
    runs = {
        r.job.name: [(a.site, a.launch_h, a.stop_h, a.outcome) for a in r.attempts]
        for r in result.records
    }
    assert runs["b"] == [("cloud", 0, 0.25, "limit"), ("onprem", 1.625, 2.625, "done")]
    assert runs["c"] == [("cloud", 0.5, 0.75, "limit"), ("cloud", 1.5, 2.625, "done")]
    assert runs["d"] == [("cloud", 1, 1.25, "done")]
    m = summarise(result)
    assert m.cloud_usd == pytest.approx(2.125)
    # the probes' 0.75 GPU-h are paid and lost: billed 0.5 + 0.25 + 0.25 + 1.125 GPU-h
    assert m.cloud_gpu_h == pytest.approx(2.125)


def test_star_wait_sends_a_job_too_big_for_on_prem_to_the_cloud_without_a_probe() -> None:
    wl = _wl(("huge", 0, 8, 3))
    result, got = _run(StarWait(0.5), wl)
    assert got == {"huge": ("cloud", 0, 3)}
    assert result.records[0].decisions == 1


def test_on_prem_only_cannot_run_a_job_bigger_than_the_pool() -> None:
    with pytest.raises(SimulationError, match="needs 8 GPUs and the on-prem pool has 4"):
        _run(OnPremOnly(), _wl(("huge", 0, 8, 3)))


# -- SkyPilot-style placement with spot ----------------------------------------------------------


def test_skypilot_prefers_spot_and_fails_over_down_the_price_list() -> None:
    # Site a: spot $1/GPU-h (up [0, 2), down [2, 3), up after), on demand $3/GPU-h; site b:
    # on demand $2/GPU-h.  No on-prem pool.  x (1 GPU, 4 h, checkpoints):
    # 0: estimated cost a/spot 4 x 1 = $4 < b 4 x 2 = $8 < a 4 x 3 = $12: spot at a.
    # 2: preempted, 2 h kept, 2 h + 0.2 h overhead left.  Spot at a is still cheapest
    #    (2.2 x 1) and is tried: refused (down) and struck off; then b (2.2 x 2 = $4.40) beats
    #    a on demand ($6.60): b [2, 4.2].  Cloud $: 2 x 1 + 2.2 x 2 = $6.40.
    trace = SpotTrace("hand", 3600.0, np.array([True, True, False] + [True] * 7))
    cloud = two_site_cloud(trace)
    wl = _wl(("x", 0, 1, 4))
    result = simulate(wl, SkyPilotCheapest(), onprem=OnPremConfig(nodes=0), cloud=cloud)
    (rec,) = result.records
    assert [(a.site, a.spot, a.start_h, a.outcome) for a in rec.attempts] == [
        ("a", True, 0, "preempted"),
        ("b", False, 2, "done"),
    ]
    assert rec.end_h == pytest.approx(4.2)
    assert rec.refused == ("a/spot:unavailable",)
    assert summarise(result).cloud_usd == pytest.approx(6.4)


@pytest.mark.parametrize(("gb", "site"), [(10, "gcp-us-central1"), (1000, "gcp-europe-west4")])
def test_skypilot_counts_egress_against_hours(gb: float, site: str) -> None:
    # x (1 V100, 10 h, no spot) reads a dataset in gcp:europe-west4.  On demand, one V100 costs
    # $2.95/h at gcp-us-central1 and $3.074/h at gcp-europe-west4; GCP bills $0.08/GB between
    # its continents.  Estimated cost:
    #   10 GB:   us 10 x 2.95 + 10 x 0.08 = $30.30  <  eu 10 x 3.074 = $30.74  -> us
    #   1000 GB: us 29.50 + 1000 x 0.08 = $109.50  >  eu $30.74                -> eu
    # (No-Wait's literal placement takes us-central1 both times: it looks at the hourly price
    # only; its fair placement counts the egress as SkyPilot does.)
    sites = resolve_inventory(default_inventory())
    cloud = catalog_cloud(
        sites, gpu="V100", inventory=default_inventory(), provisioning="zero", spot_traces={}
    )
    assert cloud.quote("gcp-us-central1", 1, False).usd_per_h == pytest.approx(2.95)  # type: ignore[union-attr]
    assert cloud.quote("gcp-europe-west4", 1, False).usd_per_h == pytest.approx(3.074)  # type: ignore[union-attr]
    assert cloud.link("gcp:europe-west4", "gcp:us-central1")[0] == pytest.approx(0.08)
    wl = Workload(
        "egress",
        (SimJob(0, "x", 0.0, 10.0, 1, 10.0, reads=("data",), spot_ok=False),),
        {"data": SimDataset("data", "gcp:europe-west4", gb)},
    )
    onprem = OnPremConfig(site="fra-dc", location="onprem:fra-dc1", nodes=0)
    result = simulate(wl, SkyPilotCheapest(), onprem=onprem, cloud=cloud)
    (rec,) = result.records
    assert rec.site == site
    assert rec.attempts[0].egress_usd == pytest.approx(
        0.08 * gb if site == "gcp-us-central1" else 0
    )
    literal = simulate(wl, NoWait(placement="literal"), onprem=onprem, cloud=cloud)
    assert literal.records[0].site == "gcp-us-central1"
    assert simulate(wl, NoWait(), onprem=onprem, cloud=cloud).records[0].site == site


# -- residency: the naive mask misses derived data -------------------------------------------


@pytest.mark.parametrize(
    ("residency", "train_site", "violations"),
    [
        ("naive", "gcp-us-central1", 1),
        ("policy", "gcp-europe-west4", 0),
    ],
)
def test_naive_mask_lets_derived_data_leave_the_eea(
    residency: Residency, train_site: str, violations: int
) -> None:
    # prep reads an EU-tagged dataset in Frankfurt; train reads only prep's output.  No on-prem
    # GPUs, so No-Wait bursts both to the cheapest V100 site its filter allows.  For one V100
    # the cheapest is gcp-us-central1, then gcp-europe-west4 (the catalog's prices).  The naive
    # mask sees prep's EU input (EEA only) but not train's lineage: train goes to the US.  The
    # policy filter follows the lineage and keeps train in the EEA.  (The literal placement,
    # blind to data: the fair one would keep train by prep's output for the egress alone.)
    sites = resolve_inventory(default_inventory())
    cloud = catalog_cloud(
        sites, gpu="V100", inventory=default_inventory(), provisioning="zero", spot_traces={}
    )
    assert [q.site for q in cloud.quotes(1, False)][:3] == [
        "gcp-us-central1",
        "azure-eastus",
        "gcp-europe-west4",
    ]
    wl = Workload(
        "residency",
        (
            SimJob(0, "prep", 0.0, 1.0, 1, 1.0, reads=("patients",), output_gb=10.0),
            SimJob(1, "train", 0.0, 2.0, 1, 2.0, deps=(0,)),
        ),
        {"patients": SimDataset("patients", "onprem:fra-dc1", 50.0, {"residency": "EU"})},
    )
    policies = load_policies(ROOT / "policies" / "locations.yaml",
                             ROOT / "policies" / "eea-residency.yaml")
    elig = Eligibility.from_policies(wl, sites, "fra-dc", policies)
    assert elig.allowed(1, "naive")[1] == elig.cloud_sites  # train reads nothing directly
    onprem = OnPremConfig(site="fra-dc", location="onprem:fra-dc1", nodes=0)
    strategy = NoWait(residency=residency, placement="literal")
    result = simulate(wl, strategy, onprem=onprem, cloud=cloud, eligibility=elig)
    assert [r.site for r in result.records] == ["gcp-europe-west4", train_site]

    jurisdictions = {s.location.key: s.location.jurisdictions for s in sites}
    found = residency_violations(result, {"EU": frozenset({"EEA"})}, jurisdictions)
    assert len(found) == violations
    if found:
        (v,) = found
        assert (v.job, v.site, v.location, v.value, v.dataset) == (
            "train",
            "gcp-us-central1",
            "gcp:us-central1",
            "EU",
            "patients",
        )
