"""An emulator of the original 128 x 64 board, speaking its ASCII command set byte for byte.

:class:`DpeEmulator` is the emulated firmware (:class:`~memhw.dpe.firmware.Firmware`)
over the same chip and periphery model as ``mock://`` (equal parameters and seed give the
same chip), with the old link's faults (:mod:`memhw.dpe.linefaults`). Serve it on a
pseudo-terminal or a TCP port with :class:`memhw.peer.PeerServer` (it offers the same
``open``/``check_watchdog`` interface as a peer) or ``memhw mock serve --dialect dpe``;
connect with ``dpe://<pty>`` or ``dpe+socket://HOST:PORT``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from ..mock.chip import Chip
from ..mock.emulator import BoardEmulator
from ..mock.hardware import MockHardware
from ..mock.params import MockParams, make_params
from .dialect import Dialect
from .firmware import Firmware
from .linefaults import LineFaults, LineFaultSpec

__all__ = ["DpeEmulator", "DpeConnection", "EMULATOR_SERIAL"]

log = logging.getLogger("memhw.dpe.emulator")
#: what the emulated board would be called (the old firmware cannot say; the bridge names boards by port)
EMULATOR_SERIAL = "DPE-EMU"


class DpeConnection:
    """One host connection: bytes in, lines through the faults to the firmware, lines out."""

    def __init__(self, emulator: "DpeEmulator", send: Callable[[bytes], None], address: str):
        self.emulator = emulator
        self.address = address
        self._send = send
        self._buffer = bytearray()
        self.closed = False

    def receive(self, data: bytes) -> None:
        """Bytes from the host; every complete line is handled in order."""
        e = self.emulator
        sep = e.dialect.command_eol[-1].encode()
        with e.lock:
            e.bytes_in += len(data)
            self._buffer += data
            while (cut := self._buffer.find(sep)) >= 0:
                raw = bytes(self._buffer[:cut])
                del self._buffer[: cut + 1]
                line = raw.decode("ascii", errors="replace").rstrip("\r\n")
                if not e.faults.incoming(line):
                    continue
                try:
                    answer = e.firmware.feed(line)
                except Exception:  # noqa: BLE001 - an emulator fault must not stop the server
                    log.exception("emulated firmware failed on %r", line[:60])
                    answer = []
                reply = e.faults.outgoing(answer)
                if reply:
                    wire = "".join(r + e.dialect.reply_eol for r in reply).encode("ascii", errors="replace")
                    e.bytes_out += len(wire)
                    try:
                        self._send(wire)
                    except OSError:
                        self.closed = True
                        return

    def close(self) -> None:
        self.closed = True


class DpeEmulator:
    """The original board with its chip, emulated.

    Parameters
    ----------
    params : MockParams
        Chip and periphery (and timing) parameters, as for ``mock://``.
    seed : int
        Seeds the chip and periphery exactly as :class:`memhw.mock.emulator.BoardEmulator`
        does, so the same seed gives the same chip on both.
    dialect : Dialect
        The command set to speak (the default is the public record's reading).
    faults : LineFaultSpec or str, optional
        Line faults on the board's side (``"mute:0.1,drop:0.01"``).
    fault_seed : int
    """

    def __init__(self, params: MockParams | None = None, seed: int = 0, dialect: Dialect | None = None,
                 faults: LineFaultSpec | str | None = None, fault_seed: int = 0):
        params = params or make_params()
        self.dialect = dialect or Dialect()
        if params.shape != (self.dialect.rows, self.dialect.cols):
            raise ValueError(f"the dialect's board is {self.dialect.rows} x {self.dialect.cols}, "
                             f"the chip {params.shape[0]} x {params.shape[1]}")
        self.seed = seed
        # the mock board's own hardware, built by the mock itself: the same seed gives the
        # same chip and periphery as mock:// (its protocol engine is not used)
        self.hardware: MockHardware = BoardEmulator(params, seed=seed, serial=EMULATOR_SERIAL).hardware
        self.firmware = Firmware(self.hardware, self.dialect)
        if isinstance(faults, str):
            faults = LineFaultSpec.parse(faults)
        self.faults = LineFaults(faults, fault_seed)
        self.lock = threading.RLock()
        self.bytes_in = 0
        self.bytes_out = 0

    @classmethod
    def from_query(cls, query: dict[str, str]) -> "DpeEmulator":
        """From address-style options: ``preset``, ``seed``, ``faults``, ``fault_seed``, any
        mock parameter and any dialect field by name (``preset=harsh&reply_eol=lf``).

        Raises
        ------
        ValueError
            An unknown option or a bad value, naming it.
        """
        from dataclasses import fields

        q = dict(query)
        extra: dict[str, Any] = {}
        for name in ("seed", "fault_seed"):
            if name in q:
                try:
                    extra[name] = int(q.pop(name))
                except ValueError:
                    raise ValueError(f"{name} must be an integer") from None
        if "faults" in q:
            extra["faults"] = LineFaultSpec.parse(q.pop("faults"))
        dialect_names = {f.name for f in fields(Dialect)}
        dialect = Dialect.from_options({k: q.pop(k) for k in list(q) if k in dialect_names})
        return cls(make_params(q.pop("preset", "paper"), **q), dialect=dialect, **extra)

    # ------------------------------------------------------------ what it is made of
    @property
    def chip(self) -> Chip:
        """The emulated array (``hardware`` holds periphery, parameters and counters too)."""
        return self.hardware.chip

    @property
    def busy_time(self) -> float:
        """Virtual hardware time spent executing commands, s."""
        return self.hardware.counters.busy_time

    # ------------------------------------------------------------ serving (PeerServer interface)
    def open(self, send: Callable[[bytes], None], poll: Callable[[], bytes] | None = None,
             address: str = "") -> DpeConnection:
        """A new host connection (``poll`` is unused: the old firmware never looks at its
        input while a command runs)."""
        return DpeConnection(self, send, address)

    def check_watchdog(self) -> bool:
        """The old firmware has no watchdog (lines are grounded between commands)."""
        return False
