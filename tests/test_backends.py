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


def _sites(**storage: str):  # type: ignore[no-untyped-def]
    from placer.catalog import resolve_inventory
    from placer.models import Inventory

    return resolve_inventory(Inventory.model_validate({"sites": {
        "fra": {"location": "onprem:fra-dc1", "country": "DE", "storage": storage.get("fra"),
                "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}]},
        "aws": {"location": "aws:eu-central-1", "storage": storage.get("aws")},
    }}))


def test_storage_for_declares_on_prem_buckets_and_asks_the_cloud_about_its_own() -> None:
    from placer.backends import storage_for

    assert storage_for(_sites()) is None
    router = storage_for(_sites(fra="s3://fra-store/placer", aws="s3://eu-bucket/placer"))
    assert router is not None
    assert set(router.stores) == {"s3"}
    assert router.stores["s3"].bucket_locations == {"fra-store": "onprem:fra-dc1"}


def test_storage_for_refuses_unknown_schemes_and_cross_store_copies() -> None:
    from placer.backends import storage_for
    from placer.errors import BackendError

    with pytest.raises(BackendUnavailableError, match="no storage backend for 'ftp://x/y'"):
        storage_for(_sites(fra="ftp://x/y"))
    router = storage_for(_sites(fra="s3://fra-store/p", aws="gs://eu-bucket/p"))
    assert router is not None
    with pytest.raises(BackendError, match="copies between different stores"):
        router.copy("gs://eu-bucket/p/x", "s3://fra-store/p/x", allowed={"onprem:fra-dc1"})
