"""Every counterexample the hunter ever found (and the issues' reproducers) is replayed.

A case with ``status: open`` shows a hole placer still has (``known.py``): it is replayed as a
strict xfail, so the day the hole is fixed this test says so (then drop ``status`` from the
case and the hole from ``known.OPEN``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hunter.corpus import corpus_params, load_corpus
from tests.hunter.harness import hunt, materialize
from tests.hunter.language import HUNTERS

RUN_CASES = corpus_params("run")
REFUSED = corpus_params("run", refused=True)
LANGUAGE_CASES = corpus_params(*HUNTERS)


def test_the_corpus_is_not_empty() -> None:
    assert len(load_corpus()) >= 10


@pytest.mark.parametrize(("path", "doc"), RUN_CASES)
def test_corpus_case(path: Path, doc: dict[str, Any], tmp_path: Path) -> None:
    outcome = hunt(doc["case"], tmp_path)
    assert not outcome.counterexample, (
        f"{path.name} ({doc.get('source')}): {doc.get('note')}\n{outcome.report()}")
    if doc.get("expect") == "refused":
        assert outcome.stage == "refused", (
            f"{path.name}: must be refused loudly, got {outcome.stage} ({outcome.detail})")


@pytest.mark.parametrize(("path", "doc"), REFUSED)
def test_a_refused_case_exits_2_on_the_command_line(path: Path, doc: dict[str, Any],
                                                    tmp_path: Path) -> None:
    """Loudly: ``placer plan`` says what is wrong and exits 2, with no traceback."""
    from typer.testing import CliRunner

    from placer.cli import app

    files = materialize(doc["case"], tmp_path)
    res = CliRunner().invoke(app, ["plan", str(files["pipeline"]), "--inventory",
                                   str(files["inventory"]), "--policies", str(files["policies"])])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code == 2, f"{path.name}: exit {res.exit_code}\n{res.output}"


@pytest.mark.parametrize(("path", "doc"), LANGUAGE_CASES)
def test_language_corpus_case(path: Path, doc: dict[str, Any], tmp_path: Path) -> None:
    outcome = HUNTERS[doc["kind"]](doc["case"], tmp_path)
    assert not outcome.counterexample, (
        f"{path.name} ({doc.get('source')}): {doc.get('note')}\n{outcome.report()}")
    if doc.get("expect") == "refused":
        assert outcome.stage == "refused", (
            f"{path.name}: must be refused loudly, got {outcome.stage} ({outcome.detail})")
