"""In-process transport: the bytes go straight to a peer object in this process.

The peer (the board emulator) is still reached only through encoded frames, as
a real board would be; there is just no operating-system channel in between.
"""

from __future__ import annotations

import threading
from typing import Callable, Protocol

from ..errors import Disconnected, TransportError
from .base import Transport


class PeerConnection(Protocol):
    """One connection to an in-process peer."""

    def receive(self, data: bytes) -> None:
        """Handle bytes from the host, answering through the connection's ``send``."""

    def close(self) -> None:
        """The host went away."""


class BytePeer(Protocol):
    """What an in-process peer offers (e.g. :class:`memhw.peer.Peer`): connections."""

    def open(self, send: Callable[[bytes], None], poll: Callable[[], bytes], address: str) -> PeerConnection:
        """A new connection: replies go to ``send``; ``poll`` returns bytes that arrived
        while the peer is busy."""


class InProcessTransport(Transport):
    """Synchronous transport to a :class:`BytePeer`.

    ``write`` hands the bytes to the peer in the calling thread, so the reply is
    ready before ``write`` returns. A write from another thread while the peer
    is busy (an abort during a long operation) is queued and handed to the peer
    when it polls.
    """

    def __init__(self, peer: BytePeer, url: str = "inprocess://"):
        self.url = url
        self._peer = peer
        self._rx = bytearray()
        self._rx_ready = threading.Condition()
        self._pending = bytearray()
        self._pending_lock = threading.RLock()  # re-entrant: a write may come from a signal handler
        self._busy = threading.Lock()
        self._closed = False
        self._conn = peer.open(self._deliver, self._poll, url)

    def _deliver(self, data: bytes) -> None:
        with self._rx_ready:
            self._rx += data
            self._rx_ready.notify_all()

    def _poll(self) -> bytes:
        with self._pending_lock:
            # swap, not copy-then-clear: bytes a signal handler queues meanwhile are never lost
            data, self._pending = self._pending, bytearray()
        return bytes(data)

    def write(self, data: bytes) -> None:
        if self._closed:
            raise Disconnected(f"{self.url}: transport is closed")
        with self._pending_lock:
            self._pending += data
        # Whoever holds the peer drains the queue; re-check after releasing so
        # bytes queued by another thread at that moment are never stranded.
        while self._busy.acquire(blocking=False):
            try:
                while chunk := self._poll():
                    self._conn.receive(chunk)
            except ConnectionError as exc:  # the peer hung up (e.g. an injected disconnect)
                self.close()
                with self._pending_lock:
                    self._pending.clear()
                raise Disconnected(f"{self.url}: peer went away ({exc})") from None
            except Exception as exc:  # a fault in the peer itself: still a transport failure to the host
                raise TransportError(f"{self.url}: the in-process peer failed: {type(exc).__name__}: {exc}") from exc
            finally:
                self._busy.release()
            with self._pending_lock:
                if not self._pending:
                    return

    def read(self, timeout: float) -> bytes:
        if self._closed:
            raise Disconnected(f"{self.url}: transport is closed")
        with self._rx_ready:
            if not self._rx and timeout > 0:
                self._rx_ready.wait(timeout)
            data = bytes(self._rx)
            self._rx.clear()
        return data

    def close(self) -> None:
        """Close the connection: the peer learns that its host went away."""
        if not self._closed:
            self._closed = True
            self._conn.close()
        with self._rx_ready:
            self._rx_ready.notify_all()

    def reopen(self) -> None:
        """Open a new connection to the same peer with empty buffers (the peer keeps its state)."""
        self.close()
        with self._pending_lock:
            self._pending.clear()
        with self._rx_ready:
            self._rx.clear()
        self._closed = False
        self._conn = self._peer.open(self._deliver, self._poll, self.url)

    @property
    def peer(self) -> BytePeer:
        """The object at the other end (the emulator, for ``mock://``)."""
        return self._peer
