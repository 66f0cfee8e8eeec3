"""The public face of the package: a curated __all__, and no cloud SDK on import."""

import json
import subprocess
import sys

import placer


def test_all_is_sorted_complete_and_public() -> None:
    assert list(placer.__all__) == sorted(placer.__all__, key=lambda s: (s[0].islower(), s))
    for name in placer.__all__:
        assert not name.startswith("_")
        assert hasattr(placer, name), name
    exported = {n for n in dir(placer) if not n.startswith("_")}
    modules = {n for n in exported if type(getattr(placer, n)).__name__ == "module"}
    assert exported - modules == set(placer.__all__)


def test_import_placer_imports_no_cloud_sdk() -> None:
    code = (
        "import sys, json, placer, placer.cli; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'ray','kubernetes','boto3','botocore','google','highspy_cloud'})))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(res.stdout) == []


def test_every_error_is_a_placer_error() -> None:
    for name in placer.__all__:
        obj = getattr(placer, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, placer.PlacerError), name
    assert issubclass(placer.PolicyError, ValueError)
    assert issubclass(placer.CatalogError, LookupError)


def test_import_placer_and_the_cli_load_no_planner_solver_or_executor() -> None:
    """`import placer` and `placer --help` stay light (issue 14: they took 2 s and 3.7 s with
    numpy, networkx, the solvers and the executor loaded up front); each loads when named."""
    heavy = {"numpy", "networkx", "highspy", "matplotlib", "placer.scheduler",
             "placer.optimizer", "placer.executor", "placer.api", "placer.journal"}
    code = (
        "import sys, json, placer, placer.cli; "
        f"print(json.dumps(sorted(m for m in sys.modules if m in {sorted(heavy)!r})))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(res.stdout) == []
    named = subprocess.run(
        [sys.executable, "-c", "import sys, placer; placer.plan; placer.Journal; "
         "print('placer.scheduler' in sys.modules and 'placer.journal' in sys.modules)"],
        capture_output=True, text=True, check=True)
    assert named.stdout.strip() == "True"
