"""Compact messages (protocol 2.1): tiles, reads and pulses of selected devices only.

The suite tests run over every transport (``board`` fixture: in process, pyserial on a
pty, pyvisa over TCP); the exact-equality and wire-byte tests run in process.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memhw
from memhw.netspec import TileSpec

#: bytes one VMM_TILE request and its reply cost besides their inputs and codes: two frame
#: headers, CRCs, COBS overhead bytes and delimiters, the tile id, n and the array lengths
TILE_REQUEST_OVERHEAD = 60


def _scattered(shape, n, seed=0) -> np.ndarray:
    m = np.zeros(shape, bool)
    m.flat[np.random.default_rng(seed).choice(m.size, n, replace=False)] = True
    return m


def _needs(board: memhw.Board, *messages: str) -> None:
    missing = [m for m in messages if not board.supports(m)]
    if missing:
        pytest.skip(f"{board.info.firmware} does not offer {', '.join(missing)}")


# ------------------------------------------------------------------ suite (every transport and back end)

def test_read_devices_agrees_with_the_full_map(board: memhw.Board) -> None:
    _needs(board, "READ_DEVICES")
    for mask in (_scattered(board.shape, 40), np.ones(board.shape, bool)):  # as an index, as a mask
        g_sel = board.read_devices(mask, average=16)
        g_all = board.read_conductance(average=16)
        assert np.isnan(g_sel[~mask]).all() and np.isfinite(g_sel[mask]).all()
        # independent noisy reads of the same devices: equal within a few read sigmas
        assert np.median(np.abs(g_sel[mask] - g_all[mask])) < 1e-6


def test_vmm_tile_equals_the_full_vmm_on_those_lines(board: memhw.Board) -> None:
    _needs(board, "DEFINE_TILE", "VMM_TILE")
    rows, cols = board.shape
    tile = TileSpec(rows=np.arange(0, 8), neg_rows=np.arange(8, 16), cols=np.arange(0, 10),
                    neg_cols=np.arange(10, 20))
    board.define_tile(3, tile)
    v = np.random.default_rng(2).uniform(-0.2, 0.2, (20, 8))
    got = board.vmm_tile(3, v, gain=1)
    full = np.zeros((20, rows))
    full[:, tile.rows], full[:, tile.neg_rows] = v, -v
    want = board.vmm(full, gain=1)[:, tile.read_cols]
    scale = board.vmm(np.abs(full), gain=1)[:, tile.read_cols]  # the currents before +v and -v cancel
    assert got.shape == (20, 20)
    # VMM holds the other rows at their DAC's code 0 (its offset), VMM_TILE grounds them:
    # compare the responses to changes of the input, where that constant current cancels
    diff = (got[1:] - got[0]) - (want[1:] - want[0])
    assert np.median(np.abs(diff)) < 0.02 * np.abs(scale).mean()


def test_pulse_devices_pulses_exactly_the_selected_devices(board: memhw.Board, emulator) -> None:
    """Whichever message the board offers (PULSE_DEVICES, else PULSE_SET)."""
    before = emulator.hardware.counters.pulses.copy()
    for n in (5, 3000):  # index, then mask
        mask = _scattered(board.shape, n, seed=n)
        assert board.pulse_set(mask, v=2.0, gate=1.0, width=1e-6) == n
    after = emulator.hardware.counters.pulses - before
    assert np.array_equal(after, _scattered(board.shape, 5, 5).astype(int) + _scattered(board.shape, 3000, 3000))


# ------------------------------------------------------------------ in process

def test_encodings_the_host_chooses(mocker) -> None:
    with memhw.connect("mock://?preset=ideal&seed=1") as board:
        spy = mocker.spy(board, "_request")
        few, many = _scattered(board.shape, 30), _scattered(board.shape, 4000)
        board.read_devices(few)
        board.read_devices(many)
        board.pulse_reset(few, v=1.0, gate=5.0)  # one value for all: 1 entry each
        levels = np.random.default_rng(0).uniform(0.8, 1.2, board.shape)
        board.pulse_set(many, v=2.0, gate=levels)  # gates per device, amplitude shared
        calls = [(c.args[0], c.args[1]) for c in spy.call_args_list]
    (n1, f1), (n2, f2) = calls[0], calls[1]
    assert n1 == n2 == "READ_DEVICES"
    assert f1["mask"].size == 0 and 0 < f1["index"].size <= 2 * 30
    assert f2["index"].size == 0 and f2["mask"].size == 1024
    pulses = [f for n, f in calls[2:] if n == "PULSE_DEVICES"]
    reset, set_ = pulses[0], pulses[-1]
    assert reset["kind"] == 1 and reset["amplitude"].size == reset["gate"].size == reset["width"].size == 1
    assert set_["kind"] == 0 and set_["amplitude"].size == 1 and set_["gate"].size > 1


def test_ideal_tile_vmm_is_exactly_the_full_vmm() -> None:
    with memhw.connect("mock://?preset=ideal&seed=1") as board:
        rng = np.random.default_rng(0)
        board.pulse_set(rng.random(board.shape) < 0.5, v=2.5, gate=rng.uniform(0.8, 1.4, board.shape))
        tile = TileSpec(rows=[5, 9, 100], cols=[1, 63, 7])
        board.define_tile(0, tile)
        v = rng.uniform(-0.2, 0.2, (6, 3))
        full = np.zeros((6, board.shape[0]))
        full[:, tile.rows] = v
        assert np.array_equal(board.vmm_tile(0, v), board.vmm(full)[:, tile.cols])


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 128), m=st.integers(1, 64), n=st.integers(1, 300), auto=st.booleans())
def test_vmm_tile_wire_bytes_are_the_information_plus_a_fixed_overhead(k, m, n, auto) -> None:
    """PROTOCOL.md VMM_TILE: per vector the inputs (2 B each) and the codes (2 B, plus a
    gain byte when auto-ranged) cross the wire, and each request costs a fixed overhead."""
    with memhw.connect("mock://?preset=ideal&seed=1") as board:
        board.define_tile(0, TileSpec(rows=np.arange(k), cols=np.arange(m)))
        s = board.link.stats
        before, trips = s.bytes_in + s.bytes_out, s.round_trips
        board.vmm_tile(0, np.full((n, k), 0.1), gain="auto" if auto else 1)
        wire, requests = s.bytes_in + s.bytes_out - before, s.round_trips - trips
        info = n * (2 * k + (3 if auto else 2) * m)
        # COBS adds a byte per 254 and a frame header per max_frame bytes
        assert wire <= 1.01 * info + requests * TILE_REQUEST_OVERHEAD + 20 * (info // board.info.max_frame)
        if n * (2 * k + 2 * m) >= 12 * TILE_REQUEST_OVERHEAD:  # enough vectors to spread the overhead
            assert wire <= 1.1 * info


def test_an_older_board_gets_the_2_0_messages(mocker) -> None:
    """On a 2.0 board the host falls back: PULSE_SET for PULSE_DEVICES, READ_MAP for READ_DEVICES."""
    with memhw.connect("mock://?preset=ideal&seed=1&rows=16&protocol=2.0") as board:
        assert board.info.protocol == (2, 0) and not board.supports("PULSE_DEVICES")
        spy = mocker.spy(board, "_request")
        mask = _scattered(board.shape, 10)
        assert board.pulse_set(mask, v=2.0, gate=1.0) == 10
        r = memhw.program(board, np.full(board.shape, 50e-6), mask=mask, tolerance=4e-6)
        assert r.converged[mask].mean() > 0.8
        sent = {c.args[0] for c in spy.call_args_list}
        assert "PULSE_SET" in sent and "READ_MAP" in sent and not sent & {"PULSE_DEVICES", "READ_DEVICES"}
        with pytest.raises(memhw.NotSupported, match="2.1"):
            board.define_tile(0, TileSpec(rows=[0], cols=[0]))


def test_a_board_without_room_for_the_calibration_gets_converted_levels(mocker) -> None:
    """SET_CALIBRATION refused TOO_LARGE (a board with small buffers): the host keeps the
    calibration, converts pulse levels per channel itself (as for a 2.0 board), and says
    the board does not hold it."""
    from memhw.calibration import calibrate_board

    with memhw.connect("mock://?preset=paper&seed=2&rows=16") as board:
        cal = calibrate_board(board, average=2)
        real = board._request

        def small(message, fields=None, **kw):
            if message == "SET_CALIBRATION":
                raise memhw.BoardError(8, "TOO_LARGE", "message larger than 4096 bytes")
            return real(message, fields, **kw)

        spy = mocker.patch.object(board, "_request", side_effect=small)
        board.calibration = cal
        assert board.calibration is cal and not board.holds_calibration
        mask = np.zeros(board.shape, bool)
        mask[3, :8] = True
        board.pulse_set(mask, v=2.0, gate=1.0)
        fields = [c.args[1] for c in spy.call_args_list if c.args[0] == "PULSE_DEVICES"][-1]
        nominal = int(board.codes.line_codes(2.0))
        assert fields["amplitude"].size == 8 and (fields["amplitude"] != nominal).any()  # per column channel
    with memhw.connect("mock://?preset=paper&seed=2&rows=16") as board:
        board.calibration = cal
        assert board.holds_calibration  # a board with room takes it
