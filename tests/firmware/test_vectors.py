"""Golden vectors through the board side: the C core's decoder and assembler see in every
golden wire stream the frames, drops and complete requests the Python peer sees, and
answer them alike (the vectors' requests carry no session: both refuse them the same way).
"""

from __future__ import annotations

import secrets

import numpy as np
import pytest

from firmware_protocol import goldens
from memhw.cfirmware import CBoard
from memhw.mock.emulator import BoardEmulator
from memhw.mock.params import make_params

VECTORS = goldens.build_vectors()


def _feed(cls: type, wire: bytes, bytewise: bool) -> tuple[bytes, object]:
    draws = np.random.default_rng(3)
    original = secrets.randbits
    secrets.randbits = lambda k: int(draws.integers(0, 1 << k))
    try:
        board = cls(make_params("ideal", rows=8), seed=0)
        out: list[bytes] = []
        conn = board.open(out.append, None, "vectors")
        for piece in ([wire[i:i + 1] for i in range(len(wire))] if bytewise else [wire]):
            conn.receive(piece)
        return b"".join(out), board
    finally:
        secrets.randbits = original


@pytest.mark.parametrize("bytewise", [False, True], ids=["block", "bytewise"])
@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
def test_golden_vector_is_decoded_and_answered_as_by_the_python_peer(vector, bytewise: bool) -> None:
    wire = vector.part.wire
    py_out, py = _feed(BoardEmulator, wire, bytewise)
    c_out, c = _feed(CBoard, wire, bytewise)
    requests = sum(1 for m in vector.part.messages if m["kind"] == "request")
    assert c.counters.requests == py.counters.requests == requests
    assert c.counters.bad_frames == py.counters.bad_frames >= vector.drops
    if not any(m["message"] == "HELLO" and m["kind"] == "request" for m in vector.part.messages):
        assert c_out == py_out  # refusals (no session), byte for byte
