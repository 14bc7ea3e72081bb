"""Calibration from what the original board can measure: the TIA offsets.

The original board has no reference resistors and no monitor ADC, so the self-calibration
of :func:`memhw.calibration.calibrate_board` is not available on it (it says so). What it
*can* measure is each column's reading with no current at all: every line grounded,
every gate off, the TIA and ADC see only their own offset. At 10 kohm, the gain the
published software read conductances at, a 2 mV offset is ~1 uS of a 0.2 V read, so
these zero-current readings are worth taking. The gains stay nominal (there is no known
current to compare with); :func:`calibrate_offsets` records that in the calibration's
``meta``.

It uses only public :class:`~memhw.Board` operations (GROUND_ALL, READ_CURRENTS), so it
runs on any board that has those, not only through the bridge.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .._version import __version__
from ..calibration.files import now_iso
from ..calibration.model import GROUPS, BoardCalibration, DacCalibration

__all__ = ["calibrate_offsets"]


def calibrate_offsets(board: Any, average: int = 16,
                      progress: Callable[[str, int, int], None] | None = None) -> BoardCalibration:
    """Measure every column's TIA offset at every gain from zero-current readings.

    Parameters
    ----------
    board : Board
        Must offer GROUND_ALL and READ_CURRENTS (``board.supports``). Its applied
        calibration is ignored while measuring and left as it was.
    average : int
        Samples averaged per gain.
    progress : callable(stage, done, total), optional

    Returns
    -------
    BoardCalibration
        Nominal DACs and TIA gains, measured TIA offsets (V at the ADC); apply it with
        ``board.calibration = cal`` or save it per serial with
        :func:`memhw.calibration.save_calibration`.
    """
    info = board.info
    n_g = len(info.tia_gains)
    saved = board.calibration
    offsets = np.zeros((info.cols, n_g))
    spread = np.zeros((info.cols, n_g))
    try:
        board.calibration = None
        board.ground_all()  # every line at 0 V, gates off: no current into any column
        for g, r_g in enumerate(info.tia_gains):
            first = board.read_currents(gain=g, average=average)
            second = board.read_currents(gain=g, average=average)
            offsets[:, g] = -0.5 * (first + second) * r_g  # V_adc = -I * R at the nominal gain
            spread[:, g] = np.abs(first - second) * r_g / 2
            if progress is not None:
                progress(f"TIA offsets at gain {g}", g + 1, n_g)
    finally:
        board.calibration = saved
    fs = (1 << (info.adc_bits - 1)) * info.adc_lsb
    return BoardCalibration(
        serial=info.serial, firmware=info.firmware, protocol=tuple(info.protocol), date=now_iso(),
        rows=info.rows, cols=info.cols, tia_gains=tuple(info.tia_gains), dac_line_lsb=info.dac_line_lsb,
        dac_gate_lsb=info.dac_gate_lsb, adc_lsb=info.adc_lsb,
        dac={g: DacCalibration.nominal(info.cols if g != "ROWS" else info.rows) for g in GROUPS},
        tia_gain=np.ones((info.cols, n_g)), tia_offset=offsets, tia_residual=spread / fs, tia_r2=np.ones((info.cols, n_g)),
        references=np.zeros(0),
        meta={"method": "zero-current TIA offsets only (no reference resistors: DAC and TIA gains nominal)",
              "average": average, "memhw_version": __version__, "address": info.address},
    )
