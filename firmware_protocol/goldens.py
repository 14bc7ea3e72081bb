"""Golden wire-format vectors: ``python -m firmware_protocol.goldens [--check]``.

Each vector is a byte string as it would arrive on a link and what an
incremental frame decoder must make of it: the frames it emits (header fields,
payload and the frame's own wire bytes), how many frames it drops and why, and
the messages those frames assemble into, with their decoded field values.
The expected frames and drops are stated by construction, not by running a
decoder, so the vectors pin the behaviour of the Python codec and of the C
reference codec in ``c/memhw_frame.c`` alike.

Two files are written to ``vectors/``, both deterministic:

``vectors.json``
    Everything, for the Python tests.
``vectors.txt``
    A line-oriented manifest for C (``c/test_vectors.c``), without the
    decoded message fields::

        decoder_buffer <bytes>
        vector <name> <frames> <drops> <drop_reason> <wire hex>
        frame <version> <flags> <seq> <opcode> <status> <session> <chunk> <length> <payload hex or -> <wire hex>

    Each ``vector`` line is followed by its ``frame`` lines; header fields are
    hex; lines starting with ``#`` are comments.
"""

from __future__ import annotations

import json
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from cobs import cobs

from .codec import decode, encode
from .framing import HEADER, MORE, PROGRESS, REPLY, WANT_PROGRESS, Frame, encode_frame
from .generated import write_or_check
from .schema import SCHEMA

__all__ = [
    "VECTORS_DIR",
    "DECODER_BUFFER",
    "DROP_REASONS",
    "FrameRecord",
    "Part",
    "Vector",
    "build_vectors",
    "render",
    "main",
]

_MAX_PAYLOAD = 1024  # payload per frame of the board the vectors describe
_MAX_BODY = SCHEMA.header_size + _MAX_PAYLOAD + SCHEMA.crc_size

#: where the vector files live
VECTORS_DIR = Path(__file__).with_name("vectors")
#: encoded bytes a decoder buffers between delimiters, enough for a frame of _MAX_PAYLOAD
#: bytes (MEMHW_DECODER_BUFFER_SIZE in C); longer runs are dropped as overflow
DECODER_BUFFER = _MAX_BODY + _MAX_BODY // 254 + 1
#: why a decoder drops a frame, in the order it checks
DROP_REASONS = ("none", "overflow", "bad_cobs", "short", "bad_crc", "bad_length")

_COMMAND = "python -m firmware_protocol.goldens"
_SESSION = 0x5A17
_ST = SCHEMA.status


@dataclass(frozen=True)
class FrameRecord(Frame):
    """A frame a decoder must emit: a :class:`~firmware_protocol.framing.Frame` and its encoding."""

    wire: bytes = b""

    def to_json(self) -> dict[str, Any]:
        """The frame as a JSON object (bytes as hex)."""
        head = {k: getattr(self, k) for k in ("version", "flags", "seq", "opcode", "status", "session", "chunk")}
        return {**head, "length": len(self.payload), "payload": self.payload.hex(), "wire": self.wire.hex()}

    def to_text(self) -> str:
        """The frame as a ``frame`` line of ``vectors.txt``."""
        head = (f"{self.version:02x} {self.flags:02x} {self.seq:04x} {self.opcode:02x} {self.status:02x} "
                f"{self.session:04x} {self.chunk:04x} {len(self.payload):04x}")
        return f"frame {head} {self.payload.hex() or '-'} {self.wire.hex()}"


@dataclass(frozen=True)
class Part:
    """A stretch of wire bytes and the frames and messages a decoder gets from it."""

    wire: bytes
    frames: tuple[FrameRecord, ...] = ()
    messages: tuple[dict[str, Any], ...] = ()

    def __add__(self, other: Part) -> Part:
        return Part(self.wire + other.wire, self.frames + other.frames, self.messages + other.messages)


