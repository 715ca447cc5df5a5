"""Assumptions for a run (`--assume NAME=VALUE`): a parameter set to one value for every date,
typically a reading's alternative. The value is read and type-checked as a rulebook value
is, so `--assume tillägg=350 kr` and `--assume koncern_undantag_fysiska_besök=true` are
what a rulebook would write; explanations show an assumed value with the status `assumed`."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Optional

import attrs

from . import syntax as s
from .checker import CheckedRulebook
from .checker.dates import in_force
from .diagnostics import Error, RulebookError, did_you_mean
from .values import to_text

ASSUMED_FOR_THE_RUN = "assumed for this run (--assume)"

EXAMPLES = {"money": "350 kr", "decimal": "1.2 or 10 %", "integer": "6", "boolean": "true or false",
            "date": "2021-09-01", "text": '"text"'}


class AssumptionError(Error, ValueError):
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
    from .parser import parse_block  # Lark, only where a value is assumed

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


# ------------------------------------------------------------------------ readings


def assumed_constant(assumption: s.Assumption, value_type):
    """An example's `assuming NAME = VALUE` as the evaluator holds the value (the checker
    has made sure it is a constant of the parameter's type)."""
    value = assumption.value
    constant = value.name if isinstance(value, s.Name) else value.value
    if value_type.kind == "decimal" and isinstance(constant, int):
        constant = Fraction(constant)
    return constant


def worked_values(checked: CheckedRulebook, name: str, value_type) -> list:
    """The values the examples of the rulebook and of what it amends assume for `name`, in
    the order written: the alternatives a rulebook works for a reading that is a number."""
    return [assumed_constant(assumption, value_type)
            for layer in checked.chain for statement in layer.statements if isinstance(statement, s.ExampleDecl)
            for assumption in statement.assumptions if assumption.parameter == name]


@attrs.frozen
class Reading:
    """A question the sources leave open, answered by a parameter whose value has the status
    `interpretation`: its answer in force, the other answers a run may assume, and where the
    answer is written."""

    name: str
    default: str  # the value in force (on the date asked, else the latest), as a rulebook writes it
    alternatives: tuple  # the other values of a yes/no or enum reading; of a number or date, worked_values
    cite: str
    provision: str
    source: str  # FILE:LINE of the value
    alternative_values: tuple = ()  # the alternatives as the evaluator holds them (see assumptions)
    value: object = None  # the answer in force, as the evaluator holds it

    @property
    def priceable(self) -> bool:
        """Whether each alternative can be settled for its money (`readings --data`)."""
        return bool(self.alternatives)


def readings(checked: CheckedRulebook, on: Optional[dt.date] = None) -> list[Reading]:
    """Every reading of the rulebook and what it amends, in declaration order: a parameter
    with one value per period whose value in force on `on` (or latest) is an interpretation."""
    found = (reading_of(checked, name, on) for name in checked.parameters)
    return [r for r in found if r is not None]


def reading_of(checked: CheckedRulebook, name: str, on: Optional[dt.date] = None) -> Optional[Reading]:
    """The parameter `name` as a reading (see readings), or None when its value in force on
    `on` (or latest) is not an interpretation, or it is keyed."""
    info = checked.parameters.get(name)
    if info is None or info.key_types or not info.values:
        return None
    value = next((v for v in info.values if in_force(v.valid_from, v.valid_until, on)), None) \
        if on is not None else info.values[-1]
    if value is None or value.decl.status != "interpretation":
        return None
    kind = info.type.kind
    if kind == "boolean":
        values: tuple = (not value.value,)
    elif kind == "enum":
        values = tuple(v for v in checked.enums[info.type.name].values if v != value.value)
    else:  # a number or a date: the values the rulebook's examples work it with
        values = tuple(dict.fromkeys(v for v in worked_values(checked, name, info.type) if v != value.value))
    return Reading(name, to_text(value.value, info.type), tuple(to_text(v, info.type) for v in values),
                   value.decl.cite or "", info.decl.provision.heading,
                   f"{value.decl.span.file}:{value.decl.span.line}", values, value.value)

