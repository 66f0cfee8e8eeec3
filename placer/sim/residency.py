"""Which sites each simulated job may use: placer's policy evaluation, applied per job.

A replay has tens of thousands of jobs but few distinct inputs, so eligibility is computed once
per distinct set of datasets and shared. It is the same :func:`placer.policy.evaluate` a real
plan uses, on a one-job pipeline reading the datasets the job depends on:

* ``"policy"`` — every dataset in the job's lineage (read directly, or by any job whose output
  it consumes, transitively), which is what the policy engine's own lineage gives for the real
  DAG (simulated jobs carry no labels, so only tags can match);
* ``"naive"`` — only the datasets the job reads directly: the region mask a baseline scheduler
  gets when someone filters regions by the tags of a job's inputs and forgets derived data.

Where a *copy* of a dataset may be kept follows the same rule as where a job reading it may run
(:meth:`Eligibility.stores`): data goes only where its processing may go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from placer.errors import SimulationError
from placer.models import Dataset, Job, Pipeline, ResolvedSite
from placer.policy import PolicySet, evaluate
from placer.sim.jobs import Workload
from placer.sim.strategy import Residency

Allowed = tuple[bool, tuple[str, ...]]


def lineage_datasets(workload: Workload) -> list[frozenset[str]]:
    """Per job, the datasets it depends on: its reads plus its dependencies', transitively."""
    out: list[frozenset[str]] = []
    for job in workload.jobs:
        acc = set(job.reads)
        for d in job.deps:
            acc |= out[d]
        out.append(frozenset(acc))
    return out


@dataclass(frozen=True)
class Eligibility:
    """Per job and residency filter, ``(on-prem allowed, allowed cloud sites)``."""

    onprem_site: str
    cloud_sites: tuple[str, ...]
    policy: tuple[Allowed, ...]
    naive: tuple[Allowed, ...]
    datasets: Mapping[str, Allowed] = field(default_factory=dict)
    """Per dataset, where a job reading only it may run; a dataset not here is unrestricted."""

    def allowed(self, job: int, mode: Residency) -> Allowed:
        if mode == "policy":
            return self.policy[job]
        if mode == "naive":
            return self.naive[job]
        return True, self.cloud_sites

    def stores(self, dataset: str) -> Allowed:
        """``(on-prem allowed, cloud sites)`` where a copy of ``dataset`` may be kept."""
        return self.datasets.get(dataset, (True, self.cloud_sites))

    @classmethod
    def unrestricted(
        cls, workload: Workload, onprem_site: str, cloud_sites: tuple[str, ...]
    ) -> Eligibility:
        everything: Allowed = (True, cloud_sites)
        n = len(workload.jobs)
        return cls(onprem_site, cloud_sites, (everything,) * n, (everything,) * n)

    @classmethod
    def from_policies(
        cls,
        workload: Workload,
        sites: Sequence[ResolvedSite],
        onprem_site: str,
        policies: PolicySet,
    ) -> Eligibility:
        """Evaluate ``policies`` for every job on ``sites`` (the on-prem site and the cloud
        sites of the simulation, resolved against the catalog).

        Raises:
            SimulationError: if a job would be held (a dataset without a location or without a
                tag the policies require): a scenario must classify all of its data.
        """
        names = tuple(s.name for s in sites)
        if onprem_site not in names:
            raise SimulationError(f"the on-prem site {onprem_site!r} is not among the sites")
        cloud_sites = tuple(s.name for s in sites if s.kind == "cloud")
        cache: dict[frozenset[str], Allowed] = {}

        def lookup(datasets: frozenset[str]) -> Allowed:
            if datasets not in cache:
                cache[datasets] = _evaluate(workload, datasets, sites, onprem_site, policies)
            return cache[datasets]

        lineage = lineage_datasets(workload)
        policy = tuple(lookup(ds) for ds in lineage)
        naive = tuple(lookup(frozenset(j.reads)) for j in workload.jobs)
        stores = {name: lookup(frozenset({name})) for name in workload.datasets}
        return cls(onprem_site, cloud_sites, policy, naive, stores)


def _evaluate(
    workload: Workload,
    datasets: frozenset[str],
    sites: Sequence[ResolvedSite],
    onprem_site: str,
    policies: PolicySet,
) -> Allowed:
    ds = [workload.datasets[n] for n in sorted(datasets)]
    pipeline = Pipeline(
        name="sim",
        datasets=tuple(
            Dataset(name=d.name, size=d.gb, location=d.location, tags=dict(d.tags)) for d in ds
        ),
        jobs=(
            Job(
                name="job",
                command="simulated",
                gpu_types={"any": 1.0},
                inputs=tuple(d.name for d in ds),
            ),
        ),
    )
    elig = evaluate(pipeline, sites, policies)["job"]
    if elig.is_held:
        raise SimulationError(
            f"jobs reading {', '.join(sorted(datasets))} would be held by the policies "
            f"({', '.join(elig.held)}): give every dataset of the scenario a location and the "
            "tags the policies require"
        )
    allowed = set(elig.allowed)
    kinds: Mapping[str, str] = {s.name: s.kind for s in sites}
    return onprem_site in allowed, tuple(s for s in elig.allowed if kinds[s] == "cloud")
