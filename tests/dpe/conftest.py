"""Fixtures of the dpe tests: the emulated original firmware served on a real pty."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pytest

import memhw
from memhw.dpe.emulator import DpeEmulator
from memhw.mock.params import make_params
from memhw.peer import PeerServer


@contextmanager
def served(preset: str = "paper", seed: int = 7, **options) -> Iterator[tuple[DpeEmulator, str]]:
    """A :class:`DpeEmulator` on a new pty: (emulator, pty path)."""
    faults = options.pop("faults", None)
    emulator = DpeEmulator(make_params(preset, **options), seed=seed, faults=faults)
    with PeerServer.pty(emulator) as server:
        yield emulator, server.address


@contextmanager
def bridged(preset: str = "paper", seed: int = 7, query: str = "", calibration=None,
            **options) -> Iterator[tuple[memhw.Board, DpeEmulator]]:
    """A Board through the bridge to a served emulator (no limits file; no calibration
    unless asked)."""
    with served(preset, seed, **options) as (emulator, path):
        address = f"dpe://{path}" + (f"?{query}" if query else "")
        with memhw.connect(address, calibration=calibration, limits=None) as board:
            yield board, emulator


@pytest.fixture
def ideal():
    """(board, emulator) on the ideal preset: reads equal the programmed array."""
    with bridged("ideal", 3) as pair:
        yield pair


@pytest.fixture
def paper():
    with bridged("paper", 7) as pair:
        yield pair
