"""Issue #13 items 1 and 2: every session file records where it came from; every output
is checked before the board is touched; one rule for existing files."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

import memhw
from memhw.cli import main

SMALL = "mock://?rows=16&seed=2"  # a 16 x 64 emulated board: quick
#: every command that writes a session file, with what it records
WRITERS = {
    "read": (["read"], "read"),
    "program": (["program", "random", "--range", "20:120", "--tolerance", "4", "--goal", "0"], "program"),
    "sweep": (["sweep", "iv"], "sweep"),
    "calibrate": (["calibrate", "board", "--average", "4"], "calibration"),
}


def _load(path: Path) -> memhw.session.Session:
    return memhw.session.load(path)


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_every_session_file_records_board_calibration_version_and_command_line(command, tmp_path, capsys) -> None:
    argv, kind = WRITERS[command]
    out = tmp_path / f"{command}.h5"
    full = [*argv, "--board", SMALL, "--out", str(out)]
    assert main(full) == 0
    s = _load(out)
    try:
        calibration = "none: nominal transfer functions"  # seed 2 has no calibration file
        for attrs in (s.attrs, s.last_run(kind).attrs):
            assert attrs["board_serial"].startswith("MEMHW-EMU-S2") and attrs["board_address"] == SMALL
            assert attrs["board_chip"].startswith("MOCK-CHIP-")
            assert attrs["board_calibration"] == calibration
            assert attrs["software_version"] == memhw.__version__
            assert attrs["command_line"] == shlex.join(["memhw", *full])  # as typed in a shell
        assert len(s.log) > 0, "the board's operations are logged"
        board = f"board {s.attrs['board_serial']} ({s.attrs['board_chip']}) at {SMALL}"
    finally:
        s.close()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert board in text and "board ? (?)" not in text


def test_the_calibration_applied_is_recorded(tmp_path) -> None:
    out = tmp_path / "r.h5"
    assert main(["read", "--out", str(out)]) == 0  # mock:// is MEMHW-EMU-0001: the shipped calibration
    s = _load(out)
    try:
        assert s.attrs["board_calibration"].startswith(str(Path(memhw.calibration.files.shipped_dir())))
        assert s.attrs["board_calibration_id"].startswith("MEMHW-EMU-0001@")
    finally:
        s.close()


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_an_existing_file_is_never_replaced_or_added_to_silently(command, tmp_path, capsys) -> None:
    argv, kind = WRITERS[command]
    out = tmp_path / "s.h5"
    base = [*argv, "--board", SMALL, "--out", str(out)]
    assert main(base) == 0
    before = out.stat().st_mtime_ns, out.stat().st_size
    assert main(base) == 2
    assert "exists; pass --append to add this run to it, or --force to replace it" in capsys.readouterr().err
    assert (out.stat().st_mtime_ns, out.stat().st_size) == before
    assert main([*base, "--append"]) == 0
    s = _load(out)
    assert [r.kind for r in s.runs()] == [kind, kind]
    s.close()
    assert main([*base, "--force"]) == 0
    s = _load(out)
    assert [r.kind for r in s.runs()] == [kind]
    s.close()


def test_append_refuses_another_boards_file_and_notes_another_chip(tmp_path, capsys) -> None:
    out = tmp_path / "s.h5"
    assert main(["read", "--board", SMALL, "--out", str(out)]) == 0
    assert main(["read", "--board", "mock://?rows=16&seed=3", "--out", str(out), "--append"]) == 2
    assert "recorded on board MEMHW-EMU-S2-" in capsys.readouterr().err
    assert main(["read", "--board", SMALL, "--out", str(out), "--append"]) == 0  # a new in-process chip
    assert "note: " in capsys.readouterr().out
    s = _load(out)
    chips = [r.attrs["board_chip"] for r in s.runs()]
    s.close()
    assert len(chips) == 2 and chips[0] != chips[1]


def test_append_refuses_what_is_not_a_session_file(tmp_path, capsys) -> None:
    bad = tmp_path / "x.h5"
    bad.write_text("not hdf5")
    assert main(["sweep", "iv", "--board", SMALL, "--out", str(bad), "--append"]) == 2
    assert "x.h5" in capsys.readouterr().err and bad.read_text() == "not hdf5"


@pytest.mark.parametrize("argv, message", [
    (["read", "--out", "/nonexistent/dir/map.h5"], "folder /nonexistent/dir does not exist"),
    (["read", "--out", "{tmp}"], "is a folder; give a file name"),
    (["program", "random", "--plot", "/nonexistent/x.png"], "folder /nonexistent does not exist"),
    (["program", "random", "--plot", "{tmp}/x.txt"], "use a .png, .pdf, .svg"),
    (["program", "random", "--out", "/nonexistent/r.h5"], "folder /nonexistent does not exist"),
    (["program", "{tmp}/t.npy"], "t.npy: no such file"),
    (["sweep", "gate", "--plot", "/nonexistent/g.png"], "folder /nonexistent does not exist"),
    (["sweep", "gate", "--out", "{tmp}/g.txt"], "use a .h5 or .hdf5 file name"),
    (["calibrate", "board", "--save-to", "/nonexistent/c.h5"], "folder /nonexistent does not exist"),
    (["calibrate", "board", "--out", "{tmp}/c.npy"], "use a .h5 or .hdf5 file name"),
    (["demo", "--out", "/nonexistent/demo"], "folder /nonexistent does not exist"),
])
def test_outputs_are_checked_before_the_board_is_touched(argv, message, tmp_path, capsys, monkeypatch) -> None:
    def touched(*args, **kwargs):
        raise AssertionError("connected to the board before checking the outputs")

    monkeypatch.setattr("memhw.demo.connect", touched)  # first: importing memhw.demo binds connection.connect
    monkeypatch.setattr("memhw.connection.connect", touched)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert sorted(tmp_path.iterdir()) == []  # nothing written
