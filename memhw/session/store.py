"""Crash-safe append-only storage on one HDF5 file (the machinery under :mod:`memhw.session`).

How a killed process still leaves a readable file
-------------------------------------------------
* Nothing is written to the file between *commits*: rows, op records and
  attributes wait in memory. A commit writes them and calls ``H5Fflush``.
* While the session is open the file is in HDF5 SWMR-write mode
  (``libver="latest"``). In that mode HDF5 orders its metadata writes so the
  file on disk is valid at every instant, also in the middle of a flush
  (plain ``flush()`` without SWMR left 3 of 200 SIGKILLed files broken in our
  tests: "addr overflow"). SWMR allows no new objects, so a commit that must
  create groups, datasets or attributes closes the file, reopens it normally,
  makes them, and re-enters SWMR mode: the rare *structural* commits are the
  only moments a kill can spoil the file.
* Each commit has two phases: (1) extend and write the datasets, flush;
  (2) write the committed row counts into the group's ``_lengths`` dataset (a
  fixed-size contiguous dataset rewritten in place), flush. A kill between the
  two leaves rows beyond ``_lengths``: an unfinished batch, which readers drop.
* A file left by a killed writer carries HDF5's "open for SWMR write" flag:
  HDF5 then opens it read-only only with ``swmr=True`` (done automatically by
  :func:`open_h5`), and ``mode="a"`` repairs it by copying to a fresh file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any, Iterable

import h5py
import numpy as np

from ..errors import MemhwError

__all__ = ["SessionFileError", "Table", "Store", "open_h5", "encode_attr", "decode_attrs", "STR", "NUM"]

#: dataset ``kind`` attribute values
NUM, STR, ARRAY = "num", "str", "array"
LENGTHS = "_lengths"
END = ".end"
_CHUNK_BYTES = 1 << 17


class SessionFileError(MemhwError):
    """A session file that is missing, unreadable, corrupt, truncated or not a session file."""


# ------------------------------------------------------------------ attributes
def encode_attr(value: Any) -> tuple[Any, bool]:
    """An attribute value HDF5 can hold, and whether it was JSON-encoded."""
    if isinstance(value, (str, bool, int, float, np.number, np.bool_)):
        return value, False
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf" and arr.ndim <= 2:
            return arr, False
    try:
        return json.dumps(value), True
    except (TypeError, ValueError):
        raise TypeError(f"attribute value {value!r} is neither numeric, a string nor JSON-able") from None


def decode_attrs(attrs: h5py.AttributeManager) -> dict[str, Any]:
    """Attributes as Python values (JSON-encoded ones decoded, see ``json_attrs``)."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    for key in json.loads(out.pop("json_attrs", "[]")):
        if key in out:
            out[key] = json.loads(out[key])
    return out


def _set_attrs(obj: h5py.HLObject, attrs: dict[str, Any]) -> None:
    json_keys = set(json.loads(obj.attrs.get("json_attrs", "[]")))
    for key, value in attrs.items():
        stored, is_json = encode_attr(value)
        obj.attrs[key] = stored
        (json_keys.add if is_json else json_keys.discard)(key)
    if json_keys:
        obj.attrs["json_attrs"] = json.dumps(sorted(json_keys))


