"""The Board: typed operations in SI units over a :class:`~memhw.link.Link`.

Every message of the protocol has one method here, and every method

* validates its arguments against the board's announced geometry and limits *before*
  anything is sent (:class:`~memhw.errors.LimitError`, one line, nothing sent);
* checks the board offers the message (its protocol version and its opcode list, from
  one gate: :meth:`Board.supports`, else :class:`~memhw.errors.NotSupported`);
* converts SI quantities to codes (:mod:`memhw.codes`, calibrated when a calibration is
  applied) and splits the work into as few requests as the board's message size allows;
* tells its observers what it did (:meth:`Board.add_observer`; a session file records
  it), and, before a pulse batch leaves the host, what it is about to do (write-ahead).

Safety limits are the board's absolute maxima (``abs_limits``) or tighter ones from a
limits file (:mod:`memhw.limits`), enforced here and again by the board (SET_LIMITS).
Pulse batches always ask for progress frames, so when a batch fails (session lost, link
lost, abort) the error says exactly which devices were applied (:class:`PulseOutcome`).
"""

from __future__ import annotations

import dataclasses
import getpass
import itertools
import logging
import os
import re
import secrets
import socket
from typing import Any, Callable

import numpy as np

import firmware_protocol as fp

from ._version import __version__
from .algorithms.program_codec import encode_config
from .algorithms.tuning import Reason, TuningConfig
from .codes import CodeConverter
from .conversions import AUTO_GAIN, READ_VOLTAGE, LimitCodes, conductance_codes, conductances
from .errors import (
    BoardBusy,
    BoardError,
    LimitError,
    MemhwError,
    NotSupported,
    OperationAborted,
    ProtocolError,
    SessionLost,
    TransportError,
    VersionMismatch,
)
from .checks import as_float, check_finite, check_int, check_range, compact, selected
from .info import BoardInfo, Limits
from .link import Link
from .netspec import NetworkSpec, TileSpec
from .outcomes import BoardStatus, NetworkRun, OnBoardProgram, PulseOutcome, ReferenceReading, with_outcome

__all__ = ["Board", "BoardStatus", "PulseOutcome", "ReferenceReading", "OnBoardProgram", "default_client"]

log = logging.getLogger("memhw.board")

ArrayLike = Any
Observer = Callable[[str, dict[str, Any], Any], None]
Intent = Callable[[str, dict[str, Any]], None]
_GROUP = fp.SCHEMA.enums["LineGroup"]
_MODE = fp.SCHEMA.enums["HelloMode"]
_ALGORITHM = fp.SCHEMA.enums["TuningAlgorithm"]
#: bytes of request payload that are not per-device data (headers of arrays etc.)
_REQUEST_SLACK = 64
#: bytes one more request costs on the wire (frames of request and reply, array counts)
_REQUEST_OVERHEAD = 90
#: progress frames a compact pulse batch asks for (enough to bound what a failure leaves unknown)
_PROGRESS_FRAMES = 4
#: progress frames a network run asks for when the caller shows progress
_PROGRESS_SHOWN = 20
_PULSE_KIND = fp.SCHEMA.enums["PulseKind"]
#: what each message does, for NotSupported errors
_PURPOSE = {"PROGRAM": "on-board programming", "READ_REFERENCE": "self-calibration against reference resistors",
            "READ_DAC": "DAC read-back", "SET_LIMITS": "firmware-enforced limits", "WAIT": "idling on the board"}
#: longest WAIT the protocol allows, s
WAIT_MAX = 3600.0


def _input_codes(values: np.ndarray) -> tuple[np.float32, np.ndarray]:
    """RUN_NETWORK inputs: a binary32 scale and int16 codes, ``value ≈ code * scale``, the
    largest magnitude at code 32767 (finer than the 16-bit row DACs resolve a drive)."""
    top = float(np.max(np.abs(values))) if values.size else 0.0
    scale = np.float32(top / 32767.0) if top > 0 else np.float32(1.0)
    return scale, np.clip(np.rint(values / float(scale)), -32767, 32767).astype(np.int16)


def _selection(selected: np.ndarray) -> dict[str, np.ndarray]:
    """The ``mask`` and ``index`` fields of a device selection: whichever is shorter."""
    mask = np.packbits(selected, bitorder="little")
    index = fp.pack_offsets(np.flatnonzero(selected))
    if mask.size <= index.size:
        return {"mask": mask, "index": np.zeros(0, np.uint8)}
    return {"mask": np.zeros(0, np.uint8), "index": index}


