"""What a simulation replays: jobs (from a trace or a generator), the datasets they read.

Plain frozen dataclasses with ``__slots__``, not pydantic models: a replay holds tens of
thousands of jobs and the event loop reads their fields millions of times. Loaders in
:mod:`placer.sim.workload` validate what they read and build these; user-facing YAML (a
scenario) is validated by pydantic models in :mod:`placer.sim.scenario`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from placer.online import DatasetInfo, JobRequest

SimDataset = DatasetInfo
"""A dataset of a workload is the core's :class:`placer.online.DatasetInfo` (name, location,
GB, tags): strategies see the simulator's datasets as they are."""


@dataclass(frozen=True, slots=True)
class SimJob:
    """One job of a workload.

    ``id`` is dense (0..n-1) and a job's dependencies always have lower ids, so the jobs of a
    workload sorted by id are in a topological order. Independent jobs have ``pipeline == -1``;
    the jobs of one DAG share a pipeline number and an ``arrival_h`` (the DAG's submission
    time), and each becomes ready when its last dependency ends and its inputs have arrived.
    """

    id: int
    name: str
    arrival_h: float
    """Submission time, hours from the start of the workload."""
    runtime_h: float
    """True run time on the scenario's reference GPU type, hours (> 0)."""
    gpus: int
    estimate_h: float
    """The run time a strategy is told (equal to ``runtime_h`` unless noise was added)."""
    reads: tuple[str, ...] = ()
    """Names of datasets read (keys of :attr:`Workload.datasets`)."""
    deps: tuple[int, ...] = ()
    """Jobs whose outputs this job reads; it starts only after they end."""
    output_gb: float = 0.0
    """Size of what the job writes, read by the jobs that depend on it."""
    deadline_h: float | None = None
    """Absolute time the job should end by, or ``None``."""
    spot_ok: bool = True
    """Whether the job checkpoints and so may run on spot capacity."""
    pipeline: int = -1

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.runtime_h

    def request(self) -> JobRequest:
        """What a strategy is shown of this job (:class:`placer.online.JobRequest`): everything
        but the true run time."""
        return JobRequest(
            id=self.id,
            name=self.name,
            gpus=self.gpus,
            estimate_h=self.estimate_h,
            spot_ok=self.spot_ok,
            deadline_h=self.deadline_h,
            submitted_h=self.arrival_h,
            pipeline=self.pipeline if self.pipeline >= 0 else None,
            deps=self.deps,
            reads=self.reads,
            output_gb=self.output_gb,
        )


@dataclass(frozen=True)
class Workload:
    """Jobs in id order plus the datasets they read, and where they came from."""

    name: str
    jobs: tuple[SimJob, ...]
    datasets: Mapping[str, DatasetInfo] = field(default_factory=dict)
    source: str = ""
    """A citation for a trace (repository, commit, licence) or the generator's parameters."""

    def __post_init__(self) -> None:
        for i, job in enumerate(self.jobs):
            if job.id != i:
                raise ValueError(f"job ids must be 0..n-1 in order; position {i} holds {job.id}")
            if job.runtime_h <= 0 or job.gpus < 1:
                raise ValueError(f"job {job.name!r} needs a positive run time and >= 1 GPU")
            for d in job.deps:
                if not 0 <= d < i:
                    raise ValueError(f"job {job.name!r} depends on {d}, not an earlier job")
            for r in job.reads:
                if r not in self.datasets:
                    raise ValueError(f"job {job.name!r} reads unknown dataset {r!r}")

    @property
    def gpu_hours(self) -> float:
        return sum(j.gpu_hours for j in self.jobs)
