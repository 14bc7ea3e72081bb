"""Line faults of the old ASCII link, injected on the emulated board's side.

The original link has no checksum and no sequence numbers, so what goes wrong on it is
a whole line lost, a character damaged, an answer that never comes or junk between
lines. :class:`LineFaults` decides, from its own seeded stream, what happens to each
line; ``faults=mute:0.1,drop:0.01`` in an emulator's options sets the probabilities, and
:meth:`LineFaults.inject` forces the next events of a kind (for exact tests).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..faults import FaultSpec

__all__ = ["LineFaultSpec", "LineFaults"]


@dataclass(frozen=True)
class LineFaultSpec:
    """Probabilities of each kind of fault.

    Attributes
    ----------
    lose : float
        An incoming line (host to board) is lost before the firmware reads it.
    mute : float
        A command is executed but its whole answer is lost.
    drop : float
        One outgoing line is lost.
    garble : float
        One character of an outgoing line has bit 6 flipped (a digit becomes a letter,
        so a strict parser notices; real noise can also turn a digit into another digit,
        which no parser can notice).
    noise : float
        A junk line is sent before an outgoing line.
    """

    lose: float = 0.0
    mute: float = 0.0
    drop: float = 0.0
    garble: float = 0.0
    noise: float = 0.0

    @classmethod
    def parse(cls, text: str) -> "LineFaultSpec":
        """From ``"mute:0.1,drop:0.01"``, the syntax of :class:`memhw.faults.FaultSpec`
        (whose parser this is); :class:`~memhw.errors.AddressError` naming a bad entry."""
        return FaultSpec.parse.__func__(cls, text)  # type: ignore[attr-defined]


class LineFaults:
    """Seeded fault decisions per line, with counts of what was injected."""

    def __init__(self, spec: LineFaultSpec | None = None, seed: int = 0):
        self.spec = spec or LineFaultSpec()
        self._rng = np.random.default_rng([seed, 0x11AE])
        self._forced: dict[str, list[int]] = {}  # kind -> [chances to let pass first, faults to force]
        self.counts = {f.name: 0 for f in fields(LineFaultSpec)}

    def inject(self, kind: str, times: int = 1, after: int = 0) -> None:
        """Make fault ``kind`` happen at its next ``times`` chances, after letting ``after``
        chances pass (a chance is a line for ``lose``, ``drop``, ``garble``, ``noise``, an
        answer for ``mute``)."""
        if kind not in self.counts:
            raise ValueError(f"unknown line fault {kind!r}")
        self._forced[kind] = [int(after), int(times)]

    def _hit(self, kind: str) -> bool:
        forced = self._forced.get(kind)
        if forced and forced[0] > 0:
            forced[0] -= 1
            hit = False
        elif forced and forced[1] > 0:
            forced[1] -= 1
            hit = True
        else:
            p = getattr(self.spec, kind)
            hit = bool(p) and bool(self._rng.random() < p)
        self.counts[kind] += hit
        return hit

    def incoming(self, line: str) -> bool:
        """False if the line is lost on its way to the firmware."""
        return not self._hit("lose")

    def outgoing(self, lines: list[str]) -> list[str]:
        """What of an answer reaches the host."""
        if not lines or self._hit("mute"):
            return []
        out = []
        for line in lines:
            if self._hit("noise"):
                out.append(f"?{self._rng.integers(1 << 16):x}")
            if self._hit("drop"):
                continue
            if line and self._hit("garble"):
                k = int(self._rng.integers(len(line)))
                line = line[:k] + chr(ord(line[k]) ^ 0x40) + line[k + 1:]
            out.append(line)
        return out
