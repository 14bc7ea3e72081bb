"""The Board: typed operations in SI units over a :class:`~memhw.link.Link`.

Every public method validates its arguments against the board's announced
geometry and limits *before* anything is sent (:class:`~memhw.errors.LimitError`),
converts SI quantities to codes, and splits work into as few requests as the
board's maximum message size allows.

Safety limits are the board's absolute maxima (``abs_limits``) or tighter ones
from a limits file (:mod:`memhw.limits`), enforced here and, on boards of
protocol 1.3 and later, by the firmware too (SET_LIMITS). Pulse batches always
ask for progress frames, so when a batch fails (board reset, lost link, abort)
the error says exactly which devices were applied (:class:`PulseOutcome`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import firmware_protocol as fp

from .codes import CodeConverter
from .errors import (
    BoardError,
    LimitError,
    MemhwError,
    OperationAborted,
    ProtocolError,
    TransportError,
    VersionMismatch,
)
from .info import BoardInfo, Limits
from .link import Link

__all__ = ["Board", "PulseOutcome"]

log = logging.getLogger("memhw.board")
#: first protocol minor with SET_LIMITS and boot-id checked requests
_MINOR_SET_LIMITS = 3

ArrayLike = Any
Observer = Callable[[str, dict[str, Any], Any], None]
_GROUP = fp.SCHEMA.enums["LineGroup"]
#: bytes of request payload that are not per-device data (headers of arrays etc.)
_REQUEST_SLACK = 64


def _as_float(name: str, value: ArrayLike, check: bool = True) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise LimitError(f"{name}: not a number or array of numbers: {value!r}") from None
    if check:
        _check_finite(name, arr)
    return arr


def _check_finite(name: str, arr: np.ndarray) -> None:
    if not np.all(np.isfinite(arr)):
        raise LimitError(f"{name}: contains NaN or infinity")


def _selected(name: str, value: ArrayLike, mask: np.ndarray) -> np.ndarray:
    """The values of a scalar or per-device array at the selected devices
    (values elsewhere are ignored, NaN included)."""
    arr = _as_float(name, value, check=False)
    try:
        out = np.broadcast_to(arr, mask.shape)[mask]
    except ValueError:
        raise LimitError(f"{name}: shape {arr.shape} does not fit {mask.shape}") from None
    _check_finite(name, out)
    return out


def _check_range(name: str, arr: np.ndarray, lo: float, hi: float, unit: str) -> None:
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr.min() if arr.min() < lo else arr.max()
        raise LimitError(f"{name}: {bad:g} {unit} is outside the limit [{lo:g}, {hi:g}] {unit}")


def _compact(codes: np.ndarray) -> np.ndarray:
    """Per-device codes -> one broadcast code when they are all equal."""
    return codes[:1] if codes.size and np.all(codes == codes[0]) else codes


def _rows_text(rows: np.ndarray) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    if rows.size == 0:
        return "none"
    parts, start, prev = [], int(rows[0]), int(rows[0])
    for r in map(int, rows[1:]):
        if r != prev + 1:
            parts.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = r
        prev = r
    parts.append(f"{start}-{prev}" if prev > start else f"{start}")
    return ", ".join(parts)


@dataclass
class PulseOutcome:
    """What a pulse batch that failed part-way did, device by device.

    Attached as ``exc.outcome`` to the error a failed :meth:`Board.pulse_set` /
    :meth:`Board.pulse_reset` raises (``BoardResetError``, ``OperationAborted``,
    ``LinkTimeout``, ``Disconnected``...).

    Attributes
    ----------
    op : str
        ``"pulse_set"`` or ``"pulse_reset"``.
    applied : bool (rows, cols)
        Pulsed exactly once, confirmed by the board (progress frames or reply).
    uncertain : bool (rows, cols)
        Sent but not confirmed: pulsed once or not at all (never twice: a
        rebooted board refuses the retry with BOOT_MISMATCH). Re-read them.
    not_applied : bool (rows, cols)
        Certainly not pulsed (never sent, or after the row an abort stopped at).
    pulses : int
        Pulses confirmed (``applied.sum()``).
    """

    op: str
    applied: np.ndarray
    uncertain: np.ndarray
    not_applied: np.ndarray

    @property
    def pulses(self) -> int:
        return int(self.applied.sum())

    def summary(self) -> str:
        rows = lambda m: _rows_text(np.flatnonzero(m.any(axis=1)))  # noqa: E731
        return (f"{self.op}: applied (confirmed) {int(self.applied.sum())} devices in rows {rows(self.applied)}; "
                f"unconfirmed {int(self.uncertain.sum())} devices in rows {rows(self.uncertain)} "
                f"(each pulsed at most once); not applied {int(self.not_applied.sum())} devices in rows "
                f"{rows(self.not_applied)}")


def _with_outcome(exc: MemhwError, outcome: PulseOutcome) -> MemhwError:
    """The same kind of error, its message extended by what was and was not applied."""
    text = outcome.summary()
    if isinstance(exc, BoardError):
        new: MemhwError = type(exc)(exc.status, exc.status_name, f"{exc.message}; {text}", exc.reply)
    else:
        try:
            new = type(exc)(f"{exc}; {text}")
        except TypeError:
            new = exc
    new.outcome = outcome  # type: ignore[attr-defined]
    return new


class Board:
    """A connected measurement board with its crossbar array.

    Use :func:`memhw.connect` to make one. Physical quantities are SI (V, A, S,
    s); arrays are (rows, cols). Closing (or leaving a ``with`` block) grounds
    every line.
    """

    def __init__(self, link: Link, address: str, calibration: Any = None, limits: Any = None):
        self.link = link
        self.address = address
        self._closed = False
        self._observers: list[Observer] = []
        self._limits_source: Any = None
        self._handshake()
        self.codes = CodeConverter(self.info)
        if calibration is not None:
            self.calibration = calibration
        if limits is not None:
            self.set_limits(limits)

    def _handshake(self) -> None:
        """HELLO: check the version, learn geometry, limits and the boot id."""
        link, address = self.link, self.address
        try:
            hello = link.request("HELLO", {"host_major": fp.MAJOR, "host_minor": fp.MINOR})
        except ProtocolError:
            if link.last_version not in (None, fp.MAJOR):  # another major's HELLO layout
                raise VersionMismatch(f"{address}: board speaks protocol {link.last_version}.x, "
                                      f"this memhw speaks {fp.MAJOR}.{fp.MINOR}") from None
            raise
        if hello["major"] != fp.MAJOR:
            raise VersionMismatch(
                f"{address}: board speaks protocol {hello['major']}.{hello['minor']}, "
                f"this memhw speaks {fp.MAJOR}.{fp.MINOR}; update the "
                + ("firmware" if hello["major"] < fp.MAJOR else "host software")
            )
        self.info = BoardInfo.from_hello(address, hello)
        #: the board's absolute maxima (HELLO); ``info.limits`` may be tighter
        self.abs_limits: Limits = self.info.limits
        link.max_payload = max(fp.SCHEMA.min_frame_payload, min(self.info.max_frame, 0xFFFF))
        # The boot id of the HELLO reply becomes the reference: a later reply
        # with another one means the board rebooted under us (and requests carry it).
        link.boot_id = link.last_boot_id

    # ---------------------------------------------------------------- limits
    @property
    def limits(self) -> Limits:
        """The limits in force (``info.limits``): the board's maxima or tighter."""
        return self.info.limits

    def set_limits(self, limits: Any) -> Limits:
        """Tighten the safety limits for this session.

        Parameters
        ----------
        limits : Limits, mapping, path or None
            A :class:`~memhw.info.Limits`, a mapping of some of ``v_read``,
            ``v_set``, ``v_reset``, ``v_gate``, ``width_max``, the path of a
            limits file (TOML, :mod:`memhw.limits`), or None (the board's maxima).

        Returns
        -------
        Limits
            The limits now in force (also ``board.info.limits``).

        Raises
        ------
        LimitError
            Anything looser than the board's absolute maxima, or a bad file
            (nothing changed, nothing sent).
        """
        from .limits import KEYS, load_limits, tighten

        base = self.abs_limits
        if limits is None:
            new = base
        elif isinstance(limits, Limits):
            new = tighten(base, {k: getattr(limits, k) for k in KEYS})
        elif isinstance(limits, dict):
            new = tighten(base, limits)
        elif isinstance(limits, (str, os.PathLike)):
            new = load_limits(limits, base, serial=self.info.serial)
        else:
            raise LimitError(f"limits: expected Limits, a mapping, a path or None, got {type(limits).__name__}")
        if self.info.protocol >= (fp.MAJOR, _MINOR_SET_LIMITS):
            i = self.info
            self.link.request("SET_LIMITS", {
                "read_max": round(new.v_read / i.dac_line_lsb), "set_max": round(new.v_set / i.dac_line_lsb),
                "reset_max": round(new.v_reset / i.dac_line_lsb), "gate_max": round(new.v_gate / i.dac_gate_lsb),
                "width_max": min(i.width_max_code, round((new.width_max - i.width_offset) / i.width_lsb))})
        elif new != base:
            log.warning("board %s speaks protocol %d.%d (< 1.%d): the tighter limits are enforced by the host only",
                        self.info.serial, *self.info.protocol, _MINOR_SET_LIMITS)
        self.info = dataclasses.replace(self.info, limits=new)
        self.codes = CodeConverter(self.info, self.codes.calibration)
        self._limits_source = None if limits is None else new
        self._notify("set_limits", dataclasses.asdict(new))
        return new

    # ------------------------------------------------------------- recovery
    def reconnect(self, *, reopen: bool = True) -> "Board":
        """Re-establish the session after a board reset or a lost link.

        Reopens the transport (``reopen``), forgets decoder and reassembly
        state, handshakes again (new HELLO: the new boot id becomes the
        reference), checks it is the same board (serial), and re-applies the
        calibration and the tighter limits. DC levels are not restored: every
        line is grounded after a reboot.

        Raises
        ------
        TransportError
            The connection cannot be reopened, or another board answered.
        """
        serial, old_boot = self.info.serial, self.link.boot_id
        calibration, limits = self.codes.calibration, self._limits_source
        if reopen:
            self.link.transport.reopen()
        self.link.reset()
        self._handshake()
        if self.info.serial != serial:
            raise TransportError(f"{self.address}: reconnected to board {self.info.serial!r}, "
                                 f"expected {serial!r}; not resuming on another board")
        self.codes = CodeConverter(self.info, calibration)
        self._closed = False
        if limits is not None:
            self.set_limits(limits)
        new_boot = self.link.boot_id
        log.info("reconnected to %s (boot id %s -> %s)", serial, old_boot, new_boot)
        self._notify("reconnect", {"old_boot_id": -1 if old_boot is None else old_boot, "boot_id": new_boot,
                                   "rebooted": old_boot is not None and old_boot != new_boot})
        return self

    # ---------------------------------------------------------- calibration
    @property
    def calibration(self) -> Any:
        """The applied :class:`memhw.calibration.BoardCalibration`, or None (nominal
        transfer functions). Assign one to apply it (checked against this board's
        serial and geometry: :class:`~memhw.errors.CalibrationError`), None to drop it."""
        return self.codes.calibration

    @calibration.setter
    def calibration(self, calibration: Any) -> None:
        self.codes = CodeConverter(self.info, calibration)

    # ------------------------------------------------------------ observers
    def add_observer(self, observer: "Observer") -> None:
        """Call ``observer(op, args, result)`` after every operation the board
        performs (``op`` is the method name, ``args`` its SI arguments, ``result``
        what it returned); used by :class:`memhw.Session` to record a run."""
        self._observers.append(observer)

    def remove_observer(self, observer: "Observer") -> None:
        """Stop calling ``observer``."""
        self._observers.remove(observer)

    def _notify(self, op: str, args: dict[str, Any], result: Any = None) -> None:
        # an observer (e.g. a session on a full disk) must never turn an
        # operation the board performed into an error, nor hide the real one
        for observer in self._observers:
            try:
                observer(op, args, result)
            except Exception:  # noqa: BLE001
                log.exception("observer %r failed while recording %s", observer, op)

    # ---------------------------------------------------------------- basics
    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the array."""
        return self.info.shape

    def __enter__(self) -> "Board":
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None and not isinstance(exc, Exception):
            # Ctrl+C (KeyboardInterrupt) in the middle of an operation: stop it now
            try:
                self.link.send_only("ABORT")
            except MemhwError:
                pass
        try:
            self.close()
        except MemhwError:
            if exc is None:
                raise
            log.warning("closing %s after %s failed", self.address, type(exc).__name__, exc_info=True)

    def __repr__(self) -> str:
        i = self.info
        return f"<Board {i.serial} {i.rows}x{i.cols} at {self.address!r} fw {i.firmware!r}>"

    def close(self) -> None:
        """Ground every line and release the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.ground_all()
        except MemhwError:
            # The link or the board's session is gone: ABORT (accepted across reboots)
            # grounds every line if the board can still hear us.
            try:
                self.link.send_only("ABORT")
            except MemhwError:
                pass
            raise
        finally:
            self.link.transport.close()

    def status(self) -> dict[str, Any]:
        """The board's state, last error and counters (STATUS)."""
        return self.link.request("STATUS")

    def ground_all(self) -> None:
        """Ground every row, column and gate line."""
        self.link.request("GROUND_ALL", {"mode": 0})
        self._notify("ground_all", {})

    def float_all(self) -> None:
        """Disconnect (float) every line."""
        self.link.request("GROUND_ALL", {"mode": 1})
        self._notify("float_all", {})

    def abort(self) -> None:
        """Ask the board to stop the running operation and ground all lines.

        Safe to call from another thread while a long operation is in flight;
        that operation then raises :class:`~memhw.errors.OperationAborted`.
        When nothing is running it grounds the lines. The request is sent
        without waiting for its answer, which the link drops as stale.
        """
        self.link.send_only("ABORT")

    def wait(self, seconds: float) -> float:
        """Let the board idle, every line grounded, for ``seconds`` (0..3600),
        e.g. so programmed devices relax before a re-verify. Returns the time waited."""
        s = float(_as_float("seconds", seconds))
        if not 0.0 <= s <= 3600.0:
            raise LimitError(f"seconds: {s:g} s is outside [0, 3600] s")
        r = self.link.request("WAIT", {"seconds": s}, timeout=self.link.timeout + s)
        self._notify("wait", {"seconds": s}, float(r["waited"]))
        return float(r["waited"])

    # ---------------------------------------------------------- DC levels
    def apply(
        self,
        rows: ArrayLike | None = None,
        cols: ArrayLike | None = None,
        gates: ArrayLike | None = None,
        *,
        row_mask: ArrayLike | None = None,
        col_mask: ArrayLike | None = None,
        gate_mask: ArrayLike | None = None,
    ) -> None:
        """Set DC levels on rows, columns and/or gates.

        Parameters
        ----------
        rows, cols, gates : float or array, optional
            Volts. A scalar goes to every line of the group (or to the lines
            of its mask), an array gives each line its own level; None leaves
            the group unchanged.
        row_mask, col_mask, gate_mask : bool array, optional
            With a scalar level: only these lines change.

        Raises
        ------
        LimitError
            Wrong shape, NaN, or a level beyond the board's limits (nothing sent).
        """
        i = self.info
        plan = []
        for name, value, mask, n, group, hi, lo in (
            ("rows", rows, row_mask, i.rows, "ROWS", i.limits.v_read, -i.limits.v_read),
            ("cols", cols, col_mask, i.cols, "COLS", i.limits.v_read, -i.limits.v_read),
            ("gates", gates, gate_mask, i.cols, "GATES", i.limits.v_gate, 0.0),
        ):
            if value is None:
                if mask is not None:
                    raise LimitError(f"{name}_mask given without a {name} level")
                continue
            arr = _as_float(name, value)
            _check_range(name, arr, lo, hi, "V")
            if arr.ndim and mask is not None:
                raise LimitError(f"{name}_mask only goes with a scalar level")
            if arr.ndim and arr.shape != (n,):
                raise LimitError(f"{name}: shape {arr.shape}, expected ({n},)")
            per_line = self.codes.dac_codes(group, arr, v_max=hi, v_min=lo)  # calibrated per channel
            if arr.ndim == 0:
                m = np.ones(n, bool) if mask is None else self._mask1d(f"{name}_mask", mask, n)
                if m.all() and np.any(per_line != per_line[0]):
                    plan.append({"group": _GROUP[group], "value": 0, "mask": np.zeros(0, np.uint8),
                                 "codes": per_line})
                    continue
                for code in np.unique(per_line[m]) if m.any() else per_line[:1]:
                    sel = m & (per_line == code) if m.any() else m
                    plan.append({"group": _GROUP[group], "value": int(code),
                                 "mask": np.packbits(sel, bitorder="little"), "codes": np.zeros(0, np.int16)})
                continue
            plan.append({"group": _GROUP[group], "value": 0, "mask": np.zeros(0, np.uint8), "codes": per_line})
        for fields in plan:
            self.link.request("SET_LEVELS", fields)
        self._notify("apply", {"rows": rows, "cols": cols, "gates": gates, "row_mask": row_mask,
                               "col_mask": col_mask, "gate_mask": gate_mask})

    @staticmethod
    def _mask1d(name: str, mask: ArrayLike, n: int) -> np.ndarray:
        m = np.asarray(mask)
        if m.dtype != bool or m.shape != (n,):
            raise LimitError(f"{name}: expected a boolean array of shape ({n},), got {m.dtype} {m.shape}")
        return m

    # --------------------------------------------------------------- reads
    def read_currents(self, gain: int | str | ArrayLike = "auto", average: int = 1) -> np.ndarray:
        """Read every column's current in parallel at the present DC levels.

        Parameters
        ----------
        gain : "auto", int or (cols,) ints
            TIA gain index (into ``info.tia_gains``) or auto-ranging.
        average : int
            ADC samples averaged per column.

        Returns
        -------
        ndarray, shape (cols,)
            Amperes into each column (positive for rows above the column level).
        """
        average = self._check_average(average)
        r = self.link.request("READ_CURRENTS", {"gains": self._gain(gain), "average": average})
        currents = self.codes.currents(r["codes"], r["gains"], average)
        self._notify("read_currents", {"gain": gain, "average": average}, currents)
        return currents

    def vmm(self, v: ArrayLike, gain: int | str | ArrayLike = "auto") -> np.ndarray:
        """Vector-matrix multiply in the array: drive the rows, read the columns.

        Parameters
        ----------
        v : array, shape (rows,) or (n, rows)
            Row voltages, |v| <= ``info.limits.v_read``.
        gain : "auto", int or (cols,) ints
            TIA gains; "auto" ranges every sample.

        Returns
        -------
        ndarray, shape (cols,) or (n, cols)
            Column currents in amperes; for an ideal array ``v @ G``.
        """
        i = self.info
        arr = _as_float("v", v)
        single = arr.ndim == 1
        if arr.ndim not in (1, 2) or arr.shape[-1] != i.rows:
            raise LimitError(f"v: shape {arr.shape}, expected ({i.rows},) or (n, {i.rows})")
        _check_range("v", arr, -i.limits.v_read, i.limits.v_read, "V")
        arr = arr.reshape(-1, i.rows)
        gains = self._gain(gain)
        codes = self.codes.dac_codes("ROWS", arr, v_max=i.limits.v_read, v_min=-i.limits.v_read)
        per_request = max(1, (i.max_message - _REQUEST_SLACK) // (2 * i.rows))
        out = np.empty((len(arr), i.cols))
        for s in range(0, len(arr), per_request):
            block = codes[s : s + per_request]
            r = self.link.request("VMM", {"n": len(block), "gains": gains, "inputs": block})
            g = r["gains"].reshape(-1, i.cols)
            out[s : s + len(block)] = self.codes.currents(r["codes"].reshape(-1, i.cols), g)
        self._notify("vmm", {"v": arr, "gain": gain}, out)
        return out[0] if single else out

    def read_conductance(
        self, v_read: float = 0.2, average: int = 1, gain: int | str | ArrayLike = "auto",
        rows: slice | None = None,
    ) -> np.ndarray:
        """Conductance map: drive one row at a time at ``v_read``, read all columns.

        Parameters
        ----------
        v_read : float
            Read voltage, V (0 < v_read <= limit).
        average : int
            Samples averaged per device.
        gain : "auto", int or (cols,) ints
        rows : slice, optional
            Only these rows (default: all).

        Returns
        -------
        ndarray, shape (n_rows, cols)
            Siemens, I / V_read.
        """
        i = self.info
        vr = float(_as_float("v_read", v_read))
        if not 0 < vr <= i.limits.v_read:
            raise LimitError(f"v_read: {vr:g} V is outside (0, {i.limits.v_read:g}] V")
        average = self._check_average(average)
        start, stop, step = (rows or slice(None)).indices(i.rows)
        if step != 1 or stop <= start:
            raise LimitError(f"rows: need a non-empty contiguous slice, got {rows!r}")
        code = int(self.codes.line_codes(vr))
        r = self.link.request("READ_MAP", {"v_read": code, "row_start": start, "row_count": stop - start,
                                           "average": average, "gains": self._gain(gain)})
        n = stop - start
        currents = self.codes.currents(r["codes"].reshape(n, i.cols), r["gains"].reshape(-1, i.cols))
        v_rows = self.codes.dac_volts("ROWS", np.full(i.rows, code))[start:stop, None]  # per row when calibrated
        g = currents / v_rows
        self._notify("read_conductance", {"v_read": vr, "average": average, "gain": gain,
                                          "row_start": start, "row_stop": stop}, g)
        return g

    # -------------------------------------------------------------- pulses
    def pulse_set(self, mask: ArrayLike, v: ArrayLike = 2.5, gate: ArrayLike = 1.0, width: ArrayLike = 1e-6,
                  *, progress: Callable[[int, int], None] | None = None) -> int:
        """SET the devices of ``mask``: column pulse of ``v`` through gate ``gate``.

        Parameters
        ----------
        mask : bool array (rows, cols)
            Devices to pulse.
        v, gate, width : float or (rows, cols) array
            Amplitude (V), gate voltage (V, sets the compliance) and width (s);
            only values at selected devices matter.
        progress : callable(rows_done, rows_total), optional

        Returns
        -------
        int
            Pulses applied.
        """
        return self._pulses("PULSE_SET", mask, v, gate, width, self.info.limits.v_set, progress)

    def pulse_reset(self, mask: ArrayLike, v: ArrayLike = 1.7, gate: ArrayLike = 5.0, width: ArrayLike = 1e-6,
                    *, progress: Callable[[int, int], None] | None = None) -> int:
        """RESET the devices of ``mask``: row pulse of ``v`` with the gate at ``gate``.

        Parameters and return value as :meth:`pulse_set`.
        """
        return self._pulses("PULSE_RESET", mask, v, gate, width, self.info.limits.v_reset, progress)

    def _pulses(self, message: str, mask: ArrayLike, v: ArrayLike, gate: ArrayLike, width: ArrayLike,
                v_max: float, progress: Callable[[int, int], None] | None) -> int:
        i = self.info
        m = np.asarray(mask)
        if m.dtype != bool or m.shape != i.shape:
            raise LimitError(f"mask: expected a boolean array of shape {i.shape}, got {m.dtype} {m.shape}")
        amp, gates, widths = _selected("v", v, m), _selected("gate", gate, m), _selected("width", width, m)
        lsb = i.dac_line_lsb
        _check_range("v", amp, lsb, v_max, "V")
        _check_range("gate", gates, 0.0, i.limits.v_gate, "V")
        _check_range("width", widths, i.limits.width_min, i.limits.width_max, "s")
        dev_rows, dev_cols = np.nonzero(m)  # channels: SET drives columns, RESET rows, gates per column
        amp_c = self.codes.dac_codes("COLS" if message == "PULSE_SET" else "ROWS", amp,
                                     dev_cols if message == "PULSE_SET" else dev_rows, v_max=v_max, v_min=lsb)
        gate_c = self.codes.dac_codes("GATES", gates, dev_cols, v_max=i.limits.v_gate, v_min=0.0)
        width_c = np.clip(self.codes.width_codes(widths), 0, i.width_max_code)
        rows_with = np.flatnonzero(m.any(axis=1))
        if rows_with.size == 0:
            return 0
        # split into row blocks whose request fits the board's message size
        counts = m.sum(axis=1)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        row_bytes = i.cols / 8 + 6 * counts  # packed mask + amplitude, gate, width codes
        budget = i.max_message - _REQUEST_SLACK
        first, end_all = int(rows_with[0]), int(rows_with[-1]) + 1
        total_rows = end_all - first
        applied = 0
        start = first
        done_to = first  # rows [first, done_to) confirmed applied
        args = {"mask": m, "v": v, "gate": gate, "width": width}
        try:
            while start < end_all:
                stop, size = start, 0.0
                while stop < end_all and (stop == start or size + row_bytes[stop] <= budget):
                    size += row_bytes[stop]
                    stop += 1
                sel = slice(offsets[start], offsets[stop])
                fields = {
                    "row_start": start, "row_count": stop - start,
                    "mask": np.packbits(m[start:stop].reshape(-1), bitorder="little"),
                    "amplitude": _compact(amp_c[sel]), "gate": _compact(gate_c[sel]),
                    "width": _compact(width_c[sel]),
                }
                base = start

                def on_progress(rep: dict, base: int = base) -> None:
                    nonlocal done_to
                    done_to = max(done_to, base + int(rep["rows_done"]))
                    if progress is not None:
                        progress(done_to - first, total_rows)

                # always ask for progress: if the batch fails, the rows done are known
                trips = self.link.stats.round_trips
                r = self.link.request(message, fields, progress=on_progress)
                applied += r["pulses"]
                start = done_to = stop
        except MemhwError as exc:
            if isinstance(exc, OperationAborted) and exc.reply is not None:
                done_to = max(done_to, start + int(exc.reply.get("rows_done", 0)))
                sure_to = done_to  # the board stopped there: nothing after it was applied
            elif self.link.stats.round_trips == trips:
                sure_to = done_to = start  # refused before anything was sent
            else:
                sure_to = stop  # the block in flight may have gone further than its progress said
            rows = np.arange(i.rows)[:, None]
            outcome = PulseOutcome(message.lower(), applied=m & (rows < done_to),
                                   uncertain=m & (rows >= done_to) & (rows < sure_to),
                                   not_applied=m & (rows >= sure_to))
            err = _with_outcome(exc, outcome)
            self._notify(message.lower(), {**args, "status": type(exc).__name__, "error": str(err),
                                           "applied": outcome.applied, "uncertain": outcome.uncertain},
                         outcome.pulses)
            raise err from exc
        self._notify(message.lower(), args, applied)
        return applied

    # ------------------------------------------------------------- helpers
    def _gain(self, gain: int | str | ArrayLike) -> np.ndarray:
        try:
            return self.codes.gain_field(gain)
        except ValueError as exc:
            raise LimitError(str(exc)) from None

    @staticmethod
    def _check_average(average: int) -> int:
        if isinstance(average, bool) or not isinstance(average, (int, np.integer)) or not 1 <= average <= 0xFFFF:
            raise LimitError(f"average must be an integer in 1..65535, got {average!r}")
        return int(average)
