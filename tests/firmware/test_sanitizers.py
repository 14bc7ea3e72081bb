"""The C core under AddressSanitizer and UndefinedBehaviorSanitizer, fed mutated requests.

``firmware/host/memhw_fuzz.c`` drives the core (hardware-free stub HAL) with a corpus of
requests of every message (valid, boundary and refused field values, every HELLO mode)
plus the golden vectors, mutated at the payload level (so the damage reaches the
handlers behind a valid CRC) and at the wire level, fed in random pieces, with ABORTs
waiting on the link and reboots mid-batch. Any sanitizer report fails the test (the
build stops at the first one), and so does any byte the core sends that is not a valid
reply frame. Two builds: the host configuration (reference batch order, large reply
cache) and a board-like one (row by row, a small reply cache, so replies that do not fit
are refused).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import firmware_protocol as fp
from firmware_protocol import goldens
from memhw.cfirmware.build import CORE, HAL, PROTOCOL_C, SOURCES

HOST = CORE.parent / "host"
ROWS, COLS = 16, 64
#: mutated messages per build (about a second under the sanitizers)
ITERATIONS = 20000
OP = {m.name: m.opcode for m in fp.SCHEMA.messages}
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
BUILDS = {
    "host": [],
    "board": ["-DMEMHW_BATCH_ORDER=0", "-DMEMHW_CONNECTIONS_MAX=2", "-DMEMHW_CONVERT_CHUNK=2",
              "-DMEMHW_CURVE_MAX=128", "-DFUZZ_CACHE=6000", "-DFUZZ_MAX_MESSAGE=4096"],
}


def _request(name: str, fields: dict, seq: int) -> bytes:
    return fp.encode_message(seq=seq, opcode=OP[name], payload=fp.encode(name, "request", fields), max_payload=1024)


def _corpus() -> list[bytes]:
    """Requests of every message with ordinary and edge values (session ids are set by the driver)."""
    rng = np.random.default_rng(0)
    mask = np.packbits(rng.random(4 * COLS) < 0.3, bitorder="little")
    n_sel = int(np.unpackbits(mask, bitorder="little").sum())
    program = {"algorithm": 0, "row_start": 2, "row_count": 4, "mask": mask,
               "targets": rng.integers(2000, 15000, n_sel), "tolerance": 200, "verify_average": 0,
               "max_pulses": 8, "max_rounds": 6, "set_v": 16384, "set_width": 203, "gate_min": 1311,
               "gate_max": 5898, "reset_v_min": 1966, "reset_v_max": 11796, "reset_gate": 16384,
               "reset_width": 203, "reset_width_min": 0, "v_read": 1311, "patience": 3, "set_noise_prior": 400,
               "reopen": 1}
    pulses = {"row_start": 2, "row_count": 4, "mask": mask, "amplitude": [16384], "gate": rng.integers(0, 6000, n_sel),
              "width": [203]}
    out = [
        _request("HELLO", {"host_major": 2, "host_minor": 0, "mode": mode, "session": 0, "client": client}, 1)
        for mode, client in ((0, "fuzz"), (2, "taker é"), (1, "resumer"), (7, "bad mode"), (2, "x" * 130))
    ]
    fields = {
        "STATUS": [{}],
        "SET_LEVELS": [{"group": g, "value": v, "mask": [255] * (2 if g == 0 else 8), "codes": []}
                       for g, v in ((0, 1311), (2, 16384), (1, -200), (3, 1))] +
                      [{"group": 0, "value": 0, "mask": [], "codes": rng.integers(-7000, 7000, ROWS)}],
        "READ_CURRENTS": [{"gains": g, "average": a} for g, a in (([255], 4), ([1], 1), (list(range(4)) * 16, 2),
                                                                   ([9], 1), ([], 0))],
        "VMM": [{"n": n, "gains": g, "inputs": rng.integers(-1311, 1311, n * ROWS)} for n, g in ((3, [255]), (2, [0]),
                                                                                                 (0, []))],
        "READ_MAP": [{"v_read": v, "row_start": s, "row_count": c, "average": a, "gains": g}
                     for v, s, c, a, g in ((1311, 0, ROWS, 1, [255]), (1311, 0, ROWS, 3, [255]), (1311, 3, 5, 2, [2]),
                                           (1311, 10, 9, 1, []), (0, 0, 1, 1, []), (1311, 0, 0, 2, []))],
        "PULSE_SET": [pulses, {**pulses, "amplitude": [40000 % 32767]}, {**pulses, "gate": [1, 2]}],
        "PULSE_RESET": [{**pulses, "amplitude": rng.integers(1, 16384, n_sel), "gate": [16384]}],
        "GROUND_ALL": [{"mode": 0}, {"mode": 1}, {"mode": 2}],
        "ABORT": [{}],
        "WAIT": [{"seconds": s} for s in (0.0, 0.6, 5000.0, float("nan"), -1.0)],
        "PROGRAM": [program, {**program, "algorithm": 1, "max_rounds": 4}, {**program, "tolerance": 0},
                    {**program, "targets": [1, 2]}, {**program, "row_start": 14}],
        "READ_REFERENCE": [{"index": i, "v_ref": v, "gains": g, "average": 2}
                           for i, v, g in ((0, 3000, [255]), (7, 32767, []), (3, -5000, [1]), (99, 0, []))],
        "READ_DAC": [{"group": g, "codes": c, "average": 2} for g, c in ((0, [1000]), (2, list(range(0, 640, 10))),
                                                                          (1, [30000]), (5, [1]))],
        "SET_LIMITS": [{"read_max": 3000, "set_max": 20000, "reset_max": 12000, "gate_max": 9000, "width_max": 500},
                       {"read_max": 99999 % 32767, "set_max": 1, "reset_max": 1, "gate_max": 0, "width_max": 0}],
        "BYE": [{}],
    }
    for name, variants in fields.items():
        out += [_request(name, f, seq) for seq, f in enumerate(variants, start=2)]
    out += [vector.part.wire for vector in goldens.build_vectors()]  # the golden frames, as on a link
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "corpus.txt"
    path.write_text("".join(wire.hex() + "\n" for wire in _corpus()), encoding="ascii")
    return path


@pytest.mark.parametrize("build", list(BUILDS))
def test_decoder_and_dispatcher_survive_mutated_input_under_sanitizers(build: str, corpus: Path, tmp_path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found on PATH")
    exe = tmp_path / "memhw_fuzz"
    sources = [str(p) for p in SOURCES] + [str(HOST / n) for n in ("memhw_stub_hal.c", "memhw_board_reference.c",
                                                                    "memhw_fuzz.c")]
    includes = [f"-I{p}" for p in (CORE, HAL, HOST, PROTOCOL_C)]
    cmd = [gcc, "-std=c99", "-g", "-O0", "-Wall", "-Wextra", "-Werror", *SANITIZE, *BUILDS[build], *includes, *sources,
           "-o", str(exe)]
    compiled = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stderr
    run = subprocess.run([str(exe), str(corpus), str(ITERATIONS), "7"], capture_output=True, text=True, timeout=120,
                         env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "runtime error" not in run.stderr and "ERROR: AddressSanitizer" not in run.stderr
    fed, replies, bad, kinds = _counts(run.stdout)
    # most messages are answered (frames damaged on the wire, replies in the corpus and requests
    # lost with a reboot are not), in many ways: every opcode, OK and every refusal
    assert fed == ITERATIONS and replies > fed // 2 and bad == 0, run.stdout
    assert kinds >= 45, run.stdout


def _counts(stdout: str) -> tuple[int, int, int, int]:
    """The driver's "fuzz: N messages fed, R replies, B bad replies, K kinds of reply" line."""
    words = stdout.split()
    return int(words[1]), int(words[4]), int(words[6]), int(words[9])
