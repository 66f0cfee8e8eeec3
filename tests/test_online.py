"""The online-scheduling seam: strategies decide through ``placer.online.ClusterView``, which
anything can implement, not only the simulator.

``_StaticView`` below is a hand-written view of a frozen world (an on-prem pool with some GPUs
free, a queue, one or two cloud sites quoted through ``placer.pricing``), the way a live
scheduler would answer from its clusters; the strategies run against it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from placer.online import (
    Allowed,
    Cloud,
    ClusterView,
    DatasetInfo,
    JobRequest,
    OnPrem,
    Queued,
    Replicate,
    Residency,
    Strategy,
)
from placer.optimizer import Link
from placer.pricing import PricedOffer, Quote, cheapest_quote
from placer.sim.baselines import ComputeWait, NoWait
from placer.sim.placer_strategy import PlacerStrategy


@dataclass
class _StaticView:
    """A frozen world: ``free`` of ``gpus`` on-prem GPUs free, jobs running until ``ends``,
    cloud sites with one offer each, no transfers unless ``transfers`` says so."""

    gpus: int = 8
    free: int = 8
    ends: list[tuple[float, int]] = field(default_factory=list)
    offers: Mapping[str, PricedOffer] = field(default_factory=dict)
    prov_h: float = 0.1
    spot_up: bool = True
    transfers: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    data: Mapping[str, DatasetInfo] = field(default_factory=dict)
    storage: float = 0.0
    t: float = 0.0

    @property
    def now(self) -> float:
        return self.t

    @property
    def onprem_site(self) -> str:
        return "dc"

    @property
    def onprem_location(self) -> str:
        return "onprem:dc1"

    @property
    def onprem_gpus(self) -> int:
        return self.gpus

    @property
    def free_gpus(self) -> int:
        return self.free

    def fits_now(self, job: JobRequest) -> bool:
        return job.gpus <= self.free

    def queue_length(self) -> int:
        return 0

    def queued_gpu_hours(self) -> float:
        return 0.0

    def running_onprem(self) -> Iterator[tuple[float, int]]:
        return iter(sorted(self.ends))

    def queued(self) -> Iterator[JobRequest]:
        return iter(())

    def queued_by_gpus(self) -> Mapping[int, Sequence[Queued]]:
        return {}

    def remaining_h(self, job: JobRequest) -> float:
        return job.estimate_h

    @property
    def cloud_sites(self) -> tuple[str, ...]:
        return tuple(self.offers)

    def quote(self, site: str, gpus: int, spot: bool) -> Quote | None:
        return cheapest_quote(site, f"aws:{site}", (self.offers[site],), gpus, spot)

    def quotes(self, gpus: int, spot: bool) -> tuple[Quote, ...]:
        qs = [q for s in self.offers if (q := self.quote(s, gpus, spot)) is not None]
        return tuple(sorted(qs, key=lambda q: (q.usd_per_h, q.site)))

    def provisioning_h(self, site: str, spot: bool) -> float:
        return self.prov_h

    def spot_available(self, site: str, nodes: int = 1) -> bool:
        return self.spot_up

    def location(self, site: str) -> str:
        return "onprem:dc1" if site == "dc" else f"aws:{site}"

    def link(self, from_location: str, to_location: str) -> Link:
        return Link(0.0, 0.0)

    def allowed(self, job: JobRequest, mode: Residency) -> Allowed:
        return True, tuple(self.offers)

    @property
    def datasets(self) -> Mapping[str, DatasetInfo]:
        return self.data

    @property
    def storage_usd_per_gb_h(self) -> float:
        return self.storage

    def transfer(self, job: JobRequest, location: str) -> tuple[float, float]:
        return self.transfers.get(location, (0.0, 0.0))

    def read_cost(self, name: str, location: str) -> tuple[float, float, str]:
        if location == self.data[name].location:
            return 0.0, 0.0, location
        return 1.0, 0.0, self.data[name].location

    def may_store(self, name: str, location: str) -> bool:
        return True

    def replica_ready(self, name: str, location: str) -> float | None:
        return None


def _view(**kw: object) -> ClusterView:
    view: ClusterView = _StaticView(**kw)  # type: ignore[arg-type]
    return view


ONE = {"east": PricedOffer("p3", "V100", 1, 3.0, 1.0)}
TWO = {"east": PricedOffer("p3", "V100", 1, 3.0, 1.0), "west": PricedOffer("g", "V100", 1, 2.0,
                                                                            None)}


def _start(s: Strategy, view: ClusterView, *jobs: JobRequest) -> None:
    s.start(view, jobs)


def test_a_strategy_runs_against_a_view_that_is_not_the_simulator() -> None:
    job = JobRequest(0, "x", gpus=4, estimate_h=2.0)
    busy = _view(free=0, ends=[(10.0, 8)], offers=TWO)
    free = _view(free=8, offers=TWO)
    nw = NoWait()
    _start(nw, free, job)
    assert nw.on_ready(job, free) == OnPrem(wait_h=0.0)
    # fair placement: east's spot, 2 h x 1.1 x $4 = $8.80 < west on demand 2 h x $8 = $16
    assert nw.on_timeout(job, busy) == Cloud("east", spot=True)
    literal = NoWait(placement="literal")
    _start(literal, free, job)
    assert literal.on_timeout(job, busy) == Cloud("west")  # the cheapest quote on demand
    cw = ComputeWait(0.5)
    _start(cw, busy, job)
    assert cw.on_ready(job, busy) == OnPrem(wait_h=pytest.approx(0.5 * 2.0 / 8.0 * 8.0))


def test_placer_bursts_when_the_predicted_wait_is_past_its_allowance() -> None:
    # The pool is full until 10 h; x (4 GPUs, 2 h) would wait 10 h, far past its allowance
    # (at most budget x its estimate, 1 h): it bursts at once, to its cheapest option: spot at
    # east, 4 x $1/h x (0.1 h provisioning + 2.2 h) x 4/3 expected launches = $12.27, against
    # on demand at west, 4 x $2/h x 2.1 h = $16.80, and at east $25.20.
    job = JobRequest(0, "x", gpus=4, estimate_h=2.0)
    view = _view(free=0, ends=[(10.0, 8)], offers=TWO)
    s = PlacerStrategy(0.5)
    _start(s, view, job)
    d = s.on_ready(job, view)
    assert d == Cloud("east", spot=True)
    # without spot capacity now, on demand at the cheaper site
    s = PlacerStrategy(0.5)
    gone = _view(free=0, ends=[(10.0, 8)], offers=TWO, spot_up=False)
    _start(s, gone, job)
    assert s.on_ready(job, gone) == Cloud("west")
    # with room on-prem now it queues (and starts at once)
    s = PlacerStrategy(0.5)
    room = _view(free=8, offers=TWO)
    _start(s, room, job)
    assert isinstance(s.on_ready(job, room), OnPrem)


def test_placers_cloud_price_is_the_seams() -> None:
    # One site, $3/h on demand for 1-GPU nodes, provisioning 0.1 h; the inputs take $5 and
    # 0.02 h to stage there. The estimate: staging, then provisioning, then the run, and a bill
    # from the node request: 3 x (0.1 + 2) + 5 = $11.30, finishing at 0.02 + 0.1 + 2 = 2.12 h.
    job = JobRequest(0, "x", gpus=1, estimate_h=2.0, spot_ok=False)
    view = _view(offers=ONE, transfers={"aws:east": (5.0, 0.02)})
    s = PlacerStrategy(0.5)
    _start(s, view, job)
    best = s._best(job, view, at=0.0, deadline=None)
    assert best is not None
    usd, finish, d = best
    assert (usd, finish, d) == (pytest.approx(3.0 * 2.1 + 5.0), pytest.approx(2.12), Cloud("east"))
    q = view.quote("east", 1, False)
    assert q is not None and usd == pytest.approx(q.bill_usd(0.1, 2.0) + 5.0)


def test_copies_travel_with_the_decision() -> None:
    # placer rents reads of "corpus" (in aws:east, $1 a read here) until the rent pays for a
    # copy: the read itself ($1) plus 720 h of storage (100 GB at $0.5 / 72,000 per GB-h:
    # $0.50). The first read pays $1 < $1.50; the second brings the rent to $2 and buys the
    # copy, as a Replicate request carried by the decision, not a call on the view.
    data = {"corpus": DatasetInfo("corpus", "aws:east", 100.0)}
    view = _view(free=8, offers=ONE, data=data, storage=0.5 / 72_000)
    jobs = [JobRequest(i, f"j{i}", gpus=1, estimate_h=1.0, reads=("corpus",)) for i in range(2)]
    s = PlacerStrategy(0.5)
    _start(s, view, *jobs)
    first = s.on_ready(jobs[0], view)
    second = s.on_ready(jobs[1], view)
    assert isinstance(first, OnPrem) and first.copies == ()
    assert isinstance(second, OnPrem)
    assert second.copies == (Replicate("corpus", "onprem:dc1"),)
