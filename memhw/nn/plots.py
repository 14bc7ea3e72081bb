"""Figures of the LSTM experiments and of layer placement (matplotlib, PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .mapping import Placement

__all__ = ["layout_figure", "prediction_figure", "confusion_figure", "confusion_matrix"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def layout_figure(placement: Placement, path: str | Path, usable: Sequence[np.ndarray | None] | None = None) -> Path:
    """Draw which device holds which layer (G+ dark, G− light); unusable devices as x.

    Parameters
    ----------
    placement : Placement
    path : str or Path
        PNG file to write.
    usable : list of bool arrays, optional
        Usable-device masks given to :func:`~memhw.nn.mapping.place`.
    """
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    path = Path(path)
    keys = list(placement.layers)
    base = plt.get_cmap("tab10")
    colours = [(1, 1, 1, 1)]
    for i in range(len(keys)):
        r, g, b, _ = base(i % 10)
        colours += [(r, g, b, 1.0), (r, g, b, 0.45)]
    n = len(placement.shapes)
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 6), squeeze=False, constrained_layout=True)
    for a, ax in enumerate(axes[0]):
        code = np.zeros(placement.shapes[a], int)
        for t in placement.tiles:
            if t.array == a:
                i = keys.index(t.key)
                code[np.ix_(t.rows_plus, t.cols_plus)] = 1 + 2 * i
                code[np.ix_(t.rows_minus, t.cols_minus)] = 2 + 2 * i
        ax.imshow(code, cmap=ListedColormap(colours), vmin=0, vmax=len(colours) - 1, aspect="auto",
                  interpolation="nearest")
        if usable is not None and usable[a] is not None:
            rr, cc = np.nonzero(~np.asarray(usable[a], bool))
            ax.plot(cc, rr, "kx", ms=3)
        ax.set_title(f"array {a} ({placement.shapes[a][0]}×{placement.shapes[a][1]})")
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    handles = [Patch(color=colours[1 + 2 * i], label=f"{k} G+") for i, k in enumerate(keys)]
    handles += [Patch(color=colours[2 + 2 * i], label=f"{k} G−") for i, k in enumerate(keys)]
    fig.legend(handles=handles, loc="outside lower center", ncol=max(2, len(keys)))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def prediction_figure(months: Sequence[str], truth: np.ndarray, predictions: Mapping[str, np.ndarray],
                      n_train: int, path: str | Path, title: str = "") -> Path:
    """Passengers vs month with predictions and the train/test split (paper Fig. 3 style).

    Parameters
    ----------
    months : sequence of "YYYY-MM", length N
    truth : ndarray (N,)
    predictions : mapping label -> ndarray (N - 1,)
        Predictions of months 2..N (next-month targets).
    n_train : int
        Training targets (months 2 .. n_train + 1).
    """
    plt = _pyplot()
    path = Path(path)
    year = np.array([int(m[:4]) + (int(m[5:7]) - 1) / 12 for m in months])
    fig, ax = plt.subplots(figsize=(9, 4.5), constrained_layout=True)
    ax.plot(year, truth, "k-", lw=2, label="data")
    for label, p in predictions.items():
        ax.plot(year[1:], p, "-", lw=1.3, label=label)
    split = year[n_train]
    ax.axvline(split + 1 / 24, color="grey", ls="--")
    ax.text(split - 0.2, ax.get_ylim()[1] * 0.95, "train", ha="right", va="top")
    ax.text(split + 0.2, ax.get_ylim()[1] * 0.95, "test", ha="left", va="top")
    ax.set_xlabel("year")
    ax.set_ylabel("passengers (thousands)")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.9))
    if title:
        ax.set_title(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(true, predicted) counts."""
    m = np.zeros((n_classes, n_classes), int)
    np.add.at(m, (np.asarray(labels, int), np.asarray(predicted, int)), 1)
    return m


def confusion_figure(labels: np.ndarray, predicted: np.ndarray, n_classes: int, path: str | Path,
                     title: str = "") -> Path:
    """Confusion matrix with the accuracy in the title (paper Fig. 4 style)."""
    plt = _pyplot()
    path = Path(path)
    m = confusion_matrix(labels, predicted, n_classes)
    acc = np.trace(m) / max(m.sum(), 1)
    fig, ax = plt.subplots(figsize=(5, 4.5), constrained_layout=True)
    im = ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > m.max() / 2 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_xticks(range(n_classes))
    ax.set_yticks(range(n_classes))
    ax.set_title(f"{title} accuracy {acc:.1%}".strip())
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
