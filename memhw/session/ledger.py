"""What a session file says the board may have applied: the write-ahead pulse ledger.

Before a pulse batch (or an on-board programming run) leaves the host, the Board's
session observer commits a ``sent`` record (op, intent id, the devices selected); when the
operation ends, its own record carries the same intent id and what was confirmed. After
any crash, then, every pulse the board applied is either confirmed by a finished record
or covered by an unconfirmed one::

    pulses the board applied  <=  confirmed + unconfirmed
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PulseLedger", "pulse_ledger", "PULSE_OPS"]

#: operations that apply pulses, and so are announced before they are sent
PULSE_OPS = ("pulse_set", "pulse_reset", "program_on_board")


@dataclass(frozen=True)
class PulseLedger:
    """Pulses a session recorded.

    Attributes
    ----------
    confirmed : int
        Pulses the board confirmed (finished operations; progress of failed ones).
    unconfirmed : int
        An upper bound of the pulses of operations sent but never confirmed (crashed
        mid-batch, reply lost): each selected device once per batch (``max_pulses`` per
        device for on-board programming).
    unconfirmed_devices : ndarray of bool or None
        Devices that may have been pulsed without confirmation (re-read before trusting
        them); None when nothing is unconfirmed or no masks were recorded.
    """

    confirmed: int
    unconfirmed: int
    unconfirmed_devices: np.ndarray | None


def _mask(value: Any, shape: tuple[int, ...] | None) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value).astype(bool)
    return arr.reshape(shape) if shape is not None and arr.size == int(np.prod(shape)) else arr


def pulse_ledger(session: Any) -> PulseLedger:
    """The pulse ledger of a :class:`~memhw.session.Session` (open or loaded)."""
    log = session.log
    rows, cols = session.attrs.get("board_rows"), session.attrs.get("board_cols")
    shape = (int(rows), int(cols)) if rows is not None and cols is not None else None
    done: dict[int, dict[str, Any]] = {}
    confirmed = 0
    for op in PULSE_OPS:
        if op not in log:
            continue
        table = log[op]
        results, intents = table.column("result"), table.column("intent")
        uncertain = table.column("uncertain")
        for i in range(len(table)):
            confirmed += int(results[i] or 0)
            if intents[i] is not None:
                done[int(intents[i])] = {"uncertain": uncertain[i]}
    unconfirmed = 0
    devices = np.zeros(shape, bool) if shape is not None else None
    if "sent" in log:
        sent = log["sent"]
        masks, intents, bound = sent.column("mask"), sent.column("intent"), sent.column("max_pulses")
        for i in range(len(sent)):
            ident = int(intents[i]) if intents[i] is not None else None
            mask = _mask(masks[i], shape)
            if ident in done:
                mask = _mask(done[ident]["uncertain"], shape)
                per_device = 1
            else:
                per_device = int(bound[i] or 1)
            if mask is None:
                continue
            unconfirmed += int(mask.sum()) * per_device
            if devices is not None and mask.shape == devices.shape:
                devices |= mask
    return PulseLedger(confirmed, unconfirmed, devices if devices is not None and devices.any() else None)
