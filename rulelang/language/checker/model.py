"""The checked rulebook handed to the compiler, and what the checker knows of each name."""

from __future__ import annotations

import datetime as dt
from typing import Optional

import attrs

from .. import syntax as s
from ..typesystem import (
    DATE,
    DECIMAL,
    INTEGER,
    TEXT,
    Type,
)
from .reach import beyond_reach

ERROR = Type("error")

EVALUATION_DATE = "evaluation_date"

MAX_EXCEPTION_DEPTH = 32

# name → (argument kinds or None for "same numeric type", result)
BUILTINS = {
    "age": ((DATE, DATE), INTEGER),
    "year": ((DATE,), INTEGER),
    "month": ((DATE,), INTEGER),
    "day": ((DATE,), INTEGER),
    "first_day_of_month": ((DATE,), DATE),
    "last_day_of_month": ((DATE,), DATE),
    "days_between": ((DATE, DATE), INTEGER),
    "add_days": ((DATE, INTEGER), DATE),
    "floor": ((DECIMAL,), INTEGER),
    "lower": ((TEXT,), TEXT),
    "trim": ((TEXT,), TEXT),
    "min": (None, None),
    "max": (None, None),
}

BUILTIN_HELP = {
    "age": "age(birth_date, on): whole years completed on a date",
    "days_between": "days_between(from, to): days from the first date to the second",
    "add_days": "add_days(date, days): the date so many days later (earlier when negative)",
    "floor": "floor(decimal): the whole number at or below it (22.5 → 22; −0.5 → −1)",
    "lower": "lower(text): the text in small letters, to compare what people write in any case",
    "trim": "trim(text): the text without spaces at either end",
}

# How long a chain of definitions and outputs reading one another may be: evaluation follows
# it depth first, and explanations show it whole.
MAX_DEFINITION_DEPTH = 64


@attrs.define
class TableInfo:
    decl: s.TableDecl
    fields: dict  # name → (Type, FieldDecl)


@attrs.frozen
class ParamValueInfo:
    """A parameter value with the period it is in force (clipped where an amendment overrides it)."""

    decl: s.ParamValue
    valid_from: Optional[dt.date]
    valid_until: Optional[dt.date]
    value: object  # a constant, or for keyed parameters a tuple of (low, high, enum, constant)


@attrs.define
class ParamInfo:
    decl: s.ParameterDecl
    type: Type
    key_types: tuple  # one Type per key; empty for a parameter with one value per period
    values: list

    @property
    def keys_shown(self) -> str:
        return ", ".join(str(t) for t in self.key_types)


@attrs.define
class DefinitionInfo:
    decl: s.DefinitionDecl
    type: Type = ERROR
    busy: bool = False  # being typed now: a use inside its own value is a cycle, reported later
    typed: bool = False


@attrs.define
class OutputInfo:
    decl: s.OutputDecl
    type: Type
    roots: list = attrs.Factory(list)  # labels of rules that are not exceptions


@attrs.define
class RuleInfo:
    decl: s.RuleDecl
    output: Optional[str]
    exceptions: list = attrs.Factory(list)  # labels of exceptions to this rule
    repealed_by: Optional[s.Repeal] = None
    outputs: tuple = ()  # every output it decides (an exception may override rules of several)


@attrs.frozen
class Replacement:
    """A rulebook's `replaced by ID from DATE`, for a run on a date it covers: amounts from
    that date follow a model no longer in force. Reported as settlement reports a rulebook's
    warnings (`name`, `message`, `provision`, `source`)."""

    rulebook: str
    replaced_by: str
    on: dt.date  # the first day the model is replaced
    source: str  # FILE:LINE of the header that says so
    name: str = "replaced"
    provision: Optional[str] = None

    @property
    def message(self) -> str:
        return (f"{self.rulebook} was replaced by {self.replaced_by} from {self.on.isoformat()}; amounts "
                f"dated from then follow the replaced model, not the one in force")

    def to_dict(self) -> dict:
        return {"by": self.replaced_by, "from": self.on.isoformat(), "message": self.message}


def names_own_key(payee, key: Optional[str], resolved: dict) -> bool:
    """Whether an output's `paid to` is its own record's key (a clinic's compensation paid
    to the clinic): a clinic-level amount, carrying no record id of its own."""
    return isinstance(payee, s.Name) and payee.name == key and resolved.get(id(payee), ("",))[0] == "field"


@attrs.define
class CheckedRulebook:
    """A rulebook merged with what it amends, every name resolved and every expression typed."""

    id: str
    header: s.RulebookHeader
    chain: list  # RulebookSyntax, oldest first
    enums: dict
    tables: dict
    parameters: dict
    definitions: dict  # (table or None, name) → DefinitionInfo
    outputs: dict
    rules: dict
    data: dict
    examples: list
    data_warnings: dict  # name → WarningDecl: checks of the input as a whole
    types: dict  # id(expression) → Type
    resolved: dict  # id(name or field access) → resolution tuple
    warnings: list
    sources: dict  # file → text
    _beyond_reach: dict = attrs.field(factory=dict, repr=False)

    @property
    def version(self) -> str:
        return self.header.version or ""

    def parameters_read(self, exprs) -> frozenset:
        """The parameters the expressions may read, through the definitions and outputs they
        name, every branch included: what an evaluation can read whatever the values (a
        bound, not what one evaluation read)."""
        parameters: set = set()
        seen: set = set()
        stack = [e for e in exprs if e is not None]
        while stack:
            e = stack.pop()
            resolution = self.resolved.get(id(e)) if isinstance(e, (s.Name, s.FieldAccess)) else None
            if resolution is not None and resolution[0] == "parameter":
                parameters.add(resolution[1])
            elif resolution is not None and resolution[0] in ("definition", "output") and resolution not in seen:
                seen.add(resolution)
                kind, table, name = resolution
                stack.extend([self.definitions[(table, name)].decl.expr] if kind == "definition"
                             else self.output_expressions(name))
            stack.extend(s.children(e))
        return frozenset(parameters)

    def output_expressions(self, name: str) -> list:
        """The conditions and values of every rule and exception of an output, and its default."""
        found = [part for info in self.rules.values() if name in info.outputs
                 for part in (info.decl.condition, info.decl.value) if part is not None]
        default = self.outputs[name].decl.default
        return found + ([default] if default is not None else [])

    def beyond_reach(self, output: str, assumed: Optional[dict] = None) -> frozenset:
        """The tables evaluating `output` for one record may read beyond that record's reach
        (reach.py): what a focus on the record must load whole, under `assumed` values."""
        key = (output, tuple(sorted((assumed or {}).items())))
        if key not in self._beyond_reach:
            self._beyond_reach[key] = beyond_reach(self, output, assumed or {})
        return self._beyond_reach[key]

    def replaced_on(self, day: Optional[dt.date]) -> Optional[Replacement]:
        """The rulebook's own `replaced by` when `day` is on or after its date (a rulebook
        that amends this one is not replaced by it: only the header of the one run counts)."""
        replaced = self.header.replaced_by
        if replaced is None or day is None or day < replaced[1]:
            return None
        return Replacement(self.id, replaced[0], replaced[1], self.header.span.location)


@attrs.define
class Scope:
    table: Optional[str]
    vars: dict = attrs.Factory(dict)  # binder name → table

    def bind(self, var: str, table: str) -> "Scope":
        return Scope(self.table, {**self.vars, var: table})
