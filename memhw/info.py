"""What a board announces about itself in the handshake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .units import OHM, si


@dataclass(frozen=True)
class Limits:
    """Safety limits in SI units; requests beyond them raise :class:`~memhw.errors.LimitError`.

    Attributes
    ----------
    v_read : float
        Largest |V| for DC levels on rows and columns and for VMM inputs.
    v_set, v_reset : float
        Largest SET / RESET pulse amplitude, V.
    v_gate : float
        Largest gate voltage, V (gates are never negative).
    width_min, width_max : float
        Pulse width range, s.
    """

    v_read: float
    v_set: float
    v_reset: float
    v_gate: float
    width_min: float
    width_max: float


@dataclass(frozen=True)
class BoardInfo:
    """Identity, geometry, transfer functions and limits of a connected board."""

    address: str
    protocol: tuple[int, int]
    schema_hash: int
    firmware: str
    serial: str
    rows: int
    cols: int
    dac_bits: int
    adc_bits: int
    dac_line_lsb: float
    dac_gate_lsb: float
    adc_lsb: float
    tia_gains: tuple[float, ...]
    width_offset: float
    width_lsb: float
    width_max_code: int
    limits: Limits
    max_frame: int
    max_message: int
    boot_id: int = 0
    opcodes: tuple[int, ...] = ()
    #: the chip in the board's socket, as the board identifies it ("" if it cannot)
    chip: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the array."""
        return (self.rows, self.cols)

    @property
    def width_max(self) -> float:
        """Longest pulse the board makes, s."""
        return self.width_offset + self.width_lsb * self.width_max_code

    @classmethod
    def from_hello(cls, address: str, h: dict) -> "BoardInfo":
        """Build from a decoded HELLO reply."""
        w_off, w_lsb = float(h["width_offset"]), float(h["width_lsb"])
        return cls(
            address=address,
            protocol=(h["major"], h["minor"]),
            schema_hash=h["schema_hash"],
            firmware=h["firmware"],
            serial=h["serial"],
            rows=h["rows"],
            cols=h["cols"],
            dac_bits=h["dac_bits"],
            adc_bits=h["adc_bits"],
            dac_line_lsb=float(h["dac_line_lsb"]),
            dac_gate_lsb=float(h["dac_gate_lsb"]),
            adc_lsb=float(h["adc_lsb"]),
            tia_gains=tuple(float(g) for g in h["tia_gains"]),
            width_offset=w_off,
            width_lsb=w_lsb,
            width_max_code=h["width_max_code"],
            limits=Limits(
                v_read=float(h["v_read_max"]),
                v_set=float(h["v_set_max"]),
                v_reset=float(h["v_reset_max"]),
                v_gate=float(h["v_gate_max"]),
                width_min=w_off,
                width_max=w_off + w_lsb * h["width_max_code"],
            ),
            max_frame=h["max_frame"],
            max_message=h["max_message"],
            boot_id=int(h["boot_id"]),
            chip=h["chip"],
            opcodes=tuple(int(o) for o in h["opcodes"]),
        )


# ------------------------------------------------------------------ for people
def calibration_text(calibration: Any) -> str:
    """Which calibration a board applies, in words: the file (or ``(in memory)``) and when
    it was made, or ``none: nominal transfer functions``."""
    if calibration is None:
        return "none: nominal transfer functions"
    where = getattr(calibration, "source", None) or "(in memory)"
    return f"{where} (made {calibration.date}, firmware {calibration.firmware})"


def describe(info: BoardInfo, limits: Limits | None = None, calibration: Any = None) -> list[tuple[str, str]]:
    """The board's identity, transfer functions and limits as (label, text) lines with units.

    Parameters
    ----------
    info : BoardInfo
    limits : Limits, optional
        The limits in force (default: the board's absolute maxima, ``info.limits``).
    calibration : BoardCalibration, optional
        The calibration applied (None: nominal transfer functions).
    """
    lim = limits or info.limits
    tighter = limits is not None and limits != info.limits
    w_max = info.width_offset + info.width_lsb * info.width_max_code
    gains = ", ".join(si(g, OHM) for g in info.tia_gains)
    return [
        ("board", f"{info.serial} at {info.address}"),
        ("firmware", f"{info.firmware}, protocol {info.protocol[0]}.{info.protocol[1]} "
                     f"(schema {info.schema_hash:#010x}), boot {info.boot_id}"),
        ("chip", info.chip or "(the board does not identify its chip)"),
        ("array", f"{info.rows} rows × {info.cols} columns"),
        ("calibration", calibration_text(calibration)),
        ("transfer functions", "nominal, as announced; " + (
            "corrected per channel by the calibration" if calibration is not None else "no per-channel correction")),
        ("  row/column DAC", f"{info.dac_bits} bit, {si(info.dac_line_lsb, 'V')} per code"),
        ("  gate DAC", f"{info.dac_bits} bit, {si(info.dac_gate_lsb, 'V')} per code"),
        ("  ADC", f"{info.adc_bits} bit, {si(info.adc_lsb, 'V')} per code"),
        ("  TIA gains", f"{gains} (inverting, auto-ranged)"),
        ("  pulse width", f"{si(info.width_offset, 's')} + code × {si(info.width_lsb, 's')}, "
                          f"codes 0–{info.width_max_code}"),
        ("limits", "tighter than the board's maxima (limits file)" if tighter else "the board's maxima"),
        ("  DC / read level", f"±{si(lim.v_read, 'V')}"),
        ("  SET amplitude", f"≤ {si(lim.v_set, 'V')}"),
        ("  RESET amplitude", f"≤ {si(lim.v_reset, 'V')}"),
        ("  gate", f"0 – {si(lim.v_gate, 'V')}"),
        ("  pulse width", f"{si(lim.width_min, 's')} – {si(min(lim.width_max, w_max), 's')}"),
        ("messages", f"frames ≤ {info.max_frame} B, messages ≤ {info.max_message} B, "
                     f"{len(info.opcodes)} opcodes"),
    ]
