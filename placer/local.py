"""A local world in one command: ``placer local up`` / ``down`` / ``status``.

``up`` starts a Ray head on loopback with token authentication (its own ports, its own
session, a fresh random token), writes the token to a file only its owner may read (0600),
and writes an inventory with one on-prem site whose cluster is that head, so that::

    placer local up
    placer submit examples/quickstart/local-pipeline.yaml \
        --inventory ~/.placer/local/inventory.yaml --wait

runs a pipeline for real on this machine. Everything lives under a state directory
(``$PLACER_HOME/local``, default ``~/.placer/local``): ``token`` (0600), ``inventory.yaml``,
``env`` (a shell recipe exporting the token), ``state.json`` (the head's session, ports and
Ray's temp dir). ``up`` is idempotent (a head that answers is kept), ``down`` stops exactly the
processes of that head (its session), never another Ray on the machine.

The GPUs the head advertises are logical: Ray's ``GPU`` resource and placer's GPU-type
resource (:func:`placer.backends.gpu_type_resource`), so jobs planned on the inventory's pool are
scheduled by Ray as on a GPU node; nothing on the laptop is a GPU. The site's ``storage`` is a
``file://`` store in the state directory (``store/``, :mod:`placer.filestore`): jobs write their
outputs there, and it is kept by ``down``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Set
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from placer.errors import BackendError, BackendUnavailableError, ConfigError, PlacerError

if TYPE_CHECKING:
    from placer.models import Pipeline
    from placer.preflight import Problem

SITE: Final = "local"
LOCATION: Final = "onprem:local"
TOKEN_ENV: Final = "PLACER_LOCAL_RAY_TOKEN"
START_TIMEOUT_S: Final = 120.0
_PORT_NAMES: Final = ("port", "dashboard-port", "ray-client-server-port", "node-manager-port",
                      "object-manager-port", "dashboard-agent-listen-port",
                      "dashboard-agent-grpc-port", "runtime-env-agent-port",
                      "metrics-export-port")
_WORKER_PORTS: Final = 40


def home() -> Path:
    """The local world's state directory: ``$PLACER_HOME/local``, else ``~/.placer/local``."""
    base = os.environ.get("PLACER_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".placer") / "local"


@dataclass(frozen=True)
class RayHead:
    """A Ray head this module started: where it answers, and what to stop to end it."""

    address: str          # the Jobs API (dashboard) URL
    session: int          # the session id of every process of this head
    temp_dir: str         # Ray's temp dir (short: unix socket paths are limited)
    gcs_port: int
    started_s: float = 0.0
    gpus: int = 0         # the logical GPUs it offers, and their type (the inventory's pool)
    gpu: str = ""


def require_ray() -> None:
    """Refuse clearly when Ray is not installed (the ``ray`` extra brings it)."""
    if importlib.util.find_spec("ray") is None:
        raise BackendUnavailableError(
            "a local world runs on Ray, which is not installed: pip install 'placer[ray]'")


def free_ports(n: int, *, skip: Set[int] = frozenset()) -> list[int]:
    """``n`` distinct free loopback ports, every socket held until all are chosen (closing
    one before binding the next lets the kernel hand the same port out twice). ``skip``:
    ports handed out before and not yet bound (heads started side by side, in the tests)."""
    with contextlib.ExitStack() as stack:
        out: list[int] = []
        while len(out) < n:
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port not in out and port not in skip:
                out.append(port)
        return out


def free_range(width: int) -> int:
    """A base port below Linux's ephemeral range whose ``width`` ports are all free."""
    for _ in range(200):
        base = 20000 + secrets.randbelow(10000 - width)
        try:
            for port in range(base, base + width):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise BackendError("no free range of worker ports for a local Ray head")


def start_head(token: str, *, gpus: int, gpu: str, cpus: int = 2,
               timeout_s: float = START_TIMEOUT_S) -> RayHead:
    """Start a Ray head on 127.0.0.1 with token auth; return once its Jobs API accepts the
    token. The head runs in a session of its own (``start_new_session``), so
    :func:`stop_session` ends exactly its processes; on any failure it is stopped here."""
    from placer.backends import gpu_type_resource

    require_ray()
    ports = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES)), strict=True))
    workers = free_range(_WORKER_PORTS)
    temp_dir = tempfile.mkdtemp(prefix="placer-ray-", dir="/tmp")
    # A Ray address or token of the caller's environment must not leak into this head.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0")
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head",
           "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1",
           *(a for k, v in ports.items() for a in (f"--{k}", str(v))),
           "--min-worker-port", str(workers), "--max-worker-port", str(workers + _WORKER_PORTS - 1),
           "--num-cpus", str(cpus), "--num-gpus", str(gpus),
           "--resources", json.dumps({gpu_type_resource(gpu): gpus}),
           "--object-store-memory", str(80 * 1024 * 1024), "--temp-dir", temp_dir,
           "--disable-usage-stats"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    head = RayHead(address=f"http://127.0.0.1:{ports['dashboard-port']}", session=proc.pid,
                   temp_dir=temp_dir, gcs_port=ports["port"])
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        if proc.returncode != 0:
            raise BackendError(f"ray start failed ({proc.returncode}):\n{out[-3000:]}")
        deadline = t0 + timeout_s
        while True:
            problem = probe(head.address, token, timeout_s=2.0)
            if problem is None:
                break
            if time.monotonic() > deadline:
                raise BackendError(f"the local Ray head did not answer in {timeout_s:.0f}s: "
                                   f"{problem}")
            time.sleep(0.5)
    except BaseException:
        proc.kill()
        stop_session(head.session)
        with contextlib.suppress(OSError):
            _rmtree(Path(temp_dir))
        raise
    return RayHead(head.address, head.session, temp_dir, head.gcs_port,
                   round(time.monotonic() - t0, 1), gpus, gpu)


