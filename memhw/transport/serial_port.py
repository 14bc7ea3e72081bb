"""Serial ports and pyserial URL handlers (``socket://``, ``loop://``, ``spy://``...).

The port is kept non-blocking (pyserial ``timeout=0``): a read waits for the port to
become readable (``select`` on its file descriptor, or short polls for URL handlers
without one) and then takes *everything* available in one call, so a full conductance
map arrives in a handful of reads whatever the port's ``in_waiting`` reports (over
``socket://`` it reports only 0 or 1).
"""

from __future__ import annotations

import io
import select
import time

import serial

from ..errors import Disconnected, TransportError
from .base import Transport


#: bytes asked for per read (a read returns at most what is available)
_CHUNK = 1 << 16
#: s between polls of a port that cannot be waited on with select
_POLL = 0.001


class SerialTransport(Transport):
    """A transport over anything :func:`serial.serial_for_url` opens.

    Parameters
    ----------
    url : str
        Device path (``/dev/ttyACM0``, ``COM3``) or pyserial URL.
    baudrate : int
        Line rate; ignored by URL handlers that have none.
    exclusive : bool
        Ask for exclusive access (POSIX ``flock``) on real ports so a second
        program cannot interleave bytes with ours.
    """

    def __init__(self, url: str, baudrate: int = 115200, exclusive: bool = True):
        self.url = url
        kwargs: dict = {"baudrate": baudrate, "timeout": 0, "do_not_open": True}
        try:
            port = serial.serial_for_url(url, **kwargs)
            if exclusive and isinstance(port, serial.Serial) and hasattr(port, "exclusive"):
                port.exclusive = True
            port.open()
        except serial.SerialException as exc:
            raise TransportError(f"cannot open serial port {url!r}: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise TransportError(f"cannot open {url!r}: {exc}") from exc
        self._port = port
        self._fd = self._fileno(port)

    @staticmethod
    def _fileno(port: object) -> int | None:
        """The port's file descriptor for ``select``, or None (e.g. ``loop://``)."""
        try:
            fd = port.fileno()  # type: ignore[attr-defined]
        except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
            return None
        return fd if isinstance(fd, int) and fd >= 0 else None

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise Disconnected(f"write to {self.url!r} failed: {exc}") from exc

    def read(self, timeout: float) -> bytes:
        deadline = time.monotonic() + max(timeout, 0.0)
        try:
            port = self._port
            while True:
                data = port.read(_CHUNK)  # non-blocking: whatever is there
                if data:
                    return data
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                if self._fd is not None:
                    select.select([self._fd], [], [], left)
                else:
                    time.sleep(min(left, _POLL))
        except (serial.SerialException, OSError, ValueError) as exc:
            raise Disconnected(f"read from {self.url!r} failed: {exc}") from exc

    def reset_input(self) -> None:
        try:
            self._port.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise Disconnected(f"{self.url!r}: {exc}") from exc

    def reopen(self) -> None:
        self.close()
        try:
            self._port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"cannot reopen {self.url!r}: {exc}") from exc
        self._fd = self._fileno(self._port)

    def close(self) -> None:
        try:
            self._port.close()
        except (serial.SerialException, OSError):
            pass
