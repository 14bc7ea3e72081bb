"""One LSTM experiment on one board: the network in software beside the same network in
the crossbar, ex situ (programmed) or in situ (trained on the board).

>>> from memhw.apps import lstm
>>> r = lstm.run("airline", "mock://?preset=paper&seed=1", mode="exsitu", seed=0, out="results/")
>>> r.metrics["ratio"]
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..board import Board
from ..nn import Sequential, program_model, train_insitu
from ..nn.plots import layout_figure, loss_figure
from .tasks import Task, make_task

__all__ = ["MODES", "LstmResult", "airline", "compare", "gait", "run"]

MODES = ("exsitu", "insitu")


@dataclass
class LstmResult:
    """Metrics (scalars, JSON-ready) and arrays (predictions, targets, loss curve) of a run."""

    metrics: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _open(board: str | Board) -> tuple[Board, bool]:
    if isinstance(board, Board):
        return board, False
    from ..connection import connect

    return connect(board), True


def _calibrate(board: Board) -> str:
    """Calibrate a board that has none applied (in memory; nothing is saved); a board
    without self-calibration hardware (e.g. the original board, ``dpe://``) runs nominal."""
    if board.calibration is not None:
        return "file"
    if not (board.supports("READ_REFERENCE") and board.supports("READ_DAC")):
        return "none (the board has no self-calibration hardware)"
    from ..calibration import calibrate_board

    board.calibration = calibrate_board(board)
    return "in session"


def compare(metric: str, software: float, crossbar: float) -> dict[str, float]:
    """``ratio`` (crossbar / software, RMSE) or ``difference`` (software − crossbar, points)."""
    if metric == "rmse":
        return {"ratio": crossbar / software}
    return {"difference": 100.0 * (software - crossbar)}


def run(task: str | Task, board: str | Board, mode: str = "exsitu", seed: int = 0, out: str | Path | None = None, *,
        software: Sequential | None = None, variant: Any = "improved", insitu_scale: float = 100e-6,
        tolerance: float | None = None, weight_map: Any = "auto", calibrate: bool | str = "auto", health: Any = "auto",
        programmer: Callable[..., Any] | None = None, epochs: int | None = None, weight_noise: float = 0.0,
        progress: bool = True, task_options: dict[str, Any] | None = None) -> LstmResult:
    """Run ``task`` in software and in the crossbar of ``board``; compare.

    Parameters
    ----------
    task : "airline", "gait", "mackey" or a Task
    board : address or Board
        An address is connected here and closed at the end.
    mode : {"exsitu", "insitu"}
    seed : int
        Seed of the network initialisation (software and in-situ networks share it), of
        the batch order and of synthetic data.
    out : folder, optional
        Writes the task's figures, ``<task>_<mode>_layout.png``, an in-situ loss curve
        and ``<task>_<mode>_metrics.json``.
    software : Sequential, optional
        The trained software network (trained here if not given; pass it to reuse one
        training across chip instances).
    variant : "improved", "published", "thresholded" or a config
        In-situ update scheme (:data:`memhw.nn.INSITU_VARIANTS`).
    insitu_scale : float
        Siemens per unit weight in situ.
    tolerance : float, optional
        Write-and-verify tolerance, S (default: 1 µS ex situ, 2 µS for the initial
        weights in situ).
    weight_map : "auto", WeightMap or mapping key -> WeightMap
        Ex situ: the conductance map ("auto": a scale per layer, :func:`memhw.nn.auto_scale`).
    calibrate : "auto" or bool
        "auto"/True: a board without a calibration is calibrated first, in memory
        (:func:`memhw.calibration.calibrate_board`); False: use it as it is.
    health : "auto", list of HealthMap or None
        Device health (:class:`memhw.nn.CrossbarBackend`).
    programmer : callable, optional
        Default :func:`memhw.programming.program`.
    epochs : int, optional
        Default: the task's own.
    weight_noise : float
        Noise-aware software training (σ in weight units).
    progress : bool
    task_options : dict, optional
        Passed to the task factory (e.g. ``{"n_classes": 6}``, ``{"data": path}`` for gait).

    Returns
    -------
    LstmResult
        ``metrics``: ``software_<metric>``, ``crossbar_<metric>`` (test set), ``ratio`` or
        ``difference``, ``weight_error_rms`` and ``repair_*`` (ex situ) or ``pulses``,
        ``updates``, ``final_loss`` (in situ), ``wall_time``...; ``arrays``: predictions.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    task = task if isinstance(task, Task) else make_task(task, seed, **(task_options or {}))
    t0 = time.perf_counter()
    if software is None:
        software = task.train_software(seed, progress, epochs, weight_noise)
    board, close = _open(board)
    arrays: dict[str, np.ndarray] = {}
    try:
        info: dict[str, Any] = {"board": board.address, "serial": board.info.serial}
        if calibrate:
            info["calibration"] = _calibrate(board)
        if mode == "exsitu":
            cb = program_model(software, board, weight_map=weight_map, health=health, programmer=programmer,
                               **({} if tolerance is None else {"tolerance": tolerance}))
            hw_model = software
            err = np.concatenate([(cb.weights(k) - w).ravel() for k, w in software.params.items()])
            info["weight_error_rms"] = float(np.sqrt(np.mean(err**2)))
            info.update({f"repair_{k}": v for k, v in cb.report.to_dict().items()})
        else:
            hw_model = task.network(seed)
            r = train_insitu(hw_model, board, task.x_train, task.y_train, task.optimizer(),
                             task.epochs if epochs is None else epochs, variant=variant, scale=insitu_scale,
                             health=health, programmer=programmer, **({} if tolerance is None else {"tolerance": tolerance}),
                             **task.fit_args(seed, progress, f"{task.name} in situ"))
            cb = r.backend
            info.update({"variant": variant if isinstance(variant, str) else type(variant).__name__,
                         "pulses": int(r.pulses), "updates": int(r.updates), "final_loss": r.history.loss[-1]})
            arrays["loss"] = np.asarray(r.history.loss)
        sw, hw = task.score(software, None), task.score(hw_model, cb)
        if out is not None:
            out = Path(out)
            out.mkdir(parents=True, exist_ok=True)
            task.draw(out, mode, software, hw_model, cb)
            layout_figure(cb.placement, out / f"{task.name}_{mode}_layout.png",
                          None if cb.health is None else [h.usable() for h in cb.health])
            if "loss" in arrays:
                loss_figure(arrays["loss"], out / f"{task.name}_{mode}_loss.png", title=f"{task.name}, in situ")
    finally:
        if close:
            board.close()
    metrics: dict[str, Any] = {"experiment": task.name, "mode": mode, "seed": seed, **task.info}
    for k in sw:
        if not k.startswith("_"):
            metrics[f"software_{k}"], metrics[f"crossbar_{k}"] = sw[k], hw[k]
    metrics.update(compare(task.metric, sw[task.metric], hw[task.metric]))
    metrics.update(info)
    metrics["wall_time"] = time.perf_counter() - t0
    arrays.update({"target": np.asarray(sw["_truth"]), "software_prediction": np.asarray(sw["_pred"]),
                   "crossbar_prediction": np.asarray(hw["_pred"])})
    if out is not None:
        (out / f"{task.name}_{mode}_metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    return LstmResult(metrics, arrays)


def airline(board: str | Board, mode: str = "exsitu", seed: int = 0, out: str | Path | None = None,
            **options: Any) -> dict[str, Any]:
    """The airline experiment (:func:`run` with task "airline"); returns its metrics."""
    return run("airline", board, mode, seed, out, **options).metrics


def gait(board: str | Board, mode: str = "exsitu", seed: int = 0, out: str | Path | None = None, *,
         data: Any = None, n_classes: int = 8, **options: Any) -> dict[str, Any]:
    """The gait experiment (:func:`run` with task "gait"; ``data``: a GaitData or a file,
    default synthetic with ``n_classes``); returns its metrics."""
    return run("gait", board, mode, seed, out, task_options={"data": data, "n_classes": n_classes},
               **options).metrics
