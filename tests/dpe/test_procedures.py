"""memhw's procedures on the original board: they adapt to what it lacks."""

from __future__ import annotations

import numpy as np

import memhw
from memhw.calibration import calibration_path, save_calibration, sweeps
from memhw.dpe.offsets import calibrate_offsets
from memhw.apps import lstm as experiments

from .conftest import bridged


def test_host_loop_programming_reaches_tolerance(paper) -> None:
    board, emu = paper
    board.calibration = calibrate_offsets(board)  # what this board can calibrate
    mask = np.zeros(board.shape, bool)
    mask[64:66] = True  # one half: every verify read is one command 10 per sample
    targets = np.random.default_rng(0).uniform(20e-6, 200e-6, board.shape)
    r = memhw.program(board, targets, tolerance=2e-6, mask=mask, average=8)
    assert not r.on_board
    assert r.summary()["converged_of_responsive"] >= 0.95, str(r)
    g = board.read_conductance(average=16, rows=slice(64, 66))
    assert np.mean(np.abs(g - targets[64:66])[r.converged[64:66]] <= 3e-6) >= 0.95
    assert emu.hardware.counters.pulses[~mask].sum() == 0


def test_offset_calibration_is_what_the_board_can_measure(tmp_path, monkeypatch) -> None:
    with bridged("paper", 2, query="serial=DPE-LAB-1") as (board, emu):
        true = emu.chip.g_eff()
        before = np.median(np.abs(board.read_conductance(average=4) - true))
        cal = calibrate_offsets(board)
        assert cal.problems() == [] and "no reference resistors" in cal.meta["method"]
        assert np.allclose(cal.tia_gain, 1.0)  # gains cannot be measured without known currents
        assert np.abs(cal.tia_offset - emu.hardware.periphery.tia_offset).max() < 2e-4  # volts at the ADC
        path = save_calibration(cal, calibration_path(cal.serial, tmp_path))
    monkeypatch.setenv("MEMHW_CALIBRATION_DIR", str(tmp_path))
    with bridged("paper", 2, query="serial=DPE-LAB-1", calibration="auto") as (board, emu):  # found by serial
        assert board.calibration is not None and board.calibration.source == str(path)
        after = np.median(np.abs(board.read_conductance(average=4) - emu.chip.g_eff()))
    assert after < before / 4


def test_characterisation_sweeps_run(paper) -> None:
    board, emu = paper
    curve = sweeps.gate_sweep(board, gates=np.arange(0.7, 1.61, 0.3), rows=slice(100, 116))
    slope, _ = curve.fit()
    assert 80e-6 < slope < 115e-6  # DOMAIN.md: ~98 uS/V
    assert np.all(np.diff(curve.median) > 0)
    # I-V: DC levels held by the bridge, applied by command 20 at each point
    iv = sweeps.iv_sweep(board, devices=[(100, 0), (101, 1)], n=5, average=2)
    g = emu.chip.g_eff()[[100, 101], [0, 1]]
    assert np.allclose(iv.conductance, g, rtol=0.1)


def test_airline_lstm_inference_runs() -> None:
    with bridged("ideal", 1) as (board, _):
        m = experiments.airline(board, "exsitu", epochs=30, progress=False)
    assert m["board"].startswith("dpe://")
    assert abs(m["crossbar_rmse"] - m["software_rmse"]) < 0.02 and m["weight_error_rms"] < 0.05
