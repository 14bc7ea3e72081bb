"""The chip's published SET curve: conductance after a SET pulse vs the gate voltage.

The one place memhw keeps these numbers. Source: the published code of Li et al., *Long
short-term memory networks in memristor crossbar arrays* (Nature Machine Intelligence 1,
49-57, 2019) for this 128 x 64 Ta/HfO2 1T1R array: a SET pulse (2.5 V on the column)
leaves a device at G ~ 98 uS/V * V_gate + 120 uS over the gate window used, 0.7-1.6 V (the
gate sets the compliance current). Below the window the curve falls towards the
transistor threshold; memhw assumes 0 at 0.4 V (a modelling choice, not published).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SLOPE", "INTERCEPT", "WINDOW", "THRESHOLD", "conductance", "SOURCE"]

#: S per V of gate voltage, in WINDOW
SLOPE = 98e-6
#: S at 0 V, of the straight line in WINDOW
INTERCEPT = 120e-6
#: gate window of the published law, V
WINDOW = (0.7, 1.6)
#: gate voltage where the curve reaches 0 (modelling choice), V
THRESHOLD = 0.4
#: how to cite it in messages
SOURCE = "published SET curve ≈ 98 µS/V·Vg + 120 µS (Li et al., Nat. Mach. Intell. 2019)"


def conductance(gate: float | np.ndarray) -> float | np.ndarray:
    """Conductance after one SET pulse at ``gate`` volts, S: the published straight line from
    the bottom of :data:`WINDOW` up (extrapolated above it), linear to 0 at :data:`THRESHOLD`
    below it."""
    g = np.asarray(gate, dtype=float)
    lo = WINDOW[0]
    out = np.where(g >= lo, SLOPE * g + INTERCEPT,
                   (SLOPE * lo + INTERCEPT) * np.clip((g - THRESHOLD) / (lo - THRESHOLD), 0.0, None))
    return float(out) if out.ndim == 0 else out
