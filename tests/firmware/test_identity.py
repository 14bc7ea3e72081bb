"""Same seed, same requests: the C firmware core answers with the Python peer's wire bytes.

Both back ends get the same byte stream (HELLO, then requests of every kind: reads,
pulse batches with progress, refusals of every check, retries answered from the reply
cache, an ABORT arriving between rows, a reboot mid-batch, a second host). The session
and boot ids are random by design; both draw them from the same seeded stream here. The
replies must be byte-identical except where the protocol lets them differ:

* HELLO's ``firmware`` field names the firmware ("memhw-emu 2.0" / "memhw-core 2.0");
* STATUS ``uptime`` is each board's own clock;
* a ``BUSY`` reason carries times (the session's start and the owner's idle time).
"""

from __future__ import annotations

import secrets
from typing import Callable

import numpy as np
import pytest

import firmware_protocol as fp
from memhw.cfirmware import CBoard
from memhw.mock.emulator import BoardEmulator as _BoardEmulator
from memhw.mock.params import make_params

OP = {m.name: m.opcode for m in fp.SCHEMA.messages}
#: the protocol minor version the C core implements (memhw_core.h MEMHW_CORE_MINOR)
CORE_MINOR = 1


def BoardEmulator(*args, **kwargs) -> _BoardEmulator:  # noqa: N802 - stands in for the class
    """The Python peer at the C core's protocol version (the same HELLO and opcodes)."""
    return _BoardEmulator(*args, minor=CORE_MINOR, **kwargs)
ROWS = 16
WANT_PROGRESS = fp.framing.WANT_PROGRESS


def _hello(seq: int, mode: int = 0, session: int = 0, client: str = "lab-pc") -> bytes:
    payload = fp.encode("HELLO", "request", {"host_major": 2, "host_minor": 0, "mode": mode, "session": session,
                                             "client": client})
    return fp.encode_message(seq=seq, opcode=OP["HELLO"], payload=payload, max_payload=240)


def _req(seq: int, name: str, fields: dict, session: int, flags: int = 0, version: int = fp.MAJOR) -> bytes:
    return fp.encode_message(seq=seq, opcode=OP[name], payload=fp.encode(name, "request", fields), max_payload=4096,
                             session=session, flags=flags, version=version)


def _mask(rows: slice, step: int) -> np.ndarray:
    m = np.zeros((ROWS, 64), bool)
    m[rows, ::step] = True
    return m


def _pulses(name: str, mask: np.ndarray, amplitude, gate, width, session: int, seq: int) -> bytes:
    rows = np.flatnonzero(mask.any(axis=1))
    sub = mask[rows[0]:rows[-1] + 1]
    return _req(seq, name, {"row_start": int(rows[0]), "row_count": len(sub),
                            "mask": np.packbits(sub.reshape(-1), bitorder="little"), "amplitude": amplitude,
                            "gate": gate, "width": width}, session, flags=WANT_PROGRESS)


