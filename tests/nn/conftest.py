"""Fixtures of the nn tests: ideal emulated boards and an open-loop test programmer."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.optimize import brentq

import memhw
from memhw.mock.chip import compliance_conductance
from memhw.mock.params import make_params

IDEAL = make_params("ideal")


def _gate_for(g: float) -> float:
    """Gate voltage whose complete SET reaches ``g`` on a nominal ideal-preset device."""
    return brentq(lambda vg: float(compliance_conductance(vg, IDEAL.chip)) - g, IDEAL.chip.transistor_vth + 1e-6, 3.0)


def ideal_program(board: memhw.Board, targets: np.ndarray, tolerance: float = 2e-6,
                  mask: np.ndarray | None = None) -> SimpleNamespace:
    """Stand-in for ``memhw.programming.program`` on the ideal preset only:
    full RESET, then one SET at the gate that reaches the target (no verify loop)."""
    mask = np.ones(board.shape, bool) if mask is None else mask
    for _ in range(3):
        board.pulse_reset(mask, v=1.7, gate=5.0, width=4e-6)
    gates = np.vectorize(_gate_for)(np.where(mask, targets, 50e-6))
    board.pulse_set(mask, v=2.5, gate=gates, width=1e-6)
    achieved = board.read_conductance()
    return SimpleNamespace(achieved=achieved, converged=mask & (np.abs(achieved - targets) <= tolerance))


@pytest.fixture(autouse=True)
def health_dir(tmp_path, monkeypatch):
    """Device-health maps of these tests go to a temporary folder (never the repository)."""
    path = tmp_path / "health"
    monkeypatch.setenv("MEMHW_HEALTH_DIR", str(path))
    return path


@pytest.fixture
def ideal_boards():
    """A factory of ideal boards (closed at the end of the test)."""
    opened = []

    def make(seed: int = 1) -> memhw.Board:
        b = memhw.connect(f"mock://?preset=ideal&seed={seed}")
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()
