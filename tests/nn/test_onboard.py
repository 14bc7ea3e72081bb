"""Networks run by the board (memhw.nn.onboard): predict() on one protocol 2.1 board runs
every time step there and gives what the host path gives, within the stated numeric
error (PROTOCOL.md RUN_NETWORK) on `ideal` and within the read noise on `paper`; it
falls back to the host path, saying why, when the board cannot reproduce it; several
boards' tiles run concurrently."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import memhw
from memhw.board import Board
from memhw.nn import LSTM, CrossbarBackend, Dense, LastStep, Sequential, predict

from .conftest import ideal_program


def _model(last_step: bool = False, seed: int = 0) -> Sequential:
    head = [LastStep(), Dense(6, 3, "softmax")] if last_step else [Dense(6, 2, "sigmoid")]
    model = Sequential([LSTM(2, 6), *head], seed=seed)
    rng = np.random.default_rng(seed)
    for w in model.params.values():
        w[...] = rng.uniform(-0.6, 0.6, w.shape)
    return model


def _sequences(n: int = 6, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (int(rng.integers(4, 12)), 2)) for _ in range(n)]


def _backend(address: str, model: Sequential, **kw) -> CrossbarBackend:
    board = memhw.connect(address)
    cb = CrossbarBackend(board, health=None, programmer=ideal_program if "ideal" in address else None, **kw)
    cb.program(model.params)
    return cb


@pytest.mark.parametrize("last_step", [False, True], ids=["per-step", "last-step softmax"])
def test_on_ideal_the_board_gives_the_host_paths_outputs(last_step: bool) -> None:
    model, seqs = _model(last_step), _sequences()
    cb = _backend("mock://?preset=ideal&seed=3&rows=64", model)
    try:
        stats = cb.boards[0].link.stats
        host = predict(model, seqs, cb, on_board=False)
        before = dict(stats.per_opcode)
        board = predict(model, seqs, cb)
        sent = {k: v - before.get(k, 0) for k, v in stats.per_opcode.items() if v != before.get(k, 0)}
    finally:
        cb.boards[0].close()
    assert cb.on_board_reason == ""
    assert sent == {"LOAD_NETWORK": 1, "RUN_NETWORK": 1}  # the whole batch in one request
    got = np.concatenate(board) if not last_step else board
    want = np.concatenate(host) if not last_step else host
    diff = np.abs(got - want)
    assert got.shape == want.shape and np.ptp(want) > 0.05
    # binary32 and table activations; an input at a DAC rounding boundary moves what follows by a code
    assert np.median(diff) <= 1e-5 and diff.max() <= 5e-3
    if last_step:
        assert np.allclose(got.sum(axis=1), 1.0) and (got.argmax(1) == want.argmax(1)).mean() >= 5 / 6


def test_on_paper_the_difference_is_the_read_noise() -> None:
    """Two runs of the host path differ by the read noise; the board's runs differ from
    them by no more (same chip, programmed once, calibrated)."""
    from memhw.calibration import calibrate_board

    model, seqs = _model(), _sequences(3)
    board = memhw.connect("mock://?preset=paper&seed=5&rows=64")
    try:
        board.calibration = calibrate_board(board, average=4)
        cb = CrossbarBackend(board, health=None)
        cb.program(model.params)
        host = [np.concatenate(predict(model, seqs, cb, on_board=False)) for _ in range(3)]
        on_board = [np.concatenate(predict(model, seqs, cb)) for _ in range(3)]
        software = np.concatenate(predict(model, seqs))
    finally:
        board.close()
    assert cb.on_board_reason == ""
    noise = max(np.median(np.abs(host[0] - host[1])), np.median(np.abs(host[1] - host[2])))
    assert noise > 0
    for h, b in zip(host, on_board):
        assert np.median(np.abs(b - h)) <= 1.5 * noise
    # and both paths are as far from the software network as each other
    err_host = np.median([np.median(np.abs(h - software)) for h in host])
    err_board = np.median([np.median(np.abs(b - software)) for b in on_board])
    assert err_board <= 1.2 * err_host + noise


@pytest.mark.parametrize("address, options, reason", [
    ("mock://?preset=ideal&seed=3&rows=64&protocol=2.0", {}, "does not run networks"),
    ("mock://?preset=ideal&seed=3&rows=64", {"vmm_average": 2}, "averaged"),
    ("mock://?preset=ideal&seed=3&rows=64", {"input_range": 0.5}, "input_range"),
])
def test_what_the_board_cannot_reproduce_runs_on_the_host(address, options, reason) -> None:
    model, seqs = _model(), _sequences(2)
    cb = _backend(address, model, **options)
    try:
        sent = dict(cb.boards[0].link.stats.per_opcode)
        y = predict(model, seqs, cb)
        assert reason in cb.on_board_reason
        assert "RUN_NETWORK" not in cb.boards[0].link.stats.per_opcode or \
            cb.boards[0].link.stats.per_opcode["RUN_NETWORK"] == sent.get("RUN_NETWORK", 0)
        assert [len(a) for a in y] == [len(x) for x in seqs]
    finally:
        cb.boards[0].close()


def test_inputs_beyond_the_input_range_run_on_the_host() -> None:
    """The host path rescales such samples; the board would clip them: predict() stays on the host."""
    model = _model()
    cb = _backend("mock://?preset=ideal&seed=3&rows=64", model)
    try:
        loud = [np.full((3, 2), 2.0)]
        y = predict(model, loud, cb)
        assert "beyond input_range" in cb.on_board_reason and len(y[0]) == 3
        assert np.allclose(y[0], predict(model, loud, cb, on_board=False)[0])  # ideal: the same products
        with pytest.raises(ValueError, match="input_range"):
            cb._network.run(loud)
        predict(model, _sequences(1), cb)
        assert cb.on_board_reason == ""  # the next batch within range runs on the board again
    finally:
        cb.boards[0].close()


def test_tiles_on_several_boards_are_multiplied_concurrently(mocker) -> None:
    """A layer split over two boards: each product request goes to its board from its own
    thread (the links overlap); the result is the same as one after the other."""
    model = Sequential([LSTM(2, 14), Dense(14, 2)], seed=0)  # 2 x 17 rows: more than one 32-row board
    rng = np.random.default_rng(2)
    for w in model.params.values():
        w[...] = rng.uniform(-0.5, 0.5, w.shape)
    boards = [memhw.connect(f"mock://?preset=ideal&seed={s}&rows=32") for s in (3, 4)]
    try:
        cb = CrossbarBackend(boards, health=None, programmer=ideal_program)
        cb.program(model.params)
        assert {t.array for t in cb.placement.tiles} == {0, 1}
        calls: list[tuple[int, str]] = []  # (board, thread name) of every product request
        real = Board.vmm_tile

        def spy(self, tile, v, gain="auto"):
            calls.append((boards.index(self), threading.current_thread().name))
            return real(self, tile, v, gain)

        mocker.patch.object(Board, "vmm_tile", spy)
        seqs = _sequences(2)
        y = predict(model, seqs, cb)
        assert "2 boards" in cb.on_board_reason
        # every product of a layer on both boards comes from that board's own thread
        spanning = [k for k in model.params if len({t.array for t in cb.placement.tiles_of(k)}) > 1]
        assert spanning
        assert {board for board, _ in calls} == {0, 1}
        threaded = [(board, name) for board, name in calls if name.startswith("memhw-board-")]
        assert threaded and all(name == f"memhw-board-{board}" for board, name in threaded)
        sw = predict(model, seqs)
        assert max(np.abs(a - b).max() for a, b in zip(y, sw)) < 0.05
    finally:
        for b in boards:
            b.close()
