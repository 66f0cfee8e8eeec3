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


def _sites(onprem_endpoint: str | None = None, **storage: str):  # type: ignore[no-untyped-def]
    from placer.catalog import resolve_inventory
    from placer.models import Inventory

    return resolve_inventory(Inventory.model_validate({"sites": {
        "fra": {"location": "onprem:fra-dc1", "country": "DE", "storage": storage.get("fra"),
                "storage_endpoint": onprem_endpoint,
                "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}]},
        "aws": {"location": "aws:eu-central-1", "storage": storage.get("aws")},
    }}))


def test_storage_for_routes_on_prem_buckets_to_their_store_and_the_rest_to_the_cloud() -> None:
    from placer.backends import storage_for

    assert storage_for(_sites()) is None
    router = storage_for(_sites("http://minio.fra:9000", fra="s3://fra-store/placer",
                                aws="s3://eu-bucket/placer"))
    assert router is not None
    assert set(router.stores) == {"s3"}
    cloud, onprem = router.stores["s3"], router.buckets["s3"]["fra-store"]
    assert (cloud.endpoint_url, cloud.onprem_location) == (None, None)
    assert onprem.endpoint_url == "http://minio.fra:9000"
    assert onprem.onprem_location.key == "onprem:fra-dc1"
    assert router.store_for("s3://fra-store/placer/x") is onprem
    assert router.store_for("s3://eu-bucket/placer/x") is cloud
    assert router.store_for("s3://anything-else/x") is cloud


def test_storage_for_refuses_unknown_schemes() -> None:
    from placer.backends import storage_for

    with pytest.raises(BackendUnavailableError, match="no storage backend for 'ftp://x/y'"):
        storage_for(_sites(aws="ftp://x/y"))
    router = storage_for(_sites("http://minio.fra:9000", fra="s3://fra-store/p",
                                aws="gs://eu-bucket/p"))
    assert router is not None
    assert set(router.stores) == {"s3", "gs"}


def test_storage_backends_are_found_by_the_schemes_they_declare() -> None:
    from placer.backends import ObjectStore, storage_backends

    found = storage_backends()
    assert {"s3", "gs"} <= set(found)
    assert (found["s3"].__name__, found["gs"].__name__) == ("S3Resolver", "GCSResolver")
    assert all(issubclass(backend, ObjectStore) for backend in found.values())


def test_a_third_party_store_is_routed_by_its_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    """No scheme is named in placer's code: a store registered for mem:// serves mem://."""
    import placer.backends as backends
    from placer.testing import FakeStorageResolver

    class MemStore(FakeStorageResolver):
        schemes = ("mem",)

        def __init__(self) -> None:
            super().__init__({"mem://eu-bucket/": "aws:eu-central-1"})

    monkeypatch.setattr(backends, "available_backends", lambda: ["mem"])
    monkeypatch.setattr(backends, "load_backend", lambda name: MemStore)
    router = backends.storage_for(_sites(aws="mem://eu-bucket/p"))
    assert router is not None and isinstance(router.stores["mem"], MemStore)
    assert router.resolve("mem://eu-bucket/p/").location == "aws:eu-central-1"
    with pytest.raises(BackendUnavailableError, match=r"installed: mem://\)"):
        backends.storage_for(_sites(aws="s3://eu-bucket/p"))


def test_the_router_copies_between_two_kinds_of_store() -> None:
    """gs:// → s3://: the destination store streams from the source, guarded and verified."""
    from placer.backends import StorageRouter
    from placer.errors import ResidencyError
    from placer.testing import FakeStorageResolver

    gcs = FakeStorageResolver({"gs://eu/": "gcp:europe-west4"})
    s3 = FakeStorageResolver({"s3://eu/": "aws:eu-central-1", "s3://us/": "aws:us-east-1"})
    router = StorageRouter({"gs": gcs, "s3": s3})
    gcs.put("gs://eu/ds/a", b"one")
    gcs.put("gs://eu/ds/b", b"two")
    result = router.copy("gs://eu/ds", "s3://eu/in", allowed={"aws:eu-central-1"})
    assert (result.dst, result.objects, result.bytes) == ("s3://eu/in/", 2, 6)
    assert s3.objects == {"s3://eu/in/a": b"one", "s3://eu/in/b": b"two"}
    assert s3.copies == [("gs://eu/ds", "s3://eu/in")] and gcs.copies == []
    router.verify_copy(result)
    with pytest.raises(ResidencyError):
        router.copy("gs://eu/ds/", "s3://us/in/", allowed={"aws:eu-central-1"})
    assert not [u for u in s3.objects if u.startswith("s3://us/")]
