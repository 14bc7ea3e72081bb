"""Write-and-verify tuning loops as pure planners (no I/O).

A tuner is told the conductances measured after each round and answers with
the next round's pulses (a :class:`Plan`): which devices get a SET and at
which gate, which get a RESET and at which amplitude. The host procedure
(:func:`memhw.programming.program`) and the emulated firmware's on-board
variant drive the same planners, so both give statistically equivalent
results.

Two planners:

:class:`AdaptiveTuner` (memhw's)
    Learns the chip-wide gate -> conductance curve of SET and the amplitude ->
    removed-fraction curve of RESET from every pulse's outcome (monotone
    curves, :mod:`.response`), plus a per-device voltage offset from each
    device's own history. SET aims just above the target through the gate
    (compliance), then gentle partial RESETs, whose write noise is smaller,
    finish from above. Devices that do not respond, or cannot reach their
    target at the voltage limits, are given up with a reason.
:class:`BaselineTuner` (published)
    DOMAIN.md "Closed-loop tuning": SET amplitude ramps 1 -> 3.5 V in 1 V
    steps, overflowing into gate steps 0.5 -> 1.4 V by 0.05 V; RESET amplitude
    ramps 0.3 -> 1.5 V by 0.05 V at gate 5 V; a device is given up after 5 ramp
    exhaustions or when 200 steps are spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from firmware_protocol import SCHEMA

from . import set_curve
from .response import MonotoneCurve

_R = SCHEMA.enums["TuningReason"]

__all__ = ["Plan", "Reason", "REASONS", "TuningConfig", "AdaptiveTuner", "BaselineTuner", "TUNERS", "noise_sample",
           "to_verify", "run_tuning", "estimate_read_sigma", "verify_average", "verify_gain", "G_DEVICE_MAX"]


class Reason:
    """Per-device outcome codes (``ProgramResult.reasons``); the values are the
    protocol's ``TuningReason`` enum, so on-board runs report the same codes."""

    PENDING = _R["PENDING"]
    CONVERGED = _R["CONVERGED"]
    STUCK = _R["STUCK"]                    # never responded to any pulse
    TOO_HIGH = _R["TARGET_TOO_HIGH"]            # stays below target at the largest gate
    TOO_LOW = _R["TARGET_TOO_LOW"]              # stays above target at the largest RESET amplitude
    PULSE_CAP = _R["PULSE_CAP"]            # spent its pulse budget
    ROUND_CAP = _R["ROUND_CAP"]            # the run hit its round limit first
    NOT_SELECTED = _R["NOT_SELECTED"]      # outside the mask
    RAMP_EXHAUSTED = _R["RAMP_EXHAUSTED"]  # baseline: gave up after its ramp retries


#: human-readable name of each reason code
REASONS = {code: name.lower().replace("_", " ") for name, code in _R.items()}


class Plan(NamedTuple):
    """One round of pulses; arrays are (rows, cols), values matter where masked."""

    set_mask: np.ndarray
    set_v: np.ndarray
    set_gate: np.ndarray
    set_width: float
    reset_mask: np.ndarray
    reset_v: np.ndarray
    reset_gate: float
    reset_width: np.ndarray

    @property
    def pulses(self) -> int:
        return int(self.set_mask.sum() + self.reset_mask.sum())


@dataclass(frozen=True)
class TuningConfig:
    """Voltages, widths and budgets of a tuning run (SI units).

    Defaults follow DOMAIN.md §1: SET 2.5 V on the column, gate window
    0.4-1.8 V; RESET 0.3-1.8 V on the row at gate 5 V.
    """

    tolerance: float = 2e-6
    set_v: float = 2.5
    set_width: float = 1e-6
    gate_min: float = 0.4
    gate_max: float = 1.8
    reset_v_min: float = 0.3
    reset_v_max: float = 1.8
    reset_gate: float = 5.0
    reset_width: float = 1e-6
    #: shortest RESET width, for steps gentler than reset_v_min allows (board minimum, DOMAIN §1: ~160 ns)
    reset_width_min: float = 160e-9
    max_pulses: int = 60
    max_rounds: int = 60
    #: stop when the number of pending devices has not improved for this many rounds
    patience: int = 12
    #: write noise of a SET event assumed before any is measured (DOMAIN §1: 4 uS)
    set_noise_prior: float = 4e-6
    #: times a converged device may fall out of tolerance and be re-tuned
    reopen: int = 3


