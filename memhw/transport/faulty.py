"""Fault injection: a transport wrapper that damages frames on purpose.

``FaultyTransport(inner, FaultSpec.parse("drop:0.01,corrupt:0.01,dup:0.01,delay:0.005"))``
drops, corrupts, duplicates, truncates and delays whole frames (0x00-delimited)
in both directions, from its own seeded random stream, and counts what it did.
Used by the tests and by addresses such as
``mock://?faults=drop:0.01,corrupt:0.01,dup:0.01``.
"""

from __future__ import annotations

import time

from ..errors import Disconnected
from ..faults import FaultCounts, FaultSpec, FrameFaults
from .base import Transport

__all__ = ["FaultSpec", "FaultCounts", "FrameFaults", "FaultyTransport"]


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
