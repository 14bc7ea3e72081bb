"""The paper's two LSTM experiments (DOMAIN §3), software vs crossbar.

Both train the network in float software first (the reference), then either program
those weights into the array and infer there (``mode="exsitu"``), or train a second,
identically initialised network in the array (``mode="insitu"``: forward products on
the board, BPTT on the host with the measured weights, two-pulse updates).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..board import Board
from ..datasets import GaitData, airline as load_airline, load_gait, synthetic_gait
from .backend import Backend, SoftwareBackend
from .crossbar import CrossbarBackend
from .insitu import MixedPrecisionConfig, MixedPrecisionUpdater, TwoPulseConfig, TwoPulseUpdater, insitu_weight_map
from .layers import LSTM, Dense, LastStep, Sequential
from .mapping import WeightMap, place
from .optim import SGD, RMSprop
from .plots import confusion_figure, layout_figure, prediction_figure
from .train import fit, predict

__all__ = ["airline", "gait", "IMPROVED", "PUBLISHED", "THRESHOLDED", "VARIANTS"]

#: Two-pulse updates as published: every device SET on every update, re-read every update.
PUBLISHED = TwoPulseConfig()
#: Two-pulse with the first fix only: accumulate gate changes, pulse only above 20 mV (≈ 2 µS).
THRESHOLDED = TwoPulseConfig(threshold=0.02, pulse_all=False)
#: memhw's variant: host-side accumulation, one interleaved write-and-verify round per
#: update on the pairs off by more than 2 µS, one-sided mapping (:class:`MixedPrecisionUpdater`).
IMPROVED = MixedPrecisionConfig()
#: The in-situ variants by name (``scripts/lstm_acceptance.py``).
VARIANTS = {"published": PUBLISHED, "thresholded": THRESHOLDED, "improved": IMPROVED}

MODES = ("exsitu", "insitu")
#: Samples per device of the periodic in-situ conductance re-reads.
INSITU_READ_AVERAGE = 4


def _open(board: str | Board) -> tuple[Board, bool]:
    if isinstance(board, Board):
        return board, False
    import memhw

    return memhw.connect(board), True


def _crossbar(board: Board, model: Sequential, weight_map: WeightMap, tolerance: float,
              programmer: Callable[..., Any] | None, read_average: int = 1) -> CrossbarBackend:
    placement = place({k: w.shape for k, w in model.params.items()}, board.shape)
    return CrossbarBackend(board, placement, weight_map=weight_map, programmer=programmer, tolerance=tolerance,
                           read_average=read_average)


def _train_on_board(mode: str, board: Board, reference: Sequential, fresh: Sequential, train_fn: Callable,
                    tolerance: float, insitu: TwoPulseConfig | MixedPrecisionConfig, insitu_scale: float,
                    programmer: Callable[..., Any] | None) -> tuple[CrossbarBackend, Sequential, dict[str, Any]]:
    """Ex-situ: program ``reference``'s weights. In-situ: train ``fresh`` on the board."""
    if mode == "exsitu":
        cb = _crossbar(board, reference, WeightMap(), tolerance, programmer)
        measured = cb.program(reference.params)
        info = {"weight_error_rms": float(np.sqrt(np.mean(np.concatenate(
            [(measured[k] - w).ravel() for k, w in reference.params.items()]) ** 2)))}
        return cb, reference, info
    if isinstance(insitu, MixedPrecisionConfig):
        # one-sided map: the low side of each pair sits near g_floor (little read noise)
        cb = _crossbar(board, fresh, WeightMap(scale=insitu_scale), tolerance, programmer, INSITU_READ_AVERAGE)
        updater: Any = MixedPrecisionUpdater(cb, insitu)
    else:
        # averaged re-reads: the backward pass sees less read noise (1 % of ~230 µS per read)
        cb = _crossbar(board, fresh, insitu_weight_map(insitu, insitu_scale), tolerance, programmer,
                       INSITU_READ_AVERAGE)
        updater = TwoPulseUpdater(cb, insitu)
    updater.initialise(fresh.params)
    history = train_fn(fresh, cb, updater.apply)
    fresh.load(cb.refresh())
    return cb, fresh, {"variant": type(insitu).__name__, "pulses": updater.pulses, "updates": updater.updates,
                       "final_loss": history.loss[-1]}


