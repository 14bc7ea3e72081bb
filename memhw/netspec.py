"""A network the board runs by itself (LOAD_NETWORK, RUN_NETWORK), described in SI units.

:mod:`memhw.nn` builds a :class:`NetworkSpec` from a model and its placement; the
:class:`~memhw.board.Board` checks it, turns it into the LOAD_NETWORK fields and keeps it,
so it can be loaded again after a new session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firmware_protocol import SCHEMA

__all__ = ["TileSpec", "LayerTile", "NetworkLayer", "NetworkSpec", "LAYER_KINDS", "ACTIVATIONS"]

#: layer kinds and activations, as the protocol's enums name them (lower case)
LAYER_KINDS = {name.lower(): code for name, code in SCHEMA.enums["LayerKind"].items()}
ACTIVATIONS = {name.lower(): code for name, code in SCHEMA.enums["Activation"].items()}


def _index(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


@dataclass(frozen=True)
class TileSpec:
    """Where a block of a weight matrix sits: input k drives ``rows[k]`` (and ``neg_rows[k]``
    at minus its level), output m is read from ``cols[m]`` (minus ``neg_cols[m]``)."""

    rows: np.ndarray
    cols: np.ndarray
    neg_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    neg_cols: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "neg_rows", "neg_cols"):
            object.__setattr__(self, name, _index(getattr(self, name)))

    @property
    def n_in(self) -> int:
        return int(self.rows.size)

    @property
    def n_out(self) -> int:
        return int(self.cols.size)

    @property
    def read_cols(self) -> np.ndarray:
        """The columns a VMM on the tile reads, in reply order: cols then neg_cols."""
        return np.concatenate([self.cols, self.neg_cols])


@dataclass(frozen=True)
class LayerTile:
    """One tile of a layer: its id (DEFINE_TILE), the first matrix input and output it holds,
    and its TIA gain (an index, or ``"auto"``)."""

    tile: int
    in_start: int
    out_start: int
    gain: int | str = "auto"


@dataclass(frozen=True)
class NetworkLayer:
    """One layer of an on-board network.

    Attributes
    ----------
    kind : {"lstm", "dense", "last_step"}
    n_in, n_out : int
        Input features (without bias) and outputs (LSTM: hidden units; last_step: 0).
    bias : bool
        A constant-1 input appended to the product input.
    activation : {"linear", "sigmoid", "softmax"}
        Of a dense layer (softmax: the board returns logits; the host normalises).
    in_volts : float
        Volts driven per unit of product input.
    out_scale : float
        Output units per ampere of column current.
    tiles : tuple of LayerTile
    out_offset : tuple of float, optional
        One value per matrix output (4H for an LSTM, ``n_out`` for a dense layer), in
        output units, subtracted from the products: their zero-input outputs, which the
        host measured. Empty: none.
    """

    kind: str
    n_in: int
    n_out: int
    bias: bool = False
    activation: str = "linear"
    in_volts: float = 0.0
    out_scale: float = 0.0
    tiles: tuple[LayerTile, ...] = ()
    out_offset: tuple[float, ...] = ()

    @property
    def out_dim(self) -> int:
        return self.n_in if self.kind == "last_step" else self.n_out


@dataclass(frozen=True)
class NetworkSpec:
    """Layers in order (LSTM and dense layers, at most one last_step)."""

    layers: tuple[NetworkLayer, ...]

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].out_dim

    @property
    def per_step(self) -> bool:
        """True when the network gives an output per time step (no last_step)."""
        return all(layer.kind != "last_step" for layer in self.layers)

    def fields(self, auto_gain: int = SCHEMA.auto_gain) -> dict[str, Any]:
        """The LOAD_NETWORK request fields.

        Raises
        ------
        ValueError
            An unknown kind or activation.
        """
        layers = self.layers
        for layer in layers:
            if layer.kind not in LAYER_KINDS or layer.activation not in ACTIVATIONS:
                raise ValueError(f"unknown layer kind {layer.kind!r} or activation {layer.activation!r}")
        tiles = [t for layer in layers for t in layer.tiles]
        return {
            "kinds": [LAYER_KINDS[layer.kind] for layer in layers], "n_in": [layer.n_in for layer in layers],
            "n_out": [layer.n_out for layer in layers], "bias": [int(layer.bias) for layer in layers],
            "activation": [ACTIVATIONS[layer.activation] for layer in layers],
            "in_volts": np.array([layer.in_volts for layer in layers], np.float32),
            "out_scale": np.array([layer.out_scale for layer in layers], np.float32),
            "tile_count": [len(layer.tiles) for layer in layers], "tiles": [t.tile for t in tiles],
            "in_start": [t.in_start for t in tiles], "out_start": [t.out_start for t in tiles],
            "tile_gain": [auto_gain if t.gain == "auto" else int(t.gain) for t in tiles],
            "out_offset": self._offsets(),
        }

    def _offsets(self) -> np.ndarray:
        """LOAD_NETWORK ``out_offset``: empty when no layer has one, else every weighted
        layer's (zeros where a layer has none)."""
        weighted = [layer for layer in self.layers if layer.kind != "last_step"]
        if not any(len(layer.out_offset) for layer in weighted):
            return np.zeros(0, np.float32)
        parts = []
        for layer in weighted:
            n = 4 * layer.n_out if layer.kind == "lstm" else layer.n_out
            offset = np.asarray(layer.out_offset, np.float32).reshape(-1) if len(layer.out_offset) else np.zeros(n)
            if offset.size != n:
                raise ValueError(f"out_offset of a {layer.kind} layer of {layer.n_out} outputs needs {n} values, "
                                 f"not {offset.size}")
            parts.append(offset)
        return np.concatenate(parts).astype(np.float32)
