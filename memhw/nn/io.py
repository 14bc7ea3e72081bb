"""Save and load models: architecture (JSON) and weights in one ``.npz`` file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import ModelFileError
from .layers import LSTM, Dense, LastStep, Layer, Sequential

__all__ = ["from_config", "load_model", "save_model"]

FORMAT = "memhw-nn-model"
FORMAT_VERSION = 1


def from_config(config: list[dict]) -> Sequential:
    """A model (zero weights) from :meth:`Sequential.config` data."""
    layers: list[Layer] = []
    for c in config:
        c = dict(c)
        kind = c.pop("type", None)
        if kind == "LSTM":
            layers.append(LSTM(**c))
        elif kind == "Dense":
            layers.append(Dense(**c))
        elif kind == "LastStep":
            layers.append(LastStep())
        else:
            raise ModelFileError(f"unknown layer type {kind!r}")
    return Sequential(layers, seed=0)


def save_model(model: Sequential, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` (``.npz``; written to a temporary name and renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, "layers": model.config()})
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __meta__=np.array(meta), **{f"w/{k}": w for k, w in model.params.items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_model(path: str | os.PathLike) -> Sequential:
    """Read a model written by :func:`save_model`.

    Raises
    ------
    ModelFileError
        Not such a file, or its weights do not fit its architecture.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["__meta__"]))
            weights = {k[2:]: z[k] for k in z.files if k.startswith("w/")}
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFileError(f"{path}: not a memhw model file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a memhw model file")
    model = from_config(meta["layers"])
    if set(weights) != set(model.params):
        raise ModelFileError(f"{path}: weights {sorted(weights)} do not match the layers {sorted(model.params)}")
    try:
        model.load(weights)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return model
