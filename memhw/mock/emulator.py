"""The board emulator: the protocol's :class:`~memhw.peer.Peer` over :class:`~memhw.mock.hardware.MockHardware`.

A :class:`BoardEmulator` is what ``mock://`` connects to in process and what
``memhw mock serve`` puts on a socket or pty. It speaks PROTOCOL.md exactly as a
firmware would (the peer: session, reply cache, watchdog, faults) over a seeded mock chip
and periphery, and counts what it did: protocol events in ``counters`` (the peer's) and
pulses per device and hardware time in ``backend.counters``, so tests can check
exactly-once behaviour and benchmarks can estimate hardware time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import firmware_protocol as fp

from ..faults import FaultSpec
from ..peer import WATCHDOG_DEFAULT, Peer
from .chip import Chip
from .hardware import FIRMWARE_VERSION, MockHardware
from .params import MockParams, make_params
from .periphery import Periphery
from .identity import chip_id, default_serial

__all__ = ["BoardEmulator", "FIRMWARE_VERSION", "WATCHDOG_DEFAULT", "make_hardware", "parse_query"]


def make_hardware(params: MockParams, seed: int, serial: str | None, pace: float,
                  cls: type[MockHardware] = MockHardware) -> MockHardware:
    """The emulated hardware of a seed: chip and periphery drawn from it in a fixed order, so
    every board back end (the Python peer, the C core) gets the same chip for the same seed."""
    rng = np.random.default_rng(seed)
    chip = Chip(params.chip, np.random.default_rng(rng.integers(2**63)))
    periphery = Periphery(params.periphery, params.shape, np.random.default_rng(rng.integers(2**63)))
    return cls(params, chip, periphery, serial or default_serial(params, seed), chip_id(params, seed), pace)


def parse_query(query: dict[str, str]) -> tuple[MockParams, dict[str, Any]]:
    """URL query parameters -> (parameters, keyword arguments of a board): ``preset``,
    ``seed``, ``serial``, ``pace``, ``watchdog``, ``faults``, ``fault_seed`` and any mock
    parameter by name.

    Raises
    ------
    ValueError
        An unknown parameter or a value of the wrong type, with the parameter's name.
    """
    q = dict(query)
    extra: dict[str, Any] = {}
    for name, conv in (("watchdog", float), ("fault_seed", int), ("seed", int), ("pace", float)):
        if name in q:
            text = q.pop(name)
            try:
                extra[name] = conv(text)
            except ValueError:
                kind = "an integer" if conv is int else "a number"
                raise ValueError(f"{name} must be {kind}, got {text!r}") from None
    for name in ("watchdog", "pace"):
        if name in extra and not (extra[name] >= 0 and extra[name] < float("inf")):
            raise ValueError(f"{name} must be a finite number >= 0, got {extra[name]!r}")
    if "faults" in q:
        extra["faults"] = FaultSpec.parse(q.pop("faults"))
    preset = q.pop("preset", "paper")
    extra["serial"] = q.pop("serial", None)
    return make_params(preset, **q), extra


class BoardEmulator(Peer):
    """The emulated measurement board with its chip.

    Parameters
    ----------
    params : MockParams
        Chip, periphery and board parameters (see :mod:`memhw.mock.params`).
    seed : int
        Seeds every random draw of the chip and periphery, so equal seeds and operations
        give equal results.
    serial : str, optional
        Board serial reported by HELLO (default: :func:`~memhw.mock.identity.default_serial`).
    pace : float
        Real seconds spent per second of emulated hardware time (0: as fast as possible;
        1: real time). Lets long operations be watched and aborted.
    watchdog : float
        Seconds of host silence after which DC levels left applied, or a half-received
        chunked request, are grounded / discarded (0: off).
    faults : FaultSpec or str, optional
        Board-side fault injection (see :class:`~memhw.peer.Peer`).
    fault_seed : int
        Seeds the fault decisions (never the chip's random streams).
    minor : int, optional
        Emulate firmware of an older minor protocol version: announce it and answer only
        its messages (``mock://?protocol=2.0``).
    """

    def __init__(self, params: MockParams | None = None, seed: int = 0, serial: str | None = None,
                 pace: float = 0.0, watchdog: float = WATCHDOG_DEFAULT, faults: FaultSpec | str | None = None,
                 fault_seed: int = 0, minor: int | None = None):
        params = params or make_params()
        self.seed = seed
        hardware = make_hardware(params, seed, serial, pace)
        super().__init__(hardware, watchdog=watchdog, faults=faults, fault_seed=fault_seed,
                         max_frame=params.board.max_frame, max_message=params.board.max_message,
                         name=f"mock board {hardware.serial}", minor=minor)

    @classmethod
    def from_query(cls, query: dict[str, str]) -> "BoardEmulator":
        """Build from URL query parameters: ``preset``, ``seed``, ``serial``, ``pace``,
        ``watchdog`` (s), ``faults`` and ``fault_seed`` (board-side fault injection),
        ``protocol`` (``MAJOR.MINOR``: older firmware) and any mock parameter by name
        (``mock://?preset=harsh&seed=4&wire_resistance=0.5``).

        Raises
        ------
        ValueError
            An unknown parameter or a value of the wrong type, with the parameter's name.
        """
        q = dict(query)
        minor = None
        if "protocol" in q:
            text = q.pop("protocol")
            major, _, digits = text.partition(".")
            if major != str(fp.MAJOR) or not digits.isdigit() or int(digits) > fp.MINOR:
                raise ValueError(f"protocol must be {fp.MAJOR}.0 .. {fp.MAJOR}.{fp.MINOR}, got {text!r}")
            minor = int(digits)
        params, extra = parse_query(q)
        return cls(params, minor=minor, **extra)

    # ------------------------------------------------------------ the hardware
    @property
    def hardware(self) -> MockHardware:
        """The emulated hardware (chip, periphery, line levels, limits, hardware counters)."""
        return self.backend  # type: ignore[return-value]

    @property
    def params(self) -> MockParams:
        return self.hardware.params

    @property
    def chip(self) -> Chip:
        return self.hardware.chip

    @property
    def periphery(self) -> Periphery:
        return self.hardware.periphery

    @property
    def serial(self) -> str:
        return self.hardware.serial

    @serial.setter
    def serial(self, value: str) -> None:
        self.hardware.serial = value

    @property
    def levels(self) -> dict[str, np.ndarray]:
        """Present DC level codes per line group (``"ROWS"``, ``"COLS"``, ``"GATES"``)."""
        return self.hardware.levels
