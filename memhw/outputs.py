"""Output files of the command line: checked before any work, one rule for all.

* Every output a command names is checked before the board is touched: a file name memhw
  can write (``.h5``, ``.npy``, a figure format), in a folder that exists and is writable.
* A file that records measurements -- a session file (``--out FILE.h5``), a map
  (``read --out FILE.npy``), a calibration (``calibrate --save-to FILE.h5``) -- is never
  replaced or added to silently. If it exists the command refuses, unless ``--force``
  (replace it) or, for session files, ``--append`` (add this command's runs to it; only to
  a memhw session file recorded on the same board and chip).
* Figures (``--plot``) and report folders only draw recorded data (``memhw report`` redraws
  them from the session file): they are replaced.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .errors import MemhwError

__all__ = ["SESSION", "ARRAY", "FIGURE", "check_file", "check_record", "check_figure", "check_folder",
           "SessionOutput", "add_output_flags"]

SESSION = (".h5", ".hdf5")
ARRAY = (".npy",)
#: figure formats the Agg backend writes
FIGURE = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".eps")


def _names(suffixes: tuple[str, ...]) -> str:
    names = [s for s in suffixes if s not in (".jpeg", ".tiff")]  # the short spelling is enough
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


def _writable_folder(folder: Path, flag: str, path: Any) -> None:
    if not folder.is_dir():
        raise MemhwError(f"{flag} {path}: folder {folder} does not exist (create it first)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MemhwError(f"{flag} {path}: folder {folder} is not writable")


def check_file(path: str | os.PathLike, flag: str, suffixes: tuple[str, ...]) -> Path:
    """An output file name, checked: suffix among ``suffixes``, not a folder or a device,
    in an existing writable folder. Raises :class:`MemhwError` (one line) otherwise."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise MemhwError(f"{flag} {path}: is a folder; give a file name, e.g. {p / ('data' + suffixes[0])}")
    if p.suffix.lower() not in suffixes:
        raise MemhwError(f"{flag} {path}: use a {_names(suffixes)} file name")
    if p.exists() and not p.is_file():
        raise MemhwError(f"{flag} {path}: not a regular file")
    _writable_folder(p.parent, flag, path)
    return p


def check_record(path: str | os.PathLike, flag: str, suffixes: tuple[str, ...], force: bool) -> Path:
    """:func:`check_file` for a file of measurements: an existing one only with ``force``."""
    p = check_file(path, flag, suffixes)
    if p.exists() and not force:
        raise MemhwError(f"{flag} {path} exists; pass --force to replace it")
    return p


def check_figure(path: str | os.PathLike | None, flag: str = "--plot") -> Path | None:
    """A figure file name (replaced if it exists), or None."""
    return None if path is None else check_file(path, flag, FIGURE)


def check_folder(path: str | os.PathLike, flag: str) -> Path:
    """A folder to write into: an existing writable folder, or a new one in an existing folder."""
    p = Path(path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise MemhwError(f"{flag} {path}: exists and is not a folder")
        _writable_folder(p, flag, path)
    else:
        _writable_folder(p.parent, flag, path)
    return p


class SessionOutput:
    """The session file a command records into (``--out FILE.h5``): checked at once, before
    the board is touched; opened by :meth:`open` once the board is connected.

    Parameters
    ----------
    path : str or PathLike
    flag : str
        The option that named it, for messages.
    force, append : bool
        What to do with an existing file: replace it, or add this command's runs to it.
    command : str, optional
        Command line recorded in the file (default: this process's).
    """

    def __init__(self, path: str | os.PathLike, flag: str = "--out", *, force: bool = False, append: bool = False,
                 command: str | None = None):
        if force and append:
            raise MemhwError("--force replaces the file, --append adds to it: give one of them")
        self.path = check_file(path, flag, SESSION)
        self.flag, self.command = flag, command
        self.mode = "w"
        self.recorded: dict[str, Any] | None = None
        if self.path.exists() and not force:
            if not append:
                raise MemhwError(f"{flag} {path} exists; pass --append to add this run to it, or --force to "
                                 "replace it")
            from .session import load

            s = load(self.path)  # SessionFileError (one line) if it is not a memhw session file
            try:
                self.recorded = {k: s.attrs.get(k, "") for k in ("board_serial", "board_chip", "board_address")}
            finally:
                s.close()
            self.mode = "a"

    def open(self, board: Any) -> Any:
        """The :class:`memhw.session.Session`, attached to ``board``. Refuses to add to a file
        recorded on another board; another chip in the same board (and every in-process
        ``mock://``, a new chip each time) is said, and each run records its own."""
        from .session import Session

        rec, info = self.recorded, board.info
        if rec and rec["board_serial"] and rec["board_serial"] != info.serial:
            raise MemhwError(f"{self.flag} {self.path} was recorded on board {rec['board_serial']} at "
                             f"{rec['board_address']}; this is board {info.serial}: not adding another board's runs "
                             "to it; give another file")
        if rec and rec["board_chip"] and rec["board_chip"] != info.chip:
            print(f"note: {self.path} was recorded with chip {rec['board_chip']}; this run is on chip "
                  f"{info.chip or '?'} (each run records its own)")
        session = Session(self.path, self.mode, command=self.command)
        try:
            session.attach(board)
        except BaseException:
            session.close("error")
            raise
        return session


def add_output_flags(parser: argparse.ArgumentParser, files: str = "--out", append: bool = True) -> None:
    """``--force`` (and ``--append``) of a command that writes a file of measurements named by ``files``."""
    parser.add_argument("--force", action="store_true", help=f"replace an existing {files} file (else refused)")
    if append:
        parser.add_argument("--append", action="store_true",
                            help="add this run to an existing --out session file (of the same board)")
