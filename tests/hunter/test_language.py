"""The hunter on the whole policy language (issue 11): properties of placer's decisions.

Each property draws cases with the full language (allow and limit rules, audit and warn modes,
waivability, layers and their defaults, exceptions with expiry dates, tagging rules, approved
transforms, replicas) and judges placer's decisions (``placer.plan`` and
``placer.policy.evaluate``) against each other and against the oracle; see ``language.py``
and ``docs/hunter.md``. What a property finds is saved into ``corpus/`` (its ``kind`` is the
property's name) and replayed by ``test_corpus.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st

from tests.hunter.budget import CI, NIGHTLY, scaled
from tests.hunter.hunting import hunt_property
from tests.hunter.language import HUNTERS
from tests.hunter.strategies import (
    audit_cases,
    expiry_cases,
    lookalike_cases,
    shuffle_cases,
    team_cases,
)

PROPERTIES: dict[str, tuple[Callable[[], st.SearchStrategy[dict[str, Any]]], float]] = {
    # name: (strategy, share of the profile's examples)
    "shuffle": (shuffle_cases, 0.8),
    "expiry": (expiry_cases, 0.6),
    "team": (team_cases, 0.8),
    "audit": (audit_cases, 0.6),
    "lookalike": (lookalike_cases, 0.8),
}


def _hunt(name: str, profile: settings, test: str) -> None:
    strategy, share = PROPERTIES[name]
    hunt_property(strategy(), scaled(profile, share), test, HUNTERS[name], kind=name)


def test_shuffling_rules_and_files_never_changes_a_decision() -> None:
    """Rules shuffled within files, moved between files and sub-folders, files renamed and
    reordered: the same eligible sets, holds, placement and ``policy_hash``."""
    _hunt("shuffle", CI, "test_shuffling_rules_and_files_never_changes_a_decision")


def test_an_expired_exception_never_applies() -> None:
    """Judged after it expires, an exception changes nothing (as if it were not written); on
    its last day it widens only for the jobs it truly matches."""
    _hunt("expiry", CI, "test_an_expired_exception_never_applies")


def test_a_team_set_never_widens_an_organisation_set() -> None:
    """Team files (allows, defaults, forbids, requires, exceptions) only narrow; a team
    exception waiving an organisation rule is refused when the files load."""
    _hunt("team", CI, "test_a_team_set_never_widens_an_organisation_set")


def test_an_audit_rule_never_blocks_and_always_records() -> None:
    """A forbid or require in audit or warn mode decides as if deleted, and records every site
    the enforced rule rejects."""
    _hunt("audit", CI, "test_an_audit_rule_never_blocks_and_always_records")


def test_lookalikes_are_caught_by_forbids_and_never_widen() -> None:
    """Look-alike letters in data tags match every forbid and require the real value does and
    are never matched by an allow or an exception."""
    _hunt("lookalike", CI, "test_lookalikes_are_caught_by_forbids_and_never_widen")


@pytest.mark.nightly
@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_language_property_nightly(name: str) -> None:
    _hunt(name, NIGHTLY, f"test_language_property_nightly[{name}]")
