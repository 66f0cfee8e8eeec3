from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
