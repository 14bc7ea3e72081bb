"""Safety interlocks: limits files, firmware limits, breakdown, abort, Ctrl+C, watchdog."""

from __future__ import annotations

import time

import numpy as np
import pytest

import memhw
from memhw.limits import limits_path
from memhw.mock.emulator import BoardEmulator
from memhw.mock.params import make_params
from memhw.peer import PeerServer

from .helpers import connect, emulator


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ limits
def test_limits_file_by_serial_tightens_host_and_firmware(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MEMHW_LIMITS_DIR", str(tmp_path))
    probe = connect("mock://?preset=ideal&seed=2&rows=8")
    serial = probe.info.serial
    probe.close()
    _write(limits_path(serial), f'serial = "{serial}"\n[limits]\nv_set = 2.0\nv_gate = 3.0\nv_read = 0.3\n'
                                'width_max = 2e-6\n')
    board = memhw.connect("mock://?preset=ideal&seed=2&rows=8", calibration=None)  # limits="auto"
    emu = emulator(board)
    assert board.limits.v_set == 2.0 and board.abs_limits.v_set == 3.5
    mask = np.zeros(board.shape, bool)
    mask[0, 0] = True
    sent = board.link.stats.bytes_out
    for kw in (dict(v=2.5), dict(gate=3.5), dict(width=3e-6)):
        with pytest.raises(memhw.LimitError):
            board.pulse_set(mask, **kw)
    with pytest.raises(memhw.LimitError):
        board.apply(rows=0.5)
    assert board.link.stats.bytes_out == sent and emu.hardware.counters.pulses.sum() == 0
    # the firmware knows the limits too: a raw request past the host is refused
    with pytest.raises(memhw.BoardError) as info:
        board.link.request("PULSE_SET", {"row_start": 0, "row_count": 1, "mask": np.packbits(mask[0], bitorder="little"),
                                         "amplitude": [round(2.5 / board.info.dac_line_lsb)], "gate": [3277],
                                         "width": [100]})
    assert info.value.status_name == "LIMIT" and emu.hardware.counters.pulses.sum() == 0
    assert board.pulse_set(mask, v=2.0, gate=1.0) == 1  # within the tighter limits
    # a reboot restores the maxima on the board; reconnect re-applies the file's limits
    emu.reboot()
    board.reconnect()
    assert emu.hardware.limits.set_max == round(2.0 / board.info.dac_line_lsb) and board.limits.v_set == 2.0
    board.close()


@pytest.mark.parametrize("text, match", [
    ("[limits]\nv_set = 4.0\n", "looser than the board's absolute maximum"),
    ("[limits]\nv_gate = 6\n", "looser"),
    ("[limits]\nwidth_max = 1e-3\n", "looser"),
    ("[limits]\nv_set = -1\n", "negative"),
    ("[limits]\nv_set = nan\n", "finite"),
    ("[limits]\nv_sett = 1.0\n", "unknown limit"),
    ("[limits]\nv_set = \"high\"\n", "finite number"),
    ("[limits\nv_set = 1\n", "unreadable"),
    ("serial = \"OTHER-BOARD\"\n[limits]\nv_set = 1.0\n", "is for board"),
    ("vset = 1\n", "unknown top-level"),
])
def test_bad_or_looser_limits_file_is_refused_and_nothing_changes(tmp_path, text, match) -> None:
    board = connect("mock://?preset=ideal&seed=2&rows=8")
    emu = emulator(board)
    sent = board.link.stats.bytes_out
    path = _write(tmp_path / "chip.toml", text)
    with pytest.raises(memhw.LimitError, match=match):
        board.set_limits(path)
    assert board.limits == board.abs_limits and board.link.stats.bytes_out == sent
    assert emu.hardware.limits == emu.hardware.abs_limits
    with pytest.raises(memhw.LimitError, match="looser"):
        memhw.connect("mock://?preset=ideal&rows=8", calibration=None, limits={"v_read": 2.0})
    board.close()


def test_firmware_refuses_set_limits_above_its_maxima() -> None:
    board = connect("mock://?preset=ideal&seed=2&rows=8")
    with pytest.raises(memhw.BoardError, match="LIMIT"):
        board.link.request("SET_LIMITS", {"read_max": 100, "set_max": 30000, "reset_max": 100, "gate_max": 100,
                                          "width_max": 10})
    assert emulator(board).hardware.limits == emulator(board).hardware.abs_limits
    board.close()


def test_missing_interlock_would_break_devices() -> None:
    """The mock's breakdown model: 4.8 V SET pulses destroy devices (v_abs_max 4.5 V).
    With the board limit raised to 4.9 V (a missing interlock) they go through;
    with the default interlock (3.5 V) they are refused and nothing breaks."""
    mask = np.zeros((8, 64), bool)
    mask[2, :16] = True
    with connect("mock://?preset=paper&seed=3&rows=8&v_set_max=4.9") as unsafe:
        unsafe.pulse_set(mask, v=4.8, gate=1.0)
        assert emulator(unsafe).chip.broken[mask].all()
    with connect("mock://?preset=paper&seed=3&rows=8") as safe:
        with pytest.raises(memhw.LimitError, match="outside the limit"):
            safe.pulse_set(mask, v=4.8, gate=1.0)
        assert not emulator(safe).chip.broken.any() and emulator(safe).hardware.counters.pulses.sum() == 0


# ------------------------------------------------------------------ abort, Ctrl+C
def test_ctrl_c_inside_a_board_block_sends_abort_and_grounds() -> None:
    board = connect("mock://?preset=ideal&seed=2&rows=8")
    emu = emulator(board)
    with pytest.raises(KeyboardInterrupt):
        with board:
            board.apply(rows=0.2, gates=5.0)
            assert emu.levels["ROWS"].any()
            raise KeyboardInterrupt
    assert emu.counters.executed.get("ABORT", 0) >= 1
    assert not any(v.any() for v in emu.levels.values())


# ------------------------------------------------------------------ watchdog
def test_watchdog_in_process_grounds_at_the_next_receive() -> None:
    board = connect("mock://?preset=ideal&seed=2&rows=8&watchdog=0.1")
    emu = emulator(board)
    board.apply(rows=0.2, gates=5.0)
    assert emu.check_watchdog() is False  # host not silent yet
    time.sleep(0.15)
    status = board.status()  # the next bytes: the watchdog trips first
    assert emu.counters.watchdog_trips == 1 and not any(v.any() for v in emu.levels.values())
    assert status.last_error.startswith("watchdog:")
    board.close()


def test_watchdog_served_grounds_without_any_host_traffic() -> None:
    emu = BoardEmulator(make_params("ideal", rows=8), seed=2, watchdog=0.2)
    with PeerServer.tcp(emu) as server:
        board = connect(server.address, timeout=1.0)
        board.apply(rows=0.2, gates=5.0)
        deadline = time.monotonic() + 5
        while emu.counters.watchdog_trips == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert emu.counters.watchdog_trips == 1 and not any(v.any() for v in emu.levels.values())
        board.close()


def test_watchdog_discards_a_half_sent_request() -> None:
    emu = BoardEmulator(make_params("ideal", rows=8), seed=2, watchdog=0.1)
    conn = emu.open(lambda data: None)
    import firmware_protocol as fp

    payload = fp.encode("VMM", "request", {"n": 40, "gains": [255], "inputs": np.zeros(40 * 8, np.int16)})
    wire = fp.encode_message(seq=7, opcode=fp.SCHEMA.message("VMM").opcode, payload=payload, max_payload=240)
    first = wire[: wire.index(b"\x00") + 1]
    conn.receive(first)
    assert conn.assembler.pending
    assert emu.check_watchdog(time.monotonic() + 0.2) and not conn.assembler.pending
    assert emu.counters.watchdog_trips == 1
