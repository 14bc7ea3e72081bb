"""VISA resources through pyvisa (``visa://RESOURCE[?backend=@py]``).

Frames end in 0x00, so the resource is opened with ``read_termination="\\x00"``
and each read returns one whole frame; writes are raw bytes.
"""

from __future__ import annotations

from ..errors import Disconnected, TransportError
from .base import Transport


class VisaTransport(Transport):
    """A transport over a pyvisa resource.

    Parameters
    ----------
    resource : str
        Any VISA resource name, e.g. ``TCPIP0::127.0.0.1::5025::SOCKET``.
    backend : str
        pyvisa backend; ``"@py"`` (pyvisa-py, default) or ``"@ivi"`` for a vendor VISA.
    """

    def __init__(self, resource: str, backend: str = "@py"):
        import pyvisa  # imported here: only needed for visa:// addresses

        self.url = f"visa://{resource}"
        self._resource = resource
        self._backend = backend
        self._errors = (pyvisa.errors.VisaIOError, pyvisa.errors.InvalidSession, OSError)
        self._timeout_code = pyvisa.constants.StatusCode.error_timeout
        try:
            self._rm = pyvisa.ResourceManager(backend)
        except (pyvisa.errors.Error, ValueError, OSError) as exc:
            raise TransportError(f"cannot open VISA resource {resource!r}: the VISA library {backend!r} is not "
                                 f"usable ({exc}); memhw uses pyvisa-py ('@py') unless told otherwise") from exc
        try:
            info = self._rm.resource_info(resource)
        except (pyvisa.errors.Error, ValueError, OSError) as exc:
            self.close()
            raise TransportError(f"cannot open VISA resource {resource!r}: resource not found or not a valid "
                                 "VISA resource name (e.g. TCPIP0::127.0.0.1::5025::SOCKET, ASRL/dev/ttyUSB0::INSTR)"
                                 f" ({exc})") from None
        if info.interface_type == pyvisa.constants.InterfaceType.unknown:
            self.close()
            raise TransportError(f"cannot open VISA resource {resource!r}: not a resource name VISA understands "
                                 "(e.g. TCPIP0::127.0.0.1::5025::SOCKET, ASRL/dev/ttyUSB0::INSTR)")
        try:
            res = self._rm.open_resource(resource, open_timeout=2000)
        except (pyvisa.errors.Error, ValueError, OSError) as exc:
            self.close()
            raise TransportError(f"cannot open VISA resource {resource!r}: {exc}") from exc
        if not isinstance(res, pyvisa.resources.MessageBasedResource):
            res.close()
            self.close()
            raise TransportError(f"cannot open VISA resource {resource!r}: it is a {type(res).__name__}, not a "
                                 "message-based resource; memhw needs a byte stream (SOCKET, INSTR or ASRL)")
        res.read_termination, res.write_termination, res.timeout = "\x00", "", 2000
        self._res = res
        self._timeout_ms: float | None = 2000

    def write(self, data: bytes) -> None:
        try:
            self._res.write_raw(data)
        except self._errors as exc:
            raise Disconnected(f"write to {self.url!r} failed: {exc}") from exc

    def read(self, timeout: float) -> bytes:
        ms = max(1, round(timeout * 1000))
        try:
            if ms != self._timeout_ms:
                self._res.timeout = ms
                self._timeout_ms = ms
            return bytes(self._res.read_raw())
        except self._errors as exc:
            if getattr(exc, "error_code", None) == self._timeout_code:
                return b""
            raise Disconnected(f"read from {self.url!r} failed: {exc}") from exc

    def reopen(self) -> None:
        self.close()
        self.__init__(self._resource, self._backend)  # type: ignore[misc]

    def close(self) -> None:
        for closer in (getattr(self, "_res", None), getattr(self, "_rm", None)):
            try:
                if closer is not None:
                    closer.close()
            except Exception:  # noqa: BLE001 - closing must never raise
                pass
