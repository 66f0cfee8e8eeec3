"""The contract between placer and a job: the ``PLACER_*`` environment and the manifest.

Every step is submitted with these environment variables (backends pass them to the job; Ray
adds them to ``runtime_env.env_vars``, over the job's own), and the same manifest is recorded
in the journal with the step's intent. Jobs and backends rely on the names and forms below:
change them only as a versioned change of the contract (docs/backends.md, "What a job is
told").

=====================  ==========================================================================
``PLACER_RUN_ID``       the run, ``run-YYYYMMDD-xxxxxx``
``PLACER_JOB``          the job's name in the pipeline
``PLACER_ATTEMPT``      the attempt, from ``1`` (a retry or a re-placed job gets the next)
``PLACER_SITE``         the site it runs on
``PLACER_LOCATION``     that site's location (``onprem:fra-dc1``, ``aws:eu-central-1``)
``PLACER_POLICY_HASH``  ``sha256:…`` of the policies the run was planned under
``PLACER_PLAN_HASH``    ``sha256:…`` of the placements in force (changes when a re-plan does)
``PLACER_OUTPUT_DIR``   the job's output prefix (ends in ``/``), in its own location
``PLACER_INPUTS``       JSON ``{input ref: URI}``: datasets where they are; job outputs where
                        they were written, or their verified copy in this job's location
``PLACER_OUTPUTS``      JSON ``{output name: URI}``: ``PLACER_OUTPUT_DIR`` + the name
``PLACER_MANIFEST``     JSON of the manifest: ``run_id``, ``job``, ``attempt``, ``site``,
                        ``location``, ``policy_hash``, ``inputs``, ``outputs``, ``output_dir``
=====================  ==========================================================================

JSON values are written with sorted keys. Where the URIs point is decided by the staging room
(:mod:`placer.executor._staging`) under the residency guards; this module only writes them down.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from placer.models import JobPlacement

__all__ = ["JobContract", "plan_hash"]


def plan_hash(placements: Mapping[str, JobPlacement]) -> str:
    """Content hash of the placements in force (it changes when a failure forces a re-plan)."""
    body = json.dumps({j: p.model_dump(mode="json") for j, p in sorted(placements.items())},
                      sort_keys=True)
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class JobContract:
    """What one step of a job is told: who it is, what it reads, where it writes."""

    run_id: str
    job: str
    attempt: int
    site: str
    location: str
    policy_hash: str
    plan_hash: str
    output_dir: str
    inputs: dict[str, str | None]
    outputs: dict[str, str]

    def manifest(self) -> dict[str, Any]:
        """The manifest: in ``PLACER_MANIFEST`` and in the journal with the step's intent."""
        return {
            "run_id": self.run_id, "job": self.job, "attempt": self.attempt, "site": self.site,
            "location": self.location, "policy_hash": self.policy_hash,
            "inputs": self.inputs, "outputs": self.outputs, "output_dir": self.output_dir,
        }

    def environment(self) -> dict[str, str]:
        """The ``PLACER_*`` variables the step is submitted with."""
        return {
            "PLACER_RUN_ID": self.run_id, "PLACER_JOB": self.job,
            "PLACER_ATTEMPT": str(self.attempt), "PLACER_SITE": self.site,
            "PLACER_LOCATION": self.location, "PLACER_POLICY_HASH": self.policy_hash,
            "PLACER_PLAN_HASH": self.plan_hash, "PLACER_OUTPUT_DIR": self.output_dir,
            "PLACER_INPUTS": json.dumps(self.inputs, sort_keys=True),
            "PLACER_OUTPUTS": json.dumps(self.outputs, sort_keys=True),
            "PLACER_MANIFEST": json.dumps(self.manifest(), sort_keys=True),
        }