def default_client() -> str:
    """How this host introduces itself in HELLO: program, user, machine, process and a random
    tag (so a retried HELLO is recognised as this host's own, PROTOCOL.md §7.2)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "?"
    return f"memhw {__version__} {user}@{socket.gethostname()} pid {os.getpid()} #{secrets.token_hex(3)}"[:120]


# --------------------------------------------------------------------- board
class Board:
    """A connected measurement board with its crossbar array.

    Use :func:`memhw.connect` to make one. Physical quantities are SI (V, A, S, s); arrays
    are (rows, cols). Closing (or leaving a ``with`` block) grounds every line and ends the
    session, so the board is free for the next host.

    Parameters
    ----------
    link : Link
    address : str
        What the user connected to (for messages and records).
    calibration : BoardCalibration, optional
    limits : Limits, mapping or path, optional
    takeover : bool
        Take the board over from another host's session (logged by the board): for an
        owner that crashed or hangs. Without it a board in use raises :class:`BoardBusy`.
    client : str, optional
        How this host introduces itself to the board (shown to other hosts).
    """

    def __init__(self, link: Link, address: str, calibration: Any = None, limits: Any = None, *,
                 takeover: bool = False, client: str | None = None):
        self.link = link
        self.address = address
        self.client = client if client is not None else default_client()
        if not isinstance(self.client, str) or len(self.client.encode()) > 120:
            raise LimitError(f"client must be a string of at most 120 bytes, got {client!r:.60}")
        self._closed = False
        self._observers: list[tuple[Observer, Intent | None]] = []
        self._intents = itertools.count(1)
        self._limits_source: Any = None
        #: session state the board forgets in a new session, re-sent by reconnect()
        self._tiles: dict[int, TileSpec] = {}
        #: the board's own conversions are the host's: both nominal, or SET_CALIBRATION accepted
        self._board_holds_calibration = True
        self._network: NetworkSpec | None = None
        self._handshake(_MODE["TAKEOVER"] if takeover else _MODE["NEW"])
        self.codes = CodeConverter(self.info)
        link.on_disconnect = self._resume_after_disconnect
        if calibration is not None:
            self.calibration = calibration
        if limits is not None:
            self.set_limits(limits)

    # ------------------------------------------------------------ session
    def _handshake(self, mode: int, session: int = 0) -> None:
        """HELLO: open (or resume, or take over) the session; learn the board."""
        link, address = self.link, self.address
        try:
            hello = link.request("HELLO", {"host_major": fp.MAJOR, "host_minor": fp.MINOR, "mode": mode,
                                           "session": session, "client": self.client})
        except BoardBusy as exc:
            # the board's own hint names the protocol's TAKEOVER mode: say it in memhw's words
            reason = re.sub(r"[;,.]? *if that host is gone, take the board over \(HELLO mode TAKEOVER\)\.?$", "",
                            exc.message)
            raise BoardBusy(exc.status, exc.status_name,
                            f"{address}: {reason}. If that host is gone, connect with takeover=True "
                            "(command line: --takeover)") from None
        except ProtocolError:
            if link.last_version not in (None, fp.MAJOR):  # another major's HELLO layout
                raise VersionMismatch(f"{address}: board speaks protocol {link.last_version}.x, "
                                      f"this memhw speaks {fp.MAJOR}.{fp.MINOR}; update the "
                                      + ("firmware" if link.last_version < fp.MAJOR else "host software")) from None
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
        link.session = int(link.last_session or 0)

    @property
    def session_id(self) -> int:
        """The board's id of this host's session (from its HELLO reply)."""
        return self.link.session

    def supports(self, message: str) -> bool:
        """Whether this board offers ``message`` (a schema name): its protocol version is
        at least the message's ``since`` version and its HELLO lists the opcode."""
        m = fp.SCHEMA.message(message)
        return tuple(self.info.protocol) >= m.since and m.opcode in self.info.opcodes

    def require(self, message: str) -> None:
        """Raise :class:`~memhw.errors.NotSupported` (naming the board, its version and what the
        message needs) unless this board offers ``message``."""
        if not self.supports(message):
            m = fp.SCHEMA.message(message)
            i = self.info
            raise NotSupported(
                f"board {i.serial} ({i.firmware}, protocol {i.protocol[0]}.{i.protocol[1]}) does not offer "
                f"{message} ({_PURPOSE.get(message, 'this operation')}): needs protocol >= "
                f"{m.since[0]}.{m.since[1]} and a board that implements it")

    def _request(self, message: str, fields: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """The gate every message passes: supported by this board, then sent."""
        self.require(message)
        return self.link.request(message, fields, **kw)

    def _resume_after_disconnect(self) -> bool:
        """The link's hook when the transport failed mid-request: reopen, resume the session.
        True when the very same session was resumed (its reply cache intact)."""
        for attempt in range(1 + self.link.retries):
            try:
                self.link.transport.reopen()
                self.link.reset()
                self._handshake(_MODE["RESUME"], self.link.session)
                break
            except SessionLost as exc:  # the board no longer knows the session: nothing to resume
                log.warning("%s: session %#06x cannot be resumed: %s", self.address, self.link.session, exc)
                return False
            except TransportError as exc:  # the link failed again while reconnecting
                log.info("%s: reconnecting (attempt %d) failed: %s", self.address, attempt + 1, exc)
        else:
            return False
        self._notify("resume", {"session": self.link.session})
        log.info("%s: link lost and restored; session %#06x resumed", self.address, self.link.session)
        return True

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
            A :class:`~memhw.info.Limits`, a mapping of some of ``v_read``, ``v_set``,
            ``v_reset``, ``v_gate``, ``width_max``, the path of a limits file (TOML,
            :mod:`memhw.limits`), or None (the board's maxima).

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
        if self.supports("SET_LIMITS"):
            self._request("SET_LIMITS", LimitCodes.from_limits(new, self.codes.transfer).to_mapping(),
                          resumable=True)
        elif new != base:
            log.warning("board %s does not enforce limits itself: the tighter limits are enforced by the host only",
                        self.info.serial)
        self.info = dataclasses.replace(self.info, limits=new)
        self.codes = CodeConverter(self.info, self.codes.calibration)
        self._limits_source = None if limits is None else new
        self._notify("set_limits", dataclasses.asdict(new))
        return new

    # ------------------------------------------------------------- recovery
    def reconnect(self, *, reopen: bool = True, takeover: bool = False) -> "Board":
        """Re-establish the session after a lost link, a board reboot or a takeover.

        Reopens the transport (``reopen``), forgets decoder and reassembly state, and asks
        the board to resume this host's session (its reply cache intact). If the board no
        longer knows the session (it rebooted, or the session was taken over), opens a new
        one (``takeover`` takes the board from another host). Checks it is the same board
        (serial) and re-applies the calibration and the tighter limits. DC levels are not
        restored: a (re)started session grounds every line.

        Raises
        ------
        TransportError
            The connection cannot be reopened, or another board answered.
        BoardBusy
            Another host's session owns the board now (use ``takeover=True``).
        """
        serial, old_boot, old_session = self.info.serial, self.info.boot_id, self.link.session
        calibration, limits = self.codes.calibration, self._limits_source
        if reopen:
            self.link.transport.reopen()
        self.link.reset()
        resumed = False
        if old_session and not takeover:
            try:
                self._handshake(_MODE["RESUME"], old_session)
                resumed = True
            except SessionLost:
                pass
        if not resumed:
            self._handshake(_MODE["TAKEOVER"] if takeover else _MODE["NEW"])
        if self.info.serial != serial:
            raise TransportError(f"{self.address}: reconnected to board {self.info.serial!r}, "
                                 f"expected {serial!r}; not resuming on another board")
        self._closed = False
        self.codes = CodeConverter(self.info, None)
        if resumed:  # the board kept the session's calibration, tiles and network
            self.codes = CodeConverter(self.info, calibration)
        else:
            self.calibration = calibration
            for ident, tile in list(self._tiles.items()):
                self.define_tile(ident, tile)
            if self._network is not None:
                self.load_network(self._network)
        if limits is not None:
            self.set_limits(limits)
        rebooted = old_boot != self.info.boot_id
        log.info("reconnected to %s (session %#06x %s; boot id %#06x -> %#06x)", serial, self.link.session,
                 "resumed" if resumed else "new", old_boot, self.info.boot_id)
        self._notify("reconnect", {"old_boot_id": old_boot, "boot_id": self.info.boot_id, "rebooted": rebooted,
                                   "resumed": resumed, "session": self.link.session})
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
        codes = CodeConverter(self.info, calibration)  # checks it is this board's
        self._board_holds_calibration = calibration is None and not self.supports("SET_CALIBRATION")
        if self.supports("SET_CALIBRATION"):  # the board converts with it too (PROGRAM, tiles, networks)
            try:
                self._request("SET_CALIBRATION", codes.table.to_fields(), resumable=True)
                self._board_holds_calibration = True
            except BoardError as exc:
                if exc.status_name != "TOO_LARGE":
                    raise
                # a board with small buffers: the host keeps converting for it (as on a 2.0 board)
                log.warning("board %s cannot hold the calibration (%s); the host converts its levels and "
                            "targets, and networks run on the host", self.info.serial, exc.message)
        self.codes = codes
        self._notify("set_calibration", {"calibration": getattr(calibration, "id", None) or "nominal"})

    @property
    def holds_calibration(self) -> bool:
        """True when the board converts its own levels and readings (on-board PROGRAM,
        PULSE_DEVICES levels, tiles, networks) as this host does: both nominal, or the board
        accepted the host's calibration (SET_CALIBRATION); False when the host holds a
        calibration the board could not take (no such message, or no room for it)."""
        return self._board_holds_calibration

    # ------------------------------------------------------------ observers
    def add_observer(self, observer: Observer, *, intent: Intent | None = None) -> None:
        """Call ``observer(op, args, result)`` after every operation the board performs
        (``op`` is the method name, ``args`` its SI arguments, ``result`` what it
        returned); and ``intent(op, args)`` before a pulse batch or on-board programming
        is sent, so a record of what may be applied exists before the first byte leaves
        (``args["intent"]`` is the id the finished operation's record carries too). Used
        by :class:`memhw.Session` to record a run."""
        self._observers.append((observer, intent))

    def remove_observer(self, observer: Observer) -> None:
        """Stop calling ``observer`` (and its intent callback)."""
        self._observers = [(o, i) for o, i in self._observers if o != observer]

    def _notify(self, op: str, args: dict[str, Any], result: Any = None) -> None:
        # an observer (e.g. a session on a full disk) must never turn an
        # operation the board performed into an error, nor hide the real one
        for observer, _ in self._observers:
            try:
                observer(op, args, result)
            except Exception:  # noqa: BLE001
                log.exception("observer %r failed while recording %s", observer, op)

    def _announce(self, op: str, args: dict[str, Any]) -> int:
        """Write-ahead: tell the intent observers what is about to be sent; its id."""
        ident = next(self._intents)
        for _, intent in self._observers:
            if intent is not None:
                try:
                    intent(op, {**args, "intent": ident})
                except Exception:  # noqa: BLE001
                    log.exception("intent observer failed while recording %s", op)
        return ident

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
        """End the session (BYE: every line grounded, the board free for the next host) and
        release the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.link.request("BYE")
            self._notify("bye", {})
        except SessionLost:
            pass  # the session is gone already (rebooted, taken over): nothing of ours is live
        except MemhwError:
            # the link is gone: ABORT grounds every line if the board can still hear us
            try:
                self.link.send_only("ABORT")
            except MemhwError:
                pass
            raise
        finally:
            self.link.transport.close()

    def status(self) -> BoardStatus:
        """The board's state, last error and counters (STATUS)."""
        r = self._request("STATUS", resumable=True)
        status = BoardStatus(busy=bool(r["busy"]), last_status=fp.SCHEMA.status_name(int(r["last_status"])),
                             last_error=r["last_error"], requests=int(r["requests"]), pulses=int(r["pulses"]),
                             uptime=float(r["uptime"]))
        if self._observers:  # (asdict deep-copies: only when someone records it)
            self._notify("status", {}, dataclasses.asdict(status))
        return status

    def ground_all(self) -> None:
        """Ground every row, column and gate line."""
        self._request("GROUND_ALL", {"mode": 0}, resumable=True)
        self._notify("ground_all", {})

    def float_all(self) -> None:
        """Disconnect (float) every line."""
        self._request("GROUND_ALL", {"mode": 1}, resumable=True)
        self._notify("float_all", {})

    def abort(self) -> None:
        """Ask the board to stop the running operation and ground all lines.

        Safe to call from another thread while a long operation is in flight;
        that operation then raises :class:`~memhw.errors.OperationAborted`.
        When nothing is running it grounds the lines. The request is sent
        without waiting for its answer, which the link drops as stale.
        """
        self.require("ABORT")
        self.link.send_only("ABORT")
        self._notify("abort", {})

    def wait(self, seconds: float) -> float:
        """Let the board idle, every line grounded, for ``seconds`` (0..3600),
        e.g. so programmed devices relax before a re-verify. Returns the time waited."""
        s = float(as_float("seconds", seconds))
        if not 0.0 <= s <= WAIT_MAX:
            raise LimitError(f"seconds: {s:g} s is outside [0, {WAIT_MAX:g}] s")
        r = self._request("WAIT", {"seconds": s}, timeout=self.link.timeout + s, resumable=True)
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
            arr = as_float(name, value)
            check_range(name, arr, lo, hi, "V")
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
            self._request("SET_LEVELS", fields)
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
        r = self._request("READ_CURRENTS", {"gains": self._gain(gain), "average": average})
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
        arr = as_float("v", v)
        single = arr.ndim == 1
        if arr.ndim not in (1, 2) or arr.shape[-1] != i.rows:
            raise LimitError(f"v: shape {arr.shape}, expected ({i.rows},) or (n, {i.rows})")
        check_range("v", arr, -i.limits.v_read, i.limits.v_read, "V")
        arr = arr.reshape(-1, i.rows)
        gains = self._gain(gain)
        codes = self.codes.dac_codes("ROWS", arr, v_max=i.limits.v_read, v_min=-i.limits.v_read)
        per_request = max(1, (i.max_message - _REQUEST_SLACK) // (2 * i.rows))
        out = np.empty((len(arr), i.cols))
        for s in range(0, len(arr), per_request):
            block = codes[s : s + per_request]
            r = self._request("VMM", {"n": len(block), "gains": gains, "inputs": block}, resumable=True)
            g = r["gains"].reshape(-1, i.cols)
            out[s : s + len(block)] = self.codes.currents(r["codes"].reshape(-1, i.cols), g)
        self._notify("vmm", {"v": arr, "gain": gain}, out)
        return out[0] if single else out

    def _read_voltage(self, v_read: ArrayLike) -> tuple[float, int]:
        """A read voltage (V) and its row DAC code: above one DAC step, within the read limit."""
        i = self.info
        vr = float(as_float("v_read", v_read))
        if not 0 < vr <= i.limits.v_read:
            raise LimitError(f"v_read: {vr:g} V is outside (0, {i.limits.v_read:g}] V")
        code = int(self.codes.line_codes(vr))
        if code < 1:
            raise LimitError(f"v_read: {vr:g} V is below one DAC step ({i.dac_line_lsb * 1e6:.1f} µV)")
        return vr, code

    def _row_range(self, rows: Any) -> tuple[int, int]:
        """``rows`` (None, a row index or a contiguous slice) -> [start, stop)."""
        n = self.info.rows
        if rows is None:
            return 0, n
        if isinstance(rows, (int, np.integer)) and not isinstance(rows, bool):
            if not -n <= rows < n:
                raise LimitError(f"rows: row {rows} outside 0..{n - 1}")
            r = int(rows) % n
            return r, r + 1
        if not isinstance(rows, slice):
            raise LimitError(f"rows: expected None, a row index or a slice such as slice(0, 4), got {rows!r}")
        try:
            start, stop, step = rows.indices(n)
        except TypeError:
            raise LimitError(f"rows: slice bounds must be integers, got {rows!r}") from None
        if step != 1 or stop <= start:
            raise LimitError(f"rows: need a non-empty contiguous slice of 0..{n - 1}, got {rows!r}")
        return start, stop

    def read_conductance(
        self, v_read: float = READ_VOLTAGE, average: int = 1, gain: int | str | ArrayLike = "auto",
        rows: int | slice | None = None,
    ) -> np.ndarray:
        """Conductance map: drive one row at a time at ``v_read``, read all columns.

        Parameters
        ----------
        v_read : float
            Read voltage, V (at least one DAC step, at most the read limit).
        average : int
            Samples averaged per device.
        gain : "auto", int or (cols,) ints
        rows : int or slice, optional
            One row, or a contiguous slice of rows (default: all).

        Returns
        -------
        ndarray, shape (n_rows, cols)
            Siemens, I / V_read.
        """
        i = self.info
        vr, code = self._read_voltage(v_read)
        average = self._check_average(average)
        start, stop = self._row_range(rows)
        r = self._request("READ_MAP", {"v_read": code, "row_start": start, "row_count": stop - start,
                                       "average": average, "gains": self._gain(gain)}, resumable=True)
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
            Called as rows finish. If it raises, the batch still completes and the
            exception is re-raised afterwards, with ``.outcome`` (all applied).

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

    def _device_mask(self, mask: ArrayLike) -> np.ndarray:
        m = np.asarray(mask)
        if m.dtype != bool or m.shape != self.info.shape:
            raise LimitError(f"mask: expected a boolean array of shape {self.info.shape}, got {m.dtype} {m.shape}")
        return m

    def _pulses(self, message: str, mask: ArrayLike, v: ArrayLike, gate: ArrayLike, width: ArrayLike,
                v_max: float, progress: Callable[[int, int], None] | None) -> int:
        i = self.info
        m = self._device_mask(mask)
        amp, gates, widths = selected("v", v, m), selected("gate", gate, m), selected("width", width, m)
        lsb = i.dac_line_lsb
        check_range("v", amp, lsb, v_max, "V")
        check_range("gate", gates, 0.0, i.limits.v_gate, "V")
        check_range("width", widths, i.limits.width_min, i.limits.width_max, "s")
        compact_path = self.supports("PULSE_DEVICES")
        if not compact_path:
            self.require(message)
        dev_rows, dev_cols = np.nonzero(m)  # channels: SET drives columns, RESET rows, gates per column
        kind = "SET" if message == "PULSE_SET" else "RESET"
        codes = np.zeros((3,) + m.shape, np.int64)  # amplitude, gate, width code per device
        codes[0][m] = self.codes.dac_codes("COLS" if kind == "SET" else "ROWS", amp,
                                           dev_cols if kind == "SET" else dev_rows, v_max=v_max, v_min=lsb)
        codes[1][m] = self.codes.dac_codes("GATES", gates, dev_cols, v_max=i.limits.v_gate, v_min=0.0)
        codes[2][m] = np.clip(self.codes.width_codes(widths), 0, i.width_max_code)
        if not m.any():
            return 0
        op = message.lower()
        args = {"mask": m, "v": v, "gate": gate, "width": width}
        if compact_path:
            # nominal levels: the board converts them per channel with the calibration it holds
            codes[0][m] = self.codes.line_codes(amp)
            codes[1][m] = self.codes.gate_codes(gates)
            if not self._board_holds_calibration:  # it holds none: convert here
                codes[0][m] = self.codes.dac_codes("COLS" if kind == "SET" else "ROWS", amp,
                                                   dev_cols if kind == "SET" else dev_rows, v_max=v_max, v_min=lsb)
                codes[1][m] = self.codes.dac_codes("GATES", gates, dev_cols, v_max=i.limits.v_gate, v_min=0.0)
        plan = self._pulse_requests(kind, m, codes, every_row=progress is not None) if compact_path else self._block_requests(message, m, codes)
        ident = self._announce(op, {"mask": m})
        rows = np.arange(i.rows)[:, None]
        total_rows = int(np.ptp(np.flatnonzero(m.any(axis=1)))) + 1
        first = int(np.flatnonzero(m.any(axis=1))[0])
        applied = np.zeros(m.shape, bool)
        callback_error: list[BaseException] = []
        pulses = 0
        k = 0

        def on_progress(rep: dict, devices: np.ndarray, base: int) -> None:
            applied[devices & (rows < base + int(rep["rows_done"]))] = True
            if progress is not None and not callback_error:
                try:
                    done = int(np.flatnonzero(applied.any(axis=1))[-1]) + 1 - first
                    progress(min(done, total_rows), total_rows)
                except BaseException as exc:  # noqa: BLE001 - re-raised once the batch is done
                    callback_error.append(exc)

        trips = self.link.stats.round_trips
        try:
            for k, (name, fields, devices) in enumerate(plan):
                trips = self.link.stats.round_trips
                # always ask for progress: if the batch fails, the devices done are known
                r = self._request(name, fields, resumable=True,
                                  progress=lambda rep, d=devices, b=fields["row_start"]: on_progress(rep, d, b))
                pulses += r["pulses"]
                applied |= devices
        except MemhwError as exc:
            name, fields, devices = plan[k]
            pending = devices & ~applied
            if isinstance(exc, OperationAborted) and exc.reply is not None:
                applied[devices & (rows < fields["row_start"] + int(exc.reply.get("rows_done", 0)))] = True
                uncertain = np.zeros(m.shape, bool)  # the board stopped there: nothing after it was applied
            elif self.link.stats.round_trips == trips:
                uncertain = np.zeros(m.shape, bool)  # the request in flight never left the host
            else:
                uncertain = pending  # it may have gone further than its progress said
            outcome = PulseOutcome(op, applied=applied.copy(), uncertain=uncertain & ~applied,
                                   not_applied=m & ~applied & ~uncertain)
            err = with_outcome(exc, outcome)
            self._notify(op, {**args, "intent": ident, "status": type(exc).__name__, "error": str(err),
                              "applied": outcome.applied, "uncertain": outcome.uncertain}, outcome.pulses)
            raise err from exc
        self._notify(op, {**args, "intent": ident}, pulses)
        if callback_error:
            raise with_outcome(callback_error[0], PulseOutcome(op, m.copy(), np.zeros_like(m), np.zeros_like(m)))
        return pulses

    def _block_requests(self, message: str, m: np.ndarray, codes: np.ndarray) -> list[tuple[str, dict, np.ndarray]]:
        """PULSE_SET / PULSE_RESET requests: row blocks whose request fits the board's message size."""
        i = self.info
        counts = m.sum(axis=1)
        row_bytes = i.cols / 8 + 6 * counts  # packed mask + amplitude, gate, width codes
        budget = i.max_message - _REQUEST_SLACK
        rows_with = np.flatnonzero(counts)
        start, end_all = int(rows_with[0]), int(rows_with[-1]) + 1
        out = []
        while start < end_all:
            stop, size = start, 0.0
            while stop < end_all and (stop == start or size + row_bytes[stop] <= budget):
                size += row_bytes[stop]
                stop += 1
            block = np.zeros(m.shape, bool)
            block[start:stop] = m[start:stop]
            fields = {"row_start": start, "row_count": stop - start,
                      "mask": np.packbits(m[start:stop].reshape(-1), bitorder="little"),
                      **{name: compact(c[block]) for name, c in zip(("amplitude", "gate", "width"), codes)}}
            out.append((message, fields, block))
            start = stop
        return out

    def _pulse_requests(self, kind: str, m: np.ndarray, codes: np.ndarray,
                        every_row: bool = False) -> list[tuple[str, dict, np.ndarray]]:
        """PULSE_DEVICES requests carrying only what the devices need: the selection as a mask
        or a list (whichever is shorter), per-device values only where they differ, devices
        grouped by pulse width when that is shorter than sending every width. Progress after
        every row when ``every_row`` (a caller shows it), else about ``_PROGRESS_FRAMES`` times."""
        i = self.info
        widths = np.unique(codes[2][m])
        groups = [m]
        if 1 < widths.size <= 4 and 2 * int(m.sum()) > _REQUEST_OVERHEAD * (widths.size - 1):
            groups = [m & (codes[2] == w) for w in widths]
        per_device = 2 * sum(int(np.unique(c[m]).size > 1) for c in codes[:2]) + 3  # value codes + index
        budget = i.max_message - _REQUEST_SLACK
        out = []
        for group in groups:
            rows_with = np.flatnonzero(group.any(axis=1))
            start, end_all = int(rows_with[0]), int(rows_with[-1]) + 1
            while start < end_all:  # blocks that fit the board's message size
                n_dev = np.cumsum(group[start:end_all].sum(axis=1))
                stop = start + max(1, int(np.searchsorted(n_dev, budget // per_device, side="right")))
                block = np.zeros(m.shape, bool)
                block[start:stop] = group[start:stop]
                sel = block[start:stop].reshape(-1)
                n = int(sel.sum())
                rows_in = int(block.any(axis=1).sum())
                fields = {"kind": _PULSE_KIND[kind], "row_start": start, "row_count": stop - start,
                          **_selection(sel),
                          **{name: compact(c[block]) for name, c in zip(("amplitude", "gate", "width"), codes)},
                          "progress_rows": 1 if every_row else max(1, -(-rows_in // _PROGRESS_FRAMES))}
                if n:
                    out.append(("PULSE_DEVICES", fields, block))
                start = stop
        return out

    # --------------------------------------------------------- on-board loop
    def program_on_board(self, targets: ArrayLike, mask: ArrayLike, config: TuningConfig, *,
                         algorithm: str = "adaptive", verify_average: int = 0, v_read: float = READ_VOLTAGE,
                         progress: Callable[[dict], None] | None = None) -> OnBoardProgram:
        """Let the board run the write-and-verify loop itself (one PROGRAM request).

        The board verifies through the calibration the host sent it (SET_CALIBRATION); a
        board that cannot take one verifies with its nominal conversions, so the targets
        are handed over as it will read them and its readings brought back through the
        host's calibration.

        Parameters
        ----------
        targets : (rows, cols) array
            Target conductances, S, at the selected devices.
        mask : bool (rows, cols)
        config : TuningConfig
            Every field travels to the board (:mod:`memhw.algorithms.program_codec`).
        algorithm : {"adaptive", "baseline"}
        verify_average : int
            Samples per verify reading; 0 lets the board decide from its read noise.
        v_read : float
            Verify-read voltage, V.
        progress : callable(dict), optional
            Called with ``round``, ``pending``, ``converged`` after each round.

        Raises
        ------
        NotSupported
            The board does not run the loop itself.
        LimitError
            Bad targets, configuration or read voltage (nothing sent).
        """
        i = self.info
        m = self._device_mask(mask)
        t = np.broadcast_to(as_float("targets", targets, check=False), i.shape)
        check_finite("targets", t[m])
        if algorithm.upper() not in _ALGORITHM:
            raise LimitError(f"algorithm must be one of {sorted(a.lower() for a in _ALGORITHM)}, got {algorithm!r}")
        vr = float(as_float("v_read", v_read))
        if not 0 < vr <= i.limits.v_read:
            raise LimitError(f"v_read: {vr:g} V is outside (0, {i.limits.v_read:g}] V")
        self.require("PROGRAM")
        rows = np.flatnonzero(m.any(axis=1))
        if rows.size == 0:
            raise LimitError("mask selects no device")
        block = slice(int(rows[0]), int(rows[-1]) + 1)
        if self._board_holds_calibration:  # the board verifies through the calibration it was sent
            a, b = np.ones(i.shape), np.zeros(i.shape)
        else:  # hand it the targets as its nominal conversions will read them
            a, b = self.codes.board_reading(t, vr)
        t_board = a * t + b
        if (t_board[m] > conductances(0xFFFF)).any() or (t_board[m] < 0).any():
            raise LimitError(f"on-board targets must lie in [0, {conductances(0xFFFF) * 1e6:.2f}] µS "
                             "(the PROGRAM message's conductance range)")
        cfg = dataclasses.replace(config, tolerance=config.tolerance * float(np.min(a[m])))
        try:
            config_fields = encode_config(cfg, self.codes.transfer, vr)
        except ValueError as exc:
            raise LimitError(str(exc)) from None
        config_fields["tolerance"] = max(1, config_fields["tolerance"])
        sub = m[block]
        fields = {"algorithm": _ALGORITHM[algorithm.upper()], "row_start": block.start,
                  "row_count": block.stop - block.start, "mask": np.packbits(sub.reshape(-1), bitorder="little"),
                  "targets": conductance_codes(t_board[block][sub]),
                  "verify_average": check_int("verify_average", verify_average, 0, 0xFFFF), **config_fields}
        ident = self._announce("program_on_board", {"mask": m, "max_pulses": int(config.max_pulses)})
        args = {"targets": t, "mask": m, "algorithm": algorithm, "verify_average": verify_average, "v_read": vr,
                "intent": ident, **{f"config_{k}": v for k, v in dataclasses.asdict(config).items()}}
        try:
            r = self._request("PROGRAM", fields, progress=progress, resumable=True)
        except MemhwError as exc:
            self._notify("program_on_board", {**args, "status": type(exc).__name__, "error": str(exc)})
            raise

        def place(values: np.ndarray, fill: Any, dtype: Any) -> np.ndarray:
            full = np.full(i.shape, fill, dtype=dtype)
            view = full[block]
            view[sub] = values
            return full

        result = OnBoardProgram(
            rounds=int(r["rounds"]), achieved=(place(conductances(r["achieved"]), np.nan, float) - b) / a,
            set_pulses=place(r["set_pulses"], 0, np.int32), reset_pulses=place(r["reset_pulses"], 0, np.int32),
            reasons=place(r["reasons"], Reason.NOT_SELECTED, np.int8))
        self._notify("program_on_board", args, int(result.set_pulses.sum() + result.reset_pulses.sum()))
        return result

    # ---------------------------------------------------------- sparse reads
    def read_devices(self, mask: ArrayLike, v_read: float = READ_VOLTAGE, average: int = 1,
                     gain: int | str = "auto") -> np.ndarray:
        """Read the conductance of the devices of ``mask`` only (READ_DEVICES): rows holding
        them are driven one at a time at ``v_read``, and only their codes cross the wire.

        Returns
        -------
        ndarray (rows, cols)
            Siemens at the selected devices, NaN elsewhere.
        """
        i = self.info
        m = self._device_mask(mask)
        vr, code = self._read_voltage(v_read)
        average = self._check_average(average)
        gains = self._gain(gain)
        if gains.size != 1:
            raise LimitError("gain: 'auto' or one gain index for every device")
        self.require("READ_DEVICES")
        out = np.full(i.shape, np.nan)
        rows_with = np.flatnonzero(m.any(axis=1))
        per_device = 2 + 2 + (1 if gains[0] == AUTO_GAIN else 0)  # index + code (+ gain)
        budget = (i.max_message - _REQUEST_SLACK) // 2
        start = int(rows_with[0]) if rows_with.size else 0
        end_all = int(rows_with[-1]) + 1 if rows_with.size else 0
        while start < end_all:
            n_dev = np.cumsum(m[start:end_all].sum(axis=1))
            stop = start + max(1, int(np.searchsorted(n_dev, budget // per_device, side="right")))
            r = self._request("READ_DEVICES", {
                "v_read": code, "average": average, "gains": gains, "row_start": start, "row_count": stop - start,
                **_selection(m[start:stop].reshape(-1))}, resumable=True)
            rr, cc = np.nonzero(m[start:stop])
            rr = rr + start
            currents = self.codes.currents(r["codes"], r["gains"], cols=cc)
            v_rows = self.codes.dac_volts("ROWS", np.full(rr.size, code), channels=rr)
            out[rr, cc] = currents / v_rows
            start = stop
        self._notify("read_devices", {"mask": m, "v_read": vr, "average": average, "gain": gain}, out)
        return out

    # ----------------------------------------------------------------- tiles
    def define_tile(self, tile: int, spec: TileSpec) -> None:
        """Define tile ``tile`` on the board (DEFINE_TILE): where a block of a weight matrix
        sits. The board keeps it for this session (and :meth:`reconnect` defines it again)."""
        i = self.info
        tile = check_int("tile", tile, 0, fp.SCHEMA.max_tiles - 1)
        if not isinstance(spec, TileSpec):
            raise LimitError(f"spec must be a TileSpec, got {type(spec).__name__}")
        for name, idx, n in (("rows", spec.rows, i.rows), ("neg_rows", spec.neg_rows, i.rows),
                             ("cols", spec.cols, i.cols), ("neg_cols", spec.neg_cols, i.cols)):
            if idx.size and (idx.min() < 0 or idx.max() >= n or np.unique(idx).size != idx.size):
                raise LimitError(f"{name}: distinct indices in 0..{n - 1} expected")
        if not spec.n_in or not spec.n_out or spec.neg_rows.size not in (0, spec.n_in) \
                or spec.neg_cols.size not in (0, spec.n_out):
            raise LimitError("a tile needs rows and columns; neg_rows / neg_cols empty or as long as rows / cols")
        self._request("DEFINE_TILE", {"tile": tile, "rows": spec.rows, "neg_rows": spec.neg_rows,
                                      "cols": spec.cols, "neg_cols": spec.neg_cols}, resumable=True)
        self._tiles[tile] = spec
        self._notify("define_tile", {"tile": tile, "rows": spec.rows, "cols": spec.cols})

    def vmm_tile(self, tile: int, v: ArrayLike, gain: int | str | ArrayLike = "auto") -> np.ndarray:
        """Vector-matrix multiply on a defined tile (VMM_TILE): only its inputs and outputs
        cross the wire.

        Parameters
        ----------
        tile : int
        v : array, shape (K,) or (n, K)
            Volts for the tile's inputs (its neg_rows get −v), |v| <= the read limit.
        gain : "auto", int or one index per column read

        Returns
        -------
        ndarray, shape (M + M−,) or (n, M + M−)
            Amperes into the tile's columns, then its neg_cols.
        """
        i = self.info
        spec = self._tiles.get(tile)
        if spec is None:
            raise LimitError(f"tile {tile!r} is not defined (Board.define_tile)")
        arr = as_float("v", v)
        single = arr.ndim == 1
        if arr.ndim not in (1, 2) or arr.shape[-1] != spec.n_in:
            raise LimitError(f"v: shape {arr.shape}, expected ({spec.n_in},) or (n, {spec.n_in})")
        check_range("v", arr, -i.limits.v_read, i.limits.v_read, "V")
        arr = arr.reshape(-1, spec.n_in)
        cols = spec.read_cols
        gains = self._gain(gain, cols.size)
        codes = np.clip(self.codes.line_codes(arr), -round(i.limits.v_read / i.dac_line_lsb),
                        round(i.limits.v_read / i.dac_line_lsb))
        per_request = max(1, (i.max_message - _REQUEST_SLACK) // (2 * spec.n_in))
        out = np.empty((len(arr), cols.size))
        for s0 in range(0, len(arr), per_request):
            block = codes[s0 : s0 + per_request]
            r = self._request("VMM_TILE", {"tile": tile, "n": len(block), "gains": gains, "inputs": block},
                              resumable=True)
            g = r["gains"]
            g = np.broadcast_to(g, (cols.size,)) if g.size == 1 else g.reshape(-1, cols.size)
            out[s0 : s0 + len(block)] = self.codes.currents(r["codes"].reshape(-1, cols.size), g, cols=cols)
        self._notify("vmm_tile", {"tile": tile, "v": arr, "gain": gain}, out)
        return out[0] if single else out

    # ----------------------------------------------------- networks on board
    def load_network(self, spec: NetworkSpec) -> None:
        """Load a network the board runs by itself (LOAD_NETWORK); its tiles must be defined.
        The board keeps it for this session (and :meth:`reconnect` loads it again)."""
        if not isinstance(spec, NetworkSpec):
            raise LimitError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
        missing = sorted({t.tile for layer in spec.layers for t in layer.tiles} - set(self._tiles))
        if missing:
            raise LimitError(f"tiles {missing} are not defined (Board.define_tile)")
        try:
            fields = spec.fields()
        except ValueError as exc:
            raise LimitError(str(exc)) from None
        self.require("LOAD_NETWORK")
        self._request("LOAD_NETWORK", fields, resumable=True)
        self._network = spec
        self._notify("load_network", {"layers": len(spec.layers), "inputs": spec.n_inputs,
                                      "outputs": spec.n_outputs})

    def run_network(self, sequences: Any, *, progress: Callable[[int, int], None] | None = None) -> NetworkRun:
        """Run the loaded network over sequences on the board (RUN_NETWORK): every time step
        runs there; only inputs and outputs cross the wire.

        Parameters
        ----------
        sequences : sequence of (T_i, n_inputs) arrays
        progress : callable(steps_done, steps), optional

        Returns
        -------
        NetworkRun
            ``outputs``: a list of (T_i, n_outputs) arrays for a network with an output per
            step, else an (N, n_outputs) array; ``clipped``: inputs the board clipped.
        """
        spec = self._network
        if spec is None:
            raise LimitError("no network is loaded (Board.load_network)")
        self.require("RUN_NETWORK")
        seqs = [as_float(f"sequences[{k}]", x).reshape(len(x), -1) if np.ndim(x) else None
                for k, x in enumerate(sequences)]
        if not seqs or any(x is None or x.shape[1] != spec.n_inputs or not 1 <= len(x) <= 0xFFFF for x in seqs):
            raise LimitError(f"sequences: one or more arrays of shape (T, {spec.n_inputs}), 1 <= T <= 65535")
        f32_max = float(np.finfo(np.float32).max)
        for k, x in enumerate(seqs):
            check_range(f"sequences[{k}]", x, -f32_max, f32_max, "")
        # a request (i16 inputs) and its reply (f32 outputs) must both fit the board's message size
        out_per_step = spec.n_outputs if spec.per_step else 0
        cost = [max(2 * len(x) * spec.n_inputs, 4 * (len(x) * out_per_step + spec.n_outputs)) + 4 for x in seqs]
        budget = self.info.max_message - _REQUEST_SLACK
        if max(cost) > budget:
            raise LimitError(f"a sequence of {max(len(x) for x in seqs)} steps does not fit the board's "
                             f"{self.info.max_message}-byte messages")
        outputs: list[np.ndarray] = []
        clipped, start, total = 0, 0, int(sum(len(x) for x in seqs))
        done_before = 0
        callback_error: list[BaseException] = []

        def on_progress(rep: dict) -> None:
            if progress is not None and not callback_error:
                try:  # steps of the whole call, not of one request
                    progress(done_before + int(rep["steps_done"]), total_steps)
                except BaseException as exc:  # noqa: BLE001 - re-raised once the run is done
                    callback_error.append(exc)

        batches = []
        while start < len(seqs):  # batches of sequences that fit the board's message size
            stop, size = start, 0
            while stop < len(seqs) and (stop == start or size + cost[stop] <= budget):
                size += cost[stop]
                stop += 1
            batches.append((start, stop))
            start = stop
        total_steps = sum(max(len(x) for x in seqs[a:b]) for a, b in batches)
        while batches:
            a, b = batches.pop(0)
            batch = seqs[a:b]
            lengths = np.array([len(x) for x in batch], np.uint16)
            steps = int(lengths.max())
            # a few progress frames keep the link's timeout fed on a long run; more when shown
            every = max(1, -(-steps // (_PROGRESS_SHOWN if progress is not None else _PROGRESS_FRAMES)))
            scale, codes = _input_codes(np.concatenate(batch).reshape(-1))
            try:
                r = self._request("RUN_NETWORK", {"lengths": lengths, "progress_steps": every,
                                                  "input_scale": scale, "inputs": codes},
                                  progress=on_progress, resumable=True)
            except BoardError as exc:
                # a board whose state memory holds fewer sequences refuses before running: halve the batch
                if exc.status_name != "TOO_LARGE" or b - a < 2:
                    raise
                mid = (a + b) // 2
                batches[:0] = [(a, mid), (mid, b)]
                total_steps += max(len(x) for x in seqs[a:mid]) + max(len(x) for x in seqs[mid:b]) - steps
                continue
            out = np.asarray(r["outputs"], dtype=float).reshape(-1, spec.n_outputs)
            clipped += int(r["clipped"])
            outputs.extend(np.split(out, np.cumsum(lengths)[:-1]) if spec.per_step else out)
            done_before += steps
        result = NetworkRun(outputs if spec.per_step else np.array(outputs), clipped)
        self._notify("run_network", {"sequences": len(seqs), "steps": total}, clipped)
        if callback_error:
            raise callback_error[0]
        return result

    # ------------------------------------------------------ self-calibration
    def read_reference(self, index: int, v_ref: float, gain: int | str | ArrayLike = "auto", average: int = 16, *,
                       nominal: bool = False) -> ReferenceReading:
        """Read every column through on-board reference resistor ``index`` with the
        reference bus at ``v_ref`` volts (READ_REFERENCE; the array is disconnected).

        Parameters
        ----------
        index : int
        v_ref : float
            Bus voltage, V (the bus never touches the array: the whole DAC range is allowed).
        gain : "auto", int or (cols,) ints
        average : int
        nominal : bool
            Currents through the nominal transfer function (for fitting a calibration)
            instead of the applied calibration.
        """
        self.require("READ_REFERENCE")
        index = check_int("index", index, 0, 0xFF)
        average = self._check_average(average)
        vr = float(as_float("v_ref", v_ref))
        code = int(self.codes.line_codes(vr))
        if not -0x8000 <= code <= 0x7FFF:
            raise LimitError(f"v_ref: {vr:g} V is outside the DAC's range")
        r = self._request("READ_REFERENCE", {"index": index, "v_ref": code, "gains": self._gain(gain),
                                             "average": average}, resumable=True)
        conv = self.codes.nominal_currents if nominal else self.codes.currents
        reading = ReferenceReading(
            count=int(r["count"]), resistance=float(r["resistance"]), tolerance=float(r["tolerance"]),
            v_bus=float(self.codes.monitor_volts(r["monitor"], r["monitor_lsb"])), gains=np.asarray(r["gains"]),
            codes=np.asarray(r["codes"]) / average, currents=conv(r["codes"], r["gains"], average))
        self._notify("read_reference", {"index": index, "v_ref": vr, "gain": gain, "average": average,
                                        "nominal": nominal}, reading.currents)
        return reading

    def read_dac(self, group: str, codes: ArrayLike, average: int = 16) -> np.ndarray:
        """DAC read-back: set every line of ``group`` ("ROWS", "COLS", "GATES"), disconnected
        from the array, to ``codes`` (DAC codes: one, or one per line) and measure each line's
        output with the board's monitor ADC (READ_DAC). Returns volts per line."""
        self.require("READ_DAC")
        if group not in _GROUP:
            raise LimitError(f"group must be one of {sorted(_GROUP)}, got {group!r}")
        c = np.atleast_1d(np.asarray(codes))
        if c.dtype.kind not in "iu" or c.ndim != 1 or not np.all((-0x8000 <= c) & (c <= 0x7FFF)):
            raise LimitError(f"codes: expected one or more integer DAC codes in -32768..32767, got {codes!r:.60}")
        average = self._check_average(average)
        r = self._request("READ_DAC", {"group": _GROUP[group], "codes": c.astype(np.int16), "average": average},
                          resumable=True)
        volts = self.codes.monitor_volts(r["codes"], r["monitor_lsb"])
        self._notify("read_dac", {"group": group, "codes": c, "average": average}, volts)
        return volts

    # ------------------------------------------------------------- helpers
    def _gain(self, gain: int | str | ArrayLike, n: int | None = None) -> np.ndarray:
        try:
            return self.codes.gain_field(gain, n)
        except ValueError as exc:
            raise LimitError(str(exc)) from None

    @staticmethod
    def _check_average(average: int) -> int:
        return check_int("average", average, 1, 0xFFFF)
