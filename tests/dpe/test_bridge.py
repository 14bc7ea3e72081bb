"""The bridge: memhw's Board over the original board's commands, and what it announces missing."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import memhw
from memhw import cli
from memhw.calibration import calibrate_board
from memhw.dpe.emulator import DpeEmulator
from memhw.peer import PeerServer

from .conftest import bridged, served

MISSING = ("PROGRAM", "READ_REFERENCE", "READ_DAC")


def test_hello_announces_what_the_old_firmware_cannot_do(paper) -> None:
    board, _ = paper
    assert not any(board.supports(m) for m in MISSING)
    for m in ("READ_MAP", "PULSE_SET", "PULSE_RESET", "VMM", "SET_LEVELS", "READ_CURRENTS", "GROUND_ALL", "WAIT",
              "SET_LIMITS"):
        assert board.supports(m), m
    assert board.info.serial.startswith("DPE-") and board.info.chip == ""
    assert board.info.limits.v_gate == 5.0 and board.info.tia_gains == (1e3, 1e4, 1e5, 1e6)


def test_missing_capabilities_are_one_line_not_available(paper) -> None:
    board, _ = paper
    with pytest.raises(memhw.NotSupported, match="does not offer PROGRAM"):
        memhw.program(board, 50e-6, on_board=True)
    with pytest.raises(memhw.CalibrationError, match="not available"):
        calibrate_board(board)
    with pytest.raises(memhw.BoardError, match="floating every line is not available"):
        board.float_all()


def test_cli_says_not_available_in_one_line(capsys) -> None:
    with served() as (_, path):
        assert cli.main(["program", "random", "--on-board", "--board", f"dpe://{path}"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "does not offer PROGRAM" in err
        assert cli.main(["calibrate", "board", "--board", f"dpe://{path}"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "not available" in err


def test_pulses_go_per_half_with_the_bottom_flag_and_count_once(ideal) -> None:
    board, emu = ideal
    mask = np.zeros(board.shape, bool)
    mask[[10, 70], 5] = True
    before = dict(emu.firmware.counters.commands)
    assert board.pulse_set(mask, v=2.5, gate=1.2, width=1e-6) == 2
    assert board.pulse_reset(mask, v=1.7, gate=5.0, width=1e-6) == 2
    run = {k: v - before.get(k, 0) for k, v in emu.firmware.counters.commands.items()}
    assert run.get(12) == 2 and run.get(11) == 2  # one command per half, fast modes
    assert emu.hardware.counters.pulses[mask].tolist() == [2, 2] and emu.hardware.counters.pulses.sum() == 4


def test_one_command_per_distinct_width_and_slow_mode_option() -> None:
    with bridged("ideal", 3, query="set_mode=slow") as (board, emu):
        mask = np.zeros(board.shape, bool)
        mask[0, :4] = True
        widths = np.where(np.arange(64) < 2, 1e-6, 2e-6)[None, :].repeat(128, 0)
        t0 = emu.busy_time
        board.pulse_set(mask, v=2.5, gate=1.0, width=widths)
        assert emu.firmware.counters.commands.get(17) == 1  # slow: the width is ignored, one command
        assert emu.busy_time - t0 > 5e-3
        board.pulse_reset(mask, v=1.7, gate=5.0, width=widths)
        assert emu.firmware.counters.commands.get(11) == 2  # fast RESET: one command per width


def test_text_resolution_and_limits_are_held_by_the_bridge(ideal) -> None:
    board, emu = ideal
    mask = np.zeros(board.shape, bool)
    mask[1, 1] = True
    with pytest.raises(memhw.BoardError, match="below the 10 mV resolution"):
        board.pulse_set(mask, v=0.004, gate=1.0)
    board.set_limits({"v_set": 2.0})
    sent = emu.bytes_in
    with pytest.raises(memhw.LimitError):
        board.pulse_set(mask, v=2.5)  # the host refuses first
    # a request that slips past the host's check is refused by the bridge, not sent
    fields = {"row_start": 1, "row_count": 1, "mask": np.packbits(mask[1], bitorder="little"),
              "amplitude": np.array([board.codes.line_codes(2.5)], np.int16), "gate": np.array([3277], np.int16),
              "width": np.array([203], np.uint16)}
    with pytest.raises(memhw.BoardError, match="LIMIT|amplitude outside"):
        board.link.request("PULSE_SET", fields)
    assert emu.bytes_in == sent and emu.hardware.counters.pulses.sum() == 0


def test_reads_and_vmm_equal_the_ideal_array(ideal) -> None:
    board, emu = ideal
    rng = np.random.default_rng(0)
    board.pulse_set(rng.random(board.shape) < 0.5, v=2.5, gate=rng.uniform(0.7, 1.6, board.shape), width=1e-6)
    g = board.read_conductance()
    lsb = board.info.adc_lsb / board.info.tia_gains[1] / 0.2  # read at 10 kohm
    assert np.abs(g - emu.chip.G).max() <= lsb
    v = rng.uniform(-0.2, 0.2, (20, 128))
    y = board.vmm(v)
    lsb = board.info.dac_line_lsb  # host code -> %.4f text -> the board's DAC
    exact = np.rint(np.rint(np.rint(v / lsb) * lsb / 1e-4) * 1e-4 / lsb) * lsb @ emu.chip.G
    assert np.abs(y - exact).max() <= 0.5 * board.info.adc_lsb / 1e3 + 1e-12
    assert board.read_conductance(rows=slice(60, 70)).shape == (10, 64)  # across the halves


def test_wait_is_a_host_timer(ideal) -> None:
    board, emu = ideal
    before = emu.bytes_in
    t0 = time.monotonic()
    assert board.wait(0.05) == pytest.approx(0.05)
    assert 0.05 <= time.monotonic() - t0 < 1.0 and emu.bytes_in == before


def test_socket_address_and_serial_option() -> None:
    emulator = DpeEmulator(seed=1)
    with PeerServer.tcp(emulator) as server:
        with memhw.connect(f"dpe+{server.address}?serial=LAB-7&timeout=1", calibration=None, limits=None) as b:
            assert b.info.serial == "LAB-7" and b.read_conductance(rows=0).shape == (1, 64)


def test_nothing_answering_fails_fast_and_clearly() -> None:
    primary, secondary = os.openpty()
    try:
        t0 = time.monotonic()
        with pytest.raises(memhw.TransportError, match="no original"):
            memhw.connect(f"dpe://{os.ttyname(secondary)}?timeout=0.1&sync_retries=1")
        assert time.monotonic() - t0 < 2.0
    finally:
        os.close(primary)
        os.close(secondary)


@pytest.mark.parametrize("query, message", [("bogus=1", "unknown option"), ("set_mode=medium", "set_mode"),
                                            ("auto_gains=2,1", "ascending"), ("reply_eol=tab", "reply_eol")])
def test_bad_options_are_refused_before_opening(query, message) -> None:
    with pytest.raises(memhw.AddressError, match=message):
        memhw.connect(f"dpe:///nonexistent?{query}")


class _AbortAfter:
    """An operation context whose host asks to stop after ``n`` checks (as an ABORT would)."""

    def __init__(self, n: int):
        self.n = n
        self.progress_reports: list[int] = []

    def should_stop(self) -> bool:
        self.n -= 1
        return self.n < 0

    def progress(self, rows_done: int, row_count: int) -> None:
        self.progress_reports.append(rows_done)

    def step_done(self, steps: int) -> None:
        return None


def test_abort_stops_between_halves_never_inside_one(ideal) -> None:
    from memhw.dpe.handlers import HANDLERS
    from memhw.peer import Aborted

    board, emu = ideal
    bridge = board.link.transport.peer.bridge
    mask = np.zeros((100, 64), bool)
    mask[[0, 50, 70, 99], 3] = True  # rows 20, 70, 90 and 119 of the array
    values = {"row_start": 20, "row_count": 100, "mask": np.packbits(mask.ravel(), bitorder="little"),
              "amplitude": np.array([board.codes.line_codes(2.5)]), "gate": np.array([3277]),
              "width": np.array([203])}
    op = _AbortAfter(1)
    with pytest.raises(Aborted) as e:
        HANDLERS["PULSE_SET"](bridge, values, op)
    assert e.value.reply == {"rows_done": 44, "pulses": 1} and op.progress_reports == [44]  # the top half only
    assert emu.hardware.counters.pulses[20, 3] == 1 and emu.hardware.counters.pulses.sum() == 1


def test_reconnect_reopens_the_port(ideal) -> None:
    board, emu = ideal
    board.reconnect()
    assert board.read_conductance(rows=1).shape == (1, 64) and emu.firmware.counters.commands[10] >= 1


def test_dialect_variants_are_options_not_code() -> None:
    """A lab whose board repeats VMM answers, warms up with a dummy VMM, ends lines with LF
    only and packs enable bits MSB first: the same bridge, told so in the address."""
    from memhw.dpe.dialect import Dialect
    from memhw.mock.params import make_params

    query = "vmm_repeat=3&vmm_warmup=2&reply_eol=lf&enable_bit_order=msb"
    dialect = Dialect.from_options(dict(q.split("=") for q in query.split("&")))
    emulator = DpeEmulator(make_params("ideal"), seed=3, dialect=dialect)
    with PeerServer.pty(emulator) as server:
        with memhw.connect(f"dpe://{server.address}?{query}", calibration=None, limits=None) as board:
            rng = np.random.default_rng(2)
            board.pulse_set(rng.random(board.shape) < 0.5, v=2.5, gate=1.2)
            v = rng.uniform(-0.2, 0.2, (4, 128))
            y = board.vmm(v)
            assert np.abs(y - v @ emulator.chip.G).max() < 2e-6
            mask = np.zeros(128, bool)
            mask[[3, 77]] = True
            board.apply(rows=0.1, row_mask=mask, gates=5.0)  # undriven rows disabled: MSB-first enable bytes
            assert np.allclose(board.read_currents(), 0.1 * emulator.chip.G[[3, 77]].sum(0), rtol=0.01, atol=2e-8)
