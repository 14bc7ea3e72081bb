"""A host written from PROTOCOL.md alone: raw frames, no memhw.link, no firmware_protocol codec.

It knows the frame format of §4 (12-byte header, CRC-32, COBS, 0x00 delimiter) and the
payload layouts of the few messages the conformance tests need (§11), packed by hand with
``struct``. Used to prove what the board side does for any client, not only memhw's.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass
from typing import Callable

from cobs import cobs

MAJOR = 2
HEADER = struct.Struct("<BBHBBHHH")  # version flags seq opcode status session chunk length
REPLY, MORE, PROGRESS, WANT_PROGRESS = 0x01, 0x02, 0x04, 0x08
OPCODES = {"HELLO": 0x01, "STATUS": 0x02, "SET_LEVELS": 0x03, "READ_CURRENTS": 0x04, "READ_MAP": 0x06, "PULSE_SET": 0x07,
           "GROUND_ALL": 0x09, "ABORT": 0x0A, "BYE": 0x10, "READ_DEVICES": 0x16, "PULSE_DEVICES": 0x17}
STATUS = {0: "OK", 4: "BAD_PAYLOAD", 5: "LIMIT", 6: "BUSY", 7: "ABORTED", 10: "NO_SESSION"}
NEW, RESUME, TAKEOVER = 0, 1, 2


def frame(opcode: int, payload: bytes, *, seq: int, session: int, flags: int = 0) -> bytes:
    """One frame (§4.5, sending steps 1-4)."""
    body = HEADER.pack(MAJOR, flags, seq, opcode, 0, session, 0, len(payload)) + payload
    return cobs.encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


def string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<H", len(raw)) + raw


def array(fmt: str, values: list[int]) -> bytes:
    return struct.pack("<I", len(values)) + struct.pack(f"<{len(values)}{fmt}", *values)


def hello(mode: int = NEW, session: int = 0, client: str = "raw client") -> bytes:
    return struct.pack("<BBBH", MAJOR, 0, mode, session) + string(client)


def pulse_set(row: int, cols: int, col: int, amplitude: int, gate: int, width: int) -> bytes:
    """One device (row, col) of a board with ``cols`` columns."""
    mask = bytearray((cols + 7) // 8)
    mask[col // 8] |= 1 << (col % 8)
    return (struct.pack("<HH", row, 1) + array("B", list(mask)) + array("h", [amplitude]) + array("h", [gate])
            + array("H", [width]))


def pulse_devices(kind: int, row_start: int, row_count: int, index: bytes, amplitude: int, gate: int, width: int,
                  progress_rows: int = 0) -> bytes:
    """PULSE_DEVICES with the selection as an index (§10.5) and one value for every device."""
    return (struct.pack("<BHH", kind, row_start, row_count) + array("B", []) + array("B", list(index))
            + array("h", [amplitude]) + array("h", [gate]) + array("H", [width]) + struct.pack("<H", progress_rows))


def read_devices(v_read: int, row_start: int, row_count: int, index: bytes, gain: int = 255) -> bytes:
    """READ_DEVICES of the devices of ``index`` (§10.5), one sample each."""
    return (struct.pack("<hH", v_read, 1) + array("B", [gain]) + struct.pack("<HH", row_start, row_count)
            + array("B", []) + array("B", list(index)))


def read_map(v_read: int, row_start: int, row_count: int, average: int = 1, gain: int = 255) -> bytes:
    """READ_MAP of rows row_start .. row_start + row_count - 1 at one gain (255: auto-range)."""
    return struct.pack("<hHHH", v_read, row_start, row_count, average) + array("B", [gain])


def status_counts(payload: bytes) -> tuple[int, int]:
    """(requests, pulses) of a STATUS reply: busy u8, last_status u8, last_error str, requests u32, pulses u32."""
    (n,) = struct.unpack_from("<H", payload, 2)
    return struct.unpack_from("<II", payload, 4 + n)


def set_levels(group: int, value: int, n_lines: int) -> bytes:
    """``value`` on every line of ``group`` (0 rows, 1 columns, 2 gates)."""
    mask = [0xFF] * (n_lines // 8) + ([(1 << (n_lines % 8)) - 1] if n_lines % 8 else [])
    return struct.pack("<Bh", group, value) + array("B", mask) + array("h", [])


@dataclass
class Reply:
    seq: int
    opcode: int
    status: int
    session: int
    flags: int
    payload: bytes

    @property
    def status_name(self) -> str:
        return STATUS.get(self.status, str(self.status))

    @property
    def reason(self) -> str:
        (n,) = struct.unpack_from("<H", self.payload)
        return self.payload[2 : 2 + n].decode()


def parse(data: bytes) -> list[Reply]:
    """Every valid single-frame message in ``data`` (§4.5 receiving steps)."""
    out = []
    for raw in data.split(b"\x00"):
        if not raw:
            continue
        try:
            body = cobs.decode(raw)
        except cobs.DecodeError:
            continue
        if len(body) < 16 or zlib.crc32(body[:-4]) != struct.unpack("<I", body[-4:])[0]:
            continue
        version, flags, seq, opcode, status, session, chunk, length = HEADER.unpack_from(body)
        assert chunk == 0 and not flags & MORE, "the conformance tests use single-frame replies"
        out.append(Reply(seq, opcode, status, session, flags, body[HEADER.size:-4]))
    return out


class RawHost:
    """A host over any byte pipe: ``write(bytes)`` and ``read(timeout) -> bytes``."""

    def __init__(self, write: Callable[[bytes], None], read: Callable[[float], bytes], client: str = "raw client"):
        self._write, self._read = write, read
        self.client = client
        self.session = 0
        self._buf = b""

    def send(self, name: str, payload: bytes = b"", *, seq: int, session: int | None = None, flags: int = 0) -> None:
        self._write(frame(OPCODES[name], payload, seq=seq, flags=flags,
                          session=self.session if session is None else session))

    def wait(self, seq: int, timeout: float = 2.0) -> Reply:
        """The final reply to ``seq`` (progress frames and other replies skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            self._buf += self._read(max(0.0, deadline - time.monotonic()))
            *done, self._buf = self._buf.split(b"\x00")
            for reply in parse(b"\x00".join(done) + b"\x00"):
                if reply.seq == seq and reply.flags & REPLY and not reply.flags & PROGRESS:
                    return reply
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no reply to seq {seq}")

    def request(self, name: str, payload: bytes = b"", *, seq: int, session: int | None = None,
                timeout: float = 2.0) -> Reply:
        self.send(name, payload, seq=seq, session=session)
        return self.wait(seq, timeout)

    def hello(self, *, seq: int, mode: int = NEW, session: int = 0) -> Reply:
        reply = self.request("HELLO", hello(mode, session, self.client), seq=seq, session=0)
        if reply.status == 0:
            self.session = reply.session
        return reply
