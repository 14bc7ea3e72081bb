"""Evidence about device health: from a programming run, a characterisation sweep, or
the fast probe of :func:`memhw.programming.probe`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..algorithms.tuning import Reason
from .map import HealthMap

__all__ = ["PROBE", "observe_result", "observe_sweep"]

#: pulses and thresholds of :func:`memhw.programming.probe` (DOMAIN §1: SET 2.5 V at gate 1.0 V reaches
#: ≈ 218 µS; RESET 1.7 V at gate 5 V is a ~full reset; read at 0.2 V)
PROBE = {
    "set_v": 2.5, "set_gate": 1.0, "reset_v": 1.7, "reset_gate": 5.0, "width": 1e-6, "v_read": 0.2,
    # a device whose SET level lies less than this above its RESET level does not respond, S
    "swing": 20e-6,
    # reads below this are unformed devices (formed first when ``form=True``), S
    "unformed": 0.5e-6,
    # reads at the SET level; a device scattering more than ``noisy_factor`` x the median is noisy
    "noise_reads": 8, "noisy_factor": 2.0,
}


def observe_result(health: HealthMap, result: Any) -> HealthMap:
    """Fold a :class:`~memhw.programming.ProgramResult` into ``health`` (in place).

    Devices given up as stuck become stuck (at the conductance they read); devices that
    stopped below a target they could not reach ("target too high") or above one
    ("target too low") get that conductance as their range limit; converged devices are
    responsive and widen a known limit they went beyond. Devices that ran out of pulses
    or rounds are left as they were.
    """
    m = np.asarray(result.mask, bool)
    reasons = np.asarray(result.reasons)
    g = np.asarray(result.achieved, float)
    stuck = m & (reasons == Reason.STUCK)
    conv = m & (reasons == Reason.CONVERGED)
    high = m & (reasons == Reason.TOO_HIGH)
    low = m & (reasons == Reason.TOO_LOW)
    return health.observe(stuck=stuck, g_stuck=g, responsive=conv | high | low, reached=np.where(conv, g, np.nan),
                          hi_fail=np.where(high, g, np.nan), lo_fail=np.where(low, g, np.nan))


def observe_sweep(health: HealthMap, sweep: Any) -> HealthMap:
    """Fold a characterisation sweep into ``health`` (in place): a gate sweep
    (:func:`memhw.calibration.sweeps.gate_sweep`) or anything with ``devices`` (n, rows,
    cols; NaN where not swept) and ``rows`` (the row indices).

    A swept device whose conductance spans less than ``PROBE["swing"]`` over the sweep is
    stuck (at its median); one whose highest conductance stays below 80 % of the array's
    median highest is limited there; the others are responsive.
    """
    devices = np.asarray(sweep.devices, float)
    rows = np.asarray(sweep.rows)
    swept = np.zeros(health.shape, bool)
    swept[rows] = np.isfinite(devices).all(axis=0)

    def full(values: np.ndarray) -> np.ndarray:
        out = np.full(health.shape, np.nan)
        out[rows] = values
        return np.where(swept, out, np.nan)

    safe = np.where(np.isfinite(devices), devices, 0.0)  # unswept devices are masked out by full()
    top, bottom, mid = (full(f(safe, axis=0)) for f in (np.max, np.min, np.median))
    stuck = swept & (top - bottom < PROBE["swing"])
    alive = swept & ~stuck
    typical = float(np.median(top[alive])) if alive.any() else np.nan
    low = alive & (top < 0.8 * typical)
    return health.observe(stuck=stuck, g_stuck=mid, responsive=alive, hi_fail=np.where(low, top, np.nan))
