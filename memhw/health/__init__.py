"""Device health per chip: which devices respond, which are stuck, which cannot reach
their range, which are noisy.

A :class:`HealthMap` is built from evidence -- a programming run's
:class:`~memhw.programming.ProgramResult` (:func:`observe_result`), a characterisation
sweep (:func:`observe_sweep`), a fast pulse probe (:func:`memhw.programming.probe`) -- and kept per board serial next to the board's calibration
file (:func:`load_health`, :func:`save_health`, :func:`record`). ``memhw.program``
records every run it makes, so the map of a chip grows with use. See
``docs/lstm.md`` ("Device health").
"""

from .map import STATE_NAMES, DeviceState, HealthMap
from .observe import observe_result, observe_sweep
from .store import ENV_DIR, health_dir, health_path, load_health, record, save_health

__all__ = [
    "ENV_DIR",
    "STATE_NAMES",
    "DeviceState",
    "HealthMap",
    "health_dir",
    "health_path",
    "load_health",
    "observe_result",
    "observe_sweep",
    "record",
    "save_health",
]
