"""``memhw mock serve --dialect dpe`` prints an address the bridge connects to."""

from __future__ import annotations

import subprocess
import sys

import pytest

import memhw


@pytest.mark.parametrize("how", [["--pty"], ["--tcp", "127.0.0.1:0"]])
def test_serve_the_original_board(how: list[str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "memhw.cli", "mock", "serve", "--dialect", "dpe", *how,
                             "--options", "preset=ideal&seed=2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        address = line.split(" on ")[1].split()[0]
        assert address.startswith("dpe://" if "--pty" in how else "dpe+socket://")
        with memhw.connect(address, calibration=None, limits=None) as board:
            assert not board.supports("PROGRAM") and board.read_conductance(rows=3).shape == (1, 64)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
