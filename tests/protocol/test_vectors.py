"""Golden wire vectors: the Python codec decodes and re-encodes every one exactly."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import firmware_protocol as fp
from firmware_protocol import goldens

MANIFEST = json.loads((goldens.VECTORS_DIR / "vectors.json").read_text(encoding="utf-8"))
VECTORS = MANIFEST["vectors"]
#: FrameDecoder.last_error for each drop reason of the vectors
LAST_ERROR = {
    "none": "",
    "overflow": "frame longer than max_frame",
    "bad_cobs": "bad COBS encoding",
    "short": "frame shorter than header + CRC",
    "bad_crc": "CRC mismatch",
    "bad_length": "length field disagrees with frame size",
}

each_vector = pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])


def _frames(vector: dict[str, Any]) -> list[fp.Frame]:
    return [
        fp.Frame(f["version"], f["flags"], f["seq"], f["opcode"], f["status"], f["session"], f["chunk"],
                 bytes.fromhex(f["payload"]))
        for f in vector["frames"]
    ]


def _kind(msg: fp.Message) -> str:
    if msg.is_progress:
        return "progress"
    if not msg.is_reply:
        return "request"
    return "reply" if msg.status in (fp.STATUS["OK"], fp.STATUS["ABORTED"]) else "error"


def test_vectors_are_up_to_date() -> None:
    stale = [name for name, text in goldens.render().items()
             if (goldens.VECTORS_DIR / name).read_bytes().decode("utf-8") != text]
    assert not stale, f"golden vectors {stale} are stale: regenerate them with `python -m firmware_protocol.goldens`"


def test_check_reports_stale_vectors(tmp_path, monkeypatch, capsys) -> None:
    assert goldens.main(["--check"]) == 0
    monkeypatch.setattr(goldens, "VECTORS_DIR", tmp_path)
    assert goldens.main(["--check"]) == 1
    assert "run `python -m firmware_protocol.goldens`" in capsys.readouterr().err


def test_manifest_matches_decoder_reasons() -> None:
    assert MANIFEST["drop_reasons"] == list(goldens.DROP_REASONS) == list(LAST_ERROR)


@each_vector
@pytest.mark.parametrize("bytewise", [False, True], ids=["block", "bytewise"])
def test_decoder_emits_expected_frames_and_drops(vector: dict[str, Any], bytewise: bool) -> None:
    wire = bytes.fromhex(vector["wire"])
    decoder = fp.FrameDecoder(max_frame=MANIFEST["decoder_buffer"])
    pieces = [wire[i : i + 1] for i in range(len(wire))] if bytewise else [wire]
    frames = [frame for piece in pieces for frame in decoder.feed(piece)]
    assert frames == _frames(vector)
    assert (decoder.dropped, decoder.last_error) == (vector["drops"], LAST_ERROR[vector["drop_reason"]])


@each_vector
def test_frames_reencode_identically(vector: dict[str, Any]) -> None:
    for f in vector["frames"]:
        payload = bytes.fromhex(f["payload"])
        assert f["length"] == len(payload)
        wire = fp.encode_frame(version=f["version"], flags=f["flags"], seq=f["seq"], opcode=f["opcode"],
                               status=f["status"], session=f["session"], chunk=f["chunk"], payload=payload)
        assert wire.hex() == f["wire"]


@each_vector
def test_messages_decode_to_fields_and_reencode(vector: dict[str, Any]) -> None:
    assembler = fp.MessageAssembler()
    messages = [m for m in map(assembler.add, _frames(vector)) if m is not None]
    assert len(messages) == len(vector["messages"])
    frames = iter(vector["frames"])
    for msg, expected in zip(messages, vector["messages"]):
        assert (fp.SCHEMA.message(msg.opcode).name, _kind(msg)) == (expected["message"], expected["kind"])
        fields = fp.decode(msg.opcode, expected["kind"], msg.payload)
        assert {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in fields.items()} == expected["fields"]
        payload = fp.encode(msg.opcode, expected["kind"], expected["fields"])
        assert payload == msg.payload
        wire = fp.encode_message(seq=msg.seq, opcode=msg.opcode, payload=payload, max_payload=expected["max_payload"],
                                 flags=msg.flags, status=msg.status, session=msg.session, version=msg.version)
        assert wire.hex() == "".join(next(frames)["wire"] for _ in range(msg.frames))
