"""CLI command ``memhw program``: write-and-verify from a file, picture or pattern, and
``--resume`` of an interrupted run.

Wired into :func:`memhw.cli.build_parser` with ``add_commands(sub, add)`` (as
:mod:`memhw.calibration.cli`). Everything the command will write and read is checked
before the board is touched; what the chip can reach is said before programming starts.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..cliargs import fraction, microsiemens, microsiemens_range
from ..clicommon import EXIT_BELOW_GOAL, connect_board, session_output
from ..errors import MemhwError
from ..outputs import add_output_flags, check_figure
from ..units import US, us

__all__ = ["add_commands", "cmd_program", "DEFAULT_RANGE"]

#: conductance range of pictures and patterns, µS (the documented whole-array range, docs/programming.md)
DEFAULT_RANGE = "20:200"
#: more targets than this share above what the chip reaches are refused before programming
UNREACHABLE_SHARE = 0.01


def _check_inputs(args: argparse.Namespace) -> Any:
    """Targets file and prior, read and checked before the board is touched; returns the prior."""
    from ..targets import IMAGE_SUFFIXES, is_file_spec, read_target_file

    if args.other_board:
        raise MemhwError("--other-board only goes with --resume FILE.h5")
    if args.seed is not None and args.targets != "random":
        raise MemhwError("--seed only goes with the pattern `random`")
    if args.prior is not None and args.on_board:
        raise MemhwError("--prior seeds the host's planner; the board's own loop (--on-board) does not take one")
    if not args.targets:
        raise MemhwError("give TARGETS (a .npy/.h5 file in siemens, a picture or a pattern name) or --resume FILE.h5")
    if is_file_spec(args.targets):
        if args.range is not None:
            raise MemhwError(f"--range maps pictures and patterns; {args.targets} holds conductances in siemens")
        read_target_file(args.targets)  # one line naming the file if it is not conductances in siemens
    elif Path(args.targets).suffix.lower() in IMAGE_SUFFIXES and not Path(args.targets).is_file():
        raise MemhwError(f"{args.targets}: no such file")
    if args.prior is None:
        return None
    from ..calibration.recorded import gate_curve_from_file

    return gate_curve_from_file(args.prior)


def _check_reach(board: Any, targets: np.ndarray, g_range: tuple[float, float], args: argparse.Namespace,
                 prior: Any) -> None:
    """Say what the chip can reach; refuse targets above it (they would end 'target too high')."""
    from ..targets import is_file_spec
    from . import DEFAULTS
    from .reach import set_reach

    reach = set_reach(board.limits, DEFAULTS[args.algorithm], prior, prior_source=f"gate sweep in {args.prior}")
    print(f"targets {us(targets.min(), 1)} – {us(targets.max(), 1)}; the chip reaches {reach}")
    above = int((targets > reach.high).sum())
    if above > UNREACHABLE_SHARE * targets.size:
        fix = ("lower the targets" if is_file_spec(args.targets)
               else f"give --range {g_range[0] * 1e6:g}:{reach.high * 1e6:.0f} or lower")
        raise MemhwError(f"{above} of {targets.size} targets are above {us(reach.high, 0)}, the most this chip "
                         f"reaches (they would end 'target too high'): {fix}")
    if above:
        print(f"note: {above} targets are above {us(reach.high, 0)} and will likely end 'target too high'")


def cmd_program(args: argparse.Namespace) -> int:
    """``memhw program``: check the targets and every output, connect, say what the chip
    reaches, program (recording to ``--out``), draw ``--plot``; returns the exit status."""
    from . import program
    from ..targets import load_targets

    if args.resume:
        return _resume(args)
    prior = _check_inputs(args)
    out = session_output(args)
    check_figure(args.plot)
    g_range = args.range or microsiemens_range(DEFAULT_RANGE)
    with connect_board(args) as board:
        targets = load_targets(args.targets, board.shape, g_range, seed=args.seed or 0)
        _check_reach(board, targets, g_range, args, prior)
        with out.open(board) if out else nullcontext() as session:  # nothing written before this point
            if session is not None:
                session.attrs["targets_source"] = args.targets
            result = program(board, targets, tolerance=args.tolerance, algorithm=args.algorithm,
                             on_board=args.on_board, progress=True, session=session, prior=prior)
        print(result)
        if args.plot:
            print(f"wrote {result.plot(args.plot, context=f'board {board.info.serial}, targets {args.targets}')}")
    if out is not None:
        print(f"wrote {out.path}")
    return _goal_status(result.converged[result.mask].mean(), args.goal)


def _goal_status(share: float, goal: float) -> int:
    """Exit status of a programming command: 0 when the ``share`` of the devices converged
    meets the goal, else :data:`EXIT_BELOW_GOAL` with a line saying so."""
    if share >= goal:
        return 0
    print(f"memhw: below goal: {share:.2%} of the selected devices converged, --goal is {goal:.2%}",
          file=sys.stderr)
    return EXIT_BELOW_GOAL


def _resume(args: argparse.Namespace) -> int:
    """Continue the last programming run of a session file on the board it ran on.

    Checks the board's identity (serial and chip) against the file first; reconciles by
    reading the array before any pulse: a device counts as done only if the file says it
    converged *and* it reads within tolerance now (a crash may have left pulses that
    were sent but never confirmed, :func:`memhw.session.pulse_ledger`)."""
    from ..algorithms.tuning import Reason
    from ..session import Session, load, pulse_ledger
    from . import program

    if args.targets or args.out or args.force or args.append or args.prior or args.range or args.seed is not None \
            or args.plot:
        raise MemhwError("--resume FILE.h5 continues that file's run with its own targets: give no TARGETS, "
                         "--out, --force, --append, --prior, --range, --seed or --plot")
    path = Path(args.resume)
    s = load(path)
    try:
        run = s.last_run("program")
        if run is None:
            raise MemhwError(f"{path}: no programming run to resume")
        targets, mask = run.read("targets"), run.read("mask").astype(bool)
        names = set(run.names())
        if "reasons" in names:                      # the run finished: its final verdicts
            reasons = run.read("reasons")
        elif "round_reasons" in names and len(run.read("round_reasons")):
            reasons = run.read("round_reasons")[-1]  # interrupted: the last flushed round
        else:  # e.g. an on-board run: the board reports only at the end
            reasons = np.zeros(targets.shape, np.int8)
            print(f"{path}: the interrupted run recorded no per-round state; programming every device again")
        recorded = mask & (reasons == Reason.CONVERGED)
        tolerance = float(run.attrs["tolerance"])
        algorithm = str(run.attrs.get("algorithm", "adaptive"))
        was = run.status
        where = {k: run.attrs.get(k, s.attrs.get(k)) for k in ("board_serial", "board_chip", "board_address")}
        ledger = pulse_ledger(s)
    finally:
        s.close()
    with connect_board(args) as board:
        info = board.info
        if (where["board_serial"], where["board_chip"] or info.chip) != (info.serial, info.chip) \
                and not args.other_board:
            raise MemhwError(
                f"{path} was recorded on board {where['board_serial']} (chip {where['board_chip'] or '?'}) at "
                f"{where['board_address']}; {args.board} is board {info.serial} (chip {info.chip or '?'}): not "
                "resuming on another board or chip. Give --board the address of that board (an in-process "
                "mock:// is a new chip every time: serve one with `memhw mock serve` to keep it), or pass "
                "--other-board to program this one anyway")
        if ledger.unconfirmed:
            print(f"{path}: {ledger.unconfirmed} pulses were sent but never confirmed (the run was cut off); "
                  "reading the array before pulsing again")
        g = board.read_conductance(average=16)
        done = recorded & (np.abs(g - targets) <= tolerance)
        print(f"resuming {path}: last run {was}; {int(recorded.sum())} of {int(mask.sum())} devices had "
              f"converged, {int(done.sum())} still read within ±{us(tolerance, 1)}; "
              f"{int((mask & ~done).sum())} to program")
        with Session(path, "a", command=getattr(args, "command_line", None)) as session:
            session.attach(board)
            todo = mask & ~done
            if todo.any():
                result = program(board, targets, tolerance=tolerance, mask=todo, algorithm=algorithm,
                                 on_board=args.on_board, progress=True, session=session)
                print(result)
            else:
                print("nothing left to program")
            g = board.read_conductance(average=16)
    ok = np.abs(g - targets)[mask] <= tolerance
    print(f"whole run: {int(ok.sum())}/{int(mask.sum())} devices within ±{us(tolerance, 1)} now")
    return _goal_status(float(ok.mean()), args.goal)


def add_commands(subparsers: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``program`` to the ``memhw`` parser (``add`` = build_parser's helper)."""
    sp = add("program", cmd_program, "program target conductances by write-and-verify")
    sp.add_argument("targets", nargs="?", help="FILE.npy or FILE.h5[:DATASET] (conductances in siemens), a picture "
                                               "(grey levels mapped to --range) or a pattern: random, checkerboard, "
                                               "gradient, rings")
    sp.add_argument("--range", type=microsiemens_range, default=None, metavar="LO:HI",
                    help=f"{US} range pictures and patterns map to (default {DEFAULT_RANGE})")
    sp.add_argument("--tolerance", type=microsiemens, default="2", metavar=US,
                    help=f"a device is done within ± this many {US} of its target (default 2)")
    sp.add_argument("--algorithm", choices=("adaptive", "baseline"), default="adaptive")
    sp.add_argument("--on-board", action="store_true", help="let the board run the loop (PROGRAM opcode)")
    sp.add_argument("--seed", type=int, default=None, help="seed of the random pattern (default 0)")
    sp.add_argument("--prior", metavar="SWEEP.h5", help="start from this chip's measured gate curve: the newest gate "
                                                        "sweep in a session file (memhw sweep gate --out SWEEP.h5)")
    sp.add_argument("--out", metavar="FILE.h5", help="record the session to FILE.h5 (see --force, --append)")
    add_output_flags(sp)
    sp.add_argument("--resume", metavar="FILE.h5",
                    help="continue the interrupted run recorded in FILE.h5 (its targets, tolerance and algorithm) on "
                         "the same board: its serial and chip are "
                         "checked, so the board must keep its state (a real board, or an emulator served with "
                         "`memhw mock serve`; an in-process mock:// is a new chip each time)")
    sp.add_argument("--other-board", action="store_true", help="with --resume: continue on another board or chip")
    sp.add_argument("--goal", type=fraction, default=0.95,
                    help="fraction of the devices that must converge; below it the command exits with status "
                         f"{EXIT_BELOW_GOAL} (default %(default)s)")
    sp.add_argument("--plot", metavar="FILE.png", help="draw target/achieved/error/pulses to FILE.png (replaced)")
