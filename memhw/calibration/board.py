"""Board self-calibration against the on-board references (opcodes READ_DAC, READ_REFERENCE).

1. **DACs** (rows, columns, gates): READ_DAC sets every channel of a group to a code and
   the board's monitor ADC measures each channel's actual output; a straight line per
   channel over the group's whole working range (reads and pulses) gives gain and offset.
2. **TIAs** (per column, per gain index): READ_REFERENCE switches reference resistor k
   into every column and drives it from the reference bus; the monitor measures the bus
   voltage, so I = V_bus / R_k (nominal, 0.1 % parts) is known. For each gain the
   routine uses the references that give 20-80 % of full scale with at least 0.4 V on the
   bus (so the monitor's offset does not matter), at both polarities, plus a zero point,
   and fits ``V_adc = -I * R_g * gain + offset`` per column.

The result is checked against :class:`~memhw.calibration.model.CalibrationBounds`
(:meth:`BoardCalibration.problems`); :func:`~memhw.calibration.files.save_calibration`
refuses one that fails.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from .._version import __version__
from ..errors import CalibrationError
from .files import now_iso
from .model import GROUPS, BoardCalibration, DacCalibration

__all__ = ["calibrate_board", "read_reference", "read_dac", "has_self_calibration", "record_calibration"]

log = logging.getLogger("memhw.calibration")


def has_self_calibration(board: Any) -> bool:
    """True when the board offers READ_REFERENCE and READ_DAC."""
    return board.supports("READ_REFERENCE") and board.supports("READ_DAC")


def _need(board: Any) -> None:
    if not has_self_calibration(board):
        i = board.info
        raise CalibrationError(f"board {i.serial} ({i.firmware}, protocol {i.protocol[0]}.{i.protocol[1]}) has no "
                               "self-calibration hardware (READ_REFERENCE, READ_DAC): calibration from on-board "
                               "references is not available on it")


def read_dac(board: Any, group: str, codes: Any, average: int = 16) -> np.ndarray:
    """Measured volts on every line of ``group`` ("ROWS", "COLS", "GATES") with its DACs at
    ``codes`` (one code or one per line), through the board's monitor ADC."""
    _need(board)
    return board.read_dac(group, np.atleast_1d(np.asarray(codes, dtype=np.int64)), average)


def read_reference(board: Any, index: int, v_ref: float, gain: Any = "auto", average: int = 16,
                   *, raw: bool = False) -> dict[str, Any]:
    """Read every column through reference resistor ``index`` with the bus at ``v_ref`` volts.

    Returns a dict: ``resistance`` (nominal, ohm), ``count``, ``v_bus`` (measured, V),
    ``gains`` (cols,), ``codes`` (cols,) mean ADC codes, ``current`` (cols,) A with the
    board's present conversion (calibrated if a calibration is applied; nominal with
    ``raw``), ``expected`` (V_bus / R nominal, A) and ``conductance`` (cols,) = current / v_bus, S.
    """
    _need(board)
    r = board.read_reference(index, v_ref, gain, average, nominal=raw)
    with np.errstate(divide="ignore", invalid="ignore"):
        conductance = r.currents / r.v_bus
    return {"resistance": r.resistance, "count": r.count, "tolerance": r.tolerance, "v_bus": r.v_bus,
            "gains": r.gains, "codes": r.codes, "current": r.currents, "expected": r.v_bus / r.resistance,
            "conductance": conductance}


