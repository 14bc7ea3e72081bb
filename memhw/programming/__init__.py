"""Write-and-verify programming of memristor arrays."""

from ..algorithms.tuning import REASONS, Reason, TuningConfig
from .forming import FormingResult, form
from .probe import probe
from .program import DEFAULTS, program
from .result import ProgramResult

__all__ = ["program", "form", "probe", "FormingResult", "ProgramResult", "TuningConfig", "Reason", "REASONS", "DEFAULTS"]
