"""The board side of the wire: frames, one host session, reply cache, dispatch, watchdog.

A :class:`Peer` is what a host talks to. It decodes frames from any number of
connections, admits one host *session* at a time (PROTOCOL.md §7-§8), answers a
repeated request of that session from its reply cache instead of executing it again,
refuses everything that does not belong to the session (``NO_SESSION``), and hands every
other message to a *back end*: a table of handlers plus a few hooks (:class:`Backend`).
The back ends are the mock board (:mod:`memhw.mock`) and the bridge to the original
board's firmware; the C firmware core is the same peer written in C.

Threading: one lock serialises everything the peer does. A long handler polls every
connection between its steps (:meth:`Operation.should_stop`): the owner's ABORT stops it,
the owner's other requests wait in order, and other hosts are answered at once (a HELLO
with ``BUSY``, anything else with ``NO_SESSION``), so a second host never waits for the
first one's operation to finish to learn that the board is taken.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import numpy as np

import firmware_protocol as fp
from firmware_protocol.framing import PROGRESS, REPLY, WANT_PROGRESS

from ..faults import FaultSpec, FrameFaults

__all__ = ["Peer", "Connection", "Operation", "Backend", "HandlerTable", "Counters", "Refused", "Aborted",
           "Rebooted", "WATCHDOG_DEFAULT", "CLIENT_MAX_BYTES"]

log = logging.getLogger("memhw.peer")

ST = fp.STATUS
_OP = {m.name: m.opcode for m in fp.SCHEMA.messages}
_MODE = fp.SCHEMA.enums["HelloMode"]
#: messages the peer answers itself; every other one goes to the back end
PEER_MESSAGES = ("HELLO", "STATUS", "ABORT", "BYE")
#: seconds of owner silence after which the watchdog grounds applied DC levels
WATCHDOG_DEFAULT = 10.0
#: longest ``client`` string of a HELLO request
CLIENT_MAX_BYTES = 120


class Refused(Exception):
    """Raised inside a handler to answer with a non-OK status; nothing was applied."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = ST[status]
        self.reason = reason


class Aborted(Exception):
    """Raised inside a long handler when an ABORT arrived; carries the partial reply."""

    def __init__(self, reply: dict[str, Any]):
        super().__init__("aborted")
        self.reply = reply


class Rebooted(Exception):
    """The board rebooted in the middle of a request: nothing more is sent for it."""


Handler = Callable[[Any, dict, "Operation"], dict]


class HandlerTable(dict):
    """Message name -> handler ``fn(backend, values, op) -> reply fields``.

    >>> HANDLERS = HandlerTable()
    >>> @HANDLERS.register("GROUND_ALL")
    ... def ground_all(hw, values, op):
    ...     return {}
    """

    def register(self, message: str) -> Callable[[Handler], Handler]:
        """Decorator: handle ``message`` (a schema name, not one the peer answers itself)."""
        fp.SCHEMA.message(message)  # KeyError for an unknown name
        if message in PEER_MESSAGES:
            raise ValueError(f"{message} is answered by the peer itself")

        def add(fn: Handler) -> Handler:
            if message in self:
                raise ValueError(f"two handlers for {message}")
            self[message] = fn
            return fn

        return add


class Backend(Protocol):
    """What a peer needs from the hardware (or from whatever stands in for it)."""

    #: message name -> handler; messages missing here are answered UNKNOWN_OPCODE
    handlers: Mapping[str, Handler]

    def identity(self) -> dict[str, Any]:
        """HELLO reply fields other than major, minor, schema_hash, boot_id and opcodes."""

    def ground(self) -> None:
        """Ground every row, column and gate line."""

    def levels_applied(self) -> bool:
        """True while any line is driven at a non-zero level."""

    def new_session(self) -> None:
        """Forget session state (limits back to the maxima)."""

    def rebooted(self) -> None:
        """Power-up state (lines grounded, session state forgotten)."""

    def pulse_count(self) -> int:
        """Pulses applied to devices since boot (STATUS)."""


