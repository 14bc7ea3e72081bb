"""Network layers with exact backpropagation through time.

Sequences are time-major ``(T, B, F)`` arrays, right-padded, with ``lengths`` (B,).
After the end of a sequence the LSTM state is frozen, so the last row of its output
holds every sequence's state at its own last valid step (see :class:`LastStep`).

Each weighted layer owns one matrix ``W`` of shape (out, in + bias) under a key that
:class:`Sequential` assigns; the products ``z @ W.T`` run on a
:class:`~memhw.nn.backend.Backend`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .backend import Backend

__all__ = ["ACTIVATIONS", "LSTM", "Dense", "LastStep", "Layer", "Sequential"]

ACTIVATIONS = ("sigmoid", "softmax", "linear")


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


class Layer:
    """Base class: ``forward`` caches what ``backward`` needs.

    Attributes
    ----------
    key : str
        Name of the layer's weight matrix (set by :class:`Sequential`); "" if none.
    W : ndarray or None
        Weights (out, in + bias), or None for a layer without weights.
    """

    key: str = ""
    name: str | None = None
    W: np.ndarray | None = None

    def config(self) -> dict:
        """Constructor arguments as plain data (for saving models)."""
        raise NotImplementedError

    def init(self, rng: np.random.Generator) -> None:
        """Draw initial weights."""

    def forward(self, x: np.ndarray, lengths: np.ndarray, backend: Backend) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Gradient of the loss w.r.t. the input and (if any) the weights."""
        raise NotImplementedError