def _finish(out: Path | None, name: str, metrics: dict[str, Any], cb: CrossbarBackend) -> None:
    if out is None:
        return
    layout_figure(cb.placement, out / f"{name}_layout.png")
    (out / f"{name}_metrics.json").write_text(json.dumps(metrics, indent=2))


def airline(board: str | Board, mode: str = "exsitu", seed: int = 0, out: str | Path | None = None, *,
            epochs: int = 800, hidden: int = 15, tolerance: float = 2e-6, weight_noise: float = 0.0,
            insitu: TwoPulseConfig | MixedPrecisionConfig = IMPROVED, insitu_scale: float = 100e-6, programmer: Callable[..., Any] | None = None,
            progress: bool = True) -> dict[str, Any]:
    """Next-month airline-passenger regression: LSTM(15) → Dense(1, sigmoid).

    Parameters
    ----------
    board : address or Board
        Where the crossbar part runs (an address is connected and closed here).
    mode : {"exsitu", "insitu"}
    seed : int
        Seed of the weight initialisation (software and crossbar networks share it).
    out : folder, optional
        Writes ``airline_<mode>.png`` (prediction vs truth 1949–1960, train/test split),
        ``airline_<mode>_layout.png`` and ``airline_<mode>_metrics.json``.
    epochs : int
        800 as published; full-batch SGD (lr 0.01, momentum 0.9, loss summed over steps).
    hidden : int
    tolerance : float
        Write-and-verify tolerance, S.
    weight_noise : float
        Noise-aware software training (σ in weight units); 0 = plain.
    insitu : TwoPulseConfig
        :data:`IMPROVED` (default) or :data:`PUBLISHED`.
    insitu_scale : float
        Siemens per unit weight in situ (the SET gate window spans ±44 µS around its
        centre, so 100 µS allows |w| <= 0.88, 50 µS |w| <= 1.76).
    programmer : callable, optional
        Default :func:`memhw.programming.program`.
    progress : bool

    Returns
    -------
    dict
        ``software_rmse``, ``crossbar_rmse`` (test, scaled units), ``*_train_rmse``,
        ``*_rmse_passengers`` (thousands), ``ratio`` (crossbar / software test RMSE) and
        mode-specific details.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    data = load_airline()
    xs, ys = [data.x[: data.n_train]], [data.y[: data.n_train]]

    def network() -> Sequential:
        return Sequential([LSTM(1, hidden), Dense(hidden, 1, "sigmoid")], seed=seed)

    def train(model: Sequential, backend: Backend | None = None, updater=None):
        limit = None if updater is not None else WeightMap().w_max  # in situ the updater limits
        return fit(model, xs, ys, SGD(0.01, 0.9), epochs, backend=backend, updater=updater, weight_limit=limit,
                   reduction="sum", seed=seed, progress=progress, desc=f"airline {'in situ' if updater else 'software'}")

    software = network()
    train(software, SoftwareBackend(software.params, weight_noise, seed) if weight_noise else None)
    p_sw = predict(software, [data.x])[0][:, 0]
    board, close = _open(board)
    try:
        cb, hw_model, info = _train_on_board(mode, board, software, network(), train, tolerance, insitu, insitu_scale,
                                                programmer)
        p_hw = predict(hw_model, [data.x], cb)[0][:, 0]
    finally:
        if close:
            board.close()

    def rmse(p: np.ndarray, part: slice) -> float:
        return float(np.sqrt(np.mean((p[part] - data.y[part, 0]) ** 2)))

    test, train_part = slice(data.n_train, None), slice(0, data.n_train)
    span = data.hi - data.lo
    metrics = {
        "experiment": "airline", "mode": mode, "seed": seed, "board": board.address,
        "software_rmse": rmse(p_sw, test), "crossbar_rmse": rmse(p_hw, test),
        "software_train_rmse": rmse(p_sw, train_part), "crossbar_train_rmse": rmse(p_hw, train_part),
        "software_rmse_passengers": rmse(p_sw, test) * span, "crossbar_rmse_passengers": rmse(p_hw, test) * span,
        **info,
    }
    metrics["ratio"] = metrics["crossbar_rmse"] / metrics["software_rmse"]
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        prediction_figure(data.months, data.passengers,
                          {"software": data.unscale(p_sw), f"crossbar ({mode})": data.unscale(p_hw)},
                          data.n_train, out / f"airline_{mode}.png",
                          title=f"airline, {mode}: test RMSE software {metrics['software_rmse_passengers']:.1f}k, "
                                f"crossbar {metrics['crossbar_rmse_passengers']:.1f}k passengers")
        _finish(out, f"airline_{mode}", metrics, cb)
    return metrics


def gait(board: str | Board, mode: str = "exsitu", seed: int = 0, out: str | Path | None = None, *,
         data: GaitData | str | Path | None = None, n_classes: int = 8, epochs: int = 50, batch_size: int = 50,
         hidden: int = 14, tolerance: float = 2e-6, weight_noise: float = 0.0, insitu: TwoPulseConfig | MixedPrecisionConfig = IMPROVED,
         insitu_scale: float = 100e-6, programmer: Callable[..., Any] | None = None,
         progress: bool = True) -> dict[str, Any]:
    """Gait identification: LSTM(14, no bias) → last step → Dense(n_classes, softmax).

    Parameters
    ----------
    board : address or Board
    mode : {"exsitu", "insitu"}
    seed : int
        Seed of the initialisation, the batch order and (if synthetic) the data.
    out : folder, optional
        Writes ``gait_<mode>_software.png`` and ``gait_<mode>_crossbar.png`` (confusion
        matrices with accuracy), the layout and ``gait_<mode>_metrics.json``.
    data : GaitData or path, optional
        Default: :func:`~memhw.datasets.synthetic_gait` (clearly synthetic) with ``n_classes``.
    n_classes : int
        For synthetic data (≤ 8 fit beside the LSTM in one 128 × 64 array).
    epochs, batch_size : int
        50 and 50 with RMSprop (lr 0.01), as published.
    hidden, tolerance, weight_noise, insitu, insitu_scale, programmer, progress
        As :func:`airline`.

    Returns
    -------
    dict
        ``software_accuracy``, ``crossbar_accuracy`` (test set), ``difference`` (points),
        ``data_source`` and mode-specific details.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if data is None:
        data = synthetic_gait(n_classes=n_classes, seed=seed)
    elif not isinstance(data, GaitData):
        data = load_gait(data, seed=seed)
    xs, ys = data.split(True)
    xt, yt = data.split(False)
    n_out = data.n_classes

    def network() -> Sequential:
        return Sequential([LSTM(data.n_features, hidden, bias=False), LastStep(), Dense(hidden, n_out, "softmax")],
                          seed=seed)

    def train(model: Sequential, backend: Backend | None = None, updater=None):
        limit = None if updater is not None else WeightMap().w_max  # in situ the updater limits
        return fit(model, xs, list(ys), RMSprop(0.01), epochs, backend=backend, updater=updater,
                   batch_size=batch_size, weight_limit=limit, seed=seed, progress=progress,
                   desc=f"gait {'in situ' if updater else 'software'}")

    software = network()
    train(software, SoftwareBackend(software.params, weight_noise, seed) if weight_noise else None)
    pred_sw = predict(software, xt, batch_size=batch_size).argmax(axis=1)
    board, close = _open(board)
    try:
        cb, hw_model, info = _train_on_board(mode, board, software, network(), train, tolerance, insitu, insitu_scale,
                                                programmer)
        pred_hw = predict(hw_model, xt, cb, batch_size=batch_size).argmax(axis=1)
    finally:
        if close:
            board.close()
    metrics = {
        "experiment": "gait", "mode": mode, "seed": seed, "board": board.address, "data_source": data.source,
        "n_classes": n_out, "n_test": len(yt),
        "software_accuracy": float(np.mean(pred_sw == yt)), "crossbar_accuracy": float(np.mean(pred_hw == yt)),
        **info,
    }
    metrics["difference"] = 100 * (metrics["software_accuracy"] - metrics["crossbar_accuracy"])
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        tag = " (synthetic data)" if data.source == "synthetic" else ""
        confusion_figure(yt, pred_sw, n_out, out / f"gait_{mode}_software.png", title=f"software{tag}")
        confusion_figure(yt, pred_hw, n_out, out / f"gait_{mode}_crossbar.png", title=f"crossbar {mode}{tag}")
        _finish(out, f"gait_{mode}", metrics, cb)
    return metrics
