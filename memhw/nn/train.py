"""Training and inference loops (software, ex-situ and in-situ share them).

A *task* is a list of sequences plus targets: per-step target arrays for a
regression (loss at every valid step, :func:`~memhw.nn.losses.mse`), or integer
labels for a classification (loss on the last valid step,
:func:`~memhw.nn.losses.cross_entropy`; end the model with ``LastStep``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .backend import Backend, SoftwareBackend
from .layers import Sequential
from .losses import cross_entropy, mse
from .sequences import pad, step_mask

__all__ = ["History", "fit", "predict", "loss_and_grads"]

#: Applies a weight change to wherever the weights live (float arrays or a crossbar).
Updater = Callable[[dict[str, np.ndarray]], None]


@dataclass
class History:
    """Per-epoch mean training loss."""

    loss: list[float] = field(default_factory=list)


def _is_classification(targets: Sequence | np.ndarray) -> bool:
    first = np.asarray(targets[0])
    return first.ndim == 0


def loss_and_grads(model: Sequential, backend: Backend, sequences: Sequence[np.ndarray],
                   targets: Sequence, reduction: str = "mean") -> tuple[float, dict[str, np.ndarray]]:
    """Forward a batch on ``backend``, back-propagate with its weights.

    Parameters
    ----------
    sequences : list of (T_i, F) arrays
    targets : list of (T_i, O) arrays (regression) or int labels (classification)
    reduction : {"mean", "sum"}
        Of the regression loss over steps (:func:`~memhw.nn.losses.mse`).

    Returns
    -------
    loss : float
    grads : dict key -> array
    """
    x, lengths = pad(sequences)
    y = model.forward(x, lengths, backend)
    if _is_classification(targets):
        loss, dy = cross_entropy(y, np.asarray(targets, int))
    else:
        t, _ = pad(targets)
        loss, dy = mse(y, t, step_mask(lengths, x.shape[0]), reduction)
    return loss, model.backward(dy)


def fit(model: Sequential, sequences: Sequence[np.ndarray], targets: Sequence, optimizer, epochs: int, *,
        backend: Backend | None = None, batch_size: int | None = None, updater: Updater | None = None,
        weight_limit: float | None = None, reduction: str = "mean", seed: int = 0, progress: bool = True,
        desc: str = "train") -> History:
    """Train ``model`` by minibatch gradient descent with exact BPTT.

    Parameters
    ----------
    model : Sequential
    sequences, targets : see :func:`loss_and_grads`
    optimizer : SGD or RMSprop (anything with ``delta(grads) -> dict``)
    epochs : int
    backend : Backend, optional
        Where forward products run; default a noiseless :class:`SoftwareBackend`.
        A SoftwareBackend with weight noise is resampled before every batch.
    batch_size : int, optional
        Default: all sequences in one batch. Batches are reshuffled every epoch.
    updater : callable(delta), optional
        Applies each weight change; default ``model.apply`` (float weights).
        In-situ training passes :meth:`memhw.nn.insitu.TwoPulseUpdater.apply`.
    weight_limit : float, optional
        Clip float weights to ±limit after each update (the mapping's range).
    reduction : {"mean", "sum"}
        Of a regression loss over steps (the paper's lr 0.01 goes with "sum").
    seed : int
        Shuffling seed.
    progress : bool
        Show a tqdm bar.
    desc : str
        Label of the bar.

    Returns
    -------
    History
    """
    backend = backend or SoftwareBackend(model.params)
    rng = np.random.default_rng(seed)
    n = len(sequences)
    size = n if batch_size is None else int(batch_size)
    history = History()
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        order = rng.permutation(n) if size < n else np.arange(n)
        losses = []
        for s in range(0, n, size):
            idx = order[s : s + size]
            if isinstance(backend, SoftwareBackend):
                backend.resample()
            loss, grads = loss_and_grads(model, backend, [sequences[i] for i in idx], [targets[i] for i in idx],
                                          reduction)
            delta = optimizer.delta(grads)
            if updater is None:
                model.apply(delta)
                if weight_limit is not None:
                    for w in model.params.values():
                        np.clip(w, -weight_limit, weight_limit, out=w)
            else:
                updater(delta)
            losses.append(loss * len(idx))
        history.loss.append(float(np.sum(losses) / n))
        bar.set_postfix(loss=f"{history.loss[-1]:.4g}")
    return history


def predict(model: Sequential, sequences: Sequence[np.ndarray], backend: Backend | None = None,
            batch_size: int | None = None) -> list[np.ndarray] | np.ndarray:
    """Run ``model`` on sequences.

    Returns
    -------
    list of (T_i, O) arrays
        For a model that outputs every step (regression).
    ndarray (N, O)
        For a model that ends with ``LastStep`` (classification).
    """
    backend = backend or SoftwareBackend(model.params)
    size = len(sequences) if batch_size is None else int(batch_size)
    outs: list = []
    per_step = None
    for s in range(0, len(sequences), size):
        chunk = sequences[s : s + size]
        x, lengths = pad(chunk)
        y = model.forward(x, lengths, backend)
        per_step = y.ndim == 3
        outs.extend([y[:n, b] for b, n in enumerate(lengths)] if per_step else list(y))
    return outs if per_step else np.array(outs)
