"""Electroforming: the first, higher-voltage SET a fresh device needs.

A fresh (unformed) device conducts almost nothing and does not switch at the
normal SET amplitude. :func:`form` ramps the SET amplitude of the unformed
devices in bounded steps, each pulse through a compliance gate, and stops per
device as soon as its conductance shows it formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..board import Board
from ..errors import LimitError


@dataclass
class FormingResult:
    """Outcome of :func:`form`.

    Attributes
    ----------
    candidates : bool (rows, cols)
        Devices that read as unformed before forming.
    formed : bool (rows, cols)
        Candidates that formed.
    voltage : (rows, cols) array
        Amplitude of the pulse that formed each device, V (NaN if none).
    pulses : int (rows, cols)
        Forming pulses per device.
    conductance : (rows, cols) array
        Conductance map after forming, S.
    """

    candidates: np.ndarray
    formed: np.ndarray
    voltage: np.ndarray
    pulses: np.ndarray
    conductance: np.ndarray

    @property
    def failed(self) -> np.ndarray:
        """Candidates that did not form within the ramp."""
        return self.candidates & ~self.formed

    def __str__(self) -> str:
        n, f = int(self.candidates.sum()), int(self.formed.sum())
        v = self.voltage[self.formed]
        vs = f", at {np.median(v):.2f} V median (max {v.max():.2f} V)" if v.size else ""
        return f"forming: {f}/{n} unformed devices formed{vs}; {int(self.pulses.sum())} pulses"


def form(board: Board, mask: np.ndarray | None = None, *, threshold: float = 0.5e-6, v_start: float = 2.5,
         v_stop: float = 3.5, v_step: float = 0.1, gate: float = 1.0, width: float = 1e-6,
         pulses_per_step: int = 1) -> FormingResult:
    """Electroform the devices of ``mask`` that read below ``threshold``.

    Parameters
    ----------
    board : Board
    mask : bool (rows, cols), optional
        Devices to consider (default: all).
    threshold : float
        A device reading below this conductance is unformed, S; above, formed.
    v_start, v_stop, v_step : float
        SET amplitude ramp, V; ``v_stop`` must be within the board's SET limit.
    gate : float
        Gate voltage during forming: the compliance that keeps the fresh
        filament from running away, V.
    width : float
        Pulse width, s.
    pulses_per_step : int
        Pulses at each amplitude before stepping up.

    Returns
    -------
    FormingResult
    """
    lim = board.info.limits
    if not 0 < v_start <= v_stop <= lim.v_set:
        raise LimitError(f"forming ramp {v_start:g}..{v_stop:g} V must lie within (0, {lim.v_set:g}] V")
    if v_step <= 0 or pulses_per_step < 1:
        raise LimitError("v_step must be > 0 and pulses_per_step >= 1")
    m = np.ones(board.shape, bool) if mask is None else np.asarray(mask, bool)
    g = board.read_conductance(average=4)
    candidates = m & (g < threshold)
    pending = candidates.copy()
    voltage = np.full(board.shape, np.nan)
    pulses = np.zeros(board.shape, np.int32)
    for v in np.arange(v_start, v_stop + 1e-9, v_step):
        for _ in range(pulses_per_step):
            if not pending.any():
                break
            board.pulse_set(pending, v=float(v), gate=gate, width=width)
            pulses += pending
            g = board.read_conductance(average=4)
            done = pending & (g >= threshold)
            voltage[done] = v
            pending &= ~done
    return FormingResult(candidates, candidates & ~pending, voltage, pulses, g)
