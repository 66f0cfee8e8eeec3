"""A real ``moto_server`` on loopback for the S3 backend's tests.

Started as a subprocess on a free 127.0.0.1 port, waited for until it answers HTTP, stopped
at the end of the session. Tests talk to it over HTTP with boto3, as placer would to S3.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# Fake credentials the tests grep for in every error message.
ACCESS_KEY = "AKIAPLACERTESTKEY0001"
SECRET_KEY = "placer-test-secret-Zq8vX3nL9tB2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_server(argv: list[str], url: str, probe: str, name: str, *,
                 env: Mapping[str, str] | None = None, timeout: float = 30.0) -> Iterator[str]:
    """Run a server process, wait until ``url + probe`` answers HTTP, yield ``url``, stop it."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"{url}{probe}", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not answer on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def moto_server(env: Mapping[str, str] | None = None, timeout: float = 30.0) -> Iterator[str]:
    """Run ``moto_server`` on a free loopback port; yield its endpoint URL."""
    port = free_port()
    with local_server([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                      f"http://127.0.0.1:{port}", "/moto-api/data.json", "moto_server",
                      env=env, timeout=timeout) as url:
        yield url
