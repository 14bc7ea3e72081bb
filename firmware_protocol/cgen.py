"""Generate the firmware's C header ``c/memhw_protocol.h`` (and the payload layout tables
``c/memhw_layouts.h``/``.c``, :mod:`firmware_protocol.ctables`) from the protocol schema.

Run ``python -m firmware_protocol.cgen`` after editing ``protocol.toml`` to
rewrite the header, or ``python -m firmware_protocol.cgen --check`` (CI) to
exit with status 1 when the checked-in header is stale. The output depends on
the schema only, so it is byte-for-byte reproducible.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

from .activation_tables import (ACTIVATIONS_C_PATH, ACTIVATIONS_H_PATH, generate_activations_c,
                                generate_activations_h)
from .ctables import LAYOUTS_C_PATH, LAYOUTS_H_PATH, generate_layouts_c, generate_layouts_h
from .generated import write_or_check
from .schema import SCALAR_TYPES, SCHEMA, Field, Schema

__all__ = ["HEADER_PATH", "generate_header", "main"]

#: the checked-in header this module generates
HEADER_PATH = Path(__file__).with_name("c") / "memhw_protocol.h"
_COMMAND = "python -m firmware_protocol.cgen"
_WIDTH = 100  # wrap comments at this column

_WIRE_FORMAT = (
    "Wire format: a frame is COBS(header + payload + CRC-32) followed by one 0x00 delimiter. "
    "The CRC-32 is IEEE 802.3 (reflected, polynomial 0xEDB88320, init and xorout 0xFFFFFFFF; zlib.crc32) "
    "over header + payload, appended little-endian. Integers and floats are little-endian and fields are "
    "packed in the order listed, without padding. Payload types: u8 u16 u32 i16 i32 f32 (IEEE 754); "
    "str = u16 byte count + UTF-8 bytes; T[] = u32 element count + elements. A message longer than one "
    "frame is sent as frames with the same seq and opcode, chunk = 0, 1, 2, ... and MORE set on all but "
    "the last."
)


def _c_comment(text: str) -> str:
    """Make ``text`` safe inside a C block comment."""
    return text.replace("*/", "* /")


def _upper_snake(name: str) -> str:
    """``LineGroup`` -> ``LINE_GROUP``; ``error_reply`` -> ``ERROR_REPLY``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def _comment(paragraphs: list[str]) -> list[str]:
    """A ``/* ... */`` block: prose paragraphs are wrapped, lines starting with a space kept as they are."""
    out = ["/*"]
    for text in paragraphs:
        if text.startswith(" "):
            out.append(" * " + _c_comment(text))
        else:
            wrapped = textwrap.wrap(_c_comment(text), _WIDTH - 3, break_on_hyphens=False)
            out += [" * " + line for line in wrapped] or [" *"]
    return out + [" */"]


def _defines(rows: list[tuple[str, str, str]]) -> list[str]:
    """``#define`` lines with aligned values; a doc follows the value, or goes above if too long."""
    width = max(len(name) for name, _, _ in rows)
    defines = [f"#define {name:<{width}} {value}" for name, value, _ in rows]
    column = max(len(d) for d in defines) + 1
    out = []
    for define, (_, _, doc) in zip(defines, rows):
        trailing = f"{define:<{column}}/* {_c_comment(doc)} */"
        if not doc:
            out.append(define)
        elif len(trailing) <= _WIDTH:
            out.append(trailing)
        else:
            above = f"/* {_c_comment(doc)} */"
            out += ([above] if len(above) <= _WIDTH else _comment([doc])) + [define]
    return out


def _enum(tag: str, rows: list[tuple[str, str, str]]) -> list[str]:
    """A ``typedef enum`` with one member per ``(name, value, doc)`` row, docs as ``/** */`` above."""
    width = max(len(name) for name, _, _ in rows)
    out = [f"typedef enum {tag} {{"]
    for i, (name, value, doc) in enumerate(rows):
        if doc:
            out.append(f"    /** {_c_comment(doc)} */")
        comma = "," if i < len(rows) - 1 else ""  # C89 compilers reject a trailing comma
        out.append(f"    {name:<{width}} = {value}{comma}")
    return out + [f"}} {tag}_t;"]


def _field_table(fields: tuple[Field, ...], indent: str) -> list[str]:
    """Comment lines listing ``fields`` in wire order: name, type, [unit], doc."""
    if not fields:
        return []
    names = max(len(f.name) for f in fields)
    types = max(len(f.type) for f in fields)
    units = max((len(f.unit) + 2 for f in fields if f.unit), default=0)
    out = []
    for f in fields:
        unit = f"[{f.unit}]" if f.unit else ""
        head = f"{indent}{f.name:<{names}}  {f.type:<{types}}"
        if units:
            head += f"  {unit:<{units}}"
        if not f.doc:
            out.append(head.rstrip())
            continue
        doc = textwrap.wrap(f.doc, max(_WIDTH - 3 - len(head) - 2, 30), break_on_hyphens=False)
        out.append(f"{head}  {doc[0]}")
        out += [" " * (len(head) + 2) + more for more in doc[1:]]
    return out


