"""Weights -> differential conductance pairs, and the tiles that hold them in the arrays.

Conductance scheme (:class:`WeightMap`)
    A weight is the difference of two devices, ``w = (G+ − G−) / scale``. Devices cannot
    go below the chip's minimum conductance, so both sit on a base conductance:

    * one-sided (default): ``G± = g_base + max(±w, 0)·scale`` -- one device of each pair
      stays at ``g_base`` (low conductance: least read noise and IR drop), range
      ``|w| <= (g_max − g_base) / scale``;
    * centred: ``G± = g_centre ± w·scale/2`` -- both devices move, as needed by the
      open-loop gate-voltage updates of in-situ training (:mod:`memhw.nn.insitu`).

    Weights beyond the range raise :class:`~memhw.nn.errors.WeightRangeError` (never
    clipped silently); :func:`auto_scale` picks a scale per layer that fits. Each layer
    may have its own map (a mapping key -> WeightMap wherever a map is taken).

Tiles (:class:`Tile`, made by :func:`~memhw.nn.placement.place`)
    A weight matrix (out M, in K) is held by tiles. With ``layout="rows"`` (DOMAIN §3)
    a tile holds K_t inputs × M_t outputs on 2·K_t rows (G+ rows then G− rows) × M_t
    columns; the input is driven +v on the G+ rows and −v on the G− rows, so each column
    current is Σ(G+ − G−)·v. With ``layout="columns"`` a tile uses K_t rows × 2·M_t
    columns (G+ and G− in neighbouring columns) and the host subtracts the two currents.
    A tile may also have *repair rows*: extra row pairs driven with the same input as one
    of its inputs, whose devices add to that input's weights (a weight whose own pair
    cannot hold it gets the rest there, :mod:`memhw.nn.crossbar`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import WeightRangeError

__all__ = [
    "LAYOUTS",
    "Placement",
    "Tile",
    "WeightMap",
    "WeightMaps",
    "auto_scale",
    "map_of",
    "to_conductances",
    "to_weights",
]

LAYOUTS = ("rows", "columns")
#: relative slack before a weight counts as beyond a map's range (float round-off)
_RANGE_SLACK = 1e-9


@dataclass(frozen=True)
class WeightMap:
    """How weights become conductance pairs (see the module docstring).

    Attributes
    ----------
    scale : float
        Siemens of conductance difference per unit weight (100 µS, DOMAIN §1).
    g_base : float
        Conductance of a device that carries no weight (one-sided) / lowest target.
    g_max : float
        Highest target of an ordinary weight.
    centred : bool
        Centred scheme around ``g_centre`` instead of one-sided.
    g_centre : float, optional
        Centre of the centred scheme; default midway between ``g_base`` and ``g_max``.
    g_floor, g_ceiling : float
        Lowest and highest target any device may be given when a pair compensates a
        defect through its common mode (e.g. a G− raised to match a stuck-high G+): the
        whole programmable range of a device (DOMAIN §2.7: G_min ≈ 1–5 µS, G_max ≈
        300–400 µS), wider than the ordinary ``[g_base, g_max]``.
    """

    scale: float = 100e-6
    g_base: float = 20e-6
    g_max: float = 300e-6
    centred: bool = False
    g_centre: float | None = None
    g_floor: float = 5e-6
    g_ceiling: float = 340e-6

    def __post_init__(self) -> None:
        if not (self.scale > 0 and 0 <= self.g_base < self.g_max):
            raise ValueError(f"need scale > 0 and 0 <= g_base < g_max, got {self}")
        if self.g_centre is not None and not self.g_base < self.g_centre < self.g_max:
            raise ValueError("g_centre must lie between g_base and g_max")
        if not 0 <= self.g_floor <= self.g_base or self.g_ceiling < self.g_max:
            raise ValueError("need 0 <= g_floor <= g_base and g_ceiling >= g_max")

    @property
    def centre(self) -> float:
        """Conductance of both devices of a zero weight in the centred scheme."""
        return 0.5 * (self.g_base + self.g_max) if self.g_centre is None else self.g_centre

    @property
    def w_max(self) -> float:
        """Largest representable |weight|."""
        if self.centred:
            return 2.0 * min(self.centre - self.g_base, self.g_max - self.centre) / self.scale
        return (self.g_max - self.g_base) / self.scale

    def check(self, w: np.ndarray, name: str = "weights") -> np.ndarray:
        """``w`` as a float array; :class:`WeightRangeError` if any |w| exceeds :attr:`w_max`."""
        w = np.asarray(w, float)
        big = float(np.abs(w).max(initial=0.0))
        if not np.isfinite(w).all():
            raise WeightRangeError(f"{name}: NaN or infinite weights")
        if big > self.w_max * (1 + _RANGE_SLACK):
            raise WeightRangeError(
                f"{name}: |w| up to {big:.3g} exceeds the mappable {self.w_max:.3g} at "
                f"{self.scale * 1e6:.0f} uS per unit weight; use auto_scale() (a smaller scale for this "
                "layer) or keep the weights in range when training (fit(..., weight_limit=...))")
        return w

    def common(self, d: np.ndarray) -> np.ndarray:
        """Preferred conductance of the lower device of a pair holding difference ``d`` (S)."""
        d = np.asarray(d, float)
        return self.centre - 0.5 * np.abs(d) if self.centred else np.full(d.shape, self.g_base)

    def to_conductance(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights -> (G+, G−) in siemens (:class:`WeightRangeError` beyond the range)."""
        d = self.check(w) * self.scale
        c = self.common(d)
        return c + np.maximum(d, 0.0), c + np.maximum(-d, 0.0)

    def to_weight(self, g_plus: np.ndarray, g_minus: np.ndarray) -> np.ndarray:
        """(G+, G−) -> weights."""
        return (np.asarray(g_plus) - np.asarray(g_minus)) / self.scale


