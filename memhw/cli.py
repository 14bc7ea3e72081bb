"""The ``memhw`` command line.

Every command takes ``--board ADDRESS`` (default ``mock://``). Ctrl+C stops at
the next step, grounds the lines (closing the board does) and exits 130.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .board import Board
from .connect import connect
from .errors import MemhwError

DEFAULT_BOARD = "mock://"


def _board(args: argparse.Namespace) -> Board:
    return connect(args.board, timeout=args.timeout)


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
    with _board(args) as board:
        info = board.info
        d = {k: getattr(info, k) for k in info.__dataclass_fields__ if k != "limits"}
        d["limits"] = vars(info.limits)
        if args.json:
            print(json.dumps(d, indent=2, default=str))
        else:
            for k, v in d.items():
                print(f"{k:>15}: {v}")
    return 0


def save_array(path: Path, data: np.ndarray, name: str, attrs: dict) -> None:
    """Write an array to .npy or to an HDF5 dataset ``name`` with unit attributes."""
    if path.suffix == ".npy":
        np.save(path, data)
    elif path.suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "a") as f:
            if name in f:
                del f[name]
            ds = f.create_dataset(name, data=data)
            ds.attrs.update(attrs)
    else:
        raise MemhwError(f"--out {path}: use a .npy, .h5 or .hdf5 file name")


def cmd_read(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix not in (".npy", ".h5", ".hdf5"):
        raise MemhwError(f"--out {out}: use a .npy, .h5 or .hdf5 file name")
    with _board(args) as board:
        t0 = time.perf_counter()
        g = board.read_conductance(v_read=args.v_read, average=args.average)
        dt = time.perf_counter() - t0
        print(f"board {board.info.serial} ({board.info.firmware}), read {g.size} devices in {dt * 1e3:.1f} ms")
        print(_summary("conductance", g, "uS", 1e-6))
        if out is not None:
            save_array(out, g, "conductance", {"unit": "S", "v_read": args.v_read, "average": args.average,
                                               "serial": board.info.serial})
            print(f"wrote {out}")
    return 0


def _parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) * 1e-6 for x in text.split(":"))
    except ValueError:
        raise MemhwError(f"--range {text!r}: expected LO:HI in uS, e.g. 20:200") from None
    return lo, hi


def cmd_program(args: argparse.Namespace) -> int:
    from .programming import program
    from .targets import load_targets

    if args.resume:
        return _resume(args)
    if not args.targets:
        raise MemhwError("give TARGETS (a .npy/.h5/.png file or a pattern name) or --resume FILE.h5")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.force:
        raise MemhwError(f"--out {out} exists; pass --force to overwrite it or --resume to continue it")
    with _board(args) as board, _session(out) as session:
        targets = load_targets(args.targets, board.shape, _parse_range(args.range), seed=args.seed)
        if session is not None:
            session.attach(board)
            session.attrs["targets_source"] = args.targets
        result = program(board, targets, tolerance=args.tolerance * 1e-6, algorithm=args.algorithm,
                         on_board=args.on_board, progress=True, session=session)
        print(result)
        if args.plot:
            print(f"wrote {result.plot(args.plot)}")
        if out is not None:
            print(f"wrote {out}")
    return 0


def _resume(args: argparse.Namespace) -> int:
    """Continue the last programming run of a session file, skipping converged devices."""
    import numpy as np

    from .algorithms.tuning import Reason
    from .programming import program
    from .session import Session, load

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
        done = mask & (reasons == Reason.CONVERGED)
        tolerance = float(run.attrs["tolerance"])
        algorithm = str(run.attrs.get("algorithm", "adaptive"))
        was = run.status
    finally:
        s.close()
    todo = mask & ~done
    print(f"resuming {path}: last run {was}; {int(done.sum())} of {int(mask.sum())} devices already converged, "
          f"{int(todo.sum())} to program")
    with _board(args) as board, Session(path, "a") as session:
        session.attach(board)
        if not todo.any():
            print("nothing left to program")
            return 0
        result = program(board, targets, tolerance=tolerance, mask=todo, algorithm=algorithm,
                         on_board=args.on_board, progress=True, session=session)
        print(result)
        g = board.read_conductance(average=16)
        ok = np.abs(g - targets)[mask] <= tolerance
        print(f"whole run: {int(ok.sum())}/{int(mask.sum())} devices within ±{tolerance * 1e6:.1f} uS now")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import report

    text, _ = report(args.file, args.out)
    print(text)
    return 0


def cmd_mock_serve(args: argparse.Namespace) -> int:
    from .mock.firmware import BoardEmulator
    from .mock.server import EmulatorServer
    from urllib.parse import parse_qsl

    emulator = BoardEmulator.from_query(dict(parse_qsl(args.options or "")))
    if args.pty:
        server = EmulatorServer.pty(emulator)
        print(f"serving mock board {emulator.serial} on {server.address}", flush=True)
    else:
        host, _, port = args.tcp.rpartition(":")
        host = host or "127.0.0.1"
        if host not in ("127.0.0.1", "localhost", "::1"):
            if not args.allow_remote:
                raise MemhwError(f"refusing to bind {host}: the emulator has no authentication; "
                                 "pass --allow-remote to expose it beyond this machine")
            logging.warning("binding %s: anyone who can reach this address can drive the mock board", host)
        server = EmulatorServer.tcp(emulator, host, int(port or 0))
        print(f"serving mock board {emulator.serial} on {server.address}  (VISA: {server.visa_address})",
              flush=True)
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

    return run_demo(args.board, out=args.out, lstm_epochs=args.lstm_epochs)


# -------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="memhw", description="Drive a memristor crossbar board or its emulator.")
    p.add_argument("--version", action="version", version=f"memhw {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("--board", default=DEFAULT_BOARD, help="board address (default %(default)s)")
        sp.add_argument("--timeout", type=float, default=2.0, help="reply timeout in s")
        sp.set_defaults(func=fn)
        return sp

    sp = add("info", cmd_info, "show the board's identity, geometry and limits")
    sp.add_argument("--json", action="store_true")

    sp = add("read", cmd_read, "read the conductance map")
    sp.add_argument("--v-read", type=float, default=0.2, help="read voltage in V")
    sp.add_argument("--average", type=int, default=1, help="samples averaged per device")
    sp.add_argument("--out", help="write the map to FILE.npy or FILE.h5")

    sp = add("program", cmd_program, "program target conductances by write-and-verify")
    sp.add_argument("targets", nargs="?", help="FILE.npy (S), FILE.h5[:DATASET] (S), an image, or a pattern: "
                                               "random, checkerboard, gradient, rings")
    sp.add_argument("--range", default="20:200", help="uS range images and patterns map to (default %(default)s)")
    sp.add_argument("--tolerance", type=float, default=2.0, help="uS (default %(default)s)")
    sp.add_argument("--algorithm", choices=("adaptive", "baseline"), default="adaptive")
    sp.add_argument("--on-board", action="store_true", help="let the board run the loop (PROGRAM opcode)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the random pattern")
    sp.add_argument("--out", help="record the session to FILE.h5")
    sp.add_argument("--force", action="store_true", help="overwrite --out")
    sp.add_argument("--resume", metavar="FILE.h5", help="continue the interrupted run recorded in FILE.h5")
    sp.add_argument("--plot", help="draw target/achieved/error/pulses to FILE.png")

    sp = sub.add_parser("report", help="summarise a session file and draw its plots")
    sp.add_argument("file", help="session FILE.h5")
    sp.add_argument("--out", help="folder for the figures (default FILE-report/)")
    sp.set_defaults(func=cmd_report)

    sp = add("lstm", cmd_lstm, "LSTM experiments on the crossbar beside the software network, on one board or "
                               "over a population of chips")
    sp.add_argument("experiment", choices=("airline", "gait", "mackey"))
    sp.add_argument("--mode", choices=("exsitu", "insitu"), default="exsitu")
    sp.add_argument("--seed", type=int, default=0, help="seed of the network (and synthetic data)")
    sp.add_argument("--epochs", type=int, default=None, help="training epochs (default: the task's own)")
    sp.add_argument("--variant", choices=("improved", "published", "thresholded"), default="improved",
                    help="in-situ update scheme (default %(default)s; published = the paper's open-loop two-pulse)")
    sp.add_argument("--out", help="folder for figures, metrics and the session file")
    pop = sp.add_argument_group("population (instead of --board)")
    pop.add_argument("--chips", type=int, default=0, metavar="N", help="run on N emulated chips (mock seeds 1..N)")
    pop.add_argument("--preset", default="paper", help="mock preset of --chips (default %(default)s)")
    pop.add_argument("--boards", metavar="ADDR,ADDR", help="run on these boards (comma-separated addresses)")
    pop.add_argument("--seeds", metavar="S,S", help="model seeds (default: --seed)")
    pop.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler to use (default: a local cluster)")
    pop.add_argument("--workers", type=int, default=None, help="local cluster processes (default: one per core)")

    sp = add("demo", cmd_demo, "run the demonstration session on the board")
    sp.add_argument("--out", default="demo-out", help="folder for the session's files")
    sp.add_argument("--lstm-epochs", type=int, default=None, help="training epochs of the airline LSTM")

    from .calibration.cli import add_commands as add_calibration_commands

    add_calibration_commands(sub, add)

    mock = sub.add_parser("mock", help="the built-in board emulator")
    msub = mock.add_subparsers(dest="mock_command", required=True)
    sp = msub.add_parser("serve", help="serve the emulator on a TCP port or a pseudo-terminal")
    grp = sp.add_mutually_exclusive_group()
    grp.add_argument("--tcp", default="127.0.0.1:0", metavar="HOST:PORT",
                     help="listen here (default %(default)s: loopback, free port)")
    grp.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal")
    sp.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    sp.add_argument("--options", default="", metavar="QUERY",
                    help="emulator options as in mock:// addresses, e.g. 'preset=harsh&seed=4'")
    sp.set_defaults(func=cmd_mock_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (MemhwError, ValueError, OSError) as exc:
        print(f"memhw: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
