"""Expose a board emulator over a real TCP socket or pseudo-terminal.

Used by ``memhw mock serve`` and by the tests that reach the emulator through
real pyserial (pty, ``socket://``) and real pyvisa (``TCPIP0::...::SOCKET``).
The emulator runs in a background thread and serves one host at a time.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import tty
from typing import Callable

from .firmware import BoardEmulator

__all__ = ["EmulatorServer"]

log = logging.getLogger(__name__)
_POLL = 0.05  # s between checks of the stop flag
_CHUNK = 1 << 16


class EmulatorServer:
    """A background thread serving a :class:`BoardEmulator` on a socket or pty.

    Use :meth:`tcp` or :meth:`pty` to make one; ``address`` tells the host what
    to connect to. Close it (or use it as a context manager) to stop.
    """

    def __init__(self, emulator: BoardEmulator):
        self.emulator = emulator
        self.address = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closers: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ TCP
    @classmethod
    def tcp(cls, emulator: BoardEmulator, host: str = "127.0.0.1", port: int = 0) -> "EmulatorServer":
        """Listen on ``host:port`` (port 0 picks a free one).

        ``address`` is the pyserial URL ``socket://HOST:PORT``; :attr:`visa_address`
        is the matching VISA resource name.
        """
        self = cls(emulator)
        lsock = socket.create_server((host, port))
        self.host, self.port = lsock.getsockname()[:2]
        self.address = f"socket://{self.host}:{self.port}"
        self._closers.append(lsock.close)
        self._thread = threading.Thread(target=self._serve_tcp, args=(lsock,), daemon=True,
                                        name=f"memhw-mock-tcp-{self.port}")
        self._thread.start()
        return self

    @property
    def visa_address(self) -> str:
        """VISA resource name of a TCP server (``visa://TCPIP0::HOST::PORT::SOCKET``)."""
        return f"visa://TCPIP0::{self.host}::{self.port}::SOCKET"

    def _serve_tcp(self, lsock: socket.socket) -> None:
        lsock.settimeout(_POLL)
        while not self._stop.is_set():
            try:
                conn, peer = lsock.accept()
            except (socket.timeout, TimeoutError):
                self.emulator.check_watchdog()  # no host at all: levels must not stay applied
                continue
            except OSError:
                return
            log.info("host connected from %s:%s", *peer[:2])
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with conn:
                self._pump(lambda: conn.recv(_CHUNK), conn.sendall, conn.fileno())
            log.info("host disconnected")

    # ------------------------------------------------------------------ pty
    @classmethod
    def pty(cls, emulator: BoardEmulator) -> "EmulatorServer":
        """Serve on a new pseudo-terminal; ``address`` is the device path of its
        secondary side, to open with pyserial."""
        self = cls(emulator)
        primary, secondary = os.openpty()
        tty.setraw(secondary)
        self.address = os.ttyname(secondary)
        # keep the secondary open so the pty survives hosts closing and reopening it
        self._closers += [lambda: os.close(primary), lambda: os.close(secondary)]

        def write(data: bytes) -> None:
            view = memoryview(data)
            while view:
                n = os.write(primary, view)
                view = view[n:]

        self._thread = threading.Thread(
            target=self._pump, args=(lambda: os.read(primary, _CHUNK), write, primary),
            daemon=True, name="memhw-mock-pty")
        self._thread.start()
        return self

    # --------------------------------------------------------------- common
    def _pump(self, recv: Callable[[], bytes], send: Callable[[bytes], None], fd: int) -> None:
        def poll() -> bytes:
            ready, _, _ = select.select([fd], [], [], 0)
            return recv() if ready else b""

        self.emulator.attach(send, poll)
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([fd], [], [], _POLL)
                if not ready:
                    self.emulator.check_watchdog()  # the host may have gone silent
                    continue
                data = recv()
            except OSError:
                return
            if not data:
                return
            try:
                self.emulator.receive(data)
            except OSError:  # host went away mid-reply, or an injected link loss
                return

    def close(self) -> None:
        """Stop serving and release the socket or pty."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for close in self._closers:
            try:
                close()
            except OSError:
                pass
        self._closers.clear()

    def __enter__(self) -> "EmulatorServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
