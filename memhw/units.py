"""Numbers with units for people: engineering prefixes, one spelling of each unit.

Human-readable text and figure labels of memhw spell microsiemens ``µS`` (never ``uS``)
and ohms ``Ω``; these helpers are the one place that formats them.

>>> si(1.5999999902760464e-07, "s")
'160 ns'
>>> si(1e6, OHM)
'1 MΩ'
>>> us(2e-6)
'2 µS'
"""

from __future__ import annotations

import math

__all__ = ["MICRO", "US", "OHM", "si", "us", "number"]

MICRO = "µ"
#: microsiemens, as spelt in every human-readable text and figure label
US = "µS"
OHM = "Ω"

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, MICRO), (1e-9, "n"),
             (1e-12, "p"), (1e-15, "f"))


def number(value: float, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits, without trailing zeros (``0.1``, ``1.234e-09``)."""
    if isinstance(value, bool):
        return str(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.{digits}g}"


def si(value: float, unit: str, digits: int = 4) -> str:
    """``value`` in ``unit`` with an engineering prefix: ``si(1.6e-7, "s") == "160 ns"``.

    Parameters
    ----------
    value : float
        In the base unit (s, V, A, S, Ω...).
    unit : str
        Unit symbol, e.g. ``"s"``, ``"V"``, ``OHM``.
    digits : int
        Significant digits.
    """
    v = float(value)
    if not math.isfinite(v) or v == 0:
        return f"{v:g} {unit}"
    rounded = float(f"{v:.{digits}g}")  # 1.5999999e-07 -> 1.6e-07 before choosing the prefix
    for scale, prefix in _PREFIXES:
        if abs(rounded) >= scale * 0.9999999:
            return f"{number(rounded / scale, digits)} {prefix}{unit}"
    scale, prefix = _PREFIXES[-1]
    return f"{number(rounded / scale, digits)} {prefix}{unit}"


def us(value: float, decimals: int | None = None) -> str:
    """A conductance in siemens as microsiemens text: ``us(2e-6) == "2 µS"``; ``decimals``
    fixes the number of decimals (``us(2e-6, 1) == "2.0 µS"``)."""
    x = float(value) * 1e6
    return f"{x:.{decimals}f} {US}" if decimals is not None else f"{number(x, 4)} {US}"
