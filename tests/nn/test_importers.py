"""Importers of PyTorch and Keras LSTM/Dense weights: gate order and bias conventions.

The reference implementations below are written from each framework's documented LSTM
equations (PyTorch: gates i, f, g, o, two biases; Keras: gates i, f, c, o, kernel
(I, 4H)), independently of memhw's code; a test against the real PyTorch runs where it
is installed."""

from __future__ import annotations

import numpy as np
import pytest

from memhw.nn import ModelFileError, SoftwareBackend, from_keras, from_torch, pad


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def torch_lstm_reference(x: np.ndarray, w_ih, w_hh, b_ih, b_hh) -> np.ndarray:
    """PyTorch nn.LSTM (docs): i,f,g,o = split(W_ih x + b_ih + W_hh h + b_hh); x (T, B, I)."""
    H = w_hh.shape[1]
    h = np.zeros((x.shape[1], H))
    c = np.zeros_like(h)
    out = []
    for xt in x:
        gates = xt @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def keras_lstm_reference(x: np.ndarray, kernel, recurrent, bias) -> np.ndarray:
    """Keras LSTM (sigmoid recurrent activation): z = x K + h R + b, split i, f, c, o."""
    H = recurrent.shape[0]
    h = np.zeros((x.shape[1], H))
    c = np.zeros_like(h)
    out = []
    for xt in x:
        z = xt @ kernel + h @ recurrent + bias
        i, f, cc, o = (z[:, k * H:(k + 1) * H] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(cc)
        h = _sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def _forward(model, x):
    return model.forward(x, np.full(x.shape[1], x.shape[0]), SoftwareBackend(model.params))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng, rng.normal(size=(7, 5, 3))  # T, B, I


def test_torch_state_dict_two_layers_and_linear(data) -> None:
    rng, x = data
    I, H1, H2, O = 3, 4, 5, 2
    sd = {}
    for n, (i, h) in enumerate([(I, H1), (H1, H2)]):
        sd[f"lstm.weight_ih_l{n}"] = rng.normal(size=(4 * h, i))
        sd[f"lstm.weight_hh_l{n}"] = rng.normal(size=(4 * h, h))
        sd[f"lstm.bias_ih_l{n}"] = rng.normal(size=4 * h)
        sd[f"lstm.bias_hh_l{n}"] = rng.normal(size=4 * h)
    sd["fc.weight"], sd["fc.bias"] = rng.normal(size=(O, H2)), rng.normal(size=O)
    h1 = torch_lstm_reference(x, *(sd[f"lstm.{k}_l0"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
    h2 = torch_lstm_reference(h1, *(sd[f"lstm.{k}_l1"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
    want = h2[-1] @ sd["fc.weight"].T + sd["fc.bias"]
    model = from_torch(sd)
    assert [type(layer).__name__ for layer in model.layers] == ["LSTM", "LSTM", "LastStep", "Dense"]
    np.testing.assert_allclose(_forward(model, x), want, rtol=1e-10, atol=1e-12)
    every_step = from_torch(sd, last_step=False)
    np.testing.assert_allclose(_forward(every_step, x), h2 @ sd["fc.weight"].T + sd["fc.bias"], atol=1e-12)


def test_torch_without_bias_and_errors(data) -> None:
    rng, x = data
    sd = {"weight_ih_l0": rng.normal(size=(8, 3)), "weight_hh_l0": rng.normal(size=(8, 2))}
    model = from_torch(sd, lstm="", linear=None, last_step=False)
    z = np.zeros(8)
    np.testing.assert_allclose(_forward(model, x), torch_lstm_reference(x, sd["weight_ih_l0"], sd["weight_hh_l0"], z, z),
                               atol=1e-12)
    with pytest.raises(ModelFileError, match="weight_ih_l0"):
        from_torch({"fc.weight": np.zeros((1, 1))})
    with pytest.raises(ModelFileError, match="bidirectional"):
        from_torch({**{f"lstm.{k}": v for k, v in sd.items()}, "lstm.weight_ih_l0_reverse": sd["weight_ih_l0"]})


def test_keras_weights_lstm_and_dense(data) -> None:
    rng, x = data
    I, H, O = 3, 4, 3
    kernel, recurrent, bias = rng.normal(size=(I, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H)
    dk, db = rng.normal(size=(H, O)), rng.normal(size=O)
    h = keras_lstm_reference(x, kernel, recurrent, bias)
    logits = h[-1] @ dk + db
    want = np.exp(logits - logits.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    model = from_keras([kernel, recurrent, bias, dk, db], activation="softmax")
    np.testing.assert_allclose(_forward(model, x), want, atol=1e-12)
    seq = from_keras([kernel, recurrent, bias], last_step=False)
    np.testing.assert_allclose(_forward(seq, x), h, atol=1e-12)
    with pytest.raises(ModelFileError):
        from_keras([dk, db])


def test_against_real_pytorch() -> None:
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 6, num_layers=2, batch_first=True)
            self.fc = torch.nn.Linear(6, 2)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.fc(out[:, -1])

    torch.manual_seed(0)
    net = Net().double()
    xs = [np.random.default_rng(1).normal(size=(n, 3)) for n in (9, 9, 9)]
    with torch.no_grad():
        want = net(torch.from_numpy(np.stack(xs))).numpy()
    model = from_torch(net.state_dict())
    x, lengths = pad(xs)
    np.testing.assert_allclose(model.forward(x, lengths, SoftwareBackend(model.params)), want, atol=1e-10)
