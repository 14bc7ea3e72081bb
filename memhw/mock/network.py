"""Emulated firmware: a recurrent network run by the board itself (LOAD_NETWORK, RUN_NETWORK).

The host loads the network once: its layers (LSTM, DENSE, LAST_STEP) in order, and the
tiles (DEFINE_TILE) that hold each weighted layer's matrix. Then one request per batch of
sequences makes the board run every time step by itself — the VMMs on the tiles, the
sigmoid and tanh, the cell and hidden state updates — and return only the outputs.

Numeric format (PROTOCOL.md, RUN_NETWORK): binary32 throughout, the activations by the
tables of :mod:`memhw.algorithms.activations`. A layer's product input ``z`` (its input,
for an LSTM also ``h_{t-1}``, and a constant 1 with ``bias``) drives the rows at
``z * in_volts`` (clipped to the read limit, and counted); the columns' currents, through
the board's calibration, give the matrix outputs ``a = I * out_scale``; the gate order is
that of :class:`memhw.nn.LSTM`: cell input (tanh), input, forget, output (sigmoids).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

import firmware_protocol as fp

from ..algorithms import activations
from ..peer import Aborted, HandlerTable, Operation, Refused
from .tiles import get_tile, tile_vmm

if TYPE_CHECKING:  # pragma: no cover
    from .hardware import MockHardware

__all__ = ["HANDLERS", "Network", "Layer"]

HANDLERS = HandlerTable()
KIND = fp.SCHEMA.enums["LayerKind"]
ACT = fp.SCHEMA.enums["Activation"]
AUTO = fp.SCHEMA.auto_gain
F32 = np.float32


@dataclass(frozen=True)
class Layer:
    """One loaded layer. ``tiles``: (tile id, first input, first output, gain index or None
    for auto). The layer names its tiles by id: redefining one (DEFINE_TILE, same size)
    changes the network, as PROTOCOL.md says."""

    kind: int
    n_in: int
    n_out: int
    bias: bool
    activation: int
    in_volts: np.float32
    out_scale: np.float32
    tiles: tuple[tuple[int, int, int, int | None], ...]
    #: subtracted from the matrix outputs (output units, float32), or None
    offset: np.ndarray | None = None

    @property
    def matrix_in(self) -> int:
        """Inputs of the layer's matrix: input, (LSTM) hidden state, bias."""
        return self.n_in + (self.n_out if self.kind == KIND["LSTM"] else 0) + int(self.bias)

    @property
    def matrix_out(self) -> int:
        return 4 * self.n_out if self.kind == KIND["LSTM"] else self.n_out

    @property
    def out_dim(self) -> int:
        """Features this layer hands to the next one."""
        return self.n_in if self.kind == KIND["LAST_STEP"] else self.n_out


@dataclass(frozen=True)
class Network:
    layers: tuple[Layer, ...]

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].out_dim

    @property
    def last_step(self) -> int | None:
        """Index of the LAST_STEP layer, or None (an output per time step)."""
        return next((i for i, layer in enumerate(self.layers) if layer.kind == KIND["LAST_STEP"]), None)

    def uses(self, tile: int) -> bool:
        """True if a layer holds (part of) its matrix on tile ``tile``."""
        return any(ident == tile for layer in self.layers for ident, *_ in layer.tiles)


def _check_layers(hw: "MockHardware", layers: list[Layer]) -> None:
    if not 1 <= len(layers) <= fp.SCHEMA.max_layers:
        raise Refused("BAD_PAYLOAD", f"a network has 1 .. {fp.SCHEMA.max_layers} layers, not {len(layers)}")
    seen_last = False
    for i, layer in enumerate(layers):
        where = f"layer {i}"
        if i and layer.n_in != layers[i - 1].out_dim:
            raise Refused("BAD_PAYLOAD", f"{where} takes {layer.n_in} inputs, layer {i - 1} gives {layers[i - 1].out_dim}")
        if layer.kind == KIND["LAST_STEP"]:
            if seen_last or layer.tiles:
                raise Refused("BAD_PAYLOAD", f"{where}: one LAST_STEP at most, without tiles")
            seen_last = True
            continue
        if seen_last and layer.kind != KIND["DENSE"]:
            raise Refused("BAD_PAYLOAD", f"{where}: only DENSE layers may follow LAST_STEP")
        if layer.n_out < 1 or not layer.tiles:
            raise Refused("BAD_PAYLOAD", f"{where}: needs outputs and at least one tile")
        if layer.kind == KIND["DENSE"] and layer.activation not in ACT.values():
            raise Refused("BAD_PAYLOAD", f"{where}: unknown activation {layer.activation}")
        if not (np.isfinite(layer.in_volts) and layer.in_volts > 0 and np.isfinite(layer.out_scale)):
            raise Refused("BAD_PAYLOAD", f"{where}: in_volts must be finite and > 0, out_scale finite")
        cover = np.zeros((layer.matrix_out, layer.matrix_in), np.int64)
        for ident, i0, o0, gain in layer.tiles:
            tile = hw.tiles[ident]
            if i0 + tile.n_in > layer.matrix_in or o0 + tile.n_out > layer.matrix_out:
                raise Refused("BAD_PAYLOAD", f"{where}: a tile reaches beyond the {layer.matrix_out}x{layer.matrix_in} matrix")
            cover[o0 : o0 + tile.n_out, i0 : i0 + tile.n_in] += 1
            if gain is not None and gain >= len(hw.transfer.tia_gains):
                raise Refused("LIMIT", f"{where}: gain index {gain} >= {len(hw.transfer.tia_gains)}")
        if np.any(cover != 1):
            raise Refused("BAD_PAYLOAD", f"{where}: its tiles must cover the {layer.matrix_out}x{layer.matrix_in} "
                                         "matrix exactly once")


