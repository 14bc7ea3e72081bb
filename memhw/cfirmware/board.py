"""The C firmware core as a board peer: ``mock://?firmware=c`` and ``memhw mock serve --firmware c``.

A :class:`CBoard` runs the C core (``firmware/core``, compiled by cffi) as its own peer:
frames, session, reply cache, dispatch, limits, watchdog and every message handler are C;
the hardware under its HAL is the emulator's (:class:`memhw.mock.hardware.MockHardware`:
chip, periphery, line levels, counters, virtual clock), reached through
:mod:`memhw.cfirmware.hal`. It offers the connection API of :class:`memhw.peer.Peer`
(``open(send, poll, address)``, ``reboot()``, ``schedule_reset()``,
``check_watchdog()``, ``counters``...) and the emulator's views (``hardware``, ``chip``,
``levels``, ``serial``...), so the in-process transport, the TCP/pty server and the tests
use it exactly as they use :class:`memhw.mock.emulator.BoardEmulator`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import numpy as np

import firmware_protocol as fp

from ..conversions import LimitCodes
from ..faults import FaultSpec, FrameFaults
from ..mock.emulator import WATCHDOG_DEFAULT, make_hardware
from ..mock.hardware import MockHardware
from ..mock.params import MockParams, make_params
from ..peer import Counters
from ._core import ffi, lib
from .hal import HalBridge

__all__ = ["CBoard", "CConnection", "FIRMWARE_NAME"]

log = logging.getLogger("memhw.cfirmware")

#: the firmware name the C core announces in HELLO
FIRMWARE_NAME = "memhw-core 2.1"
_MESSAGES = [m.name for m in fp.SCHEMA.messages]
#: host-build buffer sizes (a board picks its own: docs/firmware.md)
CONNECTIONS = 16
FRAME_PAYLOAD = 0xFFFF          # frames of any length are accepted, as the Python peer does
INBOX_BYTES = 1 << 18
CACHE_BYTES = 1 << 22
_ALLOC = ffi.new_allocator(should_clear_after_alloc=False)


class _CoreHardware(MockHardware):
    """The emulated analog hardware under the C core; limits are the core's."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._core = None
        super().__init__(*args, **kwargs)
        self.handlers = {}

    @property
    def limits(self) -> LimitCodes:
        if self._core is None:
            return self.abs_limits
        lim = self._core.limits
        return LimitCodes(lim.read_max, lim.set_max, lim.reset_max, lim.gate_max, lim.width_max)

    @limits.setter
    def limits(self, value: LimitCodes) -> None:
        """The core holds the limits; MockHardware's own assignments are ignored."""


class _AssemblerView:
    """What a test may ask of a connection's assembler: is a chunked request half received?"""

    def __init__(self, conn: "CConnection"):
        self._conn = conn

    @property
    def pending(self) -> bool:
        c = self._conn
        return not c.closed and bool(lib.memhw_core_pending(c.board._core, c.index))


class CConnection:
    """One host connection to a :class:`CBoard` (a TCP socket, a pty, an in-process link)."""

    def __init__(self, board: "CBoard", index: int, send: Callable[[bytes], None], poll: Callable[[], bytes] | None,
                 address: str):
        self.board = board
        self.index = index
        self.address = address
        self._send = send
        self._poll = poll or (lambda: b"")
        self._rx = bytearray()
        self.closed = False
        self.broken = False
        self.hangup = False

    def __repr__(self) -> str:
        return f"<CConnection {self.address or '?'}{' closed' if self.closed else ''}>"

    @property
    def assembler(self) -> "_AssemblerView":
        """The core's chunk assembler of this connection (``pending``, as the Python peer's)."""
        return _AssemblerView(self)

    def receive(self, data: bytes) -> None:
        """Bytes from the host (raises ConnectionResetError on an injected link loss)."""
        self.board._receive(self, data)

    def close(self) -> None:
        self.board.disconnect(self)

    def send(self, wire: bytes) -> None:
        if self.closed or self.broken:
            return
        try:
            self._send(wire)
        except OSError as exc:
            log.info("%s: send failed (%s); replies to it are dropped", self.address, exc)
            self.broken = True

    def poll(self, cap: int) -> bytes:
        if not self._rx and not self.closed:
            try:
                data = self._poll()
            except OSError:
                self.broken = True
                data = b""
            if data:
                kept = self.board._inject(self, "tx", data)
                self.board._core.counters.bytes_in += len(data) - len(kept)  # counted as received, as the peer does
                self._rx += kept
        out = bytes(self._rx[:cap])
        del self._rx[:cap]
        return out