class LSTM(Layer):
    """Long short-term memory layer (DOMAIN §3).

    Gate order along the 4H outputs: cell input a (tanh), input i, forget f, output o
    (sigmoids); ``c_t = i⊙a + f⊙c_{t-1}``, ``h_t = o⊙tanh(c_t)``. The product input is
    ``z_t = [x_t; h_{t-1}; 1]`` (the 1 only with ``bias``), so ``W`` is (4H, I + H + b).

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool
        Append a constant-1 input (a bias row on the crossbar).
    name : str, optional
        Key of the weight matrix (default ``lstm<n>``, n counting LSTM layers).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, name: str | None = None):
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.bias = bool(bias)
        self.name = name
        self.W = np.zeros((4 * self.hidden_size, self.input_size + self.hidden_size + int(self.bias)))

    @property
    def out_features(self) -> int:
        return self.hidden_size

    def config(self) -> dict:
        return {"type": "LSTM", "input_size": self.input_size, "hidden_size": self.hidden_size, "bias": self.bias,
                "name": self.key or self.name}

    def init(self, rng: np.random.Generator) -> None:
        bound = 1.0 / np.sqrt(self.hidden_size)
        self.W[...] = rng.uniform(-bound, bound, self.W.shape)

    def forward(self, x: np.ndarray, lengths: np.ndarray, backend: Backend) -> np.ndarray:
        """x (T, B, I) -> h (T, B, H)."""
        T, B, _ = x.shape
        H = self.hidden_size
        h = np.zeros((B, H))
        c = np.zeros((B, H))
        ones = np.ones((B, int(self.bias)))
        cache = []
        out = np.empty((T, B, H))
        for t in range(T):
            z = np.concatenate([x[t], h, ones], axis=1)
            a = backend.matmul(self.key, z)
            g, i, f, o = np.tanh(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
            c_new = i * g + f * c
            tc = np.tanh(c_new)
            m = (t < lengths)[:, None]
            cache.append((z, g, i, f, o, c, tc, m))
            c = np.where(m, c_new, c)
            h = np.where(m, o * tc, h)
            out[t] = h
        self._cache = cache
        self._w = backend.weights(self.key)
        return out

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        H, I = self.hidden_size, self.input_size
        W = self._w
        dW = np.zeros_like(W)
        T, B, _ = dy.shape
        dx = np.empty((T, B, I))
        dh_next = np.zeros((B, H))
        dc_next = np.zeros((B, H))
        for t in range(T - 1, -1, -1):
            z, g, i, f, o, c_prev, tc, m = self._cache[t]
            dh = dy[t] + dh_next
            dhn, dcn = m * dh, m * dc_next
            do = dhn * tc
            dcn = dcn + dhn * o * (1.0 - tc**2)
            da = np.concatenate([dcn * i * (1.0 - g**2), dcn * g * i * (1.0 - i),
                                 dcn * c_prev * f * (1.0 - f), do * o * (1.0 - o)], axis=1)
            dz = da @ W
            dW += da.T @ z
            dx[t] = dz[:, :I]
            dh_next = dz[:, I:I + H] + (~m) * dh
            dc_next = dcn * f + (~m) * dc_next
        return dx, dW


class Dense(Layer):
    """Fully connected layer ``y = act(W [x; 1])`` on the last axis.

    Parameters
    ----------
    in_features, out_features : int
    activation : {"sigmoid", "softmax", "linear"}
    bias : bool
    name : str, optional
        Key of the weight matrix (default ``dense<n>``, n counting Dense layers).
    """

    def __init__(self, in_features: int, out_features: int, activation: str = "linear", bias: bool = True,
                 name: str | None = None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.activation = activation
        self.bias = bool(bias)
        self.name = name
        self.W = np.zeros((self.out_features, self.in_features + int(self.bias)))

    def config(self) -> dict:
        return {"type": "Dense", "in_features": self.in_features, "out_features": self.out_features,
                "activation": self.activation, "bias": self.bias, "name": self.key or self.name}

    def init(self, rng: np.random.Generator) -> None:
        bound = 1.0 / np.sqrt(self.in_features)
        self.W[...] = rng.uniform(-bound, bound, self.W.shape)

    def forward(self, x: np.ndarray, lengths: np.ndarray, backend: Backend) -> np.ndarray:
        """x (..., in) -> y (..., out)."""
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features)
        z = np.concatenate([flat, np.ones((len(flat), int(self.bias)))], axis=1)
        a = backend.matmul(self.key, z)
        if self.activation == "sigmoid":
            y = _sigmoid(a)
        elif self.activation == "softmax":
            e = np.exp(a - a.max(axis=1, keepdims=True))
            y = e / e.sum(axis=1, keepdims=True)
        else:
            y = a
        self._cache = (z, y, lead)
        self._w = backend.weights(self.key)
        return y.reshape(*lead, self.out_features)

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z, y, lead = self._cache
        d = dy.reshape(-1, self.out_features)
        if self.activation == "sigmoid":
            da = d * y * (1.0 - y)
        elif self.activation == "softmax":
            da = y * (d - (d * y).sum(axis=1, keepdims=True))
        else:
            da = d
        dx = (da @ self._w)[:, : self.in_features]
        return dx.reshape(*lead, self.in_features), da.T @ z


class LastStep(Layer):
    """(T, B, F) -> (B, F): each sequence's output at its last valid step.

    Relies on the LSTM freezing its state after a sequence ends, so this is row T-1.
    """

    def forward(self, x: np.ndarray, lengths: np.ndarray, backend: Backend) -> np.ndarray:
        self._shape = x.shape
        return x[-1]

    def config(self) -> dict:
        return {"type": "LastStep"}

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, None]:
        dx = np.zeros(self._shape)
        dx[-1] = dy
        return dx, None


class Sequential:
    """A stack of layers; names weight matrices by the layer's ``name`` or
    ``"<type><n>"``, n counting the layers of that type (``lstm0``, ``lstm1``, ``dense0``),
    so keys do not move when a weightless layer such as :class:`LastStep` is added.

    Parameters
    ----------
    layers : sequence of Layer
    seed : int, optional
        Seed of the weight initialisation.

    Attributes
    ----------
    params : dict key -> ndarray
        The layers' weight arrays themselves (updated in place).
    """

    def __init__(self, layers: Sequence[Layer], seed: int | None = None):
        self.layers = list(layers)
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        counts: dict[str, int] = {}
        for layer in self.layers:
            if layer.W is not None:
                kind = type(layer).__name__.lower()
                key = getattr(layer, "name", None) or f"{kind}{counts.get(kind, 0)}"
                counts[kind] = counts.get(kind, 0) + 1
                if key in self.params:
                    raise ValueError(f"two layers named {key!r}")
                layer.key = key
                layer.init(rng)
                self.params[layer.key] = layer.W

    @property
    def per_step(self) -> bool:
        """True if the model outputs every time step (no :class:`LastStep`)."""
        return not any(isinstance(layer, LastStep) for layer in self.layers)

    @property
    def output_size(self) -> int:
        """Features of the model's output."""
        return next(layer.out_features for layer in reversed(self.layers) if layer.W is not None)

    @property
    def output_activation(self) -> str:
        """Activation of the last Dense layer ("linear" if the model ends with an LSTM)."""
        last = next(layer for layer in reversed(self.layers) if layer.W is not None)
        return getattr(last, "activation", "linear")

    def config(self) -> list[dict]:
        """The architecture as plain data (:func:`~memhw.nn.io.save_model`)."""
        return [layer.config() for layer in self.layers]

    def forward(self, x: np.ndarray, lengths: np.ndarray, backend: Backend) -> np.ndarray:
        """Run the stack on a padded batch (T, B, F) with ``lengths`` (B,)."""
        lengths = np.asarray(lengths, int)
        for layer in self.layers:
            x = layer.forward(x, lengths, backend)
        return x

    def backward(self, dy: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients (key -> array) of the loss whose output gradient is ``dy``."""
        grads = {}
        for layer in reversed(self.layers):
            dy, dW = layer.backward(dy)
            if dW is not None:
                grads[layer.key] = dW
        return grads

    def apply(self, delta: dict[str, np.ndarray]) -> None:
        """``W += ΔW`` in place for every key of ``delta``."""
        for key, d in delta.items():
            self.params[key] += d

    def load(self, params: dict[str, np.ndarray]) -> None:
        """Copy weights into the layers' arrays (in place).

        Raises
        ------
        ValueError
            An unknown key or a weight matrix of another shape.
        """
        for key, w in params.items():
            if key not in self.params:
                raise ValueError(f"no layer {key!r} in the model (layers: {', '.join(self.params)})")
            w = np.asarray(w, float)
            if w.shape != self.params[key].shape:
                raise ValueError(f"{key}: weights of shape {w.shape}, the layer needs {self.params[key].shape}")
            self.params[key][...] = w

    def copy_params(self) -> dict[str, np.ndarray]:
        """A snapshot of the weights."""
        return {k: w.copy() for k, w in self.params.items()}
