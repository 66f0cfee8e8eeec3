"""Datasets, jobs and the pipeline (a DAG of jobs) a user submits.

The DAG is checked as it is built: unknown references, duplicate names and cycles are errors
that name the job, so a user never gets a plan for a pipeline that cannot run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import networkx as nx
from pydantic import Field, field_validator, model_validator

from placer.errors import ErrorDetail, PipelineError
from placer.models._base import Hours, LocationKey, Model, Name, SizeGB, keyed_to_list


class Dataset(Model):
    """Stored data a job reads. A dataset with no known location is held, never placed."""

    name: Name
    uri: str | None = Field(default=None, description="s3://bucket/prefix, gs://…, file://…")
    size: SizeGB = Field(default=0.0, description="GB read by each job that uses it")
    location: LocationKey | None = Field(
        default=None, description="where the bytes live; unknown = the dataset is held"
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="residency, classification, … matched by policies"
    )


class Resources(Model):
    gpus: int = Field(default=1, ge=1, description="GPUs the job needs")
    cpus: float | None = Field(default=None, gt=0)
    memory: SizeGB | None = None


class Job(Model):
    """One unit of work: a command in a pinned environment, with the GPUs it can use."""

    name: Name
    command: str = Field(min_length=1, description="entrypoint, e.g. python train.py")
    image: str | None = Field(default=None, description="container image, ideally by digest")
    runtime_env: dict[str, Any] | None = Field(
        default=None, description="Ray runtime_env (pinned pip packages, env vars)"
    )
    resources: Resources = Field(default_factory=Resources)
    gpu_types: dict[str, Hours] = Field(
        min_length=1, description="acceptable GPU type → run time on that type, e.g. A100-80GB: 6h"
    )
    inputs: tuple[str, ...] = Field(
        default=(), description="dataset names, or job.output for another job's output"
    )
    outputs: dict[str, SizeGB] = Field(default_factory=dict, description="output name → size")
    after: tuple[str, ...] = Field(default=(), description="jobs that must finish first")
    labels: dict[str, str] = Field(default_factory=dict)
    spot: bool = Field(default=False, description="the job tolerates preemption (checkpoints)")

    @field_validator("gpu_types")
    @classmethod
    def _positive_runtimes(cls, v: dict[str, float]) -> dict[str, float]:
        for gpu, hours in v.items():
            if hours <= 0:
                raise ValueError(f"run time on {gpu} must be positive")
        return v


class Pipeline(Model):
    """A DAG of jobs and the datasets they read. Edges come from inputs and ``after``."""

    name: Name = "pipeline"
    datasets: tuple[Dataset, ...] = ()
    jobs: tuple[Job, ...] = Field(min_length=1)

    @field_validator("datasets", mode="before")
    @classmethod
    def _datasets_by_name(cls, v: Any) -> Any:
        return keyed_to_list(v, "dataset")

    @field_validator("jobs", mode="before")
    @classmethod
    def _jobs_by_name(cls, v: Any) -> Any:
        return keyed_to_list(v, "job")

    @model_validator(mode="after")
    def _check_dag(self) -> Pipeline:
        problems = _dag_problems(self)
        if problems:
            raise PipelineError(problems)
        return self

    # -- graph views (derived, never stored) ---------------------------------------------------
    def job(self, name: str) -> Job:
        for j in self.jobs:
            if j.name == name:
                return j
        raise KeyError(name)

    def dataset(self, name: str) -> Dataset:
        for d in self.datasets:
            if d.name == name:
                return d
        raise KeyError(name)

    def graph(self) -> nx.DiGraph:
        """Job DAG; edge attribute ``gb`` is the data that moves (0 for ``after`` edges)."""
        g = nx.DiGraph()
        for j in self.jobs:
            g.add_node(j.name)
        for consumer, src, gb in self.job_edges():
            if g.has_edge(src, consumer):
                g[src][consumer]["gb"] += gb
            else:
                g.add_edge(src, consumer, gb=gb)
        return g

    def job_edges(self) -> Iterator[tuple[str, str, float]]:
        """(consumer, producer, GB) for every job→job dependency."""
        sizes = {j.name: j.outputs for j in self.jobs}
        for j in self.jobs:
            for ref in j.inputs:
                if "." in ref and ref.split(".", 1)[0] in sizes:
                    src, out = ref.split(".", 1)
                    yield j.name, src, sizes[src][out]
            for src in j.after:
                yield j.name, src, 0.0

    def dataset_reads(self, job: Job) -> Iterator[Dataset]:
        names = {d.name: d for d in self.datasets}
        for ref in job.inputs:
            if ref in names:
                yield names[ref]

    def topological_order(self) -> list[str]:
        """Jobs in dependency order, ties broken by declaration order (deterministic)."""
        order = {j.name: i for i, j in enumerate(self.jobs)}
        return list(nx.lexicographical_topological_sort(self.graph(), key=order.__getitem__))


def _dag_problems(p: Pipeline) -> list[ErrorDetail]:
    out: list[ErrorDetail] = []
    jobs = {j.name: i for i, j in enumerate(p.jobs)}
    datasets: dict[str, int] = {}
    for i, d in enumerate(p.datasets):
        if d.name in datasets:
            out.append(ErrorDetail(f"duplicate dataset name {d.name!r}", loc=("datasets", i)))
        datasets[d.name] = i
    seen: dict[str, int] = {}
    for i, j in enumerate(p.jobs):
        if j.name in seen:
            out.append(ErrorDetail(f"duplicate job name {j.name!r}", loc=("jobs", i, "name")))
        seen[j.name] = i
        if j.name in datasets:
            out.append(
                ErrorDetail(f"job {j.name!r} has the name of a dataset", loc=("jobs", i, "name"))
            )
    for i, j in enumerate(p.jobs):
        for k, ref in enumerate(j.inputs):
            if ref in datasets:
                continue
            src, _, out_name = ref.partition(".")
            if src in jobs and out_name:
                if out_name not in p.jobs[jobs[src]].outputs:
                    have = ", ".join(sorted(p.jobs[jobs[src]].outputs)) or "none"
                    out.append(
                        ErrorDetail(
                            f"job {j.name!r} reads {ref!r} but job {src!r} has no output "
                            f"{out_name!r} (its outputs: {have})",
                            loc=("jobs", i, "inputs", k),
                        )
                    )
                continue
            hint = " (to read a job's output, write job.output)" if ref in jobs else ""
            out.append(
                ErrorDetail(
                    f"job {j.name!r} reads {ref!r}, which is neither a dataset nor a job output"
                    + hint,
                    loc=("jobs", i, "inputs", k),
                )
            )
        for k, src in enumerate(j.after):
            if src not in jobs:
                out.append(
                    ErrorDetail(
                        f"job {j.name!r} runs after unknown job {src!r}",
                        loc=("jobs", i, "after", k),
                    )
                )
    if out:
        return out
    g = nx.DiGraph()
    g.add_nodes_from(jobs)
    for j in p.jobs:
        for ref in j.inputs:
            if ref not in datasets:
                g.add_edge(ref.split(".", 1)[0], j.name)
        for src in j.after:
            g.add_edge(src, j.name)
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return out
    path = " → ".join([u for u, _ in cycle] + [cycle[0][0]])
    first = cycle[0][1]
    out.append(ErrorDetail(f"jobs form a cycle: {path}", loc=("jobs", jobs[first])))
    return out
