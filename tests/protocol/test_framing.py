"""Framing: round trips, chunking, resynchronisation and fuzzing of the decoder."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_protocol as fp
from firmware_protocol.framing import MORE, REPLY, frame_overhead

FUZZ = settings(max_examples=300, deadline=None)


def _decode_all(data: bytes) -> tuple[list[fp.Message], fp.FrameDecoder]:
    dec, asm = fp.FrameDecoder(), fp.MessageAssembler()
    msgs = [m for f in dec.feed(data) if (m := asm.add(f)) is not None]
    return msgs, dec


@given(payload=st.binary(max_size=3000), seq=st.integers(0, 0xFFFF), opcode=st.integers(0, 255),
       status=st.integers(0, 255), boot=st.integers(0, 0xFFFF), max_payload=st.integers(1, 1024))
@FUZZ
def test_message_round_trip_any_payload_and_chunking(payload, seq, opcode, status, boot, max_payload) -> None:
    wire = fp.encode_message(seq=seq, opcode=opcode, payload=payload, status=status, session=boot,
                             flags=REPLY, max_payload=max_payload)
    assert wire.count(0) == max(1, -(-len(payload) // max_payload))  # one delimiter per frame, none inside
    (msg,), dec = _decode_all(wire)
    assert (msg.seq, msg.opcode, msg.status, msg.session, msg.payload) == (seq, opcode, status, boot, payload)
    assert msg.is_reply and not msg.flags & MORE and dec.dropped == 0
    assert len(wire) - len(payload) <= frame_overhead(len(payload), max_payload)


@given(data=st.binary(max_size=4000))
@FUZZ
def test_random_bytes_never_raise(data) -> None:
    dec, asm = fp.FrameDecoder(), fp.MessageAssembler()
    for f in dec.feed(data):
        asm.add(f)


@given(junk=st.binary(max_size=500), payload=st.binary(max_size=600), split=st.integers(0, 2000))
@FUZZ
def test_resynchronises_after_garbage_whatever_the_split(junk, payload, split) -> None:
    wire = fp.encode_message(seq=7, opcode=4, payload=payload, max_payload=256)
    stream = junk + b"\x00" + wire
    split = min(split, len(stream))
    dec, asm = fp.FrameDecoder(), fp.MessageAssembler()
    got = [m for part in (stream[:split], stream[split:]) for f in dec.feed(part) if (m := asm.add(f))]
    assert got and got[-1].payload == payload and got[-1].seq == 7


@given(payload=st.binary(min_size=1, max_size=300), pos=st.integers(0, 10_000), bit=st.integers(0, 7))
@FUZZ
def test_corrupted_frame_is_dropped_and_the_next_one_decodes(payload, pos, bit) -> None:
    first = bytearray(fp.encode_frame(seq=1, opcode=2, payload=payload))
    i = pos % (len(first) - 1)  # never the delimiter itself
    first[i] ^= 1 << bit
    second = fp.encode_frame(seq=2, opcode=2, payload=b"next")
    msgs, dec = _decode_all(bytes(first) + second)
    assert msgs[-1].seq == 2 and msgs[-1].payload == b"next"
    assert all(m.payload == payload for m in msgs[:-1])  # the corrupt frame never decodes as something else
    if len(msgs) == 1:
        assert dec.dropped >= 1


def test_overlong_run_without_delimiter_is_discarded() -> None:
    dec = fp.FrameDecoder(max_frame=1000)
    assert dec.feed(os.urandom(600).replace(b"\x00", b"\x01")) == []
    assert dec.feed(os.urandom(600).replace(b"\x00", b"\x01")) == []
    good = fp.encode_frame(seq=3, opcode=1, payload=b"ok")
    frames = dec.feed(b"\x00" + good)
    assert [f.payload for f in frames] == [b"ok"] and dec.dropped == 1


def test_out_of_order_chunks_drop_the_message() -> None:
    wire = fp.encode_message(seq=1, opcode=6, payload=bytes(range(256)) * 4, max_payload=256)
    frames = fp.FrameDecoder().feed(wire)
    asm = fp.MessageAssembler()
    assert asm.add(frames[0]) is None
    assert asm.add(frames[2]) is None and asm.dropped == 1
    assert [asm.add(f) for f in frames][-1].payload == bytes(range(256)) * 4


def test_header_values_out_of_range_are_protocol_errors() -> None:
    with pytest.raises(fp.ProtocolError):
        fp.encode_frame(seq=70000, opcode=1)
    with pytest.raises(fp.ProtocolError):
        fp.encode_message(seq=1, opcode=1, payload=b"x", max_payload=0)
