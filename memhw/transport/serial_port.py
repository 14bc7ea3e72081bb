"""Serial ports and pyserial URL handlers (``socket://``, ``loop://``, ``spy://``...)."""

from __future__ import annotations

import serial

from ..errors import Disconnected, TransportError
from .base import Transport


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
        self._timeout: float | None = 0

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise Disconnected(f"write to {self.url!r} failed: {exc}") from exc

    def read(self, timeout: float) -> bytes:
        try:
            port = self._port
            waiting = port.in_waiting
            if waiting:
                return port.read(waiting)
            if timeout != self._timeout:
                port.timeout = timeout
                self._timeout = timeout
            first = port.read(1)
            if not first:
                return b""
            waiting = port.in_waiting
            return first + port.read(waiting) if waiting else first
        except (serial.SerialException, OSError) as exc:
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
        self._timeout = self._port.timeout

    def close(self) -> None:
        try:
            self._port.close()
        except (serial.SerialException, OSError):
            pass
