"""A calibration's fit quality in words: one line per group of channels, with units."""

from __future__ import annotations

from typing import Any

from ..units import si

__all__ = ["summary_lines"]

_GROUPS = (("rows", "row DACs"), ("cols", "column DACs"), ("gates", "gate DACs"))


def _r2(value: float) -> str:
    return f"1 − r² ≤ {max(1.0 - float(value), 0.0):.1g}"


def summary_lines(s: dict[str, Any]) -> list[str]:
    """Lines from :meth:`BoardCalibration.summary` (or the attributes of a ``calibration``
    run of a session file, which holds the same keys)."""
    lines = []
    for key, name in _GROUPS:
        p = f"dac_{key}_"
        if p + "gain_dev_max" in s:
            lines.append(f"{name:<12} gain error ≤ {s[p + 'gain_dev_max']:.2%}, offset ≤ "
                         f"{si(s[p + 'offset_max_V'], 'V', 3)}, fit residual ≤ {si(s[p + 'residual_max_V'], 'V', 3)} "
                         f"rms, {_r2(s[p + 'r2_min'])}")
    if "tia_gain_dev_max" in s:
        lines.append(f"{'TIAs':<12} gain error ≤ {s['tia_gain_dev_max']:.2%}, offset ≤ "
                     f"{si(s['tia_offset_max_V'], 'V', 3)}, fit residual median {s['tia_residual_median']:.3%} "
                     f"(max {s['tia_residual_max']:.3%}) of full scale, {_r2(s['tia_r2_min'])}")
    return lines
