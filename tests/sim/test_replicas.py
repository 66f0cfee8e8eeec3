"""Replicas: a copy of a dataset kept at another location, asked for by a strategy.

The engine prices a copy (egress once, storage until the end of the run) and reads from the
cheapest ready copy; the checker counts a copy where its data may not be; placer buys a copy by
the ski-rental rule and only where its policies let a job reading the data run.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placer.catalog import default_inventory, resolve_inventory
from placer.errors import ConfigError, SimulationError
from placer.online import ClusterView, Decision, JobRequest, OnPrem, Replicate, Strategy
from placer.sim.baselines import OnPremOnly
from placer.sim.bench import run_benchmark
from placer.sim.check import residency_violations
from placer.sim.cloud import CloudModel, catalog_cloud
from placer.sim.engine import OnPremConfig, SimResult, simulate
from placer.sim.jobs import SimDataset, SimJob, Workload
from placer.sim.metrics import summarise
from placer.sim.placer_strategy import PlacerStrategy
from placer.sim.registry import make_strategy
from placer.sim.residency import Eligibility
from placer.sim.scenario import Prepared, SweepSpec
from tests.sim.test_placer_strategy import _eu

FRA = OnPremConfig(site="fra-dc", location="onprem:fra-dc1", nodes=1, gpus_per_node=1)
GB = 100.0
TRANSFER_H = GB * 8 / 36000  # the catalog's 10 Gbit/s links: 0.0222 h for 100 GB
EGRESS = 0.12 * GB  # GCP's first internet tier, $0.12/GB: $12 per read


@functools.cache
def _cloud() -> CloudModel:
    sites = resolve_inventory(default_inventory())
    return catalog_cloud(
        sites, gpu="V100", inventory=default_inventory(), provisioning="zero", spot_traces={}
    )


def _readers(arrivals: list[float], *, tags: dict[str, str] | None = None) -> Workload:
    """One 1 h, 1-GPU job per arrival, each reading a 100 GB dataset in gcp:us-central1."""
    ds = SimDataset("corpus", "gcp:us-central1", GB, tags or {})
    jobs = tuple(
        SimJob(i, f"j{i}", t, 1.0, 1, 1.0, reads=("corpus",)) for i, t in enumerate(arrivals)
    )
    return Workload("readers", jobs, {"corpus": ds})


class _CopyFirst(Strategy):
    """On-prem, FIFO; asks for a copy of the corpus at ``where`` with every decision (a copy
    there, or on its way, makes the request a no-op)."""

    queue = "fifo"

    def __init__(self, where: str) -> None:
        self.where = where

    def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
        return OnPrem(copies=(Replicate("corpus", self.where),))


def test_a_replica_pays_once_and_later_reads_are_free() -> None:
    # The strategy asks for a copy in Frankfurt when j0 is ready (0 h): $12 of egress, ready
    # at 0.0222 h. j0 starts at 0 and waits for the copy on its way instead of paying its own
    # read; j1 starts when j0 ends and j2 at 5 h, both reading the copy.
    wl = _readers([0.0, 0.0, 5.0])
    strategy = _CopyFirst("onprem:fra-dc1")
    result = simulate(wl, strategy, onprem=FRA, cloud=_cloud())
    (rep,) = result.replicas  # one copy; asking again does nothing
    assert (rep.dataset, rep.location, rep.source) == (
        "corpus",
        "onprem:fra-dc1",
        "gcp:us-central1",
    )
    assert (rep.requested_h, rep.ready_h) == pytest.approx((0.0, TRANSFER_H))
    assert rep.egress_usd == pytest.approx(EGRESS)
    egress = [r.attempts[0].egress_usd for r in result.records]
    assert egress == pytest.approx([0.0, 0.0, 0.0])
    # j0 waits for the copy; j1 and j2 start their work at once.
    starts = [r.attempts[0].start_h for r in result.records]
    assert starts == pytest.approx([TRANSFER_H, 1 + TRANSFER_H, 5.0])
    m = summarise(result)
    end = result.end_h
    assert end == pytest.approx(6.0)
    storage = GB * 0.023 / 730 * (end - TRANSFER_H)
    assert m.storage_usd == pytest.approx(storage)
    assert m.egress_usd == pytest.approx(EGRESS)
    assert m.cloud_usd == pytest.approx(EGRESS + storage)
    # without the copy every job pays its read
    plain = summarise(simulate(wl, OnPremOnly(queue="fifo"), onprem=FRA, cloud=_cloud()))
    assert plain.egress_usd == pytest.approx(3 * EGRESS)
    assert (plain.storage_usd, plain.replicas) == (0.0, 0)
    assert m.replicas == 1


def test_reads_come_from_the_cheapest_ready_copy() -> None:
    # A copy in aws:us-east-1 (from GCP: $0.12/GB) then a job on-prem: AWS's internet egress is
    # $0.09/GB, cheaper than GCP's $0.12, so the job reads the AWS copy.
    cloud = _cloud()
    assert cloud.link("aws:us-east-1", "onprem:fra-dc1")[0] == pytest.approx(0.09)
    wl = _readers([1.0])
    result = simulate(wl, _CopyFirst("aws:us-east-1"), onprem=FRA, cloud=cloud)
    (rep,) = result.replicas
    assert rep.egress_usd == pytest.approx(EGRESS)
    # the copy was asked for at 1.0, the job's own read at 1.0 too: the copy is not ready yet
    assert result.records[0].attempts[0].egress_usd == pytest.approx(EGRESS)
    late = simulate(_readers([0.0, 0.0]), _CopyFirst("aws:us-east-1"), onprem=FRA, cloud=cloud)
    assert [r.attempts[0].egress_usd for r in late.records] == pytest.approx([EGRESS, 9.0])


def test_replicating_an_unknown_dataset_is_an_error() -> None:
    class Bad(_CopyFirst):
        def on_ready(self, job: JobRequest, view: ClusterView) -> Decision:
            return OnPrem(copies=(Replicate("nope", "onprem:fra-dc1"),))

    with pytest.raises(SimulationError, match="no dataset 'nope'"):
        simulate(_readers([0.0]), Bad(""), onprem=FRA, cloud=_cloud())


def test_the_checker_counts_a_copy_where_the_data_may_not_be() -> None:
    wl = _readers([0.0], tags={"residency": "EU"})
    result = simulate(wl, _CopyFirst("aws:us-east-1"), onprem=FRA, cloud=_cloud())
    truth = {"EU": frozenset({"EEA"})}
    places = {
        "gcp:us-central1": frozenset({"US"}),
        "aws:us-east-1": frozenset({"US"}),
        "onprem:fra-dc1": frozenset({"DE", "EU", "EEA"}),
    }
    (v,) = residency_violations(result, truth, places)
    assert (v.job, v.location, v.value, v.dataset) == ("replica", "aws:us-east-1", "EU", "corpus")


# -- placer: rent, then buy ---------------------------------------------------------------------


def _optimal_offline(reads: int, storage: float) -> float:
    """With hindsight: pay every read, or one copy plus its storage."""
    return min(reads * EGRESS, EGRESS + storage) if reads else 0.0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.0, 200.0), min_size=1, max_size=8))
def test_placer_buys_a_copy_on_the_second_read_and_stays_within_twice_the_optimum(
    arrivals: list[float],
) -> None:
    # No cloud site is allowed, so every job runs on-prem and reads the corpus in Frankfurt.
    # Storage for keep_h (720 h) of 100 GB is $2.27, less than one read ($12): placer rents
    # the first read and buys a copy at the second; a job starting while the copy is on its
    # way waits for it instead of paying again. Ski rental: never more than twice what a
    # clairvoyant pays (every read, or one copy and its storage, whichever is less).
    wl = _readers(sorted(arrivals))
    only_onprem = Eligibility.unrestricted(wl, "fra-dc", ())
    result = simulate(wl, PlacerStrategy(0.5), onprem=FRA, cloud=_cloud(), eligibility=only_onprem)
    assert all(r.site == "fra-dc" for r in result.records)
    n = len(wl.jobs)
    assert len(result.replicas) == (1 if n >= 2 else 0)
    paid = sum(a.egress_usd for r in result.records for a in r.attempts) + sum(
        r.egress_usd for r in result.replicas
    )
    assert paid == pytest.approx(min(n, 2) * EGRESS)
    storage = GB * 0.023 / 730 * 720
    assert paid <= 2 * _optimal_offline(n, storage) + 1e-9


def test_placer_without_replication_rents_forever() -> None:
    wl = _readers([0.0, 2.0, 4.0, 6.0])
    only_onprem = Eligibility.unrestricted(wl, "fra-dc", ())
    kw = {"onprem": FRA, "cloud": _cloud(), "eligibility": only_onprem}
    result = simulate(wl, PlacerStrategy(0.5, replicate=False), **kw)  # type: ignore[arg-type]
    assert result.replicas == ()
    assert summarise(result).egress_usd == pytest.approx(4 * EGRESS)
    placer = simulate(wl, PlacerStrategy(0.5), **kw)  # type: ignore[arg-type]
    assert len(placer.replicas) == 1
    assert summarise(placer).egress_usd == pytest.approx(2 * EGRESS)


def _run(p: Prepared, strategy: Strategy, seed: int) -> SimResult:
    return simulate(
        p.workload,
        strategy,
        onprem=p.onprem,
        cloud=p.cloud,
        eligibility=p.eligibility,
        seed=seed,
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_placer_replicates_only_where_the_policies_let_the_data_go(seed: int) -> None:
    p = _eu(seed)
    assert p.truth is not None
    result = _run(p, make_strategy("placer", 0.5), seed)
    assert residency_violations(result, p.truth, p.jurisdictions) == []
    # Not vacuous: placer made copies, among them of EU data (kept in the EEA).
    tags = {r.dataset: result.workload.datasets[r.dataset].tags for r in result.replicas}
    assert any(t.get("residency") == "EU" for t in tags.values())
    # and the copies paid for themselves: less egress than renting the same reads
    rent = _run(p, PlacerStrategy(0.5, replicate=False), seed)
    assert rent.replicas == ()
    assert summarise(result).egress_usd < summarise(rent).egress_usd


def test_eligibility_stores_eu_data_only_in_the_eea() -> None:
    p = _eu(0)
    onprem_ok, sites = p.eligibility.stores("patients-fra")
    assert onprem_ok
    assert sites and all(not s.startswith(("aws-us", "gcp-us", "azure-east")) for s in sites)
    everywhere = p.eligibility.stores("web-us")
    assert everywhere == (True, p.eligibility.cloud_sites)


def test_onprem_only_never_replicates() -> None:
    result = simulate(_readers([0.0, 1.0, 2.0]), OnPremOnly(), onprem=FRA, cloud=_cloud())
    assert result.replicas == ()


def test_placer_noreplicas_is_placer_without_the_rule() -> None:
    s = make_strategy("placer-noreplicas", 0.75)
    assert isinstance(s, PlacerStrategy)
    assert (s.budget, s.replicate) == (0.75, False)
    with pytest.raises(ConfigError, match="unknown strategy 'placer-noreplicas\\+mask'"):
        make_strategy("placer-noreplicas+mask")


def test_the_scenarios_storage_price_reaches_the_bill() -> None:
    # Two prices low enough that every copy still pays at the second read (720 h of 200 GB at
    # $0.002/GB-month is $0.39, less than any read here): the same decisions, so the bills
    # differ by exactly the extra storage. (At $0 a copy would pay at the first read.)
    p = _eu(0)
    bills = {}
    for price in (0.001, 0.002):
        sc = p.scenario.model_copy(
            update={
                "strategies": ("placer",),
                "sweep": SweepSpec(wait=(0.5,)),
                "storage_usd_per_gb_month": price,
            }
        )
        (row,) = run_benchmark(sc, prepared=replace(p, scenario=sc)).rows
        bills[price] = row.metrics
    low, high = bills[0.001], bills[0.002]
    assert low.replicas == high.replicas > 0
    assert high.storage_usd == pytest.approx(2 * low.storage_usd) and low.storage_usd > 0
    assert high.cloud_usd - low.cloud_usd == pytest.approx(low.storage_usd)
