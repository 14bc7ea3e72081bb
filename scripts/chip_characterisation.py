#!/usr/bin/env python3
"""One-page characterisation of a chip, measured through the Board API alone.

    python scripts/chip_characterisation.py [--board mock://] [--out chip.png]

Three panels: SET gate voltage -> conductance (median and 10-90 % spread over
devices), one RESET pulse's amplitude -> conductance, and the read-noise
histogram. Every number comes from pulses and reads on the board (the sweeps of
:mod:`memhw.calibration.sweeps`), none from the emulator's internals, so the
same script characterises a real chip.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import memhw
from memhw.calibration.sweeps import gate_sweep, read_noise, reset_sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="mock://", help="board address (default %(default)s)")
    ap.add_argument("--out", type=Path, default=Path("chip_characterisation.png"))
    args = ap.parse_args()
    with memhw.connect(args.board) as board:
        gate = gate_sweep(board, gates=np.arange(0.4, 1.81, 0.05))
        reset = reset_sweep(board)
        noise = read_noise(board, n_reads=32)
        serial = board.info.serial
    slope, intercept = gate.fit()
    rel = noise.relative[np.isfinite(noise.relative)]
    print(f"{serial}: SET {slope * 1e6:.1f} µS/V + {intercept * 1e6:.0f} µS in 0.7–1.6 V; "
          f"RESET removes {np.interp(1.0, reset.amplitudes, reset.removed):.0%} at 1.0 V; "
          f"read noise {np.median(rel):.2%} median")
    _figure(gate, reset, rel, slope, intercept, serial, args.out)
    print(f"wrote {args.out}")


def _figure(gate, reset, rel, slope, intercept, serial, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.3), constrained_layout=True)
    dev = gate.devices.reshape(len(gate.gates), -1) * 1e6
    lo, med, hi = np.nanpercentile(dev, [10, 50, 90], axis=1)
    ax[0].fill_between(gate.gates, lo, hi, alpha=0.3, label="10–90 % of devices")
    ax[0].plot(gate.gates, med, "ko-", ms=3, label="median")
    x = np.array([0.7, 1.6])
    ax[0].plot(x, (slope * x + intercept) * 1e6, "r--", label=f"fit: {slope * 1e6:.0f} µS/V + {intercept * 1e6:.0f} µS")
    ax[0].set(xlabel="SET gate voltage (V)", ylabel="conductance after SET (µS)", title="gate → conductance")
    ax[0].legend(fontsize=8)
    after = reset.devices.reshape(len(reset.amplitudes), -1) * 1e6
    before = reset.before.reshape(len(reset.amplitudes), -1) * 1e6
    ax[1].plot(reset.amplitudes, np.nanmedian(before, axis=1), "s--", color="0.5", label="before (SET state)")
    lo, med, hi = np.nanpercentile(after, [10, 50, 90], axis=1)
    ax[1].fill_between(reset.amplitudes, lo, hi, alpha=0.3, color="tab:orange")
    ax[1].plot(reset.amplitudes, med, "o-", color="tab:orange", label="after one RESET pulse")
    ax[1].set(xlabel="RESET amplitude (V)", ylabel="conductance (µS)", title="RESET amplitude → conductance")
    ax[1].legend(fontsize=8)
    ax[2].hist(rel * 100, bins=60, color="tab:green")
    ax[2].set(xlabel="read noise σ / G (%)", ylabel="devices", title=f"read noise, median {np.median(rel):.2%}")
    fig.suptitle(f"chip characterisation — {serial}")
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
