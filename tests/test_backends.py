import pytest

from placer.backends import EXTRAS, GpuCapacity, available_backends, load_backend
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
    with pytest.raises(BackendUnavailableError, match=r"installed: file://, mem://\)"):
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


# -- GpuCapacity: the one rule a job's fit is judged by --------------------------------------


def _cap(*free_of: tuple[int, int], pending: tuple[tuple[int, ...], ...] = (),
         multi_node: bool = False) -> GpuCapacity:
    """A cluster of nodes given as ``(free, total)``."""
    from placer.backends import NodeGpus

    nodes = tuple(NodeGpus(f"n{i}", t, f) for i, (f, t) in enumerate(free_of))
    return GpuCapacity(total=sum(n.total for n in nodes), free=sum(n.free for n in nodes),
                       nodes=nodes, pending=pending, multi_node=multi_node)


def test_a_job_fits_only_if_its_gpus_are_free_on_one_node() -> None:
    c = _cap((2, 4), (2, 4))
    assert c.free == 4 and c.available() == 4
    assert [c.fits(g) for g in (1, 2, 3, 4)] == [True, True, False, False]
    assert [_cap((3, 4), (1, 4)).fits(g) for g in (3, 4)] == [True, False]


def test_pending_work_that_fits_takes_its_gpus_first_on_the_roomiest_node() -> None:
    c = _cap((4, 4), (2, 4), pending=((3,),))  # the 3 go to n0 (4 free): 1 and 2 are left
    assert c.available() == 3 and c.waiting() == ()
    assert [c.fits(g) for g in (1, 2, 3)] == [True, True, False]
    assert c.pending_gpus == 3


def test_pending_work_that_fits_nowhere_takes_nothing_now_and_waits() -> None:
    c = _cap((1, 4), (1, 4), pending=((4,),))
    assert c.waiting() == ((4,),) and c.available() == 2 and c.fits(1)
    # a request of several bundles starts whole or not at all
    c = _cap((3, 4), (1, 4), pending=((3, 3),))
    assert c.waiting() == ((3, 3),) and c.fits(3) and c.available() == 4


def test_gpus_just_submitted_may_have_gone_to_any_node() -> None:
    c = _cap((4, 4), (2, 4))
    assert c.fits(3, reserved=1) and not c.fits(4, reserved=1)
    assert c.available(reserved=1) == 5 and c.available(reserved=9) == 0


def test_a_job_larger_than_any_node_takes_whole_free_nodes_only_where_jobs_span_nodes() -> None:
    assert not _cap((4, 4), (4, 4)).fits(8)  # Ray as placer submits: one node per job
    assert _cap((4, 4), (4, 4), multi_node=True).fits(8)
    assert not _cap((4, 4), (3, 4), multi_node=True).fits(5)  # 7 free, one node whole
    assert _cap((4, 4), (3, 4), (2, 2), multi_node=True).fits(6)
    assert not _cap((4, 4), (4, 4), multi_node=True).fits(8, reserved=1)


def test_a_reporter_that_does_not_know_its_nodes_is_judged_by_its_counts() -> None:
    c = GpuCapacity(total=8, free=4, pending=((3,),))
    assert (c.fits(1), c.fits(2), c.available()) == (True, False, 1)
    assert GpuCapacity(total=8, free=4).fits(4)


@pytest.mark.parametrize(("kw", "msg"), [
    ({"total": 8, "free": 9}, "free GPUs must be within 0..total, got 9/8"),
    ({"total": 8, "free": 2, "nodes": ()}, "the nodes' GPUs do not add up to 2/8 free"),
    ({"total": 8, "free": 2, "pending": ((0,),)},
     "each pending request is one or more bundles of 1 GPU or more"),
    ({"total": 8, "free": 2, "pending": ((),)},
     "each pending request is one or more bundles of 1 GPU or more"),
])
def test_a_capacity_that_contradicts_itself_is_refused(kw: dict[str, object], msg: str) -> None:
    with pytest.raises(ValueError, match=f"^{msg}$"):
        GpuCapacity(**kw)  # type: ignore[arg-type]
