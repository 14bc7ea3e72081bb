"""Recovery: reconnect after a lost link or a reboot, resume a programming run."""

from __future__ import annotations

import numpy as np
import pytest

import memhw
from memhw.mock.emulator import BoardEmulator
from memhw.mock.params import make_params
from memhw.peer import PeerServer
from memhw.session import load

from .helpers import connect, emulator, targets

CONVERGED = 1


def test_cable_pulled_mid_program_is_resumed_and_every_pulse_is_applied_once(tmp_path) -> None:
    """The link dies in the middle of programming: the host reopens it, resumes its session
    (the board kept it, with its reply cache) and re-sends the request in flight, which the
    board answers from the cache if it ran it or runs now if it never arrived."""
    board = connect("mock://?preset=paper&seed=6&rows=32&faults=drop:0&fault_seed=1")
    emu = emulator(board)
    t = targets(board.shape, 6)
    rounds = []

    def pull_the_plug(report: dict) -> None:
        rounds.append(report)
        if len(rounds) in (2, 4, 6):
            board.link.transport.faults.down = True  # the cable goes (and comes back)

    path = tmp_path / "run.h5"
    with memhw.Session(path) as session:
        session.attach(board)
        result = memhw.program(board, t, tolerance=3e-6, progress=pull_the_plug, session=session)
    assert board.link.stats.resumes >= 3 and emu.counters.resumes >= 3 and emu.counters.sessions == 1
    # every pulse the host counted was applied, once
    assert np.array_equal(emu.hardware.counters.pulses, result.set_pulses + result.reset_pulses)
    assert result.converged.mean() >= 0.95
    board.close()
    s = load(path)
    try:
        assert [r.status for r in s.runs("program")] == ["complete"]
        assert "resume" in s.log.ops()
    finally:
        s.close()


def test_lost_session_mid_program_then_reconnect_and_resume_remaining(tmp_path) -> None:
    """The board reboots mid-run (session and reply cache gone): the run fails, the host
    reconnects (a new session) and programs only what the file says is not done."""
    board = connect("mock://?preset=paper&seed=6&rows=32")
    emu = emulator(board)
    t = targets(board.shape, 6)
    rounds = []

    def reboot_the_board(report: dict) -> None:
        rounds.append(report)
        if len(rounds) == 4:
            emu.reboot()

    path = tmp_path / "run.h5"
    with memhw.Session(path) as session:
        session.attach(board)
        with pytest.raises(memhw.SessionLost):
            memhw.program(board, t, tolerance=3e-6, progress=reboot_the_board, session=session)
        run = session.last_run("program")
        assert run.status == "error"
        reasons = run.read("round_reasons")[-1]
        done = reasons == CONVERGED
        assert 0 < done.sum() < done.size
        board.reconnect()
        assert board.info.boot_id == emu.boot_id and emu.counters.sessions == 2
        before = emu.hardware.counters.pulses.copy()
        result = memhw.program(board, t, tolerance=3e-6, mask=~done, session=session)
    # devices converged before the reboot were not touched again
    assert np.array_equal(emu.hardware.counters.pulses[done], before[done])
    assert np.array_equal(emu.hardware.counters.pulses - before, result.set_pulses + result.reset_pulses)
    g = board.read_conductance(average=8)
    within = np.abs(g - t) <= 3e-6 * 1.5
    assert within.mean() >= 0.95
    board.close()
    s = load(path)
    try:
        assert [r.status for r in s.runs("program")] == ["error", "complete"]
        assert "reconnect" in s.log.ops()
    finally:
        s.close()


def test_reconnect_after_reboot_restores_calibration_and_limits() -> None:
    from memhw.calibration import calibrate_board

    board = connect("mock://?preset=paper&seed=8&rows=8")
    cal = calibrate_board(board)
    board.calibration = cal
    board.set_limits({"v_set": 3.0})
    emu = emulator(board)
    boot0 = emu.boot_id
    emu.reboot()
    with pytest.raises(memhw.SessionLost):
        board.status()
    board.reconnect()
    assert board.calibration is cal and board.limits.v_set == 3.0
    assert emu.hardware.limits.set_max == round(3.0 / board.info.dac_line_lsb)
    assert board.info.boot_id == emu.boot_id != boot0
    board.close()


def test_reconnect_refuses_another_board() -> None:
    board = connect("mock://?preset=ideal&seed=1&rows=8")
    emu = emulator(board)
    emu.serial = "SOMEONE-ELSE"
    with pytest.raises(memhw.TransportError, match="another board"):
        board.reconnect()


def test_served_board_side_disconnects_are_recovered_by_resuming_the_session() -> None:
    """Board-side fault injection over real TCP: the emulator drops the connection at
    random; the host reconnects, resumes its session and carries on (a timeout from the
    dropped frames is the caller's to retry)."""
    emu = BoardEmulator(make_params("ideal", rows=8), seed=2, faults="disconnect:0.03,drop:0.02", fault_seed=4)
    with PeerServer.tcp(emu) as server:
        board = connect(server.address, timeout=0.2, retries=3)
        done = lost = 0
        while done < 30:
            try:
                board.read_conductance(rows=slice(0, 2))
                done += 1
            except (memhw.Disconnected, memhw.LinkTimeout):
                lost += 1
                for _ in range(5):
                    try:
                        board.reconnect()
                        break
                    except (memhw.Disconnected, memhw.LinkTimeout):
                        continue
        assert emu.faults.counts.disconnects > 0
        assert board.link.stats.resumes + lost > 0 and emu.counters.resumes > 0
        assert emu.counters.sessions == 1  # one session all along, resumed each time
        board.close()
