"""A pipeline written in Python: datasets and jobs by handle, never by ``"job.output"`` text.

The builder is a convenience in front of the one validation there is: :meth:`PipelineBuilder.
build` writes the same mapping a pipeline YAML file holds and hands it to the YAML loader's own
validation (:func:`placer.loading.pipeline_from_data`), so a pipeline built here and the same
pipeline written as YAML are equal models, checked by the same rules (names, references,
cycles, cloud regions the catalog knows). What only Python can get wrong (a handle from another
pipeline, a name used twice, an output a job does not have) is refused where it is written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from placer.errors import ConfigError, ErrorDetail, PipelineError
from placer.loading import pipeline_from_data
from placer.models import Dataset, Job, Pipeline, Resources
from placer.units import format_duration, parse_duration, parse_size
from placer.yamlio import SourceMap, format_loc, validate

__all__ = ["DatasetRef", "JobRef", "OutputRef", "PipelineBuilder", "current_builder",
           "dump_pipeline", "pipeline"]

_active = threading.local()  # the builders entered with ``with`` on this thread, innermost last


def current_builder() -> PipelineBuilder | None:
    """The innermost builder entered with ``with`` on this thread, if any."""
    stack: list[PipelineBuilder] = getattr(_active, "stack", [])
    return stack[-1] if stack else None


class DatasetRef:
    """A dataset of one builder: pass it in a job's ``inputs``."""

    __slots__ = ("builder", "name")

    def __init__(self, builder: PipelineBuilder, name: str) -> None:
        self.builder = builder
        self.name = name

    def __repr__(self) -> str:
        return f"DatasetRef({self.name!r})"


class OutputRef:
    """One output of one job (``tok.output("shards")``): pass it in another job's ``inputs``."""

    __slots__ = ("job", "name")

    def __init__(self, job: JobRef, name: str) -> None:
        self.job = job
        self.name = name

    def __repr__(self) -> str:
        return f"OutputRef({self.job.name!r}, {self.name!r})"


class JobRef:
    """A job of one builder. ``a >> b`` makes ``b`` run after ``a`` (``a >> [b, c]`` and
    ``[a, b] >> c`` too); ``a.output("name")`` is what another job reads."""

    __slots__ = ("builder", "name")

    def __init__(self, builder: PipelineBuilder, name: str) -> None:
        self.builder = builder
        self.name = name

    def __repr__(self) -> str:
        return f"JobRef({self.name!r})"

    def output(self, name: str | None = None) -> OutputRef:
        """The job's output ``name``; with no name, its only output."""
        outputs = list(self.builder._jobs[self.name].get("outputs") or {})
        if name is None:
            if len(outputs) != 1:
                have = ", ".join(outputs) or "none"
                raise PipelineError(f"job {self.name!r} has {len(outputs)} outputs ({have}): "
                                    "name the one to read, job.output(name)")
            name = outputs[0]
        if name not in outputs:
            have = ", ".join(outputs) or "none"
            raise PipelineError(f"job {self.name!r} has no output {name!r} (its outputs: "
                                f"{have})")
        return OutputRef(self, name)

    def __rshift__(self, other: JobRef | Iterable[JobRef]) -> Any:
        for downstream in ([other] if isinstance(other, JobRef) else list(other)):
            self.builder._add_after(downstream, self)
        return other

    def __rrshift__(self, other: Iterable[JobRef]) -> JobRef:
        for upstream in other:
            self.builder._add_after(self, upstream)
        return self

    def __lshift__(self, other: JobRef | Iterable[JobRef]) -> Any:
        for upstream in ([other] if isinstance(other, JobRef) else list(other)):
            self.builder._add_after(self, upstream)
        return other


