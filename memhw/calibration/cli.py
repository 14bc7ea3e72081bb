"""CLI commands ``memhw calibrate board`` and ``memhw sweep KIND``.

Wired into :func:`memhw.cli.build_parser` with ``add_commands(sub, add)``, where ``add``
is its ``add(name, fn, help)`` helper (adds ``--board``/``--timeout``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from ..errors import MemhwError

SWEEPS = ("gate", "reset", "iv", "noise", "retention")


def _connect(args: argparse.Namespace, calibration: Any = "auto") -> Any:
    from ..connection import connect

    return connect(args.board, timeout=args.timeout, calibration=calibration)


def _session(path: str | None) -> Any:
    if not path:
        return None
    from ..session import Session

    return Session(path, "a")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .board import calibrate_board, record_calibration
    from .files import calibration_path, save_calibration
    from .plots import plot_calibration

    with _connect(args, calibration=None) as board:
        cal = calibrate_board(board, average=args.average)
    print(f"calibrated board {cal.serial} (firmware {cal.firmware}, protocol {cal.protocol[0]}.{cal.protocol[1]})")
    for k, v in cal.summary().items():
        print(f"  {k:>28}: {v:.4g}")
    problems = cal.problems()
    for p in problems:
        print(f"  OUT OF BOUNDS: {p}")
    session = _session(args.out)
    if session is not None:
        with session:
            record_calibration(session, cal)
        print(f"recorded in {args.out}")
    if args.plot:
        print(f"plot: {plot_calibration(cal, args.plot)}")
    if args.save:
        target = Path(args.save_to) if args.save_to else calibration_path(cal.serial)
        path = save_calibration(cal, target, force=args.force)  # refuses out-of-bounds fits
        print(f"saved {path}")
    elif problems:
        return 1
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from . import sweeps

    with _connect(args) as board, (_session(args.out) or nullcontext()) as session:
        kw: dict[str, Any] = {"session": session}
        if args.kind == "gate":
            res = sweeps.gate_sweep(board, **kw)
            slope, icpt = res.fit()
            print(f"gate sweep: slope {slope * 1e6:.1f} uS/V, intercept {icpt * 1e6:.1f} uS (0.7-1.6 V)")
        elif args.kind == "reset":
            res = sweeps.reset_sweep(board, **kw)
            for a, f in zip(res.amplitudes, res.removed):
                print(f"  RESET {a:.2f} V removes {f * 100:5.1f} %")
        elif args.kind == "iv":
            res = sweeps.iv_sweep(board, v_max=args.v_max, **kw)
            for (r, c), g in zip(res.devices, res.conductance):
                print(f"  device ({r}, {c}): {g * 1e6:.2f} uS")
        elif args.kind == "noise":
            res = sweeps.read_noise(board, args.reads, **kw)
            print("  " + ", ".join(f"{k} {v:.4g}" for k, v in res.summary().items()))
        else:
            res = sweeps.retention(board, **kw)
            import numpy as np

            for t, d in zip(res.times, res.drift.reshape(len(res.times), -1)):
                print(f"  t = {t:8.1f} s: mean drift {np.nanmean(d) * 1e6:+.3f} uS")
    if args.out:
        print(f"recorded in {args.out}")
    if args.plot:
        print(f"plot: {res.plot(args.plot)}")
    return 0


def add_commands(subparsers: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``calibrate`` and ``sweep`` to the ``memhw`` parser (``add`` = build_parser's helper)."""
    sp = add("calibrate", cmd_calibrate, "calibrate the board against its on-board references")
    sp.add_argument("what", choices=["board"], help="what to calibrate")
    sp.add_argument("--save", action="store_true", help="save to the calibration directory (refused if out of bounds)")
    sp.add_argument("--save-to", metavar="FILE.h5", help="with --save: this file instead")
    sp.add_argument("--force", action="store_true", help="with --save: save even if residuals are out of bounds")
    sp.add_argument("--average", type=int, default=64, help="samples averaged per point")
    sp.add_argument("--out", metavar="FILE.h5", help="record the calibration in this session file")
    sp.add_argument("--plot", metavar="FILE.png", help="draw the fitted parameters")

    sp = add("sweep", cmd_sweep, "characterise the chip: gate, reset, iv, noise or retention sweep")
    sp.add_argument("kind", choices=SWEEPS)
    sp.add_argument("--out", metavar="FILE.h5", help="record the sweep in this session file")
    sp.add_argument("--plot", metavar="FILE.png", help="draw the result")
    sp.add_argument("--v-max", type=float, default=0.3, help="iv: largest |V| (<= 0.5 V)")
    sp.add_argument("--reads", type=int, default=32, help="noise: repeated reads")


__all__ = ["add_commands", "cmd_calibrate", "cmd_sweep", "MemhwError"]