# ------------------------------------------------------------------ opening
def open_h5(path: str | os.PathLike) -> h5py.File:
    """Open a session file read-only, also one left open by a killed writer.

    Raises
    ------
    SessionFileError
        Missing, not HDF5, truncated, or left half-written outside SWMR mode.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise SessionFileError(f"{path}: no such session file")
    if not os.path.isfile(path):  # a FIFO or a device would block or never end
        raise SessionFileError(f"{path}: not a regular file")
    try:
        # no file lock: a reader must never stop the writer of a running session
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        first = exc
    if "already open for write" in str(first):
        try:
            return h5py.File(path, "r", swmr=True, locking=False)
        except OSError as exc:
            raise SessionFileError(
                f"{path}: the writing process stopped while changing the file's structure ({exc}); "
                "`h5clear -s FILE` (hdf5-tools) clears the flag, the data may still be readable") from None
    raise SessionFileError(f"{path}: not a readable HDF5 file ({first})") from None


def _reopen_for_writing(path: str, patience: float = 5.0) -> h5py.File:
    """Reopen our own file read-write; a reader that opened it meanwhile (with
    HDF5 file locking) makes that fail for a moment, so try again briefly."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return h5py.File(path, "r+", libver="latest")
        except OSError as exc:
            if "lock" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def repair_copy(path: str) -> None:
    """Rewrite a file left open by a killed SWMR writer into a clean one (same path)."""
    src = open_h5(path)
    fd, tmp = tempfile.mkstemp(suffix=".h5", dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        with src, h5py.File(tmp, "w", libver="latest") as dst:
            for key, value in src.attrs.items():
                dst.attrs[key] = value
            for name in src:
                src.copy(src[name], dst, name=name)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# ------------------------------------------------------------------ tables
class Table:
    """Appendable datasets in one group, all growing along their first axis.

    Rows go to ``staged`` (by :meth:`stage`), move to ``ready`` by
    :meth:`promote`, and reach the file at the store's next commit; so a batch
    of rows staged together is committed together.

    Parameters
    ----------
    path : str
        The group's path in the file.
    lengths : dict
        Committed rows per dataset (from the file's ``_lengths``).
    """

    def __init__(self, path: str, lengths: dict[str, int] | None = None):
        self.path = path
        self.lengths: dict[str, int] = dict(lengths or {})
        self.specs: dict[str, tuple[np.dtype, tuple[int, ...], dict[str, Any]]] = {}  # not yet in the file
        self.staged: dict[str, list[np.ndarray]] = {}
        self.ready: dict[str, list[np.ndarray]] = {}
        self.pending_bytes = 0

    # .................................................... writing side
    def stage(self, name: str, block: np.ndarray, attrs: dict[str, Any] | None = None) -> None:
        """Queue ``block`` (rows along axis 0) for dataset ``name``, creating it if new."""
        if name not in self.lengths and name not in self.specs:
            self.specs[name] = (block.dtype, block.shape[1:], dict(attrs or {}))
        self.staged.setdefault(name, []).append(block)
        self.pending_bytes += block.nbytes

    def promote(self) -> None:
        """Make the staged rows part of the next commit."""
        for name, blocks in self.staged.items():
            self.ready.setdefault(name, []).extend(blocks)
        self.staged.clear()

    def n_rows(self, name: str) -> int:
        """Rows of ``name`` committed plus queued."""
        queued = sum(len(b) for b in self.ready.get(name, ())) + sum(len(b) for b in self.staged.get(name, ()))
        return self.lengths.get(name, 0) + queued

    def queued(self, name: str) -> list[np.ndarray]:
        return self.ready.get(name, []) + self.staged.get(name, [])


class Store:
    """One HDF5 file kept in SWMR-write mode; changes reach it only in :meth:`commit`.

    Parameters
    ----------
    path : str
    create : bool
        Create (truncate) the file instead of opening it.
    """

    def __init__(self, path: str, create: bool):
        self.path = path
        self.tables: dict[str, Table] = {}
        self.new_groups: dict[str, dict[str, Any]] = {}
        self.new_attrs: dict[str, dict[str, Any]] = {}
        self.new_datasets: list[tuple[str, np.ndarray, dict[str, Any]]] = []
        if create:
            self.f = h5py.File(path, "w", libver="latest")
        else:
            if not h5py.is_hdf5(path):  # never write into a file that is not ours to repair
                raise SessionFileError(f"{path}: not an HDF5 session file; refusing to append to it")
            try:
                self.f = h5py.File(path, "r+", libver="latest")
            except OSError as exc:
                if "already open for write" not in str(exc):
                    raise SessionFileError(f"{path}: cannot open for appending ({exc})") from None
                repair_copy(path)
                self.f = h5py.File(path, "r+", libver="latest")
        self.swmr = False

    # ............................................................. commits
    @property
    def structural(self) -> bool:
        """Whether the next commit must create objects or attributes."""
        return bool(self.new_groups or self.new_attrs or self.new_datasets
                    or any(t.specs and any(n in t.ready for n in t.specs) for t in self.tables.values()))

    def commit(self, *, final: bool = False) -> None:
        """Write everything ready to the file, leaving it consistent on disk.

        With ``final`` the file is closed afterwards (outside SWMR mode, so
        HDF5 clears its "open for write" flag).
        """
        touched = [t for t in self.tables.values() if t.ready]
        structural = self.structural or final
        if not (touched or structural):
            return
        if structural and self.swmr:
            self.f.close()
            self.f = _reopen_for_writing(self.path)
            self.swmr = False
        if structural:
            self._make_structure()
        for table in touched:  # phase 1: the rows
            self._write_rows(table)
        self.f.flush()
        for table in touched:  # phase 2: the commit point
            self.f[table.path][LENGTHS][...] = [table.lengths[n] for n in self._lengths_names(table)]
        if final:
            self.f.close()
            return
        self.f.flush()
        if not self.swmr:
            self.f.swmr_mode = True
            self.swmr = True

    def close(self) -> None:
        """Close the file without committing (after an error)."""
        try:
            self.f.close()
        except Exception:  # noqa: BLE001 - closing a broken file must not mask the first error
            pass

    # ............................................................. internals
    @staticmethod
    def _lengths_names(table: Table) -> list[str]:
        return sorted(table.lengths)

    def _make_structure(self) -> None:
        f = self.f
        for path, attrs in self.new_groups.items():
            _set_attrs(f.require_group(path), attrs)
        self.new_groups.clear()
        for path, arr, attrs in self.new_datasets:
            if path in f:
                del f[path]
            _set_attrs(f.create_dataset(path, data=arr), attrs)
        self.new_datasets.clear()
        for path, attrs in self.new_attrs.items():
            _set_attrs(f[path], attrs)
        self.new_attrs.clear()
        for table in self.tables.values():
            if not (table.specs and any(n in table.ready for n in table.specs)):
                continue
            group = f.require_group(table.path)
            for name in [n for n in table.specs if n in table.ready]:
                dtype, tail, attrs = table.specs.pop(name)
                row_bytes = max(1, int(np.prod(tail, dtype=np.int64)) * dtype.itemsize)
                rows = max(1, min(4096, _CHUNK_BYTES // row_bytes))
                ds = group.create_dataset(name, shape=(0, *tail), maxshape=(None, *tail),
                                          chunks=(rows, *tail), dtype=dtype)
                _set_attrs(ds, attrs)
                table.lengths[name] = 0
            # the commit record: rewritten in place (contiguous, allocated now) in SWMR mode
            names = self._lengths_names(table)
            if LENGTHS in group:
                del group[LENGTHS]
            ds = group.create_dataset(LENGTHS, data=np.array([table.lengths[n] for n in names], np.int64))
            ds.attrs["names"] = json.dumps(names)

    def _write_rows(self, table: Table) -> None:
        group = self.f[table.path]
        for name, blocks in table.ready.items():
            block = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)  # one write is fastest
            if not len(block):
                continue
            ds, start = group[name], table.lengths[name]
            ds.resize(start + len(block), axis=0)  # also drops an unfinished batch a crash left past `start`
            ds[start:] = block
            table.lengths[name] = start + len(block)
        table.ready.clear()
        table.pending_bytes = sum(b.nbytes for bs in table.staged.values() for b in bs)


def read_lengths(group: h5py.Group) -> dict[str, int] | None:
    """Committed rows per appendable dataset of ``group`` (None if it has none)."""
    if LENGTHS not in group:
        return None
    ds = group[LENGTHS]
    return dict(zip(json.loads(ds.attrs["names"]), (int(n) for n in ds[()])))


def iter_tables(f: h5py.File, roots: Iterable[str]) -> Iterable[tuple[str, dict[str, int]]]:
    """(path, lengths) of every group under ``roots`` that holds appendable datasets."""
    for root in roots:
        if root not in f:
            continue
        for name, obj in f[root].items():
            if isinstance(obj, h5py.Group):
                lengths = read_lengths(obj)
                if lengths is not None:
                    yield obj.name, lengths