class PipelineBuilder:
    """Datasets and jobs added one call at a time; :meth:`build` makes the :class:`Pipeline`.

    Also a context manager: inside ``with placer.pipeline("nlp") as p:``, calling a function
    decorated with :func:`placer.job` adds a job to ``p``.
    """

    def __init__(self, name: str = "pipeline") -> None:
        self.name = name
        self._datasets: dict[str, dict[str, Any]] = {}
        self._jobs: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return (f"PipelineBuilder({self.name!r}, datasets={list(self._datasets)}, "
                f"jobs={list(self._jobs)})")

    def __enter__(self) -> PipelineBuilder:
        _active.__dict__.setdefault("stack", []).append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _active.stack.remove(self)

    # -- adding -----------------------------------------------------------------------------------
    def dataset(self, name: str, *, uri: str | None = None, size: float | str = 0.0,
                location: str | None = None, tags: Mapping[str, str] | None = None,
                replicas: Iterable[str] = (), storage_tags: Mapping[str, str] | None = None,
                provenance: Mapping[str, str] | None = None) -> DatasetRef:
        """Add a dataset (the fields of a pipeline file's ``datasets`` entry)."""
        self._unused(name, "dataset")
        spec: dict[str, Any] = {"uri": uri, "size": size, "location": location,
                                "tags": dict(tags or {}), "replicas": list(replicas),
                                "storage_tags": dict(storage_tags or {}),
                                "provenance": dict(provenance or {})}
        spec = {k: v for k, v in spec.items() if v is not None}
        self._check(Dataset, {"name": name, **spec}, ("datasets", name))
        self._datasets[name] = spec
        return DatasetRef(self, name)

    def job(self, name: str, *, command: str, gpu_types: Mapping[str, float | str],
            image: str | None = None, runtime_env: Mapping[str, Any] | None = None,
            resources: Resources | Mapping[str, Any] | None = None, gpus: int | None = None,
            cpus: float | None = None, memory: float | str | None = None,
            inputs: Iterable[DatasetRef | OutputRef | str] = (),
            outputs: Mapping[str, float | str] | None = None,
            after: Iterable[JobRef | str] = (), labels: Mapping[str, str] | None = None,
            spot: bool = False,
            removes_tags: Mapping[str, str | Iterable[str]] | None = None) -> JobRef:
        """Add a job: the fields of a pipeline file's ``jobs`` entry, with ``inputs`` as
        dataset handles (or names) and other jobs' :meth:`JobRef.output`, and ``after`` as
        job handles. ``gpus``, ``cpus`` and ``memory`` are short for ``resources``."""
        self._unused(name, "job")
        res = _resources(name, resources, gpus, cpus, memory)
        spec: dict[str, Any] = {
            "command": command, "image": image,
            "runtime_env": None if runtime_env is None else dict(runtime_env),
            "resources": res, "gpu_types": dict(gpu_types),
            "inputs": [self._input(name, x) for x in inputs],
            "outputs": dict(outputs or {}), "after": [], "labels": dict(labels or {}),
            "spot": spot,
            "removes_tags": {k: [v] if isinstance(v, str) else list(v)
                             for k, v in (removes_tags or {}).items()},
        }
        spec = {k: v for k, v in spec.items() if v is not None}
        self._check(Job, {"name": name, **spec}, ("jobs", name))
        ref = JobRef(self, name)
        spec["after"] = [self._upstream(ref, x) for x in after]  # checked before it is added
        self._jobs[name] = spec
        return ref

    def add(self, fn: Any, *args: Any, **overrides: Any) -> JobRef:
        """Add a job that runs ``fn`` (a function decorated with :func:`placer.job`) on
        ``args`` (datasets, other jobs or their outputs); ``overrides`` replace the
        decorator's fields (``name``, ``gpu_types``, …)."""
        add_to = getattr(fn, "add_to", None)
        if add_to is None:
            raise PipelineError(f"{getattr(fn, '__name__', fn)!r} is not a placer job: decorate "
                                "it with @placer.job(...)")
        return add_to(self, *args, **overrides)  # type: ignore[no-any-return]

    # -- results ----------------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """The pipeline as a pipeline file writes it (``apiVersion``, ``kind``, ``name``,
        ``datasets`` and ``jobs`` by name)."""
        out: dict[str, Any] = {"apiVersion": "placer/v1", "kind": "Pipeline", "name": self.name}
        if self._datasets:
            out["datasets"] = {n: dict(s) for n, s in self._datasets.items()}
        out["jobs"] = {n: {k: v for k, v in s.items() if v not in ([], {}) or k == "gpu_types"}
                       for n, s in self._jobs.items()}
        return out

    def build(self) -> Pipeline:
        """The pipeline, validated exactly as its YAML file would be.

        Raises:
            PipelineError: unknown or duplicate names, cycles, bad fields; each names the
                job or dataset by name.
        """
        if not self._jobs:
            raise PipelineError(f"pipeline {self.name!r} has no jobs: add one with p.job(...)")
        where = _where(self.name)
        try:
            return pipeline_from_data(self.spec(), SourceMap(where))[0]
        except ConfigError as exc:
            raise PipelineError([self._by_name(d, where) for d in exc.details]) from None

    def to_yaml(self) -> str:
        """The pipeline file for what was built (validated first)."""
        return dump_pipeline(self.build())

    # -- internals --------------------------------------------------------------------------------
    def _unused(self, name: str, what: str) -> None:
        if name in self._jobs or name in self._datasets:
            other = "job" if name in self._jobs else "dataset"
            raise PipelineError(f"pipeline {self.name!r} already has a {other} named {name!r}; "
                                f"name this {what} differently")

    def _check(self, model: type[Any], data: dict[str, Any], loc: tuple[str, ...]) -> None:
        """Validate one entry now, so a bad field is reported at the call that wrote it."""
        try:
            validate(model, data, SourceMap(_where(self.name)))
        except ConfigError as exc:
            raise PipelineError([ErrorDetail(d.msg, field=format_loc((*loc, *d.loc)),
                                             loc=(*loc, *d.loc)) for d in exc.details]) from None

    def _mine(self, ref: DatasetRef | JobRef, job: str) -> None:
        if ref.builder is not self:
            what = "dataset" if isinstance(ref, DatasetRef) else "job"
            who = f"{what} {ref.name!r} is" if ref.name == job else (
                f"job {job!r} uses {what} {ref.name!r},")
            raise PipelineError(f"{who} of pipeline {ref.builder.name!r}, not of "
                                f"{self.name!r}")

    def _input(self, job: str, x: DatasetRef | OutputRef | str) -> str:
        if isinstance(x, DatasetRef):
            self._mine(x, job)
            return x.name
        if isinstance(x, OutputRef):
            self._mine(x.job, job)
            return f"{x.job.name}.{x.name}"
        if isinstance(x, JobRef):
            return self._input(job, x.output())
        if isinstance(x, str):
            if x in self._datasets:
                return x
            hint = (" (to read a job's output, pass its handle's .output(name))"
                    if "." in x or x in self._jobs else "")
            raise PipelineError(f"job {job!r} reads {x!r}, which is not a dataset of pipeline "
                                f"{self.name!r}{hint}")
        raise PipelineError(f"job {job!r}: an input is a dataset, a job or a job's output, not "
                            f"{type(x).__name__} {x!r}")

    def _upstream(self, downstream: JobRef, upstream: JobRef | str | Any) -> str:
        """The name of a job ``downstream`` runs after, checked to be one of ours."""
        if not isinstance(upstream, JobRef | str):
            raise PipelineError(f"{upstream!r} is not a job of pipeline {self.name!r}: only "
                                "jobs run after jobs")
        if isinstance(upstream, JobRef):
            self._mine(upstream, downstream.name)
            return upstream.name
        if upstream not in self._jobs:
            raise PipelineError(f"job {downstream.name!r} runs after unknown job {upstream!r} "
                                f"(jobs: {', '.join(self._jobs) or 'none'})")
        return upstream

    def _add_after(self, downstream: JobRef | Any, upstream: JobRef | str | Any) -> None:
        if not isinstance(downstream, JobRef):
            raise PipelineError(f"{downstream!r} is not a job of pipeline {self.name!r}: only "
                                "jobs run after jobs")
        self._mine(downstream, downstream.name)
        name = self._upstream(downstream, upstream)
        after = self._jobs[downstream.name]["after"]
        if name not in after:
            after.append(name)

    def _by_name(self, d: ErrorDetail, where: str) -> ErrorDetail:
        """A problem of the built pipeline, its place said by name (``jobs.train``), as the
        builder's user wrote it, not by position."""
        loc = list(d.loc)
        names = {"jobs": list(self._jobs), "datasets": list(self._datasets)}
        if (len(loc) > 1 and loc[0] in names and isinstance(loc[1], int)
                and loc[1] < len(names[str(loc[0])])):
            loc[1] = names[str(loc[0])][loc[1]]
        return ErrorDetail(d.msg, file=where, field=format_loc(loc) or None, loc=tuple(loc))


