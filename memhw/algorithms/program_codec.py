"""The one codec between a :class:`~memhw.algorithms.tuning.TuningConfig` and the fields of a
PROGRAM request, used by the host (``Board.program_on_board``) and by every board back end
that runs the loop itself, so the loop on the board is configured exactly as on the host.

Every field of ``TuningConfig`` travels, under its own name, in the unit the schema gives
it (``dac_line``, ``dac_gate``, ``width``, ``g`` or a plain count); the verify-read
voltage travels as ``v_read``. Values are rounded to the nearest code, so a decoded
configuration equals the original within one code of each field.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from firmware_protocol import SCHEMA

from ..conversions import Transfer, conductance_codes, conductances
from .tuning import TuningConfig

__all__ = ["CONFIG_FIELDS", "encode_config", "decode_config"]

_REQUEST = {f.name: f for f in SCHEMA.message("PROGRAM").request}
#: TuningConfig field -> its unit on the wire (every field crosses the wire)
CONFIG_FIELDS: dict[str, str] = {f.name: _REQUEST[f.name].unit for f in dataclasses.fields(TuningConfig)}
_RANGE = {"u8": (0, 0xFF), "u16": (0, 0xFFFF), "i16": (-0x8000, 0x7FFF)}


def _to_code(unit: str, value: Any, t: Transfer) -> int:
    if unit == "dac_line":
        return int(t.line_codes(value))
    if unit == "dac_gate":
        return int(t.gate_codes(value))
    if unit == "width":
        return int(t.width_codes(value))
    if unit == "g":
        return int(conductance_codes(value))
    return int(value)


def _from_code(unit: str, code: Any, t: Transfer) -> float | int:
    if unit == "dac_line":
        return float(t.line_volts(code))
    if unit == "dac_gate":
        return float(t.gate_volts(code))
    if unit == "width":
        return float(t.widths(code))
    if unit == "g":
        return float(conductances(code))
    return int(code)


def encode_config(config: TuningConfig, t: Transfer, v_read: float) -> dict[str, int]:
    """The PROGRAM request fields that carry ``config`` and the verify-read voltage.

    Raises
    ------
    ValueError
        A value whose code does not fit its wire type (e.g. a budget above 65535).
    """
    out = {name: _to_code(unit, getattr(config, name), t) for name, unit in CONFIG_FIELDS.items()}
    out["v_read"] = int(t.line_codes(v_read))
    for name, code in out.items():
        lo, hi = _RANGE[_REQUEST[name].type]
        if not lo <= code <= hi:
            raise ValueError(f"PROGRAM {name}: code {code} does not fit {_REQUEST[name].type}")
    return out


def decode_config(fields: Mapping[str, Any], t: Transfer) -> tuple[TuningConfig, float]:
    """``(config, v_read)`` from the fields of a decoded PROGRAM request."""
    config = TuningConfig(**{name: _from_code(unit, fields[name], t) for name, unit in CONFIG_FIELDS.items()})
    return config, float(t.line_volts(np.int64(fields["v_read"])))
