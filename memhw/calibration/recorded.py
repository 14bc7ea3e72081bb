"""Sweep results rebuilt from session files: what ``memhw report`` draws and
``memhw program --prior SWEEP.h5`` starts from."""

from __future__ import annotations

from typing import Any

import numpy as np

from .sweeps import GateCurve, IVResult, NoiseResult, ResetCurve, RetentionResult

__all__ = ["result_from_run", "gate_curve_from_file"]

#: the datasets each kind of sweep run records, in the order its result class takes them
_RECORDED = {
    "gate": ("gates", "conductance", "devices"),
    "reset": ("amplitudes", "conductance", "devices", "before"),
    "iv": ("v", "current", "devices"),
    "noise": ("reads",),
    "retention": ("times", "conductance"),
}
_RESULTS = {"gate": GateCurve, "reset": ResetCurve, "iv": IVResult, "noise": NoiseResult,
            "retention": RetentionResult}
#: run attributes that are no sweep parameter
_NOT_PARAMS = {"kind", "index", "status", "start_time", "end_time", "error", "sweep", "command_line",
               "software_version"}


def result_from_run(run: Any) -> Any:
    """Rebuild the result of a ``sweep`` run of a session file (a :class:`GateCurve`,
    :class:`ResetCurve`, ...) from its datasets and attributes; None if the run is not a
    sweep or lacks data (e.g. it was interrupted)."""
    kind = str(run.attrs.get("sweep", ""))
    names = _RECORDED.get(kind)
    if run.kind != "sweep" or names is None or not set(names) <= set(run.names()):
        return None
    data = [run.read(n) for n in names]
    params = {k: v for k, v in run.attrs.items() if k not in _NOT_PARAMS and not k.startswith("board_")}
    if kind == "iv":
        return IVResult(*data, params=params)
    rows = np.arange(int(run.attrs.get("row_start", 0)), int(run.attrs.get("row_stop", 0)))
    return _RESULTS[kind](*data, rows, params=params)


def gate_curve_from_file(path: Any) -> GateCurve:
    """The newest gate sweep recorded in a session file (``memhw sweep gate --out FILE``).

    Raises
    ------
    MemhwError
        The file is not a session file or holds no complete gate sweep.
    """
    from ..errors import MemhwError
    from ..session import load

    s = load(path)
    try:
        for run in reversed(s.runs("sweep")):
            if run.attrs.get("sweep") == "gate" and (curve := result_from_run(run)) is not None:
                return curve
    finally:
        s.close()
    raise MemhwError(f"{path}: no gate sweep in it (record one with `memhw sweep gate --out {path}`)")
