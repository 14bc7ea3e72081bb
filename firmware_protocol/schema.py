"""Load ``protocol.toml``, the single source of truth of the wire format.

The schema is parsed once at import into small immutable descriptions
(:class:`Field`, :class:`Message`) from which the codec, the C header and the
documentation tables are all derived.
"""

from __future__ import annotations

import tomllib
import zlib
from functools import cached_property
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Mapping

__all__ = [
    "SCALAR_TYPES",
    "Field",
    "Message",
    "Schema",
    "load_schema",
    "SCHEMA",
]

#: scalar wire types -> (struct code, size in bytes)
SCALAR_TYPES: Mapping[str, tuple[str, int]] = MappingProxyType(
    {
        "u8": ("B", 1),
        "u16": ("H", 2),
        "u32": ("I", 4),
        "i16": ("h", 2),
        "i32": ("i", 4),
        "f32": ("f", 4),
    }
)


@dataclass(frozen=True)
class Field:
    """One payload or header field.

    Attributes
    ----------
    name : str
        Field name (a Python identifier).
    type : str
        ``u8 u16 u32 i16 i32 f32``, ``str`` or an array ``T[]``.
    unit : str
        What a value means (``V``, ``s``, ``dac_line``, ...) or ``""``.
    doc : str
        One-line description.
    """

    name: str
    type: str
    unit: str = ""
    doc: str = ""

    @property
    def is_array(self) -> bool:
        return self.type.endswith("[]")

    @property
    def element_type(self) -> str:
        return self.type[:-2] if self.is_array else self.type


@dataclass(frozen=True)
class Message:
    """One message type: an opcode with request, reply and progress layouts."""

    name: str
    opcode: int
    doc: str
    since: tuple[int, int]
    request: tuple[Field, ...]
    reply: tuple[Field, ...]
    progress: tuple[Field, ...]

    def layout(self, kind: str) -> tuple[Field, ...]:
        """Fields of ``kind`` = ``"request"``, ``"reply"`` or ``"progress"``."""
        return getattr(self, kind)


@dataclass(frozen=True)
class Schema:
    """The parsed protocol schema."""

    name: str
    major: int
    minor: int
    hash: int
    header: tuple[Field, ...]
    header_size: int
    crc_size: int
    min_frame_payload: int
    reply_cache: int
    conductance_lsb: float
    read_voltage: float
    max_tiles: int
    max_layers: int
    activation_table: int
    auto_gain: int
    flags: Mapping[str, int]
    flag_docs: Mapping[str, str]
    status: Mapping[str, int]
    status_docs: Mapping[str, str]
    messages: tuple[Message, ...]
    error_reply: tuple[Field, ...]
    enums: Mapping[str, Mapping[str, int]]

    def message(self, key: str | int) -> Message:
        """Look a message up by name or opcode.

        Raises
        ------
        KeyError
            If there is no such message.
        """
        return self._messages_by_key[key]

    def status_name(self, code: int) -> str:
        name = self._status_names.get(code)
        return name if name is not None else f"STATUS_{code}"

    @cached_property
    def _messages_by_key(self) -> dict[str | int, Message]:
        return {**{m.name: m for m in self.messages}, **{m.opcode: m for m in self.messages}}

    @cached_property
    def _status_names(self) -> dict[int, str]:
        return {code: name for name, code in self.status.items()}


def _fields(items: list[dict]) -> tuple[Field, ...]:
    out = []
    for item in items:
        f = Field(item["name"], item["type"], item.get("unit", ""), item.get("doc", ""))
        base = f.element_type
        if base not in SCALAR_TYPES and not (base == "str" and not f.is_array):
            raise ValueError(f"field {f.name!r}: unknown type {f.type!r}")
        out.append(f)
    return tuple(out)


def _version(name: str, text: str) -> tuple[int, int]:
    """``"2.1"`` -> ``(2, 1)``."""
    major, dot, minor = str(text).partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        raise ValueError(f"message {name}: since must read MAJOR.MINOR, got {text!r}")
    return int(major), int(minor)


def load_schema(data: bytes) -> Schema:
    """Parse schema bytes (the contents of ``protocol.toml``).

    Parameters
    ----------
    data : bytes
        The TOML document.

    Returns
    -------
    Schema
    """
    doc = tomllib.loads(data.decode("utf-8"))
    proto = doc["protocol"]
    header = _fields(doc["header"])
    header_size = sum(SCALAR_TYPES[f.type][1] for f in header)
    if header_size != proto["header_size"]:
        raise ValueError(f"header fields add up to {header_size} bytes, not {proto['header_size']}")
    messages = []
    seen: set[int] = set()
    for m in doc["message"]:
        if m["opcode"] in seen:
            raise ValueError(f"duplicate opcode {m['opcode']:#x}")
        seen.add(m["opcode"])
        since = _version(m["name"], m["since"])
        if since > (proto["major"], proto["minor"]) or since[0] != proto["major"]:
            raise ValueError(f"message {m['name']}: since {m['since']} is not a version of major {proto['major']} "
                             f"up to {proto['major']}.{proto['minor']}")
        messages.append(
            Message(
                m["name"],
                m["opcode"],
                m.get("doc", ""),
                since,
                _fields(m.get("request", [])),
                _fields(m.get("reply", [])),
                _fields(m.get("progress", [])),
            )
        )
    return Schema(
        name=proto["name"],
        major=proto["major"],
        minor=proto["minor"],
        hash=zlib.crc32(data),
        header=header,
        header_size=header_size,
        crc_size=proto["crc_size"],
        min_frame_payload=proto["min_frame_payload"],
        reply_cache=proto["reply_cache"],
        conductance_lsb=proto["conductance_lsb"],
        read_voltage=proto["read_voltage"],
        max_tiles=proto["max_tiles"],
        max_layers=proto["max_layers"],
        activation_table=proto["activation_table"],
        auto_gain=proto["auto_gain"],
        flags=MappingProxyType({k: 1 << v["bit"] for k, v in doc["flags"].items()}),
        flag_docs=MappingProxyType({k: v.get("doc", "") for k, v in doc["flags"].items()}),
        status=MappingProxyType({s["name"]: s["code"] for s in doc["status"]}),
        status_docs=MappingProxyType({s["name"]: s.get("doc", "") for s in doc["status"]}),
        messages=tuple(messages),
        error_reply=_fields(doc["error_reply"]["fields"]),
        enums=MappingProxyType({k: MappingProxyType(dict(v)) for k, v in doc.get("enums", {}).items()}),
    )


def schema_bytes() -> bytes:
    """The bytes of the packaged ``protocol.toml``."""
    return resources.files(__package__).joinpath("protocol.toml").read_bytes()


#: the schema this package was built from
SCHEMA: Schema = load_schema(schema_bytes())
