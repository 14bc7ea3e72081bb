"""Session files: one HDF5 file per session, with an operation log and runs.

See ``docs/sessions.md`` for the file layout and the guarantees.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shlex
import sys
import threading
import time
from collections.abc import MutableMapping
from typing import Any, Iterator, NamedTuple

import h5py
import numpy as np

import firmware_protocol as fp

from .._version import __version__
from .store import (
    END,
    LENGTHS,
    NUM,
    STR,
    ARRAY,
    SessionFileError,
    Store,
    Table,
    decode_attrs,
    encode_attr,
    iter_tables,
    open_h5,
)

__all__ = ["Session", "Run", "OpLog", "OpTable", "OpRecord", "SessionFileError", "load", "FORMAT"]

#: value of the root attribute ``format``
FORMAT = "memhw-session"
FORMAT_VERSION = 1
_KIND = re.compile(r"^[A-Za-z0-9_\-]+$")


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="milliseconds")


def board_attributes(board: Any) -> dict[str, Any]:
    """What a session file records of the board a run used: identity, address, geometry and
    the calibration applied (``board_calibration``: its file and date, or ``none: nominal
    transfer functions``; ``board_calibration_id``: serial@date, empty without one)."""
    from ..info import calibration_text

    info = board.info
    cal = getattr(board, "calibration", None)
    return {"board_serial": info.serial, "board_chip": getattr(info, "chip", ""), "board_firmware": info.firmware,
            "board_address": board.address, "board_rows": info.rows, "board_cols": info.cols,
            "board_calibration": calibration_text(cal), "board_calibration_id": cal.id if cal is not None else ""}


def default_command() -> str:
    """The command line of this process, as a session file records it."""
    return shlex.join(sys.argv) if sys.argv and sys.argv[0] else "(interactive)"


def _exit_status(exc: BaseException) -> tuple[str, str]:
    from ..errors import OperationAborted

    interrupted = isinstance(exc, (KeyboardInterrupt, OperationAborted))
    return ("interrupted" if interrupted else "error"), f"{type(exc).__name__}: {exc}"


# ===================================================================== attributes
class Attrs(MutableMapping):
    """Attributes of a session, run or dataset: read like a dict, written at the next flush."""

    def __init__(self, session: "Session", path: str, values: dict[str, Any]):
        self._session = session
        self._path = path
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        store = self._session._writable()
        encode_attr(value)  # refuse what cannot be stored now, not at the flush
        self._values[key] = value
        store.new_attrs.setdefault(self._path, {})[key] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("session attributes cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Attrs({self._values!r})"


# ===================================================================== runs
class Run:
    """A procedure's own data: one group ``/runs/NNNN_kind`` of a session file.

    Made by :meth:`Session.run` (writable) or found by :meth:`Session.runs` /
    :meth:`Session.last_run`. Use as a context manager to close it with
    status ``"complete"``, or ``"interrupted"``/``"error"`` on an exception.
    """

    def __init__(self, session: "Session", name: str, attrs: dict[str, Any], table: Table):
        self._session = session
        self.name = name
        self.path = f"/runs/{name}"
        self._table = table
        self.attrs = Attrs(session, self.path, attrs)

    @property
    def kind(self) -> str:
        """The run's kind (``"program"``, ``"calibration"``...)."""
        return self.attrs["kind"]

    @property
    def index(self) -> int:
        """The run's number in the session (0, 1, ...)."""
        return int(self.attrs["index"])

    @property
    def status(self) -> str:
        """``"running"`` until closed, then the status given to :meth:`close`."""
        return self.attrs["status"]

    def __repr__(self) -> str:
        return f"<Run {self.name} {self.status}>"

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if self._session.writable and self.status == "running":
            if exc is None:
                self.close()
            else:
                status, error = _exit_status(exc)
                self.close(status, error=error)

    # ............................................................ writing
    def write(self, name: str, array: Any, **attrs: Any) -> None:
        """Store a whole dataset now (and flush), e.g. ``run.write("targets", g, unit="S")``.

        Parameters
        ----------
        name : str
            Dataset name inside the run (no ``/``).
        array : array_like
            Numeric data (bool, int, float).
        **attrs
            Attributes of the dataset, e.g. ``unit="S"``.
        """
        store = self._session._writable()
        arr = _numeric(name, array)
        _check_name(name)
        if name in self._table.lengths or name in self._table.specs:
            raise ValueError(f"{name!r} is an appended dataset of {self.name}")
        store.new_datasets.append((f"{self.path}/{name}", arr, attrs))
        self._session._commit()

    def append(self, name: str, array: Any, **attrs: Any) -> None:
        """Add one row (``array``) to dataset ``name``; written at the next :meth:`flush`.

        The dataset has shape (n, *array.shape) and grows along its first
        axis; every row must have the shape and dtype of the first one.
        ``attrs`` (e.g. ``unit="S"``) are used when the dataset is created.
        """
        self._session._writable()
        _check_name(name)
        arr = _numeric(name, array)
        row = arr.reshape(1, *arr.shape)
        spec = self._table.specs.get(name)
        if spec is None and name in self._table.lengths:
            ds = self._session._store.f[self.path][name]
            spec = (ds.dtype, ds.shape[1:], {})
        if spec is not None:
            if arr.shape != tuple(spec[1]):
                raise ValueError(f"{name}: row shape {arr.shape}, earlier rows {tuple(spec[1])}")
            row = row.astype(spec[0], copy=False)
        with self._session._lock:
            self._table.stage(name, row, attrs)

    def flush(self) -> None:
        """Commit the rows appended since the last flush as one batch (and everything else pending)."""
        self._session._writable()
        with self._session._lock:
            self._table.promote()
            self._session._commit()

    def close(self, status: str = "complete", *, error: str | None = None) -> None:
        """Flush and mark the run finished with ``status`` (``"complete"``, ``"interrupted"``...)."""
        self._session._writable()
        self._table.promote()
        self.attrs["status"] = status
        self.attrs["end_time"] = _now()
        if error is not None:
            self.attrs["error"] = error
        self._session._commit()

    # ............................................................ reading
    def names(self) -> list[str]:
        """Names of the run's datasets (written and appended)."""
        found = set(self._table.specs) | set(self._table.lengths)
        f = self._session._file()
        if self.path in f:
            found |= {n for n in f[self.path] if n != LENGTHS}
        return sorted(found)

    def read(self, name: str) -> np.ndarray:
        """The whole dataset ``name``; for appended ones every committed row plus those still queued."""
        f = self._session._file()
        queued = self._table.queued(name)
        try:
            if name in self._table.lengths:
                data = f[self.path][name][: self._table.lengths[name]]
            elif self.path in f and name in f[self.path] and name != LENGTHS:
                return f[self.path][name][()]
            elif queued:
                return np.concatenate(queued)
            else:
                raise KeyError(f"{self.name} has no dataset {name!r} (has: {', '.join(self.names()) or 'none'})")
        except (OSError, ValueError) as exc:
            raise SessionFileError(f"{self._session.path}: cannot read {self.path}/{name}: {exc}") from None
        return np.concatenate([data, *queued]) if queued else data

    def dataset_attrs(self, name: str) -> dict[str, Any]:
        """Attributes (units...) of dataset ``name``."""
        f = self._session._file()
        return decode_attrs(f[self.path][name].attrs)


