"""Session fixture with two real Ray clusters; import it into a test module to use it.

Not a ``conftest.py`` on purpose: only modules that ask for Ray pay its start-up time::

    from tests.backends.conftest_ray import ray_clusters  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.backends.ray_clusters import ClusterPair, require_ray, shared_clusters, stop_all


@pytest.fixture(scope="session")
def ray_clusters() -> Iterator[ClusterPair]:
    """Two Ray heads on loopback (``onprem``, ``cloud``), token auth on, stopped at the end."""
    require_ray()
    try:
        yield shared_clusters()
    finally:
        stop_all()
