"""Datasets, jobs and the pipeline (a DAG of jobs) a user submits.

The DAG is checked as it is built: unknown references, duplicate names and cycles are errors
that name the job, so a user never gets a plan for a pipeline that cannot run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from placer.errors import ErrorDetail, PipelineError
from placer.models._base import (
    MAX_CPUS,
    MAX_GPUS,
    Hours,
    LocationKey,
    Model,
    Name,
    SizeGB,
    keyed_to_list,
)
from placer.tags import clean_tags

if TYPE_CHECKING:
    import networkx as nx

Loc = tuple[str | int, ...]


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
    replicas: tuple[LocationKey, ...] = Field(
        default=(),
        description="other locations holding a full copy (replication, a dual- or multi-region "
        "bucket): the data is as resident as its most distant copy",
    )
    storage_tags: dict[str, str] = Field(
        default_factory=dict,
        description="tags or labels the store reports (what tagging rules read); set when the "
        "dataset is resolved from its store",
    )
    provenance: dict[str, str] = Field(
        default_factory=dict, description="fact → how it was obtained (API call, time, file)"
    )

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, v: dict[str, str]) -> dict[str, str]:
        return clean_tags(v)

    @field_validator("storage_tags")
    @classmethod
    def _clean_storage_tags(cls, v: dict[str, str]) -> dict[str, str]:
        return clean_tags(v, "storage tag")

    @property
    def copies(self) -> tuple[str, ...]:
        """Every location holding the data: its location, then its replicas (no repeats)."""
        if self.location is None:
            return ()
        return tuple(dict.fromkeys((self.location, *self.replicas)))


class Resources(Model):
    """What one job needs, bounded by what a real job can use (``gpus: 1e30`` is a typo)."""

    gpus: int = Field(default=1, ge=1, le=MAX_GPUS, description="GPUs the job needs")
    cpus: float | None = Field(default=None, gt=0, le=MAX_CPUS, allow_inf_nan=False)
    memory: SizeGB | None = None

    @field_validator("gpus", mode="before")
    @classmethod
    def _huge_float_gpus(cls, v: Any) -> Any:
        """pydantic calls ``1.0e+30`` "too large to parse as an integer"; say what is allowed."""
        if isinstance(v, float) and (v != v or abs(v) > MAX_GPUS):
            raise ValueError(f"gpus must be a whole number from 1 to {MAX_GPUS:,}, got {v!r}")
        return v


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
    outputs: dict[Name, SizeGB] = Field(
        default_factory=dict, description="output name → size; read by others as job.output"
    )
    after: tuple[str, ...] = Field(default=(), description="jobs that must finish first")
    labels: dict[str, str] = Field(default_factory=dict)
    spot: bool = Field(default=False, description="the job tolerates preemption (checkpoints)")
    removes_tags: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="tags this job removes from what it passes on (a de-identifier: "
        "classification: [pii]); counts only where a policy approves the job as a transform",
    )

    @field_validator("removes_tags", mode="before")
    @classmethod
    def _removes_as_lists(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: (x,) if isinstance(x, str) else x for k, x in v.items()}
        return v

    @field_validator("labels")
    @classmethod
    def _clean_labels(cls, v: dict[str, str]) -> dict[str, str]:
        return clean_tags(v, "label")

    @field_validator("gpu_types")
    @classmethod
    def _positive_runtimes(cls, v: dict[str, float]) -> dict[str, float]:
        for gpu, hours in v.items():
            if hours <= 0:
                raise ValueError(f"run time on {gpu} must be positive")
        return v


@dataclass(frozen=True)
class InputRef:
    """What one entry of a job's ``inputs`` names, resolved once for every reader.

    Lineage, the DAG, pricing and the executor's staging all read this, never the raw string,
    so one name means one thing everywhere: exactly one of ``dataset`` or (``job``,
    ``output``) is set.
    """

    ref: str
    dataset: str | None = None
    job: str | None = None
    output: str | None = None


class Pipeline(Model):
    """A DAG of jobs and the datasets they read. Edges come from inputs and ``after``.

    Names are checked so that no reference can mean two things (see ``docs/policies.md``,
    "one name, one thing"): a dataset may not be named like a job's output (``prep.features``
    beside job ``prep``), nor start with a job's name and a dot; no two jobs, datasets or
    outputs of one job may differ only in case (outputs are stored under these names, and some
    stores ignore case); a job may not share a name with a dataset or with another job's
    output reference.
    """

    name: Name = "pipeline"
    datasets: tuple[Dataset, ...] = ()
    jobs: tuple[Job, ...] = Field(min_length=1)

    _refs: dict[str, InputRef] = PrivateAttr(default_factory=dict)
    _jobs: dict[str, Job] = PrivateAttr(default_factory=dict)
    _datasets: dict[str, Dataset] = PrivateAttr(default_factory=dict)
    _order: list[str] | None = PrivateAttr(default=None)

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
        problems, refs = _dag_problems(self)
        if problems:
            raise PipelineError(problems)
        self._refs = refs
        self._jobs = {j.name: j for j in self.jobs}
        self._datasets = {d.name: d for d in self.datasets}
        return self

    def __eq__(self, other: object) -> bool:
        # Equal fields, equal pipelines: the private attributes are derived from the fields
        # (and one is a cache filled on first use), so they must not take part.
        if not isinstance(other, Pipeline):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = Model.__hash__

    # -- graph views (derived, never stored) ---------------------------------------------------
    def job(self, name: str) -> Job:
        return self._jobs[name]

    def dataset(self, name: str) -> Dataset:
        return self._datasets[name]

    def input_ref(self, ref: str) -> InputRef:
        """What ``ref`` (an entry of some job's ``inputs``) names."""
        return self._refs[ref]

    def inputs_of(self, job: Job | str) -> tuple[InputRef, ...]:
        """The resolved inputs of a job, in the order it lists them."""
        j = self._jobs[job] if isinstance(job, str) else job
        refs = self._refs  # one private-attribute lookup, not one per input (hot in lineage)
        return tuple(refs[r] for r in j.inputs)

    def graph(self) -> nx.DiGraph:
        """Job DAG; edge attribute ``gb`` is the data that moves (0 for ``after`` edges)."""
        import networkx as nx  # deferred: `import placer` stays light (issue 14)

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
        for j in self.jobs:
            for r in self.inputs_of(j):
                if r.job is not None and r.output is not None:
                    yield j.name, r.job, self._jobs[r.job].outputs[r.output]
            for src in j.after:
                yield j.name, src, 0.0

    def dataset_reads(self, job: Job) -> Iterator[Dataset]:
        for r in self.inputs_of(job):
            if r.dataset is not None:
                yield self._datasets[r.dataset]

    def topological_order(self) -> list[str]:
        """Jobs in dependency order, ties broken by declaration order (deterministic).

        Computed once (a pipeline never changes); each call returns a fresh list.
        """
        if self._order is None:
            import networkx as nx

            order = {j.name: i for i, j in enumerate(self.jobs)}
            self._order = list(
                nx.lexicographical_topological_sort(self.graph(), key=order.__getitem__))
        return list(self._order)


def _case_clashes(names: Iterable[tuple[str, Loc]], what: str) -> list[ErrorDetail]:
    """Names that differ only in case: one name to a case-insensitive store."""
    seen: dict[str, str] = {}
    out = []
    for name, loc in names:
        key = name.casefold()
        if key in seen and seen[key] != name:
            out.append(ErrorDetail(
                f"{what} {name!r} differs from {what} {seen[key]!r} only in case; outputs are "
                "stored under these names and some stores ignore case, so one would overwrite "
                "the other: rename one",
                loc=loc,
            ))
        seen.setdefault(key, name)
    return out


def _name_problems(p: Pipeline) -> list[ErrorDetail]:
    """Names that could mean two things: refused whether or not anything reads them."""
    out: list[ErrorDetail] = []
    folded_jobs = {j.name.casefold(): j.name for j in p.jobs}
    out += _case_clashes(((d.name, ("datasets", i)) for i, d in enumerate(p.datasets)),
                         "dataset")
    out += _case_clashes(((j.name, ("jobs", i, "name")) for i, j in enumerate(p.jobs)), "job")
    for i, j in enumerate(p.jobs):
        out += _case_clashes(((o, ("jobs", i, "outputs", o)) for o in j.outputs),
                             f"job {j.name!r}'s output")
    # Every "job.output" string, and who it belongs to.
    output_refs: dict[str, tuple[str, str]] = {}
    for i, j in enumerate(p.jobs):
        for o in j.outputs:
            ref = f"{j.name}.{o}".casefold()
            if ref in output_refs and output_refs[ref][0] != j.name:
                other = output_refs[ref]
                out.append(ErrorDetail(
                    f"job {j.name!r}'s output {o!r} and job {other[0]!r}'s output {other[1]!r} "
                    f"are both written {j.name}.{o}; rename a job or an output",
                    loc=("jobs", i, "outputs", o),
                ))
            output_refs.setdefault(ref, (j.name, o))
            if ref in folded_jobs:
                out.append(ErrorDetail(
                    f"job {j.name!r}'s output {o!r} is written {j.name}.{o}, which is also the "
                    f"name of job {folded_jobs[ref]!r}; rename one",
                    loc=("jobs", i, "outputs", o),
                ))
    for i, d in enumerate(p.datasets):
        key = d.name.casefold()
        if key in folded_jobs:
            out.append(ErrorDetail(
                f"dataset {d.name!r} has the name of job {folded_jobs[key]!r}",
                loc=("datasets", i),
            ))
        if key in output_refs:
            job, o = output_refs[key]
            out.append(ErrorDetail(
                f"dataset {d.name!r} has the name of job {job!r}'s output {o!r}; one name must "
                "mean one thing (lineage, the DAG and data staging would disagree on what it "
                "is): rename the dataset",
                loc=("datasets", i),
            ))
            continue
        for k, ch in enumerate(d.name):
            if ch == "." and d.name[:k].casefold() in folded_jobs:
                out.append(ErrorDetail(
                    f"dataset {d.name!r} starts with the name of job "
                    f"{folded_jobs[d.name[:k].casefold()]!r} and a dot, which is how a job's "
                    "outputs are read (job.output); rename the dataset",
                    loc=("datasets", i),
                ))
                break
    return out


def _resolve(ref: str, datasets: Mapping[str, int], p: Pipeline,
             jobs: Mapping[str, int]) -> InputRef | list[tuple[str, str]]:
    """The one thing ``ref`` names, or the (job, output) splits it could have meant."""
    if ref in datasets:
        return InputRef(ref, dataset=ref)
    splits = [(ref[:k], ref[k + 1:]) for k, ch in enumerate(ref) if ch == "." and ref[:k] in jobs]
    for job, out in splits:
        if out in p.jobs[jobs[job]].outputs:
            return InputRef(ref, job=job, output=out)
    return splits


def _dag_problems(p: Pipeline) -> tuple[list[ErrorDetail], dict[str, InputRef]]:
    out: list[ErrorDetail] = []
    refs: dict[str, InputRef] = {}
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
    out += _name_problems(p)
    for i, j in enumerate(p.jobs):
        for k, ref in enumerate(j.inputs):
            if ref in refs:
                continue
            found = _resolve(ref, datasets, p, jobs)
            if isinstance(found, InputRef):
                refs[ref] = found
                continue
            if found:
                src, out_name = found[0]
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
        return out, refs
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(jobs)
    for j in p.jobs:
        for ref in j.inputs:
            r = refs[ref]
            if r.job is not None:
                g.add_edge(r.job, j.name)
        for src in j.after:
            g.add_edge(src, j.name)
    if nx.is_directed_acyclic_graph(g):  # the common case, twice as fast as find_cycle
        return out, refs
    cycle = nx.find_cycle(g)
    path = " → ".join([u for u, _ in cycle] + [cycle[0][0]])
    first = cycle[0][1]
    out.append(ErrorDetail(f"jobs form a cycle: {path}", loc=("jobs", jobs[first])))
    return out, refs
