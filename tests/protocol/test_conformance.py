"""Board-side conformance to PROTOCOL.md §6-§9, proven with a client written from the
document alone (``rawclient``: raw frames, no memhw.link): sessions and the reply cache,
one owner per board, lines grounded at session start, end and when the connection drops.

Every test runs in process (a connection object of the peer) and over a real TCP socket,
against both board back ends: the Python peer (memhw.mock) and the C firmware core
(memhw.cfirmware.CBoard).
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pytest

import memhw
from memhw.mock.emulator import BoardEmulator
from memhw.mock.params import make_params
from memhw.peer import PeerServer

from .rawclient import (RESUME, TAKEOVER, WANT_PROGRESS, RawHost, pulse_devices, pulse_set, read_devices, read_map,
                        set_levels, status_counts)

ROWS, COLS = 8, 64
SET_V, GATE, WIDTH = 16384, 4000, 203  # 2.5 V, 1.22 V, 1 µs in the emulator's codes


def _emulator(firmware: str = "python", **kw) -> BoardEmulator:
    """The board of a back end: the Python peer or the C firmware core (same chip)."""
    if firmware == "c":
        from memhw.cfirmware import CBoard

        return CBoard(make_params("ideal", rows=ROWS), seed=3, **kw)  # type: ignore[return-value]
    return BoardEmulator(make_params("ideal", rows=ROWS), seed=3, **kw)


class Wiring:
    """Opens raw hosts to one emulator, in process or over TCP."""

    def __init__(self, emu: BoardEmulator, kind: str):
        self.emu, self.kind = emu, kind
        self.server = PeerServer.tcp(emu) if kind == "tcp" else None
        self._closers: list = []

    @contextmanager
    def host(self, client: str = "raw client") -> Iterator[RawHost]:
        if self.server is None:
            buf = bytearray()
            conn = self.emu.open(buf.extend, address=f"in-process {client}")

            def read(timeout: float) -> bytes:
                data = bytes(buf)
                buf.clear()
                return data

            try:
                yield RawHost(conn.receive, read, client)
            finally:
                conn.close()
        else:
            sock = socket.create_connection((self.server.host, self.server.port), timeout=5)

            def read(timeout: float) -> bytes:
                ready, _, _ = select.select([sock], [], [], timeout)
                return sock.recv(1 << 16) if ready else b""

            try:
                yield RawHost(sock.sendall, read, client)
            finally:
                sock.close()

    def until(self, condition, timeout: float = 3.0) -> bool:
        """For TCP: the server thread handles a closed socket a moment later."""
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        return condition()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture(params=["python", "c"])
def board_factory(request):
    """Makes boards of one back end (keyword arguments as BoardEmulator's)."""
    return lambda **kw: _emulator(request.param, **kw)


@pytest.fixture(params=["inprocess", "tcp"])
def wiring(request, board_factory) -> Iterator[Wiring]:
    w = Wiring(board_factory(), request.param)
    yield w
    w.close()


def _pulses(emu: BoardEmulator) -> int:
    return int(emu.hardware.counters.pulses.sum())


# ----------------------------------------------------------------- 1. sessions and the cache
def test_a_reconnecting_host_reusing_sequence_numbers_gets_its_pulse_applied(wiring) -> None:
    """The 1.x hole: a new connection starting at the same seq was answered from the cache
    (its HELLO never ran, its pulse never applied). HELLO is never cached; the cache is the
    session's."""
    for attempt in range(2):
        with wiring.host(f"host {attempt}") as h:
            assert h.hello(seq=1).status_name == "OK"
            r = h.request("PULSE_SET", pulse_set(2, COLS, 5, SET_V, GATE, WIDTH), seq=2)
            assert r.status_name == "OK" and struct.unpack("<HI", r.payload) == (1, 1)
            assert _pulses(wiring.emu) == attempt + 1  # acknowledged and applied, every time
            assert h.request("BYE", seq=3).status_name == "OK"
    assert wiring.emu.counters.sessions == 2 and wiring.emu.counters.cache_hits == 0


def test_hello_is_never_answered_from_the_reply_cache(wiring) -> None:
    with wiring.host() as h:
        first = h.hello(seq=7)
        assert first.status_name == "OK"
        again = h.request("HELLO", b"\x02\x00\x00\x00\x00\x00\x00", seq=7, session=0)  # same seq, NEW again
        assert again.status_name == "BUSY" and "raw client" in again.reason  # judged afresh, not replayed
        assert h.request("STATUS", seq=8).status_name == "OK"  # the session lives on


def test_a_new_hello_from_the_owners_own_connection_says_so(wiring) -> None:
    """§7.2: NEW from the connection that owns the session (not a retry) opens no second
    session; the BUSY reason says that this connection holds it, not that another host does."""
    with wiring.host("host #77") as h:
        session = h.hello(seq=1).session
        busy = h.hello(seq=2)
        assert busy.status_name == "BUSY" and "this connection already owns session" in busy.reason
        assert f"{session:#06x}" in busy.reason and "BYE" in busy.reason and "idle" not in busy.reason
        assert h.request("STATUS", seq=3).status_name == "OK"


def test_a_retried_hello_gets_its_session_again_and_changes_nothing(wiring) -> None:
    """Its reply lost, a host resends the very same HELLO: the same session, not BUSY."""
    with wiring.host("host #a1b2c3") as h:
        first = h.hello(seq=5)
        h.request("SET_LEVELS", set_levels(2, 16384, COLS), seq=6)
        retry = h.hello(seq=5)  # same connection, seq and payload
        assert retry.status_name == "OK" and retry.session == first.session
        assert wiring.emu.levels["GATES"].any()  # nothing was reset by the retry
        assert h.hello(seq=9).status_name == "BUSY"  # a new HELLO is not a retry


def test_a_retry_within_the_session_is_answered_from_the_cache(wiring) -> None:
    with wiring.host() as h:
        h.hello(seq=1)
        payload = pulse_set(1, COLS, 3, SET_V, GATE, WIDTH)
        first = h.request("PULSE_SET", payload, seq=2)
        second = h.request("PULSE_SET", payload, seq=2)
        assert first.payload == second.payload and _pulses(wiring.emu) == 1
        assert wiring.emu.counters.cache_hits == 1


# ------------------------------------------------------------------ 2. one owner per board
def test_a_second_host_gets_busy_at_once_naming_the_owner(wiring) -> None:
    with wiring.host("owner on lab-pc") as a, wiring.host("intruder") as b:
        assert a.hello(seq=1).status_name == "OK"
        t0 = time.monotonic()
        busy = b.hello(seq=1)
        assert busy.status_name == "BUSY" and busy.session == 0 and time.monotonic() - t0 < 1.0
        assert "owner on lab-pc" in busy.reason and "since" in busy.reason and "idle" in busy.reason
        assert "TAKEOVER" in busy.reason
        assert a.request("STATUS", seq=2).status_name == "OK"  # the owner is undisturbed


def test_requests_outside_a_session_are_refused_and_never_executed_later(wiring) -> None:
    with wiring.host("owner") as a:
        a.hello(seq=1)
        with wiring.host("sneaky") as b:  # no HELLO: a pulse with no session, then gone
            r = b.request("PULSE_SET", pulse_set(0, COLS, 0, SET_V, GATE, WIDTH), seq=1, session=0)
            assert r.status_name == "NO_SESSION" and r.session == 0
            r = b.request("PULSE_SET", pulse_set(0, COLS, 1, SET_V, GATE, WIDTH), seq=2, session=a.session)
            assert r.status_name == "NO_SESSION"  # the right id over another connection: still not its session
        a.request("BYE", seq=2)
    with wiring.host("next") as c:  # whatever was left over from the sneaky host is gone
        c.hello(seq=1)
        assert c.request("STATUS", seq=2).status_name == "OK"
    assert _pulses(wiring.emu) == 0


def test_takeover_ends_the_owners_session_with_a_reason(wiring) -> None:
    with wiring.host("crashed owner") as a, wiring.host("rescuer") as b:
        a.hello(seq=1)
        old = a.session
        assert b.hello(seq=1, mode=TAKEOVER).status_name == "OK" and b.session != old
        status = b.request("STATUS", seq=2).payload  # busy u8, last_status u8, last_error str, ...
        (n,) = struct.unpack_from("<H", status, 2)
        assert status[4 : 4 + n].decode().startswith("takeover: session")  # the board logged it
        r = a.request("PULSE_SET", pulse_set(0, COLS, 0, SET_V, GATE, WIDTH), seq=2)
        assert r.status_name == "NO_SESSION" and "taken over by 'rescuer'" in r.reason
        assert _pulses(wiring.emu) == 0 and wiring.emu.counters.takeovers == 1


def test_resume_keeps_the_cache_and_refuses_an_unknown_session(wiring) -> None:
    payload = pulse_set(4, COLS, 9, SET_V, GATE, WIDTH)
    with wiring.host() as a:
        a.hello(seq=1)
        session = a.session
        first = a.request("PULSE_SET", payload, seq=2)
    assert wiring.until(lambda: wiring.emu.owner is None)  # the connection dropped: detached
    with wiring.host() as b:
        assert b.hello(seq=1, mode=RESUME, session=session ^ 0x5555).status_name == "NO_SESSION"
        assert b.hello(seq=2, mode=RESUME, session=session).status_name == "OK" and b.session == session
        again = b.request("PULSE_SET", payload, seq=2)  # a retry after the reconnection
        assert again.payload == first.payload and _pulses(wiring.emu) == 1


def test_an_operation_finishes_when_its_host_vanishes_and_a_resumed_retry_gets_its_reply(board_factory) -> None:
    """Docs (PROTOCOL.md §7.4): a pulse batch is never cut short by a lost host; its reply
    is cached for the resumed session, so the host learns exactly what was applied."""
    emu = board_factory(pace=2000.0)  # ~10 ms per row: the socket dies mid-batch
    w = Wiring(emu, "tcp")
    try:
        mask = bytes([0xFF] * (ROWS * COLS // 8))
        payload = (struct.pack("<HH", 0, ROWS) + struct.pack("<I", len(mask)) + mask
                   + struct.pack("<Ih", 1, SET_V) + struct.pack("<Ih", 1, GATE) + struct.pack("<IH", 1, WIDTH))
        with w.host() as a:
            a.hello(seq=1)
            session = a.session
            a.send("PULSE_SET", payload, seq=2, flags=WANT_PROGRESS)
            time.sleep(0.02)
        assert w.until(lambda: _pulses(emu) == ROWS * COLS and not emu.busy, timeout=10)
        assert not any(levels.any() for levels in emu.levels.values())
        with w.host() as b:
            assert b.hello(seq=1, mode=RESUME, session=session).status_name == "OK"
            r = b.request("PULSE_SET", payload, seq=2)
            assert r.status_name == "OK" and struct.unpack("<HI", r.payload) == (ROWS, ROWS * COLS)
        assert _pulses(emu) == ROWS * COLS  # nothing twice
    finally:
        w.close()


def test_no_session_opens_while_a_detached_sessions_operation_runs(board_factory) -> None:
    """§7.4: the owner vanishes mid-batch (in process: its connection closes between two
    rows); until the batch ends another host's NEW is BUSY, naming why, and once it ended
    the next NEW opens a session."""
    from .rawclient import frame, hello, parse

    emu = board_factory()
    looks = {"n": 0}
    owner_out: list[bytes] = []
    other_out: list[bytes] = []

    def other_poll() -> bytes:  # the board looks at every connection between rows
        looks["n"] += 1
        if looks["n"] == 2:
            owner.close()
        return frame(0x01, hello(client="next"), seq=1, session=0) if looks["n"] == 3 else b""

    owner = emu.open(owner_out.append, None, "in-process vanishing")
    other = emu.open(other_out.append, other_poll, "in-process next")
    owner.receive(frame(0x01, hello(client="vanishing"), seq=1, session=0))
    session = parse(b"".join(owner_out))[0].session
    mask = bytes([0xFF] * (ROWS * COLS // 8))
    payload = (struct.pack("<HH", 0, ROWS) + struct.pack("<I", len(mask)) + mask
               + struct.pack("<Ih", 1, SET_V) + struct.pack("<Ih", 1, GATE) + struct.pack("<IH", 1, WIDTH))
    owner.receive(frame(0x07, payload, seq=2, session=session))
    busy = parse(b"".join(other_out))
    assert [r.status_name for r in busy] == ["BUSY"] and "lost its connection" in busy[0].reason
    assert _pulses(emu) == ROWS * COLS and not emu.busy  # the batch ran to its end
    other_out.clear()
    other.receive(frame(0x01, hello(client="next"), seq=2, session=0))
    assert parse(b"".join(other_out))[0].status_name == "OK"


def test_an_empty_averaged_read_map_is_answered_with_empty_arrays(wiring) -> None:
    with wiring.host() as h:
        h.hello(seq=1)
        r = h.request("READ_MAP", read_map(1311, 2, 0, average=4), seq=2)
        assert r.status_name == "OK" and r.payload == bytes(8)  # two empty arrays


def test_status_counts_requests_and_pulses_since_boot(wiring) -> None:
    with wiring.host() as h:
        h.hello(seq=1)
        h.request("PULSE_SET", pulse_set(1, COLS, 3, SET_V, GATE, WIDTH), seq=2)
        assert status_counts(h.request("STATUS", seq=3).payload) == (3, 1)
    wiring.emu.reboot()
    with wiring.host() as h:
        h.hello(seq=1)
        assert status_counts(h.request("STATUS", seq=2).payload) == (2, 0)  # this boot's HELLO and STATUS


# ----------------------------------------------------------------------- 3. lines left live
def test_lines_are_grounded_at_session_start_end_and_when_the_connection_drops(wiring) -> None:
    emu = wiring.emu

    def live() -> bool:
        return any(levels.any() for levels in emu.levels.values())

    with wiring.host("killed host") as a:
        a.hello(seq=1)
        assert a.request("SET_LEVELS", set_levels(0, 1311, ROWS), seq=2).status_name == "OK"  # 0.2 V
        assert a.request("SET_LEVELS", set_levels(2, 16384, COLS), seq=3).status_name == "OK"  # gates on
        assert live()
    assert wiring.until(lambda: not live())  # dropped without BYE: grounded at once, not at the watchdog
    with wiring.host() as b:
        b.hello(seq=1)
        b.request("SET_LEVELS", set_levels(0, 1311, ROWS), seq=2)
        assert live()
        b.request("BYE", seq=3)
        assert not live()  # session end
    emu.hardware.set_levels(0, np.full(ROWS, 1311), np.ones(ROWS, bool))  # as a crashed host would leave them
    with wiring.host() as c:
        assert c.hello(seq=1).status_name == "OK" and not live()  # session start


def test_a_writer_ignoring_the_pty_lock_gets_nothing_executed_in_the_owners_session(board_factory) -> None:
    emu = board_factory()
    with PeerServer.pty(emu) as server, memhw.connect(server.address, calibration=None, limits=None) as owner:
        fd = os.open(server.address, os.O_RDWR | os.O_NOCTTY)  # no flock: ignores the owner's lock
        try:
            foreign = RawHost(lambda data: os.write(fd, data), lambda t: b"")
            for session in (0, owner.session_id ^ 0x0F0F):
                foreign.send("PULSE_SET", pulse_set(1, COLS, 2, SET_V, GATE, WIDTH), seq=9, session=session)
            assert owner.read_conductance(rows=1).shape == (1, COLS)  # the owner carries on
            assert owner.status().last_status == "NO_SESSION"
        finally:
            os.close(fd)
    assert _pulses(emu) == 0 and emu.counters.session_refusals == 2


def test_selections_written_from_the_document_pulse_and_read_exactly_those_devices(wiring) -> None:
    """§10.5's example bytes: offsets 3, 4, 200 of a block starting at row 2 (64 columns):
    devices (2, 3), (2, 4) and (5, 8)."""
    index = bytes.fromhex("0300c301")
    chosen = [(2, 3), (2, 4), (5, 8)]
    with wiring.host() as host:
        assert host.hello(seq=1).status == 0
        r = host.request("PULSE_DEVICES", pulse_devices(0, 2, 4, index, SET_V, GATE, WIDTH), seq=2)
        assert r.status == 0 and struct.unpack("<HI", r.payload) == (4, 3)
        counts = wiring.emu.hardware.counters.pulses
        assert counts.sum() == 3 and all(counts[rc] == 1 for rc in chosen)
        r = host.request("READ_DEVICES", read_devices(1311, 2, 4, index), seq=3)
        assert r.status == 0
        (n_gains,) = struct.unpack_from("<I", r.payload)
        (n_codes,) = struct.unpack_from("<I", r.payload, 4 + n_gains)
        codes = struct.unpack_from(f"<{n_codes}h", r.payload, 8 + n_gains)
        assert n_gains == n_codes == 3 and all(c < 0 for c in codes)  # current into the columns
        # an offset beyond the block, a varint cut short, and mask plus index are refused
        for seq, payload in ((4, read_devices(1311, 2, 1, index)), (5, read_devices(1311, 2, 4, b"\x80"))):
            r = host.request("READ_DEVICES", payload, seq=seq)
            assert r.status_name == "BAD_PAYLOAD", r.reason
        both = (struct.pack("<BHH", 0, 2, 1) + struct.pack("<I", 8) + bytes(8) + struct.pack("<I", 1) + b"\x00"
                + struct.pack("<IhIhIHH", 1, SET_V, 1, GATE, 1, WIDTH, 0))
        r = host.request("PULSE_DEVICES", both, seq=6)
        assert r.status_name == "BAD_PAYLOAD" and "not both" in r.reason
        assert wiring.emu.hardware.counters.pulses.sum() == 3