#: one map for every layer, or one per layer key
WeightMaps = WeightMap | Mapping[str, WeightMap]


def map_of(maps: WeightMaps, key: str) -> WeightMap:
    """The map of layer ``key``."""
    return maps if isinstance(maps, WeightMap) else maps[key]


def auto_scale(weights: Mapping[str, np.ndarray], base: WeightMap = WeightMap(), fill: float = 0.9,
               scale_max: float = 250e-6) -> dict[str, WeightMap]:
    """A map per layer whose scale puts the layer's largest |w| at ``fill`` of the range.

    A larger scale makes the fixed absolute errors of programming (tolerance, relaxation,
    write noise) smaller in weight units, so every layer gets the largest scale that
    holds its weights, up to ``scale_max`` (250 µS per unit weight, the later paper of
    DOMAIN §1); a layer with weights beyond ``base``'s range gets a smaller one.

    Parameters
    ----------
    weights : mapping key -> array
    base : WeightMap
        Everything but ``scale`` comes from it.
    fill : float
        Fraction of the range the largest weight may use (0 < fill <= 1).
    scale_max : float
        Largest scale given, S per unit weight.
    """
    if not 0 < fill <= 1:
        raise ValueError(f"fill must be in (0, 1], got {fill}")
    out = {}
    for key, w in weights.items():
        big = float(np.abs(np.asarray(w, float)).max(initial=0.0))
        span = base.w_max * base.scale  # siemens the largest weight may take
        scale = scale_max if big == 0 else min(scale_max, fill * span / big)
        out[key] = replace(base, scale=scale)
    return out


@dataclass(frozen=True)
class Tile:
    """One rectangle of devices holding ``W[outputs, inputs]`` of layer ``key``.

    Attributes
    ----------
    key : str
    array : int
        Index of the array (board) it sits in.
    inputs, outputs : (start, stop)
        The slice of the weight matrix's inputs (K) and outputs (M) it holds.
    rows_plus, rows_minus : int ndarray (K_t,)
        Rows of the G+ and G− devices of each input (equal for the "columns" layout).
    cols_plus, cols_minus : int ndarray (M_t,)
        Columns of the G+ and G− devices of each output (equal for the "rows" layout).
    repair : tuple of (input, row_plus, row_minus)
        Repair row pairs: input index (of the whole layer) they are driven with, and
        their G+ / G− rows (equal for the "columns" layout).
    """

    key: str
    array: int
    inputs: tuple[int, int]
    outputs: tuple[int, int]
    rows_plus: np.ndarray
    rows_minus: np.ndarray
    cols_plus: np.ndarray
    cols_minus: np.ndarray
    repair: tuple[tuple[int, int, int], ...] = ()

    @property
    def differential_rows(self) -> bool:
        """True for the "rows" layout (inputs driven ±v), False for column pairs."""
        return not np.array_equal(self.rows_plus, self.rows_minus)

    def row_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input index, G+ row, G− row) of every row pair, repair rows included."""
        k = np.arange(*self.inputs)
        rep = np.array(self.repair, int).reshape(-1, 3)
        return (np.concatenate([k, rep[:, 0]]), np.concatenate([self.rows_plus, rep[:, 1]]),
                np.concatenate([self.rows_minus, rep[:, 2]]))

    def rows(self) -> np.ndarray:
        """Every row the tile drives (sorted)."""
        _, rp, rm = self.row_pairs()
        return np.union1d(rp, rm)

    def devices(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) index arrays of every device of the tile (for masks)."""
        cols = np.union1d(self.cols_plus, self.cols_minus)
        return np.ix_(self.rows(), cols)

    def with_repair(self, k: int, row_plus: int, row_minus: int) -> Tile:
        """A copy with one more repair row pair for input ``k`` (one of the tile's inputs)."""
        if not self.inputs[0] <= k < self.inputs[1]:
            raise ValueError(f"input {k} is not held by this tile ({self.inputs})")
        return replace(self, repair=self.repair + ((int(k), int(row_plus), int(row_minus)),))


