"""Protocol 2.1 conformance, written from PROTOCOL.md alone (``rawclient``: raw frames, payloads
packed by hand): SET_CALIBRATION, DEFINE_TILE, VMM_TILE, LOAD_NETWORK, RUN_NETWORK, READ_DEVICES
and PULSE_DEVICES.

Every test runs in process and over a real TCP socket, against both board back ends (the Python
peer over memhw.mock and the C firmware core), on the ``ideal`` preset with 16 rows. Expected
values come from the document's own definitions: §10.2's code → current conversion, READ_MAP
conductances, SET_CALIBRATION's binary32 formulas, the RUN_NETWORK algorithm and its activation
tables. Where the document is silent or says something else than the board does, the test pins
what the board does and says so in a ``DOC GAP`` comment (collected in the review report).
"""

from __future__ import annotations

import math
import struct
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pytest

from memhw.mock.emulator import BoardEmulator
from memhw.mock.params import make_params

from .rawclient import (AUTO, DENSE, GAINS_CODES_I16, LAST_STEP, LINEAR, LOAD_NETWORK_REPLY, LSTM, PULSE_PROGRESS,
                        PULSE_REPLY, RESET, RESUME, RUN_NETWORK_PROGRESS, RUN_NETWORK_REPLY, SET, SIGMOID, SOFTMAX,
                        TAKEOVER, WANT_PROGRESS, Layer, RawHost, array, define_tile, frame, load_network, pack_index,
                        pack_mask, parse, parse_layout, pulse_devices_payload, pulse_set, read_devices_payload,
                        read_map_gains, run_network, set_calibration, set_levels, set_limits, vmm, vmm_tile)
from .test_conformance import Wiring

ROWS, COLS = 16, 64
V_READ = 6554  # 1.0 V: READ_MAP / READ_DEVICES at the read limit, for the finest conductances
SET_V, WIDTH = 16384, 203  # 2.5 V, 1 µs
F32 = np.float32


def _board(firmware: str, **kw) -> BoardEmulator:
    params = make_params("ideal", rows=ROWS)
    if firmware == "c":
        from memhw.cfirmware import CBoard

        return CBoard(params, seed=3, **kw)  # type: ignore[return-value]
    return BoardEmulator(params, seed=3, **kw)


@pytest.fixture(params=["python", "c"])
def board_factory(request):
    return lambda **kw: _board(request.param, **kw)


@pytest.fixture(params=["inprocess", "tcp"])
def wiring(request, board_factory) -> Iterator[Wiring]:
    w = Wiring(board_factory(), request.param)
    yield w
    w.close()


@contextmanager
def opened(wiring: Wiring, client: str = "raw 2.1 host") -> Iterator[RawHost]:
    with wiring.host(client) as h:
        assert h.hello(seq=1, minor=1).status_name == "OK"
        yield h


def _pulses(emu) -> np.ndarray:
    return np.asarray(emu.hardware.counters.pulses)


# ------------------------------------------------------------------------------ helpers
def program_array(h: RawHost, rows: int = ROWS, cols: int = 32, seed: int = 0) -> None:
    """SET every device of rows × the first ``cols`` columns through its own gate code (per-device array),
    so conductances spread over ≈ 50 … 290 µS (the rest stay at the preset's 2 µS)."""
    offsets = [r * COLS + c for r in range(rows) for c in range(cols)]
    gates = np.random.default_rng(seed).integers(2500, 6000, len(offsets))
    rep = h.ok("PULSE_DEVICES", pulse_devices_payload(SET, 0, rows, mask=pack_mask(offsets, rows * COLS),
                                                      amplitude=[SET_V], gate=gates.tolist(), width=[WIDTH]),
               PULSE_REPLY)
    assert rep == {"rows_done": rows, "pulses": len(offsets)}


def amps(h: RawHost, codes, gains) -> np.ndarray:
    """§10.2: I = −code × adc_lsb / tia_gains[g] (float64); ``gains`` broadcast against ``codes``."""
    r = np.asarray(h.info["tia_gains"], float)[np.asarray(gains)]
    return -np.asarray(codes, float) * h.info["adc_lsb"] / r


def conductances(h: RawHost, v_read: int = V_READ) -> tuple[np.ndarray, np.ndarray]:
    """READ_MAP of the whole array (auto-ranged): G = I / (v_read × dac_line_lsb) and the half-LSB bound of
    each value (the ADC code is the rounded mean)."""
    rep = h.ok("READ_MAP", read_map_gains(v_read, 0, ROWS, 1, [AUTO]), GAINS_CODES_I16)
    gains = np.asarray(rep["gains"]).reshape(ROWS, COLS)
    codes = np.asarray(rep["codes"]).reshape(ROWS, COLS)
    assert np.all(np.abs(codes) < 32767), "a saturated READ_MAP code"
    volts = v_read * h.info["dac_line_lsb"]
    g = amps(h, codes, gains) / volts
    g_err = 0.5 * h.info["adc_lsb"] / np.asarray(h.info["tia_gains"])[gains] / volts
    return g, g_err


def read_limit(h: RawHost) -> int:
    return round(h.info["v_read_max"] / h.info["dac_line_lsb"])


def nominal_to_channel(volts_code, gain=1.0, offset=0.0, lsb=None, limit=None) -> np.ndarray:
    """SET_CALIBRATION's conversion, binary32 step by step: V = code × lsb; q = (V − offset) / (lsb × gain),
    clipped to ± the limit codes, then rounded half to even."""
    lsb = F32(lsb)
    v = np.asarray(volts_code, F32) * lsb
    q = (v - F32(offset)) / (lsb * F32(gain))
    if limit is not None:
        q = np.clip(q, F32(-limit), F32(limit))
    return np.rint(q).astype(int)


class Tile:
    """A DEFINE_TILE definition and the weight matrix it realises from a conductance map."""

    def __init__(self, tid: int, rows, cols, neg_rows=(), neg_cols=()):
        self.tid, self.rows, self.cols = tid, list(rows), list(cols)
        self.neg_rows, self.neg_cols = list(neg_rows), list(neg_cols)

    @property
    def k(self) -> int:
        return len(self.rows)

    @property
    def m(self) -> int:
        return len(self.cols)

    def payload(self) -> bytes:
        return define_tile(self.tid, self.rows, self.cols, self.neg_rows, self.neg_cols)

    def devices(self):
        """(row, col, sign) of every device of the tile's product: output m = Σ sign · G · V_k."""
        for k in range(self.k):
            for m in range(self.m):
                yield k, m, self.rows[k], self.cols[m], 1
                if self.neg_rows:
                    yield k, m, self.neg_rows[k], self.cols[m], -1
                if self.neg_cols:
                    yield k, m, self.rows[k], self.neg_cols[m], -1
                if self.neg_rows and self.neg_cols:
                    yield k, m, self.neg_rows[k], self.neg_cols[m], 1

    def weights(self, g: np.ndarray, g_err: np.ndarray):
        """(W, |W| sum, error) of shape (M, K) in siemens: I_m = Σ_k W[m, k] V_k."""
        w, w_abs, w_err = (np.zeros((self.m, self.k)) for _ in range(3))
        for k, m, r, c, s in self.devices():
            w[m, k] += s * g[r, c]
            w_abs[m, k] += g[r, c]
            w_err[m, k] += g_err[r, c]
        return w, w_abs, w_err

    def drive(self, inputs: np.ndarray) -> np.ndarray:
        """The full-array VMM row codes the tile's inputs (n, K) mean: rows at +input, neg_rows at −input."""
        v = np.zeros((inputs.shape[0], ROWS), int)
        v[:, self.rows] = inputs
        if self.neg_rows:
            v[:, self.neg_rows] = -inputs
        return v


# ------------------------------------------------------------------------ 1. layouts
def test_hello_of_a_2_1_board_lists_the_new_opcodes(wiring) -> None:
    with opened(wiring) as h:
        info = h.info
        assert (info["major"], info["minor"]) == (2, 1)
        assert set(range(0x11, 0x18)) <= set(info["opcodes"]) and info["opcodes"] == sorted(info["opcodes"])
        # DOC GAP (§11 HELLO reply): the bracketed emulator values still say minor [0] and opcodes [1 … 16];
        # both back ends announce minor 1 and opcodes 1 … 23 (as §12 step 2 says).
        assert info["opcodes"] == list(range(1, 24))


def test_set_calibration_accepts_full_or_empty_arrays_and_replies_empty(wiring) -> None:
    with opened(wiring) as h:
        n_g = len(h.info["tia_gains"])
        full = set_calibration([1.0] * ROWS, [0.0] * ROWS, [1.0] * COLS, [0.0] * COLS, [1.0] * COLS, [0.0] * COLS,
                               [1.0] * COLS * n_g, [0.0] * COLS * n_g)
        assert len(full) == 8 * 4 + 4 * (2 * ROWS + 4 * COLS + 2 * COLS * n_g)
        assert h.call("SET_CALIBRATION", full).payload == b""
        r = h.call("SET_CALIBRATION", set_calibration())  # every array empty: back to nominal
        assert r.status_name == "OK" and r.payload == b""


def test_define_tile_and_vmm_tile_reply_layouts(wiring) -> None:
    """VMM_TILE reply: gains as the request gave them (1 entry or one per column read), auto-range
    n × (M + M−); codes n × (M + M−), per vector the cols then the neg_cols."""
    tile = Tile(3, rows=[4, 1, 9], cols=[7, 2], neg_cols=[30, 11])
    n, mm = 5, 4
    x = np.arange(n * tile.k).reshape(n, tile.k) * 37 - 200
    with opened(wiring) as h:
        program_array(h)
        r = h.call("DEFINE_TILE", tile.payload())
        assert r.status_name == "OK" and r.payload == b""
        for gains, n_gains in (([1], 1), ([AUTO], n * mm), ([], n * mm), ([1, 2, 1, 2], mm)):
            rep = h.ok("VMM_TILE", vmm_tile(3, n, x.ravel(), gains), GAINS_CODES_I16)
            assert len(rep["gains"]) == n_gains and len(rep["codes"]) == n * mm, gains
            if len(gains) in (1, mm) and gains != [AUTO]:
                assert rep["gains"] == gains  # "as the request gave them"


def test_read_devices_layout_mask_and_index_agree_with_read_map(wiring) -> None:
    chosen = [(0, 3), (0, 31), (2, 0), (5, 17), (5, 18), (13, 40)]
    offsets = [(r - 0) * COLS + c for r, c in chosen]
    with opened(wiring) as h:
        program_array(h)
        ref = h.ok("READ_MAP", read_map_gains(V_READ, 0, ROWS, 3, [AUTO]), GAINS_CODES_I16)
        ref_codes = np.asarray(ref["codes"]).reshape(ROWS, COLS)
        ref_gains = np.asarray(ref["gains"]).reshape(ROWS, COLS)
        by_index = h.ok("READ_DEVICES", read_devices_payload(V_READ, 0, ROWS, index=pack_index(offsets), average=3),
                        GAINS_CODES_I16)
        by_mask = h.ok("READ_DEVICES", read_devices_payload(V_READ, 0, ROWS, mask=pack_mask(offsets, ROWS * COLS),
                                                            average=3), GAINS_CODES_I16)
        assert by_index == by_mask
        assert by_index["gains"] == [int(ref_gains[rc]) for rc in chosen]  # auto-range: one per device
        assert by_index["codes"] == [int(ref_codes[rc]) for rc in chosen]  # in increasing offset order
        fixed = h.ok("READ_DEVICES", read_devices_payload(V_READ, 0, ROWS, index=pack_index(offsets), gains=[1]),
                     GAINS_CODES_I16)
        assert fixed["gains"] == [1] and len(fixed["codes"]) == len(chosen)  # fixed gain: one entry
        # a block not starting at row 0: offsets are relative to row_start (§10.5)
        sub = h.ok("READ_DEVICES", read_devices_payload(V_READ, 5, 2, index=pack_index([17, 18]), average=3),
                   GAINS_CODES_I16)
        assert sub["codes"] == [int(ref_codes[5, 17]), int(ref_codes[5, 18])]
        # nothing selected in a non-empty block: mask of zeros
        empty = h.ok("READ_DEVICES", read_devices_payload(V_READ, 0, 1, mask=bytes(8)), GAINS_CODES_I16)
        assert empty["codes"] == [] and empty["gains"] == []


