"""Calibration files (HDF5): save, load, find by serial, apply on connect.

The format is described in ``calibration/README.md`` at the top of the repository.

Where calibration files live (:func:`search_path`), in the order they are looked up:

1. ``$MEMHW_CALIBRATION_DIR``, if set -- and then only there (a lab's shared folder, tests);
2. else the per-user data directory (``platformdirs``: ``~/.local/share/memhw/calibration``
   on Linux, ``~/Library/Application Support/memhw/calibration`` on macOS,
   ``%LOCALAPPDATA%\\memhw\\calibration`` on Windows), where ``memhw calibrate board --save``
   writes (:func:`calibration_dir`);
3. then the calibrations shipped inside the package (``memhw/calibration/data/``: the
   emulator's default board, found after any kind of install).

Nothing is ever written into the package or a source checkout.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import CalibrationError, CalibrationWarning
from .model import GROUPS, BoardCalibration, CalibrationBounds, DacCalibration

__all__ = [
    "FORMAT", "FORMAT_VERSION", "ENV_DIR", "calibration_dir", "calibration_path", "save_calibration",
    "load_calibration", "find_calibration", "apply_calibration", "MAX_AGE_DAYS", "search_path", "shipped_dir",
    "user_dir",
]

log = logging.getLogger("memhw.calibration")

FORMAT = "memhw-board-calibration"
FORMAT_VERSION = 1
ENV_DIR = "MEMHW_CALIBRATION_DIR"
#: a calibration older than this (days) is applied with a CalibrationWarning
MAX_AGE_DAYS = 90.0
#: the calibrations shipped as package data (in a checkout: the source folder)
SHIPPED_DIR = Path(__file__).resolve().parent / "data"

_DAC_FIELDS = ("gain", "offset", "residual", "r2")
_TIA_FIELDS = {"gain": "tia_gain", "offset": "tia_offset", "residual": "tia_residual", "r2": "tia_r2"}
_UNITS = {"gain": "1", "offset": "V", "residual": "V", "r2": "1"}


def user_dir() -> Path:
    """The per-user calibration folder (``<platformdirs user data dir>/memhw/calibration``)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("memhw", appauthor=False)) / "calibration"


def shipped_dir() -> Path | None:
    """The folder of the calibrations shipped with memhw (package data), or None if the
    package is not on a file system (e.g. zipped)."""
    from importlib.resources import files

    folder = files(__package__) / "data"
    return folder if isinstance(folder, Path) else None


def calibration_dir() -> Path:
    """Where calibration files are saved: ``$MEMHW_CALIBRATION_DIR`` if set, else :func:`user_dir`."""
    env = os.environ.get(ENV_DIR)
    return Path(env).expanduser() if env else user_dir()


def search_path() -> list[Path]:
    """Folders searched for a board's calibration, first match wins: ``$MEMHW_CALIBRATION_DIR``
    alone if set, else :func:`user_dir` then :func:`shipped_dir`."""
    if os.environ.get(ENV_DIR):
        return [calibration_dir()]
    shipped = shipped_dir()
    return [user_dir()] + ([shipped] if shipped is not None else [])


