"""Where the layers sit: :func:`place` puts weight matrices into arrays, around defects.

Each tile owns its columns; tiles of different layers may share rows (they are never
driven at the same time) but never devices. Layers too large for the free space are
split: row tiles (input chunks) are summed on the host, column tiles (output chunks)
concatenated, across as many arrays as given.

Defects (:class:`~memhw.health.HealthMap` per array, or plain ``usable`` masks): whole
unusable rows/columns are used only when the layers do not fit otherwise (listed in
:attr:`Placement.faulty`; the smallest layers then choose first, so that a dead line falls
to the largest layer); the lines with the fewest unusable devices are preferred. With the weights and a health map (``layout="rows"``),
the inputs are then *assigned* to rows and the outputs to columns so that what the
stuck and range-limited devices can still hold fits the weights they get (a device
stuck at 2 µS is a fine low side of a positive weight, a device stuck at 340 µS needs a
partner near 340 µS − w·scale): a linear assignment (Hungarian algorithm,
``scipy.optimize.linear_sum_assignment``) over every usable row, then over columns,
twice, minimising the expected squared weight error (what a defective device cannot hold
plus the read noise each device adds at its level). Unusable devices inside a tile are
listed in :attr:`Placement.faulty`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import PlacementError
from .mapping import LAYOUTS, Placement, Tile, WeightMap, WeightMaps, map_of

__all__ = ["arrays_needed", "place"]

#: cost of an unusable device inside a tile relative to a (weight unit)² of residual;
#: makes clean lines win ties
_DEFECT_COST = 1e-3


def _badness(shape: tuple[int, int], usable: np.ndarray | None, health: Any) -> np.ndarray:
    """Per-device badness: 1 for unusable devices, 0.25 for noisy or range-limited ones."""
    bad = np.zeros(shape) if usable is None else (~np.asarray(usable, bool)).astype(float)
    if health is not None:
        from ..health import DeviceState

        bad = np.maximum(bad, health.stuck.astype(float))
        soft = (health.state == DeviceState.NOISY) | (health.state == DeviceState.LIMITED)
        bad = np.maximum(bad, 0.25 * soft)
    return bad


def _pick(candidates: np.ndarray, badness: np.ndarray, n: int) -> np.ndarray:
    """The n candidates with the least badness (ties: lowest index), sorted."""
    order = np.lexsort((candidates, badness[candidates]))
    return np.sort(candidates[order[:n]])


def _as_list(x: Any, n: int) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x] * n


def arrays_needed(layers: Mapping[str, tuple[int, int]], shape: tuple[int, int], layout: str = "rows",
                  limit: int = 256) -> int | None:
    """How many defect-free arrays of ``shape`` the layers need (None: more than ``limit``)."""
    for n in range(1, limit + 1):
        try:
            _place(dict(layers), [tuple(shape)] * n, [None] * n, [None] * n, layout, None, WeightMap())
            return n
        except PlacementError:
            continue
    return None


def place(layers: Mapping[str, tuple[int, int]], shapes: Sequence[tuple[int, int]] | tuple[int, int],
          usable: Sequence[np.ndarray | None] | np.ndarray | None = None, layout: str = "rows", *,
          health: Any = None, weights: Mapping[str, np.ndarray] | None = None,
          weight_map: WeightMaps = WeightMap()) -> Placement:
    """Place weight matrices in one or more arrays without overlap, around defects.

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
    health : HealthMap or list of them (or None), optional
        Per array: stuck devices are unusable; noisy and range-limited ones are avoided
        where there is a choice.
    weights : mapping key -> (M, K), optional
        With ``health`` and the rows layout: assign inputs to rows and outputs to
        columns so that defective devices get weights they can still hold.
    weight_map : WeightMap or mapping key -> WeightMap
        Scale and device range used by that assignment.

    Returns
    -------
    Placement

    Raises
    ------
    PlacementError
        The layers do not fit; says how many arrays of this size they need.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    shapes = [tuple(shapes)] if np.ndim(shapes[0]) == 0 else [tuple(s) for s in shapes]
    usable_l = _as_list(usable, len(shapes))
    health_l = _as_list(health, len(shapes))
    if len(usable_l) != len(shapes) or len(health_l) != len(shapes):
        raise ValueError(f"need one usable mask / health map per array ({len(shapes)})")
    try:
        try:
            return _place(dict(layers), shapes, usable_l, health_l, layout, weights, weight_map, True)
        except PlacementError:
            if all(u is None for u in usable_l) and all(h is None for h in health_l):
                raise
            # not enough whole good lines: use bad lines too, last (listed in ``faulty``)
            return _place(dict(layers), shapes, usable_l, health_l, layout, weights, weight_map, False)
    except PlacementError as exc:
        n = arrays_needed(layers, shapes[0], layout)
        need = "more than 256" if n is None else str(n)
        raise PlacementError(f"{exc}: the network needs {need} defect-free array(s) of {shapes[0][0]}x"
                             f"{shapes[0][1]} (given {len(shapes)})") from None


