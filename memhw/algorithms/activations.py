"""The activation functions of on-board network execution (RUN_NETWORK), as an MCU computes them.

Binary32 arithmetic throughout; sigmoid and tanh by linear interpolation in tables of
``activation_table`` segments (protocol constant, 2048) over [-8, 8], saturating outside::

    x_i = -8 + 16 i / N,  i = 0..N              (N = activation_table)
    S[i] = float32(1 / (1 + exp(-x_i))),  T[i] = float32(tanh(x_i))
    f(x) = F[k] + (t - k) * (F[k + 1] - F[k]),  t = (clip(x, -8, 8) + 8) * (N / 16),  k = min(floor(t), N - 1)

every step in float32. Inside [-8, 8] the error is at most 6.3e-6 for tanh and 8.7e-7 for
the sigmoid; beyond it the tables saturate, off by at most 2.3e-7 (tanh) and 3.4e-4
(sigmoid, 1 / (1 + e^8)); :func:`table_error` measures it. Both the emulated board and the C firmware core use these
definitions, so their results agree to the float32 rounding of the table entries.
"""

from __future__ import annotations

import numpy as np

from firmware_protocol import SCHEMA
from firmware_protocol.activation_tables import RANGE, tables

__all__ = ["RANGE", "SEGMENTS", "SIGMOID", "TANH", "sigmoid", "tanh", "table_error"]

#: segments of each table
SEGMENTS: int = SCHEMA.activation_table
#: sigmoid and tanh tables, float32 (the C firmware core's are generated from the same arrays)
SIGMOID, TANH = tables(SEGMENTS)
_SCALE = np.float32(SEGMENTS / (2 * RANGE))


def _interpolate(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    t = (np.clip(np.asarray(x, np.float32), np.float32(-RANGE), np.float32(RANGE)) + np.float32(RANGE)) * _SCALE
    k = np.minimum(np.floor(t), SEGMENTS - 1).astype(np.int64)
    frac = (t - k.astype(np.float32)).astype(np.float32)
    lo = table[k]
    return (lo + frac * (table[k + 1] - lo)).astype(np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The board's sigmoid (float32, table)."""
    return _interpolate(SIGMOID, x)


def tanh(x: np.ndarray) -> np.ndarray:
    """The board's tanh (float32, table)."""
    return _interpolate(TANH, x)


def table_error(n: int = 200_001) -> dict[str, float]:
    """Largest difference between the board's activations and the exact ones over [-10, 10]."""
    x = np.linspace(-10, 10, n)
    return {"sigmoid": float(np.max(np.abs(sigmoid(x) - 1 / (1 + np.exp(-x))))),
            "tanh": float(np.max(np.abs(tanh(x) - np.tanh(x))))}
