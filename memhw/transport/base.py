"""The byte-transport interface every connection kind implements."""

from __future__ import annotations

import abc


class Transport(abc.ABC):
    """A bidirectional byte stream to a board, file-like in the pyserial manner.

    Implementations raise :class:`memhw.errors.TransportError` subclasses only.
    """

    #: the address this transport was opened from
    url: str = ""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send all of ``data``."""

    @abc.abstractmethod
    def read(self, timeout: float) -> bytes:
        """Return the bytes available now, waiting up to ``timeout`` seconds for at least one.

        Returns ``b""`` when nothing arrived in time.
        """

    def reset_input(self) -> None:
        """Discard bytes received but not yet read."""
        while self.read(0.0):
            pass

    def reopen(self) -> None:
        """Close (if open) and open the same connection again, e.g. after the
        link dropped; used by :meth:`memhw.Board.reconnect`.

        Raises
        ------
        TransportError
            The connection cannot be opened again (or this kind cannot reopen).
        """
        from ..errors import TransportError

        raise TransportError(f"{self.url!r}: this transport cannot be reopened")

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection; idempotent."""

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