@dataclass
class Placement:
    """Where every layer's weights sit.

    Attributes
    ----------
    shapes : list of (rows, cols)
        Geometry of each array.
    layers : dict key -> (M, K)
        Shape of each placed weight matrix.
    tiles : list of Tile
    layout : {"rows", "columns"}
    faulty : list of (array, row, col)
        Unusable devices that had to be used.
    """

    shapes: list[tuple[int, int]]
    layers: dict[str, tuple[int, int]]
    tiles: list[Tile] = field(default_factory=list)
    layout: str = "rows"
    faulty: list[tuple[int, int, int]] = field(default_factory=list)

    def tiles_of(self, key: str) -> list[Tile]:
        """The tiles of one layer."""
        return [t for t in self.tiles if t.key == key]

    def used(self, array: int) -> np.ndarray:
        """Boolean (rows, cols) mask of the devices any tile of ``array`` uses."""
        mask = np.zeros(self.shapes[array], bool)
        for t in self.tiles:
            if t.array == array:
                mask[t.devices()] = True
        return mask

    def owner(self, array: int) -> np.ndarray:
        """(rows, cols) int map: index of the tile holding each device, −1 if free."""
        out = np.full(self.shapes[array], -1)
        for i, t in enumerate(self.tiles):
            if t.array == array:
                out[t.devices()] = i
        return out


def _block(t: Tile, weights: Mapping[str, np.ndarray]) -> np.ndarray:
    """The tile's weights, one row per row pair (repair pairs hold 0): (pairs, M_t)."""
    k, _, _ = t.row_pairs()
    w = np.asarray(weights[t.key], float)[t.outputs[0]:t.outputs[1]].T[k]
    w[t.inputs[1] - t.inputs[0]:] = 0.0
    return w


def to_conductances(placement: Placement, weights: Mapping[str, np.ndarray], weight_map: WeightMaps,
                    fill: float = np.nan) -> list[np.ndarray]:
    """Target conductance map of every array (repair row pairs hold zero weight).

    Parameters
    ----------
    placement : Placement
    weights : mapping key -> (M, K)
    weight_map : WeightMap or mapping key -> WeightMap
    fill : float
        Value of devices no tile uses.

    Returns
    -------
    list of (rows, cols) arrays, siemens

    Raises
    ------
    WeightRangeError
        A weight beyond its layer's map.
    """
    maps = [np.full(s, fill) for s in placement.shapes]
    for t in placement.tiles:
        _, rp, rm = t.row_pairs()
        gp, gm = map_of(weight_map, t.key).to_conductance(_block(t, weights))
        maps[t.array][np.ix_(rp, t.cols_plus)] = gp
        maps[t.array][np.ix_(rm, t.cols_minus)] = gm
    return maps


def pair_conductances(t: Tile, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(G+, G−) of every pair of tile ``t`` in conductance map ``g``: each (pairs, M_t)."""
    _, rp, rm = t.row_pairs()
    return g[np.ix_(rp, t.cols_plus)], g[np.ix_(rm, t.cols_minus)]


def to_weights(placement: Placement, conductances: Sequence[np.ndarray], weight_map: WeightMaps) -> dict[str, np.ndarray]:
    """The weights a set of conductance maps represents (inverse of :func:`to_conductances`;
    repair row pairs add to the weights of their input)."""
    out = {k: np.zeros(shape) for k, shape in placement.layers.items()}
    for t in placement.tiles:
        k, _, _ = t.row_pairs()
        gp, gm = pair_conductances(t, conductances[t.array])
        per_pair = map_of(weight_map, t.key).to_weight(gp, gm)  # (pairs, M_t)
        block = np.zeros((placement.layers[t.key][1], t.outputs[1] - t.outputs[0]))
        np.add.at(block, k, per_pair)
        out[t.key][t.outputs[0]:t.outputs[1], t.inputs[0]:t.inputs[1]] = block[t.inputs[0]:t.inputs[1]].T
    return out

