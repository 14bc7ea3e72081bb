"""``memhw.program``: closed-loop write-and-verify of any subset of the array.

Each round costs a constant number of requests whatever the number of
devices: one averaged conductance read of the rows involved, one batched SET
(per-device gates) and one batched RESET (per-device amplitudes). The
planning is done by :mod:`memhw.algorithms.tuning`; with ``on_board=True``
the board runs the very same loop itself from one PROGRAM request.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable

import numpy as np

from ..algorithms.tuning import (
    TUNERS,
    Plan,
    Reason,
    TuningConfig,
    estimate_read_sigma,
    noise_sample,
    run_tuning,
    to_verify,
    verify_average,
    verify_gain,
)
from ..board import WAIT_MAX, Board
from ..conversions import READ_VOLTAGE
from ..errors import LimitError, OperationAborted
from .result import ProgramResult

__all__ = ["program", "DEFAULTS"]

#: configuration per algorithm when the caller gives none (DOMAIN.md §1 voltages;
#: the baseline keeps its published budgets: 200 steps)
DEFAULTS = {
    "adaptive": TuningConfig(),
    "baseline": TuningConfig(max_pulses=200, max_rounds=200, patience=200, gate_min=0.5, gate_max=1.4, reset_v_max=1.5,
                             reset_v_min=0.3, set_v=3.0),
}
#: largest target accepted at all (beyond any 1T1R device of this kind, DOMAIN.md §2.7)
G_TARGET_MAX = 1e-3



def _prior_curve(prior: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """A gate -> conductance prior from a sweep result or a (gates, G) pair."""
    if prior is None:
        return None
    try:
        gates, g = (prior.gates, prior.conductance) if hasattr(prior, "gates") else prior
        gates, g = np.asarray(gates, float), np.asarray(g, float)
    except (TypeError, ValueError):
        raise LimitError("prior must be a gate sweep result (memhw.calibration.gate_sweep) or a pair "
                         f"(gates, conductances), got {type(prior).__name__}") from None
    if gates.ndim != 1 or gates.size < 2 or g.shape[:1] != gates.shape or g.ndim > 2:
        raise LimitError("prior must give gates (n,) and conductances (n,) or (n, cols)")
    if not (np.isfinite(gates).all() and np.isfinite(g).all()):
        raise LimitError("prior contains NaN or infinity")
    order = np.argsort(gates)
    return gates[order], np.maximum.accumulate(g[order], axis=0)


def _positive(name: str, value: Any, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise LimitError(f"{name} must be a number of {unit}, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise LimitError(f"{name} must be a finite number of {unit} > 0, got {value!r}")
    return v


def _validate(board: Board, targets: Any, mask: Any, tolerance: Any) -> tuple[np.ndarray, np.ndarray]:
    shape = board.shape
    raw = np.asarray(targets)
    if raw.dtype.kind not in "iuf":
        raise LimitError(f"targets: expected conductances in siemens (a number or an array of numbers), "
                         f"got {raw.dtype} data")
    try:
        t = np.broadcast_to(raw.astype(float), shape).copy()
    except ValueError:
        raise LimitError(f"targets: shape {np.shape(targets)} does not fit the array {shape}") from None
    m = np.ones(shape, bool) if mask is None else np.asarray(mask)
    if m.dtype != bool or m.shape != shape:
        raise LimitError(f"mask: expected a boolean array of shape {shape}, got {m.dtype} {m.shape}")
    if not np.isfinite(t[m]).all():
        raise LimitError("targets: NaN or infinity among the selected devices")
    if (t[m] < 0).any() or (t[m] > G_TARGET_MAX).any():
        raise LimitError(f"targets (siemens) must lie in [0, {G_TARGET_MAX * 1e6:.0f}] µS; got "
                         f"{t[m].min() * 1e6:.4g} .. {t[m].max() * 1e6:.4g} µS")
    _positive("tolerance", tolerance, "siemens")
    return t, m


def _check_config(cfg: TuningConfig, lim: Any) -> None:
    """Every voltage and width the loop may use, against the limits in force,
    before anything is sent."""
    checks = [("set_v", cfg.set_v, lim.v_set), ("gate_min", cfg.gate_min, cfg.gate_max),
              ("gate_max", cfg.gate_max, lim.v_gate), ("reset_v_min", cfg.reset_v_min, cfg.reset_v_max),
              ("reset_v_max", cfg.reset_v_max, lim.v_reset), ("reset_gate", cfg.reset_gate, lim.v_gate)]
    for name, value, hi in checks:
        if not 0 < value <= hi:
            raise LimitError(f"tuning {name} = {value:g} V is outside (0, {hi:g}] V (the limits in force)")
    for name in ("set_width", "reset_width", "reset_width_min"):
        w = getattr(cfg, name)
        if not lim.width_min - 1e-12 <= w <= lim.width_max:
            raise LimitError(f"tuning {name} = {w:g} s is outside [{lim.width_min:g}, {lim.width_max:g}] s")


def program(
    board: Board,
    targets: Any,
    tolerance: float = 2e-6,
    mask: Any = None,
    *,
    algorithm: str = "adaptive",
    on_board: bool = False,
    config: TuningConfig | None = None,
    average: int | None = None,
    relax_delay: float = 0.0,
    v_read: float = READ_VOLTAGE,
    prior: Any = None,
    progress: bool | Callable[[dict], None] = False,
    session: Any = None,
) -> ProgramResult:
    """Program devices to target conductances by write-and-verify.

    Parameters
    ----------
    board : Board
    targets : float or (rows, cols) array
        Target conductances, S.
    tolerance : float
        A device is done when its verified conductance is within ± tolerance, S.
    mask : bool (rows, cols), optional
        Devices to program (default: all).
    algorithm : {"adaptive", "baseline"}
        memhw's learning loop, or the published ramp loop (DOMAIN.md).
    on_board : bool
        Let the board run the loop (one PROGRAM request per block of rows).
    config : TuningConfig, optional
        Voltages, widths and budgets (defaults per algorithm: :data:`DEFAULTS`).
    average : int, optional
        Samples per verify reading; default: measured read noise decides
        (the baseline, as published, reads once).
    relax_delay : float
        If > 0, wait this long after convergence (devices relax), verify
        again and re-tune those that drifted out of tolerance (at most 3600 s).
    v_read : float
        Verify-read voltage, V (at most the read limit in force).
    prior : sweep result or (gates, conductances), optional
        Measured gate -> conductance curve of this chip to start from.
    progress : bool or callable
        True shows a progress bar; a callable gets a dict per round.
    session : memhw.Session, optional
        Record the run (targets, per-round state) for reports and ``--resume``.

    Returns
    -------
    ProgramResult

    Raises
    ------
    LimitError
        Bad targets, mask, tolerance or options (nothing is sent).
    NotSupported
        ``on_board`` on a board that does not run the loop itself.
    """
    if not isinstance(board, Board):
        raise LimitError(f"board must be a memhw.Board (from memhw.connect), got {type(board).__name__}")
    if algorithm not in TUNERS:
        raise LimitError(f"algorithm must be one of {sorted(TUNERS)}, got {algorithm!r}")
    t, m = _validate(board, targets, mask, tolerance)
    if config is not None and not isinstance(config, TuningConfig):
        raise LimitError(f"config must be a TuningConfig, got {type(config).__name__}")
    base = config or DEFAULTS[algorithm]
    cfg = TuningConfig(**{**base.__dict__, "tolerance": float(tolerance)})
    _check_config(cfg, board.limits)
    if average is not None and (isinstance(average, bool) or not isinstance(average, (int, np.integer))
                                or not 1 <= average <= 0xFFFF):
        raise LimitError(f"average must be None (measured) or an integer in 1..65535, got {average!r}")
    relax_delay = float(_positive("relax_delay", relax_delay, "seconds")) if relax_delay else 0.0
    if relax_delay > WAIT_MAX:
        raise LimitError(f"relax_delay must be at most {WAIT_MAX:g} s, got {relax_delay:g}")
    v_read = _positive("v_read", v_read, "volts")
    if v_read > board.limits.v_read:
        raise LimitError(f"v_read: {v_read:g} V is above the read limit {board.limits.v_read:g} V")
    if on_board:
        board.require("PROGRAM")
    if session is not None and not hasattr(session, "run"):
        raise LimitError(f"session must be a memhw.Session (open one with memhw.Session(path)), got {session!r}")
    if not (isinstance(progress, bool) or callable(progress)):
        raise LimitError(f"progress must be True, False or a callable, got {progress!r}")
    gate_prior = _prior_curve(prior)
    stats = board.link.stats
    trips0, bytes0, t0 = stats.round_trips, stats.bytes_total, time.perf_counter()
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        raise LimitError("mask selects no device")
    block = slice(int(rows[0]), int(rows[-1]) + 1)

    run = session.run("program", algorithm=algorithm, on_board=on_board, tolerance=tolerance) if session else None
    if run is not None:
        run.write("targets", t, unit="S")
        run.write("mask", m)
    reporter = _Reporter(progress, int(m.sum()))
    try:
        if on_board:
            out = _program_on_board(board, t, m, cfg, algorithm, average, v_read, reporter)
        else:
            out = _program_on_host(board, t, m, cfg, algorithm, block, average, relax_delay, v_read, gate_prior,
                                   reporter, run)
    except BaseException as exc:
        if run is not None:
            interrupted = isinstance(exc, (KeyboardInterrupt, OperationAborted))
            run.close(status="interrupted" if interrupted else "error", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        reporter.close()
    result = ProgramResult(
        targets=t, mask=m, tolerance=float(tolerance), algorithm=algorithm, on_board=on_board,
        wall_time=time.perf_counter() - t0, round_trips=stats.round_trips - trips0,
        wire_bytes=stats.bytes_total - bytes0, **out)
    if run is not None:
        for name in ("achieved", "set_pulses", "reset_pulses", "reasons", "converged"):
            run.write(name, getattr(result, name), **({"unit": "S"} if name == "achieved" else {}))
        run.close(status="complete")
    _record_health(board, result)
    return result


# ---------------------------------------------------------------- device health hook
def _record_health(board: Board, result: ProgramResult) -> None:
    """Fold the run into the board's stored device-health map (:mod:`memhw.health`).
    Bookkeeping only: a failure is logged and never fails the programming run."""
    try:
        from ..health import record

        record(board, result)
    except Exception:  # noqa: BLE001 -- never let the health map break programming
        logging.getLogger("memhw.health").warning("could not update the health map of board %s",
                                                  getattr(board.info, "serial", "?"), exc_info=True)


class _Reporter:
    """Progress bar (:mod:`memhw.progress`) or callback per round."""

    def __init__(self, progress: bool | Callable[[dict], None], total: int):
        self.callback = progress if callable(progress) else None
        self.bar = None
        if progress is True:
            from ..progress import progress as bar

            self.bar = bar(total, "programming", unit="devices converged")

    def __call__(self, round_: int, pending: int, converged: int) -> None:
        if self.callback is not None:
            self.callback({"round": round_, "pending": pending, "converged": converged})
        if self.bar is not None:
            self.bar.update_to(converged, round=round_, pending=pending)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _verify_gain(board: Board, targets: np.ndarray, tolerance: float, v_read: float) -> int | str:
    """The TIA gain of every verify read: one gain on a calibrated board (:func:`verify_gain`);
    ``"auto"`` on an uncalibrated one, whose gains disagree by their uncorrected errors, so
    that a verify read agrees with the auto-ranged reads a user makes afterwards."""
    if board.calibration is None:
        return "auto"
    return verify_gain(board.codes.transfer, targets, tolerance, v_read)


def _program_on_host(board: Board, t: np.ndarray, m: np.ndarray, cfg: TuningConfig, algorithm: str,
                     block: slice, average: int | None, relax_delay: float, v_read: float, gate_prior, reporter,
                     run) -> dict:
    shape = board.shape
    sparse = board.supports("READ_DEVICES")  # verify reads carry only the devices still being tuned

    def read(avg: int, devices: np.ndarray) -> np.ndarray:
        if sparse:
            return board.read_devices(devices, v_read=v_read, average=avg, gain=gain)
        g = np.full(shape, np.nan)
        g[block] = board.read_conductance(v_read=v_read, average=avg, rows=block)
        return g

    gain = _verify_gain(board, t[m], cfg.tolerance, v_read)
    # read noise from two reads of a sample of the devices (every device when the board reads whole rows)
    sample = noise_sample(m) if sparse else m
    sigma_rel = estimate_read_sigma(read(1, sample)[sample], read(1, sample)[sample])
    if average is None:
        average = 1 if algorithm == "baseline" else verify_average(sigma_rel, t[m], cfg.tolerance)
    sigma = sigma_rel * np.maximum(t, 1e-6) / np.sqrt(average)
    tuner = TUNERS[algorithm](t, m, cfg, sigma_meas=sigma, gate_prior=gate_prior)
    history: dict[str, list] = {k: [] for k in ("pending", "converged", "set", "reset", "rms_error")}
    known = np.full(shape, np.nan)

    def measure() -> np.ndarray:
        devices = to_verify(tuner) if sparse else m
        g = read(average, devices)
        known[devices] = g[devices]
        return known.copy()

    def on_round(tn, g: np.ndarray) -> None:
        pend, conv = int(tn.pending.sum()), int(tn.converged.sum())
        history["pending"].append(pend)
        history["converged"].append(conv)
        history["rms_error"].append(float(np.sqrt(np.nanmean((g - t)[m] ** 2))))
        reporter(tn.rounds, pend, conv)
        if run is not None:
            run.append("round_g", g.astype(np.float32), unit="S")
            run.append("round_reasons", tn.reasons)
            run.flush()

    def apply(plan: Plan) -> None:
        history["set"].append(int(plan.set_mask.sum()))
        history["reset"].append(int(plan.reset_mask.sum()))
        if plan.set_mask.any():
            board.pulse_set(plan.set_mask, v=plan.set_v, gate=plan.set_gate, width=plan.set_width)
        if plan.reset_mask.any():
            board.pulse_reset(plan.reset_mask, v=plan.reset_v, gate=plan.reset_gate, width=plan.reset_width)

    final = run_tuning(tuner, measure, apply, on_round)
    if relax_delay > 0:
        board.wait(relax_delay)
        final = run_tuning(tuner, measure, apply, on_round)
    return {
        "achieved": np.where(m, final, np.nan), "converged": tuner.converged.copy(),
        "set_pulses": tuner.set_pulses.copy(), "reset_pulses": tuner.reset_pulses.copy(),
        "reasons": tuner.reasons.copy(), "rounds": tuner.rounds, "verify_average": int(average),
        "read_sigma": float(sigma_rel), "history": {k: np.asarray(v) for k, v in history.items()},
    }


def _program_on_board(board: Board, t: np.ndarray, m: np.ndarray, cfg: TuningConfig, algorithm: str,
                      average: int | None, v_read: float, reporter) -> dict:
    if average is None:
        average = 1 if algorithm == "baseline" else 0  # 0: the board decides from its read noise
    history: dict[str, list] = {"pending": [], "converged": []}

    def on_progress(rep: dict) -> None:
        history["pending"].append(int(rep["pending"]))
        history["converged"].append(int(rep["converged"]))
        reporter(int(rep["round"]), int(rep["pending"]), int(rep["converged"]))

    r = board.program_on_board(t, m, cfg, algorithm=algorithm, verify_average=average, v_read=v_read,
                               progress=on_progress)
    return {
        "achieved": r.achieved, "converged": r.reasons == Reason.CONVERGED, "set_pulses": r.set_pulses,
        "reset_pulses": r.reset_pulses, "reasons": r.reasons, "rounds": r.rounds, "verify_average": int(average),
        "read_sigma": float("nan"), "history": {k: np.asarray(v) for k, v in history.items()},
    }
