"""The host's side of the original board's text: commands out, strict parsing of replies in.

Pure functions over a :class:`~memhw.dpe.dialect.Dialect`: no I/O. Commands are built
from volts and register values exactly in the driver's formats (``%.2f`` amplitudes,
gates and read voltages, ``%.4f`` VMM inputs, the halves' ``bottom`` flag); replies are
accepted only when every line is exactly what it should be (a 64 x 64 block of unsigned
16-bit codes, a VMM block of the announced size). A malformed reply raises
:class:`MalformedReply` naming what is wrong; it is never "repaired".

The firmware emulator parses the same text with its own code (:mod:`memhw.dpe.firmware`),
so a test of one against the other is a test of both.
"""

from __future__ import annotations

import re

import numpy as np

from .dialect import Dialect

__all__ = ["MalformedReply", "quantise", "sync_line", "read_line", "pulse_lines", "vmm_lines", "enable_bytes",
           "parse_codes", "parse_read_block", "parse_vmm_block", "pulse_ack", "PULSE_KINDS"]

#: (kind, mode) -> dialect field naming the command, and the acknowledgement field
PULSE_KINDS = {("set", "fast"): ("set_fast_command", "set_ack"), ("set", "slow"): ("set_slow_command", "set_ack"),
               ("reset", "fast"): ("reset_fast_command", "reset_ack"),
               ("reset", "slow"): ("reset_slow_command", "reset_ack")}
_CODES = re.compile(r"\d{1,5}(?:,\d{1,5})*")


class MalformedReply(ValueError):
    """A reply that is not exactly what the command set says it is."""


# --------------------------------------------------------------------------- numbers
def quantise(volts: np.ndarray, step: float, limit: float | None = None) -> np.ndarray:
    """Volts on the text grid ``step`` (nearest); where the nearest point lies beyond
    ``limit`` in magnitude, the point next to it towards zero, so rounding never takes a
    level beyond a limit."""
    v = np.asarray(volts, dtype=float)
    q = np.rint(v / step) * step
    if limit is not None:
        q = np.where(np.abs(q) > limit + 1e-12, np.trunc(v / step + np.sign(v) * 1e-9) * step, q)
    return q + 0.0  # no negative zero in the text


def _join(values: np.ndarray, decimals: int) -> str:
    fmt = f"{{:.{decimals}f}}"
    return ",".join(map(fmt.format, (np.asarray(values, dtype=float).ravel() + 0.0).tolist()))


def enable_bytes(enabled: np.ndarray, order: str) -> list[int]:
    """Enable flags (one per line) -> the enable bytes of command 20 (bit k % 8 of byte
    k // 8 for ``"lsb"``, bit 7 - k % 8 for ``"msb"``)."""
    return np.packbits(np.asarray(enabled, bool), bitorder="little" if order == "lsb" else "big").tolist()


# --------------------------------------------------------------------------- commands
def sync_line(d: Dialect) -> str:
    """``1024``: resynchronise (answered ``go``)."""
    return str(d.sync_command)


def read_line(d: Dialect, v_read: float, gain: int, half: int) -> str:
    """Command 10: read one half at ``v_read`` volts (already on the text grid), memhw gain
    index ``gain``."""
    fields = [d.read_command, f"{v_read + 0.0:.{d.volt_decimals}f}", f"{d.read_gate:.{d.volt_decimals}f}",
              gain + d.gain_base, d.read_pulse_width, d.sample_hold_delay, d.convst_delay, d.col_boards,
              d.row_boards, half]
    return ",".join(map(str, fields))


