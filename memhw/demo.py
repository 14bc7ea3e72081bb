"""``memhw demo``: a short session on a board (by default the built-in emulator).

Shows the path a user's command travels end to end: handshake, a batched
gate-controlled SET writing a picture into the array, a parallel conductance
read-back, and a batched VMM checked against the read-back map; then what the
link carried and how long the hardware would have been busy.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .board import Board
from .connect import connect


def _picture(shape: tuple[int, int]) -> np.ndarray:
    """A test picture in [0, 1]: concentric rings over a left-to-right ramp."""
    r, c = np.mgrid[0 : shape[0], 0 : shape[1]]
    rr = np.hypot((r - shape[0] / 2) / shape[0], (c - shape[1] / 2) / shape[1] * 0.5)
    return np.clip(0.5 * (1 + np.cos(rr * 40)) * (0.3 + 0.7 * c / (shape[1] - 1)), 0, 1)


def _save_png(path: Path, target: np.ndarray, measured: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 6), constrained_layout=True)
    for ax, data, title in ((axes[0], target, "gate pattern (V)"), (axes[1], measured * 1e6, "read back (µS)")):
        im = ax.imshow(data, aspect="auto", cmap="viridis")
        ax.set_title(title)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_demo(address: str = "mock://", out: str | Path = "demo-out") -> int:
    """Run the demonstration session; returns a process exit code."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    with connect(address) as board:
        info = board.info
        print(f"connected: {info.serial}, firmware {info.firmware!r}, protocol {info.protocol[0]}.{info.protocol[1]}, "
              f"{info.rows}x{info.cols} array at {address}")
        _show_pattern(board, out)
        _show_vmm(board)
        s = board.link.stats
        print(f"link: {s.requests} requests, {s.round_trips} round trips, {s.retries} retries, "
              f"{s.bytes_total / 1e3:.1f} kB on the wire for {s.payload_total / 1e3:.1f} kB of payload "
              f"({s.bytes_total / s.payload_total:.3f}x)")
        emu = getattr(board.link.transport, "peer", None)
        if emu is not None and hasattr(emu, "counters"):
            c = emu.counters
            print(f"emulated board: {int(c.pulses.sum())} pulses, ~{c.busy_time * 1e3:.1f} ms of hardware time")
    print(f"done in {time.perf_counter() - t_start:.1f} s; files in {out}/")
    return 0


def _show_pattern(board: Board, out: Path) -> None:
    lo, hi = 0.7, 1.6  # SET gate window (DOMAIN.md §1)
    gates = lo + (hi - lo) * _picture(board.shape)
    everything = np.ones(board.shape, bool)
    t0 = time.perf_counter()
    board.pulse_reset(everything, v=1.8, gate=5.0, width=2e-6)
    board.pulse_set(everything, v=2.5, gate=gates, width=1e-6)
    g = board.read_conductance(average=4)
    dt = time.perf_counter() - t0
    slope, icpt = np.polyfit(gates.ravel(), g.ravel(), 1)
    resid = g - (slope * gates + icpt)
    print(f"wrote a {board.shape[0]}x{board.shape[1]} picture with one RESET and one SET batch (gate per device) "
          f"and read it back in {dt * 1e3:.0f} ms")
    print(f"  conductance vs gate: {slope * 1e6:.0f} uS/V + {icpt * 1e6:.0f} uS, spread {resid.std() * 1e6:.1f} uS "
          "(open loop; write-and-verify narrows it)")
    png = out / "picture.png"
    _save_png(png, gates, g)
    print(f"  saved {png}")


def _show_vmm(board: Board) -> None:
    g = board.read_conductance(average=8)
    rng = np.random.default_rng(0)
    v = rng.uniform(-0.2, 0.2, (1000, board.shape[0]))
    t0 = time.perf_counter()
    y = board.vmm(v)
    dt = time.perf_counter() - t0
    rel = np.linalg.norm(y - v @ g) / np.linalg.norm(v @ g)
    print(f"VMM: 1000 input vectors in {dt * 1e3:.0f} ms ({1000 / dt:,.0f} vectors/s); "
          f"relative difference to v @ G(read back): {rel:.2%}")
