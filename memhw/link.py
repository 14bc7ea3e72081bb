"""Request/response over a byte transport: sequence numbers, timeouts, retries.

The link sends a request as one or more frames under a fresh sequence number
and waits for the reply with the same number. Frames that fail to decode are
dropped by :class:`firmware_protocol.FrameDecoder`; replies carrying another
sequence number (a late answer to a request that already timed out) are
dropped and counted. When no reply arrives in time the *same* frames are sent
again, up to ``retries`` times: the board answers a repeated sequence number
from its reply cache, so a retried pulse is never applied twice.

After the handshake every request carries the session id the board issued in
its HELLO reply (protocol 2.0). A board that no longer knows the session (it
rebooted, or another host took it over) refuses the request with
``NO_SESSION`` and applies nothing: :class:`~memhw.errors.SessionLost`.

When the transport itself fails mid-request (a cable pulled, a socket reset) and
the request is self-contained (``resumable=True``), the link asks its owner to
reconnect and resume the session (``on_disconnect``, set by the Board) and sends
the very same frames again: the board answers from the session's reply cache
if it executed them, or executes them now if they never arrived. Every wait
checks its deadline on every read, whatever arrives (garbage included).
"""

from __future__ import annotations

import collections
import itertools
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import firmware_protocol as fp
from firmware_protocol.framing import WANT_PROGRESS

from .errors import (BoardBusy, BoardError, LimitError, LinkTimeout, OperationAborted, ProtocolError,
                     SessionLost, TransportError)
from .transport import Transport

__all__ = ["Link", "LinkStats", "check_timeout"]

_OK = fp.STATUS["OK"]
_ABORTED = fp.STATUS["ABORTED"]
#: board refusals with their own error class
_ERRORS = {fp.STATUS["NO_SESSION"]: SessionLost, fp.STATUS["BUSY"]: BoardBusy}
_HELLO = fp.SCHEMA.message("HELLO").opcode
#: longest timeout accepted, s (a day): anything longer is a mistake, not a wish
TIMEOUT_MAX = 86400.0


