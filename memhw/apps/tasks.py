"""The LSTM tasks the experiments run: data, network and training recipe in one place.

* ``airline`` -- DOMAIN §3: next-month passengers, LSTM(15) → Dense(1, sigmoid), SGD
  (lr 0.01, momentum 0.9), 800 full-batch epochs, loss summed over steps; test RMSE on
  the months after the first 96.
* ``gait`` -- DOMAIN §3: LSTM(14, no bias) → last step → Dense(C, softmax), RMSprop
  (lr 0.01), batch 50, 50 epochs; synthetic data by default (the real set is not public).
* ``mackey`` -- our own, not tuned on the crossbar: Mackey–Glass next value from a window
  of 10 samples, LSTM(12) → last step → Dense(1, linear), RMSprop (lr 0.005), batch 32,
  100 epochs; test RMSE on 200 later windows.

A :class:`Task` trains its network in software (:meth:`Task.train_software`), or hands
its recipe to :func:`memhw.nn.train_insitu`, and scores a network on a backend
(:meth:`Task.score`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..nn import LSTM, SGD, Dense, LastStep, RMSprop, Sequential, WeightMap, evaluate, fit, predict
from ..nn.backend import Backend

__all__ = ["TASKS", "Task", "make_task"]


@dataclass
class Task:
    """One experiment's data, network and recipe.

    Attributes
    ----------
    name : str
    metric : {"rmse", "accuracy"}
        Test metric; the crossbar is compared as a ratio (RMSE) or a difference in
        points (accuracy).
    network : callable(seed) -> Sequential
    x_train, y_train : training sequences and targets
    optimizer : callable() -> optimiser
    epochs : int
    batch_size : int or None
    reduction : {"mean", "sum"}
    scorer : callable(model, backend or None) -> dict
        Test metrics (``metric`` among them) and ``_pred``/``_truth`` arrays.
    info : dict
        Extra facts reported with the metrics (data source, classes...).
    drawer : callable(out, mode, software, crossbar, backend) -> list of Path, optional
        The task's figures.
    """

    name: str
    metric: str
    network: Callable[[int], Sequential]
    x_train: list[np.ndarray]
    y_train: Any
    optimizer: Callable[[], Any]
    epochs: int
    scorer: Callable[[Sequential, Backend | None], dict[str, Any]]
    batch_size: int | None = None
    reduction: str = "mean"
    info: dict[str, Any] = field(default_factory=dict)
    drawer: Callable[..., list[Path]] | None = None

    def fit_args(self, seed: int, progress: bool, desc: str) -> dict[str, Any]:
        """Keyword arguments of :func:`memhw.nn.fit` / :func:`memhw.nn.train_insitu`."""
        return {"batch_size": self.batch_size, "reduction": self.reduction, "seed": seed, "progress": progress,
                "desc": desc}

    def train_software(self, seed: int, progress: bool = False, epochs: int | None = None,
                       weight_noise: float = 0.0) -> Sequential:
        """The float reference network, trained with weights kept within the default
        map's range (the crossbar's constraint, as published)."""
        from ..nn import SoftwareBackend

        model = self.network(seed)
        backend = SoftwareBackend(model.params, weight_noise, seed) if weight_noise else None
        fit(model, self.x_train, self.y_train, self.optimizer(), self.epochs if epochs is None else epochs,
            backend=backend, weight_limit=WeightMap().w_max, **self.fit_args(seed, progress, f"{self.name} software"))
        return model

    def score(self, model: Sequential, backend: Backend | None = None) -> dict[str, Any]:
        """Test metrics of ``model`` on ``backend`` (default software): ``self.metric`` among them."""
        return self.scorer(model, backend)

    def draw(self, out: Path, mode: str, software: Sequential, crossbar: Sequential, backend: Backend) -> list[Path]:
        """Task figures (prediction or confusion matrices)."""
        return self.drawer(out, mode, software, crossbar, backend) if self.drawer else []


# ------------------------------------------------------------------ airline
def _airline(seed: int, hidden: int = 15, **_: Any) -> Task:
    from ..datasets import airline
    from ..nn.plots import prediction_figure

    data = airline()
    test, train = slice(data.n_train, None), slice(0, data.n_train)
    span = data.hi - data.lo

    def scorer(model: Sequential, backend: Backend | None) -> dict[str, Any]:
        p = predict(model, [data.x], backend)[0][:, 0]

        def rmse(part: slice) -> float:
            return float(np.sqrt(np.mean((p[part] - data.y[part, 0]) ** 2)))

        return {"rmse": rmse(test), "train_rmse": rmse(train), "rmse_passengers": rmse(test) * span, "_pred": p,
                "_truth": data.y[:, 0]}

    def drawer(out: Path, mode: str, sw: Sequential, hw: Sequential, backend: Backend) -> list[Path]:
        a, b = scorer(sw, None), scorer(hw, backend)
        return [prediction_figure(data.months, data.passengers,
                                  {"software": data.unscale(a["_pred"]), f"crossbar ({mode})": data.unscale(b["_pred"])},
                                  data.n_train, out / f"airline_{mode}.png",
                                  title=f"airline, {mode}: test RMSE software {a['rmse_passengers']:.1f}k, "
                                        f"crossbar {b['rmse_passengers']:.1f}k passengers")]

    return Task("airline", "rmse", lambda s: Sequential([LSTM(1, hidden), Dense(hidden, 1, "sigmoid")], seed=s),
                [data.x[: data.n_train]], [data.y[: data.n_train]], lambda: SGD(0.01, 0.9), 800, scorer,
                batch_size=None, reduction="sum", drawer=drawer)


# ------------------------------------------------------------------ gait
def _classifier_scorer(xt: list[np.ndarray], yt: np.ndarray, batch: int) -> Callable:
    def scorer(model: Sequential, backend: Backend | None) -> dict[str, Any]:
        pred = predict(model, xt, backend, batch_size=batch).argmax(axis=1)
        return {"accuracy": float(np.mean(pred == yt)), "_pred": pred, "_truth": np.asarray(yt)}

    return scorer


def _gait(seed: int, data: Any = None, n_classes: int = 8, hidden: int = 14, **_: Any) -> Task:
    from ..datasets import GaitData, load_gait, synthetic_gait
    from ..nn.plots import confusion_figure

    if data is None:
        data = synthetic_gait(n_classes=n_classes, seed=seed)
    elif not isinstance(data, GaitData):
        data = load_gait(data, seed=seed)
    xs, ys = data.split(True)
    xt, yt = data.split(False)
    n_out = data.n_classes
    scorer = _classifier_scorer(xt, yt, 50)
    tag = " (synthetic data)" if data.source == "synthetic" else ""

    def drawer(out: Path, mode: str, sw: Sequential, hw: Sequential, backend: Backend) -> list[Path]:
        return [confusion_figure(yt, scorer(sw, None)["_pred"], n_out, out / f"gait_{mode}_software.png",
                                 title=f"software{tag}"),
                confusion_figure(yt, scorer(hw, backend)["_pred"], n_out, out / f"gait_{mode}_crossbar.png",
                                 title=f"crossbar {mode}{tag}")]

    network = lambda s: Sequential([LSTM(data.n_features, hidden, bias=False), LastStep(),
                                    Dense(hidden, n_out, "softmax")], seed=s)
    return Task("gait", "accuracy", network, xs, list(ys), lambda: RMSprop(0.01), 50, scorer, batch_size=50,
                info={"data_source": data.source, "n_classes": n_out, "n_test": len(yt)}, drawer=drawer)


# ------------------------------------------------------------------ mackey (ours)
def _mackey(seed: int, hidden: int = 12, **_: Any) -> Task:
    from ..datasets import mackey_glass
    from ..nn.plots import series_figure

    d = mackey_glass()

    def scorer(model: Sequential, backend: Backend | None) -> dict[str, Any]:
        m = evaluate(model, d.x_test, d.y_test, backend, batch_size=200)
        return {"rmse": m["rmse"], "_pred": predict(model, d.x_test, backend, batch_size=200)[:, 0],
                "_truth": d.y_test[:, 0]}

    def drawer(out: Path, mode: str, sw: Sequential, hw: Sequential, backend: Backend) -> list[Path]:
        a, b = scorer(sw, None), scorer(hw, backend)
        return [series_figure(d.y_test[:, 0], {f"software (RMSE {a['rmse']:.3f})": a["_pred"],
                                               f"crossbar {mode} (RMSE {b['rmse']:.3f})": b["_pred"]},
                              out / f"mackey_{mode}.png", title="Mackey–Glass, next value from 10 samples (test)")]

    network = lambda s: Sequential([LSTM(1, hidden), LastStep(), Dense(hidden, 1)], seed=s)
    return Task("mackey", "rmse", network, d.x_train, d.y_train, lambda: RMSprop(0.005), 100, scorer, batch_size=32,
                drawer=drawer)


#: task name -> factory(seed, **options) -> Task
TASKS: dict[str, Callable[..., Task]] = {"airline": _airline, "gait": _gait, "mackey": _mackey}


def make_task(name: str, seed: int = 0, **options: Any) -> Task:
    """The task ``name`` (seeded where its data are synthetic)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name](seed, **options)
