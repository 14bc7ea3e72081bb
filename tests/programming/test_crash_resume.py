"""A programming run killed with SIGKILL leaves a readable session that --resume completes.

The board is a served emulator (its own process), so it outlives the killed host
process exactly as a real board would.
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

from memhw.session import SessionFileError, load

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
        finally:
            s.close()

        resumed = subprocess.run(CLI + ["program", "--resume", str(out), "--board", address],
                                 capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        m = re.search(r"(\d+) of (\d+) devices already converged", resumed.stdout)
        assert m and int(m.group(1)) == done_before and int(m.group(2)) == 32 * 64
        m = re.search(r"whole run: (\d+)/(\d+) devices within", resumed.stdout)
        assert m and int(m.group(1)) >= 0.97 * int(m.group(2)), resumed.stdout
        s = load(out)
        try:
            assert s.complete and [r.status for r in s.runs("program")] == ["interrupted", "complete"]
        finally:
            s.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
