"""PNG plots of calibrations and sweeps (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_calibration", "plot_gate_curve", "plot_reset_curve", "plot_iv", "plot_noise", "plot_retention"]


def _fig(ncols: int = 1, size: tuple[float, float] | None = None):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=size or (5.5 * ncols, 4.0), squeeze=False)
    return fig, axes[0]


def _save(fig: Any, path: Any) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_calibration(cal: Any, path: Any) -> Path:
    """DAC gain/offset per channel, TIA gain/offset per column and gain, residuals."""
    fig, ax = _fig(3, (16, 4.2))
    for g in ("ROWS", "COLS", "GATES"):
        d = cal.dac[g]
        ax[0].plot((d.gain - 1) * 100, ".", label=f"{g.lower()} gain")
    ax[0].set(xlabel="channel", ylabel="DAC gain error (%)", title=f"DAC channels, {cal.serial}")
    ax[0].legend(fontsize=8)
    for gi, r in enumerate(cal.tia_gains):
        ax[1].plot((cal.tia_gain[:, gi] - 1) * 100, ".", label=f"{r:g} ohm")
    ax[1].set(xlabel="column", ylabel="TIA gain error (%)", title="TIA gain per column")
    ax[1].legend(fontsize=8)
    for gi, r in enumerate(cal.tia_gains):
        ax[2].semilogy(np.maximum(cal.tia_residual[:, gi], 1e-7), ".", label=f"{r:g} ohm")
    ax[2].set(xlabel="column", ylabel="relative fit residual (rms)", title="TIA fit residuals")
    ax[2].legend(fontsize=8)
    return _save(fig, path)


def plot_gate_curve(curve: Any, path: Any) -> Path:
    fig, ax = _fig(1)
    g_us = curve.conductance * 1e6
    ax[0].plot(curve.gates, g_us, color="0.8", lw=0.6)
    ax[0].plot(curve.gates, curve.median * 1e6, "ko-", label="chip median")
    try:
        slope, icpt = curve.fit()
        x = np.array([0.7, 1.6])
        ax[0].plot(x, (slope * x + icpt) * 1e6, "r--", label=f"fit 0.7-1.6 V: {slope * 1e6:.1f} uS/V")
    except ValueError:
        pass
    ax[0].set(xlabel="gate voltage (V)", ylabel="conductance after SET (uS)",
              title="gate -> conductance (grey: per-column medians)")
    ax[0].legend()
    return _save(fig, path)


def plot_reset_curve(curve: Any, path: Any) -> Path:
    fig, ax = _fig(2, (11, 4))
    ax[0].plot(curve.amplitudes, curve.conductance * 1e6, color="0.8", lw=0.6)
    ax[0].plot(curve.amplitudes, np.nanmedian(curve.devices.reshape(len(curve.amplitudes), -1), axis=1) * 1e6, "ko-")
    ax[0].set(xlabel="RESET amplitude (V)", ylabel="conductance after RESET (uS)", title="RESET amplitude -> G")
    ax[1].plot(curve.amplitudes, curve.removed * 100, "bo-")
    ax[1].set(xlabel="RESET amplitude (V)", ylabel="fraction removed (%)", title="one pulse from a SET state")
    return _save(fig, path)


def plot_iv(res: Any, path: Any) -> Path:
    fig, ax = _fig(1)
    for (r, c), i in zip(res.devices, res.current):
        ax[0].plot(res.v, i * 1e6, ".-", label=f"({r}, {c})")
    ax[0].set(xlabel="row voltage (V)", ylabel="current (uA)", title="I-V")
    ax[0].legend(fontsize=7, ncol=2)
    return _save(fig, path)


def plot_noise(res: Any, path: Any) -> Path:
    fig, ax = _fig(2, (11, 4))
    rel = res.relative[np.isfinite(res.relative)]
    ax[0].hist(rel * 100, bins=60)
    ax[0].set(xlabel="relative read noise sigma (%)", ylabel="devices",
              title=f"read noise, median {np.median(rel) * 100:.2f} %")
    ax[1].loglog(res.mean.ravel() * 1e6, np.maximum(res.std.ravel(), 1e-12) * 1e6, ".", ms=2)
    ax[1].set(xlabel="mean G (uS)", ylabel="sigma (uS)", title="noise vs conductance")
    return _save(fig, path)


def plot_retention(res: Any, path: Any) -> Path:
    fig, ax = _fig(1)
    t = np.maximum(res.times, 1e-3)
    d = res.drift.reshape(len(t), -1) * 1e6
    d = d[:, np.isfinite(d).all(0)]
    ax[0].plot(t, d.mean(1), "ko-", label="mean drift")
    ax[0].fill_between(t, d.mean(1) - d.std(1), d.mean(1) + d.std(1), alpha=0.3, label="+-1 sigma")
    ax[0].set_xscale("log")
    ax[0].set(xlabel="time since programming (s)", ylabel="G(t) - G(first read) (uS)", title="retention")
    ax[0].legend()
    return _save(fig, path)
