from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Session fixtures that start real clusters: every test that asks for one runs on the same xdist
# worker (``--dist loadgroup``), so each starts once, not once per worker (a test asking for
# both goes with the control plane, the costlier one).
_GROUPS = {"control_plane": "k8s", "ray_clusters": "ray", "local_world": "ray"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        group = next((g for f, g in _GROUPS.items() if f in names), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _decision_log(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's decision log is its own (`placer plan` appends to it), never the user's."""
    path = tmp_path_factory.mktemp("decisions") / "decisions.jsonl"
    monkeypatch.setenv("PLACER_DECISIONS", str(path))
    return path


@pytest.fixture(autouse=True)
def _no_background_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    """`placer submit` without --wait starts no detached controller (it would outlive the test
    and drive runs the test means to drive); tests/cli/test_controller.py asks for one."""
    monkeypatch.setenv("PLACER_NO_CONTROLLER", "1")


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def quickstart() -> Path:
    return ROOT / "examples" / "quickstart"


@pytest.fixture(scope="session")
def local_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Ray head on loopback with token auth and its inventory, started by the product's own
    code (``placer local up``: :func:`placer.local.up`), stopped at the end of the session."""
    from placer import local
    from tests.backends.ray_clusters import require_ray

    require_ray()
    home = tmp_path_factory.mktemp("local")
    world, _ = local.up(home)
    try:
        yield world
    finally:
        local.down(home)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway PostgreSQL for the session (pgserver's bundled binaries, a unix socket in a
    temporary directory); its URL, for the ``postgres`` database. Stopped at the end."""
    import warnings

    with warnings.catch_warnings():
        # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset (CI containers).
        warnings.simplefilter("ignore")
        try:
            import pgserver
        except ImportError:  # pragma: no cover - .ci/run installs it (placer[dev])
            pytest.skip("pgserver is not installed: pip install -e '.[dev]'")
        server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A URL to an empty database of its own on the session's PostgreSQL (each test's journal
    starts empty, as a new SQLite file does)."""
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(postgres_server)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
