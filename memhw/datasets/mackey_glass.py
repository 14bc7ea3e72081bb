"""The Mackey–Glass chaotic time series, cut into windows for next-value regression.

A standard benchmark of recurrent networks (Mackey & Glass, Science 197, 287 (1977);
``dx/dt = β x(t−τ) / (1 + x(t−τ)^n) − γ x(t)`` with β = 0.2, γ = 0.1, n = 10, τ = 17:
chaotic). Generated here by numpy (no download): integrated with a 4th-order
Runge–Kutta step (the delayed term interpolated linearly), sampled every ``step`` time
units, min–max scaled to [0, 1]. Each example is a window of ``window`` samples and the
sample ``horizon`` steps after it; training windows come from the first part of the
series, test windows from the part after it (no overlap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WindowedSeries", "mackey_glass", "mackey_glass_series"]


@dataclass(frozen=True)
class WindowedSeries:
    """Windows of a scaled series and their targets.

    Attributes
    ----------
    series : ndarray (N,)
        The scaled series.
    x_train, x_test : list of (window, 1) arrays
    y_train, y_test : ndarray (n, 1)
        The value ``horizon`` samples after each window.
    """

    series: np.ndarray
    x_train: list[np.ndarray]
    y_train: np.ndarray
    x_test: list[np.ndarray]
    y_test: np.ndarray


def mackey_glass_series(n: int, step: float = 3.0, tau: float = 17.0, beta: float = 0.2, gamma: float = 0.1,
                        power: float = 10.0, dt: float = 0.1, warmup: float = 500.0, x0: float = 1.2) -> np.ndarray:
    """``n`` samples of the Mackey–Glass series, every ``step`` time units after ``warmup``."""
    lag = int(round(tau / dt))
    every = int(round(step / dt))
    total = int(round(warmup / dt)) + n * every
    x = np.empty(lag + total + 1)
    x[: lag + 1] = x0

    def f(xt: float, xd: float) -> float:
        return beta * xd / (1.0 + xd**power) - gamma * xt

    for i in range(lag, lag + total):
        d0, d1 = x[i - lag], x[i - lag + 1]
        dm = 0.5 * (d0 + d1)
        k1 = f(x[i], d0)
        k2 = f(x[i] + 0.5 * dt * k1, dm)
        k3 = f(x[i] + 0.5 * dt * k2, dm)
        k4 = f(x[i] + dt * k3, d1)
        x[i + 1] = x[i] + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    start = lag + int(round(warmup / dt))
    return x[start : start + n * every : every]


def mackey_glass(n_train: int = 400, n_test: int = 200, window: int = 10, horizon: int = 1,
                 step: float = 3.0) -> WindowedSeries:
    """Train and test windows of the scaled series (see the module docstring).

    Parameters
    ----------
    n_train, n_test : int
        Windows in each part.
    window : int
        Samples per input sequence.
    horizon : int
        The target is this many samples after the window's last one.
    step : float
        Time units between samples.
    """
    per = window + horizon
    raw = mackey_glass_series(n_train + n_test + 2 * per, step=step)
    s = (raw - raw.min()) / (raw.max() - raw.min())

    def cut(start: int, count: int) -> tuple[list[np.ndarray], np.ndarray]:
        xs = [s[i : i + window, None] for i in range(start, start + count)]
        ys = np.array([[s[i + window + horizon - 1]] for i in range(start, start + count)])
        return xs, ys

    x_train, y_train = cut(0, n_train)
    x_test, y_test = cut(n_train + per, n_test)
    return WindowedSeries(s, x_train, y_train, x_test, y_test)
