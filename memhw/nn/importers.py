"""Weights of standard frameworks -> memhw layers (numpy only; the frameworks are optional).

memhw's LSTM weight is one matrix ``W`` (4H, I + H + 1) acting on ``[x_t; h_{t-1}; 1]``
with the gate blocks in the order [cell input a (tanh); input i; forget f; output o]
(:class:`~memhw.nn.layers.LSTM`). The frameworks keep separate input and recurrent
matrices and biases, in other gate orders:

* PyTorch ``nn.LSTM``: ``weight_ih_l{n}`` (4H, I), ``weight_hh_l{n}`` (4H, H),
  ``bias_ih_l{n}`` and ``bias_hh_l{n}`` (4H,), gate order i, f, g, o; both biases are
  added to every pre-activation, so memhw's bias column is their sum.
  ``nn.Linear``: ``weight`` (out, in), ``bias`` (out,).
* Keras ``LSTM``: ``kernel`` (I, 4H), ``recurrent_kernel`` (H, 4H), ``bias`` (4H,), gate
  order i, f, c, o (c = the tanh cell input); ``Dense``: ``kernel`` (in, out), ``bias``.
  memhw uses the sigmoid gate activation (Keras' default ``recurrent_activation`` since
  2.3; a model trained with ``hard_sigmoid`` will not match).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ModelFileError
from .layers import LSTM, Dense, LastStep, Layer, Sequential

__all__ = ["KERAS_GATES", "TORCH_GATES", "dense_weights", "from_keras", "from_torch", "lstm_weights"]

#: where memhw's gate blocks [a, i, f, o] sit in each framework's 4H axis
TORCH_GATES = (2, 0, 1, 3)  # torch: i, f, g, o
KERAS_GATES = (2, 0, 1, 3)  # keras: i, f, c, o


def _np(x: Any) -> np.ndarray:
    """A framework tensor or array as a float64 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    elif hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    return np.asarray(x, dtype=float)


def _reorder(rows: np.ndarray, hidden: int, order: Sequence[int]) -> np.ndarray:
    blocks = rows.reshape(4, hidden, *rows.shape[1:])
    return np.concatenate([blocks[g] for g in order])


def lstm_weights(w_input: Any, w_hidden: Any, bias: Any | None, order: Sequence[int]) -> np.ndarray:
    """memhw's LSTM matrix from input weights (4H, I), recurrent weights (4H, H) and a
    bias (4H,) (or None) whose gate blocks are in the framework order ``order``."""
    wi, wh = _np(w_input), _np(w_hidden)
    if wi.ndim != 2 or wh.ndim != 2 or wi.shape[0] != wh.shape[0] or wh.shape[0] != 4 * wh.shape[1]:
        raise ModelFileError(f"LSTM weights of shapes {wi.shape} and {wh.shape} are not (4H, I) and (4H, H)")
    hidden = wh.shape[1]
    parts = [wi, wh] + ([] if bias is None else [_np(bias).reshape(-1, 1)])
    return _reorder(np.concatenate(parts, axis=1), hidden, order)


def dense_weights(weight: Any, bias: Any | None) -> np.ndarray:
    """memhw's Dense matrix [W | b] from weight (out, in) and bias (out,) (or None)."""
    w = _np(weight)
    return w if bias is None else np.concatenate([w, _np(bias).reshape(-1, 1)], axis=1)


def _build(layers: list[Layer], weights: list[np.ndarray]) -> Sequential:
    model = Sequential(layers, seed=0)
    model.load(dict(zip(model.params, weights)))
    return model


