"""A fake cluster that several ``placer`` processes share, for driving the real command.

:func:`install` makes the CLI build its compute backends, layout and storage from here instead
of the entry points: a site whose ``cluster.backend`` is ``fake`` gets a
:class:`SharedFakeBackend`, a :class:`~placer.testing.FakeComputeBackend` whose state lives in
a pickle under ``$PLACER_TEST_CLUSTER`` (locked per site), so a second process (``placer
resume``, ``placer logs``) sees the jobs the first one submitted. Outputs go under
``cluster.options.root`` (no storage backend is involved).

``cluster.options`` (strings, from the inventory):

* ``outcomes``: JSON ``{job: [outcome, …]}`` as FakeComputeBackend takes (``RUNNING``: never
  ends);
* ``leaky``: ``"1"`` makes ``logs`` print the site's token (a job that echoes its
  environment, an SDK that logs its headers), read from ``token_env``;
* ``fail_init``: ``"1"`` makes building the backend fail with an error that holds the token;
* ``gpus``: the cluster's GPUs, which it reports (``gpus()``, a CapacityReporter) less those
  its RUNNING jobs hold and ``held`` more (work placer did not submit); without ``gpus`` it
  cannot say, and ``gpus()`` refuses.

Run the command in a subprocess with ``python -m tests.cli.fakecluster ARGS…`` (cwd: the repo);
a controller it starts in the background runs the same way.
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from placer.backends import RUNNING, GpuCapacity, Handle, JobState, PrefixLayout
from placer.errors import BackendError
from placer.models import Job, JobPlacement
from placer.testing import FakeComputeBackend

STATE_ENV = "PLACER_TEST_CLUSTER"
TOKEN = "muc-5ecr3t-t0ken-do-not-leak-42"
"""The CLI tests' site token (``MUNICH_RAY``): a test fails if it is ever printed."""
_T = TypeVar("_T")


class SharedFakeBackend:
    """FakeComputeBackend with its state in a file: one cluster for every process."""

    name = "fake"

    def __init__(self, site: Any) -> None:
        cluster = site.cluster
        self.site = site.name
        self.options = dict(cluster.options)
        self.token = os.environ.get(cluster.token_env or "", "")
        if self.options.get("fail_init") == "1":
            raise BackendError(f"{self.site}: 401 Unauthorized for Bearer {self.token}")
        self.dir = Path(os.environ[STATE_ENV])
        self.dir.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _state(self) -> Iterator[FakeComputeBackend]:
        state = self.dir / f"{self.site}.pickle"
        with (self.dir / f"{self.site}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if state.exists():
                fake = pickle.loads(state.read_bytes())
            else:
                fake = FakeComputeBackend(
                    self.site, outcomes=json.loads(self.options.get("outcomes", "{}")))
            try:
                yield fake
            finally:  # all or nothing: a client killed mid-write leaves the cluster as it was
                tmp = state.with_suffix(".tmp")
                tmp.write_bytes(pickle.dumps(fake))
                os.replace(tmp, state)

    def _call(self, fn: Callable[[FakeComputeBackend], _T]) -> _T:
        with self._state() as fake:
            return fn(fake)

    def submit(self, job: Job, placement: JobPlacement, *, submission_id: str,
               env: Mapping[str, str]) -> Handle:
        with self._state() as fake:
            handle = fake.submit(job, placement, submission_id=submission_id, env=env)
            fake.jobs[submission_id].lines.append(
                "runtime_env=" + json.dumps(job.runtime_env, sort_keys=True))
            return handle

    def status(self, handle: Handle) -> JobState:
        return self._call(lambda f: f.status(handle))

    def logs(self, handle: Handle) -> str:
        text = self._call(lambda f: f.logs(handle))
        if self.options.get("leaky") == "1":
            text += f"connected to the cluster with token {self.token}\n"
        return text

    def cancel(self, handle: Handle) -> None:
        self._call(lambda f: f.cancel(handle))

    def find(self, submission_id: str) -> Handle | None:
        return self._call(lambda f: f.find(submission_id))

    def gpus(self) -> GpuCapacity:
        if "gpus" not in self.options:
            raise BackendError(f"{self.site}: this fake cluster was given no gpus option")
        total = int(self.options["gpus"])
        held = int(self.options.get("held", "0")) + self._call(
            lambda f: sum(j.placement.gpus for j in f.jobs.values() if j.state == RUNNING))
        return GpuCapacity(total=total, free=max(0, total - held))


def submissions(state_dir: Path) -> dict[str, list[str]]:
    """Every submission id each site's fake cluster received, in order."""
    out = {}
    for p in sorted(state_dir.glob("*.pickle")):
        out[p.stem] = list(pickle.loads(p.read_bytes()).submissions)
    return out


def _load_backend(real: Callable[[str], Any]) -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return SharedFakeBackend if name == "fake" else real(name)

    return load


def _layout_for(sites: Any) -> PrefixLayout:
    return PrefixLayout({s.location.key: s.cluster.options["root"] for s in sites
                         if s.cluster is not None and "root" in s.cluster.options})


def install(setattr_: Callable[[Any, str, Any], None] = setattr) -> None:
    """Make the CLI use the shared fake clusters (``setattr_``: pytest's monkeypatch.setattr
    in-process, plain setattr in a subprocess)."""
    import placer.backends as backends
    import placer.controller as controller

    setattr_(backends, "load_backend", _load_backend(backends.load_backend))
    setattr_(backends, "layout_for", _layout_for)
    setattr_(backends, "storage_for", lambda sites: None)
    # A controller `placer submit` starts in the background uses these fake clusters too.
    setattr_(controller, "CONTROLLER_COMMAND", [sys.executable, "-m", "tests.cli.fakecluster"])


if __name__ == "__main__":
    install()
    from placer.cli import app

    sys.exit(app(sys.argv[1:], prog_name="placer"))


def activate(monkeypatch: Any, state: Path) -> Path:
    """Backends from this module, in this process and in ``placer`` subprocesses, keeping
    their state in ``state``, with the test token set: the CLI tests' ``fake`` fixture."""
    monkeypatch.setenv(STATE_ENV, str(state))
    monkeypatch.setenv("MUNICH_RAY", TOKEN)
    install(monkeypatch.setattr)
    return state
