"""The hunter: random pipelines, inventories, policy trees and faults; no residency violation.

Each example is loaded and planned through placer's own entry points, run on fake clusters
with faults (sites lost mid-run, failing jobs, submit errors, the executor dying between two
journal writes and resuming, two drivers), and judged from the journal, the clusters and the
stored bytes against an oracle that knows the truth (``oracle.py``). A loud refusal
(a ``PlacerError``) passes; a placement the truth forbids, or an exception placer did not mean,
is a counterexample and is saved into ``corpus/``. See ``docs/hunter.md``.
"""

from __future__ import annotations

import pytest

from tests.hunter.budget import CI, NIGHTLY, scaled
from tests.hunter.hunting import hunt_property
from tests.hunter.strategies import cases


def test_no_residency_violation_in_random_runs() -> None:
    hunt_property(cases(), CI, "test_no_residency_violation_in_random_runs")


def test_no_residency_violation_after_failover() -> None:
    hunt_property(cases(max_jobs=6, failover=True), scaled(CI, 0.5),
                  "test_no_residency_violation_after_failover")


@pytest.mark.nightly
def test_no_residency_violation_in_random_runs_nightly() -> None:
    hunt_property(cases(), NIGHTLY, "test_no_residency_violation_in_random_runs_nightly")


@pytest.mark.nightly
def test_no_residency_violation_after_failover_nightly() -> None:
    hunt_property(cases(max_jobs=6, failover=True), scaled(NIGHTLY, 0.5),
                  "test_no_residency_violation_after_failover_nightly")
