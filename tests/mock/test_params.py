"""Tests of the mock parameter sets (memhw.mock.params)."""

import dataclasses
import types

import pytest

from memhw.mock.params import GROUPS, PRESETS, BoardParams, ChipParams, MockParams, PeripheryParams, make_params
from memhw.mock.identity import default_serial


def flat(preset="paper", **kw):
    """Every field of a preset, by name."""
    return types.SimpleNamespace(**make_params(preset, **kw).flat())


def test_presets_exist_and_default_is_paper():
    assert set(PRESETS) == {"ideal", "paper", "harsh"}
    assert make_params() == PRESETS["paper"]
    assert make_params("paper") == MockParams()


def test_ideal_has_no_noise_faults_or_errors_but_keeps_quantisation():
    p = flat("ideal")
    for name in (
        "device_spread", "write_noise", "read_noise", "telegraph_fraction", "stuck_fraction",
        "unformed_fraction", "wire_resistance", "relax_mean_coeff", "relax_std_coeff",
        "relax_std_offset", "dac_gain_error", "dac_offset_error", "tia_gain_error",
        "tia_offset_error", "adc_noise_lsb", "reference_tolerance", "initial_spread",
        "set_kinetics_spread", "cubic_coeff",
    ):
        assert getattr(p, name) == 0, name
    assert p.bad_rows == () and p.bad_cols == ()
    assert p.adc_lsb == pytest.approx(10 / 65536)
    assert p.dac_line_lsb == pytest.approx(10 / 65536)
    assert p.dac_gate_lsb == pytest.approx(20 / 65536)


def test_paper_uses_domain_numbers():
    p = flat("paper")
    assert (p.rows, p.cols) == (128, 64)
    assert p.set_slope == 98e-6 and p.set_intercept == 120e-6
    assert p.write_noise == 4e-6
    assert p.read_noise == 0.01
    assert p.stuck_fraction == 0.002
    assert (p.relax_mean_coeff, p.relax_std_coeff, p.relax_std_offset) == (-0.089e-6, 0.042e-6, 0.41e-6)
    assert 0.1 <= p.wire_resistance <= 0.35
    assert p.tia_gains == (1e3, 1e4, 1e5, 1e6)
    assert 1e-6 <= p.g_min <= 5e-6 and 300e-6 <= p.g_max <= 400e-6


def test_harsh_is_harsher_than_paper():
    h, p = flat("harsh"), flat("paper")
    assert h.stuck_fraction >= 0.1
    assert h.wire_resistance == 1.0
    assert h.write_noise > p.write_noise and h.read_noise > p.read_noise
    assert h.bad_rows or h.bad_cols


def test_overrides_from_strings_are_converted():
    p = flat("ideal", read_noise="0.02", rows="16", cols=8, bad_rows="1, 3", tia_gains="(1e3,1e5)")
    assert p.read_noise == 0.02 and isinstance(p.read_noise, float)
    assert p.rows == 16 and isinstance(p.rows, int)
    assert p.bad_rows == (1, 3)
    assert p.tia_gains == (1e3, 1e5)
    assert make_params("ideal", bad_cols="").chip.bad_cols == ()
    assert make_params("ideal", cubic_coeff=1).chip.cubic_coeff == 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(preset="nope"), "unknown mock preset"),
        (dict(preset="paper", no_such_field=1), "unknown mock parameter"),
        (dict(preset="paper", rows="1.5"), "rows"),
        (dict(preset="paper", read_noise="lots"), "read_noise"),
        (dict(preset="paper", read_noise=True), "read_noise"),
        (dict(preset="paper", read_noise=[1, 2]), "read_noise"),
        (dict(preset="paper", g_min=1e-3), "g_min"),
        (dict(preset="paper", stuck_fraction=1.5), "stuck_fraction"),
        (dict(preset="paper", write_noise=-1), "write_noise"),
        (dict(preset="paper", bad_rows="200"), "bad_rows"),
        (dict(preset="paper", wire_resistance=1e-9), "wire_resistance"),
    ],
)
def test_make_params_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_params(**kwargs)


def test_params_are_frozen_and_replace_converts():
    p = make_params()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.chip.rows = 3  # type: ignore[misc]
    assert p.replace(rows="8").chip.rows == 8
    assert p.to_dict()["chip"]["cols"] == 64


def test_parameters_are_composed_of_chip_periphery_and_board_groups():
    p = make_params("harsh", read_noise=0.05, adc_noise_lsb=2.0, serial="X-1")
    assert isinstance(p.chip, ChipParams) and isinstance(p.periphery, PeripheryParams)
    assert isinstance(p.board, BoardParams)
    assert (p.chip.read_noise, p.periphery.adc_noise_lsb, p.board.serial) == (0.05, 2.0, "X-1")
    names = [f.name for cls in GROUPS.values() for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names)) == len(p.flat())  # one flat name space for URLs


def test_every_periphery_field_distinguishes_boards():
    """A board whose periphery differs in any field is another board: another serial,
    so calibration files are never shared between them."""
    base = make_params()
    serials = {default_serial(base, 0)}
    for f in dataclasses.fields(PeripheryParams):
        value = getattr(base.periphery, f.name)
        changed = (value[:-1] if isinstance(value, tuple) and len(value) > 1 else
                   value + 1 if isinstance(value, int) else value * 1.5 + 1e-9)
        serials.add(default_serial(base.replace(**{f.name: changed}), 0))
    assert len(serials) == len(dataclasses.fields(PeripheryParams)) + 1
    assert default_serial(base.replace(read_noise=0.5), 0) == default_serial(base, 0)  # a chip field: same board
