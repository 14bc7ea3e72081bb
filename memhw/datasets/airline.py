"""Monthly international airline passengers 1949–1960 (Box & Jenkins series G).

Shipped as package data (``memhw/datasets/data/airline_passengers.csv``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

import numpy as np

__all__ = ["AirlineData", "airline"]


@dataclass(frozen=True)
class AirlineData:
    """The airline series, prepared as in DOMAIN §3.

    Attributes
    ----------
    months : ndarray of str, shape (N,)
        "YYYY-MM".
    passengers : ndarray, shape (N,)
        Thousands of passengers.
    scaled : ndarray, shape (N,)
        Min–max scaled to [0, 1] (over the whole series, as published).
    x, y : ndarray, shape (N - 1, 1)
        Input (month t, scaled) and target (month t + 1, scaled).
    n_train : int
        The first ``n_train`` (x, y) pairs are training data: targets up to month
        ``train_months`` (96 = 1949–1956).
    lo, hi : float
        Minimum and maximum used for scaling (thousands of passengers).
    """

    months: np.ndarray
    passengers: np.ndarray
    scaled: np.ndarray
    x: np.ndarray
    y: np.ndarray
    n_train: int
    lo: float
    hi: float

    def unscale(self, values: np.ndarray) -> np.ndarray:
        """Scaled values -> thousands of passengers."""
        return np.asarray(values) * (self.hi - self.lo) + self.lo


def _read_csv() -> tuple[list[str], list[float]]:
    text = resources.files(__package__).joinpath("data/airline_passengers.csv").read_text()
    months, values = [], []
    for row in csv.reader(text.splitlines()[1:]):
        if len(row) < 2 or not row[1].strip():
            continue  # blank or trailing line without a value
        value = float(row[1])
        if np.isfinite(value):
            months.append(row[0].strip())
            values.append(value)
    return months, values


def airline(train_months: int = 96) -> AirlineData:
    """Load the series: window 1, next-month target, first ``train_months`` months train.

    Parameters
    ----------
    train_months : int
        Months of the training part (DOMAIN §3: 96, i.e. 1949–1956).

    Returns
    -------
    AirlineData
    """
    months, values = _read_csv()
    p = np.array(values)
    lo, hi = float(p.min()), float(p.max())
    s = (p - lo) / (hi - lo)
    return AirlineData(months=np.array(months), passengers=p, scaled=s, x=s[:-1, None], y=s[1:, None],
                       n_train=train_months - 1, lo=lo, hi=hi)
