"""The host's ASCII codec: exact command formats, round trips, strict rejection of bad replies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memhw.dpe import codec
from memhw.dpe.codec import MalformedReply
from memhw.dpe.dialect import Dialect

D = Dialect()
CODES = st.integers(0, 65535)


def _block(seed: int) -> np.ndarray:
    """A 64 x 64 block of codes over the whole 16-bit range, both rails included."""
    codes = np.random.default_rng(seed).integers(0, 65536, (64, 64))
    codes[0, 0], codes[-1, -1] = 0, 65535
    return codes


def _block_lines(codes: np.ndarray) -> list[str]:
    """A read block as the firmware prints it: one line of comma-separated codes per row."""
    return [",".join(str(int(c)) for c in row) for row in codes]


def test_read_command_is_the_drivers_format() -> None:
    assert codec.read_line(D, 0.2, 1, 0) == "10,0.20,5.00,2,1000,900,1010,8,8,0"
    assert codec.read_line(D, 0.15, 3, 1) == "10,0.15,5.00,4,1000,900,1010,8,8,1"
    assert codec.sync_line(D) == "1024"


@pytest.mark.parametrize("kind, mode, header, ack", [
    ("set", "fast", "12,8,8,193,5,1", "Reset"),
    ("set", "slow", "17,8,8,15,10,1", "Reset"),
    ("reset", "fast", "11,8,8,193,5,5,1", "Set"),
    ("reset", "slow", "18,8,8,500,1", "Set"),
])
def test_pulse_commands_and_their_swapped_acknowledgements(kind, mode, header, ack) -> None:
    amps = np.zeros((64, 64))
    amps[3, 5] = 2.5
    gates = np.zeros((64, 64))
    gates[3, 5] = 1.234
    lines = codec.pulse_lines(D, kind, mode, 193, 1, amps, gates)
    assert lines[0] == header
    values = lines[1].split(",")
    assert len(values) == 4096 and values[3 * 64 + 5] == "2.50" and set(values) == {"0.00", "2.50"}
    assert lines[2].split(",")[3 * 64 + 5] == "1.23"
    assert codec.pulse_ack(D, kind) == ack


def test_vmm_command_layout() -> None:
    rows_on = np.zeros(128, bool)
    rows_on[[0, 9, 127]] = True
    v = np.zeros((2, 128))
    v[0, 0], v[1, 127] = 0.1234, -0.2
    lines = codec.vmm_lines(D, 0, np.full(64, 5.0), rows_on, np.ones(64, bool), v)
    head = lines[0].split(",")
    assert head[:9] == ["20", "0", "1", "1000", "5", "128", "64", "1", "2"]
    assert head[9:25] == ["1", "2"] + ["0"] * 13 + ["128"]  # row k = bit k % 8 of byte k // 8
    assert head[25:33] == ["255"] * 8 and head[33:] == ["5.00"] * 64
    assert lines[1].startswith(",0.1234,0.0000,") and lines[2].endswith(",-0.2000")
    assert "-0.0000" not in "".join(lines)
    msb = codec.enable_bytes(rows_on, "msb")
    assert msb[:2] == [128, 64] and msb[15] == 1


@given(st.lists(st.floats(-4, 4, allow_nan=False), min_size=1, max_size=50), st.floats(0.05, 3.5))
def test_quantised_levels_never_exceed_a_limit(values, limit) -> None:
    q = codec.quantise(np.asarray(values), 0.01, limit)
    inside = np.abs(values) <= limit
    assert np.all(np.abs(q[inside]) <= limit + 1e-12)
    assert np.all(np.abs(q[inside] - np.asarray(values)[inside]) < 0.01 + 1e-9)
    assert np.allclose(q * 100, np.rint(q * 100))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32))
def test_read_block_round_trip(seed) -> None:
    codes = _block(seed)
    assert np.array_equal(codec.parse_read_block(_block_lines(codes), D), codes)


_MUTATIONS = [
    lambda lines, r: lines[:-1],                                              # a line lost
    lambda lines, r: lines + [lines[0]],                                     # a line too many
    lambda lines, r: [lines[0].rsplit(",", 1)[0]] + lines[1:],               # a value lost
    lambda lines, r: [lines[0] + ",1"] + lines[1:],                          # a value too many
    lambda lines, r: [lines[0] + ","] + lines[1:],                           # trailing comma
    lambda lines, r: [lines[0].replace(",", ",,", 1)] + lines[1:],           # empty field
    lambda lines, r: [lines[0].replace(",", ", ", 1)] + lines[1:],           # a space
    lambda lines, r: ["65536" + lines[0][lines[0].index(","):]] + lines[1:],  # beyond 16 bits
    lambda lines, r: ["-1" + lines[0][lines[0].index(","):]] + lines[1:],    # negative
    lambda lines, r: lines[:r] + ["DEBUG adc ok"] + lines[r + 1:],          # text instead of data
    lambda lines, r: lines[:r] + [lines[r].replace("1", "l", 1) if "1" in lines[r] else "x"] + lines[r + 1:],
]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from(range(len(_MUTATIONS))), st.integers(0, 63))
def test_malformed_read_blocks_are_rejected_not_repaired(seed, which, row) -> None:
    lines = _block_lines(_block(seed))
    bad = _MUTATIONS[which](lines, row)
    with pytest.raises(MalformedReply):
        codec.parse_read_block(bad, D)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.data())
def test_vmm_answer_may_split_lines_anywhere_but_must_have_every_code(n, data) -> None:
    codes = np.asarray(data.draw(st.lists(CODES, min_size=n * 64, max_size=n * 64)))
    cuts = sorted(set(data.draw(st.lists(st.integers(1, n * 64 - 1), max_size=6))))
    parts = np.split(codes, cuts)
    lines = [",".join(map(str, p.tolist())) for p in parts]
    assert np.array_equal(codec.parse_vmm_block(lines, D, n), codes.reshape(n, 64))
    with pytest.raises(MalformedReply):
        codec.parse_vmm_block(lines[:-1] if len(lines) > 1 else [lines[0].rsplit(",", 1)[0]], D, n)
