"""Which emulated board a ``mock://`` address names: the Python peer or the C firmware core.

Both run the same hardware model (:mod:`memhw.mock`); ``firmware=python`` (default) puts the
protocol engine of :mod:`memhw.peer` in front of it, ``firmware=c`` the C core of
``firmware/`` built for the host (:mod:`memhw.cfirmware`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["FIRMWARES", "emulator_from_query"]

#: board-side protocol engines of ``mock://?firmware=...``
FIRMWARES = ("python", "c")


def emulator_from_query(query: dict[str, str]) -> Any:
    """The board a ``mock://`` query names: ``firmware=python`` (default,
    :class:`memhw.mock.emulator.BoardEmulator`) or ``firmware=c``
    (:class:`memhw.cfirmware.CBoard`); the other parameters as
    :meth:`~memhw.mock.emulator.BoardEmulator.from_query`.

    Raises
    ------
    ValueError
        An unknown firmware or parameter.
    """
    q = dict(query)
    firmware = q.pop("firmware", "python")
    if firmware not in FIRMWARES:
        raise ValueError(f"firmware must be one of {', '.join(FIRMWARES)}, got {firmware!r}")
    if firmware == "c":
        from .cfirmware import CBoard

        return CBoard.from_query(q)
    from .mock.emulator import BoardEmulator

    return BoardEmulator.from_query(q)
