"""CrossbarBackend on the ideal emulated board reproduces the software products."""

from __future__ import annotations

import numpy as np

from memhw.nn import LSTM, Dense, Sequential, SoftwareBackend, pad
from memhw.nn.crossbar import CrossbarBackend
from memhw.nn.mapping import WeightMap
from memhw.nn.placement import place

from .conftest import ideal_program


def _weight_lsb(board, backend: CrossbarBackend) -> float:
    """One ADC LSB at the 10 kOhm gain, in weight units (one device at the read voltage)."""
    return board.info.adc_lsb / board.info.tia_gains[1] / backend.v_read / backend.weight_map.scale


def test_model_outputs_match_software_to_adc_resolution(ideal_boards) -> None:
    board = ideal_boards(1)
    model = Sequential([LSTM(1, 15), Dense(15, 1, "sigmoid")], seed=0)
    placement = place({k: w.shape for k, w in model.params.items()}, board.shape)
    cb = CrossbarBackend(board, placement, programmer=ideal_program)
    measured = cb.program(model.params)
    lsb = _weight_lsb(board, cb)
    for key, w in model.params.items():  # read-back weights: a few LSB of the conductance reads
        assert np.abs(measured[key] - w).max() < 4 * lsb
    rng = np.random.default_rng(0)
    x, lengths = pad([rng.random((n, 1)) for n in (12, 7, 3)])
    software = model.forward(x, lengths, SoftwareBackend(measured))
    crossbar = model.forward(x, lengths, cb)
    assert np.abs(crossbar - software).max() < 20 * lsb


def test_matmul_is_the_product_with_the_measured_weights(ideal_boards) -> None:
    board = ideal_boards(2)
    rng = np.random.default_rng(1)
    w = rng.uniform(-1.5, 1.5, (20, 31))
    for layout in ("rows", "columns"):
        placement = place({"d": w.shape}, board.shape, layout=layout)
        cb = CrossbarBackend(board, placement, programmer=ideal_program)
        cb.program({"d": w})
        z = rng.uniform(-1, 1, (50, 31))
        z[:, -1] = 1.0  # a bias input drives its row at exactly v_read
        err = cb.matmul("d", z) - z @ cb.weights("d").T
        assert np.abs(err).max() < 6 * _weight_lsb(board, cb)


def test_tiled_equals_untiled(ideal_boards) -> None:
    rng = np.random.default_rng(2)
    w = {"d": rng.uniform(-1, 1, (40, 31))}
    z = rng.uniform(-1, 1, (30, 31))
    whole = CrossbarBackend(ideal_boards(3), place({"d": (40, 31)}, (128, 64)), programmer=ideal_program)
    whole.program(w)
    usable = np.zeros((128, 64), bool)
    usable[:40] = True  # only 40 rows: 20 inputs per row tile, two row tiles of 40 columns on two boards
    tiled_place = place({"d": (40, 31)}, [(128, 64)] * 2, usable)
    assert len(tiled_place.tiles) >= 3 and {t.array for t in tiled_place.tiles} == {0, 1}
    tiled = CrossbarBackend([ideal_boards(4), ideal_boards(5)], tiled_place, programmer=ideal_program)
    tiled.program(w)
    lsb = _weight_lsb(whole.boards[0], whole)
    np.testing.assert_allclose(tiled.weights("d"), whole.weights("d"), atol=4 * lsb)
    assert np.abs(tiled.matmul("d", z) - whole.matmul("d", z)).max() < 10 * lsb
    assert np.abs(tiled.matmul("d", z) - z @ tiled.weights("d").T).max() < 10 * lsb


def test_centred_scheme_on_the_board(ideal_boards) -> None:
    board = ideal_boards(6)
    w = np.random.default_rng(3).uniform(-0.8, 0.8, (8, 9))
    wmap = WeightMap(centred=True, g_base=190e-6, g_max=275e-6)
    cb = CrossbarBackend(board, place({"d": w.shape}, board.shape), weight_map=wmap, programmer=ideal_program)
    np.testing.assert_allclose(cb.program({"d": w})["d"], w, atol=4 * _weight_lsb(board, cb))
