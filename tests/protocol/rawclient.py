"""A host written from PROTOCOL.md alone: raw frames, no memhw.link, no firmware_protocol codec.

It knows the frame format of §4 (12-byte header, CRC-32, COBS, 0x00 delimiter), chunking and
reassembly (§5.2), and the payload layouts of the messages the conformance tests need (§11),
packed and parsed by hand with ``struct`` from the document's tables (§3: scalars little-endian,
``str`` = u16 count + UTF-8, ``T[]`` = u32 count + elements, no padding). Used to prove what the
board side does for any client, not only memhw's.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Sequence

from cobs import cobs

MAJOR = 2
HEADER = struct.Struct("<BBHBBHHH")  # version flags seq opcode status session chunk length
REPLY, MORE, PROGRESS, WANT_PROGRESS = 0x01, 0x02, 0x04, 0x08
OPCODES = {"HELLO": 0x01, "STATUS": 0x02, "SET_LEVELS": 0x03, "READ_CURRENTS": 0x04, "VMM": 0x05, "READ_MAP": 0x06,
           "PULSE_SET": 0x07, "PULSE_RESET": 0x08, "GROUND_ALL": 0x09, "ABORT": 0x0A, "WAIT": 0x0B,
           "SET_LIMITS": 0x0F, "BYE": 0x10, "SET_CALIBRATION": 0x11, "DEFINE_TILE": 0x12, "VMM_TILE": 0x13,
           "LOAD_NETWORK": 0x14, "RUN_NETWORK": 0x15, "READ_DEVICES": 0x16, "PULSE_DEVICES": 0x17}
STATUS = {0: "OK", 1: "BAD_FRAME", 2: "BAD_VERSION", 3: "UNKNOWN_OPCODE", 4: "BAD_PAYLOAD", 5: "LIMIT", 6: "BUSY",
          7: "ABORTED", 8: "TOO_LARGE", 9: "INTERNAL", 10: "NO_SESSION"}
NEW, RESUME, TAKEOVER = 0, 1, 2
MIN_FRAME_PAYLOAD = 240  # §4.6: before HELLO, and the floor after it
AUTO = 255  # §10.2: a lone gain entry 255 auto-ranges
LSTM, DENSE, LAST_STEP = 0, 1, 2  # LayerKind
LINEAR, SIGMOID, SOFTMAX = 0, 1, 2  # Activation
SET, RESET = 0, 1  # PulseKind
MAX_TILES, MAX_LAYERS, ACTIVATION_TABLE = 32, 8, 2048  # schema constants quoted in §11 / §14


def frame(opcode: int, payload: bytes, *, seq: int, session: int, flags: int = 0) -> bytes:
    """One frame (§4.5, sending steps 1-4)."""
    body = HEADER.pack(MAJOR, flags, seq, opcode, 0, session, 0, len(payload)) + payload
    return cobs.encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


def frames(opcode: int, payload: bytes, *, seq: int, session: int, flags: int = 0,
           max_payload: int = MIN_FRAME_PAYLOAD, chunk_flags: Callable[[int], int] | None = None) -> bytes:
    """A whole message (§5.2): one frame if it fits ``max_payload``, else ⌈P/F⌉ chunks with MORE on all but
    the last."""
    if len(payload) <= max_payload:
        return frame(opcode, payload, seq=seq, session=session, flags=flags)
    parts = [payload[i : i + max_payload] for i in range(0, len(payload), max_payload)]
    out = b""
    for i, part in enumerate(parts):
        more = MORE if i < len(parts) - 1 else 0
        body = HEADER.pack(MAJOR, flags | more, seq, opcode, 0, session, i, len(part)) + part
        out += cobs.encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"
    return out


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


def f32(values: Sequence[float]) -> bytes:
    """An ``f32[]`` (§3)."""
    return array("f", [float(v) for v in values])


def hello_v(mode: int = NEW, session: int = 0, client: str = "raw client", minor: int = 1) -> bytes:
    """HELLO request announcing host protocol 2.``minor`` (informational, §11.1)."""
    return struct.pack("<BBBH", MAJOR, minor, mode, session) + string(client)


def pack_mask(offsets: Sequence[int], n: int) -> bytes:
    """§10.4: ⌈n/8⌉ bytes, element k is bit k mod 8 of byte k // 8."""
    mask = bytearray((n + 7) // 8)
    for k in offsets:
        mask[k // 8] |= 1 << (k % 8)
    return bytes(mask)


def varint(value: int) -> bytes:
    """Unsigned LEB128 (§10.5): 7 bits a byte, least significant group first, 0x80 on all but the last."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def pack_index(offsets: Sequence[int]) -> bytes:
    """§10.5: strictly increasing offsets as varints of their gaps (first offset, then each minus the previous
    minus 1)."""
    out, prev = b"", -1
    for k in offsets:
        assert k > prev, "offsets must be strictly increasing"
        out += varint(k - prev - 1)
        prev = k
    return out


def read_devices_payload(v_read: int, row_start: int, row_count: int, *, mask: bytes = b"", index: bytes = b"",
                         average: int = 1, gains: Sequence[int] = (AUTO,)) -> bytes:
    """READ_DEVICES request (§11): v_read i16, average u16, gains u8[], row_start u16, row_count u16, mask u8[],
    index u8[]."""
    return (struct.pack("<hH", v_read, average) + array("B", list(gains)) + struct.pack("<HH", row_start, row_count)
            + array("B", list(mask)) + array("B", list(index)))


def pulse_devices_payload(kind: int, row_start: int, row_count: int, *, mask: bytes = b"", index: bytes = b"",
                          amplitude: Sequence[int], gate: Sequence[int], width: Sequence[int],
                          progress_rows: int = 0) -> bytes:
    """PULSE_DEVICES request (§11): kind u8, row_start u16, row_count u16, mask u8[], index u8[], amplitude i16[],
    gate i16[], width u16[], progress_rows u16."""
    return (struct.pack("<BHH", kind, row_start, row_count) + array("B", list(mask)) + array("B", list(index))
            + array("h", list(amplitude)) + array("h", list(gate)) + array("H", list(width))
            + struct.pack("<H", progress_rows))


def set_calibration(row_gain=(), row_offset=(), col_gain=(), col_offset=(), gate_gain=(), gate_offset=(),
                    tia_gain=(), tia_offset=()) -> bytes:
    """SET_CALIBRATION request (§11): eight f32[] in this order."""
    return b"".join(f32(a) for a in (row_gain, row_offset, col_gain, col_offset, gate_gain, gate_offset, tia_gain,
                                     tia_offset))


def define_tile(tile: int, rows: Sequence[int], cols: Sequence[int], neg_rows: Sequence[int] = (),
                neg_cols: Sequence[int] = ()) -> bytes:
    """DEFINE_TILE request (§11): tile u8, rows u16[], neg_rows u16[], cols u16[], neg_cols u16[]."""
    return (struct.pack("<B", tile) + array("H", list(rows)) + array("H", list(neg_rows)) + array("H", list(cols))
            + array("H", list(neg_cols)))


def vmm_tile(tile: int, n: int, inputs: Sequence[int], gains: Sequence[int] = (AUTO,)) -> bytes:
    """VMM_TILE request (§11): tile u8, n u16, gains u8[], inputs i16[] (n × K nominal codes, vector-major)."""
    return struct.pack("<BH", tile, n) + array("B", list(gains)) + array("h", [int(v) for v in inputs])


def vmm(n: int, inputs: Sequence[int], gains: Sequence[int] = (AUTO,)) -> bytes:
    """VMM request (§11): n u16, gains u8[], inputs i16[] (n × rows, vector-major)."""
    return struct.pack("<H", n) + array("B", list(gains)) + array("h", [int(v) for v in inputs])


def read_map_gains(v_read: int, row_start: int, row_count: int, average: int = 1,
                   gains: Sequence[int] = (AUTO,)) -> bytes:
    """READ_MAP with any ``gains`` list."""
    return struct.pack("<hHHH", v_read, row_start, row_count, average) + array("B", list(gains))


def set_limits(read_max: int, set_max: int, reset_max: int, gate_max: int, width_max: int) -> bytes:
    return struct.pack("<hhhhH", read_max, set_max, reset_max, gate_max, width_max)


@dataclass
class Layer:
    """One LOAD_NETWORK layer and the (tile, in_start, out_start, gain) of its tiles."""

    kind: int
    n_in: int
    n_out: int = 0
    bias: int = 0
    activation: int = LINEAR
    in_volts: float = 0.0
    out_scale: float = 0.0
    tiles: list = field(default_factory=list)  # (tile id, in_start, out_start, tile_gain)


def load_network(layers: Sequence[Layer], out_offset: Sequence[float] = (), *, override: dict | None = None) -> bytes:
    """LOAD_NETWORK request (§11), fields in schema order; ``override`` replaces a field's list (for refusals)."""
    fields = {
        "kinds": ("B", [ly.kind for ly in layers]),
        "n_in": ("H", [ly.n_in for ly in layers]),
        "n_out": ("H", [ly.n_out for ly in layers]),
        "bias": ("B", [ly.bias for ly in layers]),
        "activation": ("B", [ly.activation for ly in layers]),
        "in_volts": ("f", [ly.in_volts for ly in layers]),
        "out_scale": ("f", [ly.out_scale for ly in layers]),
        "tile_count": ("B", [len(ly.tiles) for ly in layers]),
        "tiles": ("B", [t[0] for ly in layers for t in ly.tiles]),
        "in_start": ("H", [t[1] for ly in layers for t in ly.tiles]),
        "out_start": ("H", [t[2] for ly in layers for t in ly.tiles]),
        "tile_gain": ("B", [t[3] for ly in layers for t in ly.tiles]),
        "out_offset": ("f", list(out_offset)),
    }
    for name, values in (override or {}).items():
        fields[name] = (fields[name][0], list(values))
    return b"".join(array(fmt, values) for fmt, values in fields.values())


def run_network(lengths: Sequence[int], input_scale: float, inputs: Sequence[int], progress_steps: int = 0) -> bytes:
    """RUN_NETWORK request (§11): lengths u16[], input_scale f32, inputs i16[], progress_steps u16."""
    return (array("H", list(lengths)) + struct.pack("<f", input_scale) + array("h", [int(v) for v in inputs])
            + struct.pack("<H", progress_steps))


class Cursor:
    """Strict reading of a payload (§3): running past the end or leaving trailing bytes fails."""

    def __init__(self, payload: bytes):
        self.payload, self.off = payload, 0

    def scalar(self, fmt: str):
        (value,) = struct.unpack_from("<" + fmt, self.payload, self.off)
        self.off += struct.calcsize("<" + fmt)
        return value

    def array(self, fmt: str) -> list:
        n = self.scalar("I")
        size = struct.calcsize("<" + fmt)
        assert self.off + n * size <= len(self.payload), "array runs past the payload"
        values = list(struct.unpack_from(f"<{n}{fmt}", self.payload, self.off))
        self.off += n * size
        return values

    def string(self) -> str:
        n = self.scalar("H")
        assert self.off + n <= len(self.payload), "string runs past the payload"
        text = self.payload[self.off : self.off + n].decode("utf-8")
        self.off += n
        return text

    def end(self) -> None:
        assert self.off == len(self.payload), f"{len(self.payload) - self.off} trailing bytes"


def parse_layout(payload: bytes, layout: Sequence[tuple[str, str]]) -> dict:
    """Fields of ``layout`` [(name, type)] where type is a struct code, ``str`` or ``X[]``; no trailing bytes."""
    cur, out = Cursor(payload), {}
    for name, kind in layout:
        if kind == "str":
            out[name] = cur.string()
        elif kind.endswith("[]"):
            out[name] = cur.array(kind[:-2])
        else:
            out[name] = cur.scalar(kind)
    cur.end()
    return out


# reply / progress layouts of §11 (name, struct code), in wire order
HELLO_REPLY = [("major", "B"), ("minor", "B"), ("schema_hash", "I"), ("firmware", "str"), ("serial", "str"),
               ("chip", "str"), ("boot_id", "H"), ("opcodes", "B[]"), ("rows", "H"), ("cols", "H"), ("dac_bits", "B"),
               ("adc_bits", "B"), ("dac_line_lsb", "f"), ("dac_gate_lsb", "f"), ("adc_lsb", "f"),
               ("tia_gains", "f[]"), ("width_offset", "f"), ("width_lsb", "f"), ("width_max_code", "H"),
               ("v_read_max", "f"), ("v_set_max", "f"), ("v_reset_max", "f"), ("v_gate_max", "f"),
               ("max_frame", "H"), ("max_message", "I")]
GAINS_CODES_I16 = [("gains", "B[]"), ("codes", "h[]")]  # VMM, READ_MAP, VMM_TILE, READ_DEVICES replies
LOAD_NETWORK_REPLY = [("n_inputs", "H"), ("n_outputs", "H"), ("per_step", "B")]
RUN_NETWORK_REPLY = [("steps_done", "H"), ("clipped", "I"), ("outputs", "f[]")]
RUN_NETWORK_PROGRESS = [("steps_done", "H"), ("steps", "H")]
PULSE_REPLY = [("rows_done", "H"), ("pulses", "I")]
PULSE_PROGRESS = [("rows_done", "H"), ("row_count", "H")]
ERROR_REPLY = [("reason", "str")]


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
    chunks: int = 1

    @property
    def status_name(self) -> str:
        return STATUS.get(self.status, str(self.status))

    @property
    def reason(self) -> str:
        (n,) = struct.unpack_from("<H", self.payload)
        return self.payload[2 : 2 + n].decode()


def parse(data: bytes) -> list[Reply]:
    """Every valid message in ``data`` (§4.5 receiving steps, §5.2 reassembly)."""
    return Assembler().feed(data)


class Assembler:
    """The receiving side of §4.5 and §5.2, incremental: bytes in, complete messages out."""

    def __init__(self) -> None:
        self._buf = b""
        self._pending: tuple | None = None  # (seq, opcode, kind bits, status, session, flags, chunks, payload)
        self.dropped = 0

    def feed(self, data: bytes) -> list[Reply]:
        *done, self._buf = (self._buf + data).split(b"\x00")
        out = []
        for raw in done:
            if not raw:
                continue
            try:
                body = cobs.decode(raw)
            except cobs.DecodeError:
                self.dropped += 1
                continue
            if len(body) < 16 or zlib.crc32(body[:-4]) != struct.unpack("<I", body[-4:])[0]:
                self.dropped += 1
                continue
            version, flags, seq, opcode, status, session, chunk, length = HEADER.unpack_from(body)
            if length != len(body) - 16:
                self.dropped += 1
                continue
            payload = body[HEADER.size : -4]
            kind = flags & (REPLY | PROGRESS)
            if chunk == 0:
                if self._pending is not None:
                    self.dropped += 1
                self._pending = (seq, opcode, kind, status, session, flags & ~MORE, 1, payload)
            else:
                p = self._pending
                if p is None or (p[0], p[1], p[2], p[6]) != (seq, opcode, kind, chunk):
                    self._pending = None
                    self.dropped += 1
                    continue
                self._pending = p[:6] + (p[6] + 1, p[7] + payload)
            if not flags & MORE:
                p, self._pending = self._pending, None
                out.append(Reply(p[0], p[1], p[3], p[4], p[5], p[7], chunks=p[6]))
        return out


class RawHost:
    """A host over any byte pipe: ``write(bytes)`` and ``read(timeout) -> bytes``."""

    def __init__(self, write: Callable[[bytes], None], read: Callable[[float], bytes], client: str = "raw client"):
        self._write, self._read = write, read
        self.client = client
        self.session = 0
        self.frame_payload = MIN_FRAME_PAYLOAD  # §4.6: 240 until the HELLO reply says more
        self.info: dict | None = None
        self.log: list[Reply] = []  # every message received, in order
        self._asm = Assembler()
        self._seq = 0

    def next_seq(self) -> int:
        """A fresh sequence number (§8.1: +1 per request, modulo 65 536)."""
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def send(self, name: str, payload: bytes = b"", *, seq: int, session: int | None = None, flags: int = 0) -> None:
        self._write(frames(OPCODES[name], payload, seq=seq, flags=flags, max_payload=self.frame_payload,
                           session=self.session if session is None else session))

    def receive(self, timeout: float = 0.0) -> list[Reply]:
        """Whatever messages complete within ``timeout`` (logged, not filtered)."""
        got = self._asm.feed(self._read(timeout))
        self.log.extend(got)
        return got

    def wait(self, seq: int, timeout: float = 2.0, progress: list | None = None, opcode: int | None = None) -> Reply:
        """The final reply to ``seq`` (progress frames go to ``progress``, other replies are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            for reply in self._asm.feed(self._read(max(0.0, deadline - time.monotonic()))):
                self.log.append(reply)
                if reply.seq != seq or not reply.flags & REPLY or (opcode is not None and reply.opcode != opcode):
                    continue
                if reply.flags & PROGRESS:
                    if progress is not None:
                        progress.append(reply)
                    continue
                return reply
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no reply to seq {seq}")

    def request(self, name: str, payload: bytes = b"", *, seq: int, session: int | None = None,
                timeout: float = 2.0, flags: int = 0, progress: list | None = None) -> Reply:
        self.send(name, payload, seq=seq, session=session, flags=flags)
        return self.wait(seq, timeout, progress, OPCODES[name])

    def hello(self, *, seq: int, mode: int = NEW, session: int = 0, minor: int = 0) -> Reply:
        reply = self.request("HELLO", hello_v(mode, session, self.client, minor), seq=seq, session=0)
        self._seq = seq  # next_seq() continues after it
        if reply.status == 0:
            self.session = reply.session
            self.info = parse_layout(reply.payload, HELLO_REPLY)
            self.frame_payload = max(MIN_FRAME_PAYLOAD, min(self.info["max_frame"], 65535))  # §7.6
        return reply

    def call(self, name: str, payload: bytes = b"", **kw) -> Reply:
        """``request`` with the next sequence number."""
        return self.request(name, payload, seq=self.next_seq(), **kw)

    def ok(self, name: str, payload: bytes = b"", layout: Sequence[tuple[str, str]] | None = None, **kw) -> dict:
        """A request that must succeed; its reply parsed with ``layout`` (empty layout: an empty payload)."""
        reply = self.call(name, payload, **kw)
        assert reply.status == 0, f"{name}: {reply.status_name} {reply.reason if reply.status not in (0, 7) else ''}"
        return parse_layout(reply.payload, layout or [])