def _safe(serial: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", serial)


def calibration_path(serial: str, directory: str | os.PathLike | None = None) -> Path:
    """The file name a calibration of ``serial`` is saved under: ``<dir>/<serial>.h5``."""
    return (Path(directory) if directory is not None else calibration_dir()) / f"{_safe(serial)}.h5"


# ------------------------------------------------------------------ checksum

def _checksum(cal: BoardCalibration) -> str:
    """CRC32 over the identity and every fit parameter (detects corruption and edits)."""
    crc = zlib.crc32(json.dumps([cal.serial, cal.firmware, list(cal.protocol), cal.date, cal.rows, cal.cols,
                                 list(cal.tia_gains)]).encode())
    for g in GROUPS:
        for f in _DAC_FIELDS:
            crc = zlib.crc32(np.ascontiguousarray(getattr(cal.dac[g], f), dtype="<f8").tobytes(), crc)
    for attr in _TIA_FIELDS.values():
        crc = zlib.crc32(np.ascontiguousarray(getattr(cal, attr), dtype="<f8").tobytes(), crc)
    crc = zlib.crc32(np.ascontiguousarray(cal.references, dtype="<f8").tobytes(), crc)
    return f"{crc:08X}"


# ------------------------------------------------------------------ save / load

def save_calibration(cal: BoardCalibration, path: str | os.PathLike | None = None, *,
                     bounds: CalibrationBounds | None = None, force: bool = False) -> Path:
    """Write ``cal`` to ``path`` (default ``<calibration dir>/<serial>.h5``).

    Refuses (:class:`CalibrationError`) a calibration whose fits are out of ``bounds``
    unless ``force``. The file is written to a temporary name and renamed, so a crash never
    leaves a half-written calibration under the real name.
    """
    import h5py

    if not force:
        cal.validate(bounds)
    path = Path(path) if path is not None else calibration_path(cal.serial)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        a = f.attrs
        a["format"] = FORMAT
        a["format_version"] = FORMAT_VERSION
        a["serial"] = cal.serial
        a["firmware"] = cal.firmware
        a["protocol"] = f"{cal.protocol[0]}.{cal.protocol[1]}"
        a["date"] = cal.date
        a["temperature_c"] = np.nan if cal.temperature is None else float(cal.temperature)
        a["rows"] = cal.rows
        a["cols"] = cal.cols
        a["tia_gains"] = np.asarray(cal.tia_gains, dtype=float)
        a["dac_line_lsb"] = cal.dac_line_lsb
        a["dac_gate_lsb"] = cal.dac_gate_lsb
        a["adc_lsb"] = cal.adc_lsb
        a["memhw_version"] = __version__
        a["meta"] = json.dumps(cal.meta, sort_keys=True, default=str)
        a["checksum"] = _checksum(cal)
        for g in GROUPS:
            grp = f.create_group(f"dac/{g}")
            for name in _DAC_FIELDS:
                ds = grp.create_dataset(name, data=np.asarray(getattr(cal.dac[g], name), dtype="<f8"))
                ds.attrs["unit"] = _UNITS[name]
        tia = f.create_group("tia")
        for name, attr in _TIA_FIELDS.items():
            ds = tia.create_dataset(name, data=np.asarray(getattr(cal, attr), dtype="<f8"))
            ds.attrs["unit"] = "1" if name in ("residual", "r2", "gain") else "V"
        ds = f.create_dataset("reference/resistance", data=np.asarray(cal.references, dtype="<f8"))
        ds.attrs["unit"] = "ohm"
    os.replace(tmp, path)
    log.info("saved calibration of %s (%s) to %s", cal.serial, cal.date, path)
    return path


def load_calibration(path: str | os.PathLike) -> BoardCalibration:
    """Read a calibration file; :class:`CalibrationError` with the reason if it is missing,
    not HDF5, truncated, of another format or version, incomplete, or fails its checksum."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            a = f.attrs
            if a.get("format") != FORMAT:
                raise CalibrationError(f"{path}: not a memhw board calibration (format attribute "
                                       f"{a.get('format')!r}, expected {FORMAT!r})")
            version = int(a["format_version"])
            if version > FORMAT_VERSION:
                raise CalibrationError(f"{path}: format version {version} is newer than this memhw "
                                       f"understands ({FORMAT_VERSION}); update memhw")
            major, minor = (int(x) for x in str(a["protocol"]).split("."))
            temp = float(a["temperature_c"])
            dac = {g: DacCalibration(*(np.asarray(f[f"dac/{g}/{n}"][()], dtype=float) for n in _DAC_FIELDS))
                   for g in GROUPS}
            cal = BoardCalibration(
                serial=str(a["serial"]), firmware=str(a["firmware"]), protocol=(major, minor),
                date=str(a["date"]), rows=int(a["rows"]), cols=int(a["cols"]),
                tia_gains=tuple(float(x) for x in np.atleast_1d(a["tia_gains"])),
                dac_line_lsb=float(a["dac_line_lsb"]), dac_gate_lsb=float(a["dac_gate_lsb"]),
                adc_lsb=float(a["adc_lsb"]), dac=dac,
                **{attr: np.asarray(f[f"tia/{n}"][()], dtype=float) for n, attr in _TIA_FIELDS.items()},
                references=np.asarray(f["reference/resistance"][()], dtype=float),
                temperature=None if np.isnan(temp) else temp,
                meta=json.loads(str(a.get("meta", "{}"))), source=str(path),
            )
            stored = str(a["checksum"])
    except CalibrationError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise CalibrationError(f"{path}: unreadable calibration file (corrupted or truncated?): "
                               f"{type(exc).__name__}: {exc}") from None
    n_g = len(cal.tia_gains)
    shapes_ok = all(cal.dac[g].gain.shape == (n,) and all(getattr(cal.dac[g], x).shape == (n,) for x in _DAC_FIELDS)
                    for g, n in (("ROWS", cal.rows), ("COLS", cal.cols), ("GATES", cal.cols)))
    shapes_ok &= all(getattr(cal, attr).shape == (cal.cols, n_g) for attr in _TIA_FIELDS.values())
    if not shapes_ok:
        raise CalibrationError(f"{path}: dataset shapes do not match {cal.rows}x{cal.cols} with {n_g} gains")
    if _checksum(cal) != stored:
        raise CalibrationError(f"{path}: checksum mismatch (file corrupted or edited); recalibrate the board")
    return cal


def find_calibration(serial: str, directory: str | os.PathLike | None = None) -> Path | None:
    """The calibration file for ``serial``: ``<serial>.h5`` or the newest of ``<serial>_*.h5``
    (by name) in ``directory``, or by default in the first folder of :func:`search_path`
    that has one; None if there is none."""
    folders = [Path(directory)] if directory is not None else search_path()
    for d in folders:
        if not d.is_dir():
            continue
        exact = d / f"{_safe(serial)}.h5"
        if exact.is_file():
            return exact
        dated = sorted(d.glob(f"{_safe(serial)}_*.h5"))
        if dated:
            return dated[-1]
    return None


# ------------------------------------------------------------------ applying

def apply_calibration(board: Any, calibration: Any = "auto", *, directory: str | os.PathLike | None = None,
                      max_age_days: float = MAX_AGE_DAYS) -> BoardCalibration | None:
    """Apply a calibration to ``board`` (what :func:`memhw.connect` does).

    ``calibration``: ``"auto"`` (look up the board's serial in ``directory``), a path, a
    :class:`BoardCalibration`, or None (nominal transfer functions). A calibration of
    another board raises :class:`CalibrationError`; a stale one (older than
    ``max_age_days``, other firmware or protocol) is applied with a
    :class:`CalibrationWarning`. Returns what was applied.
    """
    info = board.info
    if not (calibration is None or isinstance(calibration, (str, os.PathLike, BoardCalibration))) \
            or isinstance(calibration, bool):
        raise CalibrationError(f"calibration: expected 'auto', None, the path of a calibration file or a "
                               f"BoardCalibration, got {type(calibration).__name__} {calibration!r:.40}")
    if calibration is None:
        board.calibration = None
        log.info("board %s: no calibration (nominal transfer functions)", info.serial)
        return None
    if isinstance(calibration, str) and calibration == "auto":
        path = find_calibration(info.serial, directory)
        if path is None:
            where = [Path(directory)] if directory is not None else search_path()
            log.info("board %s: no calibration file in %s; using nominal transfer functions",
                     info.serial, ", ".join(map(str, where)))
            return None
        calibration = path
    cal = calibration if isinstance(calibration, BoardCalibration) else load_calibration(calibration)
    problems = cal.problems()
    if problems:  # e.g. saved with force=True: never applied silently
        raise CalibrationError(f"calibration {cal.source or cal.id} of board {cal.serial} is out of bounds and is "
                               f"not applied: {'; '.join(problems)}; recalibrate, or connect with calibration=None")
    board.calibration = cal  # checks serial and geometry
    stale = cal.staleness(info, max_age_days)
    if stale:
        msg = f"calibration {cal.source or cal.id} of board {info.serial} may be stale: " + "; ".join(stale)
        log.warning(msg)
        warnings.warn(msg, CalibrationWarning, stacklevel=3)
    log.info("board %s: applied calibration %s (made %s, firmware %s)", info.serial,
             cal.source or "(in memory)", cal.date, cal.firmware)
    return cal


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