def _line_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares y = a x + b for each column of y (x (n,) or (n, m), y (n, m)):
    slope, intercept, RMS residual, r^2."""
    x = np.broadcast_to(x if x.ndim == 2 else x[:, None], y.shape)
    xm, ym = x.mean(0), y.mean(0)
    sxx = ((x - xm) ** 2).sum(0)
    a = ((x - xm) * (y - ym)).sum(0) / sxx
    b = ym - a * xm
    res = y - (a * x + b)
    rms = np.sqrt((res**2).mean(0))
    sst = ((y - ym) ** 2).sum(0)
    r2 = 1.0 - (res**2).sum(0) / np.where(sst > 0, sst, np.inf)
    return a, b, rms, r2


def _dac_ranges(info: Any) -> dict[str, tuple[float, float, float]]:
    lim = info.limits
    return {"ROWS": (-lim.v_read, max(lim.v_read, lim.v_reset), info.dac_line_lsb),
            "COLS": (-lim.v_read, max(lim.v_read, lim.v_set), info.dac_line_lsb),
            "GATES": (0.0, lim.v_gate, info.dac_gate_lsb)}


def calibrate_board(board: Any, *, average: int = 16, dac_points: int = 9, bus_max: float = 4.0,
                    temperature: float | None = None,
                    progress: Callable[[str, int, int], None] | None = None) -> BoardCalibration:
    """Measure the board's DAC and TIA transfer functions; see the module docstring.

    Parameters
    ----------
    board : Board
        Protocol >= 1.2. Whatever calibration it has applied is ignored (the fits use
        the nominal conversions) and left as it was.
    average : int
        Samples averaged per point (ADC and monitor).
    dac_points : int
        Codes per DAC channel, evenly over the group's working range.
    bus_max : float
        Largest |reference bus| voltage, V.
    temperature : float, optional
        Board temperature, °C, if known (recorded).
    progress : callable(stage, done, total), optional

    Returns
    -------
    BoardCalibration
        With ``points`` holding the raw fit data. Check ``problems()`` or let
        ``save_calibration`` refuse it.
    """
    _need(board)
    info = board.info
    n = {"ROWS": info.rows, "COLS": info.cols, "GATES": info.cols}
    steps = 3 + len(info.tia_gains)
    done = 0

    def tick(stage: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(stage, done, steps)

    # ---- DACs
    dac: dict[str, DacCalibration] = {}
    points: dict[str, Any] = {}
    for group in GROUPS:
        lo, hi, lsb = _dac_ranges(info)[group]
        codes = np.unique(np.rint(np.linspace(lo, hi, dac_points) / lsb).astype(np.int64))
        volts = np.stack([read_dac(board, group, c, average) for c in codes])  # (points, lines)
        a, b, rms, r2 = _line_fit(codes * lsb, volts)
        dac[group] = DacCalibration(gain=a, offset=b, residual=rms, r2=r2)
        points[f"dac_{group.lower()}_codes"] = codes
        points[f"dac_{group.lower()}_volts"] = volts
        assert volts.shape == (codes.size, n[group])
        tick(f"DAC {group}")

    # ---- references
    first = read_reference(board, 0, 0.0, gain="auto", average=1, raw=True)
    refs = [first["resistance"]] + [read_reference(board, k, 0.0, gain="auto", average=1, raw=True)["resistance"]
                                    for k in range(1, first["count"])]
    refs_arr = np.asarray(refs)

    # ---- TIAs
    fs = (1 << (info.adc_bits - 1)) * info.adc_lsb
    n_g = len(info.tia_gains)
    tia_gain = np.ones((info.cols, n_g))
    tia_offset = np.zeros((info.cols, n_g))
    tia_res = np.zeros((info.cols, n_g))
    tia_r2 = np.ones((info.cols, n_g))
    for g, r_g in enumerate(info.tia_gains):
        plan = []
        for k, r_k in enumerate(refs):
            v = min(0.8 * fs * r_k / r_g, bus_max)
            if v >= 0.4 and v * r_g / (r_k * fs) >= 0.2:
                plan += [(k, s * v) for s in (-1.0, -0.5, 0.5, 1.0)]
        if not plan:
            raise CalibrationError(f"no reference resistor gives a usable signal at gain {g} ({r_g:g} ohm); "
                                   f"references {refs}")
        plan.append((plan[0][0], 0.0))
        currents, adc_v = [], []
        for k, v in plan:
            rd = read_reference(board, k, v, gain=g, average=average, raw=True)
            if np.any(rd["gains"] != g):
                raise CalibrationError(f"board used gain {rd['gains']} instead of {g} for reference {k}")
            currents.append(rd["expected"])
            adc_v.append(rd["codes"] * info.adc_lsb)
        I = np.asarray(currents)
        V = np.asarray(adc_v)  # (points, cols)
        if np.any(np.abs(V) >= 0.999 * fs):
            raise CalibrationError(f"gain {g}: a reference reading saturated the ADC")
        a, b, rms, r2 = _line_fit(I, V)
        tia_gain[:, g] = -a / r_g
        tia_offset[:, g] = b
        tia_res[:, g] = rms / np.abs(V).max(axis=0)
        tia_r2[:, g] = r2
        points[f"tia_{g}_current"] = I
        points[f"tia_{g}_adc_volts"] = V
        points[f"tia_{g}_plan"] = np.asarray(plan)
        tick(f"TIA gain {g}")

    cal = BoardCalibration(
        serial=info.serial, firmware=info.firmware, protocol=tuple(info.protocol), date=now_iso(),
        rows=info.rows, cols=info.cols, tia_gains=tuple(info.tia_gains), dac_line_lsb=info.dac_line_lsb,
        dac_gate_lsb=info.dac_gate_lsb, adc_lsb=info.adc_lsb, dac=dac, tia_gain=tia_gain, tia_offset=tia_offset,
        tia_residual=tia_res, tia_r2=tia_r2, references=refs_arr, temperature=temperature,
        meta={"method": "reference resistors + DAC read-back", "average": average, "dac_points": dac_points,
              "bus_max": bus_max, "memhw_version": __version__, "address": info.address},
        points=points,
    )
    log.info("calibrated board %s: %s", info.serial,
             ", ".join(f"{k}={v:.3g}" for k, v in cal.summary().items() if "max" in k))
    return cal


def record_calibration(session: Any, cal: BoardCalibration, **attrs: Any) -> None:
    """Store ``cal`` (fit parameters, residuals and raw points) as a ``calibration`` run of
    a :class:`memhw.session.Session`."""
    with session.run("calibration", serial=cal.serial, firmware=cal.firmware, date=cal.date,
                     calibration_id=cal.id, problems=len(cal.problems()), tia_gains=list(cal.tia_gains),
                     **cal.summary(), **attrs) as run:
        for g in GROUPS:
            d = cal.dac[g]
            run.write(f"dac_{g.lower()}_gain", d.gain, unit="1")
            run.write(f"dac_{g.lower()}_offset", d.offset, unit="V")
            run.write(f"dac_{g.lower()}_residual", d.residual, unit="V")
        run.write("tia_gain", cal.tia_gain, unit="1")
        run.write("tia_offset", cal.tia_offset, unit="V")
        run.write("tia_residual", cal.tia_residual, unit="1")
        run.write("references", cal.references, unit="ohm")
        for name, arr in cal.points.items():
            run.write(f"points_{name}", np.asarray(arr, dtype=float))
