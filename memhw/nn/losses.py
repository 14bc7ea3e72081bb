"""Loss functions: value and gradient with respect to the network output."""

from __future__ import annotations

import numpy as np

__all__ = ["cross_entropy", "mse"]


def mse(y: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None,
        reduction: str = "mean") -> tuple[float, np.ndarray]:
    """Squared error over the valid elements.

    Parameters
    ----------
    y, target : ndarray, same shape (..., O)
        Prediction and target (e.g. (T, B, O) for a regression at every step).
    mask : bool ndarray, shape y.shape[:-1], optional
        Valid steps (e.g. :func:`~memhw.nn.sequences.step_mask`); default all.
    reduction : {"mean", "sum"}
        "mean" averages over every valid element; "sum" sums over steps and outputs
        and averages over the sequences of the batch (axis -2), as the paper's code.

    Returns
    -------
    loss : float
    grad : ndarray, shape of ``y``
    """
    m = np.ones(y.shape[:-1], bool) if mask is None else np.asarray(mask, bool)
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    n = max(int(m.sum()) * y.shape[-1], 1) if reduction == "mean" else (y.shape[-2] if y.ndim > 1 else 1)
    diff = np.where(m[..., None], y - target, 0.0)
    return float((diff**2).sum() / n), 2.0 * diff / n


def cross_entropy(p: np.ndarray, labels: np.ndarray, eps: float = 1e-12) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood of integer ``labels`` under probabilities ``p``.

    Parameters
    ----------
    p : ndarray, shape (B, C)
        Class probabilities (a softmax output).
    labels : int ndarray, shape (B,)

    Returns
    -------
    loss : float
    grad : ndarray, shape (B, C)
    """
    labels = np.asarray(labels, int)
    rows = np.arange(len(labels))
    picked = np.maximum(p[rows, labels], eps)
    grad = np.zeros_like(p)
    grad[rows, labels] = -1.0 / (len(labels) * picked)
    return float(-np.log(picked).mean()), grad
