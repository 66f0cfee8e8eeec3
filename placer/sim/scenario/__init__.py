"""Scenarios: one YAML file naming everything a benchmark run needs, and what it builds.

A scenario (``apiVersion: placer/v1``, ``kind: Scenario``) names the workload, the on-prem pool,
the cloud model, the inventory and policies, the ground truth for the residency checker, the
strategies and the waiting budgets to sweep. :func:`load_scenario` validates it (every problem
names file, line and field, as the other loaders do); :func:`build` turns it into the objects
:func:`placer.sim.simulate` takes. The model holds paths as written (relative to the scenario
file) so that it can be shipped to another process, e.g. a Ray worker, with the scenario's
directory and rebuilt there: built objects (a cloud model, traces) are never pickled.

One room per concern, each private: ``_schema`` (the pydantic models), ``_loader`` (reading a
file), ``_builder`` (the objects a run takes); this module is their public face.
"""

from placer.sim.scenario._builder import Prepared, build
from placer.sim.scenario._loader import load_scenario, read_scenario
from placer.sim.scenario._schema import (
    KIND,
    NOISE_SWEEP,
    CloudSpec,
    DatasetSpec,
    DeadlineSpec,
    OnPremSpec,
    PipelineSpec,
    ResidencySpec,
    Scenario,
    SweepSpec,
    WindowSpec,
    WorkloadSpec,
    with_noise,
)

__all__ = [
    "KIND",
    "NOISE_SWEEP",
    "CloudSpec",
    "DatasetSpec",
    "DeadlineSpec",
    "OnPremSpec",
    "PipelineSpec",
    "Prepared",
    "ResidencySpec",
    "Scenario",
    "SweepSpec",
    "WindowSpec",
    "WorkloadSpec",
    "build",
    "load_scenario",
    "read_scenario",
    "with_noise",
]
