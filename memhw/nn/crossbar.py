"""Run a network's matrix products in memristor crossbar arrays.

:class:`CrossbarBackend` is a :class:`~memhw.nn.backend.Backend`: it programs the
mapped conductances (write-and-verify), then computes every ``z @ W.T`` as one
``board.vmm`` call per tile for all rows of ``z`` at once (all sequences of a time
step), converting column currents back to weight units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..board import Board
from .mapping import Placement, WeightMap, to_conductances, to_weights

__all__ = ["CrossbarBackend"]


class CrossbarBackend:
    """Matrix products in the arrays of one or more boards.

    Parameters
    ----------
    boards : Board or sequence of Board
        One per array of ``placement`` (same order).
    placement : Placement
        From :func:`~memhw.nn.mapping.place`.
    weight_map : WeightMap
        Conductance scheme (default: one-sided, 100 µS per unit weight).
    programmer : callable, optional
        ``programmer(board, targets, tolerance=..., mask=...)`` returning an object with
        ``.achieved`` and ``.converged``; default :func:`memhw.programming.program`.
    tolerance : float
        Write-and-verify tolerance, S.
    input_range : float
        |z| that maps to the read voltage: ``v = v_read · z / s`` with
        ``s = max(input_range, max|z_n|)`` per sample ``n`` (so a bias input of 1 drives
        its row at exactly ``v_read`` and nothing exceeds it).
    v_read : float
        Read voltage for VMM inputs and conductance reads (0.2 V, DOMAIN §1; capped by
        the board's limit).
    read_average : int
        Samples averaged per device when reading back conductances.
    """

    def __init__(self, boards: Board | Sequence[Board], placement: Placement, weight_map: WeightMap = WeightMap(),
                 programmer: Callable[..., Any] | None = None, tolerance: float = 2e-6, input_range: float = 1.0,
                 v_read: float = 0.2, read_average: int = 1):
        self.boards = [boards] if isinstance(boards, Board) else list(boards)
        if len(self.boards) != len(placement.shapes):
            raise ValueError(f"placement has {len(placement.shapes)} arrays, got {len(self.boards)} boards")
        for b, s in zip(self.boards, placement.shapes):
            if tuple(b.shape) != tuple(s):
                raise ValueError(f"board {b.address} is {b.shape}, placement expects {s}")
        self.placement = placement
        self.weight_map = weight_map
        self.programmer = programmer
        self.tolerance = float(tolerance)
        self.input_range = float(input_range)
        self.v_read = min(float(v_read), min(b.info.limits.v_read for b in self.boards))
        self.read_average = int(read_average)
        self.conductances: list[np.ndarray] = []
        self.results: list[Any] = []
        self._weights: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------ programming
    def program(self, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Write-and-verify the conductances of ``weights``, then read them back.

        Devices that do not converge (stuck, out of budget) are compensated by
        re-programming their partner device to keep the pair's difference.

        Returns
        -------
        dict key -> (M, K)
            The weights the arrays now hold (from the read-back conductances).
        """
        programmer = self.programmer
        if programmer is None:
            from memhw.programming import program as programmer
        targets = to_conductances(self.placement, weights, self.weight_map, fill=self.weight_map.g_base)
        self.results = []
        for a, (board, target) in enumerate(zip(self.boards, targets)):
            result = programmer(board, target, tolerance=self.tolerance, mask=self.placement.used(a))
            self.results.append(result)
            partners = self._compensation(a, target, result)
            if partners is not None:
                self.results.append(programmer(board, partners[0], tolerance=self.tolerance, mask=partners[1]))
        return self.refresh()

    def _compensation(self, array: int, target: np.ndarray, result: Any) -> tuple[np.ndarray, np.ndarray] | None:
        """New targets for the partners of devices that did not converge (stuck, capped).

        A pair represents ``G+ − G−``, so when one device is off its partner is retargeted
        to keep the difference (within ``[g_base, g_max]``). Returns (targets, mask) or None.
        """
        achieved = np.nan_to_num(np.asarray(result.achieved, float), nan=0.0)
        failed = ~np.asarray(result.converged, bool)
        new = target.copy()
        mask = np.zeros(target.shape, bool)
        for t in self.placement.tiles:
            if t.array != array:
                continue
            p, m = np.ix_(t.rows_plus, t.cols_plus), np.ix_(t.rows_minus, t.cols_minus)
            diff = target[p] - target[m]
            fix_m = failed[p] & ~failed[m]
            fix_p = failed[m] & ~failed[p]
            new[m] = np.where(fix_m, achieved[p] - diff, new[m])
            new[p] = np.where(fix_p, achieved[m] + diff, new[p])
            mask[m] |= fix_m
            mask[p] |= fix_p
        if not mask.any():
            return None
        return np.clip(new, self.weight_map.g_base, self.weight_map.g_max), mask

    def refresh(self) -> dict[str, np.ndarray]:
        """Re-read every array's conductances; update the weights backpropagation uses.

        Only the block of rows the placement uses is read (``conductances`` holds NaN
        elsewhere), averaging ``read_average`` samples per device.
        """
        self.conductances = []
        for a, b in enumerate(self.boards):
            # only the rows any tile uses (a read costs time per row); the rest stay NaN
            rows = np.flatnonzero(self.placement.used(a).any(axis=1))
            g = np.full(b.shape, np.nan)
            if rows.size:
                block = slice(int(rows[0]), int(rows[-1]) + 1)
                g[block] = b.read_conductance(v_read=self.v_read, average=self.read_average, rows=block)
            self.conductances.append(g)
        self._weights = to_weights(self.placement, self.conductances, self.weight_map)
        return {k: w.copy() for k, w in self._weights.items()}

    # ------------------------------------------------------------ Backend
    def weights(self, key: str) -> np.ndarray:
        """The weights measured at the last :meth:`program` / :meth:`refresh`."""
        return self._weights[key]

    def matmul(self, key: str, z: np.ndarray) -> np.ndarray:
        """``z @ W.T`` in the arrays: one ``board.vmm`` per tile for all rows of ``z``."""
        z = np.atleast_2d(np.asarray(z, float))
        M, K = self.placement.layers[key]
        if z.shape[1] != K:
            raise ValueError(f"{key}: input has {z.shape[1]} features, the layer {K}")
        s = np.maximum(self.input_range, np.abs(z).max(axis=1, keepdims=True))
        u = self.v_read * z / s
        y = np.zeros((len(z), M))
        unit = self.v_read * self.weight_map.scale
        for t in self.placement.tiles_of(key):
            board = self.boards[t.array]
            v = np.zeros((len(z), board.shape[0]))
            part = u[:, t.inputs[0]:t.inputs[1]]
            v[:, t.rows_plus] = part
            if t.differential_rows:
                v[:, t.rows_minus] = -part
                current = board.vmm(v)[:, t.cols_plus]
            else:
                i = board.vmm(v)
                current = i[:, t.cols_plus] - i[:, t.cols_minus]
            y[:, t.outputs[0]:t.outputs[1]] += current / unit
        return y * s
