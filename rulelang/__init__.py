"""rulelang: rules as code for Swedish primary-care compensation.

Load a literate rulebook, evaluate records, and explain every kronor:

    import rulelang
    book = rulelang.load("stockholm/hlv-2021")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Every public name is imported when first named (PEP 562): `import rulelang.interfaces.cli`
# runs this file first, and `rulelang --help` should not wait for the parser, the checker
# and the evaluator when it needs none of them (0.22 s with them, 0.09 s without).
_PUBLIC = {
    "Rulebook": ".interfaces.api", "load": ".interfaces.api", "loads": ".interfaces.api",
    "settle": ".interfaces.api",
    "Dataset": ".evaluation.data", "Result": ".evaluation.evaluator", "Explanation": ".evaluation.explanation",
    "AssumptionError": ".language.assumptions",
    "Error": ".language.diagnostics", "RulebookError": ".language.diagnostics", "DataError": ".language.diagnostics",
    "EvaluationError": ".language.diagnostics", "NotFound": ".language.diagnostics",
    "InvalidArgument": ".language.diagnostics",
    "Settlement": ".columnar.settlement", "SettlementError": ".columnar.settlement",
    "render": ".interfaces.render",
}

# Written out (not derived from _PUBLIC) so that linters and type checkers read it; a test
# holds the two lists the same.
__all__ = ["Rulebook", "Dataset", "load", "loads", "settle", "render", "Result", "Explanation", "Settlement",
           "Error", "RulebookError", "DataError", "EvaluationError", "NotFound", "InvalidArgument",
           "SettlementError", "AssumptionError"]

if TYPE_CHECKING:  # the names as type checkers and editors see them
    from .columnar.settlement import Settlement, SettlementError
    from .evaluation.data import Dataset
    from .evaluation.evaluator import Result
    from .evaluation.explanation import Explanation
    from .interfaces.api import Rulebook, load, loads, settle
    from .interfaces.render import render
    from .language.assumptions import AssumptionError
    from .language.diagnostics import DataError, Error, EvaluationError, InvalidArgument, NotFound, RulebookError


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        module = importlib.import_module(_PUBLIC[name], __name__)
        value = getattr(module, name)
        globals()[name] = value  # named once, then an ordinary attribute
        return value
    raise AttributeError(f"module 'rulelang' has no attribute {name!r}")


def __dir__() -> list:
    return sorted({*globals(), *__all__})
