"""memhw.nn as a library: the public surface, regression on the last step, keys, clear
errors, save/load, and the whole loop on a board."""

from __future__ import annotations

import numpy as np
import pytest

from memhw import nn
from memhw.nn import (
    LSTM,
    SGD,
    Dense,
    LastStep,
    ModelFileError,
    RMSprop,
    Sequential,
    evaluate,
    fit,
    load_model,
    predict,
    program_model,
    save_model,
    train_insitu,
)

from .conftest import ideal_program


def test_the_whole_loop_is_importable_from_memhw_nn() -> None:
    for name in ("fit", "predict", "evaluate", "place", "WeightMap", "CrossbarBackend", "MixedPrecisionUpdater",
                 "TwoPulseUpdater", "program_model", "train_insitu", "save_model", "load_model", "from_torch",
                 "from_keras", "auto_scale", "PlacementError", "WeightRangeError"):
        assert name in nn.__all__ and getattr(nn, name) is not None
    assert not hasattr(nn, "experiments")  # the application code lives in memhw.apps


def _windows(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Sum of a short random sequence: a last-step regression."""
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(-1, 1, (int(rng.integers(4, 9)), 1)) for _ in range(n)]
    return xs, np.array([0.3 * x.sum() for x in xs])


def test_float_targets_on_a_last_step_model_train_a_regression() -> None:
    xs, ys = _windows(120, 0)
    model = Sequential([LSTM(1, 6), LastStep(), Dense(6, 1)], seed=0)
    assert nn.task_kind(model) == "regression"
    before = evaluate(model, xs, ys)["rmse"]
    history = fit(model, xs, ys, RMSprop(0.01), 40, batch_size=20, progress=False)
    after = evaluate(model, xs, ys)
    assert history.loss[-1] < 0.2 * history.loss[0] and after["rmse"] < 0.3 * before
    fit(model, xs, ys[:, None], RMSprop(0.01), 1, batch_size=20, progress=False)  # (N, 1) targets too
    assert predict(model, xs).shape == (120, 1)


def test_targets_that_do_not_fit_the_model_get_a_clear_error() -> None:
    xs, ys = _windows(10, 1)
    classifier = Sequential([LSTM(1, 4), LastStep(), Dense(4, 3, "softmax")], seed=0)
    with pytest.raises(ValueError, match="integer class label"):
        fit(classifier, xs, ys, SGD(), 1, progress=False)
    with pytest.raises(ValueError, match="0..2"):
        fit(classifier, xs, np.arange(10), SGD(), 1, progress=False)
    per_step = Sequential([LSTM(1, 4), Dense(4, 1)], seed=0)
    with pytest.raises(ValueError, match="end the model with LastStep"):
        fit(per_step, xs, ys, SGD(), 1, progress=False)
    regressor = Sequential([LSTM(1, 4), LastStep(), Dense(4, 2)], seed=0)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        fit(regressor, xs, ys, SGD(), 1, progress=False)


def test_keys_count_layers_of_a_type_and_names_win() -> None:
    m = Sequential([LSTM(3, 4), LSTM(4, 4), LastStep(), Dense(4, 2, "softmax")], seed=0)
    assert list(m.params) == ["lstm0", "lstm1", "dense0"]
    named = Sequential([LSTM(3, 4, name="encoder"), LastStep(), Dense(4, 1, name="head")], seed=0)
    assert list(named.params) == ["encoder", "head"]
    with pytest.raises(ValueError, match="two layers named"):
        Sequential([Dense(2, 2, name="x"), Dense(2, 2, name="x")])
    with pytest.raises(ValueError, match="needs"):
        named.load({"head": np.zeros((2, 2))})


def test_save_and_load_give_the_same_network(tmp_path) -> None:
    xs, _ = _windows(5, 2)
    model = Sequential([LSTM(1, 5, name="enc"), LastStep(), Dense(5, 3, "softmax", bias=False)], seed=3)
    path = save_model(model, tmp_path / "m.npz")
    back = load_model(path)
    assert back.config() == model.config()
    np.testing.assert_array_equal(predict(back, xs), predict(model, xs))
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(ModelFileError):
        load_model(tmp_path / "bad.npz")


def test_weights_beyond_the_range_are_refused_or_scaled_never_clipped(ideal_boards) -> None:
    model = Sequential([LSTM(1, 3), LastStep(), Dense(3, 1)], seed=0)
    model.params["dense0"][0, 0] = 5.0  # beyond 2.8 at 100 uS per unit weight
    with pytest.raises(nn.WeightRangeError, match="auto_scale"):
        program_model(model, ideal_boards(1), weight_map=nn.WeightMap(), programmer=ideal_program)
    cb = program_model(model, ideal_boards(2), programmer=ideal_program)  # "auto": a smaller scale
    assert cb.map_of("dense0").scale < 100e-6
    assert abs(cb.weights("dense0")[0, 0] - 5.0) < 0.05


def test_program_and_train_in_situ_through_the_public_api(ideal_boards) -> None:
    xs, ys = _windows(40, 3)
    model = Sequential([LSTM(1, 4), LastStep(), Dense(4, 1)], seed=1)
    fit(model, xs, ys, RMSprop(0.01), 20, batch_size=20, progress=False)
    cb = program_model(model, ideal_boards(3), programmer=ideal_program)
    assert abs(evaluate(model, xs, ys, cb)["rmse"] - evaluate(model, xs, ys)["rmse"]) < 0.02
    fresh = Sequential([LSTM(1, 4), LastStep(), Dense(4, 1)], seed=1)
    run = train_insitu(fresh, ideal_boards(4), xs, ys, RMSprop(0.01), 3, batch_size=20, progress=False)
    assert run.updates == 6 and run.pulses > 0 and len(run.history.loss) == 3
    np.testing.assert_allclose(fresh.params["dense0"], run.backend.weights("dense0"))
