"""In-situ training updates: weight changes become open-loop programming pulses.

Published scheme ("two-pulse", DOMAIN §3): every device remembers the gate voltage of
its last SET; a weight change ΔW becomes a gate change ±ΔW·k/2 on the G+ / G− device
(k ≈ 1.02 V per unit weight = 100 µS per unit weight / 98 µS/V, DOMAIN §1); devices
whose gate goes down are RESET (1.7 V, gate 5 V); then devices are SET (2.5 V) at their
new gate voltage, clipped to the 0.7–1.6 V window. The array is re-read and the
measured conductances are what the next forward and backward passes use.

The published code SET every device on every update; each SET adds write noise (and,
since SET never lowers G, ratchets devices up). :class:`TwoPulseUpdater` reproduces that
with ``threshold=0, pulse_all=True`` and improves on it with ``threshold > 0``: gate
changes accumulate on the host and only devices whose accumulated change exceeds the
threshold are pulsed. ``verify=True`` additionally re-tunes pulsed devices that
landed further than ``tolerance`` from their intended conductance with write-and-verify.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .crossbar import CrossbarBackend
from .mapping import WeightMap

__all__ = ["TwoPulseConfig", "TwoPulseUpdater", "insitu_weight_map"]


@dataclass(frozen=True)
class TwoPulseConfig:
    """Pulse parameters of in-situ updates (DOMAIN §1, §3).

    Attributes
    ----------
    set_slope, set_intercept : float
        Conductance after SET vs gate: ``G ≈ slope·Vg + intercept`` (98 µS/V, 120 µS).
    gate_window : (float, float)
        SET gate voltages used, V (0.7–1.6).
    v_set, v_reset, gate_reset, width : float
        SET amplitude (2.5 V), RESET amplitude (1.7 V) and gate (5 V), pulse width (s).
    threshold : float
        Accumulated |gate change| (V) below which a device is not pulsed; 0 = published.
    pulse_all : bool
        SET every device on every update, as published (only with ``threshold=0``).
    refresh_every : int
        Re-read the arrays after this many updates (1 = every update, as published).
    verify : bool
        Re-tune pulsed devices off by more than ``tolerance`` with write-and-verify.
    tolerance : float
        Siemens, for ``verify``.
    """

    set_slope: float = 98e-6
    set_intercept: float = 120e-6
    gate_window: tuple[float, float] = (0.7, 1.6)
    v_set: float = 2.5
    v_reset: float = 1.7
    gate_reset: float = 5.0
    width: float = 1e-6
    threshold: float = 0.0
    pulse_all: bool = True
    refresh_every: int = 1
    verify: bool = False
    tolerance: float = 4e-6

    def conductance(self, gate: np.ndarray | float) -> np.ndarray:
        """Nominal conductance after a SET at ``gate``."""
        return self.set_slope * np.asarray(gate) + self.set_intercept


def insitu_weight_map(config: TwoPulseConfig = TwoPulseConfig(), scale: float = 100e-6) -> WeightMap:
    """The centred weight map whose conductances span the SET gate window."""
    lo, hi = config.conductance(np.array(config.gate_window))
    return WeightMap(scale=scale, g_base=float(lo), g_max=float(hi), centred=True)


class TwoPulseUpdater:
    """Applies weight changes to a :class:`CrossbarBackend` by open-loop pulses.

    Parameters
    ----------
    backend : CrossbarBackend
        With a centred weight map (e.g. :func:`insitu_weight_map`).
    config : TwoPulseConfig

    Attributes
    ----------
    gates : list of (rows, cols) arrays
        Stored SET gate voltage of every device (NaN where unused).
    pulses : int
        SET + RESET pulses applied so far.
    """

    def __init__(self, backend: CrossbarBackend, config: TwoPulseConfig = TwoPulseConfig()):
        if not backend.weight_map.centred:
            raise ValueError("in-situ updates need a centred weight map (see insitu_weight_map)")
        self.backend = backend
        self.config = config
        self.k = backend.weight_map.scale / config.set_slope  # V of gate per unit of conductance-weight
        self.gates = [np.full(s, np.nan) for s in backend.placement.shapes]
        self._pending = [np.zeros(s) for s in backend.placement.shapes]
        self.pulses = 0
        self.updates = 0

    def initialise(self, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """RESET every used device, SET it at the gate of its initial weight, read back."""
        c = self.config
        g_centre = self.backend.weight_map.centre
        vg_centre = (g_centre - c.set_intercept) / c.set_slope
        targets = self._device_values(weights, lambda w: vg_centre + 0.5 * w * self.k)
        for a, board in enumerate(self.backend.boards):
            used = self.backend.placement.used(a)
            self.gates[a] = np.where(used, np.clip(targets[a], *c.gate_window), np.nan)
            self.pulses += board.pulse_reset(used, v=c.v_reset, gate=c.gate_reset, width=c.width)
            self.pulses += board.pulse_set(used, v=c.v_set, gate=np.nan_to_num(self.gates[a], nan=1.0), width=c.width)
        return self.backend.refresh()

    def _device_values(self, weights: Mapping[str, np.ndarray], fn) -> list[np.ndarray]:
        """Per-device array of fn(+w) on G+ devices and fn(−w) on G− devices."""
        out = [np.full(s, np.nan) for s in self.backend.placement.shapes]
        for t in self.backend.placement.tiles:
            w = np.asarray(weights[t.key])[t.outputs[0]:t.outputs[1], t.inputs[0]:t.inputs[1]].T
            out[t.array][np.ix_(t.rows_plus, t.cols_plus)] = fn(w)
            out[t.array][np.ix_(t.rows_minus, t.cols_minus)] = fn(-w)
        return out

    def apply(self, delta: Mapping[str, np.ndarray]) -> None:
        """Turn weight changes into RESET/SET pulses (the ``updater`` of :func:`~memhw.nn.train.fit`)."""
        c = self.config
        dvg = self._device_values(delta, lambda w: 0.5 * w * self.k)
        for a, board in enumerate(self.backend.boards):
            used = np.isfinite(self.gates[a])
            self._pending[a][used] += dvg[a][used]
            move = used & (np.abs(self._pending[a]) > c.threshold)
            new = np.where(move, np.clip(self.gates[a] + self._pending[a], *c.gate_window), self.gates[a])
            down = move & (new < self.gates[a])
            set_mask = used if (c.pulse_all and c.threshold == 0) else move
            if down.any():
                self.pulses += board.pulse_reset(down, v=c.v_reset, gate=c.gate_reset, width=c.width)
            if set_mask.any():
                self.pulses += board.pulse_set(set_mask, v=c.v_set, gate=np.nan_to_num(new, nan=1.0), width=c.width)
            self._pending[a][move] = 0.0
            self.gates[a] = np.where(used, new, np.nan)
            if c.verify and move.any():
                self._verify(a, move)
        self.updates += 1
        if self.updates % c.refresh_every == 0:
            self.backend.refresh()

    def _verify(self, array: int, pulsed: np.ndarray) -> None:
        from memhw.programming import program

        board = self.backend.boards[array]
        target = self.config.conductance(np.nan_to_num(self.gates[array], nan=1.0))
        measured = board.read_conductance(v_read=self.backend.v_read)
        off = pulsed & (np.abs(measured - target) > self.config.tolerance)
        if off.any():
            program(board, target, tolerance=self.config.tolerance, mask=off)
