"""Several pipelines planned together against shared on-prem capacity (a queue).

Planned one at a time, two pipelines each believe the on-prem pool is theirs; planned together,
the optimizer sees that they compete and decides which jobs wait for on-prem and which burst to
a cloud. :func:`combine` makes one pipeline of several: every job and dataset is renamed
``<pipeline>__<name>`` (so two teams' ``train`` stay two jobs, and a dataset name never means
two things across pipelines), every input is rewritten from the pipeline's own resolution of it
(:meth:`~placer.models.Pipeline.input_ref`, never by re-parsing the string), and nothing else
changes: tags, labels, sizes and policies apply exactly as to each pipeline alone.

:func:`queue_lines` reads a plan of the combined pipeline back per job: on-prem and started
when its inputs were ready, waiting for on-prem (and for how long at least), or burst to a
cloud, and why (the on-prem site the policies allow and what moving there would change).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from placer.errors import ConfigError
from placer.models import Dataset, Job, Pipeline, Plan

SEP = "__"
"""Between a pipeline's name and a job's or dataset's in a combined pipeline."""


def member_name(pipeline: str, name: str) -> str:
    """The name a job or dataset of ``pipeline`` has in the combined pipeline.

    >>> member_name("nlp", "train")
    'nlp__train'
    """
    return f"{pipeline}{SEP}{name}"


def combine(pipelines: Sequence[Pipeline], name: str = "queue") -> Pipeline:
    """One pipeline made of several, names prefixed by each pipeline's name.

    Raises:
        ConfigError: two pipelines share a name, or a prefixed name would collide (a name
            with ``__`` in it that meets another pipeline's), naming both.
    """
    if not pipelines:
        raise ConfigError("no pipeline to plan")
    seen: dict[str, int] = {}
    for i, p in enumerate(pipelines):
        if p.name.casefold() in seen:
            first = seen[p.name.casefold()]
            spelt = repr(p.name) if pipelines[first].name == p.name else \
                f"{pipelines[first].name!r} and {p.name!r}"
            raise ConfigError(
                f"pipelines {first + 1} and {i + 1} are both named {spelt}; give each pipeline "
                "of a queue its own name (jobs are planned as <pipeline>__<job>)")
        seen[p.name.casefold()] = i
    jobs: list[Job] = []
    datasets: list[Dataset] = []
    for p in pipelines:
        for d in p.datasets:
            datasets.append(d.model_copy(update={"name": member_name(p.name, d.name)}))
        for j in p.jobs:
            inputs = []
            for ref in p.inputs_of(j):
                if ref.dataset is not None:
                    inputs.append(member_name(p.name, ref.dataset))
                else:
                    assert ref.job is not None and ref.output is not None
                    inputs.append(f"{member_name(p.name, ref.job)}.{ref.output}")
            jobs.append(j.model_copy(update={
                "name": member_name(p.name, j.name), "inputs": tuple(inputs),
                "after": tuple(member_name(p.name, a) for a in j.after)}))
    names = [j.name for j in jobs] + [d.name for d in datasets]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ConfigError(f"in the queue, {', '.join(clash)} would name two things; rename the "
                          f"job or dataset (names with {SEP!r} can meet another pipeline's)")
    # Validated again as a whole: the combined pipeline obeys every rule one pipeline does.
    return Pipeline.model_validate({"name": name, "jobs": [j.model_dump() for j in jobs],
                                    "datasets": [d.model_dump() for d in datasets]})


@dataclass(frozen=True)
class QueueLine:
    """One job of a queue: where it runs, whether it waited or burst, and why."""

    pipeline: str
    job: str
    site: str
    verdict: str  # "on-prem", "waits", "burst"
    why: str


def _onprem(location: str) -> bool:
    return location.startswith("onprem:")


def queue_lines(plan: Plan, combined: Pipeline, pipelines: Sequence[Pipeline],
                onprem_sites: Collection[str]) -> list[QueueLine]:
    """Per job of a placed queue plan: ran on-prem when ready, waited for on-prem, or burst.

    A job's ready time is read from the plan: the latest end of the jobs it depends on plus
    its longest inbound transfer. That is never later than when its inputs truly arrive, so a
    reported wait is a lower bound, never invented. ``onprem_sites``: the inventory's on-prem
    site names (a burst is judged against them).
    """
    preds: dict[str, list[str]] = {j.name: [] for j in combined.jobs}
    for consumer, src, _ in combined.job_edges():
        preds[consumer].append(src)
    for j in combined.jobs:
        preds[j.name] += list(j.after)
    out: list[QueueLine] = []
    for p in pipelines:
        for j in p.jobs:
            name = member_name(p.name, j.name)
            at = plan.jobs.get(name)
            if at is None:
                continue
            ready = max((plan.jobs[s].end_h for s in preds[name] if s in plan.jobs),
                        default=0.0) + at.transfer_h
            if _onprem(at.location):
                wait = at.start_h - ready
                if wait > 1e-6:
                    out.append(QueueLine(p.name, j.name, at.site, "waits",
                                         f"waits at least {wait:.2f}h for on-prem GPUs "
                                         f"(starts at {at.start_h:.2f}h)"))
                else:
                    out.append(QueueLine(p.name, j.name, at.site, "on-prem",
                                         "runs on-prem as soon as its inputs are ready"))
                continue
            out.append(QueueLine(p.name, j.name, at.site, "burst",
                                 _why_burst(plan, name, set(onprem_sites))))
    return out


def _why_burst(plan: Plan, job: str, onprem: set[str]) -> str:
    verdicts = plan.verdicts.get(job, {})
    movable = [s for s, v in verdicts.items() if s in onprem and v.best_option is not None]
    if not movable:
        rejected = sorted(s for s, v in verdicts.items() if s in onprem and not v.eligible)
        if rejected:
            return (f"the policies do not allow it on-prem ({', '.join(rejected)}); it runs "
                    "in the cloud")
        return "no on-prem site offers its GPUs; it runs in the cloud"
    best = min(movable, key=lambda s: (verdicts[s].delta_cost_usd or 0.0, s))
    v = verdicts[best]
    d_usd = v.delta_cost_usd or 0.0
    d_h = v.delta_makespan_h
    if d_usd >= 0:
        return f"cheaper in the cloud: on {best} it would cost ${d_usd:,.2f} more"
    saving = f"on {best} it would cost ${-d_usd:,.2f} less"
    if (plan.deadline_h is not None and d_h is not None
            and plan.makespan_h + d_h > plan.deadline_h + 1e-6):
        return (f"{saving}, but the queue would finish at {plan.makespan_h + d_h:.2f}h, after "
                f"the deadline {plan.deadline_h:g}h")
    if plan.objective == "time":
        return f"{saving}, but the plan minimises the makespan first"
    if not plan.optimal:
        return f"{saving} (the plan is not proven optimal, so this may be the solver's gap)"
    at = plan.jobs[job]
    busy = sorted((o.start_h, name) for name, o in plan.jobs.items()
                  if o.site == best and o.start_h < at.end_h and o.end_h > at.start_h)
    during = ", ".join(f"{name} ({plan.jobs[name].start_h:.2f}h-{plan.jobs[name].end_h:.2f}h)"
                       for _, name in busy)
    return (f"{saving} if its GPUs were free; the plan is optimal with capacity, and "
            + (f"{best} is busy then with {during}" if busy else
               "a preference of the policies or a later job's timing outweighs the saving"))
