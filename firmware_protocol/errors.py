"""Errors raised by the wire-format layer."""

from __future__ import annotations


class ProtocolError(Exception):
    """A frame or message that does not follow the protocol.

    The only exception type :mod:`firmware_protocol` raises on bad input.
    """
