"""Which sites each simulated job may use: placer's policy evaluation, over the workload's DAGs.

The same :func:`placer.policy.evaluate` a real plan uses, called once per workload on one
:class:`~placer.models.Pipeline` that holds, as disjoint parts:

* ``"policy"`` — one copy of every distinct *unit* of the workload (a DAG, or an independent
  job), as a real DAG: each job reads its datasets and its dependencies' outputs, so the policy
  engine's own lineage carries a dataset's tags to every job downstream of it, as in a plan.
  A replay has tens of thousands of jobs but few distinct units (the same shape reading the
  same datasets), so each is evaluated once and shared;
* ``"naive"`` — one job per distinct set of datasets read directly: the region mask a
  baseline scheduler gets when someone filters regions by the tags of a job's inputs and
  forgets derived data;
* where a *copy* of a dataset may be kept — one job per dataset reading only it
  (:meth:`Eligibility.stores`): data goes only where its processing may go.

Simulated jobs carry no labels and are matched by tags only (their names are not shown to the
policies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from placer.errors import SimulationError
from placer.models import Dataset, Job, Pipeline, ResolvedSite
from placer.online import Allowed, Residency
from placer.policy import PolicySet, evaluate
from placer.sim.jobs import Workload


def lineage_datasets(workload: Workload) -> list[frozenset[str]]:
    """Per job, the datasets it depends on: its reads plus its dependencies', transitively."""
    out: list[frozenset[str]] = []
    for job in workload.jobs:
        acc = set(job.reads)
        for d in job.deps:
            acc |= out[d]
        out.append(frozenset(acc))
    return out


def units(workload: Workload) -> list[list[int]]:
    """The workload's units: jobs connected by dependencies (a DAG, or one independent job),
    each as its job ids in order, in the order of their first job."""
    parent = list(range(len(workload.jobs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for job in workload.jobs:
        for d in job.deps:
            a, b = root(job.id), root(d)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for job in workload.jobs:
        groups.setdefault(root(job.id), []).append(job.id)
    return list(groups.values())


Shape = tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]
"""A unit as the policies see it: per job (in id order), its datasets and its dependencies
(as positions within the unit)."""


def _shape(workload: Workload, ids: list[int]) -> Shape:
    pos = {j: k for k, j in enumerate(ids)}
    jobs = workload.jobs
    return tuple(
        (tuple(sorted(jobs[j].reads)), tuple(pos[d] for d in jobs[j].deps)) for j in ids
    )


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
        sites of the simulation, resolved against the catalog), with one call of
        :func:`placer.policy.evaluate` (see the module docstring).

        Raises:
            SimulationError: if a job would be held (a dataset without a location or without a
                tag the policies require): a scenario must classify all of its data.
        """
        names = tuple(s.name for s in sites)
        if onprem_site not in names:
            raise SimulationError(f"the on-prem site {onprem_site!r} is not among the sites")
        cloud_sites = tuple(s.name for s in sites if s.kind == "cloud")
        kinds: Mapping[str, str] = {s.name: s.kind for s in sites}

        parts = units(workload)
        shapes: dict[Shape, int] = {}
        unit_shape = [shapes.setdefault(_shape(workload, ids), len(shapes)) for ids in parts]
        read_sets: dict[frozenset[str], int] = {}
        for job in workload.jobs:
            read_sets.setdefault(frozenset(job.reads), len(read_sets))
        for name in workload.datasets:
            read_sets.setdefault(frozenset({name}), len(read_sets))

        jobs: list[Job] = []
        for shape, k in shapes.items():
            for i, (reads, deps) in enumerate(shape):
                inputs = reads + tuple(f"u{k}-j{d}.out" for d in deps)
                jobs.append(_job(f"u{k}-j{i}", inputs))
        for reads_set, k in read_sets.items():
            jobs.append(_job(f"r{k}", tuple(sorted(reads_set))))
        ds = [workload.datasets[n] for n in sorted(workload.datasets)]
        pipeline = Pipeline(
            name="sim",
            datasets=tuple(
                Dataset(name=d.name, size=d.gb, location=d.location, tags=dict(d.tags))
                for d in ds
            ),
            jobs=tuple(jobs),
        )
        elig = evaluate(pipeline, sites, policies)

        memo: dict[str, Allowed] = {}

        def allowed(job: str, datasets: frozenset[str]) -> Allowed:
            got = memo.get(job)
            if got is not None:
                return got
            e = elig[job]
            if e.is_held:
                raise SimulationError(
                    f"jobs reading {', '.join(sorted(datasets))} would be held by the policies "
                    f"({', '.join(e.held)}): give every dataset of the scenario a location and "
                    "the tags the policies require"
                )
            got = memo[job] = (
                onprem_site in e.allowed,
                tuple(x for x in e.allowed if kinds[x] == "cloud"),
            )
            return got

        lineage = lineage_datasets(workload)
        policy: list[Allowed] = [(False, ())] * len(workload.jobs)
        for ids, k in zip(parts, unit_shape, strict=True):
            for i, j in enumerate(ids):
                policy[j] = allowed(f"u{k}-j{i}", lineage[j])
        by_reads = {rs: allowed(f"r{k}", rs) for rs, k in read_sets.items()}
        naive = tuple(by_reads[frozenset(j.reads)] for j in workload.jobs)
        stores = {name: by_reads[frozenset({name})] for name in workload.datasets}
        return cls(onprem_site, cloud_sites, tuple(policy), naive, stores)


def _job(name: str, inputs: tuple[str, ...]) -> Job:
    return Job(
        name=name,
        command="simulated",
        gpu_types={"any": 1.0},
        inputs=inputs,
        outputs={"out": 0.0},
    )
