"""The ``memhw`` command line.

Every command that talks to a board takes ``--board ADDRESS`` (default ``mock://``).
Ctrl+C stops at the next step, grounds the lines (closing the board does) and exits 130.

Everything a command will write is checked before it touches the board, and a file of
measurements is never replaced or added to silently (:mod:`memhw.outputs`: ``--force``
replaces, ``--append`` adds to a session file of the same board). Every session file
records the board, its chip and address, the calibration applied, the memhw version and
the command line.

Exit codes: 0 done; 2 an error (one line on stderr: bad input, board refused,
link failed...); 3 ``memhw program`` finished below its goal (``--goal``); 130
interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ._version import __version__
from .board import Board
from .cliargs import host_port, positive_int, seconds
from .clicommon import EXIT_BELOW_GOAL, EXIT_ERROR, EXIT_INTERRUPTED, connect_board, session_output
from .errors import MemhwError
from .outputs import ARRAY, SESSION, add_output_flags, check_file, check_folder, check_record
from .units import US

DEFAULT_BOARD = "mock://"
__all__ = ["main", "build_parser", "DEFAULT_BOARD", "EXIT_BELOW_GOAL"]


def _board(args: argparse.Namespace) -> Board:
    return connect_board(args)


def _session(path: Path | None):
    """A session file for ``--out`` (closed as complete, or as interrupted/error when
    the block raises), or a no-op context without one."""
    from contextlib import nullcontext

    from .session import Session

    return Session(path) if path is not None else nullcontext()


def _summary(name: str, x: np.ndarray, unit: str, scale: float) -> str:
    x = np.asarray(x) / scale
    return (f"{name}: shape {x.shape}, min {x.min():.3f}, median {np.median(x):.3f}, "
            f"mean {x.mean():.3f}, max {x.max():.3f} {unit}")


# ------------------------------------------------------------------ commands
def cmd_info(args: argparse.Namespace) -> int:
    """``memhw info``: identity, transfer functions, limits and the calibration applied."""
    from .info import calibration_text, describe

    with _board(args) as board:
        info, cal = board.info, board.calibration
        if args.json:
            d = {k: getattr(info, k) for k in info.__dataclass_fields__ if k != "limits"}
            d["limits"] = vars(info.limits)
            d["limits_in_force"] = vars(board.limits)
            d["calibration"] = None if cal is None else {"file": cal.source, "id": cal.id, "date": cal.date,
                                                         "firmware": cal.firmware}
            d["calibration_text"] = calibration_text(cal)
            print(json.dumps(d, indent=2, default=str))
        else:
            lines = describe(info, board.limits, cal)
            width = max(len(k) for k, _ in lines)
            for k, v in lines:
                print(f"{k:<{width}}  {v}")
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    """Read the conductance map; ``--out FILE.h5`` records it in a session file (run ``read``,
    dataset ``conductance``, siemens), ``--out FILE.npy`` saves the bare array (siemens)."""
    from contextlib import nullcontext

    npy = out = None
    if args.out is None:
        session_output(args)  # refuses --force / --append without --out
    else:
        if check_file(args.out, "--out", ARRAY + SESSION).suffix.lower() in ARRAY:
            if args.append:
                raise MemhwError(f"--append adds to session files (.h5); {args.out} is a bare array")
            npy = check_record(args.out, "--out", ARRAY, args.force)
        else:
            out = session_output(args)
    with _board(args) as board, (out.open(board) if out else nullcontext()) as session:
        t0 = time.perf_counter()
        g = board.read_conductance(v_read=args.v_read, average=args.average)
        dt = time.perf_counter() - t0
        print(f"board {board.info.serial} ({board.info.firmware}), read {g.size} devices in {dt * 1e3:.1f} ms")
        print(_summary("conductance", g, US, 1e-6))
        if session is not None:
            with session.run("read", v_read=args.v_read, average=args.average) as run:
                run.write("conductance", g, unit="S")
        if npy is not None:
            np.save(npy, g)
    if out is not None or npy is not None:
        print(f"wrote {out.path if out is not None else npy}" + (" (siemens)" if npy is not None else ""))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``memhw report FILE``: summarise any file memhw writes and draw its figures."""
    from .report import report

    if args.out is not None:
        check_folder(args.out, "--out")
    text, _ = report(args.file, args.out)
    print(text)
    return 0


