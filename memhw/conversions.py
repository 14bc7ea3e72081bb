"""Nominal transfer functions, the auto-range rule and limits in codes.

The one place where board codes (DAC, ADC, pulse-width and conductance codes) meet SI
units *nominally*, i.e. as a board announces them in its HELLO reply. Both sides of the
wire use it: the host (:mod:`memhw.codes` layers the board calibration on top of it) and
every board back end (the emulator, the bridge to the original board). It imports only
the protocol schema and :mod:`memhw.info`, so it sits below both stacks.

Transfer functions (PROTOCOL.md §10)::

    DAC  (rows, columns):  V = code * dac_line_lsb          gates: V = code * dac_gate_lsb
    ADC:                   V_adc = code * adc_lsb,  I = -V_adc / tia_gains[g]   (inverting TIA)
    width:                 s = width_offset + code * width_lsb,  code 0 .. width_max_code
    conductance ("g"):     S = code * conductance_lsb

Auto-ranging (``gains = [AUTO_GAIN]``): the highest gain whose expected reading stays
within :data:`AUTO_RANGE_FRACTION` of the ADC's full scale; a board that still sees a
saturated code steps down one gain and reads again.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from firmware_protocol import SCHEMA

from .info import Limits

__all__ = ["AUTO_GAIN", "AUTO_RANGE_FRACTION", "CONDUCTANCE_LSB", "READ_VOLTAGE", "GROUPS", "Transfer", "Calibrated",
           "BoardCalibration", "LimitCodes", "conductance_codes", "conductances"]

#: a ``gains`` entry asking the board to auto-range (protocol constant)
AUTO_GAIN: int = SCHEMA.auto_gain
#: siemens per conductance code (the ``g`` unit of PROGRAM)
CONDUCTANCE_LSB: float = SCHEMA.conductance_lsb
#: the published system's read voltage, V: default of conductance reads and verify reads
READ_VOLTAGE: float = SCHEMA.read_voltage
#: auto-ranging picks the highest gain whose reading stays within this fraction of full scale
AUTO_RANGE_FRACTION = 0.9


@dataclass(frozen=True)
class Transfer:
    """A board's nominal transfer functions, as its HELLO reply announces them."""

    dac_line_lsb: float
    dac_gate_lsb: float
    adc_lsb: float
    adc_bits: int
    tia_gains: tuple[float, ...]
    width_offset: float
    width_lsb: float
    width_max_code: int

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Transfer":
        """From a decoded HELLO reply, a :class:`~memhw.info.BoardInfo` or anything with these keys."""
        get = values.__getitem__ if isinstance(values, Mapping) else lambda k: getattr(values, k)
        return cls(float(get("dac_line_lsb")), float(get("dac_gate_lsb")), float(get("adc_lsb")),
                   int(get("adc_bits")), tuple(float(g) for g in get("tia_gains")), float(get("width_offset")),
                   float(get("width_lsb")), int(get("width_max_code")))

    # ---------------------------------------------------------------- DACs
    def line_codes(self, volts: Any) -> np.ndarray:
        """Row/column volts -> DAC codes (nearest, ``numpy.rint``)."""
        return np.rint(np.asarray(volts, dtype=float) / self.dac_line_lsb).astype(np.int64)

    def gate_codes(self, volts: Any) -> np.ndarray:
        """Gate volts -> DAC codes (nearest)."""
        return np.rint(np.asarray(volts, dtype=float) / self.dac_gate_lsb).astype(np.int64)

    def line_volts(self, codes: Any) -> np.ndarray:
        """Row/column DAC codes -> nominal volts."""
        return np.asarray(codes, dtype=float) * self.dac_line_lsb

    def gate_volts(self, codes: Any) -> np.ndarray:
        """Gate DAC codes -> nominal volts."""
        return np.asarray(codes, dtype=float) * self.dac_gate_lsb

    # --------------------------------------------------------------- widths
    def width_codes(self, seconds: Any) -> np.ndarray:
        """Pulse widths in seconds -> width register codes (nearest; not clipped)."""
        return np.rint((np.asarray(seconds, dtype=float) - self.width_offset) / self.width_lsb).astype(np.int64)

    def widths(self, codes: Any) -> np.ndarray:
        """Width register codes -> seconds."""
        return self.width_offset + np.asarray(codes, dtype=float) * self.width_lsb

    @property
    def width_min(self) -> float:
        """Shortest pulse, s (code 0)."""
        return self.width_offset

    @property
    def width_max(self) -> float:
        """Longest pulse, s (``width_max_code``)."""
        return self.width_offset + self.width_max_code * self.width_lsb

    # ------------------------------------------------------------- ADC, TIA
    @property
    def adc_full_scale(self) -> float:
        """Largest |V| at the ADC input, V."""
        return (1 << (self.adc_bits - 1)) * self.adc_lsb

    def currents(self, codes: Any, gains: Any, average: int = 1) -> np.ndarray:
        """ADC codes (sums of ``average`` samples) at gain indices -> amperes flowing into
        the columns (the TIA's inversion undone)."""
        tia = np.asarray(self.tia_gains)
        return -np.asarray(codes, dtype=float) * (self.adc_lsb / average) / tia[np.asarray(gains, dtype=np.int64)]

    def auto_gain(self, currents: Any) -> np.ndarray:
        """The auto-range rule: per element of ``currents`` (A), the highest gain index whose
        reading stays within :data:`AUTO_RANGE_FRACTION` of full scale (0 if none does)."""
        tia = np.asarray(self.tia_gains)
        fits = np.abs(np.asarray(currents, dtype=float))[..., None] * tia <= AUTO_RANGE_FRACTION * self.adc_full_scale
        return np.where(fits.any(-1), tia.size - 1 - np.argmax(fits[..., ::-1], axis=-1), 0).astype(np.int64)


