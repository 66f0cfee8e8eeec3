"""Real local Ray clusters for tests: heads on loopback, token authentication on.

Each cluster gets its own ports, temp dir (short, for unix socket path limits) and random token,
and runs in its own session, so stopping it kills exactly its processes (Ray's workers change
their process group but keep the session) and never another cluster on the machine, which
``ray stop`` would. Every cluster started is also stopped at interpreter exit as a last resort.

Used by the backend tests and by the executor's end-to-end tests::

    pair = shared_clusters()           # started once per test process
    onprem, cloud = pair.onprem, pair.cloud
    site = onprem.site("onprem-a", kind="onprem")
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from placer import local
from placer.models import Cluster, GpuPool, Site

GPU = "A100-80GB"
GPUS_PER_CLUSTER = 8
START_TIMEOUT_S = 120.0
_STARTED: list[RayCluster] = []
_LOCK = threading.Lock()


def require_ray() -> None:
    """Skip when Ray is missing on a developer machine; fail in CI, which must have it."""
    missing = [m for m in ("ray", "placer_ray") if importlib.util.find_spec(m) is None]
    if not missing:
        return
    msg = (f"{', '.join(missing)} not importable: pip install -e '.[dev,ray]' "
           "(Ray tests start real local clusters)")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg)
    pytest.skip(msg)


_PORTS_LOCK = threading.Lock()
_HANDED_OUT: set[int] = set()


def _free_ports(n: int) -> list[int]:
    """``n`` free ports (:func:`placer.local.free_ports`), none handed out before in this
    process: clusters started side by side choose their ports before either has bound them."""
    with _PORTS_LOCK:
        out = local.free_ports(n, skip=_HANDED_OUT)
        _HANDED_OUT.update(out)
        return out


_free_range = local.free_range


@dataclass
class RayCluster:
    """A running single-node Ray cluster on 127.0.0.1 with token auth."""

    name: str
    token: str
    token_env: str
    dashboard_port: int
    gcs_port: int
    temp_dir: Path
    session: int = 0
    startup_s: float = 0.0
    stopped: bool = field(default=False)
    workers: list[int] = field(default_factory=list)
    """Sessions of the worker nodes :func:`add_node` joined to it (stopped with it)."""

    @property
    def address(self) -> str:
        """The Jobs API (dashboard) URL, as an inventory's ``cluster.address`` gives it."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    def cluster(self, **options: str) -> Cluster:
        """The inventory's ``cluster:`` entry for this cluster (token by env var name)."""
        return Cluster(backend="ray", address=self.address, token_env=self.token_env,
                       options=options)

    def site(self, name: str | None = None, *, kind: str = "onprem", **options: str) -> Site:
        """A site that runs on this cluster (on-prem in DE, or cloud in aws:eu-central-1)."""
        if kind == "onprem":
            return Site(name=name or self.name, kind="onprem", location=f"onprem:{self.name}",
                        country="DE", pools=(GpuPool(gpu=GPU, count=GPUS_PER_CLUSTER,
                                                     cost_per_gpu_hour=1.0),),
                        cluster=self.cluster(**options))
        return Site(name=name or self.name, kind="cloud", location="aws:eu-central-1",
                    cluster=self.cluster(**options))

    def client(self) -> Any:
        """A raw SDK client with this cluster's token (for assertions behind the backend)."""
        from ray.job_submission import JobSubmissionClient

        return JobSubmissionClient(self.address,
                                   headers={"Authorization": f"Bearer {self.token}"})

    def stop(self) -> None:
        """Kill every process of this cluster (TERM, then KILL), and remove its temp dir."""
        if self.stopped:
            return
        self.stopped = True
        local.stop_session(*self.workers, self.session)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_cluster(name: str, *, num_cpus: int = 2, gpus: int = GPUS_PER_CLUSTER) -> RayCluster:
    """Start a Ray head on loopback with a fresh token; return once the Jobs API answers.
    Its GPUs are Ray's logical resources (``--num-gpus``): nothing needs a real GPU."""
    token = secrets.token_urlsafe(24)
    env_name = f"PLACER_TEST_RAY_TOKEN_{name.upper().replace('-', '_')}"
    temp_dir = Path(tempfile.mkdtemp(prefix="pr", dir="/tmp"))
    names = ("port", "dashboard-port", "ray-client-server-port", "node-manager-port",
             "object-manager-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
             "runtime-env-agent-port", "metrics-export-port")
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    worker_base = _free_range(40)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAY_") and k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0")
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head",
           "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1",
           *(a for k, v in ports.items() for a in (f"--{k}", str(v))),
           "--min-worker-port", str(worker_base), "--max-worker-port", str(worker_base + 39),
           "--num-cpus", str(num_cpus), "--num-gpus", str(gpus),
           "--resources", json.dumps({f"gpu_type:{GPU}": gpus}),
           "--object-store-memory", str(80 * 1024 * 1024), "--temp-dir", str(temp_dir),
           "--disable-usage-stats"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    cluster = RayCluster(name=name, token=token, token_env=env_name,
                         dashboard_port=ports["dashboard-port"], gcs_port=ports["port"],
                         temp_dir=temp_dir, session=proc.pid)
    with _LOCK:
        _STARTED.append(cluster)
    try:
        out, _ = proc.communicate(timeout=START_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start for {name} failed ({proc.returncode}):\n{out[-3000:]}")
        _wait_for_jobs_api(cluster, t0 + START_TIMEOUT_S)
    except BaseException:
        proc.kill()
        cluster.stop()
        raise
    cluster.startup_s = time.monotonic() - t0
    os.environ[env_name] = token  # what an operator's environment would hold for token_env
    return cluster


def add_node(cluster: RayCluster, ip: str, *, gpus: int, num_cpus: int = 1) -> None:
    """Join a worker node with ``gpus`` GPUs to ``cluster``, at loopback address ``ip``.

    Each node needs an address of its own (``127.0.0.2``, ``127.0.0.3``: all of 127/8 is
    loopback on Linux): Ray's monitor keys some of its figures by node address, and two nodes
    at one address would be counted as one. Returns once ``ray start`` has; the dashboard
    shows the node a few seconds later.
    """
    names = ("node-manager-port", "object-manager-port", "dashboard-agent-listen-port",
             "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port")
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    worker_base = _free_range(20)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=cluster.token, RAY_USAGE_STATS_ENABLED="0")
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start",
           "--address", f"127.0.0.1:{cluster.gcs_port}", "--node-ip-address", ip,
           *(a for k, v in ports.items() for a in (f"--{k}", str(v))),
           "--min-worker-port", str(worker_base), "--max-worker-port", str(worker_base + 19),
           "--num-cpus", str(num_cpus), "--num-gpus", str(gpus),
           "--resources", json.dumps({f"gpu_type:{GPU}": gpus}),
           "--object-store-memory", str(80 * 1024 * 1024), "--disable-usage-stats"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    cluster.workers.append(proc.pid)
    out, _ = proc.communicate(timeout=START_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"ray start of a node at {ip} for {cluster.name} failed "
                           f"({proc.returncode}):\n{out[-3000:]}")


