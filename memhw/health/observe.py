"""Evidence about device health: from a programming run, or from a fast probe."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..algorithms.tuning import Reason
from ..board import Board
from .map import HealthMap

__all__ = ["PROBE", "observe_result", "probe"]

#: pulses and thresholds of :func:`probe` (DOMAIN §1: SET 2.5 V at gate 1.0 V reaches
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


def probe(board: Board, mask: np.ndarray | None = None, health: HealthMap | None = None, *,
          form: bool = True) -> HealthMap:
    """Classify devices with one SET, one RESET and a few reads (a few ms of board time).

    Every device of ``mask`` gets a SET to ≈ 218 µS and a full RESET; a device whose two
    levels differ by less than ``PROBE["swing"]`` is stuck (at what it reads). Repeated
    reads at the SET level measure each device's read scatter; devices far noisier than
    the array's median are noisy. Unformed devices (reading ≈ 0) are electroformed first
    (:func:`memhw.programming.form`) when ``form``. Leaves the probed devices RESET
    (low), which is where programming starts anyway.

    Parameters
    ----------
    board : Board
    mask : bool (rows, cols), optional
        Devices to probe (default: all).
    health : HealthMap, optional
        Map to update (default: a new one for ``board``'s serial).
    form : bool
        Electroform devices that read as unformed before probing.

    Returns
    -------
    HealthMap
        ``health`` (or the new map), updated.
    """
    p = PROBE
    m = np.ones(board.shape, bool) if mask is None else np.asarray(mask, bool)
    health = health if health is not None else HealthMap.empty(board.info.serial, board.shape)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return health
    block = slice(int(rows[0]), int(rows[-1]) + 1)
    v_read = min(p["v_read"], board.info.limits.v_read)

    def read(average: int) -> np.ndarray:
        g = np.full(board.shape, np.nan)
        g[block] = board.read_conductance(v_read=v_read, average=average, rows=block)
        return g

    g0 = read(2)
    if form and (m & (g0 < p["unformed"])).any():
        from ..programming import form as electroform

        # the ramp stops a step short of the SET limit: form()'s float ramp can overshoot
        # its own end by an ulp, which the board refuses at exactly the limit
        v_stop = max(2.5, board.info.limits.v_set - 0.1)
        electroform(board, m & (g0 < p["unformed"]), v_start=min(2.5, v_stop), v_stop=v_stop)
        g0 = read(2)
    board.pulse_set(m, v=p["set_v"], gate=p["set_gate"], width=p["width"])
    reads = np.stack([read(1) for _ in range(p["noise_reads"])])
    g1 = reads.mean(axis=0)
    board.pulse_reset(m, v=p["reset_v"], gate=p["reset_gate"], width=p["width"])
    g2 = read(2)
    responsive = m & (g1 - g2 > p["swing"])
    stuck = m & ~responsive
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(responsive, reads.std(axis=0, ddof=1) / np.maximum(g1, 1e-9), np.nan)
    typical = float(np.nanmedian(rel)) if responsive.any() else np.nan
    noisy = responsive & (rel > p["noisy_factor"] * typical)
    return health.observe(stuck=stuck, g_stuck=np.median(np.stack([g0, g1, g2]), axis=0), responsive=responsive,
                          noise=rel, noisy=noisy)
