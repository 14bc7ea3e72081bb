"""The HAL of the C firmware core, implemented by the mock board's analog hardware.

Every ``memhw_hal_*`` function of ``firmware/hal/memhw_hal.h`` is an ``extern "Python+C"``
callback of the cffi module; each receives the handle of a :class:`HalBridge`, which does
what a board's hardware would do, with the emulator's models: DC levels and pulses go to
:class:`memhw.mock.chip.Chip` through :class:`memhw.mock.periphery.Periphery` (their
transfer functions, errors and noise), measurements draw the chip's and the ADC's noise in
the same batches and order as the Python handlers of :mod:`memhw.mock` (so the same seed
gives the same codes), and the virtual clock advances by the same hardware times.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ._core import ffi

if TYPE_CHECKING:  # pragma: no cover
    from ..mock.hardware import MockHardware
    from .board import CBoard

__all__ = ["HalBridge"]

_SET = 0


class HalBridge:
    """What the HAL callbacks of one C core act on: the mock hardware and the board's links.

    Parameters
    ----------
    board : CBoard
        The peer object (connections, fault injection).
    hardware : MockHardware
        Chip, periphery, line levels mirror, counters and virtual clock.
    """

    def __init__(self, board: "CBoard", hardware: "MockHardware"):
        self.board = board
        self.hw = hardware
        self.rows, self.cols = hardware.rows, hardware.cols
        self._currents: np.ndarray | None = None   # (exposures, cols) analog currents of the batch
        self._vectors: np.ndarray | None = None    # VMM input codes, filled vector by vector
        self._driven: np.ndarray | None = None     # a tile's driven rows per vector (VMM_TILE, RUN_NETWORK)
        self._read = np.zeros(self.cols, bool)     # a tile's columns read
        self._bus = 0.0                            # reference bus volts of a READ_REFERENCE batch
        self._pending = 0.0                        # hardware seconds of the batch (ticked at read_end)
        self.handle = ffi.new_handle(self)

    # ------------------------------------------------------------ exposures
    def gates_on(self) -> np.ndarray:
        return self.hw.periphery.gate_volts(np.full(self.cols, self.hw.gate_on_code))

    def currents(self) -> np.ndarray:
        if self._currents is None and self._vectors is not None and self._driven is not None:  # a tile's vectors
            currents = self.hw.chip.currents(self.hw.row_volts(self._vectors, self._driven), None, self.gates_on())
            currents[:, ~self._read] = 0.0  # the reference digitises the columns read only
            self._currents, self._vectors, self._driven = currents, None, None
        if self._currents is None and self._vectors is not None:  # VMM: every vector given
            per = self.hw.periphery
            self._currents = self.hw.chip.currents(per.row_volts(self._vectors), None, self.gates_on())
            self._vectors = None
        assert self._currents is not None, "conversion without an exposure"
        return self._currents

    def expose(self, currents: np.ndarray | None, seconds: float) -> None:
        self._currents = currents
        self._pending += seconds


def _bridge(handle: Any) -> HalBridge:
    return ffi.from_handle(handle)


def _array(ptr: Any, n: int, dtype: str) -> np.ndarray:
    return np.frombuffer(ffi.buffer(ptr, n * np.dtype(dtype).itemsize), dtype=dtype).copy()


@ffi.def_extern()
def memhw_hal_lines(hal, group, codes, driven):
    b = _bridge(hal)
    n = b.rows if group == 0 else b.cols
    b.hw._levels[group][:] = _array(codes, n, "<i2")
    b.hw._driven[group][:] = _array(driven, n, "u1").astype(bool)


@ffi.def_extern()
def memhw_hal_ground(hal):
    _bridge(hal).hw.ground()


@ffi.def_extern()
def memhw_hal_expose_levels(hal, samples):
    b = _bridge(hal)
    rows_v, cols_v, gates_v = b.hw.line_volts()
    b.expose(b.hw.chip.currents(np.broadcast_to(rows_v, (samples, b.rows)), cols_v, gates_v),
             samples * b.hw.params.board.sample_time)


@ffi.def_extern()
def memhw_hal_expose_vectors(hal, n):
    b = _bridge(hal)
    b.expose(None, n * b.hw.params.board.sample_time)
    b._vectors = np.zeros((n, b.rows), dtype=np.int64)


@ffi.def_extern()
def memhw_hal_expose_vector(hal, index, codes):
    b = _bridge(hal)
    b._vectors[index] = _array(codes, b.rows, "<i2")


@ffi.def_extern()
def memhw_hal_expose_tile(hal, n, read):
    b = _bridge(hal)
    b.expose(None, n * b.hw.params.board.sample_time)
    b._vectors = np.zeros((n, b.rows), dtype=np.int64)
    b._driven = np.zeros((n, b.rows), dtype=bool)
    b._read = _array(read, b.cols, "u1").astype(bool)


@ffi.def_extern()
def memhw_hal_expose_tile_vector(hal, index, codes, driven):
    b = _bridge(hal)
    b._vectors[index] = _array(codes, b.rows, "<i2")
    b._driven[index] = _array(driven, b.rows, "u1").astype(bool)


@ffi.def_extern()
def memhw_hal_computed(hal, values):
    b = _bridge(hal)
    b.hw.tick(values * b.hw.params.board.mcu_value_time)


@ffi.def_extern()
def memhw_hal_expose_rows(hal, start, count, rows, v_code, repeats):
    b = _bridge(hal)
    per = b.hw.periphery
    chosen = start + (np.arange(count) if rows == ffi.NULL else
                      np.flatnonzero(np.unpackbits(_array(rows, (count + 7) // 8, "u1"), count=count,
                                                   bitorder="little")))
    count = chosen.size
    driven = np.zeros((count, b.rows), dtype=bool)
    driven[np.arange(count), chosen] = True
    volts = np.where(driven, per.row_volts(np.where(driven, v_code, 0)), 0.0)
    if repeats > 1:
        volts = np.tile(volts, (repeats, 1))
    b.expose(b.hw.chip.currents(volts, None, b.gates_on()), count * repeats * b.hw.params.board.sample_time)


@ffi.def_extern()
def memhw_hal_expose_reference(hal, index, v_ref, samples):
    b = _bridge(hal)
    per, board = b.hw.periphery, b.hw.params.board
    b._bus = per.ref_volts(int(v_ref))
    b.expose(np.full((samples, b.cols), b._bus / per.reference_resistances[index]),
             samples * (board.sample_time + board.monitor_sample_time))


@ffi.def_extern()
def memhw_hal_range(hal, exposure, gains):
    b = _bridge(hal)
    g = b.hw.transfer.auto_gain(b.currents()[exposure]).astype(np.uint8)
    ffi.memmove(gains, g.tobytes(), b.cols)


@ffi.def_extern()
def memhw_hal_convert(hal, first, count, gains, codes):
    b = _bridge(hal)
    g = _array(gains, count * b.cols, "u1").reshape(count, b.cols).astype(np.int64)
    out = b.hw.periphery.adc_codes(b.currents()[first:first + count], g).astype("<i4")
    ffi.memmove(codes, out.tobytes(), out.nbytes)


@ffi.def_extern()
def memhw_hal_read_end(hal):
    b = _bridge(hal)
    seconds, b._pending = b._pending, 0.0
    b._currents = b._vectors = b._driven = None
    b.hw.tick(seconds)


@ffi.def_extern()
def memhw_hal_monitor_reference(hal, average):
    b = _bridge(hal)
    return int(b.hw.periphery.monitor_codes(b._bus, average))


@ffi.def_extern()
def memhw_hal_monitor_dac(hal, group, codes, average, out):
    b = _bridge(hal)
    per = b.hw.periphery
    n = b.rows if group == 0 else b.cols
    conv = (per.row_volts, per.col_volts, per.gate_volts)[group]
    volts = conv(_array(codes, n, "<i2").astype(np.int64))
    b.hw.tick(n * average * b.hw.params.board.monitor_sample_time)
    result = per.monitor_codes(volts, average).astype("<i4")
    ffi.memmove(out, result.tobytes(), result.nbytes)


@ffi.def_extern()
def memhw_hal_pulse_row(hal, kind, row, selected, row_code, col_codes, gates, widths):
    b = _bridge(hal)
    hw = b.hw
    t, per, chip, c = hw.transfer, hw.periphery, hw.chip, hw.counters
    sel = _array(selected, b.cols, "u1").astype(bool)
    cols = _array(col_codes, b.cols, "<i2").astype(np.int64)
    w = np.where(sel, t.widths(_array(widths, b.cols, "<u2").astype(np.int64)), 0.0)
    gates_v = np.where(sel, per.gate_volts(_array(gates, b.cols, "<i2").astype(np.int64)), 0.0)
    if kind == _SET:  # row grounded, each selected column driven at its amplitude
        chip.set_row(row, np.where(sel, per.col_volts(cols), 0.0), gates_v, w)
        c.set_pulses += int(sel.sum())
    else:  # row at the row's largest amplitude, each column biased to its device's amplitude
        row_codes = np.zeros(b.rows, dtype=np.int64)
        row_codes[row] = row_code
        chip.reset_row(row, np.where(sel, per.row_volts(row_codes)[row] - per.col_volts(cols), 0.0), gates_v, w)
        c.reset_pulses += int(sel.sum())
    c.pulses[row] += sel
    hw.tick(float(w.max()) + hw.params.board.row_switch_time)


@ffi.def_extern()
def memhw_hal_millis(hal):
    return int(time.monotonic() * 1000.0) & 0xFFFFFFFF


@ffi.def_extern()
def memhw_hal_wait(hal, seconds):
    b = _bridge(hal)
    seconds = float(seconds)
    # as the emulator: one step, or in steps when it runs in real time (so an abort is seen)
    step = min(seconds, max(seconds / 100.0, 0.01)) if b.hw.pace else seconds
    b.hw.tick(step)
    return step


@ffi.def_extern()
def memhw_hal_random16(hal):
    return secrets.randbits(16)


@ffi.def_extern()
def memhw_hal_write(hal, conn, data, length):
    _bridge(hal).board._write(conn, bytes(ffi.buffer(data, length)))


@ffi.def_extern()
def memhw_hal_poll(hal, conn, buf, cap):
    data = _bridge(hal).board._poll(conn, cap)
    if data:
        ffi.memmove(buf, data, len(data))
    return len(data)


@ffi.def_extern()
def memhw_hal_fault(hal, steps):
    return 1 if _bridge(hal).board._fault_point(None if steps < 0 else int(steps)) else 0

