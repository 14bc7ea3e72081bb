"""Defect-aware mapping: pair targets through the common mode, placement around stuck
devices, repair on spare rows."""

from __future__ import annotations

import numpy as np
import pytest

import memhw
from memhw.health import HealthMap
from memhw.nn import CrossbarBackend, WeightMap, auto_scale, place
from memhw.nn.pairs import pair_targets
from memhw.nn.placement import _pair_cost

WMAP = WeightMap()


def test_a_stuck_high_device_is_matched_by_raising_its_partner_beyond_g_max() -> None:
    # the case: a weight of -0.23 whose G+ is stuck at 300 uS -> G- at 323 uS (> g_max)
    d = np.array([-0.23 * WMAP.scale])
    stuck = np.array([300e-6])
    gp, gm, res = pair_targets(d, stuck, stuck, WMAP.g_floor, WMAP.g_ceiling, WMAP.common(d))
    assert gp[0] == pytest.approx(300e-6) and gm[0] == pytest.approx(323e-6) and res[0] == 0
    assert gm[0] > WMAP.g_max
    # stuck at 342 uS: the partner would need 365 uS, beyond any device: the rest is reported
    gp, gm, res = pair_targets(d, stuck + 42e-6, stuck + 42e-6, WMAP.g_floor, WMAP.g_ceiling, WMAP.common(d))
    assert gm[0] == pytest.approx(WMAP.g_ceiling) and res[0] == pytest.approx(-0.23 * WMAP.scale - 2e-6)


def test_healthy_pairs_keep_the_one_sided_map() -> None:
    w = np.linspace(-2.5, 2.5, 11)
    gp, gm, res = pair_targets(w * WMAP.scale, WMAP.g_floor, WMAP.g_ceiling, WMAP.g_floor, WMAP.g_ceiling,
                               WMAP.common(w))
    ref_p, ref_m = WMAP.to_conductance(w)
    np.testing.assert_allclose(gp, ref_p)
    np.testing.assert_allclose(gm, ref_m)
    assert not res.any()


def test_auto_scale_fits_every_layer_and_prefers_large_scales() -> None:
    maps = auto_scale({"big": np.array([[4.0, -1.0]]), "small": np.array([[0.3]])})
    assert maps["big"].scale < WMAP.scale and 4.0 <= maps["big"].w_max
    assert maps["small"].scale == 250e-6  # capped
    maps["big"].check(np.array([4.0]))


def _health_with_defects(shape, seed: int, fraction: float) -> HealthMap:
    rng = np.random.default_rng(seed)
    h = HealthMap.empty("T", shape)
    stuck = rng.random(shape) < fraction
    h.observe(stuck=stuck, g_stuck=rng.choice([2e-6, 200e-6, 345e-6], size=shape), responsive=~stuck)
    return h


def test_assignment_puts_defects_where_the_weights_suit_them() -> None:
    shape = (128, 64)
    health = _health_with_defects(shape, 0, 0.08)
    w = {"l": np.random.default_rng(1).uniform(-2.5, 2.5, (50, 30))}
    plain = place({"l": w["l"].shape}, shape, health=health)
    smart = place({"l": w["l"].shape}, shape, health=health, weights=w)
    lo, hi = health.limits(WMAP.g_floor, WMAP.g_ceiling)

    def unholdable(p) -> float:
        t = p.tiles[0]
        d = w["l"].T * WMAP.scale
        _, _, r = pair_targets(d, lo[np.ix_(t.rows_plus, t.cols_plus)], hi[np.ix_(t.rows_plus, t.cols_plus)],
                               lo[np.ix_(t.rows_minus, t.cols_minus)], hi[np.ix_(t.rows_minus, t.cols_minus)],
                               WMAP.common(d))
        return float(np.sum(np.abs(r) > 1e-9))

    assert unholdable(plain) > 5 and unholdable(smart) <= 0.2 * unholdable(plain)
    one = np.array(0.01)
    assert _pair_cost(np.array(0.0), np.array(345e-6), np.array(345e-6), one, WMAP, 0.01) > \
        _pair_cost(np.array(0.0), np.array(2e-6), np.array(2e-6), one, WMAP, 0.01)  # high stuck costs read noise
    big = np.array(-200e-6)  # a large weight on this device: a noisy device costs more
    assert _pair_cost(big, np.array(5e-6), np.array(340e-6), np.array(0.05), WMAP, 0.01) > \
        4 * _pair_cost(big, np.array(5e-6), np.array(340e-6), one, WMAP, 0.01)


