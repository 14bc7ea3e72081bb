"""PROTOCOL.md must match the schema and the codec, so the document fails CI when it drifts.

Checked against ``firmware_protocol.SCHEMA`` (built from protocol.toml):

* every opcode, status, flag, header field, enum value and every request / reply /
  progress / error field name appears in the document;
* the marked tables (``<!-- table:NAME -->``) list exactly the schema's entries, in
  order, with the schema's values and wire types;
* the worked examples (``<!-- example:NAME -->``) are byte-for-byte what
  ``firmware_protocol.encode_frame`` produces now.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest
from cobs import cobs

import firmware_protocol as fp
from firmware_protocol.framing import HEADER

SCHEMA = fp.SCHEMA
DOC_PATH = Path(fp.__file__).with_name("PROTOCOL.md")
KINDS = ("request", "reply", "progress")


@pytest.fixture(scope="module")
def doc() -> str:
    assert DOC_PATH.is_file(), f"{DOC_PATH} is missing"
    return DOC_PATH.read_text(encoding="utf-8")


def _after_marker(doc: str, marker: str) -> list[str]:
    """Lines following ``<!-- marker -->`` up to the next blank line after content."""
    tag = f"<!-- {marker} -->"
    assert doc.count(tag) == 1, f"PROTOCOL.md must contain {tag!r} exactly once"
    lines = doc.split(tag, 1)[1].splitlines()[1:]
    out: list[str] = []
    for line in lines:
        if not line.strip():
            if out:
                break
            continue
        out.append(line)
    return out


def _table(doc: str, name: str) -> list[list[str]]:
    """Body rows (cells stripped) of the Markdown table after ``<!-- table:name -->``."""
    lines = _after_marker(doc, f"table:{name}")
    rows = [ln for ln in lines if ln.lstrip().startswith("|")]
    assert rows == lines, f"table:{name}: expected only a table after the marker, got {lines[:3]}"
    assert len(rows) >= 2 and set(rows[1].replace("|", "").strip()) <= set("-: "), \
        f"table:{name}: missing header/separator"
    body = []
    for row in rows[2:]:
        # split on unescaped pipes only
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]
        body.append(cells)
    return body


def _code(cell: str) -> str:
    m = re.fullmatch(r"`([^`]+)`", cell)
    assert m, f"expected a `code` cell, got {cell!r}"
    return m.group(1)


def _words(doc: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", doc))


# ----------------------------------------------------------------------------- names


def test_every_schema_name_appears_in_the_document(doc: str) -> None:
    words = _words(doc)
    names = {m.name for m in SCHEMA.messages}
    names |= set(SCHEMA.status) | set(SCHEMA.flags)
    names |= {f.name for f in SCHEMA.header} | {f.name for f in SCHEMA.error_reply}
    names |= set(SCHEMA.enums)
    for values in SCHEMA.enums.values():
        names |= set(values)
    for m in SCHEMA.messages:
        for kind in KINDS:
            names |= {f.name for f in m.layout(kind)}
    missing = sorted(n for n in names if n not in words)
    assert not missing, f"PROTOCOL.md never mentions: {missing}"


def test_each_message_has_a_section_naming_its_fields(doc: str) -> None:
    for m in SCHEMA.messages:
        heading = f"### `{m.name}` — opcode 0x{m.opcode:02X}"
        assert doc.count(heading + "\n") == 1, f"missing or duplicated section heading {heading!r}"
        section = doc.split(heading + "\n", 1)[1]
        section = re.split(r"^#{1,3} ", section, maxsplit=1, flags=re.M)[0]
        for kind in KINDS:
            for f in m.layout(kind):
                assert f"`{f.name}`" in section, f"{m.name} section does not mention {kind} field {f.name!r}"


# ----------------------------------------------------------------------------- tables


def test_header_table_matches_schema(doc: str) -> None:
    rows = _table(doc, "header")
    offset = 0
    expected = []
    for f in SCHEMA.header:
        size = struct.calcsize("<" + {"u8": "B", "u16": "H", "u32": "I"}[f.type])
        expected.append((str(offset), str(size), f.name, f.type))
        offset += size
    got = [(r[0], r[1], _code(r[2]), _code(r[3])) for r in rows]
    assert got == expected
    assert offset == SCHEMA.header_size == HEADER.size == 12


def test_flags_table_matches_schema(doc: str) -> None:
    rows = _table(doc, "flags")
    got = {_code(r[2]): (int(r[0]), int(r[1], 16)) for r in rows}
    expected = {name: (mask.bit_length() - 1, mask) for name, mask in SCHEMA.flags.items()}
    assert got == expected
    assert len(rows) == len(SCHEMA.flags)


def test_status_table_matches_schema(doc: str) -> None:
    rows = _table(doc, "status")
    got = [(int(r[0]), _code(r[1])) for r in rows]
    expected = sorted((code, name) for name, code in SCHEMA.status.items())
    assert got == expected


def test_opcode_table_matches_schema(doc: str) -> None:
    rows = _table(doc, "opcodes")
    got = [(int(r[0], 16), _code(r[1]), r[2]) for r in rows]
    assert got == [(m.opcode, m.name, f"{m.since[0]}.{m.since[1]}") for m in SCHEMA.messages]


def test_enum_tables_match_schema(doc: str) -> None:
    for enum, values in SCHEMA.enums.items():
        rows = _table(doc, enum)
        got = [(int(r[0]), _code(r[1])) for r in rows]
        assert got == sorted((v, k) for k, v in values.items()), enum


def test_error_reply_table_matches_schema(doc: str) -> None:
    rows = _table(doc, "error_reply")
    assert [(_code(r[0]), _code(r[1])) for r in rows] == [(f.name, f.type) for f in SCHEMA.error_reply]


@pytest.mark.parametrize("message", [m.name for m in SCHEMA.messages])
def test_message_layout_tables_match_schema(doc: str, message: str) -> None:
    m = SCHEMA.message(message)
    for kind in KINDS:
        fields = m.layout(kind)
        marker = f"table:{m.name}.{kind}"
        if not fields:
            if kind == "progress":
                assert f"<!-- {marker} -->" not in doc, f"{m.name} has no progress layout in the schema"
                continue
            lines = _after_marker(doc, marker)
            assert lines and lines[0].startswith("Empty (0 bytes)"), f"{marker}: schema layout is empty"
            continue
        rows = _table(doc, f"{m.name}.{kind}")
        got = [(_code(r[0]), _code(r[1])) for r in rows]
        assert got == [(f.name, f.type) for f in fields], f"{m.name}.{kind} table differs from the schema"


def test_documented_constants_match_schema(doc: str) -> None:
    assert f"version {SCHEMA.major}.{SCHEMA.minor}" in doc.splitlines()[0]
    assert f"`reply_cache` = **{SCHEMA.reply_cache}**" in doc
    assert f"| `min_frame_payload` (schema) | {SCHEMA.min_frame_payload} |" in doc
    assert zlib.crc32(b"123456789") == 0xCBF43926 and "0xCBF43926" in doc


# ----------------------------------------------------------------------------- examples

#: frame parameters of each worked example in §4.7
EXAMPLES = {
    "hello-request": dict(
        message="HELLO", kind="request",
        values={"host_major": 2, "host_minor": 0, "mode": 0, "session": 0, "client": "lab-pc"},
        seq=0x1234, flags=0, status=0, session=0,
    ),
    "error-reply": dict(
        message="READ_MAP", kind="error", values={"reason": "rows 120..135 outside 0..127"},
        seq=0x1235, flags=fp.FLAGS["REPLY"], status=SCHEMA.status["LIMIT"], session=0xBEEF,
    ),
}


def _hex(data: bytes) -> str:
    return data.hex(" ")


def _example_fields(doc: str, name: str) -> dict[str, str]:
    lines = _after_marker(doc, f"example:{name}")
    assert lines[0].startswith("```") and lines[-1] == "```", f"example:{name}: expected a fenced block"
    fields = {}
    for line in lines[1:-1]:
        key, sep, value = line.partition(":")
        assert sep, f"example:{name}: line without 'key:' {line!r}"
        fields[key.strip()] = value.strip()
    return fields


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_worked_example_bytes_match_the_codec(doc: str, name: str) -> None:
    ex = EXAMPLES[name]
    got = _example_fields(doc, name)
    opcode = SCHEMA.message(ex["message"]).opcode
    payload = fp.encode(ex["message"], ex["kind"], ex["values"])
    header = HEADER.pack(SCHEMA.major, ex["flags"], ex["seq"], opcode, ex["status"], ex["session"], 0, len(payload))
    crc = zlib.crc32(header + payload)
    crc_bytes = struct.pack("<I", crc)
    wire = fp.encode_frame(seq=ex["seq"], opcode=opcode, payload=payload, flags=ex["flags"],
                           status=ex["status"], session=ex["session"])
    expected = {
        "payload": _hex(payload),
        "header": _hex(header),
        "crc32": f"0x{crc:08X}",
        "crc bytes": _hex(crc_bytes),
        "cobs input": _hex(header + payload + crc_bytes),
        "cobs output": _hex(cobs.encode(header + payload + crc_bytes)),
        "wire": _hex(wire),
    }
    for key, value in expected.items():
        assert got.get(key) == value, f"example:{name} {key!r}: doc has {got.get(key)!r}, codec gives {value!r}"
    assert wire.endswith(b"\x00") and wire[:-1] == cobs.encode(header + payload + crc_bytes)
    # the example decodes back to what its description line says
    (frame,) = fp.FrameDecoder().feed(wire)
    assert (frame.seq, frame.opcode, frame.flags, frame.status, frame.session) == (
        ex["seq"], opcode, ex["flags"], ex["status"], ex["session"])
    assert fp.decode(opcode, ex["kind"], frame.payload) == ex["values"]
    desc = got["message"]
    assert desc.startswith(f"{ex['message']} ") and f"seq=0x{ex['seq']:04X}" in desc


def test_hello_example_header_breakdown_matches(doc: str) -> None:
    """The per-offset table above example A agrees with the packed header."""
    section = doc.split("**Example A", 1)[1].split("<!-- example:hello-request -->", 1)[0]
    rows = [ln for ln in section.splitlines() if re.match(r"\| \d+ \| `", ln)]
    payload = fp.encode("HELLO", "request", EXAMPLES["hello-request"]["values"])
    header = HEADER.pack(SCHEMA.major, 0, 0x1234, SCHEMA.message("HELLO").opcode, 0, 0, 0, len(payload))
    offsets = {}
    off = 0
    for f in SCHEMA.header:
        size = {"u8": 1, "u16": 2, "u32": 4}[f.type]
        offsets[f.name] = (off, header[off : off + size])
        off += size
    assert len(rows) == len(SCHEMA.header)
    for row in rows:
        cells = [c.strip() for c in row.strip().split("|")[1:-1]]
        name = _code(cells[2])
        off, raw = offsets[name]
        assert int(cells[0]) == off and _code(cells[1]) == _hex(raw), name
