"""rulelang: rules as code for Swedish primary-care compensation.

Load a literate rulebook, evaluate records, and explain every kronor:

    import rulelang
    book = rulelang.load("stockholm/hlv-2021")
"""

from .evaluation.evaluator import Result
from .evaluation.explanation import Explanation
from .interfaces.api import Rulebook, load
from .language.diagnostics import DataError, EvaluationError, NotFound, RulebookError

__version__ = "0.1.0"

__all__ = ["Rulebook", "load", "Result", "Explanation", "RulebookError", "DataError", "EvaluationError", "NotFound"]
