"""Message payload codec built from the schema at import.

Each message layout (request, reply, progress) is compiled once into a list of
steps: runs of scalars become one :class:`struct.Struct`, arrays are a ``u32``
element count followed by little-endian elements (read and written with numpy,
so bulk data never goes through Python loops), strings are a ``u16`` byte count
followed by UTF-8.

>>> payload = encode("HELLO", "request", {"host_major": 1, "host_minor": 0})
>>> decode("HELLO", "request", payload)
{'host_major': 1, 'host_minor': 0}
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

import numpy as np

from .errors import ProtocolError
from .schema import SCALAR_TYPES, SCHEMA, Field, Schema

__all__ = ["encode", "decode", "Layout", "NUMPY_TYPES"]

#: wire element type -> little-endian numpy dtype
NUMPY_TYPES = {
    "u8": np.dtype("u1"),
    "u16": np.dtype("<u2"),
    "u32": np.dtype("<u4"),
    "i16": np.dtype("<i2"),
    "i32": np.dtype("<i4"),
    "f32": np.dtype("<f4"),
}
_COUNT = struct.Struct("<I")
_STRLEN = struct.Struct("<H")


class Layout:
    """A compiled payload layout: encodes a mapping, decodes bytes to a dict."""

    def __init__(self, fields: tuple[Field, ...], label: str):
        self.fields = fields
        self.label = label
        self._steps: list[tuple[str, Any, Any]] = []
        run: list[Field] = []
        for f in fields:
            if f.is_array or f.type == "str":
                self._flush(run)
                run = []
                kind = "str" if f.type == "str" else "array"
                self._steps.append((kind, f.name, None if kind == "str" else NUMPY_TYPES[f.element_type]))
            else:
                run.append(f)
        self._flush(run)

    def _flush(self, run: list[Field]) -> None:
        if run:
            st = struct.Struct("<" + "".join(SCALAR_TYPES[f.type][0] for f in run))
            self._steps.append(("scalars", tuple(f.name for f in run), st))

    def encode(self, values: Mapping[str, Any]) -> bytes:
        """Encode field values to payload bytes.

        Raises
        ------
        ProtocolError
            A field is missing, out of its type's range, or not encodable.
        """
        parts: list[bytes] = []
        try:
            for kind, name, extra in self._steps:
                if kind == "scalars":
                    parts.append(extra.pack(*(values[n] for n in name)))
                elif kind == "str":
                    raw = str(values[name]).encode("utf-8")
                    parts.append(_STRLEN.pack(len(raw)))
                    parts.append(raw)
                else:
                    arr = np.asarray(values[name])
                    if arr.ndim != 1:
                        arr = arr.reshape(-1)
                    if arr.dtype != extra:
                        if extra.kind in "iu" and arr.size and (
                            arr.min() < np.iinfo(extra).min or arr.max() > np.iinfo(extra).max
                        ):
                            raise ProtocolError(f"{self.label}.{name}: value out of range for {extra}")
                        arr = arr.astype(extra)
                    parts.append(_COUNT.pack(arr.size))
                    parts.append(arr.tobytes())
        except KeyError as exc:
            raise ProtocolError(f"{self.label}: missing field {exc.args[0]!r}") from None
        except (struct.error, TypeError, ValueError, OverflowError) as exc:
            raise ProtocolError(f"{self.label}: cannot encode: {exc}") from None
        return b"".join(parts)

    def decode(self, payload: bytes | bytearray | memoryview) -> dict[str, Any]:
        """Decode payload bytes to a dict of field values (arrays as numpy).

        Raises
        ------
        ProtocolError
            The payload is shorter or longer than the layout, or a string is not UTF-8.
        """
        buf = memoryview(payload)
        pos = 0
        out: dict[str, Any] = {}
        n = len(buf)
        try:
            for kind, name, extra in self._steps:
                if kind == "scalars":
                    if pos + extra.size > n:
                        raise ProtocolError(f"{self.label}: payload too short")
                    out.update(zip(name, extra.unpack_from(buf, pos)))
                    pos += extra.size
                elif kind == "str":
                    if pos + 2 > n:
                        raise ProtocolError(f"{self.label}.{name}: payload too short")
                    (ln,) = _STRLEN.unpack_from(buf, pos)
                    pos += 2
                    if pos + ln > n:
                        raise ProtocolError(f"{self.label}.{name}: string runs past the payload")
                    out[name] = bytes(buf[pos : pos + ln]).decode("utf-8")
                    pos += ln
                else:
                    if pos + 4 > n:
                        raise ProtocolError(f"{self.label}.{name}: payload too short")
                    (count,) = _COUNT.unpack_from(buf, pos)
                    pos += 4
                    nbytes = count * extra.itemsize
                    if pos + nbytes > n:
                        raise ProtocolError(f"{self.label}.{name}: array of {count} runs past the payload")
                    out[name] = np.frombuffer(buf, dtype=extra, count=count, offset=pos)
                    pos += nbytes
        except UnicodeDecodeError:
            raise ProtocolError(f"{self.label}: string is not UTF-8") from None
        if pos != n:
            raise ProtocolError(f"{self.label}: {n - pos} unexpected trailing bytes")
        return out


def _compile(schema: Schema) -> dict[tuple[int, str], Layout]:
    table = {}
    for m in schema.messages:
        for kind in ("request", "reply", "progress"):
            table[(m.opcode, kind)] = Layout(m.layout(kind), f"{m.name}.{kind}")
    return table


_LAYOUTS = _compile(SCHEMA)
_ERROR = Layout(SCHEMA.error_reply, "error_reply")


def _layout(message: str | int, kind: str) -> Layout:
    if kind == "error":  # one layout for every opcode, known or not
        return _ERROR
    try:
        opcode = message if isinstance(message, int) else SCHEMA.message(message).opcode
        return _LAYOUTS[(opcode, kind)]
    except KeyError:
        raise ProtocolError(f"unknown message {message!r} ({kind})") from None


def encode(message: str | int, kind: str, values: Mapping[str, Any]) -> bytes:
    """Encode a message payload.

    Parameters
    ----------
    message : str or int
        Message name (``"VMM"``) or opcode.
    kind : {"request", "reply", "progress", "error"}
        ``"error"`` is the payload of a reply whose status is neither OK nor
        ABORTED, the same for every opcode.
    values : mapping
        Field name -> value; arrays may be any array-like.

    Returns
    -------
    bytes
    """
    return _layout(message, kind).encode(values)


def decode(message: str | int, kind: str, payload: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode a message payload; arrays come back as read-only numpy arrays."""
    return _layout(message, kind).decode(payload)
