"""Run a plan until a chosen step has been submitted, then die like a killed process.

Used by the end-to-end crash test: ``os._exit`` skips every handler and flush, as SIGKILL
would, right after the backend accepted the job and before the journal recorded that.
"""

import json
import os
import sys
from pathlib import Path

import placer
from placer.backends import PrefixLayout, compute_backends_for, storage_for
from placer.catalog import resolve_inventory
from placer.executor import Executor
from placer.journal import Journal
from placer.models import Inventory, Pipeline, Plan

spec = json.loads(Path(sys.argv[1]).read_text())
pipeline = Pipeline.model_validate(spec["pipeline"])
inventory = Inventory.model_validate(spec["inventory"])
plan = Plan.model_validate(spec["plan"])
sites = resolve_inventory(inventory)
storage = storage_for(sites)  # the cloud store from AWS_ENDPOINT_URL_S3, fra-dc's its own


def die_after_submit(point: str, run_id: str, job: str) -> None:
    if point == "after_submit" and job == spec["die_after"]:
        os._exit(137)


executor = Executor(Journal(spec["journal"]), compute_backends_for(sites),
                    layout=PrefixLayout({s.location.key: s.storage for s in sites if s.storage}),
                    storage=storage, mover=storage, poll_interval_s=0.5, hook=die_after_submit)
executor.start(plan, pipeline=pipeline, inventory=inventory,
               policies=placer.load_policies(spec["policies"])).wait(timeout=240)
sys.exit(0)  # the hook must have ended the process before this
