"""Request checks every board back end makes the same way (PROTOCOL.md §6.3, §11).

The emulator (:mod:`memhw.mock`) and the bridge to the original board (:mod:`memhw.dpe`)
refuse a malformed or out-of-limit request with the same status and reason; the C core
(``firmware/core``) mirrors these functions. Each raises :class:`~memhw.peer.Refused`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..conversions import AUTO_GAIN, LimitCodes
from .core import Refused

__all__ = ["WAIT_MAX", "unpack_mask", "requested_gains", "average", "pulse_codes", "tightened_limits", "wait_seconds"]

#: longest WAIT, s (PROTOCOL.md WAIT)
WAIT_MAX = 3600.0


def unpack_mask(packed: np.ndarray, n: int) -> np.ndarray:
    """A packed bit mask (PROTOCOL.md §10.4) -> n booleans; ``BAD_PAYLOAD`` if its size is wrong."""
    if packed.size != (n + 7) // 8:
        raise Refused("BAD_PAYLOAD", f"mask has {packed.size} bytes, expected {(n + 7) // 8}")
    return np.unpackbits(packed, count=n, bitorder="little").astype(bool)


def requested_gains(gains: np.ndarray, cols: int, n_gains: int) -> np.ndarray | None:
    """A request's ``gains`` field -> (cols,) gain indices, or None for auto-ranging."""
    if gains.size == 0 or (gains.size == 1 and gains[0] == AUTO_GAIN):
        return None
    if gains.size not in (1, cols):
        raise Refused("BAD_PAYLOAD", f"gains must have 0, 1 or {cols} entries, not {gains.size}")
    if gains.max() >= n_gains:
        raise Refused("LIMIT", f"gain index {int(gains.max())} >= {n_gains}")
    return np.broadcast_to(gains.astype(np.int64), (cols,))


def average(v: Mapping) -> int:
    """A request's ``average`` (samples per reading), at least 1."""
    avg = int(v["average"])
    if avg < 1:
        raise Refused("BAD_PAYLOAD", "average must be >= 1")
    return avg


def pulse_codes(v: Mapping, mask: np.ndarray, kind: str, limits: LimitCodes) -> tuple[np.ndarray, ...]:
    """The per-device ``amplitude``, ``gate`` and ``width`` codes of a pulse batch over
    ``mask`` (count, cols), each 1 entry (broadcast) or one per selected device, checked
    against ``limits`` (SET or RESET amplitude, gate, width): three (count, cols) arrays."""
    n_sel = int(mask.sum())
    out = []
    for name in ("amplitude", "gate", "width"):
        arr = v[name].astype(np.int64)
        if arr.size not in (1, n_sel):
            raise Refused("BAD_PAYLOAD", f"{name} has {arr.size} entries; expected 1 or {n_sel}")
        full = np.zeros(mask.shape, dtype=np.int64)
        full[mask] = arr
        out.append(full)
    amp, gate, width = out
    amp_limit = limits.set_max if kind == "set" else limits.reset_max
    if n_sel and (amp[mask].min() <= 0 or amp[mask].max() > amp_limit):
        raise Refused("LIMIT", f"{kind.upper()} amplitude outside 1..{amp_limit} codes")
    if n_sel and (gate[mask].min() < 0 or gate[mask].max() > limits.gate_max):
        raise Refused("LIMIT", f"gate outside 0..{limits.gate_max} codes")
    if n_sel and (width[mask].min() < 0 or width[mask].max() > limits.width_max):
        raise Refused("LIMIT", f"width code outside 0..{limits.width_max}")
    return amp, gate, width


def tightened_limits(v: Mapping, maxima: LimitCodes) -> LimitCodes:
    """SET_LIMITS: the new limits, each within the board's maxima (never loosened beyond them)."""
    new, top = LimitCodes.from_mapping(v), maxima.to_mapping()
    for name, value in new.to_mapping().items():
        lo = 1 if name in ("set_max", "reset_max") else 0
        if not lo <= value <= top[name]:
            raise Refused("LIMIT", f"{name} = {value} codes outside {lo}..{top[name]} "
                                   "(limits can only be tightened below the board's maxima)")
    return new


def wait_seconds(v: Mapping) -> float:
    """WAIT's ``seconds``, within 0 .. WAIT_MAX (NaN refused)."""
    seconds = float(v["seconds"])
    if not 0.0 <= seconds <= WAIT_MAX:  # NaN fails too
        raise Refused("LIMIT", f"wait of {seconds:g} s outside 0..{WAIT_MAX:g} s")
    return seconds
