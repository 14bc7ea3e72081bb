"""Device selections as varint-coded offset gaps (PROTOCOL.md §10.5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_protocol as fp


def test_the_documented_example() -> None:
    assert fp.pack_offsets(np.array([3, 4, 200])).tobytes() == bytes.fromhex("0300c301")
    assert fp.unpack_offsets(np.frombuffer(bytes.fromhex("0300c301"), np.uint8)).tolist() == [3, 4, 200]


def _leb128(offsets: list[int]) -> bytes:
    """An independent encoder, written from the document's words."""
    out, prev = bytearray(), -1
    for k in offsets:
        gap = k - prev - 1
        prev = k
        while True:
            byte = gap & 0x7F
            gap >>= 7
            out.append(byte | (0x80 if gap else 0))
            if not gap:
                break
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(st.sets(st.integers(0, 200_000), max_size=300))
def test_round_trip_and_agreement_with_an_independent_encoder(chosen: set[int]) -> None:
    offsets = np.array(sorted(chosen), np.int64)
    packed = fp.pack_offsets(offsets)
    assert packed.dtype == np.uint8 and packed.tobytes() == _leb128(offsets.tolist())
    assert fp.unpack_offsets(packed).tolist() == offsets.tolist()


@pytest.mark.parametrize("data, message", [
    ([0x80], "past the end"),
    ([0x03, 0xFF], "past the end"),
    ([0x80, 0x80, 0x80, 0x80, 0x80, 0x01], "longer than 5 bytes"),
    ([64], "at or beyond 64"),
])
def test_bad_selections_are_refused(data: list[int], message: str) -> None:
    with pytest.raises(fp.ProtocolError, match=message):
        fp.unpack_offsets(np.array(data, np.uint8), limit=64)


def test_offsets_must_increase() -> None:
    with pytest.raises(fp.ProtocolError, match="increasing"):
        fp.pack_offsets(np.array([5, 5]))
    with pytest.raises(fp.ProtocolError, match="increasing"):
        fp.pack_offsets(np.array([-1]))
