"""The one exception hierarchy of memhw.

Everything memhw raises on purpose derives from :class:`MemhwError`::

    MemhwError
    ├── TransportError (also a builtin ConnectionError)
    │   ├── LinkTimeout (also a builtin TimeoutError)
    │   └── Disconnected
    ├── ProtocolError (also firmware_protocol.ProtocolError)
    │   └── VersionMismatch
    ├── BoardError            the board refused a request: .status, .message
    │   ├── BoardBusy         another host's session owns the board (HELLO answered BUSY)
    │   ├── SessionLost       the board no longer knows this host's session (it rebooted,
    │   │                     or another host took the board over); nothing was applied
    │   └── OperationAborted  an abort stopped the operation: .reply says how far it got
    ├── NotSupported          the board (its protocol version or back end) lacks an operation
    ├── LimitError (also ValueError)   refused on the host before anything was sent
    └── CalibrationError      a calibration that cannot be used (other board, unreadable file,
                              residuals out of bounds)

Warnings: :class:`CalibrationWarning` (a stale calibration: old, or other firmware).
"""

from __future__ import annotations

import firmware_protocol

__all__ = [
    "MemhwError",
    "TransportError",
    "LinkTimeout",
    "Disconnected",
    "ProtocolError",
    "VersionMismatch",
    "BoardError",
    "BoardBusy",
    "SessionLost",
    "NotSupported",
    "OperationAborted",
    "LimitError",
    "AddressError",
    "CalibrationError",
    "CalibrationWarning",
]


class MemhwError(Exception):
    """Base class of every error memhw raises on purpose."""


class TransportError(MemhwError, ConnectionError):
    """The byte link failed (port missing or busy, socket closed, I/O error)."""


class LinkTimeout(TransportError, TimeoutError):
    """No valid reply arrived within the timeout, after all retries."""


class Disconnected(TransportError):
    """The transport is closed or the peer went away."""


class AddressError(MemhwError, ValueError):
    """A board address that names no known kind of connection."""


class ProtocolError(MemhwError, firmware_protocol.ProtocolError):
    """A frame or message that breaks the protocol."""


class VersionMismatch(ProtocolError):
    """The board speaks an incompatible protocol major version."""


class BoardError(MemhwError):
    """The board answered with a non-OK status.

    Attributes
    ----------
    status : int
        Status code from the reply header.
    status_name : str
        Its name in the protocol schema (``"LIMIT"``, ``"ABORTED"``, ...).
    message : str
        The board's explanation (from STATUS), if any.
    reply : dict or None
        Decoded reply payload, when the board sent one (e.g. rows done before an abort).
    """

    def __init__(self, status: int, status_name: str, message: str = "", reply: dict | None = None):
        self.status = status
        self.status_name = status_name
        self.message = message
        self.reply = reply
        super().__init__(f"board refused: {status_name}" + (f": {message}" if message else ""))


class BoardBusy(BoardError):
    """Another host's session owns the board: the HELLO was answered ``BUSY``.

    The message names the owner and how long it has been idle; if that host is gone,
    connect with ``takeover=True`` (CLI: ``--takeover``)."""


class SessionLost(BoardError):
    """The board refused a request with ``NO_SESSION``: the host's session is gone (the
    board rebooted, or another host took it over) and nothing was applied. Reconnect
    (:meth:`memhw.Board.reconnect`) to open a new session."""


class NotSupported(MemhwError):
    """The connected board does not offer an operation: its protocol version is too old,
    or its back end (e.g. the original board's firmware) lacks the feature."""


class LimitError(MemhwError, ValueError):
    """A request outside the safety limits or of the wrong shape; nothing was sent."""


class OperationAborted(BoardError):
    """A long operation was stopped by an abort; ``reply`` says how far it got."""


class CalibrationError(MemhwError):
    """A board calibration that cannot be used: made for another board (serial or
    geometry), an unreadable, corrupted or truncated file, or fit residuals out of bounds."""


class CalibrationWarning(UserWarning):
    """A calibration that is usable but may be stale (old, or made with other firmware)."""