def _check_name(name: str) -> None:
    if not name or "/" in name or name.startswith("_") or "~" in name or name.endswith(END):
        raise ValueError(f"bad dataset name {name!r}: no '/', '~', leading '_' or '{END}' ending")


def _numeric(name: str, value: Any) -> np.ndarray:
    arr = np.array(value)  # a copy: the caller may reuse its buffer
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: only numeric arrays are stored, got dtype {arr.dtype}")
    return arr


# ===================================================================== op log
def _normalise(value: Any) -> float | str | np.ndarray | None:
    """An op argument as a float, a string, an array with rows along axis 0, or None."""
    if value is None:
        return None
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, slice):
        return json.dumps({"slice": [value.start, value.stop, value.step]})
    if isinstance(value, (np.ndarray, list, tuple)):
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf":
            return float(arr) if arr.ndim == 0 else arr.copy()
    return json.dumps(value, default=repr)


def _tag(value: float | str | np.ndarray) -> str:
    if isinstance(value, float):
        return NUM
    if isinstance(value, str):
        return STR
    return f"{value.dtype.str[1:]}:{'x'.join(map(str, value.shape[1:]))}"


class _OpWriter:
    """Turns the records of one op kind into the columns of ``/log/<op>``."""

    def __init__(self, table: Table, columns: dict[str, tuple[str, str]], n: int, ends: dict[str, int]):
        self.table = table
        self.columns = columns  # column -> (field, tag)
        self.n = n
        self.ends = ends  # ragged column -> rows of data so far

    def record(self, seq: int, t: float, fields: dict[str, Any]) -> None:
        table = self.table
        table.stage("seq", np.array([seq], np.int64), {"kind": NUM, "field": "seq"})
        table.stage("t", np.array([t]), {"kind": NUM, "field": "t", "unit": "s", "note": "UNIX time at the end"})
        touched = set()
        for field, raw in fields.items():
            value = _normalise(raw)
            if value is None:
                continue
            tag = _tag(value)
            col = field if self.columns.get(field, (field, tag))[1] == tag else f"{field}~{tag}"
            if col not in self.columns:
                self._new_column(col, field, tag, value)
            self._put(col, tag, value)
            touched.add(col)
        for col, (_, tag) in self.columns.items():
            if col not in touched:
                self._put(col, tag, None)
        self.n += 1
        table.promote()

    def _new_column(self, col: str, field: str, tag: str, value: Any) -> None:
        self.columns[col] = (field, tag)
        if tag == NUM:
            self.table.stage(col, np.full(self.n, np.nan), {"kind": NUM, "field": field})
            return
        if tag == STR:
            self.table.stage(col, np.zeros(0, np.uint8), {"kind": STR, "field": field, "encoding": "utf-8"})
        else:
            self.table.stage(col, np.zeros((0, *value.shape[1:]), value.dtype), {"kind": ARRAY, "field": field})
        self.table.stage(col + END, np.zeros(self.n, np.int64), {"kind": "end", "field": field})
        self.ends[col] = 0

    def _put(self, col: str, tag: str, value: Any) -> None:
        if tag == NUM:
            self.table.stage(col, np.array([np.nan if value is None else value]))
            return
        if value is not None:
            data = np.frombuffer(value.encode(), np.uint8) if tag == STR else value
            self.table.stage(col, data)
            self.ends[col] += len(data)
        self.table.stage(col + END, np.array([self.ends[col]], np.int64))


