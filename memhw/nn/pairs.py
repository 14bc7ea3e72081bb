"""Targets of a differential pair when its devices have limits (stuck, capped).

A weight is the *difference* of two devices, ``d = G+ − G−`` (siemens), so the pair's
common mode is free: a G+ stuck high is matched by raising G−, a G+ that cannot reach
its target by lowering G−. :func:`pair_targets` picks, for every pair, the targets
closest to the weight map's preferred levels that respect both devices' reachable
ranges, and says what part of ``d`` no choice can represent (the residual, which a
repair pair elsewhere must carry).
"""

from __future__ import annotations

import numpy as np

__all__ = ["pair_targets", "representable"]


def representable(d: np.ndarray, lo_p: np.ndarray, hi_p: np.ndarray, lo_m: np.ndarray,
                  hi_m: np.ndarray) -> np.ndarray:
    """The difference closest to ``d`` that devices with ranges ``[lo, hi]`` can hold."""
    return np.clip(d, lo_p - hi_m, hi_p - lo_m)


def pair_targets(d: np.ndarray, lo_p: np.ndarray, hi_p: np.ndarray, lo_m: np.ndarray, hi_m: np.ndarray,
                 common: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets ``(G+, G−)`` with ``G+ − G− = d`` wherever the ranges allow.

    Parameters
    ----------
    d : array
        Wanted differences, S.
    lo_p, hi_p, lo_m, hi_m : arrays (broadcast with ``d``)
        Reachable range of each G+ and G− device, S (``lo == hi`` for a stuck device).
    common : array or float
        Preferred level of the lower device of each pair, S (one-sided map: its base
        conductance); moved only as far as the ranges require.

    Returns
    -------
    g_plus, g_minus : arrays
        Targets, S, within the ranges.
    residual : array
        ``d`` minus the difference the targets represent (0 where feasible).
    """
    d = np.asarray(d, float)
    held = representable(d, lo_p, hi_p, lo_m, hi_m)
    up, down = np.maximum(held, 0.0), np.maximum(-held, 0.0)
    c_lo = np.maximum(lo_p - up, lo_m - down)
    c_hi = np.minimum(hi_p - up, hi_m - down)
    c = np.clip(common, c_lo, np.maximum(c_lo, c_hi))
    return c + up, c + down, d - held
