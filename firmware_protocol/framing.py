"""Frames: header + payload + CRC-32, COBS-encoded, delimited by 0x00.

A *message* (one request, reply or progress report) is sent as one or more
frames of at most ``max_payload`` payload bytes each; all frames of a message
share the header's ``seq`` and ``opcode``, carry increasing ``chunk`` indices
and every frame but the last has the ``MORE`` flag.

:class:`FrameDecoder` is incremental: feed it whatever bytes arrive, it returns
the complete valid frames and silently drops (and counts) anything else, so it
resynchronises at the next delimiter after garbage, a lost byte or a corrupt
frame. :class:`MessageAssembler` joins chunks back into messages.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from cobs import cobs

from .errors import ProtocolError
from .schema import SCALAR_TYPES, SCHEMA

__all__ = [
    "HEADER",
    "FLAGS",
    "Frame",
    "Message",
    "encode_frame",
    "encode_message",
    "FrameDecoder",
    "MessageAssembler",
    "frame_overhead",
]

HEADER = struct.Struct("<" + "".join(SCALAR_TYPES[f.type][0] for f in SCHEMA.header))
_CRC = struct.Struct("<I")
FLAGS = SCHEMA.flags
REPLY, MORE, PROGRESS, WANT_PROGRESS = (FLAGS[k] for k in ("REPLY", "MORE", "PROGRESS", "WANT_PROGRESS"))
DELIMITER = b"\x00"
#: largest payload a frame's 16-bit length field can describe
MAX_FRAME_PAYLOAD = 0xFFFF


@dataclass(frozen=True)
class Frame:
    """One decoded frame (header fields and its payload bytes)."""

    version: int
    flags: int
    seq: int
    opcode: int
    status: int
    session: int
    chunk: int
    payload: bytes


@dataclass
class Message:
    """A whole message: the header of its first frame and the joined payload."""

    version: int
    flags: int
    seq: int
    opcode: int
    status: int
    session: int
    payload: bytes
    frames: int = 1

    @property
    def is_reply(self) -> bool:
        return bool(self.flags & REPLY)

    @property
    def is_progress(self) -> bool:
        return bool(self.flags & PROGRESS)


def encode_frame(
    *, seq: int, opcode: int, payload: bytes = b"", flags: int = 0, status: int = 0,
    session: int = 0, chunk: int = 0, version: int = SCHEMA.major,
) -> bytes:
    """Encode one frame, including the trailing 0x00 delimiter.

    Raises
    ------
    ProtocolError
        A header value does not fit its field or the payload exceeds 65535 bytes.
    """
    try:
        head = HEADER.pack(version, flags, seq, opcode, status, session, chunk, len(payload))
    except struct.error as exc:
        raise ProtocolError(f"header value out of range: {exc}") from None
    body = head + payload
    return cobs.encode(body + _CRC.pack(zlib.crc32(body))) + DELIMITER


def encode_message(
    *, seq: int, opcode: int, payload: bytes, max_payload: int, flags: int = 0,
    status: int = 0, session: int = 0, version: int = SCHEMA.major,
) -> bytes:
    """Encode a message as one or more frames of at most ``max_payload`` bytes.

    Returns the concatenated frames (each ending in 0x00).
    """
    if not 1 <= max_payload <= MAX_FRAME_PAYLOAD:
        raise ProtocolError(f"max_payload {max_payload} outside 1..{MAX_FRAME_PAYLOAD}")
    if len(payload) <= max_payload:
        return encode_frame(seq=seq, opcode=opcode, payload=payload, flags=flags,
                            status=status, session=session, version=version)
    n = (len(payload) + max_payload - 1) // max_payload
    if n > 0xFFFF:
        raise ProtocolError(f"message of {len(payload)} bytes needs {n} chunks (> 65535)")
    view = memoryview(payload)
    out = []
    for i in range(n):
        part = bytes(view[i * max_payload : (i + 1) * max_payload])
        f = flags | (MORE if i < n - 1 else 0)
        out.append(encode_frame(seq=seq, opcode=opcode, payload=part, flags=f, status=status,
                                session=session, chunk=i, version=version))
    return b"".join(out)


def frame_overhead(payload_len: int, max_payload: int) -> int:
    """Bytes on the wire for a message of ``payload_len`` bytes, minus ``payload_len``."""
    n = max(1, -(-payload_len // max_payload))
    extra = HEADER.size + _CRC.size
    wire = 0
    for i in range(n):
        body = min(max_payload, payload_len - i * max_payload) + extra
        wire += body + body // 254 + 1 + 1  # COBS worst case + delimiter
    return wire - payload_len


@dataclass
class FrameDecoder:
    """Incremental frame decoder that never raises on bad input.

    Parameters
    ----------
    max_frame : int
        Largest encoded frame accepted (bytes between delimiters); longer runs
        are discarded as garbage without being buffered.

    Attributes
    ----------
    dropped : int
        Frames discarded (bad COBS, bad CRC, bad length, too long).
    last_error : str
        Why the last frame was dropped.
    """

    max_frame: int = 2 * (MAX_FRAME_PAYLOAD + 64)
    dropped: int = 0
    last_error: str = ""
    _buf: bytearray = field(default_factory=bytearray)
    _overflow: bool = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add received bytes; return the complete valid frames among them."""
        if not data:
            return []
        self._buf += data
        if DELIMITER[0] not in data:
            if len(self._buf) > self.max_frame:
                self._buf.clear()
                self._overflow = True
            return []
        *complete, rest = bytes(self._buf).split(DELIMITER)
        self._buf = bytearray(rest)
        frames = []
        for raw in complete:
            if self._overflow:
                self._overflow = False
                self._drop("frame longer than max_frame")
                continue
            if not raw:
                continue
            frame = self._parse(raw)
            if frame is not None:
                frames.append(frame)
        if len(self._buf) > self.max_frame:
            self._buf.clear()
            self._overflow = True
        return frames

    def reset(self) -> None:
        """Forget any partial frame."""
        self._buf.clear()
        self._overflow = False

    def _drop(self, why: str) -> None:
        self.dropped += 1
        self.last_error = why

    def _parse(self, raw: bytes) -> Frame | None:
        if len(raw) > self.max_frame:
            self._drop("frame longer than max_frame")
            return None
        try:
            body = cobs.decode(raw)
        except cobs.DecodeError:
            self._drop("bad COBS encoding")
            return None
        if len(body) < HEADER.size + _CRC.size:
            self._drop("frame shorter than header + CRC")
            return None
        (crc,) = _CRC.unpack_from(body, len(body) - _CRC.size)
        if zlib.crc32(memoryview(body)[: -_CRC.size]) != crc:
            self._drop("CRC mismatch")
            return None
        version, flags, seq, opcode, status, session, chunk, length = HEADER.unpack_from(body)
        if length != len(body) - HEADER.size - _CRC.size:
            self._drop("length field disagrees with frame size")
            return None
        return Frame(version, flags, seq, opcode, status, session, chunk, body[HEADER.size : -_CRC.size])


