"""The board-level suite: same tests in-process, over pyserial (pty) and pyvisa (TCP).

Assertions hold for any working board (tolerances cover the `paper` preset's
noise, IR drop and periphery errors); checks of the emulator's internal
counters use the ``emulator`` fixture and skip on real hardware.
"""

from __future__ import annotations

import numpy as np
import pytest

import memhw


def test_info_describes_the_board(board: memhw.Board) -> None:
    info = board.info
    assert info.protocol[0] == memhw.board.fp.MAJOR
    assert info.rows > 0 and info.cols > 0 and board.shape == (info.rows, info.cols)
    assert len(info.tia_gains) >= 1 and all(g > 0 for g in info.tia_gains)
    lim = info.limits
    assert 0 < lim.v_read and 0 < lim.v_set and 0 < lim.v_reset and 0 < lim.v_gate
    assert 0 < lim.width_min < lim.width_max
    assert info.max_frame >= 240 and info.serial


def test_conductance_map_is_physical(board: memhw.Board) -> None:
    g = board.read_conductance()
    assert g.shape == board.shape
    assert np.isfinite(g).all()
    assert np.median(g) > 0 and g.max() < 5e-3


def test_set_raises_and_reset_lowers_selected_devices(board: memhw.Board) -> None:
    rows, cols = board.shape
    mask = np.zeros(board.shape, bool)
    mask[rows // 4 : rows // 4 + 4, :: max(1, cols // 16)] = True
    before = board.read_conductance(average=4)
    applied = board.pulse_set(mask, v=2.5, gate=1.4, width=1e-6)
    assert applied == mask.sum()
    after_set = board.read_conductance(average=4)
    assert np.median(after_set[mask] - before[mask]) > 50e-6
    # devices not selected are not programmed (only read noise and drift)
    assert np.median(np.abs(after_set[~mask] - before[~mask])) < 2e-6
    board.pulse_reset(mask, v=1.8, gate=5.0, width=2e-6)
    after_reset = board.read_conductance(average=4)
    assert np.median(after_set[mask] - after_reset[mask]) > 50e-6


def test_set_conductance_follows_the_gate(board: memhw.Board) -> None:
    rows, _ = board.shape
    board.pulse_reset(np.ones(board.shape, bool), v=1.8, gate=5.0, width=4e-6)
    gates = np.linspace(0.8, 1.5, 4)
    means = []
    for k, vg in enumerate(gates):
        mask = np.zeros(board.shape, bool)
        mask[8 * k : 8 * k + 8] = True
        board.pulse_set(mask, v=2.5, gate=vg, width=1e-6)
        means.append(board.read_conductance(average=2)[mask].mean())
    assert np.all(np.diff(means) > 0), means


def test_vmm_matches_conductance_map(board: memhw.Board) -> None:
    g = _program_random(board)
    rng = np.random.default_rng(1)
    v = rng.uniform(-0.2, 0.2, (50, board.shape[0]))
    y = board.vmm(v)
    assert y.shape == (50, board.shape[1])
    expected = v @ g
    assert _rel(y, expected) < 0.05
    single = board.vmm(v[0])
    assert single.shape == (board.shape[1],)
    assert _rel(single, expected[0]) < 0.05


def _program_random(board: memhw.Board, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = rng.random(board.shape) < 0.3
    board.pulse_set(mask, v=2.5, gate=rng.uniform(0.8, 1.5, board.shape), width=1e-6)
    return board.read_conductance(average=8)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_dc_levels_and_parallel_read(board: memhw.Board) -> None:
    g = _program_random(board)
    v_rows = np.zeros(board.shape[0])
    v_rows[: board.shape[0] // 2] = 0.1
    board.apply(rows=v_rows, cols=0.0, gates=5.0)
    i = board.read_currents(average=4)
    assert i.shape == (board.shape[1],)
    assert _rel(i, v_rows @ g) < 0.05
    board.ground_all()
    assert np.allclose(board.read_currents(), 0.0, atol=5e-7)


def test_masked_levels_change_only_masked_lines(board: memhw.Board) -> None:
    rows = board.shape[0]
    g = _program_random(board)
    board.ground_all()
    mask = np.zeros(rows, bool)
    mask[3] = True
    board.apply(rows=0.15, row_mask=mask, gates=5.0)
    assert _rel(board.read_currents(average=4), 0.15 * g[3]) < 0.05


def test_limits_refused_before_anything_is_sent(board: memhw.Board) -> None:
    lim = board.info.limits
    full = np.ones(board.shape, bool)
    sent = board.link.stats.bytes_out
    bad_calls = [
        lambda: board.pulse_set(full, v=lim.v_set + 0.1),
        lambda: board.pulse_set(full, v=2.5, gate=lim.v_gate + 0.1),
        lambda: board.pulse_set(full, v=2.5, width=lim.width_max * 2),
        lambda: board.pulse_set(full, v=2.5, width=lim.width_min / 2),
        lambda: board.pulse_reset(full, v=lim.v_reset + 0.1),
        lambda: board.pulse_set(full, v=np.nan),
        lambda: board.pulse_set(full[:-1]),
        lambda: board.pulse_set(full.astype(int)),
        lambda: board.apply(rows=lim.v_read * 1.5),
        lambda: board.apply(gates=-0.5),
        lambda: board.apply(rows=np.zeros(3)),
        lambda: board.vmm(np.zeros(board.shape[0] + 1)),
        lambda: board.vmm(np.full(board.shape[0], lim.v_read * 2)),
        lambda: board.vmm(np.full(board.shape[0], np.inf)),
        lambda: board.read_conductance(v_read=-0.2),
        lambda: board.read_conductance(average=0),
        lambda: board.read_currents(gain=99),
    ]
    for call in bad_calls:
        with pytest.raises(memhw.LimitError):
            call()
    assert board.link.stats.bytes_out == sent


def test_retried_request_is_never_executed_twice(board: memhw.Board, emulator) -> None:
    """Re-sending the exact frames of a pulse batch (as a retry does) is answered from the cache."""
    mask = np.zeros(board.shape, bool)
    mask[5, :7] = True
    before = emulator.hardware.counters.pulses.copy()
    board.pulse_set(mask, v=2.5, gate=1.0, width=1e-6)
    seq = board.link.last_seq
    wire = board.link.last_wire
    board.link.transport.write(wire)  # a duplicate, as after a lost reply
    board.status()                    # round trip: the duplicate's answer is dropped as stale
    assert (emulator.hardware.counters.pulses - before)[mask].tolist() == [1] * 7
    assert (emulator.hardware.counters.pulses - before)[~mask].sum() == 0
    assert emulator.counters.cache_hits >= 1
    assert board.link.stats.stale_dropped >= 1
    assert board.link.last_seq != seq


def test_close_grounds_every_line(board_address) -> None:
    b = memhw.connect(board_address.address, timeout=5.0)
    emulator = board_address.emulator or getattr(b.link.transport, "peer", None)
    b.apply(rows=0.1, cols=0.05, gates=5.0)
    if emulator is not None:
        assert any(levels.any() for levels in emulator.levels.values())
    b.close()
    b.close()  # idempotent
    if emulator is not None:
        assert not any(levels.any() for levels in emulator.levels.values())
    with pytest.raises(memhw.Disconnected):
        b.status()
