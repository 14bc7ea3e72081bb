"""Argument checks at the Board's boundary: one line, a :class:`~memhw.errors.LimitError`,
nothing sent."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import LimitError

__all__ = ["as_float", "check_finite", "selected", "check_range", "check_int", "compact", "rows_text"]

ArrayLike = Any


def as_float(name: str, value: ArrayLike, check: bool = True) -> np.ndarray:
    """Numbers (scalars or arrays) as floats; strings, booleans and objects refused."""
    try:
        raw = np.asarray(value)
    except Exception:  # noqa: BLE001 - ragged sequences and such
        raise LimitError(f"{name}: not a number or array of numbers: {value!r}") from None
    if raw.dtype.kind not in "iuf":
        raise LimitError(f"{name}: expected a number or an array of numbers, got {type(value).__name__} "
                         f"{value!r:.60}")
    arr = raw.astype(float)
    if check:
        check_finite(name, arr)
    return arr


def check_finite(name: str, arr: np.ndarray) -> None:
    if not np.all(np.isfinite(arr)):
        raise LimitError(f"{name}: contains NaN or infinity")


def selected(name: str, value: ArrayLike, mask: np.ndarray) -> np.ndarray:
    """The values of a scalar or per-device array at the selected devices
    (values elsewhere are ignored, NaN included)."""
    arr = as_float(name, value, check=False)
    try:
        out = np.broadcast_to(arr, mask.shape)[mask]
    except ValueError:
        raise LimitError(f"{name}: shape {arr.shape} does not fit {mask.shape}") from None
    check_finite(name, out)
    return out


def check_range(name: str, arr: np.ndarray, lo: float, hi: float, unit: str) -> None:
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr.min() if arr.min() < lo else arr.max()
        raise LimitError(f"{name}: {bad:g} {unit} is outside the limit [{lo:g}, {hi:g}] {unit}")


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise LimitError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return int(value)


def compact(codes: np.ndarray) -> np.ndarray:
    """Per-device codes -> one broadcast code when they are all equal."""
    return codes[:1] if codes.size and np.all(codes == codes[0]) else codes


def rows_text(rows: np.ndarray) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    if rows.size == 0:
        return "none"
    parts, start, prev = [], int(rows[0]), int(rows[0])
    for r in map(int, rows[1:]):
        if r != prev + 1:
            parts.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = r
        prev = r
    parts.append(f"{start}-{prev}" if prev > start else f"{start}")
    return ", ".join(parts)