@dataclass
class Counters:
    """What the peer has seen and done since it was made (instrumentation: survives reboots)."""

    requests: int = 0                       # complete request messages, of every kind and host
    executed: dict = field(default_factory=dict)   # message name -> executions
    cache_hits: int = 0
    bad_frames: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    handler_seconds: float = 0.0           # host CPU time spent in handlers
    reboots: int = 0
    watchdog_trips: int = 0
    sessions: int = 0                       # sessions opened (NEW and TAKEOVER)
    takeovers: int = 0
    resumes: int = 0
    busy_answers: int = 0                   # HELLOs answered BUSY
    session_refusals: int = 0               # requests refused with NO_SESSION


class Connection:
    """One host connection to a :class:`Peer` (a TCP socket, a pty, an in-process link)."""

    def __init__(self, peer: "Peer", send: Callable[[bytes], None], poll: Callable[[], bytes] | None, address: str):
        self.peer = peer
        self.address = address
        self._send = send
        self._poll = poll or (lambda: b"")
        self.decoder = fp.FrameDecoder()
        self.assembler = fp.MessageAssembler(max_message=peer.max_message)
        self.last_rx = time.monotonic()
        self.closed = False
        self.broken = False      # sending failed: the host went away (the peer keeps working)
        self.hangup = False      # an injected link loss: close after this input

    def __repr__(self) -> str:
        return f"<Connection {self.address or '?'}{' closed' if self.closed else ''}>"

    def receive(self, data: bytes) -> None:
        """Bytes from the host.

        Raises
        ------
        ConnectionResetError
            An injected link loss: the connection is to be closed.
        """
        self.peer._receive(self, data)

    def close(self) -> None:
        """The host went away (or the connection was closed): see :meth:`Peer.disconnect`."""
        self.peer.disconnect(self)

    def send(self, wire: bytes) -> None:
        if self.closed or self.broken:
            return
        try:
            self._send(wire)
        except OSError as exc:  # the host is gone; whatever runs finishes, its replies are dropped
            log.info("%s: send failed (%s); replies to it are dropped", self.address, exc)
            self.broken = True

    def poll(self) -> bytes:
        if self.closed:
            return b""
        try:
            return self._poll()
        except OSError:
            self.broken = True
            return b""


class Operation:
    """Context of one executing request, handed to its handler."""

    def __init__(self, peer: "Peer", conn: Connection, request: fp.Message):
        self.peer = peer
        self.conn = conn
        self.request = request

    @property
    def wants_progress(self) -> bool:
        return bool(self.request.flags & WANT_PROGRESS)

    def progress(self, **fields: Any) -> None:
        """Send a progress frame (when the host asked for them)."""
        if self.wants_progress:
            self.peer._reply(self.conn, self.request, ST["OK"],
                             fp.encode(self.request.opcode, "progress", fields), flags=PROGRESS)

    def should_stop(self) -> bool:
        """Between steps: look at what arrived meanwhile; True once the owner sent ABORT."""
        return self.peer._poll_during_operation()

    def step_done(self, steps: int) -> None:
        """Fault point after each applied step (a row of a pulse batch, a round of PROGRAM):
        an injected or scheduled reboot happens here."""
        self.peer._fault_point(steps)


