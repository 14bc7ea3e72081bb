"""Board self-calibration, calibration files, application on connect (acceptance tests)."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import pytest

import memhw
from memhw.calibration import (
    BoardCalibration,
    calibrate_board,
    find_calibration,
    load_calibration,
    read_reference,
    save_calibration,
)
from memhw.calibration.files import calibration_dir
from memhw.errors import CalibrationError, CalibrationWarning

# Periphery as the paper preset (errors of a few percent), chip noise-free so the
# comparison with the emulator's true conductances measures the read-out chain only.
QUIET = "read_noise=0&telegraph_fraction=0&wire_resistance=0&relax_mean_coeff=0&relax_std_coeff=0&relax_std_offset=0"
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "memhw" / "calibration" / "data" / "MEMHW-EMU-0001.h5"


@pytest.fixture(scope="module")
def cal() -> BoardCalibration:
    with memhw.connect(f"mock://?{QUIET}", calibration=None) as board:
        return calibrate_board(board, average=64)


@pytest.fixture
def cal_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MEMHW_CALIBRATION_DIR", str(tmp_path))
    return tmp_path


def _program(board: memhw.Board) -> np.ndarray:
    rng = np.random.default_rng(1)
    board.pulse_set(np.ones(board.shape, bool), v=2.5, gate=rng.uniform(0.6, 1.6, board.shape))
    return np.asarray(board.link.transport.peer.chip.G)


def _rel_errors(measured: np.ndarray, true: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return np.abs(measured / true - 1)[ok]


def test_fit_is_within_bounds_and_recovers_the_true_periphery(cal: BoardCalibration) -> None:
    assert cal.problems() == []
    with memhw.connect(f"mock://?{QUIET}", calibration=None) as board:
        per = board.link.transport.peer.periphery
    assert np.abs(cal.dac["ROWS"].gain - 1 - per.row_gain_err).max() < 1e-3
    assert np.abs(cal.dac["COLS"].offset - per.col_offset).max() < 2e-4
    assert np.abs(cal.dac["GATES"].gain - 1 - per.gate_gain_err).max() < 1e-3
    assert np.abs(cal.tia_gain - 1 - per.tia_gain_err).max() < 2e-3
    assert np.abs(cal.tia_offset - per.tia_offset).max() < 1e-3
    assert cal.tia_residual.max() < 0.005 and cal.tia_r2.min() > 0.9999


def test_programmed_array_read_accuracy_before_and_after(cal: BoardCalibration) -> None:
    with memhw.connect(f"mock://?{QUIET}", calibration=None) as board:
        G = _program(board)
        ok = ~board.link.transport.peer.chip.stuck & (G > 1e-6)
        before = _rel_errors(board.read_conductance(average=16), G, ok)
        board.calibration = cal
        after = _rel_errors(board.read_conductance(average=16), G, ok)
    # before: several percent
    assert np.median(before) > 0.008 and np.percentile(before, 95) > 0.02
    # after: <= 0.5 % on every device
    assert after.max() <= 0.005, (np.median(after), after.max())
    assert np.median(after) < 0.002


def test_vmm_and_dc_reads_are_calibrated(cal: BoardCalibration) -> None:
    with memhw.connect(f"mock://?{QUIET}", calibration=cal) as board:
        G = _program(board)
        v = np.random.default_rng(2).uniform(-0.2, 0.2, (4, board.shape[0]))
        y = board.vmm(v)
        true = v @ G
        assert np.abs(y - true).max() / np.abs(true).max() < 0.005
        board.apply(rows=0.1, gates=5.0)
        i = board.read_currents(average=8)
        assert np.abs(i / (0.1 * G.sum(0)) - 1).max() < 0.005


def test_reference_conductances_accurate_after_calibration(cal: BoardCalibration) -> None:
    with memhw.connect(f"mock://?{QUIET}", calibration=None) as board:
        true_g = board.link.transport.peer.periphery.reference_conductances
        errs = {}
        for state in ("before", "after"):
            board.calibration = None if state == "before" else cal
            e = []
            for k, v in ((1, 0.8), (3, 1.5), (5, 3.0), (7, 4.0)):
                rd = read_reference(board, k, v, average=16)
                e.append(np.abs(rd["conductance"] / true_g[k] - 1))
            errs[state] = np.concatenate(e)
    assert errs["before"].max() > 0.02
    assert errs["after"].max() <= 0.005


def test_round_trip_through_the_file(cal: BoardCalibration, tmp_path: Path) -> None:
    path = save_calibration(cal, tmp_path / "x.h5")
    back = load_calibration(path)
    assert back == cal  # dataclass equality over every field but points/source
    for g in ("ROWS", "COLS", "GATES"):
        np.testing.assert_array_equal(back.dac[g].gain, cal.dac[g].gain)
    np.testing.assert_array_equal(back.tia_offset, cal.tia_offset)
    assert back.source == str(path) and back.serial == "MEMHW-EMU-0001"
    with h5py.File(path) as f:
        assert f.attrs["format"] == "memhw-board-calibration"
        assert {"date", "firmware", "protocol", "serial", "temperature_c"} <= set(f.attrs)


def test_refuses_another_boards_serial(cal: BoardCalibration, tmp_path: Path) -> None:
    path = save_calibration(cal, tmp_path / "x.h5")
    with pytest.raises(CalibrationError, match="MEMHW-EMU-0001.*MEMHW-EMU-S5"):
        memhw.connect("mock://?seed=5", calibration=path)
    with memhw.connect("mock://?seed=5", calibration=None) as board:
        with pytest.raises(CalibrationError):
            board.calibration = cal
        assert board.calibration is None


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "missing", "empty"])
def test_corrupted_or_truncated_file_gives_a_clear_error(cal: BoardCalibration, tmp_path: Path, damage: str) -> None:
    path = save_calibration(cal, tmp_path / "x.h5")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not hdf5 at all" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "flip":
        with h5py.File(path, "r+") as f:
            f["tia/gain"][3, 1] = 1.5
    else:
        with h5py.File(path, "r+") as f:
            del f["dac/GATES"]
    with pytest.raises(CalibrationError, match=str(path.name)):
        load_calibration(path)
    with pytest.raises(CalibrationError):
        memhw.connect("mock://", calibration=path)


def test_refuses_to_save_out_of_bounds_residuals(tmp_path: Path) -> None:
    # 20 % reference resistors: the TIA fits disagree between references
    with memhw.connect("mock://?reference_tolerance=0.2", calibration=None) as board:
        bad = calibrate_board(board, average=4)
    assert any("TIA" in p for p in bad.problems())
    with pytest.raises(CalibrationError, match="out of bounds"):
        save_calibration(bad, tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()
    save_calibration(bad, tmp_path / "forced.h5", force=True)  # explicitly forced


def test_auto_lookup_by_serial_logs_and_warns_when_stale(cal: BoardCalibration, cal_dir: Path, caplog) -> None:
    assert calibration_dir() == cal_dir
    with memhw.connect("mock://") as board:
        assert board.calibration is None  # empty directory
    save_calibration(cal, cal_dir / "MEMHW-EMU-0001.h5")
    with caplog.at_level(logging.INFO, logger="memhw.calibration"):
        with memhw.connect("mock://") as board:
            assert board.calibration is not None and board.calibration.serial == "MEMHW-EMU-0001"
    assert any("applied calibration" in r.message and "MEMHW-EMU-0001.h5" in r.message for r in caplog.records)
    with memhw.connect("mock://?seed=5") as board:  # another board: no file, nominal
        assert board.info.serial == "MEMHW-EMU-S5" and board.calibration is None
    old = cal.replace(date="2020-01-01T00:00:00+00:00", firmware="memhw-emu 0.9", meta={})
    save_calibration(old, cal_dir / "MEMHW-EMU-0001.h5")
    with pytest.warns(CalibrationWarning, match="days old.*firmware"):
        memhw.connect("mock://").close()
    with memhw.connect("mock://", calibration=None) as board:
        assert board.calibration is None


def test_shipped_default_file_matches_the_default_board() -> None:
    assert DEFAULT_FILE.is_file() and DEFAULT_FILE.stat().st_size < 100_000
    shipped = load_calibration(DEFAULT_FILE)
    assert shipped.serial == "MEMHW-EMU-0001" and shipped.problems() == []
    assert find_calibration("MEMHW-EMU-0001", DEFAULT_FILE.parent) == DEFAULT_FILE
    # other seeds and presets are other boards
    for q in ("seed=1", "preset=ideal", "preset=harsh", "seed=0&tia_gain_error=0.05"):
        with memhw.connect(f"mock://?{q}", calibration=None) as board:
            assert board.info.serial != "MEMHW-EMU-0001"
    with memhw.connect(f"mock://?{QUIET}", calibration=DEFAULT_FILE) as board:
        G = _program(board)
        ok = ~board.link.transport.peer.chip.stuck & (G > 1e-6)
        assert _rel_errors(board.read_conductance(average=16), G, ok).max() <= 0.005


def test_old_protocol_board_is_refused_cleanly() -> None:
    import firmware_protocol as fp

    with memhw.connect("mock://", calibration=None) as board:
        object.__setattr__(board.info, "protocol", (1, 1))
        with pytest.raises(CalibrationError, match="protocol 1.1.*not available"):
            calibrate_board(board)
    with memhw.connect("mock://", calibration=None) as board:  # a back end without the hardware
        lacking = tuple(o for o in board.info.opcodes if o != fp.SCHEMA.message("READ_REFERENCE").opcode)
        object.__setattr__(board.info, "opcodes", lacking)
        with pytest.raises(CalibrationError, match="no self-calibration hardware"):
            calibrate_board(board)
