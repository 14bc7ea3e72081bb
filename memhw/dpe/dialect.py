"""Every detail of the original board's ASCII command set, as one parameter set.

The 128 x 64 board this chip was published with speaks the comma-separated ASCII
command set of its 2017 MATLAB driver (public repository ``danielbelkin/dpe_libs``;
/work/shared/DOMAIN.md, "The original board's command set"). The public record fixes
most of it (command numbers, field order, number formats, the swapped acknowledgements)
and leaves some of it open (line endings of replies, the encoding of the enable bytes,
what some fields do). :class:`Dialect` holds all of it, fixed and open alike, so a lab
whose board differs corrects it with an address option (``dpe:///dev/ttyUSB0?reply_eol=lf``)
instead of code. The open details, the reading chosen for each and why are tabled in
``docs/dpe.md`` ("Assumptions"); a test keeps that table and this class in step.

Both sides use a dialect: the bridge (:mod:`memhw.dpe.bridge`) to speak it, the
firmware emulator (:mod:`memhw.dpe.firmware`) to understand it, each with its own code.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["Dialect", "EOLS", "convert_fields"]

#: names accepted for line endings in address options (``reply_eol=crlf``)
EOLS = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}
_16BIT_10V = 10.0 / 65536  # V per code of a 16-bit converter over +-5 V (DOMAIN.md §1)
_16BIT_20V = 20.0 / 65536  # over +-10 V (DOMAIN.md §1: "DAC spans 5 V or 10 V")


@dataclass(frozen=True)
class Dialect:
    """The original firmware's command set, its reply formats and the board's nominal facts.

    Defaults are the public record (DOMAIN.md "The original board's command set") where it
    is explicit, and the most plausible reading where it is not (``docs/dpe.md``,
    "Assumptions"). Voltages in V, times in s.
    """

    # ------------------------------------------------------------ serial line
    baudrate: int = 115200            # driver: BaudRateValue = 115200 (8N1 assumed)
    command_eol: str = "\n"           # open: MATLAB serial's default terminator (LF) after each fprintf
    reply_eol: str = "\r\n"           # open: see docs/dpe.md (the driver's 5-character test fits CRLF)
    # ------------------------------------------------------------ command numbers
    sync_command: int = 1024          # "return to top": resynchronise
    read_command: int = 10            # batch read of one 64 x 64 half
    reset_fast_command: int = 11
    set_fast_command: int = 12
    set_slow_command: int = 17
    reset_slow_command: int = 18
    vmm_command: int = 20
    # ------------------------------------------------------------ replies (prefixes the driver tested)
    sync_reply: str = "go"
    read_done: str = "Batch"
    set_ack: str = "Reset"            # sic: SET is acknowledged with "Reset"
    reset_ack: str = "Set"            # sic: RESET is acknowledged with "Set"
    vmm_done: str = "end"
    debug_prefixes: tuple[str, ...] = ()  # open: reply lines to skip anywhere (none known)
    # ------------------------------------------------------------ number formats
    volt_decimals: int = 2            # V_read, V_gate, SET/RESET amplitudes and gates: %.2f
    vmm_decimals: int = 4             # VMM inputs: %.4f
    # ------------------------------------------------------------ geometry
    col_boards: int = 8               # nCB: 8 columns each
    row_boards: int = 8               # nRB: 16 rows each
    half_rows: int = 64               # rows per half; the `bottom` flag picks the half
    # ------------------------------------------------------------ command 10 (read)
    read_gate: float = 5.0            # V_gate of reads and of VMM (driver: 5)
    read_pulse_width: int = 1000      # driver defaults ("column pulse > convst > row pulse > sample-hold")
    sample_hold_delay: int = 900
    convst_delay: int = 1010
    gain_base: int = 1                # wire gain index = memhw gain index + gain_base (1..4)
    # ------------------------------------------------------------ commands 11, 12, 17, 18 (pulses)
    set_span: int = 5                 # COL_DAC_BATCH_SPAN of fast SET (5 or 10)
    slow_set_span: int = 10           # the driver's slow SET: 10 "forces the high/low switch to HIGH"
    reset_col_span: int = 5
    reset_row_span: int = 5
    slow_set_width_field: int = 15    # the driver's values; slow modes ignore the field
    slow_reset_width_field: int = 500
    # ------------------------------------------------------------ command 20 (VMM)
    vmm_vol_only: int = 0             # open: meaning unknown; the driver sent 0
    vmm_repeat: int = 1               # open: meaning unknown beyond "answer Repeat times"; the driver sent 1
    vmm_pulse_width: int = 1000       # driver: Pulse_Width = 1000
    vmm_row_span: int = 5             # driver: Row_DAC_Span = '5'
    vmm_max_vectors: int = 255        # open: largest Data_Rows the firmware buffers
    vmm_warmup: int = 0               # open: the driver ran a 2-vector dummy VMM first; vectors to repeat so
    enable_bit_order: str = "lsb"     # open: row k / column k is bit k % 8 of enable byte k // 8 ("lsb") or bit 7 - k % 8
    # ------------------------------------------------------------ converters (DOMAIN.md §1)
    adc_offset: int = 32768           # code -> volts: (code - 32768) * 10 / 65536
    adc_lsb: float = _16BIT_10V       # 16-bit ADC over +-5 V
    dac_line_lsb: float = _16BIT_10V  # nominal row/column DAC (16 bit is DOMAIN's "reasonable choice")
    dac_gate_lsb: float = _16BIT_20V  # nominal gate DAC
    tia_gains: tuple[float, ...] = (1e3, 1e4, 1e5, 1e6)   # ohm, inverting
    width_offset: float = 160e-9      # width register: 0 ~ 160 ns ... 1000 ~ 4.3 us
    width_lsb: float = 4.14e-9
    width_max_code: int = 1023
    slow_set_width: float = 5e-3      # slow SET (17) ~ 5 ms whatever the width field
    slow_reset_width: float = 500e-6  # slow RESET (18) ~ 500 us
    # ------------------------------------------------------------ limits (enforced by the bridge, on the host)
    v_read_max: float = 1.0           # choice, as the emulator (reads use 0.2 V)
    v_set_max: float = 3.5            # top of the published SET ramp
    v_reset_max: float = 2.5          # choice, as the emulator (1.7-1.8 V used)
    v_gate_max: float = 5.0           # the read command's header comment: V_gate 0-5 V

    def __post_init__(self) -> None:
        problems = []
        if self.rows % self.half_rows or self.half_rows < 1:
            problems.append(f"half_rows ({self.half_rows}) must divide rows ({self.rows})")
        if self.enable_bit_order not in ("lsb", "msb"):
            problems.append(f"enable_bit_order must be 'lsb' or 'msb', not {self.enable_bit_order!r}")
        for name in ("command_eol", "reply_eol"):
            if getattr(self, name) not in EOLS.values():
                problems.append(f"{name} must be one of {', '.join(EOLS)}")
        if not 0 <= self.volt_decimals <= 6 or not 0 <= self.vmm_decimals <= 6:
            problems.append("decimals must be in 0..6")
        if not self.tia_gains or any(g <= 0 for g in self.tia_gains):
            problems.append("tia_gains must be positive")
        if self.vmm_max_vectors < 1 or self.vmm_warmup < 0 or self.vmm_repeat < 1:
            problems.append("vmm_max_vectors and vmm_repeat must be >= 1, vmm_warmup >= 0")
        for name in ("sync_reply", "read_done", "set_ack", "reset_ack", "vmm_done"):
            if not getattr(self, name):
                problems.append(f"{name} must not be empty")
        if problems:
            raise ValueError("invalid DPE dialect: " + "; ".join(problems))

    # ------------------------------------------------------------ derived
    @property
    def rows(self) -> int:
        """Row lines: 16 per row board."""
        return 16 * self.row_boards

    @property
    def cols(self) -> int:
        """Column lines: 8 per column board."""
        return 8 * self.col_boards

    @property
    def halves(self) -> int:
        """Blocks of ``half_rows`` rows the commands address (two for 128 rows)."""
        return self.rows // self.half_rows

    @property
    def volt_step(self) -> float:
        """Resolution of amplitudes, gates and read voltages in the text, V (10 mV)."""
        return 10.0 ** -self.volt_decimals

    @property
    def vmm_step(self) -> float:
        """Resolution of VMM inputs in the text, V (0.1 mV)."""
        return 10.0 ** -self.vmm_decimals

    @property
    def adc_max(self) -> int:
        """Largest code the board sends (codes are unsigned)."""
        return 2 * self.adc_offset - 1

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "Dialect":
        """The default dialect with some fields changed (values may be strings, as in an
        address query). Unknown names are the caller's business: pass only this class's."""
        return cls(**convert_fields(cls, options))


def convert_fields(cls: type, options: Mapping[str, Any]) -> dict[str, Any]:
    """Convert option values (strings from an address query, or values) to the types of
    dataclass ``cls``'s fields.

    Raises
    ------
    ValueError
        An unknown field or a value of the wrong type, naming the field.
    """
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name not in known:
            raise ValueError(f"unknown option {name!r}")
        out[name] = _convert(name, hints[name], value)
    return out


def _convert(name: str, hint: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if typing.get_origin(hint) is tuple:
            elem = typing.get_args(hint)[0]
            return tuple(_scalar(elem, t.strip()) for t in text.split(",") if t.strip())
        if name.endswith("_eol"):
            if text.lower() not in EOLS:
                raise ValueError(f"use one of {', '.join(EOLS)}")
            return EOLS[text.lower()]
        return _scalar(hint, text)
    except ValueError as exc:
        raise ValueError(f"option {name}={value!r}: {exc}") from None


def _scalar(tp: Any, text: str) -> Any:
    if tp is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    return text
