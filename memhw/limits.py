"""Safety limits tighter than the board's absolute maxima, per chip or per user.

A board announces its absolute maxima in the handshake (``board.abs_limits``).
A *limits file* narrows them for one chip (a fragile sample, a new material) or
for a cautious user; it can never widen them: a file asking for more than the
board's maximum is refused with a :class:`~memhw.errors.LimitError` naming the
file, the key and both values, and nothing is applied.

File format (TOML; every key optional, volts and seconds)::

    # limits for the chip on board MEMHW-EMU-1A2B
    serial = "MEMHW-EMU-1A2B"   # optional: refuse the file on another board
    [limits]
    v_read = 0.5       # largest |DC level| on rows/columns, |VMM input|, read voltage
    v_set = 3.0        # largest SET amplitude
    v_reset = 2.0      # largest RESET amplitude
    v_gate = 5.0       # largest gate voltage
    width_max = 2e-6   # longest pulse

Where :func:`memhw.connect` looks (``limits="auto"``, the default):
``$MEMHW_LIMITS_DIR/<serial>.toml`` if the variable is set, else
``$XDG_CONFIG_HOME/memhw/limits/<serial>.toml`` (``~/.config/memhw/limits/``).
``memhw.connect(address, limits=path)`` uses that file, ``limits=None`` the
board's maxima. The host checks every request against the tighter limits
before sending (``LimitError``); boards of protocol ≥ 1.3 are told them too
(SET_LIMITS) and refuse anything beyond them with status ``LIMIT``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

from .errors import LimitError
from .info import Limits

__all__ = ["ENV_DIR", "KEYS", "limits_dir", "limits_path", "find_limits", "load_limits", "tighten"]

log = logging.getLogger("memhw.limits")

ENV_DIR = "MEMHW_LIMITS_DIR"
#: a limits file is a few lines; anything larger is refused unread
_MAX_FILE_BYTES = 64 * 1024
#: keys of a limits file's ``[limits]`` table and their units
KEYS = {"v_read": "V", "v_set": "V", "v_reset": "V", "v_gate": "V", "width_max": "s"}


def limits_dir() -> Path:
    """Where limits files are looked up by serial."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base).expanduser() / "memhw" / "limits"


def limits_path(serial: str, directory: str | os.PathLike | None = None) -> Path:
    """``<dir>/<serial>.toml``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", serial)
    return (Path(directory) if directory is not None else limits_dir()) / f"{safe}.toml"


def find_limits(serial: str, directory: str | os.PathLike | None = None) -> Path | None:
    """The limits file of ``serial``, or None."""
    path = limits_path(serial, directory)
    return path if path.is_file() else None


def tighten(base: Limits, values: Mapping[str, Any], source: str = "limits") -> Limits:
    """``base`` with the given keys lowered.

    Raises
    ------
    LimitError
        An unknown key, a value that is not a finite number, a negative value,
        or a value above ``base`` (looser than the board's maximum).
    """
    new = {}
    for key, value in values.items():
        if key not in KEYS:
            raise LimitError(f"{source}: unknown limit {key!r}; known: {', '.join(KEYS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise LimitError(f"{source}: {key} must be a finite number of {KEYS[key]}, got {value!r}")
        value = float(value)
        hi = getattr(base, key)
        if value < 0:
            raise LimitError(f"{source}: {key} = {value:g} {KEYS[key]} is negative")
        if value > hi * (1 + 1e-9):
            raise LimitError(f"{source}: {key} = {value:g} {KEYS[key]} is looser than the board's absolute "
                             f"maximum {hi:g} {KEYS[key]}; limits can only be tightened")
        new[key] = min(value, hi)
    out = dataclasses.replace(base, **new)
    if out.width_max < out.width_min:
        raise LimitError(f"{source}: width_max = {out.width_max:g} s is below the shortest pulse the board makes "
                         f"({out.width_min:g} s)")
    for key in ("v_set", "v_reset"):
        if getattr(out, key) <= 0:
            raise LimitError(f"{source}: {key} must be positive")
    return out


def load_limits(path: str | os.PathLike, base: Limits, serial: str | None = None) -> Limits:
    """Read a limits file and apply it to ``base`` (the board's maxima).

    Raises
    ------
    LimitError
        The file is missing, not TOML, has unknown keys or bad values, is
        looser than ``base``, or names another board's serial.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a FIFO, a device (/dev/zero), a directory: never read
        raise LimitError(f"limits file {path} is not a regular file")
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise LimitError(f"limits file {path} is larger than {_MAX_FILE_BYTES} bytes; not a limits file")
        text = path.read_bytes().decode("utf-8")
        doc = tomllib.loads(text)
    except FileNotFoundError:
        raise LimitError(f"limits file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LimitError(f"limits file {path}: unreadable ({type(exc).__name__}: {exc})") from None
    unknown = set(doc) - {"serial", "limits", "comment"}
    if unknown:
        raise LimitError(f"limits file {path}: unknown top-level keys {sorted(unknown)}; "
                         "expected serial, comment and a [limits] table")
    table = doc.get("limits", {})
    if not isinstance(table, dict):
        raise LimitError(f"limits file {path}: [limits] must be a table")
    want = doc.get("serial")
    if want is not None and serial is not None and str(want) != serial:
        raise LimitError(f"limits file {path} is for board {want!r}, this board is {serial!r}")
    return tighten(base, table, source=f"limits file {path}")
