"""Drive a hunter property with hypothesis and keep what it finds.

Every counterexample hypothesis settles on (after shrinking) is written into the corpus before
the test fails, with the report and an attribution, so it is replayed on every later run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunter.corpus import save_found
from tests.hunter.harness import Outcome, hunt

Hunter = Callable[[dict[str, Any], Path], Outcome]


class Counterexample(AssertionError):
    """A case placer got wrong (a residency violation, or an exception it did not mean)."""


@cache
def _kind(signature: str) -> type[Counterexample]:
    # One exception type per kind of failure, so hypothesis shrinks each kind on its own
    # rather than collapsing a crash and a violation into one "bug".
    return type(f"Counterexample_{abs(hash(signature))}", (Counterexample,), {})


def signature(outcome: Outcome) -> str:
    if outcome.unexpected:
        return "crash:" + outcome.unexpected.split(":", 1)[0]
    return "violation"


def hunt_property(strategy: st.SearchStrategy[dict[str, Any]], profile: settings, test: str,
                  hunter: Hunter = hunt, kind: str = "run", save: bool = True) -> None:
    """Run ``hunter`` on examples of ``strategy``; on failure save every minimal case found."""
    found: dict[str, tuple[dict[str, Any], Outcome]] = {}

    @profile
    @given(case=strategy)
    def prop(case: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory(prefix="hunt-") as d:
            outcome = hunter(case, Path(d))
        if outcome.counterexample:
            sig = signature(outcome)
            found[sig] = (case, outcome)
            raise _kind(sig)(outcome.report())

    try:
        prop()
    except BaseException:
        if save:
            paths = [save_found(case, outcome, test, kind) for case, outcome in found.values()]
            print("\nhunter: counterexamples saved to the corpus:\n  "
                  + "\n  ".join(str(p) for p in paths))
        raise
