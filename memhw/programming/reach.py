"""What a chip can be programmed to: the highest conductance SET reaches within the limits.

SET leaves a device at a conductance set by its gate (compliance), so the highest target
a write-and-verify run can reach is the SET curve at the largest gate the run may use:
the tuning configuration's ``gate_max``, capped by the board's gate limit. The curve is
this chip's measured one (a gate sweep, :func:`memhw.calibration.gate_sweep`) when given,
else the published one (:mod:`memhw.algorithms.set_curve`). It is a chip-wide median:
single devices vary by some percent, and wire resistance lowers what a densely programmed
array reads back.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..algorithms import set_curve
from ..algorithms.tuning import TuningConfig
from ..units import US

__all__ = ["Reach", "set_reach"]


class Reach(NamedTuple):
    """The highest conductance SET reaches (S), at which gate (V), from which curve."""

    high: float
    gate: float
    source: str

    def __str__(self) -> str:
        return f"≈ {self.high * 1e6:.0f} {US} at most (SET at the largest gate, {self.gate:g} V; {self.source})"


def set_reach(limits: Any, config: TuningConfig, prior: Any = None, prior_source: str = "measured gate sweep"
              ) -> Reach:
    """The highest conductance a run with ``config`` reaches on a board with ``limits``.

    Parameters
    ----------
    limits : memhw.info.Limits
        The limits in force (``board.limits``): ``v_gate`` caps the gate.
    config : TuningConfig
        ``gate_max`` is the largest gate the loop uses.
    prior : gate sweep result or (gates, conductances), optional
        This chip's measured curve (chip-wide median used); default the published one.
    prior_source : str
        How to name the measured curve in :class:`Reach`.
    """
    gate = float(min(config.gate_max, limits.v_gate))
    if prior is None:
        return Reach(float(set_curve.conductance(gate)), gate, set_curve.SOURCE)
    gates, g = (prior.gates, prior.conductance) if hasattr(prior, "gates") else prior
    gates, g = np.asarray(gates, float), np.asarray(g, float)
    chip = np.nanmedian(g, axis=1) if g.ndim == 2 else g
    usable = gates <= gate + 1e-9
    if not usable.any():
        return Reach(float(set_curve.conductance(gate)), gate, set_curve.SOURCE)
    return Reach(float(np.nanmax(chip[usable])), gate, prior_source)
