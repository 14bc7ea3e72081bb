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
    CalibrationError,
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
from .programming import FormingResult, ProgramResult, form, program
from .session import Session, SessionFileError

__version__ = "0.1.0"

__all__ = [
    "connect",
    "program",
    "form",
    "ProgramResult",
    "FormingResult",
    "Session",
    "SessionFileError",
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
    "CalibrationError",
    "OperationAborted",
    "LimitError",
]
