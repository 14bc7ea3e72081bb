"""``memhw.connect(address)``: turn an address into a connected :class:`Board`.

Addresses
---------
``mock://[?preset=paper&seed=0&...]``
    The built-in board emulator, in this process (bytes still go through the
    full protocol stack). ``firmware=c`` puts the C firmware core (``firmware/``,
    :mod:`memhw.cfirmware`) in place of the Python peer, over the same hardware model. ``faults=drop:0.01,corrupt:0.01,dup:0.01,delay:0.005,
    truncate:..,disconnect:..,reset:..`` wraps the link in a
    :class:`~memhw.transport.FaultyTransport` (seeded by ``fault_seed=``;
    ``reset`` makes the emulator reboot mid-operation with that probability per
    pulse row and per request).
``visa://RESOURCE[?backend=@py]``
    Any VISA resource through pyvisa, e.g. ``visa://TCPIP0::127.0.0.1::5025::SOCKET``.
a serial device or a pyserial URL
    ``/dev/ttyACM0``, ``COM3``, ``socket://127.0.0.1:5025``, ``loop://``, ``spy://...``
    (every scheme pyserial has a URL handler for).
``dpe://PORT[?options]``, ``dpe+socket://HOST:PORT[?options]``
    The original 128 x 64 board through its 2017 ASCII command set (:mod:`memhw.dpe`,
    docs/dpe.md), over a serial port or a served one.

Each ``scheme://`` is one entry of a registry (:func:`register_scheme`), as pyserial's
URL handlers are: a new kind of board back end is one registration.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from .board import Board
from .calibration.files import apply_calibration
from .errors import AddressError, MemhwError
from .link import Link, check_timeout
from .transport import FaultSpec, FaultyTransport, InProcessTransport, SerialTransport, Transport, VisaTransport

__all__ = ["connect", "open_transport", "register_scheme", "schemes"]

Opener = Callable[[str, dict[str, Any]], Transport]
_SCHEMES: dict[str, tuple[Opener, str]] = {}


def register_scheme(scheme: str, opener: Opener, description: str = "") -> None:
    """Make ``scheme://...`` addresses open with ``opener(address, options)``.

    ``options`` holds connection options (``baudrate``). Registering a scheme that
    pyserial also handles takes it over for memhw.
    """
    if not scheme.isidentifier() and not all(c.isalnum() or c in "+-." for c in scheme):
        raise ValueError(f"not a URL scheme: {scheme!r}")
    _SCHEMES[scheme.lower()] = (opener, description)


def schemes() -> dict[str, str]:
    """Registered schemes and what they open."""
    return {name: desc for name, (_, desc) in _SCHEMES.items()}


def _query(address: str, query: str) -> dict[str, str]:
    try:
        return dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise AddressError(f"{address!r}: malformed query ({exc})") from None


def _open_mock(address: str, options: dict[str, Any]) -> Transport:
    from .emulators import emulator_from_query  # only when the user asks for the mock

    params = _query(address, urlsplit(address).query)
    try:
        spec = FaultSpec.parse(params.pop("faults")) if "faults" in params else None
        seed = params.pop("fault_seed", "0")
        try:
            fault_seed = int(seed)
        except ValueError:
            raise AddressError(f"fault_seed must be an integer, got {seed!r}") from None
        if spec is not None and spec.reset:  # reboots happen on the board's side
            params.update(faults=f"reset:{spec.reset}", fault_seed=str(fault_seed))
        emulator = emulator_from_query(params)
    except ValueError as exc:
        raise AddressError(f"{address!r}: {exc}") from None
    transport: Transport = InProcessTransport(emulator, url=address)
    if spec is not None:
        transport = FaultyTransport(transport, spec, seed=fault_seed)
    return transport


def _open_visa(address: str, options: dict[str, Any]) -> Transport:
    rest = address.split("://", 1)[1]
    resource, _, query = rest.partition("?")
    opts = _query(address, query)
    unknown = set(opts) - {"backend"}
    if unknown or not resource:
        raise AddressError(f"{address!r}: expected visa://RESOURCE[?backend=@py]")
    return VisaTransport(resource, backend=opts.get("backend", "@py"))


def _open_serial(address: str, options: dict[str, Any]) -> Transport:
    return SerialTransport(address, baudrate=options.get("baudrate", 115200))


register_scheme("mock", _open_mock, "the built-in board emulator, in this process")
register_scheme("visa", _open_visa, "any VISA resource through pyvisa")


def _open_dpe(address: str, options: dict[str, Any]) -> Transport:
    from .dpe.bridge import open_bridge  # only when such an address is used

    return open_bridge(address, options)


register_scheme("dpe", _open_dpe, "the original 128x64 board's ASCII command set on a serial port (bridge)")
register_scheme("dpe+socket", _open_dpe, "the original board's ASCII command set served on TCP (bridge)")


def _pyserial_scheme(scheme: str) -> bool:
    """Whether pyserial has a URL handler for ``scheme`` (``socket``, ``loop``, ``spy``...)."""
    import serial

    for package in serial.protocol_handler_packages:
        if importlib.util.find_spec(f"{package}.protocol_{scheme}") is not None:
            return True
    return False


def open_transport(address: str, *, baudrate: int = 115200) -> Transport:
    """Open the byte transport an address names (no handshake).

    Raises
    ------
    AddressError
        The address is empty, malformed or of an unknown kind.
    TransportError
        The port or resource exists but cannot be opened (missing, busy).
    """
    if not isinstance(address, str) or not address.strip():
        raise AddressError(f"board address must be a non-empty string, got {address!r}")
    address = address.strip()
    options = {"baudrate": baudrate}
    scheme, sep, _ = address.partition("://")
    if sep:
        entry = _SCHEMES.get(scheme.lower())
        if entry is not None:
            return entry[0](address, options)
        if not (scheme.isidentifier() and _pyserial_scheme(scheme.lower())):
            known = ", ".join(f"{s}://" for s in _SCHEMES)
            raise AddressError(f"{address!r}: unknown kind of address {scheme!r}; use {known}, a serial device "
                               "(/dev/ttyACM0, COM3) or a pyserial URL (socket://, loop://, spy://, rfc2217://)")
    return _open_serial(address, options)


def connect(address: str = "mock://", *, timeout: float = 2.0, retries: int = 3,
            baudrate: int = 115200, calibration: Any = "auto", limits: Any = "auto",
            takeover: bool = False, client: str | None = None) -> Board:
    """Connect to a board: open its address and start a session (HELLO).

    Parameters
    ----------
    address : str
        See the module documentation; default is the in-process emulator.
    timeout : float
        Seconds to wait for each reply (finite, > 0).
    retries : int
        Re-sends of an unanswered request (answered from the board's reply
        cache, never executed twice).
    baudrate : int
        For serial ports.
    calibration : "auto", path, BoardCalibration or None
        ``"auto"`` (default): apply the calibration file of the board's serial if there
        is one (logged), looked up in ``$MEMHW_CALIBRATION_DIR`` if set, else in the
        per-user data directory, then among the calibrations shipped with memhw
        (:func:`memhw.calibration.files.search_path`); a path or object: apply that one (another board's serial raises
        :class:`~memhw.errors.CalibrationError`); None: nominal transfer functions.
        A stale calibration (old, other firmware) gives a ``CalibrationWarning``.
    limits : "auto", path, Limits, mapping or None
        Safety limits tighter than the board's maxima (:mod:`memhw.limits`).
        ``"auto"`` (default): the limits file of the board's serial in
        ``$MEMHW_LIMITS_DIR`` (default ``~/.config/memhw/limits/``) if there is
        one; a path: that file; None: the board's absolute maxima. A file looser
        than the board's maxima raises :class:`~memhw.errors.LimitError`.
    takeover : bool
        Take the board over from another host's session (for an owner that crashed or
        hangs; the board logs it). Without it, a board in use raises
        :class:`~memhw.errors.BoardBusy` at once, naming its owner.
    client : str, optional
        How this host introduces itself to the board (default: program, user, machine
        and process id).

    Returns
    -------
    Board

    Raises
    ------
    AddressError, TransportError, BoardBusy, VersionMismatch, LimitError, CalibrationError

    Examples
    --------
    >>> with connect("mock://?preset=ideal&seed=1") as board:
    ...     board.info.shape
    (128, 64)
    """
    timeout = check_timeout(timeout)
    if not isinstance(takeover, bool):
        raise AddressError(f"takeover must be True or False, got {takeover!r}")
    transport = open_transport(address, baudrate=baudrate)
    try:
        board = Board(Link(transport, timeout=timeout, retries=retries), address, takeover=takeover, client=client)
    except BaseException:
        transport.close()
        raise
    try:
        apply_calibration(board, calibration)
        if isinstance(limits, str) and limits == "auto":
            from .limits import find_limits

            limits = find_limits(board.info.serial)
        if limits is not None:
            board.set_limits(limits)
        return board
    except BaseException:
        try:
            board.close()
        except MemhwError:
            pass
        raise
