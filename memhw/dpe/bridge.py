"""The bridge: a :class:`~memhw.peer.Peer` back end that drives the original board.

``memhw.connect("dpe:///dev/ttyUSB0")`` (or ``dpe+socket://HOST:PORT``) opens the old
board's ASCII link with pyserial and puts a :class:`BridgePeer` over a :class:`DpeBridge`
in this process: the host stack (``Board``, ``Link``) talks memhw's protocol to it as to
any board, and the bridge's handlers (:mod:`memhw.dpe.handlers`) translate every request
into the old commands. What the old firmware cannot do is absent from the handler table,
so HELLO's ``opcodes`` announce it missing and ``Board.supports`` sees it.

Safety without sequence numbers (``docs/dpe.md``): before every pulse command, and after
any answer that was lost or malformed, the bridge resynchronises (``1024`` -> ``go``); a
read or VMM whose answer is lost or malformed is
read again a bounded number of times (reads change nothing); a pulse command is **never
sent twice**: when its acknowledgement is lost or garbled the bridge resynchronises,
looks for a late acknowledgement, reads the half back and compares it with the last read
taken before the pulse, and answers "applied" only on evidence, else reports the
devices as pulsed at most once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, fields
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from firmware_protocol import SCHEMA

from .._version import __version__
from ..conversions import LimitCodes, Transfer
from ..errors import AddressError, TransportError
from ..info import Limits
from ..peer import Peer, Refused
from ..transport import InProcessTransport
from . import codec
from .dialect import Dialect, convert_fields
from .link import AsciiLink, LineSerial, LinkDown, NoAnswer, Unconfirmed

__all__ = ["BridgeOptions", "DpeBridge", "BridgePeer", "BridgeTransport", "open_bridge", "Unconfirmed"]

log = logging.getLogger("memhw.dpe")
GROUPS = SCHEMA.enums["LineGroup"]
#: deadline allowances (not a model of the board): seconds per row or vector a command may
#: take beyond its pulse widths, and characters per ADC code in an answer ("65535,")
ROW_ALLOWANCE = 20e-6
CHARS_PER_CODE = 6


@dataclass(frozen=True)
class BridgeOptions:
    """How the bridge drives the old board (address options, next to the dialect's).

    Attributes
    ----------
    serial : str
        Board serial for HELLO (calibration and limits files are found by it); default
        ``DPE-<port>``: the old firmware cannot tell its serial.
    timeout : float
        Seconds to wait for the next line of an answer (plus the operation's busy time).
    sync_retries : int
        Extra ``1024`` attempts before the board counts as not answering.
    read_retries : int
        Re-reads of a read or VMM whose answer was lost or malformed (never for pulses).
    set_mode, reset_mode : {"fast", "slow"}
        Fast commands (12, 11) honour the width register; slow ones (17, 18) pulse for
        ~5 ms / ~500 us whatever width the host asked for.
    pre_read : bool
        Read a half before pulsing it when no read since its last pulse exists, so a lost
        acknowledgement can always be decided by comparison (costs one read).
    auto_gains : tuple of int
        Gain indices of an auto-ranged conductance read: the first is read, lower ones
        where it saturates, the later (higher) ones where the reading says they fit.
    vmm_auto_gains : tuple of int
        The same for auto-ranged VMM.
    evidence : float
        Relative conductance change (beyond 4 ADC steps) that counts as evidence that a
        pulse whose acknowledgement was lost took effect.
    """

    serial: str = ""
    timeout: float = 2.0
    sync_retries: int = 3
    read_retries: int = 2
    set_mode: str = "fast"
    reset_mode: str = "fast"
    pre_read: bool = False
    auto_gains: tuple[int, ...] = (1,)
    vmm_auto_gains: tuple[int, ...] = (0, 1)
    evidence: float = 0.05

    def check(self, dialect: Dialect) -> None:
        """Raise ValueError (one line) for options that make no sense."""
        n = len(dialect.tia_gains)
        if not (0 < self.timeout <= 3600):
            raise ValueError(f"timeout must be in (0, 3600] s, got {self.timeout}")
        if self.sync_retries < 0 or self.read_retries < 0:
            raise ValueError("sync_retries and read_retries must be >= 0")
        for name in ("set_mode", "reset_mode"):
            if getattr(self, name) not in ("fast", "slow"):
                raise ValueError(f"{name} must be 'fast' or 'slow', not {getattr(self, name)!r}")
        for name in ("auto_gains", "vmm_auto_gains"):
            ladder = getattr(self, name)
            if not ladder or list(ladder) != sorted(set(ladder)) or ladder[0] < 0 or ladder[-1] >= n:
                raise ValueError(f"{name} must be ascending gain indices in 0..{n - 1}, got {ladder}")
        if not 0 < self.evidence < 1:
            raise ValueError(f"evidence must be in (0, 1), got {self.evidence}")


class DpeBridge:
    """Back end of a :class:`~memhw.peer.Peer` over the original board's ASCII link.

    Parameters
    ----------
    link : AsciiLink
    options : BridgeOptions
    port : str
        What was opened (for messages and the default serial).
    """

    def __init__(self, link: AsciiLink, options: BridgeOptions, port: str):
        from .handlers import HANDLERS

        self.handlers = HANDLERS
        self.link = link
        self.dialect = d = link.dialect
        self.options = options
        self.port = port
        self.rows, self.cols = d.rows, d.cols
        self.transfer = Transfer(d.dac_line_lsb, d.dac_gate_lsb, d.adc_lsb, 16, tuple(d.tia_gains),
                                 d.width_offset, d.width_lsb, d.width_max_code)
        self.abs_limits = LimitCodes.from_limits(
            Limits(d.v_read_max, d.v_set_max, d.v_reset_max, d.v_gate_max, self.transfer.width_min,
                   self.transfer.width_max), self.transfer)
        self.limits = self.abs_limits
        #: DC levels held by the bridge (codes) and which lines are driven; applied only
        #: while a READ_CURRENTS converts (command 20)
        self.levels = {g: np.zeros(self.cols if g else self.rows, np.int64) for g in GROUPS.values()}
        self.driven = {g: np.zeros(self.cols if g else self.rows, bool) for g in GROUPS.values()}
        #: per half: the last single-gain read (raw codes, gain, volts) since its last pulse
        self.reference: dict[int, tuple[np.ndarray, int, float] | None] = {}
        self.pulses = 0                      # confirmed device pulses since the bridge opened
        self.unconfirmed = 0                 # device pulses sent but not confirmed

    # ------------------------------------------------------------ Backend hooks
    def identity(self) -> dict[str, Any]:
        d = self.dialect
        port = re.sub(r"^/dev/", "", self.port)
        serial = self.options.serial or "DPE-" + (re.sub(r"[^A-Za-z0-9.]+", "-", port).strip("-") or "port")
        return {
            "firmware": f"DPE 2017 ASCII firmware via memhw bridge {__version__}", "serial": serial[:64],
            "chip": "", "rows": self.rows, "cols": self.cols, "dac_bits": 16, "adc_bits": 16,
            "dac_line_lsb": d.dac_line_lsb, "dac_gate_lsb": d.dac_gate_lsb, "adc_lsb": d.adc_lsb,
            "tia_gains": np.asarray(d.tia_gains), "width_offset": d.width_offset, "width_lsb": d.width_lsb,
            "width_max_code": d.width_max_code, "v_read_max": d.v_read_max, "v_set_max": d.v_set_max,
            "v_reset_max": d.v_reset_max, "v_gate_max": d.v_gate_max, "max_frame": 4096, "max_message": 65536,
        }

    def ground(self) -> None:
        """Forget every held DC level. The old firmware drives lines only while a command
        runs (assumed: it grounds them after each), so nothing is left applied."""
        for g in GROUPS.values():
            self.levels[g][:] = 0
            self.driven[g][:] = False

    def levels_applied(self) -> bool:
        return False  # held levels are applied only during a READ_CURRENTS conversion

    def new_session(self) -> None:
        self.limits = self.abs_limits
        self.ground()

    def rebooted(self) -> None:
        self.new_session()

    def pulse_count(self) -> int:
        return self.pulses

    # ------------------------------------------------------------ failures
    def _failure(self, what: str, exc: BaseException) -> Refused:
        if isinstance(exc, TransportError):
            why = f"the serial link to the board on {self.port} failed ({exc})"
        elif isinstance(exc, LinkDown):
            why = f"the board on {self.port} does not answer: {exc}"
        else:
            why = str(exc)
        return Refused("INTERNAL", f"{what}: {why}")

    # ------------------------------------------------------------ measurements
    def _retrying(self, what: str, attempt: Callable[[], np.ndarray]) -> np.ndarray:
        """Run a measurement command (after a resync unless every answer since the last
        one was complete and well formed); a lost or malformed answer is measured again
        after a resync, at most ``read_retries`` times."""
        last: BaseException | None = None
        for _ in range(1 + self.options.read_retries):
            try:
                if not self.link.synced:
                    self.link.sync()
                return attempt()
            except (NoAnswer, codec.MalformedReply) as exc:
                self.link.synced = False
                last = exc
                log.warning("%s: %s; resynchronising and measuring again", what, exc)
            except (LinkDown, TransportError) as exc:
                raise self._failure(what, exc) from None
        raise self._failure(what, RuntimeError(f"no well-formed answer after {1 + self.options.read_retries} "
                                               f"attempts (last: {last})"))

    def read_half(self, half: int, v_read: float, gain: int) -> np.ndarray:
        """Command 10: raw (unsigned) codes of one half, (half_rows, cols).

        ``v_read`` must be on the text grid. Keeps the result as the half's reference."""
        d = self.dialect

        def attempt() -> np.ndarray:
            self.link.send([codec.read_line(d, v_read, gain, half)])
            lines = self.link.answer(d.read_done, busy=d.half_rows * ROW_ALLOWANCE,
                                     expect_bytes=d.half_rows * d.cols * CHARS_PER_CODE)
            return codec.parse_read_block(lines, d)

        raw = self._retrying(f"read of rows {self._rows_text(half)}", attempt)
        self.reference[half] = (raw, gain, v_read)
        return raw

    def vmm_block(self, vectors: np.ndarray, gain: int, gates: np.ndarray, row_enable: np.ndarray,
                  col_enable: np.ndarray) -> np.ndarray:
        """Command 20 for (n, rows) input volts on the text grid: raw codes (n, cols).
        More vectors than the firmware buffers go as several commands."""
        d = self.dialect
        out = []
        for s in range(0, len(vectors), d.vmm_max_vectors):
            block = vectors[s : s + d.vmm_max_vectors]

            def answers(vectors: np.ndarray) -> np.ndarray:
                """Send one command 20, read its ``vmm_repeat`` answers, average them."""
                self.link.send(codec.vmm_lines(d, gain, gates, row_enable, col_enable, vectors))
                n = len(vectors)
                repeats = [codec.parse_vmm_block(self.link.answer(
                    d.vmm_done, busy=n * ROW_ALLOWANCE, expect_bytes=n * d.cols * CHARS_PER_CODE), d, n)
                    for _ in range(d.vmm_repeat)]
                return np.rint(np.mean(repeats, axis=0)).astype(np.int64)

            def attempt(block: np.ndarray = block) -> np.ndarray:
                if d.vmm_warmup:  # the driver's dummy run before each VMM; its answer is dropped
                    answers(block[: d.vmm_warmup])
                return answers(block)

            out.append(self._retrying(f"VMM of {len(block)} vectors", attempt))
        return np.concatenate(out) if out else np.zeros((0, d.cols), np.int64)

    # ------------------------------------------------------------ pulses
    def pulse_half(self, kind: str, half: int, width: int, amplitudes: np.ndarray, gates: np.ndarray,
                   targeted: np.ndarray) -> None:
        """Send one pulse command for one half (amplitude 0 where not to pulse) and make
        sure it is never sent twice. Returns when the board acknowledged it, or when a
        lost acknowledgement is settled by a late one or by read-back evidence.

        Raises
        ------
        Refused
            The board did not take the command (it never left) or did not answer.
        Unconfirmed
            It was sent, its answer was lost, and nothing shows whether it was applied.
        """
        d, o = self.dialect, self.options
        mode = o.set_mode if kind == "set" else o.reset_mode
        what = f"{kind.upper()} of {int(targeted.sum())} devices in rows {self._rows_text(half)}"
        if o.pre_read and self.reference.get(half) is None:
            self.read_half(half, codec.quantise(0.2, d.volt_step), 1)
        lines = codec.pulse_lines(d, kind, mode, width, half, amplitudes, gates)
        ack = codec.pulse_ack(d, kind)
        try:
            self.link.sync()
        except (LinkDown, TransportError) as exc:
            raise self._failure(f"{what} not sent", exc) from None
        slow = d.slow_set_width if kind == "set" else d.slow_reset_width
        busy = d.half_rows * ((slow if mode == "slow" else float(self.transfer.widths(width))) + ROW_ALLOWANCE)
        reference = self.reference.get(half)
        self.reference[half] = None  # whatever happens now, the half may have changed
        try:
            self.link.send(lines)
            answer = self.link.first_line(busy=busy)
        except TransportError as exc:
            answer, lost = None, f"the serial link failed ({exc})"
        else:
            if answer is not None and answer.startswith(ack):
                self.link.synced = True
                self.pulses += int(targeted.sum())
                return
            lost = f"got {answer[:40]!r} instead of {ack!r}" if answer is not None else "no acknowledgement in time"
        self._settle(kind, half, targeted, reference, ack, f"{what}: {lost}")

    def _settle(self, kind: str, half: int, targeted: np.ndarray, reference: tuple | None, ack: str,
                what: str) -> None:
        """After a lost or garbled acknowledgement: resync, look for a late one, read back."""
        n = int(targeted.sum())
        try:
            late = self.link.sync()
        except (LinkDown, TransportError) as exc:
            self.unconfirmed += n
            raise Unconfirmed(f"{what}; the board no longer answers ({exc}); the command was not resent: "
                              f"each of its {n} devices was pulsed once or not at all") from None
        if any(line.startswith(ack) for line in late):
            log.warning("%s, but a late acknowledgement arrived: applied", what)
            self.pulses += n
            return
        gain, v = (reference[1], reference[2]) if reference else (1, codec.quantise(0.2, self.dialect.volt_step))
        try:
            after = self.read_half(half, float(v), int(gain))
        except Refused as exc:
            self.unconfirmed += n
            raise Unconfirmed(f"{what}; the read-back failed too ({exc.reason}); the command was not resent: "
                              f"each of its {n} devices was pulsed once or not at all") from None
        if reference is not None:
            moved = self._moved(kind, reference, after) & targeted
            if moved.any():
                log.warning("%s, but the read-back shows %d of its %d devices changed: applied", what,
                            int(moved.sum()), n)
                self.pulses += n
                return
            evidence = f"a read-back shows none of its {n} devices changed"
        else:
            evidence = "no read of these rows since their last pulse to compare a read-back with"
        self.unconfirmed += n
        raise Unconfirmed(f"{what}; after a resync {evidence}; the command was not resent: each of its {n} "
                          "devices was pulsed once or not at all (re-read them)")

    def _moved(self, kind: str, reference: tuple[np.ndarray, int, float], after: np.ndarray) -> np.ndarray:
        """Devices whose conductance moved the way a pulse of ``kind`` moves it, beyond
        read noise (``evidence`` relative) and 4 ADC steps."""
        raw0, gain, v = reference
        d = self.dialect
        scale = d.adc_lsb / d.tia_gains[gain] / v  # siemens per code
        g0 = -(raw0 - d.adc_offset) * scale
        g1 = -(after - d.adc_offset) * scale
        threshold = self.options.evidence * np.abs(g0) + 4 * scale
        return (g1 - g0 > threshold) if kind == "set" else (g0 - g1 > threshold)

    def _rows_text(self, half: int) -> str:
        h = self.dialect.half_rows
        return f"{half * h}-{half * h + h - 1}"

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        self.link.close()


class BridgePeer(Peer):
    """The protocol engine over a :class:`DpeBridge` (what ``dpe://`` connects to)."""

    @property
    def bridge(self) -> DpeBridge:
        return self.backend  # type: ignore[return-value]

    @property
    def levels(self) -> dict[str, np.ndarray]:
        """DC level codes the bridge holds per line group (``"ROWS"``, ``"COLS"``, ``"GATES"``)."""
        b = self.bridge
        return {name: np.where(b.driven[g], b.levels[g], 0) for name, g in GROUPS.items()}


class BridgeTransport(InProcessTransport):
    """The in-process transport to a :class:`BridgePeer` that also owns its serial link."""

    def close(self) -> None:
        super().close()
        self.peer.bridge.close()  # type: ignore[attr-defined]

    def reopen(self) -> None:
        super().reopen()
        self.peer.bridge.link.reopen()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- opening
def split_address(address: str) -> tuple[str, str, dict[str, str]]:
    """``dpe:///dev/ttyUSB0?x=1`` -> (pyserial URL, port name, options)."""
    parts = urlsplit(address)
    scheme = parts.scheme.lower()
    rest = address.split("://", 1)[1].split("?", 1)[0]
    if not rest:
        raise AddressError(f"{address!r}: expected dpe://PORT (e.g. dpe:///dev/ttyUSB0, dpe://COM3) "
                           "or dpe+socket://HOST:PORT")
    try:
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
    except ValueError as exc:
        raise AddressError(f"{address!r}: malformed query ({exc})") from None
    if scheme == "dpe+socket":
        return f"socket://{rest}", rest, query
    return rest, rest, query


def parse_options(query: dict[str, str]) -> tuple[Dialect, BridgeOptions]:
    """Address options -> (dialect, bridge options); ValueError naming a bad one."""
    names = {f.name for f in fields(BridgeOptions)}
    own = {k: v for k, v in query.items() if k in names}
    dialect = Dialect.from_options({k: v for k, v in query.items() if k not in names})
    options = BridgeOptions(**convert_fields(BridgeOptions, own))
    options.check(dialect)
    return dialect, options


def open_bridge(address: str, options: dict[str, Any] | None = None) -> BridgeTransport:
    """Open ``dpe://PORT[?options]`` or ``dpe+socket://HOST:PORT[?options]``: the serial
    link (pyserial, 115 200 8N1 unless the dialect says otherwise), a first resync to be
    sure an original board answers, and the bridge's peer behind an in-process transport.

    Raises
    ------
    AddressError
        A malformed address or option.
    TransportError
        The port cannot be opened, or nothing there answers ``1024`` with ``go``.
    """
    url, port, query = split_address(address)
    try:
        dialect, opts = parse_options(query)
    except (TypeError, ValueError) as exc:
        raise AddressError(f"{address!r}: {exc}") from None
    transport = LineSerial(url, baudrate=dialect.baudrate)
    link = AsciiLink(transport, dialect, timeout=opts.timeout, sync_retries=opts.sync_retries)
    try:
        link.sync()
    except (LinkDown, TransportError) as exc:
        transport.close()
        raise TransportError(f"{address}: no original (DPE) board answers on {port}: {exc}") from None
    bridge = DpeBridge(link, opts, port)
    peer = BridgePeer(bridge, name=f"DPE bridge {port}")
    return BridgeTransport(peer, url=address)