def _script(session: int) -> list[bytes]:
    """Requests of every kind and every refusal, in one session."""
    rng = np.random.default_rng(1)
    m = _mask(slice(2, 6), 3)
    n = int(m.sum())
    gates = rng.integers(2500, 5000, n)
    return [
        _req(2, "READ_MAP", {"v_read": 1311, "row_start": 0, "row_count": ROWS, "average": 1, "gains": [255]}, session),
        _pulses("PULSE_SET", m, [16384], gates, [203], session, 3),
        _pulses("PULSE_SET", m, [16384], gates, [203], session, 3),  # a retry: answered from the cache
        _req(4, "READ_MAP", {"v_read": 1311, "row_start": 0, "row_count": ROWS, "average": 5, "gains": [255]}, session),
        _req(5, "READ_MAP", {"v_read": 1311, "row_start": 1, "row_count": 9, "average": 3, "gains": [2]}, session),
        _req(6, "VMM", {"n": 7, "gains": [255], "inputs": rng.integers(-1311, 1311, 7 * ROWS)}, session),
        _req(7, "VMM", {"n": 3, "gains": rng.integers(0, 4, 64), "inputs": rng.integers(-6554, 6554, 3 * ROWS)},
             session),
        _req(8, "VMM", {"n": 2, "gains": [0], "inputs": np.full(2 * ROWS, 6554)}, session),
        _req(9, "SET_LEVELS", {"group": 2, "value": 16384, "mask": [255] * 8, "codes": []}, session),
        _req(10, "SET_LEVELS", {"group": 0, "value": 0, "mask": [], "codes": rng.integers(-600, 600, ROWS)}, session),
        _req(11, "SET_LEVELS", {"group": 1, "value": 200, "mask": [0x0F] + [0] * 7, "codes": []}, session),
        _req(12, "READ_CURRENTS", {"gains": [255], "average": 9}, session),
        _req(13, "READ_CURRENTS", {"gains": [1], "average": 2}, session),
        _req(14, "READ_REFERENCE", {"index": 3, "v_ref": 3000, "gains": [], "average": 4}, session),
        _req(15, "READ_REFERENCE", {"index": 0, "v_ref": 32000, "gains": [255], "average": 2}, session),
        _req(16, "READ_DAC", {"group": 0, "codes": [1000], "average": 4}, session),
        _req(17, "READ_DAC", {"group": 2, "codes": rng.integers(0, 18000, 64), "average": 1}, session),
        _pulses("PULSE_RESET", m, rng.integers(5000, 11000, n), [16384], rng.integers(0, 500, n), session, 18),
        _req(19, "WAIT", {"seconds": 2.5}, session),
        _req(20, "SET_LIMITS", {"read_max": 3000, "set_max": 20000, "reset_max": 12000, "gate_max": 9000,
                                "width_max": 500}, session),
        _pulses("PULSE_SET", m, [21000], [3000], [100], session, 21),        # above the tighter set_max
        _req(22, "STATUS", {}, session),
        # refusals, one per check
        _req(23, "READ_MAP", {"v_read": 1311, "row_start": 10, "row_count": 9, "average": 1, "gains": [255]}, session),
        _req(24, "READ_MAP", {"v_read": 1311, "row_start": 0, "row_count": 1, "average": 0, "gains": [255]}, session),
        _req(25, "READ_MAP", {"v_read": 1311, "row_start": 0, "row_count": 1, "average": 1, "gains": [9]}, session),
        _req(26, "READ_MAP", {"v_read": 1311, "row_start": 0, "row_count": 1, "average": 1, "gains": [1, 2]}, session),
        _req(27, "READ_MAP", {"v_read": -5, "row_start": 0, "row_count": 1, "average": 1, "gains": []}, session),
        _req(28, "VMM", {"n": 2, "gains": [255], "inputs": np.zeros(5, np.int16)}, session),
        _req(29, "VMM", {"n": 1, "gains": [255], "inputs": np.full(ROWS, 9000)}, session),
        _req(30, "SET_LEVELS", {"group": 3, "value": 1, "mask": [], "codes": []}, session),
        _req(31, "SET_LEVELS", {"group": 0, "value": 1, "mask": [1], "codes": []}, session),
        _req(32, "SET_LEVELS", {"group": 2, "value": -1, "mask": [255] * 8, "codes": []}, session),
        _req(33, "SET_LEVELS", {"group": 1, "value": 0, "mask": [], "codes": [1, 2]}, session),
        _req(34, "GROUND_ALL", {"mode": 3}, session),
        _req(35, "WAIT", {"seconds": 5000.0}, session),
        _req(36, "WAIT", {"seconds": float("nan")}, session),
        _req(37, "SET_LIMITS", {"read_max": 100, "set_max": 30000, "reset_max": 100, "gate_max": 100,
                                "width_max": 10}, session),
        _req(38, "READ_DAC", {"group": 1, "codes": [30000], "average": 1}, session),
        _req(39, "READ_DAC", {"group": 1, "codes": [1, 2, 3], "average": 1}, session),
        _req(40, "READ_REFERENCE", {"index": 99, "v_ref": 1, "gains": [], "average": 1}, session),
        _pulses("PULSE_SET", m, [1, 2], [3000], [100], session, 41),
        _pulses("PULSE_RESET", m, [0], [3000], [100], session, 42),
        _pulses("PULSE_SET", m, [100], [-3], [100], session, 43),
        _pulses("PULSE_SET", m, [100], [30], [900], session, 44),
        fp.encode_message(seq=45, opcode=0x33, payload=b"", max_payload=240, session=session),  # unknown opcode
        _req(46, "STATUS", {}, session, version=1),                                           # another major
        fp.encode_message(seq=47, opcode=OP["READ_MAP"], payload=b"\x01\x02\x03", max_payload=240,
                          session=session),                                                   # undecodable
        fp.encode_message(seq=48, opcode=OP["HELLO"], payload=b"\x02", max_payload=240),       # HELLO too short
        _req(49, "READ_MAP", {"v_read": 1311, "row_start": 0, "row_count": 1, "average": 1, "gains": []}, 0x0BAD),
        _req(50, "STATUS", {}, session),
        _req(51, "BYE", {}, session),
        _req(52, "STATUS", {}, session),                                                       # no session now
    ]


