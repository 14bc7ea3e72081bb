"""Emulated firmware: DC levels, grounding, session limits and calibration, idling
(SET_LEVELS, GROUND_ALL, SET_LIMITS, SET_CALIBRATION, WAIT)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import firmware_protocol as fp

from ..conversions import BoardCalibration
from ..peer import Aborted, HandlerTable, Operation, Refused
from ..peer.checks import tightened_limits, unpack_mask, wait_seconds

if TYPE_CHECKING:  # pragma: no cover
    from .hardware import MockHardware

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()
GROUPS = fp.SCHEMA.enums["LineGroup"]


def check_group(hw: "MockHardware", group: int) -> int:
    """Lines in ``group``; ``BAD_PAYLOAD`` for an unknown group."""
    if group not in GROUPS.values():
        raise Refused("BAD_PAYLOAD", f"unknown line group {group}")
    return hw.rows if group == GROUPS["ROWS"] else hw.cols


@HANDLERS.register("SET_LEVELS")
def set_levels(hw: "MockHardware", v: dict, op: Operation) -> dict:
    group = int(v["group"])
    n = check_group(hw, group)
    limit = hw.limits.gate_max if group == GROUPS["GATES"] else hw.limits.read_max
    if v["codes"].size:
        if v["codes"].size != n:
            raise Refused("BAD_PAYLOAD", f"codes has {v['codes'].size} entries, group has {n} lines")
        new = v["codes"].astype(np.int64)
        selected = np.ones(n, bool)
    else:
        selected = unpack_mask(v["mask"], n)
        new = hw.level_codes(group)
        new[selected] = v["value"]
    if np.abs(new).max(initial=0) > limit or (group == GROUPS["GATES"] and new.min(initial=0) < 0):
        raise Refused("LIMIT", f"level outside the board's limit of {limit} codes")
    hw.set_levels(group, new, selected)
    return {}


@HANDLERS.register("GROUND_ALL")
def ground_all(hw: "MockHardware", v: dict, op: Operation) -> dict:
    if v["mode"] not in (0, 1):
        raise Refused("BAD_PAYLOAD", f"mode must be 0 (ground) or 1 (float), not {v['mode']}")
    hw.ground()
    return {}


@HANDLERS.register("SET_LIMITS")
def set_limits(hw: "MockHardware", v: dict, op: Operation) -> dict:
    new = tightened_limits(v, hw.abs_limits)
    hw.limits = new
    return new.to_mapping()


@HANDLERS.register("SET_CALIBRATION")
def set_calibration(hw: "MockHardware", v: dict, op: Operation) -> dict:
    try:
        hw.calibration = BoardCalibration.from_fields(v, hw.transfer, hw.rows, hw.cols)
    except ValueError as exc:
        raise Refused("BAD_PAYLOAD", str(exc)) from None
    return {}


@HANDLERS.register("WAIT")
def wait(hw: "MockHardware", v: dict, op: Operation) -> dict:
    seconds = wait_seconds(v)
    hw.ground()
    step = seconds / 100 if hw.pace else seconds
    waited = 0.0
    while waited < seconds:  # in steps, so an abort is seen
        if op.should_stop():
            raise Aborted({"waited": waited})
        dt = min(step, seconds - waited) if step > 0 else seconds
        hw.tick(dt)
        waited += dt
        if dt <= 0:
            break
    return {"waited": waited}
