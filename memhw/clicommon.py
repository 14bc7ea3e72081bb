"""What every command of the command line shares: connecting (with a hint at the likely
cause when that fails), session files named by ``--out``, exit codes."""

from __future__ import annotations

import argparse
from typing import Any

from .errors import BoardBusy, Disconnected, LinkTimeout, MemhwError, TransportError
from .outputs import SessionOutput

__all__ = ["EXIT_ERROR", "EXIT_BELOW_GOAL", "EXIT_INTERRUPTED", "connect_board", "session_output", "connect_hint"]

#: exit status of a command that failed (one line on stderr)
EXIT_ERROR = 2
#: exit status of a programming run that finished below its goal
EXIT_BELOW_GOAL = 3
#: exit status after Ctrl+C
EXIT_INTERRUPTED = 130


def connect_hint(address: str, exc: BaseException) -> str:
    """The likely cause of a failed connection, and what to do, for ``exc``; "" if none."""
    text = str(exc)
    if isinstance(exc, BoardBusy):
        return ""  # the board names its owner and the way out itself
    if isinstance(exc, LinkTimeout) and "HELLO" in text:
        serial = "://" not in address or address.startswith(("rfc2217://", "spy://"))
        return ("nothing answered: check that the board is powered, connected at this address and runs memhw "
                "firmware (protocol 2)" + (" at 115200 baud" if serial else "") + "; for the emulator, serve "
                "it with `memhw mock serve` and use the address it prints")
    if isinstance(exc, (Disconnected, TransportError)) and ("refused" in text.lower() or "errno 111" in text.lower()):
        return "nothing listens there: is the board (or `memhw mock serve`) running at that address and port?"
    if isinstance(exc, TransportError) and ("no such file" in text.lower() or "could not open port" in text.lower()):
        return "no such port: list the serial ports with `python -m serial.tools.list_ports`"
    if isinstance(exc, TransportError) and "inappropriate ioctl" in text.lower():
        return "not a serial port: give the board's port (e.g. /dev/ttyACM0) or a socket:// or visa:// address"
    if isinstance(exc, TransportError) and ("permission" in text.lower() or "errno 13" in text.lower()):
        return "no permission: add your user to the port's group (e.g. dialout) or ask an administrator"
    return ""


def connect_board(args: argparse.Namespace, calibration: Any = "auto") -> Any:
    """``memhw.connect`` with the command's ``--board``, ``--timeout`` and ``--takeover``;
    a failure to connect is one line with the likely cause."""
    from .connection import connect

    try:
        return connect(args.board, timeout=args.timeout, takeover=getattr(args, "takeover", False),
                       calibration=calibration)
    except MemhwError as exc:
        hint = connect_hint(args.board, exc)
        if not hint:
            raise
        raise (type(exc) if _plain(exc) else MemhwError)(f"{exc}; {hint}") from None


def _plain(exc: MemhwError) -> bool:
    """Whether ``type(exc)(message)`` rebuilds the error (its constructor takes a message)."""
    try:
        type(exc)("x")
        return True
    except TypeError:
        return False


def session_output(args: argparse.Namespace, flag: str = "--out", path: Any = None,
                   force_also: tuple[str, ...] = ()) -> SessionOutput | None:
    """The session file named by ``--out`` (checked now, before the board is touched), or
    None; ``--force`` / ``--append`` and the command line come from ``args``. ``--force`` or
    ``--append`` without a file to apply to is refused (``force_also``: other options naming
    files ``--force`` replaces)."""
    path = path if path is not None else getattr(args, flag.lstrip("-").replace("-", "_"))
    if path is None:
        if getattr(args, "append", False):
            raise MemhwError(f"--append adds to the {flag} session file: give {flag} FILE.h5")
        if getattr(args, "force", False) and not any(getattr(args, a, None) for a in force_also):
            raise MemhwError(f"--force replaces an existing {flag} file: give {flag} FILE")
        return None
    return SessionOutput(path, flag, force=getattr(args, "force", False), append=getattr(args, "append", False),
                         command=getattr(args, "command_line", None))
