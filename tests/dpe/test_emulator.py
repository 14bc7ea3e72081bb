"""The emulated original firmware, spoken to byte for byte over a real pty with pyserial."""

from __future__ import annotations

import numpy as np
import pytest
import serial

from memhw.dpe.emulator import DpeEmulator
from memhw.mock.emulator import BoardEmulator
from memhw.mock.params import make_params

from .conftest import served


class Terminal:
    """A raw pyserial terminal: what a lab's own script would do with the board."""

    def __init__(self, path: str):
        self.port = serial.serial_for_url(path, baudrate=115200, timeout=2.0)

    def send(self, *lines: str) -> None:
        self.port.write("".join(line + "\n" for line in lines).encode())

    def line(self) -> str:
        raw = self.port.readline()
        assert raw.endswith(b"\r\n"), f"no complete line in time: {raw!r}"
        return raw[:-2].decode()

    def silent(self) -> bool:
        self.port.timeout = 0.2
        try:
            return self.port.readline() == b""
        finally:
            self.port.timeout = 2.0


@pytest.fixture
def term():
    with served("paper", 5) as (emulator, path):
        t = Terminal(path)
        yield t, emulator
        t.port.close()


def _matrix(value: float, rows=slice(None), cols=slice(None)) -> str:
    m = np.zeros((64, 64))
    m[rows, cols] = value
    return ",".join(f"{x:.2f}" for x in m.ravel())


def test_sync_and_batch_read(term) -> None:
    t, emu = term
    t.send("1024")
    assert t.line() == "go"
    t.send("10,0.20,5.00,2,1000,900,1010,8,8,1")
    lines = [t.line() for _ in range(64)]
    assert t.line().startswith("Batch")
    codes = np.array([[int(x) for x in line.split(",")] for line in lines])
    assert codes.shape == (64, 64) and codes.min() >= 0 and codes.max() <= 65535
    g = -(codes - 32768) * (10 / 65536) / 1e4 / 0.2  # the driver's conversion
    true = emu.chip.g_eff()[64:]
    assert np.median(np.abs(g - true)) < 2e-6  # periphery errors of the paper preset, nothing more


def test_set_and_reset_are_acknowledged_swapped_and_pulse_only_nonzero_devices(term) -> None:
    t, emu = term
    pulses = emu.hardware.counters.pulses
    t.send("12,8,8,193,5,0", _matrix(2.5, 3, slice(0, 8)), _matrix(1.2, 3, slice(0, 8)))
    assert t.line() == "Reset"
    assert pulses[3, :8].tolist() == [1] * 8 and pulses.sum() == 8
    t.send("11,8,8,193,5,5,1", _matrix(1.7, 2, slice(60, 64)), _matrix(5.0))
    assert t.line() == "Set"
    assert pulses[66, 60:].tolist() == [1] * 4 and pulses.sum() == 12
    assert emu.hardware.counters.set_pulses == 8 and emu.hardware.counters.reset_pulses == 4


def test_slow_modes_ignore_the_width_field_and_take_milliseconds(term) -> None:
    t, emu = term
    t0 = emu.busy_time
    t.send("17,8,8,15,10,0", _matrix(2.5, slice(0, 10)), _matrix(1.0, slice(0, 10)))
    assert t.line() == "Reset"
    assert emu.busy_time - t0 == pytest.approx(10 * (5e-3 + 5e-6), rel=1e-3)  # 10 rows of ~5 ms
    t0 = emu.busy_time
    t.send("18,8,8,500,0", _matrix(1.0, slice(0, 4)), _matrix(5.0))
    assert t.line() == "Set"
    assert emu.busy_time - t0 == pytest.approx(4 * (500e-6 + 5e-6), rel=1e-3)


def test_resync_or_bad_data_abandons_a_pulse_command(term) -> None:
    t, emu = term
    t.send("12,8,8,193,5,0", _matrix(2.5), "1024")  # gates never came: sync instead
    assert t.line() == "go"
    t.send("12,8,8,193,5,0", _matrix(2.5), "1.0,2.0")  # a gate line of 2 values
    t.send("12,8,8,193,5,0", "2.5,x" + ",0" * 4094, _matrix(1.0))  # an amplitude that is no number
    assert t.silent()
    assert emu.hardware.counters.pulses.sum() == 0
    assert emu.firmware.counters.abandoned == 3
    t.send("99,1,2", "hello")  # unknown commands are ignored
    assert t.silent() and emu.firmware.counters.ignored == 3


def test_vmm_batch(term) -> None:
    t, emu = term
    gates = ",".join(["5.00"] * 64)
    rows = np.random.default_rng(0).uniform(-0.2, 0.2, (3, 128))
    t.send(f"20,0,1,1000,5,128,64,2,3,{','.join(['255'] * 24)},{gates}",
           *["," + ",".join(f"{v:.4f}" for v in r) for r in rows])
    lines = [t.line() for _ in range(3)]
    assert t.line() == "end"
    codes = np.array([[int(x) for x in line.split(",")] for line in lines])
    currents = -(codes - 32768) * (10 / 65536) / 1e4  # gain 2 = 10 kohm
    expected = rows @ emu.chip.g_eff()
    assert np.linalg.norm(currents - expected) / np.linalg.norm(expected) < 0.1  # periphery errors


def test_same_seed_same_chip_as_mock() -> None:
    p = make_params("paper")
    assert np.array_equal(DpeEmulator(p, seed=9).chip.G, BoardEmulator(p, seed=9).chip.G)


def test_muted_answers_still_execute(term) -> None:
    t, emu = term
    emu.faults.inject("mute")
    t.send("12,8,8,193,5,0", _matrix(2.5, 0, 0), _matrix(1.0, 0, 0))
    assert t.silent()
    assert emu.hardware.counters.pulses[0, 0] == 1 and emu.faults.counts["mute"] == 1
