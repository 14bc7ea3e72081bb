"""memhw board wire protocol: schema, message codec and framing (no I/O).

The contract between host software and board firmware. Everything here is
derived from ``protocol.toml``; see ``PROTOCOL.md`` for the human-readable
specification.
"""

from .codec import decode, encode
from .errors import ProtocolError
from .framing import (
    FLAGS,
    Frame,
    FrameDecoder,
    Message,
    MessageAssembler,
    encode_frame,
    encode_message,
)
from .schema import SCHEMA, Schema
from .selection import pack_offsets, unpack_offsets

MAJOR = SCHEMA.major
MINOR = SCHEMA.minor
STATUS = SCHEMA.status

__all__ = [
    "SCHEMA",
    "Schema",
    "MAJOR",
    "MINOR",
    "STATUS",
    "FLAGS",
    "ProtocolError",
    "encode",
    "decode",
    "Frame",
    "Message",
    "FrameDecoder",
    "MessageAssembler",
    "encode_frame",
    "encode_message",
    "pack_offsets",
    "unpack_offsets",
]
