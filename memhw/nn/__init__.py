"""Neural networks whose matrix products run in software or in memristor crossbars.

The network code (:mod:`~memhw.nn.layers`) is the same for both: it asks a
:class:`~memhw.nn.backend.Backend` for every product. The whole loop of a user's own
network -- define (or import from PyTorch/Keras), train in software or in situ, place,
program, infer, evaluate, save -- is available from here; see ``docs/lstm.md``.

>>> from memhw.nn import LSTM, Dense, LastStep, Sequential, SGD, fit, program_model, evaluate
>>> model = Sequential([LSTM(1, 8), LastStep(), Dense(8, 1)], seed=0)
>>> fit(model, xs, ys, SGD(0.01, 0.9), epochs=200)          # float targets: regression
>>> cb = program_model(model, memhw.connect("mock://"))      # defect-aware ex-situ programming
>>> evaluate(model, xs_test, ys_test, cb)
"""

from .backend import Backend, SoftwareBackend
from .crossbar import CrossbarBackend, RepairReport
from .errors import ModelFileError, PlacementError, WeightRangeError
from .importers import from_keras, from_torch
from .insitu import MixedPrecisionConfig, MixedPrecisionUpdater, TwoPulseConfig, TwoPulseUpdater, insitu_weight_map
from .io import load_model, save_model
from .layers import LSTM, Dense, LastStep, Layer, Sequential
from .losses import cross_entropy, mse
from .mapping import Placement, Tile, WeightMap, auto_scale, to_conductances, to_weights
from .optim import SGD, RMSprop
from .placement import arrays_needed, place
from .sequences import pad, step_mask
from .train import History, evaluate, fit, loss_and_grads, predict, task_kind
from .workflow import INSITU_VARIANTS, InsituRun, program_model, train_insitu

__all__ = [
    "INSITU_VARIANTS",
    "LSTM",
    "SGD",
    "Backend",
    "CrossbarBackend",
    "Dense",
    "History",
    "InsituRun",
    "LastStep",
    "Layer",
    "MixedPrecisionConfig",
    "MixedPrecisionUpdater",
    "ModelFileError",
    "Placement",
    "PlacementError",
    "RMSprop",
    "RepairReport",
    "Sequential",
    "SoftwareBackend",
    "Tile",
    "TwoPulseConfig",
    "TwoPulseUpdater",
    "WeightMap",
    "WeightRangeError",
    "arrays_needed",
    "auto_scale",
    "cross_entropy",
    "evaluate",
    "fit",
    "from_keras",
    "from_torch",
    "insitu_weight_map",
    "load_model",
    "loss_and_grads",
    "mse",
    "pad",
    "place",
    "predict",
    "program_model",
    "save_model",
    "step_mask",
    "task_kind",
    "to_conductances",
    "to_weights",
    "train_insitu",
]
