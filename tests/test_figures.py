"""Issue #13 item 6: figures a scientist would keep -- checked through the matplotlib
objects: titles say what and under which conditions, nothing is cut off, axes have units
spelt one way, legends do not cover data, the noise sweep measures programmed devices."""

from __future__ import annotations

import numpy as np
import pytest

import memhw
from memhw.calibration import sweeps
from memhw.calibration.plots import calibration_axes, sweep_axes
from memhw.plots import map_axes, program_axes, pyplot


def _texts(fig) -> list:
    """The text of a figure a reader reads: suptitle, titles, axis and colourbar labels,
    legends (tick labels are left out: matplotlib keeps some outside the view, undrawn)."""
    from matplotlib.text import Text

    ticks = {id(t) for a in fig.axes for minor in (False, True)
             for t in (*a.get_xticklabels(minor=minor), *a.get_yticklabels(minor=minor))}
    return [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible() and id(t) not in ticks]


def _check_readable(fig) -> str:
    """All text inside the figure, no 'uS' or raw ohm exponents; returns the text joined."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    words = []
    for t in _texts(fig):
        box = t.get_window_extent(renderer)
        assert box.x0 >= -1 and box.x1 <= width + 1 and box.y0 >= -1 and box.y1 <= height + 1, \
            f"cut off: {t.get_text()!r} at {box} in a {width:.0f} x {height:.0f} figure"
        words.append(t.get_text())
    text = "\n".join(words)
    assert "uS" not in text and "ohm" not in text and "e+0" not in text, text
    return text


def _figure(ncols: float = 1.0):
    return pyplot().figure(figsize=(7.5 * ncols, 5.4), layout="constrained")


@pytest.fixture(scope="module")
def board():
    with memhw.connect("mock://?rows=32&seed=1") as b:
        yield b


@pytest.fixture(scope="module")
def programmed(board):
    targets = np.random.default_rng(0).uniform(20e-6, 150e-6, board.shape)
    return memhw.program(board, targets, tolerance=3e-6)


def test_program_figure_says_what_was_done_and_nothing_is_cut_off(programmed) -> None:
    fig = pyplot().figure(figsize=(11, 8.5), layout="constrained")
    ax = program_axes(fig, programmed.targets, programmed.achieved, programmed.mask, programmed.pulses,
                      programmed.tolerance, title=programmed.headline() + "\nboard X, targets random")
    text = _check_readable(fig)
    assert fig._suptitle.get_text().startswith("adaptive write-and-verify to ±3.0 µS: ")
    assert "devices converged" in fig._suptitle.get_text()
    assert ax[1, 0].get_title() == "error" and ax[1, 0].get_xlabel() == "achieved − target (µS)"
    assert "tolerance ±3 µS" in [t.get_text() for t in ax[1, 0].get_legend().get_texts()]
    colourbars = [a for a in fig.axes if a.get_ylabel() == "conductance (µS)"]
    assert len(colourbars) == 2
    assert "µS" in text
    pyplot().close(fig)


def test_result_plot_writes_the_headline(programmed, tmp_path) -> None:
    assert programmed.plot(tmp_path / "p.png", context="board B").stat().st_size > 10_000


def test_calibration_figure_has_readable_gains_and_legends_off_the_data(board) -> None:
    from memhw.calibration import calibrate_board

    cal = calibrate_board(board, average=4)
    fig = pyplot().figure(figsize=(16, 4.8), layout="constrained")
    ax = calibration_axes(fig, cal.serial, {g: d.gain for g, d in cal.dac.items()}, cal.tia_gains, cal.tia_gain,
                          cal.tia_residual, cal.date)
    text = _check_readable(fig)
    for label in ("TIA 1 kΩ", "TIA 10 kΩ", "TIA 100 kΩ", "TIA 1 MΩ", "row DACs", "gate DACs"):
        assert label in text, label
    renderer = fig.canvas.get_renderer()
    for a in ax:
        legend, data = a.get_legend().get_window_extent(renderer), a.get_window_extent(renderer)
        assert legend.y1 <= data.y0 + 1, "legend over the data"
    assert f"board calibration of {cal.serial}" in fig._suptitle.get_text()
    pyplot().close(fig)


@pytest.mark.parametrize("run, conditions", [
    (lambda b: sweeps.gate_sweep(b, gates=[0.6, 1.0, 1.4]), ["SET pulse of 2.5 V, 1 µs", "reads averaged ×4"]),
    (lambda b: sweeps.reset_sweep(b, amplitudes=[0.5, 1.0, 1.7]), ["RESET pulse of 1 µs at gate 5.0 V",
                                                                   "SET 2.5 V at gate 1.4 V"]),
    (lambda b: sweeps.iv_sweep(b, devices=[(0, 0), (3, 5)], n=5), ["DC", "to +0.3 V", "gates 5.0 V"]),
    (lambda b: sweeps.retention(b, times=(0, 10)), ["one SET of 2.5 V, 1 µs", "board's clock"]),
])
def test_sweep_figures_state_their_pulse_conditions(board, run, conditions) -> None:
    res = run(board)
    fig = _figure(2 if isinstance(res, sweeps.ResetCurve) else 1)
    sweep_axes(fig, res, serial=board.info.serial)
    _check_readable(fig)
    title = fig._suptitle.get_text().replace("\n", " ")
    for text in conditions:
        assert text in title, (text, title)
    for a in fig.axes:
        assert a.get_xlabel() and a.get_ylabel() and a.get_title(), a
    pyplot().close(fig)


def test_the_noise_sweep_measures_devices_programmed_over_the_programming_range(board) -> None:
    res = sweeps.read_noise(board, 8, g_range=(20e-6, 200e-6))
    mean = res.mean[np.isfinite(res.mean)] * 1e6
    pattern = np.count_nonzero(sweeps._block_mask(board, slice(16, 32), 8, 1))
    assert res.devices >= 0.95 * pattern  # the converged ones; stuck devices left out
    assert mean.min() > 15 and mean.max() < 205, (mean.min(), mean.max())  # not 1-6 µS, no 350 µS outlier
    assert 0.006 < res.summary()["median_relative_sigma"] < 0.015
    fig = _figure(2)
    sweep_axes(fig, res)
    assert "programmed to 20–200 µS" in fig._suptitle.get_text().replace("\n", " ")
    _check_readable(fig)
    pyplot().close(fig)
    g = board.read_conductance(rows=slice(16, 32))
    assert np.nanmax(g[sweeps._block_mask(board, slice(16, 32), 8, 1)[16:32]]) < 20e-6  # left RESET


def test_a_map_figure_has_units(board) -> None:
    fig = pyplot().figure(figsize=(11, 4.5), layout="constrained")
    ax = map_axes(fig, board.read_conductance(), "map of the board")
    _check_readable(fig)
    assert ax[1].get_xlabel() == "conductance (µS)"
    assert any(a.get_ylabel().startswith("conductance (µS") for a in fig.axes)
    pyplot().close(fig)
