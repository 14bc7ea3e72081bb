"""Figures (matplotlib, PNG, no screen needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def program_figure(targets: np.ndarray, achieved: np.ndarray, mask: np.ndarray, pulses: np.ndarray,
                   tolerance: float, path: str | Path, title: str = "") -> Path:
    """Target and achieved maps, error histogram and pulses histogram of a programming run."""
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(2, 2, figsize=(10, 8), constrained_layout=True)
    vmax = float(np.nanmax(np.where(mask, targets, np.nan))) * 1e6 if mask.any() else 1.0
    for a, data, name in ((ax[0, 0], targets, "target"), (ax[0, 1], achieved, "achieved")):
        im = a.imshow(np.where(mask, data, np.nan) * 1e6, aspect="auto", vmin=0, vmax=vmax, cmap="viridis")
        a.set_title(f"{name} conductance (µS)")
        a.set_xlabel("column")
        a.set_ylabel("row")
        fig.colorbar(im, ax=a, shrink=0.85)
    err = (achieved - targets)[mask] * 1e6
    err = err[np.isfinite(err)]
    span = 5 * tolerance * 1e6 if tolerance > 0 else max(float(np.abs(err).max(initial=1.0)), 1.0)
    outside = int((np.abs(err) > span).sum())
    ax[1, 0].hist(np.clip(err, -span, span), bins=np.linspace(-span, span, 81), color="tab:blue")
    for x in (-tolerance * 1e6, tolerance * 1e6):
        ax[1, 0].axvline(x, color="tab:red", ls="--")
    ax[1, 0].set_xlabel("achieved − target (µS)")
    ax[1, 0].set_ylabel("devices")
    ax[1, 0].set_title(f"error (dashed: tolerance; {outside} beyond ±{span:g} µS piled at the ends)")
    p = pulses[mask]
    ax[1, 1].hist(p, bins=np.arange(0, max(int(p.max(initial=0)), 1) + 2) - 0.5, color="tab:green")
    ax[1, 1].set_xlabel("pulses per device")
    ax[1, 1].set_ylabel("devices")
    ax[1, 1].set_title(f"pulses (median {np.median(p) if p.size else 0:.0f})")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
