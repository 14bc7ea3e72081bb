"""Figures of the LSTM experiments and of layer placement (matplotlib, PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .mapping import Placement

__all__ = [
    "confusion_figure",
    "confusion_matrix",
    "layout_figure",
    "loss_figure",
    "population_figure",
    "prediction_figure",
    "series_figure",
]


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
        Usable-device masks given to :func:`~memhw.nn.placement.place`.
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


def series_figure(truth: np.ndarray, predictions: Mapping[str, np.ndarray], path: str | Path,
                  title: str = "", xlabel: str = "test example", ylabel: str = "value (scaled)") -> Path:
    """Targets and predictions of a regression over the test examples."""
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(9, 4), constrained_layout=True)
    ax.plot(truth, "k-", lw=2, label="target")
    for label, p in predictions.items():
        ax.plot(p, "-", lw=1.2, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def loss_figure(loss: Sequence[float], path: str | Path, title: str = "") -> Path:
    """Training loss per epoch (log scale), e.g. of an in-situ run."""
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    ax.semilogy(np.arange(1, len(loss) + 1), loss, "-")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
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
    fig.colorbar(im, ax=ax, shrink=0.8, label="test sequences")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def population_figure(rows: Sequence[Mapping], key: str, path: str | Path, title: str = "",
                      goal: float | None = None) -> Path:
    """One point per (chip, model seed): ``key`` per chip, model seeds as markers, with
    the median and p90 over all runs (and a goal line)."""
    plt = _pyplot()
    path = Path(path)
    chips = sorted({r["chip"] for r in rows}, key=lambda c: (len(c), c))
    seeds = sorted({r["seed"] for r in rows})
    values = np.array([r[key] for r in rows], float)
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(chips) + 2), 4.2), constrained_layout=True)
    for s, marker in zip(seeds, "osD^v<>p*h"):
        pts = [(chips.index(r["chip"]), r[key]) for r in rows if r["seed"] == s]
        ax.plot(*zip(*pts), marker, ls="none", ms=5, alpha=0.8, label=f"model seed {s}")
    for q, style, label in ((50, "-", "median"), (90, "--", "p90")):
        ax.axhline(np.percentile(values, q), color="k", ls=style, lw=1, label=f"{label} {np.percentile(values, q):.3g}")
    if goal is not None:
        ax.axhline(goal, color="tab:red", ls=":", lw=1.2, label=f"median goal {goal:g}")
    ax.set_xticks(range(len(chips)))
    ax.set_xticklabels([c.rsplit("seed=", 1)[-1] for c in chips], fontsize=8)
    ax.set_xlabel("chip (mock seed or board)")
    ax.set_ylabel({"ratio": "crossbar ÷ software RMSE", "difference": "software − crossbar accuracy (pt)"}.get(key, key))
    ax.legend(fontsize=7, ncol=2)
    if title:
        ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
