"""Batches of variable-length sequences: right-padded arrays plus lengths."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pad", "step_mask"]


def pad(sequences: Sequence[np.ndarray], value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Stack variable-length sequences into one time-major padded array.

    Parameters
    ----------
    sequences : sequence of arrays, each (T_b, F)
        One array per sequence; lengths may differ, F may not.
    value : float
        Fill value after the end of a sequence.

    Returns
    -------
    x : ndarray, shape (T, B, F)
        Time-major, right-padded (T = longest sequence).
    lengths : ndarray of int, shape (B,)
    """
    arrays = [np.asarray(s, dtype=float).reshape(len(s), -1) for s in sequences]
    if not arrays:
        raise ValueError("pad: no sequences")
    lengths = np.array([len(a) for a in arrays], dtype=int)
    if lengths.min() < 1:
        raise ValueError("pad: every sequence needs at least one step")
    features = {a.shape[1] for a in arrays}
    if len(features) != 1:
        raise ValueError(f"pad: sequences have different feature counts {sorted(features)}")
    x = np.full((lengths.max(), len(arrays), features.pop()), value, dtype=float)
    for b, a in enumerate(arrays):
        x[: len(a), b] = a
    return x, lengths


def step_mask(lengths: np.ndarray, steps: int) -> np.ndarray:
    """Boolean (T, B) mask, True where step t < lengths[b]."""
    return np.arange(steps)[:, None] < np.asarray(lengths)[None, :]
