"""Link-level behaviour: retries, stale replies, versions, board refusals, progress, abort."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import firmware_protocol as fp
import memhw
from memhw.board import Board
from memhw.link import Link
from memhw.mock.emulator import BoardEmulator
from memhw.mock.params import make_params
from memhw.transport import InProcessTransport


class HoldingTransport(InProcessTransport):
    """In-process transport that can swallow or hold back the board's next replies."""

    def __init__(self, peer):
        super().__init__(peer)
        self.drop_replies = 0      # replies to swallow (as if lost on the wire)
        self.hold_next = False     # keep the next reply back until release()
        self.held = b""

    def _deliver(self, data: bytes) -> None:
        progress = all(f.flags & fp.FLAGS["PROGRESS"] for f in fp.FrameDecoder().feed(data))
        if self.drop_replies and not progress:  # lose final replies; progress frames pass
            self.drop_replies -= 1
            return
        if self.hold_next:
            self.hold_next = False
            self.held += data
            return
        super()._deliver(data)

    def release(self) -> None:
        data, self.held = self.held, b""
        super()._deliver(data)


def _board(preset: str = "ideal", **kw) -> tuple[Board, BoardEmulator, HoldingTransport]:
    emu = BoardEmulator(make_params(preset), seed=5)
    t = HoldingTransport(emu)
    return Board(Link(t, timeout=kw.get("timeout", 0.05), retries=kw.get("retries", 3)), "test://"), emu, t


def test_lost_reply_is_retried_and_the_pulse_applied_once() -> None:
    board, emu, t = _board()
    mask = np.zeros(board.shape, bool)
    mask[2, 3] = mask[7, 9] = True
    t.drop_replies = 2
    assert board.pulse_set(mask, v=2.5, gate=1.2, width=1e-6) == 2
    assert board.link.stats.retries == 2
    assert emu.hardware.counters.pulses[mask].tolist() == [1, 1]
    assert emu.hardware.counters.pulses.sum() == 2
    assert emu.counters.executed["PULSE_DEVICES"] == 1
    assert emu.counters.cache_hits == 2


def test_all_replies_lost_is_a_timeout_and_nothing_is_repeated() -> None:
    board, emu, t = _board(retries=2)
    mask = np.zeros(board.shape, bool)
    mask[0, 0] = True
    t.drop_replies = 3
    with pytest.raises(memhw.LinkTimeout, match="3 attempts"):
        board.pulse_set(mask)
    assert emu.hardware.counters.pulses.sum() == 1
    assert isinstance(memhw.LinkTimeout("x"), TimeoutError)


def test_late_reply_after_timeout_is_not_taken_for_the_next_answer() -> None:
    board, emu, t = _board(retries=0)
    # make row 0 and row 1 distinguishable
    mask = np.zeros(board.shape, bool)
    mask[1, :] = True
    board.pulse_set(mask, v=2.5, gate=1.5, width=1e-6)
    t.hold_next = True
    with pytest.raises(memhw.LinkTimeout):
        board.read_conductance(rows=slice(0, 1))
    t.release()  # row 0's reply arrives late, before the next request's reply
    g1 = board.read_conductance(rows=slice(1, 2))
    assert board.link.stats.stale_dropped == 1
    assert g1.min() > 100e-6  # row 1's programmed values, not row 0's


def test_major_version_mismatch_is_refused() -> None:
    class FutureBoard(BoardEmulator):
        def identity(self):
            return {**super().identity(), "major": fp.MAJOR + 1}

    t = InProcessTransport(FutureBoard(make_params("ideal")))
    with pytest.raises(memhw.VersionMismatch, match="update the host software"):
        Board(Link(t), "future://")


def _raw_session(emu: BoardEmulator) -> tuple[InProcessTransport, int]:
    """A transport to ``emu`` with a session opened by a raw HELLO; its session id."""
    t = InProcessTransport(emu)
    hello = fp.encode("HELLO", "request", {"host_major": fp.MAJOR, "host_minor": fp.MINOR, "mode": 0, "session": 0,
                                           "client": "raw test"})
    t.write(fp.encode_frame(seq=1, opcode=fp.SCHEMA.message("HELLO").opcode, payload=hello))
    (frame,) = fp.FrameDecoder().feed(t.read(0.1))
    assert frame.status == fp.STATUS["OK"] and frame.session != 0
    return t, frame.session


def test_board_refuses_a_request_from_another_major_version() -> None:
    t, session = _raw_session(BoardEmulator(make_params("ideal")))
    t.write(fp.encode_frame(seq=2, opcode=fp.SCHEMA.message("STATUS").opcode, session=session, version=fp.MAJOR + 1))
    (frame,) = fp.FrameDecoder().feed(t.read(0.1))
    assert frame.status == fp.STATUS["BAD_VERSION"]


