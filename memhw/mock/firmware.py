"""Board emulator: the firmware side of :mod:`firmware_protocol` over a mock chip.

A :class:`BoardEmulator` is a byte peer. It decodes frames, executes requests
on a :class:`~memhw.mock.chip.Chip` through a :class:`~memhw.mock.periphery.Periphery`
(DAC codes in, ADC codes out), enforces the board's own limits, keeps a reply
cache so a repeated sequence number is answered without executing again, and
counts what it did (pulses per device, requests, bytes, virtual time) so tests
can check exactly-once behaviour and benchmarks can estimate hardware time.

Reliability features (docs/reliability.md): a request carrying the boot id of
an earlier power-up is refused (``BOOT_MISMATCH``), SET_LIMITS tightens the
limits for the session, a watchdog grounds the lines when the host goes silent
with DC levels applied or a chunked request half sent, and fault injection
(``faults=...``: frames dropped, corrupted, duplicated, truncated, delayed in
both directions, the link lost, the board rebooted mid-operation) exercises the
host's recovery. Counters are instrumentation and survive a reboot.
"""

from __future__ import annotations

import logging
import secrets
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import firmware_protocol as fp
from firmware_protocol.framing import PROGRESS, REPLY, WANT_PROGRESS

from ..faults import FaultSpec, FrameFaults
from ..algorithms.tuning import TUNERS, Plan, TuningConfig, estimate_read_sigma, run_tuning, verify_average
from .chip import Chip
from .params import MockParams, make_params
from .periphery import Periphery
from .selfcal import default_serial, read_dac, read_reference

__all__ = ["BoardEmulator", "Counters", "FIRMWARE_VERSION", "WATCHDOG_DEFAULT"]

log = logging.getLogger(__name__)
FIRMWARE_VERSION = "memhw-emu 1.0"
ST = fp.STATUS
_ABORT_OP = fp.SCHEMA.message("ABORT").opcode
_HELLO_OP = fp.SCHEMA.message("HELLO").opcode
_GROUPS = fp.SCHEMA.enums["LineGroup"]
AUTO_GAIN = fp.SCHEMA.auto_gain
#: row vectors per vectorised chip read when averaging (bounds the memory of one call)
_SAMPLES_PER_CALL = 4096
#: seconds of host silence after which the watchdog grounds applied DC levels
WATCHDOG_DEFAULT = 10.0


class _Rebooted(Exception):
    """The board rebooted in the middle of a request: nothing more is sent for it."""


