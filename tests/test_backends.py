import pytest

from placer.backends import EXTRAS, available_backends, load_backend
from placer.errors import BackendUnavailableError


def test_shipped_backends_are_found_through_entry_points() -> None:
    assert {"ray", "s3", "gcs"} <= set(available_backends())


def test_a_backend_whose_extra_is_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EXTRAS, "slurm", "slurm")
    with pytest.raises(BackendUnavailableError) as info:
        load_backend("slurm")
    assert str(info.value) == "backend 'slurm' is not installed; pip install 'placer[slurm]'"


def test_an_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(BackendUnavailableError) as info:
        load_backend("carrier-pigeon")
    assert str(info.value) == (
        "backend 'carrier-pigeon' is not installed; install the package that provides it"
    )