def from_torch(state_dict: Mapping[str, Any], *, lstm: str = "lstm", linear: str | None = "fc",
               last_step: bool = True, activation: str = "linear") -> Sequential:
    """A memhw model from the ``state_dict`` of a PyTorch module holding an ``nn.LSTM``
    (``batch_first`` or not; any ``num_layers``; unidirectional) and optionally an
    ``nn.Linear`` applied to its output.

    Parameters
    ----------
    state_dict : mapping name -> tensor or array
    lstm : str
        Prefix of the LSTM's entries (``"lstm"`` for ``lstm.weight_ih_l0``; ``""`` for a
        bare ``nn.LSTM``'s own state dict).
    linear : str or None
        Prefix of the Linear layer's entries, or None for none.
    last_step : bool
        The Linear reads the LSTM's last step only (``out[:, -1]``); else every step.
    activation : {"linear", "sigmoid", "softmax"}
        Applied after the Linear layer (PyTorch keeps it outside the module).
    """
    pre = f"{lstm}." if lstm else ""
    layers: list[Layer] = []
    weights: list[np.ndarray] = []
    n = 0
    while f"{pre}weight_ih_l{n}" in state_dict:
        if f"{pre}weight_ih_l{n}_reverse" in state_dict:
            raise ModelFileError("bidirectional LSTMs are not supported")
        b_ih, b_hh = state_dict.get(f"{pre}bias_ih_l{n}"), state_dict.get(f"{pre}bias_hh_l{n}")
        bias = None if b_ih is None else _np(b_ih) + _np(b_hh)
        w = lstm_weights(state_dict[f"{pre}weight_ih_l{n}"], state_dict[f"{pre}weight_hh_l{n}"], bias, TORCH_GATES)
        hidden = w.shape[0] // 4
        layers.append(LSTM(w.shape[1] - hidden - int(bias is not None), hidden, bias=bias is not None))
        weights.append(w)
        n += 1
    if n == 0:
        raise ModelFileError(f"no '{pre}weight_ih_l0' in the state dict (keys: {', '.join(list(state_dict)[:8])})")
    if f"{pre}weight_hr_l0" in state_dict:
        raise ModelFileError("LSTMs with projections (proj_size) are not supported")
    if last_step:
        layers.append(LastStep())
    if linear is not None:
        w = dense_weights(state_dict[f"{linear}.weight"], state_dict.get(f"{linear}.bias"))
        has_bias = f"{linear}.bias" in state_dict
        layers.append(Dense(w.shape[1] - int(has_bias), w.shape[0], activation, bias=has_bias))
        weights.append(w)
    return _build(layers, weights)


def from_keras(weights: Sequence[Any], *, last_step: bool = True, activation: str = "linear") -> Sequential:
    """A memhw model from Keras weights in layer order (``model.get_weights()`` of a
    Sequential of ``LSTM`` layers and optionally one final ``Dense``).

    An LSTM contributes ``kernel (I, 4H), recurrent_kernel (H, 4H)`` and, with
    ``use_bias``, ``bias (4H,)``; a Dense ``kernel (in, out)`` and optionally
    ``bias (out,)``.

    Parameters
    ----------
    weights : sequence of arrays
    last_step : bool
        The last LSTM has ``return_sequences=False`` (the Dense reads the last step).
    activation : {"linear", "sigmoid", "softmax"}
        The Dense layer's activation.
    """
    arrays = [_np(w) for w in weights]
    layers: list[Layer] = []
    out: list[np.ndarray] = []
    i = 0
    while i + 1 < len(arrays) and arrays[i].ndim == 2 and arrays[i + 1].ndim == 2 \
            and arrays[i + 1].shape[1] == 4 * arrays[i + 1].shape[0]:
        kernel, recurrent = arrays[i], arrays[i + 1]
        has_bias = i + 2 < len(arrays) and arrays[i + 2].shape == (recurrent.shape[1],)
        bias = arrays[i + 2] if has_bias else None
        w = lstm_weights(kernel.T, recurrent.T, bias, KERAS_GATES)
        layers.append(LSTM(kernel.shape[0], recurrent.shape[0], bias=has_bias))
        out.append(w)
        i += 3 if has_bias else 2
    if not layers:
        raise ModelFileError("no Keras LSTM weights (kernel (I, 4H), recurrent_kernel (H, 4H)) at the start")
    if last_step:
        layers.append(LastStep())
    if i < len(arrays):
        kernel = arrays[i]
        bias = arrays[i + 1] if i + 1 < len(arrays) else None
        if kernel.ndim != 2 or (bias is not None and bias.shape != (kernel.shape[1],)) or i + 2 < len(arrays):
            raise ModelFileError("after the LSTMs only one Dense (kernel (in, out), bias (out,)) is supported")
        layers.append(Dense(kernel.shape[0], kernel.shape[1], activation, bias=bias is not None))
        out.append(dense_weights(kernel.T, bias))
    return _build(layers, out)
