"""How hard the hunter hunts: a fast deterministic CI budget, and a large nightly one.

CI (every push): ``python -m pytest tests/hunter -q`` runs the ``hunter-ci`` profile:
derandomized (the same examples every run, so CI is deterministic), no example database, a
few dozen to a hundred examples per property. Nightly: ``python -m pytest tests/hunter -m
nightly`` runs ``hunter-nightly``: fresh random examples each night, 2,000 per property by
default (``HUNTER_EXAMPLES`` changes it). Profiles are registered, not loaded, so the rest of
the test suite keeps its own hypothesis settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
          HealthCheck.function_scoped_fixture, HealthCheck.large_base_example]

settings.register_profile(
    "hunter-ci", max_examples=int(os.environ.get("HUNTER_CI_EXAMPLES", "100")),
    derandomize=True, database=None, deadline=None, suppress_health_check=_QUIET,
    print_blob=True)
settings.register_profile(
    "hunter-nightly", max_examples=int(os.environ.get("HUNTER_EXAMPLES", "2000")),
    derandomize=False, database=None, deadline=None, suppress_health_check=_QUIET,
    print_blob=True)

CI = settings.get_profile("hunter-ci")
NIGHTLY = settings.get_profile("hunter-nightly")


def scaled(profile: settings, fraction: float) -> settings:
    """The same profile with a fraction of its examples (for the slower properties)."""
    return settings(profile, max_examples=max(5, int(profile.max_examples * fraction)))
