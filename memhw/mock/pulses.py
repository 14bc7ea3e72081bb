"""Emulated firmware: batched SET and RESET pulses (PULSE_SET, PULSE_RESET).

Row by row: SET grounds the row and pulses each selected column at its amplitude through
its gate (the compliance); RESET pulses the row at the row's largest amplitude with the
gates on, biasing each column so every device sees its own amplitude. Between rows the
board looks for an ABORT, reports progress and passes a fault point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

import firmware_protocol as fp

from ..peer import Aborted, HandlerTable, Operation, Refused
from ..peer.checks import pulse_codes, unpack_mask

if TYPE_CHECKING:  # pragma: no cover
    from .hardware import MockHardware

__all__ = ["HANDLERS", "apply_rows"]

HANDLERS = HandlerTable()


def _batch(hw: "MockHardware", v: dict, op: Operation, kind: str, mask: np.ndarray | None = None,
           progress_every: int = 0) -> dict:
    """PULSE_SET/PULSE_RESET (progress after every row) and PULSE_DEVICES (after every
    ``progress_every`` rows holding selected devices, and after the last)."""
    start, count = int(v["row_start"]), int(v["row_count"])
    hw.check_rows(start, count)
    if mask is None:
        mask = unpack_mask(v["mask"], count * hw.cols).reshape(count, hw.cols)
    amp, gate, width = pulse_codes(v, mask, kind, hw.limits)
    if progress_every:
        last = int(np.flatnonzero(mask.any(axis=1))[-1]) + 1 if mask.any() else count
        busy = np.cumsum(mask.any(axis=1))

        def report(done: int) -> None:
            if mask[done - 1].any() and (busy[done - 1] % progress_every == 0 or done == last):
                op.progress(rows_done=done, row_count=count)
    else:
        def report(done: int) -> None:
            op.progress(rows_done=done, row_count=count)
    rows_done, pulses = apply_rows(hw, kind, start, mask, amp, gate, width, op, report, skip_empty=progress_every > 0)
    return {"rows_done": rows_done, "pulses": pulses}


def apply_rows(hw: "MockHardware", kind: str, start: int, mask: np.ndarray, amp: np.ndarray, gate: np.ndarray,
               width: np.ndarray, op: Operation, progress: Callable[[int], None] | None = None,
               skip_empty: bool = False) -> tuple[int, int]:
    """Pulse the masked devices of rows start.. row by row (codes per device); returns
    (rows done, pulses). Raises :class:`~memhw.peer.Aborted` between rows when asked.
    ``skip_empty``: rows without selected devices are passed over (no abort check, no
    fault point)."""
    t, per, chip, c = hw.transfer, hw.periphery, hw.chip, hw.counters
    pulses = 0
    for i in range(mask.shape[0]):
        if skip_empty and not mask[i].any():
            continue
        if op.should_stop():
            raise Aborted({"rows_done": i, "pulses": pulses})
        sel = mask[i]
        if sel.any():
            r = start + i
            widths = np.where(sel, t.widths(width[i]), 0.0)
            gates_v = np.where(sel, per.gate_volts(gate[i]), 0.0)
            if kind == "set":
                # row grounded, each selected column driven at its amplitude
                dev_v = np.where(sel, per.col_volts(amp[i]), 0.0)
                chip.set_row(r, dev_v, gates_v, widths)
                c.set_pulses += int(sel.sum())
            else:
                # row driven at the row's largest amplitude; each column biased so its
                # device sees its own amplitude
                top = int(amp[i][sel].max())
                row_codes = np.zeros(hw.rows, dtype=np.int64)
                row_codes[r] = top
                dev_v = np.where(sel, per.row_volts(row_codes)[r] - per.col_volts(top - amp[i]), 0.0)
                chip.reset_row(r, dev_v, gates_v, widths)
                c.reset_pulses += int(sel.sum())
            c.pulses[r] += sel
            pulses += int(sel.sum())
            hw.tick(float(widths.max()) + hw.params.board.row_switch_time)
        if progress is not None:
            progress(i + 1)
        op.step_done(i + 1)
    return mask.shape[0], pulses


@HANDLERS.register("PULSE_DEVICES")
def pulse_devices(hw: "MockHardware", v: dict, op: Operation) -> dict:
    from .measure import selection

    kinds = {code: name.lower() for name, code in fp.SCHEMA.enums["PulseKind"].items()}
    if int(v["kind"]) not in kinds:
        raise Refused("BAD_PAYLOAD", f"unknown pulse kind {int(v['kind'])}")
    kind = kinds[int(v["kind"])]
    start, count = int(v["row_start"]), int(v["row_count"])
    hw.check_rows(start, count)
    mask = selection(hw, v, count)
    # nominal levels -> each channel's code through the board's calibration: SET drives columns, RESET rows
    rows, cols = np.nonzero(mask)
    t, cal, lim = hw.transfer, hw.calibration, hw.limits
    values = dict(v)
    for name, group, channels, lsb, top in (
            ("amplitude", "COLS" if kind == "set" else "ROWS", cols if kind == "set" else start + rows,
             t.dac_line_lsb, lim.set_max if kind == "set" else lim.reset_max),
            ("gate", "GATES", cols, t.dac_gate_lsb, lim.gate_max)):
        nominal = v[name].astype(np.int64)
        if nominal.size not in (1, rows.size):
            raise Refused("BAD_PAYLOAD", f"{name} has {nominal.size} entries; expected 1 or {rows.size}")
        if rows.size and (nominal.min() < (1 if name == "amplitude" else 0) or nominal.max() > top):
            raise Refused("LIMIT", f"{kind.upper()} {name} outside {int(name == 'amplitude')}..{top} codes")
        volts = np.broadcast_to(nominal * lsb, rows.shape)
        values[name] = cal.dac_codes(group, volts, channels, v_max=top * lsb, v_min=lsb if name == "amplitude"
                                     else 0.0) if rows.size else nominal
    return _batch(hw, values, op, kind, mask, max(1, int(v["progress_rows"])))


@HANDLERS.register("PULSE_SET")
def pulse_set(hw: "MockHardware", v: dict, op: Operation) -> dict:
    return _batch(hw, v, op, "set")


@HANDLERS.register("PULSE_RESET")
def pulse_reset(hw: "MockHardware", v: dict, op: Operation) -> dict:
    return _batch(hw, v, op, "reset")