class Peer:
    """A board's protocol engine over a :class:`Backend`.

    Parameters
    ----------
    backend : Backend
        The handler table and hardware hooks.
    watchdog : float
        Seconds of owner silence after which applied DC levels are grounded and a
        half-received chunked request is discarded (0: off).
    faults : FaultSpec or str, optional
        Fault injection on the board's side of every connection (``drop``, ``corrupt``,
        ``dup``, ``truncate``, ``delay``, ``disconnect``) and ``reset`` (reboot probability
        per step of a long operation and per request).
    fault_seed : int
        Seeds the fault decisions.
    max_frame, max_message : int
        Payload bytes per frame, and per reassembled request.
    name : str
        For log messages.
    minor : int, optional
        Announce this minor version of the protocol (default: the schema's) and offer only
        the messages it has (``since``): a board with older firmware, for testing hosts.
    """

    def __init__(self, backend: Backend, *, watchdog: float = WATCHDOG_DEFAULT,
                 faults: FaultSpec | str | None = None, fault_seed: int = 0, max_frame: int = 4096,
                 max_message: int = 65536, name: str = "board", minor: int | None = None):
        self.backend = backend
        self.minor = fp.MINOR if minor is None else int(minor)
        if not 0 <= self.minor <= fp.MINOR:
            raise ValueError(f"minor must be in 0..{fp.MINOR}, got {minor!r}")
        self.name = name
        self.watchdog = float(watchdog)
        self.max_frame = int(max_frame)
        self.max_message = int(max_message)
        if isinstance(faults, str):
            faults = FaultSpec.parse(faults)
        self.faults = FrameFaults(faults, fault_seed, name=name) if faults is not None else None
        self._reset_rng = np.random.default_rng([fault_seed, 0x5EB0])
        self._reset_after: int | None = None
        self.counters = Counters()
        self.boot_id = secrets.randbits(16) or 1
        self.session = 0
        self.owner: Connection | None = None
        self.client = ""
        self._since = 0.0               # wall-clock time the session was opened
        self._connections: list[Connection] = []
        #: (connection, seq, payload CRC) of the HELLO that opened or resumed the session: its retry
        self._opening: tuple[Connection, int, int] | None = None
        #: why recently ended sessions ended (for the NO_SESSION reasons their hosts get)
        self._ended: OrderedDict[int, str] = OrderedDict()
        self._cache: OrderedDict[int, tuple[int, bytes]] = OrderedDict()
        self._backlog: list[tuple[Connection, fp.Message]] = []
        self._busy = False
        self._abort = False
        self._last_status = 0
        self._last_error = ""
        self._boot_time = time.monotonic()
        #: the requests and pulses counted before this boot (STATUS counts since boot)
        self._boot_requests = 0
        self._boot_pulses = 0
        self._last_rx = time.monotonic()
        self._lock = threading.RLock()
        handled = set(backend.handlers) | set(PEER_MESSAGES)
        unknown = handled - {m.name for m in fp.SCHEMA.messages}
        if unknown:
            raise ValueError(f"handlers for messages not in the schema: {sorted(unknown)}")
        #: the messages this board answers (the others: UNKNOWN_OPCODE)
        self.offered = frozenset(name for name in handled if fp.SCHEMA.message(name).since <= (fp.MAJOR, self.minor))
        self.opcodes = sorted(_OP[name] for name in self.offered)
        self._own_handlers = {"STATUS": self._handle_status, "ABORT": self._handle_abort, "BYE": self._handle_bye}

    # ------------------------------------------------------------ connections
    def open(self, send: Callable[[bytes], None], poll: Callable[[], bytes] | None = None,
             address: str = "") -> Connection:
        """A new host connection: replies go to ``send``; ``poll`` returns bytes that arrived
        while the peer is busy (non-blocking)."""
        with self._lock:
            conn = Connection(self, send, poll, address)
            self._connections.append(conn)
            if self.faults is not None:
                self.faults.reset()
            return conn

    def disconnect(self, conn: Connection) -> None:
        """The connection is gone. Its partial frames and queued requests are discarded
        (never executed later); if it owned the session, every line is grounded and the
        session is kept, detached, for the host to resume (HELLO RESUME) with its reply
        cache; a new session may replace it."""
        with self._lock:
            if conn.closed:
                return
            conn.closed = True
            if conn in self._connections:
                self._connections.remove(conn)
            self._backlog = [(c, m) for c, m in self._backlog if c is not conn]
            if conn is self.owner:
                self.owner = None
                if not self._busy:
                    self.backend.ground()
                log.info("%s: owner %s disconnected; session %#06x detached", self.name, conn.address, self.session)

    @property
    def busy(self) -> bool:
        return self._busy

    # ---------------------------------------------------------------- input
    def _receive(self, conn: Connection, data: bytes) -> None:
        with self._lock:
            self.check_watchdog()
            now = time.monotonic()
            conn.last_rx = self._last_rx = now
            self.counters.bytes_in += len(data)
            self._backlog.extend((conn, m) for m in self._messages(conn, self._inject(conn, "tx", data)))
            while self._backlog and not self._busy:
                self._dispatch(*self._backlog.pop(0))
            if conn.hangup:
                conn.hangup = False
                raise ConnectionResetError(f"{self.name}: link lost (injected)")

    def _inject(self, conn: Connection, direction: str, data: bytes) -> bytes:
        """Board-side fault injection ("tx": host to board, "rx": board to host)."""
        return data if self.faults is None else self.faults.through(conn, direction, data)

    def _messages(self, conn: Connection, data: bytes) -> list[fp.Message]:
        out = []
        asm = conn.assembler
        for frame in conn.decoder.feed(data):
            msg = asm.add(frame)
            if msg is not None and not msg.is_reply:
                self.counters.requests += 1
                out.append(msg)
            if asm.oversize is not None:
                big, asm.oversize = asm.oversize, None
                self.counters.requests += 1
                req = fp.Message(big.version, big.flags, big.seq, big.opcode, 0, big.session, b"")
                self._refuse(conn, req, Refused("TOO_LARGE", f"request exceeds max_message = {self.max_message} bytes"))
        self.counters.bad_frames = sum(c.decoder.dropped + c.assembler.dropped for c in self._connections)
        return out

    def _poll_during_operation(self) -> bool:
        """Read every connection while an operation runs (see the module docstring)."""
        for conn in list(self._connections):
            data = conn.poll()
            if not data:
                continue
            conn.last_rx = self._last_rx = time.monotonic()
            self.counters.bytes_in += len(data)
            for msg in self._messages(conn, self._inject(conn, "tx", data)):
                if conn is self.owner and msg.session == self.session and msg.opcode == _OP["ABORT"]:
                    self._abort = True
                    self._reply(conn, msg, ST["OK"], fp.encode(msg.opcode, "reply", {"was_busy": 1}))
                elif conn is self.owner or self._may_wait(msg):
                    self._backlog.append((conn, msg))
                elif msg.opcode == _OP["HELLO"]:
                    self._hello(conn, msg)  # answered BUSY now: the session is open and busy
                else:
                    self._refuse_session(conn, msg)
        return self._abort

    def _may_wait(self, msg: fp.Message) -> bool:
        """A HELLO that may change the session (RESUME, TAKEOVER) waits for the running operation."""
        if msg.opcode != _OP["HELLO"]:
            return False
        try:
            mode = fp.decode(msg.opcode, "request", msg.payload)["mode"]
        except fp.ProtocolError:
            return False
        return mode in (_MODE["RESUME"], _MODE["TAKEOVER"])

    # ------------------------------------------------------------- dispatch
    def _dispatch(self, conn: Connection, req: fp.Message) -> None:
        if conn.closed:
            return
        if req.opcode == _OP["HELLO"]:
            self._hello(conn, req)  # never answered from the cache
            return
        if not self.session or req.session != self.session or conn is not self.owner:
            self._refuse_session(conn, req)
            return
        c = self.counters
        key = zlib.crc32(req.payload, req.opcode)
        cached = self._cache.get(req.seq)
        if cached is not None and cached[0] == key and req.opcode != _OP["ABORT"]:
            c.cache_hits += 1
            self._emit(conn, cached[1])
            return
        message = self._message(req.opcode)
        if message is None:
            wire = self._refuse(conn, req, Refused("UNKNOWN_OPCODE", f"opcode {req.opcode:#04x} not implemented"))
        elif req.version != fp.MAJOR:
            wire = self._refuse(conn, req, Refused("BAD_VERSION",
                                                   f"board speaks protocol {fp.MAJOR}, request is {req.version}"))
        else:
            wire = self._execute(conn, req, message)
            if wire is None:
                return
        if req.opcode not in (_OP["ABORT"], _OP["BYE"]) and req.session == self.session:
            self._cache[req.seq] = (key, wire)
            self._cache.move_to_end(req.seq)
            while len(self._cache) > fp.SCHEMA.reply_cache:
                self._cache.popitem(last=False)

    def _message(self, opcode: int) -> str | None:
        try:
            name = fp.SCHEMA.message(opcode).name
        except KeyError:
            return None
        return name if name in self.offered else None

    def _execute(self, conn: Connection, req: fp.Message, name: str) -> bytes | None:
        """Run one request; the reply's wire bytes, or None when it died with a reboot."""
        c = self.counters
        t0 = time.perf_counter()
        op = Operation(self, conn, req)
        try:
            values = fp.decode(req.opcode, "request", req.payload)
            self._busy, self._abort = True, False
            if name in PEER_MESSAGES:
                reply = self._own_handlers[name](values, op)
            else:
                reply = self.backend.handlers[name](self.backend, values, op)
            encoded = fp.encode(req.opcode, "reply", reply)
            if name != "BYE":
                self._fault_point(None)
            c.executed[name] = c.executed.get(name, 0) + 1
            return self._reply(conn, req, ST["OK"], encoded)
        except fp.ProtocolError as exc:
            return self._refuse(conn, req, Refused("BAD_PAYLOAD", str(exc)))
        except Refused as exc:
            return self._refuse(conn, req, exc)
        except Rebooted:
            c.executed[name] = c.executed.get(name, 0) + 1
            return None  # the reply died with the old boot
        except Aborted as exc:
            self.backend.ground()
            c.executed[name] = c.executed.get(name, 0) + 1
            return self._reply(conn, req, ST["ABORTED"], fp.encode(req.opcode, "reply", exc.reply))
        except Exception as exc:  # noqa: BLE001 - a firmware fault must not kill the board
            log.exception("%s: handler %s failed", self.name, name)
            self.backend.ground()
            return self._refuse(conn, req, Refused("INTERNAL", f"{type(exc).__name__}: {exc}"))
        finally:
            self._busy = False
            c.handler_seconds += time.perf_counter() - t0
            if self.owner is None and self.session:  # the owner left while this ran
                self.backend.ground()

    # -------------------------------------------------------------- output
    def _emit(self, conn: Connection, wire: bytes) -> None:
        self.counters.bytes_out += len(wire)
        if self.faults is not None:
            wire = self._inject(conn, "rx", wire)
            if self.faults.spec.delay:
                time.sleep(self.faults.delay_time())
            if not wire:
                return
        conn.send(wire)

    def _reply(self, conn: Connection, req: fp.Message, status: int, payload: bytes, flags: int = 0,
               session: int | None = None) -> bytes:
        """Send a reply (or progress frame) to ``req``; its header carries ``req``'s session
        unless ``session`` is given (a new session for HELLO, 0 for session refusals)."""
        wire = fp.encode_message(seq=req.seq, opcode=req.opcode, payload=payload, flags=REPLY | flags,
                                 status=status, session=req.session if session is None else session,
                                 max_payload=self.max_frame)
        self._emit(conn, wire)
        return wire

    def _refuse(self, conn: Connection, req: fp.Message, exc: Refused, session: int | None = None) -> bytes:
        self._last_status, self._last_error = exc.status, exc.reason
        return self._reply(conn, req, exc.status, fp.encode(req.opcode, "error", {"reason": exc.reason}),
                           session=session)

    def _refuse_session(self, conn: Connection, req: fp.Message) -> None:
        self.counters.session_refusals += 1
        if not self.session:
            why = "no session is open: send HELLO first"
        elif req.session != self.session:
            why = (f"session {req.session:#06x} is not the board's session"
                   + (f" ({self._ended[req.session]})" if req.session in self._ended else "") if req.session else
                   "the request carries no session id (0): every request after HELLO must carry the session "
                   "id of the HELLO reply")
        else:
            why = "this connection does not own the session: resume it with HELLO RESUME"
        self._refuse(conn, req, Refused("NO_SESSION", f"{why}; nothing was applied"), session=0)

    # ------------------------------------------------------------- sessions
    def _hello(self, conn: Connection, req: fp.Message) -> None:
        c = self.counters
        key = (conn, req.seq, zlib.crc32(req.payload))
        if self.session and self._opening == key and self.owner is conn:
            # a retry of the HELLO that opened (or resumed) this session, its reply lost: same answer
            c.cache_hits += 1
            self._reply(conn, req, ST["OK"], fp.encode(req.opcode, "reply", self.identity()), session=self.session)
            return
        try:
            v = fp.decode(req.opcode, "request", req.payload)
            client = v["client"]
            if len(client.encode("utf-8")) > CLIENT_MAX_BYTES:
                raise Refused("BAD_PAYLOAD", f"client name longer than {CLIENT_MAX_BYTES} bytes")
            mode = int(v["mode"])
            if mode == _MODE["RESUME"]:
                if not (self.session and v["session"] == self.session):
                    raise Refused("NO_SESSION", f"session {int(v['session']):#06x} cannot be resumed: "
                                                + ("the board has no open session (it rebooted or the session "
                                                   "ended)" if not self.session else
                                                   "another session is open now (a takeover)"))
                self._take(conn, client)
                c.resumes += 1
            elif mode == _MODE["NEW"] and self.session and self._busy and self.owner is None:
                c.busy_answers += 1
                raise Refused("BUSY", self._busy_detached())
            elif mode == _MODE["TAKEOVER"] or (mode == _MODE["NEW"] and self.owner is None):
                old = self.session
                if old and mode == _MODE["TAKEOVER"] and self.owner is not None:
                    c.takeovers += 1
                    self._last_error = (f"takeover: session {old:#06x} of {self.client!r} ended by "
                                        f"{client!r} from {conn.address or '?'}")
                    log.warning("%s: %s", self.name, self._last_error)
                    self._remember_end(old, f"taken over by {client!r} at {time.strftime('%H:%M:%S')}")
                elif old:
                    self._remember_end(old, f"replaced by a new session of {client!r} after its host disconnected")
                while self.session in (0, old):
                    self.session = secrets.randbits(16)
                self._cache.clear()
                self._since = time.time()
                self.backend.new_session()
                self._take(conn, client)
                c.sessions += 1
            elif mode == _MODE["NEW"] and self.owner is conn:
                c.busy_answers += 1
                raise Refused("BUSY", self._busy_own())
            elif mode == _MODE["NEW"]:
                idle = time.monotonic() - self.owner.last_rx
                c.busy_answers += 1
                raise Refused("BUSY", f"board in use by {self.client or 'an unnamed host'} "
                                      f"({self.owner.address or 'unknown address'}) since "
                                      f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self._since))}, "
                                      f"idle {idle:.1f} s; if that host is gone, take the board over "
                                      "(HELLO mode TAKEOVER)")
            else:
                raise Refused("BAD_PAYLOAD", f"unknown HELLO mode {mode}")
        except fp.ProtocolError as exc:
            self._refuse(conn, req, Refused("BAD_PAYLOAD", str(exc)), session=0)
            return
        except Refused as exc:
            self._refuse(conn, req, exc, session=0)
            return
        c.executed["HELLO"] = c.executed.get("HELLO", 0) + 1
        self._opening = key
        self._reply(conn, req, ST["OK"], fp.encode(req.opcode, "reply", self.identity()), session=self.session)

    def _busy_own(self) -> str:
        """BUSY reason for a HELLO NEW from the connection that owns the session (not a retry)."""
        return (f"this connection already owns session {self.session:#06x} of {self.client!r}: a HELLO NEW that is "
                "not a retry of the one that opened it (same seq and payload) opens no second session; end it "
                "with BYE first, or replace it with HELLO mode TAKEOVER")

    def _busy_detached(self) -> str:
        """BUSY reason for a HELLO NEW while the operation of a detached session still runs."""
        return (f"board busy: session {self.session:#06x} of {self.client!r} lost its connection while an "
                "operation ran, which finishes first; try again when it ends, or resume that session "
                "(HELLO mode RESUME)")

    def identity(self) -> dict[str, Any]:
        """The HELLO reply's fields: protocol version, boot id, opcodes and the back end's own."""
        return {"major": fp.MAJOR, "minor": self.minor, "schema_hash": fp.SCHEMA.hash, "boot_id": self.boot_id,
                "opcodes": self.opcodes, **self.backend.identity()}

    def _remember_end(self, session: int, why: str) -> None:
        self._ended[session] = why
        while len(self._ended) > 8:
            self._ended.popitem(last=False)

    def _take(self, conn: Connection, client: str) -> None:
        """``conn`` owns the session from now on; every line starts grounded."""
        self.owner, self.client = conn, client
        self.backend.ground()

    def _handle_bye(self, values: dict, op: Operation) -> dict:
        self._end_session()
        return {}

    def _end_session(self) -> None:
        self._remember_end(self.session, "ended by BYE")
        self.backend.ground()
        self.backend.new_session()
        self._cache.clear()
        self.session, self.owner, self.client, self._opening = 0, None, "", None

    def _handle_status(self, values: dict, op: Operation) -> dict:
        return {"busy": 0, "last_status": self._last_status, "last_error": self._last_error,
                "requests": (self.counters.requests - self._boot_requests) & 0xFFFFFFFF,
                "pulses": (int(self.backend.pulse_count()) - self._boot_pulses) & 0xFFFFFFFF,
                "uptime": time.monotonic() - self._boot_time}

    def _handle_abort(self, values: dict, op: Operation) -> dict:  # ABORT while idle
        self.backend.ground()
        return {"was_busy": 0}

    # ------------------------------------------------------ reboot, faults
    def reboot(self) -> None:
        """Power-cycle: new boot id, lines grounded, session, reply cache, queued requests
        and partial frames lost. Counters (instrumentation) keep counting."""
        with self._lock:
            self.boot_id = secrets.randbits(16) or 1
            self.backend.rebooted()
            self._cache.clear()
            self._backlog.clear()
            for conn in self._connections:
                conn.decoder.reset()
                conn.assembler.reset()
            self.session, self.owner, self.client, self._opening = 0, None, "", None
            self._last_status, self._last_error = 0, ""
            self._boot_time = time.monotonic()
            self._boot_requests = self.counters.requests
            self._boot_pulses = int(self.backend.pulse_count())
            self._reset_after = None
            self.counters.reboots += 1

    def schedule_reset(self, after_steps: int) -> None:
        """Reboot in the middle of the next long operation, right after its
        ``after_steps``-th step (its progress frame sent); ``after_steps`` = the number of
        steps reboots after the last one, before the final reply."""
        self._reset_after = int(after_steps)

    def _fault_point(self, steps: int | None) -> None:
        if steps is not None and self._reset_after is not None and steps >= self._reset_after:
            self.reboot()
            raise Rebooted()
        f = self.faults
        if f is not None and f.spec.reset and self._reset_rng.random() < f.spec.reset:
            self.reboot()
            raise Rebooted()

    # -------------------------------------------------------------- watchdog
    def check_watchdog(self, now: float | None = None) -> bool:
        """Ground the lines (and drop half-received requests) if the host has been silent
        for longer than ``watchdog`` seconds while levels are applied or a chunked request is
        half sent. Called by servers between reads and on every receive. True when it tripped."""
        with self._lock:
            if not self.watchdog or self._busy:
                return False
            now = time.monotonic() if now is None else now
            silent = now - (self.owner.last_rx if self.owner is not None else self._last_rx)
            if silent <= self.watchdog:
                return False
            levels = self.backend.levels_applied()
            partial = any(c.assembler.pending for c in self._connections)
            if not (levels or partial):
                return False
            self.backend.ground()
            for conn in self._connections:
                conn.assembler.reset()
                conn.decoder.reset()
            self.counters.watchdog_trips += 1
            what = " and ".join(w for w, on in (("DC levels applied", levels), ("a request half sent", partial)) if on)
            self._last_error = f"watchdog: host silent for {silent:.1f} s with {what}; every line grounded"
            log.warning("%s: %s", self.name, self._last_error)
            return True