def test_emulator_enforces_its_own_limits_on_raw_requests() -> None:
    board, emu, _ = _board()
    n = board.shape[0] * board.shape[1]
    too_high = int(round((board.info.limits.v_set + 0.5) / board.info.dac_line_lsb))
    fields = {"row_start": 0, "row_count": board.shape[0],
              "mask": np.packbits(np.ones(n, bool), bitorder="little"),
              "amplitude": [too_high], "gate": [1000], "width": [100]}
    with pytest.raises(memhw.BoardError) as err:
        board.link.request("PULSE_SET", fields)
    assert err.value.status_name == "LIMIT" and "amplitude" in str(err.value)
    assert emu.hardware.counters.pulses.sum() == 0
    fields["amplitude"] = [1000]
    fields["gate"] = [int(round(6.0 / board.info.dac_gate_lsb))]
    with pytest.raises(memhw.BoardError, match="gate"):
        board.link.request("PULSE_SET", fields)
    with pytest.raises(memhw.BoardError, match="LIMIT"):
        board.link.request("SET_LEVELS", {"group": 0, "value": 30000, "mask": [255] * 16, "codes": []})
    with pytest.raises(memhw.BoardError, match="BAD_PAYLOAD"):
        board.link.request("VMM", {"n": 3, "gains": [], "inputs": np.zeros(5)})
    assert emu.hardware.counters.pulses.sum() == 0
    assert "input" in board.status().last_error and board.status().last_status == "BAD_PAYLOAD"


def test_progress_reports_every_row() -> None:
    board, emu, _ = _board()
    mask = np.zeros(board.shape, bool)
    mask[10:20:2, :5] = True
    seen: list[tuple[int, int]] = []
    board.pulse_set(mask, progress=lambda done, total: seen.append((done, total)))
    # after every row holding a selected device (rows 10, 12, ... 18 of the span 10..18)
    assert seen[-1] == (9, 9) and [d for d, _ in seen] == [1, 3, 5, 7, 9]


def test_abort_from_another_thread_stops_a_batch_and_grounds() -> None:
    emu = BoardEmulator(make_params("ideal"), seed=5, pace=1000.0)  # ~6 ms per row
    board = Board(Link(InProcessTransport(emu), timeout=5.0), "test://")
    cols = board.shape[1]

    def abort_after_three_rows() -> None:
        while emu.hardware.counters.pulses.sum() < 3 * cols:
            threading.Event().wait(0.001)
        board.abort()  # as a Ctrl+C handler would, while the request is in flight

    board.apply(rows=0.1, gates=5.0)
    killer = threading.Thread(target=abort_after_three_rows)
    killer.start()
    with pytest.raises(memhw.OperationAborted) as err:
        board.pulse_set(np.ones(board.shape, bool), v=2.5, gate=1.0)
    killer.join()
    done = err.value.reply["rows_done"]
    assert 3 <= done < board.shape[0]
    assert emu.hardware.counters.pulses.sum() == err.value.reply["pulses"] == done * cols
    assert not any(levels.any() for levels in emu.levels.values())
    assert not board.status().busy  # the link is still in step after the abort


def test_unknown_opcode_is_refused() -> None:
    t, session = _raw_session(BoardEmulator(make_params("ideal")))
    t.write(fp.encode_frame(seq=9, opcode=0x7E, session=session))
    (frame,) = fp.FrameDecoder().feed(t.read(0.1))
    assert frame.status == fp.STATUS["UNKNOWN_OPCODE"]
    assert fp.decode(0x01, "error", frame.payload)["reason"]


def test_garbage_between_requests_is_ignored() -> None:
    board, emu, t = _board()
    t.write(b"\x13\x37garbage\x00\xff\xfe\x00")
    assert not board.status().busy
    assert emu.counters.bad_frames == 2


def test_request_larger_than_max_message_is_refused_too_large() -> None:
    board, emu, _ = _board()
    n = emu.params.board.max_message // (2 * board.shape[0]) + 10
    with pytest.raises(memhw.BoardError, match="TOO_LARGE"):
        board.link.request("VMM", {"n": n, "gains": [], "inputs": np.zeros(n * board.shape[0])})
    assert board.vmm(np.zeros((n, board.shape[0]))).shape == (n, board.shape[1])  # the Board splits it


def test_firmware_fault_is_reported_internal_and_the_board_lives_on(monkeypatch) -> None:
    board, emu, _ = _board()

    def broken(hw, v, op):
        raise RuntimeError("sensor bus stuck")

    monkeypatch.setitem(emu.hardware.handlers, "READ_CURRENTS", broken)
    with pytest.raises(memhw.BoardError, match="INTERNAL.*sensor bus stuck"):
        board.read_currents()
    assert board.status().last_status == "INTERNAL"


def test_board_of_another_major_with_another_hello_layout_is_a_version_mismatch() -> None:
    class OtherLayout(BoardEmulator):
        def _reply(self, conn, req, status, payload, flags=0, session=None):
            if req.opcode == fp.SCHEMA.message("HELLO").opcode and status == fp.STATUS["OK"]:
                wire = fp.encode_message(seq=req.seq, opcode=req.opcode, payload=b"\x03\x00v3-layout",
                                         flags=fp.FLAGS["REPLY"], session=self.session, version=fp.MAJOR + 1,
                                         max_payload=self.max_frame)
                self._emit(conn, wire)
                return wire
            return super()._reply(conn, req, status, payload, flags, session)

    with pytest.raises(memhw.VersionMismatch, match=f"protocol {fp.MAJOR + 1}"):
        Board(Link(InProcessTransport(OtherLayout(make_params("ideal")))), "v2://")
