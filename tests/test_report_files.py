"""Issue #13 item 5: every file memhw writes can be reported and drawn; a file it cannot
use gets one line saying why, and no folder is made for it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import memhw
from memhw import report as report_module
from memhw.calibration.files import shipped_dir
from memhw.cli import main

SMALL = "mock://?rows=16&seed=2"


@pytest.mark.parametrize("argv, figures", [
    (["read"], ["0000_read.png"]),
    (["sweep", "gate"], ["0000_sweep.png"]),
    (["calibrate", "board", "--average", "4"], ["0000_calibration.png"]),
])
def test_session_files_of_every_command_are_reported_and_drawn(argv, figures, tmp_path, capsys) -> None:
    out = tmp_path / "s.h5"
    assert main([*argv, "--board", SMALL, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"written by: memhw {argv[0]}" in text and "board operations: " in text and "none recorded" not in text
    assert sorted(p.name for p in (tmp_path / "s-report").iterdir()) == figures
    assert not re.search(r"\d\.\d{6,}", text.split("run ", 1)[1]), text  # in units, not at full precision


def test_a_map_from_read_is_reported_and_programmed_back(tmp_path, capsys) -> None:
    m = tmp_path / "map.h5"
    assert main(["read", "--board", SMALL, "--out", str(m)]) == 0
    assert main(["program", str(m), "--board", SMALL]) == 2
    assert "has no dataset 'targets'; its 2-D arrays: conductance (give " in capsys.readouterr().err
    assert main(["program", f"{m}:conductance", "--board", SMALL, "--tolerance", "5", "--goal", "0"]) == 0
    assert "devices within ±5.0 µS" in capsys.readouterr().out


def test_npy_maps_calibration_files_and_older_map_files_are_reported(tmp_path, capsys) -> None:
    npy = tmp_path / "map.npy"
    assert main(["read", "--board", SMALL, "--out", str(npy)]) == 0
    plain = tmp_path / "old.h5"  # a map as memhw 0.2 wrote it: a bare dataset
    with h5py.File(plain, "w") as f:
        f["conductance"] = np.load(npy)
    capsys.readouterr()
    for path, what in ((npy, "conductance map (.npy, siemens), 16 × 64"),
                       (plain, "conductance map (dataset 'conductance', siemens)"),
                       (shipped_dir() / "MEMHW-EMU-0001.h5", "board calibration of MEMHW-EMU-0001")):
        assert main(["report", str(path), "--out", str(tmp_path / "figs")]) == 0
        text = capsys.readouterr().out
        assert what in text and "figure: " in text, text
    assert len(list((tmp_path / "figs").iterdir())) == 3


def test_json_results_are_listed(tmp_path, capsys) -> None:
    path = tmp_path / "airline_exsitu_metrics.json"
    path.write_text('{"experiment": "airline", "ratio": 0.9186745633115099, "history": [{"a": 1}]}')
    assert main(["report", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["  experiment=airline", "  ratio=0.9187",
                                                        "  history: list of 1 entries"]
    path.write_text("{not json")
    assert main(["report", str(path)]) == 2 and "not a readable JSON file" in capsys.readouterr().err


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "no such file"),
    (lambda p: (p.write_text("a,b\n1,2\n"), p)[1], "not HDF5; memhw report takes a session .h5"),
    (lambda p: (p.with_suffix(".png").write_bytes(b"\x89PNG\r\n"), p.with_suffix(".png"))[1], "a figure;"),
    (lambda p: (p.mkdir(), p)[1], "a folder (memhw report takes"),
    (lambda p: Path("."), ".: a folder"),
    (lambda p: (h5py.File(p, "w").close(), p)[1], "an HDF5 file memhw did not write"),
    (lambda p: (np.save(p.with_suffix(".npy"), np.ones(3, complex)), p.with_suffix(".npy"))[1], "complex values"),
])
def test_a_file_memhw_cannot_use_gets_one_line_and_no_folder(make, message, tmp_path, capsys) -> None:
    path = make(tmp_path / "thing.h5")
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.glob("*-report"))


@pytest.fixture
def lstm_session(tmp_path) -> Path:
    path = tmp_path / "lstm.h5"
    with memhw.Session(path, command="test") as s, s.run("lstm", experiment="airline", ratio=0.97) as run:
        run.write("target", np.linspace(0, 1, 10))
    return path


def _plugin(monkeypatch, folder: Path, name: str, source: str | None = None) -> None:
    """Make memhw.report draw LSTM runs with the plugin module ``name`` only (written to
    ``folder`` from ``source`` if given; none of the real plugin's registrations)."""
    if source is not None:
        (folder / f"{name}.py").write_text(source)
        monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(report_module, "PLUGINS", (name,))
    monkeypatch.setattr(report_module, "_PLUGIN_KINDS", {"lstm": name})
    monkeypatch.setattr(report_module, "RUN_PLOTS", {k: v for k, v in report_module.RUN_PLOTS.items() if k != "lstm"})
    monkeypatch.setattr(report_module, "_plugin_errors", {})
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_lstm_runs_without_the_plugin_are_listed_with_a_note(lstm_session, monkeypatch, tmp_path) -> None:
    _plugin(monkeypatch, tmp_path, "memhw_test_absent_plugin")
    text, figures = report_module.report(lstm_session)
    assert "run 0000_lstm (complete): experiment=airline, ratio=0.97" in text
    assert "no figures: the plugin memhw_test_absent_plugin that draws them is not installed" in text
    assert figures == [] and not (lstm_session.parent / "lstm-report").exists()


def test_the_plugin_hook_draws_lstm_runs(lstm_session, monkeypatch, tmp_path) -> None:
    _plugin(monkeypatch, tmp_path, "memhw_test_lstm_plugin", """
from memhw.plots import pyplot, save
from memhw.report import register


@register("lstm")
def draw(run, out):
    fig = pyplot().figure()
    fig.subplots().plot(run.read("target"))
    return [save(fig, out / f"{run.name}.png")]
""")
    text, figures = report_module.report(lstm_session)
    assert [f.name for f in figures] == ["0000_lstm.png"] and figures[0].is_file()


def test_a_broken_plugin_does_not_break_the_report(lstm_session, monkeypatch, tmp_path) -> None:
    _plugin(monkeypatch, tmp_path, "memhw_test_broken_plugin", "raise RuntimeError('oops')\n")
    text, _ = report_module.report(lstm_session)
    assert "run 0000_lstm (complete)" in text and "failed to load: RuntimeError: oops" in text