def _banner(schema: Schema) -> list[str]:
    return _comment(
        [
            f"memhw_protocol.h -- {schema.name} board protocol {schema.major}.{schema.minor}.",
            "",
            f"GENERATED FILE, DO NOT EDIT. Generated by `{_COMMAND}` from firmware_protocol/protocol.toml "
            f"(schema hash 0x{schema.hash:08X}); edit the schema and regenerate.",
            "",
            _WIRE_FORMAT,
        ]
    )


def _constants(schema: Schema) -> list[str]:
    out = ["/* Protocol identity */"]
    out += _defines(
        [
            ("MEMHW_PROTOCOL_MAJOR", f"{schema.major}u", "sent in every header's version field"),
            ("MEMHW_PROTOCOL_MINOR", f"{schema.minor}u", "reported in the HELLO reply"),
            ("MEMHW_SCHEMA_HASH", f"0x{schema.hash:08X}UL", "crc32 of protocol.toml (HELLO schema_hash)"),
        ]
    )
    out += ["", "/* Sizes in bytes */"]
    out += _defines(
        [
            ("MEMHW_HEADER_SIZE", f"{schema.header_size}u", "frame header"),
            ("MEMHW_CRC_SIZE", f"{schema.crc_size}u", "CRC-32 after the payload"),
            ("MEMHW_MIN_FRAME_PAYLOAD", f"{schema.min_frame_payload}u", "frame payload every board and host supports"),
            ("MEMHW_REPLY_CACHE", f"{schema.reply_cache}u", "replies kept to answer duplicate requests"),
        ]
    )
    out += ["", "/* Header fields: byte offset and size, little-endian */"]
    rows, offset = [], 0
    for f in schema.header:
        size = SCALAR_TYPES[f.type][1]
        key = f"MEMHW_HDR_{_upper_snake(f.name)}"
        rows += [(f"{key}_OFFSET", f"{offset}u", f"{f.type}: {f.doc}"), (f"{key}_SIZE", f"{size}u", "")]
        offset += size
    out += _defines(rows)
    out += ["", "/* Header flag bits */"]
    out += _defines([(f"MEMHW_FLAG_{k}", f"0x{mask:02X}u", schema.flag_docs[k]) for k, mask in schema.flags.items()])
    return out


def _enums(schema: Schema) -> list[str]:
    out = ["/* Status codes (header field status) */"]
    out += _enum("memhw_status",
                 [(f"MEMHW_STATUS_{k}", str(code), schema.status_docs[k]) for k, code in schema.status.items()])
    out += ["", "/* Opcodes (header field opcode); layouts below */"]
    out += _enum("memhw_opcode", [(f"MEMHW_OP_{m.name}", f"0x{m.opcode:02X}", "") for m in schema.messages])
    for name, members in schema.enums.items():
        snake = _upper_snake(name)
        out += ["", f"/* Enum {name} */"]
        out += _enum(f"memhw_{snake.lower()}", [(f"MEMHW_{snake}_{k}", str(v), "") for k, v in members.items()])
    return out


def _layouts(schema: Schema) -> list[str]:
    out = _comment(
        [
            "Error reply: the payload of every reply whose status is neither OK nor ABORTED (an ABORTED "
            "reply carries the message's normal reply layout, saying how far it got).",
            *_field_table(schema.error_reply, "  "),
        ]
    )
    for m in schema.messages:
        lines = [f"{m.name} (opcode 0x{m.opcode:02X}, MEMHW_OP_{m.name})", m.doc, ""]
        for kind, empty in (("request", "empty payload"), ("reply", "empty payload"), ("progress", "not sent")):
            fields = m.layout(kind)
            lines.append(f"{kind}:" if fields else f"{kind}: {empty}")
            lines += _field_table(fields, "  ")
        out += [""] + _comment(lines)
    return out


def generate_header(schema: Schema = SCHEMA) -> str:
    """Render the C header for ``schema``.

    Parameters
    ----------
    schema : Schema
        The parsed protocol (default: the packaged ``protocol.toml``).

    Returns
    -------
    str
        The complete contents of ``memhw_protocol.h``.
    """
    out = _banner(schema) + ["#ifndef MEMHW_PROTOCOL_H", "#define MEMHW_PROTOCOL_H", ""]
    out += _constants(schema) + [""] + _enums(schema)
    out += ["", "/* ------------------------------------------------------------------ message layouts */", ""]
    out += _layouts(schema)
    out += ["", "#endif /* MEMHW_PROTOCOL_H */", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Write the C header and layout tables, or with ``--check`` exit 1 if one is stale."""
    return write_or_check(lambda: {HEADER_PATH: generate_header(), LAYOUTS_H_PATH: generate_layouts_h(),
                                   LAYOUTS_C_PATH: generate_layouts_c(), ACTIVATIONS_H_PATH: generate_activations_h(),
                                   ACTIVATIONS_C_PATH: generate_activations_c()},
                          _COMMAND, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    sys.exit(main())
