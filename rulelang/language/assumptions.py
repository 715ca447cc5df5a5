"""Assumptions for a run (`--assume NAME=VALUE`): a parameter set to one value for every date,
typically a reading's alternative. The value is read and type-checked as a rulebook value
is, so `--assume tillägg=350 kr` and `--assume koncern_undantag_fysiska_besök=true` are
what a rulebook would write; explanations show an assumed value with the status `assumed`."""

from __future__ import annotations

from fractions import Fraction

from . import syntax as s
from .checker import CheckedRulebook
from .diagnostics import RulebookError, did_you_mean
from .parser import parse_block

ASSUMED_FOR_THE_RUN = "assumed for this run (--assume)"

EXAMPLES = {"money": "350 kr", "decimal": "1.2 or 10 %", "integer": "6", "boolean": "true or false",
            "date": "2021-09-01", "text": '"text"'}


class AssumptionError(ValueError):
    """An assumption that names no parameter, or gives it a value of another type."""


def assumptions(checked: CheckedRulebook, given: list) -> dict:
    """`NAME=VALUE` texts as {parameter: value}, the values as the evaluator holds them (money
    in öre, decimals as fractions, an enum value by name); AssumptionError naming the fix."""
    found: dict = {}
    for text in given or ():
        name, separator, value_text = text.partition("=")
        name, value_text = name.strip(), value_text.strip()
        if not separator or not name or not value_text:
            raise AssumptionError(f"--assume takes NAME=VALUE, not {text!r}")
        info = checked.parameters.get(name)
        if info is None:
            raise AssumptionError(f"--assume {text}: no parameter {name}{did_you_mean(name, checked.parameters)}")
        if info.key_types:
            raise AssumptionError(f"--assume {text}: {name} is keyed by {info.keys_shown}; "
                                  "only a parameter with one value per period can be assumed")
        found[name] = _value(checked, name, info.type, value_text, text)
    return found


def _value(checked: CheckedRulebook, name: str, value_type, value_text: str, text: str):
    kind = value_type.kind
    wrong = AssumptionError(f"--assume {text}: {name} is {value_type}; write a value such as "
                            + (" or ".join(checked.enums[value_type.name].values[:3]) if kind == "enum"
                               else EXAMPLES.get(kind, "a constant")))
    try:
        (statement,) = parse_block(f"definition assumed = {value_text}", "--assume", 0, s.Provision("", "", 0))
    except (RulebookError, ValueError):
        raise wrong from None
    expr = statement.expr
    if kind == "enum":
        if isinstance(expr, s.Name) and expr.name in checked.enums[value_type.name].values:
            return expr.name
        raise wrong
    if not isinstance(expr, s.Literal):
        raise wrong
    if kind == "decimal" and expr.kind in ("decimal", "integer"):
        return Fraction(expr.value)
    if expr.kind == kind or kind == "boolean" and expr.kind == "boolean":
        return expr.value
    raise wrong