def _run(cls: type, stream: Callable[[int], list[bytes]], poll_script: dict[int, bytes] | None = None,
         reset_after: int | None = None) -> tuple[list[list[fp.Message]], object]:
    draws = np.random.default_rng(99)
    original = secrets.randbits
    secrets.randbits = lambda k: int(draws.integers(0, 1 << k))  # session and boot ids, from one seeded stream
    try:
        board = cls(make_params("paper", rows=ROWS), seed=11)
        out: list[bytes] = []
        polls = {"n": 0}

        def poll() -> bytes:
            polls["n"] += 1
            return (poll_script or {}).get(polls["n"], b"")

        conn = board.open(out.append, poll, "test")
        conn.receive(_hello(1))
        replies = [_messages(b"".join(out))]
        session = board.session
        if reset_after is not None:
            board.schedule_reset(reset_after)
        for wire in stream(session):
            out.clear()
            conn.receive(wire)
            replies.append(_messages(b"".join(out)))
        return replies, board
    finally:
        secrets.randbits = original


def _messages(wire: bytes) -> list[fp.Message]:
    assembler = fp.MessageAssembler()
    return [m for m in map(assembler.add, fp.FrameDecoder().feed(wire)) if m is not None]


def _normalise(msg: fp.Message) -> tuple:
    """A message with the fields that may legitimately differ blanked out."""
    name = fp.SCHEMA.message(msg.opcode).name if msg.opcode in OP.values() else "?"
    payload = msg.payload
    if msg.is_reply and msg.status == fp.STATUS["OK"] and not msg.is_progress and name in ("HELLO", "STATUS"):
        fields = fp.decode(msg.opcode, "reply", payload)
        fields.pop("firmware" if name == "HELLO" else "uptime")
        payload = repr(sorted((k, v.tolist() if hasattr(v, "tolist") else v) for k, v in fields.items()))
    if msg.status == fp.STATUS["BUSY"]:
        payload = b"BUSY"
    return msg.version, msg.flags, msg.seq, msg.opcode, msg.status, msg.session, payload, msg.frames


def _compare(python: list[list[fp.Message]], c: list[list[fp.Message]]) -> int:
    assert len(python) == len(c)
    exact = 0
    for i, (a, b) in enumerate(zip(python, c)):
        assert [_normalise(m) for m in a] == [_normalise(m) for m in b], f"reply {i} differs"
        exact += all(x == y for x, y in zip(a, b))
    return exact


