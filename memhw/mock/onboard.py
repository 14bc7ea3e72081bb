"""Emulated firmware: on-board write-and-verify (PROGRAM).

The board runs the host's own planner (:mod:`memhw.algorithms.tuning`) configured by the
PROGRAM request (:mod:`memhw.algorithms.program_codec`): verify reads of what each round
must see (:func:`~memhw.algorithms.tuning.to_verify`) at the requested read voltage,
through the calibration the host sent (SET_CALIBRATION; then at one gain, as the host
loop) or the nominal conversions (auto-ranged), batched SET and RESET rounds, progress
after each round, abortable between rounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import firmware_protocol as fp

from ..algorithms.program_codec import decode_config
from ..algorithms.tuning import (TUNERS, Plan, estimate_read_sigma, noise_sample, run_tuning, to_verify,
                                 verify_average, verify_gain)
from ..conversions import conductance_codes, conductances
from ..peer import Aborted, HandlerTable, Operation, Refused
from ..peer.checks import unpack_mask
from .measure import conductance_map
from .pulses import apply_rows

if TYPE_CHECKING:  # pragma: no cover
    from .hardware import MockHardware

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()
_ALGORITHMS = {code: name.lower() for name, code in fp.SCHEMA.enums["TuningAlgorithm"].items()}


def _check(hw: "MockHardware", v: dict) -> None:
    """Every voltage and width the loop may use, against the limits in force."""
    lim = hw.limits
    if v["algorithm"] not in _ALGORITHMS:
        raise Refused("BAD_PAYLOAD", f"unknown tuning algorithm {v['algorithm']}")
    if v["tolerance"] < 1:
        raise Refused("BAD_PAYLOAD", "tolerance must be >= 1")
    for name, code, hi in (("set_v", v["set_v"], lim.set_max), ("reset_v_max", v["reset_v_max"], lim.reset_max),
                           ("reset_v_min", v["reset_v_min"], v["reset_v_max"]),
                           ("gate_max", v["gate_max"], lim.gate_max), ("gate_min", v["gate_min"], v["gate_max"]),
                           ("reset_gate", v["reset_gate"], lim.gate_max), ("v_read", v["v_read"], lim.read_max)):
        if not 0 < code <= hi:
            raise Refused("LIMIT", f"{name} = {code} codes outside 1..{hi}")
    for name in ("set_width", "reset_width", "reset_width_min"):
        if v[name] > lim.width_max:
            raise Refused("LIMIT", f"{name} code above {lim.width_max}")


@HANDLERS.register("PROGRAM")
def program(hw: "MockHardware", v: dict, op: Operation) -> dict:
    start, count = int(v["row_start"]), int(v["row_count"])
    hw.check_rows(start, count)
    sub = unpack_mask(v["mask"], count * hw.cols).reshape(count, hw.cols)
    if v["targets"].size != sub.sum():
        raise Refused("BAD_PAYLOAD", f"targets has {v['targets'].size} entries, mask selects {int(sub.sum())}")
    _check(hw, v)
    config, _ = decode_config(v, hw.transfer)
    v_code = int(v["v_read"])
    mask = np.zeros((hw.rows, hw.cols), bool)
    mask[start : start + count] = sub
    targets = np.zeros((hw.rows, hw.cols))
    targets[mask] = conductances(v["targets"])
    rows = slice(start, start + count)
    last = {"g": np.zeros((hw.rows, hw.cols)), "average": 1}
    # calibrated: one gain for every verify read, as the host loop (tuning.verify_gain)
    gain = None if hw.calibration.nominal or not mask.any() else \
        verify_gain(hw.transfer, targets[mask], config.tolerance, v_code * hw.transfer.dac_line_lsb)

    def read(devices: np.ndarray) -> None:
        """Verify-read the rows holding ``devices`` (the others take no time); keep their values."""
        rows = np.flatnonzero(devices.any(axis=1))
        g = last["g"]
        g[rows] = np.where(devices[rows], conductance_map(hw, rows, v_code, last["average"], gain), g[rows])

    sample = noise_sample(mask)
    read(sample)
    first = last["g"][sample].copy()
    read(sample)
    sigma_rel = estimate_read_sigma(first, last["g"][sample])
    last["average"] = avg = int(v["verify_average"]) or verify_average(sigma_rel, targets[mask], config.tolerance)
    sigma = sigma_rel * np.maximum(targets, 1e-6) / np.sqrt(avg)
    tuner = TUNERS[_ALGORITHMS[int(v["algorithm"])]](targets, mask, config, sigma_meas=sigma)

    def measure() -> np.ndarray:
        read(to_verify(tuner))
        return last["g"].copy()

    row_idx, col_idx = np.indices(mask.shape)
    lim, lsb = hw.limits, hw.transfer.dac_line_lsb

    def apply(plan: Plan) -> None:
        t, cal = hw.transfer, hw.calibration
        batches = (("set", plan.set_mask, plan.set_v, plan.set_gate, plan.set_width, tuner.set_pulses),
                   ("reset", plan.reset_mask, plan.reset_v, plan.reset_gate, plan.reset_width, tuner.reset_pulses))
        for i, (kind, m, amp, gate, w, _) in enumerate(batches):
            m = m[rows]
            if not m.any():
                continue
            # per-channel codes through the board's calibration: SET drives columns, RESET rows
            group, channels, top = (("COLS", col_idx, lim.set_max) if kind == "set" else
                                    ("ROWS", row_idx, lim.reset_max))
            amp_c = np.where(m, cal.dac_codes(group, np.broadcast_to(amp, mask.shape)[rows], channels[rows],
                                              v_max=top * lsb, v_min=lsb), 0)
            gate_c = cal.dac_codes("GATES", np.broadcast_to(gate, mask.shape)[rows], col_idx[rows],
                                   v_max=lim.gate_max * t.dac_gate_lsb, v_min=0.0)
            w_c = np.clip(t.width_codes(np.broadcast_to(w, mask.shape)[rows]), 0, t.width_max_code)
            try:
                apply_rows(hw, kind, start, m, amp_c, gate_c, w_c, op)
            except Aborted as exc:
                # the planner counted the whole round; take back what was never applied
                cut = start + int(exc.reply["rows_done"])
                batch_mask, counts = batches[i][1], batches[i][5]
                counts[cut:] -= batch_mask[cut:]
                for _, later_mask, *_unused, later_counts in batches[i + 1:]:
                    later_counts -= later_mask
                raise

    def on_round(tn, g) -> None:
        op.progress(round=tn.rounds, pending=int(tn.pending.sum()), converged=int(tn.converged.sum()))

    def reply() -> dict:
        return {"rounds": tuner.rounds, "achieved": conductance_codes(last["g"][mask]),
                "set_pulses": np.minimum(tuner.set_pulses[mask], 0xFFFF),
                "reset_pulses": np.minimum(tuner.reset_pulses[mask], 0xFFFF),
                "reasons": tuner.reasons[mask]}

    aborted = False
    try:
        run_tuning(tuner, measure, apply, on_round, should_stop=op.should_stop)
    except Aborted:
        aborted = True
    if aborted or op.should_stop():
        raise Aborted(reply())
    return reply()
