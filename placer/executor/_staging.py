"""Staging under the residency guards: where a job may run, write, and read from.

Three guards stand between a plan and a submission, whatever the plan says:

* **eligibility** (:meth:`Staging.check_eligible`): every submission is checked against the
  sites the run's *own stored* policies allow for the job, re-evaluated from the journal's spec
  with lineage; a placement outside them is refused (the job is STUCK: "refused to run …");
* **output prefix** (:meth:`Staging.prefix`): a job writes under the layout's prefix for its
  own location, and, with a storage resolver, only if that prefix resolves to that location;
* **copies** (:meth:`Staging.move_inputs`): an input made in another location is copied only
  into the consuming job's own location (the mover refuses any other destination), verified,
  with intent and outcome journaled.

Inputs are resolved through :meth:`~placer.models.Pipeline.inputs_of` (each an
:class:`~placer.models.InputRef`), never by splitting the strings a pipeline lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from placer.backends import DataMover, StorageLayout, StorageResolver
from placer.catalog import Catalog, resolve_inventory
from placer.errors import ResidencyError
from placer.executor._state import LiveRun
from placer.journal import Journal
from placer.models import JobPlacement
from placer.policy import evaluate as evaluate_policies

__all__ = ["JobPaths", "RemoteInput", "Staging"]


class _Host(Protocol):
    """What staging reads from the executor that owns it (at each call: callers may swap the
    layout of an executor, as tests do)."""

    journal: Journal
    layout: StorageLayout
    storage: StorageResolver | None
    mover: DataMover | None
    catalog: Catalog


@dataclass(frozen=True)
class RemoteInput:
    """An input made in another location, and where the consuming job reads its copy."""

    ref: str
    src_uri: str
    src_location: str
    local_uri: str


@dataclass(frozen=True)
class JobPaths:
    """Where one job writes (``output_dir``, ``outputs``) and reads (``inputs``)."""

    output_dir: str
    inputs: dict[str, str | None]
    outputs: dict[str, str]


class Staging:
    """The residency guards, and the copies and paths they allow."""

    def __init__(self, host: _Host) -> None:
        self._host = host
        self._resolved: dict[str, tuple[str, ...]] = {}  # output prefix → where its copies are

    # -- where a job may run --------------------------------------------------------------------
    def check_eligible(self, rs: LiveRun, job: str, placement: JobPlacement) -> None:
        """Refuse to submit where the run's own policies do not allow the job.

        The plan was made under the same policies, so this never fires for an honest plan; it
        is the last line against a plan, a re-plan or a journal that disagrees with the
        policies (a bug or a tampered file), re-evaluated from the stored spec with lineage.
        """
        if rs.eligible is None:
            sites = resolve_inventory(rs.inventory, self._host.catalog)
            rs.eligible = {n: frozenset(e.allowed) for n, e in
                           evaluate_policies(rs.pipeline, sites, rs.policies).items()}
        if placement.site not in rs.eligible[job]:
            allowed = ", ".join(sorted(rs.eligible[job])) or "no site"
            raise ResidencyError(f"refused to run {job} on {placement.site}: the run's policies "
                                 f"allow it only on {allowed}")

    # -- where it writes ------------------------------------------------------------------------
    def prefix(self, rs: LiveRun, job: str, location: str) -> str:
        """The job's output prefix: in ``location`` (where it runs), or a ResidencyError."""
        prefix = self._host.layout.job_prefix(rs.id, job, location)
        if prefix is None:
            raise ResidencyError(f"{job}: no storage is configured in {location}, where it "
                                 "runs; its outputs may not be written anywhere else")
        storage = self._host.storage
        if storage is not None:
            if prefix not in self._resolved:
                self._resolved[prefix] = storage.resolve(prefix).copies
            copies = self._resolved[prefix]
            # Every copy, not only the primary: a multi-region or replicated bucket carries the
            # outputs to each of its locations.
            if copies != (location,):
                where = ", ".join(copies) or "an unknown location"
                raise ResidencyError(f"{job}: its output prefix {prefix} is in {where}, not "
                                     f"only in {location} where the job runs and the policy "
                                     "allows its data")
        return prefix

    # -- what it reads --------------------------------------------------------------------------
    def remote_inputs(self, rs: LiveRun, job: str,
                      placement: JobPlacement) -> list[RemoteInput]:
        """Each input made in another location, with where its copy goes (none without a
        mover: the job then reads such inputs where they were written)."""
        if self._host.mover is None:
            return []
        out = []
        for ref in rs.pipeline.inputs_of(job):
            if ref.job is None or ref.output is None:
                continue
            src, name = ref.job, ref.output
            src_loc = rs.placements[src].location
            if src_loc == placement.location:
                continue
            local = f"{self.prefix(rs, job, placement.location)}inputs/{src}/{name}"
            out.append(RemoteInput(ref.ref, self.prefix(rs, src, src_loc) + name, src_loc,
                                   local))
        return out

    def paths(self, rs: LiveRun, job: str, placement: JobPlacement) -> JobPaths:
        """The job's output prefix and outputs, and the URI it reads each input from."""
        spec = rs.pipeline.job(job)
        # A job that declares no outputs needs no storage where it runs (its output dir is
        # then empty); any prefix it is given is still checked to be in its own location.
        bare = (not spec.outputs
                and self._host.layout.job_prefix(rs.id, job, placement.location) is None)
        prefix = "" if bare else self.prefix(rs, job, placement.location)
        inputs: dict[str, str | None] = {}
        local = {r.ref: r.local_uri for r in self.remote_inputs(rs, job, placement)}
        for ref in rs.pipeline.inputs_of(spec):
            if ref.dataset is not None:
                inputs[ref.ref] = rs.pipeline.dataset(ref.dataset).uri
            else:
                assert ref.job is not None and ref.output is not None
                src_loc = rs.placements[ref.job].location
                inputs[ref.ref] = (local.get(ref.ref)
                                   or self.prefix(rs, ref.job, src_loc) + ref.output)
        outputs = {name: prefix + name for name in spec.outputs}
        return JobPaths(output_dir=prefix, inputs=inputs, outputs=outputs)

    def move_inputs(self, rs: LiveRun, job: str, placement: JobPlacement) -> None:
        """Copy inputs made in other locations into the job's own, verified, journaled.

        Intent is recorded before the copy and the outcome after, so a crash mid-copy is
        redone on resume (copies overwrite, so redoing is safe); a copy already recorded as
        done is not repeated. The destination may only be the job's own location, which the
        policies allow for everything the job reads.
        """
        journal = self._host.journal
        done = {(t.src_uri, t.dst_uri) for t in journal.transfers(rs.id) if t.state == "DONE"}
        for move in self.remote_inputs(rs, job, placement):
            if (move.src_uri, move.local_uri) in done:
                continue
            mover = self._host.mover
            assert mover is not None
            tid = journal.record_transfer(rs.id, job, move.src_uri, move.local_uri,
                                          src_location=move.src_location,
                                          dst_location=placement.location)
            try:
                result = mover.copy(move.src_uri, move.local_uri, allowed={placement.location})
            except BaseException:
                journal.finish_transfer(rs.id, tid, "FAILED")
                raise
            journal.finish_transfer(rs.id, tid, "DONE", nbytes=result.bytes,
                                    checksum=result.checksum)
