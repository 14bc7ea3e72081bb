"""Calibrated conversions between SI quantities and the board's DAC/ADC/width codes.

The board announces its nominal transfer functions in the handshake
(:class:`~memhw.info.BoardInfo`); :mod:`memhw.conversions` implements them (for the host
and for every board back end alike), and this module layers the host's board
calibration on top: the only host module where codes meet volts, amperes and seconds.

With a board calibration (:class:`memhw.calibration.BoardCalibration`, any object with
its attributes) the per-channel conversions use the fitted transfer functions::

    DAC (group ROWS/COLS/GATES, channel c):   V = code * lsb * gain[c] + offset[c]
    TIA + ADC (column j, gain index g):       V_adc = code * adc_lsb = -I * R[g] * tia_gain[j, g] + tia_offset[j, g]

Without one they are the nominal ones (gain 1, offset 0). ``line_codes``,
``gate_codes`` and ``line_volts`` are always nominal (channel-agnostic, e.g. for the
parameters of on-board loops); ``dac_codes``/``dac_volts`` are per channel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .conversions import AUTO_GAIN, Transfer
from .info import BoardInfo


GROUPS = ("ROWS", "COLS", "GATES")


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
        self._tia = np.asarray(info.tia_gains, dtype=float)
        self.calibration = calibration
        n = {"ROWS": info.rows, "COLS": info.cols, "GATES": info.cols}
        self._dac = {g: (np.ones(n[g]), np.zeros(n[g])) for g in GROUPS}
        self._tia_gain = np.ones((info.cols, self._tia.size))
        self._tia_offset = np.zeros((info.cols, self._tia.size))
        if calibration is not None:
            calibration.check_board(info)
            for g in GROUPS:
                d = calibration.dac[g]
                self._dac[g] = (np.asarray(d.gain, dtype=float), np.asarray(d.offset, dtype=float))
            self._tia_gain = np.asarray(calibration.tia_gain, dtype=float)
            self._tia_offset = np.asarray(calibration.tia_offset, dtype=float)

    def _lsb(self, group: str) -> float:
        if group not in GROUPS:
            raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
        return self.info.dac_gate_lsb if group == "GATES" else self.info.dac_line_lsb

    def dac_codes(self, group: str, volts: np.ndarray, channels: np.ndarray | None = None,
                  v_max: float | None = None, v_min: float | None = None) -> np.ndarray:
        """Volts -> DAC codes of ``group`` ("ROWS", "COLS", "GATES"), per channel.

        ``channels``: the channel (line index) of each element of ``volts``; default: the
        last axis of ``volts`` runs over every line of the group (a scalar is broadcast to
        every line). ``v_max``/``v_min`` (nominal volts): codes are clipped to the nominal
        codes of these levels, i.e. to what the board's limit checks accept.
        """
        lsb = self._lsb(group)
        gain, offset = self._dac[group]
        v = np.asarray(volts, dtype=float)
        if channels is None:
            v = np.broadcast_to(v, v.shape[:-1] + gain.shape) if v.ndim else np.broadcast_to(v, gain.shape)
            g, o = gain, offset
        else:
            ch = np.asarray(channels, dtype=np.int64)
            g, o = gain[ch], offset[ch]
        codes = np.rint((v - o) / (lsb * g))
        if v_max is not None:
            codes = np.minimum(codes, round(v_max / lsb))
        if v_min is not None:
            codes = np.maximum(codes, round(v_min / lsb))
        return codes.astype(np.int64)

    def dac_volts(self, group: str, codes: np.ndarray, channels: np.ndarray | None = None) -> np.ndarray:
        """DAC codes of ``group`` -> volts on the lines (calibrated when available);
        ``channels`` as :meth:`dac_codes`."""
        lsb = self._lsb(group)
        gain, offset = self._dac[group]
        c = np.asarray(codes, dtype=float)
        if channels is None:
            return c * lsb * gain + offset
        ch = np.asarray(channels, dtype=np.int64)
        return c * lsb * gain[ch] + offset[ch]

    def line_codes(self, volts: np.ndarray) -> np.ndarray:
        """Row/column volts -> signed DAC codes (nominal)."""
        return self.transfer.line_codes(volts)

    def gate_codes(self, volts: np.ndarray) -> np.ndarray:
        """Gate volts -> DAC codes (nominal)."""
        return self.transfer.gate_codes(volts)

    def width_codes(self, seconds: np.ndarray) -> np.ndarray:
        """Pulse widths in seconds -> width register codes (nearest)."""
        return self.transfer.width_codes(seconds)

    def currents(self, codes: np.ndarray, gains: np.ndarray, average: int = 1) -> np.ndarray:
        """ADC codes (sums of ``average`` samples) at gain indices -> amperes
        flowing into the columns; undoes the TIA's inversion.

        ``codes`` (..., cols) and ``gains`` (broadcastable to it): the last axis runs over
        the columns, so each reading is corrected with its column's calibration at the
        gain index it was taken with (auto-ranged reads mix gains freely)."""
        if self.calibration is None:
            return self.transfer.currents(codes, gains, average)
        volts = np.asarray(codes, dtype=float) * (self.info.adc_lsb / average)
        g = np.broadcast_to(np.asarray(gains, dtype=np.int64), volts.shape)
        cols = np.broadcast_to(np.arange(self.info.cols), volts.shape)
        return -(volts - self._tia_offset[cols, g]) / (self._tia[g] * self._tia_gain[cols, g])

    def board_reading(self, g: np.ndarray, v_read: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
        """How the board's own (nominal) conversion sees conductances: ``a, b`` such that
        a device of true conductance ``g`` (rows, cols) reads ``a * g + b`` when the
        board drives its row at the nominal code of ``v_read`` and auto-ranges.

        Used to hand the board targets in its own terms when it runs a loop itself
        (on-board PROGRAM) and to bring its results back. Identity without calibration.
        """
        g = np.asarray(g, dtype=float)
        rows, cols = np.indices(g.shape)
        code = np.rint(v_read / self.info.dac_line_lsb)
        v_nominal = code * self.info.dac_line_lsb
        v_true = self.dac_volts("ROWS", np.full(g.shape, code), channels=rows)
        gain = self.transfer.auto_gain(g * v_true)  # the board's auto-range choice
        k, offset = self._tia_gain[cols, gain], self._tia_offset[cols, gain]
        return v_true * k / v_nominal, -offset / (self._tia[gain] * v_nominal)

    def nominal_currents(self, codes: np.ndarray, gains: np.ndarray, average: int = 1) -> np.ndarray:
        """As :meth:`currents` with the nominal transfer function (for calibration fits)."""
        return self.transfer.currents(codes, gains, average)

    @staticmethod
    def monitor_volts(codes: np.ndarray, monitor_lsb: float) -> np.ndarray:
        """Monitor ADC codes (READ_DAC, READ_REFERENCE) -> volts. The monitor is the
        board's own reference: it is not calibrated by the host."""
        return np.asarray(codes, dtype=float) * float(monitor_lsb)

    def gain_field(self, gain: int | str | np.ndarray | None) -> np.ndarray:
        """A user's gain choice -> the ``gains`` field of a read request.

        ``"auto"``/None auto-ranges; an int (index into the gain table) or a
        per-column array of indices fixes the gains.
        """
        if gain is None or (isinstance(gain, str) and gain == "auto"):
            return np.array([AUTO_GAIN], dtype=np.uint8)
        g = np.atleast_1d(np.asarray(gain))
        if g.dtype.kind not in "iu" or g.size not in (1, self.info.cols) or g.ndim != 1:
            raise ValueError(f"gain must be 'auto', an index or {self.info.cols} indices, got {gain!r}")
        if g.min() < 0 or g.max() >= len(self._tia):
            raise ValueError(f"gain index outside 0..{len(self._tia) - 1}")
        return g.astype(np.uint8)