def pulse_lines(d: Dialect, kind: str, mode: str, width: int, half: int, amplitudes: np.ndarray,
                gates: np.ndarray) -> list[str]:
    """Commands 11, 12, 17, 18: header, then the half's amplitudes and gates, row-major,
    ``%.2f`` (0.00 for devices not to be pulsed).

    Parameters
    ----------
    kind : {"set", "reset"}
    mode : {"fast", "slow"}
    width : int
        Width register code (fast modes; slow modes send the driver's value, ignored).
    half : int
        The ``bottom`` flag.
    amplitudes, gates : (half_rows, cols) volts
    """
    command = getattr(d, PULSE_KINDS[(kind, mode)][0])
    if kind == "set":
        header = ([command, d.col_boards, d.row_boards, width, d.set_span, half] if mode == "fast" else
                  [command, d.col_boards, d.row_boards, d.slow_set_width_field, d.slow_set_span, half])
    else:
        header = ([command, d.col_boards, d.row_boards, width, d.reset_col_span, d.reset_row_span, half]
                  if mode == "fast" else [command, d.col_boards, d.row_boards, d.slow_reset_width_field, half])
    shape = (d.half_rows, d.cols)
    if np.shape(amplitudes) != shape or np.shape(gates) != shape:
        raise ValueError(f"amplitudes and gates must be {shape}")
    return [",".join(map(str, header)), _join(amplitudes, d.volt_decimals), _join(gates, d.volt_decimals)]


def pulse_ack(d: Dialect, kind: str) -> str:
    """The acknowledgement a pulse command of ``kind`` gets (swapped: SET -> "Reset")."""
    return d.set_ack if kind == "set" else d.reset_ack


def vmm_lines(d: Dialect, gain: int, gates: np.ndarray, row_enable: np.ndarray, col_enable: np.ndarray,
              vectors: np.ndarray) -> list[str]:
    """Command 20: the header (gain, enable bytes, one gate per column) and one line
    ``,v1,...,v_rows`` per input vector (``%.4f`` volts, already on the text grid)."""
    n = len(vectors)
    header = [d.vmm_command, d.vmm_vol_only, d.vmm_repeat, d.vmm_pulse_width, d.vmm_row_span, d.rows, d.cols,
              gain + d.gain_base, n, *enable_bytes(row_enable, d.enable_bit_order),
              *enable_bytes(col_enable, d.enable_bit_order)]
    head = ",".join(map(str, header)) + "," + _join(gates, d.volt_decimals)
    return [head] + ["," + _join(v, d.vmm_decimals) for v in np.asarray(vectors, dtype=float)]


# --------------------------------------------------------------------------- replies
def parse_codes(line: str, d: Dialect, count: int | None = None) -> np.ndarray:
    """One line of comma-separated unsigned ADC codes -> int64 array.

    Raises
    ------
    MalformedReply
        Anything but 1-5 digit numbers separated by single commas, a code above the
        ADC's range, or (with ``count``) another number of codes.
    """
    if not _CODES.fullmatch(line):
        raise MalformedReply(f"not a line of ADC codes: {line[:60]!r}")
    codes = np.array(line.split(","), dtype=np.int64)
    if count is not None and codes.size != count:
        raise MalformedReply(f"{codes.size} codes on a line, expected {count}")
    if codes.max() > d.adc_max:
        raise MalformedReply(f"ADC code {int(codes.max())} above {d.adc_max}")
    return codes


def parse_read_block(lines: list[str], d: Dialect) -> np.ndarray:
    """The answer to command 10 without its final ``Batch`` line: exactly ``half_rows``
    lines of ``cols`` codes -> (half_rows, cols) int64 codes."""
    if len(lines) != d.half_rows:
        raise MalformedReply(f"read block has {len(lines)} lines, expected {d.half_rows}")
    return np.stack([parse_codes(line, d, d.cols) for line in lines])


def parse_vmm_block(lines: list[str], d: Dialect, n: int) -> np.ndarray:
    """The answer to command 20 without its final ``end`` line: ``n`` x ``cols`` codes over
    any number of lines (the driver concatenated them) -> (n, cols) int64 codes."""
    parts = [parse_codes(line, d) for line in lines]
    codes = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    if codes.size != n * d.cols:
        raise MalformedReply(f"VMM answer has {codes.size} codes, expected {n} x {d.cols}")
    return codes.reshape(n, d.cols)
