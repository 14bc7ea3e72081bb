"""On the `ideal` preset the board returns the programmed array to ADC resolution."""

from __future__ import annotations

import numpy as np

import memhw


def _program(board: memhw.Board, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    board.pulse_set(rng.random(board.shape) < 0.5, v=2.5, gate=rng.uniform(0.7, 1.6, board.shape), width=1e-6)


def _lsb_siemens(board: memhw.Board, gain_index: int, v: float) -> float:
    return board.info.adc_lsb / board.info.tia_gains[gain_index] / v


def test_conductance_map_equals_true_conductance(ideal_board: memhw.Board) -> None:
    _program(ideal_board)
    chip = ideal_board.link.transport.peer.chip
    g = ideal_board.read_conductance(v_read=0.2)
    # auto-ranging: every device read at a gain whose LSB is <= the 10 kOhm one
    assert np.abs(g - chip.G).max() <= _lsb_siemens(ideal_board, 1, 0.2)
    assert np.abs(g - chip.G).max() > 0  # quantised, not a copy of the model


def test_vmm_equals_the_exact_matrix_product(ideal_board: memhw.Board) -> None:
    _program(ideal_board, 1)
    chip = ideal_board.link.transport.peer.chip
    rng = np.random.default_rng(2)
    v = rng.uniform(-0.2, 0.2, (200, ideal_board.shape[0]))
    y = ideal_board.vmm(v)
    lsb = ideal_board.info.dac_line_lsb
    exact = (np.rint(v / lsb) * lsb) @ chip.G   # inputs quantised by the DAC
    info = ideal_board.info
    # auto-ranged per sample: error <= half an LSB of the gain that was used (at worst 1 kOhm)
    assert np.abs(y - exact).max() <= 0.5 * info.adc_lsb / min(info.tia_gains) + 1e-12
    assert np.abs(y - exact).max() / np.abs(exact).max() < 1e-3
