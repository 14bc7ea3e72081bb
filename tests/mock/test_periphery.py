"""Tests of the mock board periphery (memhw.mock.periphery): DAC/TIA/ADC transfer,
quantisation, saturation, per-channel errors, reference resistors."""

import numpy as np
import pytest

from memhw.mock.chip import Chip
from memhw.mock.params import make_params
from memhw.mock.periphery import Periphery

LSB = 10 / 65536


def per(preset="paper", seed=0, **kw):
    prm = make_params(preset, **kw)
    return Periphery(prm.periphery, prm.shape, np.random.default_rng(seed))


def test_ideal_dac_is_code_times_lsb():
    p = per("ideal")
    codes = np.array([[0, 1, -1, 1311, 32767, -32768] + [0] * 122])
    np.testing.assert_array_equal(p.row_volts(codes), codes * LSB)
    np.testing.assert_array_equal(p.col_volts(np.full(64, 1000)), np.full(64, 1000 * LSB))
    np.testing.assert_array_equal(p.gate_volts(np.full(64, 16384)), np.full(64, 5.0))
    # out-of-range codes saturate at the DAC rails
    assert p.row_volts(np.full(128, 10**6))[0] == 32767 * LSB
    with pytest.raises(TypeError):
        p.row_volts(np.full(128, 0.5))
    with pytest.raises(ValueError):
        p.row_volts(np.zeros(64, int))


def test_ideal_adc_quantises_and_inverts():
    p = per("ideal")
    I = np.zeros((1, 64))
    I[0, :8] = [1e-6, -1e-6, 20e-6, 1e-9, 0.5 * LSB / 1e4 * 0.999, 3e-3, -3e-3, 0.0]
    codes = p.adc_codes(I, np.full((1, 64), 1))  # 10 kohm
    assert codes.dtype == np.int32
    expect = np.clip(np.rint(-I * 1e4 / LSB), -32768, 32767)
    np.testing.assert_array_equal(codes, expect)
    assert codes[0, 0] == -66 and codes[0, 1] == 66  # inverting; 10 mV / 152.6 uV
    assert codes[0, 4] == 0  # below half an LSB: quantised away
    sat = p.saturated(codes)
    assert sat[0, 5] and sat[0, 6] and not sat[0, :5].any()
    assert codes[0, 5] == -32768 and codes[0, 6] == 32767
    # round trip through the nominal inverse is within half an LSB
    back = p.nominal_current(codes, 1)
    assert np.all(np.abs(back[0, :5] - I[0, :5]) <= 0.5 * LSB / 1e4 + 1e-18)


def test_gain_index_selects_gain_and_broadcasts():
    p = per("ideal")
    I = np.full((2, 64), 1e-7)
    gi = np.array([0, 1, 2, 3] * 16)
    codes = p.adc_codes(I, gi)
    np.testing.assert_array_equal(codes[0], np.rint(-1e-7 * np.array(p.tia_gains)[gi] / LSB))
    with pytest.raises(ValueError):
        p.adc_codes(I, np.full(64, 4))


def test_periphery_errors_present_in_paper_and_drawn_per_channel():
    p = per("paper", seed=1)
    v = p.row_volts(np.full(128, 13107))  # nominal 2.0 V
    rel = v / (13107 * LSB) - 1
    assert 0.003 < rel.std() < 0.03
    I = np.full((1, 64), 10e-6)
    codes = p.adc_codes(I, 1)
    gain = -codes[0] * LSB / (I[0] * 1e4)
    assert 0.005 < np.std(gain) < 0.06


def test_adc_noise_sigma():
    p = per("paper", seed=2)
    I = np.full((20000, 64), 3.3e-6)
    codes = p.adc_codes(I, 1).astype(float)
    # quantisation adds 1/12 LSB^2 to the 0.5 LSB^2 noise
    sd = codes.std(axis=0).mean()
    assert sd == pytest.approx(np.sqrt(0.25 + 1 / 12), rel=0.05)


def test_reference_conductances():
    pi = per("ideal")
    np.testing.assert_array_equal(pi.reference_conductances, 1 / np.array(pi.params.reference_resistors))
    pp = per("paper", seed=3)
    rel = pp.reference_conductances * np.array(pp.params.reference_resistors) - 1
    assert np.all(np.abs(rel) < 5e-3) and np.any(rel != 0)
    g, chip = pp.reference_conductances, make_params("paper").chip
    assert g.max() >= chip.g_max and g.min() <= chip.g_min


def test_reproducible_per_seed():
    a, b, c = per("harsh", 4), per("harsh", 4), per("harsh", 5)
    I = np.full((3, 64), 1e-6)
    np.testing.assert_array_equal(a.adc_codes(I, 1), b.adc_codes(I, 1))
    assert not np.array_equal(a.tia_gain_err, c.tia_gain_err)


def test_ideal_chain_recovers_conductance_to_lsb():
    """Ideal board + ideal chip: one-hot reads through DAC/TIA/ADC give G to ~1 LSB."""
    prm = make_params("ideal")
    chip = Chip(prm.chip, np.random.default_rng(0))
    p = Periphery(prm.periphery, prm.shape, np.random.default_rng(1))
    for r in range(128):
        chip.set_row(r, np.full(64, 2.5), np.linspace(0.7, 1.6, 64), np.full(64, 1e-6))
    code = p.nominal_volts_to_line_code(0.2)
    v = p.row_volts(np.where(np.eye(128, dtype=bool), code, 0))
    codes = p.adc_codes(chip.currents(v), 1)
    g = p.nominal_current(codes, 1) / (code * LSB)
    assert np.max(np.abs(g - chip.G)) < 1.0 * LSB / 1e4 / 0.2
