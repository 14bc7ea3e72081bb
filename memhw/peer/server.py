"""Serve a :class:`~memhw.peer.core.Peer` over a real TCP socket or pseudo-terminal.

Used by ``memhw mock serve`` and by the tests that reach a board back end through real
pyserial (pty, ``socket://``) and real pyvisa (``TCPIP0::...::SOCKET``). One background
thread serves every connection: on TCP each accepted socket is its own
:class:`~memhw.peer.core.Connection`, so a second host is answered at once (``BUSY``)
instead of waiting in the listen queue, and a closed socket tells the peer its host went
away (lines grounded, the session kept for the host to resume). A pty is one connection
shared by whoever opens it.
"""

from __future__ import annotations

import logging
import os
import select
import selectors
import socket
import threading
import tty
from typing import Callable

from .core import Connection, Peer

__all__ = ["PeerServer"]

log = logging.getLogger("memhw.peer.server")
_POLL = 0.05  # s between watchdog checks and stop-flag checks
_CHUNK = 1 << 16


def _nonblocking_reader(fd: int, recv: Callable[[], bytes]) -> Callable[[], bytes]:
    """``poll()`` for a connection: whatever is readable now, without waiting."""

    def poll() -> bytes:
        ready, _, _ = select.select([fd], [], [], 0)
        return recv() if ready else b""

    return poll


class PeerServer:
    """A background thread serving a peer on a socket or pty.

    Use :meth:`tcp` or :meth:`pty`; ``address`` tells a host what to connect to. Close it
    (or use it as a context manager) to stop.
    """

    def __init__(self, peer: Peer):
        self.peer = peer
        self.address = ""
        self.host = ""
        self.port = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closers: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ TCP
    @classmethod
    def tcp(cls, peer: Peer, host: str = "127.0.0.1", port: int = 0) -> "PeerServer":
        """Listen on ``host:port`` (port 0 picks a free one).

        ``address`` is the pyserial URL ``socket://HOST:PORT``; :attr:`visa_address` is the
        matching VISA resource name.

        Raises
        ------
        OSError
            The address cannot be bound (in use, not an address of this machine).
        """
        self = cls(peer)
        lsock = socket.create_server((host, port))
        self.host, self.port = lsock.getsockname()[:2]
        self.address = f"socket://{self.host}:{self.port}"
        self._closers.append(lsock.close)
        self._thread = threading.Thread(target=self._serve_tcp, args=(lsock,), daemon=True,
                                        name=f"memhw-peer-tcp-{self.port}")
        self._thread.start()
        return self

    @property
    def visa_address(self) -> str:
        """VISA resource name of a TCP server (``visa://TCPIP0::HOST::PORT::SOCKET``)."""
        return f"visa://TCPIP0::{self.host}::{self.port}::SOCKET"

    def _serve_tcp(self, lsock: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        lsock.setblocking(False)
        sel.register(lsock, selectors.EVENT_READ, None)
        conns: dict[socket.socket, Connection] = {}

        def drop(sock: socket.socket) -> None:
            sel.unregister(sock)
            conns.pop(sock).close()
            sock.close()

        try:
            while not self._stop.is_set():
                events = sel.select(_POLL)
                if not events:
                    self.peer.check_watchdog()  # the host may have gone silent
                    continue
                for key, _ in events:
                    sock = key.fileobj
                    if sock is lsock:
                        try:
                            new, where = lsock.accept()
                        except OSError:
                            continue
                        new.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        new.setblocking(True)
                        recv = lambda s=new: s.recv(_CHUNK)  # noqa: E731
                        conns[new] = self.peer.open(new.sendall, _nonblocking_reader(new.fileno(), recv),
                                                    address=f"tcp {where[0]}:{where[1]}")
                        sel.register(new, selectors.EVENT_READ, None)
                        log.info("host connected from %s:%s", *where[:2])
                        continue
                    try:
                        data = sock.recv(_CHUNK)
                    except OSError:
                        data = b""
                    if not data:
                        log.info("host %s disconnected", conns[sock].address)
                        drop(sock)
                        continue
                    try:
                        conns[sock].receive(data)
                    except ConnectionResetError:  # an injected link loss on the board's side
                        drop(sock)
        finally:
            for sock in list(conns):
                drop(sock)
            sel.close()

    # ------------------------------------------------------------------ pty
    @classmethod
    def pty(cls, peer: Peer) -> "PeerServer":
        """Serve on a new pseudo-terminal; ``address`` is the device path of its secondary
        side, to open with pyserial. Everyone who opens it shares one connection."""
        self = cls(peer)
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

        recv = lambda: os.read(primary, _CHUNK)  # noqa: E731
        conn = peer.open(write, _nonblocking_reader(primary, recv), address=f"pty {self.address}")
        self._thread = threading.Thread(target=self._serve_pty, args=(conn, primary, recv), daemon=True,
                                        name="memhw-peer-pty")
        self._thread.start()
        return self

    def _serve_pty(self, conn: Connection, fd: int, recv: Callable[[], bytes]) -> None:
        try:
            while not self._stop.is_set():
                try:
                    ready, _, _ = select.select([fd], [], [], _POLL)
                    if not ready:
                        self.peer.check_watchdog()
                        continue
                    data = recv()
                except OSError:
                    return
                if not data:
                    return
                try:
                    conn.receive(data)
                except ConnectionResetError:
                    # an injected link loss: the line stays, the host must resume its session
                    conn.close()
                    conn = self.peer.open(conn._send, conn._poll, address=conn.address)
        finally:
            conn.close()

    # --------------------------------------------------------------- common
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

    def __enter__(self) -> "PeerServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
