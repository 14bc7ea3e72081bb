"""Message codec built from the schema: round trips and fuzzing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_protocol as fp
from firmware_protocol.codec import NUMPY_TYPES
from firmware_protocol.schema import SCALAR_TYPES

LAYOUTS = [(m.name, kind) for m in fp.SCHEMA.messages for kind in ("request", "reply", "progress") if m.layout(kind)]


def _value(field, rng: np.random.Generator):
    t = field.element_type
    if field.type == "str":
        return "board-é-" + str(rng.integers(1000))
    dtype = NUMPY_TYPES[t]
    if field.is_array:
        n = int(rng.integers(0, 50))
        if dtype.kind == "f":
            return rng.normal(size=n).astype(dtype)
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=n, endpoint=True).astype(dtype)
    if dtype.kind == "f":
        return float(np.float32(rng.normal()))
    info = np.iinfo(dtype)
    return int(rng.integers(info.min, info.max, endpoint=True))


@pytest.mark.parametrize("name,kind", LAYOUTS)
def test_every_layout_round_trips(name: str, kind: str) -> None:
    rng = np.random.default_rng(len(name))
    layout = fp.SCHEMA.message(name).layout(kind)
    values = {f.name: _value(f, rng) for f in layout}
    decoded = fp.decode(name, kind, fp.encode(name, kind, values))
    assert decoded.keys() == values.keys()
    for k, v in values.items():
        np.testing.assert_array_equal(decoded[k], v)


def test_every_message_has_an_opcode_and_types_are_known() -> None:
    opcodes = [m.opcode for m in fp.SCHEMA.messages]
    assert len(set(opcodes)) == len(opcodes)
    for m in fp.SCHEMA.messages:
        for f in (*m.request, *m.reply, *m.progress):
            assert f.type == "str" or f.element_type in SCALAR_TYPES


def test_encode_refuses_missing_and_out_of_range_fields() -> None:
    with pytest.raises(fp.ProtocolError, match="missing field"):
        fp.encode("HELLO", "request", {"host_major": 1})
    with pytest.raises(fp.ProtocolError, match="out of range"):
        fp.encode("VMM", "request", {"n": 1, "gains": [], "inputs": [40000]})
    with pytest.raises(fp.ProtocolError):
        fp.encode("HELLO", "request", {"host_major": 300, "host_minor": 0})
    with pytest.raises(fp.ProtocolError, match="unknown message"):
        fp.encode("NOPE", "request", {})


def test_error_layout_is_shared_by_every_opcode() -> None:
    payload = fp.encode(0x7F, "error", {"reason": "nope"})
    assert fp.decode("VMM", "error", payload) == {"reason": "nope"}


@pytest.mark.parametrize("name,kind", LAYOUTS)
@given(data=st.binary(max_size=300))
@settings(max_examples=60, deadline=None)
def test_decoding_random_payloads_raises_only_protocol_errors(name: str, kind: str, data: bytes) -> None:
    try:
        fp.decode(name, kind, data)
    except fp.ProtocolError:
        pass
