"""Target conductance maps: from files (.npy, .h5, pictures) or named patterns.

``.npy`` files and HDF5 datasets hold conductances **in siemens** (100 µS = 1e-4). An
HDF5 file is read at dataset ``targets`` or at ``FILE.h5:NAME``; in a memhw session file
``NAME`` is looked up in its runs, newest first, so ``memhw read --out map.h5`` gives
``map.h5:conductance`` and ``memhw program ... --out run.h5`` gives ``run.h5`` (its
``targets``). Pictures and patterns (grey levels in [0, 1]) are mapped linearly to a
conductance range. Every problem is one line naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .errors import MemhwError
from .units import US

__all__ = ["PATTERNS", "IMAGE_SUFFIXES", "pattern", "image", "read_target_file", "load_targets", "is_file_spec"]

#: named patterns for ``memhw program PATTERN``
PATTERNS = ("random", "checkerboard", "gradient", "rings")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
_H5 = re.compile(r"^(?P<path>.+\.(?:h5|hdf5)):(?P<name>[^:\\/][^:]*)$", re.IGNORECASE)


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
    except FileNotFoundError:
        raise MemhwError(f"{path}: no such file") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise MemhwError(f"{path}: not a readable image: {exc}") from None
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2)
    if img.max() > 1.0:
        img = img / 255.0
    img = zoom(img, (shape[0] / img.shape[0], shape[1] / img.shape[1]), order=1)
    return np.clip(img[: shape[0], : shape[1]], 0.0, 1.0)


def is_file_spec(spec: str) -> bool:
    """Whether ``spec`` names a file of conductances (.npy, .h5[:NAME]) rather than a picture
    or a pattern."""
    return Path(spec).suffix.lower() in (".npy", ".h5", ".hdf5") or bool(_H5.match(spec))


# ------------------------------------------------------------------ files in siemens
def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise MemhwError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MemhwError(f"{path}: is a folder, not a .npy file") from None
    except EOFError:
        raise MemhwError(f"{path}: empty file (no array in it)") from None
    except (OSError, ValueError) as exc:
        text = str(exc)
        if "pickle" in text or "Object arrays" in text:
            raise MemhwError(f"{path}: not an array of numbers saved with numpy.save (memhw never loads "
                             "pickled objects); save the targets with numpy.save(path, array_in_siemens)") from None
        raise MemhwError(f"{path}: not a readable .npy file ({text})") from None


def _session_dataset(path: Path, name: str) -> np.ndarray | None:
    """Dataset ``name`` of the newest run of a memhw session file that has one."""
    from .session import load

    s = load(path)
    try:
        for run in reversed(s.runs()):
            if name in run.names():
                return np.asarray(run.read(name))
        return None
    finally:
        s.close()


def _arrays_in(f) -> list[str]:
    """Names of the 2-D numeric datasets of an HDF5 file, as ``FILE.h5:NAME`` would take them."""
    found: list[str] = []

    def visit(name: str, obj) -> None:
        if hasattr(obj, "dtype") and obj.ndim == 2 and obj.dtype.kind in "iuf" and not name.startswith("log/"):
            short = name.rsplit("/", 1)[-1] if name.startswith("runs/") else name
            if short not in found:
                found.append(short)

    f.visititems(visit)
    return found


def _read_h5(path: Path, name: str | None) -> np.ndarray:
    import h5py

    from .session import FORMAT

    want = name or "targets"
    if not path.exists():
        raise MemhwError(f"{path}: no such file")
    try:
        with h5py.File(path, "r", locking=False) as f:
            session = f.attrs.get("format") in (FORMAT, FORMAT.encode())
            if want in f and hasattr(f[want], "dtype"):
                return np.asarray(f[want][()])
            arrays = _arrays_in(f)
    except OSError as exc:
        raise MemhwError(f"{path}: not a readable HDF5 file ({exc})") from None
    data = _session_dataset(path, want) if session else None
    if data is not None:
        return data
    hint = (f"; its 2-D arrays: {', '.join(arrays)} (give {path}:{arrays[0]})" if arrays
            else "; it holds no 2-D array")
    raise MemhwError(f"{path} has no dataset {want!r}{hint}")


def _check_siemens(path: str, data: np.ndarray) -> np.ndarray:
    from .programming.program import G_TARGET_MAX

    if data.dtype.kind == "c":
        raise MemhwError(f"{path}: complex values; targets are real conductances in siemens")
    if data.dtype.kind not in "iuf":
        raise MemhwError(f"{path}: holds {data.dtype} data, not conductances in siemens")
    if data.size == 0:
        raise MemhwError(f"{path}: the array is empty")
    data = data.astype(float)
    if not np.isfinite(data).all():
        raise MemhwError(f"{path}: targets contain NaN or infinity")
    lo, hi = float(data.min()), float(data.max())
    if lo < 0:
        raise MemhwError(f"{path}: negative conductances (down to {lo:.3g} S); targets are conductances in "
                         f"siemens, 0 or more")
    if hi > G_TARGET_MAX:
        looks = (f"; these look like {US} ({hi:.4g} {US}?): divide by 1e6" if 1 <= hi <= 1e4 else "")
        raise MemhwError(f"{path}: targets up to {hi:.4g} S, beyond any device ({G_TARGET_MAX * 1e6:.0f} {US} "
                         f"= {G_TARGET_MAX:g} S); .npy and .h5 targets are read in siemens (100 {US} = 1e-4){looks}")
    return data


def read_target_file(spec: str) -> np.ndarray:
    """Conductances in siemens from ``FILE.npy``, ``FILE.h5`` or ``FILE.h5:NAME``, checked:
    a readable, non-empty array of real numbers, finite, in [0, 1 mS] (with a hint when the
    values look like microsiemens).

    Raises
    ------
    MemhwError
        One line naming the file and what is wrong.
    """
    m = _H5.match(spec)
    path = Path(m["path"] if m else spec)
    data = _read_npy(path) if path.suffix.lower() == ".npy" else _read_h5(path, m["name"] if m else None)
    return _check_siemens(spec, np.asarray(data))


def load_targets(spec: str, shape: tuple[int, int], g_range: tuple[float, float], seed: int = 0) -> np.ndarray:
    """Targets in siemens from a file or pattern name.

    ``.npy`` files and HDF5 datasets are taken as siemens (:func:`read_target_file`) and
    must have ``shape``; pictures and patterns (values in [0, 1]) are mapped linearly to
    ``g_range`` (S).

    Raises
    ------
    MemhwError
        Unreadable file, wrong shape, or values that are not conductances in siemens.
    """
    lo, hi = g_range
    if not 0 <= lo < hi:
        raise MemhwError(f"conductance range {lo * 1e6:g}..{hi * 1e6:g} {US} must be increasing and non-negative")
    if is_file_spec(spec):
        data = read_target_file(spec)
        if data.shape != tuple(shape):
            raise MemhwError(f"{spec}: targets have shape {data.shape}, the array is {tuple(shape)}")
        return data
    path = Path(spec)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return lo + (hi - lo) * image(path, shape)
    if path.suffix == "" and spec in PATTERNS:
        return lo + (hi - lo) * pattern(spec, shape, seed)
    raise MemhwError(f"{spec!r}: give a .npy, .h5 or image file, or one of the patterns {', '.join(PATTERNS)}")