def test_every_message_and_refusal_gives_the_python_peers_bytes() -> None:
    py, py_board = _run(BoardEmulator, _script)
    c, c_board = _run(CBoard, _script)
    exact = _compare(py, c)
    # only the HELLO reply (firmware name) and the two STATUS replies of the session (uptime) differ at all
    assert exact == len(py) - 3
    assert np.array_equal(py_board.chip.G, c_board.chip.G)
    assert py_board.chip.time == c_board.chip.time
    assert np.array_equal(py_board.hardware.counters.pulses, c_board.hardware.counters.pulses)
    assert py_board.counters.cache_hits == c_board.counters.cache_hits == 1
    assert py_board.counters.executed == c_board.counters.executed
    assert py_board.counters.requests == c_board.counters.requests


def test_abort_between_rows_gives_the_same_replies() -> None:
    """An ABORT arriving on the owner's connection during a batch (at the 4th look)."""

    def stream(session: int) -> list[bytes]:
        m = _mask(slice(0, 12), 2)
        return [_pulses("PULSE_SET", m, [16384], [3000], [203], session, 2),
                _req(3, "READ_MAP", {"v_read": 1311, "row_start": 0, "row_count": ROWS, "average": 1, "gains": []},
                     session)]

    # an ABORT without the session id is no abort: it waits for the batch and is then refused NO_SESSION
    py, py_board = _run(BoardEmulator, stream, {4: _req(77, "ABORT", {}, 0)})
    c, c_board = _run(CBoard, stream, {4: _req(77, "ABORT", {}, 0)})
    _compare(py, c)
    assert [m.status for m in c[1] if not m.is_progress] == [fp.STATUS["OK"], fp.STATUS["NO_SESSION"]]
    py, py_board = _run(BoardEmulator, stream, {4: _req(77, "ABORT", {}, py_board.session)})
    c, c_board = _run(CBoard, stream, {4: _req(77, "ABORT", {}, c_board.session)})
    _compare(py, c)
    statuses = [m.status for m in c[1] if not m.is_progress]
    assert statuses == [fp.STATUS["OK"], fp.STATUS["ABORTED"]]  # the ABORT reply, then the batch's
    assert np.array_equal(py_board.hardware.counters.pulses, c_board.hardware.counters.pulses)


@pytest.mark.parametrize("after", [3, 12])
def test_reboot_mid_batch_gives_the_same_replies(after: int) -> None:
    def stream(session: int) -> list[bytes]:
        m = _mask(slice(0, 12), 2)
        return [_pulses("PULSE_RESET", m, [9000], [16384], [203], session, 2),
                _pulses("PULSE_RESET", m, [9000], [16384], [203], session, 2),  # the host's retry
                _hello(3, mode=1, session=session)]                               # RESUME: the session is gone

    py, py_board = _run(BoardEmulator, stream, reset_after=after)
    c, c_board = _run(CBoard, stream, reset_after=after)
    _compare(py, c)
    assert len([m for m in c[1] if m.is_progress]) == after and not [m for m in c[1] if not m.is_progress]
    assert c[2][0].status == fp.STATUS["NO_SESSION"] and c[3][0].status == fp.STATUS["NO_SESSION"]
    assert py_board.counters.reboots == c_board.counters.reboots == 1


