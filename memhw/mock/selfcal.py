"""Self-calibration opcodes of the board emulator (READ_REFERENCE, READ_DAC) and the
emulator's serial numbers.

Kept apart from :mod:`memhw.mock.firmware` so that file only registers the handlers.
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

import zlib
from typing import TYPE_CHECKING

import numpy as np

import firmware_protocol as fp

from .params import PRESETS, MockParams

if TYPE_CHECKING:  # pragma: no cover
    from .firmware import BoardEmulator

__all__ = ["default_serial", "read_reference", "read_dac", "PERIPHERY_FIELDS"]

_GROUPS = fp.SCHEMA.enums["LineGroup"]

#: MockParams fields that make up the *board* (its periphery), as opposed to the chip.
PERIPHERY_FIELDS = (
    "rows", "cols", "dac_line_lsb", "dac_gate_lsb", "dac_bits", "adc_bits", "adc_lsb", "tia_gains",
    "dac_gain_error", "dac_offset_error", "tia_gain_error", "tia_offset_error", "adc_noise_lsb",
    "reference_resistors", "reference_tolerance", "monitor_bits", "monitor_lsb", "monitor_gain_error",
    "monitor_offset_error", "monitor_noise_lsb",
)


def default_serial(params: MockParams, seed: int) -> str:
    """Serial number of an emulated board when none is given.

    The periphery errors are drawn from the seed, so a board with another seed (or other
    periphery parameters, e.g. another preset) is another physical board and must not
    share a serial, or a calibration file made for one would be applied to the other.
    The default board (paper periphery, seed 0) is ``params.serial`` (MEMHW-EMU-0001);
    a paper-periphery board with seed s is ``MEMHW-EMU-S<s>``; any other periphery adds
    a hash of its parameters: ``MEMHW-EMU-S<s>-<crc32 hex>``.
    """
    paper = PRESETS["paper"]
    if params.serial != paper.serial:  # set explicitly in the parameters
        return params.serial
    key = tuple(getattr(params, f) for f in PERIPHERY_FIELDS)
    if key == tuple(getattr(paper, f) for f in PERIPHERY_FIELDS):
        return params.serial if seed == 0 else f"MEMHW-EMU-S{seed}"
    return f"MEMHW-EMU-S{seed}-{zlib.crc32(repr(key).encode()):08X}"


def _average(v: dict) -> int:
    from .firmware import Refused

    avg = int(v["average"])
    if avg < 1:
        raise Refused("BAD_PAYLOAD", "average must be >= 1")
    return avg


def read_reference(emu: "BoardEmulator", v: dict, req: fp.Message) -> dict:
    """READ_REFERENCE handler."""
    from .firmware import Refused

    p, per = emu.params, emu.periphery
    count = len(p.reference_resistors)
    k = int(v["index"])
    if k >= count:
        raise Refused("LIMIT", f"reference index {k} outside 0..{count - 1}")
    avg = _average(v)
    gains = emu._gains(v["gains"])
    v_bus = per.ref_volts(int(v["v_ref"]))
    currents = np.full((avg, emu.cols), v_bus / per.reference_resistances[k])
    if gains is None:  # range on the first sample, keep that gain for the others
        _, g = emu._measure(currents[:1], None)
        gains = g.astype(np.int64)
    codes, g = emu._measure(currents, gains)
    monitor = int(per.monitor_codes(v_bus, avg))
    emu._tick(avg * (p.sample_time + p.monitor_sample_time))
    return {"count": count, "resistance": float(p.reference_resistors[k]), "tolerance": p.reference_tolerance,
            "monitor_lsb": p.monitor_lsb, "monitor": monitor, "gains": g, "codes": codes.sum(axis=0)}


def read_dac(emu: "BoardEmulator", v: dict, req: fp.Message) -> dict:
    """READ_DAC handler."""
    from .firmware import Refused

    p, per = emu.params, emu.periphery
    group = int(v["group"])
    if group not in _GROUPS.values():
        raise Refused("BAD_PAYLOAD", f"unknown line group {group}")
    n = emu.rows if group == _GROUPS["ROWS"] else emu.cols
    codes = v["codes"].astype(np.int64)
    if codes.size not in (1, n):
        raise Refused("BAD_PAYLOAD", f"codes has {codes.size} entries; expected 1 or {n}")
    avg = _average(v)
    # The largest level the group ever drives: reads, and RESET (rows) or SET (columns) pulses.
    if group == _GROUPS["GATES"]:
        lo, hi, conv = 0, round(p.v_gate_max / p.dac_gate_lsb), per.gate_volts
    elif group == _GROUPS["ROWS"]:
        lo, hi, conv = -emu._limits["read"], max(emu._limits["read"], emu._limits["reset"]), per.row_volts
    else:
        lo, hi, conv = -emu._limits["read"], max(emu._limits["read"], emu._limits["set"]), per.col_volts
    if codes.min() < lo or codes.max() > hi:
        raise Refused("LIMIT", f"code outside {lo}..{hi} for this group")
    volts = conv(np.broadcast_to(codes, (n,)))
    emu._tick(n * avg * p.monitor_sample_time)
    return {"monitor_lsb": p.monitor_lsb, "codes": per.monitor_codes(volts, avg)}
