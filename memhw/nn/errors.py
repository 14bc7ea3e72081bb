"""Errors of :mod:`memhw.nn` (all :class:`memhw.MemhwError` and :class:`ValueError`)."""

from __future__ import annotations

from ..errors import MemhwError

__all__ = ["ModelFileError", "PlacementError", "WeightRangeError"]


class WeightRangeError(MemhwError, ValueError):
    """Weights beyond what a weight map can represent (never clipped silently)."""


class PlacementError(MemhwError, ValueError):
    """The layers do not fit in the arrays given; the message says how many would do."""


class ModelFileError(MemhwError, ValueError):
    """A model file that cannot be read, or weights that do not fit the model."""
