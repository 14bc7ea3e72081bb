"""Data sets of the LSTM experiments (DOMAIN §3): airline passengers and gait."""

from .airline import AirlineData, airline
from .gait import GaitData, load_gait, synthetic_gait

__all__ = ["AirlineData", "airline", "GaitData", "load_gait", "synthetic_gait"]