@dataclass
class MessageAssembler:
    """Joins the chunks of a message.

    Chunks must arrive in order (0, 1, 2, ...) with the same ``seq``, ``opcode``
    and kind; a chunk 0 starts a new message and discards any partial one, an
    out-of-order chunk discards the partial message. ``max_message`` bounds the
    reassembled size.
    """

    max_message: int = 1 << 24
    dropped: int = 0
    last_error: str = ""
    #: first frame of the last message dropped for exceeding max_message
    #: (a board answers it with TOO_LARGE); the caller may reset it to None
    oversize: Frame | None = None
    _parts: list[bytes] = field(default_factory=list)
    _first: Frame | None = None
    _size: int = 0

    @property
    def pending(self) -> bool:
        """True while a chunked message is half received."""
        return self._first is not None

    def reset(self) -> None:
        """Discard a half-received message (not counted as dropped)."""
        self._first, self._parts, self._size = None, [], 0

    def add(self, frame: Frame) -> Message | None:
        """Add a frame; return the message it completes, or None."""
        if frame.chunk == 0:
            if self._first is not None:
                self._drop("message abandoned mid-way")
            self._first, self._parts, self._size = frame, [], 0
        else:
            first = self._first
            if (
                first is None
                or frame.seq != first.seq
                or frame.opcode != first.opcode
                or (frame.flags & (REPLY | PROGRESS)) != (first.flags & (REPLY | PROGRESS))
                or frame.chunk != len(self._parts)
            ):
                self._drop("chunk out of sequence")
                self._first, self._parts, self._size = None, [], 0
                return None
        self._parts.append(frame.payload)
        self._size += len(frame.payload)
        if self._size > self.max_message:
            self._drop("message larger than max_message")
            self.oversize = self._first
            self._first, self._parts, self._size = None, [], 0
            return None
        if frame.flags & MORE:
            return None
        first = self._first
        assert first is not None
        payload = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        msg = Message(first.version, first.flags & ~MORE, first.seq, first.opcode, first.status,
                      first.session, payload, len(self._parts))
        self._first, self._parts, self._size = None, [], 0
        return msg

    def _drop(self, why: str) -> None:
        self.dropped += 1
        self.last_error = why