def cmd_mock_serve(args: argparse.Namespace) -> int:
    from urllib.parse import parse_qsl

    from .peer import PeerServer

    options = dict(parse_qsl(args.options or ""))
    try:
        if args.dialect == "dpe":  # the original board's ASCII firmware (memhw.dpe)
            if args.firmware:
                raise ValueError("--firmware applies to --dialect memhw only")
            from .dpe.emulator import DpeEmulator

            emulator = DpeEmulator.from_query(options)
            name, scheme = "original (DPE ASCII) board", "dpe://"
        else:
            from .emulators import emulator_from_query

            if args.firmware:
                options["firmware"] = args.firmware
            emulator = emulator_from_query(options)
            name, scheme = f"mock board {emulator.serial}", ""
    except ValueError as exc:
        raise MemhwError(f"mock serve: {exc}") from None
    if args.pty:
        server = PeerServer.pty(emulator)
        print(f"serving {name} on {scheme}{server.address}", flush=True)
    else:
        host, port = args.tcp
        if host not in ("127.0.0.1", "localhost", "::1"):
            if not args.allow_remote:
                raise MemhwError(f"refusing to bind {host}: the emulator has no authentication; "
                                 "pass --allow-remote to expose it beyond this machine")
            logging.warning("binding %s: anyone who can reach this address can drive the mock board", host)
        try:
            server = PeerServer.tcp(emulator, host, port)
        except OSError as exc:
            raise MemhwError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        if args.dialect == "dpe":
            print(f"serving {name} on dpe+{server.address}", flush=True)
        else:
            print(f"serving {name} on {server.address}  (VISA: {server.visa_address})", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.close()


def cmd_lstm(args: argparse.Namespace) -> int:
    if args.chips or args.boards:
        return _lstm_population(args)
    from .apps.lstm import run

    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    with _board(args) as board, _session(out / "session.h5" if out is not None else None) as session:
        if session is not None:
            session.attach(board)
        result = run(args.experiment, board, mode=args.mode, seed=args.seed, out=out, epochs=args.epochs,
                     variant=args.variant)
        if session is not None:
            with session.run("lstm", **{k: v for k, v in result.metrics.items()
                                        if isinstance(v, (str, int, float, bool))}) as lstm_run:
                for name, array in result.arrays.items():
                    lstm_run.write(name, array)
    metrics = result.metrics
    width = max(len(k) for k in metrics)
    for k, v in metrics.items():
        print(f"{k:>{width}}: {v:.4g}" if isinstance(v, float) else f"{k:>{width}}: {v}")
    if out is not None:
        print(f"wrote figures, metrics and session.h5 to {out}/")
    return 0


def _lstm_population(args: argparse.Namespace) -> int:
    """``memhw lstm TASK --chips N`` / ``--boards A,B``: the experiment over chip instances."""
    from .apps.population import mock_chips, run_population

    chips = [b.strip() for b in args.boards.split(",") if b.strip()] if args.boards else mock_chips(
        args.chips, args.preset)
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    except ValueError:
        raise MemhwError(f"--seeds {args.seeds!r}: expected integers separated by commas, e.g. 0,2,5") from None
    result = run_population(args.experiment, chips, seeds, args.mode, scheduler=args.scheduler, workers=args.workers,
                            epochs=args.epochs, variant=args.variant)
    print(result.line())
    for r in result.rows:
        print(f"  {r['chip']}  model seed {r['seed']}: {result.key} {r[result.key]:.3f}")
    if args.out:
        from .apps.population import write_results

        out = Path(args.out)
        print(f"wrote {write_results([result], out / f'{args.experiment}_{args.mode}_population.json')} and "
              f"{result.figure(out / f'{args.experiment}_{args.mode}_population.png')}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    check_folder(args.out, "--out")
    return run_demo(args.board, out=args.out, lstm_epochs=args.lstm_epochs, command=args.command_line)


# -------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="memhw", description="Drive a memristor crossbar board or its emulator.",
        epilog=f"Exit status: 0 done, {EXIT_ERROR} error (one line on stderr), {EXIT_BELOW_GOAL} `memhw program` "
               f"finished below --goal, {EXIT_INTERRUPTED} interrupted. Output files are checked before the board is "
               "touched; an existing file of measurements is refused unless --force (replace) or --append (add to "
               "a session file of the same board).")
    p.add_argument("--version", action="version", version=f"memhw {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("--board", default=DEFAULT_BOARD, help="board address (default %(default)s)")
        sp.add_argument("--timeout", type=seconds, default=2.0, help="reply timeout in s (default %(default)s)")
        sp.add_argument("--takeover", action="store_true",
                        help="take the board over from another host's session (if that host crashed or hangs)")
        sp.set_defaults(func=fn)
        return sp

    sp = add("info", cmd_info, "show the board's identity, transfer functions, limits and calibration")
    sp.add_argument("--json", action="store_true")

    sp = add("read", cmd_read, "read the conductance map")
    sp.add_argument("--v-read", type=float, default=0.2, help="read voltage in V")
    sp.add_argument("--average", type=positive_int, default=1, help="samples averaged per device")
    sp.add_argument("--out", metavar="FILE.h5|FILE.npy",
                    help="record the map in a session file (FILE.h5: `memhw report` draws it, `memhw program "
                         "FILE.h5:conductance` programs it back) or save the bare array in siemens (FILE.npy)")
    add_output_flags(sp)

    from .programming.cli import add_commands as add_programming_commands

    add_programming_commands(sub, add)

    sp = sub.add_parser("report", help="summarise any file memhw writes and draw its figures")
    sp.add_argument("file", help="a session file (--out FILE.h5 of any command), a calibration file or a map (.npy)")
    sp.add_argument("--out", help="folder for the figures (default FILE-report/)")
    sp.set_defaults(func=cmd_report)

    sp = add("lstm", cmd_lstm, "LSTM experiments on the crossbar beside the software network, on one board or "
                               "over a population of chips")
    sp.add_argument("experiment", choices=("airline", "gait", "mackey"))
    sp.add_argument("--mode", choices=("exsitu", "insitu"), default="exsitu")
    sp.add_argument("--seed", type=int, default=0, help="seed of the network (and synthetic data)")
    sp.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default: the task's own)")
    sp.add_argument("--variant", choices=("improved", "published", "thresholded"), default="improved",
                    help="in-situ update scheme (default %(default)s; published = the paper's open-loop two-pulse)")
    sp.add_argument("--out", help="folder for figures, metrics and the session file")
    pop = sp.add_argument_group("population (instead of --board)")
    pop.add_argument("--chips", type=positive_int, default=0, metavar="N",
                     help="run on N emulated chips (mock seeds 1..N)")
    pop.add_argument("--preset", default="paper", help="mock preset of --chips (default %(default)s)")
    pop.add_argument("--boards", metavar="ADDR,ADDR", help="run on these boards (comma-separated addresses)")
    pop.add_argument("--seeds", metavar="S,S", help="model seeds (default: --seed)")
    pop.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler to use (default: a local cluster)")
    pop.add_argument("--workers", type=positive_int, default=None,
                     help="local cluster processes (default: one per core)")

    sp = add("demo", cmd_demo, "run the demonstration session on the board")
    sp.add_argument("--out", default="demo-out", help="folder for the session's files (default %(default)s; "
                                                      "its session file and figures are replaced)")
    sp.add_argument("--lstm-epochs", type=positive_int, default=None, help="training epochs of the airline LSTM")

    from .calibration.cli import add_commands as add_calibration_commands

    add_calibration_commands(sub, add)

    mock = sub.add_parser("mock", help="the built-in board emulator")
    msub = mock.add_subparsers(dest="mock_command", required=True)
    sp = msub.add_parser("serve", help="serve the emulator on a TCP port or a pseudo-terminal")
    grp = sp.add_mutually_exclusive_group()
    grp.add_argument("--tcp", default="127.0.0.1:0", type=host_port, metavar="HOST:PORT",
                     help="listen here (default %(default)s: loopback, free port)")
    grp.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal")
    sp.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    sp.add_argument("--options", default="", metavar="QUERY",
                    help="emulator options as in mock:// addresses, e.g. 'preset=harsh&seed=4' (dpe: also "
                         "dialect fields and line faults, e.g. 'faults=mute:0.05')")
    sp.add_argument("--firmware", choices=("python", "c"), default=None,
                    help="the board's protocol engine: the Python peer (default) or the C firmware core")
    sp.add_argument("--dialect", choices=("memhw", "dpe"), default="memhw",
                    help="memhw: memhw's protocol (default); dpe: the original board's 2017 ASCII command set")
    sp.set_defaults(func=cmd_mock_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["memhw", *argv])  # recorded in every session file written
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (MemhwError, ValueError, OSError) as exc:
        print(f"memhw: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
