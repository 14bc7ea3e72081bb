"""argparse types of the command line: each refuses a bad value at once, in the flag's unit.

A type raises :class:`argparse.ArgumentTypeError`; argparse turns it into one line
(``memhw program: error: argument --tolerance: -1 µS: ...``) and exit status 2.
"""

from __future__ import annotations

import argparse
import math

from .errors import MemhwError
from .link import check_timeout
from .units import US

__all__ = ["seconds", "fraction", "host_port", "positive_int", "microsiemens", "microsiemens_range"]


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of {what}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of {what}")
    return value


def seconds(text: str) -> float:
    """A timeout in seconds (finite, > 0)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    try:
        return check_timeout(value)
    except MemhwError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    value = _number(text, "a fraction")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction in [0, 1]")
    return value


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (port 0 picks a free one)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT with a port in 0..65535, "
                                         "e.g. 127.0.0.1:5025")
    return host or "127.0.0.1", int(port)


def positive_int(text: str) -> int:
    """An integer >= 1 (a count: samples, reads, epochs)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def microsiemens(text: str) -> float:
    """A conductance given in µS (> 0), returned in siemens."""
    value = _number(text, US)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} {US}: must be more than 0 {US}")
    return value * 1e-6


def microsiemens_range(text: str) -> tuple[float, float]:
    """``LO:HI`` in µS (0 <= LO < HI), returned in siemens."""
    lo, sep, hi = text.partition(":")
    try:
        if not sep:
            raise ValueError
        a, b = float(lo), float(hi)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LO:HI in {US}, e.g. 20:200") from None
    if not (math.isfinite(a) and math.isfinite(b) and 0 <= a < b):
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= LO < HI (in {US}), e.g. 20:200")
    return a * 1e-6, b * 1e-6
