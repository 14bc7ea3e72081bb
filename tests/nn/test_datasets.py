"""Airline and gait data sets."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.io import savemat

from memhw.datasets import airline, load_gait, synthetic_gait


def test_airline_series_and_split() -> None:
    d = airline()
    assert len(d.passengers) == 144 and d.months[0] == "1949-01" and d.months[-1] == "1960-12"
    assert d.passengers[0] == 112 and d.passengers[-1] == 432
    assert np.isfinite(d.scaled).all() and d.scaled.min() == 0 and d.scaled.max() == 1
    np.testing.assert_array_equal(d.x[1:, 0], d.y[:-1, 0])  # window 1, next-month target
    assert d.x.shape == d.y.shape == (143, 1) and d.n_train == 95  # targets of months 2..96
    np.testing.assert_allclose(d.unscale(d.scaled), d.passengers)


def test_synthetic_gait_is_seeded_and_shaped() -> None:
    a, b = synthetic_gait(4, per_class=8, seed=3), synthetic_gait(4, per_class=8, seed=3)
    assert a.source == "synthetic" and a.n_classes == 4 and a.n_features == 50
    assert all(np.array_equal(x, y) for x, y in zip(a.sequences, b.sequences))
    lengths = {len(s) for s in a.sequences}
    assert len(lengths) > 1 and min(lengths) >= 30 and max(lengths) <= 60
    assert 0 < a.train.sum() < len(a.labels)
    for c in range(4):  # every subject has train and test sequences
        assert a.train[a.labels == c].any() and (~a.train[a.labels == c]).any()
    with pytest.raises(ValueError):
        synthetic_gait(9)


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".mat"])
def test_load_gait_formats(tmp_path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    lengths = np.array([3, 5, 4])
    entries = {"features": rng.random((12, 50)), "lengths": lengths, "labels": np.array([7, 2, 7]),
               "train": np.array([True, True, False])}
    path = tmp_path / f"gait{suffix}"
    if suffix == ".npz":
        np.savez(path, **entries)
    elif suffix == ".h5":
        with h5py.File(path, "w") as f:
            for k, v in entries.items():
                f[k] = v
    else:
        savemat(path, entries)
    d = load_gait(path)
    assert [len(s) for s in d.sequences] == [3, 5, 4]
    np.testing.assert_array_equal(d.labels, [1, 0, 1])  # relabelled 0..n-1
    np.testing.assert_array_equal(d.train, [True, True, False])
    np.testing.assert_array_equal(d.sequences[1], entries["features"][3:8])


def test_load_gait_rejects_inconsistent_files(tmp_path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, features=np.zeros((10, 50)), lengths=np.array([4, 4]), labels=np.array([0, 1]))
    with pytest.raises(ValueError, match="lengths sum"):
        load_gait(path)
