"""Figures of calibrations and sweeps (matplotlib, Agg backend).

Each figure's title says what it is and, for sweeps, the pulse and read conditions
(``result.conditions()``); axes carry units (``µS``, ``V``, ``Ω``); legends sit outside
the data. ``*_axes`` functions draw into a given figure and return the axes, so tests can
check titles and labels; ``plot_*`` write a file and return its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..plots import pyplot, save
from ..units import OHM, US, si

__all__ = ["plot_calibration", "plot_gate_curve", "plot_reset_curve", "plot_iv", "plot_noise", "plot_retention",
           "calibration_axes", "sweep_axes"]

_GROUP_NAMES = {"ROWS": "row DACs", "COLS": "column DACs", "GATES": "gate DACs"}


def _legend_below(ax: Any, ncol: int = 4) -> None:
    """A legend under the axes, never over the data."""
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=ncol, frameon=False)


def _title(fig: Any, title: str, conditions: str = "") -> None:
    """Title and, wrapped to the figure's width, the conditions of the measurement."""
    import textwrap

    wrapped = textwrap.fill(conditions, width=max(40, int(fig.get_figwidth() * 11))) if conditions else ""
    fig.suptitle(title + (f"\n{wrapped}" if wrapped else ""), fontsize=11)


# ------------------------------------------------------------------ calibration
def calibration_axes(fig: Any, serial: str, dac_gain: dict[str, np.ndarray], tia_gains: Any, tia_gain: np.ndarray,
                     tia_residual: np.ndarray, date: str = "") -> Any:
    """DAC gain error per channel, TIA gain error and fit residual per column and gain,
    into ``fig``; from arrays, so a calibration file and a session's calibration run draw
    the same figure."""
    ax = np.atleast_1d(fig.subplots(1, 3))
    for g, gain in dac_gain.items():
        ax[0].plot((np.asarray(gain) - 1) * 100, ".", label=_GROUP_NAMES.get(g, g))
    ax[0].set(xlabel="channel", ylabel="DAC gain error (%)", title="DAC channels")
    labels = [si(r, OHM) for r in tia_gains] if tia_gains is not None else [
        f"gain index {i}" for i in range(tia_gain.shape[1])]
    for gi, label in enumerate(labels):
        ax[1].plot((tia_gain[:, gi] - 1) * 100, ".", label=f"TIA {label}")
        ax[2].semilogy(np.maximum(tia_residual[:, gi], 1e-7) * 100, ".", label=f"TIA {label}")
    ax[1].set(xlabel="column", ylabel="TIA gain error (%)", title="TIA gain per column")
    ax[2].set(xlabel="column", ylabel="fit residual (% of full scale, rms)", title="TIA fit residuals")
    for a in ax:
        _legend_below(a)
    _title(fig, f"board calibration of {serial}" + (f", made {date}" if date else ""),
           "fits against the on-board reference resistors and DAC read-back")
    return ax


def plot_calibration(cal: Any, path: Any) -> Path:
    """DAC gain/offset per channel, TIA gain/offset per column and gain, residuals."""
    fig = pyplot().figure(figsize=(16, 4.8), layout="constrained")
    calibration_axes(fig, cal.serial, {g: d.gain for g, d in cal.dac.items()}, cal.tia_gains, cal.tia_gain,
                     cal.tia_residual, cal.date)
    return save(fig, path)


# ------------------------------------------------------------------ sweeps
def _gate_axes(fig: Any, curve: Any) -> Any:
    (ax,) = fig.subplots(1, 1, squeeze=False)[0]
    ax.plot(curve.gates, curve.conductance * 1e6, color="0.8", lw=0.6)
    ax.plot([], [], color="0.8", lw=0.6, label="per-column medians")
    ax.plot(curve.gates, curve.median * 1e6, "ko-", label="chip median")
    try:
        slope, icpt = curve.fit()
        x = np.array([0.7, 1.6])
        ax.plot(x, (slope * x + icpt) * 1e6, "r--", label=f"fit over 0.7–1.6 V: {slope * 1e6:.1f} {US}/V")
    except ValueError:
        pass
    ax.set(xlabel="gate voltage (V)", ylabel=f"conductance after SET ({US})", title="gate voltage → conductance")
    _legend_below(ax, 3)
    return [ax]