@dataclass(frozen=True)
class Vector:
    """A named test vector: wire bytes, expected frames and messages, expected drops."""

    name: str
    doc: str
    part: Part
    drops: int = 0
    drop_reason: str = "none"

    def to_json(self) -> dict[str, Any]:
        """The vector as a JSON object."""
        return {
            "name": self.name,
            "doc": self.doc,
            "wire": self.part.wire.hex(),
            "drops": self.drops,
            "drop_reason": self.drop_reason,
            "frames": [f.to_json() for f in self.part.frames],
            "messages": list(self.part.messages),
        }

    def to_text(self) -> list[str]:
        """The vector as lines of ``vectors.txt``."""
        p = self.part
        head = f"vector {self.name} {len(p.frames)} {self.drops} {self.drop_reason} {p.wire.hex()}"
        return [f"# {self.doc}", head] + [f.to_text() for f in p.frames]


def _plain(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


def _message(name: str, kind: str, values: Mapping[str, Any], *, seq: int, flags: int = 0,
             status: int = 0, max_payload: int = _MAX_PAYLOAD) -> Part:
    """A message sent as one or more frames, as the host or the board would.

    Parameters
    ----------
    name : str
        Message name.
    kind : {"request", "reply", "progress", "error"}
        Payload layout; all but requests are sent with ``REPLY``. Every frame carries the
        session id, but for a HELLO request (0).
    values : mapping
        Field values.
    seq, flags, status : int
        Header fields (``REPLY``, ``PROGRESS`` and ``MORE`` are added as needed).
    max_payload : int
        Payload bytes per frame.

    Returns
    -------
    Part
    """
    opcode = SCHEMA.message(name).opcode
    payload = encode(name, kind, values)
    session = 0 if (kind, name) == ("request", "HELLO") else _SESSION
    flags |= 0 if kind == "request" else REPLY
    flags |= PROGRESS if kind == "progress" else 0
    chunks = [payload[i : i + max_payload] for i in range(0, len(payload), max_payload)] or [b""]
    frames = []
    for i, chunk in enumerate(chunks):
        head = dict(flags=flags | (MORE if i < len(chunks) - 1 else 0), seq=seq, opcode=opcode, status=status,
                    session=session, chunk=i)
        frames.append(FrameRecord(SCHEMA.major, **head, payload=chunk, wire=encode_frame(payload=chunk, **head)))
    fields = {k: _plain(v) for k, v in decode(name, kind, payload).items()}
    record = {"message": name, "kind": kind, "max_payload": max_payload, "fields": fields}
    return Part(b"".join(f.wire for f in frames), tuple(frames), (record,))


def _noise(wire: bytes) -> Part:
    """Bytes from which a decoder gets nothing (it may count drops)."""
    return Part(wire)


def _body(payload: bytes, *, seq: int, opcode: int, length: int | None = None) -> bytes:
    """Header + payload + CRC of a request frame, with an optionally wrong length field."""
    session = 0 if opcode == SCHEMA.message("HELLO").opcode else _SESSION
    head = HEADER.pack(SCHEMA.major, 0, seq, opcode, 0, session, 0, len(payload) if length is None else length)
    return head + payload + zlib.crc32(head + payload).to_bytes(SCHEMA.crc_size, "little")


def _seq_for_nonzero_crc(name: str, values: Mapping[str, Any]) -> int:
    """The first seq for which the request frame's CRC has no 0x00 byte."""
    payload = encode(name, "request", values)
    opcode = SCHEMA.message(name).opcode
    return next(s for s in range(1, 0x10000) if 0 not in _body(payload, seq=s, opcode=opcode)[-SCHEMA.crc_size :])


def _largest_frame() -> Part:
    """A READ_CURRENTS request whose encoded frame fills the decoder buffer exactly."""
    for n in range(DECODER_BUFFER, 0, -1):
        part = _message("READ_CURRENTS", "request", {"gains": [1 + i % 7 for i in range(n)], "average": 1}, seq=9)
        if len(part.wire) == DECODER_BUFFER + 1:
            return part
    raise AssertionError("no payload size fills the decoder buffer")


def _hello_reply() -> dict[str, Any]:
    return {
        "major": SCHEMA.major, "minor": SCHEMA.minor, "schema_hash": 0x1234ABCD,
        "firmware": "memhw-fw 1.0.3 (µC)", "serial": "MX-0042", "chip": "W07-D12",
        "boot_id": 0xB007,
        "opcodes": [m.opcode for m in SCHEMA.messages], "rows": 8, "cols": 8,
        "dac_bits": 16, "adc_bits": 16, "dac_line_lsb": 10 / 65536, "dac_gate_lsb": 5 / 65536,
        "adc_lsb": 5 / 65536, "tia_gains": [1e3, 1e4, 1e5, 1e6], "width_offset": 2e-8, "width_lsb": 1e-8,
        "width_max_code": 10000, "v_read_max": 0.3, "v_set_max": 2.5, "v_reset_max": 2.5, "v_gate_max": 3.0,
        "max_frame": _MAX_PAYLOAD, "max_message": 65536,
    }


def build_vectors() -> list[Vector]:
    """The golden vectors, in file order.

    Returns
    -------
    list of Vector
    """
    hello = _message("HELLO", "request", {"host_major": SCHEMA.major, "host_minor": SCHEMA.minor,
                                          "mode": SCHEMA.enums["HelloMode"]["NEW"], "session": 0,
                                          "client": "raw-client on lab-pc"}, seq=1)
    status = _message("STATUS", "request", {}, seq=2)
    status_reply = _message("STATUS", "reply", {"busy": 0, "last_status": _ST["LIMIT"],
                                               "last_error": "level outside ±0.3 V", "requests": 1234,
                                               "pulses": 56789, "uptime": 3600.25}, seq=2)
    hello_op = SCHEMA.message("HELLO").opcode
    hello_payload = hello.frames[0].payload
    hello_body = _body(hello_payload, seq=20, opcode=hello_op)
    flipped = HEADER.size  # first payload byte
    bad_crc_body = hello_body[:flipped] + bytes([hello_body[flipped] ^ 0x40]) + hello_body[flipped + 1 :]
    encoded = cobs.encode(hello_body)
    long_gains = {"gains": [1 + i % 7 for i in range(248)], "average": 0x0101}
    vmm_codes = np.frombuffer(bytes(1 + (5 * i) % 255 for i in range(384)), "<i2")  # no 0x00 byte
    return [
        Vector("hello_request", "HELLO request", hello),
        Vector("hello_reply", "HELLO reply: strings (one non-ASCII) and an f32 array",
               _message("HELLO", "reply", _hello_reply(), seq=1)),
        Vector("status_request", "STATUS request: a zero-length payload", status),
        Vector("status_reply", "STATUS reply", status_reply),
        Vector("set_levels_mask", "SET_LEVELS request: one value on the masked columns",
               _message("SET_LEVELS", "request", {"group": SCHEMA.enums["LineGroup"]["COLS"], "value": -1966,
                                                 "mask": [0b10100101], "codes": []}, seq=3)),
        Vector("error_reply_limit", "SET_LEVELS refused: status LIMIT with the error_reply reason",
               _message("SET_LEVELS", "error", {"reason": "level -2.50 V outside ±0.3 V on column 5"},
                       seq=4, status=_ST["LIMIT"])),
        Vector("vmm_request", "VMM request: three input vectors on 8 rows",
               _message("VMM", "request", {"n": 3, "gains": [2],
                                          "inputs": [(-1) ** i * (40 * i) for i in range(24)]}, seq=5)),
        Vector("read_map_reply_chunked", "READ_MAP reply for 8x8 devices in 48-byte frames (MORE flag)",
               _message("READ_MAP", "reply", {"gains": [3], "codes": [(37 * i) % 2000 - 1000 for i in range(64)]},
                       seq=6, max_payload=48)),
        Vector("pulse_set_request", "PULSE_SET request on rows 2-3 asking for progress",
               _message("PULSE_SET", "request", {"row_start": 2, "row_count": 2, "mask": [0b00010010, 0b00000100],
                                                "amplitude": [300, 320, 340], "gate": [1200], "width": [50]},
                       seq=7, flags=WANT_PROGRESS)),
        Vector("pulse_set_progress", "PULSE_SET progress frame after the first row",
               _message("PULSE_SET", "progress", {"rows_done": 1, "row_count": 2}, seq=7)),
        Vector("pulse_set_aborted", "PULSE_SET reply with status ABORTED: the normal reply layout",
               _message("PULSE_SET", "reply", {"rows_done": 1, "pulses": 2}, seq=7, status=_ST["ABORTED"])),
        Vector("cobs_zeros_and_long_run", "VMM reply: 192 zero gain bytes, then a 384-byte run without zeros",
               _message("VMM", "reply", {"gains": [0] * 192, "codes": vmm_codes}, seq=8)),
        Vector("cobs_run_254_at_end", "READ_CURRENTS request ending in exactly 254 non-zero bytes: the COBS "
               "encoding ends with a full block and no empty block after it",
               _message("READ_CURRENTS", "request", long_gains, seq=_seq_for_nonzero_crc("READ_CURRENTS", long_gains))),
        Vector("largest_frame", f"a frame of exactly {DECODER_BUFFER} encoded bytes, the decoder buffer size",
               _largest_frame()),
        Vector("empty_frames_ignored", "delimiters around a frame: empty frames are skipped, not dropped",
               _noise(b"\x00\x00") + hello + _noise(b"\x00")),
        Vector("bad_crc", "HELLO request with a payload bit flipped after the CRC was computed",
               _noise(cobs.encode(bad_crc_body) + b"\x00"), drops=1, drop_reason="bad_crc"),
        Vector("truncated", "STATUS reply whose last 4 bytes before the delimiter were lost",
               _noise(status_reply.wire[:-5] + b"\x00"), drops=1, drop_reason="bad_cobs"),
        Vector("short_frame", "a valid COBS encoding of only 10 bytes",
               _noise(cobs.encode(hello_body[:10]) + b"\x00"), drops=1, drop_reason="short"),
        Vector("bad_cobs", "HELLO request whose first COBS code points past the frame end",
               _noise(bytes([len(encoded) + 1]) + encoded[1:] + b"\x00"), drops=1, drop_reason="bad_cobs"),
        Vector("length_mismatch", "HELLO request whose length field says one byte more (CRC valid)",
               _noise(cobs.encode(_body(hello_payload, seq=21, opcode=hello_op, length=3)) + b"\x00"),
               drops=1, drop_reason="bad_length"),
        Vector("garbage_between_frames", "modem noise ending in a 0x00 between two frames",
               hello + _noise(b"ATZ\r\n\x00") + status, drops=1, drop_reason="bad_cobs"),
        Vector("garbage_merges_with_next_frame", "noise without a delimiter spoils the next frame only",
               hello + _noise(b"\x13\x37" + status.wire) + status_reply, drops=1, drop_reason="bad_crc"),
        Vector("overflow", "a run longer than the decoder buffer, then a frame",
               _noise(b"\x55" * (DECODER_BUFFER + 1) + b"\x00") + hello, drops=1, drop_reason="overflow"),
    ]


def render() -> dict[str, str]:
    """The contents of the vector files.

    Returns
    -------
    dict
        File name (in :data:`VECTORS_DIR`) -> text.
    """
    vectors = build_vectors()
    meta = {
        "generated_by": _COMMAND,
        "protocol": {"major": SCHEMA.major, "minor": SCHEMA.minor},
        "decoder_buffer": DECODER_BUFFER,
        "drop_reasons": list(DROP_REASONS),
    }
    # one vector per line: compact, yet a regenerated file diffs vector by vector
    rows = ",\n".join(json.dumps(v.to_json(), ensure_ascii=False) for v in vectors)
    manifest = json.dumps(meta, ensure_ascii=False)[:-1] + f', "vectors": [\n{rows}\n]}}\n'
    text = [
        f"# memhw protocol {SCHEMA.major}.{SCHEMA.minor} golden vectors. Generated by `{_COMMAND}`; do not edit.",
        "# vector <name> <frames> <drops> <drop_reason> <wire hex>",
        "# frame <version> <flags> <seq> <opcode> <status> <session> <chunk> <length> <payload hex or -> <wire hex>",
        f"decoder_buffer {DECODER_BUFFER}",
    ]
    for v in vectors:
        text += v.to_text()
    return {
        "vectors.json": manifest,
        "vectors.txt": "\n".join(text) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    """Write the vector files, or with ``--check`` exit 1 if they are stale."""
    return write_or_check(lambda: {VECTORS_DIR / name: text for name, text in render().items()},
                          _COMMAND, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    sys.exit(main())
