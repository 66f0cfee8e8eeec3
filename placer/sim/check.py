"""The independent residency checker: counts violations from the scenario's ground truth.

It deliberately shares no code with the policy engine or with :mod:`placer.sim.residency`:
lineage is recomputed here from the workload, and the rule is the scenario's plain statement of
truth, "data with residency value V may only be processed where the location belongs to one of
these jurisdictions". Every run counts, including spot runs that were preempted and cloud runs
stopped early: the data went there either way. So does every replica of a dataset: a copy is
where the data is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from placer.sim.engine import SimResult


@dataclass(frozen=True)
class Violation:
    job: str
    """The job that ran where it may not, or ``replica`` for a copy kept where it may not."""
    site: str
    location: str
    value: str
    """The residency value broken, e.g. ``EU``."""
    dataset: str
    """A dataset in the job's lineage that carries it."""


def residency_violations(
    result: SimResult,
    truth: Mapping[str, frozenset[str]],
    jurisdictions: Mapping[str, frozenset[str]],
    *,
    tag: str = "residency",
) -> list[Violation]:
    """Every run of every job, and every replica, at a location outside what its data's
    residency allows.

    Args:
        result: a finished simulation.
        truth: residency value -> jurisdictions where such data may be processed, e.g.
            ``{"EU": frozenset({"EEA"})}``. Values not listed are unrestricted.
        jurisdictions: location key -> the jurisdictions it lies in (country, EU, EEA, ...).
        tag: the dataset tag that states residency.
    """
    workload = result.workload
    origin: list[dict[str, str]] = []  # per job: restricted value -> a dataset carrying it
    for job in workload.jobs:
        values: dict[str, str] = {}
        for d in job.deps:
            for v, ds in origin[d].items():
                values.setdefault(v, ds)
        for name in job.reads:
            value = workload.datasets[name].tags.get(tag)
            if value is not None and value in truth:
                values.setdefault(value, name)
        origin.append(values)
    out: list[Violation] = []
    for rec in result.records:
        values = origin[rec.job.id]
        if not values:
            continue
        for att in rec.attempts:
            loc = result.site_locations[att.site]
            where = jurisdictions.get(loc, frozenset())
            for v, ds in sorted(values.items()):
                if not (truth[v] & where):
                    out.append(Violation(rec.job.name, att.site, loc, v, ds))
    for rep in result.replicas:
        value = workload.datasets[rep.dataset].tags.get(tag)
        where = jurisdictions.get(rep.location, frozenset())
        if value is not None and value in truth and not (truth[value] & where):
            out.append(Violation("replica", rep.location, rep.location, value, rep.dataset))
    return out
