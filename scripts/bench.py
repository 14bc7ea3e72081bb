#!/usr/bin/env python3
"""memhw benchmarks: ratios measured side by side in one run.

Writes ``results/bench.json`` and ``results/bench.md`` (the README quotes the
table). Not a test: run ``make bench`` or ``python scripts/bench.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

import memhw
from memhw.calibration import calibrate_board
from memhw.mock.chip import effective_conductance
from memhw.mock.emulator import BoardEmulator
from memhw.programming import program

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_calibration import bench_prior  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BAUD_SLOW = 115_200
BITS_PER_BYTE = 10  # 8N1 serial framing
#: DOMAIN.md §1: one 64x64 half of per-device SET amplitudes and gates as ASCII ~ 40 kB
ASCII_SET_BYTES_PER_HALF = 40_000
#: the same ASCII style for a read-back: one "%.4e," current per device (11 chars), our estimate
ASCII_READ_BYTES_PER_DEVICE = 11


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Smallest wall time of ``repeat`` calls (s)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def stats_delta(board: memhw.Board, fn: Callable[[], object]) -> dict[str, int]:
    """Link counters spent by one call."""
    s = board.link.stats
    before = (s.bytes_total, s.payload_total, s.round_trips)
    fn()
    return {"wire_bytes": s.bytes_total - before[0], "payload_bytes": s.payload_total - before[1],
            "round_trips": s.round_trips - before[2]}


def bench_protocol(repeat: int) -> dict:
    out: dict = {}
    with memhw.connect("mock://?preset=paper&seed=1") as board:
        emu: BoardEmulator = board.link.transport.peer
        rows, cols = board.shape
        rng = np.random.default_rng(0)
        board.pulse_set(rng.random(board.shape) < 0.5, v=2.5, gate=rng.uniform(0.7, 1.6, board.shape))

        read = stats_delta(board, board.read_conductance)
        out["full_read"] = {**read, "wire_over_payload": read["wire_bytes"] / read["payload_bytes"]}
        v = rng.uniform(-0.2, 0.2, (1000, rows))
        vmm = stats_delta(board, lambda: board.vmm(v))
        out["vmm_1000"] = {**vmm, "wire_over_payload": vmm["wire_bytes"] / vmm["payload_bytes"]}

        # host stack vs the emulator's own handler for the same read
        t_stack = best_of(board.read_conductance, repeat)
        values = {"v_read": int(board.codes.line_codes(0.2)), "row_start": 0, "row_count": rows,
                  "average": 1, "gains": np.array([255], np.uint8)}
        handler = emu.hardware.handlers["READ_MAP"]
        t_handler = best_of(lambda: handler(emu.hardware, values, None), repeat)
        out["read_stack_vs_handler"] = {"stack_s": t_stack, "handler_s": t_handler,
                                        "ratio": t_stack / t_handler}

        # what a full read and a full-array SET batch cost on a 115 200 baud line
        mask = np.ones(board.shape, bool)
        gates = rng.uniform(0.7, 1.6, board.shape)
        amps = rng.choice([2.4, 2.5, 2.6], board.shape)
        sset = stats_delta(board, lambda: board.pulse_set(mask, v=amps, gate=gates, width=1e-6))
        ascii_set = ASCII_SET_BYTES_PER_HALF * (rows * cols) / (64 * 64)
        ascii_read = ASCII_READ_BYTES_PER_DEVICE * rows * cols
        t = lambda nbytes: nbytes * BITS_PER_BYTE / BAUD_SLOW  # noqa: E731
        out["serial_115200"] = {
            "read_bytes": read["wire_bytes"], "read_s": t(read["wire_bytes"]),
            "ascii_read_bytes_est": ascii_read, "ascii_read_s": t(ascii_read),
            "set_bytes": sset["wire_bytes"], "set_round_trips": sset["round_trips"], "set_s": t(sset["wire_bytes"]),
            "ascii_set_bytes": ascii_set, "ascii_set_s": t(ascii_set),
        }
    return out


def bench_request_cost(calls: int = 2000, repeat: int = 5) -> dict:
    """The fixed cost of one small request (STATUS) through the full in-process stack:
    ``Board.status()`` (Board, link, codec, framing, in-process transport, the emulator's
    peer and back end) and the link's request alone; per call, best of ``repeat`` loops of
    ``calls`` calls."""
    with memhw.connect("mock://?preset=ideal&seed=1&rows=16") as board:
        def per_call(fn: Callable[[], object]) -> float:
            for _ in range(200):
                fn()
            return best_of(lambda: [fn() for _ in range(calls)], repeat) / calls

        return {"board_status_us": per_call(board.status) * 1e6,
                "link_request_us": per_call(lambda: board.link.request("STATUS", {})) * 1e6}


def bench_model(repeat: int) -> dict:
    """The mock chip alone: G_eff solve and VMM throughput; full-stack VMM as a ratio."""
    out: dict = {}
    with memhw.connect("mock://?preset=paper&seed=2") as board:
        emu: BoardEmulator = board.link.transport.peer
        chip = emu.chip
        rng = np.random.default_rng(3)
        board.pulse_set(rng.random(board.shape) < 0.5, v=2.5, gate=rng.uniform(0.7, 1.6, board.shape))

        G = chip.G.copy()
        out["geff_solve_s"] = best_of(lambda: effective_conductance(G, emu.params.chip.wire_resistance), repeat)
        v = rng.uniform(-0.2, 0.2, (1000, board.shape[0]))
        chip.currents(v)
        t_model = best_of(lambda: chip.currents(v), repeat)
        t_stack = best_of(lambda: board.vmm(v), repeat)
        out["vmm_model_vectors_per_s"] = 1000 / t_model
        out["vmm_stack_vectors_per_s"] = 1000 / t_stack
        out["vmm_stack_over_model"] = t_stack / t_model
    return out


#: documented whole-array target range on the paper preset (tests/programming)
TARGET_RANGE = (20e-6, 200e-6)
BAUD_FAST = 12_000_000


def program_row(address: str, label: str, tol: float, algorithm: str = "adaptive", on_board: bool = False,
                seed: int = 4) -> dict:
    """One whole-array programming run on a freshly calibrated board, judged independently
    (a 32-sample read and the model's truth), with its link and virtual-clock costs."""
    with memhw.connect(address) as board:
        board.calibration = calibrate_board(board)  # this seed's board ships no calibration file
        emu: BoardEmulator = board.link.transport.peer
        t = np.random.default_rng(seed).uniform(*TARGET_RANGE, board.shape)
        busy0 = emu.hardware.counters.busy_time
        r = program(board, t, tolerance=tol, algorithm=algorithm, on_board=on_board)
        hw = emu.hardware.counters.busy_time - busy0
        g = board.read_conductance(average=32)
        truth = emu.chip.g_eff()
        resp, done = r.responsive, r.converged
        s = r.summary()
        return {
            "algorithm": label, "tolerance": tol,
            "pulses_median": s["pulses_median"], "pulses_p99": s["pulses_p99"],
            "converged_own": s["converged_of_responsive"],
            "within_tol_read32": float(np.mean(np.abs(g - t)[resp] <= tol)),
            "error_std_read32": float(np.std((g - t)[done])),
            "error_std_truth": float(np.std((truth - t)[done])),
            "wall_s": s["wall_time"], "round_trips": s["round_trips"], "rounds": s["rounds"],
            "wire_bytes": s["wire_bytes"], "hardware_s": hw,
            "est_s_115200": hw + s["wire_bytes"] * BITS_PER_BYTE / BAUD_SLOW,
            "est_s_12M": hw + s["wire_bytes"] * BITS_PER_BYTE / BAUD_FAST,
        }


def bench_programming(seed: int = 4) -> list[dict]:
    """memhw's adaptive write-and-verify vs the published baseline, same chip, same
    targets, on a board calibrated first (so "model truth" measures programming, not
    an uncalibrated read-out); the board's own loop on both back ends; and the same runs
    over protocol 2.0's messages (a board that offers no READ_DEVICES / PULSE_DEVICES /
    SET_CALIBRATION), side by side."""
    base = f"mock://?preset=paper&seed={seed}"
    rows = [program_row(base, algorithm, tol, algorithm, seed=seed)
            for tol in (4e-6, 2e-6) for algorithm in ("adaptive", "baseline")]
    rows += [program_row(f"{base}&protocol=2.0", "adaptive (protocol 2.0 messages)", 2e-6, seed=seed),
             program_row(base, "adaptive (on board)", 2e-6, on_board=True, seed=seed),
             program_row(f"{base}&protocol=2.0", "adaptive (on board, protocol 2.0)", 2e-6, on_board=True, seed=seed),
             program_row(f"{base}&firmware=c", "adaptive (on board, C core)", 2e-6, on_board=True, seed=seed)]
    return rows


#: how an inference reaches the board: protocol 2.0's full-array VMM per time step, 2.1's
#: tile VMM per time step, 2.1's RUN_NETWORK (the recurrence on the board)
LSTM_PATHS = {"vmm_2.0": ("&protocol=2.0", False), "tile_2.1": ("", False), "on_board_2.1": ("", True)}


def _inference(address: str, model, sequences: list, on_board: bool) -> dict:
    """One inference of ``sequences`` through ``model`` programmed on a fresh board: host
    wall time, requests, wire bytes, the board's virtual busy time, estimated hardware time."""
    from memhw.nn import CrossbarBackend, predict

    with memhw.connect(address) as board:
        emu: BoardEmulator = board.link.transport.peer
        board.calibration = calibrate_board(board)  # as memhw.apps does for a board without a file
        cb = CrossbarBackend(board, health=None)
        cb.program(model.params)
        if on_board:
            predict(model, sequences[:1], cb)  # loads the network (once per programmed model)
        s = board.link.stats
        busy0, bytes0, req0 = emu.hardware.counters.busy_time, s.bytes_total, s.requests
        emulated0 = emu.counters.handler_seconds
        t0 = time.perf_counter()
        predict(model, sequences, cb, on_board=on_board)
        wall = time.perf_counter() - t0
        emulated = emu.counters.handler_seconds - emulated0  # the emulated board's own work (its physics)
        hw, wire = emu.hardware.counters.busy_time - busy0, s.bytes_total - bytes0
        if on_board and cb.on_board_reason:
            raise RuntimeError(f"on-board path not taken: {cb.on_board_reason}")
        return {"wall_s": wall, "emulator_s": emulated, "host_s": wall - emulated, "requests": s.requests - req0, "wire_bytes": wire, "hardware_s": hw,
                "est_s_115200": hw + wire * BITS_PER_BYTE / BAUD_SLOW,
                "est_s_12M": hw + wire * BITS_PER_BYTE / BAUD_FAST,
                "link_share_12M": wire * BITS_PER_BYTE / BAUD_FAST / (hw + wire * BITS_PER_BYTE / BAUD_FAST)}


def bench_lstm(repeat: int) -> dict:
    """LSTM inference three ways side by side (LSTM_PATHS), same chip and weights:
    the airline LSTM(15) -> Dense(1) over the whole series, and a batch of 450 sequences x
    8 steps through LSTM(14 -> 13) -> Dense(10); host time per time step of the airline
    series against software."""
    from memhw.datasets import airline
    from memhw.nn import LSTM, Dense, LastStep, Sequential, predict

    data = airline()
    air = Sequential([LSTM(1, 15), Dense(15, 1, "sigmoid")], seed=0)
    batch_model = Sequential([LSTM(14, 13), LastStep(), Dense(13, 10, "softmax")], seed=0)
    rng = np.random.default_rng(0)
    batch = [rng.uniform(-1, 1, (8, 14)) for _ in range(450)]
    base = "mock://?preset=paper&seed=1"
    out: dict = {"airline_steps": len(data.x), "batch": "450 x 8 steps"}
    for name, (query, on_board) in LSTM_PATHS.items():
        out[f"airline_{name}"] = _inference(base + query, air, [data.x], on_board)
        out[f"batch_{name}"] = _inference(base + query, batch_model, batch, on_board)
    t_sw = best_of(lambda: predict(air, [data.x]), repeat)
    out["software_s_per_step"] = t_sw / len(data.x)
    for name in LSTM_PATHS:  # host time: the wall time less what the emulated board computed (its physics)
        a = out[f"airline_{name}"]
        a["host_s_per_step"] = a["host_s"] / len(data.x)
        a["wall_s_per_step"] = a["wall_s"] / len(data.x)
        a["host_step_ratio"] = a["host_s_per_step"] / out["software_s_per_step"]
        a["wall_step_ratio"] = a["wall_s_per_step"] / out["software_s_per_step"]
    return out


def bench_dpe(seed: int = 4, lstm_seed: int = 1) -> dict:
    """The original board's ASCII command set (through the bridge, to its emulator on a pty)
    beside memhw's protocol (the mock), same chip model, seed and targets: whole-array
    programming and the airline inference. Estimated hardware time = the emulator's virtual
    busy time + the bytes that crossed the link at 115 200 baud (8N1)."""
    from memhw.datasets import airline
    from memhw.dpe.emulator import DpeEmulator
    from memhw.dpe.offsets import calibrate_offsets
    from memhw.mock.params import make_params
    from memhw.nn import LSTM, Dense, Sequential
    from memhw.nn.crossbar import CrossbarBackend
    from memhw.nn.mapping import WeightMap
    from memhw.nn.placement import place
    from memhw.nn.train import predict
    from memhw.peer import PeerServer

    def est(busy: float, nbytes: int) -> float:
        return busy + nbytes * BITS_PER_BYTE / BAUD_SLOW

    def original(chip_seed: int):
        """(board, emulator, bytes-on-the-line counter) of the original board on a pty."""
        emu = DpeEmulator(make_params("paper"), seed=chip_seed)
        server = PeerServer.pty(emu)
        # a long line timeout: a loaded host must not turn into lost answers (and re-reads) here
        board = memhw.connect(f"dpe://{server.address}?timeout=30", calibration=None, limits=None)
        board.calibration = calibrate_offsets(board)  # all this board can calibrate
        line = board.link.transport.peer.bridge.link.stats
        return board, emu, server, lambda: line.bytes_total, lambda: line.exchanges

    def ours(chip_seed: int, calibrate: bool = True):
        board = memhw.connect(f"mock://?preset=paper&seed={chip_seed}", calibration=None, limits=None)
        if calibrate:
            board.calibration = calibrate_board(board)
        s = board.link.stats
        return board, board.link.transport.peer, None, lambda: s.bytes_total, lambda: s.round_trips

    rows = []
    for name, opener, on_board in (("memhw protocol", ours, False), ("memhw protocol, on-board PROGRAM", ours, True),
                                   ("original ASCII command set", original, False)):
        board, emu, server, nbytes, trips = opener(seed)
        try:
            t = np.random.default_rng(seed).uniform(*TARGET_RANGE, board.shape)
            busy0, b0, k0 = emu.hardware.counters.busy_time, nbytes(), trips()
            t0 = time.perf_counter()
            r = program(board, t, tolerance=2e-6, on_board=on_board, progress=True)
            wall = time.perf_counter() - t0
            hw, wire = emu.hardware.counters.busy_time - busy0, nbytes() - b0
            s = r.summary()
            peer = board.link.transport.peer
            timeouts = peer.bridge.link.stats.timeouts if hasattr(peer, "bridge") else 0
            rows.append({"link": name, "rounds": s["rounds"], "verify_average": r.verify_average, "exchanges": trips() - k0,
                         "line_timeouts": timeouts,
                         "converged_own": s["converged_of_responsive"], "pulses_median": s["pulses_median"],
                         "wire_bytes": wire, "hardware_s": hw, "est_s_115200": est(hw, wire), "wall_s": wall})
        finally:
            board.close()
            if server is not None:
                server.close()

    data = airline()
    model = Sequential([LSTM(1, 15), Dense(15, 1, "sigmoid")], seed=0)
    lstm = []
    for name, opener in (("memhw protocol", ours), ("original ASCII command set", original)):
        board, emu, server, nbytes, trips = opener(lstm_seed)
        try:
            placement = place({k: w.shape for k, w in model.params.items()}, board.shape)
            cb = CrossbarBackend(board, placement, weight_map=WeightMap())
            cb.program(model.params)
            busy0, b0, k0 = emu.hardware.counters.busy_time, nbytes(), trips()
            t0 = time.perf_counter()
            p = predict(model, [data.x], cb)[0][:, 0]
            wall = time.perf_counter() - t0
            hw, wire = emu.hardware.counters.busy_time - busy0, nbytes() - b0
            lstm.append({"link": name, "steps": len(data.x), "exchanges": trips() - k0, "wire_bytes": wire,
                         "hardware_s": hw, "est_s_115200": est(hw, wire), "wall_s": wall,
                         "rmse": float(np.sqrt(np.mean((p - data.y[:, 0]) ** 2)))})
        finally:
            board.close()
            if server is not None:
                server.close()
    return {"seed": seed, "programming": rows, "lstm": lstm}


def markdown_dpe(d: dict) -> list[str]:
    lines = ["", f"The original board's ASCII command set (`dpe://`, its emulator on a pty) beside memhw's protocol, "
                 f"same chip model (`paper`, seed {d['seed']}), same targets; est. hardware time = emulated busy "
                 "time + bytes on the link at 115 200 baud 8N1:", "",
             "(exchanges: requests of memhw's protocol, commands of the original set, its resyncs included)", "",
             "| whole-array programming, adaptive ±2 µS | rounds | samples per verify read | exchanges "
             "| converged (own verify) | bytes on the link | est. hardware time @115 200 baud | host wall time |",
             "|---|---|---|---|---|---|---|---|"]
    for p in d["programming"]:
        avg = p["verify_average"] or "board's choice"
        lines.append(f"| {p['link']} | {p['rounds']} | {avg} | {p['exchanges']} | {p['converged_own']:.2%} "
                     f"| {p['wire_bytes'] / 1e6:.2f} MB | {_duration(p['est_s_115200'])} | {p['wall_s']:.0f} s |")
    lines += ["", f"| airline LSTM(15) → Dense(1) inference, {d['lstm'][0]['steps']} steps | exchanges | bytes on the link "
                  "| est. hardware time @115 200 baud | RMSE over the series (scaled units) |", "|---|---|---|---|---|"]
    for q in d["lstm"]:
        lines.append(f"| {q['link']} | {q['exchanges']} | {q['wire_bytes'] / 1e3:.0f} kB "
                     f"| {_duration(q['est_s_115200'])} | {q['rmse']:.4f} |")
    return lines


def goal_keys(r: dict) -> dict:
    """The keys issue #14 names, each with the same measurement through protocol 2.0's
    messages in the same run (``*_2_0``)."""
    q = r["lstm"]
    out = {
        "lstm_airline_hw_s_115200": q["airline_on_board_2.1"]["est_s_115200"],
        "lstm_airline_hw_s_115200_2_0": q["airline_vmm_2.0"]["est_s_115200"],
        "lstm_airline_hw_s_12M": q["airline_on_board_2.1"]["est_s_12M"],
        "lstm_airline_link_share_12M": q["airline_on_board_2.1"]["link_share_12M"],
        "lstm_airline_hw_s_12M_2_0": q["airline_vmm_2.0"]["est_s_12M"],
        "lstm_batch_hw_s_115200": q["batch_on_board_2.1"]["est_s_115200"],
        "lstm_batch_hw_s_115200_2_0": q["batch_vmm_2.0"]["est_s_115200"],
        "lstm_host_step_ratio": q["airline_on_board_2.1"]["host_step_ratio"],
        "lstm_host_step_ratio_2_0": q["airline_vmm_2.0"]["host_step_ratio"],
        "lstm_wall_step_ratio": q["airline_on_board_2.1"]["wall_step_ratio"],
        "request_us": r["request"]["board_status_us"],
    }
    rows = {p["algorithm"]: p for p in r.get("programming", ()) if p["tolerance"] == 2e-6}
    if rows:
        out.update({
            "program_host_hw_s_115200": rows["adaptive"]["est_s_115200"],
            "program_host_hw_s_115200_2_0": rows["adaptive (protocol 2.0 messages)"]["est_s_115200"],
            "program_onboard_hw_s_115200": rows["adaptive (on board)"]["est_s_115200"],
            "program_onboard_hw_s_115200_2_0": rows["adaptive (on board, protocol 2.0)"]["est_s_115200"],
            "program_onboard_chip_s": rows["adaptive (on board)"]["hardware_s"],
            "program_host_rounds": rows["adaptive"]["rounds"],
            "program_onboard_rounds": rows["adaptive (on board)"]["rounds"],
        })
    return out


def markdown_goals(r: dict) -> list[str]:
    """Issue #14's goals beside protocol 2.0's messages, measured in the same run."""
    g, q = r["goals"], r["lstm"]
    lines = ["", "The link at the speed of the chip (issue #14): each row beside the same work through protocol "
             "2.0's messages (full-array `VMM` per time step, `READ_MAP` and `PULSE_SET`/`PULSE_RESET` per round), "
             "same chips, same weights and targets, same run:", "",
             "| measurement | protocol 2.0 messages | protocol 2.1 | goal |", "|---|---|---|---|",
             f"| airline LSTM(15) → Dense(1), whole series ({q['airline_steps']} steps), est. hardware time @115 200 "
             f"baud | {g['lstm_airline_hw_s_115200_2_0']:.2f} s | {g['lstm_airline_hw_s_115200']:.3f} s (`RUN_NETWORK`) "
             "| ≤ 0.5 s |",
             f"| the same @12 Mbit/s (link share) | {g['lstm_airline_hw_s_12M_2_0'] * 1e3:.1f} ms | "
             f"{g['lstm_airline_hw_s_12M'] * 1e3:.2f} ms ({g['lstm_airline_link_share_12M']:.0%}) | link ≤ 50 % |",
             f"| 450 × 8-step batch, LSTM(14→13) → Dense(10), @115 200 baud | {g['lstm_batch_hw_s_115200_2_0']:.1f} s "
             f"| {g['lstm_batch_hw_s_115200']:.1f} s | ≤ 15 s |",
             f"| host time per time step ÷ float software (emulator's own work excluded) | "
             f"{g['lstm_host_step_ratio_2_0']:.1f}× | {g['lstm_host_step_ratio']:.2f}× | ≤ 5× |",
             f"| … including the in-process emulator's physics | "
             f"{q['airline_vmm_2.0']['wall_step_ratio']:.1f}× | {g['lstm_wall_step_ratio']:.1f}× | |",
             f"| one small request (`Board.status()`) through the full in-process stack | | "
             f"{g['request_us']:.0f} µs | ≤ 50 µs |"]
    if "program_host_hw_s_115200" in g:
        lines += [
            f"| whole array to ±2 µS, host loop, est. hardware time @115 200 baud | "
            f"{g['program_host_hw_s_115200_2_0']:.1f} s | {g['program_host_hw_s_115200']:.1f} s | ≤ 20 s |",
            f"| whole array to ±2 µS, on board (`PROGRAM`), @115 200 baud | "
            f"{g['program_onboard_hw_s_115200_2_0']:.1f} s | {g['program_onboard_hw_s_115200']:.1f} s "
            f"(chip {g['program_onboard_chip_s']:.2f} s) | ≤ 2 × the chip's time |",
            f"| rounds: host loop / on board | | {g['program_host_rounds']} / {g['program_onboard_rounds']} | equal |"]
    return lines


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def markdown(r: dict) -> str:
    p = r["protocol"]
    s = p["serial_115200"]
    lines = [
        f"memhw benchmarks — {r['when']} on {r['machine']} (python {r['python']})",
        "",
        "| measurement | value | goal |",
        "|---|---|---|",
        f"| wire ÷ payload bytes, full 128×64 conductance read | {p['full_read']['wire_over_payload']:.4f} | ≤ 1.05 |",
        f"| wire ÷ payload bytes, 1 000-vector VMM | {p['vmm_1000']['wire_over_payload']:.4f} | ≤ 1.05 |",
        f"| round trips per full-array read | {p['full_read']['round_trips']} | small constant |",
        f"| `read_conductance()` full in-process stack ÷ emulator handler | "
        f"{p['read_stack_vs_handler']['ratio']:.2f} ({p['read_stack_vs_handler']['stack_s'] * 1e3:.2f} ms vs "
        f"{p['read_stack_vs_handler']['handler_s'] * 1e3:.2f} ms) | ≤ 1.5 |",
        f"| full read at 115 200 baud: memhw vs ASCII (est.) | {s['read_s']:.2f} s ({s['read_bytes']} B) vs "
        f"{s['ascii_read_s']:.2f} s ({s['ascii_read_bytes_est']} B) | |",
        f"| full-array SET batch (per-device amplitude and gate) at 115 200 baud: memhw vs published ASCII | "
        f"{s['set_s']:.2f} s ({s['set_bytes']} B, {s['set_round_trips']} round trips) vs "
        f"{s['ascii_set_s']:.2f} s ({s['ascii_set_bytes']:.0f} B) | |",
    ]
    m = r.get("model", {})
    if m:
        lines += [
            f"| G_eff solve (exact resistor network), 128×64, paper preset | {m['geff_solve_s'] * 1e3:.1f} ms | < 50 ms |",
            f"| VMM throughput, chip model alone, batches of 1 000 | {m['vmm_model_vectors_per_s']:,.0f} vectors/s | ≥ 100 000 |",
            f"| VMM throughput, full in-process stack | {m['vmm_stack_vectors_per_s']:,.0f} vectors/s "
            f"({m['vmm_stack_over_model']:.2f}× the model's time) | |",
        ]
    if "programming" in r:
        lines += [
            "",
            "Whole 128×64 array to uniform random targets in 20–200 µS, `paper` preset, seed 4 "
            "(same chip and targets for every row):",
            "",
            "| algorithm | tolerance | pulses/device median | p99 | converged (own verify) | within tol (independent 32-sample read, responsive devices) "
            "| error σ of converged devices vs that read | vs model truth | rounds | round trips | host wall time | est. hardware time @115 200 baud | @12 Mbit/s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for p in r["programming"]:
            lines.append(
                f"| {p['algorithm']} | ±{p['tolerance'] * 1e6:.0f} µS | {p['pulses_median']:.0f} | {p['pulses_p99']:.0f} "
                f"| {p['converged_own']:.2%} | {p['within_tol_read32']:.2%} | {p['error_std_read32'] * 1e6:.2f} µS "
                f"| {p['error_std_truth'] * 1e6:.2f} µS | {p['rounds']} | {p['round_trips']} | {p['wall_s']:.1f} s "
                f"| {p['est_s_115200']:.1f} s | {p['est_s_12M']:.2f} s |")
    if "goals" in r:
        lines += markdown_goals(r)
    if "prior" in r:
        p = r["prior"]
        lines += ["", f"Gate → conductance prior from a characterisation sweep (rows 0–31, 20–250 µS, ±2 µS, "
                      f"seed {p['seed']}; sweep slope {p['prior_slope_uS_per_V']} µS/V):", "",
                  "| algorithm | pulses/device without prior | with prior | ratio | converged without | with |",
                  "|---|---|---|---|---|---|"]
        for alg in ("adaptive", "baseline"):
            a = p[alg]
            lines.append(f"| {alg} | {a['without_prior']['pulses_per_device']:.2f} | {a['with_prior']['pulses_per_device']:.2f} "
                         f"| {a['pulse_ratio_with_over_without']:.3f} | {a['without_prior']['converged']:.2%} "
                         f"| {a['with_prior']['converged']:.2%} |")
    if "dpe" in r:
        lines += markdown_dpe(r["dpe"])
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=20, help="repetitions per timing (best of)")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--quick", action="store_true", help="skip the (minutes-long) programming comparisons")
    ap.add_argument("--dpe-only", action="store_true",
                    help="only the original board's ASCII command set beside memhw's protocol")
    args = ap.parse_args()
    r = {"when": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()} {platform.processor()}".strip(),
         "python": platform.python_version()}
    if args.dpe_only:
        r["dpe"] = bench_dpe()
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_dpe.json").write_text(json.dumps(r, indent=2))
        md = "\n".join(markdown_dpe(r["dpe"])) + "\n"
        (args.out / "bench_dpe.md").write_text(md)
        print(md)
        return
    r["protocol"] = bench_protocol(args.repeat)
    r["request"] = bench_request_cost()
    r["model"] = bench_model(args.repeat)
    r["lstm"] = bench_lstm(args.repeat)
    if not args.quick:
        r["programming"] = bench_programming()
        r["prior"] = bench_prior(0)
        r["dpe"] = bench_dpe()
    r["goals"] = goal_keys(r)
    r.update(r["goals"])  # the keys issue #14 names, at the top level
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(r, indent=2))
    md = markdown(r)
    (args.out / "bench.md").write_text(md)
    print(md)
    print(f"wrote {args.out / 'bench.json'} and {args.out / 'bench.md'}")


if __name__ == "__main__":
    main()
