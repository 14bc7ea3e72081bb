"""The generated C header is current, and the C reference codec passes the golden vectors."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from firmware_protocol import cgen, goldens
from firmware_protocol.schema import SCHEMA

C_DIR = cgen.HEADER_PATH.parent
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1"]


def test_header_is_up_to_date() -> None:
    current = cgen.HEADER_PATH.read_bytes().decode("utf-8") if cgen.HEADER_PATH.exists() else ""
    assert current == cgen.generate_header(), (
        f"{cgen.HEADER_PATH} is stale: regenerate it with `python -m firmware_protocol.cgen`"
    )


def test_header_values_match_schema() -> None:
    text = cgen.generate_header()
    assert f"schema hash 0x{SCHEMA.hash:08X}" in text and "DO NOT EDIT" in text
    expected = {f"MEMHW_OP_{m.name}": m.opcode for m in SCHEMA.messages}
    expected |= {f"MEMHW_STATUS_{k}": v for k, v in SCHEMA.status.items()}
    expected |= {f"MEMHW_FLAG_{k}": v for k, v in SCHEMA.flags.items()}
    expected |= {"MEMHW_PROTOCOL_MAJOR": SCHEMA.major, "MEMHW_HEADER_SIZE": SCHEMA.header_size,
                 "MEMHW_HDR_LENGTH_OFFSET": SCHEMA.header_size - 2, "MEMHW_LINE_GROUP_GATES": 2}
    for name, value in expected.items():
        m = re.search(rf"\b{name}\s+=?\s*(0x[0-9A-F]+|\d+)u?\b", text)
        assert m is not None and int(m.group(1), 0) == value, name


def test_check_reports_stale_header(tmp_path, monkeypatch, capsys) -> None:
    assert cgen.main(["--check"]) == 0
    stale = tmp_path / "memhw_protocol.h"
    stale.write_text("/* old */\n")
    monkeypatch.setattr(cgen, "HEADER_PATH", stale)
    assert cgen.main(["--check"]) == 1
    assert "run `python -m firmware_protocol.cgen` (without --check)" in capsys.readouterr().err


def test_c_codec_passes_golden_vectors(tmp_path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found on PATH; cannot build the C reference codec")
    exe = tmp_path / "test_vectors"
    sources = [str(C_DIR / "memhw_frame.c"), str(C_DIR / "test_vectors.c")]
    build = subprocess.run([gcc, *CFLAGS, "-I", str(C_DIR), *sources, "-o", str(exe)],
                           capture_output=True, text=True, timeout=60)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe), str(goldens.VECTORS_DIR / "vectors.txt")],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(goldens.build_vectors())} passed, 0 failed" in run.stdout
