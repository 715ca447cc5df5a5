"""rulelang: rules as code for Swedish primary-care compensation.

Load a literate rulebook, evaluate records, and explain every kronor:

    import rulelang
    book = rulelang.load("stockholm/hlv-2021")
"""

from .api import Rulebook, load
from .diagnostics import DataError, EvaluationError, NotFound, RulebookError
from .evaluator import Result
from .explanation import Explanation

__version__ = "0.1.0"

__all__ = ["Rulebook", "load", "Result", "Explanation", "RulebookError", "DataError", "EvaluationError", "NotFound"]
