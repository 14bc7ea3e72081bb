"""On-board PROGRAM: the C planner (single precision) against the Python planner (double).

Same seed, same chip, same targets, the whole loop on the board. The C port follows the
Python planner line by line in float32; the stated tolerance is statistical, not bit
identity: per device the same decisions (SET and RESET pulse counts, final reason) on
at least 99 % of devices, the converged fraction within 1 point and the total pulse count
within 2 %. (Measured on these seeds: identical decisions on every device; the adaptive
planner's gate voltages can round to another DAC code once in a while, which moves the
programmed conductances by a fraction of the write noise.) The published baseline makes
no floating-point decision that float32 could round differently: its decisions, pulses
and the chip afterwards are identical; only the reported ``achieved`` conductance, the
board's ADC reading converted to 10 nS codes, may round to the next code (float32 vs
float64 conversion).
"""

from __future__ import annotations

import numpy as np
import pytest

import memhw
from memhw.programming import program


def _run(firmware: str, seed: int, algorithm: str, calibrated: bool = False):
    with memhw.connect(f"mock://?preset=paper&seed={seed}&rows=16&firmware={firmware}", calibration=None,
                       limits=None, timeout=30.0) as board:
        if calibrated:  # sent to the board (SET_CALIBRATION): verify reads at one gain, levels per channel
            from memhw.calibration import calibrate_board

            board.calibration = calibrate_board(board, average=4)
        targets = np.random.default_rng(seed).uniform(20e-6, 150e-6, board.shape)
        result = program(board, targets, tolerance=2e-6, on_board=True, algorithm=algorithm)
        return result, board.link.transport.peer.chip.G.copy()


@pytest.mark.parametrize("seed, calibrated", [(1, False), (2, False), (3, True)])
def test_adaptive_planner_makes_the_same_decisions(seed: int, calibrated: bool) -> None:
    (py, _), (c, _) = _run("python", seed, "adaptive", calibrated), _run("c", seed, "adaptive", calibrated)
    same = (py.set_pulses == c.set_pulses) & (py.reset_pulses == c.reset_pulses) & (py.reasons == c.reasons)
    assert same[py.mask].mean() >= 0.99
    assert abs(py.converged[py.mask].mean() - c.converged[c.mask].mean()) <= 0.01
    assert abs(int(py.pulses.sum()) - int(c.pulses.sum())) <= 0.02 * py.pulses.sum()
    assert c.summary()["converged_of_responsive"] > 0.97
    e = (c.achieved - c.targets)[c.converged]
    assert np.abs(e).max() <= 2e-6 + 1e-8  # targets and achieved values travel as 10 nS codes


def test_baseline_planner_makes_identical_decisions() -> None:
    (py, g_py), (c, g_c) = _run("python", 4, "baseline"), _run("c", 4, "baseline")
    for name in ("set_pulses", "reset_pulses", "reasons"):
        np.testing.assert_array_equal(getattr(py, name), getattr(c, name))
    np.testing.assert_array_equal(g_py, g_c)  # the same pulses at the same codes: the same chip
    step = np.abs(py.achieved - c.achieved)[py.mask]
    assert step.max() <= 1.0001e-8 and (step > 0).mean() < 0.01
    assert py.rounds == c.rounds
