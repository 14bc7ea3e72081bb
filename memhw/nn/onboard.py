"""A network run by the board itself (protocol 2.1: LOAD_NETWORK, RUN_NETWORK).

:class:`OnBoardNetwork` turns a :class:`~memhw.nn.Sequential` placed and programmed by a
:class:`~memhw.nn.CrossbarBackend` into a :class:`~memhw.netspec.NetworkSpec` over the
tiles the backend defined, loads it, and runs batches of sequences with one request
each. The board computes exactly what the backend's host path computes -- the same
products of the same tiles, the same gate order and state updates -- in binary32 with
table activations (PROTOCOL.md RUN_NETWORK), provided the host path has nothing the
board cannot do; otherwise :attr:`OnBoardNetwork.reason` says why and
:func:`memhw.nn.predict` runs on the host.

What the board cannot do, hence a host run: several boards (a network's layers on more
than one array), repair row pairs (an input driving two rows of a tile), averaged
products (``vmm_average`` > 1), I–V pre-distortion (a measured cubic) and inputs
beyond ``input_range`` (the host rescales them per sample; the board drives a fixed
scale). The zero-input outputs the host path subtracts travel with the network
(``out_offset``) and the board subtracts them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from firmware_protocol import SCHEMA

from ..netspec import LayerTile, NetworkLayer, NetworkSpec
from .layers import LSTM, Dense, LastStep

if TYPE_CHECKING:  # pragma: no cover
    from .crossbar import CrossbarBackend

__all__ = ["OnBoardNetwork", "network_spec"]


@dataclass
class OnBoardNetwork:
    """A model loaded on its board, or the reason it cannot be (``reason`` non-empty)."""

    model: Any
    backend: "CrossbarBackend"
    spec: NetworkSpec | None
    reason: str

    @classmethod
    def build(cls, backend: "CrossbarBackend", model: Any) -> "OnBoardNetwork":
        """Check that the board can run ``model`` as ``backend`` computes it; build and load
        its network (the tiles are those :meth:`CrossbarBackend.measure_baseline` defined)."""
        reason = _obstacle(backend, model)
        if reason:
            return cls(model, backend, None, reason)
        spec = network_spec(backend, model)
        backend.boards[0].load_network(spec)
        return cls(model, backend, spec, "")

    def unsuited(self, sequences: Sequence[np.ndarray]) -> str:
        """Why these sequences cannot run on the board ("" if they can): inputs beyond
        ``input_range``, which the host path rescales per sample and the board would clip."""
        top = max((float(np.max(np.abs(x))) for x in sequences if np.size(x)), default=0.0)
        if top > self.backend.input_range:
            return f"inputs reach {top:g}, beyond input_range {self.backend.input_range:g} (the host rescales them)"
        return ""

    def run(self, sequences: Sequence[np.ndarray], progress: Callable[[int, int], None] | None = None) -> Any:
        """The model's outputs over ``sequences``: a list of (T_i, O) arrays (an output per
        step) or an (N, O) array (a model ending in LastStep), as :func:`memhw.nn.predict`.

        Raises
        ------
        ValueError
            Sequences the board cannot run (:meth:`unsuited`)."""
        seqs = [np.asarray(x, float).reshape(len(x), -1) for x in sequences]
        why = self.unsuited(seqs)
        if why:
            raise ValueError(why)
        run = self.backend.boards[0].run_network(seqs, progress=progress)
        softmax = getattr(self.model.layers[-1], "activation", "") == "softmax"
        if self.spec.per_step:
            return [_softmax(y) if softmax else y for y in run.outputs]
        return _softmax(run.outputs) if softmax else run.outputs


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _obstacle(b: "CrossbarBackend", model: Any) -> str:
    """Why the board cannot compute what ``b``'s host path computes for ``model`` ("" if it can)."""
    if len(b.boards) != 1:
        return f"the network spans {len(b.boards)} boards"
    board = b.boards[0]
    if not all(board.supports(m) for m in ("LOAD_NETWORK", "RUN_NETWORK")):
        return f"board {board.info.serial} does not run networks (protocol 2.1 LOAD_NETWORK / RUN_NETWORK)"
    if not b.tile_ids:
        return "the network's tiles are not defined on the board"
    if not board.holds_calibration:
        return f"board {board.info.serial} could not take the host's calibration (its conversions would differ)"
    if any(not isinstance(layer, (LSTM, Dense, LastStep)) for layer in model.layers):
        return "a layer other than LSTM, Dense or LastStep"
    weighted = [layer for layer in model.layers if not isinstance(layer, LastStep)]
    if len(model.layers) > SCHEMA.max_layers:
        return f"{len(model.layers)} layers, the board loads at most {SCHEMA.max_layers}"
    if any(t.repair for t in b.placement.tiles):
        return "repair row pairs (an input driving two rows of a tile)"
    if b.vmm_average != 1:
        return f"products averaged over {b.vmm_average} samples"
    if any(c != 0.0 for c in b.cubic):
        return "the array's I-V nonlinearity is pre-distorted on the host"
    if b.input_range < 1.0:
        return f"input_range {b.input_range:g} < 1: hidden states and bias inputs would be rescaled on the host"
    if any(layer.key not in b.placement.layers for layer in weighted):
        return "a layer of the model is not placed on the board"
    return ""


def network_spec(b: "CrossbarBackend", model: Any) -> NetworkSpec:
    """The :class:`~memhw.netspec.NetworkSpec` of ``model`` on ``b``'s board: its tiles,
    ``in_volts = v_read / input_range`` and ``out_scale = input_range / (v_read · scale)``
    (the scales of ``b``'s host path when no input exceeds ``input_range``), and the
    tiles' zero-input outputs as ``out_offset``."""
    layers = []
    features = None
    for layer in model.layers:
        if isinstance(layer, LastStep):
            layers.append(NetworkLayer("last_step", features, 0))
            continue
        placed = [(i, t) for i, t in enumerate(b.placement.tiles) if t.key == layer.key]
        tiles = tuple(LayerTile(b.tile_ids[i], t.inputs[0], t.outputs[0]) for i, t in placed)
        out_scale = b.input_range / (b.v_read * b.map_of(layer.key).scale)
        offset = np.zeros(b.placement.layers[layer.key][0])
        for i, t in placed:
            offset[t.outputs[0]:t.outputs[1]] += b.tile_output(t, b.tile_baseline[i]) * out_scale
        common = dict(bias=layer.bias, in_volts=b.v_read / b.input_range, out_scale=out_scale, tiles=tiles,
                      out_offset=tuple(offset))
        if isinstance(layer, LSTM):
            layers.append(NetworkLayer("lstm", layer.input_size, layer.hidden_size, **common))
            features = layer.hidden_size
        else:
            layers.append(NetworkLayer("dense", layer.in_features, layer.out_features, activation=layer.activation,
                                       **common))
            features = layer.out_features
    return NetworkSpec(tuple(layers))