class OpRecord(NamedTuple):
    """One board operation from the log."""

    seq: int
    op: str
    t: float
    fields: dict[str, Any]


class OpTable:
    """The committed records of one op kind (``/log/<op>``), read from the file."""

    def __init__(self, group: h5py.Group, lengths: dict[str, int]):
        self.op = group.name.rsplit("/", 1)[-1]
        self._group = group
        self._lengths = lengths
        self._n = min(lengths.get(c, 0) for c in lengths if not self._ragged_data(c)) if lengths else 0

    def _ragged_data(self, col: str) -> bool:
        return col + END in self._lengths

    def _get(self, col: str) -> np.ndarray:
        try:
            return self._group[col][: self._lengths[col]]
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise SessionFileError(f"{self._group.file.filename}: damaged dataset {self._group.name}/{col} "
                                   f"({type(exc).__name__}: {exc})") from None

    def __len__(self) -> int:
        return self._n

    @property
    def seq(self) -> np.ndarray:
        """Session-wide operation numbers, (n,) int."""
        return self._get("seq")[: self._n]

    @property
    def t(self) -> np.ndarray:
        """UNIX time at the end of each operation, (n,) s."""
        return self._get("t")[: self._n]

    def fields(self) -> list[str]:
        """Argument/result names recorded for this op."""
        cols = [c for c in self._lengths if c not in ("seq", "t") and not c.endswith(END)]
        return sorted({self._group[c].attrs["field"] for c in cols})

    def column(self, field: str) -> list[Any]:
        """Value of ``field`` in every record (None where absent): floats, strings or arrays."""
        out: list[Any] = [None] * self._n
        for col in [c for c in self._lengths if c == field or c.startswith(field + "~")]:
            if col.endswith(END):
                continue
            kind = self._group[col].attrs["kind"]
            if kind == NUM:
                for i, v in enumerate(self._get(col)[: self._n]):
                    if not np.isnan(v):
                        out[i] = float(v)
                continue
            data, ends = self._get(col), self._get(col + END)[: self._n]
            start = 0
            for i, end in enumerate(ends):
                if end > start:
                    out[i] = bytes(data[start:end]).decode() if kind == STR else data[start:end]
                start = end
        return out

    def record(self, i: int) -> dict[str, Any]:
        """Every field of record ``i``."""
        return {f: v[i] for f in self.fields() if (v := self.column(f))[i] is not None}


