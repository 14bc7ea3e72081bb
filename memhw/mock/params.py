"""Parameter set of the mock memristor chip, its board periphery and the board's firmware.

Three groups, each a frozen dataclass: :class:`ChipParams` (the array), :class:`PeripheryParams`
(DACs, TIAs, ADCs, references: what a board calibration measures) and :class:`BoardParams`
(firmware identity, limits, buffers, timing), composed in :class:`MockParams`.

Every number the mock uses lives here, once, with its source:

* ``DOMAIN §x`` -- /work/shared/DOMAIN.md (published code/papers of the group that built
  the 128 x 64 1T1R Ta/HfO2 array, or simulators cited there);
* ``derived`` -- arithmetic on such numbers;
* ``choice`` -- a modelling choice of this mock (plausible, not measured).

Three presets exist (see :data:`PRESETS`):

``ideal``
    No noise of any kind, no device spread, no faults, no wire resistance, no periphery
    errors, no relaxation.  DAC and ADC quantisation are still present (they are part of
    the board, not an error).
``paper`` (default)
    The numbers of DOMAIN.md: 4 uS write noise, 1 % read noise, 99.8 % yield, HfOx
    relaxation, 0.15 ohm wire segments, periphery errors of a few percent.
``harsh``
    ~11 % stuck devices, more noise, 1 ohm wires, a bad row and a bad column, unformed
    devices, larger periphery errors.

Use :func:`make_params` to build a parameter set from a preset name plus overrides (the
overrides may be strings, e.g. from a ``mock://?preset=harsh&seed=3&read_noise=0.02`` URL).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field

__all__ = ["ChipParams", "PeripheryParams", "BoardParams", "MockParams", "GROUPS", "PRESETS", "make_params",
           "preset_names"]

_16BIT_10V = 10.0 / 65536  # V/LSB of a 16-bit converter over +-5 V (DOMAIN §1 board; derived)
_16BIT_20V = 20.0 / 65536  # V/LSB of a 16-bit converter over +-10 V (DOMAIN §1 board; derived)


@dataclass(frozen=True)
class ChipParams:
    """The 1T1R array (:mod:`memhw.mock.chip`): geometry, device physics, faults, wires.
    SI units (S, V, s, ohm). Defaults are the ``paper`` preset."""

    # ---------------------------------------------------------------- geometry
    rows: int = 128  # DOMAIN §1: 128 x 64 1T1R array
    cols: int = 64

    # ---------------------------------------------------------------- range (DOMAIN §2.7)
    g_min: float = 2e-6  # S; DOMAIN §2.7 "G_min ~ 1-5 uS" (choice within range)
    g_max: float = 350e-6  # S; DOMAIN §2.7 "G_max ~ 300-400 uS" (choice within range)
    initial_spread: float = 0.3  # log-normal sigma of the as-delivered (HRS) G around g_min; choice
    unformed_conductance: float = 0.05e-6  # S of a never-formed device; choice

    # ---------------------------------------------------------------- SET (DOMAIN §1 table, §2.1)
    set_threshold: float = 1.0  # V; below it a SET pulse does nothing. DOMAIN §2.1 "~1 V, choice"
    set_slope: float = 98e-6  # S/V; DOMAIN §1 "G ~ 98 uS/V * Vg + 120 uS" (code)
    set_intercept: float = 120e-6  # S; same source
    transistor_vth: float = 0.4  # V; compliance falls to 0 here. choice (code's gates start at 0.4-0.5 V)
    set_gate_knee: float = 0.15  # V; width of the fall-off above vth: f *= 1-exp(-((Vg-vth)/knee)^2). choice
    device_spread: float = 0.07  # sigma of k_ij ~ N(1, sigma); DOMAIN §2.1 "0.05-0.1, choice"
    # SET kinetics: fraction e of the way to the compliance level reached by one pulse,
    # e = 1 - exp(-width / t_set(V)),  t_set(V) = set_tau * exp(-(V - set_v_ref) / set_v_scale).
    # Chosen so 2.5 V (DOMAIN §1 SET amplitude) completes within the shortest board pulse
    # (160 ns, DOMAIN §1 width register), 2 V gets ~60 % of the way, 1.5 V ~10 %, and 1 V
    # needs ~10 us (the 5 ms "slow" mode completes at any amplitude above threshold).  choice
    set_tau: float = 20e-9  # s at set_v_ref; choice
    set_v_ref: float = 2.5  # V; DOMAIN §1 SET amplitude 2.5 V
    set_v_scale: float = 0.24  # V per e-fold of switching time; choice
    set_kinetics_spread: float = 0.5  # log-normal sigma of the per-pulse switching time; choice
    write_noise: float = 4e-6  # S per programming event; DOMAIN §1 table / §2.3 (their simulator)

    # ---------------------------------------------------------------- RESET (DOMAIN §2.2)
    # Fraction removed per pulse phi = 1 - exp(-width / t_reset(V_eff)),
    # t_reset(V) = reset_tau * exp(-(V - reset_v_ref) / reset_v_scale);
    # G <- G - phi * (G - g_min) + noise.  With 1 us pulses: 1.7 V removes ~98 % ("~full
    # reset at 1.7 V", DOMAIN §1), 0.3 / 0.5 / 1.0 / 1.5 V remove 1.5 / 3 / 21 / 83 % (the
    # partial steps of the 0.3-1.5 V tuning ramp, DOMAIN §1).  The board's pulses are
    # 160 ns-4.3 us (DOMAIN §1), so the calibration point is 1 us.  choice
    reset_threshold: float = 0.25  # V; below it RESET does nothing (0.2 V reads never disturb). choice
    reset_tau: float = 250e-9  # s at reset_v_ref; choice
    reset_v_ref: float = 1.7  # V; DOMAIN §1 RESET amplitude
    reset_v_scale: float = 0.25  # V per e-fold; choice
    reset_noise_fraction: float = 0.25  # sigma of a gentle step / write_noise (-> 1 for full reset); DOMAIN §2.3 choice
    gate_full_on: float = 2.0  # V; gate at/above this = transistor fully on (factor 1). choice

    # ---------------------------------------------------------------- read noise (DOMAIN §2.4)
    read_noise: float = 0.01  # relative sigma per device per read; aihwkit ReRAM docs (DOMAIN §2.4)
    telegraph_fraction: float = 0.02  # fraction of devices with two-level RTN; DOMAIN §2.4 "few %, choice"
    telegraph_amplitude: float = 0.03  # RTN step as a fraction of G (+-half of it); choice

    # ---------------------------------------------------------------- relaxation (DOMAIN §2.5)
    # dG(t) = mean_coeff*ln(1+t/1s) + z*(std_coeff*ln(1+t/1s) + std_offset*(1-exp(-t/relax_onset)))
    relax_mean_coeff: float = -0.089e-6  # S per ln(s); aihwkit HfOx fit (DOMAIN §2.5)
    relax_std_coeff: float = 0.042e-6  # S per ln(s); same
    relax_std_offset: float = 0.41e-6  # S; same
    relax_onset: float = 1.0  # s; the offset term grows in over ~1 s ("relaxes within seconds", DOMAIN §1). choice

    # ---------------------------------------------------------------- faults (DOMAIN §2.6, §2.9)
    stuck_fraction: float = 0.002  # DOMAIN §1 yield 99.8 %
    bad_rows: tuple[int, ...] = ()  # open row lines: devices read 0 and ignore writes; choice
    bad_cols: tuple[int, ...] = ()  # open column lines; choice
    unformed_fraction: float = 0.0  # DOMAIN §2.9 optional; the paper's chip was formed. choice
    forming_voltage: float = 3.0  # V; first SET of an unformed device needs this. choice
    v_abs_max: float = 4.5  # V; |pulse| above this destroys the device. choice (> 3.5 V max of the tune ramp, DOMAIN §1)
    broken_conductance: float = 1e-3  # S; a destroyed device is a permanent short limited by the transistor. choice

    # ---------------------------------------------------------------- array (DOMAIN §2.8)
    wire_resistance: float = 0.15  # ohm per segment; DOMAIN §2.8 (simulators use 0.1/0.15/0.35/1); "low wire resistance" DOMAIN §1
    cubic_coeff: float = 0.0  # 1/V^2: I = G (V + c V^3); DOMAIN §1 "linear I-V at read voltages" -> 0
    ir_resolve_tolerance: float = 0.05e-6  # S; relaxation since the last exact G_eff solve above
    # this (max over devices) triggers a new solve, below it a first-order correction is used
    # (error < ~10 % of the drift, i.e. < 5 nS << 76 nS ADC LSB at 10 kohm, DOMAIN §1). choice

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)


@dataclass(frozen=True)
class PeripheryParams:
    """The measurement board's analog hardware (:mod:`memhw.mock.periphery`): DACs, TIAs,
    ADCs, reference resistors, monitor ADC, pulse generator. Two boards whose periphery
    parameters (or seeds) differ are different boards with different calibrations."""

    # ---------------------------------------------------------------- periphery (DOMAIN §1 board, §2.10)
    dac_line_lsb: float = _16BIT_10V  # V/code rows & columns: 16-bit over +-5 V (DOMAIN §1: "16-bit reasonable")
    dac_gate_lsb: float = _16BIT_20V  # V/code gates: 16-bit over +-10 V (DOMAIN §1 "DAC spans 5 V or 10 V")
    dac_bits: int = 16  # DOMAIN §1 (choice: 16-bit)
    adc_bits: int = 16  # DOMAIN §1: 16-bit ADC
    adc_lsb: float = _16BIT_10V  # V/LSB over +-5 V = 152.6 uV (DOMAIN §1)
    tia_gains: tuple[float, ...] = (1e3, 1e4, 1e5, 1e6)  # ohm (V/A), inverting; DOMAIN §1
    dac_gain_error: float = 0.01  # relative sigma per DAC channel; DOMAIN §2.10 "few %", choice
    dac_offset_error: float = 1e-3  # V sigma per DAC channel; choice
    tia_gain_error: float = 0.02  # relative sigma per column per gain; choice
    tia_offset_error: float = 2e-3  # V sigma per column per gain (at the ADC input); choice
    adc_noise_lsb: float = 0.5  # LSB sigma; DOMAIN §2.10
    reference_resistors: tuple[float, ...] = (2.5e3, 5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 1e6)
    # ohm, nominal; spans 1/g_max (2.9 kohm) .. 1/g_min (500 kohm) plus 1 Mohm. choice
    reference_tolerance: float = 1e-3  # relative sigma of the true value (0.1 % precision parts). choice
    # Self-calibration hardware (opcodes READ_REFERENCE / READ_DAC; docs/mock.md, PROTOCOL.md).
    # Each column's TIA input can be switched from the array to one of the reference
    # resistors, whose other end is a reference bus driven by its own DAC channel (errors as
    # any DAC channel: dac_gain_error / dac_offset_error); every DAC output (rows, columns,
    # gates, reference bus) can be routed through an analog multiplexer to one precision
    # monitor ADC (a 20-bit SAR ADC with a trimmed reference, e.g. AD4020 + ADR4525 class).
    monitor_bits: int = 20  # choice: 20-bit SAR monitor ADC
    monitor_lsb: float = 20.48 / (1 << 20)  # V/code over +-10.24 V (covers the 5.5 V gates); derived from the choice
    monitor_gain_error: float = 2e-4  # relative sigma: 0.02 % reference + ADC gain error after factory trim; choice
    monitor_offset_error: float = 50e-6  # V sigma incl. multiplexer leakage; choice
    monitor_noise_lsb: float = 1.0  # LSB sigma per sample; choice (20-bit SAR: ~1-2 LSB rms)
    # pulse generator (DOMAIN §1 width register)
    width_offset: float = 160e-9  # s at width code 0 (DOMAIN §1: ~160 ns at 0)
    width_lsb: float = 4.14e-9  # s per width code: (4.3 us - 160 ns)/1000 (DOMAIN §1; derived)
    width_max_code: int = 1023  # 10-bit width register (DOMAIN §1: 0-1023 counts)


@dataclass(frozen=True)
class BoardParams:
    """The board's firmware: identity, absolute limits, buffers and the time each step takes
    (the emulator's virtual clock, :mod:`memhw.mock.emulator`)."""

    # ---------------------------------------------------------------- firmware, limits, timing
    serial: str = "MEMHW-EMU-0001"  # board serial reported by HELLO; choice
    v_read_max: float = 1.0  # V; largest |DC level| on rows/columns and |VMM input|. choice (reads use 0.2 V, DOMAIN §1)
    v_set_max: float = 3.5  # V; SET amplitude limit = top of the published tuning ramp (DOMAIN §1 closed-loop tuning)
    v_reset_max: float = 2.5  # V; RESET limit, above the 1.7-1.8 V used (DOMAIN §1); choice
    v_gate_max: float = 5.5  # V; top of the published RESET gate range 5.0-5.5 V (DOMAIN §1)
    gate_read: float = 5.0  # V; gates during reads/VMM: fully on as for RESET (DOMAIN §1 line roles)
    max_frame: int = 4096  # payload bytes per frame the board accepts/sends; choice (MCU buffer)
    max_message: int = 65536  # largest reassembled request; choice (MCU RAM)
    sample_time: float = 10e-6  # s per parallel ADC conversion of all columns; choice (virtual clock)
    row_switch_time: float = 5e-6  # s to switch lines between rows of a pulse batch; choice
    mcu_value_time: float = 0.1e-6  # s per value the board's MCU computes in RUN_NETWORK (an activation or a
    # state update: a table interpolation and a few multiply-adds, ~17 cycles of a 168 MHz Cortex-M4F); choice
    monitor_sample_time: float = 10e-6  # s per monitored line and sample (mux settling + conversion); choice


#: the parameter groups of a mock board, in order
GROUPS = {"chip": ChipParams, "periphery": PeripheryParams, "board": BoardParams}


@dataclass(frozen=True)
class MockParams:
    """All parameters of a mock board: its chip, its periphery and its firmware.

    Each group is its own frozen dataclass; :func:`make_params` and :meth:`replace` take
    the fields of every group by name (names are unique across groups).
    """

    chip: ChipParams = field(default_factory=ChipParams)
    periphery: PeripheryParams = field(default_factory=PeripheryParams)
    board: BoardParams = field(default_factory=BoardParams)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the array."""
        return self.chip.shape

    def replace(self, **overrides: typing.Any) -> "MockParams":
        """A copy with some fields changed, by flat name (strings are converted like :func:`make_params`)."""
        conv = _convert_overrides(overrides)
        groups = {g: {k: v for k, v in conv.items() if _GROUP_OF[k] == g} for g in GROUPS}
        return MockParams(**{g: dataclasses.replace(getattr(self, g), **kw) for g, kw in groups.items()})

    def flat(self) -> dict[str, typing.Any]:
        """Every field of every group by name."""
        return {f.name: getattr(getattr(self, g), f.name) for g, cls in GROUPS.items() for f in dataclasses.fields(cls)}

    def to_dict(self) -> dict[str, dict[str, typing.Any]]:
        """``{"chip": {...}, "periphery": {...}, "board": {...}}``."""
        return dataclasses.asdict(self)


_FIELDS = {f.name: f for cls in GROUPS.values() for f in dataclasses.fields(cls)}
_GROUP_OF = {f.name: g for g, cls in GROUPS.items() for f in dataclasses.fields(cls)}
_HINTS = {k: v for cls in GROUPS.values() for k, v in typing.get_type_hints(cls).items()}
assert len(_GROUP_OF) == sum(len(dataclasses.fields(c)) for c in GROUPS.values()), "field names must be unique"


# --------------------------------------------------------------------------- validation

_NONNEG = (
    "initial_spread", "unformed_conductance", "device_spread", "set_kinetics_spread",
    "write_noise", "read_noise", "telegraph_amplitude", "relax_std_coeff",
    "relax_std_offset", "wire_resistance", "dac_gain_error", "dac_offset_error",
    "tia_gain_error", "tia_offset_error", "adc_noise_lsb", "reference_tolerance",
    "reset_threshold", "relax_onset", "ir_resolve_tolerance",
    "monitor_gain_error", "monitor_offset_error", "monitor_noise_lsb", "monitor_sample_time", "mcu_value_time",
)
_POSITIVE = (
    "g_min", "g_max", "set_threshold", "set_tau", "set_v_scale", "set_gate_knee",
    "reset_tau", "reset_v_scale", "v_abs_max", "forming_voltage", "broken_conductance",
    "dac_line_lsb", "dac_gate_lsb", "adc_lsb", "gate_full_on", "monitor_lsb",
)
_FRACTIONS = (
    "telegraph_fraction", "stuck_fraction", "unformed_fraction", "reset_noise_fraction",
)


def _validate(params: MockParams) -> None:
    def bad(msg: str) -> typing.NoReturn:
        raise ValueError(f"invalid MockParams: {msg}")

    for name, cls in GROUPS.items():
        if not isinstance(getattr(params, name), cls):
            bad(f"{name} must be a {cls.__name__}")
    p = types.SimpleNamespace(**params.flat())

    if p.rows < 1 or p.cols < 1:
        bad(f"geometry must be positive, got {p.rows} x {p.cols}")
    for name in _NONNEG:
        v = getattr(p, name)
        if not (math.isfinite(v) and v >= 0):
            bad(f"{name} must be finite and >= 0, got {v!r}")
    for name in _POSITIVE:
        v = getattr(p, name)
        if not (math.isfinite(v) and v > 0):
            bad(f"{name} must be finite and > 0, got {v!r}")
    for name in _FRACTIONS:
        v = getattr(p, name)
        if not (0.0 <= v <= 1.0):
            bad(f"{name} must be in [0, 1], got {v!r}")
    if p.g_min >= p.g_max:
        bad(f"g_min ({p.g_min}) must be below g_max ({p.g_max})")
    if 0 < p.wire_resistance < 1e-6:
        bad("wire_resistance must be 0 (ideal wires) or >= 1e-6 ohm (numerical conditioning)")
    if p.transistor_vth >= p.gate_full_on:
        bad("transistor_vth must be below gate_full_on")
    if p.forming_voltage < p.set_threshold:
        bad("forming_voltage must be >= set_threshold")
    for name, n in (("bad_rows", p.rows), ("bad_cols", p.cols)):
        for i in getattr(p, name):
            if not (0 <= int(i) < n):
                bad(f"{name} entry {i} outside 0..{n - 1}")
    if not p.tia_gains or any(not (g > 0) for g in p.tia_gains):
        bad("tia_gains must be a non-empty tuple of positive values")
    if not p.reference_resistors or any(not (r > 0) for r in p.reference_resistors):
        bad("reference_resistors must be a non-empty tuple of positive values")
    if not (2 <= p.adc_bits <= 31) or not (2 <= p.dac_bits <= 31):
        bad("adc_bits and dac_bits must be in 2..31")
    if not (2 <= p.monitor_bits <= 24):
        bad("monitor_bits must be in 2..24")


# --------------------------------------------------------------------------- make_params



def _convert(name: str, value: typing.Any) -> typing.Any:
    """Convert one override to the field's declared type; ValueError if impossible."""
    hint = _HINTS[name]
    origin = typing.get_origin(hint)
    try:
        if origin is tuple:
            (elem, _ellipsis) = typing.get_args(hint)
            if isinstance(value, str):
                s = value.strip().strip("()[]").strip()
                items = [x for x in (t.strip() for t in s.replace(";", ",").split(",")) if x]
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                items = [value]
            else:
                items = list(value)
            return tuple(_scalar(elem, x, name) for x in items)
        return _scalar(hint, value, name)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"parameter {name!r}: cannot use {value!r} as {_type_name(hint)} ({exc})") from None


