"""Frame-level fault model shared by both sides of the wire.

:class:`FrameFaults` decides, from its own seeded random stream, what becomes of
each 0x00-delimited frame: dropped, corrupted, truncated, duplicated, delayed,
or the link lost. The host-side :class:`memhw.transport.FaultyTransport` and the
board emulator (``mock://?faults=...``) both use it, so this module sits below
both stacks and imports only the error types.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .errors import AddressError, Disconnected

__all__ = ["FaultSpec", "FaultCounts", "FrameFaults"]

_DELIM = b"\x00"


@dataclass(frozen=True)
class FaultSpec:
    """Per-frame fault probabilities (each direction), and a delay.

    Attributes
    ----------
    drop, corrupt, dup, truncate : float
        Probability that a frame is lost, has one byte flipped, arrives twice,
        or loses its tail (and so merges with the next frame).
    delay : float
        Each frame is held for a random time in [0, delay] seconds.
    disconnect : float
        Probability per frame that the link goes down (until reopened).
    reset : float
        Emulator only: probability per row of a pulse batch (and per request)
        that the board reboots there (new boot id, levels and reply cache lost,
        the chip keeps its conductances).
    """

    drop: float = 0.0
    corrupt: float = 0.0
    dup: float = 0.0
    truncate: float = 0.0
    delay: float = 0.0
    disconnect: float = 0.0
    reset: float = 0.0

    @classmethod
    def parse(cls, text: str) -> "FaultSpec":
        """From ``"drop:0.01,corrupt:0.01,..."``.

        Raises
        ------
        AddressError
            Unknown fault, or a value that is not a number in [0, 1] (delay: >= 0).
        """
        known = {f.name for f in fields(cls)}
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition(":")
            if name not in known:
                raise AddressError(f"faults: unknown fault {name!r}; known: {', '.join(sorted(known))}")
            try:
                x = float(value)
            except ValueError:
                raise AddressError(f"faults: {name} needs a number, got {value!r}") from None
            if not (0.0 <= x <= (60.0 if name == "delay" else 1.0)):
                raise AddressError(f"faults: {name}={x:g} is out of range")
            values[name] = x
        return cls(**values)


@dataclass
class FaultCounts:
    """Frames seen and faults injected, per direction ("tx": host to board, "rx": back)."""

    frames: dict = field(default_factory=lambda: {"tx": 0, "rx": 0})
    dropped: dict = field(default_factory=lambda: {"tx": 0, "rx": 0})
    corrupted: dict = field(default_factory=lambda: {"tx": 0, "rx": 0})
    duplicated: dict = field(default_factory=lambda: {"tx": 0, "rx": 0})
    truncated: dict = field(default_factory=lambda: {"tx": 0, "rx": 0})
    disconnects: int = 0

    @property
    def injected(self) -> int:
        return (sum(sum(d.values()) for d in (self.dropped, self.corrupted, self.duplicated, self.truncated))
                + self.disconnects)

    def as_dict(self) -> dict:
        """Plain numbers, for reports."""
        return {"frames": dict(self.frames), "dropped": dict(self.dropped), "corrupted": dict(self.corrupted),
                "duplicated": dict(self.duplicated), "truncated": dict(self.truncated),
                "disconnects": self.disconnects, "injected": self.injected}


class FrameFaults:
    """The fault decisions of :class:`FaultyTransport`, usable by any byte peer
    (the board emulator applies them on its side of the wire).

    ``process(direction, data)`` splits ``data`` into 0x00-delimited frames
    (keeping an incomplete tail for the next call) and returns what becomes of
    them; it raises :class:`~memhw.errors.Disconnected` when an injected
    disconnect happens (and on every later call).
    """

    def __init__(self, spec: FaultSpec, seed: int = 0, name: str = "link"):
        self.spec = spec
        self.name = name
        self.counts = FaultCounts()
        self.rng = np.random.default_rng(seed)
        self.down = False
        self._bufs = {"tx": bytearray(), "rx": bytearray()}
        self._lock = threading.RLock()  # writes (an abort thread) and reads (the request thread) share the stream

    def damage(self, frame: bytes, direction: str) -> list[bytes]:
        """What becomes of one frame (with its delimiter)."""
        s, rng, c = self.spec, self.rng, self.counts
        c.frames[direction] += 1
        if s.disconnect and rng.random() < s.disconnect:
            self.down = True
            c.disconnects += 1
            raise Disconnected(f"{self.name}: link lost (injected)")
        if s.drop and rng.random() < s.drop:
            c.dropped[direction] += 1
            return []
        if s.corrupt and rng.random() < s.corrupt and len(frame) > 1:
            b = bytearray(frame)
            i = int(rng.integers(0, len(b) - 1))
            b[i] ^= 1 << int(rng.integers(0, 8))
            if b[i] == 0:  # keep the flip inside the frame
                b[i] = 0x55
            frame = bytes(b)
            c.corrupted[direction] += 1
        if s.truncate and rng.random() < s.truncate and len(frame) > 2:
            frame = frame[: int(rng.integers(1, len(frame) - 1))]  # no delimiter: runs into the next frame
            c.truncated[direction] += 1
        if s.dup and rng.random() < s.dup:
            c.duplicated[direction] += 1
            return [frame, frame]
        return [frame]

    def frames(self, direction: str, data: bytes) -> list[bytes]:
        """Complete frames (with delimiter) of ``data``; the tail waits for more bytes."""
        buf = self._bufs[direction]
        buf += data
        *complete, rest = bytes(buf).split(_DELIM)
        buf[:] = rest
        return [f + _DELIM for f in complete]

    def process(self, direction: str, data: bytes) -> bytes:
        """Damage the frames of ``data`` going ``direction`` ("tx" or "rx")."""
        with self._lock:
            if self.down:
                raise Disconnected(f"{self.name}: link lost (injected)")
            return b"".join(p for f in self.frames(direction, data) for p in self.damage(f, direction))

    def through(self, conn: Any, direction: str, data: bytes) -> bytes:
        """:meth:`process` on a board's side of one connection: after an injected link loss
        ``conn.hangup`` is set and the connection passes nothing more (the operation in
        progress goes on; its host lost the link)."""
        if not data or conn.hangup:
            return b"" if conn.hangup else data
        try:
            return self.process(direction, data)
        except ConnectionError:
            conn.hangup = True
            return b""

    def delay_time(self) -> float:
        """A random hold time in [0, delay]."""
        with self._lock:
            return float(self.rng.uniform(0, self.spec.delay)) if self.spec.delay else 0.0

    def reset(self) -> None:
        """Link back up, partial frames forgotten (counts kept)."""
        self.down = False
        for buf in self._bufs.values():
            buf.clear()
