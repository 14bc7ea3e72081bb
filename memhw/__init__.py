"""memhw: drive memristor crossbar chips on a measurement board, or its emulator.

>>> import memhw
>>> with memhw.connect("mock://?preset=ideal") as board:
...     g = board.read_conductance()
"""

from .board import Board
from .connect import connect
from .errors import (
    AddressError,
    BoardError,
    BoardResetError,
    Disconnected,
    LimitError,
    LinkTimeout,
    MemhwError,
    OperationAborted,
    ProtocolError,
    TransportError,
    VersionMismatch,
)
from .info import BoardInfo, Limits

__version__ = "0.1.0"

__all__ = [
    "connect",
    "Board",
    "BoardInfo",
    "Limits",
    "MemhwError",
    "TransportError",
    "LinkTimeout",
    "Disconnected",
    "AddressError",
    "ProtocolError",
    "VersionMismatch",
    "BoardError",
    "BoardResetError",
    "OperationAborted",
    "LimitError",
]
