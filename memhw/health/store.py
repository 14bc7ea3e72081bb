"""Health maps on disk: one file per board serial beside its calibration file.

The directory is ``$MEMHW_HEALTH_DIR`` if set, else the calibration directory
(:func:`memhw.calibration.files.calibration_dir`), so health files follow the
calibration files wherever those are kept. File: ``<serial>.health.npz`` (numpy
archive, format described in :func:`save_health`), written to a temporary name and
renamed, so a crash never leaves a half-written map.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration.files import calibration_dir
from ..errors import MemhwError
from .map import HealthMap

__all__ = ["ENV_DIR", "FORMAT", "health_dir", "health_path", "load_health", "record", "save_health"]

log = logging.getLogger("memhw.health")

#: environment variable overriding the directory (tests, benchmarks)
ENV_DIR = "MEMHW_HEALTH_DIR"
FORMAT = "memhw-device-health"
FORMAT_VERSION = 1
_ARRAYS = ("state", "g_stuck", "g_lo", "g_hi", "noise", "seen")


def health_dir() -> Path:
    """``$MEMHW_HEALTH_DIR``, else the directory calibration files are kept in."""
    env = os.environ.get(ENV_DIR)
    return Path(env).expanduser() if env else calibration_dir()


def health_path(serial: str, directory: str | os.PathLike | None = None) -> Path:
    """``<dir>/<serial>.health.npz``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", serial)
    return (Path(directory) if directory is not None else health_dir()) / f"{safe}.health.npz"


def save_health(health: HealthMap, path: str | os.PathLike | None = None) -> Path:
    """Write ``health`` atomically (temporary file in the same directory, then rename).

    The archive holds the arrays ``state`` (int8 :class:`~memhw.health.DeviceState`),
    ``g_stuck``, ``g_lo``, ``g_hi`` (S), ``noise`` (relative), ``seen`` (int16) and
    ``meta``, a JSON string with ``format``, ``format_version``, ``serial``, ``updated``.
    """
    path = Path(path) if path is not None else health_path(health.serial)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, "serial": health.serial,
                       "updated": health.updated})
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(meta), **{k: getattr(health, k) for k in _ARRAYS})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_health(serial: str, shape: tuple[int, int] | None = None, directory: str | os.PathLike | None = None,
                *, path: str | os.PathLike | None = None) -> HealthMap | None:
    """The stored map of ``serial`` (None if there is none).

    Raises
    ------
    MemhwError
        The file is unreadable, of another format or serial, or of another ``shape``.
    """
    path = Path(path) if path is not None else health_path(serial, directory)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in _ARRAYS}
    except (OSError, ValueError, KeyError) as exc:
        raise MemhwError(f"{path}: not a readable health map ({exc})") from None
    if meta.get("format") != FORMAT or meta.get("serial") != serial:
        raise MemhwError(f"{path}: not a health map of board {serial}")
    if shape is not None and tuple(arrays["state"].shape) != tuple(shape):
        raise MemhwError(f"{path}: health map is {arrays['state'].shape}, the board {tuple(shape)}")
    return HealthMap(serial=serial, updated=str(meta.get("updated", "")), **arrays)


def record(board: Any, result: Any) -> HealthMap:
    """Fold a programming run of ``board`` into its stored map and save it (the hook of
    :func:`memhw.program`)."""
    from .observe import observe_result

    serial = board.info.serial
    health = load_health(serial, board.shape) or HealthMap.empty(serial, board.shape)
    observe_result(health, result)
    save_health(health)
    log.debug("board %s: health map updated (%s)", serial, health)
    return health
