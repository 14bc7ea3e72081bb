"""Optimisers that return weight changes instead of applying them.

Returning ΔW lets the same optimiser drive float weights (``W += ΔW``) and a crossbar
(ΔW becomes programming pulses, :mod:`memhw.nn.insitu`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["SGD", "RMSprop"]


class SGD:
    """Stochastic gradient descent with (classical) momentum.

    ``v <- momentum * v - lr * g``; ``ΔW = v``.

    Parameters
    ----------
    lr : float
        Learning rate.
    momentum : float
        0 for plain SGD.
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.9):
        self.lr = float(lr)
        self.momentum = float(momentum)
        self._velocity: dict[str, np.ndarray] = {}

    def delta(self, grads: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Weight changes for gradients ``grads`` (key -> array)."""
        out = {}
        for key, g in grads.items():
            v = self._velocity.get(key, np.zeros_like(g))
            v = self.momentum * v - self.lr * g
            self._velocity[key] = v
            out[key] = v.copy()
        return out


class RMSprop:
    """RMSprop: ``s <- rho s + (1 - rho) g²``; ``ΔW = -lr g / (sqrt(s) + eps)``.

    Parameters
    ----------
    lr : float
    rho : float
        Decay of the squared-gradient average.
    eps : float
    """

    def __init__(self, lr: float = 0.01, rho: float = 0.9, eps: float = 1e-8):
        self.lr = float(lr)
        self.rho = float(rho)
        self.eps = float(eps)
        self._square: dict[str, np.ndarray] = {}

    def delta(self, grads: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Weight changes for gradients ``grads`` (key -> array)."""
        out = {}
        for key, g in grads.items():
            s = self.rho * self._square.get(key, np.zeros_like(g)) + (1 - self.rho) * g**2
            self._square[key] = s
            out[key] = -self.lr * g / (np.sqrt(s) + self.eps)
        return out
