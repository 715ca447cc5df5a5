"""rulelang: rules as code for Swedish primary-care compensation.

Load a literate rulebook, evaluate records, and explain every kronor:

    import rulelang
    book = rulelang.load("stockholm/hlv-2021")
"""

from .evaluation.data import Dataset
from .evaluation.evaluator import Result
from .evaluation.explanation import Explanation
from .interfaces.api import Rulebook, load, loads, settle
from .language.assumptions import AssumptionError
from .language.diagnostics import DataError, Error, EvaluationError, InvalidArgument, NotFound, RulebookError

__version__ = "0.1.0"

# Settlement (DuckDB) and rendering are imported when first named: `rulelang check` and an
# embedding tool that only evaluates need neither.
_LAZY = {"Settlement": ".columnar.settlement", "SettlementError": ".columnar.settlement",
         "render": ".interfaces.render"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'rulelang' has no attribute {name!r}")

__all__ = ["Rulebook", "Dataset", "load", "loads", "settle", "render", "Result", "Explanation", "Settlement",
           "Error", "RulebookError", "DataError", "EvaluationError", "NotFound", "InvalidArgument",
           "SettlementError", "AssumptionError"]
