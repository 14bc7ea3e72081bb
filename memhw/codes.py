"""Conversions between SI quantities and the board's DAC/ADC/width codes.

The board announces its nominal transfer functions in the handshake
(:class:`~memhw.info.BoardInfo`); this is the only place on the host where
codes meet volts, amperes and seconds.
"""

from __future__ import annotations

import numpy as np

from .info import BoardInfo

AUTO_GAIN = 255


class CodeConverter:
    """Nominal code <-> SI conversions for one board."""

    def __init__(self, info: BoardInfo):
        self.info = info
        self._tia = np.asarray(info.tia_gains, dtype=float)

    def line_codes(self, volts: np.ndarray) -> np.ndarray:
        """Row/column volts -> signed DAC codes."""
        return np.rint(np.asarray(volts, dtype=float) / self.info.dac_line_lsb).astype(np.int64)

    def gate_codes(self, volts: np.ndarray) -> np.ndarray:
        """Gate volts -> DAC codes."""
        return np.rint(np.asarray(volts, dtype=float) / self.info.dac_gate_lsb).astype(np.int64)

    def line_volts(self, codes: np.ndarray) -> np.ndarray:
        """Row/column DAC codes -> nominal volts."""
        return np.asarray(codes, dtype=float) * self.info.dac_line_lsb

    def width_codes(self, seconds: np.ndarray) -> np.ndarray:
        """Pulse widths in seconds -> width register codes (nearest)."""
        i = self.info
        return np.rint((np.asarray(seconds, dtype=float) - i.width_offset) / i.width_lsb).astype(np.int64)

    def currents(self, codes: np.ndarray, gains: np.ndarray, average: int = 1) -> np.ndarray:
        """ADC codes (sums of ``average`` samples) at gain indices -> amperes
        flowing into the columns; undoes the TIA's inversion."""
        volts = np.asarray(codes, dtype=float) * (self.info.adc_lsb / average)
        return -volts / self._tia[np.asarray(gains, dtype=np.int64)]

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
