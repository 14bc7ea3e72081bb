"""Emulated firmware: the measurement chain (READ_CURRENTS, VMM, READ_MAP).

Rows driven from their DACs, gates fully on, columns at virtual ground; every column's
TIA and ADC converts in parallel. Auto-ranging follows the protocol's rule
(:meth:`memhw.conversions.Transfer.auto_gain`): the best gain from the analog value,
then one gain lower while the code saturates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import firmware_protocol as fp

from ..peer import HandlerTable, Operation, Refused, checks

if TYPE_CHECKING:  # pragma: no cover
    from .hardware import MockHardware

__all__ = ["HANDLERS", "requested_gains", "digitise", "read_rows", "map_codes", "conductance_map"]

HANDLERS = HandlerTable()
#: row vectors per vectorised chip read when averaging (bounds the memory of one call)
SAMPLES_PER_CALL = 4096


def requested_gains(hw: "MockHardware", gains: np.ndarray) -> np.ndarray | None:
    """A request's ``gains`` field -> (cols,) gain indices, or None for auto-ranging."""
    return checks.requested_gains(gains, hw.cols, len(hw.transfer.tia_gains))


def digitise(hw: "MockHardware", currents: np.ndarray, gains: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Convert (n, cols) currents at fixed gains, or auto-range every sample: ADC codes and
    the gain indices used (``(cols,)`` when fixed, one per sample when auto-ranged)."""
    per = hw.periphery
    if gains is not None:
        return per.adc_codes(currents, np.broadcast_to(gains, currents.shape)), gains.astype(np.uint8)
    g = hw.transfer.auto_gain(currents)
    codes = per.adc_codes(currents, g)
    sat = per.saturated(codes)
    while sat.any() and (g[sat] > 0).any():
        g = np.where(sat & (g > 0), g - 1, g)
        codes = np.where(sat, per.adc_codes(currents, g), codes)
        sat = per.saturated(codes) & (g > 0)
    return codes, g.astype(np.uint8).reshape(-1)


def read_rows(hw: "MockHardware", row_volts: np.ndarray, gains: np.ndarray | None,
              average: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Apply each row of (n, rows) volts, columns at virtual ground and gates fully on:
    rounded mean codes (n, cols) and the gains used (chosen on the first sample)."""
    gates_v = hw.periphery.gate_volts(np.full(hw.cols, hw.gate_on_code))
    n = len(row_volts)
    codes, g = digitise(hw, hw.chip.currents(row_volts, None, gates_v), gains)
    if average > 1 and n:  # further samples (each a fresh read) at the gains chosen on the first one
        g_full = np.broadcast_to(g.reshape(-1, hw.cols), (n, hw.cols))
        total = codes.astype(np.int64)
        per_call = max(1, SAMPLES_PER_CALL // n)  # vectorised, in bounded chunks
        for done in range(1, average, per_call):
            k = min(per_call, average - done)
            currents = hw.chip.currents(np.tile(row_volts, (k, 1)), None, gates_v)
            total += hw.periphery.adc_codes(currents, np.tile(g_full, (k, 1))).reshape(k, n, hw.cols).sum(0)
        codes = np.rint(total / average).astype(np.int64)
    hw.tick(n * average * hw.params.board.sample_time)
    return codes, g


def map_codes(hw: "MockHardware", rows: np.ndarray, v_code: int, gains: np.ndarray | None,
              average: int) -> tuple[np.ndarray, np.ndarray]:
    """Drive ``rows`` one at a time at ``v_code`` (the others switched to ground) and read
    every column: (len(rows), cols) codes and the gains used."""
    driven = np.zeros((len(rows), hw.rows), dtype=bool)
    driven[np.arange(len(rows)), rows] = True
    return read_rows(hw, hw.row_volts(np.full(driven.shape, v_code), driven), gains, average)


def conductance_map(hw: "MockHardware", rows: np.ndarray, v_code: int, average: int,
                    gain: int | None = None) -> np.ndarray:
    """The firmware's own conductance read of ``rows``, auto-ranged or at one ``gain``,
    through its transfer functions (calibrated if the host sent SET_CALIBRATION, else
    nominal): (len(rows), cols) S."""
    fixed = None if gain is None else np.full(hw.cols, gain, np.int64)
    codes, g = map_codes(hw, rows, v_code, fixed, average)
    cal = hw.calibration
    v_rows = cal.dac_volts("ROWS", np.full(len(rows), v_code), channels=rows)
    gains = np.broadcast_to(g, (hw.cols,)) if gain is not None else g.reshape(len(rows), hw.cols)
    return cal.currents(codes, gains) / v_rows[:, None]


@HANDLERS.register("READ_CURRENTS")
def read_currents(hw: "MockHardware", v: dict, op: Operation) -> dict:
    avg = checks.average(v)
    gains = requested_gains(hw, v["gains"])
    rows_v, cols_v, gates_v = hw.line_volts()
    currents = hw.chip.currents(np.broadcast_to(rows_v, (avg, hw.rows)), cols_v, gates_v)
    if gains is None:  # range on the first sample, keep that gain for the others
        gains = digitise(hw, currents[:1], None)[1].astype(np.int64)
    codes, g = digitise(hw, currents, gains)
    hw.tick(avg * hw.params.board.sample_time)
    return {"gains": g, "codes": codes.sum(axis=0)}


@HANDLERS.register("VMM")
def vmm(hw: "MockHardware", v: dict, op: Operation) -> dict:
    n = int(v["n"])
    inputs = v["inputs"]
    if inputs.size != n * hw.rows:
        raise Refused("BAD_PAYLOAD", f"inputs has {inputs.size} codes, expected n*rows = {n * hw.rows}")
    gains = requested_gains(hw, v["gains"])
    if n and np.abs(inputs.astype(np.int64)).max() > hw.limits.read_max:
        raise Refused("LIMIT", f"VMM input beyond the read limit of {hw.limits.read_max} codes")
    codes, g = read_rows(hw, hw.periphery.row_volts(inputs.reshape(n, hw.rows)), gains)
    return {"gains": g, "codes": codes.reshape(-1)}


def selection(hw: "MockHardware", v: dict, count: int) -> np.ndarray:
    """The (count, cols) boolean selection of a request with ``mask`` / ``index`` fields."""
    n = count * hw.cols
    mask, index = v["mask"], v["index"]
    if mask.size and index.size:
        raise Refused("BAD_PAYLOAD", "give the selection as mask or as index, not both")
    if index.size:
        try:
            idx = fp.unpack_offsets(index, limit=n)
        except fp.ProtocolError as exc:
            raise Refused("BAD_PAYLOAD", f"index: {exc}") from None
        sel = np.zeros(n, bool)
        sel[idx] = True
    else:
        sel = checks.unpack_mask(mask, n)
    return sel.reshape(count, hw.cols)


@HANDLERS.register("READ_DEVICES")
def read_devices(hw: "MockHardware", v: dict, op: Operation) -> dict:
    start, count, vr = int(v["row_start"]), int(v["row_count"]), int(v["v_read"])
    hw.check_rows(start, count)
    avg = checks.average(v)
    gains = requested_gains(hw, v["gains"])
    if gains is not None and v["gains"].size != 1:
        raise Refused("BAD_PAYLOAD", "gains must be empty, [255] (auto) or one fixed gain")
    if not 0 < vr <= hw.limits.read_max:
        raise Refused("LIMIT", f"v_read = {vr} codes outside 1..{hw.limits.read_max} (the read limit)")
    sel = selection(hw, v, count)
    rows = np.flatnonzero(sel.any(axis=1))  # rows without a selected device take no time
    codes, g = map_codes(hw, start + rows, vr, gains, avg)
    picked = sel[rows]
    return {"gains": g[:1] if gains is not None else g.reshape(rows.size, hw.cols)[picked],
            "codes": codes[picked]}


@HANDLERS.register("READ_MAP")
def read_map(hw: "MockHardware", v: dict, op: Operation) -> dict:
    start, count, vr = int(v["row_start"]), int(v["row_count"]), int(v["v_read"])
    hw.check_rows(start, count)
    avg = checks.average(v)
    gains = requested_gains(hw, v["gains"])
    if not 0 < vr <= hw.limits.read_max:
        raise Refused("LIMIT", f"v_read = {vr} codes outside 1..{hw.limits.read_max} (the read limit)")
    codes, g = map_codes(hw, np.arange(start, start + count), vr, gains, avg)
    return {"gains": g, "codes": codes.reshape(-1)}
