"""The data of a run: where each dataset's copies are, what reading it or bringing a job's inputs
somewhere costs, and the replicas made.

A job reads its datasets from the cheapest place holding a ready copy (where they live, or a
replica) and its dependencies' outputs from where those ran; the source pays egress (USD/GB)
and the transfer takes GB x hours/GB. A strategy may ask for a copy of a dataset at a location
(a :class:`~placer.online.Replicate`): it pays egress once and is ready after its transfer.
With ``cache_inputs`` every first read at a location leaves such a copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from placer.errors import SimulationError
from placer.optimizer import Link
from placer.sim.engine._results import Replica
from placer.sim.jobs import SimJob, Workload
from placer.sim.kernel import EventQueue


class Data:
    """Dataset copies, reads, transfers and replicas of one run."""

    def __init__(self, workload: Workload, link: Callable[[str, str], Link],
                 events: EventQueue, *, cache_inputs: bool, strategy: str) -> None:
        self._datasets = workload.datasets
        self._jobs = workload.jobs
        self._link = link
        self._events = events
        self.cache_inputs = cache_inputs
        self.strategy = strategy
        """The strategy's name, for errors."""
        # dataset -> location -> when its copy there is ready (where it lives: ready from 0)
        self._copies: dict[str, dict[str, float]] = {
            name: {ds.location: -math.inf} for name, ds in workload.datasets.items()
        }
        self.replicas: list[Replica] = []
        self.output_at = [""] * len(workload.jobs)
        """Where each finished job's output lives."""

    def read_cost(self, name: str, location: str) -> tuple[float, float, str]:
        """``(USD, hours, source)`` to read dataset ``name`` at ``location`` now, from the
        cheapest ready copy; a copy at ``location`` itself is read for free, once it is there
        if it is still on its way."""
        copies = self._copies[name]
        now = self._events.now
        here = copies.get(location)
        if here is not None:
            # ready, or on its way: wait for it rather than pay for a second copy
            return 0.0, max(here - now, 0.0), location
        gb = self._datasets[name].gb
        best = (math.inf, math.inf, "")
        for src, ready in copies.items():
            if ready <= now and src != location:
                ln = self._link(src, location)
                cand = (ln.usd(gb), gb * ln.hours_per_gb, src)
                if cand[:2] < best[:2]:
                    best = cand
        return best

    def transfer(self, j: int, location: str) -> tuple[float, float]:
        """``(USD, hours)`` to bring job ``j``'s inputs to ``location`` now: its datasets
        from their cheapest ready copies, its dependencies' outputs from where they ran."""
        job = self._jobs[j]
        usd = hours = 0.0
        link = self._link
        for name in job.reads:
            u, h, _ = self.read_cost(name, location)
            usd += u
            hours = max(hours, h)
        for d in job.deps:
            gb = self._jobs[d].output_gb
            src = self.output_at[d]
            if src != location and gb > 0:
                ln = link(src, location)
                usd += ln.usd(gb)
                hours = max(hours, gb * ln.hours_per_gb)
        return usd, hours

    def replica_ready(self, name: str, location: str) -> float | None:
        """When the copy of ``name`` at ``location`` is (or will be) ready; None if there is
        no copy there and none on its way."""
        t = self._copies[name].get(location)
        return None if t is None else max(t, 0.0)

    def replicate(self, name: str, location: str) -> bool:
        """Start copying dataset ``name`` to ``location`` from its cheapest ready copy; egress
        is paid now, the copy is ready when the transfer ends. False (and nothing done) when a
        copy is there or on its way. Residency is the strategy's business: the independent
        checker counts a copy where the data may not be as a violation."""
        if name not in self._copies:
            raise SimulationError(
                f"strategy {self.strategy!r} asked for a copy of dataset {name!r}: "
                f"no dataset {name!r} to replicate"
            )
        if location in self._copies[name]:
            return False
        usd, hours, src = self.read_cost(name, location)
        self._add(name, location, src, hours, usd, "strategy")
        return True

    def _add(
        self, name: str, location: str, src: str, hours: float, usd: float, reason: str
    ) -> None:
        now = self._events.now
        self._copies[name][location] = now + hours
        gb = self._datasets[name].gb
        self.replicas.append(Replica(name, location, src, gb, now, now + hours, usd, reason))

    def keep(self, job: SimJob, location: str) -> None:
        """With ``cache_inputs``, a dataset read at a location stays there for later jobs
        (ready when the read's transfer ends; the read paid the egress)."""
        if self.cache_inputs:
            for name in job.reads:
                if location not in self._copies[name]:
                    _, hours, src = self.read_cost(name, location)
                    self._add(name, location, src, hours, 0.0, "cache")