def _type_name(hint: typing.Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


def _scalar(tp: type, value: typing.Any, name: str) -> typing.Any:
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers here")
    if tp is int:
        if isinstance(value, str):
            f = float(value.strip())
        else:
            f = float(value)
        if not f.is_integer():
            raise ValueError("not an integer")
        return int(f)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value
    if tp is float:
        if isinstance(value, str):
            return float(value.strip())
        if not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise TypeError(f"expected a number, got {type(value).__name__}")
        return float(value)
    raise TypeError(f"unsupported field type {tp}")


def _convert_overrides(overrides: dict[str, typing.Any]) -> dict[str, typing.Any]:
    unknown = sorted(k for k in overrides if k not in _FIELDS)
    if unknown:
        raise ValueError(
            f"unknown mock parameter(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(_FIELDS)}"
        )
    return {k: _convert(k, v) for k, v in overrides.items()}


def make_params(preset: str = "paper", **overrides: typing.Any) -> MockParams:
    """Parameters of preset ``preset`` ("ideal", "paper", "harsh") with ``overrides``.

    Override values may be strings (as they come from a URL query): they are converted to
    the field's type (``"0.02"`` -> float, ``"3"`` -> int, ``"1,5"`` -> tuple).  Raises
    :class:`ValueError` for an unknown preset, an unknown field, a value of the wrong type
    or an invalid combination.
    """
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ValueError(f"unknown mock preset {preset!r}; choose one of {', '.join(PRESETS)}")
    base = PRESETS[preset]
    if not overrides:
        return base
    conv = _convert_overrides(overrides)
    # A preset's bad lines follow a smaller geometry (wrapped) unless given explicitly.
    for line, dim in (("bad_rows", "rows"), ("bad_cols", "cols")):
        if dim in conv and line not in conv:
            conv[line] = tuple(sorted({i % conv[dim] for i in getattr(base.chip, line)}))
    return base.replace(**conv)


# --------------------------------------------------------------------------- presets

def _preset(**fields: typing.Any) -> MockParams:
    return MockParams().replace(**fields)


PRESETS: dict[str, MockParams] = {
    "paper": MockParams(),
    "ideal": _preset(
        initial_spread=0.0,
        device_spread=0.0,
        set_kinetics_spread=0.0,
        write_noise=0.0,
        reset_noise_fraction=0.0,
        read_noise=0.0,
        telegraph_fraction=0.0,
        telegraph_amplitude=0.0,
        relax_mean_coeff=0.0,
        relax_std_coeff=0.0,
        relax_std_offset=0.0,
        stuck_fraction=0.0,
        unformed_fraction=0.0,
        wire_resistance=0.0,
        cubic_coeff=0.0,
        dac_gain_error=0.0,
        dac_offset_error=0.0,
        tia_gain_error=0.0,
        tia_offset_error=0.0,
        adc_noise_lsb=0.0,
        reference_tolerance=0.0,
        monitor_gain_error=0.0,
        monitor_offset_error=0.0,
        monitor_noise_lsb=0.0,
    ),
    "harsh": _preset(
        initial_spread=0.5,
        device_spread=0.15,  # choice: twice the paper spread
        set_kinetics_spread=1.0,
        write_noise=8e-6,  # choice: 2x paper (5.6 uS in the gait runs, DOMAIN §1)
        reset_noise_fraction=0.4,
        read_noise=0.03,  # choice: 3x aihwkit
        telegraph_fraction=0.05,
        telegraph_amplitude=0.1,
        relax_mean_coeff=-0.089e-6 * 3,  # choice: 3x the HfOx fit
        relax_std_coeff=0.042e-6 * 3,
        relax_std_offset=0.41e-6 * 3,
        stuck_fraction=0.11,  # DOMAIN §1: ~11 % unresponsive in in-situ training (Nat. Commun. 2018)
        bad_rows=(37,),  # choice
        bad_cols=(21,),  # choice
        unformed_fraction=0.02,  # choice
        wire_resistance=1.0,  # DOMAIN §2.8 upper end of simulator values
        cubic_coeff=0.5,  # choice: 2 % extra current at 0.2 V
        dac_gain_error=0.03,
        dac_offset_error=5e-3,
        tia_gain_error=0.05,
        tia_offset_error=5e-3,
        adc_noise_lsb=1.0,
        reference_tolerance=1e-2,  # 1 % parts
        monitor_gain_error=1e-3,  # choice: untrimmed 0.1 % reference
        monitor_offset_error=200e-6,  # choice
        monitor_noise_lsb=2.0,  # choice
    ),
}


def preset_names() -> tuple[str, ...]:
    return tuple(PRESETS)
