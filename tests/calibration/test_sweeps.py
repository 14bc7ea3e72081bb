"""Chip characterisation sweeps on the emulator: sane curves, session records, plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import memhw
from memhw.calibration import sweeps
from memhw.errors import LimitError
from memhw.session import load, Session


@pytest.fixture(scope="module")
def board():
    with memhw.connect("mock://?seed=0") as b:
        yield b


def test_gate_sweep_slope_and_prior_shape(board, tmp_path: Path) -> None:
    with Session(tmp_path / "s.h5") as session:
        curve = sweeps.gate_sweep(board, gates=np.arange(0.7, 1.61, 0.15), rows=slice(96, 128), session=session)
    slope, intercept = curve.fit()
    assert 88e-6 < slope < 108e-6  # DOMAIN.md: ~98 uS/V in 0.7-1.6 V
    assert 90e-6 < intercept < 150e-6
    assert curve.gates.shape == (7,) and curve.conductance.shape == (7, board.shape[1])
    assert np.all(np.diff(curve.median) > 0)
    run = load(tmp_path / "s.h5").last_run("sweep")
    assert run.attrs["sweep"] == "gate" and run.read("conductance").shape == (7, board.shape[1])
    assert curve.plot(tmp_path / "gate.png").stat().st_size > 1000
    # usable as a programming prior: .gates (n,) and .conductance (n, cols)
    from memhw.programming.program import _prior_curve

    g, c = _prior_curve(curve)
    assert g.shape == (7,) and c.shape == (7, board.shape[1])  # kept per column
    assert np.all(np.diff(c, axis=0) >= 0)


def test_reset_sweep_is_monotone(board, tmp_path: Path) -> None:
    curve = sweeps.reset_sweep(board, amplitudes=[0.3, 0.8, 1.2, 1.7], rows=slice(96, 128))
    r = curve.removed
    assert np.all(np.diff(r) > 0) and r[0] < 0.1 and r[-1] > 0.9
    assert curve.conductance.shape == (4, board.shape[1])
    curve.plot(tmp_path / "reset.png")


def test_iv_is_linear_and_refuses_unsafe_voltages(board, tmp_path: Path) -> None:
    g_true = np.asarray(board.link.transport.peer.chip.G)
    res = sweeps.iv_sweep(board, devices=[(0, 0), (0, 5), (10, 3)], n=9, average=8)
    assert res.current.shape == (3, 9)
    expect = g_true[[0, 0, 10], [0, 5, 3]]
    assert np.allclose(res.conductance, expect, rtol=0.05)
    assert np.allclose(res.current[:, 4], 0, atol=5e-8)  # 0 V in the middle
    res.plot(tmp_path / "iv.png")
    with pytest.raises(LimitError):
        sweeps.iv_sweep(board, v_max=0.8)


def test_read_noise_matches_the_papers_one_percent(board, tmp_path: Path) -> None:
    res = sweeps.read_noise(board, 12, rows=slice(0, 8))
    s = res.summary()
    assert 0.006 < s["median_relative_sigma"] < 0.015
    res.plot(tmp_path / "noise.png")


def test_retention_drifts_down_over_virtual_time(board, tmp_path: Path) -> None:
    t0 = board.link.transport.peer.chip.time
    res = sweeps.retention(board, times=(0, 10, 1000), rows=slice(96, 128))
    assert board.link.transport.peer.chip.time - t0 >= 1000
    drift = np.nanmean(res.drift.reshape(3, -1), axis=1)
    assert drift[0] == 0 and drift[2] < drift[1] < 0.05e-6 and drift[2] > -3e-6
    res.plot(tmp_path / "retention.png")
