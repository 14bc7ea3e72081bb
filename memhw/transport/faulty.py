"""Fault injection: a transport wrapper that damages frames on purpose.

``FaultyTransport(inner, FaultSpec.parse("drop:0.01,corrupt:0.01,dup:0.01,delay:0.005"))``
drops, corrupts, duplicates, truncates and delays whole frames (0x00-delimited)
in both directions, from its own seeded random stream, and counts what it did.
Used by the tests and by addresses such as
``mock://?faults=drop:0.01,corrupt:0.01,dup:0.01``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

import numpy as np

from ..errors import AddressError, Disconnected
from .base import Transport

__all__ = ["FaultSpec", "FaultCounts", "FrameFaults", "FaultyTransport"]

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
        if self.down:
            raise Disconnected(f"{self.name}: link lost (injected)")
        return b"".join(p for f in self.frames(direction, data) for p in self.damage(f, direction))

    def delay_time(self) -> float:
        """A random hold time in [0, delay]."""
        return float(self.rng.uniform(0, self.spec.delay)) if self.spec.delay else 0.0

    def reset(self) -> None:
        """Link back up, partial frames forgotten (counts kept)."""
        self.down = False
        for buf in self._bufs.values():
            buf.clear()


class FaultyTransport(Transport):
    """Wrap ``inner`` and damage the frames that cross it.

    Parameters
    ----------
    inner : Transport
    spec : FaultSpec
    seed : int
        Seeds the fault decisions (independent of anything else).
    """

    def __init__(self, inner: Transport, spec: FaultSpec, seed: int = 0):
        self.inner = inner
        self.spec = spec
        self.url = inner.url
        self.faults = FrameFaults(spec, seed, name=inner.url)
        self._held: list[tuple[float, bytes]] = []  # (release time, bytes), in order

    @property
    def counts(self) -> FaultCounts:
        """What was injected so far."""
        return self.faults.counts

    @property
    def peer(self):  # noqa: ANN201 - the wrapped in-process peer, if any
        return getattr(self.inner, "peer", None)

    def write(self, data: bytes) -> None:
        out = self.faults.process("tx", data)
        if self.spec.delay:
            time.sleep(self.faults.delay_time())
        if out:
            self.inner.write(out)

    def read(self, timeout: float) -> bytes:
        f = self.faults
        if f.down:
            raise Disconnected(f"{self.url}: link lost (injected)")
        deadline = time.monotonic() + timeout
        while True:
            data = self.inner.read(max(0.0, min(deadline - time.monotonic(), 0.01)) if self._held else
                                   max(0.0, deadline - time.monotonic()))
            now = time.monotonic()
            for frame in f.frames("rx", data):
                for part in f.damage(frame, "rx"):
                    release = now + f.delay_time()
                    if self._held:  # never overtake an earlier frame
                        release = max(release, self._held[-1][0])
                    self._held.append((release, part))
            ready = []
            while self._held and self._held[0][0] <= now:
                ready.append(self._held.pop(0)[1])
            if ready:
                return b"".join(ready)
            if now >= deadline:
                return b""

    def reset_input(self) -> None:
        self._held.clear()
        self.faults._bufs["rx"].clear()
        self.inner.reset_input()

    def reopen(self) -> None:
        """Reopen the inner transport; an injected disconnect is healed."""
        self._held.clear()
        self.faults.reset()
        self.inner.reopen()

    def close(self) -> None:
        self.inner.close()