def test_a_second_host_is_refused_alike() -> None:
    def run(cls: type) -> tuple[list[list[fp.Message]], object]:
        draws = np.random.default_rng(5)
        original = secrets.randbits
        secrets.randbits = lambda k: int(draws.integers(0, 1 << k))
        try:
            board = cls(make_params("paper", rows=ROWS), seed=3)
            out_a: list[bytes] = []
            out_b: list[bytes] = []
            a = board.open(out_a.append, None, "tcp 10.0.0.1:5000")
            b = board.open(out_b.append, None, "tcp 10.0.0.2:6000")
            replies = []
            steps = ((a, out_a, lambda: _hello(1, client="first")), (b, out_b, lambda: _hello(1, client="second")),
                     (b, out_b, lambda: _req(2, "STATUS", {}, board.session)),
                     (b, out_b, lambda: _hello(3, mode=2, client="second 'taker'")),
                     (b, out_b, lambda: _req(4, "STATUS", {}, board.session)),
                     (a, out_a, lambda: _req(5, "STATUS", {}, 0)))
            for conn, out, wire in steps:
                out.clear()
                conn.receive(wire())
                replies.append(_messages(b"".join(out)))
            return replies, board
        finally:
            secrets.randbits = original

    py, _ = run(BoardEmulator)
    c, board = run(CBoard)
    _compare(py, c)
    assert c[1][0].status == fp.STATUS["BUSY"] and c[2][0].status == fp.STATUS["NO_SESSION"]
    status = fp.decode("STATUS", "reply", c[4][0].payload)
    assert status["last_error"].startswith("takeover: session 0x") and "'first' ended by \"second 'taker'\"" in \
        status["last_error"]
    assert c[5][0].status == fp.STATUS["NO_SESSION"]  # the first host's request after the takeover
    assert board.counters.takeovers == 1 and board.counters.busy_answers == 1


# ------------------------------------------------------------------ protocol 2.1 messages

def _sel(**kw) -> dict:
    """A selection's fields: ``mask`` or ``index`` (the other empty)."""
    return {"mask": kw.get("mask", []), "index": kw.get("index", [])}


def _packed(m: np.ndarray) -> np.ndarray:
    return np.packbits(m.reshape(-1), bitorder="little")


def _calibration(rng: np.random.Generator, n_gains: int) -> dict:
    f = lambda lo, hi, n: rng.uniform(lo, hi, n).astype(np.float32)  # noqa: E731
    return {"row_gain": f(0.9, 1.1, ROWS), "row_offset": f(-2e-3, 2e-3, ROWS), "col_gain": f(0.9, 1.1, 64),
            "col_offset": f(-2e-3, 2e-3, 64), "gate_gain": f(0.9, 1.1, 64), "gate_offset": f(-5e-3, 5e-3, 64),
            "tia_gain": f(0.95, 1.05, 64 * n_gains), "tia_offset": f(-2e-3, 2e-3, 64 * n_gains)}


def _network(kinds, n_in, n_out, bias, activation, tiles, in_volts=None, out_scale=None, out_offset=()) -> dict:
    """LOAD_NETWORK fields; ``tiles``: per layer a list of (tile, in_start, out_start, gain)."""
    n = len(kinds)
    flat = [t for layer in tiles for t in layer]
    return {"kinds": kinds, "n_in": n_in, "n_out": n_out, "bias": bias, "activation": activation,
            "in_volts": np.full(n, 0.1, np.float32) if in_volts is None else np.asarray(in_volts, np.float32),
            "out_scale": np.full(n, 2e4, np.float32) if out_scale is None else np.asarray(out_scale, np.float32),
            "tile_count": [len(layer) for layer in tiles], "tiles": [t[0] for t in flat],
            "in_start": [t[1] for t in flat], "out_start": [t[2] for t in flat], "tile_gain": [t[3] for t in flat],
            "out_offset": np.asarray(out_offset, np.float32)}


def _run_fields(lengths, inputs, progress_steps: int = 0) -> dict:
    """RUN_NETWORK fields: inputs as int16 codes of one binary32 scale (1/8192)."""
    return {"lengths": lengths, "input_scale": np.float32(1 / 8192), "progress_steps": progress_steps,
            "inputs": np.rint(np.asarray(inputs, float) * 8192).astype(np.int16)}


def _tile(tile: int, rows, cols, neg_rows=(), neg_cols=()) -> dict:
    return {"tile": tile, "rows": list(rows), "neg_rows": list(neg_rows), "cols": list(cols),
            "neg_cols": list(neg_cols)}


