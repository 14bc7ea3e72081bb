"""The bridge's message handlers: memhw's protocol requests as the original board's commands.

Registered here, and so announced in HELLO's ``opcodes``, is only what the old firmware
can honestly serve:

================  ==========================================================================
READ_MAP          command 10 per 64 x 64 half (each half read whole); averages are repeated
                  reads; auto-ranging reads again at other gains (``auto_gains``)
PULSE_SET/RESET   commands 12/17 and 11/18 per half and per distinct width, per-device
                  amplitude and gate matrices (0 V where not pulsed); progress per half
VMM               command 20, one gain per command, gates fully on, every line enabled
SET_LEVELS        held by the bridge (nothing is driven between commands) ...
READ_CURRENTS     ... and applied by one command 20 whose input vector is the held row levels
                  (minus a common column level) and whose gates are the held gate levels
GROUND_ALL        forgets the held levels (mode 0 only: the firmware cannot float lines)
WAIT              a timer on the host (every line is grounded: the firmware drives none)
SET_LIMITS        limits checked by the bridge, i.e. on the host only
================  ==========================================================================

Not registered: PROGRAM (no on-board loop), READ_REFERENCE and READ_DAC (no reference
resistors, no monitor ADC). Every check happens before the first command is sent.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Callable

import numpy as np

from firmware_protocol import SCHEMA

from ..peer import Aborted, HandlerTable, Operation, Refused, checks
from . import codec
from .link import Unconfirmed

if TYPE_CHECKING:  # pragma: no cover
    from .bridge import DpeBridge

__all__ = ["HANDLERS"]

GROUPS = SCHEMA.enums["LineGroup"]

HANDLERS = HandlerTable()
Measure = Callable[[int, int], np.ndarray]   # (gain, samples) -> (samples, ...) raw codes


# --------------------------------------------------------------------------- checks
def _gains(b: "DpeBridge", gains: np.ndarray) -> np.ndarray | None:
    """The ``gains`` field -> (cols,) gain indices, or None for auto-ranging."""
    return checks.requested_gains(gains, b.cols, len(b.dialect.tia_gains))


def _rows(b: "DpeBridge", start: int, count: int) -> None:
    if start + count > b.rows:
        raise Refused("LIMIT", f"rows {start}..{start + count - 1} outside 0..{b.rows - 1}")


# --------------------------------------------------------------------------- ranging
def _saturated(b: "DpeBridge", signed: np.ndarray) -> np.ndarray:
    off = b.dialect.adc_offset
    return (signed <= -off) | (signed >= off - 1)


def _fixed(b: "DpeBridge", measure: Measure, gains: np.ndarray, average: int) -> np.ndarray:
    """Sum of ``average`` signed samples with each column at its own fixed gain (one
    command per distinct gain: the old commands take one gain for every column)."""
    total = None
    for g in np.unique(gains):
        s = (measure(int(g), average) - b.dialect.adc_offset).sum(axis=0)
        total = s if total is None else np.where(gains == g, s, total)
    return total


def _ranged(b: "DpeBridge", measure: Measure, ladder: tuple[int, ...], average: int) -> tuple[np.ndarray, np.ndarray]:
    """Auto-ranging from whole measurements at one gain each: read at ``ladder[0]``, at
    lower gains where that saturates, at each later gain where the reading so far says it
    fits within 90 % of full scale; then the other ``average - 1`` samples at the gain
    chosen per element. Returns (sum of signed samples, gain per element)."""
    off, tia = b.dialect.adc_offset, np.asarray(b.dialect.tia_gains)
    s = measure(ladder[0], 1)[0] - off
    gains = np.full(s.shape, ladder[0], np.int64)
    sat = _saturated(b, s)
    g = ladder[0]
    while sat.any() and g > 0:
        g -= 1
        s2 = measure(g, 1)[0] - off
        s, gains = np.where(sat, s2, s), np.where(sat, g, gains)
        sat &= _saturated(b, s2)
    for g in ladder[1:]:
        fits = (gains < g) & ~sat & (np.abs(s) * tia[g] / tia[gains] <= 0.9 * off)
        if fits.any():
            s2 = measure(g, 1)[0] - off
            ok = fits & ~_saturated(b, s2)
            s, gains = np.where(ok, s2, s), np.where(ok, g, gains)
    total = s.astype(np.int64)
    if average > 1:
        for u in np.unique(gains):
            extra = (measure(int(u), average - 1) - off).sum(axis=0)
            total = total + np.where(gains == u, extra, 0)
    return total, gains


# --------------------------------------------------------------------------- reads
@HANDLERS.register("READ_MAP")
def read_map(b: "DpeBridge", v: dict, op: Operation) -> dict:
    start, count, vr = int(v["row_start"]), int(v["row_count"]), int(v["v_read"])
    _rows(b, start, count)
    avg = checks.average(v)
    fixed = _gains(b, v["gains"])
    if not 0 < vr <= b.limits.read_max:
        raise Refused("LIMIT", f"v_read = {vr} codes outside 1..{b.limits.read_max} (the read limit)")
    d = b.dialect
    volts = float(b.transfer.line_volts(vr))
    sent = float(codec.quantise(volts, d.volt_step, float(b.transfer.line_volts(b.limits.read_max))))
    if sent <= 0:
        raise Refused("LIMIT", f"v_read = {volts:g} V is below the {d.volt_step * 1e3:g} mV resolution of this board")
    applied = float(b.transfer.line_volts(b.transfer.line_codes(sent)))  # the text through the nominal DAC
    h = d.half_rows
    codes = np.zeros((count, b.cols))
    gains = np.zeros((count, b.cols), np.int64)
    for half in range(start // h, (start + count - 1) // h + 1) if count else ():
        def measure(g: int, k: int, half: int = half) -> np.ndarray:
            return np.stack([b.read_half(half, sent, g) for _ in range(k)])

        if fixed is None:
            total, g_half = _ranged(b, measure, b.options.auto_gains, avg)
        else:
            total, g_half = _fixed(b, measure, fixed, avg), np.broadcast_to(fixed, (h, b.cols))
        lo, hi = max(start, half * h), min(start + count, (half + 1) * h)
        # codes as if read at the requested voltage, so G = I / v_read holds for the host
        codes[lo - start : hi - start] = (total / avg * (volts / applied))[lo - half * h : hi - half * h]
        gains[lo - start : hi - start] = g_half[lo - half * h : hi - half * h]
    out = np.clip(np.rint(codes), -32768, 32767).astype(np.int16).reshape(-1)
    return {"gains": (fixed if fixed is not None else gains.reshape(-1)).astype(np.uint8), "codes": out}


@HANDLERS.register("VMM")
def vmm(b: "DpeBridge", v: dict, op: Operation) -> dict:
    n, inputs = int(v["n"]), v["inputs"]
    if inputs.size != n * b.rows:
        raise Refused("BAD_PAYLOAD", f"inputs has {inputs.size} codes, expected n*rows = {n * b.rows}")
    fixed = _gains(b, v["gains"])
    if n and np.abs(inputs).max() > b.limits.read_max:
        raise Refused("LIMIT", f"VMM input beyond the read limit of {b.limits.read_max} codes")
    if n == 0:
        return {"gains": np.zeros(0 if fixed is None else b.cols, np.uint8), "codes": np.zeros(0, np.int16)}
    d = b.dialect
    limit = float(b.transfer.line_volts(b.limits.read_max))
    volts = codec.quantise(b.transfer.line_volts(inputs.reshape(n, b.rows)), d.vmm_step, limit)
    gates = codec.quantise(np.full(b.cols, d.read_gate), d.volt_step)
    every_row, every_col = np.ones(b.rows, bool), np.ones(b.cols, bool)

    def measure(g: int, k: int) -> np.ndarray:
        return b.vmm_block(volts, g, gates, every_row, every_col)[None]

    if fixed is None:
        codes, gains = _ranged(b, measure, b.options.vmm_auto_gains, 1)
        gains_out = gains.reshape(-1)
    else:
        codes, gains_out = _fixed(b, measure, fixed, 1), fixed
    return {"gains": gains_out.astype(np.uint8), "codes": np.clip(codes, -32768, 32767).astype(np.int16).reshape(-1)}


# --------------------------------------------------------------------------- pulses
def _pulses(b: "DpeBridge", v: dict, op: Operation, kind: str) -> dict:
    start, count = int(v["row_start"]), int(v["row_count"])
    _rows(b, start, count)
    mask = checks.unpack_mask(v["mask"], count * b.cols).reshape(count, b.cols)
    amp, gate, width = checks.pulse_codes(v, mask, kind, b.limits)
    lim, t, d = b.limits, b.transfer, b.dialect
    amp_limit = lim.set_max if kind == "set" else lim.reset_max
    amp_v = codec.quantise(t.line_volts(amp), d.volt_step, float(t.line_volts(amp_limit)))
    gate_v = codec.quantise(t.gate_volts(gate), d.volt_step, float(t.gate_volts(lim.gate_max)))
    if mask.any() and amp_v[mask].min() <= 0:
        raise Refused("LIMIT", f"{kind.upper()} amplitude below the {d.volt_step * 1e3:g} mV resolution of this "
                               "board's commands")
    slow = (b.options.set_mode if kind == "set" else b.options.reset_mode) == "slow"
    h = d.half_rows
    rows_done = pulses = 0
    for half in range(start // h, (start + count - 1) // h + 1) if count else ():
        if op.should_stop():
            raise Aborted({"rows_done": rows_done, "pulses": pulses})
        lo, hi = max(start, half * h), min(start + count, (half + 1) * h)
        sel = np.zeros((h, b.cols), bool)
        sel[lo - half * h : hi - half * h] = mask[lo - start : hi - start]
        amps = np.zeros((h, b.cols))
        amps[lo - half * h : hi - half * h] = amp_v[lo - start : hi - start]
        gates = np.zeros((h, b.cols))
        gates[lo - half * h : hi - half * h] = gate_v[lo - start : hi - start]
        codes = np.full((h, b.cols), -1, np.int64)
        codes[lo - half * h : hi - half * h] = width[lo - start : hi - start]
        # one command per distinct width (a command has one width register); slow: width ignored
        here = 0
        for w in ([d.width_max_code] if slow else np.unique(codes[sel])):
            group = sel if slow else sel & (codes == w)
            try:
                b.pulse_half(kind, half, int(w), np.where(group, amps, 0.0), np.where(group, gates, 0.0), group)
            except (Unconfirmed, Refused) as exc:
                why = exc.reason if isinstance(exc, Refused) else str(exc)
                raise Refused("INTERNAL", f"{why}; before it this request applied {pulses + here} pulses "
                                          "(confirmed)") from None
            here += int(group.sum())
        pulses += here
        rows_done = hi - start
        op.progress(rows_done=rows_done, row_count=count)
        op.step_done(rows_done)
    return {"rows_done": count, "pulses": pulses}


for _kind in ("set", "reset"):  # PULSE_SET, PULSE_RESET
    HANDLERS.register(f"PULSE_{_kind.upper()}")(partial(_pulses, kind=_kind))


# --------------------------------------------------------------------------- DC levels
@HANDLERS.register("SET_LEVELS")
def set_levels(b: "DpeBridge", v: dict, op: Operation) -> dict:
    group = int(v["group"])
    if group not in GROUPS.values():
        raise Refused("BAD_PAYLOAD", f"unknown line group {group}")
    n = b.rows if group == GROUPS["ROWS"] else b.cols
    if v["codes"].size:
        if v["codes"].size != n:
            raise Refused("BAD_PAYLOAD", f"codes has {v['codes'].size} entries, group has {n} lines")
        new, selected = v["codes"].astype(np.int64), np.ones(n, bool)
    else:
        selected = checks.unpack_mask(v["mask"], n)
        new = b.levels[group].copy()
        new[selected] = v["value"]
    limit = b.limits.gate_max if group == GROUPS["GATES"] else b.limits.read_max
    if np.abs(new).max(initial=0) > limit or (group == GROUPS["GATES"] and new.min(initial=0) < 0):
        raise Refused("LIMIT", f"level outside the board's limit of {limit} codes")
    driven = b.driven[group] | selected
    if group == GROUPS["COLS"] and np.unique(np.where(driven, new, 0)).size > 1:
        raise Refused("LIMIT", "the original board holds every column at one level (its TIAs' virtual ground, "
                               "shifted by the rows): per-column levels are not available")
    b.levels[group][:] = new
    b.driven[group] |= selected
    return {}


@HANDLERS.register("READ_CURRENTS")
def read_currents(b: "DpeBridge", v: dict, op: Operation) -> dict:
    avg = checks.average(v)
    fixed = _gains(b, v["gains"])
    d, t = b.dialect, b.transfer
    rows_v = np.where(b.driven[0], t.line_volts(b.levels[0]), 0.0)
    col_v = float(t.line_volts(np.where(b.driven[1], b.levels[1], 0)[0]))  # one level for all (SET_LEVELS)
    limit = float(t.line_volts(b.limits.read_max))
    if np.abs(rows_v - col_v).max() > limit + 1e-12:
        raise Refused("LIMIT", f"with the columns at {col_v:g} V a row would see more than the read limit of "
                               f"{limit:g} V (this board applies column levels by shifting the rows)")
    vector = codec.quantise(rows_v - col_v, d.vmm_step, limit)
    gates = codec.quantise(np.where(b.driven[2], t.gate_volts(b.levels[2]), 0.0), d.volt_step,
                           float(t.gate_volts(b.limits.gate_max)))
    row_enable = b.driven[0] if col_v == 0 else np.ones(b.rows, bool)

    def measure(g: int, k: int) -> np.ndarray:
        return b.vmm_block(np.tile(vector, (k, 1)), g, gates, row_enable, np.ones(b.cols, bool))

    if fixed is None:
        total, gains = _ranged(b, measure, tuple(range(len(d.tia_gains))), avg)
    else:
        total, gains = _fixed(b, measure, fixed, avg), fixed
    return {"gains": gains.astype(np.uint8), "codes": total.astype(np.int32)}


@HANDLERS.register("GROUND_ALL")
def ground_all(b: "DpeBridge", v: dict, op: Operation) -> dict:
    if v["mode"] not in (0, 1):
        raise Refused("BAD_PAYLOAD", f"mode must be 0 (ground) or 1 (float), not {v['mode']}")
    if v["mode"] == 1:
        raise Refused("LIMIT", "floating every line is not available on the original board (no such command); "
                               "nothing changed")
    b.ground()
    return {}


# --------------------------------------------------------------------------- session
@HANDLERS.register("SET_LIMITS")
def set_limits(b: "DpeBridge", v: dict, op: Operation) -> dict:
    new = checks.tightened_limits(v, b.abs_limits)
    b.limits = new
    return new.to_mapping()


@HANDLERS.register("WAIT")
def wait(b: "DpeBridge", v: dict, op: Operation) -> dict:
    seconds = checks.wait_seconds(v)
    b.ground()
    t0 = time.monotonic()
    while (waited := time.monotonic() - t0) < seconds:  # a timer on the host, abortable
        if op.should_stop():
            raise Aborted({"waited": waited})
        time.sleep(min(0.05, seconds - waited))
    return {"waited": seconds}
