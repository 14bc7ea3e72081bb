"""The original board's firmware, emulated: its command interpreter over the mock hardware.

:class:`Firmware` reads command lines as the 2017 firmware is assumed to (comma-separated
numbers, one command per line, pulse and VMM data on the following lines; docs/dpe.md
"Assumptions") and answers with lines in the dialect's formats, driving the same chip,
periphery and virtual clock as ``mock://`` (a :class:`~memhw.mock.hardware.MockHardware`):
pulses through :func:`memhw.mock.pulses.apply_rows`, conversions through the periphery.

This is deliberately a second, independent reading of the command set: it parses with
its own code (not :mod:`memhw.dpe.codec`), so the bridge's tests against it test both.

Behaviour chosen where the record is silent (each is a row of docs/dpe.md):

* ``1024`` at any time abandons a half-received multi-line command and answers ``go``;
* a command line that does not parse, or has the wrong number of fields, is ignored
  (no answer); a data line that does not parse abandons its command (nothing applied);
* amplitude 0.00 means "not pulsed"; amplitudes are clipped to the command's DAC span
  and to the DAC's rails; slow SET/RESET pulse for the dialect's slow widths;
* pulses are applied row by row over the half, every pulsed column of a row at once;
* lines are grounded between commands; command 4 reads a column board at that state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..mock.hardware import MockHardware
from ..mock.pulses import apply_rows
from .dialect import Dialect

__all__ = ["Firmware", "FirmwareCounters"]


@dataclass
class FirmwareCounters:
    """What the emulated firmware saw (instrumentation)."""

    commands: dict = field(default_factory=dict)   # command number -> executed
    ignored: int = 0       # command lines that did not parse
    abandoned: int = 0     # multi-line commands given up (bad data line or 1024)


class _NoStop:
    """The old firmware cannot be interrupted in the middle of a command."""

    @staticmethod
    def should_stop() -> bool:
        return False

    @staticmethod
    def step_done(steps: int) -> None:
        return None


@dataclass
class _Pending:
    """A command waiting for its data lines."""

    command: int
    fields: list[float]
    needed: int
    data: list[np.ndarray] = field(default_factory=list)


def _numbers(text: str) -> list[float] | None:
    """Comma-separated numbers, or None if any field is not one."""
    try:
        return [float(t) for t in text.split(",")]
    except ValueError:
        return None


class Firmware:
    """The command interpreter of the original board over emulated hardware.

    Parameters
    ----------
    hw : MockHardware
        Chip, periphery, counters and virtual clock (its protocol-level state is unused).
    dialect : Dialect
    """

    def __init__(self, hw: MockHardware, dialect: Dialect):
        self.hw = hw
        self.d = dialect
        self.counters = FirmwareCounters()
        self._pending: _Pending | None = None
        d = dialect
        self._headers = {d.read_command: 10, d.reset_fast_command: 7, d.set_fast_command: 6,
                         d.set_slow_command: 6, d.reset_slow_command: 5, 4: 2}

    # ------------------------------------------------------------------ lines
    def feed(self, line: str) -> list[str]:
        """One received line (without its line ending) -> the lines to answer."""
        text = line.strip()
        if text == str(self.d.sync_command):
            if self._pending is not None:
                self._pending = None
                self.counters.abandoned += 1
            return self._done(self.d.sync_command, [self.d.sync_reply])
        if self._pending is not None:
            return self._data(text)
        values = _numbers(text)
        if not values or not values[0].is_integer():
            self.counters.ignored += 1
            return []
        command = int(values[0])
        if command == self.d.vmm_command:
            return self._vmm_header(values)
        if self._headers.get(command) != len(values):
            self.counters.ignored += 1
            return []
        if command == self.d.read_command:
            return self._done(command, self._read(values))
        if command == 4:
            return self._done(command, self._board_read(int(values[1])))
        if values[1] != self.d.col_boards or values[2] != self.d.row_boards or values[-1] not in (0, 1):
            self.counters.ignored += 1
            return []
        self._pending = _Pending(command, values, needed=2)  # amplitudes, then gates
        return []

    def _done(self, command: int, reply: list[str]) -> list[str]:
        self.counters.commands[command] = self.counters.commands.get(command, 0) + 1
        return reply

    def _data(self, text: str) -> list[str]:
        p, d = self._pending, self.d
        assert p is not None
        if p.command == d.vmm_command:
            values = _numbers(text[1:]) if text.startswith(",") else None
            expected = int(p.fields[5])
        else:
            values = _numbers(text)
            expected = d.half_rows * d.cols
        if values is None or len(values) != expected:
            self._pending = None
            self.counters.abandoned += 1
            return []
        p.data.append(np.asarray(values))
        if len(p.data) < p.needed:
            return []
        self._pending = None
        if p.command == d.vmm_command:
            return self._done(p.command, self._vmm(p))
        return self._done(p.command, self._pulse(p))

    # ------------------------------------------------------------------ hardware
    def _adc(self, currents: np.ndarray, gain: int) -> np.ndarray:
        """Currents (n, cols) -> the board's unsigned codes at 1-based wire gain ``gain``."""
        per = self.hw.periphery
        g = int(np.clip(gain - self.d.gain_base, 0, len(per.tia_gains) - 1))
        return per.adc_codes(currents, np.full(currents.shape[-1], g)).astype(np.int64) + self.d.adc_offset

    def _line_code(self, volts: np.ndarray, span: float) -> np.ndarray:
        return self.hw.periphery.nominal_volts_to_line_code(np.clip(volts, 0.0, span))

    def _convert(self, rows_v: np.ndarray, gates_v: np.ndarray, gain: int, cols_on: np.ndarray | None = None
                 ) -> np.ndarray:
        """Drive (n, rows) volts, columns at virtual ground, convert every column once per
        vector (a disabled column's TIA sees no current)."""
        hw = self.hw
        currents = hw.chip.currents(rows_v, None, gates_v)
        if cols_on is not None:
            currents = np.where(cols_on, currents, 0.0)
        codes = self._adc(currents, gain)
        hw.tick(len(rows_v) * hw.params.board.sample_time)
        return codes

    def _read(self, f: list[float]) -> list[str]:
        """Command 10: every row of the half in turn at V_read (others grounded)."""
        hw, d = self.hw, self.d
        half = int(f[-1]) % d.halves
        rows = half * d.half_rows + np.arange(d.half_rows)
        codes = np.zeros(hw.rows, np.int64)
        codes[rows] = self._line_code(np.asarray(f[1]), 5.0)
        volts = np.zeros((d.half_rows, hw.rows))
        volts[np.arange(d.half_rows), rows] = hw.periphery.row_volts(codes)[rows]
        gates = hw.periphery.gate_volts(hw.periphery.nominal_volts_to_gate_code(np.full(hw.cols, min(f[2], 5.0))))
        out = self._convert(volts, gates, int(f[3]))
        return [",".join(map(str, row)) for row in out.tolist()] + [d.read_done]

    def _board_read(self, board: int) -> list[str]:
        """Command 4: the 8 columns of one column board, lines grounded."""
        hw = self.hw
        out = self._convert(np.zeros((1, hw.rows)), np.zeros(hw.cols), self.d.gain_base)[0]
        b = board % self.d.col_boards
        return [",".join(map(str, out[8 * b : 8 * b + 8].tolist()))]

    def _pulse(self, p: _Pending) -> list[str]:
        """Commands 11, 12, 17, 18: each row of the half, pulsed columns at once."""
        hw, d = self.hw, self.d
        kind = "set" if p.command in (d.set_fast_command, d.set_slow_command) else "reset"
        slow = p.command in (d.set_slow_command, d.reset_slow_command)
        # the DAC span field: COL_DAC_BATCH_SPAN of SET, ROW_DAC_BATCH_SPAN of fast RESET; none in 18
        span = p.fields[4] if kind == "set" else (p.fields[5] if not slow else 5.0)
        half = int(p.fields[-1])
        amps = self._line_code(p.data[0].reshape(d.half_rows, d.cols), span if span in (5, 10) else 5.0)
        gates = hw.periphery.nominal_volts_to_gate_code(np.clip(p.data[1], 0.0, 5.0)).reshape(d.half_rows, d.cols)
        t = hw.transfer
        if slow:
            seconds = d.slow_set_width if kind == "set" else d.slow_reset_width
            width = int(np.rint((seconds - t.width_offset) / t.width_lsb))
        else:
            width = int(np.clip(p.fields[3], 0, d.width_max_code))
        mask = amps > 0
        apply_rows(hw, kind, half * d.half_rows, mask, amps, gates, np.full(mask.shape, width), _NoStop())
        return [d.set_ack if kind == "set" else d.reset_ack]

    def _vmm_header(self, f: list[float]) -> list[str]:
        d = self.d
        if len(f) < 2 or f[1] != 0 or len(f) != 9 + 16 + 8 + self.hw.cols:  # Vol_Only != 0: unknown, ignored
            self.counters.ignored += 1
            return []
        if not (0 < f[5] <= self.hw.rows and 0 < f[6] <= self.hw.cols and f[8] >= 1 and f[2] >= 1):
            self.counters.ignored += 1
            return []
        self._pending = _Pending(d.vmm_command, f, needed=int(f[8]))
        return []

    def _enabled(self, values: list[float], n: int) -> np.ndarray:
        order = "little" if self.d.enable_bit_order == "lsb" else "big"
        packed = np.asarray(values, dtype=np.int64).clip(0, 255).astype(np.uint8)
        return np.unpackbits(packed, bitorder=order)[:n].astype(bool)

    def _vmm(self, p: _Pending) -> list[str]:
        """Command 20: each input vector on the rows, every column converted."""
        hw, d, f = self.hw, self.d, p.fields
        total_rows, total_cols = int(f[5]), int(f[6])
        rows_on = self._enabled(f[9:25], hw.rows)
        cols_on = self._enabled(f[25:33], hw.cols)
        gates = hw.periphery.gate_volts(hw.periphery.nominal_volts_to_gate_code(np.clip(f[33:], 0.0, 5.0)))
        vectors = np.zeros((len(p.data), hw.rows))
        vectors[:, :total_rows] = np.stack(p.data)
        span = f[4] if f[4] in (5, 10) else 5.0
        codes = hw.periphery.nominal_volts_to_line_code(np.clip(vectors, -span, span))
        volts = np.where(rows_on, hw.periphery.row_volts(codes), 0.0)
        reply: list[str] = []
        for _ in range(int(f[2])):  # Repeat: the whole batch again
            out = self._convert(volts, gates, int(f[7]), cols_on)
            reply += [",".join(map(str, row[:total_cols])) for row in out.tolist()] + [d.vmm_done]
        return reply
