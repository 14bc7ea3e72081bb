"""Hypothesis fuzz of the C core through its host build: random bytes and random payloads of
every message, inside a session. The core never fails, answers every complete request with
exactly one final reply, and every reply decodes with the schema's layouts (the reply
layout for OK and ABORTED, the error layout otherwise), so its replies conform whatever it
is sent."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import firmware_protocol as fp
from memhw.cfirmware import CBoard
from memhw.mock.params import make_params

OPCODES = [m.opcode for m in fp.SCHEMA.messages if m.name not in ("HELLO", "BYE")]
_BOARD = CBoard(make_params("ideal", rows=8), seed=1)
_OUT: list[bytes] = []
_CONN = _BOARD.open(_OUT.append, None, "fuzz")


def _messages(wire: bytes) -> list[fp.Message]:
    assembler = fp.MessageAssembler()
    return [m for m in map(assembler.add, fp.FrameDecoder().feed(wire)) if m is not None]


def _session() -> int:
    _OUT.clear()
    hello = fp.encode("HELLO", "request", {"host_major": 2, "host_minor": 0, "mode": 2, "session": 0, "client": "f"})
    _CONN.receive(fp.encode_message(seq=1, opcode=1, payload=hello, max_payload=240))
    return _messages(b"".join(_OUT))[0].session


def _conforms(msg: fp.Message) -> None:
    kind = "progress" if msg.is_progress else ("reply" if msg.status in (0, fp.STATUS["ABORTED"]) else "error")
    fp.decode(msg.opcode, kind, msg.payload)  # raises ProtocolError if the core sent a malformed payload


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(opcode=st.sampled_from(OPCODES), payload=st.binary(max_size=300), seq=st.integers(2, 0xFFFF))
def test_random_payloads_get_one_conforming_reply(opcode: int, payload: bytes, seq: int) -> None:
    session = _session()
    _OUT.clear()
    _CONN.receive(fp.encode_message(seq=seq, opcode=opcode, payload=payload, max_payload=1024, session=session))
    replies = _messages(b"".join(_OUT))
    final = [m for m in replies if not m.is_progress]
    assert len(final) == 1 and final[0].seq == seq and final[0].opcode == opcode
    for m in replies:
        _conforms(m)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600))
def test_random_bytes_never_break_the_core(data: bytes) -> None:
    _OUT.clear()
    _CONN.receive(data)
    for m in _messages(b"".join(_OUT)):
        assert m.is_reply
        if m.opcode in [x.opcode for x in fp.SCHEMA.messages]:
            _conforms(m)
    assert np.isfinite(_BOARD.chip.G).all()
