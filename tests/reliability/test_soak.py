"""Soak: programming over a lossy, breaking link applies every pulse exactly once.

The same programming runs twice per seed on ``mock://?preset=paper&seed=N&rows=32``
(for each board back end: the Python peer, and the C firmware core with ``firmware=c``)
(32 x 64): once over a clean link and once through a FaultyTransport with 1 % of
frames dropped, 1 % corrupted and 1 % duplicated in each direction, and the connection
cut at random (0.3 % of frames): the host reopens it, resumes its session and re-sends
the request in flight. Every request executes exactly once on the board in both runs
(retries, before and after a cut, are answered from the session's reply cache), so the
emulator consumes its random streams identically and the final conductances are
bit-for-bit equal; the emulator's per-device pulse counters equal the host's record, and
the session file's ledger confirms every pulse with none left unconfirmed. Bounded in
time: stops after SOAK_SECONDS (default 20 s, ``MEMHW_SOAK_SECONDS`` to change; half of it for
the C core) or SOAK_RUNS runs.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

import memhw

from .helpers import SOAK_FAULTS, connect, emulator, targets

SOAK_SECONDS = float(os.environ.get("MEMHW_SOAK_SECONDS", "20"))
SOAK_RUNS = int(os.environ.get("MEMHW_SOAK_RUNS", "12"))


#: the soak's link: SOAK_FAULTS plus connection cuts
FAULTS = f"{SOAK_FAULTS},disconnect:0.003"


def _program(address: str, seed: int, path=None):
    board = connect(address)
    emu = emulator(board)
    session = memhw.Session(path) if path is not None else None
    if session is not None:
        session.attach(board)
    result = memhw.program(board, targets(board.shape, seed), tolerance=3e-6, session=session)
    stats = board.link.stats
    out = dict(result=result, G=emu.chip.G.copy(), pulses=emu.hardware.counters.pulses.copy(),
               executed={k: v for k, v in emu.counters.executed.items() if k != "HELLO"},
               cache_hits=emu.counters.cache_hits, requests=stats.requests, retries=stats.retries,
               stale=stats.stale_dropped, resumes=stats.resumes, bad_frames=board.link.bad_frames,
               board_bad_frames=emu.counters.bad_frames, faults=getattr(board.link.transport, "counts", None),
               board_pulses=board.status().pulses)
    board.close()
    if session is not None:
        session.close()
        with memhw.session.load(path) as s:
            out["ledger"] = memhw.session.pulse_ledger(s)
    return out


@pytest.mark.parametrize("firmware", ["python", "c"])
def test_soak_lossy_link_exactly_once(tmp_path, firmware: str) -> None:
    t0 = time.monotonic()
    budget = SOAK_SECONDS if firmware == "python" else SOAK_SECONDS / 2  # the C core: half the time, same checks
    totals = dict(runs=0, requests=0, retries=0, stale_replies_dropped=0, cache_hits=0, pulses=0,
                  pulses_double_applied=0, pulses_lost=0, faults_injected=0, frames=0, dropped=0,
                  corrupted=0, duplicated=0, connection_cuts=0, sessions_resumed=0, falsely_acknowledged=0)
    seed = 0
    while totals["runs"] < SOAK_RUNS and (totals["runs"] < 2 or time.monotonic() - t0 < budget):
        seed += 1
        base = f"mock://?preset=paper&seed={seed}&rows=32&firmware={firmware}"
        clean = _program(base, seed)
        lossy = _program(f"{base}&faults={FAULTS}&fault_seed={seed}", seed, tmp_path / f"soak{seed}.h5")
        r = lossy["result"]
        host = r.set_pulses + r.reset_pulses
        # every pulse the host planned was applied exactly once ...
        assert np.array_equal(lossy["pulses"], host)
        # ... the board's own count and the session file's ledger say the same, nothing unconfirmed
        ledger = lossy["ledger"]
        assert lossy["board_pulses"] == ledger.confirmed == int(host.sum()) and ledger.unconfirmed == 0
        # ... and the run is the very same as without faults
        assert lossy["executed"] == clean["executed"]
        assert np.array_equal(lossy["pulses"], clean["pulses"])
        assert np.array_equal(lossy["G"], clean["G"])
        assert np.array_equal(r.achieved, clean["result"].achieved, equal_nan=True)
        f = lossy["faults"]
        totals["runs"] += 1
        totals["requests"] += lossy["requests"]
        totals["retries"] += lossy["retries"]
        totals["stale_replies_dropped"] += lossy["stale"]
        totals["cache_hits"] += lossy["cache_hits"]
        totals["pulses"] += int(host.sum())
        totals["pulses_double_applied"] += int(np.clip(lossy["pulses"] - host, 0, None).sum())
        totals["pulses_lost"] += int(np.clip(host - lossy["pulses"], 0, None).sum())
        totals["falsely_acknowledged"] += abs(ledger.confirmed - lossy["board_pulses"])
        totals["faults_injected"] += f.injected
        totals["connection_cuts"] += f.disconnects
        totals["sessions_resumed"] += lossy["resumes"]
        for k, src in (("frames", f.frames), ("dropped", f.dropped), ("corrupted", f.corrupted),
                       ("duplicated", f.duplicated)):
            totals[k] += sum(src.values())
    totals["seconds"] = round(time.monotonic() - t0, 1)
    print("SOAK", firmware, json.dumps(totals))
    assert totals["faults_injected"] > 50 and totals["retries"] > 0 and totals["cache_hits"] > 0
    assert totals["connection_cuts"] > 0 and totals["sessions_resumed"] >= totals["connection_cuts"]
    assert totals["pulses_double_applied"] == totals["pulses_lost"] == totals["falsely_acknowledged"] == 0