class CBoard:
    """The emulated board with the C firmware core as its peer.

    Parameters are those of :class:`memhw.mock.emulator.BoardEmulator`: ``params``,
    ``seed`` (chip and periphery exactly as the emulator draws them), ``serial``, ``pace``,
    ``watchdog``, ``faults`` and ``fault_seed``.

    Raises
    ------
    ValueError
        The board does not fit the core's build (geometry above 128 x 64, more than 8 gains).
    """

    firmware = "c"

    def __init__(self, params: MockParams | None = None, seed: int = 0, serial: str | None = None,
                 pace: float = 0.0, watchdog: float = WATCHDOG_DEFAULT, faults: FaultSpec | str | None = None,
                 fault_seed: int = 0):
        params = params or make_params()
        self.seed = seed
        self.watchdog = float(watchdog)
        self._hw = make_hardware(params, seed, serial, pace, cls=_CoreHardware)
        self.name = f"C-core board {self._hw.serial}"
        if isinstance(faults, str):
            faults = FaultSpec.parse(faults)
        self.faults = FrameFaults(faults, fault_seed, name=self.name) if faults is not None else None
        self._reset_rng = np.random.default_rng([fault_seed, 0x5EB0])
        self._reset_after: int | None = None
        self._lock = threading.RLock()
        self._connections: dict[int, CConnection] = {}
        self._handler_seconds = 0.0
        self._bridge = HalBridge(self, self._hw)
        self._board = self._describe(params)
        self._buffers = self._allocate(params)
        self._core = ffi.new("memhw_core_t *")
        if lib.memhw_core_init(self._core, self._bridge.handle, self._board, self._buffers[0]) != 0:
            raise ValueError(f"this board ({params.shape[0]} x {params.shape[1]}, {len(params.periphery.tia_gains)} "
                             "gains) does not fit the C core's build (at most 128 x 64 and 8 gains)")
        self._hw._core = self._core

    # ------------------------------------------------------------ set-up
    def _describe(self, params: MockParams) -> Any:
        hw, per, bp = self._hw, params.periphery, params.board
        b = ffi.new("memhw_board_t *")
        for field, text in (("serial", hw.serial), ("chip", hw.chip_id)):
            raw = text.encode("utf-8")[:63]
            ffi.memmove(getattr(b, field), raw + b"\0", len(raw) + 1)
        b.rows, b.cols = params.shape
        b.dac_bits, b.adc_bits = per.dac_bits, per.adc_bits
        b.dac_line_lsb, b.dac_gate_lsb, b.adc_lsb = per.dac_line_lsb, per.dac_gate_lsb, per.adc_lsb
        b.n_gains = min(len(per.tia_gains), 255)
        for i, g in enumerate(per.tia_gains[:8]):
            b.tia_gains[i] = g
        b.width_offset, b.width_lsb, b.width_max_code = per.width_offset, per.width_lsb, per.width_max_code
        b.v_read_max, b.v_set_max, b.v_reset_max, b.v_gate_max = (bp.v_read_max, bp.v_set_max, bp.v_reset_max,
                                                                   bp.v_gate_max)
        lim = hw.abs_limits
        b.abs_limits = {"read_max": lim.read_max, "set_max": lim.set_max, "reset_max": lim.reset_max,
                        "gate_max": lim.gate_max, "width_max": lim.width_max}
        b.gate_on_code = hw.gate_on_code
        b.n_references = min(len(per.reference_resistors), 255)
        for i, r in enumerate(per.reference_resistors[:16]):
            b.reference_ohms[i] = r
        b.reference_tolerance, b.monitor_lsb = per.reference_tolerance, per.monitor_lsb
        b.max_frame, b.max_message = bp.max_frame, bp.max_message
        b.watchdog_ms = int(round(self.watchdog * 1000.0))
        return b

    def _allocate(self, params: MockParams) -> tuple:
        """The core's buffers (kept alive with the board): host-build sizes."""
        bp = params.board
        keep: list = []

        def buf(size: int) -> Any:
            p = _ALLOC("uint8_t[]", size)
            keep.append(p)
            return p

        b = ffi.new("memhw_buffers_t *")
        frame = lib.memhw_decoder_buffer_size(FRAME_PAYLOAD)
        for i in range(CONNECTIONS):
            b.conn[i].frame, b.conn[i].frame_size = buf(frame), frame
            b.conn[i].message, b.conn[i].message_size = buf(bp.max_message), bp.max_message
        b.n_conn = CONNECTIONS
        b.inbox, b.inbox_size = buf(INBOX_BYTES + bp.max_message), INBOX_BYTES + bp.max_message
        b.cache, b.cache_size = buf(CACHE_BYTES), CACHE_BYTES
        tx = lib.memhw_frame_max_encoded(bp.max_frame)
        b.tx, b.tx_size = buf(tx), tx
        planner = 64 * params.shape[0] * params.shape[1] + (1 << 20)
        b.planner, b.planner_size = buf(planner), planner
        rows, cols = params.shape
        floats = 2 * rows + 4 * cols + 2 * cols * len(params.periphery.tia_gains)
        b.calibration = ffi.cast("float *", buf(4 * floats))
        b.calibration_size = 4 * floats
        tiles = fp.SCHEMA.max_tiles * 2 * (rows + cols)  # every tile at its largest: never refused here
        b.tiles, b.tiles_size = buf(tiles), tiles
        return b, keep

    @classmethod
    def from_query(cls, query: dict[str, str]) -> "CBoard":
        """As :meth:`memhw.mock.emulator.BoardEmulator.from_query` (``firmware`` already removed)."""
        from ..mock.emulator import parse_query

        params, kwargs = parse_query(query)
        return cls(params, **kwargs)

    # ------------------------------------------------------------ connections (the Peer API)
    def open(self, send: Callable[[bytes], None], poll: Callable[[], bytes] | None = None,
             address: str = "") -> CConnection:
        """A new host connection (see :meth:`memhw.peer.Peer.open`)."""
        with self._lock:
            index = lib.memhw_core_open(self._core, address.encode("utf-8")[:63])
            if index < 0:
                raise ConnectionError(f"{self.name}: no free connection slot (at most {CONNECTIONS})")
            conn = CConnection(self, index, send, poll, address)
            self._connections[index] = conn
            if self.faults is not None:
                self.faults.reset()
            return conn

    def disconnect(self, conn: CConnection) -> None:
        """The connection is gone (see :meth:`memhw.peer.Peer.disconnect`)."""
        with self._lock:
            if conn.closed:
                return
            conn.closed = True
            if self._connections.get(conn.index) is conn:
                del self._connections[conn.index]
            lib.memhw_core_disconnect(self._core, conn.index)

    def _receive(self, conn: CConnection, data: bytes) -> None:
        with self._lock:
            if conn.closed:
                return
            raw = len(data)
            data = self._inject(conn, "tx", data)
            t0 = time.perf_counter()
            lib.memhw_core_receive(self._core, conn.index, data, len(data))
            self._handler_seconds += time.perf_counter() - t0
            self._core.counters.bytes_in += raw - len(data)  # the core counts what it was given
            if conn.hangup:
                conn.hangup = False
                raise ConnectionResetError(f"{self.name}: link lost (injected)")

    def _inject(self, conn: CConnection, direction: str, data: bytes) -> bytes:
        return data if self.faults is None else self.faults.through(conn, direction, data)

    def _write(self, index: int, wire: bytes) -> None:
        conn = self._connections.get(index)
        if conn is None:
            return
        if self.faults is not None:
            wire = self._inject(conn, "rx", wire)
            if self.faults.spec.delay:
                time.sleep(self.faults.delay_time())
            if not wire:
                return
        conn.send(wire)

    def _poll(self, index: int, cap: int) -> bytes:
        conn = self._connections.get(index)
        return conn.poll(cap) if conn is not None else b""

    # ------------------------------------------------------------ reboot, faults, watchdog
    def _fault_point(self, steps: int | None) -> bool:
        """The HAL's fault hook: True makes the core reboot here (as Peer._fault_point)."""
        reboot = steps is not None and self._reset_after is not None and steps >= self._reset_after
        f = self.faults
        if not reboot and f is not None and f.spec.reset and self._reset_rng.random() < f.spec.reset:
            reboot = True
        if reboot:
            self._reset_after = None
        return reboot

    def reboot(self) -> None:
        """Power-cycle the board (see :meth:`memhw.peer.Peer.reboot`)."""
        with self._lock:
            lib.memhw_core_reboot(self._core)
            self._reset_after = None

    def schedule_reset(self, after_steps: int) -> None:
        """Reboot in the next long operation right after its ``after_steps``-th step."""
        self._reset_after = int(after_steps)

    def check_watchdog(self, now: float | None = None) -> bool:
        """Run the core's watchdog (``now``: ``time.monotonic()`` seconds); True when it tripped."""
        with self._lock:
            now = time.monotonic() if now is None else now
            return bool(lib.memhw_core_check_watchdog(self._core, int(now * 1000.0) & 0xFFFFFFFF))

    # ------------------------------------------------------------ views
    @property
    def counters(self) -> Counters:
        """Protocol counters since the board was made (a snapshot, as :class:`memhw.peer.Counters`)."""
        k = self._core.counters
        return Counters(
            requests=k.requests, executed={n: k.executed[i] for i, n in enumerate(_MESSAGES) if k.executed[i]},
            cache_hits=k.cache_hits, bad_frames=k.bad_frames, bytes_in=k.bytes_in, bytes_out=k.bytes_out,
            handler_seconds=self._handler_seconds, reboots=k.reboots, watchdog_trips=k.watchdog_trips,
            sessions=k.sessions, takeovers=k.takeovers, resumes=k.resumes, busy_answers=k.busy_answers,
            session_refusals=k.session_refusals)

    @property
    def boot_id(self) -> int:
        return int(self._core.boot_id)

    @property
    def session(self) -> int:
        return int(self._core.session)

    @property
    def owner(self) -> CConnection | None:
        """The connection that owns the session (None: no session, or detached)."""
        return self._connections.get(int(self._core.owner)) if self._core.owner >= 0 else None

    @property
    def busy(self) -> bool:
        return bool(self._core.busy)

    @property
    def program_capacity(self) -> int:
        """Devices one PROGRAM request may select on this build."""
        return int(lib.memhw_program_capacity(self._core))

    @property
    def hardware(self) -> MockHardware:
        """The emulated hardware (chip, periphery, line levels, limits, hardware counters)."""
        return self._hw

    @property
    def params(self) -> MockParams:
        return self._hw.params

    @property
    def chip(self) -> Any:
        return self._hw.chip

    @property
    def periphery(self) -> Any:
        return self._hw.periphery

    @property
    def serial(self) -> str:
        return self._hw.serial

    @serial.setter
    def serial(self, value: str) -> None:
        self._hw.serial = value
        raw = value.encode("utf-8")[:63]
        ffi.memmove(self._core.board.serial, raw + b"\0", len(raw) + 1)

    @property
    def levels(self) -> dict[str, np.ndarray]:
        """Present DC level codes per line group (``"ROWS"``, ``"COLS"``, ``"GATES"``) on the hardware."""
        return self._hw.levels
