"""The health of every device of one array: :class:`HealthMap`."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

__all__ = ["STATE_NAMES", "STUCK_LOW_MAX", "DeviceState", "HealthMap"]

#: a stuck device reading below this is "stuck low" (harmless as the low side of a pair), S
STUCK_LOW_MAX = 30e-6


class DeviceState(IntEnum):
    """What is known about a device (``HealthMap.state``)."""

    UNKNOWN = 0      #: never observed
    RESPONSIVE = 1   #: follows programming pulses over the range asked of it so far
    STUCK_LOW = 2    #: does not respond; reads below :data:`STUCK_LOW_MAX`
    STUCK_HIGH = 3   #: does not respond; reads at or above it (value in ``g_stuck``)
    LIMITED = 4      #: responds, but cannot reach part of the range (``g_lo`` / ``g_hi``)
    NOISY = 5        #: responds, but its reads scatter far more than the array's


#: state code -> name
STATE_NAMES = {s.value: s.name.lower().replace("_", " ") for s in DeviceState}


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


@dataclass
class HealthMap:
    """Per-device health of one array (one board serial).

    Attributes
    ----------
    serial : str
        Board serial the map belongs to.
    state : int8 (rows, cols)
        :class:`DeviceState` codes.
    g_stuck : (rows, cols)
        Conductance a stuck device reads, S (NaN if not stuck).
    g_lo, g_hi : (rows, cols)
        Lowest / highest conductance the device is known to reach, S: set when a
        device failed to go lower / higher than that (NaN: no limit seen).
    noise : (rows, cols)
        Relative scatter of repeated reads (NaN: not measured).
    seen : int16 (rows, cols)
        Observations of each device.
    updated : str
        ISO time of the last update.
    """

    serial: str
    state: np.ndarray
    g_stuck: np.ndarray
    g_lo: np.ndarray
    g_hi: np.ndarray
    noise: np.ndarray
    seen: np.ndarray
    updated: str = field(default_factory=_now)

    @classmethod
    def empty(cls, serial: str, shape: tuple[int, int]) -> HealthMap:
        """A map of ``shape`` with nothing known."""
        nan = np.full(shape, np.nan)
        return cls(serial, np.zeros(shape, np.int8), nan.copy(), nan.copy(), nan.copy(), nan.copy(),
                   np.zeros(shape, np.int16))

    def copy(self) -> HealthMap:
        return HealthMap(self.serial, self.state.copy(), self.g_stuck.copy(), self.g_lo.copy(), self.g_hi.copy(),
                         self.noise.copy(), self.seen.copy(), self.updated)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.state.shape)

    # ------------------------------------------------------------ views
    @property
    def known(self) -> np.ndarray:
        """Devices observed at least once."""
        return self.state != DeviceState.UNKNOWN

    @property
    def stuck(self) -> np.ndarray:
        """Devices that do not respond to programming."""
        return (self.state == DeviceState.STUCK_LOW) | (self.state == DeviceState.STUCK_HIGH)

    def usable(self) -> np.ndarray:
        """Devices that can be programmed (responsive, limited or noisy; unknown counts as usable)."""
        return ~self.stuck

    def bad_rows(self) -> np.ndarray:
        """Rows whose every device is stuck (e.g. an open row line)."""
        return self.stuck.all(axis=1)

    def bad_cols(self) -> np.ndarray:
        """Columns whose every device is stuck (e.g. an open column line)."""
        return self.stuck.all(axis=0)

    def limits(self, g_floor: float, g_ceiling: float) -> tuple[np.ndarray, np.ndarray]:
        """(lowest, highest) target each device can be given, S.

        A stuck device can only hold its stuck value; a limited device its known range
        (within ``[g_floor, g_ceiling]``); any other device ``[g_floor, g_ceiling]``.
        """
        lo = np.where(np.isfinite(self.g_lo), np.maximum(self.g_lo, g_floor), g_floor)
        hi = np.where(np.isfinite(self.g_hi), np.minimum(self.g_hi, g_ceiling), g_ceiling)
        hi = np.maximum(hi, lo)
        s = self.stuck
        return np.where(s, self.g_stuck, lo), np.where(s, self.g_stuck, hi)

    def counts(self) -> dict[str, int]:
        """Devices per state name."""
        return {STATE_NAMES[int(c)]: int((self.state == c).sum()) for c in DeviceState}

    def __str__(self) -> str:
        c = self.counts()
        parts = ", ".join(f"{k} {v}" for k, v in c.items() if v and k != "unknown")
        return (f"health of {self.serial}: {int(self.known.sum())}/{self.state.size} devices known ({parts}); "
                f"bad rows {np.flatnonzero(self.bad_rows()).tolist()}, bad columns "
                f"{np.flatnonzero(self.bad_cols()).tolist()}; updated {self.updated}")

    # ------------------------------------------------------------ evidence
    def observe(self, *, stuck: np.ndarray | None = None, g_stuck: np.ndarray | None = None,
                responsive: np.ndarray | None = None, reached: np.ndarray | None = None,
                hi_fail: np.ndarray | None = None, lo_fail: np.ndarray | None = None,
                noise: np.ndarray | None = None, noisy: np.ndarray | None = None) -> HealthMap:
        """Fold new evidence into the map, in place; returns self.

        Parameters
        ----------
        stuck, g_stuck : bool and float (rows, cols)
            Devices seen not to respond, and what they read, S.
        responsive : bool (rows, cols)
            Devices seen to respond (clears an old "stuck" verdict).
        reached : float (rows, cols)
            Conductance a device was programmed to successfully (NaN: none); widens
            a known range limit that it lies beyond.
        hi_fail, lo_fail : float (rows, cols)
            Highest / lowest conductance a device reached when asked for more / less
            (NaN: no such failure); becomes its range limit.
        noise, noisy : float and bool (rows, cols)
            Measured relative read scatter and which devices it makes noisy (a probe
            measured ``noise`` where it is finite).
        """
        shape = self.shape

        def mask(m: np.ndarray | None) -> np.ndarray:
            return np.zeros(shape, bool) if m is None else np.asarray(m, bool)

        def values(v: np.ndarray | None) -> np.ndarray:
            return np.full(shape, np.nan) if v is None else np.asarray(v, float)

        stuck, responsive, noisy = mask(stuck), mask(responsive) & ~mask(stuck), mask(noisy)
        g_stuck, reached, hi_fail, lo_fail, noise = map(values, (g_stuck, reached, hi_fail, lo_fail, noise))
        self.state[stuck] = np.where(g_stuck[stuck] < STUCK_LOW_MAX, DeviceState.STUCK_LOW, DeviceState.STUCK_HIGH)
        self.g_stuck[stuck] = g_stuck[stuck]
        revived = responsive & (self.stuck | (self.state == DeviceState.UNKNOWN))
        self.state[revived] = DeviceState.RESPONSIVE
        self.g_stuck[responsive] = np.nan
        ok = np.isfinite(reached) & responsive
        self.g_hi[ok] = np.where(self.g_hi[ok] < reached[ok], reached[ok], self.g_hi[ok])
        self.g_lo[ok] = np.where(self.g_lo[ok] > reached[ok], reached[ok], self.g_lo[ok])
        for limit, fail in ((self.g_hi, hi_fail), (self.g_lo, lo_fail)):
            f = np.isfinite(fail) & ~stuck
            limit[f] = fail[f]
        measured = np.isfinite(noise)
        self.noise[measured] = noise[measured]
        alive = ~self.stuck & (self.state != DeviceState.UNKNOWN)
        alive |= ~stuck & (np.isfinite(hi_fail) | np.isfinite(lo_fail))
        was_noisy = self.state == DeviceState.NOISY
        state = np.where(noisy | (was_noisy & ~measured), DeviceState.NOISY, DeviceState.RESPONSIVE)
        state = np.where(np.isfinite(self.g_lo) | np.isfinite(self.g_hi), DeviceState.LIMITED, state)
        self.state[alive] = state[alive]
        seen = stuck | responsive | np.isfinite(hi_fail) | np.isfinite(lo_fail) | measured
        self.seen[seen] = np.minimum(self.seen[seen].astype(np.int32) + 1, np.iinfo(np.int16).max)
        self.updated = _now()
        return self
