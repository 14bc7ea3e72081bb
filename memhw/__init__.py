"""memhw: drive memristor crossbar chips on a measurement board, or its emulator.

>>> import memhw
>>> with memhw.connect("mock://?preset=ideal") as board:
...     g = board.read_conductance()

The names below are loaded on first use, so ``import memhw`` stays cheap and the
board side (``memhw.mock``, ``memhw.peer``) can be imported without the host stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: public name -> module that defines it
_EXPORTS = {
    "connect": "memhw.connection",
    "program": "memhw.programming",
    "form": "memhw.programming",
    "ProgramResult": "memhw.programming",
    "FormingResult": "memhw.programming",
    "Session": "memhw.session",
    "SessionFileError": "memhw.session",
    "Board": "memhw.board",
    "BoardInfo": "memhw.info",
    "Limits": "memhw.info",
    **{name: "memhw.errors" for name in (
        "MemhwError", "TransportError", "LinkTimeout", "Disconnected", "AddressError", "ProtocolError",
        "VersionMismatch", "BoardError", "BoardBusy", "SessionLost", "NotSupported", "CalibrationError",
        "OperationAborted", "LimitError")},
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'memhw' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    # ruff: noqa: F401
    from .board import Board
    from .connection import connect
    from .errors import (AddressError, BoardBusy, BoardError, CalibrationError, Disconnected, LimitError,
                         LinkTimeout, MemhwError, NotSupported, OperationAborted, ProtocolError, SessionLost,
                         TransportError, VersionMismatch)
    from .info import BoardInfo, Limits
    from .programming import FormingResult, ProgramResult, form, program
    from .session import Session, SessionFileError