def test_repair_rows_carry_what_stuck_pairs_cannot(health_dir) -> None:
    """An ideal chip with 4 % stuck devices and a layer using most of its columns:
    compensation and repair rows bring every weight within the repair threshold."""
    w = {"l": np.random.default_rng(2).uniform(-2.5, 2.5, (60, 40))}
    with memhw.connect("mock://?preset=ideal&seed=3&stuck_fraction=0.04") as board:
        cb = CrossbarBackend(board, weight_map=WMAP)
        measured = cb.program(w)
        rep = cb.report
        naive = CrossbarBackend(board, weight_map=WMAP, health=None, repair_rounds=0)
        naive_err = np.abs(naive.program(w)["l"] - w["l"])
    err = np.abs(measured["l"] - w["l"])
    assert rep.probed == board.shape[0] * board.shape[1] and rep.stuck_used > 0
    assert rep.repair_rows > 0 and rep.unrepaired == [] and rep.rounds >= 2
    assert err.max() * WMAP.scale <= cb.repair_threshold
    assert naive_err.max() > 0.5 and (naive_err > 0.05).sum() > 10 * max(1, (err > 0.05).sum())
    t = cb.placement.tiles[0]
    assert len(t.repair) == rep.repair_rows
    assert not set(np.array(t.repair)[:, 1:].ravel()) & set(np.union1d(t.rows_plus, t.rows_minus))


def test_matmul_uses_the_repair_rows(health_dir) -> None:
    w = {"l": np.random.default_rng(4).uniform(-2.5, 2.5, (60, 40))}
    z = np.random.default_rng(5).uniform(-1, 1, (20, 40))
    with memhw.connect("mock://?preset=ideal&seed=3&stuck_fraction=0.04") as board:
        cb = CrossbarBackend(board, weight_map=WMAP)
        cb.program(w)
        assert cb.report.repair_rows > 0
        y = cb.matmul("l", z)
    np.testing.assert_allclose(y, z @ cb.weights("l").T, atol=0.02)
    np.testing.assert_allclose(y, z @ w["l"].T, atol=0.15)


def test_a_full_height_layer_uses_a_bad_row_when_it_must() -> None:
    h = HealthMap.empty("T", (128, 64))
    bad = np.zeros((128, 64), bool)
    bad[37] = True
    h.observe(stuck=bad, g_stuck=np.zeros((128, 64)), responsive=~bad)
    p = place({"lstm0": (56, 64)}, (128, 64), health=h)  # every row is needed
    assert sorted({r for _, r, _ in p.faulty}) == [37] and len(p.faulty) == 56
    small = place({"dense0": (8, 15)}, (128, 64), health=h)
    assert small.faulty == [] and not small.used(0)[37].any()


def test_when_a_dead_column_must_be_used_the_largest_layer_takes_it() -> None:
    h = HealthMap.empty("T", (128, 64))
    dead = np.zeros((128, 64), bool)
    dead[:, 21] = True
    h.observe(stuck=dead, g_stuck=np.zeros((128, 64)), responsive=~dead)
    # the gait network needs all 64 columns: a class output on the dead column would never win
    p = place({"lstm0": (56, 64), "dense0": (8, 15)}, (128, 64), health=h)
    (dense,) = p.tiles_of("dense0")
    assert 21 not in dense.cols_plus and 21 in p.tiles_of("lstm0")[0].cols_plus
