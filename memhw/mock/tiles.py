"""Emulated firmware: tiles and their vector-matrix products (DEFINE_TILE, VMM_TILE).

A tile is where (part of) a weight matrix sits: input k drives row ``rows[k]`` (and row
``neg_rows[k]`` at minus its level: the G- rows of a differential tile), output m is read
from column ``cols[m]`` (minus ``neg_cols[m]`` for column pairs). Only the tile's inputs
and outputs cross the wire; the board converts each input to its row channel's code with
its calibration (nominal without one) and grounds every other row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import firmware_protocol as fp

from ..netspec import TileSpec as Tile
from ..peer import HandlerTable, Operation, Refused
from .measure import digitise

if TYPE_CHECKING:  # pragma: no cover
    from .hardware import MockHardware

__all__ = ["HANDLERS", "Tile", "tile_vmm", "get_tile", "digitise_columns"]

HANDLERS = HandlerTable()
MAX_TILES: int = fp.SCHEMA.max_tiles


def tile_vmm(hw: "MockHardware", tile: Tile, volts: np.ndarray, gains: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Drive (n, K) nominal input volts on a tile and read its columns: ADC codes
    (n, M + M-) and the gains used ((M + M-,) fixed, or (n, M + M-) auto-ranged).
    Inputs beyond the read limit are clipped to it."""
    n = len(volts)
    cal, top = hw.calibration, hw.limits.read_max * hw.transfer.dac_line_lsb
    codes = np.zeros((n, hw.rows), dtype=np.int64)
    driven = np.zeros((n, hw.rows), dtype=bool)
    for rows, sign in ((tile.rows, 1.0), (tile.neg_rows, -1.0)):
        if rows.size:
            codes[:, rows] = cal.dac_codes("ROWS", sign * volts, channels=np.broadcast_to(rows, volts.shape),
                                           v_max=top, v_min=-top)
            driven[:, rows] = True
    gates_v = hw.periphery.gate_volts(np.full(hw.cols, hw.gate_on_code))
    currents = hw.chip.currents(hw.row_volts(codes, driven), None, gates_v)[:, tile.read_cols]
    hw.tick(n * hw.params.board.sample_time)
    if gains is None:
        adc, g = digitise_columns(hw, currents, tile.read_cols, None)
        return adc, g.reshape(n, tile.read_cols.size)
    return digitise_columns(hw, currents, tile.read_cols, gains)


def digitise_columns(hw: "MockHardware", currents: np.ndarray, cols: np.ndarray,
                     gains: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~memhw.mock.measure.digitise` for a subset of columns (each TIA keeps its own errors)."""
    full = np.zeros((len(currents), hw.cols))
    full[:, cols] = currents
    if gains is None:
        codes, g = digitise(hw, full, None)
        return codes[:, cols], g.reshape(len(currents), hw.cols)[:, cols].reshape(-1)
    per_col = np.zeros(hw.cols, dtype=np.int64)
    per_col[cols] = gains
    codes, _ = digitise(hw, full, per_col)
    return codes[:, cols], np.asarray(gains, dtype=np.uint8)


def _indices(name: str, values: np.ndarray, n: int) -> np.ndarray:
    idx = values.astype(np.int64)
    if idx.size and (idx.max() >= n or np.unique(idx).size != idx.size):
        raise Refused("BAD_PAYLOAD", f"{name} must be distinct indices below {n}")
    return idx


@HANDLERS.register("DEFINE_TILE")
def define_tile(hw: "MockHardware", v: dict, op: Operation) -> dict:
    ident = int(v["tile"])
    if ident >= MAX_TILES:
        raise Refused("LIMIT", f"tile {ident} outside 0..{MAX_TILES - 1}")
    rows, neg_rows = _indices("rows", v["rows"], hw.rows), _indices("neg_rows", v["neg_rows"], hw.rows)
    cols, neg_cols = _indices("cols", v["cols"], hw.cols), _indices("neg_cols", v["neg_cols"], hw.cols)
    if not rows.size or not cols.size:
        raise Refused("BAD_PAYLOAD", "a tile needs at least one row and one column")
    if neg_rows.size not in (0, rows.size) or neg_cols.size not in (0, cols.size):
        raise Refused("BAD_PAYLOAD", "neg_rows and neg_cols must be empty or as long as rows and cols")
    if np.intersect1d(rows, neg_rows).size or np.intersect1d(cols, neg_cols).size:
        raise Refused("BAD_PAYLOAD", "a row (column) cannot be both positive and negated")
    old = hw.tiles.get(ident)
    if old is not None and hw.network is not None and hw.network.uses(ident) \
            and (old.n_in, old.n_out) != (rows.size, cols.size):
        raise Refused("BAD_PAYLOAD", f"tile {ident} holds part of the loaded network: redefine it with "
                                     f"{old.n_in} rows and {old.n_out} columns, or load the network again after")
    hw.tiles[ident] = Tile(rows=rows, cols=cols, neg_rows=neg_rows, neg_cols=neg_cols)
    return {}


def get_tile(hw: "MockHardware", ident: int) -> Tile:
    tile = hw.tiles.get(int(ident))
    if tile is None:
        raise Refused("BAD_PAYLOAD", f"tile {int(ident)} is not defined in this session (DEFINE_TILE)")
    return tile


@HANDLERS.register("VMM_TILE")
def vmm_tile(hw: "MockHardware", v: dict, op: Operation) -> dict:
    tile = get_tile(hw, v["tile"])
    n, k, m = int(v["n"]), tile.n_in, tile.read_cols.size
    inputs = v["inputs"]
    if inputs.size != n * k:
        raise Refused("BAD_PAYLOAD", f"inputs has {inputs.size} codes, expected n*K = {n * k}")
    if n and np.abs(inputs.astype(np.int64)).max() > hw.limits.read_max:
        raise Refused("LIMIT", f"VMM input beyond the read limit of {hw.limits.read_max} codes")
    g = v["gains"]
    if g.size not in (0, 1, m) and not (g.size == 1 and g[0] == fp.SCHEMA.auto_gain):
        raise Refused("BAD_PAYLOAD", f"gains must have 0, 1 or {m} entries, not {g.size}")
    gains = None
    if not (g.size == 0 or (g.size == 1 and g[0] == fp.SCHEMA.auto_gain)):
        if g.max() >= len(hw.transfer.tia_gains):
            raise Refused("LIMIT", f"gain index {int(g.max())} >= {len(hw.transfer.tia_gains)}")
        gains = np.broadcast_to(g.astype(np.int64), (m,))
    volts = hw.transfer.line_volts(inputs.reshape(n, k))
    codes, used = tile_vmm(hw, tile, volts, gains)
    # fixed gains are echoed as the request gave them (one entry for all, or one per column)
    return {"gains": g if gains is not None else used.reshape(-1), "codes": codes.reshape(-1)}

