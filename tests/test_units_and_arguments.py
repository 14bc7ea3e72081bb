"""Issue #13 items 3, 4 and 8: errors in the flag's unit naming the file, what the chip can
reach said before starting, arguments that cannot mean anything refused, connection
errors that name the likely cause -- each one line, exit status 2, before the board is
touched where the board is not needed to know."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from memhw.cli import main

SMALL = "mock://?rows=8&seed=2"
CLI = [sys.executable, "-m", "memhw.cli"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def no_board(monkeypatch):
    """Fail the test if a command connects to a board."""

    def touched(*args, **kwargs):
        raise AssertionError("connected to the board")

    monkeypatch.setattr("memhw.connection.connect", touched)


@pytest.mark.parametrize("content, words", [
    (np.full((8, 64), 1.0), ["t.npy", "up to 1 S", "read in siemens"]),
    (np.full((8, 64), -5e-6), ["t.npy", "negative conductances", "siemens"]),
    (np.full((8, 64), 150.0), ["t.npy", "look like µS", "divide by 1e6"]),
    (np.ones((8, 64), complex) * 1e-4, ["t.npy", "complex values"]),
    (np.array(["a", "b"]), ["t.npy", "<U1 data, not conductances in siemens"]),
    (np.zeros(0), ["t.npy", "the array is empty"]),
    ("empty", ["t.npy", "empty file"]),
    ("text", ["t.npy", "not an array of numbers saved with numpy.save"]),
])
def test_npy_targets_that_are_not_siemens_are_refused_naming_the_file(content, words, tmp_path, capsys,
                                                                       no_board) -> None:
    path = tmp_path / "t.npy"
    if isinstance(content, str):
        path.write_text("" if content == "empty" else "rows,cols\n1,2\n")
    else:
        np.save(path, content)
    assert main(["program", str(path)]) == 2
    line = _one_line(capsys)
    for w in words:
        assert w in line, (w, line)


@pytest.mark.parametrize("argv, message", [
    (["program", "random", "--tolerance", "-1"], "--tolerance: -1 µS: must be more than 0 µS"),
    (["program", "random", "--range", "200:20"], "need 0 <= LO < HI (in µS)"),
    (["program", "random", "--range", "5-500"], "expected LO:HI in µS"),
    (["program", "random", "--timeout", "-1"], "timeout must be"),
    (["read", "--average", "0"], "must be at least 1"),
    (["sweep", "noise", "--reads", "x"], "is not a whole number"),
    (["demo", "--lstm-epochs", "-3"], "must be at least 1"),
    (["lstm", "airline", "--epochs", "0"], "must be at least 1"),
    (["lstm", "airline", "--chips", "-2"], "must be at least 1"),
    (["calibrate", "board", "--average", "0"], "must be at least 1"),
])
def test_flags_are_checked_in_their_own_unit(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("argv, message", [
    (["sweep", "gate", "--v-max", "0.2"], "--v-max applies to `memhw sweep iv` only"),
    (["sweep", "iv", "--reads", "8"], "--reads applies to `memhw sweep noise` only"),
    (["program", "random", "--other-board"], "--other-board only goes with --resume"),
    (["program", "{tmp}/t.npy", "--range", "20:100"], "--range maps pictures and patterns"),
    (["program", "random", "--out", "{tmp}/x.h5", "--force", "--append"], "give one of them"),
    (["program", "random", "--append"], "--append adds to the --out session file"),
    (["program", "rings", "--seed", "3"], "--seed only goes with the pattern `random`"),
    (["program", "random", "--prior", "{tmp}/g.h5", "--on-board"], "the board's own loop (--on-board) does not"),
    (["program", "--resume", "{tmp}/r.h5", "--plot", "{tmp}/p.png"], "give no TARGETS, --out"),
    (["read", "--force"], "--force replaces an existing --out file"),
    (["read", "--out", "{tmp}/m.npy", "--append"], "--append adds to session files (.h5)"),
    (["sweep", "iv", "--append"], "--append adds to the --out session file"),
    (["calibrate", "board", "--accept-out-of-bounds"], "goes with --save or --save-to"),
])
def test_options_that_would_be_ignored_are_refused(argv, message, tmp_path, capsys, no_board) -> None:
    np.save(tmp_path / "t.npy", np.full((8, 64), 50e-6))
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    assert message in _one_line(capsys)


def test_what_the_chip_reaches_is_said_and_a_range_beyond_it_refused_before_programming(capsys) -> None:
    assert main(["program", "random", "--board", SMALL, "--range", "5:500"]) == 2
    out, err = capsys.readouterr()
    assert "the chip reaches ≈ 296 µS at most (SET at the largest gate, 1.8 V; published SET curve" in out
    assert "targets are above 296 µS, the most this chip reaches" in err and "give --range 5:296 or lower" in err
    assert "adaptive:" not in out  # nothing programmed
    assert main(["program", "random", "--board", SMALL, "--range", "20:200", "--algorithm", "baseline",
                 "--tolerance", "5", "--goal", "0"]) == 0
    assert "≈ 257 µS at most (SET at the largest gate, 1.4 V" in capsys.readouterr().out  # the baseline's gate


def test_a_measured_gate_sweep_gives_the_reach(tmp_path, capsys) -> None:
    sweep = tmp_path / "g.h5"
    assert main(["sweep", "gate", "--board", SMALL, "--out", str(sweep)]) == 0
    assert main(["program", "random", "--board", SMALL, "--prior", str(sweep), "--range", "20:150",
                 "--tolerance", "5", "--goal", "0"]) == 0
    assert f"gate sweep in {sweep})" in capsys.readouterr().out
    assert main(["program", "random", "--prior", str(tmp_path / "none.h5")]) == 2
    assert "no such session file" in _one_line(capsys)


def test_save_to_saves(tmp_path, capsys) -> None:
    target = tmp_path / "cal.h5"
    assert main(["calibrate", "board", "--board", SMALL, "--average", "4", "--save-to", str(target)]) == 0
    assert f"saved {target}" in capsys.readouterr().out and target.is_file()
    assert main(["calibrate", "board", "--board", SMALL, "--average", "4", "--save-to", str(target)]) == 2
    assert "exists; pass --force to replace it" in _one_line(capsys)


def test_save_goes_to_the_calibration_folder_and_says_it_replaced(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MEMHW_CALIBRATION_DIR", str(tmp_path))
    for _ in range(2):
        assert main(["calibrate", "board", "--board", SMALL, "--average", "4", "--save"]) == 0
    out = capsys.readouterr().out
    saved = list(tmp_path.glob("MEMHW-EMU-S2*.h5"))
    assert len(saved) == 1 and f"saved {saved[0]} (replacing the previous calibration of this board)" in out


# ------------------------------------------------------------------ connection errors
@pytest.mark.parametrize("address, timeout, hint", [
    ("socket://127.0.0.1:1", "2", "nothing listens there"),
    ("visa://TCPIP0::127.0.0.1::1::SOCKET", "2", "nothing listens there"),
    ("loop://", "0.2", "nothing answered: check that the board is powered"),
    ("visa://nonsense", "2", "not a resource name VISA understands"),
    ("/dev/null", "0.2", "not a serial port: give the board's port"),
    ("/dev/does-not-exist-memhw", "2", "no such port: list the serial ports"),
])
def test_connection_errors_name_the_likely_cause_without_library_noise(address, timeout, hint) -> None:
    r = subprocess.run(CLI + ["info", "--board", address, "--timeout", timeout], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and hint in lines[0], r.stderr  # no pyvisa WARNING, no traceback