def probe(address: str, token: str | None, *, timeout_s: float = 3.0) -> str | None:
    """One request to a Ray Jobs API with the token, no retry: ``None`` if it answered and
    accepted the token, else why not (``unreachable: …``, ``token refused (HTTP 401)``)."""
    req = urllib.request.Request(address.rstrip("/") + "/api/jobs/")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            resp.read(1)
    except urllib.error.HTTPError as exc:
        exc.close()  # the error holds the response (and its socket) open
        if exc.code in (401, 403):
            return f"token refused (HTTP {exc.code})"
        return f"answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"unreachable ({reason})"
    return None


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (Ray's workers change process group, not session)."""
    out = []
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()  # state ppid pgrp session ...
            if int(fields[3]) == sid and fields[0] != "Z":
                out.append(int(entry.name))
        return out
    ps = subprocess.run(["ps", "-A", "-o", "pid=,sess="], capture_output=True, text=True,
                        check=False)
    for line in ps.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == str(sid):
            out.append(int(parts[0]))
    return out


def stop_session(*sids: int) -> bool:
    """Stop every process of the sessions ``sids`` together (TERM, then KILL: a head and its
    worker nodes go down at once); whether any was running."""

    def members() -> list[int]:
        return [pid for sid in sids for pid in session_members(sid)]

    pids = members()
    found = bool(pids)
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            time.sleep(0.2)
            pids = members()
        if not pids:
            break
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        ps = subprocess.run(["ps", "-p", str(pid), "-o", "args="], capture_output=True,
                            text=True, check=False)
        return ps.stdout


def stop_head(head: RayHead) -> bool:
    """Stop the head's processes; whether any was running. A session id is reused after a
    reboot, so the session is taken as the head's only while one of its processes runs from
    the head's own temp dir (Ray's GCS server and raylet name it): never anyone else's."""
    members = session_members(head.session)
    if not any(head.temp_dir in _cmdline(pid) for pid in members):
        return False
    return stop_session(head.session)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def inventory_text(head: RayHead, token_file: Path, *, gpus: int, gpu: str,
                   country: str, store: Path | None = None) -> str:
    """The inventory of the local world: one on-prem site on the head, token by file, and
    its outputs in the ``file://`` store ``store`` (none: no storage)."""
    storage = [f"    storage: {json.dumps(store.resolve().as_uri())}"] if store else []
    return "\n".join([
        "# Written by `placer local up`: one on-prem site on a Ray head on this machine.",
        "# Its GPUs are logical (Ray schedules them; nothing here is a GPU). Its storage is",
        "# a directory here (a file:// store: where this site is).",
        "apiVersion: placer/v1",
        "kind: Inventory",
        "name: local",
        "sites:",
        f"  {SITE}:",
        f"    location: {LOCATION}",
        f"    country: {country}",
        "    labels: {class: self-hosted}   # a site we operate ourselves (policies/)",
        "    pools:",
        f"      - {{gpu: {gpu}, count: {gpus}, cost_per_gpu_hour: $0.10}}",
        "    cluster:",
        "      backend: ray",
        f"      address: {head.address}",
        f"      token_file: {json.dumps(str(token_file))}",  # quoted: any path is YAML
        *storage,
        "",
    ])


@dataclass(frozen=True)
class World:
    """What ``placer local up`` leaves in the state directory."""

    home: Path
    head: RayHead

    @property
    def inventory(self) -> Path:
        return self.home / "inventory.yaml"

    @property
    def token_file(self) -> Path:
        return self.home / "token"

    @property
    def env_file(self) -> Path:
        return self.home / "env"

    @property
    def store(self) -> Path:
        """The site's ``file://`` store: where jobs write their outputs (kept by ``down``)."""
        return self.home / "store"


def _state(home_dir: Path) -> RayHead | None:
    try:
        data = json.loads((home_dir / "state.json").read_text())
        return RayHead(**data)
    except (OSError, ValueError, TypeError):
        return None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def up(home_dir: Path | None = None, *, gpus: int = 4, gpu: str = "A100-80GB",
       cpus: int = 2, country: str = "DE") -> tuple[World, bool]:
    """Start the local world, or keep the one that answers; ``(world, started)``."""
    home_dir = home_dir or home()
    home_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token_file = home_dir / "token"
    head = _state(home_dir)
    token = token_file.read_text().strip() if token_file.is_file() else ""
    if head is not None and token and probe(head.address, token, timeout_s=2.0) is None:
        world, started = World(home_dir, head), False
    else:
        if head is not None:  # a head that no longer answers: end what is left of it
            stop_head(head)
            _rmtree(Path(head.temp_dir))
        token = secrets.token_urlsafe(32)
        _write_private(token_file, token + "\n")
        head = start_head(token, gpus=gpus, gpu=gpu, cpus=cpus)
        (home_dir / "state.json").write_text(json.dumps(asdict(head), indent=1) + "\n")
        world, started = World(home_dir, head), True
    # A head kept as it is keeps its GPUs: the inventory says what the head offers.
    world.store.mkdir(exist_ok=True, mode=0o700)
    world.inventory.write_text(inventory_text(head, token_file, gpus=head.gpus or gpus,
                                              gpu=head.gpu or gpu, country=country,
                                              store=world.store))
    _write_private(world.env_file, f'export {TOKEN_ENV}="$(cat {token_file})"\n')
    return world, started


def down(home_dir: Path | None = None) -> bool:
    """Stop the local world's head and forget it; whether one was running. The inventory and
    token are removed too (the next ``up`` makes new ones)."""
    home_dir = home_dir or home()
    head = _state(home_dir)
    if head is None:
        return False
    running = stop_head(head)
    _rmtree(Path(head.temp_dir))
    for name in ("state.json", "token", "env", "inventory.yaml"):
        with contextlib.suppress(FileNotFoundError):
            (home_dir / name).unlink()
    return running


def status(home_dir: Path | None = None) -> tuple[RayHead | None, str | None]:
    """The recorded head and why it does not answer (``None``: it answers, token accepted)."""
    home_dir = home_dir or home()
    head = _state(home_dir)
    if head is None:
        return None, "not started (placer local up)"
    token_file = home_dir / "token"
    token = token_file.read_text().strip() if token_file.is_file() else None
    return head, probe(head.address, token, timeout_s=2.0)


# -- the command line ---------------------------------------------------------------------------

app = typer.Typer(no_args_is_help=True, help="A local world: a Ray head on this machine with "
                  "token auth, and an inventory for it.")
HomeOpt = Annotated[Path | None, typer.Option(
    "--home", help="state directory (default: $PLACER_HOME/local or ~/.placer/local)")]


def _fail(exc: PlacerError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@app.command("up")
def up_cmd(home_dir: HomeOpt = None,
           gpus: Annotated[int, typer.Option(min=1, help="logical GPUs the head offers")] = 4,
           gpu: Annotated[str, typer.Option(help="their GPU type (a catalog name)")]
           = "A100-80GB",
           cpus: Annotated[int, typer.Option(min=1, help="CPUs the head offers")] = 2,
           country: Annotated[str, typer.Option(help="the site's country (ISO 3166-1)")]
           = "DE") -> None:
    """Start a Ray head on loopback with token auth and write an inventory for it."""
    try:
        world, started = up(home_dir, gpus=gpus, gpu=gpu, cpus=cpus, country=country)
    except PlacerError as exc:
        raise _fail(exc) from None
    what = (f"started in {world.head.started_s:.0f}s" if started else "already up")
    if not started and (world.head.gpus, world.head.gpu) != (gpus, gpu):
        typer.echo(f"note: it offers {world.head.gpus} {world.head.gpu}; placer local down, "
                   "then up, to change that", err=True)
    typer.echo(f"local Ray head {what}: {world.head.address} (token auth)")
    typer.echo(f"inventory: {world.inventory}")
    typer.echo(f"token: {world.token_file} (0600); shell: source {world.env_file}")
    typer.echo(f"try: placer submit examples/quickstart/local-pipeline.yaml --inventory "
               f"{world.inventory} --wait")
    typer.echo("stop it with: placer local down")


@app.command("down")
def down_cmd(home_dir: HomeOpt = None) -> None:
    """Stop the local Ray head (only its own processes) and remove its files."""
    typer.echo("local Ray head stopped" if down(home_dir) else "no local Ray head was running")


@app.command("status")
def status_cmd(home_dir: HomeOpt = None) -> None:
    """Whether the local Ray head answers and accepts its token. Exit 1 if not."""
    head, problem = status(home_dir)
    if head is None:
        typer.echo(f"no local Ray head: {problem}")
        raise typer.Exit(1)
    if problem is None:
        typer.echo(f"local Ray head up: {head.address} (token accepted), {head.gpus} "
                   f"{head.gpu}; inventory: {(home_dir or home()) / 'inventory.yaml'}")
        return
    typer.echo(f"local Ray head {head.address} down: {problem} (placer local up starts it)")
    raise typer.Exit(1)


# -- preflight (``placer preflight``; ``placer submit`` calls :func:`preflight_or_exit`) ---------

def run_preflight(inventory: Path, pipeline: Pipeline | None = None, *,
                  only: set[str] | None = None, jobs: set[str] | None = None,
                  timeout_s: float = 3.0) -> list[Problem]:
    """:func:`placer.preflight.preflight` for the sites of an inventory file."""
    import placer
    from placer.catalog import default_catalog, resolve_inventory
    from placer.preflight import preflight

    sites = resolve_inventory(placer.load_inventory(inventory), default_catalog())
    unknown = sorted((only or set()) - {s.name for s in sites})
    if unknown:
        raise ConfigError(f"{inventory}: no site named {', '.join(unknown)} (sites: "
                           f"{', '.join(s.name for s in sites)})")
    return preflight(sites, pipeline, only=only, jobs=jobs, timeout_s=timeout_s)


def report_problems(problems: list[Problem]) -> None:
    """Each problem on one line on stderr, then exit 2; nothing when there is none."""
    if not problems:
        return
    for p in problems:
        typer.echo(f"preflight: {p.message}", err=True)
    typer.echo(f"preflight: {len(problems)} problem(s); nothing was submitted or recorded",
               err=True)
    raise typer.Exit(2)


def preflight_or_exit(plan: Any, inventory: Path, pipeline: Pipeline | None) -> None:
    """``placer submit``'s preflight: the sites and jobs of ``plan``; exit 2 on a problem.
    ``PLACER_NO_PREFLIGHT=1`` skips it (a cluster that cannot be asked before submitting)."""
    if os.environ.get("PLACER_NO_PREFLIGHT", "").strip() in ("1", "true", "yes"):
        return
    placements = getattr(plan, "jobs", {}) or {}
    report_problems(run_preflight(inventory, pipeline,
                                  only={p.site for p in placements.values()},
                                  jobs=set(placements)))


def preflight_cmd(
    inventory: Annotated[Path, typer.Option(help="inventory YAML with sites' clusters")],
    pipeline: Annotated[Path | None, typer.Option(
        help="also check this pipeline's images are pinned")] = None,
    site: Annotated[list[str] | None, typer.Option(help="only this site; repeatable")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds per cluster")] = 3.0,
) -> None:
    """Check the world before a run: tokens present and accepted, clusters reachable, stores
    writable, images pinned. One line per problem with its fix; exit 2 if any, in seconds."""
    try:
        pipe = None
        if pipeline is not None:
            from placer.loading import load_pipeline_with_source

            pipe = load_pipeline_with_source(pipeline)[0]
        problems = run_preflight(inventory, pipe, only=set(site) if site else None,
                                 timeout_s=timeout)
    except PlacerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    report_problems(problems)
    typer.echo("preflight: ok")
