"""Full board calibration + chip characterisation session on a board (default mock://).

    python scripts/calibration_sweep.py [--board mock://] [--out calibration-out/]

Writes ``<out>/session.h5`` (one session: a ``calibration`` run, then one ``sweep`` run
each for I-V, gate, RESET, read noise and retention; every board operation logged) and a
PNG per result next to it. Reads before/after calibration are compared when the board is
the emulator. The output folder is not committed.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

import memhw
from memhw.calibration import sweeps
from memhw.calibration.board import calibrate_board, read_reference, record_calibration
from memhw.calibration.plots import plot_calibration
from memhw.session import Session


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="mock://")
    ap.add_argument("--out", default="calibration-out")
    ap.add_argument("--average", type=int, default=64)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "session.h5"
    summary: dict = {}
    with Session(path) as session, memhw.connect(args.board, calibration=None) as board:
        session.attach(board)
        cal = calibrate_board(board, average=args.average)
        record_calibration(session, cal)
        plot_calibration(cal, out / "calibration.png")
        summary["calibration"] = cal.summary()
        summary["calibration_problems"] = cal.problems()
        # reference check: nominal vs calibrated conversion on a mid-range reference
        before = read_reference(board, 2, 0.5, average=16)
        board.calibration = cal
        after = read_reference(board, 2, 0.5, average=16)
        g_nom = 1 / before["resistance"]
        summary["reference_relative_error"] = {
            "nominal": float(np.max(np.abs(before["conductance"] / g_nom - 1))),
            "calibrated": float(np.max(np.abs(after["conductance"] / g_nom - 1))),
        }
        session.attrs["calibration_id"] = cal.id
        iv = sweeps.iv_sweep(board, session=session)
        gate = sweeps.gate_sweep(board, session=session)
        reset = sweeps.reset_sweep(board, session=session)
        noise = sweeps.read_noise(board, 32, session=session)
        ret = sweeps.retention(board, session=session)
        for name, res in (("iv", iv), ("gate", gate), ("reset", reset), ("noise", noise), ("retention", ret)):
            res.plot(out / f"{name}.png")
        slope, icpt = gate.fit()
        summary["gate_fit_0.7_1.6V"] = {"slope_uS_per_V": slope * 1e6, "intercept_uS": icpt * 1e6}
        summary["reset_removed"] = dict(zip(np.round(reset.amplitudes, 2).astype(str), np.round(reset.removed, 4)))
        summary["read_noise"] = noise.summary()
        summary["retention_mean_drift_uS"] = dict(zip(ret.times.astype(str),
                                                      np.round(np.nanmean(ret.drift.reshape(len(ret.times), -1), 1) * 1e6, 4)))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    print(json.dumps(summary, indent=2, default=float))
    print(f"wrote {path} and PNGs in {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