def pipeline(name: str = "pipeline") -> PipelineBuilder:
    """A new pipeline builder: ``p = placer.pipeline("nlp")``."""
    return PipelineBuilder(name)


def _where(name: str) -> str:
    return f"<pipeline {name!r} built in Python>"


def _resources(job: str, resources: Resources | Mapping[str, Any] | None, gpus: int | None,
               cpus: float | None, memory: float | str | None) -> dict[str, Any] | None:
    short = {k: v for k, v in (("gpus", gpus), ("cpus", cpus), ("memory", memory))
             if v is not None}
    if resources is not None and short:
        raise PipelineError(f"job {job!r}: give resources= or {', '.join(short)}=, not both")
    if isinstance(resources, Resources):
        return resources.model_dump(exclude_defaults=True)
    if resources is not None:
        return dict(resources)
    return short or None


# -- models → YAML ---------------------------------------------------------------------------------
def _quantity(value: float, text: str, parse: Any) -> float | str:
    """``text`` where it reads back as exactly ``value``, else the bare number."""
    return text if parse(text) == value else value


def _size(gb: float) -> float | str:
    if gb >= 1000 and gb % 1000 == 0:
        return _quantity(gb, f"{gb / 1000:g}TB", parse_size)
    return _quantity(gb, f"{gb:g}GB", parse_size)


def _hours(h: float) -> float | str:
    return _quantity(h, format_duration(h), parse_duration)


def dump_pipeline(pipeline: Pipeline, path: str | Path | None = None) -> str:
    """The pipeline file of ``pipeline`` (what :func:`placer.load_pipeline` reads back as an
    equal model); written to ``path`` too when one is given."""
    body: dict[str, Any] = {"apiVersion": "placer/v1", "kind": "Pipeline",
                            "name": pipeline.name}
    if pipeline.datasets:
        body["datasets"] = {}
    for d in pipeline.datasets:
        spec = d.model_dump(mode="json", exclude_defaults=True, exclude={"name"})
        if "size" in spec:
            spec["size"] = _size(d.size)
        body["datasets"][d.name] = spec
    body["jobs"] = {}
    for j in pipeline.jobs:
        spec = j.model_dump(mode="json", exclude_defaults=True, exclude={"name"})
        spec["gpu_types"] = {g: _hours(h) for g, h in j.gpu_types.items()}
        if "outputs" in spec:
            spec["outputs"] = {o: _size(gb) for o, gb in j.outputs.items()}
        if j.resources.memory is not None:
            spec["resources"]["memory"] = _size(j.resources.memory)
        body["jobs"][j.name] = spec
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
