import pytest

from placer.backends import available_backends, load_backend
from placer.errors import BackendUnavailableError


def test_a_backend_that_is_not_installed_names_the_extra() -> None:
    if "ray" in available_backends():
        pytest.skip("the ray backend is installed here")
    with pytest.raises(BackendUnavailableError) as info:
        load_backend("ray")
    assert str(info.value) == "backend 'ray' is not installed; pip install 'placer[ray]'"


def test_an_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(BackendUnavailableError) as info:
        load_backend("carrier-pigeon")
    assert "install the package that provides it" in str(info.value)
