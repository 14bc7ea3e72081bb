"""Exactly-once across lost replies, board reboots and late replies."""

from __future__ import annotations

import numpy as np
import pytest

import memhw
from memhw.board import Board
from memhw.link import Link
from memhw.mock.emulator import BoardEmulator
from memhw.mock.params import make_params
from memhw.session import load
from memhw.transport import InProcessTransport

from .helpers import connect, emulator

ROWS = np.arange(32)[:, None]


def _mask(shape) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[:, ::3] = True
    m[5] = False  # a row without devices in the middle
    return m


@pytest.mark.parametrize("shown", [True, False], ids=["progress-shown", "progress-coarse"])
def test_reset_mid_batch_reports_what_was_applied_and_logs_it(tmp_path, shown) -> None:
    """A reboot in the middle of a batch. With a progress callback the board reports every
    row, so the host knows exactly which devices were pulsed; without one it reports about
    four times a batch. Devices after the last report are *uncertain* (to be read back),
    never claimed either way."""
    board = connect("mock://?preset=paper&seed=4&rows=32")
    emu = emulator(board)
    mask = _mask(board.shape)
    boot0 = board.info.boot_id
    with memhw.Session(tmp_path / "s.h5") as session:
        session.attach(board)
        emu.schedule_reset(after_steps=10)  # reboot right after row 9 (and its progress frame)
        with pytest.raises(memhw.SessionLost) as info:
            board.pulse_set(mask, v=2.5, gate=1.2, width=1e-6,
                            progress=(lambda done, total: None) if shown else None)
        out = info.value.outcome
        truth = emu.hardware.counters.pulses.astype(bool)
        # nothing twice, nothing after the reboot
        assert emu.hardware.counters.pulses.max() == 1 and np.array_equal(truth, mask & (ROWS < 10))
        # what the host claims is never wrong: applied were, not-applied were not
        assert not (out.applied & ~truth).any() and not (out.not_applied & truth).any()
        assert not (truth & ~(out.applied | out.uncertain)).any()
        assert np.array_equal(out.applied | out.uncertain | out.not_applied, mask)
        assert out.pulses == int(out.applied.sum())
        if shown:  # every row reported: what was applied is known exactly
            assert np.array_equal(out.applied, truth)
            assert "applied (confirmed)" in str(info.value) and "rows 0-4, 6-9" in str(info.value)
        else:  # the last report came at most a quarter of the batch before the reboot
            assert out.applied.any() and (truth & ~out.applied).sum() <= mask.sum() / 4
        assert emu.counters.reboots == 1 and emu.counters.session_refusals >= 1  # the retry was refused
        # the board keeps refusing this session until the host reconnects
        with pytest.raises(memhw.SessionLost):
            board.read_conductance(rows=slice(0, 1))
        board.reconnect()
        assert board.info.boot_id == emu.boot_id != boot0
        # uncertain devices are resolved by reading them back (here: the emulator's count)
        todo = out.not_applied | (out.uncertain & ~truth)
        assert board.pulse_set(todo, v=2.5, gate=1.2, width=1e-6) == int(todo.sum())
        assert np.array_equal(emu.hardware.counters.pulses, mask.astype(int))  # every device exactly once
        board.close()
    s = load(tmp_path / "s.h5")
    try:
        log = s.log["pulse_set"]
        assert len(log) == 2
        assert log.column("status")[0] == "SessionLost" and log.column("status")[1] is None
        assert np.array_equal(log.column("applied")[0].reshape(mask.shape), out.applied)
        assert np.array_equal(log.column("uncertain")[0].reshape(mask.shape), out.uncertain)
        assert log.column("result")[0] == out.pulses
        assert "reconnect" in s.log.ops()
    finally:
        s.close()


def test_reboot_between_last_row_and_reply_confirms_every_row() -> None:
    board = connect("mock://?preset=paper&seed=4&rows=32")
    emu = emulator(board)
    mask = _mask(board.shape)
    emu.schedule_reset(after_steps=32)
    with pytest.raises(memhw.SessionLost) as info:
        board.pulse_reset(mask, v=1.7, gate=5.0)
    out = info.value.outcome
    assert np.array_equal(out.applied, mask) and not out.uncertain.any()
    assert np.array_equal(emu.hardware.counters.pulses, mask.astype(int))


class _LosingTransport(InProcessTransport):
    """Swallows the board's output while ``lose`` is set; calls ``before_write`` first on every write."""

    lose = False
    before_write = None

    def _deliver(self, data: bytes) -> None:
        if not self.lose:
            super()._deliver(data)

    def write(self, data: bytes) -> None:
        if self.before_write is not None:
            self.before_write()
        super().write(data)


def test_request_retried_across_a_reboot_is_refused_not_executed_again() -> None:
    emu = BoardEmulator(make_params("ideal"), seed=1)
    t = _LosingTransport(emu)
    board = Board(Link(t, timeout=0.05, retries=2), "test://")
    mask = np.zeros(board.shape, bool)
    mask[3, 4] = True
    t.lose = True  # the reply (and its progress) is lost ...

    def reboot_before_the_retry() -> None:
        if emu.counters.executed.get("PULSE_DEVICES"):
            t.lose = False
            if emu.counters.reboots == 0:
                emu.reboot()  # ... and the board reboots before the host retries

    t.before_write = reboot_before_the_retry
    with pytest.raises(memhw.SessionLost, match="NO_SESSION") as info:
        board.pulse_set(mask)
    assert emu.hardware.counters.pulses.sum() == 1 and emu.counters.executed["PULSE_DEVICES"] == 1
    assert emu.counters.session_refusals == 1
    assert info.value.outcome.uncertain[3, 4]  # sent, then the session was lost: re-read it


def test_late_replies_are_never_taken_for_later_requests() -> None:
    """Every reply delayed up to 0.12 s against a 0.05 s timeout: many retries,
    replies arrive late and twice, and every call still gets its own answer."""
    clean = connect("mock://?preset=ideal&seed=2&rows=8")
    slow = connect("mock://?preset=ideal&seed=2&rows=8&faults=delay:0.12&fault_seed=1", retries=20)
    try:
        for b in (clean, slow):
            m = np.zeros(b.shape, bool)
            m[np.arange(8), np.arange(8)] = True
            b.pulse_set(m, v=2.5, gate=np.linspace(0.8, 1.6, 64)[None, :].repeat(8, 0), width=1e-6)
        for k in range(6):
            rows = slice(k % 8, k % 8 + 1 + k % 3)
            assert np.array_equal(slow.read_conductance(rows=rows), clean.read_conductance(rows=rows))
            v = np.full(8, 0.05 * (k + 1))
            assert np.array_equal(slow.vmm(v), clean.vmm(v))
        st = slow.link.stats
        assert st.retries > 0 and st.stale_dropped > 0
        assert np.array_equal(emulator(slow).hardware.counters.pulses, emulator(clean).hardware.counters.pulses)
    finally:
        clean.close()
        slow.close()
