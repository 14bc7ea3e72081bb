"""Self-calibration opcodes of the board emulator (READ_REFERENCE, READ_DAC).

The hardware they emulate (see PROTOCOL.md, READ_REFERENCE / READ_DAC):

* **Reference resistors.** Every column's TIA input can be switched from the array to one
  of ``len(reference_resistors)`` precision resistors (one bank per column, matched parts:
  the emulator gives resistor k the same true value on every column). Their far end is a
  reference bus driven by a dedicated DAC channel (gain/offset errors like any DAC).
* **Monitor ADC.** An analog multiplexer routes any DAC output (rows, columns, gates, the
  reference bus) to one precision monitor ADC (``monitor_*`` parameters in
  :mod:`memhw.mock.params`; small but non-zero gain/offset error and noise). The measured
  line is switched off the array meanwhile, so a read-back never disturbs the chip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import firmware_protocol as fp

from ..peer import HandlerTable, Operation, Refused
from .lines import check_group
from .measure import digitise, requested_gains

if TYPE_CHECKING:  # pragma: no cover
    from .hardware import MockHardware

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()
_GROUPS = fp.SCHEMA.enums["LineGroup"]


def _average(v: dict) -> int:
    avg = int(v["average"])
    if avg < 1:
        raise Refused("BAD_PAYLOAD", "average must be >= 1")
    return avg


@HANDLERS.register("READ_REFERENCE")
def read_reference(hw: "MockHardware", v: dict, op: Operation) -> dict:
    p, per = hw.params, hw.periphery
    count = len(p.periphery.reference_resistors)
    k = int(v["index"])
    if k >= count:
        raise Refused("LIMIT", f"reference index {k} outside 0..{count - 1}")
    avg = _average(v)
    gains = requested_gains(hw, v["gains"])
    v_bus = per.ref_volts(int(v["v_ref"]))
    currents = np.full((avg, hw.cols), v_bus / per.reference_resistances[k])
    if gains is None:  # range on the first sample, keep that gain for the others
        gains = digitise(hw, currents[:1], None)[1].astype(np.int64)
    codes, g = digitise(hw, currents, gains)
    monitor = int(per.monitor_codes(v_bus, avg))
    hw.tick(avg * (p.board.sample_time + p.board.monitor_sample_time))
    return {"count": count, "resistance": float(p.periphery.reference_resistors[k]),
            "tolerance": p.periphery.reference_tolerance, "monitor_lsb": p.periphery.monitor_lsb,
            "monitor": monitor, "gains": g, "codes": codes.sum(axis=0)}


@HANDLERS.register("READ_DAC")
def read_dac(hw: "MockHardware", v: dict, op: Operation) -> dict:
    p, per, top = hw.params, hw.periphery, hw.abs_limits
    group = int(v["group"])
    n = check_group(hw, group)
    codes = v["codes"].astype(np.int64)
    if codes.size not in (1, n):
        raise Refused("BAD_PAYLOAD", f"codes has {codes.size} entries; expected 1 or {n}")
    avg = _average(v)
    # The largest level the group ever drives: reads, and RESET (rows) or SET (columns) pulses.
    if group == _GROUPS["GATES"]:
        lo, hi, conv = 0, top.gate_max, per.gate_volts
    elif group == _GROUPS["ROWS"]:
        lo, hi, conv = -top.read_max, max(top.read_max, top.reset_max), per.row_volts
    else:
        lo, hi, conv = -top.read_max, max(top.read_max, top.set_max), per.col_volts
    if codes.min() < lo or codes.max() > hi:
        raise Refused("LIMIT", f"code outside {lo}..{hi} for this group")
    volts = conv(np.broadcast_to(codes, (n,)))
    hw.tick(n * avg * p.board.monitor_sample_time)
    return {"monitor_lsb": p.periphery.monitor_lsb, "codes": per.monitor_codes(volts, avg)}
