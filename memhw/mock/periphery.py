"""Board periphery of the mock: DACs, transimpedance amplifiers, ADCs (DOMAIN.md §1 board,
§2 item 10).

Each converter channel has fixed gain and offset errors drawn once from the generator;
they are unknown to the host until it calibrates against the on-board reference
resistors (:attr:`Periphery.reference_conductances`).

Transfer functions (codes are signed integers, two's complement range of ``*_bits``)::

    DAC:  V = code * lsb * (1 + gain_err[ch]) + offset[ch]          (code clipped to range)
    TIA:  V_adc = -I * R_gain * (1 + gain_err[col, gain]) + offset[col, gain]   (inverting)
    ADC:  code = clip(round(V_adc / adc_lsb + noise_lsb * N(0, 1)), -2^(b-1), 2^(b-1) - 1)

Self-calibration hardware (opcodes READ_REFERENCE and READ_DAC): a reference bus driven
by its own DAC channel (same error model) feeds the reference resistors, and a precision
monitor ADC measures any DAC output through a multiplexer::

    monitor: code = round(V * (1 + monitor_gain_err) / monitor_lsb + monitor_offset / monitor_lsb + noise)
"""

from __future__ import annotations

import numpy as np

from .params import PeripheryParams

__all__ = ["Periphery"]


