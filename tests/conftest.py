"""Shared fixtures: the board-level suite runs over every way to reach a board.

By default each board test runs three times against the emulator: in-process
(``mock://``), over a pseudo-terminal with real pyserial, and over TCP on
127.0.0.1 with real pyvisa (``@py``); and three times more with the C firmware core
in place of the Python peer (``-c`` variants: ``mock://?firmware=c``, the same
hardware model under the core's HAL). ``pytest --board ADDRESS`` runs the same
tests against that one address instead (real hardware, a served emulator...).
"""

from __future__ import annotations

import pytest

import memhw
from memhw.cfirmware import CBoard
from memhw.mock.emulator import BoardEmulator
from memhw.mock.params import make_params
from memhw.peer import PeerServer

#: how the board is reached; "-c": the C firmware core as the board's peer; "dpe-pty": the
#: emulated original firmware behind the dpe:// bridge
TRANSPORTS = ("inprocess", "pty-pyserial", "tcp-pyvisa", "inprocess-c", "pty-pyserial-c", "tcp-pyvisa-c", "dpe-pty")
#: every emulated board back end (the Python peer and the C core over the same hardware model)
EMULATORS = (BoardEmulator, CBoard)
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

    def __init__(self, address: str, emulator: BoardEmulator | CBoard | None, firmware=None):
        self.address = address
        self.emulator = emulator
        self.firmware = firmware  # dpe: the emulated original firmware behind the bridge


@pytest.fixture
def board_address(request: pytest.FixtureRequest):
    kind = request.param
    if kind not in TRANSPORTS:  # --board ADDRESS
        yield Reached(kind, None)
        return
    firmware_c = kind.endswith("-c")
    if kind.startswith("inprocess"):
        yield Reached(f"mock://?preset={SUITE_PRESET}&seed={SUITE_SEED}{'&firmware=c' if firmware_c else ''}", None)
        return
    if kind == "dpe-pty":  # the original board's ASCII firmware, emulated, through the bridge
        from memhw.dpe.emulator import DpeEmulator

        firmware = DpeEmulator(make_params(SUITE_PRESET), seed=SUITE_SEED)
        with PeerServer.pty(firmware) as server:
            yield Reached(f"dpe://{server.address}", None, firmware)
        return
    emulator = (CBoard if firmware_c else BoardEmulator)(make_params(SUITE_PRESET), seed=SUITE_SEED)
    if kind.startswith("pty-pyserial"):
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
        if board_address.emulator is None and isinstance(getattr(b.link.transport, "peer", None), EMULATORS):
            board_address.emulator = b.link.transport.peer
        if board_address.firmware is not None:
            board_address.emulator = BridgedFirmware(b.link.transport.peer, board_address.firmware)
        yield b


class BridgedFirmware:
    """The dpe variant's "emulator": the bridge's protocol counters (reply cache) over the
    emulated firmware's hardware (pulses per device)."""

    def __init__(self, peer, firmware):
        self.peer = peer
        self.counters = peer.counters
        self.hardware = firmware.hardware
        self.chip = firmware.chip

    @property
    def levels(self):
        """The DC levels the bridge holds (applied only while a READ_CURRENTS converts)."""
        return self.peer.levels


@pytest.fixture
def emulator(board: memhw.Board, board_address: Reached) -> BoardEmulator | CBoard:
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
