"""A small world for executor tests: two on-prem sites, fake backends, a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import placer
from placer.backends import PrefixLayout
from placer.executor import Executor, Hook, RetryPolicy, Run
from placer.journal import Journal
from placer.models import Dataset, Inventory, Pipeline, Plan
from placer.testing import FakeComputeBackend, FakeStorageResolver
from tests.builders import job, pipeline

ROOT = Path(__file__).resolve().parents[2]
EU, US = "eu-dc", "us-dc"
ROOTS = {"onprem:fra-dc1": "mem://fra/placer", "onprem:nyc-dc1": "mem://nyc/placer"}
TOKEN = "rt-5ecr3t-t0ken-do-not-leak-1234"


class FakeClock:
    """Monotonic time that only moves when the executor sleeps."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def inventory() -> Inventory:
    return Inventory.model_validate({"name": "two-dcs", "sites": {
        EU: {"location": "onprem:fra-dc1", "country": "DE",
             "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": "$2.0"}]},
        US: {"location": "onprem:nyc-dc1", "country": "US",
             "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": "$1.0"}]},
    }})


def three_jobs() -> Pipeline:
    """``a`` reads EU personal data (EEA only: eu-dc); ``b`` reads public data (cheapest:
    us-dc); ``c`` reads ``b``'s output and runs after ``a``."""
    return pipeline(
        job("a", inputs=["eu_notes"], outputs={"features": 1}),
        job("b", inputs=["web"], outputs={"out": 2}),
        job("c", inputs=["b.out"], after=["a"], outputs={"model": 1}),
        datasets=(
            Dataset(name="eu_notes", uri="mem://fra/data/notes", size=5,
                    location="onprem:fra-dc1", tags={"residency": "EU"}),
            Dataset(name="web", uri="mem://nyc/data/web", size=5,
                    location="onprem:nyc-dc1", tags={"residency": "none"}),
        ),
    )


def policies() -> placer.PolicySet:
    return placer.load_policies(ROOT / "policies" / "locations.yaml",
                                ROOT / "policies" / "eea-residency.yaml")


@dataclass
class World:
    tmp: Path
    pipeline: Pipeline = field(default_factory=three_jobs)
    outcomes: dict[str, list[str]] = field(default_factory=dict)
    clock: FakeClock = field(default_factory=FakeClock)
    fakes: dict[str, FakeComputeBackend] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.inventory = inventory()
        self.policies = policies()
        self.fakes = {s: FakeComputeBackend(s, outcomes=self.outcomes) for s in (EU, US)}
        self.journal = Journal(self.tmp / "journal.db")

    def plan(self) -> Plan:
        p = placer.plan(self.pipeline, self.inventory, self.policies)
        assert p.status == "placed", p.reasons
        return p

    def executor(self, hook: Hook | None = None, **kw: Any) -> Executor:
        kw.setdefault("retry", RetryPolicy(max_attempts=3, base_s=10, seed=7))
        return Executor(self.journal, self.fakes, layout=PrefixLayout(ROOTS),
                        storage=FakeStorageResolver.from_roots(ROOTS), clock=self.clock,
                        sleep=self.clock.sleep, poll_interval_s=1.0, hook=hook, **kw)

    def start(self, hook: Hook | None = None, **kw: Any) -> Run:
        return self.executor(hook, **kw).start(self.plan(), pipeline=self.pipeline,
                                               inventory=self.inventory,
                                               policies=self.policies)