def _wait_for_jobs_api(cluster: RayCluster, deadline: float) -> None:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            cluster.client().list_jobs()
            return
        except Exception as exc:  # not up yet: connection refused, 5xx while modules load
            last = exc
            time.sleep(0.5)
    raise RuntimeError(f"Ray Jobs API of {cluster.name} did not answer: {last!r}")


@dataclass
class ClusterPair:
    """Two clusters: one stands for an on-prem site, one for a cloud site."""

    onprem: RayCluster
    cloud: RayCluster

    def stop(self) -> None:
        self.onprem.stop()
        self.cloud.stop()


_PAIR: ClusterPair | None = None


def _start_all(names: list[str]) -> dict[str, RayCluster]:
    """Start clusters in parallel; if any fails, stop the others and raise its error."""
    results: dict[str, RayCluster | BaseException] = {}

    def run(name: str) -> None:
        try:
            results[name] = start_cluster(name)
        except BaseException as exc:
            results[name] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = {n: r for n, r in results.items() if isinstance(r, RayCluster)}
    failed = [r for r in results.values() if isinstance(r, BaseException)]
    if failed:
        for c in started.values():
            c.stop()
        raise failed[0]
    return started


def shared_clusters() -> ClusterPair:
    """The process-wide pair, started in parallel on first call.

    A member that a test stopped (to take its site down) is restarted here, in place, on new
    ports with a new token: callers should read ``pair.onprem`` / ``pair.cloud`` afresh.
    """
    global _PAIR
    if _PAIR is None:
        started = _start_all(["onprem", "cloud"])
        _PAIR = ClusterPair(started["onprem"], started["cloud"])
    stale = [n for n in ("onprem", "cloud") if getattr(_PAIR, n).stopped]
    if stale:
        for name, cluster in _start_all(stale).items():
            setattr(_PAIR, name, cluster)
    return _PAIR


@atexit.register
def stop_all() -> None:
    """Stop every cluster this process started (idempotent)."""
    with _LOCK:
        clusters = list(_STARTED)
    for c in clusters:
        c.stop()
