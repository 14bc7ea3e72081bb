"""HDF5 session files: recording, runs, reading, errors and crash safety."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import firmware_protocol as fp
import memhw
from memhw.errors import MemhwError
from memhw.session import Session, SessionFileError, load

ADDRESS = "mock://?preset=ideal&seed=1"


@pytest.fixture(scope="module")
def board():
    with memhw.connect(ADDRESS) as b:
        yield b


def _some_ops(board) -> np.ndarray:
    rows, cols = board.shape
    mask = np.zeros(board.shape, bool)
    mask[:2, :3] = True
    board.apply(rows=0.1, cols=0.0, gates=np.full(cols, 1.0))
    board.read_currents()
    board.pulse_set(mask, v=2.5, gate=1.0, width=1e-6)
    board.pulse_reset(mask, v=np.full(board.shape, 1.5), gate=5.0, width=1e-6)
    board.vmm(np.full((3, rows), 0.1))
    board.float_all()
    board.ground_all()
    return board.read_conductance()


def test_records_ops_and_runs(tmp_path, board):
    path = tmp_path / "s.h5"
    with Session(path) as s:
        assert s.attrs["complete"] is False or s.attrs["complete"] == 0
        s.attach(board)
        g = _some_ops(board)
        with s.run("program", tolerance=2e-6, note={"a": [1, 2]}) as run:
            for k in range(3):
                run.append("g", g * k, unit="S")
                run.append("pulses", k)
                run.flush()
            run.write("targets", g, unit="S")
            run.attrs["rounds"] = 3
        s.detach()
        board.read_conductance()  # not recorded
    with h5py.File(path, "r") as f:  # plain h5py opens a cleanly closed file
        assert bool(f.attrs["complete"]) is True
    with load(path) as s:
        a = s.attrs
        assert a["software_version"] == memhw.__version__
        assert a["protocol_version"] == f"{fp.MAJOR}.{fp.MINOR}"
        assert a["board_serial"] == board.info.serial and a["board_address"] == ADDRESS
        assert a["board_firmware"] == board.info.firmware and s.complete
        run = s.last_run("program")
        assert run.status == "complete" and run.attrs["rounds"] == 3 and run.attrs["note"] == {"a": [1, 2]}
        np.testing.assert_array_equal(run.read("g"), np.stack([g * k for k in range(3)]))
        np.testing.assert_array_equal(run.read("pulses"), [0, 1, 2])
        np.testing.assert_array_equal(run.read("targets"), g)
        assert run.dataset_attrs("g")["unit"] == "S"
        log = s.log
        ops = [r.op for r in log.records()]
        assert ops == ["apply", "read_currents", "sent", "pulse_set", "sent", "pulse_reset", "vmm", "float_all",
                       "ground_all", "read_conductance"]
        sent = log["sent"]  # written ahead: what each batch selected, before it was sent
        assert sent.column("op") == ["pulse_set", "pulse_reset"]
        assert sent.column("intent") == log["pulse_set"].column("intent") + log["pulse_reset"].column("intent")
        rc = log["read_conductance"]
        np.testing.assert_array_equal(rc.column("result")[0], g)
        assert rc.column("v_read") == [0.2] and rc.column("gain") == ["auto"]
        ps = log["pulse_set"].record(0)
        assert ps["v"] == 2.5 and ps["mask"].dtype == bool and ps["mask"].sum() == 6 and ps["result"] == 6
        assert log["pulse_reset"].record(0)["v"].shape == board.shape
        assert log["vmm"].record(0)["v"].shape == (3, board.shape[0])
        assert log["vmm"].record(0)["result"].shape == (3, board.shape[1])
        assert np.all(np.diff([r.t for r in log.records()]) >= 0)


def test_field_changing_kind_is_kept(tmp_path, board):
    """A field that is sometimes scalar, sometimes array, keeps each record's value."""
    mask = np.zeros(board.shape, bool)
    mask[0, 0] = True
    vs = [2.5, np.full(board.shape, 2.0), 2.2]
    with Session(tmp_path / "s.h5") as s:
        s.attach(board)
        for v in vs:
            board.pulse_set(mask, v=v, gate=1.0, width=1e-6)
        col = s.log["pulse_set"].column("v")
    assert col[0] == 2.5 and col[2] == 2.2 and np.array_equal(col[1], vs[1])


