"""Backpropagation through time equals finite differences (variable lengths)."""

from __future__ import annotations

import numpy as np
import pytest

from memhw.nn import LSTM, Dense, LastStep, Sequential, SoftwareBackend, cross_entropy, mse, pad, step_mask


def _numeric(loss_fn, w: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        old = w[idx]
        w[idx] = old + eps
        up = loss_fn()
        w[idx] = old - eps
        down = loss_fn()
        w[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


def _batch(rng: np.random.Generator, lengths, features: int):
    return pad([rng.normal(size=(n, features)) for n in lengths])


@pytest.mark.parametrize("bias", [True, False])
def test_regression_every_step(bias: bool) -> None:
    rng = np.random.default_rng(0)
    model = Sequential([LSTM(3, 4, bias=bias), Dense(4, 2, "sigmoid")], seed=1)
    x, lengths = _batch(rng, [5, 2, 4], 3)
    target = rng.random((x.shape[0], x.shape[1], 2))
    mask = step_mask(lengths, x.shape[0])
    backend = SoftwareBackend(model.params)

    def loss() -> float:
        return mse(model.forward(x, lengths, backend), target, mask)[0]

    _, dy = mse(model.forward(x, lengths, backend), target, mask)
    grads = model.backward(dy)
    for key, w in model.params.items():
        np.testing.assert_allclose(grads[key], _numeric(loss, w), rtol=1e-5, atol=1e-8)


def test_classification_last_step_softmax() -> None:
    rng = np.random.default_rng(2)
    model = Sequential([LSTM(3, 5, bias=False), LastStep(), Dense(5, 4, "softmax")], seed=3)
    x, lengths = _batch(rng, [6, 3, 1, 4], 3)
    labels = np.array([0, 3, 1, 2])
    backend = SoftwareBackend(model.params)

    def loss() -> float:
        return cross_entropy(model.forward(x, lengths, backend), labels)[0]

    _, dy = cross_entropy(model.forward(x, lengths, backend), labels)
    grads = model.backward(dy)
    for key, w in model.params.items():
        np.testing.assert_allclose(grads[key], _numeric(loss, w), rtol=1e-5, atol=1e-8)


def test_padding_does_not_change_a_sequence() -> None:
    rng = np.random.default_rng(4)
    model = Sequential([LSTM(2, 3), LastStep(), Dense(3, 2, "linear")], seed=5)
    backend = SoftwareBackend(model.params)
    short = rng.normal(size=(3, 2))
    x, lengths = pad([short, rng.normal(size=(7, 2))])
    alone, one = pad([short])
    np.testing.assert_allclose(model.forward(x, lengths, backend)[0], model.forward(alone, one, backend)[0])


def test_weight_noise_is_resampled_and_seeded() -> None:
    model = Sequential([Dense(3, 2)], seed=0)
    a, b = SoftwareBackend(model.params, 0.1, seed=7), SoftwareBackend(model.params, 0.1, seed=7)
    a.resample(); b.resample()
    np.testing.assert_array_equal(a.weights("dense0"), b.weights("dense0"))
    assert not np.allclose(a.weights("dense0"), model.params["dense0"])
