"""Board calibration and chip characterisation.

Board layer (used by :class:`memhw.Board` and :func:`memhw.connect`; pure data and files):

* :class:`BoardCalibration` (:mod:`.model`) -- per-channel DAC gain/offset (rows, columns,
  gates) and per-column, per-gain TIA gain/offset, with fit residuals and bounds;
* :mod:`.files` -- the HDF5 file format (``calibration/README.md``), lookup by serial in
  ``$MEMHW_CALIBRATION_DIR``, or the per-user data directory then the calibrations shipped
  with memhw (:func:`~.files.search_path`), :func:`apply_calibration`.

Procedures (take a Board, return results; imported lazily):

* :func:`calibrate_board` (:mod:`.board`) -- self-calibration against the on-board
  reference resistors and DAC read-back;
* :mod:`.sweeps` -- I-V, gate -> conductance (usable as a programming prior), RESET
  amplitude -> conductance, read noise, retention; :mod:`.plots` draws them.
"""

from __future__ import annotations

from typing import Any

from .files import (
    ENV_DIR,
    apply_calibration,
    calibration_dir,
    calibration_path,
    find_calibration,
    load_calibration,
    save_calibration,
)
from .model import BoardCalibration, CalibrationBounds, DacCalibration

__all__ = [
    "BoardCalibration", "CalibrationBounds", "DacCalibration", "ENV_DIR", "apply_calibration",
    "calibration_dir", "calibration_path", "find_calibration", "load_calibration", "save_calibration",
    "calibrate_board", "read_reference", "read_dac",
    "iv_sweep", "gate_sweep", "reset_sweep", "read_noise", "retention", "GateCurve",
]

_LAZY = {
    "calibrate_board": "board", "read_reference": "board", "read_dac": "board",
    "iv_sweep": "sweeps", "gate_sweep": "sweeps", "reset_sweep": "sweeps", "read_noise": "sweeps",
    "retention": "sweeps", "GateCurve": "sweeps",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
