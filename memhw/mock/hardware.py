"""The emulated board's hardware: a :class:`~memhw.peer.Backend` over the mock chip.

:class:`MockHardware` holds what the firmware of a real board would hold: the chip
(:mod:`.chip`) behind its periphery (:mod:`.periphery`), the DC level of every line, the
safety limits in force (in codes), a virtual clock and counters of what it did. Its
message handlers live in small modules, one job each, and are collected in
:data:`HANDLERS`:

=====================  =====================================================
:mod:`.lines`          SET_LEVELS, GROUND_ALL, SET_LIMITS, WAIT, SET_CALIBRATION
:mod:`.measure`        READ_CURRENTS, VMM, READ_MAP, READ_DEVICES (the measurement chain)
:mod:`.pulses`         PULSE_SET, PULSE_RESET, PULSE_DEVICES
:mod:`.onboard`        PROGRAM (the host's tuning planner, run on the board)
:mod:`.selfcal`        READ_REFERENCE, READ_DAC (self-calibration hardware)
:mod:`.tiles`          DEFINE_TILE, VMM_TILE
:mod:`.network`        LOAD_NETWORK, RUN_NETWORK (the recurrence on the board)
=====================  =====================================================

The protocol itself (frames, session, reply cache, dispatch, watchdog, faults) is the
:class:`~memhw.peer.Peer`'s; :class:`~memhw.mock.emulator.BoardEmulator` puts the two
together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import firmware_protocol as fp

from ..conversions import BoardCalibration, LimitCodes, Transfer
from ..info import Limits
from ..peer import HandlerTable, Refused
from .chip import Chip
from .params import MockParams

__all__ = ["MockHardware", "HardwareCounters", "FIRMWARE_VERSION", "HANDLERS"]

FIRMWARE_VERSION = "memhw-emu 2.0"
GROUPS = fp.SCHEMA.enums["LineGroup"]


@dataclass
class HardwareCounters:
    """What the emulated hardware has done since it was made (survives reboots)."""

    pulses: np.ndarray                     # (rows, cols) pulses applied per device
    set_pulses: int = 0
    reset_pulses: int = 0
    busy_time: float = 0.0                 # estimated hardware time, s (the virtual clock)
    per_message_time: dict = field(default_factory=dict)


class MockHardware:
    """Chip, periphery, line levels, limits and clock of an emulated board.

    Parameters
    ----------
    params : MockParams
    chip : Chip
    periphery : Periphery
    serial, chip_id : str
        Reported by HELLO.
    pace : float
        Real seconds spent per second of emulated hardware time (0: as fast as possible).
    """

    def __init__(self, params: MockParams, chip: Chip, periphery: Any, serial: str, chip_id: str = "",
                 pace: float = 0.0):
        self.params = params
        self.chip = chip
        self.periphery = periphery
        self.serial = serial
        self.chip_id = chip_id
        self.pace = float(pace)
        self.rows, self.cols = params.shape
        per, board = params.periphery, params.board
        self.transfer = Transfer(per.dac_line_lsb, per.dac_gate_lsb, per.adc_lsb, per.adc_bits,
                                 tuple(per.tia_gains), per.width_offset, per.width_lsb, per.width_max_code)
        #: the absolute maxima (announced by HELLO) and the limits in force (SET_LIMITS), in codes
        self.abs_limits = LimitCodes.from_limits(
            Limits(board.v_read_max, board.v_set_max, board.v_reset_max, board.v_gate_max,
                   self.transfer.width_min, self.transfer.width_max), self.transfer)
        self.limits = self.abs_limits
        #: the host's calibration (SET_CALIBRATION), nominal until one is sent
        self.calibration = BoardCalibration(self.transfer, self.rows, self.cols)
        #: tiles (DEFINE_TILE) and the loaded network (LOAD_NETWORK): session state
        self.tiles: dict[int, Any] = {}
        self.network: Any = None
        self.counters = HardwareCounters(np.zeros(params.shape, dtype=np.int64))
        self.gate_on_code = int(self.transfer.gate_codes(board.gate_read))
        self._levels = {g: np.zeros(self.cols if g else self.rows, dtype=np.int64) for g in GROUPS.values()}
        # lines not driven by their DAC are switched to ground (exactly 0 V)
        self._driven = {g: np.zeros(self.cols if g else self.rows, dtype=bool) for g in GROUPS.values()}
        self.handlers = HANDLERS

    # ------------------------------------------------------------ Backend
    def identity(self) -> dict[str, Any]:
        per, board = self.params.periphery, self.params.board
        return {
            "firmware": FIRMWARE_VERSION, "serial": self.serial, "chip": self.chip_id, "rows": self.rows,
            "cols": self.cols,
            "dac_bits": per.dac_bits, "adc_bits": per.adc_bits, "dac_line_lsb": per.dac_line_lsb,
            "dac_gate_lsb": per.dac_gate_lsb, "adc_lsb": per.adc_lsb, "tia_gains": np.asarray(per.tia_gains),
            "width_offset": per.width_offset, "width_lsb": per.width_lsb, "width_max_code": per.width_max_code,
            "v_read_max": board.v_read_max, "v_set_max": board.v_set_max, "v_reset_max": board.v_reset_max,
            "v_gate_max": board.v_gate_max, "max_frame": board.max_frame, "max_message": board.max_message,
        }

    def ground(self) -> None:
        """Ground every line. (Floating, GROUND_ALL mode 1, is modelled the same way: a
        floating line carries no current, as a grounded one at 0 V does not.)"""
        for levels in self._levels.values():
            levels[:] = 0
        for driven in self._driven.values():
            driven[:] = False

    def levels_applied(self) -> bool:
        return any(bool(np.any(self._driven[g] & (self._levels[g] != 0))) for g in GROUPS.values())

    def new_session(self) -> None:
        """Forget the session's state: limits, calibration, tiles, network."""
        self.limits = self.abs_limits
        self.calibration = BoardCalibration(self.transfer, self.rows, self.cols)
        self.tiles = {}
        self.network = None

    def rebooted(self) -> None:
        self.ground()
        self.new_session()

    def pulse_count(self) -> int:
        return int(self.counters.pulses.sum())

    # ------------------------------------------------------ shared helpers
    @property
    def levels(self) -> dict[str, np.ndarray]:
        """Present DC level codes per line group (``"ROWS"``, ``"COLS"``, ``"GATES"``)."""
        return {name: self.level_codes(g) for name, g in GROUPS.items()}

    def level_codes(self, group: int) -> np.ndarray:
        """A copy of the DC level codes of line group ``group`` (a ``LineGroup`` value)."""
        return self._levels[group].copy()

    def set_levels(self, group: int, codes: np.ndarray, selected: np.ndarray) -> None:
        """Drive the ``selected`` lines of ``group`` at ``codes`` (already checked)."""
        self._levels[group][:] = codes
        self._driven[group] |= selected

    def row_volts(self, codes: np.ndarray, driven: np.ndarray) -> np.ndarray:
        """Actual row volts for (..., rows) channel codes: the DAC output on ``driven`` rows,
        exactly 0 V on the others (switched to ground)."""
        return np.where(driven, self.periphery.row_volts(np.where(driven, codes, 0)), 0.0)

    def line_volts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Actual volts on rows, columns and gates: DAC output where driven, else 0."""
        per, lv, dr = self.periphery, self._levels, self._driven
        return tuple(np.where(dr[GROUPS[g]], conv(lv[GROUPS[g]]), 0.0)  # type: ignore[return-value]
                     for g, conv in (("ROWS", per.row_volts), ("COLS", per.col_volts), ("GATES", per.gate_volts)))

    def check_rows(self, start: int, count: int) -> None:
        """Refuse a row range outside the array (``LIMIT``)."""
        if start + count > self.rows:
            raise Refused("LIMIT", f"rows {start}..{start + count - 1} outside 0..{self.rows - 1}")

    def tick(self, seconds: float) -> None:
        """Advance the virtual clock (and the chip's relaxation) by ``seconds`` of hardware time."""
        self.counters.busy_time += seconds
        self.chip.advance(seconds)
        if self.pace:
            time.sleep(seconds * self.pace)


def _collect() -> HandlerTable:
    from . import lines, measure, network, onboard, pulses, selfcal, tiles

    table = HandlerTable()
    for module in (lines, measure, pulses, onboard, selfcal, tiles, network):
        for name, fn in module.HANDLERS.items():
            table.register(name)(fn)
    return table


#: every message the emulated board handles (the peer answers HELLO, STATUS, ABORT, BYE)
HANDLERS: HandlerTable = _collect()
