"""Spot priced from the measured spot traces: the table, the model and the planner's use of it.

The table (``placer/catalog/data/spot_stats.csv``) is derived from the "Can't Be Late" traces
the simulator replays (Wu et al., NSDI'24) by ``python -m placer.sim.spot_stats``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import placer
from placer import pricing
from placer.catalog import (
    DEFAULT_SPOT_KEY,
    SpotStats,
    read_spot_stats_text,
    resolve_inventory,
    spot_stats,
    spot_stats_table,
)
from placer.models import Inventory, Offer
from placer.pricing import DEFAULT_RESTART_H, cheapest_quote, cloud_option, price_offers, spot_run
from placer.sim import spot_stats as derivation
from placer.sim.cloud import SpotTrace, load_spot_traces
from tests.builders import job, pipeline

PROV = 0.0792  # the catalog's spot provisioning, hours (285 s)
V100 = Offer(gpu="V100", gpus_per_node=1, on_demand=3.06, spot=0.92, instance_type="p3.2xlarge")


def _always_up() -> SpotStats:
    return derivation.stats_from_traces(
        "aws:test-1", [SpotTrace("up", 600.0, np.ones(144, dtype=np.bool_))], "always up",
        PROV, DEFAULT_RESTART_H)


# -- the table -----------------------------------------------------------------------------------


def test_the_table_is_reproducible_from_the_traces() -> None:
    assert derivation.derive_text() == read_spot_stats_text()


def test_the_statistics_are_sane() -> None:
    table = spot_stats_table()
    assert set(table) == {"aws:us-east-1", "aws:us-east-2", "aws:us-west-2", DEFAULT_SPOT_KEY}
    for key, s in table.items():
        assert 0.0 <= s.availability <= 1.0
        assert s.mtbf_h > 0 and s.mttr_h > 0 and s.wait_h >= 0
        extras = [y for _, y in s.p90_extra_h]
        assert extras == sorted(extras)
        assert s.borrowed == (key == DEFAULT_SPOT_KEY)
        # availability = up / (up + down) per cycle: the means agree with the share of time up
        assert s.mtbf_h / (s.mtbf_h + s.mttr_h) == pytest.approx(s.availability, abs=0.02)
    # the region traces' shares of time up, as placer/sim/data/SOURCES.md states them
    assert [round(table[f"aws:{r}"].availability, 3) for r in derivation.REGIONS] == \
        [0.713, 0.806, 0.961]
    # a region without a trace of its own borrows the pooled default, and says so
    own, lent = spot_stats("aws:us-east-1"), spot_stats("gcp:europe-west4")
    assert not own.borrowed and lent.borrowed and lent.location == "gcp:europe-west4"
    assert lent.trace.startswith("no trace here, borrowed: pooled")
    assert lent.mtbf_h == table[DEFAULT_SPOT_KEY].mtbf_h


def test_an_always_up_trace_is_never_preempted() -> None:
    s = _always_up()
    assert (s.availability, s.mtbf_h, s.mttr_h, s.wait_h) == (1.0, math.inf, 0.0, 0.0)
    assert all(y == 0.0 for _, y in s.p90_extra_h)


# -- the model -----------------------------------------------------------------------------------


def test_an_always_up_trace_gives_the_run_time_exactly() -> None:
    r = spot_run(5.0, _always_up(), provisioning_h=PROV)
    assert r is not None
    assert (r.expected_h, r.conservative_h, r.billed_h, r.preemptions) == (5.0, 5.0, 5.0, 0.0)
    (offer,) = price_offers([V100])
    q = cheapest_quote("s", "aws:test-1", [offer], 1, True)
    assert q is not None
    opt = cloud_option(q, run_h=5.0, provisioning_h=PROV, spot_stats=_always_up())
    assert opt.duration_h == 5.0 and opt.compute_usd == pytest.approx(q.bill_usd(PROV, 5.0))


def test_a_heavily_preempted_region_runs_longer_and_bills_more_than_a_stable_one() -> None:
    flaky, stable = spot_stats("aws:us-east-1"), spot_stats("aws:us-west-2")
    assert flaky.mtbf_h < stable.mtbf_h
    a = spot_run(8.0, flaky, provisioning_h=PROV)
    b = spot_run(8.0, stable, provisioning_h=PROV)
    assert a is not None and b is not None
    assert a.preemptions > b.preemptions > 0
    assert a.expected_h > b.expected_h > 8.0
    assert a.billed_h > b.billed_h > 8.0
    assert a.conservative_h > b.conservative_h >= b.expected_h
    (offer,) = price_offers([V100])
    for loc, run in (("aws:us-east-1", a), ("aws:us-west-2", b)):
        q = cheapest_quote("s", loc, [offer], 1, True)
        assert q is not None
        opt = cloud_option(q, run_h=8.0, provisioning_h=PROV)  # the catalog's stats by default
        assert opt.duration_h == pytest.approx(run.expected_h)  # planned on the mean
        assert opt.compute_usd == pytest.approx(q.bill_usd(PROV, run.billed_h))


def test_the_model_is_checked_by_the_replay() -> None:
    """The expected bill is within 5 % of replaying the trace; the conservative duration is
    met by at least 88 % of requests along it (a run length between the table's points)."""
    traces = load_spot_traces()
    for region in derivation.REGIONS:
        tr = traces[f"{derivation.TRACE_SET}/{region}_{derivation.KIND}"]
        run = spot_run(3.0, spot_stats(f"aws:{region}"), provisioning_h=PROV)
        assert run is not None
        extra = np.array([derivation.replay_extra(tr, 3.0, i * tr.gap_s / 3600.0, PROV,
                                                  DEFAULT_RESTART_H)
                          for i in range(0, len(tr), 11)])
        assert float(np.mean(3.0 + extra <= run.conservative_h)) >= 0.88, region
        assert run.expected_h <= float(np.quantile(3.0 + extra, 0.9))


def test_preemptions_faster_than_a_restart_leave_no_spot_option() -> None:
    hostile = SpotStats("aws:x", "V100", False, 0.5, 0.2, 0.2, 0.1, ((0.0, 0.0),), PROV,
                        DEFAULT_RESTART_H, "made up")
    assert spot_run(1.0, hostile, provisioning_h=PROV) is None
    (offer,) = price_offers([V100])
    q = cheapest_quote("s", "aws:x", [offer], 1, True)
    assert q is not None
    with pytest.raises(ValueError, match="never finishes"):
        cloud_option(q, run_h=1.0, provisioning_h=PROV, spot_stats=hostile)


# -- the planner ---------------------------------------------------------------------------------


def _inventory(location: str, **site: object) -> Inventory:
    return Inventory.model_validate({"sites": {"c": {
        "location": location, "offers": [V100.model_dump()], **site}}})


def test_an_explicit_spot_overhead_still_overrides_the_traces() -> None:
    inv = _inventory("aws:us-east-1", spot_overhead=0.25)
    (site,) = resolve_inventory(inv)
    assert site.spot_overhead == 0.25
    spot = [c for c in pricing.site_candidates(site, gpus=1, gpu_types={"V100": 4.0},
                                                spot_ok=True) if c.option.spot]
    (c,) = spot
    assert c.option.duration_h == pytest.approx(5.0)
    assert c.option.compute_usd == pytest.approx(0.92 * (site.spot_provisioning_h + 5.0))
    assert "spot_overhead 0.25 set on the site" in c.label
    # left out, the traces price it
    (site,) = resolve_inventory(_inventory("aws:us-east-1"))
    assert site.spot_overhead is None


@pytest.mark.parametrize("location", ["aws:us-east-1", "gcp:europe-west4"])
def test_a_tight_deadline_keeps_a_job_off_spot_and_a_loose_one_does_not(location: str) -> None:
    inv = _inventory(location)
    (site,) = resolve_inventory(inv)
    run = spot_run(4.0, spot_stats(location), provisioning_h=site.spot_provisioning_h)
    assert run is not None
    p = pipeline(job("train", gpu_types={"V100": 4.0}, spot=True))
    # on demand: provisioning + 4 h; spot needs its expected duration (with preemptions)
    tight = placer.plan(p, inv, deadline=4.0 + site.provisioning_h + 0.5)
    assert tight.status == "placed" and not tight.jobs["train"].spot
    assert site.spot_provisioning_h + run.expected_h > 4.0 + site.provisioning_h + 0.5
    just = site.spot_provisioning_h + run.expected_h
    short = placer.plan(p, inv, deadline=just - 0.01)  # a minute short of the expected delay
    assert short.status == "placed" and not short.jobs["train"].spot
    loose = placer.plan(p, inv, deadline=just + 0.01)
    train = loose.jobs["train"]
    assert loose.status == "placed" and train.spot
    assert train.end_h == pytest.approx(site.spot_provisioning_h + run.expected_h)
    assert train.compute_usd == pytest.approx(0.92 * (site.spot_provisioning_h + run.billed_h))
    assert train.compute_usd < 3.06 * (site.provisioning_h + 4.0)  # cheaper on average
    # the plan's evidence says where the spot figures come from
    chosen = loose.verdicts["train"]["c"].best_option
    assert chosen is not None and "spot (expected" in chosen
    assert ("no trace here, borrowed" in chosen) == (location != "aws:us-east-1")
