"""Weights -> conductances -> weights, and placement of layers in arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memhw.nn import PlacementError, WeightRangeError
from memhw.nn.mapping import WeightMap, to_conductances, to_weights
from memhw.nn.placement import place


@pytest.mark.parametrize("wmap", [WeightMap(), WeightMap(centred=True), WeightMap(scale=250e-6, g_base=5e-6)])
def test_weight_map_round_trip_and_range(wmap: WeightMap) -> None:
    w = np.linspace(-wmap.w_max, wmap.w_max, 41)
    gp, gm = wmap.to_conductance(w)
    np.testing.assert_allclose(wmap.to_weight(gp, gm), w, atol=1e-12)
    assert gp.min() >= wmap.g_base - 1e-15 and gm.min() >= wmap.g_base - 1e-15
    assert max(gp.max(), gm.max()) <= wmap.g_max + 1e-15
    with pytest.raises(WeightRangeError, match="auto_scale"):  # refused, never clipped
        wmap.to_conductance(np.array([1.01 * wmap.w_max]))


def test_paper_layout_of_the_airline_network() -> None:
    p = place({"lstm0": (60, 17), "dense1": (1, 16)}, (128, 64))
    lstm, dense = p.tiles
    assert list(lstm.rows_plus) == list(range(17)) and list(lstm.rows_minus) == list(range(17, 34))
    assert list(lstm.cols_plus) == list(range(60)) and list(dense.cols_plus) == [60]
    assert p.used(0).sum() == 34 * 60 + 32 * 1


def _check_no_overlap(p) -> None:
    for a in range(len(p.shapes)):
        owners = [p.tiles.index(t) for t in p.tiles if t.array == a]
        count = np.zeros(p.shapes[a], int)
        for i in owners:
            count[p.tiles[i].devices()] += 1
        assert count.max(initial=0) <= 1


def _check_cover(p) -> None:
    for key, (M, K) in p.layers.items():
        cover = np.zeros((M, K), int)
        for t in p.tiles_of(key):
            cover[t.outputs[0]:t.outputs[1], t.inputs[0]:t.inputs[1]] += 1
        assert (cover == 1).all(), key


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), min_size=1, max_size=4),
       st.sampled_from(["rows", "columns"]), st.integers(0, 2**31 - 1))
def test_placement_never_overlaps_and_covers_every_weight(layers, layout, seed) -> None:
    rng = np.random.default_rng(seed)
    shapes = [(32, 16)] * 8
    usable = [rng.random(s) > 0.02 for s in shapes]
    try:
        p = place({f"l{i}": s for i, s in enumerate(layers)}, shapes, usable, layout)
    except ValueError:
        return  # does not fit: allowed
    _check_no_overlap(p)
    _check_cover(p)
    for a, u in enumerate(usable):  # faulty lists exactly the unusable devices inside tiles
        assert sorted((r, c) for b, r, c in p.faulty if b == a) == sorted(zip(*np.nonzero(p.used(a) & ~u)))


def test_placement_skips_bad_lines_and_stuck_devices() -> None:
    usable = np.ones((128, 64), bool)
    usable[5, :] = False  # bad row
    usable[:, 3] = False  # bad column
    usable[20, 40] = usable[50, 10] = False  # stuck devices
    p = place({"lstm0": (60, 17), "dense1": (1, 16)}, (128, 64), usable)
    used = p.used(0)
    assert not (used & ~usable).any() and p.faulty == []
    assert not used[5].any() and not used[:, 3].any()


def test_full_array_tolerates_and_reports_stuck_devices() -> None:
    usable = np.ones((128, 64), bool)
    usable[70, 0::2] = False  # 32 stuck devices in one row: the LSTM needs every row and 56 columns
    p = place({"lstm0": (56, 64), "dense1": (8, 15)}, (128, 64), usable)
    assert len(p.faulty) == 56 - 32 and all(r == 70 for _, r, _ in p.faulty)
    assert not (p.used(0) & ~usable)[:, p.tiles[1].cols_plus].any()  # the dense layer avoids them


def test_layer_too_large_is_tiled_across_arrays() -> None:
    p = place({"big": (100, 90)}, [(64, 48)] * 7)
    _check_no_overlap(p)
    _check_cover(p)
    assert len({t.inputs for t in p.tiles}) == 3  # 90 inputs on 32-input row tiles
    assert len({t.array for t in p.tiles}) > 1
    with pytest.raises(PlacementError, match="needs 7 defect-free array"):
        place({"big": (100, 90)}, (64, 48))


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_conductance_round_trip_through_tiles(layout: str) -> None:
    rng = np.random.default_rng(0)
    weights = {"a": rng.uniform(-2, 2, (30, 21)), "b": rng.uniform(-2, 2, (7, 31))}
    wmap = WeightMap()
    tiled = place({k: w.shape for k, w in weights.items()}, [(24, 32)] * 6, layout=layout)
    assert len(tiled.tiles) > 2
    maps = to_conductances(tiled, weights, wmap)
    back = to_weights(tiled, maps, wmap)
    for k, w in weights.items():
        np.testing.assert_allclose(back[k], w, atol=1e-12)
    used = np.concatenate([tiled.used(a).ravel() for a in range(6)])
    assert np.isfinite(np.concatenate([m.ravel() for m in maps])[used]).all()