class Refused(Exception):
    """Raised inside a handler to answer with a non-OK status."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = ST[status]
        self.reason = reason


class Aborted(Exception):
    """Raised inside a long handler when an ABORT arrived; carries the partial reply."""

    def __init__(self, reply: dict[str, Any]):
        super().__init__("aborted")
        self.reply = reply


@dataclass
class Counters:
    """What the emulated board has done since boot."""

    pulses: np.ndarray                     # (rows, cols) pulses applied per device
    set_pulses: int = 0
    reset_pulses: int = 0
    requests: int = 0
    executed: dict = field(default_factory=dict)   # opcode name -> executions
    cache_hits: int = 0
    bad_frames: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    handler_seconds: float = 0.0           # host CPU time spent in handlers
    busy_time: float = 0.0                 # estimated hardware time, s
    reboots: int = 0                       # reboots (injected or by reboot())
    watchdog_trips: int = 0                # times the watchdog grounded the lines
    boot_refusals: int = 0                 # requests refused with BOOT_MISMATCH


def _unpack_mask(packed: np.ndarray, n: int) -> np.ndarray:
    if packed.size != (n + 7) // 8:
        raise Refused("BAD_PAYLOAD", f"mask has {packed.size} bytes, expected {(n + 7) // 8}")
    return np.unpackbits(packed, count=n, bitorder="little").astype(bool)


class BoardEmulator:
    """The emulated measurement board with its chip.

    Parameters
    ----------
    params : MockParams
        Chip, periphery and board parameters (see :mod:`memhw.mock.params`).
    seed : int
        Seeds every random draw, so equal seeds and operations give equal results.
    serial : str
        Board serial number reported by HELLO.
    pace : float
        Real seconds spent per second of emulated hardware time (0: as fast as
        possible; 1: real time). Lets long operations be watched and aborted.
    watchdog : float
        Seconds of host silence after which DC levels left applied, or a
        half-received chunked request, are grounded / discarded (0: off).
    faults : FaultSpec or str, optional
        Board-side fault injection on both directions of its link, and
        ``reset`` (reboot probability per pulse row and per request).
    fault_seed : int
        Seeds the fault decisions (never the chip's random streams).
    """

    def __init__(self, params: MockParams | None = None, seed: int = 0, serial: str | None = None,
                 pace: float = 0.0, watchdog: float = WATCHDOG_DEFAULT, faults: FaultSpec | str | None = None,
                 fault_seed: int = 0):
        self.params = params or make_params()
        p = self.params
        self.seed = seed
        self.pace = pace
        rng = np.random.default_rng(seed)
        self.chip = Chip(p, np.random.default_rng(rng.integers(2**63)))
        self.periphery = Periphery(p, np.random.default_rng(rng.integers(2**63)))
        self.serial = serial or default_serial(p, seed)
        self.rows, self.cols = p.rows, p.cols
        self.boot_id = secrets.randbits(16) or 1
        self.counters = Counters(np.zeros((p.rows, p.cols), dtype=np.int64))
        #: absolute maxima (announced by HELLO; READ_DAC ranges); ``_active``: the limits in force (SET_LIMITS)
        self._limits = {
            "read": round(p.v_read_max / p.dac_line_lsb),
            "set": round(p.v_set_max / p.dac_line_lsb),
            "reset": round(p.v_reset_max / p.dac_line_lsb),
            "gate": round(p.v_gate_max / p.dac_gate_lsb),
            "width": int(p.width_max_code),
        }
        self._active = dict(self._limits)
        self.watchdog = float(watchdog)
        if isinstance(faults, str):
            faults = FaultSpec.parse(faults)
        self.faults = FrameFaults(faults, fault_seed, name="mock board") if faults is not None else None
        self._reset_rng = np.random.default_rng([fault_seed, 0x5EB0])
        self._reset_after_rows: int | None = None
        self._hangup = False
        self._last_rx = time.monotonic()
        self._levels = {g: np.zeros(self.cols if g else self.rows, dtype=np.int64) for g in _GROUPS.values()}
        # lines not driven by their DAC are switched to ground (exactly 0 V)
        self._driven = {g: np.zeros(self.cols if g else self.rows, dtype=bool) for g in _GROUPS.values()}
        self._gate_on_code = round(p.gate_read / p.dac_gate_lsb)
        self._decoder = fp.FrameDecoder()
        self._assembler = fp.MessageAssembler(max_message=p.max_message)
        self._cache: OrderedDict[int, tuple[int, bytes]] = OrderedDict()
        self._backlog: list[fp.Message] = []
        self._send: Callable[[bytes], None] = lambda data: None
        self._poll: Callable[[], bytes] = lambda: b""
        self._busy = False
        self._abort = False
        self._last_status = 0
        self._last_error = ""
        self._boot_time = time.monotonic()
        self._handlers = {
            "HELLO": self._hello,
            "STATUS": self._status,
            "SET_LEVELS": self._set_levels,
            "READ_CURRENTS": self._read_currents,
            "VMM": self._vmm,
            "READ_MAP": self._read_map,
            "PULSE_SET": self._pulse_set,
            "PULSE_RESET": self._pulse_reset,
            "GROUND_ALL": self._ground_all,
            "ABORT": self._abort_request,
            "WAIT": self._wait,
            "PROGRAM": self._program,
            "READ_REFERENCE": lambda v, req: read_reference(self, v, req),
            "READ_DAC": lambda v, req: read_dac(self, v, req),
            "SET_LIMITS": self._set_limits,
        }
        missing = {m.name for m in fp.SCHEMA.messages} - set(self._handlers)
        assert not missing, f"emulator lacks handlers for {missing}"
        self._by_opcode = {fp.SCHEMA.message(n).opcode: (fp.SCHEMA.message(n), h) for n, h in self._handlers.items()}

    # ------------------------------------------------------------------ wiring
    @classmethod
    def from_query(cls, query: dict[str, str]) -> "BoardEmulator":
        """Build from URL query parameters: ``preset``, ``seed``, ``serial``, ``pace``,
        ``watchdog`` (s), ``faults`` and ``fault_seed`` (board-side fault injection) and
        any :class:`MockParams` field (``mock://?preset=harsh&seed=4&wire_resistance=0.5``)."""
        q = dict(query)
        extra: dict[str, Any] = {}
        for name, conv in (("watchdog", float), ("fault_seed", int)):
            if name in q:
                try:
                    extra[name] = conv(q.pop(name))
                except ValueError:
                    raise ValueError(f"{name} must be a number, got {query[name]!r}") from None
        if "faults" in q:
            extra["faults"] = FaultSpec.parse(q.pop("faults"))
        preset = q.pop("preset", "paper")
        try:
            seed = int(q.pop("seed", "0"))
        except ValueError:
            raise ValueError(f"seed must be an integer, got {query['seed']!r}") from None
        serial = q.pop("serial", None)
        try:
            pace = float(q.pop("pace", "0"))
        except ValueError:
            raise ValueError(f"pace must be a number, got {query['pace']!r}") from None
        return cls(make_params(preset, **q), seed=seed, serial=serial, pace=pace, **extra)

    @property
    def levels(self) -> dict[str, np.ndarray]:
        """Present DC level codes per line group (``"ROWS"``, ``"COLS"``, ``"GATES"``)."""
        return {name: self._levels[g].copy() for name, g in _GROUPS.items()}

    def attach(self, send: Callable[[bytes], None], poll: Callable[[], bytes]) -> None:
        """Connect the emulator's output and its busy-time input poll (a new host
        connection: an injected link loss is healed, a partial frame forgotten)."""
        self._send = send
        self._poll = poll
        self._hangup = False
        self._decoder.reset()
        self._assembler.reset()
        if self.faults is not None:
            self.faults.reset()
        self._last_rx = time.monotonic()

    def receive(self, data: bytes) -> None:
        """Handle bytes from the host, sending replies through ``send``.

        Raises
        ------
        ConnectionResetError
            An injected link loss: the connection is to be closed.
        """
        self.check_watchdog()
        self._last_rx = time.monotonic()
        self.counters.bytes_in += len(data)
        self._backlog.extend(self._messages(self._inject("tx", data)))
        while self._backlog and not self._busy:
            self._dispatch(self._backlog.pop(0))
        if self._hangup:
            raise ConnectionResetError("mock board: link lost (injected)")

    def _inject(self, direction: str, data: bytes) -> bytes:
        """Board-side fault injection ("tx": host to board, "rx": board to host)."""
        if self.faults is None or not data:
            return data
        if self._hangup:
            return b""
        try:
            return self.faults.process(direction, data)
        except ConnectionError:
            self._hangup = True  # the operation goes on; the host lost the link
            return b""

    # ------------------------------------------------------- reboot, watchdog
    def reboot(self) -> None:
        """Power-cycle the board: new boot id, lines grounded, reply cache,
        queued requests, partial frames and session limits lost. The chip keeps
        its conductances; the counters (instrumentation) keep counting."""
        self.boot_id = (secrets.randbits(16) or 1)
        self._ground(0)
        self._cache.clear()
        self._backlog.clear()
        self._decoder.reset()
        self._assembler.reset()
        self._active = dict(self._limits)
        self._last_status, self._last_error = 0, ""
        self._boot_time = time.monotonic()
        self._reset_after_rows = None
        self.counters.reboots += 1

    def schedule_reset(self, after_rows: int) -> None:
        """Reboot in the middle of the next pulse batch (PULSE_SET, PULSE_RESET,
        PROGRAM), right after its ``after_rows``-th row (its progress frame sent);
        ``after_rows`` = the batch's row count reboots after the last row, before
        the final reply."""
        self._reset_after_rows = int(after_rows)

    def _maybe_reboot(self, rows_done: int) -> None:
        """Fault point after each applied row of a batch."""
        if self._reset_after_rows is not None and rows_done >= self._reset_after_rows:
            self.reboot()
            raise _Rebooted()
        f = self.faults
        if f is not None and f.spec.reset and self._reset_rng.random() < f.spec.reset:
            self.reboot()
            raise _Rebooted()

    def _levels_applied(self) -> bool:
        return any(bool(np.any(self._driven[g] & (self._levels[g] != 0))) for g in _GROUPS.values())

    def check_watchdog(self, now: float | None = None) -> bool:
        """Ground the lines (and drop a half-received request) if the host has been
        silent for longer than ``watchdog`` seconds while levels are applied or a
        chunked request is half sent. Called by the server loop and on receive.
        Returns True when it tripped."""
        if not self.watchdog or self._busy:
            return False
        now = time.monotonic() if now is None else now
        silent = now - self._last_rx
        if silent <= self.watchdog:
            return False
        levels, partial = self._levels_applied(), self._assembler.pending
        if not (levels or partial):
            return False
        self._ground(0)
        self._assembler.reset()
        self._decoder.reset()
        self.counters.watchdog_trips += 1
        what = " and ".join(w for w, on in (("DC levels applied", levels), ("a request half sent", partial)) if on)
        self._last_error = f"watchdog: host silent for {silent:.1f} s with {what}; every line grounded"
        log.warning(self._last_error)
        return True

    def _messages(self, data: bytes) -> list[fp.Message]:
        out = []
        asm = self._assembler
        for frame in self._decoder.feed(data):
            msg = asm.add(frame)
            if msg is not None and not msg.is_reply:
                out.append(msg)
            if asm.oversize is not None:
                big, asm.oversize = asm.oversize, None
                req = fp.Message(big.version, big.flags, big.seq, big.opcode, 0, 0, b"")
                self._refuse(req, Refused("TOO_LARGE", f"request exceeds max_message = {self.params.max_message} bytes"))
        self.counters.bad_frames = self._decoder.dropped + asm.dropped
        return out

    def _emit(self, wire: bytes) -> None:
        self.counters.bytes_out += len(wire)
        if self.faults is not None:
            wire = self._inject("rx", wire)
            if self.faults.spec.delay:
                time.sleep(self.faults.delay_time())
            if not wire:
                return
        self._send(wire)

    def _reply(self, req: fp.Message, status: int, payload: bytes, flags: int = 0) -> bytes:
        wire = fp.encode_message(seq=req.seq, opcode=req.opcode, payload=payload, flags=REPLY | flags,
                                 status=status, boot_id=self.boot_id, max_payload=self.params.max_frame)
        self._emit(wire)
        return wire

    # ---------------------------------------------------------------- dispatch
    def _dispatch(self, req: fp.Message) -> None:
        c = self.counters
        c.requests += 1
        key = zlib.crc32(req.payload, req.opcode)
        cached = self._cache.get(req.seq)
        if cached is not None and cached[0] == key and req.opcode != _ABORT_OP:
            c.cache_hits += 1
            self._emit(cached[1])
            return
        entry = self._by_opcode.get(req.opcode)
        if entry is None:
            wire = self._refuse(req, Refused("UNKNOWN_OPCODE", f"opcode {req.opcode:#04x} not implemented"))
        elif req.version != fp.MAJOR and req.opcode != _HELLO_OP:
            wire = self._refuse(req, Refused("BAD_VERSION", f"board speaks protocol {fp.MAJOR}, request is {req.version}"))
        elif req.boot_id not in (0, self.boot_id) and req.opcode not in (_HELLO_OP, _ABORT_OP):
            c.boot_refusals += 1
            wire = self._refuse(req, Refused("BOOT_MISMATCH", f"request is for boot {req.boot_id:#06x}, this is boot "
                                                              f"{self.boot_id:#06x}: the board rebooted; nothing applied"))
        else:
            message, handler = entry
            t0 = time.perf_counter()
            try:
                values = fp.decode(req.opcode, "request", req.payload)
                self._busy = True
                self._abort = False
                reply = handler(values, req)
                encoded = fp.encode(req.opcode, "reply", reply)
                if message.name != "HELLO":
                    self._maybe_reboot_before_reply()
                wire = self._reply(req, ST["OK"], encoded)
                c.executed[message.name] = c.executed.get(message.name, 0) + 1
            except fp.ProtocolError as exc:
                wire = self._refuse(req, Refused("BAD_PAYLOAD", str(exc)))
            except Refused as exc:
                wire = self._refuse(req, exc)
            except _Rebooted:
                c.executed[message.name] = c.executed.get(message.name, 0) + 1
                return  # the reply died with the old boot
            except ConnectionError:
                raise
            except Aborted as exc:
                self._ground(0)
                c.executed[message.name] = c.executed.get(message.name, 0) + 1
                wire = self._reply(req, ST["ABORTED"], fp.encode(req.opcode, "reply", exc.reply))
            except Exception as exc:  # noqa: BLE001 - a firmware fault must not kill the board
                log.exception("handler %s failed", message.name)
                self._ground(0)
                wire = self._refuse(req, Refused("INTERNAL", f"{type(exc).__name__}: {exc}"))
            finally:
                self._busy = False
                c.handler_seconds += time.perf_counter() - t0
        if req.opcode != _ABORT_OP:
            self._cache[req.seq] = (key, wire)
            self._cache.move_to_end(req.seq)
            while len(self._cache) > fp.SCHEMA.reply_cache:
                self._cache.popitem(last=False)

    def _maybe_reboot_before_reply(self) -> None:
        """Fault point between executing a request and replying (reply lost)."""
        f = self.faults
        if f is not None and f.spec.reset and self._reset_rng.random() < f.spec.reset:
            self.reboot()
            raise _Rebooted()

    def _refuse(self, req: fp.Message, exc: Refused) -> bytes:
        self._last_status, self._last_error = exc.status, exc.reason
        return self._reply(req, exc.status, fp.encode(req.opcode, "error", {"reason": exc.reason}))

    def _check_abort(self) -> bool:
        """Between rows of a long operation: look at bytes that arrived meanwhile."""
        data = self._poll()
        if data:
            self._last_rx = time.monotonic()
            self.counters.bytes_in += len(data)
            for msg in self._messages(self._inject("tx", data)):
                if msg.opcode == _ABORT_OP:
                    self._abort = True
                    self.counters.requests += 1
                    self._reply(msg, ST["OK"], fp.encode(_ABORT_OP, "reply", {"was_busy": 1}))
                else:
                    self._backlog.append(msg)
        return self._abort

    # ----------------------------------------------------------- conversions
    def _gains(self, gains: np.ndarray) -> np.ndarray | None:
        """Requested gain indices -> (cols,) array, or None for auto-ranging."""
        n_gain = len(self.params.tia_gains)
        if gains.size == 0 or (gains.size == 1 and gains[0] == AUTO_GAIN):
            return None
        if gains.size not in (1, self.cols):
            raise Refused("BAD_PAYLOAD", f"gains must have 0, 1 or {self.cols} entries, not {gains.size}")
        if gains.max() >= n_gain:
            raise Refused("LIMIT", f"gain index {int(gains.max())} >= {n_gain}")
        return np.broadcast_to(gains.astype(np.int64), (self.cols,))

    def _measure(self, currents: np.ndarray, gains: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Digitise (n, cols) currents at fixed gains, or auto-range per sample:
        the highest gain whose reading does not saturate."""
        per = self.periphery
        if gains is not None:
            g = np.broadcast_to(gains, currents.shape)
            return per.adc_codes(currents, g), gains.astype(np.uint8)
        tia = np.asarray(self.params.tia_gains)
        full_scale = 0.9 * (2 ** (self.params.adc_bits - 1)) * self.params.adc_lsb
        # best guess from the analog value, then step down while saturated
        fits = np.abs(currents)[..., None] * tia <= full_scale
        g = np.where(fits.any(-1), len(tia) - 1 - np.argmax(fits[..., ::-1], axis=-1), 0)
        codes = per.adc_codes(currents, g)
        sat = per.saturated(codes)
        while sat.any() and (g[sat] > 0).any():
            g = np.where(sat & (g > 0), g - 1, g)
            codes = np.where(sat, per.adc_codes(currents, g), codes)
            sat = per.saturated(codes) & (g > 0)
        return codes, g.astype(np.uint8).reshape(-1)

    def _line_volts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Actual volts on rows, columns and gates: DAC output where driven, else 0."""
        per, lv, dr = self.periphery, self._levels, self._driven
        return tuple(np.where(dr[_GROUPS[g]], conv(lv[_GROUPS[g]]), 0.0)  # type: ignore[return-value]
                     for g, conv in (("ROWS", per.row_volts), ("COLS", per.col_volts), ("GATES", per.gate_volts)))

    def _tick(self, seconds: float) -> None:
        self.counters.busy_time += seconds
        self.chip.advance(seconds)
        if self.pace:
            time.sleep(seconds * self.pace)

    # --------------------------------------------------------------- handlers
    def _hello(self, v: dict, req: fp.Message) -> dict:
        p = self.params
        self._cache.clear()  # a new host session: earlier sequence numbers mean nothing
        self._active = dict(self._limits)  # and its limits are the maxima until SET_LIMITS
        return {
            "major": fp.MAJOR, "minor": fp.MINOR, "schema_hash": fp.SCHEMA.hash,
            "firmware": FIRMWARE_VERSION, "serial": self.serial, "rows": self.rows, "cols": self.cols,
            "dac_bits": p.dac_bits, "adc_bits": p.adc_bits, "dac_line_lsb": p.dac_line_lsb,
            "dac_gate_lsb": p.dac_gate_lsb, "adc_lsb": p.adc_lsb, "tia_gains": np.asarray(p.tia_gains),
            "width_offset": p.width_offset, "width_lsb": p.width_lsb, "width_max_code": p.width_max_code,
            "v_read_max": p.v_read_max, "v_set_max": p.v_set_max, "v_reset_max": p.v_reset_max,
            "v_gate_max": p.v_gate_max, "max_frame": p.max_frame, "max_message": p.max_message,
        }

    def _status(self, v: dict, req: fp.Message) -> dict:
        return {"busy": 0, "last_status": self._last_status, "last_error": self._last_error,
                "requests": self.counters.requests & 0xFFFFFFFF,
                "pulses": int(self.counters.pulses.sum()) & 0xFFFFFFFF,
                "uptime": time.monotonic() - self._boot_time}

    def _set_levels(self, v: dict, req: fp.Message) -> dict:
        group = v["group"]
        if group not in _GROUPS.values():
            raise Refused("BAD_PAYLOAD", f"unknown line group {group}")
        n = self.rows if group == _GROUPS["ROWS"] else self.cols
        limit = self._active["gate" if group == _GROUPS["GATES"] else "read"]
        levels, driven = self._levels[group], self._driven[group]
        if v["codes"].size:
            if v["codes"].size != n:
                raise Refused("BAD_PAYLOAD", f"codes has {v['codes'].size} entries, group has {n} lines")
            new = v["codes"].astype(np.int64)
            selected = np.ones(n, bool)
        else:
            selected = _unpack_mask(v["mask"], n)
            new = levels.copy()
            new[selected] = v["value"]
        if np.abs(new).max(initial=0) > limit or (group == _GROUPS["GATES"] and new.min(initial=0) < 0):
            raise Refused("LIMIT", f"level outside the board's limit of {limit} codes")
        levels[:] = new
        driven |= selected
        return {}

    def _read_currents(self, v: dict, req: fp.Message) -> dict:
        avg = int(v["average"])
        if avg < 1:
            raise Refused("BAD_PAYLOAD", "average must be >= 1")
        gains = self._gains(v["gains"])
        rows_v, cols_v, gates_v = self._line_volts()
        currents = self.chip.currents(np.broadcast_to(rows_v, (avg, self.rows)), cols_v, gates_v)
        if gains is None:  # range on the first sample, keep that gain for the others
            _, g = self._measure(currents[:1], None)
            gains = g.astype(np.int64)
        codes, g = self._measure(currents, gains)
        self._tick(avg * self.params.sample_time)
        return {"gains": g, "codes": codes.sum(axis=0)}

    def _read_rows(self, row_volts: np.ndarray, gains: np.ndarray | None, average: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Apply each row of (n, rows) volts with columns at virtual ground and
        gates fully on; return rounded mean codes (n, cols) and gains used."""
        gates_v = self.periphery.gate_volts(np.full(self.cols, self._gate_on_code))
        n = len(row_volts)
        codes, g = self._measure(self.chip.currents(row_volts, None, gates_v), gains)
        if average > 1:  # further samples (each a fresh read) at the gains chosen on the first one
            g_full = np.broadcast_to(g.reshape(-1, self.cols), (n, self.cols))
            total = codes.astype(np.int64)
            per_call = max(1, _SAMPLES_PER_CALL // n)  # vectorised, in bounded chunks
            for done in range(1, average, per_call):
                k = min(per_call, average - done)
                currents = self.chip.currents(np.tile(row_volts, (k, 1)), None, gates_v)
                total += self.periphery.adc_codes(currents, np.tile(g_full, (k, 1))).reshape(k, n, self.cols).sum(0)
            codes = np.rint(total / average).astype(np.int64)
        self._tick(len(row_volts) * average * self.params.sample_time)
        return codes, g

    def _vmm(self, v: dict, req: fp.Message) -> dict:
        n = int(v["n"])
        inputs = v["inputs"]
        if inputs.size != n * self.rows:
            raise Refused("BAD_PAYLOAD", f"inputs has {inputs.size} codes, expected n*rows = {n * self.rows}")
        if n and np.abs(inputs).max() > self._active["read"]:
            raise Refused("LIMIT", f"VMM input beyond the read limit of {self._active['read']} codes")
        volts = self.periphery.row_volts(inputs.reshape(n, self.rows))
        codes, g = self._read_rows(volts, self._gains(v["gains"]))
        return {"gains": g, "codes": codes.reshape(-1)}

    def _read_map(self, v: dict, req: fp.Message) -> dict:
        start, count, avg, vr = int(v["row_start"]), int(v["row_count"]), int(v["average"]), int(v["v_read"])
        self._check_rows(start, count)
        if avg < 1:
            raise Refused("BAD_PAYLOAD", "average must be >= 1")
        if abs(vr) > self._active["read"]:
            raise Refused("LIMIT", f"read voltage beyond the read limit of {self._active['read']} codes")
        out, g = self._map_codes(start, count, vr, self._gains(v["gains"]), avg)
        return {"gains": g, "codes": out.reshape(-1)}

    def _map_codes(self, start: int, count: int, v_code: int, gains: np.ndarray | None,
                   average: int) -> tuple[np.ndarray, np.ndarray]:
        """Drive rows start.. one at a time at ``v_code`` (the others switched to
        ground) and read every column: (count, cols) codes and the gains used."""
        driven = np.zeros((count, self.rows), dtype=bool)
        driven[np.arange(count), start + np.arange(count)] = True
        volts = np.where(driven, self.periphery.row_volts(np.where(driven, v_code, 0)), 0.0)
        return self._read_rows(volts, gains, average)

    def _conductance_map(self, start: int, count: int, average: int) -> np.ndarray:
        """The firmware's own conductance read (nominal transfer functions), S."""
        p = self.params
        v_code = round(p.verify_read / p.dac_line_lsb)
        codes, g = self._map_codes(start, count, v_code, None, average)
        tia = np.asarray(p.tia_gains)[g.reshape(count, self.cols)]
        return (-codes * p.adc_lsb / tia) / (v_code * p.dac_line_lsb)

    def _check_rows(self, start: int, count: int) -> None:
        if start + count > self.rows:
            raise Refused("LIMIT", f"rows {start}..{start + count - 1} outside 0..{self.rows - 1}")

    def _pulse_batch(self, v: dict, req: fp.Message, kind: str) -> dict:
        start, count = int(v["row_start"]), int(v["row_count"])
        self._check_rows(start, count)
        mask = _unpack_mask(v["mask"], count * self.cols).reshape(count, self.cols)
        n_sel = int(mask.sum())
        per_device = {}
        for name in ("amplitude", "gate", "width"):
            arr = v[name].astype(np.int64)
            if arr.size not in (1, n_sel):
                raise Refused("BAD_PAYLOAD", f"{name} has {arr.size} entries; expected 1 or {n_sel}")
            full = np.zeros((count, self.cols), dtype=np.int64)
            full[mask] = arr
            per_device[name] = full
        amp, gate, width = per_device["amplitude"], per_device["gate"], per_device["width"]
        amp_limit = self._active["set" if kind == "set" else "reset"]
        if n_sel and (amp[mask].min() <= 0 or amp[mask].max() > amp_limit):
            raise Refused("LIMIT", f"{kind.upper()} amplitude outside 1..{amp_limit} codes")
        if n_sel and (gate[mask].min() < 0 or gate[mask].max() > self._active["gate"]):
            raise Refused("LIMIT", f"gate outside 0..{self._active['gate']} codes")
        if n_sel and width[mask].max() > self._active["width"]:
            raise Refused("LIMIT", f"width code above {self._active['width']}")
        progress = None
        if req.flags & WANT_PROGRESS:
            def progress(done: int) -> None:
                self._reply(req, ST["OK"], fp.encode(req.opcode, "progress", {"rows_done": done, "row_count": count}),
                            flags=PROGRESS)
        rows_done, pulses = self._apply_rows(kind, start, mask, amp, gate, width, progress)
        return {"rows_done": rows_done, "pulses": pulses}

    def _apply_rows(self, kind: str, start: int, mask: np.ndarray, amp: np.ndarray, gate: np.ndarray,
                    width: np.ndarray, progress: Callable[[int], None] | None = None) -> tuple[int, int]:
        """Pulse the masked devices of rows start.. row by row (codes per device);
        returns (rows done, pulses). Raises Aborted between rows when asked."""
        p, per, chip, c = self.params, self.periphery, self.chip, self.counters
        pulses = 0
        for i in range(mask.shape[0]):
            if self._check_abort():
                raise Aborted({"rows_done": i, "pulses": pulses})
            sel = mask[i]
            if sel.any():
                r = start + i
                widths = np.where(sel, p.width_offset + width[i] * p.width_lsb, 0.0)
                gates_v = np.where(sel, per.gate_volts(gate[i]), 0.0)
                if kind == "set":
                    # row grounded, each selected column driven at its amplitude
                    dev_v = np.where(sel, per.col_volts(amp[i]), 0.0)
                    chip.set_row(r, dev_v, gates_v, widths)
                    c.set_pulses += int(sel.sum())
                else:
                    # row driven at the row's largest amplitude; each column
                    # biased so its device sees its own amplitude
                    top = int(amp[i][sel].max())
                    row_codes = np.zeros(self.rows, dtype=np.int64)
                    row_codes[r] = top
                    dev_v = np.where(sel, per.row_volts(row_codes)[r] - per.col_volts(top - amp[i]), 0.0)
                    chip.reset_row(r, dev_v, gates_v, widths)
                    c.reset_pulses += int(sel.sum())
                c.pulses[r] += sel
                pulses += int(sel.sum())
                self._tick(float(widths.max()) + p.row_switch_time)
            if progress is not None:
                progress(i + 1)
            self._maybe_reboot(i + 1)
        return mask.shape[0], pulses

    def _wait(self, v: dict, req: fp.Message) -> dict:
        seconds = float(v["seconds"])
        if not 0.0 <= seconds <= 3600.0:
            raise Refused("LIMIT", f"wait of {seconds:g} s outside 0..3600 s")
        self._ground(0)
        step = seconds / 100 if self.pace else seconds
        waited = 0.0
        while waited < seconds:  # in steps, so an abort is seen
            if self._check_abort():
                raise Aborted({"waited": waited})
            dt = min(step, seconds - waited) if step > 0 else seconds
            self._tick(dt)
            waited += dt
            if dt <= 0:
                break
        return {"waited": waited}

    def _program(self, v: dict, req: fp.Message) -> dict:
        p, lsb = self.params, fp.SCHEMA.conductance_lsb
        start, count = int(v["row_start"]), int(v["row_count"])
        self._check_rows(start, count)
        algorithms = fp.SCHEMA.enums["TuningAlgorithm"]
        names = {code: name.lower() for name, code in algorithms.items()}
        if v["algorithm"] not in names:
            raise Refused("BAD_PAYLOAD", f"unknown tuning algorithm {v['algorithm']}")
        sub = _unpack_mask(v["mask"], count * self.cols).reshape(count, self.cols)
        if v["targets"].size != sub.sum():
            raise Refused("BAD_PAYLOAD", f"targets has {v['targets'].size} entries, mask selects {int(sub.sum())}")
        if v["tolerance"] < 1:
            raise Refused("BAD_PAYLOAD", "tolerance must be >= 1")
        lim = self._active
        for name, code, hi in (("set_v", v["set_v"], lim["set"]), ("reset_v_max", v["reset_v_max"], lim["reset"]),
                               ("reset_v_min", v["reset_v_min"], v["reset_v_max"]),
                               ("gate_max", v["gate_max"], lim["gate"]), ("gate_min", v["gate_min"], v["gate_max"]),
                               ("reset_gate", v["reset_gate"], lim["gate"])):
            if not 0 < code <= hi:
                raise Refused("LIMIT", f"{name} = {code} codes outside 1..{hi}")
        for name in ("set_width", "reset_width"):
            if v[name] > lim["width"]:
                raise Refused("LIMIT", f"{name} code above {lim['width']}")
        mask = np.zeros((self.rows, self.cols), bool)
        mask[start : start + count] = sub
        targets = np.zeros((self.rows, self.cols))
        targets[mask] = v["targets"] * lsb
        width = lambda code: p.width_offset + int(code) * p.width_lsb  # noqa: E731
        config = TuningConfig(
            tolerance=int(v["tolerance"]) * lsb, set_v=int(v["set_v"]) * p.dac_line_lsb,
            set_width=width(v["set_width"]), gate_min=int(v["gate_min"]) * p.dac_gate_lsb,
            gate_max=int(v["gate_max"]) * p.dac_gate_lsb, reset_v_min=int(v["reset_v_min"]) * p.dac_line_lsb,
            reset_v_max=int(v["reset_v_max"]) * p.dac_line_lsb, reset_gate=int(v["reset_gate"]) * p.dac_gate_lsb,
            reset_width=width(v["reset_width"]), max_pulses=int(v["max_pulses"]), max_rounds=int(v["max_rounds"]))
        rows = slice(start, start + count)

        last = {"g": np.zeros((self.rows, self.cols))}

        def measure() -> np.ndarray:
            g = np.zeros((self.rows, self.cols))
            g[rows] = self._conductance_map(start, count, avg)  # avg: set below, before the loop
            last["g"] = g
            return g

        avg = 1
        sigma_rel = estimate_read_sigma(measure()[mask], measure()[mask])
        avg = int(v["verify_average"]) or verify_average(sigma_rel, targets[mask], config.tolerance)
        sigma = sigma_rel * np.maximum(targets, 1e-6) / np.sqrt(avg)
        tuner = TUNERS[names[int(v["algorithm"])]](targets, mask, config, sigma_meas=sigma)

        def apply(plan: Plan) -> None:
            batches = (("set", plan.set_mask, plan.set_v, plan.set_gate, plan.set_width, tuner.set_pulses),
                       ("reset", plan.reset_mask, plan.reset_v, plan.reset_gate, plan.reset_width, tuner.reset_pulses))
            for i, (kind, m, amp, gate, w, _) in enumerate(batches):
                m = m[rows]
                if not m.any():
                    continue
                amp_c = np.where(m, np.rint(np.broadcast_to(amp, mask.shape)[rows] / p.dac_line_lsb), 0)
                gate_c = np.rint(np.broadcast_to(gate, mask.shape)[rows] / p.dac_gate_lsb)
                w_c = np.rint((np.broadcast_to(w, mask.shape)[rows] - p.width_offset) / p.width_lsb)
                w_c = np.clip(w_c, 0, p.width_max_code).astype(np.int64)
                try:
                    self._apply_rows(kind, start, m, amp_c.astype(np.int64), gate_c.astype(np.int64), w_c)
                except Aborted as exc:
                    # the planner counted the whole round; take back what was never applied
                    cut = start + int(exc.reply["rows_done"])
                    batch_mask, counts = batches[i][1], batches[i][5]
                    counts[cut:] -= batch_mask[cut:]
                    for _, later_mask, *_unused, later_counts in batches[i + 1:]:
                        later_counts -= later_mask
                    raise

        def on_round(t, g) -> None:
            if req.flags & WANT_PROGRESS:
                self._reply(req, ST["OK"], fp.encode(req.opcode, "progress", {
                    "round": t.rounds, "pending": int(t.pending.sum()), "converged": int(t.converged.sum())}),
                    flags=PROGRESS)

        def reply() -> dict:
            return {"rounds": tuner.rounds,
                    "achieved": np.clip(np.rint(last["g"][mask] / lsb), 0, 0xFFFF),
                    "set_pulses": np.minimum(tuner.set_pulses[mask], 0xFFFF),
                    "reset_pulses": np.minimum(tuner.reset_pulses[mask], 0xFFFF),
                    "reasons": tuner.reasons[mask]}

        try:
            run_tuning(tuner, measure, apply, on_round, should_stop=self._check_abort)
        except Aborted:
            self._abort = True
        if self._abort:
            raise Aborted(reply())
        return reply()

    def _pulse_set(self, v: dict, req: fp.Message) -> dict:
        return self._pulse_batch(v, req, "set")

    def _pulse_reset(self, v: dict, req: fp.Message) -> dict:
        return self._pulse_batch(v, req, "reset")

    def _ground(self, mode: int) -> None:
        """Ground (0) or float (1) every line. The model does not tell the two apart:
        a floating line carries no current, as a grounded one at 0 V does not."""
        for levels in self._levels.values():
            levels[:] = 0
        for driven in self._driven.values():
            driven[:] = False

    def _ground_all(self, v: dict, req: fp.Message) -> dict:
        if v["mode"] not in (0, 1):
            raise Refused("BAD_PAYLOAD", f"mode must be 0 (ground) or 1 (float), not {v['mode']}")
        self._ground(v["mode"])
        return {}

    def _set_limits(self, v: dict, req: fp.Message) -> dict:
        a = self._limits
        for name, key, lo in (("read_max", "read", 0), ("set_max", "set", 1), ("reset_max", "reset", 1),
                              ("gate_max", "gate", 0), ("width_max", "width", 0)):
            if not lo <= int(v[name]) <= a[key]:
                raise Refused("LIMIT", f"{name} = {int(v[name])} codes outside {lo}..{a[key]} "
                                       "(limits can only be tightened below the board's maxima)")
        self._active = {"read": int(v["read_max"]), "set": int(v["set_max"]), "reset": int(v["reset_max"]),
                        "gate": int(v["gate_max"]), "width": int(v["width_max"])}
        return {name: self._active[key] for name, key in (("read_max", "read"), ("set_max", "set"),
                ("reset_max", "reset"), ("gate_max", "gate"), ("width_max", "width"))}

    def _abort_request(self, v: dict, req: fp.Message) -> dict:
        self._ground(0)
        return {"was_busy": 0}
