"""The examples in placer's docstrings run, as the reader would type them."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import placer

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(placer.__path__, "placer.")]
    for backend in sorted((ROOT / "backends").glob("placer_*")):
        names.append(backend.name)
        names += [m.name for m in pkgutil.walk_packages([str(backend)], f"{backend.name}.")]
    return sorted(n for n in names if not n.endswith(".__main__"))  # that one runs the CLI


@pytest.mark.parametrize("name", _modules())
def test_the_docstring_examples_run(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # a backend whose SDK is not installed: nothing to run
        pytest.skip(f"{name}: {exc}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