def prior_gates(gate_prior: tuple[np.ndarray, np.ndarray], aim: np.ndarray) -> np.ndarray:
    """Gate at which a measured gate -> conductance prior reaches ``aim`` per device.

    ``gate_prior`` is (gates (n,), conductances (n,) or (n, cols)); a per-column
    prior is inverted column by column.
    """
    gates, g = gate_prior
    g = np.maximum.accumulate(np.asarray(g, float), axis=0)
    g = g + np.arange(len(gates)).reshape((-1,) + (1,) * (g.ndim - 1)) * 1e-12  # strictly increasing
    if g.ndim == 1:
        return np.interp(aim, g, gates)
    out = np.empty_like(aim, dtype=float)
    for j in range(aim.shape[1]):
        out[:, j] = np.interp(aim[:, j], g[:, j], gates)
    return out


class _TunerBase:
    """Bookkeeping shared by the planners."""

    def __init__(self, targets: np.ndarray, mask: np.ndarray, config: TuningConfig, sigma_meas: np.ndarray | float):
        self.cfg = config
        self.targets = np.asarray(targets, dtype=float)
        self.mask = np.asarray(mask, dtype=bool)
        shape = self.targets.shape
        self.reasons = np.where(self.mask, Reason.PENDING, Reason.NOT_SELECTED).astype(np.int8)
        self.set_pulses = np.zeros(shape, np.int32)
        self.reset_pulses = np.zeros(shape, np.int32)
        self.sigma_meas = np.broadcast_to(np.asarray(sigma_meas, float), shape)
        self.rounds = 0
        self._reopened = np.zeros(shape, np.int8)
        self._confirmed = np.zeros(shape, bool)  # settled devices a confirmation read has seen since
        self._pulsed = np.zeros(shape, bool)  # devices pulsed since the last confirmation read
        self._best_pending, self._best_round = int(self.mask.sum()) + 1, 0
        self._last: Plan | None = None
        self._g_prev: np.ndarray | None = None

    @property
    def pulses(self) -> np.ndarray:
        return self.set_pulses + self.reset_pulses

    @property
    def converged(self) -> np.ndarray:
        return self.reasons == Reason.CONVERGED

    @property
    def pending(self) -> np.ndarray:
        return self.reasons == Reason.PENDING

    def _judge(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mark devices in tolerance converged (and reopen drifted ones);
        returns the (low, high) masks of pending devices."""
        tol = self.cfg.tolerance
        err = np.abs(g - self.targets)
        # a device is done inside an inner window, two reading sigmas from the
        # edge, so that the confirmation read does not push it out by noise alone
        inner = np.maximum(tol - 2 * self.sigma_meas, 0.5 * tol)
        self.reasons[self.pending & (err <= inner)] = Reason.CONVERGED
        drifted = self.converged & (err > tol) & (self._reopened < self.cfg.reopen)
        self._reopened[drifted] += 1
        self.reasons[drifted] = Reason.PENDING
        self._confirmed[drifted] = False
        if drifted.any():  # reopened devices get their own patience, not the run's best so far
            self._best_pending, self._best_round = int(self.pending.sum()) + 1, self.rounds
        pend = self.pending
        capped = pend & (self.pulses >= self.cfg.max_pulses)
        self.reasons[capped] = Reason.PULSE_CAP
        pend = self.pending
        return pend & (g < self.targets - inner), pend & (g > self.targets + inner)

    def _plan(self, set_mask, set_gate, set_v, reset_mask, reset_v, reset_width=None) -> Plan | None:
        self.rounds += 1
        n_pending = int(self.pending.sum())
        if n_pending < self._best_pending:
            self._best_pending, self._best_round = n_pending, self.rounds
        # the last few devices (<= 1 %) get less patience than a large batch
        patience = self.cfg.patience if n_pending > 0.01 * self.mask.sum() else self.cfg.patience // 3
        stalled = self.rounds - self._best_round > patience
        if self.rounds > self.cfg.max_rounds or stalled:
            self.reasons[self.pending] = Reason.ROUND_CAP
            self._last = None
            return None
        if not (set_mask.any() or reset_mask.any()):
            self._last = None
            return None
        c = self.cfg
        self.set_pulses += set_mask
        self.reset_pulses += reset_mask
        self._pulsed |= set_mask | reset_mask
        shape = self.targets.shape
        width = c.reset_width if reset_width is None else reset_width
        plan = Plan(set_mask, np.broadcast_to(set_v, shape), np.broadcast_to(set_gate, shape), c.set_width,
                    reset_mask, np.broadcast_to(reset_v, shape), c.reset_gate, np.broadcast_to(width, shape))
        self._last = plan
        return plan

    def finish(self, g: np.ndarray) -> None:
        """Judge the final confirmation read; anything still pending keeps its state."""
        tol = self.cfg.tolerance
        within = np.abs(g - self.targets) <= tol
        sel = self.reasons != Reason.NOT_SELECTED
        self.reasons[sel & within & ~np.isin(self.reasons, (Reason.STUCK,))] = Reason.CONVERGED
        out = self.converged & ~within
        self.reasons[out] = Reason.ROUND_CAP


class AdaptiveTuner(_TunerBase):
    """memhw's learning planner (see module docstring).

    Parameters
    ----------
    targets : (rows, cols) array
        Target conductances, S.
    mask : bool array
        Devices to program.
    config : TuningConfig
    sigma_meas : float or array
        Standard deviation of one verify reading, S (decides what counts as a change).
    gate_prior : (gates (n,), conductances (n,) or (n, cols)), optional
        A measured gate -> conductance curve of this chip (e.g. from a
        characterisation sweep) to start from instead of the DOMAIN.md law;
        per column, it also sets each device's first gate from its column's curve.
    """

    def __init__(self, targets, mask, config: TuningConfig = TuningConfig(), sigma_meas=0.5e-6,
                 gate_prior: tuple[np.ndarray, np.ndarray] | None = None):
        super().__init__(targets, mask, config, sigma_meas)
        c = config
        grid = np.arange(c.gate_min, c.gate_max + 1e-9, 0.025)
        if gate_prior is None:  # the published curve (memhw.algorithms.set_curve)
            prior = set_curve.conductance(grid)
        else:
            gates, g = gate_prior
            chip_wide = np.median(g, axis=1) if np.ndim(g) == 2 else g
            prior = np.interp(grid, gates, np.maximum.accumulate(chip_wide))
        self.set_curve = MonotoneCurve(grid, np.maximum(prior, 0.0))
        rgrid = np.arange(0.0, c.reset_v_max + 0.2 + 1e-9, 0.025)
        # DOMAIN.md §1/§2.2: ~full RESET at 1.7 V, partial steps for 0.3-1.5 V (published ramps)
        self.reset_curve = MonotoneCurve(rgrid, 1.0 - np.exp(-np.exp((rgrid - 1.2) / 0.2)))
        shape = self.targets.shape
        self.gate_offset = np.zeros(shape)
        if gate_prior is not None and np.ndim(gate_prior[1]) == 2:
            # each column's own curve, as an offset from the chip-wide one
            aim = self.targets + max(0.5 * c.tolerance, c.set_noise_prior)
            self.gate_offset = np.clip(prior_gates(gate_prior, aim) - self.set_curve.inverse(aim), -0.5, 0.5)
        self.reset_offset = np.zeros(shape)
        self.set_noise = c.set_noise_prior
        self.changed = np.zeros(shape, bool)
        self._dead_tries = np.zeros(shape, np.int8)

    # ------------------------------------------------------------- learning
    def _learn(self, g: np.ndarray) -> None:
        last, g0 = self._last, self._g_prev
        if last is None or g0 is None:
            return
        c = self.cfg
        sig = 3 * np.maximum(self.sigma_meas, 0.2e-6)
        moved = np.abs(g - g0) > sig
        self.changed |= moved & (last.set_mask | last.reset_mask)
        # SET: a clean observation of the compliance level when the device rose
        s = last.set_mask
        rose = s & (g > g0 + sig)
        if rose.any():
            gate = last.set_gate[rose]
            predicted = self.set_curve(gate - self.gate_offset[rose])
            resid = g[rose] - predicted
            if rose.sum() >= 20:
                self.set_noise = float(np.clip(1.4826 * np.median(np.abs(resid - np.median(resid))), 1e-7, 20e-6))
            self.set_curve.observe(gate - self.gate_offset[rose], g[rose])
            off = gate - self.set_curve.inverse(g[rose])
            self.gate_offset[rose] = np.clip(0.5 * self.gate_offset[rose] + 0.5 * off, -0.5, 0.5)
        # SET that left the device below its target: its compliance there is lower
        # than the curve says; move its offset so the next gate is higher
        short = s & ~rose & (g < self.targets - c.tolerance)
        if short.any():
            gate = last.set_gate[short]
            bound = gate - self.set_curve.inverse(g[short]) + 0.02
            self.gate_offset[short] = np.clip(np.maximum(self.gate_offset[short], bound), -0.5, 0.8)
        # RESET: fraction removed
        r = last.reset_mask & (g0 > 0)
        if r.any():
            v = last.reset_v[r]
            # small steps scale with width: express a short pulse's step at the normal width
            scale = c.reset_width / last.reset_width[r]
            frac = np.clip((1.0 - g[r] / g0[r]) * scale, 0.0, 1.0)
            informative = frac > 0.002
            self.reset_curve.observe(v[informative] - self.reset_offset[r][informative], frac[informative])
            inv = self.reset_curve.inverse(np.clip(frac, 1e-4, 0.999))
            off = np.where(frac < 1e-3, self.reset_offset[r] + 0.05, v - inv)
            self.reset_offset[r] = np.clip(0.5 * self.reset_offset[r] + 0.5 * off, -0.5, 1.0)

    # ------------------------------------------------------------- planning
    def update(self, g: np.ndarray) -> Plan | None:
        """Take the round's verified conductances; return the next pulses, or
        None when every selected device is settled."""
        g = np.asarray(g, dtype=float)
        self._learn(g)
        c = self.cfg
        low, high = self._judge(g)
        T, tol = self.targets, c.tolerance
        last = self._last
        if last is not None and self._g_prev is not None:
            self._give_up(g, low, high, last)
            low &= self.pending
            high &= self.pending
        # SET (write noise ~ set_noise) aims above the target, so that it mostly
        # lands high, where gentle RESETs (smaller noise) finish the job
        aim = T + max(0.5 * tol, self.set_noise)
        gate = np.clip(self.set_curve.inverse(aim) + self.gate_offset, c.gate_min, c.gate_max)
        # RESET: remove the fraction that lands just above the centre; steps
        # gentler than the lowest amplitude gives use the shortest width, since
        # a small step scales with the width
        want = np.clip(1.0 - (T + 0.3 * tol) / np.maximum(g, 1e-12), 1e-5, 0.999)
        floor = self.reset_curve(c.reset_v_min - self.reset_offset)
        ratio = c.reset_width_min / c.reset_width
        fine = want < floor
        want = np.where(fine, np.minimum(want / ratio, 0.999), want)
        amp = np.clip(self.reset_curve.inverse(want) + self.reset_offset, c.reset_v_min, c.reset_v_max)
        width = np.where(fine, c.reset_width_min, c.reset_width)
        self._g_prev = g
        return self._plan(low, gate, c.set_v, high, amp, width)

    def _give_up(self, g: np.ndarray, low: np.ndarray, high: np.ndarray, last: Plan) -> None:
        c = self.cfg
        at_max_gate = last.set_mask & (last.set_gate >= c.gate_max - 1e-9) & low
        at_max_amp = last.reset_mask & (last.reset_v >= c.reset_v_max - 1e-9) & high
        self._dead_tries[at_max_gate | at_max_amp] += 1
        dead = self._dead_tries >= 2
        never = dead & ~self.changed
        self.reasons[never & self.pending] = Reason.STUCK
        self.reasons[dead & low & self.pending] = Reason.TOO_HIGH
        self.reasons[dead & high & self.pending] = Reason.TOO_LOW
        # never moved after many pulses of every kind: unresponsive
        silent = self.pending & ~self.changed & (self.pulses >= 8)
        self.reasons[silent] = Reason.STUCK


class BaselineTuner(_TunerBase):
    """The published closed-loop tuning (DOMAIN.md), as a planner.

    SET: amplitude 1 -> 3.5 V in 1 V steps at the present gate; when the ramp
    overflows, the gate rises by 0.05 V (0.5 -> 1.4 V) and the amplitude
    restarts; RESET: 0.3 -> 1.5 V in 0.05 V steps at gate 5 V. A ramp that runs
    out restarts and counts an exhaustion; 5 exhaustions give the device up.
    """

    SET_AMPS = (1.0, 2.0, 3.0)  # 1 -> 3.5 V in 1 V steps: 1, 2, 3 (3.5 is above the last step)
    GATE_START, GATE_STOP, GATE_STEP = 0.5, 1.4, 0.05
    RESET_START, RESET_STOP, RESET_STEP = 0.3, 1.5, 0.05
    EXHAUSTIONS = 5

    def __init__(self, targets, mask, config: TuningConfig = TuningConfig(tolerance=4e-6, max_pulses=200,
                                                                         max_rounds=200),
                 sigma_meas=0.0, gate_prior=None):
        super().__init__(targets, mask, config, sigma_meas)
        shape = self.targets.shape
        self.amp_i = np.zeros(shape, np.int16)
        self.gate = np.full(shape, self.GATE_START)
        if gate_prior is not None:
            # a measured curve lets the gate ramp start one step below the
            # gate that reaches the target, instead of at the bottom
            start = prior_gates(gate_prior, self.targets) - self.GATE_STEP
            steps = np.floor((start - self.GATE_START) / self.GATE_STEP)
            self.gate = np.clip(self.GATE_START + steps * self.GATE_STEP, self.GATE_START, self.GATE_STOP)
        self.reset_amp = np.full(shape, self.RESET_START)
        self.exhausted = np.zeros(shape, np.int16)

    def update(self, g: np.ndarray) -> Plan | None:
        g = np.asarray(g, dtype=float)
        low, high = self._judge(g)
        last = self._last
        if last is not None:
            # advance the ramps of the devices pulsed last round
            s = last.set_mask
            self.amp_i[s] += 1
            over = s & (self.amp_i >= len(self.SET_AMPS))
            self.amp_i[over] = 0
            self.gate[over] += self.GATE_STEP
            gate_over = over & (self.gate > self.GATE_STOP + 1e-9)
            self.gate[gate_over] = self.GATE_START
            self.exhausted[gate_over] += 1
            r = last.reset_mask
            self.reset_amp[r] += self.RESET_STEP
            r_over = r & (self.reset_amp > self.RESET_STOP + 1e-9)
            self.reset_amp[r_over] = self.RESET_START
            self.exhausted[r_over] += 1
            # a device that changes direction starts the other ramp afresh
            self.amp_i[high] = 0
            self.reset_amp[low] = self.RESET_START
        gave_up = self.pending & (self.exhausted >= self.EXHAUSTIONS)
        self.reasons[gave_up] = Reason.RAMP_EXHAUSTED
        low &= self.pending
        high &= self.pending
        amps = np.asarray(self.SET_AMPS)[self.amp_i]
        return self._plan(low, self.gate.copy(), amps, high, self.reset_amp.copy())


TUNERS = {"adaptive": AdaptiveTuner, "baseline": BaselineTuner}


def estimate_read_sigma(g1: np.ndarray, g2: np.ndarray) -> float:
    """Relative read noise from two reads of unchanged devices (robust).

    Returns sigma / G of a single read, from the median absolute difference of
    the two reads (the difference of two reads has sqrt(2) times the sigma).
    """
    g = 0.5 * (g1 + g2)
    ok = g > 1e-6
    if not ok.any():
        return 0.0
    rel = (g1[ok] - g2[ok]) / g[ok]
    return float(1.4826 * np.median(np.abs(rel - np.median(rel))) / np.sqrt(2.0))


def verify_average(read_sigma_rel: float, targets: np.ndarray, tolerance: float, most: int = 32) -> int:
    """Samples to average per verify read so that one reading's sigma is at
    most a fifth of the tolerance at the largest target."""
    worst = read_sigma_rel * float(np.max(targets, initial=0.0))
    if worst <= 0:
        return 1
    return int(np.clip(np.ceil((5.0 * worst / tolerance) ** 2), 1, most))


#: devices whose two reads estimate the read noise before tuning
NOISE_SAMPLE = 512
#: the highest conductance a device of this chip reaches (DOMAIN.md §2.7: G_max ≈ 300-400 µS);
#: the verify gain's full scale must hold it
G_DEVICE_MAX = 400e-6


def verify_gain(transfer, targets: np.ndarray, tolerance: float, v_read: float) -> int:
    """The TIA gain of every verify read on a calibrated board: the highest whose full scale
    holds the largest conductance a device may read (1.5 × the largest target, or
    G_DEVICE_MAX if higher), so no reading saturates. One gain for every read: auto-ranging
    would move a device near a range boundary between gains, whose calibrations differ by
    their residuals, and the loop would chase that difference."""
    g_high = max(1.5 * float(np.max(targets)) + 5 * tolerance, G_DEVICE_MAX)
    return int(transfer.auto_gain(g_high * v_read))


def noise_sample(mask: np.ndarray, n: int = NOISE_SAMPLE) -> np.ndarray:
    """At most ``n`` of the selected devices, evenly spread (a sample to estimate read noise from)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.sum() <= n:
        return mask.copy()
    keep = np.flatnonzero(mask)[:: int(np.ceil(mask.sum() / n))]
    out = np.zeros(mask.shape, bool)
    out.flat[keep] = True
    return out


def to_verify(tuner: "_TunerBase") -> np.ndarray:
    """The devices the next verify read must cover.

    Every selected device before the first round; then the devices still being tuned; when
    none is left, a confirmation read of the settled devices no confirmation has seen yet,
    and of every device sharing a row with a device pulsed since the last confirmation (a
    row's IR drop, hence every reading on it, moves with its devices' conductances; pulses
    disturb their row neighbours); of every device when all were
    confirmed and none was pulsed since (e.g. after a relaxation wait). A device that
    drifted out of tolerance by then is reopened (``TuningConfig.reopen``)."""
    if not tuner.rounds:
        return tuner.mask.copy()
    pending = tuner.pending
    if pending.any():
        return pending
    todo = tuner.mask & ~tuner._confirmed
    pulsed = tuner._pulsed
    if pulsed.ndim == 2:
        todo |= tuner.mask & pulsed.any(axis=1)[:, None]
    elif pulsed.any():
        todo = tuner.mask.copy()
    if not todo.any():
        todo = tuner.mask.copy()
    tuner._confirmed |= todo
    tuner._pulsed[...] = False
    return todo


def run_tuning(tuner: "_TunerBase", measure, apply, on_round=None, should_stop=None) -> np.ndarray:
    """Drive a planner: measure, plan, apply, until it is settled.

    Parameters
    ----------
    tuner : AdaptiveTuner or BaselineTuner
    measure : callable() -> (rows, cols) conductances
    apply : callable(Plan) -> None
        Applies one round's pulses (SET batch, then RESET batch).
    on_round : callable(tuner, g) -> None, optional
        Called after each verify read (progress, logging).
    should_stop : callable() -> bool, optional
        Checked between rounds; True ends the loop early.

    Returns
    -------
    ndarray
        The final confirmation read (already judged by ``tuner.finish``).
    """
    while True:
        g = measure()
        if on_round is not None:
            on_round(tuner, g)
        if should_stop is not None and should_stop():
            break
        plan = tuner.update(g)
        if plan is None:
            # settled: confirm with a fresh read; devices found out of tolerance
            # are re-tuned while their reopen budget lasts
            final = measure()
            plan = tuner.update(final)
            if plan is None:
                tuner.finish(final)
                return final
        apply(plan)
    final = measure()
    tuner.finish(final)
    return final
