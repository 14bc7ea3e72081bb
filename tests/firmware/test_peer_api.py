"""The C core behind the peer API: addresses, the CLI server, the watchdog, disconnects,
resumed sessions and board-side reboots, as the Python peer offers them."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

import firmware_protocol as fp
import memhw
from memhw.cfirmware import FIRMWARE_NAME, CBoard
from memhw.mock.params import make_params


def _connect(address: str, **kw) -> memhw.Board:
    return memhw.connect(address, calibration=None, limits=None, **kw)


def test_mock_address_selects_the_firmware() -> None:
    with _connect("mock://?preset=ideal&rows=8&firmware=c") as board:
        assert board.info.firmware == FIRMWARE_NAME and board.info.shape == (8, 64)
        assert isinstance(board.link.transport.peer, CBoard)
        assert board.link.transport.peer.program_capacity == 8 * 64
    with _connect("mock://?preset=ideal&rows=8&firmware=python") as board:
        assert board.info.firmware != FIRMWARE_NAME
    with pytest.raises(memhw.AddressError, match="firmware must be one of python, c"):
        _connect("mock://?firmware=rust")


def test_a_board_larger_than_the_build_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit the C core's build"):
        CBoard(make_params("ideal", rows=256))


def test_mock_serve_with_the_c_firmware() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "memhw.cli", "mock", "serve", "--firmware", "c", "--tcp",
                             "127.0.0.1:0", "--options", "seed=2&rows=8"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        address = proc.stdout.readline().split(" on ")[1].split()[0]
        with _connect(address, timeout=5.0) as board:
            assert board.info.firmware == FIRMWARE_NAME
            assert board.read_conductance().shape == (8, 64)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_watchdog_grounds_levels_and_drops_a_half_sent_request() -> None:
    board = _connect("mock://?preset=ideal&seed=2&rows=8&watchdog=0.1&firmware=c")
    peer = board.link.transport.peer
    board.apply(rows=0.2, gates=5.0)
    assert peer.check_watchdog() is False and peer.levels["ROWS"].any()
    time.sleep(0.15)
    status = board.status()  # the next bytes: the watchdog trips first
    assert peer.counters.watchdog_trips == 1 and not any(v.any() for v in peer.levels.values())
    assert status.last_error.startswith("watchdog: host silent for") and "DC levels applied" in status.last_error
    board.close()

    conn = peer.open(lambda data: None)
    payload = fp.encode("VMM", "request", {"n": 40, "gains": [255], "inputs": np.zeros(40 * 8, np.int16)})
    wire = fp.encode_message(seq=7, opcode=fp.SCHEMA.message("VMM").opcode, payload=payload, max_payload=240)
    conn.receive(wire[: wire.index(b"\x00") + 1])
    assert conn.assembler.pending
    assert peer.check_watchdog(time.monotonic() + 0.2) and not conn.assembler.pending


def test_disconnect_grounds_and_the_session_is_resumed_with_its_cache() -> None:
    board = _connect("mock://?preset=ideal&seed=2&rows=8&firmware=c")
    peer = board.link.transport.peer
    board.apply(rows=0.1, gates=5.0)
    mask = np.zeros(board.shape, bool)
    mask[1, :4] = True
    board.pulse_set(mask, v=2.5, gate=1.0)
    wire = board.link.last_wire
    board.link.transport.close()                   # the cable is pulled
    assert not any(v.any() for v in peer.levels.values())
    board.reconnect()                              # HELLO RESUME
    assert peer.counters.resumes == 1
    board.link.transport.write(wire)               # the batch again: answered from the cache
    board.status()
    assert peer.counters.cache_hits == 1 and int(peer.hardware.counters.pulses.sum()) == 4
    board.close()


def test_reboot_mid_batch_applies_nothing_twice() -> None:
    board = _connect("mock://?preset=paper&seed=4&rows=16&firmware=c", timeout=0.2, retries=2)
    peer = board.link.transport.peer
    mask = np.zeros(board.shape, bool)
    mask[:, ::3] = True
    # PULSE_DEVICES reports progress four times a request here (every 4th of 16 rows): the reboot
    # comes right after the 8th row's progress frame, so the host knows exactly what was applied
    peer.schedule_reset(after_steps=8)
    with pytest.raises(memhw.SessionLost) as info:
        board.pulse_set(mask, v=2.5, gate=1.2)
    applied = info.value.outcome.applied
    assert np.array_equal(peer.hardware.counters.pulses, applied.astype(int))
    assert applied[:8].sum() == mask[:8].sum() and not applied[8:].any()
    board.reconnect()
    assert board.info.boot_id == peer.boot_id and peer.counters.reboots == 1
    board.pulse_set(mask & ~applied, v=2.5, gate=1.2)
    assert np.array_equal(peer.hardware.counters.pulses, mask.astype(int))
    board.close()
