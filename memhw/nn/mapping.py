"""Weights -> differential conductance pairs, and where they sit in the arrays.

Conductance scheme (:class:`WeightMap`)
    A weight is the difference of two devices, ``w = (G+ − G−) / scale``. Devices cannot
    go below the chip's minimum conductance, so both sit on a base conductance:

    * one-sided (default): ``G± = g_base + max(±w, 0)·scale`` -- one device of each pair
      stays at ``g_base`` (low conductance: least read noise and IR drop), range
      ``|w| <= (g_max − g_base) / scale``;
    * centred: ``G± = g_centre ± w·scale/2`` -- both devices move, as needed by the
      open-loop gate-voltage updates of in-situ training (:mod:`memhw.nn.insitu`).

    Weights beyond the range are clipped to it.

Placement (:func:`place`)
    A weight matrix (out M, in K) is placed as tiles. With ``layout="rows"`` (DOMAIN §3)
    a tile holds K_t inputs × M_t outputs on 2·K_t rows (G+ rows then G− rows) × M_t
    columns; the input is driven +v on the G+ rows and −v on the G− rows, so each column
    current is Σ(G+ − G−)·v. With ``layout="columns"`` a tile uses K_t rows × 2·M_t
    columns (G+ and G− in neighbouring columns) and the host subtracts the two currents.
    Each tile owns its columns; tiles of different layers may share rows (they are never
    driven at the same time) but never devices. Layers too large for the free space are
    split: row tiles (input chunks) are summed on the host, column tiles (output chunks)
    concatenated, across as many arrays as given. Unusable devices (a boolean mask of
    usable devices per array) are avoided: whole unusable rows/columns are never used,
    and among the others the rows and columns with the fewest unusable devices are
    preferred; unusable devices that still fall inside a tile are listed in
    :attr:`Placement.faulty`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["WeightMap", "Tile", "Placement", "place", "to_conductances", "to_weights", "LAYOUTS"]

LAYOUTS = ("rows", "columns")


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
        Highest conductance target.
    centred : bool
        Centred scheme around ``g_centre`` instead of one-sided.
    g_centre : float, optional
        Centre of the centred scheme; default midway between ``g_base`` and ``g_max``.
    """

    scale: float = 100e-6
    g_base: float = 20e-6
    g_max: float = 300e-6
    centred: bool = False
    g_centre: float | None = None

    def __post_init__(self) -> None:
        if not (self.scale > 0 and 0 <= self.g_base < self.g_max):
            raise ValueError(f"need scale > 0 and 0 <= g_base < g_max, got {self}")
        if self.g_centre is not None and not self.g_base < self.g_centre < self.g_max:
            raise ValueError("g_centre must lie between g_base and g_max")

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

    def to_conductance(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights -> (G+, G−) in siemens (clipped to the range)."""
        w = np.clip(np.asarray(w, float), -self.w_max, self.w_max)
        if self.centred:
            half = 0.5 * w * self.scale
            return self.centre + half, self.centre - half
        return self.g_base + np.maximum(w, 0.0) * self.scale, self.g_base + np.maximum(-w, 0.0) * self.scale

    def to_weight(self, g_plus: np.ndarray, g_minus: np.ndarray) -> np.ndarray:
        """(G+, G−) -> weights."""
        return (np.asarray(g_plus) - np.asarray(g_minus)) / self.scale


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
    """

    key: str
    array: int
    inputs: tuple[int, int]
    outputs: tuple[int, int]
    rows_plus: np.ndarray
    rows_minus: np.ndarray
    cols_plus: np.ndarray
    cols_minus: np.ndarray

    @property
    def differential_rows(self) -> bool:
        """True for the "rows" layout (inputs driven ±v), False for column pairs."""
        return not np.array_equal(self.rows_plus, self.rows_minus)

    def devices(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) index arrays of every device of the tile (for masks)."""
        rows = np.union1d(self.rows_plus, self.rows_minus)
        cols = np.union1d(self.cols_plus, self.cols_minus)
        return np.ix_(rows, cols)


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


def _counts(shape: tuple[int, int], usable: np.ndarray | None) -> np.ndarray:
    return np.zeros(shape, int) if usable is None else (~np.asarray(usable, bool)).astype(int)


def _pick(candidates: np.ndarray, badness: np.ndarray, n: int) -> np.ndarray:
    """The n candidates with the least badness (ties: lowest index), sorted."""
    order = np.lexsort((candidates, badness[candidates]))
    return np.sort(candidates[order[:n]])


def place(layers: Mapping[str, tuple[int, int]], shapes: Sequence[tuple[int, int]] | tuple[int, int],
          usable: Sequence[np.ndarray | None] | np.ndarray | None = None, layout: str = "rows") -> Placement:
    """Place weight matrices in one or more arrays without overlap.

    Parameters
    ----------
    layers : mapping key -> (M, K)
        Weight-matrix shapes (outputs, inputs incl. bias), placed in this order
        (e.g. ``{k: w.shape for k, w in model.params.items()}``).
    shapes : (rows, cols) or list of them
        One entry per array (board).
    usable : bool array or list of them (or None), optional
        Devices that may be used, per array; default all.
    layout : {"rows", "columns"}
        Differential rows (DOMAIN §3) or differential column pairs.

    Returns
    -------
    Placement

    Raises
    ------
    ValueError
        The layers do not fit.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    shapes = [tuple(shapes)] if np.ndim(shapes[0]) == 0 else [tuple(s) for s in shapes]
    if usable is None or isinstance(usable, np.ndarray):
        usable = [usable] * len(shapes)
    bad = [_counts(s, u) for s, u in zip(shapes, usable)]
    row_ok = [b.sum(axis=1) < s[1] for b, s in zip(bad, shapes)]  # not a whole bad row
    col_free = [b.sum(axis=0) < s[0] for b, s in zip(bad, shapes)]  # not a whole bad column
    rows_per, cols_per = (2, 1) if layout == "rows" else (1, 2)
    placement = Placement(list(shapes), {k: (int(m), int(n)) for k, (m, n) in layers.items()}, layout=layout)
    for key, (M, K) in placement.layers.items():
        k_max = max(int(r.sum()) for r in row_ok) // rows_per
        if k_max == 0:
            raise ValueError("no usable rows")
        n_chunks = -(-K // k_max)
        bounds = np.linspace(0, K, n_chunks + 1).round().astype(int)
        for k0, k1 in zip(bounds[:-1], bounds[1:]):
            m0 = 0
            while m0 < M:
                a = next((a for a in range(len(shapes)) if col_free[a].sum() >= cols_per
                          and row_ok[a].sum() >= rows_per * (k1 - k0)), None)
                if a is None:
                    raise ValueError(f"layer {key!r} ({M}x{K}) does not fit in the free space of {shapes}")
                n_out = min(M - m0, int(col_free[a].sum()) // cols_per)
                cols = _pick(np.flatnonzero(col_free[a]), bad[a].sum(axis=0), n_out * cols_per)
                rows = _pick(np.flatnonzero(row_ok[a]), bad[a][:, cols].sum(axis=1), rows_per * (k1 - k0))
                if layout == "rows":
                    rp, rm, cp, cm = rows[: k1 - k0], rows[k1 - k0:], cols, cols
                else:
                    rp, rm, cp, cm = rows, rows, cols[0::2], cols[1::2]
                tile = Tile(key, a, (int(k0), int(k1)), (m0, m0 + n_out), rp, rm, cp, cm)
                placement.tiles.append(tile)
                col_free[a][cols] = False
                rr, cc = np.nonzero(bad[a][tile.devices()])
                placement.faulty.extend((a, int(rows[r]), int(cols[c])) for r, c in zip(rr, cc))
                m0 += n_out
    return placement


def to_conductances(placement: Placement, weights: Mapping[str, np.ndarray], weight_map: WeightMap,
                    fill: float = np.nan) -> list[np.ndarray]:
    """Target conductance map of every array.

    Parameters
    ----------
    placement : Placement
    weights : mapping key -> (M, K)
    weight_map : WeightMap
    fill : float
        Value of devices no tile uses.

    Returns
    -------
    list of (rows, cols) arrays, siemens
    """
    maps = [np.full(s, fill) for s in placement.shapes]
    for t in placement.tiles:
        w = np.asarray(weights[t.key])[t.outputs[0]:t.outputs[1], t.inputs[0]:t.inputs[1]]
        gp, gm = weight_map.to_conductance(w)
        maps[t.array][np.ix_(t.rows_plus, t.cols_plus)] = gp.T
        maps[t.array][np.ix_(t.rows_minus, t.cols_minus)] = gm.T
    return maps


def to_weights(placement: Placement, conductances: Sequence[np.ndarray], weight_map: WeightMap) -> dict[str, np.ndarray]:
    """The weights a set of conductance maps represents (inverse of :func:`to_conductances`)."""
    out = {k: np.zeros(shape) for k, shape in placement.layers.items()}
    for t in placement.tiles:
        g = conductances[t.array]
        w = weight_map.to_weight(g[np.ix_(t.rows_plus, t.cols_plus)], g[np.ix_(t.rows_minus, t.cols_minus)])
        out[t.key][t.outputs[0]:t.outputs[1], t.inputs[0]:t.inputs[1]] = w.T
    return out