def conductance_codes(siemens: Any) -> np.ndarray:
    """Conductances (S) -> ``g`` codes (nearest, clipped to the u16 range)."""
    return np.clip(np.rint(np.asarray(siemens, dtype=float) / CONDUCTANCE_LSB), 0, 0xFFFF).astype(np.int64)


def conductances(codes: Any) -> np.ndarray:
    """``g`` codes -> siemens."""
    return np.asarray(codes, dtype=float) * CONDUCTANCE_LSB


@dataclass(frozen=True)
class LimitCodes:
    """Safety limits in codes, as SET_LIMITS carries them and a board checks them.

    Attributes
    ----------
    read_max, set_max, reset_max : int
        Line DAC codes: largest |DC level| / |VMM input| / read voltage, SET and RESET amplitude.
    gate_max : int
        Gate DAC code.
    width_max : int
        Width register code.
    """

    read_max: int
    set_max: int
    reset_max: int
    gate_max: int
    width_max: int

    @classmethod
    def from_limits(cls, limits: Limits, t: Transfer) -> "LimitCodes":
        """SI limits -> codes (nearest code; the width clipped to the register)."""
        line = lambda v: int(t.line_codes(v))  # noqa: E731
        return cls(line(limits.v_read), line(limits.v_set), line(limits.v_reset), int(t.gate_codes(limits.v_gate)),
                   int(min(t.width_max_code, max(0, int(t.width_codes(limits.width_max))))))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "LimitCodes":
        """From a decoded SET_LIMITS request or reply."""
        return cls(**{f.name: int(values[f.name]) for f in fields(cls)})

    def to_mapping(self) -> dict[str, int]:
        """The SET_LIMITS fields."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_limits(self, t: Transfer) -> Limits:
        """Codes -> SI limits."""
        return Limits(v_read=float(t.line_volts(self.read_max)), v_set=float(t.line_volts(self.set_max)),
                      v_reset=float(t.line_volts(self.reset_max)), v_gate=float(t.gate_volts(self.gate_max)),
                      width_min=t.width_min, width_max=float(t.widths(self.width_max)))


#: line groups of the DACs, as the protocol's ``LineGroup`` enum names them
GROUPS = ("ROWS", "COLS", "GATES")


class Calibrated:
    """A board's transfer functions per channel: the nominal ones (:class:`Transfer`) with
    a gain and offset per DAC channel and per column and TIA gain::

        DAC (group, channel c):   V = code * lsb * gain[c] + offset[c]
        TIA + ADC (column j, g):  V_adc = code * adc_lsb = -I * R[g] * tia_gain[j, g] + tia_offset[j, g]

    The host builds one from its board calibration (:mod:`memhw.codes`), a board from the
    SET_CALIBRATION it was sent; without corrections it is the nominal transfer function.

    Parameters
    ----------
    transfer : Transfer
    rows, cols : int
    dac : mapping group -> (gain, offset), optional
        Per-channel arrays of each group ("ROWS": rows, "COLS" and "GATES": cols).
    tia_gain, tia_offset : (cols, n_gains) arrays, optional
    """

    #: the arithmetic of the conversions: float64 on the host, binary32 on a board
    #: (:class:`BoardCalibration`)
    dtype: type = np.float64

    def __init__(self, transfer: Transfer, rows: int, cols: int,
                 dac: Mapping[str, tuple[Any, Any]] | None = None, tia_gain: Any = None, tia_offset: Any = None):
        self.transfer = transfer
        self.rows, self.cols = int(rows), int(cols)
        n_g = len(transfer.tia_gains)
        size = {"ROWS": self.rows, "COLS": self.cols, "GATES": self.cols}
        self.dac = {g: (np.ones(size[g]), np.zeros(size[g])) for g in GROUPS}
        for g, (gain, offset) in (dac or {}).items():
            self.dac[g] = (np.asarray(gain, dtype=float).reshape(size[g]),
                           np.asarray(offset, dtype=float).reshape(size[g]))
        self.tia_gain = np.ones((self.cols, n_g)) if tia_gain is None else \
            np.asarray(tia_gain, dtype=float).reshape(self.cols, n_g)
        self.tia_offset = np.zeros((self.cols, n_g)) if tia_offset is None else \
            np.asarray(tia_offset, dtype=float).reshape(self.cols, n_g)
        self._tia = np.asarray(transfer.tia_gains, dtype=float)
        self.nominal = (all(np.all(gain == 1) and np.all(offset == 0) for gain, offset in self.dac.values())
                        and np.all(self.tia_gain == 1) and np.all(self.tia_offset == 0))

    def lsb(self, group: str) -> float:
        if group not in GROUPS:
            raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
        return self.transfer.dac_gate_lsb if group == "GATES" else self.transfer.dac_line_lsb

    def dac_codes(self, group: str, volts: Any, channels: Any = None, v_max: float | None = None,
                  v_min: float | None = None) -> np.ndarray:
        """Volts -> DAC codes of ``group``, per channel. ``channels``: the channel of each
        element of ``volts``; default: the last axis runs over every line of the group (a
        scalar is broadcast to every line). ``v_max``/``v_min`` (nominal volts): codes are
        clipped to the nominal codes of these levels, i.e. to what the limit checks accept."""
        dt, nominal_lsb = self.dtype, self.lsb(group)
        lsb = dt(nominal_lsb)
        gain, offset = (a.astype(dt) for a in self.dac[group])
        v = np.asarray(volts, dtype=dt)
        if channels is None:
            v = np.broadcast_to(v, v.shape[:-1] + gain.shape) if v.ndim else np.broadcast_to(v, gain.shape)
            g, o = gain, offset
        else:
            ch = np.asarray(channels, dtype=np.int64)
            g, o = gain[ch], offset[ch]
        codes = np.rint((v - o) / (lsb * g))
        if v_max is not None:
            codes = np.minimum(codes, dt(round(v_max / nominal_lsb)))
        if v_min is not None:
            codes = np.maximum(codes, dt(round(v_min / nominal_lsb)))
        return codes.astype(np.int64)

    def dac_volts(self, group: str, codes: Any, channels: Any = None) -> np.ndarray:
        """DAC codes of ``group`` -> volts on the lines; ``channels`` as :meth:`dac_codes`."""
        dt = self.dtype
        lsb = dt(self.lsb(group))
        gain, offset = (a.astype(dt) for a in self.dac[group])
        c = np.asarray(codes, dtype=dt)
        if channels is None:
            return c * lsb * gain + offset
        ch = np.asarray(channels, dtype=np.int64)
        return c * lsb * gain[ch] + offset[ch]

    def currents(self, codes: Any, gains: Any, average: int = 1, cols: Any = None) -> np.ndarray:
        """ADC codes (sums of ``average`` samples) at gain indices -> amperes into the
        columns. ``cols``: the column of each element; default: the last axis runs over
        every column (each reading corrected with its column's calibration at its gain)."""
        dt = self.dtype
        if self.nominal and dt is np.float64:
            return self.transfer.currents(codes, gains, average)
        volts = np.asarray(codes, dtype=dt) * dt(self.transfer.adc_lsb / average)
        g = np.broadcast_to(np.asarray(gains, dtype=np.int64), volts.shape)
        j = np.broadcast_to(np.arange(self.cols) if cols is None else np.asarray(cols, dtype=np.int64), volts.shape)
        tia = self._tia.astype(dt)[g] * self.tia_gain.astype(dt)[j, g]
        return -((volts - self.tia_offset.astype(dt)[j, g]) / tia)

    # ------------------------------------------------------------- the wire
    def to_fields(self) -> dict[str, np.ndarray]:
        """The SET_CALIBRATION fields (empty arrays when nominal)."""
        if self.nominal:
            return {k: np.zeros(0, np.float32) for k in _CALIBRATION_FIELDS}
        out = {}
        for g, prefix in (("ROWS", "row"), ("COLS", "col"), ("GATES", "gate")):
            out[f"{prefix}_gain"], out[f"{prefix}_offset"] = (np.asarray(a, np.float32) for a in self.dac[g])
        out["tia_gain"] = np.asarray(self.tia_gain, np.float32).reshape(-1)
        out["tia_offset"] = np.asarray(self.tia_offset, np.float32).reshape(-1)
        return out

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any], transfer: Transfer, rows: int, cols: int) -> "Calibrated":
        """From a decoded SET_CALIBRATION request (empty arrays: nominal).

        Raises
        ------
        ValueError
            An array of the wrong length, or a gain that is not finite and positive.
        """
        n_g = len(transfer.tia_gains)
        want = {"row_gain": rows, "row_offset": rows, "col_gain": cols, "col_offset": cols, "gate_gain": cols,
                "gate_offset": cols, "tia_gain": cols * n_g, "tia_offset": cols * n_g}
        arrays = {k: np.asarray(fields[k], dtype=float) for k in _CALIBRATION_FIELDS}
        if all(a.size == 0 for a in arrays.values()):
            return cls(transfer, rows, cols)
        for k, n in want.items():
            if arrays[k].size != n:
                raise ValueError(f"{k} has {arrays[k].size} entries, expected {n} (or all empty)")
            if not np.all(np.isfinite(arrays[k])) or (k.endswith("gain") and np.any(arrays[k] <= 0)):
                raise ValueError(f"{k} must be finite{' and positive' if k.endswith('gain') else ''}")
        dac = {g: (arrays[f"{p}_gain"], arrays[f"{p}_offset"]) for g, p in (("ROWS", "row"), ("COLS", "col"),
                                                                          ("GATES", "gate"))}
        return cls(transfer, rows, cols, dac, arrays["tia_gain"], arrays["tia_offset"])




