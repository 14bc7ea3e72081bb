"""Gait-identification sequences: a loader for real data and a synthetic generator.

The USF HumanID gait challenge data of the paper are not public. :func:`load_gait`
reads real feature sequences in the format of ``docs/lstm.md``; :func:`synthetic_gait`
makes *synthetic* silhouette-width sequences that only imitate their structure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["GaitData", "load_gait", "synthetic_gait"]


@dataclass(frozen=True)
class GaitData:
    """Labelled variable-length sequences.

    Attributes
    ----------
    sequences : list of ndarray (T_i, F)
    labels : int ndarray, shape (N,)
        Class (subject) of each sequence, 0 .. n_classes - 1.
    train : bool ndarray, shape (N,)
        True for training sequences, False for test sequences.
    source : str
        "synthetic" or the path the data came from.
    """

    sequences: list[np.ndarray]
    labels: np.ndarray
    train: np.ndarray
    source: str

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1

    @property
    def n_features(self) -> int:
        return int(self.sequences[0].shape[1])

    def split(self, train: bool) -> tuple[list[np.ndarray], np.ndarray]:
        """(sequences, labels) of the training (True) or test (False) part."""
        idx = np.flatnonzero(self.train == train)
        return [self.sequences[i] for i in idx], self.labels[idx]


def _from_arrays(seqs: list[np.ndarray], labels: np.ndarray, train: np.ndarray | None, source: str,
                 rng: np.random.Generator, test_fraction: float) -> GaitData:
    labels = np.asarray(labels).astype(int).ravel()
    if len(seqs) != len(labels):
        raise ValueError(f"{source}: {len(seqs)} sequences but {len(labels)} labels")
    if len({s.shape[1] for s in seqs}) != 1:
        raise ValueError(f"{source}: sequences have different feature counts")
    _, labels = np.unique(labels, return_inverse=True)
    if train is None:
        train = rng.random(len(labels)) >= test_fraction
    return GaitData([np.asarray(s, float) for s in seqs], labels, np.asarray(train, bool).ravel(), source)


def _split_concatenated(features: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    ends = np.cumsum(np.asarray(lengths, int).ravel())
    if ends[-1] != len(features):
        raise ValueError(f"lengths sum to {ends[-1]}, features have {len(features)} frames")
    return np.split(np.asarray(features, float), ends[:-1])


def load_gait(path: str | Path, test_fraction: float = 0.25, seed: int = 0) -> GaitData:
    """Read real gait feature sequences (format: ``docs/lstm.md``).

    Parameters
    ----------
    path : str or Path
        ``.npz``, ``.h5``/``.hdf5`` or ``.mat`` file with ``features`` (total_frames, F),
        ``lengths`` (N,), ``labels`` (N,) and optionally ``train`` (N,) booleans.
    test_fraction : float
        Random test share when the file has no ``train`` entry.
    seed : int
        Seed of that random split.

    Returns
    -------
    GaitData
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path) as f:
            d = {k: f[k] for k in f.files}
    elif suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            d = {k: f[k][()] for k in f.keys()}
    elif suffix == ".mat":
        from scipy.io import loadmat

        d = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    else:
        raise ValueError(f"{path}: unsupported gait file type {suffix!r} (use .npz, .h5 or .mat)")
    missing = {"features", "lengths", "labels"} - set(d)
    if missing:
        raise ValueError(f"{path}: missing entries {sorted(missing)}")
    seqs = _split_concatenated(d["features"], d["lengths"])
    return _from_arrays(seqs, d["labels"], d.get("train"), str(path), np.random.default_rng(seed), test_fraction)


def synthetic_gait(n_classes: int = 8, per_class: int = 40, n_features: int = 50, length: tuple[int, int] = (30, 60),
                   noise: float = 0.2, test_fraction: float = 0.25, seed: int = 0) -> GaitData:
    """SYNTHETIC gait-like silhouette-width sequences (not real gait data).

    Each subject (class) gets a body-shape profile of silhouette width over
    ``n_features`` heights, a gait period, and per-height amplitudes and phases of the
    first two harmonics of the stride. A sequence starts at a random phase, has a
    random length, jitters the period and amplitudes by a few percent, and adds
    Gaussian frame noise. Features are the widths minus the population-average
    profile, divided by 0.3 and clipped to [-1, 1] (centred inputs, as after the
    usual per-feature standardisation).

    Parameters
    ----------
    n_classes : int
        Subjects, 2..8 (8 is the most that fits beside LSTM(14) in one 128 × 64 array).
    per_class : int
        Sequences per subject.
    n_features : int
        Silhouette heights per frame (50 in the paper).
    length : (int, int)
        Inclusive range of sequence lengths (frames).
    noise : float
        Standard deviation of the frame noise (in width units, before scaling).
    test_fraction : float
        Share of each subject's sequences held out for testing.
    seed : int

    Returns
    -------
    GaitData
        ``source == "synthetic"``.
    """
    if not 2 <= n_classes <= 8:
        raise ValueError(f"n_classes must be 2..8, got {n_classes}")
    rng = np.random.default_rng(seed)
    height = np.linspace(0.0, 1.0, n_features)
    # shared human shape (head, torso, legs) plus a subject-specific smooth deviation
    base = 0.25 + 0.2 * np.exp(-((height - 0.35) / 0.2) ** 2) + 0.1 * np.exp(-((height - 0.08) / 0.05) ** 2)
    spread = 0.3  # widths are reported relative to the average profile, in units of this
    seqs, labels, train = [], [], []
    for subject in range(n_classes):
        shape = base + sum(rng.normal(0, 0.03) * np.cos(np.pi * k * height) for k in range(1, 5))
        period = rng.uniform(22.0, 36.0)
        legs = np.clip((height - 0.5) * 2.0, 0.0, 1.0)  # swing grows towards the feet
        amp1 = (0.06 + 0.14 * legs) * rng.uniform(0.7, 1.3, n_features)
        amp2 = 0.04 * rng.uniform(0.5, 1.5) * (0.3 + legs)
        phase1 = rng.uniform(0, 2 * np.pi) + 2 * np.pi * rng.uniform(-0.1, 0.1) * height
        phase2 = rng.uniform(0, 2 * np.pi)
        n_test = int(round(per_class * test_fraction))
        for k in range(per_class):
            n = int(rng.integers(length[0], length[1] + 1))
            t = np.arange(n)[:, None]
            w = 2 * np.pi / (period * rng.uniform(0.95, 1.05))
            start = rng.uniform(0, 2 * np.pi)
            seq = (shape * rng.uniform(0.97, 1.03) + amp1 * np.sin(w * t + start + phase1)
                   + amp2 * np.sin(2 * (w * t + start) + phase2) + rng.normal(0, noise, (n, n_features)))
            seqs.append(np.clip((seq - base) / spread, -1.0, 1.0))
            labels.append(subject)
            train.append(k >= n_test)
    return GaitData(seqs, np.array(labels), np.array(train), "synthetic")
