"""Every counterexample the hunter ever found (and the issue's reproducers) is replayed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hunter.corpus import load_corpus
from tests.hunter.harness import hunt, materialize

RUN_CASES = [pytest.param(p, doc, id=p.stem) for p, doc in load_corpus() if doc["kind"] == "run"]
REFUSED = [pytest.param(p, doc, id=p.stem) for p, doc in load_corpus()
           if doc["kind"] == "run" and doc.get("expect") == "refused"]


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