class BoardCalibration(Calibrated):
    """A board's own conversions through a calibration (SET_CALIBRATION), in binary32.

    The numeric format of PROTOCOL.md SET_CALIBRATION, so that a firmware with a
    single-precision FPU (the C core) computes exactly what this reference computes; every
    operation is one IEEE 754 single operation, in this order::

        code = rint(clip((V - offset[c]) / (lsb * gain[c]), lo, hi))   (DAC: volts -> code)
        V    = code * lsb * gain[c] + offset[c]                         (DAC: code -> volts)
        I    = -((code * adc_lsb - tia_offset[j, g]) / (tia_gains[g] * tia_gain[j, g]))

    Without a calibration (gains 1, offsets 0) a nominal level's code is that level's code
    and a current is ``-(code * adc_lsb) / tia_gains[g]``, as float32.
    """

    dtype = np.float32

    def currents(self, codes: Any, gains: Any, average: int = 1, cols: Any = None) -> np.ndarray:
        """ADC codes (means: ``average`` must be 1) at gain indices -> amperes, float32."""
        if average != 1:
            raise ValueError("a board converts mean codes (average = 1)")
        return super().currents(codes, gains, 1, cols)


_CALIBRATION_FIELDS = ("row_gain", "row_offset", "col_gain", "col_offset", "gate_gain", "gate_offset", "tia_gain",
                       "tia_offset")
