"""A programming run killed with SIGKILL leaves a readable session that --resume completes.

The board is a served emulator (its own process), so it outlives the killed host
process exactly as a real board would. The session file's write-ahead ledger bounds what
the board applied: confirmed <= board count <= confirmed + unconfirmed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import memhw
from memhw.session import SessionFileError, load, pulse_ledger

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
CLI = [sys.executable, "-m", "memhw.cli"]


def _rounds_flushed(path) -> int:
    try:
        s = load(path)
    except (SessionFileError, OSError):
        return 0
    try:
        run = s.last_run("program")
        if run is None or "round_reasons" not in run.names():
            return 0
        return len(run.read("round_reasons"))
    finally:
        s.close()


def test_sigkill_mid_run_then_resume(tmp_path) -> None:
    server = subprocess.Popen(CLI + ["mock", "serve", "--tcp", "127.0.0.1:0", "--options", "seed=5&pace=2&rows=32"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = server.stdout.readline().split(" on ")[1].split()[0]
        out = tmp_path / "run.h5"
        log = tmp_path / "host.log"
        host = subprocess.Popen(CLI + ["program", "random", "--board", address, "--out", str(out)],
                                stdout=subprocess.DEVNULL, stderr=log.open("w"))
        deadline = time.monotonic() + 90
        while _rounds_flushed(out) < 3:
            assert host.poll() is None, f"the run ended before it could be killed: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "no flushed rounds within 90 s"
            time.sleep(0.05)
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=10)

        s = load(out)
        try:
            assert not s.complete
            run = s.last_run("program")
            assert run.status == "running"  # never closed
            rounds = run.read("round_reasons")
            assert len(rounds) >= 3 and rounds.shape[1:] == (32, 64)
            g = run.read("round_g")
            assert len(g) == len(rounds) and np.isfinite(g[-1]).all()
            done_before = int((rounds[-1] == 1).sum())
            ledger = pulse_ledger(s)
        finally:
            s.close()
        # what the board did, asked in a session of its own (the killed host's was detached)
        with memhw.connect(address, calibration=None, limits=None) as board:
            applied = board.status().pulses
        print(f"ledger: confirmed {ledger.confirmed}, unconfirmed {ledger.unconfirmed}; board applied {applied}")
        assert ledger.confirmed <= applied <= ledger.confirmed + ledger.unconfirmed, (ledger, applied)

        other = subprocess.run(CLI + ["program", "--resume", str(out)], capture_output=True, text=True, timeout=60)
        assert other.returncode == 2 and "not resuming on another board or chip" in other.stderr
        resumed = subprocess.run(CLI + ["program", "--resume", str(out), "--board", address],
                                 capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        m = re.search(r"(\d+) of (\d+) devices had converged, (\d+) still read within", resumed.stdout)
        assert m and int(m.group(1)) == done_before and int(m.group(2)) == 32 * 64, resumed.stdout
        assert int(m.group(3)) >= 0.9 * done_before
        m = re.search(r"whole run: (\d+)/(\d+) devices within", resumed.stdout)
        assert m and int(m.group(1)) >= 0.97 * int(m.group(2)), resumed.stdout
        s = load(out)
        try:
            assert s.complete and [r.status for r in s.runs("program")] == ["interrupted", "complete"]
            first, second = s.runs("program")
            assert first.attrs["board_address"] == second.attrs["board_address"] == address
            assert first.attrs["board_chip"] == second.attrs["board_chip"] != ""
        finally:
            s.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
