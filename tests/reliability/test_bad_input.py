"""Bad input everywhere: a clear error of the documented type, nothing sent, nothing written."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

import firmware_protocol as fp
import memhw
from memhw.board import Board
from memhw.calibration import apply_calibration, load_calibration
from memhw.link import Link
from memhw.mock.emulator import BoardEmulator
from memhw.mock.params import make_params
from memhw.peer import PeerServer
from memhw.session import Session, SessionFileError, load
from memhw.transport import InProcessTransport

from .helpers import connect, emulator

NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def board():
    b = connect("mock://?preset=ideal&seed=1&rows=8")
    yield b
    b.close()


def _mask(b, **kw) -> np.ndarray:
    m = np.zeros(b.shape, bool)
    m[1, 2] = True
    return m


BOARD_CALLS = {
    # pulses
    "mask of another shape": lambda b: b.pulse_set(np.ones((4, 4), bool)),
    "mask not boolean": lambda b: b.pulse_set(np.ones(b.shape, int)),
    "amplitude NaN": lambda b: b.pulse_set(_mask(b), v=NAN),
    "gate infinite": lambda b: b.pulse_reset(_mask(b), gate=INF),
    "width array of another shape": lambda b: b.pulse_set(_mask(b), width=np.full((3, 3), 1e-6)),
    "SET amplitude above the limit": lambda b: b.pulse_set(_mask(b), v=3.6),
    "RESET amplitude above the limit": lambda b: b.pulse_reset(_mask(b), v=2.6),
    "negative gate": lambda b: b.pulse_set(_mask(b), gate=-0.1),
    "zero amplitude": lambda b: b.pulse_set(_mask(b), v=0.0),
    "width too long": lambda b: b.pulse_set(_mask(b), width=1e-3),
    "width too short": lambda b: b.pulse_set(_mask(b), width=1e-9),
    "amplitude not a number": lambda b: b.pulse_set(_mask(b), v="high"),
    # DC levels
    "row levels of another shape": lambda b: b.apply(rows=np.zeros(5)),
    "row level NaN": lambda b: b.apply(rows=NAN),
    "column level beyond read limit": lambda b: b.apply(cols=1.5),
    "gate level beyond limit": lambda b: b.apply(gates=6.0),
    "mask without level": lambda b: b.apply(row_mask=np.ones(8, bool)),
    "row mask of another length": lambda b: b.apply(rows=0.1, row_mask=np.ones(3, bool)),
    # reads
    "VMM input of another shape": lambda b: b.vmm(np.zeros(7)),
    "VMM input infinite": lambda b: b.vmm(np.full(8, INF)),
    "VMM input beyond read limit": lambda b: b.vmm(np.full(8, 1.2)),
    "read voltage zero": lambda b: b.read_conductance(v_read=0.0),
    "read voltage beyond limit": lambda b: b.read_conductance(v_read=2.0),
    "average zero": lambda b: b.read_conductance(average=0),
    "average not an integer": lambda b: b.read_currents(average=2.5),
    "strided rows": lambda b: b.read_conductance(rows=slice(0, 8, 2)),
    "unknown gain index": lambda b: b.read_currents(gain=9),
    "wait negative": lambda b: b.wait(-1),
    # programming
    "targets NaN": lambda b: memhw.program(b, np.full(b.shape, NAN)),
    "targets of another shape": lambda b: memhw.program(b, np.full((3, 3), 50e-6)),
    "target above any device": lambda b: memhw.program(b, 5e-3),
    "tolerance zero": lambda b: memhw.program(b, 50e-6, tolerance=0.0),
    "unknown algorithm": lambda b: memhw.program(b, 50e-6, algorithm="magic"),
    "mask selects nothing": lambda b: memhw.program(b, 50e-6, mask=np.zeros(b.shape, bool)),
    # limits
    "limits looser than the board": lambda b: b.set_limits({"v_set": 9.0}),
    "limits of unknown kind": lambda b: b.set_limits(42),
    # what a careless user typed (issue #10, item 7)
    "rows as a list": lambda b: b.read_conductance(rows=[1, 2]),
    "rows as text": lambda b: b.read_conductance(rows="0:4"),
    "row beyond the array": lambda b: b.read_conductance(rows=8),
    "read voltage below one DAC step": lambda b: b.read_conductance(v_read=5e-5),
    "amplitude as text": lambda b: b.pulse_set(_mask(b), v="2.5"),
    "gate as a boolean": lambda b: b.pulse_set(_mask(b), gate=True),
    "tolerance as text": lambda b: memhw.program(b, 50e-6, tolerance="2e-6"),
    "tolerance None": lambda b: memhw.program(b, 50e-6, tolerance=None),
    "tolerance a list": lambda b: memhw.program(b, 50e-6, tolerance=[1e-6, 2e-6]),
    "prior garbage": lambda b: memhw.program(b, 50e-6, prior="garbage"),
    "session as a path": lambda b: memhw.program(b, 50e-6, session="run.h5"),
    "verify average zero": lambda b: memhw.program(b, 50e-6, average=0),
    "relax delay beyond the WAIT limit": lambda b: memhw.program(b, 50e-6, relax_delay=1e9),
    "targets as text": lambda b: memhw.program(b, "50e-6"),
    "progress not callable": lambda b: memhw.program(b, 50e-6, progress="yes"),
    "verify read voltage above the limit": lambda b: memhw.program(b, 50e-6, v_read=5.0),
}


@pytest.mark.parametrize("case", sorted(BOARD_CALLS))
def test_bad_arguments_raise_limit_error_and_send_nothing(board, case) -> None:
    emu = emulator(board)
    sent, executed = board.link.stats.bytes_out, dict(emu.counters.executed)
    pulses = emu.hardware.counters.pulses.sum()
    with pytest.raises(memhw.LimitError) as info:
        BOARD_CALLS[case](board)
    assert str(info.value)  # a message naming the problem
    assert board.link.stats.bytes_out == sent, "something was sent"
    assert emu.counters.executed == executed and emu.hardware.counters.pulses.sum() == pulses


@pytest.mark.parametrize("address, match", [
    ("", "non-empty"),
    ("nosuch://thing", "unknown kind of address"),
    ("mock://?preset=nope", "unknown mock preset"),
    ("mock://?seed=x", "seed"),
    ("mock://?faults=boom:0.1", "unknown fault"),
    ("mock://?faults=drop:2", "out of range"),
    ("mock://?fault_seed=abc&faults=drop:0.1", "fault_seed"),
    ("mock://?rows=-3", "rows"),
    ("visa://", "expected visa"),
])
def test_unknown_or_malformed_addresses(address, match) -> None:
    with pytest.raises(memhw.AddressError, match=match):
        memhw.connect(address, calibration=None, limits=None)


def test_missing_port_is_a_transport_error() -> None:
    with pytest.raises(memhw.TransportError, match="cannot open"):
        memhw.connect("/dev/nonexistent-memhw-port", calibration=None, limits=None)


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("content", [None, b"", b"\x89HDF\r\n\x1a\n" + bytes(200), os.urandom(4096)])
def test_missing_or_corrupt_calibration_file(board, tmp_path, content) -> None:
    path = tmp_path / "cal.h5"
    if content is not None:
        path.write_bytes(content)
        before = _digest(path)
    sent, cal = board.link.stats.bytes_out, board.calibration
    with pytest.raises(memhw.CalibrationError, match="does not exist" if content is None else "cal.h5"):
        apply_calibration(board, path)
    with pytest.raises(memhw.CalibrationError):
        load_calibration(path)
    assert board.calibration is cal and board.link.stats.bytes_out == sent
    if content is not None:
        assert _digest(path) == before  # untouched


def test_calibration_file_with_flipped_byte_fails_its_checksum(board, tmp_path) -> None:
    from memhw.calibration import calibrate_board, save_calibration

    other = connect("mock://?preset=paper&seed=1&rows=8")
    path = save_calibration(calibrate_board(other), tmp_path / "cal.h5", force=True)
    other.close()
    data = bytearray(path.read_bytes())
    good = load_calibration(path)
    # flip one byte inside the TIA gain data (found by value)
    needle = np.asarray(good.tia_gain, "<f8").tobytes()[:8]
    at = bytes(data).index(needle)
    data[at + 3] ^= 0x10
    path.write_bytes(bytes(data))
    before = _digest(path)
    with pytest.raises(memhw.CalibrationError, match="checksum"):
        load_calibration(path)
    assert _digest(path) == before


@pytest.mark.parametrize("content", [None, b"", b"not hdf5 at all",
                                     b"\x89HDF\r\n\x1a\n" + os.urandom(600)])
def test_missing_or_corrupt_session_file(tmp_path, content) -> None:
    path = tmp_path / "s.h5"
    if content is not None:
        path.write_bytes(content)
        before = _digest(path)
    with pytest.raises(SessionFileError):
        load(path)
    if content is not None:
        with pytest.raises(SessionFileError):
            Session(path, "a")
        assert _digest(path) == before  # nothing written, nothing lost


def test_hdf5_file_that_is_not_a_session(tmp_path) -> None:
    import h5py

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    before = _digest(path)
    for opener in (load, lambda p: Session(p, "a")):
        with pytest.raises(SessionFileError, match="not a memhw session"):
            opener(path)
    assert _digest(path) == before


class _OtherMajor(BoardEmulator):
    """A board speaking the next major with this major's HELLO layout."""

    def identity(self):
        return {**super().identity(), "major": fp.MAJOR + 1}


def test_board_of_another_protocol_version_gets_nothing_but_hello() -> None:
    emu = _OtherMajor(make_params("ideal", rows=8), seed=1)
    with pytest.raises(memhw.VersionMismatch, match="update the host software"):
        Board(Link(InProcessTransport(emu), timeout=0.05), "test://")
    assert emu.counters.executed == {"HELLO": 1}


def test_busy_port_is_refused_and_the_first_user_is_undisturbed() -> None:
    emu = BoardEmulator(make_params("ideal", rows=8), seed=1)
    with PeerServer.pty(emu) as server:
        first = connect(server.address, timeout=1.0)
        requests = emu.counters.requests
        with pytest.raises(memhw.TransportError, match="cannot open"):
            memhw.connect(server.address, calibration=None, limits=None)
        assert emu.counters.requests == requests  # the second program sent nothing
        assert first.read_conductance(rows=slice(0, 1)).shape == (1, 64)
        first.close()
