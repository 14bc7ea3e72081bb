"""CLI commands ``memhw calibrate board`` and ``memhw sweep KIND``.

Wired into :func:`memhw.cli.build_parser` with ``add_commands(sub, add)``, where ``add``
is its ``add(name, fn, help)`` helper (adds ``--board``/``--timeout``). Every output is
checked before the board is touched (:mod:`memhw.outputs`); session files record the
board and the command line (:func:`memhw.clicommon.session_output`).
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from typing import Any, Callable

import numpy as np

from ..cliargs import positive_int
from ..clicommon import connect_board, session_output
from ..errors import MemhwError
from ..outputs import SESSION, add_output_flags, check_figure, check_record
from ..progress import progress
from ..units import US

SWEEPS = ("gate", "reset", "iv", "noise", "retention")
#: defaults of the options that apply to one kind of sweep only
_ONLY = {"v_max": ("iv", 0.3), "reads": ("noise", 32)}


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``memhw calibrate board``: fit, print, record (``--out``), draw (``--plot``), save
    (``--save``/``--save-to``); exit status 1 for an out-of-bounds fit that was not saved."""
    from .board import calibrate_board, record_calibration
    from .files import calibration_path, find_calibration, save_calibration
    from .plots import plot_calibration
    from .text import summary_lines

    save = args.save or args.save_to is not None
    if args.accept_out_of_bounds and not save:
        raise MemhwError("--accept-out-of-bounds goes with --save or --save-to")
    target = check_record(args.save_to, "--save-to", SESSION, args.force) if args.save_to else None
    out = session_output(args, force_also=("save_to",))
    check_figure(args.plot)
    with connect_board(args, calibration=None) as board, (out.open(board) if out else nullcontext()) as session:
        with progress(None, "calibrating", unit="stages") as bar:
            cal = calibrate_board(board, average=args.average, progress=bar.stage_callback)
        if session is not None:
            record_calibration(session, cal)
    print(f"calibrated board {cal.serial} (firmware {cal.firmware}, protocol {cal.protocol[0]}.{cal.protocol[1]})")
    for line in summary_lines(cal.summary()):
        print(f"  {line}")
    problems = cal.problems()
    for p in problems:
        print(f"  OUT OF BOUNDS: {p}")
    if out is not None:
        print(f"recorded in {out.path}")
    if args.plot:
        print(f"plot: {plot_calibration(cal, args.plot)}")
    if save:
        path = target or calibration_path(cal.serial)
        previous = find_calibration(cal.serial, path.parent) if target is None else None
        # refuses out-of-bounds fits unless told
        path = save_calibration(cal, path, force=args.accept_out_of_bounds)
        print(f"saved {path}" + (" (replacing the previous calibration of this board)" if previous == path else ""))
    elif problems:
        return 1
    return 0


def _only_for(args: argparse.Namespace) -> None:
    """Refuse options that do not apply to the sweep asked for (they would be ignored)."""
    for name, (kind, default) in _ONLY.items():
        value = getattr(args, name)
        if value is not None and args.kind != kind:
            raise MemhwError(f"--{name.replace('_', '-')} applies to `memhw sweep {kind}` only")
        if value is None:
            setattr(args, name, default)


def _run_sweep(board: Any, args: argparse.Namespace, session: Any, bar: Any) -> Any:
    """Run the sweep ``args.kind`` and print its result; returns the result object."""
    from . import sweeps

    kw: dict[str, Any] = {"session": session, "progress": bar.callback}
    if args.kind == "gate":
        res = sweeps.gate_sweep(board, **kw)
        slope, icpt = res.fit()
        print(f"gate sweep: {slope * 1e6:.1f} {US}/V × Vg + {icpt * 1e6:.1f} {US} (fit over 0.7–1.6 V)")
    elif args.kind == "reset":
        res = sweeps.reset_sweep(board, **kw)
        for a, f in zip(res.amplitudes, res.removed):
            print(f"  RESET {a:.2f} V removes {f * 100:5.1f} %")
    elif args.kind == "iv":
        res = sweeps.iv_sweep(board, v_max=args.v_max, **kw)
        for (r, c), g in zip(res.devices, res.conductance):
            print(f"  device ({r}, {c}): {g * 1e6:.2f} {US}")
    elif args.kind == "noise":
        res = sweeps.read_noise(board, args.reads, **kw)
        print("  " + res.describe())
    else:
        res = sweeps.retention(board, **kw)
        for t, d in zip(res.times, res.drift.reshape(len(res.times), -1)):
            print(f"  t = {t:8.1f} s: mean drift {np.nanmean(d) * 1e6:+.3f} {US}")
    return res


def cmd_sweep(args: argparse.Namespace) -> int:
    """``memhw sweep KIND``: run one characterisation sweep with a progress bar, record and draw it."""
    _only_for(args)
    out = session_output(args)
    check_figure(args.plot)
    with connect_board(args) as board, (out.open(board) if out else nullcontext()) as session:
        with progress(None, f"sweep {args.kind}", unit="steps") as bar:
            res = _run_sweep(board, args, session, bar)
    if out is not None:
        print(f"recorded in {out.path}")
    if args.plot:
        print(f"plot: {res.plot(args.plot)}")
    return 0


def add_commands(subparsers: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``calibrate`` and ``sweep`` to the ``memhw`` parser (``add`` = build_parser's helper)."""
    sp = add("calibrate", cmd_calibrate, "calibrate the board against its on-board references")
    sp.add_argument("what", choices=["board"], help="what to calibrate")
    sp.add_argument("--save", action="store_true",
                    help="save it as this board's calibration, applied on every connect: in $MEMHW_CALIBRATION_DIR "
                         "if set, else the per-user data folder (replacing this board's previous one); refused if "
                         "out of bounds")
    sp.add_argument("--save-to", metavar="FILE.h5", help="save it to this file instead (implies --save)")
    sp.add_argument("--accept-out-of-bounds", action="store_true",
                    help="save even if fits are out of bounds (such a file is never applied automatically)")
    sp.add_argument("--average", type=positive_int, default=64, help="samples averaged per point")
    sp.add_argument("--out", metavar="FILE.h5", help="record the calibration in this session file")
    add_output_flags(sp, "--out or --save-to")
    sp.add_argument("--plot", metavar="FILE.png", help="draw the fitted parameters (replaced)")

    sp = add("sweep", cmd_sweep, "characterise the chip: gate, reset, iv, noise or retention sweep")
    sp.add_argument("kind", choices=SWEEPS)
    sp.add_argument("--out", metavar="FILE.h5", help="record the sweep in this session file")
    add_output_flags(sp)
    sp.add_argument("--plot", metavar="FILE.png", help="draw the result (replaced)")
    sp.add_argument("--v-max", type=float, default=None, help="iv: largest |V| (<= 0.5 V; default 0.3)")
    sp.add_argument("--reads", type=positive_int, default=None, help="noise: repeated reads (default 32)")


__all__ = ["add_commands", "cmd_calibrate", "cmd_sweep", "MemhwError"]
