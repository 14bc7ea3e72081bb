"""Make the calibration file shipped for the emulator's default board.

    python -m memhw.calibration.make_default [--out memhw/calibration/data/]

Connects to ``mock://`` (preset paper, seed 0: serial MEMHW-EMU-0001) without any
calibration, runs :func:`memhw.calibration.calibrate_board` and saves the result as
``<out>/MEMHW-EMU-0001.h5`` (package data), so ``memhw.connect("mock://")`` is calibrated out of
the box after any install.
Boards with another seed or preset have other serials (``memhw.mock.identity.default_serial``)
and never get this file.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..connection import connect
from .board import calibrate_board
from .files import SHIPPED_DIR, save_calibration

DEFAULT_ADDRESS = "mock://"
AVERAGE = 64


def make_default(out: str | Path = SHIPPED_DIR, address: str = DEFAULT_ADDRESS) -> Path:
    with connect(address, calibration=None) as board:
        cal = calibrate_board(board, average=AVERAGE)
    # the emulator's periphery never drifts: its calibration does not go stale with age
    cal.meta["max_age_days"] = None
    return save_calibration(cal, Path(out) / f"{cal.serial}.h5")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(SHIPPED_DIR),
                    help="folder (default: memhw/calibration/data/, shipped as package data)")
    ap.add_argument("--board", default=DEFAULT_ADDRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = make_default(args.out, args.board)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
