"""The line-oriented ASCII link to the original board: send lines, wait for lines, resync.

The old link has no framing, checksums or sequence numbers: a command is a line of text,
an answer is one or more lines. :class:`AsciiLink` adds what the original driver lacked:
a deadline on every wait (the driver busy-waited forever), a resynchronisation that
drains whatever is still arriving until the board's ``go`` (so nothing stale is taken for
an answer), and counters of what crossed the line. It never re-sends anything by itself:
what may be repeated is decided by the caller (:mod:`memhw.dpe.bridge`).

Bytes travel over a :class:`memhw.transport.Transport` (pyserial for a serial port or a
``socket://`` URL).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import serial

from ..transport import SerialTransport, Transport
from .dialect import Dialect

__all__ = ["AsciiLink", "AsciiStats", "LineSerial", "LinkDown", "NoAnswer", "Unconfirmed"]


class LinkDown(Exception):
    """The board does not answer the resynchronisation command."""


class NoAnswer(Exception):
    """An answer did not arrive complete before its deadline; ``lines`` holds what did."""

    def __init__(self, message: str, lines: list[str]):
        super().__init__(message)
        self.lines = lines


class Unconfirmed(Exception):
    """A pulse command was sent but whether the board applied it could not be decided."""


@dataclass
class AsciiStats:
    """What crossed the ASCII line."""

    exchanges: int = 0      # commands sent (a pulse command of three lines, a VMM with its vectors: one)
    commands: int = 0       # command lines sent (a pulse command is three)
    lines_in: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    syncs: int = 0          # sync commands sent
    timeouts: int = 0       # waits that ended without their answer
    skipped: int = 0        # lines discarded while resynchronising or between answers

    @property
    def bytes_total(self) -> int:
        return self.bytes_out + self.bytes_in


class LineSerial(SerialTransport):
    """A pyserial transport that can wait, boundedly, until what was written has left."""

    def drain(self, timeout: float) -> None:
        """Wait until the output queue is empty, at most ``timeout`` seconds (ports that
        cannot tell, e.g. ``socket://``, return at once)."""
        deadline = time.monotonic() + timeout
        try:
            while self._port.out_waiting and time.monotonic() < deadline:
                time.sleep(0.002)
        except (AttributeError, NotImplementedError, serial.SerialException, OSError):
            return


class AsciiLink:
    """Line I/O with deadlines over a byte transport.

    Parameters
    ----------
    transport : Transport
    dialect : Dialect
    timeout : float
        Seconds to wait for the next line of an answer (the first line also gets the
        operation's expected busy time).
    sync_retries : int
        Extra ``1024`` attempts before the board counts as not answering.
    """

    def __init__(self, transport: Transport, dialect: Dialect, timeout: float = 2.0, sync_retries: int = 3):
        self.transport = transport
        self.dialect = dialect
        self.timeout = float(timeout)
        self.sync_retries = int(sync_retries)
        self.stats = AsciiStats()
        #: True while every answer since the last resync arrived complete and well formed
        #: (the caller clears it when it rejects one); reads skip the resync then
        self.synced = False
        self._buffer = bytearray()
        self._sep = dialect.reply_eol[-1].encode()
        self._strip = dialect.reply_eol

    # ------------------------------------------------------------------ out
    def send(self, lines: list[str]) -> None:
        """Write command lines, each with the dialect's line ending, and wait (boundedly)
        until they have left, so answer deadlines start when the board has the command."""
        eol = self.dialect.command_eol
        data = "".join(line + eol for line in lines).encode("ascii")
        self.transport.write(data)
        self.stats.exchanges += 1
        self.stats.commands += len(lines)
        self.stats.bytes_out += len(data)
        drain = getattr(self.transport, "drain", None)
        if drain is not None:
            drain(self.timeout + 2 * len(data) * 10 / self.dialect.baudrate)

    # ------------------------------------------------------------------ in
    def _next_line(self, deadline: float) -> str | None:
        """The next complete line (line ending removed), or None at the deadline."""
        while True:
            cut = self._buffer.find(self._sep)
            if cut >= 0:
                raw = bytes(self._buffer[:cut])
                del self._buffer[: cut + 1]
                self.stats.lines_in += 1
                return raw.decode("ascii", errors="replace").rstrip(self._strip)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self.transport.read(min(left, 0.25))
            if data:
                self.stats.bytes_in += len(data)
                self._buffer += data

    def _skippable(self, line: str) -> bool:
        d = self.dialect
        return not line or line.startswith(d.sync_reply) or any(line.startswith(p) for p in d.debug_prefixes)

    def answer(self, until: str, *, busy: float = 0.0, expect_bytes: int = 0) -> list[str]:
        """Lines up to (not including) the first line starting with ``until``.

        Empty lines, stray ``go`` lines (answers to an earlier resync) and debug lines are
        skipped. The first line may take ``busy`` seconds more than ``timeout``; every line
        after it at most ``timeout``; the whole answer at most ``2 timeout + busy`` plus
        three times the transfer time of ``expect_bytes`` at the dialect's baud rate.

        Raises
        ------
        NoAnswer
            The terminating line did not arrive in time (``lines``: what did).
        """
        self.synced = False  # until the whole answer is in
        now = time.monotonic()
        cap = now + 2 * self.timeout + busy + 3 * expect_bytes * 10 / self.dialect.baudrate
        deadline = now + self.timeout + busy
        lines: list[str] = []
        while True:
            line = self._next_line(min(deadline, cap))
            if line is None:
                self.stats.timeouts += 1
                what = f"after {len(lines)} lines" if lines else "nothing"
                raise NoAnswer(f"no line starting {until!r} within the deadline ({what} arrived)", lines)
            deadline = time.monotonic() + self.timeout
            if self._skippable(line):
                self.stats.skipped += 1
                continue
            if line.startswith(until):
                self.synced = True
                return lines
            lines.append(line)

    def first_line(self, *, busy: float = 0.0) -> str | None:
        """The next line that is not skippable (see :meth:`answer`), or None after
        ``timeout + busy`` seconds. The link counts as out of step until the caller, having
        recognised the line, sets :attr:`synced` again."""
        self.synced = False
        deadline = time.monotonic() + self.timeout + busy
        while True:
            line = self._next_line(deadline)
            if line is None:
                self.stats.timeouts += 1
                return None
            if not self._skippable(line):
                return line
            self.stats.skipped += 1

    def sync(self) -> list[str]:
        """Resynchronise: send ``1024`` and read until a line starting ``go``, up to
        ``1 + sync_retries`` times. Returns the lines that arrived before it (late answers
        of an earlier command, garbage), so the caller can look for a late acknowledgement.

        Raises
        ------
        LinkDown
            No ``go`` after every attempt.
        """
        d = self.dialect
        seen: list[str] = []
        self.synced = False
        for _ in range(1 + self.sync_retries):
            self.send([str(d.sync_command)])
            self.stats.syncs += 1
            deadline = time.monotonic() + self.timeout
            while (line := self._next_line(deadline)) is not None:
                if line.startswith(d.sync_reply):
                    self.synced = True
                    return seen
                if line:
                    seen.append(line)
                    self.stats.skipped += 1
            self.stats.timeouts += 1
        raise LinkDown(f"no {d.sync_reply!r} after {1 + self.sync_retries} x {d.sync_command} "
                       f"({self.timeout:g} s each)")

    def close(self) -> None:
        """Release the port (idempotent)."""
        self.transport.close()

    def reopen(self) -> None:
        """Open the port again with empty buffers; the next command resynchronises."""
        self._buffer.clear()
        self.synced = False
        self.transport.reopen()
