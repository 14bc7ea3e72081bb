"""Hypothesis fuzzing of the file loaders: calibration files and session files.

Random bytes, truncated and bit-flipped copies of valid files never raise anything
but the documented errors (``CalibrationError``, ``SessionFileError``). The example
budget is fixed for CI (``MEMHW_FUZZ_EXAMPLES``, default 25 per test); run
``python scripts/fuzz.py`` for a long campaign. (The frame and message decoders
are fuzzed in ``tests/protocol``.)
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memhw
from memhw.calibration import calibrate_board, load_calibration, save_calibration
from memhw.session import Session, SessionFileError, load

EXAMPLES = int(os.environ.get("MEMHW_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=
                os.environ.get("MEMHW_FUZZ_RANDOM") is None)
_DIR = Path(tempfile.mkdtemp(prefix="memhw-fuzz-"))


@functools.lru_cache(maxsize=None)
def _valid_calibration() -> bytes:
    with memhw.connect("mock://?preset=paper&seed=1&rows=8", calibration=None, limits=None) as b:
        path = save_calibration(calibrate_board(b), _DIR / "valid-cal.h5", force=True)
    return path.read_bytes()


@functools.lru_cache(maxsize=None)
def _valid_session() -> bytes:
    path = _DIR / "valid-session.h5"
    with Session(path) as s, memhw.connect("mock://?preset=ideal&seed=1&rows=4", calibration=None,
                                           limits=None) as b:
        s.attach(b)
        with s.run("program", tolerance=2e-6) as run:
            run.write("targets", np.full(b.shape, 5e-5), unit="S")
            for _ in range(3):
                run.append("round_g", b.read_conductance(), unit="S")
                run.flush()
        b.pulse_set(np.eye(4, 64, dtype=bool))
    return path.read_bytes()


def _mutations(valid):
    """Random bytes, or a valid file truncated and/or with bits flipped."""
    flips = st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 7)), min_size=1, max_size=8)
    return st.one_of(
        st.binary(max_size=4096).map(lambda b: ("random", b)),
        st.integers(0, 10**9).map(lambda n: ("truncated", n)),
        flips.map(lambda f: ("flipped", f)),
    )


def _apply(valid: bytes, mutation) -> bytes:
    kind, arg = mutation
    if kind == "random":
        return arg
    if kind == "truncated":
        return valid[: arg % len(valid)]
    data = bytearray(valid)
    for pos, bit in arg:
        data[pos % len(data)] ^= 1 << bit
    return bytes(data)


def _write(data: bytes) -> Path:
    fd, name = tempfile.mkstemp(suffix=".h5", dir=_DIR)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(name)


@FUZZ
@given(mutation=_mutations(None))
def test_calibration_loader_raises_only_calibration_error(mutation) -> None:
    path = _write(_apply(_valid_calibration(), mutation))
    try:
        cal = load_calibration(path)
    except memhw.CalibrationError:
        return
    finally:
        path.unlink()
    # survived the damage (a flip in unused bytes): then it is intact
    assert cal.rows == 8 and cal.cols == 64


@FUZZ
@given(mutation=_mutations(None))
def test_session_loader_raises_only_session_file_error(mutation) -> None:
    path = _write(_apply(_valid_session(), mutation))
    try:
        s = load(path)
    except SessionFileError:
        path.unlink()
        return
    try:
        for run in s.runs():
            for name in run.names():
                try:
                    run.read(name)
                except (SessionFileError, KeyError):
                    pass
        try:
            s.log.records()
        except SessionFileError:
            pass
    finally:
        s.close()
        path.unlink()
