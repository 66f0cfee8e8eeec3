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
