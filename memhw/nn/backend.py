"""Where the matrix products of a network run.

Every layer computes its pre-activations as ``backend.matmul(key, z)`` = ``z @ W[key].T``
and takes the weights it must back-propagate through from ``backend.weights(key)``.
A :class:`SoftwareBackend` does both in floating point; a
:class:`~memhw.nn.crossbar.CrossbarBackend` does the product in a memristor array and
reports the weights it measured, so the network code is the same for both.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Backend", "SoftwareBackend"]


@runtime_checkable
class Backend(Protocol):
    """The one operation a network needs from its hardware."""

    def matmul(self, key: str, z: np.ndarray) -> np.ndarray:
        """``z @ W[key].T`` for inputs ``z`` of shape (n, in) -> (n, out)."""

    def weights(self, key: str) -> np.ndarray:
        """The (out, in) weights :meth:`matmul` realises now (used by backpropagation)."""


class SoftwareBackend:
    """Floating-point products with the network's own weights.

    Parameters
    ----------
    params : mutable mapping key -> (out, in) array
        Usually ``model.params``; read live, so optimiser updates are seen at once.
    weight_noise : float
        Standard deviation (weight units) of Gaussian noise added to every weight on
        each :meth:`resample` -- noise-aware training. 0 gives the exact weights.
    seed : int, optional
        Seed of the noise generator.
    """

    def __init__(self, params: MutableMapping[str, np.ndarray], weight_noise: float = 0.0,
                 seed: int | None = None):
        if weight_noise < 0:
            raise ValueError(f"weight_noise must be >= 0, got {weight_noise}")
        self.params = params
        self.weight_noise = float(weight_noise)
        self._rng = np.random.default_rng(seed)
        self._noise: dict[str, np.ndarray] = {}

    def resample(self) -> None:
        """Draw new weight noise (call once per forward pass when training noise-aware)."""
        if self.weight_noise > 0:
            self._noise = {k: self._rng.normal(0.0, self.weight_noise, w.shape) for k, w in self.params.items()}

    def weights(self, key: str) -> np.ndarray:
        w = self.params[key]
        noise = self._noise.get(key)
        return w if noise is None else w + noise

    def matmul(self, key: str, z: np.ndarray) -> np.ndarray:
        return z @ self.weights(key).T
