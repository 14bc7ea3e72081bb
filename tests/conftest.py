"""Shared fixtures: the board-level suite runs over every way to reach a board.

By default each board test runs three times against the emulator: in-process
(``mock://``), over a pseudo-terminal with real pyserial, and over TCP on
127.0.0.1 with real pyvisa (``@py``). ``pytest --board ADDRESS`` runs the same
tests against that one address instead (real hardware, a served emulator...).
"""

from __future__ import annotations

import pytest

import memhw
from memhw.mock.emulator import BoardEmulator
from memhw.mock.params import make_params
from memhw.peer import PeerServer

TRANSPORTS = ("inprocess", "pty-pyserial", "tcp-pyvisa")
SUITE_PRESET = "paper"
SUITE_SEED = 11


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--board", action="store", default=None,
                     help="run the board-level suite against this address instead of the emulators")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "board_address" in metafunc.fixturenames:
        explicit = metafunc.config.getoption("--board")
        metafunc.parametrize("board_address", [explicit] if explicit else TRANSPORTS, indirect=True)


class Reached:
    """How a test reached the board: its address and, for emulators, the emulator object."""

    def __init__(self, address: str, emulator: BoardEmulator | None):
        self.address = address
        self.emulator = emulator


@pytest.fixture
def board_address(request: pytest.FixtureRequest):
    kind = request.param
    if kind not in TRANSPORTS:  # --board ADDRESS
        yield Reached(kind, None)
        return
    if kind == "inprocess":
        yield Reached(f"mock://?preset={SUITE_PRESET}&seed={SUITE_SEED}", None)
        return
    emulator = BoardEmulator(make_params(SUITE_PRESET), seed=SUITE_SEED)
    if kind == "pty-pyserial":
        server = PeerServer.pty(emulator)
        address = server.address
    else:
        server = PeerServer.tcp(emulator)
        address = server.visa_address
    with server:
        yield Reached(address, emulator)


@pytest.fixture
def board(board_address: Reached):
    with memhw.connect(board_address.address, timeout=5.0) as b:
        if board_address.emulator is None and isinstance(getattr(b.link.transport, "peer", None), BoardEmulator):
            board_address.emulator = b.link.transport.peer
        yield b


@pytest.fixture
def emulator(board: memhw.Board, board_address: Reached) -> BoardEmulator:
    """The emulator behind ``board``; skips the test on real hardware."""
    if board_address.emulator is None:
        pytest.skip("needs the emulator's counters (not available on real hardware)")
    return board_address.emulator


@pytest.fixture
def ideal_board():
    with memhw.connect("mock://?preset=ideal&seed=3") as b:
        yield b


@pytest.fixture(scope="session", autouse=True)
def _private_user_data_dir(tmp_path_factory: pytest.TempPathFactory):
    """memhw keeps per-user files (calibrations saved with ``memhw calibrate board --save``)
    in the platform's user data directory: the suite's go to a temporary one, never the
    real one (``XDG_DATA_HOME`` is inherited by the subprocesses tests start)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("user-data")))
    yield
    patch.undo()
