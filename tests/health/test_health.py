"""Device health: probe, evidence from programming runs, the per-serial store and the
programming hook."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

import memhw
from memhw.algorithms.tuning import Reason
from memhw.health import DeviceState, HealthMap, health_path, load_health, observe_result, save_health
from memhw.programming import probe


@pytest.fixture(autouse=True)
def health_dir(tmp_path, monkeypatch):
    path = tmp_path / "health"
    monkeypatch.setenv("MEMHW_HEALTH_DIR", str(path))
    return path


def test_probe_finds_the_stuck_devices_and_bad_lines_of_a_harsh_chip() -> None:
    with memhw.connect("mock://?preset=harsh&seed=2") as board:
        chip = board.link.transport.peer.chip
        health = probe(board)
        truth = chip.stuck.copy()
    assert health.known.all()
    assert (health.stuck == truth).mean() > 0.998  # ~11 % stuck devices, a bad row and a bad column
    assert 37 in np.flatnonzero(health.bad_rows()) and 21 in np.flatnonzero(health.bad_cols())
    high = health.state == DeviceState.STUCK_HIGH
    assert (health.g_stuck[high] >= 30e-6).all() and (health.g_stuck[health.state == DeviceState.STUCK_LOW] < 30e-6).all()
    assert 0 < (health.state == DeviceState.NOISY).sum() < 0.1 * health.state.size


def test_probe_of_an_ideal_chip_finds_nothing_wrong() -> None:
    with memhw.connect("mock://?preset=ideal&seed=1") as board:
        mask = np.zeros(board.shape, bool)
        mask[:10] = True
        health = probe(board, mask)
    assert (health.state[:10] == DeviceState.RESPONSIVE).all()
    assert (health.state[10:] == DeviceState.UNKNOWN).all()


def _result(shape, reasons, achieved) -> SimpleNamespace:
    return SimpleNamespace(mask=reasons != Reason.NOT_SELECTED, reasons=reasons, achieved=achieved)


def test_programming_results_classify_and_limits_widen_with_success() -> None:
    shape = (2, 3)
    reasons = np.array([[Reason.CONVERGED, Reason.STUCK, Reason.TOO_HIGH],
                        [Reason.TOO_LOW, Reason.PULSE_CAP, Reason.NOT_SELECTED]], np.int8)
    achieved = np.array([[100e-6, 340e-6, 250e-6], [30e-6, 50e-6, np.nan]])
    h = observe_result(HealthMap.empty("X", shape), _result(shape, reasons, achieved))
    assert h.state[0, 0] == DeviceState.RESPONSIVE
    assert h.state[0, 1] == DeviceState.STUCK_HIGH and h.g_stuck[0, 1] == 340e-6
    assert h.state[0, 2] == DeviceState.LIMITED and h.g_hi[0, 2] == 250e-6
    assert h.state[1, 0] == DeviceState.LIMITED and h.g_lo[1, 0] == 30e-6
    assert h.state[1, 1] == DeviceState.UNKNOWN and h.state[1, 2] == DeviceState.UNKNOWN  # no verdict
    lo, hi = h.limits(5e-6, 340e-6)
    assert lo[0, 1] == hi[0, 1] == 340e-6 and hi[0, 2] == 250e-6 and lo[1, 0] == 30e-6 and hi[1, 1] == 340e-6
    # later: the limited device reaches 270 uS, the stuck one responds after all
    reasons2 = np.full(shape, Reason.NOT_SELECTED, np.int8)
    reasons2[0, 2] = reasons2[0, 1] = Reason.CONVERGED
    observe_result(h, _result(shape, reasons2, np.full(shape, 270e-6)))
    assert h.g_hi[0, 2] == 270e-6 and h.state[0, 1] == DeviceState.RESPONSIVE and np.isnan(h.g_stuck[0, 1])
    assert h.seen[0, 2] == 2 and h.seen[1, 1] == 0


def test_store_round_trip_and_atomic_write(health_dir, monkeypatch) -> None:
    h = HealthMap.empty("MEMHW-EMU-S9", (4, 5))
    h.observe(stuck=np.eye(4, 5, dtype=bool), g_stuck=np.full((4, 5), 3e-6), responsive=~np.eye(4, 5, dtype=bool))
    path = save_health(h)
    assert path == health_path("MEMHW-EMU-S9") and path.parent == health_dir
    back = load_health("MEMHW-EMU-S9", (4, 5))
    np.testing.assert_array_equal(back.state, h.state)
    np.testing.assert_array_equal(back.g_stuck, h.g_stuck)
    assert back.updated == h.updated
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        save_health(HealthMap.empty("MEMHW-EMU-S9", (4, 5)))
    assert path.read_bytes() == before  # the old map is intact, no temporary file is left
    assert [p.name for p in health_dir.iterdir()] == [path.name]
    with pytest.raises(memhw.MemhwError, match="is \\(4, 5\\)"):
        load_health("MEMHW-EMU-S9", (8, 8))
    path.write_bytes(b"not a map")
    with pytest.raises(memhw.MemhwError, match="not a readable health map"):
        load_health("MEMHW-EMU-S9")
    assert load_health("OTHER") is None


def test_every_programming_run_updates_the_stored_map(health_dir) -> None:
    with memhw.connect("mock://?preset=paper&seed=5") as board:
        mask = np.zeros(board.shape, bool)
        mask[:4] = True
        result = memhw.program(board, np.full(board.shape, 80e-6), mask=mask)
        serial = board.info.serial
    h = load_health(serial, board.shape)
    assert h is not None and (h.known == (mask & (result.reasons != Reason.PULSE_CAP)
                                          & (result.reasons != Reason.ROUND_CAP))).all()
    assert (h.state[result.converged] == DeviceState.RESPONSIVE).all()


def test_a_failing_health_update_never_fails_programming(monkeypatch, caplog) -> None:
    import memhw.health

    def broken(board, result):
        raise RuntimeError("store unavailable")

    monkeypatch.setattr(memhw.health, "record", broken)
    with memhw.connect("mock://?preset=ideal&seed=2") as board, caplog.at_level(logging.WARNING, "memhw.health"):
        mask = np.zeros(board.shape, bool)
        mask[0, :4] = True
        result = memhw.program(board, np.full(board.shape, 50e-6), mask=mask)
    assert result.converged[0, :4].all()
    assert "could not update the health map" in caplog.text


def test_a_gate_sweep_finds_stuck_devices() -> None:
    from memhw.calibration.sweeps import gate_sweep
    from memhw.health import observe_sweep

    with memhw.connect("mock://?preset=ideal&seed=4&stuck_fraction=0.05") as board:
        curve = gate_sweep(board, rows=slice(0, 16))
        truth = board.link.transport.peer.chip.stuck.copy()
        health = observe_sweep(HealthMap.empty(board.info.serial, board.shape), curve)
    swept = health.known
    assert swept.sum() > 50 and not swept[16:].any()
    assert (health.stuck[swept] == truth[swept]).all() and health.stuck.any()