def check_timeout(value: object, name: str = "timeout") -> float:
    """A timeout in seconds: a finite number > 0 (at most a day).

    Raises
    ------
    LimitError
        Anything else (a string, NaN, infinity, 0, a negative number), with one clear line.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LimitError(f"{name} must be a number of seconds, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and 0 < v <= TIMEOUT_MAX):
        raise LimitError(f"{name} must be a finite number of seconds in (0, {TIMEOUT_MAX:g}], got {value!r}")
    return v


def _check_retries(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise LimitError(f"retries must be an integer in 0..100, got {value!r}")
    return int(value)


@dataclass
class LinkStats:
    """Counters of what crossed the link (bytes include framing)."""

    requests: int = 0
    round_trips: int = 0
    retries: int = 0
    stale_dropped: int = 0
    progress_frames: int = 0
    resumes: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    payload_out: int = 0
    payload_in: int = 0
    per_opcode: dict = field(default_factory=dict)
    #: bytes on the wire (both directions, framing included) per message name
    wire_per_opcode: dict = field(default_factory=dict)

    @property
    def bytes_total(self) -> int:
        return self.bytes_out + self.bytes_in

    @property
    def payload_total(self) -> int:
        return self.payload_out + self.payload_in


class Link:
    """Request/response channel to one board.

    Parameters
    ----------
    transport : Transport
        The byte stream.
    timeout : float
        Seconds to wait for a reply (reset by every progress frame); finite, > 0.
    retries : int
        Re-sends of an unanswered request before :class:`LinkTimeout`.
    """

    def __init__(self, transport: Transport, timeout: float = 2.0, retries: int = 3):
        self.transport = transport
        self.timeout = check_timeout(timeout)
        self.retries = _check_retries(retries)
        self.max_payload = fp.SCHEMA.min_frame_payload
        #: the session id every request carries (from the HELLO reply); 0 before the handshake
        self.session = 0
        #: session id and protocol major (header version) of the last final reply
        self.last_session: int | None = None
        self.last_version: int | None = None
        #: called when the transport fails mid-request; True when the session was resumed
        self.on_disconnect: Callable[[], bool] | None = None
        #: True while a request waits for its reply
        self.busy = False
        #: sequence number and wire bytes of the last request sent
        self.last_seq: int | None = None
        self.last_wire = b""
        self.stats = LinkStats()
        self._decoder = fp.FrameDecoder()
        self._assembler = fp.MessageAssembler()
        self._frames: collections.deque = collections.deque()  # decoded, not yet handled
        self._seq = itertools.count(int(time.monotonic_ns()) & 0xFFFF)
        self._seq_lock = threading.Lock()
        self._lock = threading.RLock()

    @property
    def bad_frames(self) -> int:
        """Frames dropped by the decoder or assembler since the link opened."""
        return self._decoder.dropped + self._assembler.dropped

    def _next_seq(self) -> int:
        with self._seq_lock:
            return next(self._seq) & 0xFFFF

    def send_only(self, message: str, values: Mapping[str, Any] | None = None) -> int:
        """Send a request without waiting for its reply (used for ABORT from
        another thread while a request is in flight). Returns its sequence number."""
        m = fp.SCHEMA.message(message)
        payload = fp.encode(m.opcode, "request", values or {})
        seq = self._next_seq()
        wire = fp.encode_message(seq=seq, opcode=m.opcode, payload=payload, max_payload=self.max_payload,
                                 session=self.session)
        self.transport.write(wire)
        self.stats.bytes_out += len(wire)
        self.stats.payload_out += len(payload)
        return seq

    def request(
        self,
        message: str,
        values: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        progress: Callable[[dict], None] | None = None,
        resumable: bool = False,
    ) -> dict[str, Any]:
        """Send a request and return the decoded reply payload.

        Parameters
        ----------
        message : str
            Message name from the schema (``"READ_MAP"``).
        values : mapping
            Request fields.
        timeout : float, optional
            Overrides the link's timeout for this request (finite, > 0).
        progress : callable, optional
            Called with each decoded progress report; asks the board for them. An
            exception it raises is re-raised after the reply has arrived, never in the
            middle of the exchange.
        resumable : bool
            The request does not depend on state a reconnection loses (DC levels): if the
            transport fails, resume the session (``on_disconnect``) and send it again.

        Raises
        ------
        LinkTimeout
            No reply after all retries.
        BoardError
            The board answered with a non-OK status (:class:`SessionLost` for
            ``NO_SESSION``, :class:`BoardBusy` for ``BUSY``).
        """
        m = fp.SCHEMA.message(message)
        try:
            payload = fp.encode(m.opcode, "request", values or {})
        except fp.ProtocolError as exc:
            raise ProtocolError(str(exc)) from None
        flags = WANT_PROGRESS if progress is not None else 0
        wait = self.timeout if timeout is None else check_timeout(timeout)
        with self._lock:
            seq = self._next_seq()
            # HELLO goes out with session 0: it asks for one
            wire = fp.encode_message(seq=seq, opcode=m.opcode, payload=payload, max_payload=self.max_payload,
                                     flags=flags, session=0 if m.opcode == _HELLO else self.session)
            self.last_seq, self.last_wire = seq, wire
            st = self.stats
            st.requests += 1
            st.per_opcode[m.name] = st.per_opcode.get(m.name, 0) + 1
            self.busy = True
            failure: list[BaseException] = []

            def report(values: dict) -> None:  # a failing callback must not break the exchange
                if not failure:
                    try:
                        progress(values)  # type: ignore[misc]
                    except BaseException as exc:  # noqa: BLE001 - re-raised below
                        failure.append(exc)

            try:
                resumes = 0
                attempt = 0
                while attempt <= self.retries:
                    if attempt:
                        st.retries += 1
                    try:
                        self.transport.write(wire)
                        st.bytes_out += len(wire)
                        st.payload_out += len(payload)
                        st.round_trips += 1
                        before = st.bytes_in
                        reply = self._await(seq, m, wait, report if progress is not None else None)
                        st.wire_per_opcode[m.name] = (st.wire_per_opcode.get(m.name, 0) + len(wire)
                                                      + st.bytes_in - before)
                    except TransportError:
                        if not (resumable and self.on_disconnect is not None and resumes < self.retries):
                            raise
                        resumes += 1
                        if not self.on_disconnect():
                            raise
                        st.resumes += 1
                        continue  # the same bytes again, in the resumed session
                    if reply is not None:
                        result = self._finish(m, reply)
                        if failure:
                            raise failure[0]
                        return result
                    attempt += 1
            finally:
                self.busy = False
            raise LinkTimeout(
                f"{m.name}: no reply from {self.transport.url!r} after {self.retries + 1} attempts "
                f"of {wait:g} s ({self.bad_frames} bad frames seen)"
            )

    def _await(self, seq: int, m: fp.schema.Message, wait: float,
               progress: Callable[[dict], None] | None) -> fp.Message | None:
        """Read until the final reply to (seq, opcode) arrives or the deadline passes; the
        deadline is checked after every read and moves only with a matching progress frame."""
        deadline = time.monotonic() + wait
        decoder, st, frames = self._decoder, self.stats, self._frames
        read = self.transport.read
        while True:
            if not frames:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                data = read(left)
                if not data:
                    continue
                st.bytes_in += len(data)
                frames.extend(decoder.feed(data))
            # frames after the final reply stay queued for the next request (stale ones are counted there)
            while frames:
                msg = self._assembler.add(frames.popleft())
                if msg is None or not msg.is_reply:
                    continue
                if msg.seq != seq or msg.opcode != m.opcode:
                    st.stale_dropped += 1
                    continue
                st.payload_in += len(msg.payload)
                if msg.is_progress:
                    st.progress_frames += 1
                    deadline = time.monotonic() + wait
                    if progress is not None:
                        try:
                            report = fp.decode(m.opcode, "progress", msg.payload)
                        except fp.ProtocolError:
                            continue
                        progress(report)
                    continue
                return msg
            if time.monotonic() >= deadline:  # a stream of stale frames or garbage must not keep us here
                return None

    def reset(self) -> None:
        """Forget the decoder, reassembly and session state (before a new handshake);
        discard unread input. Counters are kept."""
        with self._lock:
            self._decoder.reset()
            self._assembler = fp.MessageAssembler()
            self._frames.clear()
            self.last_session = None
            self.last_version = None
            try:
                self.transport.reset_input()
            except Exception:  # noqa: BLE001 - a dead transport is reopened by the caller
                pass

    def _finish(self, m: fp.schema.Message, msg: fp.Message) -> dict[str, Any]:
        self.last_session = msg.session
        self.last_version = msg.version
        try:
            if msg.status == _OK:
                return fp.decode(m.opcode, "reply", msg.payload)
            if msg.status == _ABORTED:
                reply = fp.decode(m.opcode, "reply", msg.payload)
                raise OperationAborted(msg.status, "ABORTED", "operation aborted", reply)
            reason = fp.decode(m.opcode, "error", msg.payload)["reason"]
        except fp.ProtocolError as exc:
            raise ProtocolError(f"{m.name}: malformed reply: {exc}") from None
        raise _ERRORS.get(msg.status, BoardError)(msg.status, fp.SCHEMA.status_name(msg.status), reason)