def test_append_mode_continues(tmp_path, board):
    path = tmp_path / "s.h5"
    with Session(path) as s:
        s.attach(board)
        board.read_currents()
        with s.run("program") as run:
            run.append("x", [1.0, 2.0])
            run.flush()
    with Session(path, mode="a") as s:
        assert s.attrs["complete"] in (False, 0)
        s.attach(board)
        board.read_currents()
        run = s.last_run("program")
        run.append("x", [3.0, 4.0])  # an earlier run can be continued
        run.flush()
        s.run("sweep", v_max=1.0).close()
    with load(path) as s:
        assert [r.name for r in s.runs()] == ["0000_program", "0001_sweep"]
        np.testing.assert_array_equal(s.last_run("program").read("x"), [[1, 2], [3, 4]])
        assert list(s.log["read_currents"].seq) == [0, 1] and s.complete


@pytest.mark.parametrize("exc, status", [(RuntimeError("boom"), "error"), (KeyboardInterrupt(), "interrupted")])
def test_exception_closes_incomplete(tmp_path, board, exc, status):
    path = tmp_path / "s.h5"
    with pytest.raises(type(exc)):
        with Session(path) as s:
            s.attach(board)
            run = s.run("program")
            run.append("x", 1.0)
            run.flush()
            run.append("x", 2.0)  # not flushed by the run, but the clean close keeps it
            raise exc
    with load(path) as s:
        assert not s.complete and s.attrs["status"] == status and type(exc).__name__ in s.attrs["error"]
        assert s.last_run("program").status == status
        np.testing.assert_array_equal(s.last_run("program").read("x"), [1.0, 2.0])


def test_bad_files(tmp_path):
    with pytest.raises(SessionFileError, match="no such"):
        load(tmp_path / "missing.h5")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(SessionFileError):
        load(garbage)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(SessionFileError, match="not a memhw session"):
        load(plain)
    with pytest.raises(SessionFileError, match="not a memhw session"):
        Session(plain, mode="a")
    real = tmp_path / "real.h5"
    with Session(real) as s:
        with s.run("program") as run:
            for k in range(50):
                run.append("g", np.full((32, 32), k))
                run.flush()
    data = real.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SessionFileError):
        with Session.open(truncated) as s:
            s.last_run("program").read("g")
    assert issubclass(SessionFileError, MemhwError)


def test_misuse(tmp_path):
    with Session(tmp_path / "s.h5") as s:
        run = s.run("program")
        run.append("g", np.zeros((2, 2)))
        with pytest.raises(ValueError, match="shape"):
            run.append("g", np.zeros(3))
        with pytest.raises(TypeError):
            run.append("names", np.array(["a"]))
        with pytest.raises(ValueError):
            s.run("bad/kind")
        with pytest.raises(TypeError):
            run.attrs["obj"] = object()
    with load(tmp_path / "s.h5") as s:
        with pytest.raises(SessionFileError, match="read-only"):
            s.run("program")
        with pytest.raises(KeyError):
            s.last_run("program").read("nope")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.integers(0, 3), st.sampled_from([np.float64, np.int32, np.bool_])),
                     min_size=1, max_size=6))
def test_op_values_round_trip(tmp_path, rows):
    """Whatever an observer is given comes back equal (arrays of any shape, scalars, strings)."""
    path = tmp_path / "h.h5"
    rng = np.random.default_rng(0)
    sent = []
    with Session(path, flush_interval=0.0) as s:
        for n, dtype in rows:
            value = (rng.normal(size=(n, 3)) * 10).astype(dtype)
            scalar = float(n) if n % 2 else "s" * n
            s._observe("custom", {"a": value, "b": scalar}, None)
            sent.append((value, scalar))
    with load(path) as s:
        table = s.log["custom"]
        for (value, scalar), got_a, got_b in zip(sent, table.column("a"), table.column("b")):
            assert (got_a is None and value.size == 0) or np.array_equal(got_a, value)
            assert got_b == (scalar if scalar != "" else None)


# --------------------------------------------------------------- crash safety
WRITER = textwrap.dedent("""
    import sys
    from types import SimpleNamespace
    import numpy as np
    from memhw.session import Session

    class Board:  # stands in for memhw.Board: the kill test must not depend on the emulator
        address = "fake://"
        info = SimpleNamespace(serial="FAKE-1", firmware="none", rows=128, cols=64)
        def add_observer(self, fn, intent=None): self.observer = fn
        def remove_observer(self, fn): pass
        def read_currents(self):
            i = np.arange(64.0)
            self.observer("read_currents", {"gain": "auto", "average": 1}, i)
            return i

    s = Session(sys.argv[1], flush_interval=0.0)
    board = Board()
    s.attach(board)
    run = s.run("program", tolerance=2e-6)
    k = 0
    while True:
        board.read_currents()                     # the op log commits too
        run.append("g", np.full((128, 64), k, float), unit="S")
        run.append("round", k)
        run.flush()
        print(k + 1, flush=True)                  # batches flushed so far
        k += 1
""")


