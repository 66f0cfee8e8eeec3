"""placer.transfer's CRC32C combine against google_crc32c over concatenations: a GCS composite
is checked with the CRC32C combined from its parts', so the combine must be exact."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placer.transfer import crc32c_combine

google_crc32c = pytest.importorskip("google_crc32c")


def _crc(data: bytes) -> int:
    return int(google_crc32c.value(data))


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.binary(max_size=300), min_size=1, max_size=8))
def test_the_combined_crc_of_the_pieces_is_the_crc_of_their_concatenation(
        pieces: list[bytes]) -> None:
    combined = 0  # the CRC32C of nothing
    for piece in pieces:
        combined = crc32c_combine(combined, _crc(piece), len(piece))
    assert combined == _crc(b"".join(pieces))


@settings(max_examples=60, deadline=None)
@given(a=st.binary(max_size=64), b=st.binary(min_size=1, max_size=64),
       zeros=st.integers(0, 5_000_000))
def test_long_second_pieces_are_combined_exactly(a: bytes, b: bytes, zeros: int) -> None:
    """Lengths past the small ones (all of len(B)'s bits, up to megabytes: real parts)."""
    second = b + bytes(zeros)
    assert crc32c_combine(_crc(a), _crc(second), len(second)) == _crc(a + second)


def test_a_known_value_and_a_negative_length() -> None:
    # RFC 3720 appendix B.4: 32 bytes of zeros have CRC32C 0x8A9136AA.
    assert crc32c_combine(_crc(bytes(16)), _crc(bytes(16)), 16) == 0x8A9136AA
    with pytest.raises(ValueError, match="at least 0"):
        crc32c_combine(0, 0, -1)
