"""A real ``mlflow server`` on loopback for the tracking tests, started once per session.

SQLite backend store and artifact root in a temporary folder; its job runner is switched off
(``MLFLOW_SERVER_ENABLE_JOB_EXECUTION``: placer logs runs, it runs no MLflow jobs). The server
and its uvicorn worker are one process group, stopped together at the end.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from tests.backends.s3_server import free_port

START_TIMEOUT_S = 240.0  # importing mlflow on a loaded 2-core machine takes tens of seconds


def mlflow_missing() -> bool:
    return importlib.util.find_spec("mlflow") is None


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The tracking URI of a live ``mlflow server`` (skipped only if mlflow is not installed:
    the ``dev`` extra installs it, so CI runs these tests)."""
    if mlflow_missing():
        pytest.skip("mlflow is not installed (pip install -e '.[dev]' installs it)")
    home = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    logfile = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
         "--default-artifact-root", str(home / "artifacts")],
        stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True, cwd=home,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    try:
        _wait_healthy(proc, url, home / "server.log")
        yield url
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        logfile.close()


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}: "
                               f"{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer on {url}: "
                                   f"{log.read_text()[-2000:]}") from None
            time.sleep(0.25)
