"""Chip characterisation sweeps: I-V, gate -> conductance, RESET amplitude -> conductance,
read noise, retention.

Every sweep takes a :class:`~memhw.Board` (SI units; a board calibration, if applied, is
used by the board itself), returns a result object with the data and a ``plot(path)``
method (PNG), and, given ``session=`` (a :class:`memhw.session.Session`), records a run
of kind ``"sweep"`` (attribute ``sweep`` = the sweep's name) with its datasets.

The gate sweep's :class:`GateCurve` is a programming prior:
``memhw.program(board, targets, prior=curve)`` reads ``curve.gates`` (n,) and
``curve.conductance`` (n, cols).

Sweeps that program devices (gate, RESET, retention) use a sparse diagonal pattern in a
block of rows (default: the lower half of the array): device (r, c) with
``(r + c) % stride == offset``, so each row carries only ``cols / stride`` high devices and
the row wire's IR drop stays below ~1 % (a row of 64 devices at 280 uS would lose ~12 % at
0.15 ohm per segment: that is chip physics, not the device's conductance). The three sweeps
use different offsets, so they never touch each other's devices; each leaves its devices
RESET. Unselected devices are NaN in the ``devices`` arrays. The read-noise sweep programs
its devices by write-and-verify over the programming range first, so it measures devices
as they are used, not the unprogrammed high-resistance state.

Every result says under which conditions it was measured (``conditions()``: pulse
amplitudes, widths, gates, averaging, devices), and its figure states them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import LimitError
from ..units import US, si

__all__ = [
    "GateCurve", "ResetCurve", "IVResult", "NoiseResult", "RetentionResult",
    "gate_sweep", "reset_sweep", "iv_sweep", "read_noise", "retention", "SAFE_IV_MAX", "NOISE_RANGE",
]

#: largest |V| of an I-V sweep: below the SET (~1 V) and RESET (~0.3 V onset with pulses)
#: switching ranges of the chip (DOMAIN.md §1, §2), DC only
SAFE_IV_MAX = 0.5
#: conductances the read-noise sweep programs its devices to: the whole-array programming
#: range (docs/programming.md), S
NOISE_RANGE = (20e-6, 200e-6)
Progress = Callable[[int, int], None] | None


def _devices_text(n: int, params: dict[str, Any]) -> str:
    rows = f" in rows {params['row_start']}–{int(params['row_stop']) - 1}" if "row_start" in params else ""
    return f"{n} devices{rows}"


def _n(devices: np.ndarray, steps: int) -> int:
    """Devices measured in an (steps, rows, cols) array with NaN where unselected."""
    return int(np.isfinite(np.asarray(devices).reshape(steps, -1)).any(axis=0).sum())


def _rows(board: Any, rows: slice | None, default: slice) -> slice:
    r = rows if rows is not None else default
    start, stop, step = r.indices(board.shape[0])
    if step != 1 or stop <= start:
        raise LimitError(f"rows: need a non-empty contiguous slice, got {rows!r}")
    return slice(start, stop)


def _block_mask(board: Any, rows: slice, stride: int = 1, offset: int = 0) -> np.ndarray:
    if stride < 1:
        raise LimitError("stride must be >= 1")
    m = np.zeros(board.shape, bool)
    r, c = np.indices(board.shape)
    m[rows] = ((r + c) % stride == offset % stride)[rows]
    return m


def _default_rows(board: Any) -> slice:
    R = board.shape[0]
    return slice(R // 2, R) if R >= 2 else slice(0, R)


def _masked(block: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, block, np.nan)


def _col_median(devices: np.ndarray) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns of tiny blocks
        return np.nanmedian(devices, axis=1)


def _record(session: Any, sweep: str, attrs: dict[str, Any], data: dict[str, tuple[np.ndarray, str]]) -> None:
    if session is None:
        return
    with session.run("sweep", sweep=sweep, **attrs) as run:
        for name, (arr, unit) in data.items():
            run.write(name, np.asarray(arr), unit=unit)


def _full_reset(board: Any, mask: np.ndarray, v: float, gate: float, width: float, pulses: int) -> None:
    for _ in range(pulses):
        board.pulse_reset(mask, v=v, gate=gate, width=width)


# ------------------------------------------------------------------ gate -> conductance

@dataclass
class GateCurve:
    """Conductance after one SET pulse (from the RESET state) vs gate voltage.

    Attributes
    ----------
    gates : (n,) V
    conductance : (n, cols) S, per-column median over the rows swept (the programming prior;
        the chip-wide median in columns where no device was swept)
    devices : (n, rows_swept, cols) S, every device
    rows : (rows_swept,) row indices swept
    """

    gates: np.ndarray
    conductance: np.ndarray
    devices: np.ndarray
    rows: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> np.ndarray:
        """(n,) chip-wide median conductance per gate, S."""
        return np.nanmedian(self.devices.reshape(len(self.gates), -1), axis=1)

    def fit(self, lo: float = 0.7, hi: float = 1.6) -> tuple[float, float]:
        """(slope S/V, intercept S) of the chip-wide median in the gate window [lo, hi]."""
        sel = (self.gates >= lo - 1e-9) & (self.gates <= hi + 1e-9)
        if sel.sum() < 2:
            raise ValueError(f"fewer than 2 gate points in [{lo}, {hi}] V")
        slope, intercept = np.polyfit(self.gates[sel], self.median[sel], 1)
        return float(slope), float(intercept)

    def conditions(self) -> str:
        """How it was measured, in words."""
        p = self.params
        return (f"per gate: full RESET ({p.get('reset_v', '?')} V, gate {p.get('reset_gate', '?')} V), then one SET "
                f"pulse of {p.get('v_set', '?')} V, {si(p.get('width', float('nan')), 's')}; "
                f"{_devices_text(_n(self.devices, len(self.gates)), p)}, reads averaged ×{p.get('average', '?')}")

    def plot(self, path: Any) -> Any:
        from .plots import plot_gate_curve

        return plot_gate_curve(self, path)


def gate_sweep(board: Any, gates: Any = None, *, rows: slice | None = None, v_set: float = 2.5,
               width: float = 1e-6, reset_v: float = 1.7, reset_gate: float = 5.0, reset_pulses: int = 2,
               stride: int = 8, offset: int = 0, average: int = 4, session: Any = None,
               progress: Progress = None) -> GateCurve:
    """For each gate voltage: fully RESET the selected devices, one SET pulse (``v_set``,
    ``width``) at that gate, read. Default gates 0.5-1.8 V in 0.1 V steps (DOMAIN.md §1 SET
    gate windows); devices: the module's sparse pattern (``stride``, ``offset``) in
    ``rows`` (default the lower half)."""
    g = np.asarray(np.arange(0.5, 1.8001, 0.1) if gates is None else gates, dtype=float)
    rows = _rows(board, rows, _default_rows(board))
    mask = _block_mask(board, rows, stride, offset)
    out = np.empty((g.size, rows.stop - rows.start, board.shape[1]))
    for i, vg in enumerate(g):
        _full_reset(board, mask, reset_v, reset_gate, width, reset_pulses)
        board.pulse_set(mask, v=v_set, gate=float(vg), width=width)
        out[i] = _masked(board.read_conductance(average=average, rows=rows), mask[rows])
        if progress is not None:
            progress(i + 1, g.size)
    _full_reset(board, mask, reset_v, reset_gate, width, reset_pulses)
    params = dict(v_set=v_set, width=width, reset_v=reset_v, reset_gate=reset_gate, average=average,
                  row_start=rows.start, row_stop=rows.stop, stride=stride, offset=offset)
    per_column = _col_median(out)
    chip = np.nanmedian(out.reshape(g.size, -1), axis=1)
    per_column = np.where(np.isnan(per_column), chip[:, None], per_column)  # columns with no device swept
    curve = GateCurve(g, per_column, out, np.arange(rows.start, rows.stop), params)
    slope, intercept = curve.fit() if ((g >= 0.7) & (g <= 1.6)).sum() >= 2 else (np.nan, np.nan)
    _record(session, "gate", {**params, "slope_S_per_V": slope, "intercept_S": intercept},
            {"gates": (g, "V"), "conductance": (curve.conductance, "S"), "devices": (out, "S")})
    return curve


# ------------------------------------------------------------------ RESET amplitude -> conductance

@dataclass
class ResetCurve:
    """Conductance after one RESET pulse of each amplitude, from a SET state.

    ``before``/``devices``: (n, rows_swept, cols) S before/after the pulse;
    ``conductance``: (n, cols) per-column median after; ``removed``: (n,) chip-wide median
    fraction of the conductance removed."""

    amplitudes: np.ndarray
    conductance: np.ndarray
    devices: np.ndarray
    before: np.ndarray
    rows: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def removed(self) -> np.ndarray:
        frac = (self.before - self.devices) / np.where(self.before > 0, self.before, np.nan)
        return _col_median(frac.reshape(len(self.amplitudes), -1, 1))[:, 0]

    def conditions(self) -> str:
        """How it was measured, in words."""
        p = self.params
        return (f"per amplitude: SET {p.get('set_v', '?')} V at gate {p.get('set_gate', '?')} V, then one RESET "
                f"pulse of {si(p.get('width', float('nan')), 's')} at gate {p.get('gate', '?')} V; "
                f"{_devices_text(_n(self.devices, len(self.amplitudes)), p)}, reads averaged ×{p.get('average', '?')}")

    def plot(self, path: Any) -> Any:
        from .plots import plot_reset_curve

        return plot_reset_curve(self, path)


def reset_sweep(board: Any, amplitudes: Any = None, *, rows: slice | None = None, set_v: float = 2.5,
                set_gate: float = 1.4, width: float = 1e-6, gate: float = 5.0, stride: int = 8,
                offset: int = 3, average: int = 4, session: Any = None,
                progress: Progress = None) -> ResetCurve:
    """For each amplitude: RESET fully, SET at ``set_gate`` (a high state), read, one RESET
    pulse of that amplitude at ``gate``, read. Default amplitudes 0.3-1.8 V by 0.1 V
    (DOMAIN.md §1 RESET ramp); devices as :func:`gate_sweep` (another ``offset``)."""
    a = np.asarray(np.arange(0.3, 1.8001, 0.1) if amplitudes is None else amplitudes, dtype=float)
    rows = _rows(board, rows, _default_rows(board))
    mask = _block_mask(board, rows, stride, offset)
    n_rows = rows.stop - rows.start
    before = np.empty((a.size, n_rows, board.shape[1]))
    after = np.empty_like(before)
    for i, amp in enumerate(a):
        _full_reset(board, mask, 1.7, gate, width, 2)
        board.pulse_set(mask, v=set_v, gate=set_gate, width=width)
        before[i] = _masked(board.read_conductance(average=average, rows=rows), mask[rows])
        board.pulse_reset(mask, v=float(amp), gate=gate, width=width)
        after[i] = _masked(board.read_conductance(average=average, rows=rows), mask[rows])
        if progress is not None:
            progress(i + 1, a.size)
    _full_reset(board, mask, 1.7, gate, width, 2)
    params = dict(set_v=set_v, set_gate=set_gate, width=width, gate=gate, average=average,
                  row_start=rows.start, row_stop=rows.stop, stride=stride, offset=offset)
    curve = ResetCurve(a, _col_median(after), after, before, np.arange(rows.start, rows.stop), params)
    _record(session, "reset", params, {"amplitudes": (a, "V"), "conductance": (curve.conductance, "S"),
                                       "devices": (after, "S"), "before": (before, "S"),
                                       "removed": (curve.removed, "1")})
    return curve


# ------------------------------------------------------------------ I-V

@dataclass
class IVResult:
    """DC I-V of selected devices: ``current`` (n_devices, n_v) A at row voltages ``v``
    (n_v,) with the device's column at virtual ground; ``conductance`` (n_devices,) the
    least-squares slope, S; ``devices`` (n_devices, 2) (row, col)."""

    v: np.ndarray
    current: np.ndarray
    devices: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def conductance(self) -> np.ndarray:
        return (self.current @ self.v) / (self.v @ self.v)

    def conditions(self) -> str:
        """How it was measured, in words."""
        p = self.params
        return (f"DC, one row driven from −{p.get('v_max', '?')} to +{p.get('v_max', '?')} V in {len(self.v)} steps, "
                f"columns at virtual ground, gates {p.get('gate', '?')} V; reads averaged ×{p.get('average', '?')}")

    def plot(self, path: Any) -> Any:
        from .plots import plot_iv

        return plot_iv(self, path)


def iv_sweep(board: Any, devices: Any = None, *, v_max: float = 0.3, n: int = 21, gate: float = 5.0,
             average: int = 4, session: Any = None, progress: Progress = None) -> IVResult:
    """Sweep the row of each device from -v_max to +v_max (``n`` points; one row driven,
    every other line grounded, gates at ``gate``) and read all columns in parallel.

    ``devices``: (k, 2) (row, col) pairs (default: 8 devices on the diagonal). Devices on
    the same row share the sweep. ``v_max`` must be <= :data:`SAFE_IV_MAX` and the board's
    read limit (LimitError otherwise): no device is disturbed."""
    R, C = board.shape
    dev = np.asarray([(i * (R // 8), i * (C // 8)) for i in range(8)] if devices is None else devices, dtype=int)
    dev = dev.reshape(-1, 2)
    if np.any(dev < 0) or np.any(dev[:, 0] >= R) or np.any(dev[:, 1] >= C):
        raise LimitError(f"devices outside the {R}x{C} array")
    limit = min(SAFE_IV_MAX, board.info.limits.v_read)
    if not 0 < v_max <= limit:
        raise LimitError(f"v_max: {v_max:g} V is outside (0, {limit:g}] V (safe I-V limit)")
    v = np.linspace(-v_max, v_max, n)
    current = np.empty((len(dev), n))
    rows = np.unique(dev[:, 0])
    try:
        for step, r in enumerate(rows, start=1):
            mask = np.zeros(R, bool)
            mask[r] = True
            board.ground_all()
            board.apply(gates=gate)
            sel = dev[:, 0] == r
            for j, vj in enumerate(v):
                board.apply(rows=float(vj), row_mask=mask)
                current[sel, j] = board.read_currents(average=average)[dev[sel, 1]]
            if progress is not None:
                progress(step, len(rows))
    finally:  # never leave a row and the gates driven, also when interrupted
        board.ground_all()
    params = dict(v_max=v_max, n=n, gate=gate, average=average)
    res = IVResult(v, current, dev, params)
    _record(session, "iv", params, {"v": (v, "V"), "current": (current, "A"), "devices": (dev, "1"),
                                    "conductance": (res.conductance, "S")})
    return res


# ------------------------------------------------------------------ read noise

@dataclass
class NoiseResult:
    """Repeated reads: ``reads`` (n, rows_read, cols) S, NaN at devices not measured;
    ``mean``, ``std`` per device; ``relative`` = std / mean."""

    reads: np.ndarray
    rows: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> np.ndarray:
        return self.reads.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        return self.reads.std(axis=0, ddof=1)

    @property
    def relative(self) -> np.ndarray:
        m = self.mean
        return self.std / np.where(m > 0, m, np.nan)

    @property
    def devices(self) -> int:
        """Devices measured."""
        return int(np.isfinite(self.mean).sum())

    def summary(self) -> dict[str, float]:
        rel = self.relative[np.isfinite(self.relative)]
        std = self.std[np.isfinite(self.std)]
        return {"median_relative_sigma": float(np.median(rel)), "p95_relative_sigma": float(np.percentile(rel, 95)),
                "median_sigma_S": float(np.median(std))}

    def conditions(self) -> str:
        """How it was measured, in words."""
        p = self.params
        what = (f"programmed to {p['g_low'] * 1e6:g}–{p['g_high'] * 1e6:g} {US} (converged within "
                f"±{p['tolerance'] * 1e6:g} {US})" if "g_low" in p else "as found")
        return (f"{len(self.reads)} reads at {p.get('v_read', '?')} V, averaged ×{p.get('average', '?')}, of "
                f"{_devices_text(self.devices, p)} {what}")

    def describe(self) -> str:
        """The result in one line."""
        s = self.summary()
        return (f"read noise σ: median {s['median_relative_sigma']:.2%} of G (95th percentile "
                f"{s['p95_relative_sigma']:.2%}), median {s['median_sigma_S'] * 1e6:.3f} {US}; {self.conditions()}")

    def plot(self, path: Any) -> Any:
        from .plots import plot_noise

        return plot_noise(self, path)


def read_noise(board: Any, n_reads: int = 32, *, rows: slice | None = None, g_range: Any = NOISE_RANGE,
               tolerance: float = 2e-6, v_read: float = 0.2, average: int = 1, stride: int = 8, offset: int = 1,
               session: Any = None, progress: Progress = None) -> NoiseResult:
    """Read noise of devices over the programming range.

    Programs the module's sparse pattern of devices (``stride``, ``offset``) in ``rows``
    (default the lower half) by write-and-verify to conductances spread evenly over
    ``g_range`` (S; default :data:`NOISE_RANGE`), reads the block ``n_reads`` times and
    keeps the devices that converged (stuck and unprogrammable ones would be outliers that
    say nothing about read noise); the devices are RESET afterwards. ``g_range=None``
    reads the devices as they are, without programming them."""
    if isinstance(n_reads, bool) or not isinstance(n_reads, (int, np.integer)) or n_reads < 2:
        raise LimitError(f"n_reads must be an integer >= 2, got {n_reads!r}")
    rows = _rows(board, rows, _default_rows(board))
    mask = _block_mask(board, rows, stride, offset)
    params: dict[str, Any] = dict(n_reads=n_reads, v_read=v_read, average=average, row_start=rows.start,
                                  row_stop=rows.stop, stride=stride, offset=offset)
    targets = None
    if g_range is not None:
        from ..programming import program

        lo, hi = (float(x) for x in g_range)
        if not 0 <= lo < hi:
            raise LimitError(f"g_range: need 0 <= low < high (S), got {g_range!r}")
        targets = np.zeros(board.shape)
        targets[mask] = np.random.default_rng(0).permutation(np.linspace(lo, hi, int(mask.sum())))
        done = program(board, targets, tolerance=tolerance, mask=mask)
        mask = mask & done.converged
        params.update(g_low=lo, g_high=hi, tolerance=tolerance)
    reads = np.empty((n_reads, rows.stop - rows.start, board.shape[1]))
    for i in range(n_reads):
        reads[i] = _masked(board.read_conductance(v_read=v_read, average=average, rows=rows), mask[rows])
        if progress is not None:
            progress(i + 1, n_reads)
    if g_range is not None:
        _full_reset(board, _block_mask(board, rows, stride, offset), 1.7, 5.0, 1e-6, 2)
    res = NoiseResult(reads, np.arange(rows.start, rows.stop), params)
    data = {"mean": (res.mean, "S"), "std": (res.std, "S"), "reads": (reads, "S")}
    if targets is not None:
        data["targets"] = (targets[rows], "S")
    _record(session, "noise", {**params, **res.summary()}, data)
    return res


# ------------------------------------------------------------------ retention

@dataclass
class RetentionResult:
    """Conductance of programmed devices over (virtual) time: ``times`` (n,) s since the
    programming, ``conductance`` (n, rows, cols) S; ``drift`` = G(t) - G(first read)."""

    times: np.ndarray
    conductance: np.ndarray
    rows: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def drift(self) -> np.ndarray:
        return self.conductance - self.conductance[:1]

    def conditions(self) -> str:
        """How it was measured, in words."""
        p = self.params
        return (f"full RESET, one SET of {p.get('v_set', '?')} V, {si(p.get('width', float('nan')), 's')} "
                f"(gates spread over the columns), then reads averaged ×{p.get('average', '?')} of "
                f"{_devices_text(_n(self.conductance, len(self.times)), p)}; time on the board's clock")

    def plot(self, path: Any) -> Any:
        from .plots import plot_retention

        return plot_retention(self, path)


def retention(board: Any, times: Any = (0.0, 1.0, 10.0, 100.0, 1000.0), *, rows: slice | None = None,
              gates: Any = None, v_set: float = 2.5, width: float = 1e-6, stride: int = 8, offset: int = 5,
              average: int = 8, session: Any = None, progress: Progress = None) -> RetentionResult:
    """Program a block (full RESET, then one SET per device with the gate spread over
    0.8-1.5 V across the columns unless ``gates`` (cols,) is given), then read it at each
    of ``times`` (s after programming, ascending), idling the board in between with
    ``board.wait`` (virtual time on the emulator). Devices as :func:`gate_sweep` (another
    ``offset``)."""
    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or t.size < 1 or np.any(np.diff(t) < 0) or t[0] < 0:
        raise LimitError("times must be ascending and >= 0")
    R, C = board.shape
    rows = _rows(board, rows, _default_rows(board))
    mask = _block_mask(board, rows, stride, offset)
    g_col = np.linspace(0.8, 1.5, C) if gates is None else np.broadcast_to(np.asarray(gates, float), (C,))
    _full_reset(board, mask, 1.7, 5.0, width, 2)
    board.pulse_set(mask, v=v_set, gate=np.broadcast_to(g_col, board.shape), width=width)
    out = np.empty((t.size, rows.stop - rows.start, C))
    now = 0.0
    for i, ti in enumerate(t):
        remaining = ti - now
        while remaining > 0:
            remaining -= board.wait(min(remaining, 3600.0))
        now = ti
        out[i] = _masked(board.read_conductance(average=average, rows=rows), mask[rows])
        if progress is not None:
            progress(i + 1, t.size)
    _full_reset(board, mask, 1.7, 5.0, width, 2)
    params = dict(v_set=v_set, width=width, average=average, row_start=rows.start, row_stop=rows.stop,
                  stride=stride, offset=offset)
    res = RetentionResult(t, out, np.arange(rows.start, rows.stop), params)
    _record(session, "retention", params, {"times": (t, "s"), "conductance": (out, "S"),
                                           "gates": (g_col, "V")})
    return res
