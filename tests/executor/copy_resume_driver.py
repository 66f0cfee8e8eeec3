"""Drive one run of test_copy_resume's world in a process of its own, so the test can SIGKILL it.

``python -m tests.executor.copy_resume_driver SPEC.json`` (cwd: the repo). The spec names the
journal (a SQLite file or a PostgreSQL URL, with its lease), the inventory (two sites, each
with its own ``moto_server`` endpoint), and either a plan to ``start`` or a run to ``resume``.
Compute is tests/cli/fakecluster.py's shared fake cluster (its state in a file, so the next
process sees the jobs this one submitted).

What the test watches, under the spec's ``dir``:

* ``parts.log``: one line ``<pid> <part number> <wall time>`` for every ``UploadPart`` request
  the staging copy sends (boto3's ``before-send`` event: once per request on the wire);
* ``blocked``: written when the ``UploadPart`` of part ``block_at`` is about to be sent; the
  request then waits (unsent) until ``go`` exists, so the test kills or cancels the process
  at a known point of the copy;
* ``run``: the run's id, once ``b`` is submitted (the driver then writes ``b``'s outputs to the
  nyc store, as the job would: server-side copies of the test's ``seed/<name>`` objects, so a
  loaded machine does not hold the tick, and the driver's lease, for a 15 MiB upload).

``part_delay`` seconds are slept before each ``UploadPart`` (a slow link); ``workers`` parts
are in flight (2 unless given). The final status
is printed as JSON. The test calls :func:`drive` in its own process too (a resume after a kill
needs only a process other than the killed one).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3

import placer
from placer.backends import layout_for, storage_for
from placer.catalog import resolve_inventory
from placer.errors import RunLockedError
from placer.executor import Executor, RetryPolicy
from placer.journal import Journal
from placer.models import Inventory, Pipeline, Plan
from tests.cli.fakecluster import SharedFakeBackend


def drive(spec_path: str) -> dict[str, str]:
    """Start or resume the run the spec names and drive it to its end; its id and state."""
    spec = json.loads(Path(spec_path).read_text())
    work = Path(spec["dir"])
    inventory = Inventory.model_validate(spec["inventory"])
    sites = resolve_inventory(inventory)
    router = storage_for(sites)
    assert router is not None
    router.part_size, router.workers = spec["part_size"], spec.get("workers", 2)
    fra = router.store_for(spec["fra_prefix"])
    block_at, delay = spec.get("block_at"), float(spec.get("part_delay", 0.0))
    log = (work / "parts.log").open("a", buffering=1)

    def upload_part(request: Any, **_: Any) -> None:
        number = int(parse_qs(urlsplit(request.url).query)["partNumber"][0])
        log.write(f"{os.getpid()} {number} {time.time():.6f}\n")
        if number == block_at:
            (work / "blocked").write_text(str(number))
            while not (work / "go").exists():
                time.sleep(0.02)
        time.sleep(delay)

    fra._bucket_client(spec["fra_prefix"]).meta.events.register(
        "before-send.s3.UploadPart", upload_part)

    def hook(point: str, run_id: str, job: str) -> None:
        if point == "after_submit" and job == "b":  # b runs: its outputs appear in nyc
            out = spec["nyc_root"] + f"/{run_id}/b/out"
            bucket, _, key = out.removeprefix("s3://").partition("/")
            nyc = boto3.client("s3", endpoint_url=spec["nyc_endpoint"])
            for name in spec["files"]:
                nyc.copy_object(Bucket=bucket, Key=f"{key}/{name}", ChecksumAlgorithm="SHA256",
                                CopySource={"Bucket": bucket, "Key": f"seed/{name}"})
            (work / "run").write_text(run_id)

    journal = Journal(spec["journal"], lease_s=spec.get("lease_s"))
    backends = {s.name: SharedFakeBackend(SimpleNamespace(
        name=s.name, cluster=SimpleNamespace(options={}, token_env=None))) for s in sites}
    executor = Executor(journal, backends, layout=layout_for(sites), storage=router,
                        mover=router, poll_interval_s=0.05, hook=hook,
                        retry=RetryPolicy(max_attempts=3, base_s=10, seed=7))
    if spec["mode"] == "start":
        run = executor.start(Plan.model_validate(spec["plan"]),
                             pipeline=Pipeline.model_validate(spec["pipeline"]),
                             inventory=inventory,
                             policies=placer.load_policies(*spec["policies"]))
    else:  # a killed driver's PostgreSQL lease lapses after lease_s: until then, refused
        deadline = time.monotonic() + 30
        while True:
            try:
                run = executor.resume(spec["run"])
                break
            except RunLockedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    try:
        status = run.wait(timeout=60)
    finally:
        journal.close()
        log.close()
    return {"run": run.id, "state": str(status.state)}


if __name__ == "__main__":
    print(json.dumps(drive(sys.argv[1])))
    sys.exit(0)
