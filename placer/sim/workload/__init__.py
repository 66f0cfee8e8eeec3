"""Workloads for the simulator: real traces, a user's CSV, generators, and transformations.

Sources (the files ship in ``placer/sim/data/``; ``SOURCES.md`` there has commits, licences and
checksums):

- :func:`itp_trace` replays one of the ten Microsoft ITP clusters published with ElasticFlow
  (Gu et al., ASPLOS'23; github.com/microsoft/elasticflow-traces, MIT): 69,351 training jobs
  with submission time, duration and GPU count.
- :func:`philly_runtimes_h` gives the 83,154 Philly job run times (Jeon et al., ATC'19, as
  re-published in github.com/alibaba/clusterdata, CC BY 4.0): a duration distribution only.
- :func:`csv_trace` reads a user's own trace with the ITP columns.
- :func:`synthetic` follows the shape of Starburst's generator (Luo et al., "Starburst: A
  Cost-aware Scheduler for Hybrid Cloud", USENIX ATC'24): Poisson or Gamma inter-arrival times
  with a chosen coefficient of variation, the "Philly" GPU-count mix
  P(1, 2, 4, 8) = (0.70, 0.15, 0.10, 0.05), exponential run times (mean 4 h in its simulations).
- :func:`pipelines` builds DAG workloads (prep → train → eval chains, sweeps that fan out and
  in) from distributions that are *our assumptions*, written out in :data:`PIPELINE_ASSUMPTIONS`.

Transformations return new workloads and never mutate their input: :func:`with_residency`
(which jobs read residency-tagged data), :func:`with_estimate_noise` (what strategies are told),
:func:`with_deadlines`, :func:`window` and :func:`merge` (two workloads by arrival). Everything
random takes a ``seed`` and draws from ``numpy.random.default_rng(seed)`` in a fixed order, so
the same arguments give the same workload bit for bit. :func:`parse_trace_spec` reads the
one-line form of a workload that ``--trace`` and a scenario's ``workload.trace`` take
(``synthetic:rate=32,hours=3``).

Bad input raises :class:`~placer.errors.ConfigError` whose details name the file, line and
column (CSV) or the parameter (``field``).

One room per concern, each private: ``_traces`` (reading trace files), ``_generators``,
``_transforms``, ``_spec`` (the one-line form); this module is their public face.
"""

from placer.sim.workload._generators import (
    DEFAULT_PIPELINE_DATASET,
    MIN_RUNTIME_H,
    PHILLY_GPU_MIX,
    PIPELINE_ASSUMPTIONS,
    Arrivals,
    PipelineShape,
    RuntimeDistribution,
    pipelines,
    synthetic,
)
from placer.sim.workload._spec import parse_trace_spec
from placer.sim.workload._traces import ITP_CLUSTERS, csv_trace, itp_trace, philly_runtimes_h
from placer.sim.workload._transforms import (
    NoiseDistribution,
    merge,
    window,
    with_deadlines,
    with_estimate_noise,
    with_residency,
)

__all__ = [
    "DEFAULT_PIPELINE_DATASET",
    "ITP_CLUSTERS",
    "MIN_RUNTIME_H",
    "PHILLY_GPU_MIX",
    "PIPELINE_ASSUMPTIONS",
    "Arrivals",
    "NoiseDistribution",
    "PipelineShape",
    "RuntimeDistribution",
    "csv_trace",
    "itp_trace",
    "merge",
    "parse_trace_spec",
    "philly_runtimes_h",
    "pipelines",
    "synthetic",
    "window",
    "with_deadlines",
    "with_estimate_noise",
    "with_residency",
]
