"""The C firmware core (``firmware/``) on the host: built by cffi at install time, with its
HAL implemented by the emulator's chip and periphery models.

:class:`CBoard` is reached as ``mock://?firmware=c`` or served with
``memhw mock serve --firmware c``; docs/firmware.md describes the core, the HAL and how to
port it to a board. Importing this package loads the compiled module
(``memhw.cfirmware._core``).
"""

from .board import FIRMWARE_NAME, CBoard, CConnection

__all__ = ["CBoard", "CConnection", "FIRMWARE_NAME"]