def kill_writer(path, min_batches: int, rng: random.Random) -> int:
    """Start the writer, SIGKILL it at a random moment after ``min_batches`` flushes; return flushes seen."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        seen = 0
        while seen < min_batches:
            line = proc.stdout.readline()
            assert line, f"writer died: rc={proc.wait(timeout=10)}"
            seen = int(line)
        # a random moment: often in the middle of a flush
        deadline_lines = rng.randint(0, 3)
        for _ in range(deadline_lines):
            seen = int(proc.stdout.readline() or seen)
        time.sleep(rng.random() * 0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def check_killed_file(path, flushed: int) -> None:
    with load(path) as s:
        assert not s.complete
        run = s.last_run("program")
        assert run.status == "running"
        rounds, g = run.read("round"), run.read("g")
        assert len(rounds) >= flushed and len(g) == len(rounds)
        np.testing.assert_array_equal(rounds, np.arange(len(rounds)))
        np.testing.assert_array_equal(g, np.broadcast_to(rounds[:, None, None], g.shape))
        assert len(s.log["read_currents"]) >= flushed


def test_sigkill_leaves_readable_file(tmp_path):
    kills = int(os.environ.get("MEMHW_SESSION_KILLS", "3"))
    rng = random.Random(int(os.environ.get("MEMHW_SESSION_SEED", "0")))
    for i in range(kills):
        path = tmp_path / f"killed{i}.h5"
        flushed = kill_writer(path, rng.randint(2, 12), rng)
        check_killed_file(path, flushed)
    # a killed file can be continued: mode "a" repairs it, the interrupted run is there to resume
    with Session(path, mode="a") as s:
        last = s.last_run("program")
        done = len(last.read("round"))
        last.close("interrupted")
        with s.run("program", resumed_from=last.name) as run:
            run.append("round", done)
            run.flush()
    with load(path) as s:
        assert s.complete and [r.status for r in s.runs()] == ["interrupted", "complete"]


#: messages whose every request is one record of the matching Board operation
ONE_TO_ONE = {"READ_MAP": "read_conductance", "READ_DAC": "read_dac", "READ_REFERENCE": "read_reference",
              "PROGRAM": "program_on_board", "WAIT": "wait", "STATUS": "status", "READ_CURRENTS": "read_currents",
              "SET_CALIBRATION": "set_calibration", "DEFINE_TILE": "define_tile", "LOAD_NETWORK": "load_network"}
#: messages a Board operation may split into several requests
SPLIT = {"SET_LEVELS": "apply", "PULSE_SET": "pulse_set", "PULSE_RESET": "pulse_reset", "VMM": "vmm",
         "GROUND_ALL": ("ground_all", "float_all"), "SET_LIMITS": "set_limits",
         "PULSE_DEVICES": ("pulse_set", "pulse_reset"), "READ_DEVICES": "read_devices", "VMM_TILE": "vmm_tile",
         "RUN_NETWORK": "run_network"}


def test_every_board_operation_of_every_procedure_is_in_the_log(tmp_path) -> None:
    """Procedures reach the board only through Board methods, so the session log holds
    every operation: calibration, a gate sweep, host and on-board programming, waits."""
    from memhw.calibration import calibrate_board, gate_sweep

    path = tmp_path / "all.h5"
    with memhw.connect("mock://?preset=paper&seed=4&rows=8", calibration=None, limits=None) as board, \
            Session(path) as s:
        s.attach(board)
        sent0 = dict(board.link.stats.per_opcode)
        calibrate_board(board, average=2, dac_points=3)
        gate_sweep(board, gates=np.linspace(0.8, 1.4, 3), rows=slice(0, 4))
        board.set_limits({"v_set": 3.0})
        memhw.program(board, np.full(board.shape, 80e-6), tolerance=4e-6, relax_delay=0.5)
        memhw.program(board, np.full(board.shape, 60e-6), tolerance=4e-6, on_board=True)
        board.status()
        sent = {k: v - sent0.get(k, 0) for k, v in board.link.stats.per_opcode.items() if v - sent0.get(k, 0)}
        log = s.log
    for message, count in sent.items():
        if message in ONE_TO_ONE:
            assert len(log[ONE_TO_ONE[message]]) == count, message
        else:
            ops = SPLIT[message] if isinstance(SPLIT[message], tuple) else (SPLIT[message],)
            assert 1 <= sum(len(log[op]) for op in ops if op in log) <= count, message
    assert {"READ_DAC", "READ_REFERENCE", "PROGRAM", "WAIT", "PULSE_DEVICES", "READ_DEVICES"} <= set(sent)