@HANDLERS.register("LOAD_NETWORK")
def load_network(hw: "MockHardware", v: dict, op: Operation) -> dict:
    n = v["kinds"].size
    per_layer = ("n_in", "n_out", "bias", "activation", "in_volts", "out_scale", "tile_count")
    if any(v[k].size != n for k in per_layer):
        raise Refused("BAD_PAYLOAD", f"every per-layer field needs {n} entries (one per layer)")
    n_tiles = int(v["tile_count"].sum())
    if any(v[k].size != n_tiles for k in ("tiles", "in_start", "out_start", "tile_gain")):
        raise Refused("BAD_PAYLOAD", f"every per-tile field needs {n_tiles} entries (the sum of tile_count)")
    layers, t = [], 0
    for i in range(n):
        if int(v["kinds"][i]) not in KIND.values():
            raise Refused("BAD_PAYLOAD", f"layer {i}: unknown kind {int(v['kinds'][i])}")
        tiles = []
        for j in range(t, t + int(v["tile_count"][i])):
            get_tile(hw, v["tiles"][j])  # refused when not defined
            g = int(v["tile_gain"][j])
            tiles.append((int(v["tiles"][j]), int(v["in_start"][j]), int(v["out_start"][j]), None if g == AUTO else g))
        t += int(v["tile_count"][i])
        layers.append(Layer(int(v["kinds"][i]), int(v["n_in"][i]), int(v["n_out"][i]), bool(v["bias"][i]),
                            int(v["activation"][i]), F32(v["in_volts"][i]), F32(v["out_scale"][i]), tuple(tiles)))
    _check_layers(hw, layers)
    layers = _with_offsets(layers, v["out_offset"])
    hw.network = Network(tuple(layers))
    return {"n_inputs": hw.network.n_inputs, "n_outputs": hw.network.n_outputs,
            "per_step": int(hw.network.last_step is None)}


def _with_offsets(layers: list[Layer], offsets: np.ndarray) -> list[Layer]:
    """The layers with their share of LOAD_NETWORK's ``out_offset`` (empty: none)."""
    if offsets.size == 0:
        return layers
    weighted = [layer for layer in layers if layer.kind != KIND["LAST_STEP"]]
    need = sum(layer.matrix_out for layer in weighted)
    if offsets.size != need:
        raise Refused("BAD_PAYLOAD", f"out_offset has {offsets.size} values, expected 0 or {need} (the weighted "
                                     "layers' matrix outputs)")
    if not np.all(np.isfinite(offsets)):
        raise Refused("BAD_PAYLOAD", "out_offset must be finite")
    out, at = [], 0
    for layer in layers:
        if layer.kind != KIND["LAST_STEP"]:
            layer = replace(layer, offset=offsets[at : at + layer.matrix_out].astype(F32))
            at += layer.matrix_out
        out.append(layer)
    return out


