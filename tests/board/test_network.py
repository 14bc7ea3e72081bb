"""Networks run by the board (LOAD_NETWORK, RUN_NETWORK) against the same arithmetic on the host.

The host reference below computes every time step through ``Board.vmm_tile`` (the tile's
products, read back) in float64 with exact activations. Two emulators built from the same
seed see the same read noise when asked the same products in the same order, so the board's
run and the host's agree to the stated numeric error (PROTOCOL.md RUN_NETWORK: binary32,
table activations) on the noisy ``paper`` preset as well as on ``ideal``.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import memhw
from memhw.netspec import LayerTile, NetworkLayer, NetworkSpec, TileSpec

X, H, OUT = 4, 3, 2
IN_VOLTS = 0.05


def _tiles() -> dict[int, TileSpec]:
    """LSTM matrix (X + H + 1) x 4H over two tiles with column pairs; dense (H + 1) x OUT with G- rows."""
    return {
        0: TileSpec(rows=np.arange(0, 8), cols=np.arange(0, 6), neg_cols=np.arange(6, 12)),
        1: TileSpec(rows=np.arange(0, 8), cols=np.arange(12, 18), neg_cols=np.arange(18, 24)),
        2: TileSpec(rows=np.arange(10, 14), neg_rows=np.arange(20, 24), cols=np.arange(30, 32)),
    }


def _spec(last_step: bool, out_scale: float) -> NetworkSpec:
    lstm = NetworkLayer("lstm", X, H, bias=True, in_volts=IN_VOLTS, out_scale=out_scale,
                        tiles=(LayerTile(0, 0, 0), LayerTile(1, 0, 6)))
    dense = NetworkLayer("dense", H, OUT, bias=True, activation="sigmoid" if last_step else "linear",
                         in_volts=IN_VOLTS, out_scale=out_scale, tiles=(LayerTile(2, 0, 0),))
    layers = (lstm, NetworkLayer("last_step", H, 0), dense) if last_step else (lstm, dense)
    return NetworkSpec(layers)


def _load(board: memhw.Board, last_step: bool) -> NetworkSpec:
    """Weights: half the devices SET through random gates (the same on every board of a seed)."""
    rng = np.random.default_rng(1)
    board.pulse_set(rng.random(board.shape) < 0.5, v=2.5, gate=rng.uniform(0.8, 1.4, board.shape))
    g = board.read_conductance(average=8)
    scale = 1.0 / (IN_VOLTS * float(np.std(g)) * 3)  # matrix outputs of order 1
    for ident, tile in _tiles().items():
        board.define_tile(ident, tile)
    spec = _spec(last_step, scale)
    board.load_network(spec)
    return spec


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def host_reference(board: memhw.Board, spec: NetworkSpec, sequences: list[np.ndarray]):
    """RUN_NETWORK's arithmetic on the host (float64, exact activations), the products
    through VMM_TILE, sequences batched per time step as the board does."""
    tiles = _tiles()

    def matmul(layer: NetworkLayer, z: np.ndarray) -> np.ndarray:
        v = np.clip(z * layer.in_volts, -board.info.limits.v_read, board.info.limits.v_read)
        out = np.zeros((len(z), sum(tiles[t.tile].n_out for t in layer.tiles)))
        for t in layer.tiles:
            tile = tiles[t.tile]
            i = board.vmm_tile(t.tile, v[:, t.in_start : t.in_start + tile.n_in])
            m = tile.n_out
            cur = i[:, :m] - i[:, m:] if tile.neg_cols.size else i
            out[:, t.out_start : t.out_start + m] += cur * layer.out_scale
        return out

    lengths = np.array([len(x) for x in sequences])
    batch, steps = len(sequences), int(lengths.max())
    lstm = spec.layers[0]
    h, c = np.zeros((batch, H)), np.zeros((batch, H))
    per_step = [np.zeros((n, OUT)) for n in lengths]
    last = np.zeros((batch, H))
    dense = spec.layers[-1]
    for t in range(steps):
        rows = np.flatnonzero(lengths > t)
        x = np.stack([sequences[r][t] for r in rows])
        a = matmul(lstm, np.concatenate([x, h[rows], np.ones((len(rows), 1))], axis=1))
        g, i, f, o = np.tanh(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
        c[rows] = i * g + f * c[rows]
        h[rows] = o * np.tanh(c[rows])
        if spec.per_step:
            y = matmul(dense, np.concatenate([h[rows], np.ones((len(rows), 1))], axis=1))
            for k, r in enumerate(rows):
                per_step[r][t] = y[k]
        ending = rows[lengths[rows] == t + 1]
        last[ending] = h[ending]
    if spec.per_step:
        return per_step
    return _sigmoid(matmul(dense, np.concatenate([last, np.ones((batch, 1))], axis=1)))


def _sequences(seed: int = 0, n: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (int(rng.integers(3, 9)), X)) for _ in range(n)]


@pytest.mark.parametrize("preset", ["ideal", "paper"])
@pytest.mark.parametrize("last_step", [False, True], ids=["per-step", "last-step"])
def test_board_run_equals_the_host_path_within_the_numeric_error(preset: str, last_step: bool) -> None:
    address = f"mock://?preset={preset}&seed=6&rows=32"
    seqs = _sequences()
    with memhw.connect(address) as on_board, memhw.connect(address) as on_host:
        spec = _load(on_board, last_step)
        _load(on_host, last_step)
        run = on_board.run_network(seqs)
        reference = host_reference(on_host, spec, seqs)
    assert run.clipped == 0
    got = np.concatenate(run.outputs) if spec.per_step else run.outputs
    want = np.concatenate(reference) if spec.per_step else reference
    assert got.shape == want.shape and np.abs(want).max() > 0.05  # not a network that outputs nothing
    # binary32 arithmetic and table activations (PROTOCOL.md RUN_NETWORK): most outputs
    # agree to the table error; an input within that error of a DAC rounding boundary takes
    # the neighbouring code, which moves the outputs after it by about one code's current
    diff = np.abs(got - want)
    assert np.median(diff) <= 1e-5 and np.mean(diff > 1e-5) <= 0.1 and diff.max() <= 5e-3


def test_progress_abort_and_clipping() -> None:
    with memhw.connect("mock://?preset=ideal&seed=6&rows=32", timeout=30.0) as board:
        spec = _load(board, last_step=False)
        seen: list[tuple[int, int]] = []
        board.run_network(_sequences(n=2), progress=lambda d, t: seen.append((d, t)))
        assert seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)
        # inputs 100x the read limit are clipped, and counted
        loud = [np.full((3, X), 100.0)]
        assert board.run_network(loud).clipped == 3 * X
        # abort from another thread between time steps
        emu = board.link.transport.peer
        emu.pace = 2000.0
        long = [np.zeros((400, X))]
        def abort_once_running() -> None:
            while emu.hardware.counters.busy_time < busy0 + 0.001:  # a few steps in
                threading.Event().wait(0.001)
            board.abort()  # as a Ctrl+C handler would, while the request is in flight

        busy0 = emu.hardware.counters.busy_time
        killer = threading.Thread(target=abort_once_running)
        killer.start()
        with pytest.raises(memhw.OperationAborted) as err:
            board.run_network(long)
        killer.join()
        assert 0 < err.value.reply["steps_done"] < 400
        emu.pace = 0.0
        assert len(board.run_network(_sequences(n=1)).outputs) == 1 and spec.per_step  # in step after the abort


def test_state_is_per_session_and_replayed_after_a_new_session() -> None:
    with memhw.connect("mock://?preset=ideal&seed=6&rows=32") as board:
        _load(board, last_step=True)
        first = board.run_network(_sequences(n=3)).outputs
        emu = board.link.transport.peer
        emu.reboot()
        board.reconnect()  # a new session: the board forgot; the host defines and loads again
        assert emu.hardware.network is not None and len(emu.hardware.tiles) == 3
        again = board.run_network(_sequences(n=3)).outputs
        assert np.abs(again - first).max() < 1e-6


@pytest.mark.parametrize("bad, message", [
    (lambda b, s: b.run_network([np.zeros((3, X + 1))]), "shape"),
    (lambda b, s: b.run_network([]), "one or more"),
    (lambda b, s: b.run_network([np.full((2, X), np.nan)]), "NaN"),
    (lambda b, s: b.run_network([np.full((2, X), 1e39)]), "outside"),
    (lambda b, s: b.define_tile(0, TileSpec(rows=[0, 0], cols=[1])), "distinct"),
    (lambda b, s: b.define_tile(40, TileSpec(rows=[0], cols=[1])), "tile"),
    (lambda b, s: b.load_network(NetworkSpec((NetworkLayer("lstm", X, H, tiles=(LayerTile(9, 0, 0),)),))),
     "not defined"),
])
def test_bad_input_is_refused_before_anything_is_sent(bad, message) -> None:
    with memhw.connect("mock://?preset=ideal&seed=6&rows=32") as board:
        spec = _load(board, last_step=False)
        sent = board.link.stats.round_trips
        with pytest.raises(memhw.LimitError, match=message):
            bad(board, spec)
        assert board.link.stats.round_trips == sent


@pytest.mark.parametrize("fields, status", [
    ({"in_volts": np.array([0.0, 0.05], np.float32)}, "in_volts"),
    ({"out_start": [0, 5, 0]}, "cover"),
    ({"tiles": [0, 1, 7]}, "not defined"),
    ({"n_in": [X, H + 1]}, "takes"),
])
def test_the_board_checks_a_network_itself(fields, status) -> None:
    """What a host other than memhw might send: the board refuses it with a reason."""
    with memhw.connect("mock://?preset=ideal&seed=6&rows=32") as board:
        spec = _load(board, last_step=False)
        with pytest.raises(memhw.BoardError, match=status):
            board._request("LOAD_NETWORK", {**spec.fields(), **fields})


def test_a_batch_the_board_cannot_hold_is_halved_until_it_fits(mocker) -> None:
    """A board with little state memory (the C core's example port) refuses a large
    RUN_NETWORK batch TOO_LARGE before running it; the host halves the batch until each
    part fits, and the outputs are those of one batch (ideal: the same products)."""
    with memhw.connect("mock://?preset=ideal&seed=6&rows=32") as board:
        _load(board, last_step=True)
        seqs = _sequences(n=9)
        whole = board.run_network(seqs).outputs
        real = board._request
        sizes: list[int] = []

        def small_board(message, fields=None, **kw):
            if message == "RUN_NETWORK":
                sizes.append(len(fields["lengths"]))
                if len(fields["lengths"]) > 2:
                    raise memhw.BoardError(8, "TOO_LARGE", "a batch of more than 2 sequences exceeds this board's "
                                                           "state memory")
            return real(message, fields, **kw)

        mocker.patch.object(board, "_request", side_effect=small_board)
        seen: list[tuple[int, int]] = []
        parts = board.run_network(seqs, progress=lambda d, t: seen.append((d, t)))
        assert sizes[0] == 9 and sum(s for s in sizes if s <= 2) == 9  # every sequence ran once, in parts of <= 2
        assert np.abs(parts.outputs - whole).max() < 1e-6
        assert seen[-1][0] == seen[-1][1]  # progress ends at its (grown) total
        sizes.clear()
        mocker.patch.object(board, "_request", side_effect=memhw.BoardError(8, "TOO_LARGE", "no room"))
        with pytest.raises(memhw.BoardError, match="TOO_LARGE"):  # one sequence too large: nothing to halve
            board.run_network(seqs[:1])
