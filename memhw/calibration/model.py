"""The board calibration: per-channel DAC and per-column, per-gain TIA transfer functions.

Pure data (numpy), no I/O: :mod:`memhw.calibration.files` reads and writes it,
:mod:`memhw.calibration.board` measures it, :class:`memhw.codes.CodeConverter` applies it.

Model (the same as the board's periphery, DOMAIN.md §1 and §2 item 10)::

    DAC channel c of group G:   V = code * lsb_G * dac[G].gain[c] + dac[G].offset[c]
    column j at gain index g:   V_adc = code * adc_lsb = -I * R_g * tia_gain[j, g] + tia_offset[j, g]
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CalibrationError

__all__ = ["BoardCalibration", "CalibrationBounds", "DacCalibration", "GROUPS"]

GROUPS = ("ROWS", "COLS", "GATES")


@dataclass(eq=False)
class DacCalibration:
    """One line group's DAC channels: ``V = code * lsb * gain + offset``.

    Attributes
    ----------
    gain : (n,) relative gain (1 = nominal)
    offset : (n,) V
    residual : (n,) V, RMS of the fit residuals
    r2 : (n,) coefficient of determination of the fit
    """

    gain: np.ndarray
    offset: np.ndarray
    residual: np.ndarray
    r2: np.ndarray

    @classmethod
    def nominal(cls, n: int) -> "DacCalibration":
        return cls(np.ones(n), np.zeros(n), np.zeros(n), np.ones(n))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DacCalibration):
            return NotImplemented
        return all(np.array_equal(getattr(self, f), getattr(other, f)) for f in ("gain", "offset", "residual", "r2"))


@dataclass(frozen=True)
class CalibrationBounds:
    """Limits a calibration must meet to be saved or applied without ``force``.

    Defaults are ~5-10x what a healthy board (the emulator's ``paper`` and ``harsh``
    presets) gives, so a failing check means a broken channel or a bad measurement.
    """

    dac_gain_deviation: float = 0.10    # |gain - 1|
    dac_offset: float = 0.05            # V
    dac_residual: float = 1e-3          # V RMS
    tia_gain_deviation: float = 0.25    # |gain - 1|
    tia_offset: float = 0.25            # V at the ADC
    tia_residual: float = 0.02          # RMS residual / largest |V_adc| of the fit points
    min_r2: float = 0.999


@dataclass(eq=False)
class BoardCalibration:
    """Fitted transfer functions of one board (see the module docstring).

    Attributes
    ----------
    serial, firmware : str
        Of the board it was made on.
    protocol : (major, minor)
    date : str
        ISO 8601 UTC time of the measurement.
    rows, cols : int
    tia_gains : tuple of float
        Nominal transimpedances (ohm) per gain index.
    dac_line_lsb, dac_gate_lsb, adc_lsb : float
        The board's nominal LSBs at calibration time.
    dac : dict "ROWS"/"COLS"/"GATES" -> DacCalibration
    tia_gain, tia_offset, tia_residual, tia_r2 : (cols, n_gains)
    references : (n_ref,) nominal ohms of the reference resistors used
    temperature : float or None
        Board temperature in °C if known.
    meta : dict
        Method parameters (averages, points, memhw version...), all JSON-able scalars/strings.
    points : dict
        Raw fit points (not stored in calibration files; sessions store them).
    """

    serial: str
    firmware: str
    protocol: tuple[int, int]
    date: str
    rows: int
    cols: int
    tia_gains: tuple[float, ...]
    dac_line_lsb: float
    dac_gate_lsb: float
    adc_lsb: float
    dac: dict[str, DacCalibration]
    tia_gain: np.ndarray
    tia_offset: np.ndarray
    tia_residual: np.ndarray
    tia_r2: np.ndarray
    references: np.ndarray
    temperature: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    points: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    source: str | None = field(default=None, compare=False)  # file it was loaded from

    def __eq__(self, other: object) -> bool:
        """Equal identity, metadata and fit parameters (``points`` and ``source`` ignored)."""
        if not isinstance(other, BoardCalibration):
            return NotImplemented
        for f in dataclasses.fields(self):
            if not f.compare:
                continue
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not np.array_equal(a, b):
                    return False
            elif a != b:
                return False
        return True

    # ------------------------------------------------------------------ identity
    @property
    def id(self) -> str:
        """Short identifier: serial and date (recorded in sessions)."""
        return f"{self.serial}@{self.date}"

    @property
    def age_days(self) -> float:
        t = _dt.datetime.fromisoformat(self.date)
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return (_dt.datetime.now(_dt.timezone.utc) - t).total_seconds() / 86400.0

    def check_board(self, info: Any) -> None:
        """Raise :class:`CalibrationError` unless this calibration is for the board ``info``
        describes (serial, geometry, gain table, LSBs)."""
        where = f" ({self.source})" if self.source else ""
        if info.serial != self.serial:
            raise CalibrationError(
                f"calibration{where} is for board {self.serial!r}, this board is {info.serial!r}; "
                "calibrate this board (memhw calibrate board --save) or connect with calibration=None")
        if (info.rows, info.cols) != (self.rows, self.cols):
            raise CalibrationError(f"calibration{where} is for a {self.rows}x{self.cols} board, "
                                   f"board {info.serial} is {info.rows}x{info.cols}")
        if len(info.tia_gains) != len(self.tia_gains) or not np.allclose(info.tia_gains, self.tia_gains):
            raise CalibrationError(f"calibration{where}: gain table {self.tia_gains} differs from the "
                                   f"board's {tuple(info.tia_gains)}")
        for name in ("dac_line_lsb", "dac_gate_lsb", "adc_lsb"):
            if not np.isclose(getattr(info, name), getattr(self, name), rtol=1e-6):
                raise CalibrationError(f"calibration{where}: {name} differs from the board's")

    def staleness(self, info: Any, max_age_days: float = 90.0) -> list[str]:
        """Reasons this calibration may be stale for board ``info`` (empty: fresh)."""
        out = []
        age = self.age_days
        if "max_age_days" in self.meta:  # set by the maker, e.g. None for an emulator (no drift)
            max_age_days = float("inf") if self.meta["max_age_days"] is None else float(self.meta["max_age_days"])
        if age > max_age_days:
            out.append(f"it is {age:.0f} days old (> {max_age_days:g})")
        if info.firmware != self.firmware:
            out.append(f"it was made with firmware {self.firmware!r}, the board runs {info.firmware!r}")
        if info.protocol[0] != self.protocol[0]:  # minor versions only add messages
            out.append(f"it was made with protocol {self.protocol[0]}.{self.protocol[1]}, "
                       f"the board speaks {info.protocol[0]}.{info.protocol[1]}")
        return out

    # ------------------------------------------------------------------ quality
    def problems(self, bounds: CalibrationBounds | None = None) -> list[str]:
        """Every way this calibration violates ``bounds`` (empty: fine)."""
        b = bounds or CalibrationBounds()
        out = []

        def check(name: str, values: np.ndarray, limit: float, what: str, lower: bool = False) -> None:
            v = np.asarray(values, dtype=float)
            bad = ~np.isfinite(v) | ((v < limit) if lower else (v > limit))
            if bad.any():
                idx = [tuple(int(x) for x in i) if v.ndim > 1 else int(i[0]) for i in np.argwhere(bad)[:5]]
                worst = np.nanmin(v) if lower else np.nanmax(v)
                out.append(f"{name}: {int(bad.sum())} channel(s) with {what} {'<' if lower else '>'} {limit:g} "
                           f"(worst {worst:.4g}; e.g. {idx})")

        for g in GROUPS:
            d = self.dac[g]
            check(f"DAC {g}", np.abs(d.gain - 1), b.dac_gain_deviation, "|gain - 1|")
            check(f"DAC {g}", np.abs(d.offset), b.dac_offset, "|offset| (V)")
            check(f"DAC {g}", d.residual, b.dac_residual, "fit residual (V rms)")
            check(f"DAC {g}", d.r2, b.min_r2, "r^2", lower=True)
        check("TIA", np.abs(self.tia_gain - 1), b.tia_gain_deviation, "|gain - 1|")
        check("TIA", np.abs(self.tia_offset), b.tia_offset, "|offset| (V)")
        check("TIA", self.tia_residual, b.tia_residual, "relative fit residual")
        check("TIA", self.tia_r2, b.min_r2, "r^2", lower=True)
        return out

    def validate(self, bounds: CalibrationBounds | None = None) -> None:
        """Raise :class:`CalibrationError` listing every bound violated."""
        bad = self.problems(bounds)
        if bad:
            raise CalibrationError(f"calibration of {self.serial} out of bounds: " + "; ".join(bad))

    def summary(self) -> dict[str, float]:
        """Fit quality in a few numbers (worst and median over channels)."""
        s: dict[str, float] = {}
        for g in GROUPS:
            d = self.dac[g]
            s[f"dac_{g.lower()}_gain_dev_max"] = float(np.max(np.abs(d.gain - 1)))
            s[f"dac_{g.lower()}_offset_max_V"] = float(np.max(np.abs(d.offset)))
            s[f"dac_{g.lower()}_residual_max_V"] = float(np.max(d.residual))
            s[f"dac_{g.lower()}_r2_min"] = float(np.min(d.r2))
        s["tia_gain_dev_max"] = float(np.max(np.abs(self.tia_gain - 1)))
        s["tia_offset_max_V"] = float(np.max(np.abs(self.tia_offset)))
        s["tia_residual_median"] = float(np.median(self.tia_residual))
        s["tia_residual_max"] = float(np.max(self.tia_residual))
        s["tia_r2_min"] = float(np.min(self.tia_r2))
        return s

    def replace(self, **changes: Any) -> "BoardCalibration":
        return dataclasses.replace(self, **changes)
