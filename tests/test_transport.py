"""Transports: pyserial URL handlers, exclusive access, pyvisa, closed links."""

from __future__ import annotations

import pytest

import memhw
from memhw.connection import open_transport
from memhw.mock.emulator import BoardEmulator
from memhw.mock.params import make_params
from memhw.peer import PeerServer
from memhw.transport import SerialTransport


@pytest.fixture
def pty_server():
    with PeerServer.pty(BoardEmulator(make_params("ideal"), seed=1)) as server:
        yield server


def test_loop_url_hears_only_itself_and_times_out_clearly() -> None:
    # loop:// echoes our own requests back; the link must not take them for replies
    with pytest.raises(memhw.LinkTimeout, match="no reply"):
        memhw.connect("loop://", timeout=0.1, retries=1)


def test_spy_url_logs_the_traffic(pty_server, tmp_path) -> None:
    log = tmp_path / "spy.txt"
    with memhw.connect(f"spy://{pty_server.address}?file={log}", timeout=5.0) as board:
        board.read_currents()
    text = log.read_text()
    assert "TX" in text.upper() and "RX" in text.upper()


def test_serial_port_is_opened_exclusively(pty_server) -> None:
    first = SerialTransport(pty_server.address)
    try:
        with pytest.raises(memhw.TransportError, match="cannot open"):
            SerialTransport(pty_server.address)
    finally:
        first.close()
    SerialTransport(pty_server.address).close()  # free again once closed


def test_socket_url_reaches_a_served_emulator() -> None:
    with PeerServer.tcp(BoardEmulator(make_params("ideal"), seed=1)) as server:
        assert server.address.startswith("socket://127.0.0.1:")
        with memhw.connect(server.address, timeout=5.0) as board:
            assert board.read_conductance().shape == (128, 64)


def test_visa_resource_that_refuses_is_a_transport_error() -> None:
    # pyvisa-py reports a refused TCP connection at the first write, not at open
    with pytest.raises(memhw.TransportError, match="TCPIP0::127.0.0.1::1::SOCKET"):
        memhw.connect("visa://TCPIP0::127.0.0.1::1::SOCKET", timeout=0.5)


def test_unknown_visa_resource_kind_is_a_transport_error() -> None:
    with pytest.raises(memhw.TransportError, match="cannot open VISA resource"):
        open_transport("visa://NOSUCH0::1::INSTR")


@pytest.mark.parametrize("address", ["", "   ", "visa://", "visa://X?colour=red"])
def test_malformed_addresses(address: str) -> None:
    with pytest.raises(memhw.AddressError):
        open_transport(address)


def test_closed_board_raises_disconnected() -> None:
    board = memhw.connect("mock://")
    board.close()
    with pytest.raises(memhw.Disconnected):
        board.read_currents()
