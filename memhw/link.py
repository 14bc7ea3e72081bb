"""Request/response over a byte transport: sequence numbers, timeouts, retries.

The link sends a request as one or more frames under a fresh sequence number
and waits for the reply with the same number. Frames that fail to decode are
dropped by :class:`firmware_protocol.FrameDecoder`; replies carrying another
sequence number (a late answer to a request that already timed out) are
dropped and counted. When no reply arrives in time the *same* frames are sent
again, up to ``retries`` times: the board answers a repeated sequence number
from its reply cache, so a retried pulse is never applied twice.

After the handshake every request carries the board's boot id in its header
(protocol 1.3): a board that rebooted in between refuses it with
``BOOT_MISMATCH`` instead of executing it a second time (its reply cache died
with the reboot), and the reply's new boot id raises :class:`BoardResetError`.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import firmware_protocol as fp
from firmware_protocol.framing import WANT_PROGRESS

from .errors import BoardError, BoardResetError, LinkTimeout, OperationAborted, ProtocolError
from .transport import Transport

__all__ = ["Link", "LinkStats"]

_OK = fp.STATUS["OK"]
_ABORTED = fp.STATUS["ABORTED"]


@dataclass
class LinkStats:
    """Counters of what crossed the link (bytes include framing)."""

    requests: int = 0
    round_trips: int = 0
    retries: int = 0
    stale_dropped: int = 0
    progress_frames: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    payload_out: int = 0
    payload_in: int = 0
    per_opcode: dict = field(default_factory=dict)

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
        Seconds to wait for a reply (reset by every progress frame).
    retries : int
        Re-sends of an unanswered request before :class:`LinkTimeout`.
    """

    def __init__(self, transport: Transport, timeout: float = 2.0, retries: int = 3):
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self.max_payload = fp.SCHEMA.min_frame_payload
        #: boot id the replies must carry (set after the handshake); None: not checked
        self.boot_id: int | None = None
        #: boot id and protocol major (header version) of the last final reply
        self.last_boot_id: int | None = None
        self.last_version: int | None = None
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
                                 boot_id=self.boot_id or 0)
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
    ) -> dict[str, Any]:
        """Send a request and return the decoded reply payload.

        Parameters
        ----------
        message : str
            Message name from the schema (``"READ_MAP"``).
        values : mapping
            Request fields.
        timeout : float, optional
            Overrides the link's timeout for this request.
        progress : callable, optional
            Called with each decoded progress report; asks the board for them.

        Raises
        ------
        LinkTimeout
            No reply after all retries.
        BoardError
            The board answered with a non-OK status.
        BoardResetError
            The reply comes from a board that rebooted since the handshake.
        """
        m = fp.SCHEMA.message(message)
        try:
            payload = fp.encode(m.opcode, "request", values or {})
        except fp.ProtocolError as exc:
            raise ProtocolError(str(exc)) from None
        flags = WANT_PROGRESS if progress is not None else 0
        wait = self.timeout if timeout is None else timeout
        with self._lock:
            seq = self._next_seq()
            # HELLO goes out with boot id 0: it must reach a rebooted board
            boot = 0 if message == "HELLO" else (self.boot_id or 0)
            wire = fp.encode_message(seq=seq, opcode=m.opcode, payload=payload,
                                     max_payload=self.max_payload, flags=flags, boot_id=boot)
            self.last_seq, self.last_wire = seq, wire
            st = self.stats
            st.requests += 1
            st.per_opcode[m.name] = st.per_opcode.get(m.name, 0) + 1
            self.busy = True
            try:
                for attempt in range(self.retries + 1):
                    if attempt:
                        st.retries += 1
                    self.transport.write(wire)
                    st.bytes_out += len(wire)
                    st.payload_out += len(payload)
                    st.round_trips += 1
                    reply = self._await(seq, m, wait, progress)
                    if reply is not None:
                        return self._finish(m, reply)
            finally:
                self.busy = False
            raise LinkTimeout(
                f"{m.name}: no reply from {self.transport.url!r} after {self.retries + 1} attempts "
                f"of {wait:g} s ({self.bad_frames} bad frames seen)"
            )

    def _await(self, seq: int, m: fp.schema.Message, wait: float,
               progress: Callable[[dict], None] | None) -> fp.Message | None:
        deadline = time.monotonic() + wait
        decoder, st = self._decoder, self.stats
        frames = self._frames
        while True:
            if not frames:
                left = deadline - time.monotonic()
                data = self.transport.read(max(left, 0.0))
                if data:
                    st.bytes_in += len(data)
                    frames.extend(decoder.feed(data))
                elif left <= 0:
                    return None
            if frames:
                # frames after the final reply stay queued for the next request (stale ones are counted there)
                while frames:
                    frame = frames.popleft()
                    msg = self._assembler.add(frame)
                    if msg is None or not msg.is_reply:
                        continue
                    if msg.seq != seq or msg.opcode != m.opcode:
                        st.stale_dropped += 1
                        continue
                    st.payload_in += len(msg.payload)
                    if msg.is_progress:
                        if self.boot_id is not None and msg.boot_id != self.boot_id:
                            st.stale_dropped += 1  # from another boot: says nothing about this request
                            continue
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
        """Forget the decoder, reassembly and boot-id state (before a new handshake);
        discard unread input. Counters are kept."""
        with self._lock:
            self._decoder.reset()
            self._assembler = fp.MessageAssembler()
            self._frames.clear()
            self.boot_id = None
            self.last_boot_id = None
            self.last_version = None
            try:
                self.transport.reset_input()
            except Exception:  # noqa: BLE001 - a dead transport is reopened by the caller
                pass

    def _finish(self, m: fp.schema.Message, msg: fp.Message) -> dict[str, Any]:
        self.last_boot_id = msg.boot_id
        self.last_version = msg.version
        if self.boot_id is not None and msg.boot_id != self.boot_id:
            raise BoardResetError(
                msg.status, fp.SCHEMA.status_name(msg.status),
                f"board rebooted (boot id {self.boot_id:#06x} -> {msg.boot_id:#06x}); "
                "its lines, levels and any operation in flight were lost",
            )
        try:
            if msg.status == _OK:
                return fp.decode(m.opcode, "reply", msg.payload)
            if msg.status == _ABORTED:
                reply = fp.decode(m.opcode, "reply", msg.payload)
                raise OperationAborted(msg.status, "ABORTED", "operation aborted", reply)
            reason = fp.decode(m.opcode, "error", msg.payload)["reason"]
        except fp.ProtocolError as exc:
            raise ProtocolError(f"{m.name}: malformed reply: {exc}") from None
        raise BoardError(msg.status, fp.SCHEMA.status_name(msg.status), reason)
