"""Monotone response curves learned online from pulse outcomes.

A :class:`MonotoneCurve` maps a control voltage (SET gate, RESET amplitude) to
a response (conductance reached, fraction removed). It starts from a prior,
learns from observed (voltage, response) pairs by binning them and taking
medians, keeps itself monotone, and inverts by interpolation. Devices differ
from the chip-wide curve by a per-device voltage offset, also learned.
"""

from __future__ import annotations

import numpy as np


class MonotoneCurve:
    """An increasing curve y(x) on a fixed grid, learned from observations.

    Parameters
    ----------
    grid : array
        Increasing x values (volts) where the curve is tabulated.
    prior : array
        Prior y values on the grid (must be non-decreasing).
    weight : float
        How many observations a prior point is worth when blending.
    """

    def __init__(self, grid: np.ndarray, prior: np.ndarray, weight: float = 3.0):
        self.grid = np.asarray(grid, dtype=float)
        self.prior = np.maximum.accumulate(np.asarray(prior, dtype=float))
        self.weight = weight
        self._sum = np.zeros_like(self.grid)    # sum of bin medians * counts (running)
        self._n = np.zeros_like(self.grid)
        self.y = self.prior.copy()

    def observe(self, x: np.ndarray, y: np.ndarray) -> None:
        """Add observations; each goes to its nearest grid point."""
        x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            return
        idx = np.clip(np.rint(np.interp(x[ok], self.grid, np.arange(self.grid.size))).astype(int), 0, self.grid.size - 1)
        for i in np.unique(idx):
            vals = y[ok][idx == i]
            self._sum[i] += np.median(vals) * vals.size
            self._n[i] += vals.size
        est = np.where(self._n > 0, self._sum / np.maximum(self._n, 1), self.prior)
        blended = (est * self._n + self.prior * self.weight) / (self._n + self.weight)
        self.y = _isotonic(blended, self._n + self.weight)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.grid, self.y)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """x at which the curve reaches ``y`` (clipped to the grid)."""
        ys = self.y + np.arange(self.y.size) * 1e-12 * max(1.0, float(np.abs(self.y).max()))  # strictly increasing
        return np.interp(y, ys, self.grid)

    def slope(self, x: np.ndarray) -> np.ndarray:
        """Local slope dy/dx at ``x`` (finite difference on the grid, > 0)."""
        d = np.gradient(self.y, self.grid)
        return np.maximum(np.interp(x, self.grid, d), 1e-12 + 1e-3 * float(np.max(d, initial=0)))


def _isotonic(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted pool-adjacent-violators: the non-decreasing fit to ``y``."""
    vals, wts, sizes = [], [], []
    for yi, wi in zip(y.tolist(), w.tolist()):
        vals.append(yi)
        wts.append(wi)
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            v2, w2, s2 = vals.pop(), wts.pop(), sizes.pop()
            v1, w1, s1 = vals.pop(), wts.pop(), sizes.pop()
            vals.append((v1 * w1 + v2 * w2) / (w1 + w2))
            wts.append(w1 + w2)
            sizes.append(s1 + s2)
    return np.repeat(vals, sizes)
