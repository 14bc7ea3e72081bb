"""Training, inference and evaluation loops (software, ex-situ and in-situ share them).

A *task* is a list of sequences ``(T_i, F)`` plus targets. What the targets mean
follows the model:

* a model that outputs every step (no ``LastStep``): per-step regression, targets
  ``(T_i, O)`` arrays (or ``(T_i,)`` for one output), loss on every valid step
  (:func:`~memhw.nn.losses.mse`);
* a model that ends with ``LastStep`` and a softmax: classification, integer labels,
  loss on each sequence's last step (:func:`~memhw.nn.losses.cross_entropy`);
* a model that ends with ``LastStep`` and any other activation: regression on the last
  step, targets ``(N,)`` or ``(N, O)`` floats (:func:`~memhw.nn.losses.mse`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .backend import Backend, SoftwareBackend
from .layers import Sequential
from .losses import cross_entropy, mse
from .sequences import pad, step_mask

__all__ = ["History", "evaluate", "fit", "loss_and_grads", "predict", "progress_bar", "task_kind"]

#: Applies a weight change to wherever the weights live (float arrays or a crossbar).
Updater = Callable[[dict[str, np.ndarray]], None]
KINDS = ("sequence", "classification", "regression")


def progress_bar(iterable: Any, desc: str, enabled: bool = True, **kw: Any) -> Any:
    """A tqdm bar that stays quiet in logs: disabled when stderr is not a terminal
    (``disable=None``) and refreshed at most every few seconds."""
    interactive = sys.stderr.isatty()
    return tqdm(iterable, desc=desc, disable=None if enabled else True, leave=False,
                mininterval=0.5 if interactive else 30.0, **kw)


@dataclass
class History:
    """Per-epoch mean training loss."""

    loss: list[float] = field(default_factory=list)


def task_kind(model: Sequential) -> str:
    """"sequence" (per-step regression), "classification" (last step, softmax) or
    "regression" (last step, any other output)."""
    if model.per_step:
        return "sequence"
    return "classification" if model.output_activation == "softmax" else "regression"


def _check_targets(model: Sequential, sequences: Sequence[np.ndarray], targets: Sequence) -> list | np.ndarray:
    """Targets in the form the loss needs; a clear ValueError otherwise."""
    kind = task_kind(model)
    n, out = len(sequences), model.output_size
    if len(targets) != n:
        raise ValueError(f"{len(targets)} targets for {n} sequences")
    if kind == "classification":
        labels = np.asarray(targets)
        if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer)
                                    or np.array_equal(labels, np.round(labels))):
            raise ValueError("a model ending with LastStep and a softmax is a classifier: targets must be one "
                             "integer class label per sequence (for regression use another output activation)")
        labels = labels.astype(int)
        if labels.min(initial=0) < 0 or labels.max(initial=0) >= out:
            raise ValueError(f"class labels must lie in 0..{out - 1} (the softmax has {out} outputs)")
        return labels
    if kind == "regression":
        y = np.asarray(targets, float)
        y = y.reshape(n, -1)
        if y.shape[1] != out:
            raise ValueError(f"last-step regression targets must be (N,) or (N, {out}) floats, got {np.shape(targets)}")
        return y
    ys = []
    for i, (x, t) in enumerate(zip(sequences, targets)):
        t = np.asarray(t, float).reshape(len(t), -1) if np.ndim(t) else np.asarray([[t]], float)
        if t.shape != (len(x), out):
            raise ValueError(f"sequence {i}: a per-step model needs targets of shape (T_i, {out}) = "
                             f"({len(x)}, {out}), got {np.shape(targets[i])}; end the model with LastStep() "
                             "for one target per sequence")
        ys.append(t)
    return ys


def loss_and_grads(model: Sequential, backend: Backend, sequences: Sequence[np.ndarray],
                   targets: Sequence, reduction: str = "mean") -> tuple[float, dict[str, np.ndarray]]:
    """Forward a batch on ``backend``, back-propagate with its weights.

    Parameters
    ----------
    sequences : list of (T_i, F) arrays
    targets : see the module docstring
    reduction : {"mean", "sum"}
        Of the regression loss over steps (:func:`~memhw.nn.losses.mse`).

    Returns
    -------
    loss : float
    grads : dict key -> array
    """
    targets = _check_targets(model, sequences, targets)
    x, lengths = pad(sequences)
    y = model.forward(x, lengths, backend)
    kind = task_kind(model)
    if kind == "classification":
        loss, dy = cross_entropy(y, targets)
    elif kind == "regression":
        loss, dy = mse(y, targets, reduction=reduction)
    else:
        t, _ = pad(targets)
        loss, dy = mse(y, t, step_mask(lengths, x.shape[0]), reduction)
    return loss, model.backward(dy)


def fit(model: Sequential, sequences: Sequence[np.ndarray], targets: Sequence, optimizer: Any, epochs: int, *,
        backend: Backend | None = None, batch_size: int | None = None, updater: Updater | None = None,
        weight_limit: float | None = None, reduction: str = "mean", seed: int = 0, progress: bool = True,
        desc: str = "train") -> History:
    """Train ``model`` by minibatch gradient descent with exact BPTT.

    Parameters
    ----------
    model : Sequential
    sequences, targets : see the module docstring
    optimizer : SGD or RMSprop (anything with ``delta(grads) -> dict``)
    epochs : int
    backend : Backend, optional
        Where forward products run; default a noiseless :class:`SoftwareBackend`.
        A SoftwareBackend with weight noise is resampled before every batch.
    batch_size : int, optional
        Default: all sequences in one batch. Batches are reshuffled every epoch.
    updater : callable(delta), optional
        Applies each weight change; default ``model.apply`` (float weights).
        In-situ training passes an updater's ``apply`` (:func:`~memhw.nn.workflow.train_insitu`).
    weight_limit : float, optional
        Keep float weights within ±limit (e.g. the mapping's range, ``WeightMap().w_max``):
        the constraint of the crossbar, applied after every update.
    reduction : {"mean", "sum"}
        Of a regression loss over steps (the paper's lr 0.01 goes with "sum").
    seed : int
        Shuffling seed.
    progress : bool
        Show a tqdm bar (on a terminal).
    desc : str
        Label of the bar.

    Returns
    -------
    History
    """
    _check_targets(model, sequences, targets)  # fail before the first epoch
    backend = backend or SoftwareBackend(model.params)
    rng = np.random.default_rng(seed)
    n = len(sequences)
    size = n if batch_size is None else int(batch_size)
    history = History()
    bar = progress_bar(range(epochs), desc, progress)
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
    return history


def predict(model: Sequential, sequences: Sequence[np.ndarray], backend: Backend | None = None,
            batch_size: int | None = None, on_board: bool = True) -> list[np.ndarray] | np.ndarray:
    """Run ``model`` on sequences.

    On a backend that can run the whole model on its board (``run_model``: a
    :class:`~memhw.nn.CrossbarBackend` on one protocol 2.1 board, :mod:`memhw.nn.onboard`)
    every time step runs there, one request per batch of sequences; otherwise, or with
    ``on_board=False``, time steps run here, each product in the backend.

    Returns
    -------
    list of (T_i, O) arrays
        For a model that outputs every step.
    ndarray (N, O)
        For a model that ends with ``LastStep``.
    """
    backend = backend or SoftwareBackend(model.params)
    run_model = getattr(backend, "run_model", None) if on_board else None
    if run_model is not None and len(sequences):
        outs = run_model(model, sequences)
        if outs is not None:
            return outs
    size = len(sequences) if batch_size is None else int(batch_size)
    outs: list = []
    for s in range(0, len(sequences), size):
        chunk = sequences[s : s + size]
        x, lengths = pad(chunk)
        y = model.forward(x, lengths, backend)
        outs.extend([y[:n, b] for b, n in enumerate(lengths)] if model.per_step else list(y))
    return outs if model.per_step else np.array(outs)


def evaluate(model: Sequential, sequences: Sequence[np.ndarray], targets: Sequence, backend: Backend | None = None,
             batch_size: int | None = None) -> dict[str, float]:
    """Metrics of ``model`` on a task: ``{"accuracy": ...}`` for a classifier,
    ``{"rmse": ..., "mae": ...}`` otherwise (over every valid step or sequence)."""
    targets = _check_targets(model, sequences, targets)
    y = predict(model, sequences, backend, batch_size)
    if task_kind(model) == "classification":
        return {"accuracy": float(np.mean(np.argmax(y, axis=1) == targets))}
    err = np.concatenate([(p - t).ravel() for p, t in zip(y, targets)]) if model.per_step else (y - targets).ravel()
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