class Periphery:
    """DAC/TIA/ADC transfer functions with per-channel errors; see the module docstring."""

    def __init__(self, params: PeripheryParams, shape: tuple[int, int], rng: np.random.Generator):
        self.params = p = params
        self.rng = rng
        self.shape = R, C = shape
        n_g = len(p.tia_gains)
        # Fixed errors, drawn once in a fixed order (reproducible per seed).
        self.row_gain_err = p.dac_gain_error * rng.standard_normal(R)
        self.row_offset = p.dac_offset_error * rng.standard_normal(R)
        self.col_gain_err = p.dac_gain_error * rng.standard_normal(C)
        self.col_offset = p.dac_offset_error * rng.standard_normal(C)
        self.gate_gain_err = p.dac_gain_error * rng.standard_normal(C)
        self.gate_offset = p.dac_offset_error * rng.standard_normal(C)
        self.tia_gain_err = p.tia_gain_error * rng.standard_normal((C, n_g))
        self.tia_offset = p.tia_offset_error * rng.standard_normal((C, n_g))
        nominal = np.asarray(p.reference_resistors, dtype=float)
        true_r = nominal * (1.0 + p.reference_tolerance * rng.standard_normal(nominal.size))
        self.reference_resistances = true_r
        self.reference_conductances = 1.0 / true_r
        self.tia_gains = np.asarray(p.tia_gains, dtype=float)
        self.dac_code_min = -(1 << (p.dac_bits - 1))
        self.dac_code_max = (1 << (p.dac_bits - 1)) - 1
        self.adc_code_min = -(1 << (p.adc_bits - 1))
        self.adc_code_max = (1 << (p.adc_bits - 1)) - 1
        # Self-calibration hardware: reference-bus DAC and monitor ADC (READ_REFERENCE,
        # READ_DAC). Drawn from a child generator so the draws above and the ADC noise
        # stream are the same as on a board without this hardware.
        try:
            self._cal_rng = cal = rng.spawn(1)[0]
        except (TypeError, ValueError, AttributeError):  # a generator without a seed sequence
            self._cal_rng = cal = np.random.default_rng(0x5E1FCA1)
        self.ref_gain_err = float(p.dac_gain_error * cal.standard_normal())
        self.ref_offset = float(p.dac_offset_error * cal.standard_normal())
        self.monitor_gain_err = float(p.monitor_gain_error * cal.standard_normal())
        self.monitor_offset = float(p.monitor_offset_error * cal.standard_normal())
        self.monitor_code_min = -(1 << (p.monitor_bits - 1))
        self.monitor_code_max = (1 << (p.monitor_bits - 1)) - 1

    # ------------------------------------------------------------------ DACs

    def _dac(self, codes, lsb: float, gain_err: np.ndarray, offset: np.ndarray) -> np.ndarray:
        c = np.asarray(codes)
        if c.dtype.kind not in "iu":
            if c.dtype.kind == "f" and np.all(np.mod(c, 1) == 0):
                c = c.astype(np.int64)
            else:
                raise TypeError("DAC codes must be integers")
        if c.shape[-1:] != gain_err.shape:
            raise ValueError(f"DAC codes must have last dimension {gain_err.size}, got shape {c.shape}")
        c = np.clip(c, self.dac_code_min, self.dac_code_max)
        return c * lsb * (1.0 + gain_err) + offset

    def row_volts(self, codes) -> np.ndarray:
        """Row DAC codes (..., rows) -> actual volts on each row line."""
        return self._dac(codes, self.params.dac_line_lsb, self.row_gain_err, self.row_offset)

    def col_volts(self, codes) -> np.ndarray:
        """Column DAC codes (..., cols) -> actual volts on each column line."""
        return self._dac(codes, self.params.dac_line_lsb, self.col_gain_err, self.col_offset)

    def gate_volts(self, codes) -> np.ndarray:
        """Gate DAC codes (..., cols) -> actual volts on each gate line."""
        return self._dac(codes, self.params.dac_gate_lsb, self.gate_gain_err, self.gate_offset)

    def ref_volts(self, code: int) -> float:
        """Reference-bus DAC code -> actual bus volts (READ_REFERENCE)."""
        c = int(np.clip(int(code), self.dac_code_min, self.dac_code_max))
        return c * self.params.dac_line_lsb * (1.0 + self.ref_gain_err) + self.ref_offset

    def monitor_codes(self, volts, average: int = 1) -> np.ndarray:
        """Actual line volts (any shape) -> monitor ADC codes, mean of ``average`` noisy
        samples rounded to the nearest code (READ_DAC, READ_REFERENCE)::

            code = clip(round(mean_k(V * (1 + gain_err) / lsb + offset / lsb + noise_lsb * N(0, 1))))
        """
        p = self.params
        v = np.asarray(volts, dtype=float)
        x = (v * (1.0 + self.monitor_gain_err) + self.monitor_offset) / p.monitor_lsb
        if p.monitor_noise_lsb > 0:
            x = x + p.monitor_noise_lsb * self._cal_rng.standard_normal(x.shape) / np.sqrt(average)
        return np.clip(np.rint(x), self.monitor_code_min, self.monitor_code_max).astype(np.int64)

    # ------------------------------------------------------------------ TIA + ADC

    def tia_volts(self, currents, gain_index, v_ref=None) -> np.ndarray:
        """Noise-free analog TIA output (V) for ``currents`` (n, cols) into the columns.

        ``v_ref`` (cols,), optional: the TIA's reference (column DC level); an inverting
        TIA's output is ``v_ref - I * R``, so a non-zero column level shifts the reading."""
        I = np.asarray(currents, dtype=float)
        C = self.shape[1]
        if I.shape[-1:] != (C,):
            raise ValueError(f"currents must have last dimension {C}, got shape {I.shape}")
        gi = np.asarray(gain_index)
        if gi.dtype.kind not in "iu":
            raise TypeError("gain_index must be integers")
        if gi.size and (gi.min() < 0 or gi.max() >= self.tia_gains.size):
            raise ValueError(f"gain_index must be in 0..{self.tia_gains.size - 1}")
        gi = np.broadcast_to(gi, I.shape)
        cols = np.broadcast_to(np.arange(C), I.shape)
        r = self.tia_gains[gi] * (1.0 + self.tia_gain_err[cols, gi])
        out = -I * r + self.tia_offset[cols, gi]
        if v_ref is not None:
            out = out + np.asarray(v_ref, dtype=float)
        return out

    def adc_codes(self, currents, gain_index, v_ref=None) -> np.ndarray:
        """Currents (n, cols) in A -> signed ADC codes (int32), through the inverting TIA
        at gain ``tia_gains[gain_index]`` (broadcastable to the currents' shape), ADC
        noise, quantisation and saturation at both rails.  ``v_ref``: see :meth:`tia_volts`
        (default 0 V, i.e. columns at virtual ground)."""
        p = self.params
        v = self.tia_volts(currents, gain_index, v_ref)
        x = v / p.adc_lsb
        if p.adc_noise_lsb > 0:
            x = x + p.adc_noise_lsb * self.rng.standard_normal(x.shape)
        x = np.clip(np.rint(x), self.adc_code_min, self.adc_code_max)
        return x.astype(np.int32)

    def saturated(self, codes) -> np.ndarray:
        """True where an ADC code sits at either rail."""
        c = np.asarray(codes)
        return (c <= self.adc_code_min) | (c >= self.adc_code_max)

    # ------------------------------------------------------------------ nominal helpers

    def nominal_volts_to_line_code(self, volts) -> np.ndarray:
        """Nominal (uncalibrated) row/column code for ``volts`` (what a naive host would send)."""
        c = np.rint(np.asarray(volts, dtype=float) / self.params.dac_line_lsb)
        return np.clip(c, self.dac_code_min, self.dac_code_max).astype(np.int64)

    def nominal_volts_to_gate_code(self, volts) -> np.ndarray:
        c = np.rint(np.asarray(volts, dtype=float) / self.params.dac_gate_lsb)
        return np.clip(c, self.dac_code_min, self.dac_code_max).astype(np.int64)

    def nominal_current(self, codes, gain_index) -> np.ndarray:
        """Current (A) a naive host would infer from ADC ``codes`` (no calibration)."""
        gi = np.asarray(gain_index)
        return -np.asarray(codes, dtype=float) * self.params.adc_lsb / self.tia_gains[gi]
