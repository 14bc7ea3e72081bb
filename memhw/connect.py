"""``memhw.connect(address)``: turn an address into a connected :class:`Board`.

Addresses
---------
``mock://[?preset=paper&seed=0&...]``
    The built-in board emulator, in this process (bytes still go through the
    full protocol stack). ``faults=drop:0.01,corrupt:0.01,dup:0.01,delay:0.005,
    truncate:..,disconnect:..,reset:..`` wraps the link in a
    :class:`~memhw.transport.FaultyTransport` (seeded by ``fault_seed=``;
    ``reset`` makes the emulator reboot mid-operation with that probability per
    pulse row and per request).
``visa://RESOURCE[?backend=@py]``
    Any VISA resource through pyvisa, e.g. ``visa://TCPIP0::127.0.0.1::5025::SOCKET``.
anything else
    A serial device or pyserial URL: ``/dev/ttyACM0``, ``COM3``,
    ``socket://127.0.0.1:5025``, ``loop://``, ``spy://...``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .board import Board
from .calibration.files import apply_calibration
from .errors import AddressError, TransportError
from .link import Link
from .transport import FaultSpec, FaultyTransport, InProcessTransport, SerialTransport, Transport, VisaTransport

__all__ = ["connect", "open_transport"]


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
    if address.startswith("mock://"):
        from .mock.firmware import BoardEmulator  # only when the user asks for the mock

        query = urlsplit(address).query
        try:
            params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
            spec = FaultSpec.parse(params.pop("faults")) if "faults" in params else None
            seed = params.pop("fault_seed", "0")
            try:
                fault_seed = int(seed)
            except ValueError:
                raise AddressError(f"fault_seed must be an integer, got {seed!r}") from None
            if spec is not None and spec.reset:  # reboots happen on the board's side
                params.update(faults=f"reset:{spec.reset}", fault_seed=str(fault_seed))
            emulator = BoardEmulator.from_query(params)
        except ValueError as exc:
            raise AddressError(f"{address!r}: {exc}") from None
        transport: Transport = InProcessTransport(emulator, url=address)
        if spec is not None:
            transport = FaultyTransport(transport, spec, seed=fault_seed)
        return transport
    if address.startswith("visa://"):
        rest = address[len("visa://"):]
        resource, _, query = rest.partition("?")
        try:
            opts = dict(parse_qsl(query, strict_parsing=bool(query)))
        except ValueError as exc:
            raise AddressError(f"{address!r}: {exc}") from None
        unknown = set(opts) - {"backend"}
        if unknown or not resource:
            raise AddressError(f"{address!r}: expected visa://RESOURCE[?backend=@py]")
        return VisaTransport(resource, backend=opts.get("backend", "@py"))
    try:
        return SerialTransport(address, baudrate=baudrate)
    except TransportError as exc:
        if "protocol" in str(exc) and "not known" in str(exc):
            raise AddressError(
                f"{address!r}: unknown kind of address; use mock://, visa://RESOURCE, "
                "a serial device or a pyserial URL (socket://, loop://, spy://)"
            ) from None
        raise


def connect(address: str = "mock://", *, timeout: float = 2.0, retries: int = 3,
            baudrate: int = 115200, calibration: Any = "auto", limits: Any = "auto") -> Board:
    """Connect to a board and perform the handshake.

    Parameters
    ----------
    address : str
        See the module documentation; default is the in-process emulator.
    timeout : float
        Seconds to wait for each reply.
    retries : int
        Re-sends of an unanswered request (answered from the board's reply
        cache, never executed twice).
    baudrate : int
        For serial ports.
    calibration : "auto", path, BoardCalibration or None
        ``"auto"`` (default): apply the calibration file of the board's serial from
        ``$MEMHW_CALIBRATION_DIR`` (default: the repository's ``calibration/``) if there
        is one (logged); a path or object: apply that one (another board's serial raises
        :class:`~memhw.errors.CalibrationError`); None: nominal transfer functions.
        A stale calibration (old, other firmware) gives a ``CalibrationWarning``.
    limits : "auto", path, Limits, mapping or None
        Safety limits tighter than the board's maxima (:mod:`memhw.limits`).
        ``"auto"`` (default): the limits file of the board's serial in
        ``$MEMHW_LIMITS_DIR`` (default ``~/.config/memhw/limits/``) if there is
        one; a path: that file; None: the board's absolute maxima. A file looser
        than the board's maxima raises :class:`~memhw.errors.LimitError`.

    Returns
    -------
    Board

    Examples
    --------
    >>> with connect("mock://?preset=ideal&seed=1") as board:
    ...     board.info.shape
    (128, 64)
    """
    transport = open_transport(address, baudrate=baudrate)
    try:
        board = Board(Link(transport, timeout=timeout, retries=retries), address)
        apply_calibration(board, calibration)
        if isinstance(limits, str) and limits == "auto":
            from .limits import find_limits

            limits = find_limits(board.info.serial)
        if limits is not None:
            board.set_limits(limits)
        return board
    except BaseException:
        transport.close()
        raise
