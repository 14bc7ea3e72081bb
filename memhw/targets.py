"""Target conductance maps: from files (.npy, .h5, .png) or named patterns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import MemhwError

#: named patterns for ``memhw program PATTERN``
PATTERNS = ("random", "checkerboard", "gradient", "rings")


def pattern(name: str, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A named pattern with values in [0, 1].

    Parameters
    ----------
    name : {"random", "checkerboard", "gradient", "rings"}
    shape : (rows, cols)
    seed : int
        For "random".
    """
    r, c = np.mgrid[0 : shape[0], 0 : shape[1]]
    if name == "random":
        return np.random.default_rng(seed).random(shape)
    if name == "checkerboard":
        return ((r // 8 + c // 8) % 2).astype(float)
    if name == "gradient":
        return (r / max(shape[0] - 1, 1) + c / max(shape[1] - 1, 1)) / 2
    if name == "rings":
        rr = np.hypot((r - shape[0] / 2) / shape[0], (c - shape[1] / 2) / shape[1] * 0.5)
        return 0.5 * (1 + np.cos(rr * 40))
    raise MemhwError(f"unknown pattern {name!r}; choose one of {', '.join(PATTERNS)} or give a file")


def image(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A picture file as grey levels in [0, 1], resampled to ``shape`` (dark = 0)."""
    import matplotlib.image as mpimg
    from scipy.ndimage import zoom

    try:
        img = np.asarray(mpimg.imread(str(path)), dtype=float)
    except (OSError, ValueError, SyntaxError) as exc:
        raise MemhwError(f"{path}: not a readable image: {exc}") from None
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2)
    if img.max() > 1.0:
        img = img / 255.0
    img = zoom(img, (shape[0] / img.shape[0], shape[1] / img.shape[1]), order=1)
    return np.clip(img[: shape[0], : shape[1]], 0.0, 1.0)


def load_targets(spec: str, shape: tuple[int, int], g_range: tuple[float, float], seed: int = 0) -> np.ndarray:
    """Targets in siemens from a file or pattern name.

    ``.npy`` files and HDF5 datasets (``FILE.h5`` holding one dataset called
    ``targets``, or ``FILE.h5:NAME``) are taken as siemens and must have
    ``shape``; pictures and patterns (values in [0, 1]) are mapped linearly to
    ``g_range``.

    Raises
    ------
    MemhwError
        Unreadable file, wrong shape, or values that are not finite.
    """
    lo, hi = g_range
    if not 0 <= lo < hi:
        raise MemhwError(f"conductance range {lo:g}..{hi:g} S must be increasing and non-negative")
    path_part, _, dataset = spec.partition(":") if spec.count(":") == 1 and ".h5:" in spec else (spec, "", "")
    path = Path(path_part)
    suffix = path.suffix.lower()
    if suffix in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"):
        return lo + (hi - lo) * image(path, shape)
    if suffix == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise MemhwError(f"{path}: cannot read targets: {exc}") from None
    elif suffix in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                data = np.asarray(f[dataset or "targets"])
        except (OSError, KeyError) as exc:
            raise MemhwError(f"{path}: cannot read dataset {dataset or 'targets'!r}: {exc}") from None
    elif path.suffix == "" and spec in PATTERNS:
        return lo + (hi - lo) * pattern(spec, shape, seed)
    else:
        raise MemhwError(f"{spec!r}: give a .npy, .h5 or image file, or one of the patterns {', '.join(PATTERNS)}")
    data = np.asarray(data, dtype=float)
    if data.shape != shape:
        raise MemhwError(f"{path}: targets have shape {data.shape}, the array is {shape}")
    if not np.isfinite(data).all():
        raise MemhwError(f"{path}: targets contain NaN or infinity")
    return data