def test_pulse_devices_layout_per_device_values_and_counts(wiring) -> None:
    """Mask and index selections, per-device amplitude/gate/width arrays in offset order, reply
    rows_done = row_count and pulses = the selected devices; only those devices are pulsed."""
    with opened(wiring) as h:
        before = _pulses(wiring.emu).copy()
        offs = [1, 64 + 40, 3 * 64 + 9]  # block rows 4 … 7: devices (4, 1), (5, 40), (7, 9)
        rep = h.ok("PULSE_DEVICES", pulse_devices_payload(SET, 4, 4, index=pack_index(offs),
                                                          amplitude=[16384, 10000, 16384], gate=[4000, 4000, 3000],
                                                          width=[203, 203, 50]), PULSE_REPLY)
        assert rep == {"rows_done": 4, "pulses": 3}
        rep = h.ok("PULSE_DEVICES", pulse_devices_payload(SET, 8, 4, mask=pack_mask(offs, 4 * COLS),
                                                          amplitude=[16384], gate=[4000], width=[203]), PULSE_REPLY)
        assert rep == {"rows_done": 4, "pulses": 3}
        delta = _pulses(wiring.emu) - before
        expect = np.zeros_like(delta)
        for r0 in (4, 8):
            for k in offs:
                expect[r0 + k // COLS, k % COLS] = 1
        assert np.array_equal(delta, expect)
        read = h.ok("READ_DEVICES", read_devices_payload(V_READ, 4, 8, index=pack_index(offs + [o + 256 for o in offs]),
                                                         gains=[1]), GAINS_CODES_I16)
        c = read["codes"]
        # the per-device values went to their own devices: (5, 40) got the lower amplitude, (7, 9) the lower gate
        assert c[0] == c[3] and c[1] != c[4] and c[2] != c[5] and c[1] > c[0] and c[2] > c[0]  # codes < 0
        # RESET through the same message
        rep = h.ok("PULSE_DEVICES", pulse_devices_payload(RESET, 4, 1, index=pack_index([1]), amplitude=[12000],
                                                          gate=[16384], width=[203]), PULSE_REPLY)
        assert rep == {"rows_done": 1, "pulses": 1}
        after = h.ok("READ_DEVICES", read_devices_payload(V_READ, 4, 1, index=pack_index([1]), gains=[1]),
                     GAINS_CODES_I16)
        assert after["codes"][0] > c[0]  # less current: RESET lowered the conductance


# ------------------------------------------------------------- 2. VMM_TILE physics
DIFF_TILE = Tile(0, rows=[5, 2, 7, 0], neg_rows=[9, 12, 10, 15], cols=[3, 0, 17], neg_cols=[8, 9, 31])


@pytest.mark.parametrize("gains", [[1], [AUTO], [1, 2, 1, 1, 2, 1]], ids=["fixed", "auto", "per-column"])
def test_vmm_tile_equals_the_full_array_vmm_of_the_same_rows(wiring, gains) -> None:
    """Input k drives rows[k] and −input k drives neg_rows[k], every other row grounded: code for code what
    VMM gives with those row codes (same gains), columns read cols then neg_cols."""
    t = DIFF_TILE
    x = np.random.default_rng(1).integers(-1311, 1312, (6, t.k))
    with opened(wiring) as h:
        program_array(h)
        h.ok("DEFINE_TILE", t.payload())
        tile = h.ok("VMM_TILE", vmm_tile(0, len(x), x.ravel(), gains), GAINS_CODES_I16)
        vmm_gains = gains if len(gains) == 1 else [1] * COLS  # VMM's per-column list is `cols` long
        if len(gains) > 1:
            for j, g in zip(t.cols + t.neg_cols, gains):
                vmm_gains[j] = g
        full = h.ok("VMM", vmm(len(x), t.drive(x).ravel(), vmm_gains), GAINS_CODES_I16)
        read = t.cols + t.neg_cols
        codes = np.asarray(full["codes"]).reshape(len(x), COLS)[:, read]
        assert np.array_equal(np.asarray(tile["codes"]).reshape(len(x), -1), codes)
        if gains == [AUTO]:
            assert np.array_equal(np.asarray(tile["gains"]).reshape(len(x), -1),
                                  np.asarray(full["gains"]).reshape(len(x), COLS)[:, read])


def test_vmm_tile_currents_are_read_map_conductances_times_volts(wiring) -> None:
    """§10.2 on the reply: I(cols[m]) − I(neg_cols[m]) = Σ_k (G+ − G−) V_k of the tile's devices, within the
    half-LSB bounds of both reads (READ_MAP's conductances, the tile's own code)."""
    t = DIFF_TILE
    x = np.random.default_rng(2).integers(-1311, 1312, (8, t.k))
    with opened(wiring) as h:
        program_array(h)
        g, g_err = conductances(h)
        h.ok("DEFINE_TILE", t.payload())
        rep = h.ok("VMM_TILE", vmm_tile(0, len(x), x.ravel(), [1]), GAINS_CODES_I16)
        i = amps(h, np.asarray(rep["codes"]).reshape(len(x), -1), 1)
        measured = i[:, : t.m] - i[:, t.m :]
        volts = x * h.info["dac_line_lsb"]
        w, _, w_err = t.weights(g, g_err)
        expected = volts @ w.T
        bound = np.abs(volts) @ w_err.T + 2 * 0.5 * h.info["adc_lsb"] / h.info["tia_gains"][1]
        assert np.all(np.abs(measured - expected) <= bound * 1.001 + 1e-12)
        assert np.abs(expected).max() > 20e-6  # a real signal, not a tolerance game
        # the G− rows really subtract: the same inputs without neg_rows give another answer
        pos_only = Tile(1, t.rows, t.cols, neg_cols=t.neg_cols)
        h.ok("DEFINE_TILE", pos_only.payload())
        rep2 = h.ok("VMM_TILE", vmm_tile(1, len(x), x.ravel(), [1]), GAINS_CODES_I16)
        i2 = amps(h, np.asarray(rep2["codes"]).reshape(len(x), -1), 1)
        w2, _, w2_err = pos_only.weights(g, g_err)
        assert np.all(np.abs((i2[:, : t.m] - i2[:, t.m :]) - volts @ w2.T)
                      <= np.abs(volts) @ w2_err.T * 1.001 + 2 * 0.5 * h.info["adc_lsb"] / 1e4 + 1e-12)
        assert np.abs(w - w2).max() > 10e-6


def test_vmm_tile_rows_outside_the_tile_are_grounded(wiring) -> None:
    """A tile on rows 0-1 only: the other (programmed) rows carry nothing into its columns."""
    with opened(wiring) as h:
        program_array(h)
        g, _ = conductances(h)
        h.ok("DEFINE_TILE", define_tile(2, [0, 1], [4]))
        x = np.array([[1311, 1311]])
        rep = h.ok("VMM_TILE", vmm_tile(2, 1, x.ravel(), [1]), GAINS_CODES_I16)
        i = amps(h, rep["codes"], 1)[0]
        assert abs(i - (g[0, 4] + g[1, 4]) * 1311 * h.info["dac_line_lsb"]) < 2e-7


# ----------------------------------------------------------- SET_CALIBRATION semantics
def _nominal_calibration(h: RawHost) -> dict:
    n_g = len(h.info["tia_gains"])
    return dict(row_gain=[1.0] * ROWS, row_offset=[0.0] * ROWS, col_gain=[1.0] * COLS, col_offset=[0.0] * COLS,
                gate_gain=[1.0] * COLS, gate_offset=[0.0] * COLS, tia_gain=[1.0] * COLS * n_g,
                tia_offset=[0.0] * COLS * n_g)


def test_vmm_tile_inputs_go_through_the_row_calibration(wiring) -> None:
    """Input codes are nominal: the board drives round((V − offset[r]) / (lsb × gain[r])) on row r, clipped to
    the read limit; neg_rows get the negation (V → −V) converted on their own channel. Other messages' codes
    go out as they are (VMM, READ_MAP)."""
    t = DIFF_TILE
    x = np.array([[1311, -700, 3, 6000], [-6554, 6554, 100, -2]])
    with opened(wiring) as h:
        program_array(h)
        lsb, lim = h.info["dac_line_lsb"], read_limit(h)
        cal = _nominal_calibration(h)
        rng = np.random.default_rng(4)
        cal["row_gain"] = rng.uniform(0.8, 1.25, ROWS).tolist()
        cal["row_offset"] = rng.uniform(-2e-3, 2e-3, ROWS).tolist()
        before = h.ok("READ_MAP", read_map_gains(1311, 0, ROWS, 1, [1]), GAINS_CODES_I16)
        h.ok("SET_CALIBRATION", set_calibration(**cal))
        assert h.ok("READ_MAP", read_map_gains(1311, 0, ROWS, 1, [1]), GAINS_CODES_I16) == before
        h.ok("DEFINE_TILE", t.payload())
        rep = h.ok("VMM_TILE", vmm_tile(0, len(x), x.ravel(), [1]), GAINS_CODES_I16)
        drive = np.zeros((len(x), ROWS), int)
        gain, off = np.asarray(cal["row_gain"], F32), np.asarray(cal["row_offset"], F32)
        for k in range(t.k):
            for r, sign in ((t.rows[k], 1), (t.neg_rows[k], -1)):
                drive[:, r] = nominal_to_channel(sign * x[:, k], gain[r], off[r], lsb, lim)
        assert np.abs(drive).max() == lim  # the clip to the read limit was exercised (row gain < 1)
        full = h.ok("VMM", vmm(len(x), drive.ravel(), [1]), GAINS_CODES_I16)
        want = np.asarray(full["codes"]).reshape(len(x), COLS)[:, t.cols + t.neg_cols]
        assert np.array_equal(np.asarray(rep["codes"]).reshape(len(x), -1), want)


def test_pulse_devices_levels_go_through_the_calibration(wiring) -> None:
    """SET: amplitude through the device's column channel, gate through its gate channel; RESET: amplitude
    through its row channel. A twin device pulsed with PULSE_SET / PULSE_RESET at the converted codes (no
    calibration there) ends at the same conductance (the ideal preset is deterministic)."""
    with opened(wiring) as h:
        lsb, glsb = h.info["dac_line_lsb"], h.info["dac_gate_lsb"]
        set_lim = round(h.info["v_set_max"] / lsb)
        gate_lim = round(h.info["v_gate_max"] / glsb)
        reset_lim = round(h.info["v_reset_max"] / lsb)
        cal = _nominal_calibration(h)
        cal["col_gain"][10], cal["col_offset"][10] = 1.3, 0.05
        cal["gate_gain"][10], cal["gate_offset"][10] = 0.9, -0.02
        cal["row_gain"][3], cal["row_offset"][3] = 1.2, 0.01
        h.ok("SET_CALIBRATION", set_calibration(**cal))
        amp, gate = 14000, 4000
        h.ok("PULSE_DEVICES", pulse_devices_payload(SET, 3, 1, index=pack_index([10]), amplitude=[amp],
                                                    gate=[gate], width=[WIDTH]), PULSE_REPLY)
        a_code = int(nominal_to_channel(amp, 1.3, 0.05, lsb, set_lim))
        g_code = int(nominal_to_channel(gate, 0.9, -0.02, glsb, gate_lim))
        assert (a_code, g_code) != (amp, gate)
        h.ok("PULSE_SET", pulse_set(12, COLS, 20, a_code, g_code, WIDTH), PULSE_REPLY)  # the twin (12, 20), nominal
        read = h.ok("READ_DEVICES", read_devices_payload(V_READ, 3, 10, index=pack_index([10, 9 * COLS + 20]),
                                                         gains=[1]), GAINS_CODES_I16)
        assert read["codes"][0] == read["codes"][1]
        h.ok("PULSE_SET", pulse_set(13, COLS, 20, amp, gate, WIDTH), PULSE_REPLY)  # uncalibrated: another state
        other = h.ok("READ_DEVICES", read_devices_payload(V_READ, 13, 1, index=pack_index([20]), gains=[1]),
                     GAINS_CODES_I16)
        assert other["codes"][0] != read["codes"][0]
        # RESET of (3, 10) vs its twin (12, 20) through row 3's channel
        r_amp = 9000
        h.ok("PULSE_DEVICES", pulse_devices_payload(RESET, 3, 1, index=pack_index([10]), amplitude=[r_amp],
                                                    gate=[16384], width=[WIDTH]), PULSE_REPLY)
        r_code = int(nominal_to_channel(r_amp, 1.2, 0.01, lsb, reset_lim))
        payload = pulse_set(12, COLS, 20, r_code, 16384, WIDTH)
        assert h.call("PULSE_RESET", payload).status_name == "OK"  # same layout as PULSE_SET
        read = h.ok("READ_DEVICES", read_devices_payload(V_READ, 3, 10, index=pack_index([10, 9 * COLS + 20]),
                                                         gains=[1]), GAINS_CODES_I16)
        assert read["codes"][0] == read["codes"][1]


# --------------------------------------------------------------- 3. networks on the board
def _table(fn, n: int = 2048) -> np.ndarray:
    """The RUN_NETWORK activation tables as the document defines them: F[i] = float32(f(x_i)),
    x_i = −8 + 16 i / N."""
    x = -8.0 + 16.0 * np.arange(n + 1) / n
    return fn(x).astype(F32)


SIG_T = _table(lambda x: 1.0 / (1.0 + np.exp(-x)))
TANH_T = _table(np.tanh)


def table_eval(table: np.ndarray, x) -> np.ndarray:
    """f(x) = F[k] + (u − k)(F[k+1] − F[k]), u = (clip(x, −8, 8) + 8) × N/16, k = min(⌊u⌋, N − 1), binary32."""
    n = len(table) - 1
    u = (np.clip(np.asarray(x, F32), F32(-8), F32(8)) + F32(8)) * F32(n / 16)
    k = np.minimum(np.floor(u), n - 1).astype(int)
    return table[k] + (u - k.astype(F32)) * (table[k + 1] - table[k])


def test_the_documented_activation_tables_have_about_the_documented_error() -> None:
    x = np.linspace(-8, 8, 2000001).astype(F32)
    tanh_err = np.abs(table_eval(TANH_T, x) - np.tanh(x.astype(float))).max()
    sig_err = np.abs(table_eval(SIG_T, x) - 1 / (1 + np.exp(-x.astype(float)))).max()
    # DOC GAP (RUN_NETWORK, activation tables): "at most 6.2 × 10⁻⁶ (tanh) and 8.4 × 10⁻⁷ (σ)" is exceeded by
    # the documented binary32 evaluation itself: 6.24 × 10⁻⁶ near x ≈ 0.62 and 8.6 × 10⁻⁷ near x ≈ 1.2
    # (the quoted figures look like the float64 interpolation error, without the binary32 rounding).
    assert 6.2e-6 < tanh_err <= 6.3e-6 and sig_err <= 8.7e-7
    assert abs(float(table_eval(SIG_T, F32(40.0))) - 1.0) <= 3.4e-4  # saturated outside [−8, 8]


def dense_expected(h: RawHost, codes: np.ndarray, input_scale: float, in_volts: float, out_scale: float,
                   tiles: list, bias: int, out_offset=None, tia=(1.0, 0.0), cal_rows=None) -> np.ndarray:
    """A DENSE layer's a (before activation) for inputs (n, X), binary32 step by step as the RUN_NETWORK
    numeric format says, from the tile products the board measures with VMM_TILE at the same drive codes.
    ``tiles``: [(Tile, in_start, out_start, gain)]."""
    info = h.info
    x = np.asarray(codes, F32) * F32(input_scale)
    z = np.concatenate([x, np.ones((len(x), bias), F32)], 1)
    lim = read_limit(h)
    v = np.clip(z * F32(in_volts), F32(-lim * info["dac_line_lsb"]), F32(lim * info["dac_line_lsb"]))
    n_out = max(o + t.m for t, _, o, _ in tiles)
    a = np.zeros((len(x), n_out), F32)
    for t, i0, o0, g in tiles:
        vt = v[:, i0 : i0 + t.k]
        q = vt / (F32(info["dac_line_lsb"]) * F32(1.0))  # nominal drive code (calibration applies on the board)
        nominal = np.rint(np.clip(q, F32(-lim), F32(lim))).astype(int)
        rep = h.ok("VMM_TILE", vmm_tile(t.tid, len(x), nominal.ravel(), [g]), GAINS_CODES_I16)
        c = np.asarray(rep["codes"], F32).reshape(len(x), -1)
        i = -(c * F32(info["adc_lsb"]) - F32(tia[1])) / (F32(info["tia_gains"][g]) * F32(tia[0]))
        if t.neg_cols:
            i = i[:, : t.m] - i[:, t.m :]
        a[:, o0 : o0 + t.m] += i * F32(out_scale)
    if out_offset is not None:
        a -= np.asarray(out_offset, F32)
    return a


def test_a_dense_network_is_the_tile_products_bit_for_bit(wiring) -> None:
    """One DENSE LINEAR layer over two tiles splitting its inputs (bias included), with out_offset:
    RUN_NETWORK's outputs are, to the bit, input = code × input_scale, V = z × in_volts, the tile products
    converted by §10.2 in binary32, a += I × out_scale, a −= out_offset once."""
    t_a = Tile(4, rows=[6, 1], cols=[20, 21, 22], neg_cols=[23, 24, 25])
    t_b = Tile(5, rows=[11], neg_rows=[13], cols=[20, 21, 22])  # input 2 = the bias
    in_volts, out_scale, input_scale = 0.15, 2.0e4, 1.0 / 4096
    offset = [0.25, -0.5, 0.125]
    codes = np.random.default_rng(5).integers(-8000, 8000, (7, 2))
    with opened(wiring) as h:
        program_array(h)
        h.ok("DEFINE_TILE", t_a.payload())
        h.ok("DEFINE_TILE", t_b.payload())
        layer = Layer(DENSE, 2, 3, bias=1, activation=LINEAR, in_volts=in_volts, out_scale=out_scale,
                      tiles=[(4, 0, 0, 1), (5, 2, 0, 1)])
        assert h.ok("LOAD_NETWORK", load_network([layer], offset), LOAD_NETWORK_REPLY) == \
            {"n_inputs": 2, "n_outputs": 3, "per_step": 1}
        out = h.ok("RUN_NETWORK", run_network([3, 4], input_scale, codes.ravel()), RUN_NETWORK_REPLY)
        assert out["steps_done"] == 4 and out["clipped"] == 0 and len(out["outputs"]) == 7 * 3
        want = dense_expected(h, codes, input_scale, in_volts, out_scale, [(t_a, 0, 0, 1), (t_b, 2, 0, 1)], 1,
                              offset)
        # DOC GAP (RUN_NETWORK step 2): "after every tile, a −= the layer's out_offset" reads as once per tile;
        # the board subtracts it once per layer (after all its tiles), as this bit-exact match shows.
        assert np.array_equal(np.asarray(out["outputs"], F32).reshape(7, 3), want)
        layer.activation = SOFTMAX  # "the board returns the logits, the host normalises"
        h.ok("LOAD_NETWORK", load_network([layer], offset), LOAD_NETWORK_REPLY)
        again = h.ok("RUN_NETWORK", run_network([3, 4], input_scale, codes.ravel()), RUN_NETWORK_REPLY)
        assert again["outputs"] == out["outputs"]


def test_the_tia_calibration_reaches_run_network_and_sigmoid_is_the_table(wiring) -> None:
    """With tia_gain/tia_offset, I = −(code × adc_lsb − tia_offset) / (tia_gains[g] × tia_gain); a DENSE
    SIGMOID output is σ from the documented table, to the bit."""
    t = Tile(6, rows=[3, 4, 5], cols=[26, 27], neg_cols=[28, 29])
    in_volts, out_scale, input_scale = 0.2, 4.0e5, 1.0 / 32767
    codes = np.random.default_rng(6).integers(-32767, 32768, (6, 3))
    with opened(wiring) as h:
        program_array(h)
        n_g = len(h.info["tia_gains"])
        cal = _nominal_calibration(h)
        cal["tia_gain"] = [1.25] * (COLS * n_g)
        cal["tia_offset"] = [3e-3] * (COLS * n_g)
        h.ok("SET_CALIBRATION", set_calibration(**cal))
        h.ok("DEFINE_TILE", t.payload())
        layer = Layer(DENSE, 3, 2, bias=0, activation=SIGMOID, in_volts=in_volts, out_scale=out_scale,
                      tiles=[(6, 0, 0, 1)])
        h.ok("LOAD_NETWORK", load_network([layer]), LOAD_NETWORK_REPLY)
        out = h.ok("RUN_NETWORK", run_network([6], input_scale, codes.ravel()), RUN_NETWORK_REPLY)
        a = dense_expected(h, codes, input_scale, in_volts, out_scale, [(t, 0, 0, 1)], 0, tia=(1.25, 3e-3))
        assert np.abs(a).max() > 0.5  # the sigmoid is not in its linear part only
        assert np.array_equal(np.asarray(out["outputs"], F32).reshape(6, 2), table_eval(SIG_T, a))


class Model:
    """The network of LOAD_NETWORK computed on the host in float64 with exact activations, from READ_MAP
    conductances, with a rigorous bound on |board − model| carried along (see ``products``)."""

    def __init__(self, h: RawHost, g: np.ndarray, g_err: np.ndarray):
        self.info, self.g, self.g_err = h.info, g, g_err
        self.lsb = h.info["dac_line_lsb"]
        self.lim_v = read_limit(h) * self.lsb
        self.full_scale = 2 ** (h.info["adc_bits"] - 1) * h.info["adc_lsb"]
        self.tia = np.asarray(h.info["tia_gains"], float)
        self.eps = 1e-6  # binary32 arithmetic of a handful of operations on values of order 1-10

    def _half_lsb(self, current: np.ndarray, gain: int) -> np.ndarray:
        """Half an ADC step in amperes at the gain the board converts a read of ``current`` at: fixed, or for
        auto-ranging (§10.2) at least the highest gain with |I|·R ≤ 0.9 × full scale (the board may only
        pick that gain or a higher one)."""
        if gain != AUTO:
            return np.full(current.shape, 0.5 * self.info["adc_lsb"] / self.tia[gain])
        r = np.full(current.shape, self.tia[0])
        for rg in self.tia:
            r = np.where(np.abs(current) * rg <= 0.9 * self.full_scale, rg, r)
        return 0.5 * self.info["adc_lsb"] / r

    def products(self, z: np.ndarray, dz: np.ndarray, in_volts: float, out_scale: float, tiles: list,
                 n_out: int, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """a and its bound for one product input z (bound dz). V = z × in_volts clipped, driven at the DAC
        code round(V / lsb). The board's a differs from this by at most: the DAC codes its own z (within dz,
        and within binary32 rounding) can round to, the conductance error of READ_MAP (half an ADC step per
        device), half an ADC step per column read of the product, and binary32 rounding."""
        v = np.clip(z * in_volts, -self.lim_v, self.lim_v)
        code = v / self.lsb
        vq = np.rint(code) * self.lsb
        spread = in_volts * dz / self.lsb + 1e-6 * np.abs(code)  # where the board's unrounded code may lie
        dv = np.maximum(np.rint(code + spread) - np.rint(code), np.rint(code) - np.rint(code - spread)) * self.lsb
        a, da = np.zeros(n_out), np.zeros(n_out)
        for t, i0, o0, gain in tiles:
            vt, dvt = vq[i0 : i0 + t.k], dv[i0 : i0 + t.k]
            for m in range(t.m):
                reads = [(t.cols[m], 1)] + ([(t.neg_cols[m], -1)] if t.neg_cols else [])
                for col, sign in reads:
                    pairs = [(t.rows, 1)] + ([(t.neg_rows, -1)] if t.neg_rows else [])
                    cur = sum(s * self.g[rows, col] @ vt for rows, s in pairs)
                    bound = sum((self.g[rows, col] + self.g_err[rows, col]) @ dvt
                                + self.g_err[rows, col] @ np.abs(vt) for rows, _ in pairs)
                    assert abs(cur) + bound < self.full_scale / self.tia[gain if gain != AUTO else 0] * 0.9
                    bound += self._half_lsb(np.array(abs(cur) + bound), gain)
                    a[o0 + m] += sign * cur * out_scale
                    da[o0 + m] += bound * out_scale
        a -= offset
        return a, da + self.eps * (1 + np.abs(a))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _slope_tanh(x, dx):
    """The largest |tanh'| within dx of x (tanh' falls with |x|)."""
    return 1.0 - np.tanh(np.maximum(np.abs(x) - dx, 0.0)) ** 2


def _slope_sigmoid(x, dx):
    s = sigmoid(np.maximum(np.abs(x) - dx, 0.0))
    return s * (1.0 - s)


def lstm_step(a, da, c, dc, hsize: int):
    """g, i, f, o = a's four blocks in the document's order; c ← i g + f c; h ← o tanh(c), each error bound
    carried through the steepest slope of the activation within the bound, plus the table's error."""
    parts = [a[k * hsize : (k + 1) * hsize] for k in range(4)]
    dparts = [da[k * hsize : (k + 1) * hsize] for k in range(4)]
    g, i, f, o = np.tanh(parts[0]), sigmoid(parts[1]), sigmoid(parts[2]), sigmoid(parts[3])
    dg = _slope_tanh(parts[0], dparts[0]) * dparts[0] + 6.3e-6
    di, df, do = (_slope_sigmoid(p, d) * d + 8.7e-7 for p, d in zip(parts[1:], dparts[1:]))
    c_new = i * g + f * c
    dc_new = np.abs(i) * dg + np.abs(g) * di + di * dg + np.abs(f) * dc + np.abs(c) * df + df * dc + 1e-7
    tc = np.tanh(c_new)
    dtc = _slope_tanh(c_new, dc_new) * dc_new + 6.3e-6
    h = o * tc
    dh = np.abs(o) * dtc + np.abs(tc) * do + do * dtc + 1e-7
    return h, dh, c_new, dc_new


LSTM_TILES = [Tile(0, rows=[5, 4, 3, 2, 1, 0], cols=list(range(0, 6)), neg_cols=list(range(6, 12))),
              Tile(1, rows=[0, 1, 2], neg_rows=[8, 9, 10], cols=list(range(12, 18))),
              Tile(2, rows=[3, 4, 5], neg_rows=[11, 12, 13], cols=list(range(12, 18)))]
DENSE_TILE = Tile(3, rows=[6, 7, 14, 15], cols=[18, 19], neg_cols=[20, 21])
X, H = 2, 3


def _network(last_step: bool, activation: int):
    """LSTM(X=2, H=3, bias) [→ LAST_STEP] → DENSE(3 → 2, bias): the LSTM matrix (6 × 12) on three tiles (one
    with column pairs over all inputs and the first six outputs; two with G− rows splitting the inputs of the
    last six, one of them auto-ranged), the dense one on a fourth tile."""
    lstm = Layer(LSTM, X, H, bias=1, activation=99, in_volts=0.2, out_scale=1.5e4,  # activation ignored: LSTM
                 tiles=[(0, 0, 0, 1), (1, 0, 6, 1), (2, 3, 6, AUTO)])
    dense = Layer(DENSE, H, 2, bias=1, activation=activation, in_volts=0.2, out_scale=3e4, tiles=[(3, 0, 0, 1)])
    layers = [lstm] + ([Layer(LAST_STEP, H)] if last_step else []) + [dense]
    offset = np.concatenate([np.linspace(-0.3, 0.3, 4 * H), [0.1, -0.2]])
    return layers, offset


def network_model(model: Model, codes: np.ndarray, input_scale: float, lengths, last_step: bool, activation: int):
    """(outputs, bounds) per sequence: per step, or after the last step."""
    layers, offset = _network(last_step, activation)
    lstm, dense = layers[0], layers[-1]
    lstm_tiles = [(t, i0, o0, g) for t, (_, i0, o0, g) in zip(LSTM_TILES, lstm.tiles)]
    dense_tiles = [(DENSE_TILE, 0, 0, 1)]
    outs, bounds, start = [], [], 0
    for n in lengths:
        x = (codes[start : start + n].astype(F32) * F32(input_scale)).astype(float)
        start += n
        h, dh, c, dc = (np.zeros(H) for _ in range(4))
        per = []
        for t in range(n):
            z = np.concatenate([x[t], h, [1.0]])  # product input x_t, h_{t−1}, 1
            dz = np.concatenate([np.zeros(X), dh, [0.0]])
            a, da = model.products(z, dz, lstm.in_volts, lstm.out_scale, lstm_tiles, 4 * H, offset[: 4 * H])
            h, dh, c, dc = lstm_step(a, da, c, dc, H)
            per.append((h, dh))
        for h, dh in per[-1:] if last_step else per:
            a, da = model.products(np.concatenate([h, [1.0]]), np.concatenate([dh, [0.0]]), dense.in_volts,
                                   dense.out_scale, dense_tiles, 2, offset[4 * H :])
            if activation == SIGMOID:
                outs.append(sigmoid(a))
                bounds.append(_slope_sigmoid(a, da) * da + 8.7e-7)
            else:
                outs.append(a)
                bounds.append(da)
    return np.array(outs), np.array(bounds)


def network_replay(h: RawHost, codes: np.ndarray, input_scale: float, lengths, last_step: bool,
                   activation: int, order=(0, 1, 2, 3), z_order: str = "xh1", offset_sign: float = 1.0) -> np.ndarray:
    """The document's algorithm run by the host in binary32 with the documented tables, over the board's own
    products (one VMM_TILE per tile and step, the running sequences as its vectors). ``order``, ``z_order``
    and ``offset_sign`` give wrong readings of the document."""
    layers, offset = _network(last_step, activation)
    offset = offset * offset_sign
    lstm, dense = layers[0], layers[-1]
    info, lim = h.info, read_limit(h)
    lsb = F32(info["dac_line_lsb"])

    def layer(z: np.ndarray, ly: Layer, tiles, n_out: int, off: np.ndarray) -> np.ndarray:
        v = np.clip(z * F32(ly.in_volts), F32(-lim) * lsb, F32(lim) * lsb)
        a = np.zeros((len(z), n_out), F32)
        for t, i0, o0, gain in tiles:
            drive = np.rint(np.clip(v[:, i0 : i0 + t.k] / (lsb * F32(1.0)), F32(-lim), F32(lim))).astype(int)
            rep = h.ok("VMM_TILE", vmm_tile(t.tid, len(z), drive.ravel(), [gain]), GAINS_CODES_I16)
            cc = np.asarray(rep["codes"], F32).reshape(len(z), -1)
            gg = np.asarray(rep["gains"]).reshape(-1, cc.shape[1]) if gain == AUTO else np.full(cc.shape, gain)
            i = -(cc * F32(info["adc_lsb"]) - F32(0.0)) / (np.asarray(info["tia_gains"], F32)[gg] * F32(1.0))
            if t.neg_cols:
                i = i[:, : t.m] - i[:, t.m :]
            a[:, o0 : o0 + t.m] += i * F32(ly.out_scale)
        return a - off.astype(F32)

    lstm_tiles = [(t, i0, o0, g) for t, (_, i0, o0, g) in zip(LSTM_TILES, lstm.tiles)]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    hs, cs = np.zeros((len(lengths), H), F32), np.zeros((len(lengths), H), F32)
    xs = codes.astype(F32) * F32(input_scale)
    steps: dict = {}
    for t in range(max(lengths)):
        run = [b for b, n in enumerate(lengths) if n > t]
        parts = {"x": xs[starts[run] + t], "h": hs[run], "1": np.ones((len(run), 1), F32)}
        z = np.concatenate([parts[p] for p in z_order], 1)
        a = layer(z, lstm, lstm_tiles, 4 * H, offset[: 4 * H])
        g = table_eval(TANH_T, a[:, order[0] * H : (order[0] + 1) * H])
        i, f, o = (table_eval(SIG_T, a[:, k * H : (k + 1) * H]) for k in order[1:])
        cs[run] = i * g + f * cs[run]
        hs[run] = o * table_eval(TANH_T, cs[run])
        for j, b in enumerate(run):
            steps[(b, t)] = hs[b].copy()
    feats = [steps[(b, n - 1)] for b, n in enumerate(lengths)] if last_step else \
        [steps[(b, t)] for b, n in enumerate(lengths) for t in range(n)]
    zf = np.concatenate([np.asarray(feats, F32), np.ones((len(feats), 1), F32)], 1)
    a = layer(zf, dense, [(DENSE_TILE, 0, 0, 1)], 2, offset[4 * H :])
    return table_eval(SIG_T, a) if activation == SIGMOID else a


@pytest.mark.parametrize("last_step", [True, False], ids=["last-step", "per-step"])
def test_an_lstm_network_computes_what_the_document_says(wiring, last_step) -> None:
    """LSTM (gate order cell input, input, forget, output; product input x_t, h_{t−1}, 1) → [LAST_STEP] →
    DENSE, over three sequences of different lengths.

    1. Against the float64 model of the document's algorithm from READ_MAP conductances, within the bound
       the model carries (per product: the DAC codes the board's own z may round to, READ_MAP's and the
       product's half ADC steps, the table error and binary32; carried through the steepest activation
       slope within the bound).
    2. Against the same algorithm run on the host in binary32 over the board's own products (VMM_TILE):
       the document promises agreement to about 10⁻⁷–10⁻⁶ (median ≤ 10⁻⁵, ≤ 5 × 10⁻³ near a DAC rounding
       boundary); the boards give the replay's bits. Wrong readings of the document (gate orders, h before
       x, the bias first, out_offset added) are far from it."""
    lengths = [4, 2, 3]
    input_scale = 1.0 / 32767
    codes = np.random.default_rng(7).integers(-32767, 32768, (sum(lengths), X))
    activation = SIGMOID if last_step else LINEAR
    with opened(wiring) as h:
        program_array(h)
        g, g_err = conductances(h)
        for t in LSTM_TILES + [DENSE_TILE]:
            h.ok("DEFINE_TILE", t.payload())
        layers, offset = _network(last_step, activation)
        rep = h.ok("LOAD_NETWORK", load_network(layers, offset), LOAD_NETWORK_REPLY)
        assert rep == {"n_inputs": X, "n_outputs": 2, "per_step": 0 if last_step else 1}
        out = h.ok("RUN_NETWORK", run_network(lengths, input_scale, codes.ravel()), RUN_NETWORK_REPLY)
        assert out["steps_done"] == max(lengths) and out["clipped"] == 0
        got = np.asarray(out["outputs"], float).reshape(-1, 2)
        model = Model(h, g, g_err)
        want, bound = network_model(model, codes, input_scale, lengths, last_step, activation)
        assert got.shape == want.shape == (len(lengths) if last_step else sum(lengths), 2)
        assert np.all(np.abs(got - want) <= bound), (np.abs(got - want).max(), bound.min())
        assert bound.max() < 0.03
        replay = network_replay(h, codes, input_scale, lengths, last_step, activation)
        diff = np.abs(replay - np.asarray(out["outputs"], F32).reshape(-1, 2))
        assert np.median(diff) <= 1e-5 and diff.max() <= 5e-3  # what the document promises
        assert diff.max() == 0.0  # what both back ends give: the document's binary32 recipe, to the bit
        # both comparisons tell the document's reading from wrong ones
        wrong = [dict(order=(1, 0, 2, 3)), dict(order=(0, 2, 1, 3)), dict(order=(0, 1, 3, 2)),
                 dict(order=(3, 2, 1, 0)), dict(z_order="hx1"), dict(z_order="1xh"), dict(offset_sign=-1.0)]
        for variant in wrong:
            other = network_replay(h, codes, input_scale, lengths, last_step, activation, **variant)
            assert np.abs(other - replay).max() > 100 * max(diff.max(), 1e-6), variant


# ----------------------------------------------------------- progress frames and ABORT
SMALL_NET = [Layer(DENSE, 2, 2, bias=0, activation=LINEAR, in_volts=0.1, out_scale=1e4, tiles=[(0, 0, 0, 1)])]


def _load_small_net(h: RawHost) -> None:
    h.ok("DEFINE_TILE", define_tile(0, [0, 1], [0, 1]))
    h.ok("LOAD_NETWORK", load_network(SMALL_NET), LOAD_NETWORK_REPLY)


def _live_levels(h: RawHost) -> None:
    """Rows at 0.2 V, columns at 15 mV, gates at 5 V (SET_LEVELS)."""
    for group, value, n in ((0, 1311, ROWS), (1, 100, COLS), (2, 16384, COLS)):
        h.ok("SET_LEVELS", set_levels(group, value, n))


def _live(emu) -> bool:
    return any(np.asarray(levels).any() for levels in emu.levels.values())


@pytest.mark.parametrize("progress_steps, flags, expect", [
    (2, WANT_PROGRESS, [2, 4, 5]), (1, WANT_PROGRESS, [1, 2, 3, 4, 5]), (7, WANT_PROGRESS, [5]),
    (0, WANT_PROGRESS, []), (2, 0, [])])
def test_run_network_progress_frames(wiring, progress_steps, flags, expect) -> None:
    """With WANT_PROGRESS, a progress frame after every progress_steps time steps and after the last one
    (steps = the longest length); none with 0 or without WANT_PROGRESS. Frames: REPLY|PROGRESS, status 0."""
    with opened(wiring) as h:
        _load_small_net(h)
        progress: list = []
        r = h.request("RUN_NETWORK", run_network([5, 3], 1 / 1000, list(range(16)), progress_steps),
                      seq=h.next_seq(), flags=flags, progress=progress)
        assert r.status_name == "OK" and parse_layout(r.payload, RUN_NETWORK_REPLY)["steps_done"] == 5
        assert [parse_layout(p.payload, RUN_NETWORK_PROGRESS) for p in progress] == \
            [{"steps_done": k, "steps": 5} for k in expect]
        assert all(p.flags == 0x05 and p.status == 0 and p.session == h.session for p in progress)


@pytest.mark.parametrize("progress_rows, expect", [(0, [2, 3, 6]), (1, [2, 3, 6]), (2, [3, 6]), (9, [6])])
def test_pulse_devices_progress_counts_rows_holding_devices(wiring, progress_rows, expect) -> None:
    """Devices in rows 1, 2 and 5 of the block rows 0-7: a progress frame after every progress_rows rows
    holding devices (0 counts as 1) and after the last such row; rows_done = rows of the block finished."""
    offs = [1 * COLS + 3, 1 * COLS + 4, 2 * COLS, 5 * COLS + 63]
    with opened(wiring) as h:
        progress: list = []
        r = h.request("PULSE_DEVICES", pulse_devices_payload(SET, 0, 8, index=pack_index(offs), amplitude=[SET_V],
                                                             gate=[4000], width=[WIDTH], progress_rows=progress_rows),
                      seq=h.next_seq(), flags=WANT_PROGRESS, progress=progress)
        assert parse_layout(r.payload, PULSE_REPLY) == {"rows_done": 8, "pulses": 4}
        # DOC GAP (PULSE_DEVICES progress): the last progress frame says rows_done = 6 (the last row holding a
        # device + 1), the final reply 8 (= row_count); PULSE_SET's last progress frame equals row_count. The
        # document's words allow both, but do not say that the two differ.
        assert [parse_layout(p.payload, PULSE_PROGRESS) for p in progress] == \
            [{"rows_done": k, "row_count": 8} for k in expect]


def _abort_midway(factory, kind: str, setup, name: str, payload: bytes, after: int):
    """Send ``name`` with WANT_PROGRESS and an ABORT once ``after`` progress frames arrived: in process from
    the board's poll between steps (the board reads its input there), over TCP from the host (the board
    paced to real time). Returns (board, host, the request's seq, the ABORT's seq, the messages received
    from the request on)."""
    abort_seq = 0x7777
    if kind == "inprocess":
        emu = factory()
        out = bytearray()
        state = {"sent": False}
        host: RawHost

        def poll() -> bytes:
            if state["sent"] or sum(1 for m in parse(bytes(out)) if m.flags & 0x04) < after:
                return b""
            state["sent"] = True
            return frame(0x0A, b"", seq=abort_seq, session=host.session)

        conn = emu.open(out.extend, poll, "in-process aborting host")

        def read(timeout: float) -> bytes:
            data = bytes(out)
            out.clear()
            return data

        host = RawHost(conn.receive, read)
        host.hello(seq=1, minor=1)
        setup(host)
        seq = host.next_seq()
        mark = len(host.log)
        host.send(name, payload, seq=seq, flags=WANT_PROGRESS)
        host.wait(seq)
        return emu, host, seq, abort_seq, host.log[mark:]
    emu = factory(pace=2000.0)
    w = Wiring(emu, "tcp")
    try:
        with w.host("aborting host") as host:
            host.hello(seq=1, minor=1)
            setup(host)
            seq = host.next_seq()
            mark = len(host.log)
            host.send(name, payload, seq=seq, flags=WANT_PROGRESS)
            deadline = time.monotonic() + 5
            while sum(1 for m in host.log[mark:] if m.flags & 0x04) < after and time.monotonic() < deadline:
                host.receive(0.01)
            host.send("ABORT", seq=abort_seq)
            host.wait(seq, timeout=5)
            return emu, host, seq, abort_seq, host.log[mark:]
    finally:
        w.close()


def _check_abort_order(messages, seq: int, abort_seq: int, opcode: int) -> tuple:
    """§9.3 on the wire: progress frames (seq A) …, the ABORT reply (seq B, was_busy 1), the ABORTED reply
    (seq A). Returns (progress frames, final reply)."""
    kinds = [("P" if m.flags & 0x04 else "R", m.seq, m.opcode) for m in messages]
    n_prog = sum(1 for k in kinds if k[0] == "P")
    assert kinds == [("P", seq, opcode)] * n_prog + [("R", abort_seq, 0x0A), ("R", seq, opcode)], kinds
    assert messages[-2].status == 0 and messages[-2].payload == b"\x01"  # was_busy = 1
    assert messages[-1].status_name == "ABORTED"
    return messages[:n_prog], messages[-1]


@pytest.mark.parametrize("kind", ["inprocess", "tcp"])
def test_abort_between_run_network_steps(board_factory, kind) -> None:
    """ABORT between time steps: ABORTED with steps_done = the steps finished, clipped so far, empty outputs;
    the reply is cached (a retry gets it again) and the network stays loaded."""
    payload = run_network([40, 25], 1 / 1000, list(range(130)), 1)

    def setup(h: RawHost) -> None:
        _load_small_net(h)
        _live_levels(h)

    emu, h, seq, abort_seq, msgs = _abort_midway(board_factory, kind, setup, "RUN_NETWORK", payload, 2)
    progress, final = _check_abort_order(msgs, seq, abort_seq, 0x15)
    rep = parse_layout(final.payload, RUN_NETWORK_REPLY)
    assert 2 <= rep["steps_done"] < 40 and rep["outputs"] == [] and rep["clipped"] == 0
    assert parse_layout(progress[-1].payload, RUN_NETWORK_PROGRESS) == {"steps_done": rep["steps_done"], "steps": 40}
    if kind == "inprocess":
        assert rep["steps_done"] == 2  # stopped before the step after the one that saw the ABORT
        again = h.request("RUN_NETWORK", payload, seq=seq)
        assert again.status_name == "ABORTED" and again.payload == final.payload  # from the reply cache
        assert h.call("RUN_NETWORK", run_network([2], 1 / 1000, [1, 2, 3, 4])).status_name == "OK"
    assert not _live(emu)  # §9.3: an abort grounds every line


@pytest.mark.parametrize("kind", ["inprocess", "tcp"])
def test_abort_between_pulse_devices_rows(board_factory, kind) -> None:
    """ABORT during PULSE_DEVICES: ABORTED with rows_done = rows of the block fully applied and pulses = the
    pulses applied; nothing after the abort is pulsed."""
    offs = [r * COLS + c for r in (1, 2, 4, 5, 6, 7) for c in (3, 9)]
    payload = pulse_devices_payload(SET, 0, 8, index=pack_index(offs), amplitude=[SET_V], gate=[4000],
                                    width=[WIDTH], progress_rows=1)
    emu, h, seq, abort_seq, msgs = _abort_midway(board_factory, kind, _live_levels, "PULSE_DEVICES", payload, 1)
    progress, final = _check_abort_order(msgs, seq, abort_seq, 0x17)
    rep = parse_layout(final.payload, PULSE_REPLY)
    last = parse_layout(progress[-1].payload, PULSE_PROGRESS)["rows_done"]
    assert last <= rep["rows_done"] < 8  # rows skipped for having no device count as applied (TCP: 3, then 4)
    pulsed = [r for r in (1, 2, 4, 5, 6, 7) if r < rep["rows_done"]]
    assert rep["pulses"] == 2 * len(pulsed) == int(_pulses(emu).sum())
    counts = _pulses(emu)
    assert all(counts[r, c] == (1 if r < rep["rows_done"] else 0) for r in (1, 2, 4, 5, 6, 7) for c in (3, 9))
    assert not _live(emu)  # §9.3: an abort grounds every line
    if kind == "inprocess":
        assert rep == {"rows_done": 2, "pulses": 2}


# ------------------------------------------------------------------------- 4. refusals
def _refusals(h: RawHost, name: str, cases) -> None:
    """Every (label, payload, status) answered with that status and the error reply layout (§6.2)."""
    wrong = []
    for label, payload, status in cases:
        r = h.call(name, payload)
        if r.status_name != status:
            wrong.append(f"{label}: {r.status_name} (expected {status})")
        elif status not in ("OK", "ABORTED"):
            parse_layout(r.payload, [("reason", "str")])
    assert not wrong, wrong


def test_set_calibration_refusals(wiring) -> None:
    with opened(wiring) as h:
        good = _nominal_calibration(h)
        good["row_gain"] = [2.0] * ROWS
        h.ok("SET_CALIBRATION", set_calibration(**good))

        def bad(**change):
            cal = dict(good)
            cal.update(change)
            return set_calibration(**cal)

        n_g = len(h.info["tia_gains"])
        _refusals(h, "SET_CALIBRATION", [
            ("one array empty, the others full", bad(tia_offset=[]), "BAD_PAYLOAD"),
            ("only row_gain given", set_calibration(row_gain=[1.0] * ROWS), "BAD_PAYLOAD"),
            ("row_gain rows - 1 long", bad(row_gain=[1.0] * (ROWS - 1)), "BAD_PAYLOAD"),
            ("col_offset cols + 1 long", bad(col_offset=[0.0] * (COLS + 1)), "BAD_PAYLOAD"),
            ("tia_gain cols long (not cols x gains)", bad(tia_gain=[1.0] * COLS), "BAD_PAYLOAD"),
            ("an offset NaN", bad(col_offset=[0.0] * (COLS - 1) + [math.nan]), "BAD_PAYLOAD"),
            ("a gain +inf", bad(gate_gain=[math.inf] + [1.0] * (COLS - 1)), "BAD_PAYLOAD"),
            ("a gain 0", bad(tia_gain=[0.0] + [1.0] * (COLS * n_g - 1)), "BAD_PAYLOAD"),
            ("a gain negative", bad(row_gain=[-1.0] * ROWS), "BAD_PAYLOAD"),
            ("a trailing byte", set_calibration() + b"\x00", "BAD_PAYLOAD"),
            ("an array running past the end", set_calibration()[:-2], "BAD_PAYLOAD"),
        ])
        # a refusal changes nothing: row gain 2 still halves the drive code of a VMM_TILE input
        h.ok("DEFINE_TILE", define_tile(0, [0], [40]))
        tile = h.ok("VMM_TILE", vmm_tile(0, 1, [1000], [2]), GAINS_CODES_I16)
        half = h.ok("VMM", vmm(1, [500] + [0] * (ROWS - 1), [2]), GAINS_CODES_I16)
        assert tile["codes"] == [half["codes"][40]]


def test_define_tile_refusals(wiring) -> None:
    with opened(wiring) as h:
        h.ok("DEFINE_TILE", define_tile(0, [0, 1], [0]))
        h.ok("LOAD_NETWORK", load_network([Layer(DENSE, 2, 1, in_volts=0.1, out_scale=1e4, tiles=[(0, 0, 0, 1)])]),
             LOAD_NETWORK_REPLY)
        _refusals(h, "DEFINE_TILE", [
            ("tile = max_tiles", define_tile(32, [0], [0]), "LIMIT"),
            ("tile 255", define_tile(255, [0], [0]), "LIMIT"),
            ("tile 40 and a row beyond (LIMIT first)", define_tile(40, [99], [0]), "LIMIT"),
            ("a row = rows", define_tile(1, [ROWS], [0]), "BAD_PAYLOAD"),
            ("a column = cols", define_tile(1, [0], [COLS]), "BAD_PAYLOAD"),
            ("a neg_row beyond", define_tile(1, [0], [0], neg_rows=[ROWS + 3]), "BAD_PAYLOAD"),
            ("a neg_col beyond", define_tile(1, [0], [0], neg_cols=[1000]), "BAD_PAYLOAD"),
            ("a row repeated", define_tile(1, [2, 2], [0]), "BAD_PAYLOAD"),
            ("a column repeated in neg_cols", define_tile(1, [0], [0, 1], neg_cols=[5, 5]), "BAD_PAYLOAD"),
            ("rows empty", define_tile(1, [], [0]), "BAD_PAYLOAD"),
            ("cols empty", define_tile(1, [0], []), "BAD_PAYLOAD"),
            ("neg_rows shorter than rows", define_tile(1, [0, 1], [0], neg_rows=[5]), "BAD_PAYLOAD"),
            ("neg_cols longer than cols", define_tile(1, [0], [0], neg_cols=[5, 6]), "BAD_PAYLOAD"),
            ("a row in rows and neg_rows", define_tile(1, [0, 1], [0], neg_rows=[1, 2]), "BAD_PAYLOAD"),
            ("a column in cols and neg_cols", define_tile(1, [0], [3, 4], neg_cols=[5, 3]), "BAD_PAYLOAD"),
            ("network tile 0 with another K", define_tile(0, [0, 1, 2], [0]), "BAD_PAYLOAD"),
            ("network tile 0 with another M", define_tile(0, [0, 1], [0, 1]), "BAD_PAYLOAD"),
            ("a trailing byte", define_tile(1, [0], [0]) + b"\x00", "BAD_PAYLOAD"),
        ])
        # refused: tile 0 is as it was (K 2, M 1), tile 1 was never defined
        assert h.ok("VMM_TILE", vmm_tile(0, 1, [10, 10], [1]), GAINS_CODES_I16)["gains"] == [1]
        assert h.call("VMM_TILE", vmm_tile(1, 1, [10], [1])).status_name == "BAD_PAYLOAD"
        # a redefinition keeping K and M is allowed (and the network follows it, §11 DEFINE_TILE)
        h.ok("DEFINE_TILE", define_tile(0, [5, 6], [9], neg_rows=[7, 8]))
        # DOC GAP (DEFINE_TILE): TOO_LARGE "beyond the board's tile storage" — neither back end here ever
        # refuses: 32 tiles of 8 + 8 rows and 32 + 32 columns are all accepted (docs/firmware.md: the host
        # build of the C core never refuses; the example port holds 512 line indices). HELLO does not announce
        # the capacity, so a host learns it only from a refusal.
        for t in range(1, 32):
            h.ok("DEFINE_TILE", define_tile(t, range(8), range(32), range(8, 16), range(32, 64)))


def test_vmm_tile_refusals(wiring) -> None:
    with opened(wiring) as h:
        h.ok("DEFINE_TILE", define_tile(0, [0, 1], [0, 1], neg_cols=[2, 3]))  # K 2, M + M− = 4
        lim = read_limit(h)
        _refusals(h, "VMM_TILE", [
            ("tile not defined", vmm_tile(5, 1, [0, 0], [1]), "BAD_PAYLOAD"),
            ("tile not defined and inputs beyond the limit", vmm_tile(5, 1, [lim + 1, 0], [1]), "BAD_PAYLOAD"),
            ("inputs n x K - 1", vmm_tile(0, 2, [0, 0, 0], [1]), "BAD_PAYLOAD"),
            ("inputs n x K + 1", vmm_tile(0, 1, [0, 0, 0], [1]), "BAD_PAYLOAD"),
            ("an input above the read limit", vmm_tile(0, 1, [lim + 1, 0], [1]), "LIMIT"),
            ("an input below minus the read limit", vmm_tile(0, 1, [0, -lim - 1], [1]), "LIMIT"),
            ("an input beyond and gains of length 2 (LIMIT first)", vmm_tile(0, 1, [lim + 1, 0], [1, 1]), "LIMIT"),
            ("gains of length 2", vmm_tile(0, 1, [0, 0], [1, 1]), "BAD_PAYLOAD"),
            ("gains of length M (not M + M-)", vmm_tile(0, 1, [0, 0], [1, 1]), "BAD_PAYLOAD"),
            ("gains of length cols", vmm_tile(0, 1, [0, 0], [1] * COLS), "BAD_PAYLOAD"),
            ("gains of length 2 and gain index 7 (BAD_PAYLOAD first)", vmm_tile(0, 1, [0, 0], [7, 7]), "BAD_PAYLOAD"),
            ("gain index = len(tia_gains)", vmm_tile(0, 1, [0, 0], [4]), "LIMIT"),
            ("255 inside a per-column list", vmm_tile(0, 1, [0, 0], [1, 255, 1, 1]), "LIMIT"),
            ("a trailing byte", vmm_tile(0, 1, [0, 0], [1]) + b"\x00", "BAD_PAYLOAD"),
        ])
        # DOC GAP (VMM_TILE checks): the input limit is "± round(v_read_max / dac_line_lsb)"; after SET_LIMITS
        # the board refuses inputs above the *session's* read limit (as VMM does), not only above v_read_max.
        h.ok("SET_LIMITS", set_limits(1311, 22938, 16384, 18022, 1023),
             [(n, t) for n, t in zip("abcde", "hhhhH")])
        _refusals(h, "VMM_TILE", [("an input above SET_LIMITS' read_max", vmm_tile(0, 1, [1312, 0], [1]), "LIMIT"),
                                  ("an input at SET_LIMITS' read_max", vmm_tile(0, 1, [1311, 0], [1]), "OK")])


def _net_tiles(h: RawHost) -> None:
    for t in LSTM_TILES + [DENSE_TILE]:
        h.ok("DEFINE_TILE", t.payload())


def test_load_network_refusals(wiring) -> None:
    with opened(wiring) as h:
        program_array(h, rows=2, cols=4)
        _net_tiles(h)
        layers, offset = _network(True, SIGMOID)
        lstm, last, dense = layers

        def net(*ls, off=(), **override):
            return load_network(list(ls), off, override=override or None)

        def lay(base: Layer, **change) -> Layer:
            d = dict(base.__dict__)
            d.update(change)
            return Layer(**d)

        chain9 = [Layer(DENSE, 2, 2, in_volts=0.1, out_scale=1.0, tiles=[(7, 0, 0, 1)])] * 9
        h.ok("DEFINE_TILE", define_tile(7, [0, 1], [30, 31]))
        h.ok("DEFINE_TILE", define_tile(8, [0, 1, 2, 3], [40, 41, 42, 43]))  # an LSTM(3 → 1) without bias
        h.ok("LOAD_NETWORK", net(lstm, Layer(LSTM, H, 1, 0, 0, 0.2, 1.0, [(8, 0, 0, 1)])), LOAD_NETWORK_REPLY)
        h.ok("LOAD_NETWORK", net(*layers, off=offset), LOAD_NETWORK_REPLY)  # the reference network
        _refusals(h, "LOAD_NETWORK", [
            ("n_in with L - 1 entries", net(*layers, n_in=[2, 3]), "BAD_PAYLOAD"),
            ("activation with L + 1 entries", net(*layers, activation=[0, 0, 1, 0]), "BAD_PAYLOAD"),
            ("in_start short of sum(tile_count)", net(*layers, in_start=[0, 0, 3]), "BAD_PAYLOAD"),
            ("tile_gain longer than sum(tile_count)", net(*layers, tile_gain=[1] * 5), "BAD_PAYLOAD"),
            ("unknown kind 3", net(lstm, lay(last, kind=3), dense), "BAD_PAYLOAD"),
            ("a tile not defined", net(lstm, last, lay(dense, tiles=[(9, 0, 0, 1)])), "BAD_PAYLOAD"),
            ("L = 0", net(), "BAD_PAYLOAD"),
            ("L = max_layers + 1", net(*chain9), "BAD_PAYLOAD"),
            ("sizes that do not chain", net(lstm, last, lay(dense, n_in=2)), "BAD_PAYLOAD"),
            ("a second LAST_STEP", net(lstm, last, last, dense), "BAD_PAYLOAD"),
            ("a LAST_STEP with a tile", net(lstm, lay(last, tiles=[(7, 0, 0, 1)]), dense), "BAD_PAYLOAD"),
            ("an LSTM after LAST_STEP", net(lstm, last, Layer(LSTM, H, 1, 0, 0, 0.2, 1.0, [(8, 0, 0, 1)])),
             "BAD_PAYLOAD"),
            ("a DENSE without outputs", net(lstm, last, lay(dense, n_out=0)), "BAD_PAYLOAD"),
            ("a weighted layer without tiles", net(lstm, last, lay(dense, tiles=[])), "BAD_PAYLOAD"),
            ("an unknown DENSE activation", net(lstm, last, lay(dense, activation=3)), "BAD_PAYLOAD"),
            ("in_volts 0", net(lay(lstm, in_volts=0.0), last, dense), "BAD_PAYLOAD"),
            ("in_volts negative", net(lstm, last, lay(dense, in_volts=-0.2)), "BAD_PAYLOAD"),
            ("in_volts NaN", net(lay(lstm, in_volts=math.nan), last, dense), "BAD_PAYLOAD"),
            ("in_volts inf", net(lay(lstm, in_volts=math.inf), last, dense), "BAD_PAYLOAD"),
            ("out_scale NaN", net(lstm, last, lay(dense, out_scale=math.nan)), "BAD_PAYLOAD"),
            ("out_scale -inf", net(lstm, last, lay(dense, out_scale=-math.inf)), "BAD_PAYLOAD"),
            ("a tile reaching beyond its matrix (inputs)",
             net(lay(lstm, tiles=[(0, 0, 0, 1), (1, 0, 6, 1), (2, 4, 6, 1)]), last, dense), "BAD_PAYLOAD"),
            ("a tile reaching beyond its matrix (outputs)", net(lstm, last, lay(dense, tiles=[(3, 0, 1, 1)])),
             "BAD_PAYLOAD"),
            ("a tile beyond and gain 4 (BAD_PAYLOAD first)", net(lstm, last, lay(dense, tiles=[(3, 0, 1, 4)])),
             "BAD_PAYLOAD"),
            ("a gain index = len(tia_gains)", net(lstm, last, lay(dense, tiles=[(3, 0, 0, 4)])), "LIMIT"),
            ("a gain 4 and a gap in the cover (LIMIT first)",
             net(lay(lstm, tiles=[(0, 0, 0, 4), (1, 0, 6, 1)]), last, dense), "LIMIT"),
            ("a gap in the cover", net(lay(lstm, tiles=[(0, 0, 0, 1), (1, 0, 6, 1)]), last, dense), "BAD_PAYLOAD"),
            ("a part covered twice", net(lay(lstm, tiles=lstm.tiles + [(1, 0, 6, 1)]), last, dense), "BAD_PAYLOAD"),
            ("the dense matrix without bias (3 inputs) on its 4-input tile", net(lstm, last, lay(dense, bias=0)),
             "BAD_PAYLOAD"),
            ("out_offset one short", net(*layers, off=offset[:-1]), "BAD_PAYLOAD"),
            ("out_offset NaN", net(*layers, off=np.r_[offset[:-1], np.nan]), "BAD_PAYLOAD"),
            ("a trailing byte", net(*layers, off=offset) + b"\x00", "BAD_PAYLOAD"),
        ])
        # every refusal left the reference network loaded
        rep = h.ok("RUN_NETWORK", run_network([2], 1 / 1000, [1, 2, 3, 4]), RUN_NETWORK_REPLY)
        assert len(rep["outputs"]) == 2


def test_run_network_refusals(wiring) -> None:
    with opened(wiring) as h:
        _refusals(h, "RUN_NETWORK", [("no network loaded", run_network([1], 1.0, [0, 0]), "BAD_PAYLOAD")])
        _load_small_net(h)
        _refusals(h, "RUN_NETWORK", [
            ("lengths empty", run_network([], 1.0, []), "BAD_PAYLOAD"),
            ("a length of 0", run_network([2, 0], 1.0, [0] * 4), "BAD_PAYLOAD"),
            ("inputs one short", run_network([2, 1], 1.0, [0] * 5), "BAD_PAYLOAD"),
            ("inputs one too many", run_network([1], 1.0, [0] * 3), "BAD_PAYLOAD"),
            ("inputs wrong and input_scale 0 (count first)", run_network([1], 0.0, [0] * 3), "BAD_PAYLOAD"),
            ("input_scale 0", run_network([1], 0.0, [0, 0]), "BAD_PAYLOAD"),
            ("input_scale negative", run_network([1], -1.0, [0, 0]), "BAD_PAYLOAD"),
            ("input_scale NaN", run_network([1], math.nan, [0, 0]), "BAD_PAYLOAD"),
            ("input_scale inf", run_network([1], math.inf, [0, 0]), "BAD_PAYLOAD"),
            ("a trailing byte", run_network([1], 1.0, [0, 0]) + b"\x00", "BAD_PAYLOAD"),
            ("the smallest positive input_scale", run_network([1], 1e-45, [0, 0]), "OK"),
        ])


def test_read_devices_refusals(wiring) -> None:
    one = pack_index([0])
    with opened(wiring) as h:
        lim = read_limit(h)
        _refusals(h, "READ_DEVICES", [
            ("rows beyond the array", read_devices_payload(1311, ROWS - 1, 2, index=one), "LIMIT"),
            ("rows beyond and average 0 (LIMIT first)", read_devices_payload(1311, ROWS, 1, index=one, average=0),
             "LIMIT"),
            ("average 0", read_devices_payload(1311, 0, 1, index=one, average=0), "BAD_PAYLOAD"),
            ("average 0 and gain 4 (BAD_PAYLOAD first)", read_devices_payload(1311, 0, 1, index=one, average=0,
                                                                              gains=[4]), "BAD_PAYLOAD"),
            ("gains of 2 entries", read_devices_payload(1311, 0, 1, index=one, gains=[1, 1]), "BAD_PAYLOAD"),
            ("gains of cols entries (READ_MAP allows it)", read_devices_payload(1311, 0, 1, index=one,
                                                                                gains=[1] * COLS), "BAD_PAYLOAD"),
            ("a gain index = len(tia_gains)", read_devices_payload(1311, 0, 1, index=one, gains=[4]), "LIMIT"),
            ("gains of 2 entries and v_read 0 (BAD_PAYLOAD first)",
             read_devices_payload(0, 0, 1, index=one, gains=[1, 1]), "BAD_PAYLOAD"),
            ("v_read 0", read_devices_payload(0, 0, 1, index=one), "LIMIT"),
            ("v_read negative", read_devices_payload(-1311, 0, 1, index=one), "LIMIT"),
            ("v_read above the read limit", read_devices_payload(lim + 1, 0, 1, index=one), "LIMIT"),
            ("v_read 0 and mask and index (LIMIT first)",
             read_devices_payload(0, 0, 1, index=one, mask=bytes(8)), "LIMIT"),
            ("mask and index", read_devices_payload(1311, 0, 1, index=one, mask=b"\x01" + bytes(7)), "BAD_PAYLOAD"),
            ("mask one byte short", read_devices_payload(1311, 0, 1, mask=b"\x01" + bytes(6)), "BAD_PAYLOAD"),
            ("mask one byte long", read_devices_payload(1311, 0, 1, mask=b"\x01" + bytes(8)), "BAD_PAYLOAD"),
            ("neither mask nor index, row_count 1 (§10.5)", read_devices_payload(1311, 0, 1), "BAD_PAYLOAD"),
            ("neither mask nor index, row_count 0", read_devices_payload(1311, 0, 0), "OK"),
            ("a varint running past the end", read_devices_payload(1311, 0, 1, index=b"\x00\x80"), "BAD_PAYLOAD"),
            ("a varint of 6 bytes", read_devices_payload(1311, 0, 1, index=b"\x80" * 5 + b"\x00"), "BAD_PAYLOAD"),
            ("a varint of 5 bytes", read_devices_payload(1311, 0, 1, index=b"\x80" * 4 + b"\x00"), "OK"),
            ("an offset = row_count x cols", read_devices_payload(1311, 0, 1, index=pack_index([COLS])),
             "BAD_PAYLOAD"),
            ("gaps adding up beyond the block", read_devices_payload(1311, 0, 1, index=b"\x20\x20"), "BAD_PAYLOAD"),
            ("a trailing byte", read_devices_payload(1311, 0, 1, index=one) + b"\x00", "BAD_PAYLOAD"),
        ])
        h.ok("SET_LIMITS", set_limits(1311, 22938, 16384, 18022, 1023), [(n, t) for n, t in zip("abcde", "hhhhH")])
        _refusals(h, "READ_DEVICES", [("v_read above SET_LIMITS' read_max",
                                       read_devices_payload(1312, 0, 1, index=one), "LIMIT")])


def test_pulse_devices_refusals_apply_nothing(wiring) -> None:
    one = pack_index([5])

    def pd(kind=SET, row_start=0, row_count=1, mask=b"", index=one, amplitude=(SET_V,), gate=(4000,), width=(WIDTH,)):
        return pulse_devices_payload(kind, row_start, row_count, mask=mask, index=index, amplitude=amplitude,
                                     gate=gate, width=width)

    two = pack_index([5, 6])
    with opened(wiring) as h:
        lsb, glsb = h.info["dac_line_lsb"], h.info["dac_gate_lsb"]
        set_lim, reset_lim = round(h.info["v_set_max"] / lsb), round(h.info["v_reset_max"] / lsb)
        gate_lim = round(h.info["v_gate_max"] / glsb)
        _refusals(h, "PULSE_DEVICES", [
            ("kind 2", pd(kind=2), "BAD_PAYLOAD"),
            ("kind 2 and rows beyond (BAD_PAYLOAD first)", pd(kind=2, row_start=ROWS), "BAD_PAYLOAD"),
            ("rows beyond the array", pd(row_start=ROWS - 1, row_count=2), "LIMIT"),
            ("rows beyond and mask and index (LIMIT first)", pd(row_start=ROWS, mask=bytes(8)), "LIMIT"),
            ("mask and index", pd(mask=b"\x20" + bytes(7)), "BAD_PAYLOAD"),
            ("mask short", pd(index=b"", mask=b"\x20"), "BAD_PAYLOAD"),
            ("a varint running past the end", pd(index=b"\x85"), "BAD_PAYLOAD"),
            ("an offset beyond the block", pd(index=pack_index([64])), "BAD_PAYLOAD"),
            ("neither mask nor index", pd(index=b""), "BAD_PAYLOAD"),
            ("amplitude of 2 for 1 device", pd(amplitude=(SET_V, SET_V)), "BAD_PAYLOAD"),
            ("gate of 3 for 2 devices", pd(index=two, gate=(1, 2, 3)), "BAD_PAYLOAD"),
            ("amplitude length wrong and gate -1 (BAD_PAYLOAD first)", pd(amplitude=(1, 2), gate=(-1,)),
             "BAD_PAYLOAD"),
            ("SET amplitude 0", pd(amplitude=(0,)), "LIMIT"),
            ("SET amplitude above the SET limit", pd(amplitude=(set_lim + 1,)), "LIMIT"),
            ("RESET amplitude above the RESET limit", pd(kind=RESET, amplitude=(reset_lim + 1,)), "LIMIT"),
            ("one of two amplitudes negative", pd(index=two, amplitude=(SET_V, -5)), "LIMIT"),
            ("gate -1", pd(gate=(-1,)), "LIMIT"),
            ("gate above the gate limit", pd(gate=(gate_lim + 1,)), "LIMIT"),
            ("amplitude 0 and width of 2 entries (LIMIT first, unlike PULSE_SET)", pd(amplitude=(0,), width=(1, 1)),
             "LIMIT"),
            ("width of 2 entries for 1 device", pd(width=(1, 1)), "BAD_PAYLOAD"),
            ("width above width_max_code", pd(width=(h.info["width_max_code"] + 1,)), "LIMIT"),
            ("a trailing byte", pd() + b"\x00", "BAD_PAYLOAD"),
        ])
        h.ok("SET_LIMITS", set_limits(6554, 10000, 8000, 9000, 500), [(n, t) for n, t in zip("abcde", "hhhhH")])
        _refusals(h, "PULSE_DEVICES", [
            ("SET amplitude above SET_LIMITS' set_max", pd(amplitude=(10001,)), "LIMIT"),
            ("RESET amplitude above SET_LIMITS' reset_max", pd(kind=RESET, amplitude=(8001,)), "LIMIT"),
            ("gate above SET_LIMITS' gate_max", pd(gate=(9001,)), "LIMIT"),
            ("width above SET_LIMITS' width_max", pd(width=(501,)), "LIMIT"),
        ])
        assert int(_pulses(wiring.emu).sum()) == 0


# ---------------------------------------------------------------------- 5. session state
def _session_state(h: RawHost) -> tuple:
    """Calibration (row gain 2 everywhere), tile 0 on row 0 / column 40 and a network on it. Returns what a
    session holding them answers: (VMM_TILE codes, RUN_NETWORK payload)."""
    cal = _nominal_calibration(h)
    cal["row_gain"] = [2.0] * ROWS
    h.ok("SET_CALIBRATION", set_calibration(**cal))
    h.ok("DEFINE_TILE", define_tile(0, [0], [40]))
    h.ok("LOAD_NETWORK", load_network([Layer(DENSE, 1, 1, in_volts=0.1, out_scale=1e5, tiles=[(0, 0, 0, 1)])]),
         LOAD_NETWORK_REPLY)
    return _state_answers(h)


def _state_answers(h: RawHost) -> tuple:
    tile = h.ok("VMM_TILE", vmm_tile(0, 1, [1000], [2]), GAINS_CODES_I16)["codes"]
    run = h.call("RUN_NETWORK", run_network([2], 1 / 100, [100, 50]))
    return tile, run.payload if run.status == 0 else run.status_name


def _nominal_answers(h: RawHost) -> tuple:
    """What a nominal board gives for tile 0's product: the VMM of row 0 at code 1000 (uncalibrated) and at 500
    (row gain 2)."""
    drive = lambda code: h.ok("VMM", vmm(1, [code] + [0] * (ROWS - 1), [2]), GAINS_CODES_I16)["codes"][40]
    return drive(1000), drive(500)


@pytest.mark.parametrize("how", ["bye", "takeover", "new-after-drop"])
def test_a_new_session_forgets_calibration_tiles_and_network(wiring, how) -> None:
    with wiring.host("first") as a:
        a.hello(seq=1, minor=1)
        program_array(a, rows=1, cols=COLS)
        nominal, calibrated = _nominal_answers(a)
        assert nominal != calibrated
        tile, run = _session_state(a)
        assert tile == [calibrated] and isinstance(run, bytes)
        if how == "bye":
            a.ok("BYE")
        elif how == "takeover":
            with wiring.host("second") as b:
                assert b.hello(seq=1, minor=1, mode=TAKEOVER).status_name == "OK"
                _check_forgotten(b, nominal)
            return
    if how == "new-after-drop":
        assert wiring.until(lambda: wiring.emu.owner is None)
    with wiring.host("second") as b:
        assert b.hello(seq=1, minor=1).status_name == "OK"
        _check_forgotten(b, nominal)


def _check_forgotten(h: RawHost, nominal: int) -> None:
    assert h.call("VMM_TILE", vmm_tile(0, 1, [1000], [2])).status_name == "BAD_PAYLOAD"  # tile 0 gone
    assert h.call("RUN_NETWORK", run_network([2], 1 / 100, [100, 50])).status_name == "BAD_PAYLOAD"  # network gone
    h.ok("DEFINE_TILE", define_tile(0, [0], [40]))
    assert h.ok("VMM_TILE", vmm_tile(0, 1, [1000], [2]), GAINS_CODES_I16)["codes"] == [nominal]  # nominal again


def test_resume_keeps_calibration_tiles_and_network(wiring) -> None:
    with wiring.host("first") as a:
        a.hello(seq=1, minor=1)
        program_array(a, rows=1, cols=COLS)
        before = _session_state(a)
        session = a.session
    assert wiring.until(lambda: wiring.emu.owner is None)  # the connection dropped: detached (§7.4)
    with wiring.host("first, back") as b:
        assert b.hello(seq=1, minor=1, mode=RESUME, session=session).status_name == "OK"
        b._seq = 100  # fresh sequence numbers: not answers from the reply cache
        assert _state_answers(b) == before


# ------------------------------------------------------ what the check tables leave open
def test_vmm_tile_with_no_vectors_is_never_an_internal_error(wiring) -> None:
    """VMM_TILE with n = 0 (PROTOCOL.md: 0 allowed) is answered OK with empty arrays, never
    INTERNAL ("firmware fault"), with fixed and auto-ranged gains."""
    with opened(wiring) as h:
        h.ok("DEFINE_TILE", define_tile(0, [0, 1], [0, 1]))
        fixed = h.ok("VMM_TILE", vmm_tile(0, 0, [], [1]), GAINS_CODES_I16)
        assert fixed == {"gains": [1], "codes": []}
        auto = h.call("VMM_TILE", vmm_tile(0, 0, [], [AUTO]))
        assert auto.status_name in ("OK", "BAD_PAYLOAD"), auto.reason
        assert parse_layout(auto.payload, GAINS_CODES_I16) == {"gains": [], "codes": []}


def test_run_network_clips_at_the_sessions_read_limit_and_counts_each_value_once(wiring) -> None:
    """Step 1 clips V = z × in_volts to ± the read limit. Two tiles of one layer share its inputs."""
    t_a, t_b = Tile(0, rows=[0, 1], cols=[5]), Tile(1, rows=[0, 1], cols=[6])
    layer = Layer(DENSE, 1, 2, bias=1, activation=LINEAR, in_volts=0.5, out_scale=1e4,
                  tiles=[(0, 0, 0, 1), (1, 0, 1, 1)])
    codes = np.array([[0], [1000], [3000]])  # inputs 0, 1, 3: 0 V, 0.5 V, 1.5 V; the bias input 0.5 V
    with opened(wiring) as h:
        program_array(h, rows=2, cols=8)
        h.ok("DEFINE_TILE", t_a.payload())
        h.ok("DEFINE_TILE", t_b.payload())
        h.ok("LOAD_NETWORK", load_network([layer]), LOAD_NETWORK_REPLY)
        out = h.ok("RUN_NETWORK", run_network([3], 1 / 1000, codes.ravel()), RUN_NETWORK_REPLY)
        # DOC GAP (RUN_NETWORK reply `clipped`): "over every step and tile" reads as one count per tile that
        # drives the value; the board counts each clipped product input once per step (1 here, not 2).
        assert out["clipped"] == 1
        want = dense_expected(h, codes, 1 / 1000, 0.5, 1e4, [(t_a, 0, 0, 1), (t_b, 0, 1, 1)], 1)
        assert np.array_equal(np.asarray(out["outputs"], F32).reshape(3, 2), want)  # 1.5 V driven as 1.0 V
        # DOC GAP (RUN_NETWORK step 1): the clip is "± round(v_read_max / dac_line_lsb) × dac_line_lsb"; after
        # SET_LIMITS the board clips at the session's read limit (0.2 V here), counting the bias input too.
        h.ok("SET_LIMITS", set_limits(1311, 22938, 16384, 18022, 1023), [(n, t) for n, t in zip("abcde", "hhhhH")])
        out = h.ok("RUN_NETWORK", run_network([3], 1 / 1000, codes.ravel()), RUN_NETWORK_REPLY)
        assert out["clipped"] == 5  # step 0: the bias; steps 1 and 2: the input and the bias
        products = []
        for x in (0, 1311, 1311):
            rep = [h.ok("VMM_TILE", vmm_tile(t.tid, 1, [x, 1311], [1]), GAINS_CODES_I16)["codes"][0]
                   for t in (t_a, t_b)]
            i = -(np.asarray(rep, F32) * F32(h.info["adc_lsb"])) / (F32(h.info["tia_gains"][1]) * F32(1.0))
            products.append(i * F32(1e4))
        assert np.array_equal(np.asarray(out["outputs"], F32).reshape(3, 2), np.asarray(products, F32))


def test_redefining_a_network_tile_with_the_same_shape_moves_the_network(wiring) -> None:
    """The network names its tiles by id: a redefinition keeping K and M changes what RUN_NETWORK multiplies."""
    layer = Layer(DENSE, 2, 1, in_volts=0.1, out_scale=2e4, tiles=[(0, 0, 0, 1)])
    codes = np.array([[700, -300], [100, 900]])
    with opened(wiring) as h:
        program_array(h)
        first, second = Tile(0, rows=[0, 1], cols=[5]), Tile(0, rows=[7, 3], cols=[12], neg_rows=[9, 10])
        h.ok("DEFINE_TILE", first.payload())
        h.ok("LOAD_NETWORK", load_network([layer]), LOAD_NETWORK_REPLY)
        before = h.ok("RUN_NETWORK", run_network([2], 1 / 1000, codes.ravel()), RUN_NETWORK_REPLY)["outputs"]
        h.ok("DEFINE_TILE", second.payload())
        after = h.ok("RUN_NETWORK", run_network([2], 1 / 1000, codes.ravel()), RUN_NETWORK_REPLY)["outputs"]
        want = dense_expected(h, codes, 1 / 1000, 0.1, 2e4, [(second, 0, 0, 1)], 0)
        assert np.array_equal(np.asarray(after, F32).reshape(2, 1), want) and before != after


def test_load_network_values_the_document_does_not_check(wiring) -> None:
    """DOC GAP (LOAD_NETWORK): `n_out` is "0 for LAST_STEP" and `bias` "1 appends a constant-1 input", but
    neither is checked: a LAST_STEP with n_out 7 is accepted (its output is its input), and bias 2 is taken as
    1. A network of a LAST_STEP alone is accepted too: it returns each sequence's last input."""
    with opened(wiring) as h:
        assert h.ok("LOAD_NETWORK", load_network([Layer(LAST_STEP, 2, 7)]), LOAD_NETWORK_REPLY) == \
            {"n_inputs": 2, "n_outputs": 2, "per_step": 0}
        out = h.ok("RUN_NETWORK", run_network([3, 2], 1 / 4, range(1, 11)), RUN_NETWORK_REPLY)
        assert out["outputs"] == [1.25, 1.5, 2.25, 2.5]
        h.ok("DEFINE_TILE", define_tile(0, [0, 1, 2], [0]))
        for bias in (1, 2):
            h.ok("LOAD_NETWORK", load_network([Layer(DENSE, 2, 1, bias, LINEAR, 0.1, 1e4, [(0, 0, 0, 1)])]),
                 LOAD_NETWORK_REPLY)
        assert h.call("LOAD_NETWORK", load_network([Layer(DENSE, 2, 1, 0, LINEAR, 0.1, 1e4, [(0, 0, 0, 1)])])
                      ).status_name == "BAD_PAYLOAD"  # without bias the 3-row tile reaches beyond the 2-input matrix


def test_a_long_batch_is_chunked_both_ways(wiring) -> None:
    """A 12 kB RUN_NETWORK request (3 frames of ≤ max_frame) and its 24 kB reply (6 chunks) reassemble (§5.2)
    and carry what the tile products say."""
    lengths = [1500, 1500]
    codes = np.random.default_rng(8).integers(-3000, 3000, (3000, 2))
    with opened(wiring) as h:
        program_array(h, rows=2, cols=8)
        _load_small_net(h)
        payload = run_network(lengths, 1 / 1000, codes.ravel())
        assert len(payload) > 2 * h.frame_payload
        r = h.call("RUN_NETWORK", payload)
        assert r.status_name == "OK" and r.chunks == math.ceil(len(r.payload) / h.info["max_frame"]) > 1
        out = parse_layout(r.payload, RUN_NETWORK_REPLY)
        want = dense_expected(h, codes, 1 / 1000, 0.1, 1e4, [(Tile(0, [0, 1], [0, 1]), 0, 0, 1)], 0)
        assert np.array_equal(np.asarray(out["outputs"], F32).reshape(3000, 2), want)


def test_the_2_1_messages_leave_dc_levels_alone(wiring) -> None:
    """DOC GAP (SET_LEVELS semantics): "Levels are not changed by READ_CURRENTS, VMM, READ_MAP or a completed
    PULSE_SET/PULSE_RESET" — the list predates 2.1. Both back ends leave the SET_LEVELS levels unchanged through
    every 2.1 message too (VMM_TILE and RUN_NETWORK drive rows for their products, READ_DEVICES reads,
    PULSE_DEVICES pulses), which the document does not say."""
    with opened(wiring) as h:
        _load_small_net(h)
        for name, payload, layout in [
                ("VMM_TILE", vmm_tile(0, 1, [100, 100], [1]), GAINS_CODES_I16),
                ("READ_DEVICES", read_devices_payload(1311, 0, 1, index=pack_index([3])), GAINS_CODES_I16),
                ("PULSE_DEVICES", pulse_devices_payload(SET, 0, 1, index=pack_index([3]), amplitude=[SET_V],
                                                        gate=[4000], width=[WIDTH]), PULSE_REPLY),
                ("PULSE_DEVICES", pulse_devices_payload(RESET, 0, 1, index=pack_index([3]), amplitude=[9000],
                                                        gate=[16384], width=[WIDTH]), PULSE_REPLY),
                ("RUN_NETWORK", run_network([2], 1 / 1000, [1, 2, 3, 4]), RUN_NETWORK_REPLY),
                ("SET_CALIBRATION", set_calibration(), []), ("DEFINE_TILE", define_tile(1, [0], [0]), []),
                ("LOAD_NETWORK", load_network(SMALL_NET), LOAD_NETWORK_REPLY)]:
            _live_levels(h)
            before = {k: np.array(v) for k, v in wiring.emu.levels.items()}
            h.ok(name, payload, layout)
            assert all(np.array_equal(before[k], v) for k, v in wiring.emu.levels.items()), name


def test_retries_of_the_new_messages_are_answered_from_the_reply_cache(wiring) -> None:
    """§8.4 for 2.1: a retried PULSE_DEVICES pulses nothing twice, a retried DEFINE_TILE does not undo a later
    redefinition, a retried RUN_NETWORK gets the first reply's bytes."""
    with opened(wiring) as h:
        payload = pulse_devices_payload(SET, 3, 1, index=pack_index([7]), amplitude=[SET_V], gate=[4000],
                                        width=[WIDTH])
        first = h.request("PULSE_DEVICES", payload, seq=50)
        again = h.request("PULSE_DEVICES", payload, seq=50)
        assert first.payload == again.payload and int(_pulses(wiring.emu).sum()) == 1
        h.request("DEFINE_TILE", define_tile(0, [0], [7]), seq=51)
        h.request("DEFINE_TILE", define_tile(0, [3], [7]), seq=52)  # the device pulsed above
        assert h.request("DEFINE_TILE", define_tile(0, [0], [7]), seq=51).status_name == "OK"  # from the cache
        rep = h.request("VMM_TILE", vmm_tile(0, 1, [1311], [1]), seq=53)
        cur = amps(h, parse_layout(rep.payload, GAINS_CODES_I16)["codes"], 1)[0]
        assert cur > 10 * 2e-6 * 0.2  # tile 0 is still on row 3 (a SET device), not on row 0 (2 µS)
        h.request("LOAD_NETWORK", load_network([Layer(DENSE, 1, 1, in_volts=0.1, out_scale=1e5,
                                                      tiles=[(0, 0, 0, 1)])]), seq=54)
        run = run_network([3], 1 / 1000, [100, 200, 300])
        assert h.request("RUN_NETWORK", run, seq=55).payload == h.request("RUN_NETWORK", run, seq=55).payload
    assert wiring.emu.counters.cache_hits == 3


def test_a_calibrated_reset_row_biases_its_columns_nominally(wiring) -> None:
    """DOC GAP (PULSE_DEVICES RESET): amplitudes are "converted by the board to each channel's code (RESET: its
    row channel)", and PULSE_RESET holds each selected column at top − amplitude_j. Which calibration, if
    any, converts those column biases is not said: the board applies none (a column gain of 2 on the column of
    the lower-amplitude device changes nothing; the device sees its nominal amplitude, as its uncalibrated
    PULSE_RESET twin), so on a board with column DAC errors that device sees the column's error."""
    offs = [4 * COLS + 10, 4 * COLS + 20, 9 * COLS + 10, 9 * COLS + 20]
    with opened(wiring) as h:
        h.ok("PULSE_DEVICES", pulse_devices_payload(SET, 0, ROWS, index=pack_index(offs), amplitude=[SET_V],
                                                    gate=[5000], width=[WIDTH]), PULSE_REPLY)
        cal = _nominal_calibration(h)
        cal["col_gain"][20] = 2.0
        h.ok("SET_CALIBRATION", set_calibration(**cal))
        h.ok("PULSE_DEVICES", pulse_devices_payload(RESET, 4, 1, index=pack_index([10, 20]), amplitude=[12000, 8000],
                                                    gate=[16384], width=[WIDTH]), PULSE_REPLY)
        twin = (struct.pack("<HH", 9, 1) + array("B", list(pack_mask([10, 20], COLS))) + array("h", [12000, 8000])
                + array("h", [16384]) + array("H", [WIDTH]))  # PULSE_RESET: rows 9 .. 9, no calibration
        h.ok("PULSE_RESET", twin, PULSE_REPLY)
        codes = h.ok("READ_DEVICES", read_devices_payload(V_READ, 0, ROWS, index=pack_index(offs), gains=[1]),
                     GAINS_CODES_I16)["codes"]
        assert codes[:2] == codes[2:] and codes[0] != codes[1]
