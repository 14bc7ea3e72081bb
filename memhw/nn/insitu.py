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

memhw's improved variant is :class:`MixedPrecisionUpdater`: a host-side float
accumulator of the weights, and per update one closed-loop round (partial RESET or
gate-limited SET, from learned response curves) on only the differential pairs whose
measured difference is off by more than a device-resolution threshold; the periodic
re-read is the verify read. See docs/lstm.md "In-situ training".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .crossbar import CrossbarBackend
from .mapping import WeightMap

__all__ = ["MixedPrecisionConfig", "MixedPrecisionUpdater", "TwoPulseConfig", "TwoPulseUpdater", "insitu_weight_map"]


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
        if not isinstance(backend.weight_map, WeightMap) or not backend.weight_map.centred:
            raise ValueError("in-situ updates need one centred weight map (see insitu_weight_map)")
        self.backend = backend
        self.config = config
        self.k = backend.weight_map.scale / config.set_slope  # V of gate per unit of conductance-weight
        shapes = [b.shape for b in backend.boards]
        self.gates = [np.full(s, np.nan) for s in shapes]
        self._pending = [np.zeros(s) for s in shapes]
        self.pulses = 0
        self.updates = 0

    def initialise(self, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """RESET every used device, SET it at the gate of its initial weight, read back."""
        c = self.config
        if self.backend.placement is None:
            self.backend.prepare(weights)
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


# =====================================================================================
# Improved variant: mixed-precision accumulation + interleaved closed-loop updates
# =====================================================================================


@dataclass(frozen=True)
class MixedPrecisionConfig:
    """Parameters of :class:`MixedPrecisionUpdater` (SI units).

    Attributes
    ----------
    threshold : float
        Pair-difference error (S) below which a weight is left alone: the device
        resolution of one update (2 µS = 0.02 weight units at 100 µS per unit, about
        half a SET's write noise, DOMAIN §1).
    g_floor : float
        Lowest conductance a RESET aims at (S); below it a weight change goes to the
        partner device by SET instead.
    set_overshoot : float
        A SET aims this far (S) beyond the desired conductance, so that it mostly lands
        high, where a gentle RESET (smaller write noise) finishes on a later update.
    v_set, width, gate_range : float, float, (float, float)
        SET amplitude (2.5 V, DOMAIN §1), pulse width (s), gates used (V).
    reset_gate, reset_range : float, (float, float)
        RESET gate (5 V) and amplitude range (V) of the partial RESETs (0.3–1.5 V, DOMAIN §1).
    give_up : int
        Pulses without any measurable change after which a device is treated as stuck
        (its partner then carries the whole weight).
    refresh_every : int
        Re-read (= verify) after this many updates; 1 = every update.
    """

    threshold: float = 2e-6
    g_floor: float = 8e-6
    set_overshoot: float = 1.5e-6
    v_set: float = 2.5
    width: float = 1e-6
    gate_range: tuple[float, float] = (0.4, 1.8)
    reset_gate: float = 5.0
    reset_range: tuple[float, float] = (0.3, 1.5)
    give_up: int = 6
    refresh_every: int = 1


class MixedPrecisionUpdater:
    """In-situ updates by mixed-precision accumulation and interleaved write-and-verify.

    The host keeps a float copy of the weights, ``W_host``, which accumulates every
    optimiser step ΔW (the high-precision accumulator of "mixed-precision" in-memory
    training). The array's weights are *measured* (the periodic re-read the backward
    pass uses anyway). Every update, each differential pair whose measured difference
    ``G+ − G−`` is further than ``threshold`` from ``W_host·scale`` gets one pulse:

    * the difference must fall: RESET the higher side (G+) by the missing amount if it
      stays above ``g_floor``, otherwise SET the other side (G−) up;
    * the difference must rise: likewise with the roles swapped.

    RESETs are partial (amplitude from a learned chip-wide removed-fraction curve) and
    gentle, so most corrections have the small write noise of a gentle RESET; SETs use
    the gate (compliance) from a learned chip-wide gate → conductance curve times a
    learned per-device gain, aiming slightly high. The next re-read is the verify read:
    whatever a pulse missed by is simply the next update's error, so each training step
    is one round of a write-and-verify loop that tracks a slowly moving target.
    Pairs within ``threshold`` get no pulse at all. Devices that never respond are
    given up and their partner carries the weight.

    Needs a one-sided (or any non-centred) :class:`~memhw.nn.mapping.WeightMap`: the
    low-conductance side of every pair sits near ``g_floor``, which keeps read noise
    (∝ G) and IR drop small.

    Parameters
    ----------
    backend : CrossbarBackend
    config : MixedPrecisionConfig

    Attributes
    ----------
    host : dict key -> array
        The high-precision weights the array tracks.
    pulses, set_pulses, reset_pulses, updates : int
    """

    def __init__(self, backend: CrossbarBackend, config: MixedPrecisionConfig = MixedPrecisionConfig()):
        from memhw.algorithms.response import MonotoneCurve

        self.backend = backend
        self.config = config
        self.host: dict[str, np.ndarray] = {}
        self.pulses = self.set_pulses = self.reset_pulses = 0
        self.updates = 0
        c = config
        grid = np.arange(c.gate_range[0], c.gate_range[1] + 1e-9, 0.02)
        # DOMAIN §1: G ≈ 98 µS/V·Vg + 120 µS in 0.7–1.6 V, falling to ~0 at the transistor
        # threshold (~0.4 V, §2.1): the prior of the chip-wide SET curve
        prior = np.where(grid >= 0.7, 98e-6 * grid + 120e-6, (98e-6 * 0.7 + 120e-6) * (grid - 0.4) / 0.3)
        self.set_curve = MonotoneCurve(grid, np.maximum(prior, 0.0))
        rgrid = np.arange(0.0, 1.9 + 1e-9, 0.025)
        # DOMAIN §1: ~full RESET at 1.7 V, partial steps for 0.3–1.5 V
        self.reset_curve = MonotoneCurve(rgrid, 1.0 - np.exp(-np.exp((rgrid - 1.2) / 0.2)))
        if not isinstance(backend.weight_map, WeightMap) or backend.weight_map.centred:
            raise ValueError("mixed-precision updates need one non-centred weight map")
        shapes = [b.shape for b in backend.boards]
        self.gain = [np.ones(s) for s in shapes]          # per-device SET gain k (G_cc = k·f(Vg))
        self.silent = [np.zeros(s, np.int16) for s in shapes]  # pulses in a row without a change
        self._last: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None = None

    # ------------------------------------------------------------------ setup
    def initialise(self, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Write-and-verify the initial weights; they become the host accumulator."""
        self.host = {k: np.array(w, float) for k, w in weights.items()}
        measured = self.backend.program(self.host)  # refuses weights beyond the map's range
        if self.backend.health is not None:  # known-stuck devices are dead from the start
            for a, h in enumerate(self.backend.health):
                self.silent[a][h.stuck] = self.config.give_up
        return measured

    @property
    def dead(self) -> list[np.ndarray]:
        """Devices treated as stuck (no measurable response to ``give_up`` pulses)."""
        return [s >= self.config.give_up for s in self.silent]

    # ------------------------------------------------------------------ updates
    def apply(self, delta: Mapping[str, np.ndarray]) -> None:
        """Accumulate ΔW on the host; pulse the pairs that are off (``updater`` of ``fit``)."""
        w_max = self.backend.weight_map.w_max
        for k, d in delta.items():
            np.clip(self.host[k] + d, -w_max, w_max, out=self.host[k])
        self.updates += 1
        if self.updates % self.config.refresh_every:
            return
        self._pulse()
        self.backend.refresh()
        self._learn()

    def _pulse(self) -> None:
        c = self.config
        cb = self.backend
        scale = cb.weight_map.scale
        self._last = []
        g_all = cb.conductances
        dead = self.dead
        for a, board in enumerate(cb.boards):
            g = g_all[a]
            set_mask = np.zeros(g.shape, bool)
            set_aim = np.zeros(g.shape)
            reset_mask = np.zeros(g.shape, bool)
            reset_want = np.zeros(g.shape)
            for t in cb.placement.tiles:
                if t.array != a:
                    continue
                ip, im = np.ix_(t.rows_plus, t.cols_plus), np.ix_(t.rows_minus, t.cols_minus)
                gp, gm = g[ip], g[im]
                want = self.host[t.key][t.outputs[0]:t.outputs[1], t.inputs[0]:t.inputs[1]].T * scale
                err = (gp - gm) + cb.repair_offset(t) - want  # > 0: difference too high
                off = np.abs(err) > c.threshold
                need = np.abs(err)
                # "hi" = the device whose decrease helps, "lo" = the one whose increase helps
                hi_is_p = err > 0
                g_hi, g_lo = np.where(hi_is_p, gp, gm), np.where(hi_is_p, gm, gp)
                dead_p, dead_m = dead[a][ip], dead[a][im]
                hi_dead, lo_dead = np.where(hi_is_p, dead_p, dead_m), np.where(hi_is_p, dead_m, dead_p)
                by_reset = off & ~hi_dead & ((g_hi - need >= c.g_floor) | lo_dead)
                by_set = off & ~by_reset & ~lo_dead
                # RESET the high side: plan fractions on both devices, then pick
                frac = np.clip(need / np.maximum(g_hi, 1e-9), 0.0, 0.95)
                aim = g_lo + need + c.set_overshoot
                for sel_p, idx in ((True, ip), (False, im)):
                    on_hi = hi_is_p if sel_p else ~hi_is_p
                    r = by_reset & on_hi
                    s = by_set & ~on_hi
                    reset_mask[idx] |= r
                    reset_want[idx] = np.where(r, frac, reset_want[idx])
                    set_mask[idx] |= s
                    set_aim[idx] = np.where(s, aim, set_aim[idx])
            gate = np.clip(self.set_curve.inverse(set_aim / self.gain[a]), *c.gate_range)
            amp = np.clip(self.reset_curve.inverse(reset_want), *c.reset_range)
            if set_mask.any():
                self.set_pulses += board.pulse_set(set_mask, v=c.v_set, gate=gate, width=c.width)
            if reset_mask.any():
                self.reset_pulses += board.pulse_reset(reset_mask, v=amp, gate=c.reset_gate, width=c.width)
            self._last.append((g.copy(), set_mask, gate, reset_mask, amp))
        self.pulses = self.set_pulses + self.reset_pulses

    def _learn(self) -> None:
        """Update the SET / RESET response curves and per-device gains from the verify read."""
        if not self._last:
            return
        avg = max(1, self.backend.read_average)
        for a, (g0, set_mask, gate, reset_mask, amp) in enumerate(self._last):
            g = self.backend.conductances[a]
            # a change is real beyond ~3 read-noise sigmas (1 % of G per read, DOMAIN §2.4)
            sig = 3 * (0.01 * np.maximum(g, g0) / np.sqrt(avg)) + 0.3e-6
            moved = np.abs(g - g0) > sig
            pulsed = set_mask | reset_mask
            self.silent[a] = np.where(pulsed & moved, 0, self.silent[a] + (pulsed & ~moved))
            rose = set_mask & (g > g0 + sig)
            if rose.any():
                f = np.maximum(self.set_curve(gate[rose]), 1e-7)
                k = np.clip(g[rose] / f, 0.5, 2.0)
                self.gain[a][rose] = 0.6 * self.gain[a][rose] + 0.4 * k
                self.set_curve.observe(gate[rose], g[rose] / self.gain[a][rose])
            short = set_mask & ~rose
            if short.any():
                # the compliance stayed below the device: its gain is lower than assumed
                f = np.maximum(self.set_curve(gate[short]), 1e-7)
                self.gain[a][short] = np.clip(np.minimum(self.gain[a][short], 0.98 * g0[short] / f), 0.5, 2.0)
            r = reset_mask & (g0 > 1e-6)
            if r.any():
                frac = np.clip(1.0 - g[r] / g0[r], 0.0, 1.0)
                self.reset_curve.observe(amp[r], frac)