class OpLog:
    """The operation log of a session: one :class:`OpTable` per op kind."""

    def __init__(self, tables: dict[str, OpTable]):
        self._tables = tables

    def ops(self) -> list[str]:
        """Op kinds present (``"read_conductance"``, ``"pulse_set"``...)."""
        return sorted(self._tables)

    def __getitem__(self, op: str) -> OpTable:
        return self._tables[op]

    def __contains__(self, op: object) -> bool:
        return op in self._tables

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables.values())

    def records(self) -> list[OpRecord]:
        """Every operation in the order performed (loads all the data: mind big logs)."""
        out = []
        for op, table in self._tables.items():
            cols = {f: table.column(f) for f in table.fields()}
            for i, (seq, t) in enumerate(zip(table.seq, table.t)):
                fields = {f: v[i] for f, v in cols.items() if v[i] is not None}
                out.append(OpRecord(int(seq), op, float(t), fields))
        return sorted(out, key=lambda r: r.seq)


# ===================================================================== session
class Session:
    """One HDF5 session file: root attributes, a log of board operations, and runs.

    Parameters
    ----------
    path : str or PathLike
        The ``.h5`` file.
    mode : {"w", "a", "r"}
        ``"w"`` creates (truncates), ``"a"`` continues an existing file (or
        creates one; a file left by a killed process is repaired first),
        ``"r"`` reads (same as :meth:`open`).
    flush_interval : float
        Seconds after which recorded operations are committed (checked at each op).
    flush_bytes : int
        Queued bytes that trigger a commit.
    command : str, optional
        The command line that writes the session (default: this process's ``sys.argv``);
        recorded with the memhw version in the root attributes of a new file and in every
        run (a file continued by another command keeps both).

    Raises
    ------
    SessionFileError
        The file is missing (mode "r"), unreadable, or not a session file.

    Examples
    --------
    >>> with memhw.Session("s.h5") as s, memhw.connect("mock://") as board:
    ...     s.attach(board)
    ...     with s.run("program", tolerance=2e-6) as run:
    ...         g = board.read_conductance()
    ...         run.append("g", g, unit="S"); run.flush()
    """

    def __init__(self, path: str | os.PathLike, mode: str = "w", *, flush_interval: float = 1.0,
                 flush_bytes: int = 32 << 20, command: str | None = None):
        if mode not in ("w", "a", "r"):
            raise ValueError(f"mode must be 'w', 'a' or 'r', got {mode!r}")
        self.path = os.fspath(path)
        #: recorded in every run: who wrote it
        self._provenance = {"command_line": command if command is not None else default_command(),
                            "software_version": __version__}
        self.mode = mode
        self.flush_interval = flush_interval
        self.flush_bytes = flush_bytes
        self._lock = threading.RLock()
        self._board: Any = None
        self._board_attrs: dict[str, Any] = {}
        self._store: Store | None = None
        self._ro: h5py.File | None = None
        self._runs: dict[str, Run] = {}
        self._ops: dict[str, _OpWriter] = {}
        self._seq = 0
        self._closed = False
        if mode == "r":
            self._ro = open_h5(self.path)
            self._load(self._ro)
            return
        if os.path.exists(self.path) and not os.path.isfile(self.path):
            raise SessionFileError(f"{self.path}: not a regular file")
        create = mode == "w" or not os.path.exists(self.path)
        try:
            self._store = Store(self.path, create)
        except OSError as exc:
            raise SessionFileError(f"{self.path}: cannot open for writing ({exc})") from None
        f = self._store.f
        try:
            if create:
                self._init_root(f)
            else:
                self._load(f)
        except BaseException:
            self._store.close()
            raise
        self.attrs.update(complete=False, status="open", opened_time=_now())
        self._commit()
        for run in list(self._runs.values()):  # left running by a process that died
            if run.status == "running":
                run.close(status="interrupted", error="its process ended without closing it")

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Session":
        """Open a session file read-only (see :func:`load`)."""
        return cls(path, "r")

    # ........................................................ setup
    def _init_root(self, f: h5py.File) -> None:
        root = {"format": FORMAT, "format_version": FORMAT_VERSION, **self._provenance,
                "protocol_version": f"{fp.MAJOR}.{fp.MINOR}", "start_time": _now(), "complete": False,
                "status": "open"}
        for key, value in root.items():
            f.attrs[key] = value
        f.create_group("runs")
        f.create_group("log")
        self.attrs = Attrs(self, "/", dict(root))

    def _load(self, f: h5py.File) -> None:
        try:
            attrs = decode_attrs(f.attrs)
            if attrs.get("format") != FORMAT:
                raise SessionFileError(f"{self.path}: an HDF5 file but not a memhw session (no format={FORMAT!r})")
            self.attrs = Attrs(self, "/", attrs)
            lengths = dict(iter_tables(f, ["runs", "log"]))
            for name, group in f["runs"].items():
                table = Table(group.name, lengths.get(group.name))
                if self._store is not None:
                    self._store.tables[table.path] = table
                self._runs[name] = Run(self, name, decode_attrs(group.attrs), table)
            for op, group in f["log"].items():
                self._ops[op] = self._op_writer(group, lengths.get(group.name, {}))
                if self._store is not None:
                    self._store.tables[group.name] = self._ops[op].table
            self._seq = sum(w.n for w in self._ops.values())
        except SessionFileError:
            raise
        # h5py reports damage, or a writer in the middle of a change, all these ways
        except (OSError, RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise SessionFileError(f"{self.path}: damaged session file ({type(exc).__name__}: {exc})") from None

    @staticmethod
    def _op_writer(group: h5py.Group, lengths: dict[str, int]) -> _OpWriter:
        columns, ends = {}, {}
        for col in lengths:
            if col in ("seq", "t") or col.endswith(END):
                continue
            field = group[col].attrs["field"]
            field = field.decode() if isinstance(field, bytes) else field
            kind = group[col].attrs["kind"]
            kind = kind.decode() if isinstance(kind, bytes) else kind
            if kind in (NUM, STR):
                columns[col] = (field, kind)
            else:
                ds = group[col]
                columns[col] = (field, f"{ds.dtype.str[1:]}:{'x'.join(map(str, ds.shape[1:]))}")
            if kind != NUM:
                ends[col] = lengths[col]
        return _OpWriter(Table(group.name, lengths), columns, lengths.get("seq", 0), ends)

    # ........................................................ state
    @property
    def writable(self) -> bool:
        """Whether this session can record (open in mode "w" or "a" and not closed)."""
        return self._store is not None and not self._closed

    def _writable(self) -> Store:
        if not self.writable:
            raise SessionFileError(f"{self.path}: session is read-only or closed")
        return self._store  # type: ignore[return-value]

    def _file(self) -> h5py.File:
        if self._closed:
            raise SessionFileError(f"{self.path}: session is closed")
        return self._ro if self._ro is not None else self._store.f  # type: ignore[union-attr]

    def _commit(self) -> None:
        with self._lock:
            self._writable().commit()
            self._last_commit = time.monotonic()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if self._closed:
            return
        if exc is None:
            self.close()
        else:
            status, error = _exit_status(exc)
            self.close(status, error=error)

    def __repr__(self) -> str:
        return f"<Session {self.path!r} mode={self.mode!r}{' closed' if self._closed else ''}>"

    # ........................................................ board
    def attach(self, board: Any) -> None:
        """Record every operation ``board`` performs from now on.

        The board's identity (serial, chip, firmware, address, geometry) goes into every
        run started while it is attached, and into the root attributes of a file that has
        none yet: a file continued on another board keeps its original provenance, and its
        new runs say which board they ran on."""
        self._writable()
        self.detach()
        self._board_attrs = board_attributes(board)
        if "board_serial" not in self.attrs:
            self.attrs.update(self._board_attrs)
        self._commit()
        board.add_observer(self._observe, intent=self._intent)
        self._board = board

    def detach(self) -> None:
        """Stop recording the attached board (no-op if none)."""
        if self._board is not None:
            self._board.remove_observer(self._observe)
            self._board = None
            self._board_attrs = {}

    def _intent(self, op: str, args: dict[str, Any]) -> None:
        """Write-ahead: a ``sent`` record of what may be applied, committed to disk before
        the request leaves the host (see :func:`memhw.session.ledger.pulse_ledger`)."""
        self._observe("sent", {"op": op, **args}, None)
        with self._lock:
            if not self._closed:
                self._commit()

    def _observe(self, op: str, args: dict[str, Any], result: Any) -> None:
        t = time.time()
        with self._lock:
            if self._closed:
                return
            writer = self._ops.get(op)
            if writer is None:
                table = Table(f"/log/{op}")
                self._store.tables[table.path] = table  # type: ignore[union-attr]
                writer = self._ops[op] = _OpWriter(table, {}, 0, {})
            fields = dict(args)
            if result is not None:
                fields["result"] = result
            writer.record(self._seq, t, fields)
            self._seq += 1
            if (time.monotonic() - self._last_commit > self.flush_interval
                    or sum(w.table.pending_bytes for w in self._ops.values()) > self.flush_bytes):
                self._commit()

    # ........................................................ runs
    def run(self, kind: str, **attrs: Any) -> Run:
        """Start a run: a group ``/runs/NNNN_<kind>`` with ``attrs`` (committed at once).

        Parameters
        ----------
        kind : str
            ``"program"``, ``"calibration"``, ``"sweep"``, ``"lstm"``... (letters, digits, ``_``, ``-``).
        **attrs
            Parameters of the procedure (numbers, strings, arrays, JSON-able values).
        """
        store = self._writable()
        if not _KIND.match(kind):
            raise ValueError(f"run kind {kind!r}: use letters, digits, '_' and '-'")
        index = len(self._runs)
        name = f"{index:04d}_{kind}"
        values = {"kind": kind, "index": index, "status": "running", "start_time": _now(), **self._provenance,
                  **self._board_attrs, **attrs}
        for value in values.values():
            encode_attr(value)
        table = Table(f"/runs/{name}")
        store.tables[table.path] = table
        store.new_groups[table.path] = values
        run = self._runs[name] = Run(self, name, dict(values), table)
        self._commit()
        return run

    def runs(self, kind: str | None = None) -> list[Run]:
        """The runs (of ``kind``), oldest first."""
        return [r for r in self._runs.values() if kind is None or r.kind == kind]

    def last_run(self, kind: str) -> Run | None:
        """The most recent run of ``kind`` (e.g. to resume an interrupted programming), or None."""
        runs = self.runs(kind)
        return runs[-1] if runs else None

    @property
    def complete(self) -> bool:
        """True for a file whose writer closed it cleanly."""
        return bool(self.attrs.get("complete", False))

    # ........................................................ log
    @property
    def log(self) -> OpLog:
        """The operation log (commits pending records first when writing)."""
        if self.writable:
            self._commit()
        f = self._file()
        tables = {}
        for op, w in self._ops.items():
            if w.table.lengths:
                tables[op] = OpTable(f["log"][op], dict(w.table.lengths))
        return OpLog(tables)

    # ........................................................ closing
    def flush(self) -> None:
        """Commit everything queued, including rows appended to open runs since their last flush."""
        with self._lock:
            for run in self._runs.values():
                run._table.promote()
            self._commit()

    def close(self, status: str = "complete", *, error: str | None = None) -> None:
        """Flush, close open runs and the file; ``complete`` becomes True only for status "complete"."""
        if self._closed:
            return
        if self._store is None:
            self._closed = True
            self._ro.close()  # type: ignore[union-attr]
            return
        with self._lock:
            try:
                self.detach()
                for run in self._runs.values():
                    run._table.promote()
                    if run.status == "running":
                        run.attrs.update(status=status, end_time=_now())
                        if error is not None:
                            run.attrs["error"] = error
                self.attrs.update(complete=status == "complete", status=status, end_time=_now())
                if error is not None:
                    self.attrs["error"] = error
                self._store.commit(final=True)
            except BaseException:
                self._store.close()
                raise
            finally:
                self._closed = True


def load(path: str | os.PathLike) -> Session:
    """Open a session file read-only.

    Returns
    -------
    Session
        With ``attrs``, ``runs()``, ``last_run(kind)``, ``log``; close it (or
        use ``with``) when done.

    Raises
    ------
    SessionFileError
        Missing, not HDF5, truncated/corrupt, or not a memhw session.
    """
    return Session(path, "r")
