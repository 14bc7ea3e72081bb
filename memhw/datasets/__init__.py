"""Data sets of the LSTM experiments: airline passengers and gait (DOMAIN §3), and the
Mackey–Glass series (a benchmark of our own, not tuned on)."""

from .airline import AirlineData, airline
from .gait import GaitData, load_gait, synthetic_gait
from .mackey_glass import WindowedSeries, mackey_glass

__all__ = ["AirlineData", "GaitData", "WindowedSeries", "airline", "load_gait", "mackey_glass", "synthetic_gait"]
