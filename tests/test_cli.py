"""The memhw command line, in-process and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

import memhw
from memhw.cli import main


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json", "--board", "mock://?serial=LAB-7"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["serial"] == "LAB-7" and info["rows"] == 128 and info["limits"]["v_set"] > 0


@pytest.mark.parametrize("suffix", [".npy", ".h5"])
def test_read_writes_the_map(tmp_path, capsys, suffix: str) -> None:
    out = tmp_path / f"map{suffix}"
    assert main(["read", "--board", "mock://?preset=ideal", "--out", str(out), "--average", "2"]) == 0
    assert "conductance" in capsys.readouterr().out
    if suffix == ".npy":
        g = np.load(out)
    else:  # a session file: run "read", dataset "conductance"
        with h5py.File(out) as f:
            g = f["runs/0000_read/conductance"][()]
            assert f["runs/0000_read/conductance"].attrs["unit"] == "S"
    assert g.shape == (128, 64) and np.all(g > 0)


def test_bad_output_name_fails_before_touching_the_board(tmp_path, capsys) -> None:
    assert main(["read", "--out", str(tmp_path / "map.txt")]) == 2
    assert "use a .npy, .h5 or .hdf5" in capsys.readouterr().err
    assert not (tmp_path / "map.txt").exists()


@pytest.mark.parametrize("address,message", [
    ("foo://bar", "unknown kind of address"),
    ("/dev/does-not-exist-memhw", "cannot open"),
    ("mock://?preset=nope", "preset"),
    ("mock://?seed=x", "seed"),
])
def test_bad_addresses_are_clear_errors(address: str, message: str, capsys) -> None:
    assert main(["info", "--board", address]) == 2
    assert message in capsys.readouterr().err


def test_refuses_to_expose_the_emulator_beyond_loopback(capsys) -> None:
    assert main(["mock", "serve", "--tcp", "0.0.0.0:0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


@pytest.mark.parametrize("how", [["--tcp", "127.0.0.1:0"], ["--pty"]])
def test_mock_serve_subprocess_prints_a_working_address(how: list[str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "memhw.cli", "mock", "serve", *how, "--options", "seed=2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        address = line.split(" on ")[1].split()[0]
        with memhw.connect(address, timeout=5.0) as board:
            assert board.info.serial and board.read_currents().shape == (64,)
        if "--tcp" in how:
            visa = line.split("VISA: ")[1].rstrip(")\n")
            with memhw.connect(visa, timeout=5.0) as board:
                assert not board.status().busy
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_demo_runs_the_whole_session(tmp_path, capsys) -> None:
    assert main(["demo", "--board", "mock://?seed=1", "--out", str(tmp_path), "--lstm-epochs", "100"]) == 0
    out = capsys.readouterr().out
    assert "== summary" in out and "airline LSTM" in out and "picture" in out
    for name in ("picture.png", "airline_exsitu.png", "session.h5"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    report = (tmp_path / "report.md").read_text()  # the demo's report: results, session report, figures
    for figure in ("picture.png", "report/0000_calibration.png", "report/0001_sweep.png", "report/0002_program.png"):
        assert f"]({figure})" in report and (tmp_path / figure).is_file(), figure
    assert "| picture |" in report and "written by: memhw demo" in report
    s = memhw.session.load(tmp_path / "session.h5")
    try:
        assert s.complete
        assert {r.kind for r in s.runs()} >= {"calibration", "sweep", "program", "lstm"}
    finally:
        s.close()
