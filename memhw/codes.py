"""Calibrated conversions between SI quantities and the board's DAC/ADC/width codes.

The board announces its nominal transfer functions in the handshake
(:class:`~memhw.info.BoardInfo`); :mod:`memhw.conversions` implements them and their
per-channel corrections (:class:`~memhw.conversions.Calibrated`) for the host and for
every board back end alike. This module holds the host's view: the board calibration it
applies (:class:`memhw.calibration.BoardCalibration`, checked against the board), and the
few conversions only a host needs. It is the only host module where codes meet volts,
amperes and seconds::

    DAC (group ROWS/COLS/GATES, channel c):   V = code * lsb * gain[c] + offset[c]
    TIA + ADC (column j, gain index g):       V_adc = code * adc_lsb = -I * R[g] * tia_gain[j, g] + tia_offset[j, g]

Without a calibration they are the nominal ones (gain 1, offset 0). ``line_codes``,
``gate_codes`` and ``width_codes`` are always nominal (channel-agnostic, e.g. for the
parameters of on-board loops); ``dac_codes``/``dac_volts``/``currents`` are per channel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .conversions import AUTO_GAIN, GROUPS, Calibrated, Transfer
from .info import BoardInfo

__all__ = ["CodeConverter", "GROUPS"]


class CodeConverter:
    """Code <-> SI conversions for one board: nominal, or calibrated per channel.

    Parameters
    ----------
    info : BoardInfo
    calibration : BoardCalibration, optional
        Checked against ``info`` (serial, geometry, gain table): a calibration of
        another board raises :class:`~memhw.errors.CalibrationError`.
    """

    def __init__(self, info: BoardInfo, calibration: Any = None):
        self.info = info
        #: the nominal transfer functions the board announced
        self.transfer = Transfer.from_mapping(info)
        self.calibration = calibration
        if calibration is not None:
            calibration.check_board(info)
            dac = {g: (calibration.dac[g].gain, calibration.dac[g].offset) for g in GROUPS}
            self.table = Calibrated(self.transfer, info.rows, info.cols, dac, calibration.tia_gain,
                                    calibration.tia_offset)
        else:
            #: per-channel transfer functions (nominal without a calibration)
            self.table = Calibrated(self.transfer, info.rows, info.cols)

    def dac_codes(self, group: str, volts: np.ndarray, channels: np.ndarray | None = None,
                  v_max: float | None = None, v_min: float | None = None) -> np.ndarray:
        """Volts -> DAC codes of ``group`` ("ROWS", "COLS", "GATES"), per channel (see
        :meth:`memhw.conversions.Calibrated.dac_codes`)."""
        return self.table.dac_codes(group, volts, channels, v_max, v_min)

    def dac_volts(self, group: str, codes: np.ndarray, channels: np.ndarray | None = None) -> np.ndarray:
        """DAC codes of ``group`` -> volts on the lines (calibrated when available)."""
        return self.table.dac_volts(group, codes, channels)

    def line_codes(self, volts: np.ndarray) -> np.ndarray:
        """Row/column volts -> signed DAC codes (nominal)."""
        return self.transfer.line_codes(volts)

    def gate_codes(self, volts: np.ndarray) -> np.ndarray:
        """Gate volts -> DAC codes (nominal)."""
        return self.transfer.gate_codes(volts)

    def width_codes(self, seconds: np.ndarray) -> np.ndarray:
        """Pulse widths in seconds -> width register codes (nearest)."""
        return self.transfer.width_codes(seconds)

    def currents(self, codes: np.ndarray, gains: np.ndarray, average: int = 1, cols: Any = None) -> np.ndarray:
        """ADC codes (sums of ``average`` samples) at gain indices -> amperes flowing into
        the columns; undoes the TIA's inversion. ``codes`` (..., cols) and ``gains``
        (broadcastable to it): the last axis runs over the columns, or ``cols`` gives each
        reading's column, so each is corrected with its column's calibration at its gain."""
        return self.table.currents(codes, gains, average, cols)

    def board_reading(self, g: np.ndarray, v_read: float) -> tuple[np.ndarray, np.ndarray]:
        """How the board's own (nominal) conversion sees conductances: ``a, b`` such that
        a device of true conductance ``g`` (rows, cols) reads ``a * g + b`` when the
        board drives its row at the nominal code of ``v_read`` and auto-ranges.

        Used to hand a board that cannot take a calibration (no SET_CALIBRATION) targets in
        its own terms when it runs a loop itself, and to bring its results back. Identity
        without calibration.
        """
        g = np.asarray(g, dtype=float)
        rows, cols = np.indices(g.shape)
        code = np.rint(v_read / self.info.dac_line_lsb)
        v_nominal = code * self.info.dac_line_lsb
        v_true = self.dac_volts("ROWS", np.full(g.shape, code), channels=rows)
        gain = self.transfer.auto_gain(g * v_true)  # the board's auto-range choice
        t = self.table
        k, offset = t.tia_gain[cols, gain], t.tia_offset[cols, gain]
        return v_true * k / v_nominal, -offset / (np.asarray(self.transfer.tia_gains)[gain] * v_nominal)

    def nominal_currents(self, codes: np.ndarray, gains: np.ndarray, average: int = 1) -> np.ndarray:
        """As :meth:`currents` with the nominal transfer function (for calibration fits)."""
        return self.transfer.currents(codes, gains, average)

    @staticmethod
    def monitor_volts(codes: np.ndarray, monitor_lsb: float) -> np.ndarray:
        """Monitor ADC codes (READ_DAC, READ_REFERENCE) -> volts. The monitor is the
        board's own reference: it is not calibrated by the host."""
        return np.asarray(codes, dtype=float) * float(monitor_lsb)

    def gain_field(self, gain: int | str | np.ndarray | None, n: int | None = None) -> np.ndarray:
        """A user's gain choice -> the ``gains`` field of a read request.

        ``"auto"``/None auto-ranges; an int (index into the gain table) or an array of one
        index per column read (``n`` columns, default every column) fixes the gains.
        """
        n = self.info.cols if n is None else n
        if gain is None or (isinstance(gain, str) and gain == "auto"):
            return np.array([AUTO_GAIN], dtype=np.uint8)
        g = np.atleast_1d(np.asarray(gain))
        if g.dtype.kind not in "iu" or g.size not in (1, n) or g.ndim != 1:
            raise ValueError(f"gain must be 'auto', an index or {n} indices, got {gain!r}")
        if g.min() < 0 or g.max() >= len(self.transfer.tia_gains):
            raise ValueError(f"gain index outside 0..{len(self.transfer.tia_gains) - 1}")
        return g.astype(np.uint8)
