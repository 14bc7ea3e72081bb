"""Figures (matplotlib, no screen needed): the programming figure and conductance maps.

Every axis says what it shows and in which unit (``µS``); every figure says what it is in
its title. Figure functions return the path written; :func:`program_axes` and
:func:`map_axes` draw into a given figure, so tests can check the titles and labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .units import US

__all__ = ["program_figure", "program_axes", "map_figure", "map_axes", "pyplot", "save"]


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only, no screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix; its folder is made if missing) and close it."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def program_axes(fig: Any, targets: np.ndarray, achieved: np.ndarray, mask: np.ndarray, pulses: np.ndarray,
                 tolerance: float, title: str = "") -> Any:
    """Draw target and achieved maps, the error histogram and the pulse histogram of a
    programming run into ``fig`` (2 x 2 axes); returns the axes."""
    ax = fig.subplots(2, 2)
    vmax = float(np.nanmax(np.where(mask, targets, np.nan))) * 1e6 if mask.any() else 1.0
    for a, data, name in ((ax[0, 0], targets, "target"), (ax[0, 1], achieved, "achieved")):
        im = a.imshow(np.where(mask, data, np.nan) * 1e6, aspect="auto", vmin=0, vmax=vmax, cmap="viridis")
        a.set_title(f"{name} conductance")
        a.set(xlabel="column", ylabel="row")
        fig.colorbar(im, ax=a, shrink=0.85, label=f"conductance ({US})")
    err = (achieved - targets)[mask] * 1e6
    err = err[np.isfinite(err)]
    tol = tolerance * 1e6
    span = 5 * tol if tolerance > 0 else max(float(np.abs(err).max(initial=1.0)), 1.0)
    outside = int((np.abs(err) > span).sum())
    a = ax[1, 0]
    a.hist(np.clip(err, -span, span), bins=np.linspace(-span, span, 81), color="tab:blue", label="devices")
    a.axvline(-tol, color="tab:red", ls="--", label=f"tolerance ±{tol:g} {US}")
    a.axvline(tol, color="tab:red", ls="--")
    if outside:
        a.plot([], [], " ", label=f"{outside} beyond ±{span:g} {US}, shown at the ends")
    a.set(xlabel=f"achieved − target ({US})", ylabel="devices", title="error")
    a.legend(fontsize=8, loc="upper left")
    p = pulses[mask]
    a = ax[1, 1]
    a.hist(p, bins=np.arange(0, max(int(p.max(initial=0)), 1) + 2) - 0.5, color="tab:green")
    a.set(xlabel="pulses per device", ylabel="devices", title=f"pulses (median {np.median(p) if p.size else 0:.0f})")
    if title:
        fig.suptitle(title)
    return ax


def program_figure(targets: np.ndarray, achieved: np.ndarray, mask: np.ndarray, pulses: np.ndarray,
                   tolerance: float, path: str | Path, title: str = "") -> Path:
    """Target and achieved maps, error histogram and pulses histogram of a programming run."""
    fig = pyplot().figure(figsize=(11, 8.5), layout="constrained")
    program_axes(fig, targets, achieved, mask, pulses, tolerance, title)
    return save(fig, path, dpi=90)


def map_axes(fig: Any, g: np.ndarray, title: str) -> Any:
    """A conductance map (S) as a heat map and a histogram, in µS, into ``fig``; returns the axes."""
    ax = fig.subplots(1, 2, width_ratios=[1.4, 1])
    us = np.asarray(g, float) * 1e6
    finite = us[np.isfinite(us)]
    hi = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    im = ax[0].imshow(us, aspect="auto", cmap="viridis", vmin=0, vmax=max(hi, 1e-3))
    fig.colorbar(im, ax=ax[0], shrink=0.9, label=f"conductance ({US}; top 0.5 % clipped)")
    ax[0].set(xlabel="column", ylabel="row", title="map")
    ax[1].hist(finite, bins=100, color="tab:blue")
    ax[1].set_yscale("log")
    ax[1].set(xlabel=f"conductance ({US})", ylabel="devices",
              title=f"median {np.median(finite) if finite.size else float('nan'):.2f} {US}")
    fig.suptitle(title)
    return ax


def map_figure(g: np.ndarray, path: str | Path, title: str) -> Path:
    """A conductance map (S): heat map and histogram in µS."""
    fig = pyplot().figure(figsize=(11, 4.5), layout="constrained")
    map_axes(fig, g, title)
    return save(fig, path)
