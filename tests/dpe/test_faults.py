"""Lost and garbled lines on the old link: a pulse is never applied twice, nothing hangs,
no malformed block is ever taken for data."""

from __future__ import annotations

import time

import numpy as np
import pytest

import memhw
from memhw.dpe.linefaults import LineFaults, LineFaultSpec

from .conftest import bridged

FAST = "timeout=0.2&sync_retries=2"


def _half_mask(rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((128, 64), bool)
    m[rows, cols] = True
    return m


def _twelves(emu) -> int:
    return emu.firmware.counters.commands.get(12, 0)


def test_lost_ack_after_a_fresh_read_is_settled_by_the_read_back() -> None:
    with bridged("ideal", 3, query=FAST) as (board, emu):
        mask = _half_mask(slice(4, 6), slice(0, 64))
        board.read_conductance()            # the reference the bridge compares with
        emu.faults.inject("mute", after=1)  # the sync's "go" passes, the acknowledgement is lost
        assert board.pulse_set(mask, v=2.5, gate=1.2, width=1e-6) == mask.sum()
        assert emu.hardware.counters.pulses[mask].tolist() == [1] * mask.sum()
        assert emu.hardware.counters.pulses.sum() == mask.sum() and _twelves(emu) == 1


@pytest.mark.parametrize("kind", ["mute", "lose"])
def test_undecidable_loss_is_reported_unconfirmed_never_resent(kind: str) -> None:
    """No read since the half's last pulse: the bridge cannot tell, says so, sends nothing again."""
    with bridged("ideal", 3, query=FAST) as (board, emu):
        first = _half_mask(slice(0, 1), slice(0, 8))
        board.pulse_set(first, v=2.5, gate=1.0)     # the half has changed since any read
        mask = _half_mask(slice(8, 10), slice(0, 64))
        # mute: the acknowledgement is lost (the pulse was applied); lose: the header is lost
        # on its way (the pulse never happened). The host cannot tell the two apart.
        emu.faults.inject(kind, after=1)
        with pytest.raises(memhw.BoardError, match="not resent: each of its 128 devices was pulsed once or not at all") as e:
            board.pulse_set(mask, v=2.5, gate=1.2, width=1e-6)
        assert e.value.status_name == "INTERNAL"
        assert np.array_equal(e.value.outcome.uncertain, mask) and not e.value.outcome.applied.any()
        applied = emu.hardware.counters.pulses[mask]
        assert set(applied.tolist()) == ({1} if kind == "mute" else {0})
        assert _twelves(emu) == (2 if kind == "mute" else 1)  # no pulse command was repeated ...
        assert emu.firmware.counters.commands.get(10) == 1     # ... but the half was read back


def test_pre_read_makes_every_loss_decidable() -> None:
    with bridged("ideal", 3, query=FAST + "&pre_read=1") as (board, emu):
        board.pulse_set(_half_mask(slice(0, 1), slice(0, 8)), v=2.5, gate=1.0)
        mask = _half_mask(slice(8, 10), slice(0, 64))
        emu.faults.inject("mute", after=2)  # pass the pre-read's and the sync's answers
        assert board.pulse_set(mask, v=2.5, gate=1.2, width=1e-6) == mask.sum()
        assert emu.hardware.counters.pulses[mask].tolist() == [1] * mask.sum()


def test_garbled_ack_is_not_taken_for_one() -> None:
    with bridged("ideal", 3, query=FAST) as (board, emu):
        mask = _half_mask(slice(70, 72), slice(10, 20))
        board.read_conductance(rows=slice(64, 128))
        emu.faults.inject("garble", after=1)   # "go" passes, "Reset" (SET's) arrives damaged
        assert board.pulse_set(mask, v=2.5, gate=1.2) == mask.sum()
        assert emu.hardware.counters.pulses[mask].tolist() == [1] * mask.sum()
        assert emu.faults.counts["garble"] == 1


def test_random_line_faults_never_double_apply_never_hang() -> None:
    spec = "mute:0.05,lose:0.005,drop:0.002,garble:0.002,noise:0.002"
    with bridged("ideal", 3, query=FAST, faults=spec) as (board, emu):
        rng = np.random.default_rng(1)
        calls = np.zeros(board.shape, int)
        confirmed = np.zeros(board.shape, int)
        failures = 0
        t0 = time.monotonic()
        for k in range(64):  # at least 16 rounds, then until a failure was seen (timing moves the draws)
            if k >= 16 and failures:
                break
            if k % 4 < 2:  # otherwise the pulse has no fresh read to settle a lost acknowledgement with
                try:
                    g = board.read_conductance(rows=slice(0, 64))
                    # a block that reached the host is the array, never a repaired garbled one
                    assert np.abs(g - emu.chip.G[:64]).max() <= board.info.adc_lsb / 1e4 / 0.2
                except memhw.BoardError:
                    failures += 1
            mask = _half_mask(slice(0, 64), slice(None)) & (rng.random(board.shape) < 0.1)
            calls += mask
            try:
                if k % 2:
                    board.pulse_set(mask, v=2.5, gate=rng.uniform(0.7, 1.6), width=1e-6)
                else:
                    board.pulse_reset(mask, v=rng.uniform(0.5, 1.7), gate=5.0, width=1e-6)
                confirmed += mask
            except memhw.BoardError as exc:
                failures += 1
                assert exc.outcome.uncertain[mask].all()
        pulses = emu.hardware.counters.pulses
        assert np.all(pulses <= calls), "a device was pulsed more often than it was asked for"
        assert np.all(pulses >= confirmed), "a pulse reported applied was not"
        assert sum(emu.faults.counts.values()) > 0 and failures > 0  # both paths were taken
        assert time.monotonic() - t0 < 60


def test_a_silent_board_fails_fast() -> None:
    with bridged("ideal", 3, query="timeout=0.1&sync_retries=1") as (board, emu):
        emu.faults = LineFaults(LineFaultSpec(mute=1.0))
        t0 = time.monotonic()
        with pytest.raises(memhw.BoardError, match="does not answer"):
            board.read_conductance()
        with pytest.raises(memhw.BoardError, match="not sent"):
            board.pulse_set(_half_mask(slice(0, 1), slice(0, 1)))
        assert time.monotonic() - t0 < 2.0 and emu.hardware.counters.pulses.sum() == 0