#: an LSTM (3 inputs, 2 hidden, bias: a 8 x 6 matrix on tile 2, differential columns) and a
#: sigmoid DENSE layer (2 + bias -> 1 on tile 3)
LSTM_NET = _network([0, 1], [3, 2], [2, 1], [1, 1], [0, 1], [[(2, 0, 0, 255)], [(3, 0, 0, 1)]],
                    in_volts=[0.15, 0.1], out_scale=[3e4, 1e4])
#: the same LSTM, its last step only, then a linear DENSE layer
LAST_NET = _network([0, 2, 1], [3, 2, 2], [2, 0, 1], [1, 0, 1], [0, 0, 0], [[(2, 0, 0, 2)], [], [(3, 0, 0, 255)]])


def _script_21(session: int) -> list[bytes]:
    """Every 2.1 message, nominal and calibrated, and each of its refusals."""
    rng = np.random.default_rng(21)
    s = session
    devices = np.zeros((4, 64), bool)
    devices[0, [3, 4, 40]] = devices[2, 7] = devices[3, 60:64] = True
    index = fp.pack_offsets(np.flatnonzero(devices))
    lstm_inputs = rng.uniform(-1, 1, 9 * 3).astype(np.float32)
    steps = [
        _req(2, "RUN_NETWORK", _run_fields([1], [0.0, 0.0, 0.0]), s),  # none loaded
        _req(3, "DEFINE_TILE", _tile(0, range(8), range(10), range(8, 16), range(10, 20)), s),
        _req(4, "DEFINE_TILE", _tile(1, range(5), range(20, 28)), s),
        _req(5, "DEFINE_TILE", _tile(2, range(6), range(30, 38), (), range(38, 46)), s),
        _req(6, "DEFINE_TILE", _tile(3, range(6, 9), [50]), s),
        _req(7, "VMM_TILE", {"tile": 0, "n": 5, "gains": [255], "inputs": rng.integers(-1311, 1311, 40)}, s),
        _req(8, "VMM_TILE", {"tile": 1, "n": 3, "gains": [2], "inputs": rng.integers(-3000, 3000, 15)}, s),
        _req(9, "VMM_TILE", {"tile": 0, "n": 2, "gains": rng.integers(0, 4, 20), "inputs": np.full(16, -1311)}, s),
        _req(10, "READ_DEVICES", {"v_read": 1311, "average": 3, "gains": [255], "row_start": 2, "row_count": 4,
                                  **_sel(mask=_packed(devices))}, s),
        _req(11, "READ_DEVICES", {"v_read": 1311, "average": 1, "gains": [1], "row_start": 2, "row_count": 4,
                                  **_sel(index=index)}, s),
        _req(12, "READ_DEVICES", {"v_read": 1000, "average": 4, "gains": [], "row_start": 9, "row_count": 4,
                                  **_sel(index=index)}, s),
        _req(13, "PULSE_DEVICES", {"kind": 0, "row_start": 2, "row_count": 4, **_sel(index=index),
                                   "amplitude": rng.integers(9000, 16000, 8), "gate": [3500], "width": [203],
                                   "progress_rows": 2}, s, flags=WANT_PROGRESS),
        _req(14, "PULSE_DEVICES", {"kind": 1, "row_start": 2, "row_count": 4, **_sel(mask=_packed(devices)),
                                   "amplitude": [7000], "gate": [16384], "width": rng.integers(0, 400, 8),
                                   "progress_rows": 0}, s, flags=WANT_PROGRESS),
        _req(15, "LOAD_NETWORK", LSTM_NET, s),
        _req(16, "RUN_NETWORK", _run_fields([3, 5, 1], lstm_inputs, 2), s,
             flags=WANT_PROGRESS),
        _req(17, "LOAD_NETWORK", LAST_NET, s),
        _req(18, "RUN_NETWORK", _run_fields([2, 4], lstm_inputs[:18], 0), s),
        _req(19, "SET_CALIBRATION", _calibration(rng, 4), s),
        _req(20, "VMM_TILE", {"tile": 0, "n": 4, "gains": [], "inputs": rng.integers(-1311, 1311, 32)}, s),
        _req(21, "PULSE_DEVICES", {"kind": 0, "row_start": 2, "row_count": 4, **_sel(index=index),
                                   "amplitude": [12000], "gate": rng.integers(3000, 4000, 8), "width": [203],
                                   "progress_rows": 1}, s, flags=WANT_PROGRESS),
        _req(22, "PULSE_DEVICES", {"kind": 1, "row_start": 2, "row_count": 4, **_sel(index=index),
                                   "amplitude": rng.integers(5000, 9000, 8), "gate": [16384], "width": [100],
                                   "progress_rows": 3}, s),
        _req(23, "RUN_NETWORK", _run_fields([4, 2], lstm_inputs[:18], 1), s),
        _req(24, "DEFINE_TILE", _tile(3, range(9, 12), [51]), s),       # same size: the network changes
        _req(25, "RUN_NETWORK", _run_fields([2], lstm_inputs[:6], 0), s),
        _req(26, "DEFINE_TILE", _tile(3, range(9, 13), [51]), s),       # another size: refused
        _req(27, "SET_CALIBRATION", {k: [] for k in _calibration(rng, 4)}, s),  # nominal again
        _req(28, "VMM_TILE", {"tile": 1, "n": 1, "gains": [255], "inputs": rng.integers(-1311, 1311, 5)}, s),
        _req(29, "LOAD_NETWORK", dict(LSTM_NET, out_offset=rng.uniform(-0.05, 0.05, 9).astype(np.float32)), s),
        _req(30, "RUN_NETWORK", _run_fields([3, 2], lstm_inputs[:15], 0), s),
    ]
    cal = _calibration(rng, 4)
    bad_cal = [dict(cal, col_gain=cal["col_gain"][:5]), dict(cal, row_offset=np.full(ROWS, np.nan, np.float32)),
               dict(cal, tia_gain=np.zeros(256, np.float32)), dict(cal, gate_offset=[])]
    bad_tiles = [_tile(40, [0], [0]), _tile(0, [1, 1], [0]), _tile(0, [ROWS], [0]), _tile(0, [0], []),
                 _tile(0, [0, 1], [0], [2]), _tile(0, [0, 1], [0, 1], [1, 2]), _tile(0, [0], [3], [], [3])]
    bad_vmm = [{"tile": 9, "n": 1, "gains": [], "inputs": [0]}, {"tile": 1, "n": 2, "gains": [], "inputs": [0] * 5},
               {"tile": 1, "n": 1, "gains": [], "inputs": [0, 0, 9000, 0, 0]},
               {"tile": 1, "n": 1, "gains": [1, 2], "inputs": [0] * 5}, {"tile": 1, "n": 1, "gains": [7], "inputs": [0] * 5},
               {"tile": 1, "n": 1, "gains": [], "inputs": [0, -32768, 0, 0, 0]}]
    read = {"v_read": 1311, "average": 1, "gains": [], "row_start": 2, "row_count": 4, **_sel(index=index)}
    bad_reads = [dict(read, row_count=20), dict(read, average=0), dict(read, gains=[1, 2]), dict(read, gains=[9]),
                 dict(read, gains=[1] * 64), dict(read, v_read=0), dict(read, mask=_packed(devices)),
                 dict(read, index=[]), dict(read, index=[0x80]), dict(read, index=[0x80] * 5 + [1]),
                 dict(read, index=[255, 255, 255, 255, 15, 3])]
    pulse = {"kind": 0, "row_start": 2, "row_count": 4, **_sel(index=index), "amplitude": [9000], "gate": [3000],
             "width": [100], "progress_rows": 0}
    bad_pulses = [dict(pulse, kind=5), dict(pulse, row_start=15), dict(pulse, index=[0x81]),
                  dict(pulse, amplitude=[1, 2]), dict(pulse, amplitude=[0]), dict(pulse, kind=1, amplitude=[30000]),
                  dict(pulse, gate=[-1]), dict(pulse, gate=[1, 2, 3]), dict(pulse, width=[1, 2]),
                  dict(pulse, width=[60000])]
    bad_nets = [dict(LSTM_NET, bias=[1]), dict(LSTM_NET, in_start=[0]), dict(LSTM_NET, kinds=[0, 7]),
                dict(LSTM_NET, tiles=[2, 9]), _network([], [], [], [], [], []),
                _network([1] * 9, [2] * 9, [2] * 9, [0] * 9, [0] * 9, [[(3, 0, 0, 255)]] * 9),
                dict(LSTM_NET, n_in=[3, 5]), _network([0, 2, 2], [3, 2, 2], [2, 0, 0], [1, 0, 0], [0, 0, 0],
                                                      [[(2, 0, 0, 2)], [], []]),
                _network([0, 2], [3, 2], [2, 0], [1, 0], [0, 0], [[(2, 0, 0, 2)], [(3, 0, 0, 2)]]),
                _network([0, 2, 0], [3, 2, 2], [2, 0, 2], [1, 0, 1], [0, 0, 0], [[(2, 0, 0, 2)], [], [(2, 0, 0, 2)]]),
                dict(LSTM_NET, n_out=[2, 0]), dict(LSTM_NET, activation=[0, 9]),
                dict(LSTM_NET, in_volts=np.array([0.0, 0.1], np.float32)),
                dict(LSTM_NET, out_scale=np.array([np.inf, 1.0], np.float32)),
                dict(LSTM_NET, in_start=[1, 0]), dict(LSTM_NET, tile_gain=[255, 8]),
                _network([1], [4], [1], [0], [0], [[(3, 0, 0, 1)]]),              # covers 3 of 4 inputs
                _network([1], [6], [1], [0], [0], [[(3, 0, 0, 1), (3, 2, 0, 1)]]),  # overlapping tiles
                dict(LSTM_NET, out_offset=np.zeros(5, np.float32)), dict(LSTM_NET, out_offset=np.full(9, np.nan, np.float32))]
    bad_runs = [_run_fields([], []), _run_fields([2, 0], [0.0] * 6), _run_fields([2], [0.0] * 5),
                dict(_run_fields([1], [0.0] * 3), input_scale=np.float32(np.inf)),
                dict(_run_fields([1], [0.0] * 3), input_scale=np.float32(0.0)),
                dict(_run_fields([1], [0.0] * 3), input_scale=np.float32(-1.0))]
    seq = 100
    for name, cases in (("SET_CALIBRATION", bad_cal), ("DEFINE_TILE", bad_tiles), ("VMM_TILE", bad_vmm),
                        ("READ_DEVICES", bad_reads), ("PULSE_DEVICES", bad_pulses), ("LOAD_NETWORK", bad_nets),
                        ("RUN_NETWORK", bad_runs)):
        for fields in cases:
            steps.append(_req(seq, name, fields, s))
            seq += 1
    steps.append(_req(seq, "STATUS", {}, s))
    return steps


def test_every_21_message_and_refusal_gives_the_python_peers_bytes() -> None:
    py, py_board = _run(BoardEmulator, _script_21)
    c, c_board = _run(CBoard, _script_21)
    exact = _compare(py, c)
    statuses = [m.status for r in c[1:] for m in r if not m.is_progress]
    assert statuses.count(fp.STATUS["OK"]) >= 26 and len(set(statuses)) == 3
    assert exact == len(py) - 2  # the HELLO (firmware name) and the STATUS (uptime)
    assert np.array_equal(py_board.chip.G, c_board.chip.G)
    assert py_board.chip.time == c_board.chip.time
    assert py_board.counters.executed == c_board.counters.executed
