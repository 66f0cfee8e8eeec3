"""The contract every compute backend keeps, as a reusable test class.

A backend's test module subclasses :class:`ComputeBackendContract` and provides the fixtures:

* ``backend``: a backend connected to one site;
* ``reopen``: a callable giving a *new* backend object on the same cluster (a restarted placer);
* ``take_down``: a callable making the site unreachable (stop the cluster);
* ``sleep``: how long to pause between status polls (0 for fakes).

Jobs used: ``contract-ok`` prints ``placer-contract-ok`` and exits 0; ``contract-long`` runs
until stopped (``sleep 600``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from placer.backends import JOB_STATES, TERMINAL_STATES, ComputeBackend, Handle
from placer.errors import SiteUnreachableError
from placer.models import Job, JobPlacement

OK = Job(name="contract-ok", command="python -c \"print('placer-contract-ok')\"",
         gpu_types={"CPU": 0.01})
LONG = Job(name="contract-long", command="sleep 600", gpu_types={"CPU": 1})
MAX_POLLS = 600


def placement(site: str) -> JobPlacement:
    return JobPlacement(site=site, location="onprem:contract", gpu="CPU", gpus=0, nodes=0,
                        spot=False, start_h=0, end_h=0.01, cost_usd=0, compute_usd=0,
                        transfer_usd=0, transfer_h=0)


ENV = {"PLACER_RUN_ID": "run-contract", "PLACER_JOB": "contract"}


class ComputeBackendContract:
    """Submit → status progresses → logs → cancel; idempotent submit; find adopts."""

    site: str = "contract-site"

    def poll(self, backend: ComputeBackend, handle: Handle, until: frozenset[str],
             sleep: Callable[[], None]) -> list[str]:
        seen: list[str] = []
        for _ in range(MAX_POLLS):
            state = backend.status(handle)
            assert state in JOB_STATES
            if not seen or seen[-1] != state:
                seen.append(state)
            if state in until:
                return seen
            sleep()
        pytest.fail(f"{handle} never reached {sorted(until)}; saw {seen}")

    def test_it_is_a_compute_backend(self, backend: ComputeBackend) -> None:
        assert isinstance(backend, ComputeBackend)
        assert isinstance(backend.name, str) and backend.name

    def test_submit_runs_to_success_and_logs_its_output(
            self, backend: ComputeBackend, sleep: Callable[[], None], sid: str) -> None:
        h = backend.submit(OK, placement(self.site), submission_id=sid, env=ENV)
        assert h.id and h.backend == backend.name
        seen = self.poll(backend, h, TERMINAL_STATES, sleep)
        assert seen[-1] == "SUCCEEDED"
        # States only move forward.
        order = ["PENDING", "RUNNING", "SUCCEEDED"]
        assert seen == sorted(seen, key=order.index)
        assert "placer-contract-ok" in backend.logs(h)

    def test_the_same_submission_id_twice_is_one_job(self, backend: ComputeBackend,
                                                     sid: str) -> None:
        h1 = backend.submit(OK, placement(self.site), submission_id=sid, env=ENV)
        h2 = backend.submit(OK, placement(self.site), submission_id=sid, env=ENV)
        assert h1 == h2
        assert backend.find(sid) == h1

    def test_find_adopts_from_a_new_connection(self, backend: ComputeBackend,
                                               reopen: Callable[[], ComputeBackend],
                                               sid: str) -> None:
        h = backend.submit(OK, placement(self.site), submission_id=sid, env=ENV)
        fresh = reopen()
        assert fresh.find(sid) == h
        assert fresh.find(sid + "-never-submitted") is None
        assert fresh.status(h) in JOB_STATES

    def test_cancel_stops_a_running_job_and_is_idempotent(
            self, backend: ComputeBackend, sleep: Callable[[], None], sid: str) -> None:
        h = backend.submit(LONG, placement(self.site), submission_id=sid, env=ENV)
        self.poll(backend, h, frozenset({"RUNNING"}), sleep)
        backend.cancel(h)
        assert self.poll(backend, h, TERMINAL_STATES, sleep)[-1] == "STOPPED"
        backend.cancel(h)  # cancelling a stopped job is not an error
        assert backend.status(h) == "STOPPED"

    def test_an_unreachable_site_says_so(self, backend: ComputeBackend,
                                         take_down: Callable[[], Any], sid: str) -> None:
        h = backend.submit(OK, placement(self.site), submission_id=sid, env=ENV)
        take_down()
        with pytest.raises(SiteUnreachableError) as info:
            backend.status(h)
        assert info.value.site == self.site
