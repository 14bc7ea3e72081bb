"""Shared helpers of the reliability tests."""

from __future__ import annotations

import numpy as np

import memhw
from memhw.cfirmware import CBoard
from memhw.mock.emulator import BoardEmulator

#: the link every soak uses: 1 % drop, corruption and duplication per frame, each direction
SOAK_FAULTS = "drop:0.01,corrupt:0.01,dup:0.01"


def connect(address: str, **kw) -> memhw.Board:
    """A board with short timeouts (fast retries) and no files looked up."""
    kw.setdefault("timeout", 0.05)
    kw.setdefault("retries", 8)
    kw.setdefault("calibration", None)
    kw.setdefault("limits", None)
    return memhw.connect(address, **kw)


def emulator(board: memhw.Board) -> BoardEmulator | CBoard:
    peer = board.link.transport.peer
    assert isinstance(peer, (BoardEmulator, CBoard))
    return peer


def targets(shape: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(20e-6, 150e-6, shape)
