"""The researcher's loop on a board in two calls: program a trained model (ex situ), or
train it on the board (in situ).

>>> cb = program_model(model, board)                      # place around defects, program, repair
>>> evaluate(model, xs, ys, cb)                            # every product in the array
>>> run = train_insitu(model, board, xs, ys, SGD(0.01, 0.9), epochs=800)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..board import Board
from .crossbar import CrossbarBackend
from .insitu import MixedPrecisionConfig, MixedPrecisionUpdater, TwoPulseConfig, TwoPulseUpdater, insitu_weight_map
from .layers import Sequential
from .mapping import WeightMap, WeightMaps
from .train import History, fit

__all__ = ["INSITU_READ_AVERAGE", "INSITU_VARIANTS", "InsituRun", "program_model", "train_insitu"]

#: in-situ update schemes by name: memhw's mixed-precision write-and-verify ("improved"),
#: the paper's open-loop two-pulse scheme ("published", every device SET on every
#: update) and the latter with the first obvious fix ("thresholded": accumulate gate
#: changes, pulse only past 20 mV ≈ 2 µS)
INSITU_VARIANTS: dict[str, MixedPrecisionConfig | TwoPulseConfig] = {
    "improved": MixedPrecisionConfig(),
    "published": TwoPulseConfig(),
    "thresholded": TwoPulseConfig(threshold=0.02, pulse_all=False),
}
#: samples per device of the periodic in-situ conductance re-reads
INSITU_READ_AVERAGE = 4
#: write-and-verify tolerance of ex-situ programming, S
EXSITU_TOLERANCE = 1e-6


def program_model(model: Sequential, boards: Board | Sequence[Board], *, weight_map: WeightMaps | str = "auto",
                  tolerance: float = EXSITU_TOLERANCE, health: Any = "auto", programmer: Callable[..., Any] | None = None,
                  **options: Any) -> CrossbarBackend:
    """Program ``model``'s weights into the boards' arrays (ex situ) and return the backend
    to infer with (``predict(model, xs, backend)``).

    Defect-aware: devices of unknown health are probed, the layers placed around
    defects, stuck devices compensated by their partners and failed weights repaired on
    spare rows (:class:`CrossbarBackend`; what it did is in ``backend.report``).

    Parameters
    ----------
    model : Sequential
    boards : Board or list of Board
    weight_map : WeightMap, mapping key -> WeightMap, or "auto"
        "auto" (default): a scale per layer that holds its weights.
    tolerance : float
        Write-and-verify tolerance, S (default 1 µS: ex situ every weight is written once,
        and a network's output is sensitive to the spread of its weights).
    health : "auto", list of HealthMap, or None
        See :class:`CrossbarBackend`.
    programmer : callable, optional
        Default :func:`memhw.programming.program`.
    **options
        Further :class:`CrossbarBackend` arguments (``read_average``, ``repair_rounds``...).
    """
    cb = CrossbarBackend(boards, None, weight_map=weight_map, programmer=programmer, tolerance=tolerance,
                         health=health, **options)
    cb.program(model.params)
    return cb


@dataclass
class InsituRun:
    """Outcome of :func:`train_insitu`: the backend (the trained weights live there), the
    updater (pulse counts) and the loss history."""

    backend: CrossbarBackend
    updater: MixedPrecisionUpdater | TwoPulseUpdater
    history: History

    @property
    def pulses(self) -> int:
        return self.updater.pulses

    @property
    def updates(self) -> int:
        return self.updater.updates


def train_insitu(model: Sequential, boards: Board | Sequence[Board], sequences: Sequence, targets: Sequence,
                 optimizer: Any, epochs: int, *, variant: str | MixedPrecisionConfig | TwoPulseConfig = "improved",
                 scale: float = 100e-6, tolerance: float = 2e-6, health: Any = "auto",
                 programmer: Callable[..., Any] | None = None, batch_size: int | None = None,
                 reduction: str = "mean", seed: int = 0, progress: bool = True, desc: str = "in situ") -> InsituRun:
    """Train ``model`` in the boards' arrays: forward products on the board, BPTT on the
    host with the measured weights, every optimiser step turned into pulses.

    The model's initial weights are written first (defect-aware, as
    :func:`program_model`); at the end the model holds the weights read back.

    Parameters
    ----------
    model : Sequential
    boards : Board or list of Board
    sequences, targets : see :func:`~memhw.nn.train.fit`
    optimizer : SGD or RMSprop
    epochs : int
    variant : "improved", "published", "thresholded" or a config
        :data:`INSITU_VARIANTS`; a :class:`MixedPrecisionConfig` or :class:`TwoPulseConfig`.
    scale : float
        Siemens per unit weight.
    tolerance, health, programmer
        As :func:`program_model`.
    batch_size, reduction, seed, progress, desc
        As :func:`~memhw.nn.train.fit`.
    """
    config = INSITU_VARIANTS[variant] if isinstance(variant, str) else variant
    common = {"programmer": programmer, "tolerance": tolerance, "read_average": INSITU_READ_AVERAGE, "health": health}
    if isinstance(config, MixedPrecisionConfig):
        # one-sided map: the low side of each pair sits near g_floor (little read noise)
        cb = CrossbarBackend(boards, None, weight_map=WeightMap(scale=scale), **common)
        updater: MixedPrecisionUpdater | TwoPulseUpdater = MixedPrecisionUpdater(cb, config)
    elif isinstance(config, TwoPulseConfig):
        cb = CrossbarBackend(boards, None, weight_map=insitu_weight_map(config, scale), **common)
        updater = TwoPulseUpdater(cb, config)
    else:
        raise ValueError(f"variant must be one of {sorted(INSITU_VARIANTS)} or an in-situ config, got {variant!r}")
    updater.initialise(model.params)
    history = fit(model, sequences, targets, optimizer, epochs, backend=cb, updater=updater.apply,
                  batch_size=batch_size, reduction=reduction, seed=seed, progress=progress, desc=desc)
    model.load(cb.refresh())
    return InsituRun(cb, updater, history)