class _Runner:
    """One RUN_NETWORK: the board's arithmetic for a batch of sequences."""

    def __init__(self, hw: "MockHardware", net: Network):
        self.hw, self.net = hw, net
        self.clipped = 0
        self.limit = F32(hw.limits.read_max * hw.transfer.dac_line_lsb)

    def matmul(self, layer: Layer, z: np.ndarray) -> np.ndarray:
        """(b, matrix_in) float32 -> (b, matrix_out) float32 through the layer's tiles."""
        volts = z * layer.in_volts
        self.clipped += int(np.count_nonzero(np.abs(volts) > self.limit))
        volts = np.clip(volts, -self.limit, self.limit)
        a = np.zeros((len(z), layer.matrix_out), F32)
        cal = self.hw.calibration
        for ident, i0, o0, gain in layer.tiles:
            tile = self.hw.tiles[ident]
            gains = None if gain is None else np.full(tile.read_cols.size, gain, np.int64)
            codes, g = tile_vmm(self.hw, tile, volts[:, i0 : i0 + tile.n_in].astype(float), gains)
            current = cal.currents(codes, g, cols=tile.read_cols).astype(F32)
            m = tile.n_out
            if tile.neg_cols.size:
                current = current[:, :m] - current[:, m:]
            a[:, o0 : o0 + m] += current[:, :m] * layer.out_scale
        if layer.offset is not None:
            a -= layer.offset
        return a

    def compute_time(self, values: int) -> None:
        """The MCU's share of the time: one ``mcu_value_time`` per computed value."""
        self.hw.tick(values * self.hw.params.board.mcu_value_time)

    def lstm(self, layer: Layer, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hidden = layer.n_out
        z = np.concatenate([x, h, np.ones((len(x), int(layer.bias)), F32)], axis=1)
        a = self.matmul(layer, z)
        g = activations.tanh(a[:, :hidden])
        i, f, o = (activations.sigmoid(a[:, k * hidden : (k + 1) * hidden]) for k in (1, 2, 3))
        c_new = (i * g + f * c).astype(F32)
        h_new = (o * activations.tanh(c_new)).astype(F32)
        self.compute_time(len(x) * 6 * hidden)
        return h_new, c_new

    def dense(self, layer: Layer, x: np.ndarray) -> np.ndarray:
        z = np.concatenate([x, np.ones((len(x), int(layer.bias)), F32)], axis=1)
        a = self.matmul(layer, z)
        self.compute_time(a.size)
        return activations.sigmoid(a) if layer.activation == ACT["SIGMOID"] else a  # SOFTMAX: the logits

    def step(self, layers: tuple[Layer, ...], x: np.ndarray, state: dict[int, tuple[np.ndarray, np.ndarray]],
             rows: np.ndarray) -> np.ndarray:
        """One time step of ``layers`` for the sequences ``rows`` of the batch."""
        for k, layer in enumerate(layers):
            if layer.kind == KIND["LSTM"]:
                h, c = state[k]
                h[rows], c[rows] = self.lstm(layer, x, h[rows], c[rows])
                x = h[rows]
            else:
                x = self.dense(layer, x)
        return x


@HANDLERS.register("RUN_NETWORK")
def run_network(hw: "MockHardware", v: dict, op: Operation) -> dict:
    net = hw.network
    if net is None:
        raise Refused("BAD_PAYLOAD", "no network is loaded in this session (LOAD_NETWORK)")
    lengths = v["lengths"].astype(np.int64)
    if lengths.size == 0 or lengths.min() < 1:
        raise Refused("BAD_PAYLOAD", "lengths: at least one sequence, each of at least one step")
    n_in, n_out = net.n_inputs, net.n_outputs
    if v["inputs"].size != lengths.sum() * n_in:
        raise Refused("BAD_PAYLOAD", f"inputs has {v['inputs'].size} values, expected sum(lengths) * {n_in} "
                                     f"= {int(lengths.sum()) * n_in}")
    scale = F32(v["input_scale"])
    if not (np.isfinite(scale) and scale > 0):
        raise Refused("BAD_PAYLOAD", "input_scale must be finite and > 0")
    cut = net.last_step
    body = net.layers if cut is None else net.layers[:cut]
    head = () if cut is None else net.layers[cut + 1:]
    batch, steps = lengths.size, int(lengths.max())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    x_all = (v["inputs"].astype(F32) * scale).reshape(-1, n_in)
    state = {k: (np.zeros((batch, layer.n_out), F32), np.zeros((batch, layer.n_out), F32))
             for k, layer in enumerate(body) if layer.kind == KIND["LSTM"]}
    run = _Runner(hw, net)
    per_step = np.zeros((int(lengths.sum()), n_out), F32) if cut is None else None
    last = np.zeros((batch, body[-1].out_dim if body else n_in), F32)
    every = int(v["progress_steps"])
    for t in range(steps):
        if op.should_stop():
            raise Aborted({"steps_done": t, "clipped": run.clipped, "outputs": np.zeros(0, F32)})
        rows = np.flatnonzero(lengths > t)
        y = run.step(body, x_all[starts[rows] + t], state, rows)
        if per_step is not None:
            per_step[starts[rows] + t] = y
        ending = lengths[rows] == t + 1
        last[rows[ending]] = y[ending]
        if every and ((t + 1) % every == 0 or t + 1 == steps):
            op.progress(steps_done=t + 1, steps=steps)
        op.step_done(t + 1)
    if per_step is not None:
        return {"steps_done": steps, "clipped": run.clipped, "outputs": per_step.reshape(-1)}
    y = last
    for layer in head:
        y = run.dense(layer, y)
    return {"steps_done": steps, "clipped": run.clipped, "outputs": y.reshape(-1)}
