"""A fast pulse probe of device health (one SET, one RESET, a few reads)."""

from __future__ import annotations

import numpy as np

from ..board import Board
from ..health.map import HealthMap
from ..health.observe import PROBE
from .forming import form as electroform

__all__ = ["probe"]


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
