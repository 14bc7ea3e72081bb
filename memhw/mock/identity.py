"""Who an emulated board and its chip are: serial numbers and chip ids.

Two emulated boards are the same board exactly when their geometry, periphery
parameters and seed are the same (the periphery errors are drawn from the seed), so a
calibration file made for one is never applied to another; the same holds for chips and
their parameters.
"""

from __future__ import annotations

import dataclasses
import secrets
import zlib

from .params import PRESETS, MockParams

__all__ = ["default_serial", "chip_id"]


def _board_key(params: MockParams) -> tuple:
    """Everything that makes a board physically what it is: geometry and periphery."""
    return (params.shape, dataclasses.astuple(params.periphery))


def default_serial(params: MockParams, seed: int) -> str:
    """Serial number of an emulated board when none is given.

    The periphery errors are drawn from the seed, so a board with another seed (or other
    periphery parameters or geometry, e.g. another preset) is another physical board and
    must not share a serial, or a calibration file made for one would be applied to the
    other. The default board (paper periphery, seed 0) is ``params.board.serial``
    (MEMHW-EMU-0001); a paper-periphery board with seed s is ``MEMHW-EMU-S<s>``; any other
    periphery adds a hash of its parameters: ``MEMHW-EMU-S<s>-<crc32 hex>``. Every field of
    :class:`~memhw.mock.params.PeripheryParams` takes part, so a new periphery field can
    never make two different boards share a serial.
    """
    paper = PRESETS["paper"]
    if params.board.serial != paper.board.serial:  # set explicitly in the parameters
        return params.board.serial
    key = _board_key(params)
    if key == _board_key(paper):
        return params.board.serial if seed == 0 else f"MEMHW-EMU-S{seed}"
    return f"MEMHW-EMU-S{seed}-{zlib.crc32(repr(key).encode()):08X}"


def chip_id(params: MockParams, seed: int) -> str:
    """The emulated chip's id (HELLO ``chip``): a hash of its parameters and seed, and a
    random tag of this instance. Two emulators made alike hold alike chips, but not the
    same chip: what one was programmed to, the other does not hold, so a session file can
    tell that a run is about to be resumed on another (e.g. a fresh in-process) chip."""
    key = repr((dataclasses.astuple(params.chip), seed)).encode()
    return f"MOCK-CHIP-{zlib.crc32(key):08X}-{secrets.randbits(24):06X}"