def _reset_axes(fig: Any, curve: Any) -> Any:
    ax = fig.subplots(1, 2)
    ax[0].plot(curve.amplitudes, curve.conductance * 1e6, color="0.8", lw=0.6)
    ax[0].plot(curve.amplitudes, np.nanmedian(curve.devices.reshape(len(curve.amplitudes), -1), axis=1) * 1e6, "ko-")
    ax[0].set(xlabel="RESET amplitude (V)", ylabel=f"conductance after RESET ({US})",
              title="RESET amplitude → conductance (grey: per column)")
    ax[1].plot(curve.amplitudes, curve.removed * 100, "bo-")
    ax[1].set(xlabel="RESET amplitude (V)", ylabel="share of the conductance removed (%)",
              title="one pulse from a SET state")
    return ax


def _iv_axes(fig: Any, res: Any) -> Any:
    (ax,) = fig.subplots(1, 1, squeeze=False)[0]
    for (r, c), i, g in zip(res.devices, res.current, res.conductance):
        ax.plot(res.v, i * 1e6, ".-", label=f"({r}, {c}): {g * 1e6:.1f} {US}")
    ax.set(xlabel="row voltage (V)", ylabel="current (µA)", title="I–V of single devices (row, column)")
    _legend_below(ax, 4)
    return [ax]


def _noise_axes(fig: Any, res: Any) -> Any:
    ax = fig.subplots(1, 2)
    rel = res.relative[np.isfinite(res.relative)]
    ax[0].hist(rel * 100, bins=60)
    ax[0].set(xlabel="read noise σ / G (%)", ylabel="devices",
              title=f"relative read noise, median {np.median(rel) * 100:.2f} %" if rel.size else "relative read noise")
    ax[1].loglog(res.mean.ravel() * 1e6, np.maximum(res.std.ravel(), 1e-12) * 1e6, ".", ms=3)
    ax[1].set(xlabel=f"mean conductance ({US})", ylabel=f"σ ({US})", title="noise vs conductance")
    return ax


def _retention_axes(fig: Any, res: Any) -> Any:
    (ax,) = fig.subplots(1, 1, squeeze=False)[0]
    t = np.maximum(res.times, 1e-3)
    d = res.drift.reshape(len(t), -1) * 1e6
    d = d[:, np.isfinite(d).all(0)]
    ax.plot(t, d.mean(1), "ko-", label="mean drift")
    ax.fill_between(t, d.mean(1) - d.std(1), d.mean(1) + d.std(1), alpha=0.3, label="±1 σ over devices")
    ax.set_xscale("log")
    ax.set(xlabel="time since programming (s)", ylabel=f"G(t) − G(first read) ({US})", title="retention")
    _legend_below(ax, 2)
    return [ax]


_SWEEP_AXES = {"GateCurve": (_gate_axes, 1, "gate sweep"), "ResetCurve": (_reset_axes, 2, "RESET sweep"),
               "IVResult": (_iv_axes, 1, "I–V sweep"), "NoiseResult": (_noise_axes, 2, "read noise"),
               "RetentionResult": (_retention_axes, 1, "retention")}


def sweep_axes(fig: Any, res: Any, serial: str = "") -> Any:
    """Draw a sweep result into ``fig`` with a title stating its conditions; returns the axes."""
    draw, _, name = _SWEEP_AXES[type(res).__name__]
    ax = draw(fig, res)
    _title(fig, name + (f", board {serial}" if serial else ""), res.conditions())
    return ax


def _plot_sweep(res: Any, path: Any) -> Path:
    _, ncols, _ = _SWEEP_AXES[type(res).__name__]
    fig = pyplot().figure(figsize=(7.5 * ncols, 5.4), layout="constrained")
    sweep_axes(fig, res)
    return save(fig, path)


def plot_gate_curve(curve: Any, path: Any) -> Path:
    """Gate voltage -> conductance after SET, with the fit over 0.7–1.6 V."""
    return _plot_sweep(curve, path)


def plot_reset_curve(curve: Any, path: Any) -> Path:
    """RESET amplitude -> conductance and share removed."""
    return _plot_sweep(curve, path)


def plot_iv(res: Any, path: Any) -> Path:
    """I-V of the devices swept."""
    return _plot_sweep(res, path)


def plot_noise(res: Any, path: Any) -> Path:
    """Relative read noise histogram and noise vs conductance."""
    return _plot_sweep(res, path)


def plot_retention(res: Any, path: Any) -> Path:
    """Mean drift ± 1 σ over (virtual) time."""
    return _plot_sweep(res, path)
