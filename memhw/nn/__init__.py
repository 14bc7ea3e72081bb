"""Neural networks whose matrix products run in software or in a memristor crossbar.

The network code (:mod:`~memhw.nn.layers`) is the same for both: it asks a
:class:`~memhw.nn.backend.Backend` for every product. See ``docs/lstm.md``.
"""

from .backend import Backend, SoftwareBackend
from .layers import LSTM, Dense, LastStep, Layer, Sequential
from .losses import cross_entropy, mse
from .optim import SGD, RMSprop
from .sequences import pad, step_mask

__all__ = [
    "Backend", "SoftwareBackend",
    "Layer", "LSTM", "Dense", "LastStep", "Sequential",
    "mse", "cross_entropy", "SGD", "RMSprop", "pad", "step_mask",
]