def _place(layers: dict[str, tuple[int, int]], shapes: list[tuple[int, int]], usable: list, health: list,
           layout: str, weights: Mapping[str, np.ndarray] | None, weight_map: WeightMaps,
           skip_bad_lines: bool = True) -> Placement:
    bad = [_badness(s, u, h) for s, u, h in zip(shapes, usable, health)]
    hard = [b >= 1 for b in bad]
    row_ok = [~h.all(axis=1) | (not skip_bad_lines) for h in hard]  # not a whole bad row
    col_free = [~h.all(axis=0) | (not skip_bad_lines) for h in hard]  # not a whole bad column
    rows_per, cols_per = (2, 1) if layout == "rows" else (1, 2)
    placement = Placement(list(shapes), {k: (int(m), int(n)) for k, (m, n) in layers.items()}, layout=layout)
    order = list(placement.layers)
    if not skip_bad_lines:
        # bad lines must be used: the smallest layers choose first, so that the bad lines
        # fall to the largest layer, whose assignment puts its least important unit there
        order.sort(key=lambda k: placement.layers[k][0] * placement.layers[k][1])
    for key in order:
        M, K = placement.layers[key]
        k_max = max(int(r.sum()) for r in row_ok) // rows_per
        if k_max == 0:
            raise PlacementError("no usable rows")
        n_chunks = -(-K // k_max)
        bounds = np.linspace(0, K, n_chunks + 1).round().astype(int)
        for k0, k1 in zip(bounds[:-1], bounds[1:]):
            m0 = 0
            while m0 < M:
                a = next((a for a in range(len(shapes)) if col_free[a].sum() >= cols_per
                          and row_ok[a].sum() >= rows_per * (k1 - k0)), None)
                if a is None:
                    raise PlacementError(f"layer {key!r} ({M}x{K}) does not fit in the free space")
                n_out = min(M - m0, int(col_free[a].sum()) // cols_per)
                cols = _pick(np.flatnonzero(col_free[a]), bad[a].sum(axis=0), n_out * cols_per)
                rows = _pick(np.flatnonzero(row_ok[a]), bad[a][:, cols].sum(axis=1), rows_per * (k1 - k0))
                if layout == "rows":
                    rp, rm, cp, cm = rows[: k1 - k0], rows[k1 - k0:], cols, cols
                    if weights is not None and health[a] is not None:
                        w = np.asarray(weights[key], float)[m0:m0 + n_out, k0:k1]
                        rp, rm, cp = _assign(w, map_of(weight_map, key), health[a], row_ok[a], col_free[a], rp, rm,
                                             cp)
                        cm = cp
                else:
                    rp, rm, cp, cm = rows, rows, cols[0::2], cols[1::2]
                tile = Tile(key, a, (int(k0), int(k1)), (m0, m0 + n_out), rp, rm, cp, cm)
                placement.tiles.append(tile)
                col_free[a][np.union1d(cp, cm)] = False
                rr, cc = tile.devices()
                ri, ci = np.nonzero(hard[a][rr, cc])
                placement.faulty.extend((a, int(rr[i, 0]), int(cc[0, j])) for i, j in zip(ri, ci))
                m0 += n_out
    return placement


def _pair_cost(e: np.ndarray, lo_dev: np.ndarray, hi_dev: np.ndarray, sigma: np.ndarray, wmap: WeightMap,
               typical: float) -> np.ndarray:
    """Expected squared weight error (weight units²) of a pair, from one device's side.

    ``e = partner − device`` is the difference the pair needs seen from this device
    (``−d`` in a G+ role, ``d`` in a G− role). A device of range ``[lo_dev, hi_dev]``
    whose partner may take any ``[g_floor, g_ceiling]`` holds ``e`` within ``[g_floor −
    hi_dev, g_ceiling − lo_dev]``; the rest is missed. Read noise adds the device's
    relative scatter ``sigma`` times its level (the base conductance plus its share of
    the weight, or its stuck value; a stuck device's partner sits near it and adds
    ``typical`` times that level). Arrays broadcast.
    """
    lo, hi = wmap.g_floor - hi_dev, wmap.g_ceiling - lo_dev
    miss = np.maximum(lo - e, 0.0) + np.maximum(e - hi, 0.0)
    stuck = lo_dev == hi_dev
    level = np.where(stuck, lo_dev, wmap.g_base + np.maximum(-e, 0.0))
    noise = (sigma * level) ** 2 + np.where(stuck, (typical * lo_dev) ** 2, 0.0)
    defective = hi_dev - lo_dev < wmap.g_ceiling - wmap.g_floor
    return (miss**2 + noise) / wmap.scale**2 + _DEFECT_COST * defective


def _assign(w: np.ndarray, wmap: WeightMap, health: Any, row_ok: np.ndarray, col_free: np.ndarray,
            rp: np.ndarray, rm: np.ndarray, cp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows for the G+/G− roles of each input and columns for each output, by linear
    assignment against what the defective devices can hold (rows layout)."""
    from scipy.optimize import linear_sum_assignment

    lo_all, hi_all = health.limits(wmap.g_floor, wmap.g_ceiling)
    from ..health import DeviceState

    measured = np.isfinite(health.noise)
    typical = float(np.median(health.noise[measured])) if measured.any() else 0.0
    # a device's own scatter only where the probe found it far above the array's (a few
    # reads per device estimate it too roughly to rank the others)
    noisy = (health.state == DeviceState.NOISY) & measured
    sigma_all = np.where(noisy, health.noise, typical)
    if not (hi_all - lo_all < wmap.g_ceiling - wmap.g_floor).any() and not noisy.any():
        return rp, rm, cp  # nothing defective or noisy: keep the plain placement
    d = w.T * wmap.scale  # (K, M) wanted G+ − G−
    e = np.concatenate([-d, d])  # per role: partner − device (G+ roles first, then G−)
    K = d.shape[0]
    row_cand = np.flatnonzero(row_ok)
    col_cand = np.union1d(np.flatnonzero(col_free), cp)
    rows = np.concatenate([rp, rm])
    for _ in range(2):
        sub = np.ix_(row_cand, cp)
        cost = _pair_cost(e[:, None, :], lo_all[sub][None], hi_all[sub][None], sigma_all[sub][None], wmap,
                          typical).sum(axis=2)  # (2K roles, candidate rows)
        r_idx, c_idx = linear_sum_assignment(cost)
        rows = row_cand[c_idx[np.argsort(r_idx)]]
        sub = np.ix_(rows, col_cand)
        cost = _pair_cost(e[:, :, None], lo_all[sub][:, None, :], hi_all[sub][:, None, :], sigma_all[sub][:, None, :],
                          wmap, typical).sum(axis=0)  # (M outputs, candidate columns)
        r_idx, c_idx = linear_sum_assignment(cost)
        cp = col_cand[c_idx[np.argsort(r_idx)]]
    return rows[:K], rows[K:], cp
