"""Figures of an LSTM run in a session file (the ``memhw.nn.report`` plugin of
:func:`memhw.report.report`): predictions against targets (regression), confusion
matrices (classification) and the in-situ loss curve, drawn from the datasets that
``memhw lstm ... --out`` records (``target``, ``software_prediction``,
``crossbar_prediction``, ``loss``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..report import register
from .plots import confusion_figure, loss_figure, series_figure

__all__ = ["lstm_plots"]


@register("lstm")
def lstm_plots(run: Any, out: Path) -> list[Path]:
    """Draw what an ``lstm`` run recorded; returns the PNG paths."""
    names = set(run.names())
    attrs = dict(run.attrs)
    task, mode = attrs.get("experiment", "lstm"), attrs.get("mode", "")
    figures: list[Path] = []
    if not ({"target", "software_prediction", "crossbar_prediction", "loss"} & names):
        return figures
    out.mkdir(parents=True, exist_ok=True)  # the report's folder is made when a figure is drawn
    if {"target", "software_prediction", "crossbar_prediction"} <= names:
        truth, sw, hw = (run.read(n) for n in ("target", "software_prediction", "crossbar_prediction"))
        if "software_accuracy" in attrs:
            n = int(attrs.get("n_classes", int(max(truth.max(), sw.max(), hw.max())) + 1))
            for label, pred in (("software", sw), ("crossbar", hw)):
                figures.append(confusion_figure(truth.astype(int), pred.astype(int), n,
                                                out / f"{run.name}_{label}_confusion.png",
                                                title=f"{task} {mode}: {label}"))
        else:
            figures.append(series_figure(np.asarray(truth, float), {"software": sw, f"crossbar ({mode})": hw},
                                         out / f"{run.name}_predictions.png",
                                         title=f"{task} {mode}: ratio {float(attrs.get('ratio', np.nan)):.3f}",
                                         xlabel="step / example"))
    if "loss" in names:
        figures.append(loss_figure(run.read("loss"), out / f"{run.name}_loss.png", title=f"{task}, in situ"))
    return figures
